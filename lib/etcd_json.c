/* etcd_json.c: the pure half of the etcd client: request bodies for the
 * gateway (keys and values base64, int64 as strings) and the parsers of every
 * reply shape (tests/unit/test_etcd_json.c). No I/O. */
#include <stdio.h>

#include "etcd_internal.h"
#include "strv.h"
#include "util.h"

/* Fill err (when given) with a code and a formatted message. */
void etcd_set_err(struct etcd_error *err, int code, const char *fmt, ...) {
        va_list ap;
        if (!err)
                return;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
}

/* ---------------- request bodies ---------------- */

/* The key just past every key with this prefix. */
char *etcd_prefix_end(const char *key) {
        size_t n = strlen(key);
        char *e = strdup(key);
        if (!e)
                return NULL;
        while (n > 0) {
                if ((unsigned char)e[n - 1] < 0xff) {
                        e[n - 1]++;
                        e[n] = 0;
                        return e;
                }
                n--;
        }
        free(e);
        return strdup("\0"); /* whole keyspace: not used here */
}

static json_t *jb64(const char *s) {
        _cleanup_free_ char *b = b64_encode(s, strlen(s));
        return b ? json_string(b) : NULL;
}

static json_t *jint(int64_t v) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v);
        return json_string(buf);
}

static json_t *juint(uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        return json_string(buf);
}

static json_t *key_range(const char *key, bool prefix) {
        json_t *o = json_object();
        json_object_set_new(o, "key", jb64(key));
        if (prefix) {
                _cleanup_free_ char *e = etcd_prefix_end(key);
                json_object_set_new(o, "range_end", jb64(e ? e : ""));
        }
        return o;
}

json_t *etcd_req_range(const char *key, bool prefix, int64_t revision, bool keys_only) {
        json_t *o = key_range(key, prefix);
        if (revision > 0)
                json_object_set_new(o, "revision", jint(revision));
        if (keys_only)
                json_object_set_new(o, "keys_only", json_true());
        return o;
}

json_t *etcd_req_put(const char *key, const char *value, int64_t lease) {
        json_t *o = json_object();
        json_object_set_new(o, "key", jb64(key));
        json_object_set_new(o, "value", jb64(value));
        if (lease)
                json_object_set_new(o, "lease", jint(lease));
        return o;
}

json_t *etcd_req_delete(const char *key, bool prefix) {
        return key_range(key, prefix);
}

json_t *etcd_req_lease_grant(int64_t ttl) {
        return json_pack("{s:o}", "TTL", jint(ttl));
}

json_t *etcd_req_lease_id(int64_t id) {
        return json_pack("{s:o}", "ID", jint(id));
}

json_t *etcd_req_member_add(char *const *peer_urls, bool learner) {
        json_t *a = json_array();
        for (size_t i = 0; peer_urls && peer_urls[i]; i++)
                json_array_append_new(a, json_string(peer_urls[i]));
        return json_pack("{s:o, s:b}", "peerURLs", a, "isLearner", learner);
}

json_t *etcd_req_member_id(uint64_t id) {
        return json_pack("{s:o}", "ID", juint(id));
}

json_t *etcd_req_move_leader(uint64_t target) {
        return json_pack("{s:o}", "targetID", juint(target));
}

static const char *cmp_result(const char *op) {
        if (streq(op, "="))
                return "EQUAL";
        if (streq(op, "!="))
                return "NOT_EQUAL";
        if (streq(op, ">"))
                return "GREATER";
        return "LESS";
}

static json_t *cmp_new(const char *key, const char *op, const char *target, const char *field, json_t *v) {
        json_t *o = json_object();
        json_object_set_new(o, "key", jb64(key));
        json_object_set_new(o, "result", json_string(cmp_result(op)));
        json_object_set_new(o, "target", json_string(target));
        json_object_set_new(o, field, v);
        return o;
}

json_t *etcd_cmp_value(const char *key, const char *op, const char *value) {
        return cmp_new(key, op, "VALUE", "value", jb64(value));
}
json_t *etcd_cmp_version(const char *key, const char *op, int64_t version) {
        return cmp_new(key, op, "VERSION", "version", jint(version));
}
json_t *etcd_cmp_create(const char *key, const char *op, int64_t rev) {
        return cmp_new(key, op, "CREATE", "create_revision", jint(rev));
}
json_t *etcd_cmp_mod(const char *key, const char *op, int64_t rev) {
        return cmp_new(key, op, "MOD", "mod_revision", jint(rev));
}
json_t *etcd_cmp_lease(const char *key, const char *op, int64_t lease) {
        return cmp_new(key, op, "LEASE", "lease", jint(lease));
}

json_t *etcd_op_put(const char *key, const char *value, int64_t lease) {
        return json_pack("{s:o}", "request_put", etcd_req_put(key, value, lease));
}
json_t *etcd_op_delete(const char *key, bool prefix) {
        return json_pack("{s:o}", "request_delete_range", etcd_req_delete(key, prefix));
}
json_t *etcd_op_range(const char *key, bool prefix) {
        return json_pack("{s:o}", "request_range", etcd_req_range(key, prefix, 0, false));
}

json_t *etcd_req_txn(json_t *compare, json_t *success, json_t *failure) {
        json_t *o = json_object();
        json_object_set_new(o, "compare", compare ? compare : json_array());
        json_object_set_new(o, "success", success ? success : json_array());
        json_object_set_new(o, "failure", failure ? failure : json_array());
        return o;
}

/* ---------------- reply parsing ---------------- */

int etcd_json_int64(json_t *obj, const char *field, int64_t *ret) {
        json_t *v = obj ? json_object_get(obj, field) : NULL;
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return 0;
        }
        if (json_is_string(v))
                return parse_int64(json_string_value(v), ret);
        return -EBADMSG;
}

int etcd_json_uint64(json_t *obj, const char *field, uint64_t *ret) {
        json_t *v = obj ? json_object_get(obj, field) : NULL;
        char *end;
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                *ret = (uint64_t)json_integer_value(v);
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        const char *s = json_string_value(v);
        if (!*s || *s == '-')
                return -EBADMSG;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (errno || *end)
                return -EBADMSG;
        *ret = u;
        return 0;
}

#define BAD(err, ...)                                                                                       \
        ({                                                                                                  \
                etcd_set_err((err), ETCD_ERR_PROTOCOL, __VA_ARGS__);                                        \
                -EBADMSG;                                                                                   \
        })

int etcd_parse_error(json_t *reply, struct etcd_error *err) {
        json_t *e, *code, *msg;

        if (!json_is_object(reply))
                return 0;
        e = json_object_get(reply, "error");
        if (!e) {
                /* the gateway of etcd 3.5 and later: {"code": 5, "message": "..."} */
                code = json_object_get(reply, "code");
                msg = json_object_get(reply, "message");
                if (!json_is_integer(code) || !json_is_string(msg))
                        return 0;
        } else if (json_is_object(e)) { /* stream error shape */
                code = json_object_get(e, "grpc_code");
                if (!code)
                        code = json_object_get(e, "code");
                msg = json_object_get(e, "message");
        } else {
                code = json_object_get(reply, "code");
                msg = json_is_string(e) ? e : json_object_get(reply, "message");
        }
        etcd_set_err(
            err, json_is_integer(code) && json_integer_value(code) > 0 ? (int)json_integer_value(code) : 2,
            "%s", json_is_string(msg) ? json_string_value(msg) : "unknown etcd error");
        return 1;
}

int etcd_parse_cluster_id(json_t *reply, uint64_t *ret) {
        json_t *h = json_object_get(reply, "header");
        uint64_t id = 0;
        if (!json_is_object(h) || etcd_json_uint64(h, "cluster_id", &id) < 0 || id == 0)
                return -EBADMSG;
        *ret = id;
        return 0;
}

int etcd_parse_revision(json_t *reply, int64_t *ret) {
        json_t *h = json_object_get(reply, "header");
        if (!json_is_object(h))
                return -EBADMSG;
        return etcd_json_int64(h, "revision", ret);
}

void etcd_kv_clear(struct etcd_kv *kv) {
        free(kv->key);
        free(kv->value);
        *kv = (struct etcd_kv){0};
}

void etcd_kvs_clear(struct etcd_kvs *r) {
        for (size_t i = 0; i < r->n; i++)
                etcd_kv_clear(&r->kvs[i]);
        free(r->kvs);
        *r = (struct etcd_kvs){0};
}

static int b64_field(json_t *o, const char *f, bool required, char **ret, size_t *ret_len,
                     struct etcd_error *err) {
        json_t *v = json_object_get(o, f);
        if (!v) {
                if (required)
                        return BAD(err, "missing '%s' in key-value", f);
                *ret = strdup("");
                if (ret_len)
                        *ret_len = 0;
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_is_string(v) || b64_decode(json_string_value(v), ret, ret_len) < 0)
                return BAD(err, "'%s' is not valid base64", f);
        return 0;
}

int etcd_parse_kv(json_t *j, struct etcd_kv *kv, struct etcd_error *err) {
        struct etcd_kv k = {0};

        if (!json_is_object(j))
                return BAD(err, "key-value is not an object");
        if (b64_field(j, "key", true, &k.key, NULL, err) < 0)
                return -EBADMSG;
        if (b64_field(j, "value", false, &k.value, &k.value_len, err) < 0) {
                etcd_kv_clear(&k);
                return -EBADMSG;
        }
        if (etcd_json_int64(j, "create_revision", &k.create_revision) < 0 ||
            etcd_json_int64(j, "mod_revision", &k.mod_revision) < 0 ||
            etcd_json_int64(j, "version", &k.version) < 0 || etcd_json_int64(j, "lease", &k.lease) < 0) {
                etcd_kv_clear(&k);
                return BAD(err, "bad revision, version or lease in key-value");
        }
        *kv = k;
        return 0;
}

static int parse_kvs_into(json_t *reply, struct etcd_kvs *r, struct etcd_error *err) {
        json_t *kvs = json_object_get(reply, "kvs");

        if (etcd_parse_revision(reply, &r->revision) < 0)
                return BAD(err, "reply has no valid header revision");
        if (etcd_json_int64(reply, "count", &r->count) < 0)
                return BAD(err, "bad 'count' in range reply");
        r->more = json_is_true(json_object_get(reply, "more"));
        if (!kvs)
                return 0;
        if (!json_is_array(kvs))
                return BAD(err, "'kvs' is not an array");
        r->kvs = calloc(json_array_size(kvs) + 1, sizeof(struct etcd_kv));
        if (!r->kvs)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(kvs); i++) {
                if (etcd_parse_kv(json_array_get(kvs, i), &r->kvs[i], err) < 0)
                        return -EBADMSG;
                r->n++;
        }
        return 0;
}

int etcd_parse_range(json_t *reply, struct etcd_kvs *ret, struct etcd_error *err) {
        struct etcd_kvs r = {0};
        if (!json_is_object(reply))
                return BAD(err, "range reply is not an object");
        int k = parse_kvs_into(reply, &r, err);
        if (k < 0) {
                etcd_kvs_clear(&r);
                return k;
        }
        *ret = r;
        return 0;
}

int etcd_parse_txn(json_t *reply, bool *ret_succeeded, struct etcd_error *err) {
        json_t *s;
        int64_t rev;
        if (!json_is_object(reply) || etcd_parse_revision(reply, &rev) < 0)
                return BAD(err, "txn reply has no valid header");
        s = json_object_get(reply, "succeeded");
        if (s && !json_is_boolean(s))
                return BAD(err, "'succeeded' is not a boolean");
        *ret_succeeded = json_is_true(s);
        return 0;
}

int etcd_parse_txn_range(json_t *reply, size_t i, struct etcd_kvs *ret, struct etcd_error *err) {
        json_t *resps = json_object_get(reply, "responses");
        json_t *rr;
        if (!json_is_array(resps) || i >= json_array_size(resps))
                return BAD(err, "txn reply has no response %zu", i);
        rr = json_object_get(json_array_get(resps, i), "response_range");
        if (!json_is_object(rr))
                return BAD(err, "txn response %zu is not a range", i);
        /* a range response inside a txn carries its own header */
        if (!json_object_get(rr, "header"))
                json_object_set(rr, "header", json_object_get(reply, "header"));
        return etcd_parse_range(rr, ret, err);
}

int etcd_parse_lease_grant(json_t *reply, int64_t *ret_id, int64_t *ret_ttl, struct etcd_error *err) {
        int64_t id, ttl;
        if (!json_is_object(reply) || etcd_json_int64(reply, "ID", &id) < 0 ||
            etcd_json_int64(reply, "TTL", &ttl) < 0 || id == 0)
                return BAD(err, "lease grant reply has no valid ID/TTL");
        json_t *e = json_object_get(reply, "error");
        if (json_is_string(e) && *json_string_value(e))
                return BAD(err, "lease grant failed: %s", json_string_value(e));
        *ret_id = id;
        if (ret_ttl)
                *ret_ttl = ttl;
        return 0;
}

int etcd_parse_lease_keepalive(json_t *reply, int64_t *ret_ttl, struct etcd_error *err) {
        json_t *r = json_object_get(reply, "result");
        int64_t ttl;
        if (!json_is_object(r))
                return BAD(err, "keepalive reply has no 'result'");
        if (etcd_json_int64(r, "TTL", &ttl) < 0)
                return BAD(err, "keepalive reply has a bad TTL");
        *ret_ttl = ttl; /* 0 (or missing): the lease is gone */
        return 0;
}

void etcd_members_clear(struct etcd_members *ms) {
        for (size_t i = 0; i < ms->n; i++) {
                free(ms->m[i].name);
                strv_free(ms->m[i].peer_urls);
                strv_free(ms->m[i].client_urls);
        }
        free(ms->m);
        *ms = (struct etcd_members){0};
}

static int str_array(json_t *a, char ***ret) {
        char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        if (a && !json_is_array(a)) {
                free(v);
                return -EBADMSG;
        }
        for (size_t i = 0; a && i < json_array_size(a); i++) {
                json_t *s = json_array_get(a, i);
                if (!json_is_string(s) || strv_push(&v, json_string_value(s)) < 0) {
                        strv_free(v);
                        return -EBADMSG;
                }
        }
        *ret = v;
        return 0;
}

static int parse_member(json_t *j, struct etcd_member *m, struct etcd_error *err) {
        json_t *name = json_object_get(j, "name");
        if (!json_is_object(j))
                return BAD(err, "member is not an object");
        if (etcd_json_uint64(j, "ID", &m->id) < 0 || m->id == 0)
                return BAD(err, "member has no valid ID");
        if (name && !json_is_string(name))
                return BAD(err, "member name is not a string");
        m->name = strdup(name ? json_string_value(name) : "");
        if (!m->name)
                return -ENOMEM;
        if (str_array(json_object_get(j, "peerURLs"), &m->peer_urls) < 0 ||
            str_array(json_object_get(j, "clientURLs"), &m->client_urls) < 0)
                return BAD(err, "member URLs are not a list of strings");
        json_t *l = json_object_get(j, "isLearner");
        if (l && !json_is_boolean(l))
                return BAD(err, "isLearner is not a boolean");
        m->learner = json_is_true(l);
        return 0;
}

static int parse_member_list(json_t *reply, struct etcd_members *ms, struct etcd_error *err) {
        json_t *h = json_object_get(reply, "header"), *a = json_object_get(reply, "members");
        if (!json_is_object(h))
                return BAD(err, "member reply has no header");
        if (etcd_json_uint64(h, "cluster_id", &ms->cluster_id) < 0 ||
            etcd_json_uint64(h, "member_id", &ms->member_id) < 0 ||
            etcd_json_int64(h, "revision", &ms->revision) < 0)
                return BAD(err, "member reply header has bad ids");
        if (a && !json_is_array(a))
                return BAD(err, "'members' is not an array");
        ms->m = calloc(json_array_size(a) + 1, sizeof(struct etcd_member));
        if (!ms->m)
                return -ENOMEM;
        for (size_t i = 0; a && i < json_array_size(a); i++) {
                ms->n++;
                if (parse_member(json_array_get(a, i), &ms->m[i], err) < 0)
                        return -EBADMSG;
        }
        return 0;
}

int etcd_parse_members(json_t *reply, struct etcd_members *ret, struct etcd_error *err) {
        struct etcd_members ms = {0};
        if (!json_is_object(reply))
                return BAD(err, "member list reply is not an object");
        int r = parse_member_list(reply, &ms, err);
        if (r < 0) {
                etcd_members_clear(&ms);
                return r;
        }
        *ret = ms;
        return 0;
}

int etcd_parse_member_add(json_t *reply, uint64_t *ret_id, struct etcd_members *ret,
                          struct etcd_error *err) {
        json_t *m = json_object_get(reply, "member");
        uint64_t id;
        if (!json_is_object(m) || etcd_json_uint64(m, "ID", &id) < 0 || id == 0)
                return BAD(err, "member add reply has no new member ID");
        if (ret && etcd_parse_members(reply, ret, err) < 0)
                return -EBADMSG;
        *ret_id = id;
        return 0;
}

void etcd_status_clear(struct etcd_status *s) {
        free(s->version);
        strv_free(s->errors);
        *s = (struct etcd_status){0};
}

int etcd_parse_status(json_t *reply, struct etcd_status *ret, struct etcd_error *err) {
        struct etcd_status s = {0};
        json_t *h = json_object_get(reply, "header"), *v = json_object_get(reply, "version");

        if (!json_is_object(reply) || !json_is_object(h))
                return BAD(err, "status reply has no header");
        if (etcd_json_uint64(h, "member_id", &s.member_id) < 0 ||
            etcd_json_uint64(h, "cluster_id", &s.cluster_id) < 0 ||
            etcd_json_uint64(reply, "leader", &s.leader) < 0 ||
            etcd_json_int64(reply, "raftIndex", &s.raft_index) < 0 ||
            etcd_json_int64(reply, "raftTerm", &s.raft_term) < 0 ||
            etcd_json_int64(reply, "dbSize", &s.db_size) < 0 ||
            etcd_json_int64(reply, "dbSizeInUse", &s.db_size_in_use) < 0 ||
            etcd_json_int64(h, "revision", &s.revision) < 0)
                return BAD(err, "status reply has bad numbers");
        if (v && !json_is_string(v))
                return BAD(err, "status version is not a string");
        s.version = strdup(v ? json_string_value(v) : "");
        s.learner = json_is_true(json_object_get(reply, "isLearner"));
        if (!s.version || str_array(json_object_get(reply, "errors"), &s.errors) < 0) {
                etcd_status_clear(&s);
                return BAD(err, "status reply has bad errors list");
        }
        *ret = s;
        return 0;
}

void etcd_watch_msg_clear(struct etcd_watch_msg *m) {
        for (size_t i = 0; i < m->n_events; i++)
                etcd_kv_clear(&m->events[i].kv);
        free(m->events);
        free(m->cancel_reason);
        *m = (struct etcd_watch_msg){0};
}

int etcd_parse_watch_msg(json_t *msg, struct etcd_watch_msg *ret, struct etcd_error *err) {
        struct etcd_watch_msg m = {0};
        json_t *h, *evs, *cr;

        if (!json_is_object(msg))
                return BAD(err, "watch message has no 'result' object");
        h = json_object_get(msg, "header");
        if (!json_is_object(h) || etcd_json_int64(h, "revision", &m.revision) < 0)
                return BAD(err, "watch message has no valid header");
        if (etcd_json_int64(msg, "watch_id", &m.watch_id) < 0 ||
            etcd_json_int64(msg, "compact_revision", &m.compact_revision) < 0)
                return BAD(err, "watch message has bad ids");
        m.created = json_is_true(json_object_get(msg, "created"));
        m.canceled = json_is_true(json_object_get(msg, "canceled"));
        cr = json_object_get(msg, "cancel_reason");
        if (json_is_string(cr))
                m.cancel_reason = strdup(json_string_value(cr));
        evs = json_object_get(msg, "events");
        if (evs && !json_is_array(evs)) {
                etcd_watch_msg_clear(&m);
                return BAD(err, "watch 'events' is not an array");
        }
        m.events = calloc(json_array_size(evs) + 1, sizeof(struct etcd_event));
        if (!m.events) {
                etcd_watch_msg_clear(&m);
                return -ENOMEM;
        }
        for (size_t i = 0; evs && i < json_array_size(evs); i++) {
                json_t *e = json_array_get(evs, i), *t = json_object_get(e, "type");
                if (!json_is_object(e) || (t && !json_is_string(t))) {
                        etcd_watch_msg_clear(&m);
                        return BAD(err, "watch event %zu is malformed", i);
                }
                if (!t || streq(json_string_value(t), "PUT"))
                        m.events[i].type = ETCD_EVENT_PUT;
                else if (streq(json_string_value(t), "DELETE"))
                        m.events[i].type = ETCD_EVENT_DELETE;
                else {
                        etcd_watch_msg_clear(&m);
                        return BAD(err, "watch event %zu has unknown type '%s'", i, json_string_value(t));
                }
                if (etcd_parse_kv(json_object_get(e, "kv"), &m.events[i].kv, err) < 0) {
                        etcd_watch_msg_clear(&m);
                        return -EBADMSG;
                }
                m.n_events++;
        }
        *ret = m;
        return 0;
}

/* Does this error ask for a new token? */
bool etcd_error_is_auth_renewal(int code, const char *msg) {
        if (!msg)
                return false;
        /* 3.4 and 3.5 gateways: {"code": 16, "message": "etcdserver: invalid auth token"};
         * a request without a token after auth was enabled: code 3 "user name is empty";
         * a watch's cancel_reason: "rpc error: code = Unauthenticated desc = ..." */
        if (code == 16 || strstr(msg, "code = Unauthenticated") || strstr(msg, "invalid auth token"))
                return true;
        return strstr(msg, "user name is empty") != NULL;
}
