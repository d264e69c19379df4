/* test_wait.c: what mgmt-deploy --wait decides from the hosts it waits for
 * (wait_decide): exact deploy ids, hosts that stop reporting stay pending,
 * --hosts always waited for, --min-hosts for fleets that shrink on purpose. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deployer.h"
#include "macro.h"

enum { C, A, F }; /* converged, applying, failed */

struct h {
        const char *name;
        bool required, reporting;
        int64_t deploy;
        int state;
};

static const struct {
        const char *what;
        struct h hosts[4];
        size_t n, min_hosts;
        enum wait_verdict want;
        size_t want_done;
} cases[] = {
    {"no host at all", {{0}}, 0, 0, WAIT_PENDING, 0},
    {"every host converged on 3", {{"a", 0, 1, 3, C}, {"b", 0, 1, 3, C}}, 2, 0, WAIT_DONE, 2},
    {"one still applying", {{"a", 0, 1, 3, C}, {"b", 0, 1, 3, A}}, 2, 0, WAIT_PENDING, 1},
    {"a higher id is not this one", {{"a", 0, 1, 3, C}, {"b", 0, 1, 99999, C}}, 2, 0, WAIT_PENDING, 1},
    {"failed on a higher id is not failed on 3",
     {{"a", 0, 1, 3, C}, {"b", 0, 1, 99999, F}},
     2,
     0,
     WAIT_PENDING,
     1},
    {"failed on 3", {{"a", 0, 1, 3, C}, {"b", 0, 1, 3, F}}, 2, 0, WAIT_FAILED, 1},
    {"stopped reporting stays pending", {{"a", 0, 1, 3, C}, {"b", 0, 0, 2, C}}, 2, 0, WAIT_PENDING, 1},
    {"stopped reporting after converging on 3 is not converged",
     {{"a", 0, 1, 3, C}, {"b", 0, 0, 3, C}},
     2,
     0,
     WAIT_PENDING,
     1},
    {"--hosts never reported", {{"a", 0, 1, 3, C}, {"z", 1, 0, 0, A}}, 2, 0, WAIT_PENDING, 1},
    {"--min-hosts excuses a silent host",
     {{"a", 0, 1, 3, C}, {"b", 0, 1, 3, C}, {"c", 0, 0, 2, C}},
     3,
     2,
     WAIT_DONE,
     2},
    {"--min-hosts not reached", {{"a", 0, 1, 3, C}, {"c", 0, 0, 2, C}}, 2, 2, WAIT_PENDING, 1},
    {"--min-hosts does not excuse --hosts",
     {{"a", 0, 1, 3, C}, {"b", 0, 1, 3, C}, {"z", 1, 0, 0, A}},
     3,
     1,
     WAIT_PENDING,
     2},
    {"--min-hosts does not excuse a reporting host",
     {{"a", 0, 1, 3, C}, {"b", 0, 1, 2, C}},
     2,
     1,
     WAIT_PENDING,
     1},
    {"--min-hosts with nobody converged", {{"c", 0, 0, 2, C}}, 1, 1, WAIT_PENDING, 0},
    {"a required host converged", {{"z", 1, 1, 3, C}}, 1, 0, WAIT_DONE, 1},
};

START_TEST(test_decide) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct wait_host hosts[4] = {0}, copy[4];
                size_t done = 99, failed = 99;
                for (size_t k = 0; k < cases[i].n; k++) {
                        const struct h *c = &cases[i].hosts[k];
                        hosts[k] =
                            (struct wait_host){.host = (char *)c->name,
                                               .required = c->required,
                                               .reporting = c->reporting,
                                               .has_status = c->reporting || c->deploy > 0,
                                               .st = {.deploy = c->deploy,
                                                      .state = c->state == C   ? DEPLOY_STATE_CONVERGED
                                                               : c->state == F ? DEPLOY_STATE_FAILED
                                                                               : DEPLOY_STATE_APPLYING}};
                }
                memcpy(copy, hosts, sizeof hosts);
                enum wait_verdict v = wait_decide(hosts, cases[i].n, 3, cases[i].min_hosts, &done, &failed);
                ck_assert_msg(v == cases[i].want, "%s: verdict %d, want %d", cases[i].what, v,
                              cases[i].want);
                ck_assert_msg(done == cases[i].want_done, "%s: done %zu, want %zu", cases[i].what, done,
                              cases[i].want_done);
                if (v == WAIT_FAILED)
                        ck_assert_str_eq(hosts[failed].host, "b");
                /* a pure function: the input is left as it was */
                ck_assert(memcmp(copy, hosts, sizeof hosts) == 0);
        }
}
END_TEST

/* The progress line's list: capped, in the hosts' order, excused hosts left out. */
START_TEST(test_pending_list) {
        struct wait_host hosts[13];
        char names[13][8];
        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                snprintf(names[i], sizeof names[i], "h%zu", i);
                hosts[i] = (struct wait_host){.host = names[i],
                                              .reporting = true,
                                              .has_status = true,
                                              .st = {.deploy = 2, .state = DEPLOY_STATE_CONVERGED}};
        }
        hosts[0].st.deploy = 3; /* converged on 3: not pending */
        char *s = wait_pending_list(hosts, 13, 3, 0, 10);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, "h1 (converged deploy 2), h2 (converged deploy 2), h3 (converged deploy 2), "
                            "h4 (converged deploy 2), h5 (converged deploy 2), h6 (converged deploy 2), "
                            "h7 (converged deploy 2), h8 (converged deploy 2), h9 (converged deploy 2), "
                            "h10 (converged deploy 2), and 2 more");
        free(s);
        /* 0: all of them (the timeout's error names every host) */
        s = wait_pending_list(hosts, 13, 3, 0, 0);
        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(strstr(s, "h12 (converged deploy 2)"));
        ck_assert_ptr_null(strstr(s, "more"));
        free(s);
        /* exactly max pending: no "more" */
        s = wait_pending_list(hosts, 11, 3, 0, 10);
        ck_assert_ptr_null(strstr(s, "more"));
        free(s);
        /* a silent host excused by --min-hosts is not listed; one that never reported is */
        hosts[1].reporting = false;
        hosts[2] = (struct wait_host){.host = names[2], .required = true};
        s = wait_pending_list(hosts, 3, 3, 1, 10);
        ck_assert_str_eq(s, "h2 (never reported; named by --hosts)");
        free(s);
        /* nothing pending */
        ck_assert_ptr_null(wait_pending_list(hosts, 1, 3, 0, 10));
        ck_assert_ptr_null(wait_pending_list(hosts, 0, 3, 0, 10));
}
END_TEST

static Suite *wait_suite(void) {
        Suite *s = suite_create("wait");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_decide);
        tcase_add_test(tc, test_pending_list);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(wait_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
