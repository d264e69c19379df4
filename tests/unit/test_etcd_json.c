/* test_etcd_json.c: unit tests for lib/etcd_json.c: request bodies
 * and the parsers of every gateway reply shape, with real etcd 3.4 and 3.5
 * replies and malformed ones (wrong types, missing fields, bad base64, huge
 * arrays). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

#define HDR                                                                                                 \
        "\"header\":{\"cluster_id\":\"15875391935852295136\",\"member_id\":\"7383792418829112008\","        \
        "\"revision\":\"3\",\"raft_term\":\"2\"}"

/* Real replies captured from etcd 3.4.23's JSON gateway. */
static const char range_reply[] =
    "{" HDR ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\","
    "\"value\":\"YmFy\"},{\"key\":\"Zm9vMg==\",\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":"
    "\"1\","
    "\"lease\":\"1353509812213932298\"}],\"count\":\"2\"}";
static const char range_empty_reply[] = "{" HDR "}";
static const char txn_ok_reply[] =
    "{" HDR
    ",\"succeeded\":true,\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"2\"},\"kvs\":[{"
    "\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}"
    "],"
    "\"count\":\"1\"}},{\"response_put\":{\"header\":{\"revision\":\"3\"}}}]}";
static const char txn_fail_reply[] =
    "{" HDR ",\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"3\"}}}]}";
static const char lease_grant_reply[] = "{" HDR ",\"ID\":\"1353509812213932298\",\"TTL\":\"5\"}";
static const char keepalive_reply[] = "{\"result\":{" HDR ",\"ID\":\"1353509812213932298\",\"TTL\":\"5\"}}";
static const char keepalive_gone_reply[] = "{\"result\":{" HDR ",\"ID\":\"1\"}}";
static const char members_reply[] =
    "{\"header\":{\"cluster_id\":\"15875391935852295136\",\"member_id\":\"7383792418829112008\",\"raft_"
    "term\":"
    "\"2\"},\"members\":[{\"ID\":\"7383792418829112008\",\"name\":\"s\",\"peerURLs\":[\"http://"
    "127.0.0.1:42380\"],"
    "\"clientURLs\":[\"http://127.0.0.1:42379\"]},{\"ID\":\"10070195118145360816\",\"peerURLs\":["
    "\"http://127.0.0.1:42390\"],\"isLearner\":true}]}";
static const char member_add_reply[] =
    "{\"header\":{\"cluster_id\":\"15875391935852295136\",\"member_id\":\"7383792418829112008\",\"raft_"
    "term\":"
    "\"2\"},\"member\":{\"ID\":\"10070195118145360816\",\"peerURLs\":[\"http://"
    "127.0.0.1:42390\"],\"isLearner\":"
    "true},\"members\":[{\"ID\":\"7383792418829112008\",\"name\":\"s\",\"peerURLs\":[\"http://"
    "127.0.0.1:42380\"],"
    "\"clientURLs\":[\"http://127.0.0.1:42379\"]},{\"ID\":\"10070195118145360816\",\"peerURLs\":["
    "\"http://127.0.0.1:42390\"],\"isLearner\":true}]}";
static const char status_reply[] =
    "{" HDR
    ",\"version\":\"3.4.23\",\"dbSize\":\"24576\",\"leader\":\"7383792418829112008\",\"raftIndex\":\"7\","
    "\"raftTerm\":\"2\",\"raftAppliedIndex\":\"7\",\"dbSizeInUse\":\"16384\"}";
static const char watch_created_msg[] = "{" HDR ",\"created\":true}";
static const char watch_events_msg[] =
    "{" HDR ",\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
    "\"version\":\"1\",\"value\":\"YmFy\"}},{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_"
    "revision\":"
    "\"3\",\"version\":\"2\",\"value\":\"YmFy\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_"
    "revision\":"
    "\"4\"}}]}";
static const char watch_compacted_msg[] =
    "{" HDR ",\"watch_id\":\"0\",\"canceled\":true,\"compact_revision\":\"10\",\"cancel_reason\":"
    "\"mvcc: required revision has been compacted\"}";
static const char error_reply[] = "{\"error\":\"etcdserver: requested lease not "
                                  "found\",\"message\":\"etcdserver: requested lease not found\","
                                  "\"code\":5}";
static const char stream_error_reply[] =
    "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\",\"http_status\":"
    "\"Service Unavailable\"}}";

/* Real replies captured from etcd 3.5.16's JSON gateway (Debian 13): spaces
 * after separators, errors as {"code","message"} with no "error" key, no
 * cancel_reason on a watch canceled for compaction, watch_id 0 omitted. */
#define HDR35                                                                                               \
        "\"header\":{\"cluster_id\":\"6001611773266757492\", \"member_id\":\"13049071153751544597\", "      \
        "\"revision\":\"3\", \"raft_term\":\"2\"}"
static const char members35_reply[] =
    "{\"header\":{\"cluster_id\":\"6001611773266757492\", \"member_id\":\"13049071153751544597\", "
    "\"raft_term\":\"2\"}, \"members\":[{\"ID\":\"13049071153751544597\", \"name\":\"p\", "
    "\"peerURLs\":[\"http://127.0.0.1:24380\"], \"clientURLs\":[\"http://127.0.0.1:24379\"]}, "
    "{\"ID\":\"16323896634489817941\", \"peerURLs\":[\"http://127.0.0.1:24390\"], \"isLearner\":true}]}";
static const char member_add35_reply[] =
    "{\"header\":{\"cluster_id\":\"6001611773266757492\", \"member_id\":\"13049071153751544597\", "
    "\"raft_term\":\"2\"}, \"member\":{\"ID\":\"16323896634489817941\", "
    "\"peerURLs\":[\"http://127.0.0.1:24390\"], \"isLearner\":true}, "
    "\"members\":[{\"ID\":\"13049071153751544597\", \"name\":\"p\", "
    "\"peerURLs\":[\"http://127.0.0.1:24380\"], \"clientURLs\":[\"http://127.0.0.1:24379\"]}, "
    "{\"ID\":\"16323896634489817941\", \"peerURLs\":[\"http://127.0.0.1:24390\"], \"isLearner\":true}]}";
static const char status35_reply[] =
    "{" HDR35 ", \"version\":\"3.5.16\", \"dbSize\":\"20480\", \"leader\":\"13049071153751544597\", "
    "\"raftIndex\":\"6\", \"raftTerm\":\"2\", \"raftAppliedIndex\":\"6\", \"dbSizeInUse\":\"16384\"}";
static const char watch_compacted35_msg[] =
    "{\"header\":{\"cluster_id\":\"6001611773266757492\",\"member_id\":\"13049071153751544597\","
    "\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"3\"}";
static const char error35_not_found[] = "{\"code\":5, \"message\":\"etcdserver: member not found\"}";
static const char error35_future_rev[] =
    "{\"code\":11, \"message\":\"etcdserver: mvcc: required revision is a future revision\"}";
static const char error35_peer_exists[] =
    "{\"code\":9, \"message\":\"etcdserver: Peer URLs already exists\"}";
static const char error35_bad_json[] =
    "{\"code\":3, \"message\":\"invalid character 'g' looking for beginning of value\"}";

static json_t *J(const char *s) {
        json_error_t e;
        json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
        ck_assert_msg(j != NULL, "bad test JSON at %d: %s: %s", e.position, e.text, s);
        return j;
}

#ifndef _cleanup_json_
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

/* ---------------- well-formed replies ---------------- */

START_TEST(test_range) {
        _cleanup_json_ json_t *j = J(range_reply);
        struct etcd_kvs r;
        struct etcd_error err = {0};

        ck_assert_int_eq(etcd_parse_range(j, &r, &err), 0);
        ck_assert_int_eq(r.revision, 3);
        ck_assert_int_eq(r.count, 2);
        ck_assert(!r.more);
        ck_assert_uint_eq(r.n, 2);
        ck_assert_str_eq(r.kvs[0].key, "foo");
        ck_assert_str_eq(r.kvs[0].value, "bar");
        ck_assert_uint_eq(r.kvs[0].value_len, 3);
        ck_assert_int_eq(r.kvs[0].create_revision, 2);
        ck_assert_int_eq(r.kvs[0].mod_revision, 3);
        ck_assert_int_eq(r.kvs[0].version, 2);
        ck_assert_int_eq(r.kvs[0].lease, 0);
        ck_assert_str_eq(r.kvs[1].key, "foo2");
        ck_assert_str_eq(r.kvs[1].value, ""); /* value omitted = empty */
        ck_assert_uint_eq(r.kvs[1].value_len, 0);
        ck_assert_int_eq(r.kvs[1].lease, 1353509812213932298LL);
        etcd_kvs_clear(&r);
        ck_assert_ptr_null(r.kvs);

        json_decref(j);
        j = J(range_empty_reply);
        ck_assert_int_eq(etcd_parse_range(j, &r, &err), 0);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_int_eq(r.count, 0);
        ck_assert_int_eq(r.revision, 3);
        etcd_kvs_clear(&r);

        /* numbers as JSON integers and "more" are accepted too */
        json_decref(j);
        j = J("{\"header\":{\"revision\":9},\"kvs\":[{\"key\":\"YQ==\",\"value\":\"AAE=\",\"version\":1}],"
              "\"count\":5,\"more\":true}");
        ck_assert_int_eq(etcd_parse_range(j, &r, &err), 0);
        ck_assert_int_eq(r.revision, 9);
        ck_assert(r.more);
        ck_assert_int_eq(r.count, 5);
        ck_assert_uint_eq(r.kvs[0].value_len, 2); /* binary value with a NUL */
        ck_assert_int_eq(r.kvs[0].value[0], 0);
        ck_assert_int_eq(r.kvs[0].value[1], 1);
        etcd_kvs_clear(&r);

        int64_t rev;
        ck_assert_int_eq(etcd_parse_revision(j, &rev), 0);
        ck_assert_int_eq(rev, 9);
}
END_TEST

START_TEST(test_txn) {
        _cleanup_json_ json_t *ok = J(txn_ok_reply), *fail = J(txn_fail_reply);
        struct etcd_error err = {0};
        struct etcd_kvs r;
        bool s = false;

        ck_assert_int_eq(etcd_parse_txn(ok, &s, &err), 0);
        ck_assert(s);
        ck_assert_int_eq(etcd_parse_txn(fail, &s, &err), 0);
        ck_assert(!s); /* "succeeded" omitted when false */

        ck_assert_int_eq(etcd_parse_txn_range(ok, 0, &r, &err), 0);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_str_eq(r.kvs[0].key, "foo");
        ck_assert_int_eq(r.revision, 2);
        etcd_kvs_clear(&r);

        err.msg[0] = 0;
        ck_assert_int_eq(etcd_parse_txn_range(ok, 1, &r, &err), -EBADMSG); /* a put, not a range */
        ck_assert(err.msg[0]);
        err.msg[0] = 0;
        ck_assert_int_eq(etcd_parse_txn_range(ok, 2, &r, &err), -EBADMSG);
        ck_assert(err.msg[0]);
        ck_assert_int_eq(etcd_parse_txn_range(fail, 0, &r, &err), -EBADMSG);

        /* a range response without its own header takes the txn's */
        _cleanup_json_ json_t *nh =
            J("{" HDR ",\"succeeded\":true,\"responses\":[{\"response_range\":{}}]}");
        ck_assert_int_eq(etcd_parse_txn_range(nh, 0, &r, &err), 0);
        ck_assert_int_eq(r.revision, 3);
        ck_assert_uint_eq(r.n, 0);
        etcd_kvs_clear(&r);
}
END_TEST

START_TEST(test_lease) {
        _cleanup_json_ json_t *g = J(lease_grant_reply), *k = J(keepalive_reply),
                              *gone = J(keepalive_gone_reply);
        struct etcd_error err = {0};
        int64_t id = 0, ttl = 0;

        ck_assert_int_eq(etcd_parse_lease_grant(g, &id, &ttl, &err), 0);
        ck_assert_int_eq(id, 1353509812213932298LL);
        ck_assert_int_eq(ttl, 5);
        ck_assert_int_eq(etcd_parse_lease_grant(g, &id, NULL, &err), 0);
        ck_assert_int_eq(etcd_parse_lease_keepalive(k, &ttl, &err), 0);
        ck_assert_int_eq(ttl, 5);
        ck_assert_int_eq(etcd_parse_lease_keepalive(gone, &ttl, &err), 0);
        ck_assert_int_eq(ttl, 0);

        _cleanup_json_ json_t *e = J("{" HDR ",\"ID\":\"5\",\"TTL\":\"5\",\"error\":\"lease exists\"}");
        ck_assert_int_eq(etcd_parse_lease_grant(e, &id, &ttl, &err), -EBADMSG);
        ck_assert(strstr(err.msg, "lease exists"));
}
END_TEST

START_TEST(test_members) {
        _cleanup_json_ json_t *l = J(members_reply), *a = J(member_add_reply);
        struct etcd_error err = {0};
        struct etcd_members ms;
        uint64_t id = 0;

        ck_assert_int_eq(etcd_parse_members(l, &ms, &err), 0);
        ck_assert(ms.cluster_id == 15875391935852295136ULL); /* above INT64_MAX */
        ck_assert(ms.member_id == 7383792418829112008ULL);
        ck_assert_uint_eq(ms.n, 2);
        ck_assert(ms.m[0].id == 7383792418829112008ULL);
        ck_assert_str_eq(ms.m[0].name, "s");
        ck_assert_uint_eq(strv_length(ms.m[0].peer_urls), 1);
        ck_assert_str_eq(ms.m[0].peer_urls[0], "http://127.0.0.1:42380");
        ck_assert_str_eq(ms.m[0].client_urls[0], "http://127.0.0.1:42379");
        ck_assert(!ms.m[0].learner);
        ck_assert(ms.m[1].id == 10070195118145360816ULL);
        ck_assert_str_eq(ms.m[1].name, ""); /* not started yet: no name, no client URLs */
        ck_assert_uint_eq(strv_length(ms.m[1].client_urls), 0);
        ck_assert(ms.m[1].learner);
        etcd_members_clear(&ms);

        ck_assert_int_eq(etcd_parse_member_add(a, &id, &ms, &err), 0);
        ck_assert(id == 10070195118145360816ULL);
        ck_assert_uint_eq(ms.n, 2);
        etcd_members_clear(&ms);
        ck_assert_int_eq(etcd_parse_member_add(a, &id, NULL, &err), 0);
        ck_assert_int_eq(etcd_parse_member_add(l, &id, NULL, &err), -EBADMSG);
}
END_TEST

START_TEST(test_status) {
        _cleanup_json_ json_t *j = J(status_reply);
        struct etcd_error err = {0};
        struct etcd_status s;

        ck_assert_int_eq(etcd_parse_status(j, &s, &err), 0);
        ck_assert(s.member_id == 7383792418829112008ULL);
        ck_assert(s.leader == 7383792418829112008ULL);
        ck_assert_int_eq(s.raft_index, 7);
        ck_assert_int_eq(s.raft_term, 2);
        ck_assert_int_eq(s.db_size, 24576);
        ck_assert_int_eq(s.db_size_in_use, 16384); /* 3.4's field name */
        ck_assert(!s.learner);
        ck_assert_str_eq(s.version, "3.4.23");
        ck_assert_uint_eq(strv_length(s.errors), 0);
        etcd_status_clear(&s);

        _cleanup_json_ json_t *l =
            J("{" HDR ",\"leader\":\"1\",\"isLearner\":true,\"errors\":[\"NOSPACE\"]}");
        ck_assert_int_eq(etcd_parse_status(l, &s, &err), 0);
        ck_assert(s.learner);
        ck_assert_str_eq(s.errors[0], "NOSPACE");
        etcd_status_clear(&s);
}
END_TEST

START_TEST(test_watch_msg) {
        _cleanup_json_ json_t *c = J(watch_created_msg), *e = J(watch_events_msg),
                              *x = J(watch_compacted_msg);
        struct etcd_error err = {0};
        struct etcd_watch_msg m;

        ck_assert_int_eq(etcd_parse_watch_msg(c, &m, &err), 0);
        ck_assert(m.created);
        ck_assert(!m.canceled);
        ck_assert_int_eq(m.revision, 3);
        ck_assert_uint_eq(m.n_events, 0);
        etcd_watch_msg_clear(&m);

        ck_assert_int_eq(etcd_parse_watch_msg(e, &m, &err), 0);
        ck_assert(!m.created);
        ck_assert_uint_eq(m.n_events, 3);
        ck_assert_int_eq(m.events[0].type, ETCD_EVENT_PUT); /* PUT: "type" omitted */
        ck_assert_str_eq(m.events[0].kv.key, "foo");
        ck_assert_str_eq(m.events[0].kv.value, "bar");
        ck_assert_int_eq(m.events[1].kv.mod_revision, 3);
        ck_assert_int_eq(m.events[2].type, ETCD_EVENT_DELETE);
        ck_assert_int_eq(m.events[2].kv.mod_revision, 4);
        ck_assert_str_eq(m.events[2].kv.value, "");
        etcd_watch_msg_clear(&m);

        ck_assert_int_eq(etcd_parse_watch_msg(x, &m, &err), 0);
        ck_assert(m.canceled);
        ck_assert_int_eq(m.compact_revision, 10);
        ck_assert_str_eq(m.cancel_reason, "mvcc: required revision has been compacted");
        etcd_watch_msg_clear(&m);
}
END_TEST

START_TEST(test_error) {
        _cleanup_json_ json_t *e = J(error_reply), *s = J(stream_error_reply), *ok = J(range_reply);
        _cleanup_json_ json_t *weird = J("{\"error\":5,\"code\":\"x\"}");
        _cleanup_json_ json_t *arr = J("[1]");
        struct etcd_error err = {0};

        ck_assert_int_eq(etcd_parse_error(e, &err), 1);
        ck_assert_int_eq(err.code, 5);
        ck_assert_str_eq(err.msg, "etcdserver: requested lease not found");
        ck_assert_int_eq(etcd_parse_error(s, &err), 1);
        ck_assert_int_eq(err.code, 14);
        ck_assert_str_eq(err.msg, "etcdserver: no leader");
        ck_assert_int_eq(etcd_parse_error(ok, &err), 0);
        ck_assert_int_eq(etcd_parse_error(arr, &err), 0);
        ck_assert_int_eq(etcd_parse_error(NULL, &err), 0);
        ck_assert_int_eq(etcd_parse_error(weird, &err), 1);
        ck_assert_int_gt(err.code, 0);
        ck_assert(err.msg[0]);
        ck_assert_int_eq(etcd_parse_error(e, NULL), 1);

        /* etcd 3.5+ gateway shapes: no "error" key; "code" inside a stream error */
        _cleanup_json_ json_t *n1 = J("{\"code\":5,\"message\":\"etcdserver: requested lease not found\"}");
        _cleanup_json_ json_t *n2 = J("{\"error\":{\"code\":14,\"message\":\"etcdserver: no leader\"}}");
        _cleanup_json_ json_t *n3 = J("{\"code\":\"5\",\"message\":7}");
        ck_assert_int_eq(etcd_parse_error(n1, &err), 1);
        ck_assert_int_eq(err.code, 5);
        ck_assert_str_eq(err.msg, "etcdserver: requested lease not found");
        ck_assert_int_eq(etcd_parse_error(n2, &err), 1);
        ck_assert_int_eq(err.code, 14);
        ck_assert_int_eq(etcd_parse_error(n3, &err), 0);
}
END_TEST

START_TEST(test_etcd35) {
        _cleanup_json_ json_t *l = J(members35_reply), *a = J(member_add35_reply), *st = J(status35_reply),
                              *w = J(watch_compacted35_msg), *ok = J("{" HDR35 "}");
        struct etcd_error err = {0};
        struct etcd_members ms;
        struct etcd_status s;
        struct etcd_watch_msg m;
        uint64_t id = 0;

        ck_assert_int_eq(etcd_parse_members(l, &ms, &err), 0);
        ck_assert(ms.cluster_id == 6001611773266757492ULL);
        ck_assert(ms.member_id == 13049071153751544597ULL);
        ck_assert_uint_eq(ms.n, 2);
        ck_assert_str_eq(ms.m[0].name, "p");
        ck_assert(!ms.m[0].learner);
        ck_assert_str_eq(ms.m[0].client_urls[0], "http://127.0.0.1:24379");
        ck_assert(ms.m[1].id == 16323896634489817941ULL);
        ck_assert(ms.m[1].learner);
        ck_assert_str_eq(ms.m[1].name, "");
        ck_assert_uint_eq(strv_length(ms.m[1].client_urls), 0);
        etcd_members_clear(&ms);

        ck_assert_int_eq(etcd_parse_member_add(a, &id, &ms, &err), 0);
        ck_assert(id == 16323896634489817941ULL);
        ck_assert_uint_eq(ms.n, 2);
        ck_assert(ms.m[1].learner);
        etcd_members_clear(&ms);

        ck_assert_int_eq(etcd_parse_status(st, &s, &err), 0);
        ck_assert(s.member_id == 13049071153751544597ULL);
        ck_assert(s.leader == 13049071153751544597ULL);
        ck_assert_int_eq(s.raft_index, 6);
        ck_assert_int_eq(s.db_size, 20480);
        ck_assert_int_eq(s.db_size_in_use, 16384); /* 3.5: the same name */
        ck_assert_int_eq(s.revision, 3);
        ck_assert(!s.learner);
        ck_assert_str_eq(s.version, "3.5.16");
        etcd_status_clear(&s);

        ck_assert_int_eq(etcd_parse_watch_msg(w, &m, &err), 0);
        ck_assert(m.canceled);
        ck_assert(!m.created);
        ck_assert_int_eq(m.compact_revision, 3);
        ck_assert_ptr_null(m.cancel_reason);
        etcd_watch_msg_clear(&m);

        static const struct {
                const char *reply;
                int code;
                const char *msg;
        } errs[] = {
            {error35_not_found, 5, "etcdserver: member not found"},
            {error35_future_rev, 11, "etcdserver: mvcc: required revision is a future revision"},
            {error35_peer_exists, 9, "etcdserver: Peer URLs already exists"},
            {error35_bad_json, 3, "invalid character 'g' looking for beginning of value"},
        };
        for (size_t i = 0; i < ELEMENTSOF(errs); i++) {
                _cleanup_json_ json_t *e = J(errs[i].reply);
                ck_assert_int_eq(etcd_parse_error(e, &err), 1);
                ck_assert_int_eq(err.code, errs[i].code);
                ck_assert_str_eq(err.msg, errs[i].msg);
        }
        /* a success reply is no error */
        ck_assert_int_eq(etcd_parse_error(ok, &err), 0);
        ck_assert_int_eq(etcd_parse_error(st, &err), 0);
}
END_TEST

START_TEST(test_json_int) {
        _cleanup_json_ json_t *j = J(
            "{\"a\":\"12\",\"b\":13,\"c\":\"x\",\"d\":1.5,\"e\":\"9223372036854775808\",\"f\":\"-1\","
            "\"g\":\"18446744073709551615\",\"h\":\"18446744073709551616\",\"i\":\"\",\"j\":null,\"k\":-3}");
        int64_t v;
        uint64_t u;
        ck_assert_int_eq(etcd_json_int64(j, "a", &v), 0);
        ck_assert_int_eq(v, 12);
        ck_assert_int_eq(etcd_json_int64(j, "b", &v), 0);
        ck_assert_int_eq(v, 13);
        ck_assert_int_eq(etcd_json_int64(j, "missing", &v), 0);
        ck_assert_int_eq(v, 0);
        ck_assert_int_lt(etcd_json_int64(j, "c", &v), 0);
        ck_assert_int_lt(etcd_json_int64(j, "d", &v), 0);
        ck_assert_int_lt(etcd_json_int64(j, "e", &v), 0);
        ck_assert_int_lt(etcd_json_int64(j, "i", &v), 0);
        ck_assert_int_lt(etcd_json_int64(j, "j", &v), 0);
        ck_assert_int_eq(etcd_json_int64(j, "f", &v), 0);
        ck_assert_int_eq(v, -1);
        ck_assert_int_eq(etcd_json_uint64(j, "g", &u), 0);
        ck_assert(u == UINT64_MAX);
        ck_assert_int_lt(etcd_json_uint64(j, "h", &u), 0);
        ck_assert_int_lt(etcd_json_uint64(j, "f", &u), 0);
        ck_assert_int_lt(etcd_json_uint64(j, "k", &u), 0);
        ck_assert_int_lt(etcd_json_uint64(j, "i", &u), 0);
        ck_assert_int_lt(etcd_json_uint64(j, "c", &u), 0);
        ck_assert_int_eq(etcd_json_uint64(j, "b", &u), 0);
        ck_assert(u == 13);
}
END_TEST

/* ---------------- malformed replies ---------------- */

/* Each adapter parses and frees; returns the parser's result. */
static int p_range(json_t *j, struct etcd_error *err) {
        struct etcd_kvs r;
        int k = etcd_parse_range(j, &r, err);
        if (k == 0)
                etcd_kvs_clear(&r);
        return k;
}
static int p_txn(json_t *j, struct etcd_error *err) {
        bool s;
        return etcd_parse_txn(j, &s, err);
}
static int p_txn_range(json_t *j, struct etcd_error *err) {
        struct etcd_kvs r;
        int k = etcd_parse_txn_range(j, 0, &r, err);
        if (k == 0)
                etcd_kvs_clear(&r);
        return k;
}
static int p_grant(json_t *j, struct etcd_error *err) {
        int64_t id, ttl;
        return etcd_parse_lease_grant(j, &id, &ttl, err);
}
static int p_keepalive(json_t *j, struct etcd_error *err) {
        int64_t ttl;
        return etcd_parse_lease_keepalive(j, &ttl, err);
}
static int p_members(json_t *j, struct etcd_error *err) {
        struct etcd_members ms;
        int k = etcd_parse_members(j, &ms, err);
        if (k == 0)
                etcd_members_clear(&ms);
        return k;
}
static int p_member_add(json_t *j, struct etcd_error *err) {
        struct etcd_members ms;
        uint64_t id;
        int k = etcd_parse_member_add(j, &id, &ms, err);
        if (k == 0)
                etcd_members_clear(&ms);
        return k;
}
static int p_status(json_t *j, struct etcd_error *err) {
        struct etcd_status s;
        int k = etcd_parse_status(j, &s, err);
        if (k == 0)
                etcd_status_clear(&s);
        return k;
}
static int p_watch(json_t *j, struct etcd_error *err) {
        struct etcd_watch_msg m;
        int k = etcd_parse_watch_msg(j, &m, err);
        if (k == 0)
                etcd_watch_msg_clear(&m);
        return k;
}
static int p_error(json_t *j, struct etcd_error *err) {
        int k = etcd_parse_error(j, err);
        return k == 1 ? 0 : k;
}

static const struct parser {
        const char *name;
        int (*parse)(json_t *j, struct etcd_error *err);
        const char *good;
} parsers[] = {
    {"range", p_range, range_reply},
    {"txn", p_txn, txn_ok_reply},
    {"txn_range", p_txn_range, txn_ok_reply},
    {"lease_grant", p_grant, lease_grant_reply},
    {"keepalive", p_keepalive, keepalive_reply},
    {"members", p_members, members_reply},
    {"member_add", p_member_add, member_add_reply},
    {"status", p_status, status_reply},
    {"watch", p_watch, watch_events_msg},
    {"watch_compacted", p_watch, watch_compacted_msg},
    {"error", p_error, error_reply},
};

/* Run one parser on j: it must succeed, or fail with -EBADMSG and a message. */
static int check_parse(const struct parser *p, json_t *j, const char *what) {
        struct etcd_error err = {.code = 0, .msg = ""};
        int k = p->parse(j, &err);
        ck_assert_msg(k == 0 || k == -EBADMSG, "%s on %s returned %d", p->name, what, k);
        if (k < 0) {
                ck_assert_msg(err.msg[0] != 0, "%s on %s: -EBADMSG without a message", p->name, what);
                ck_assert_int_eq(err.code, ETCD_ERR_PROTOCOL);
        }
        return k;
}

START_TEST(test_wrong_toplevel) {
        static const char *const tops[] = {"null", "true", "1", "\"s\"", "[]", "[{}]", "{}", "1.5"};
        for (size_t i = 0; i < ELEMENTSOF(parsers); i++) {
                for (size_t t = 0; t < ELEMENTSOF(tops); t++) {
                        _cleanup_json_ json_t *j = J(tops[t]);
                        int k = check_parse(&parsers[i], j, tops[t]);
                        if (parsers[i].parse != p_error && parsers[i].parse != p_keepalive)
                                ck_assert_msg(k == -EBADMSG, "%s accepted %s", parsers[i].name, tops[t]);
                }
                check_parse(&parsers[i], NULL, "NULL");
        }
}
END_TEST

/* Replace the n-th node (depth first) of root with repl (NULL: delete it). */
static bool mutate(json_t *node, size_t *n, json_t *repl) {
        if (json_is_object(node)) {
                const char *k;
                json_t *v;
                void *tmp;
                json_object_foreach_safe(node, tmp, k, v) {
                        if ((*n)-- == 0) {
                                if (repl)
                                        json_object_set(node, k, repl);
                                else
                                        json_object_del(node, k);
                                return true;
                        }
                        if (mutate(v, n, repl))
                                return true;
                }
        } else if (json_is_array(node)) {
                for (size_t i = 0; i < json_array_size(node); i++) {
                        if ((*n)-- == 0) {
                                if (repl)
                                        json_array_set(node, i, repl);
                                else
                                        json_array_remove(node, i);
                                return true;
                        }
                        if (mutate(json_array_get(node, i), n, repl))
                                return true;
                }
        }
        return false;
}

/* Every field of every real reply replaced by every wrong type, or removed:
 * no crash, no leak, and either success or -EBADMSG with a message. */
START_TEST(test_mutations) {
        const char *const repls[] = {NULL,
                                     "null",
                                     "true",
                                     "false",
                                     "0",
                                     "-1",
                                     "1.5",
                                     "\"\"",
                                     "\"!\"",
                                     "\"-5\"",
                                     "[]",
                                     "{}",
                                     "[null]",
                                     "[\"Zm9v\"]",
                                     "{\"a\":1}",
                                     "\"Zm9\"",
                                     "\"99999999999999999999\""};
        size_t total = 0, bad = 0;
        for (size_t i = 0; i < ELEMENTSOF(parsers); i++) {
                for (size_t node = 0;; node++) {
                        bool any = false;
                        for (size_t r = 0; r < ELEMENTSOF(repls); r++) {
                                _cleanup_json_ json_t *j = J(parsers[i].good);
                                _cleanup_json_ json_t *rv = repls[r] ? J(repls[r]) : NULL;
                                size_t n = node;
                                if (!mutate(j, &n, rv))
                                        break;
                                any = true;
                                char what[128];
                                snprintf(what, sizeof what, "node %zu := %s", node,
                                         repls[r] ? repls[r] : "(deleted)");
                                if (check_parse(&parsers[i], j, what) < 0)
                                        bad++;
                                total++;
                        }
                        if (!any)
                                break;
                }
        }
        ck_assert_uint_gt(total, 1000);
        ck_assert_uint_gt(bad, 300);
}
END_TEST

/* Every prefix of every real reply that still parses as JSON (none should,
 * except at the very end) and every truncated string value. */
START_TEST(test_truncated) {
        for (size_t i = 0; i < ELEMENTSOF(parsers); i++) {
                const char *g = parsers[i].good;
                size_t n = strlen(g);
                for (size_t l = 0; l < n; l++) {
                        json_error_t e;
                        json_t *j = json_loadb(g, l, JSON_DECODE_ANY, &e);
                        if (j) {
                                check_parse(&parsers[i], j, "prefix");
                                json_decref(j);
                        }
                }
        }
        /* base64 cut in the middle, int64 cut */
        struct etcd_error err = {0};
        struct etcd_kvs r;
        _cleanup_json_ json_t *j = J("{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"Zm9\"}]}");
        ck_assert_int_eq(etcd_parse_range(j, &r, &err), -EBADMSG);
        ck_assert(strstr(err.msg, "base64"));
        _cleanup_json_ json_t *j2 =
            J("{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"Zm9v\",\"value\":\"YmF\"}]}");
        ck_assert_int_eq(etcd_parse_range(j2, &r, &err), -EBADMSG);
        _cleanup_json_ json_t *j3 = J("{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"value\":\"YmFy\"}]}");
        ck_assert_int_eq(etcd_parse_range(j3, &r, &err), -EBADMSG);
        ck_assert(strstr(err.msg, "key"));
        _cleanup_json_ json_t *j4 = J("{\"header\":{\"revision\":\"3x\"}}");
        ck_assert_int_eq(etcd_parse_range(j4, &r, &err), -EBADMSG);
        _cleanup_json_ json_t *j5 = J("{\"header\":{\"revision\":\"3\"},\"kvs\":{}}");
        ck_assert_int_eq(etcd_parse_range(j5, &r, &err), -EBADMSG);
        _cleanup_json_ json_t *j6 = J("{\"header\":{\"revision\":\"3\"},\"events\":[{\"type\":\"EXPIRE\","
                                      "\"kv\":{\"key\":\"Zm9v\"}}]}");
        struct etcd_watch_msg m;
        ck_assert_int_eq(etcd_parse_watch_msg(j6, &m, &err), -EBADMSG);
        ck_assert(strstr(err.msg, "EXPIRE"));
}
END_TEST

/* Huge arrays parse (or fail cleanly at the last element) without leaks. */
START_TEST(test_huge) {
        const size_t N = 100000;
        struct etcd_error err = {0};
        json_t *kvs = json_array();
        for (size_t i = 0; i < N; i++)
                json_array_append_new(
                    kvs, json_pack("{s:s, s:s, s:s}", "key", "a2V5", "value", "dmFs", "mod_revision", "7"));
        _cleanup_json_ json_t *j =
            json_pack("{s:{s:s}, s:o, s:s}", "header", "revision", "9", "kvs", kvs, "count", "100000");
        struct etcd_kvs r;
        ck_assert_int_eq(etcd_parse_range(j, &r, &err), 0);
        ck_assert_uint_eq(r.n, N);
        ck_assert_str_eq(r.kvs[N - 1].value, "val");
        etcd_kvs_clear(&r);
        json_array_append_new(kvs, json_pack("{s:i}", "key", 5));
        ck_assert_int_eq(etcd_parse_range(j, &r, &err), -EBADMSG);

        /* the same list as watch events */
        json_t *evs = json_array();
        for (size_t i = 0; i < N; i++)
                json_array_append_new(evs,
                                      json_pack("{s:s, s:{s:s}}", "type", "DELETE", "kv", "key", "a2V5"));
        _cleanup_json_ json_t *w = json_pack("{s:{s:s}, s:o}", "header", "revision", "9", "events", evs);
        struct etcd_watch_msg m;
        ck_assert_int_eq(etcd_parse_watch_msg(w, &m, &err), 0);
        ck_assert_uint_eq(m.n_events, N);
        etcd_watch_msg_clear(&m);
        json_array_append_new(evs, json_pack("{s:s}", "type", "PUT"));
        ck_assert_int_eq(etcd_parse_watch_msg(w, &m, &err), -EBADMSG);

        /* members */
        json_t *ms = json_array();
        for (size_t i = 1; i <= N / 10; i++)
                json_array_append_new(
                    ms, json_pack("{s:I, s:[s]}", "ID", (json_int_t)i, "peerURLs", "http://x:1"));
        _cleanup_json_ json_t *mj = json_pack("{s:{}, s:o}", "header", "members", ms);
        struct etcd_members mm;
        ck_assert_int_eq(etcd_parse_members(mj, &mm, &err), 0);
        ck_assert_uint_eq(mm.n, N / 10);
        etcd_members_clear(&mm);
        json_array_append_new(ms, json_pack("{s:s}", "ID", "0"));
        ck_assert_int_eq(etcd_parse_members(mj, &mm, &err), -EBADMSG);

        /* a huge string value */
        size_t big = 8 << 20;
        char *raw = malloc(big);
        memset(raw, 'x', big);
        char *b = b64_encode(raw, big);
        free(raw);
        _cleanup_json_ json_t *bj = json_pack("{s:{s:s}, s:[{s:s, s:s}]}", "header", "revision", "1", "kvs",
                                              "key", "YQ==", "value", b);
        free(b);
        ck_assert_int_eq(etcd_parse_range(bj, &r, &err), 0);
        ck_assert_uint_eq(r.kvs[0].value_len, big);
        etcd_kvs_clear(&r);
}
END_TEST

/* ---------------- request bodies ---------------- */

static void assert_json(json_t *j, const char *want) {
        _cleanup_json_ json_t *w = J(want);
        char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        ck_assert_msg(json_equal(j, w), "got %s, want %s", got, want);
        free(got);
        json_decref(j);
}

START_TEST(test_requests) {
        /* "/a" -> "L2E=", prefix end "/b" -> "L2I=" */
        assert_json(etcd_req_range("/a", false, 0, false), "{\"key\":\"L2E=\"}");
        assert_json(etcd_req_range("/a", true, 0, false), "{\"key\":\"L2E=\",\"range_end\":\"L2I=\"}");
        assert_json(etcd_req_range("/a", true, 12, true),
                    "{\"key\":\"L2E=\",\"range_end\":\"L2I=\",\"revision\":\"12\",\"keys_only\":true}");
        /* "/_mgmt/" -> "/_mgmt0" */
        assert_json(etcd_req_range("/_mgmt/", true, 0, false),
                    "{\"key\":\"L19tZ210Lw==\",\"range_end\":\"L19tZ210MA==\"}");
        /* a trailing 0xff byte carries: "a\xff" -> "b" */
        assert_json(etcd_req_range("a\xff", true, 0, false), "{\"key\":\"Yf8=\",\"range_end\":\"Yg==\"}");
        assert_json(etcd_req_put("k", "v", 0), "{\"key\":\"aw==\",\"value\":\"dg==\"}");
        assert_json(etcd_req_put("k", "", 7), "{\"key\":\"aw==\",\"value\":\"\",\"lease\":\"7\"}");
        assert_json(etcd_req_delete("/a", true), "{\"key\":\"L2E=\",\"range_end\":\"L2I=\"}");
        assert_json(etcd_req_delete("/a", false), "{\"key\":\"L2E=\"}");
        assert_json(etcd_req_lease_grant(2), "{\"TTL\":\"2\"}");
        assert_json(etcd_req_lease_id(1353509812213932298LL), "{\"ID\":\"1353509812213932298\"}");
        assert_json(etcd_req_member_id(10070195118145360816ULL), "{\"ID\":\"10070195118145360816\"}");
        assert_json(etcd_req_move_leader(10070195118145360816ULL),
                    "{\"targetID\":\"10070195118145360816\"}");
        char *urls[] = {"http://127.0.0.1:2380", "http://10.0.0.1:2380", NULL};
        assert_json(
            etcd_req_member_add(urls, true),
            "{\"peerURLs\":[\"http://127.0.0.1:2380\",\"http://10.0.0.1:2380\"],\"isLearner\":true}");
        assert_json(
            etcd_req_member_add(urls, false),
            "{\"peerURLs\":[\"http://127.0.0.1:2380\",\"http://10.0.0.1:2380\"],\"isLearner\":false}");
}
END_TEST

START_TEST(test_txn_request) {
        json_t *cmp = json_array(), *succ = json_array(), *fail = json_array();
        json_array_append_new(cmp, etcd_cmp_version("/d/2", "=", 0));
        json_array_append_new(cmp, etcd_cmp_version("/d/1", ">", 0));
        json_array_append_new(cmp, etcd_cmp_value("/h", "=", "abc"));
        json_array_append_new(cmp, etcd_cmp_create("k", "<", 5));
        json_array_append_new(cmp, etcd_cmp_mod("k", "!=", 6));
        json_array_append_new(cmp, etcd_cmp_lease("k", "=", 99));
        json_array_append_new(succ, etcd_op_put("k", "v", 0));
        json_array_append_new(succ, etcd_op_delete("/p/", true));
        json_array_append_new(fail, etcd_op_range("k", false));
        assert_json(etcd_req_txn(cmp, succ, fail),
                    "{\"compare\":["
                    "{\"key\":\"L2QvMg==\",\"result\":\"EQUAL\",\"target\":\"VERSION\",\"version\":\"0\"},"
                    "{\"key\":\"L2QvMQ==\",\"result\":\"GREATER\",\"target\":\"VERSION\",\"version\":\"0\"},"
                    "{\"key\":\"L2g=\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"YWJj\"},"
                    "{\"key\":\"aw==\",\"result\":\"LESS\",\"target\":\"CREATE\",\"create_revision\":\"5\"},"
                    "{\"key\":\"aw==\",\"result\":\"NOT_EQUAL\",\"target\":\"MOD\",\"mod_revision\":\"6\"},"
                    "{\"key\":\"aw==\",\"result\":\"EQUAL\",\"target\":\"LEASE\",\"lease\":\"99\"}],"
                    "\"success\":[{\"request_put\":{\"key\":\"aw==\",\"value\":\"dg==\"}},"
                    "{\"request_delete_range\":{\"key\":\"L3Av\",\"range_end\":\"L3Aw\"}}],"
                    "\"failure\":[{\"request_range\":{\"key\":\"aw==\"}}]}");
        assert_json(etcd_req_txn(NULL, NULL, NULL), "{\"compare\":[],\"success\":[],\"failure\":[]}");
}
END_TEST

static Suite *etcd_json_suite(void) {
        Suite *s = suite_create("etcd_json");
        TCase *tc = tcase_create("replies");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_range);
        tcase_add_test(tc, test_txn);
        tcase_add_test(tc, test_lease);
        tcase_add_test(tc, test_members);
        tcase_add_test(tc, test_status);
        tcase_add_test(tc, test_watch_msg);
        tcase_add_test(tc, test_error);
        tcase_add_test(tc, test_etcd35);
        tcase_add_test(tc, test_json_int);
        suite_add_tcase(s, tc);
        TCase *tm = tcase_create("malformed");
        tcase_set_timeout(tm, 300);
        tcase_add_test(tm, test_wrong_toplevel);
        tcase_add_test(tm, test_mutations);
        tcase_add_test(tm, test_truncated);
        tcase_add_test(tm, test_huge);
        suite_add_tcase(s, tm);
        TCase *tr = tcase_create("requests");
        tcase_add_test(tr, test_requests);
        tcase_add_test(tr, test_txn_request);
        suite_add_tcase(s, tr);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(etcd_json_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
