/* test_httpd.c: unit tests for the pure parts of the metrics listener:
 * --metrics-listen address parsing (lib/httpd.c) and the Prometheus text
 * writer (lib/metrics.c). */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "macro.h"
#include "metrics.h"

static const struct {
        const char *in, *host, *port; /* host NULL: refused, err must contain port */
} listens[] = {
    {"127.0.0.1:9100", "127.0.0.1", "9100"},
    {"*:9100", "*", "9100"},
    {"localhost:1", "localhost", "1"},
    {"[::1]:65535", "::1", "65535"},
    {"[fe80::1]:80", "fe80::1", "80"},
    {"", NULL, "empty"},
    {"127.0.0.1", NULL, "no port"},
    {"127.0.0.1:", NULL, "no port"},
    {":9100", NULL, "no host"},
    {"127.0.0.1:0", NULL, "bad port"},
    {"127.0.0.1:65536", NULL, "bad port"},
    {"127.0.0.1:12x", NULL, "bad port"},
    {"127.0.0.1:-5", NULL, "bad port"},
    {"::1:9100", NULL, "brackets"},
    {"[::1:9100", NULL, "bad IPv6"},
    {"[]:9100", NULL, "bad IPv6"},
};

START_TEST(test_parse_listen) {
        char *host = NULL, *port = NULL, err[256] = "";
        int r = httpd_parse_listen(listens[_i].in, &host, &port, err, sizeof err);
        if (listens[_i].host) {
                ck_assert_msg(r == 0, "'%s' refused: %s", listens[_i].in, err);
                ck_assert_str_eq(host, listens[_i].host);
                ck_assert_str_eq(port, listens[_i].port);
        } else {
                ck_assert_msg(r == -EINVAL, "'%s' accepted", listens[_i].in);
                ck_assert_msg(strstr(err, listens[_i].port), "'%s': error '%s' lacks '%s'", listens[_i].in,
                              err, listens[_i].port);
        }
        free(host);
        free(port);
}
END_TEST

START_TEST(test_metric_text) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        metric_one(f, M_CLUSTER_VOTING_MEMBERS, 3);
        metric_head(f, M_RESOURCES);
        metric_sample(f, M_RESOURCES, 2, "kind", "file", "state", "a\"b\\c\nd", (const char *)NULL);
        metric_sample(f, M_RESOURCES, 0.5, (const char *)NULL);
        metric_sample(f, M_RESOURCES, 1e20, (const char *)NULL);
        fclose(f);
        ck_assert_str_eq(
            buf, "# HELP mgmt_cluster_voting_members Voting members in the etcd member list, as this "
                 "supervisor last read it.\n"
                 "# TYPE mgmt_cluster_voting_members gauge\n"
                 "mgmt_cluster_voting_members 3\n"
                 "# HELP mgmt_resources Resources of the running graph by kind and state.\n"
                 "# TYPE mgmt_resources gauge\n"
                 "mgmt_resources{kind=\"file\",state=\"a\\\"b\\\\c\\nd\"} 2\n"
                 "mgmt_resources 0.5\n"
                 "mgmt_resources 1e+20\n");
        free(buf);
        /* every metric is named mgmt_*, counters *_total, with a help text */
        for (size_t i = 0; i < _M_MAX; i++) {
                ck_assert_ptr_nonnull(metric_defs[i].name);
                ck_assert(strncmp(metric_defs[i].name, "mgmt_", 5) == 0);
                ck_assert(metric_defs[i].help && *metric_defs[i].help);
                bool counter = streq(metric_defs[i].type, "counter");
                size_t n = strlen(metric_defs[i].name);
                ck_assert(counter == (n > 6 && streq(metric_defs[i].name + n - 6, "_total")));
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("httpd");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, test_parse_listen, 0, ELEMENTSOF(listens));
        tcase_add_test(tc, test_metric_text);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
