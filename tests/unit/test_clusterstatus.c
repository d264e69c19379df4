/* test_clusterstatus.c: unit tests for lib/clusterstatus.c, the pure part of
 * `mgmt-supervisor status`: gateway replies in, the --json document out, and
 * the table printed from it. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clusterstatus.h"
#include "macro.h"
#include "util.h"

#define NOW ((time_t)1700000000) /* 2023-11-14T22:13:20Z */

/* A range response holding key/value pairs (NULL-terminated list). */
static json_t *range(const char *first, ...) {
        json_t *kvs = json_array();
        va_list ap;
        va_start(ap, first);
        for (const char *k = first; k; k = va_arg(ap, const char *)) {
                const char *v = va_arg(ap, const char *);
                char *bk = b64_encode(k, strlen(k)), *bv = b64_encode(v, strlen(v));
                json_array_append_new(kvs, json_pack("{s:s, s:s, s:s, s:s}", "key", bk, "value", bv,
                                                     "mod_revision", "5", "version", "1"));
                free(bk);
                free(bv);
        }
        va_end(ap);
        return json_pack("{s:{s:o, s:s}}", "response_range", "kvs", kvs, "count", "0");
}

static json_t *txn_reply(json_t *r[_CS_OP_MAX]) {
        json_t *a = json_array();
        for (size_t i = 0; i < _CS_OP_MAX; i++)
                json_array_append_new(a, r[i] ? r[i] : range(NULL));
        return json_pack("{s:{s:s}, s:b, s:o}", "header", "revision", "42", "succeeded", 1, "responses", a);
}

static json_t *member(const char *id, const char *name, const char *peer, const char *client, bool learner) {
        return json_pack("{s:s, s:s, s:[s], s:o, s:b}", "ID", id, "name", name, "peerURLs", peer,
                         "clientURLs", client ? json_pack("[s]", client) : json_array(), "isLearner",
                         learner);
}

static json_t *status_reply(const char *id, const char *leader, const char *index) {
        return json_pack("{s:{s:s}, s:s, s:s, s:s, s:s, s:s}", "header", "member_id", id, "leader", leader,
                         "raftIndex", index, "raftTerm", "3", "dbSize", "20480", "version", "3.4.23");
}

static json_t *host_of(json_t *doc, const char *name) {
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(doc, CS_HOSTS), i,
                           h) if (streq(json_string_value(json_object_get(h, CS_H_NAME)), name)) return h;
        return NULL;
}

static const char *role_of(json_t *doc, const char *name) {
        return json_string_value(json_object_get(host_of(doc, name), CS_H_ROLE));
}

/* ids: 1=h1 (leader), 2=h2 (gone: no keys), 3=h3, 4=learner not started, peer URL of h6 */
static json_t *a_cluster(json_t **ret_txn, json_t **ret_probes) {
        json_t *members = json_pack("{s:{s:s, s:s, s:s}, s:[oooo]}", "header", "cluster_id", "48879",
                                    "member_id", "1", "revision", "40", "members",
                                    member("1", "h1", "http://10.0.0.1:2380", "http://10.0.0.1:2379", false),
                                    member("2", "h2", "http://10.0.0.2:2380", "http://10.0.0.2:2379", false),
                                    member("3", "h3", "http://10.0.0.3:2380", "http://10.0.0.3:2379", false),
                                    member("4", "", "http://10.0.0.6:2380", NULL, true));
        json_t *r[_CS_OP_MAX] = {0};
        r[CS_OP_IDEAL] = range("/_mgmt/idealClusterSize", "4", NULL);
        r[CS_OP_COORDINATOR] = range("/_mgmt/coordinator", "h1", NULL);
        r[CS_OP_PLAN] =
            range("/_mgmt/plan",
                  "{\"coordinator\":\"h1\",\"action\":\"promote\",\"host\":\"h6\",\"why\":\"learner h6 "
                  "catching up\",\"since\":\"2023-11-14T22:13:00Z\"}",
                  NULL);
        r[CS_OP_CLUSTER] =
            range("/_mgmt/cluster",
                  "{\"id\":\"beef\",\"generation\":2,\"created\":\"2023-11-01T00:00:00Z\"}", NULL);
        r[CS_OP_VOLUNTEER] =
            range("/_mgmt/volunteer/h1", "http://10.0.0.1:2380", "/_mgmt/volunteer/h3",
                  "http://10.0.0.3:2380", "/_mgmt/volunteer/h4", "http://10.0.0.4:2380",
                  "/_mgmt/volunteer/h6", "http://10.0.0.6:2380", "/_mgmt/volunteer/bad_name", "x", NULL);
        r[CS_OP_NOMINATED] = range("/_mgmt/nominated/h1", "http://10.0.0.1:2380", "/_mgmt/nominated/h2",
                                   "http://10.0.0.2:2380", "/_mgmt/nominated/h3", "http://10.0.0.3:2380",
                                   "/_mgmt/nominated/h6", "http://10.0.0.6:2380", NULL);
        r[CS_OP_ENDPOINTS] = range("/_mgmt/endpoints/h1", "http://10.0.0.1:2379", "/_mgmt/endpoints/h3",
                                   "http://10.0.0.3:2379", NULL);
        r[CS_OP_STATUS] =
            range("/_mgmt/status/h1",
                  "{\"deploy\":7,\"state\":\"converged\",\"errors\":[],\"time\":\"2023-11-14T22:00:00Z\"}",
                  "/_mgmt/status/h5",
                  "{\"deploy\":6,\"state\":\"failed\",\"errors\":[\"x\"],\"time\":\"2023-11-14T22:00:00Z\"}",
                  "/_mgmt/status/h3", "not json", NULL);
        r[CS_OP_SNAPSHOT] = range("/_mgmt/snapshot/h1", "{\"time\":\"2023-11-14T21:13:20Z\",\"size\":1}",
                                  "/_mgmt/snapshot/h3", "{\"time\":\"garbage\"}", NULL);
        *ret_txn = txn_reply(r);
        *ret_probes = json_pack("{s:{s:o, s:{s:s}}, s:{s:s}, s:{s:o, s:{s:s}}}", "1", "status",
                                status_reply("1", "1", "100"), "health", "health", "true", "2", "error",
                                "cannot reach etcd at http://10.0.0.2:2379", "3", "status",
                                status_reply("3", "1", "97"), "health", "health", "false");
        return members;
}

START_TEST(test_doc_roles) {
        json_t *txn, *probes, *members = a_cluster(&txn, &probes);
        char err[256] = "";
        json_t *doc = cluster_status_doc(members, txn, probes, NOW, err, sizeof err);

        ck_assert_msg(doc, "%s", err);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_SCHEMA)), 1);
        ck_assert_str_eq(json_string_value(json_object_get(doc, CS_TIME)), "2023-11-14T22:13:20Z");
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_VOTERS)), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_LEARNERS)), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_QUORUM)), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_FAILURE_TOLERANCE)), 1);
        /* h3 answers status but its /health says false */
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_HEALTHY_VOTERS)), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_IDEAL)), 4);
        ck_assert_str_eq(json_string_value(json_object_get(doc, CS_LEADER)), "h1");
        ck_assert_str_eq(json_string_value(json_object_get(doc, CS_COORDINATOR)), "h1");
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, CS_PLAN), "action")),
                         "promote");
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, CS_CLUSTER), CS_CLUSTER_ID)),
                         "beef");
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_object_get(doc, CS_CLUSTER), CS_GENERATION)), 2);

        /* sorted by name; the bad host name is left out */
        const char *want[] = {"h1", "h2", "h3", "h4", "h5", "h6"};
        json_t *hosts = json_object_get(doc, CS_HOSTS);
        ck_assert_int_eq(json_array_size(hosts), ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                ck_assert_str_eq(json_string_value(json_object_get(json_array_get(hosts, i), CS_H_NAME)),
                                 want[i]);
        ck_assert_str_eq(role_of(doc, "h1"), "member");
        ck_assert_str_eq(role_of(doc, "h2"), "gone");
        ck_assert_str_eq(role_of(doc, "h3"), "member");
        ck_assert_str_eq(role_of(doc, "h4"), "volunteer");
        ck_assert_str_eq(role_of(doc, "h5"), "client");
        ck_assert_str_eq(role_of(doc, "h6"), "learner"); /* unnamed learner matched by peer URL */

        json_t *h1 = host_of(doc, "h1"), *h2 = host_of(doc, "h2"), *h3 = host_of(doc, "h3"),
               *h5 = host_of(doc, "h5");
        ck_assert(json_is_true(json_object_get(h1, CS_H_LEADER)));
        ck_assert(json_is_true(json_object_get(h1, CS_H_HEALTHY)));
        ck_assert_str_eq(json_string_value(json_object_get(h1, CS_H_MEMBER_ID)), "1");
        ck_assert_int_eq(json_integer_value(json_object_get(h1, CS_H_RAFT_LAG)), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(h3, CS_H_RAFT_LAG)), 3);
        ck_assert(json_is_false(json_object_get(h3, CS_H_HEALTHY)));
        ck_assert_int_eq(json_integer_value(json_object_get(h1, CS_H_DB_SIZE)), 20480);
        ck_assert_str_eq(json_string_value(json_object_get(h1, CS_H_VERSION)), "3.4.23");
        ck_assert_int_eq(json_integer_value(json_object_get(h1, CS_H_DEPLOY)), 7);
        ck_assert_str_eq(json_string_value(json_object_get(h1, CS_H_DEPLOY_STATE)), "converged");
        ck_assert_int_eq(json_integer_value(json_object_get(h1, CS_H_SNAPSHOT_AGE)), 3600);
        /* an unreadable agent status or snapshot time is shown as absent, not guessed */
        ck_assert(json_is_null(json_object_get(h3, CS_H_DEPLOY)));
        ck_assert(json_is_null(json_object_get(h3, CS_H_SNAPSHOT_AGE)));
        ck_assert(json_is_false(json_object_get(h2, CS_H_HEALTHY)));
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(h2, CS_H_ERROR)), "cannot reach"));
        ck_assert(json_is_null(json_object_get(h5, CS_H_HEALTHY)));
        ck_assert(json_is_null(json_object_get(h5, CS_H_MEMBER_ID)));
        ck_assert_int_eq(json_integer_value(json_object_get(h5, CS_H_DEPLOY)), 6);

        /* the table: header, plan, then the rows in order */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cluster_status_render(doc, NOW, f);
        fclose(f);
        ck_assert_ptr_nonnull(
            strstr(buf, "cluster beef  generation 2  ideal 4  voters 3 (1 healthy)  failure tolerance 1  "
                        "coordinator h1\n"));
        ck_assert_ptr_nonnull(strstr(buf, "plan: promote h6: learner h6 catching up (for 20s)\n"));
        const char *p = buf;
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                char row[16];
                snprintf(row, sizeof row, "\n%s ", want[i]);
                const char *q = strstr(p, row);
                ck_assert_msg(q, "row %s missing or out of order in:\n%s", want[i], buf);
                p = q + 1;
        }
        free(buf);
        json_decref(doc);
        json_decref(members);
        json_decref(txn);
        json_decref(probes);
}
END_TEST

START_TEST(test_doc_empty_and_bad) {
        json_t *r[_CS_OP_MAX] = {0};
        json_t *txn = txn_reply(r), *probes = json_object();
        json_t *members =
            json_pack("{s:{s:s, s:s, s:s}}", "header", "cluster_id", "1", "member_id", "1", "revision", "1");
        char err[256] = "";

        json_t *doc = cluster_status_doc(members, txn, probes, NOW, err, sizeof err);
        ck_assert_msg(doc, "%s", err);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_VOTERS)), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, CS_FAILURE_TOLERANCE)), 0);
        ck_assert_int_eq(json_array_size(json_object_get(doc, CS_HOSTS)), 0);
        ck_assert(json_is_null(json_object_get(doc, CS_IDEAL)));
        ck_assert(json_is_null(json_object_get(doc, CS_PLAN)));
        ck_assert(json_is_null(json_object_get(doc, CS_COORDINATOR)));
        ck_assert(json_is_null(json_object_get(json_object_get(doc, CS_CLUSTER), CS_GENERATION)));
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cluster_status_render(doc, NOW, f);
        fclose(f);
        ck_assert_ptr_nonnull(strstr(buf, "plan: (none published)"));
        free(buf);
        json_decref(doc);

        /* malformed replies: no document, a reason */
        json_t *bad = json_string("x");
        ck_assert_ptr_null(cluster_status_doc(bad, txn, probes, NOW, err, sizeof err));
        ck_assert_ptr_nonnull(strstr(err, "member list"));
        ck_assert_ptr_null(cluster_status_doc(members, bad, probes, NOW, err, sizeof err));
        ck_assert_ptr_nonnull(strstr(err, "/_mgmt keys"));
        json_decref(bad);
        json_decref(members);
        json_decref(txn);
        json_decref(probes);
}
END_TEST

START_TEST(test_rfc3339) {
        ck_assert_int_eq(rfc3339_parse("2023-11-14T22:13:20Z"), 1700000000);
        ck_assert_int_eq(rfc3339_parse("2023-11-14T22:13:20.123456Z"), 1700000000);
        ck_assert_int_eq(rfc3339_parse("2023-11-15T00:13:20+02:00"), 1700000000);
        ck_assert_int_eq(rfc3339_parse("2023-11-14T20:13:20-02:00"), 1700000000);
        ck_assert_int_eq(rfc3339_parse(NULL), -1);
        ck_assert_int_eq(rfc3339_parse(""), -1);
        ck_assert_int_eq(rfc3339_parse("2023-11-14"), -1);
        ck_assert_int_eq(rfc3339_parse("2023-11-14T22:13:20"), -1);
        ck_assert_int_eq(rfc3339_parse("2023-11-14T22:13:20Zjunk"), -1);
}
END_TEST

static Suite *clusterstatus_suite(void) {
        Suite *s = suite_create("clusterstatus");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_doc_roles);
        tcase_add_test(tc, test_doc_empty_and_bad);
        tcase_add_test(tc, test_rfc3339);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(clusterstatus_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
