/* test_keys.c: unit tests for lib/keys.c (the /_mgmt key schema of DESIGN.md). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "macro.h"

#define KEY_EQ(expr, want)                                                                                  \
        do {                                                                                                \
                _cleanup_free_ char *_k = (expr);                                                           \
                ck_assert_ptr_nonnull(_k);                                                                  \
                ck_assert_str_eq(_k, (want));                                                               \
        } while (0)

START_TEST(test_builders) {
        KEY_EQ(key_ideal_size(), "/_mgmt/idealClusterSize");
        KEY_EQ(key_volunteer("h1"), "/_mgmt/volunteer/h1");
        KEY_EQ(key_volunteer_prefix(), "/_mgmt/volunteer/");
        KEY_EQ(key_nominated("h1"), "/_mgmt/nominated/h1");
        KEY_EQ(key_nominated_prefix(), "/_mgmt/nominated/");
        KEY_EQ(key_endpoints("node-2.example"), "/_mgmt/endpoints/node-2.example");
        KEY_EQ(key_endpoints_prefix(), "/_mgmt/endpoints/");
        KEY_EQ(key_coordinator(), "/_mgmt/coordinator");
        KEY_EQ(key_deploy_prefix(), "/_mgmt/deploy/");
        KEY_EQ(key_deploy_payload(1), "/_mgmt/deploy/1/payload");
        KEY_EQ(key_deploy_payload(1234567890123LL), "/_mgmt/deploy/1234567890123/payload");
        KEY_EQ(key_deploy_hash(42), "/_mgmt/deploy/42/hash");
        KEY_EQ(key_exported_prefix(), "/_mgmt/exported/");
        KEY_EQ(key_exported_host_prefix("h1"), "/_mgmt/exported/h1/resources/");
        KEY_EQ(key_exported("h1", "file", "filea"), "/_mgmt/exported/h1/resources/file/filea");
        KEY_EQ(key_converged("h1"), "/_mgmt/converged/h1");
        KEY_EQ(key_status("h1"), "/_mgmt/status/h1");
        KEY_EQ(key_status_prefix(), "/_mgmt/status/");
        KEY_EQ(key_plan(), "/_mgmt/plan");
        KEY_EQ(key_cluster(), "/_mgmt/cluster");
        KEY_EQ(key_snapshot("h1"), "/_mgmt/snapshot/h1");
        KEY_EQ(key_snapshot_prefix(), "/_mgmt/snapshot/");
}
END_TEST

START_TEST(test_host_suffix) {
        ck_assert_str_eq(key_host_suffix("/_mgmt/volunteer/h1", "/_mgmt/volunteer/"), "h1");
        ck_assert_str_eq(key_host_suffix("/_mgmt/endpoints/a.b-c", "/_mgmt/endpoints/"), "a.b-c");
        ck_assert_ptr_null(key_host_suffix("/_mgmt/volunteer/", "/_mgmt/volunteer/"));
        ck_assert_ptr_null(key_host_suffix("/_mgmt/volunteer/h1/x", "/_mgmt/volunteer/"));
        ck_assert_ptr_null(key_host_suffix("/_mgmt/volunteer/-h", "/_mgmt/volunteer/"));
        ck_assert_ptr_null(key_host_suffix("/_mgmt/nominated/h1", "/_mgmt/volunteer/"));
        ck_assert_ptr_null(key_host_suffix("/_mgmt/vol", "/_mgmt/volunteer/"));
        ck_assert_ptr_null(key_host_suffix(NULL, "/_mgmt/volunteer/"));
        ck_assert_ptr_null(key_host_suffix("/_mgmt/volunteer/h1", NULL));

        /* every builder round-trips through its prefix */
        _cleanup_free_ char *k = key_status("host-9");
        _cleanup_free_ char *p = key_status_prefix();
        ck_assert_str_eq(key_host_suffix(k, p), "host-9");
}
END_TEST

START_TEST(test_deploy_id) {
        const char *leaf = NULL;
        _cleanup_free_ char *k = key_deploy_payload(17);
        ck_assert_int_eq(key_deploy_id(k, &leaf), 17);
        ck_assert_str_eq(leaf, "payload");
        ck_assert_int_eq(key_deploy_id("/_mgmt/deploy/3/hash", &leaf), 3);
        ck_assert_str_eq(leaf, "hash");
        ck_assert_int_eq(key_deploy_id("/_mgmt/deploy/9223372036854775807/hash", NULL), INT64_MAX);

        static const char *const bad[] = {
            "/_mgmt/deploy/0/payload",
            "/_mgmt/deploy/01/payload",
            "/_mgmt/deploy/-1/payload",
            "/_mgmt/deploy/+1/payload",
            "/_mgmt/deploy/1",
            "/_mgmt/deploy/1x/payload",
            "/_mgmt/deploy/",
            "/_mgmt/deploy//payload",
            "/_mgmt/deployx/1/payload",
            "/_mgmt/status/1/payload",
            "",
            "/_mgmt/deploy/ 1/payload",
            "/_mgmt/deploy/99999999999999999999/payload",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(key_deploy_id(bad[i], &leaf) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_exported_parse) {
        char *h = NULL, *k = NULL, *n = NULL;
        _cleanup_free_ char *key = key_exported("h1", "file", "filea");

        ck_assert_int_eq(key_exported_parse(key, &h, &k, &n), 0);
        ck_assert_str_eq(h, "h1");
        ck_assert_str_eq(k, "file");
        ck_assert_str_eq(n, "filea");
        free(h);
        free(k);
        free(n);

        /* names may contain slashes: the name is everything after the kind */
        ck_assert_int_eq(key_exported_parse("/_mgmt/exported/h2/resources/file//tmp/x/y", &h, &k, &n), 0);
        ck_assert_str_eq(h, "h2");
        ck_assert_str_eq(k, "file");
        ck_assert_str_eq(n, "/tmp/x/y");
        free(h);
        free(k);
        free(n);

        static const char *const bad[] = {
            "/_mgmt/exported/h1/resources/file",     "/_mgmt/exported/h1/resources/file/",
            "/_mgmt/exported/h1/resources//name",    "/_mgmt/exported/h1/resources/",
            "/_mgmt/exported//resources/file/name",  "/_mgmt/exported/bad_host/resources/file/n",
            "/_mgmt/exported/h1/file/name",          "/_mgmt/status/h1/resources/file/name",
            "/_mgmt/exported/h1/x/resources/file/n", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                h = k = n = NULL;
                ck_assert_msg(key_exported_parse(bad[i], &h, &k, &n) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(h);
                ck_assert_ptr_null(k);
                ck_assert_ptr_null(n);
        }
}
END_TEST

static Suite *keys_suite(void) {
        Suite *s = suite_create("keys");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_builders);
        tcase_add_test(tc, test_host_suffix);
        tcase_add_test(tc, test_deploy_id);
        tcase_add_test(tc, test_exported_parse);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(keys_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
