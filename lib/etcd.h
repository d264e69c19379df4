/* etcd.h: etcd v3 client over the JSON gateway (HTTP POST /v3/...), libcurl
 * multi driven by an sd-event loop, so no call ever blocks a daemon.
 *
 * Recipe:
 *   1. etcd_client_new(event, endpoints, &tls, &c)   (event may be NULL: a
 *      private loop is made; use the *_sync calls from a CLI);
 *   2. build a request body with the etcd_req_* helpers (or json_pack);
 *   3. etcd_call(c, ETCD_RANGE, body, cb, userdata) -> cb(c, err, reply, ud)
 *      once, with err == NULL on success; parse reply with etcd_parse_*;
 *      or etcd_call_sync(c, ETCD_RANGE, body, &reply, &err) from a CLI;
 *   4. etcd_watch_new(c, key, prefix, start_rev, cb, ud, &w) streams events,
 *      reconnecting (next endpoint, backoff) from the last revision seen;
 *   5. etcd_client_free(c) cancels everything; callbacks are not called.
 *
 * Endpoints are tried in order starting with the last that worked; a
 * transport failure moves to the next one. Every call has a timeout.
 * Keys and values are base64 in the gateway; int64 travel as strings. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* gateway paths */
#define ETCD_RANGE "/v3/kv/range"
#define ETCD_PUT "/v3/kv/put"
#define ETCD_DELETE "/v3/kv/deleterange"
#define ETCD_TXN "/v3/kv/txn"
#define ETCD_COMPACT "/v3/kv/compaction"
#define ETCD_LEASE_GRANT "/v3/lease/grant"
#define ETCD_LEASE_KEEPALIVE "/v3/lease/keepalive"
#define ETCD_LEASE_REVOKE "/v3/lease/revoke"
#define ETCD_MEMBER_LIST "/v3/cluster/member/list"
#define ETCD_MEMBER_ADD "/v3/cluster/member/add"
#define ETCD_MEMBER_REMOVE "/v3/cluster/member/remove"
#define ETCD_MEMBER_PROMOTE "/v3/cluster/member/promote"
#define ETCD_STATUS "/v3/maintenance/status"
#define ETCD_MOVE_LEADER "/v3/maintenance/transfer-leadership"
#define ETCD_SNAPSHOT "/v3/maintenance/snapshot"
#define ETCD_DEFRAG "/v3/maintenance/defragment"
#define ETCD_ALARM "/v3/maintenance/alarm"
#define ETCD_AUTHENTICATE "/v3/auth/authenticate"
#define ETCD_AUTH_ENABLE "/v3/auth/enable"
#define ETCD_USER_ADD "/v3/auth/user/add"
#define ETCD_USER_GET "/v3/auth/user/get"
#define ETCD_USER_CHANGE_PW "/v3/auth/user/changepw"
#define ETCD_USER_GRANT "/v3/auth/user/grant"
#define ETCD_ROLE_ADD "/v3/auth/role/add"
#define ETCD_ROLE_GET "/v3/auth/role/get"
#define ETCD_ROLE_GRANT "/v3/auth/role/grant"

/* Error kinds. code > 0 is etcd's gRPC code from its JSON error. */
enum {
        ETCD_ERR_TRANSPORT = -1, /* no endpoint answered (connect, timeout, TLS) */
        ETCD_ERR_PROTOCOL = -2,  /* an answer that is not the JSON we expect */
        ETCD_ERR_HTTP = -3,      /* HTTP error without an etcd JSON body */
};

struct etcd_error {
        int code;
        char msg[512];
};

struct etcd_tls {
        const char *cert_file;
        const char *key_file;
        const char *ca_file;
};

struct etcd_client;
struct etcd_watch;

typedef void (*etcd_cb)(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata);

int etcd_client_new(sd_event *event, char *const *endpoints, const struct etcd_tls *tls,
                    struct etcd_client **ret);
void etcd_client_free(struct etcd_client *c);
static inline void etcd_client_freep(struct etcd_client **c) {
        if (*c)
                etcd_client_free(*c);
}
#define _cleanup_etcd_ _cleanup_(etcd_client_freep)

/* Replace the endpoint list (e.g. from /_mgmt/endpoints/); keeps the current one first if present. */
int etcd_client_set_endpoints(struct etcd_client *c, char *const *endpoints);
char *const *etcd_client_endpoints(struct etcd_client *c);
const char *etcd_client_current_endpoint(struct etcd_client *c);
/* Per-call timeout (default 5 s). */
void etcd_client_set_timeout(struct etcd_client *c, uint64_t usec);
/* Stick to the first endpoint only: no failover (to talk to one specific member). */
void etcd_client_set_pinned(struct etcd_client *c, bool pinned);
sd_event *etcd_client_event(struct etcd_client *c);

/* ---- authentication (etcd_auth.c) ---- */
/* Talk to etcd as user (NULL: anonymous again). Before the first request the
 * client authenticates (/v3/auth/authenticate) and then sends the token with
 * every request and watch; a token etcd no longer accepts (expired, invalid,
 * or auth enabled since) is renewed once per request and the request retried,
 * and a watch resumes from its revision. A refused password fails the
 * waiting requests with "etcd at URL refused user 'NAME': ...". The password
 * is copied and zeroed when replaced or freed; it is never logged. */
int etcd_client_set_auth(struct etcd_client *c, const char *user, const char *password);
/* For the supervisor that enables auth: when etcd says auth is not enabled,
 * go on without a token (instead of failing) until it is. */
void etcd_client_set_auth_optional(struct etcd_client *c, bool optional);
const char *etcd_client_auth_user(struct etcd_client *c);
/* Read a password file: a regular file readable by its owner only (mode &
 * 077 == 0, as ssh wants of keys), one trailing newline stripped, not empty,
 * at most 4096 bytes. 0 with *ret (free with etcd_password_free); -errno
 * with a message naming the file in err. */
int etcd_password_file_read(const char *path, char **ret, char *err, size_t errlen);
void etcd_password_free(char *p); /* zeroes, then frees */
/* --etcd-user NAME --etcd-password-file FILE of the agent and mgmt-deploy:
 * neither given is anonymous (0); one without the other, or a bad file, is
 * an error with a message in err. */
int etcd_client_login_file(struct etcd_client *c, const char *user, const char *password_file, char *err,
                           size_t errlen);
static inline void etcd_password_freep(char **p) {
        etcd_password_free(*p);
        *p = NULL;
}
#define _cleanup_password_ _cleanup_(etcd_password_freep)
/* The subject CN of a PEM certificate (*ret NULL: none); -errno if unreadable. */
int etcd_cert_common_name(const char *cert_file, char **ret);
/* With auth, a client certificate must have no CN: etcd's gateway answers
 * HTTP 400 "CommonName of client sending a request against gateway will be
 * ignored..." to every request that presents one. -EINVAL with a message
 * naming the file and flag when it has one; 0 otherwise. */
int etcd_auth_check_cert(const char *cert_file, const char *flag, char *err, size_t errlen);
/* Does this etcd error (code, message or a watch's cancel reason) mean the
 * token must be renewed? (pure) */
bool etcd_error_is_auth_renewal(int code, const char *msg);

/* Async call: body is consumed (decref'd). cb gets the reply (borrowed). */
int etcd_call(struct etcd_client *c, const char *path, json_t *body, etcd_cb cb, void *userdata);
/* Blocking call for CLIs, running the client's loop until the reply arrives.
 * body is consumed; *ret_reply must be json_decref'd. Returns 0 or -EIO
 * with err filled. */
int etcd_call_sync(struct etcd_client *c, const char *path, json_t *body, json_t **ret_reply,
                   struct etcd_error *err);
/* Like etcd_call but to one given endpoint, without failover (e.g. to ask a
 * specific member for its status). */
int etcd_call_at(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, etcd_cb cb,
                 void *userdata);
/* etcd_call_at with its own timeout instead of the client's (e.g. a defrag). */
int etcd_call_at_timeout(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                         uint64_t timeout_usec, etcd_cb cb, void *userdata);
/* A server stream's raw reply bytes (e.g. ETCD_SNAPSHOT), never buffered
 * whole: data_cb gets each piece as it arrives, from inside libcurl, so it
 * must only consume the bytes (never call into the client); < 0 aborts the
 * transfer. Then done_cb(c, err, NULL, userdata) once, err NULL when the stream
 * ended with HTTP 200. endpoint NULL: the client's endpoints, failing over
 * only before the first byte. No overall timeout: a stream that sends
 * nothing for the client's timeout is aborted. body is consumed. */
typedef int (*etcd_data_cb)(const void *data, size_t len, void *userdata);
int etcd_stream_raw(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                    etcd_data_cb data_cb, void *data_userdata, etcd_cb done_cb, void *userdata);
/* GET endpoint+path (e.g. "/health"), reply parsed as JSON; no failover. */
int etcd_get(struct etcd_client *c, const char *endpoint, const char *path, etcd_cb cb, void *userdata);
/* Run the client's loop until *done becomes true or timeout passes (-ETIMEDOUT). */
int etcd_run_until(struct etcd_client *c, const bool *done, uint64_t timeout_usec);

/* ---- request bodies (new references) ---- */
json_t *etcd_req_range(const char *key, bool prefix, int64_t revision, bool keys_only);
json_t *etcd_req_put(const char *key, const char *value, int64_t lease);
json_t *etcd_req_delete(const char *key, bool prefix);
json_t *etcd_req_lease_grant(int64_t ttl_sec);
json_t *etcd_req_lease_id(int64_t id);
json_t *etcd_req_member_add(char *const *peer_urls, bool learner);
json_t *etcd_req_member_id(uint64_t id);
json_t *etcd_req_move_leader(uint64_t target);

/* The end of the range of keys starting with key (etcd's range_end). */
char *etcd_prefix_end(const char *key);

/* Txn: compare results "=", "!=", ">", "<"; targets value, version, create, mod, lease. */
json_t *etcd_cmp_value(const char *key, const char *op, const char *value);
json_t *etcd_cmp_version(const char *key, const char *op, int64_t version);
json_t *etcd_cmp_create(const char *key, const char *op, int64_t rev);
json_t *etcd_cmp_mod(const char *key, const char *op, int64_t rev);
json_t *etcd_cmp_lease(const char *key, const char *op, int64_t lease);
json_t *etcd_op_put(const char *key, const char *value, int64_t lease);
json_t *etcd_op_delete(const char *key, bool prefix);
json_t *etcd_op_range(const char *key, bool prefix);
/* Steals the three arrays (any may be NULL). */
json_t *etcd_req_txn(json_t *compare, json_t *success, json_t *failure);

/* ---- reply parsing (pure; unit-tested on malformed input) ---- */
struct etcd_kv {
        char *key;
        char *value;
        size_t value_len;
        int64_t create_revision, mod_revision, version, lease;
};

struct etcd_kvs {
        int64_t revision; /* header revision */
        int64_t count;
        bool more;
        struct etcd_kv *kvs;
        size_t n;
};

void etcd_kv_clear(struct etcd_kv *kv);
void etcd_kvs_clear(struct etcd_kvs *r);

struct etcd_member {
        uint64_t id;
        char *name;
        char **peer_urls;
        char **client_urls;
        bool learner;
};

struct etcd_members {
        uint64_t cluster_id;
        uint64_t member_id; /* the member that answered */
        int64_t revision;
        struct etcd_member *m;
        size_t n;
};
void etcd_members_clear(struct etcd_members *ms);

struct etcd_status {
        uint64_t member_id;  /* header.member_id of the answering member */
        uint64_t cluster_id; /* header.cluster_id */
        uint64_t leader;
        int64_t raft_index, raft_term, db_size;
        int64_t db_size_in_use; /* dbSizeInUse (3.4+): the rest of db_size is free pages */
        int64_t revision;       /* header.revision */
        bool learner;
        char *version;
        char **errors;
};
void etcd_status_clear(struct etcd_status *s);

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
        enum etcd_event_type type;
        struct etcd_kv kv;
};

/* One message of the watch stream. */
struct etcd_watch_msg {
        int64_t revision; /* header revision */
        int64_t watch_id;
        bool created, canceled;
        int64_t compact_revision; /* > 0: requested revision was compacted */
        char *cancel_reason;
        struct etcd_event *events;
        size_t n_events;
};
void etcd_watch_msg_clear(struct etcd_watch_msg *m);

/* Each returns 0, or -EBADMSG with err->msg saying what was malformed. */
int etcd_parse_error(json_t *reply, struct etcd_error *err); /* 1 if reply is an error object */
int etcd_parse_kv(json_t *j, struct etcd_kv *kv, struct etcd_error *err);
int etcd_parse_range(json_t *reply, struct etcd_kvs *ret, struct etcd_error *err);
int etcd_parse_revision(json_t *reply, int64_t *ret);    /* header.revision */
int etcd_parse_cluster_id(json_t *reply, uint64_t *ret); /* header.cluster_id, never 0 */
int etcd_parse_txn(json_t *reply, bool *ret_succeeded, struct etcd_error *err);
/* The i-th response of a txn as a range result (for etcd_op_range ops). */
int etcd_parse_txn_range(json_t *reply, size_t i, struct etcd_kvs *ret, struct etcd_error *err);
int etcd_parse_lease_grant(json_t *reply, int64_t *ret_id, int64_t *ret_ttl, struct etcd_error *err);
int etcd_parse_lease_keepalive(json_t *reply, int64_t *ret_ttl, struct etcd_error *err);
int etcd_parse_members(json_t *reply, struct etcd_members *ret, struct etcd_error *err);
/* member add: the new member's id, and the full member list after the add */
int etcd_parse_member_add(json_t *reply, uint64_t *ret_id, struct etcd_members *ret, struct etcd_error *err);
int etcd_parse_status(json_t *reply, struct etcd_status *ret, struct etcd_error *err);
int etcd_parse_watch_msg(json_t *msg, struct etcd_watch_msg *ret, struct etcd_error *err);
/* Read an int64 that etcd sends as a string (or a number); missing = 0. */
int etcd_json_int64(json_t *obj, const char *field, int64_t *ret);
int etcd_json_uint64(json_t *obj, const char *field, uint64_t *ret);

/* ---- watches ---- */
/* Called for each message carrying events, in revision order, never twice
 * for the same revision across reconnects. err != NULL reports a problem:
 * err->code == ETCD_ERR_TRANSPORT while reconnecting (the watch keeps
 * trying), or compaction (msg->compact_revision > 0: the caller must
 * re-read with a range and re-create the watch). */
typedef void (*etcd_watch_cb)(struct etcd_watch *w, const struct etcd_error *err,
                              const struct etcd_watch_msg *msg, void *userdata);

int etcd_watch_new(struct etcd_client *c, const char *key, bool prefix, int64_t start_revision,
                   etcd_watch_cb cb, void *userdata, struct etcd_watch **ret);
void etcd_watch_free(struct etcd_watch *w);
/* The next revision the watch will ask for after a reconnect. */
int64_t etcd_watch_next_revision(struct etcd_watch *w);
/* True once the server confirmed the watch (created) on the current stream. */
bool etcd_watch_is_established(struct etcd_watch *w);
/* Also call back (msg->created, no events) each time etcd confirms the
 * watch, on its first stream and on every stream after a reconnect: a
 * watch from "now" (start_revision 0) plus a read made from that callback
 * misses nothing, and etcd serves it at once. A watch from a past revision
 * is a lagging watcher to etcd until it has caught up, and etcd catches
 * lagging watchers up only every 100 ms. */
void etcd_watch_notify_created(struct etcd_watch *w);
