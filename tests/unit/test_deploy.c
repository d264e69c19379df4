/* test_deploy.c: the deploy payload (encode, decode, validation), the origin
 * from CI variables, the transaction's compares, and agent status parsing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "deploy.h"
#include "etcd.h"
#include "keys.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

static const char graph[] = "graph: g\nresources:\n  noop:\n  - name: a\n";

static void clear_ci_env(void) {
        static const char *const vars[] = {"CI_COMMIT_SHA", "GITHUB_SHA",        "GIT_COMMIT",
                                           "CI_JOB_URL",    "GITHUB_SERVER_URL", "GITHUB_REPOSITORY",
                                           "GITHUB_RUN_ID", "BUILD_URL"};
        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                unsetenv(vars[i]);
}

START_TEST(test_roundtrip) {
        struct deploy_origin o = {.hostname = (char *)"ci-runner",
                                  .commit = (char *)"abc123",
                                  .job_url = (char *)"https://ci.example/jobs/7"};
        struct deploy d, back;
        char prev[65], err[256];

        sha256_hex("old", 3, prev);
        ck_assert_int_eq(deploy_new(&d, 2, prev, graph, strlen(graph), &o), 0);
        sha256_hex(graph, strlen(graph), err);
        ck_assert_str_eq(d.hash, err);
        ck_assert_str_eq(d.previous, prev);
        _cleanup_free_ char *text = deploy_encode(&d);
        ck_assert_ptr_nonnull(text);
        ck_assert_int_eq(deploy_decode(text, strlen(text), &back, err, sizeof err), 0);
        ck_assert_int_eq(back.id, 2);
        ck_assert_str_eq(back.hash, d.hash);
        ck_assert_str_eq(back.previous, prev);
        ck_assert_str_eq(back.graph, graph);
        ck_assert_uint_eq(back.graph_len, strlen(graph));
        ck_assert_str_eq(back.time, d.time);
        ck_assert_str_eq(back.origin.hostname, "ci-runner");
        ck_assert_str_eq(back.origin.commit, "abc123");
        ck_assert_str_eq(back.origin.job_url, "https://ci.example/jobs/7");
        deploy_clear(&back);
        deploy_clear(&d);

        /* the first deploy has no previous hash: null in JSON */
        ck_assert_int_eq(deploy_new(&d, 1, NULL, graph, strlen(graph), NULL), 0);
        json_t *j = deploy_to_json(&d, true);
        ck_assert(json_is_null(json_object_get(j, "previous")));
        ck_assert(json_is_integer(json_object_get(j, "id")));
        ck_assert_int_eq(deploy_from_json(j, &back, err, sizeof err), 0);
        ck_assert_str_eq(back.previous, "");
        ck_assert_ptr_null(back.origin.commit);
        deploy_clear(&back);
        json_decref(j);
        /* without the graph, the record still decodes (list output) */
        j = deploy_to_json(&d, false);
        ck_assert_ptr_null(json_object_get(j, "graph"));
        ck_assert_int_eq(deploy_from_json(j, &back, err, sizeof err), 0);
        ck_assert_ptr_null(back.graph);
        deploy_clear(&back);
        json_decref(j);
        deploy_clear(&d);

        /* id 2 needs a previous hash */
        ck_assert_int_eq(deploy_new(&d, 2, NULL, graph, strlen(graph), NULL), -EINVAL);
        ck_assert_int_eq(deploy_new(&d, 0, NULL, graph, strlen(graph), NULL), -EINVAL);
}
END_TEST

START_TEST(test_decode_invalid) {
        char h[65], hg[65], buf[2048], err[256];
        struct deploy d;

        sha256_hex("x", 1, h);
        sha256_hex(graph, strlen(graph), hg);
        static const char *const ok_time = "2024-01-02T03:04:05Z";
        struct {
                const char *fmt_or_text;
                const char *want;
        } cases[] = {
            {"not json", "is not JSON"},
            {"[]", "must be a JSON object"},
            {"{\"id\": 0}", "'id' must be an integer >= 1"},
            {"{\"id\": \"1\"}", "'id' must be an integer >= 1"},
            {"{\"id\": 1, \"hash\": \"ABC\"}", "'hash' must be 64 lowercase hex"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"previous\": \"%1$s\", \"time\": \"%3$s\"}",
             "'previous' must be null"},
            {"{\"id\": 2, \"hash\": \"%1$s\", \"previous\": null, \"time\": \"%3$s\"}",
             "'previous' must be 64"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"time\": \"yesterday\"}", "'time' must be an RFC 3339"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"time\": \"%3$s\", \"graph\": \"graph: g\\n\"}",
             "does not match the sha256"},
            {"{\"id\": 1, \"hash\": \"%2$s\", \"time\": \"%3$s\", \"graph\": 5}",
             "'graph' must be a string"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"time\": \"%3$s\", \"extra\": 1}", "unknown field 'extra'"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"time\": \"%3$s\", \"origin\": []}",
             "'origin' must be an object"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"time\": \"%3$s\", \"origin\": {\"who\": \"me\"}}",
             "unknown field 'who'"},
            {"{\"id\": 1, \"hash\": \"%1$s\", \"time\": \"%3$s\", \"origin\": {\"commit\": 5}}",
             "'commit' must be a string"},
            {"{\"id\": 1, \"id\": 2}", "is not JSON"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(buf, sizeof buf, cases[i].fmt_or_text, h, hg, ok_time);
#pragma GCC diagnostic pop
                err[0] = 0;
                ck_assert_msg(deploy_decode(buf, strlen(buf), &d, err, sizeof err) == -EBADMSG,
                              "case %zu accepted", i);
                ck_assert_msg(strstr(err, cases[i].want), "case %zu: want '%s', got '%s'", i, cases[i].want,
                              err);
        }
        /* a valid minimal record */
        snprintf(buf, sizeof buf, "{\"id\": 1, \"hash\": \"%s\", \"time\": \"2024-01-02T03:04:05.5+01:00\"}",
                 h);
        ck_assert_int_eq(deploy_decode(buf, strlen(buf), &d, err, sizeof err), 0);
        deploy_clear(&d);
}
END_TEST

START_TEST(test_origin_env) {
        struct deploy_origin o;

        clear_ci_env();
        ck_assert_int_eq(deploy_origin_from_env(&o), 0);
        ck_assert_ptr_nonnull(o.hostname);
        ck_assert_ptr_null(o.commit);
        ck_assert_ptr_null(o.job_url);
        deploy_origin_clear(&o);

        setenv("GITHUB_SHA", "feedface", 1);
        setenv("GITHUB_SERVER_URL", "https://github.com", 1);
        setenv("GITHUB_REPOSITORY", "acme/infra", 1);
        setenv("GITHUB_RUN_ID", "42", 1);
        ck_assert_int_eq(deploy_origin_from_env(&o), 0);
        ck_assert_str_eq(o.commit, "feedface");
        ck_assert_str_eq(o.job_url, "https://github.com/acme/infra/actions/runs/42");
        deploy_origin_clear(&o);

        /* GitLab wins over GitHub; Jenkins last */
        setenv("CI_COMMIT_SHA", "c0ffee", 1);
        setenv("CI_JOB_URL", "https://gitlab.example/job/1", 1);
        ck_assert_int_eq(deploy_origin_from_env(&o), 0);
        ck_assert_str_eq(o.commit, "c0ffee");
        ck_assert_str_eq(o.job_url, "https://gitlab.example/job/1");
        deploy_origin_clear(&o);

        clear_ci_env();
        setenv("GIT_COMMIT", "0123", 1);
        setenv("BUILD_URL", "https://jenkins.example/job/9/", 1);
        setenv("GITHUB_RUN_ID", "42", 1); /* incomplete GitHub set: ignored */
        ck_assert_int_eq(deploy_origin_from_env(&o), 0);
        ck_assert_str_eq(o.commit, "0123");
        ck_assert_str_eq(o.job_url, "https://jenkins.example/job/9/");
        deploy_origin_clear(&o);
        clear_ci_env();
}
END_TEST

static bool cmp_has(json_t *cmp, const char *key, const char *target, const char *result) {
        _cleanup_free_ char *k64 = b64_encode(key, strlen(key));
        size_t i;
        json_t *c;
        json_array_foreach(cmp, i, c) {
                const char *k = json_string_value(json_object_get(c, "key"));
                const char *t = json_string_value(json_object_get(c, "target"));
                const char *r = json_string_value(json_object_get(c, "result"));
                if (k && t && r && streq(k, k64) && streq(t, target) && streq(r, result))
                        return true;
        }
        return false;
}

START_TEST(test_txn_compare) {
        struct deploy_head head = {.id = 0};
        _cleanup_free_ char *p1 = key_deploy_payload(1), *p3 = key_deploy_payload(3),
                            *p4 = key_deploy_payload(4);
        _cleanup_free_ char *h3 = key_deploy_hash(3), *prefix = key_deploy_prefix();

        /* first deploy: deploy/1/payload absent and no key under the prefix */
        json_t *cmp = deploy_txn_compare(&head);
        ck_assert_ptr_nonnull(cmp);
        ck_assert_uint_eq(json_array_size(cmp), 2);
        ck_assert(cmp_has(cmp, p1, "VERSION", "EQUAL"));
        ck_assert(cmp_has(cmp, prefix, "VERSION", "EQUAL"));
        json_t *all = json_array_get(cmp, 1);
        _cleanup_free_ char *end64 = b64_encode("/_mgmt/deploy0", 14);
        ck_assert_str_eq(json_string_value(json_object_get(all, "range_end")), end64);
        json_decref(cmp);

        /* deploy 4 after 3: 4 absent, 3 present, hash of 3 as read */
        head.id = 3;
        sha256_hex("three", 5, head.hash);
        cmp = deploy_txn_compare(&head);
        ck_assert_uint_eq(json_array_size(cmp), 3);
        ck_assert(cmp_has(cmp, p4, "VERSION", "EQUAL"));
        ck_assert(cmp_has(cmp, p3, "VERSION", "GREATER"));
        ck_assert(cmp_has(cmp, h3, "VALUE", "EQUAL"));
        json_decref(cmp);

        /* the full request writes payload and hash, and reads back on failure */
        struct deploy d;
        ck_assert_int_eq(deploy_new(&d, 4, head.hash, graph, strlen(graph), NULL), 0);
        json_t *req = deploy_txn_request(&head, &d);
        ck_assert_ptr_nonnull(req);
        ck_assert_uint_eq(json_array_size(json_object_get(req, "success")), 2);
        ck_assert_uint_eq(json_array_size(json_object_get(req, "failure")), 3);
        json_decref(req);
        deploy_clear(&d);
}
END_TEST

/* The highest id counts payload keys only, whatever their order. */
START_TEST(test_highest_id) {
        static const struct {
                const char *keys[6];
                int64_t want;
        } cases[] = {
            {{NULL}, 0},
            {{"/_mgmt/deploy/1/hash", NULL}, 0},
            {{"/_mgmt/deploy/1/payload", "/_mgmt/deploy/1/hash", NULL}, 1},
            {{"/_mgmt/deploy/10/payload", "/_mgmt/deploy/9/payload", "/_mgmt/deploy/2/payload", NULL}, 10},
            /* a hash left behind by a deleted far-ahead payload does not count */
            {{"/_mgmt/deploy/3/payload", "/_mgmt/deploy/99999/hash", NULL}, 3},
            {{"/_mgmt/deploy/x/payload", "/_mgmt/deploy/0/payload", "/_mgmt/deploy/-4/payload",
              "/_mgmt/deploy/5/payloadx", "/_mgmt/deploy/2/payload", NULL},
             2},
        };
        ck_assert_int_eq(deploy_highest_id(NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct etcd_kv kv[6] = {0};
                struct etcd_kvs kvs = {.kvs = kv};
                for (size_t k = 0; cases[i].keys[k]; k++)
                        kv[kvs.n++].key = (char *)cases[i].keys[k];
                ck_assert_msg(deploy_highest_id(&kvs) == cases[i].want, "case %zu: got %lld, want %lld", i,
                              (long long)deploy_highest_id(&kvs), (long long)cases[i].want);
        }
}
END_TEST

START_TEST(test_host_status) {
        struct host_status s;
        char err[256];
        const char *j = "{\"deploy\": 3, \"state\": \"failed\", \"errors\": [\"e1\", \"e2\"], \"time\": "
                        "\"2024-01-01T00:00:00Z\"}";

        ck_assert_int_eq(host_status_decode("h1", j, strlen(j), &s, err, sizeof err), 0);
        ck_assert_str_eq(s.host, "h1");
        ck_assert_int_eq(s.deploy, 3);
        ck_assert_int_eq(s.state, DEPLOY_STATE_FAILED);
        ck_assert_uint_eq(strv_length(s.errors), 2);
        ck_assert_str_eq(s.time, "2024-01-01T00:00:00Z");
        host_status_clear(&s);

        j = "{\"deploy\": \"7\", \"state\": \"converged\"}";
        ck_assert_int_eq(host_status_decode("h2", j, strlen(j), &s, err, sizeof err), 0);
        ck_assert_int_eq(s.deploy, 7);
        ck_assert_int_eq(s.state, DEPLOY_STATE_CONVERGED);
        host_status_clear(&s);

        j = "{\"deploy\": 1, \"state\": \"sleeping\"}";
        ck_assert_int_eq(host_status_decode("h3", j, strlen(j), &s, err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "'state' must be applying, converged or failed"));
        j = "nope";
        ck_assert_int_eq(host_status_decode("h3", j, strlen(j), &s, err, sizeof err), -EBADMSG);
        for (int i = 0; i < _DEPLOY_STATE_MAX; i++)
                ck_assert_int_eq(deploy_state_from_string(deploy_state_to_string((enum deploy_state)i)), i);
}
END_TEST

/* The agent's side of the record: the exact bytes it writes today, and what
 * the deployer decodes from them is what went in. */
START_TEST(test_host_status_encode) {
        char *errs[] = {(char *)"file '/etc/x': \"denied\"", (char *)"e2", NULL};
        struct host_status in = {.deploy = 12,
                                 .state = DEPLOY_STATE_FAILED,
                                 .errors = errs,
                                 .time = (char *)"2024-01-01T00:00:00Z"};
        struct host_status out;
        char err[256];
        char *text;

        text = host_status_encode(&in);
        ck_assert_ptr_nonnull(text);
        ck_assert_str_eq(text,
                         "{\"deploy\":12,\"state\":\"failed\",\"errors\":[\"file '/etc/x': \\\"denied\\\"\","
                         "\"e2\"],\"time\":\"2024-01-01T00:00:00Z\"}");
        ck_assert_int_eq(host_status_decode("h1", text, strlen(text), &out, err, sizeof err), 0);
        ck_assert_int_eq(out.deploy, 12);
        ck_assert_int_eq(out.state, DEPLOY_STATE_FAILED);
        ck_assert_uint_eq(strv_length(out.errors), 2);
        ck_assert_str_eq(out.errors[0], errs[0]);
        ck_assert_str_eq(out.time, in.time);
        host_status_clear(&out);
        free(text);

        /* no errors, no time: an empty list and "" */
        in = (struct host_status){.deploy = 0, .state = DEPLOY_STATE_CONVERGED};
        text = host_status_encode(&in);
        ck_assert_str_eq(text, "{\"deploy\":0,\"state\":\"converged\",\"errors\":[],\"time\":\"\"}");
        free(text);

        /* a state outside the enum is refused, not written */
        in.state = _DEPLOY_STATE_MAX;
        ck_assert_ptr_null(host_status_encode(&in));
        in.state = (enum deploy_state) - 1;
        ck_assert_ptr_null(host_status_encode(&in));
}
END_TEST

static Suite *deploy_suite(void) {
        Suite *s = suite_create("deploy");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_roundtrip);
        tcase_add_test(tc, test_decode_invalid);
        tcase_add_test(tc, test_origin_env);
        tcase_add_test(tc, test_txn_compare);
        tcase_add_test(tc, test_host_status);
        tcase_add_test(tc, test_host_status_encode);
        tcase_add_test(tc, test_highest_id);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(deploy_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
