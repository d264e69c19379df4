/* etcd-probe.c: drives lib/etcd.c against a real etcd for the integration
 * tests, through the asynchronous API on an sd-event loop (as the daemons do).
 * Results go to stdout, one line each; chatter and errors to stderr.
 *
 *   etcd-probe ENDPOINTS CMD [ARGS...]      ENDPOINTS: comma list, tried in order
 * Exit status: 0 done, 1 error (etcd, transport, not found), 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

struct probe {
        sd_event *event;
        struct etcd_client *c;
        struct etcd_watch *w;
        char **argv;          /* the command's arguments */
        long long remaining;  /* watch: events still to print */
        long long next, last; /* put-seq */
        long long acked;      /* ack: puts completed */
        int64_t lease;
};

static void finish(struct probe *p, int rc) {
        sd_event_exit(p->event, rc);
}

/* Report an etcd or transport error for cmd and stop with status 1. Returns
 * true when there was one. */
static bool failed(struct probe *p, const char *what, const struct etcd_error *err) {
        if (!err)
                return false;
        fprintf(stderr, "etcd-probe: %s: %s (code %d)\n", what, err->msg, err->code);
        finish(p, 1);
        return true;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || end == s || *end || *s == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

static void call(struct probe *p, const char *path, json_t *body, etcd_cb cb) {
        int r = etcd_call(p->c, path, body, cb, p);
        if (r < 0) {
                fprintf(stderr, "etcd-probe: cannot start request: %s\n", strerror(-r));
                finish(p, 1);
        }
}

/* ---- put, get, del ---- */

static void put_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        int64_t rev = 0;
        if (failed(p, "put", err))
                return;
        (void)etcd_parse_revision(reply, &rev);
        printf("%" PRId64 "\n", rev);
        finish(p, 0);
}

static int cmd_put(struct probe *p) {
        call(p, ETCD_PUT, etcd_req_put(p->argv[0], p->argv[1], 0), put_done);
        return 0;
}

static void get_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_kvs r;
        struct etcd_error e;
        if (failed(p, "get", err))
                return;
        if (etcd_parse_range(reply, &r, &e) < 0) {
                failed(p, "get", &e);
                return;
        }
        if (r.n == 0) {
                fprintf(stderr, "etcd-probe: '%s' not found\n", p->argv[0]);
                finish(p, 1);
        } else {
                fwrite(r.kvs[0].value, 1, r.kvs[0].value_len, stdout);
                fputc('\n', stdout);
                fprintf(stderr, "revision %" PRId64 " version %" PRId64 " lease %" PRId64 "\n",
                        r.kvs[0].mod_revision, r.kvs[0].version, r.kvs[0].lease);
                finish(p, 0);
        }
        etcd_kvs_clear(&r);
}

static int cmd_get(struct probe *p) {
        call(p, ETCD_RANGE, etcd_req_range(p->argv[0], false, 0, false), get_done);
        return 0;
}

static void get_prefix_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_kvs r;
        struct etcd_error e;
        if (failed(p, "get-prefix", err))
                return;
        if (etcd_parse_range(reply, &r, &e) < 0) {
                failed(p, "get-prefix", &e);
                return;
        }
        for (size_t i = 0; i < r.n; i++)
                printf("%s %.*s\n", r.kvs[i].key, (int)r.kvs[i].value_len, r.kvs[i].value);
        fprintf(stderr, "revision %" PRId64 " count %" PRId64 "\n", r.revision, r.count);
        etcd_kvs_clear(&r);
        finish(p, 0);
}

static int cmd_get_prefix(struct probe *p) {
        call(p, ETCD_RANGE, etcd_req_range(p->argv[0], true, 0, false), get_prefix_done);
        return 0;
}

static void revision_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        int64_t rev;
        if (failed(p, "revision", err))
                return;
        if (etcd_parse_revision(reply, &rev) < 0) {
                fprintf(stderr, "etcd-probe: revision: no header revision\n");
                finish(p, 1);
                return;
        }
        printf("%" PRId64 "\n", rev);
        finish(p, 0);
}

static int cmd_revision(struct probe *p) {
        call(p, ETCD_RANGE, etcd_req_range("/", false, 0, true), revision_done);
        return 0;
}

static void del_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        int64_t n = 0;
        if (failed(p, "del", err))
                return;
        (void)etcd_json_int64(reply, "deleted", &n);
        printf("%" PRId64 "\n", n);
        finish(p, 0);
}

static int cmd_del(struct probe *p) {
        call(p, ETCD_DELETE, etcd_req_delete(p->argv[0], false), del_done);
        return 0;
}

/* put-seq PREFIX FROM TO: keys PREFIX%06d = %d, one after another. */
static void put_seq_next(struct probe *p);

static void put_seq_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        if (failed(p, "put-seq", err))
                return;
        if (p->next > p->last) {
                int64_t rev = 0;
                (void)etcd_parse_revision(reply, &rev);
                printf("%" PRId64 "\n", rev);
                finish(p, 0);
                return;
        }
        put_seq_next(p);
}

static void put_seq_next(struct probe *p) {
        char key[512], val[32];
        snprintf(key, sizeof key, "%s%06lld", p->argv[0], p->next);
        snprintf(val, sizeof val, "%lld", p->next);
        p->next++;
        call(p, ETCD_PUT, etcd_req_put(key, val, 0), put_seq_done);
}

static int cmd_put_seq(struct probe *p) {
        int64_t a, b;
        if (parse_int64(p->argv[1], &a) < 0 || parse_int64(p->argv[2], &b) < 0 || a > b)
                return -EINVAL;
        p->next = a;
        p->last = b;
        put_seq_next(p);
        return 0;
}

/* ---- txn ---- */

static void txn_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_error e;
        struct etcd_kvs r;
        bool ok;
        if (failed(p, "txn", err))
                return;
        if (etcd_parse_txn(reply, &ok, &e) < 0) {
                failed(p, "txn", &e);
                return;
        }
        printf("%s\n", ok ? "succeeded" : "failed");
        if (!ok) {
                /* the failure branch read the key: say what it is */
                if (etcd_parse_txn_range(reply, 0, &r, &e) < 0) {
                        failed(p, "txn", &e);
                        return;
                }
                fprintf(stderr, "current version %" PRId64 "\n", r.n ? r.kvs[0].version : 0);
                etcd_kvs_clear(&r);
        }
        finish(p, 0);
}

static int cmd_txn_version(struct probe *p) {
        int64_t ver;
        if (parse_int64(p->argv[1], &ver) < 0)
                return -EINVAL;
        json_t *cmp = json_array(), *succ = json_array(), *fail = json_array();
        json_array_append_new(cmp, etcd_cmp_version(p->argv[0], "=", ver));
        json_array_append_new(succ, etcd_op_put(p->argv[0], p->argv[2], 0));
        json_array_append_new(fail, etcd_op_range(p->argv[0], false));
        call(p, ETCD_TXN, etcd_req_txn(cmp, succ, fail), txn_done);
        return 0;
}

/* ---- leases ---- */

static void lease_put_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        if (failed(p, "lease-put", err))
                return;
        printf("%" PRId64 "\n", p->lease);
        finish(p, 0);
}

static void lease_granted(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_error e;
        int64_t ttl;
        if (failed(p, "lease grant", err))
                return;
        if (etcd_parse_lease_grant(reply, &p->lease, &ttl, &e) < 0) {
                failed(p, "lease grant", &e);
                return;
        }
        fprintf(stderr, "lease %" PRId64 " ttl %" PRId64 "\n", p->lease, ttl);
        call(p, ETCD_PUT, etcd_req_put(p->argv[0], p->argv[1], p->lease), lease_put_done);
}

static int cmd_lease_put(struct probe *p) {
        int64_t ttl;
        if (parse_int64(p->argv[2], &ttl) < 0 || ttl < 1)
                return -EINVAL;
        call(p, ETCD_LEASE_GRANT, etcd_req_lease_grant(ttl), lease_granted);
        return 0;
}

static void keepalive_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_error e;
        int64_t ttl;
        if (failed(p, "keepalive", err))
                return;
        if (etcd_parse_lease_keepalive(reply, &ttl, &e) < 0) {
                failed(p, "keepalive", &e);
                return;
        }
        printf("%" PRId64 "\n", ttl);
        if (ttl <= 0)
                fprintf(stderr, "etcd-probe: lease %s is gone\n", p->argv[0]);
        finish(p, ttl > 0 ? 0 : 1);
}

static int cmd_keepalive(struct probe *p) {
        int64_t id;
        if (parse_int64(p->argv[0], &id) < 0)
                return -EINVAL;
        call(p, ETCD_LEASE_KEEPALIVE, etcd_req_lease_id(id), keepalive_done);
        return 0;
}

static void revoke_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        if (failed(p, "revoke", err))
                return;
        printf("revoked\n");
        finish(p, 0);
}

static int cmd_revoke(struct probe *p) {
        int64_t id;
        if (parse_int64(p->argv[0], &id) < 0)
                return -EINVAL;
        call(p, ETCD_LEASE_REVOKE, etcd_req_lease_id(id), revoke_done);
        return 0;
}

/* ---- watch ---- */

static void watch_event(struct etcd_watch *w, const struct etcd_error *err, const struct etcd_watch_msg *m,
                        void *ud) {
        struct probe *p = ud;
        if (err) {
                if (m && m->compact_revision > 0) {
                        fprintf(stderr, "etcd-probe: watch: %s\n", err->msg);
                        finish(p, 1);
                        return;
                }
                /* reconnects are the library's job: just say so */
                fprintf(stderr, "etcd-probe: watch: %s\n", err->msg);
                return;
        }
        for (size_t i = 0; i < m->n_events && p->remaining > 0; i++, p->remaining--) {
                const struct etcd_event *e = &m->events[i];
                printf("%" PRId64 " %s %s %.*s\n", e->kv.mod_revision,
                       e->type == ETCD_EVENT_PUT ? "PUT" : "DELETE", e->kv.key, (int)e->kv.value_len,
                       e->kv.value);
        }
        if (p->remaining <= 0)
                finish(p, 0);
}

/* PREFIX START_REV COUNT: watch PREFIX from START_REV with cb, for COUNT. */
static int start_prefix_watch(struct probe *p, etcd_watch_cb cb) {
        int64_t rev, count;
        if (parse_int64(p->argv[1], &rev) < 0 || parse_int64(p->argv[2], &count) < 0 || rev < 0 || count < 1)
                return -EINVAL;
        p->remaining = count;
        int r = etcd_watch_new(p->c, p->argv[0], true, rev, cb, p, &p->w);
        if (r < 0) {
                fprintf(stderr, "etcd-probe: cannot start watch: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

static int cmd_watch(struct probe *p) {
        return start_prefix_watch(p, watch_event);
}

/* ---- ack: requests started from inside a watch callback ---- */

static void ack_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        if (failed(p, "ack put", err))
                return;
        if (++p->acked == p->remaining) {
                printf("%lld acked\n", p->acked);
                finish(p, 0);
        }
}

/* For each PUT under the prefix, write "/ack<key>" from within this callback,
 * as the daemons do when an event calls for a write. */
static void ack_event(struct etcd_watch *w, const struct etcd_error *err, const struct etcd_watch_msg *m,
                      void *ud) {
        struct probe *p = ud;
        if (err) {
                fprintf(stderr, "etcd-probe: watch: %s\n", err->msg);
                if (m && m->compact_revision > 0)
                        finish(p, 1);
                return;
        }
        for (size_t i = 0; i < m->n_events; i++) {
                const struct etcd_event *e = &m->events[i];
                char key[1024];
                if (e->type != ETCD_EVENT_PUT)
                        continue;
                snprintf(key, sizeof key, "/ack%s", e->kv.key);
                int r = etcd_call(p->c, ETCD_PUT, etcd_req_put(key, "1", 0), ack_done, p);
                if (r < 0) {
                        fprintf(stderr, "etcd-probe: cannot start a request from a watch callback: %s\n",
                                strerror(-r));
                        finish(p, 1);
                        return;
                }
        }
}

static int cmd_ack(struct probe *p) {
        return start_prefix_watch(p, ack_event);
}

/* ---- cluster ---- */

static void print_members(const struct etcd_members *ms) {
        for (size_t i = 0; i < ms->n; i++) {
                _cleanup_free_ char *peers = strv_join(ms->m[i].peer_urls, ",");
                _cleanup_free_ char *clients = strv_join(ms->m[i].client_urls, ",");
                printf("%" PRIu64 " %s %s %s %s\n", ms->m[i].id, ms->m[i].name[0] ? ms->m[i].name : "-",
                       ms->m[i].learner ? "learner" : "voter", peers && *peers ? peers : "-",
                       clients && *clients ? clients : "-");
        }
}

static void members_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_members ms;
        struct etcd_error e;
        if (failed(p, "members", err))
                return;
        if (etcd_parse_members(reply, &ms, &e) < 0) {
                failed(p, "members", &e);
                return;
        }
        print_members(&ms);
        etcd_members_clear(&ms);
        finish(p, 0);
}

static int cmd_members(struct probe *p) {
        call(p, ETCD_MEMBER_LIST, NULL, members_done);
        return 0;
}

static void member_add_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_members ms;
        struct etcd_error e;
        uint64_t id;
        if (failed(p, "member add", err))
                return;
        if (etcd_parse_member_add(reply, &id, &ms, &e) < 0) {
                failed(p, "member add", &e);
                return;
        }
        printf("%" PRIu64 "\n", id);
        fprintf(stderr, "%zu members after the add\n", ms.n);
        etcd_members_clear(&ms);
        finish(p, 0);
}

static int cmd_member_add_learner(struct probe *p) {
        _cleanup_strv_ char **urls = NULL;
        char err[512];
        if (urls_parse(p->argv[0], &urls, err, sizeof err) < 0) {
                fprintf(stderr, "etcd-probe: %s\n", err);
                return -EINVAL;
        }
        call(p, ETCD_MEMBER_ADD, etcd_req_member_add(urls, true), member_add_done);
        return 0;
}

static void member_id_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_members ms;
        struct etcd_error e;
        if (failed(p, "member change", err))
                return;
        /* promote and remove answer with the member list after the change */
        if (etcd_parse_members(reply, &ms, &e) < 0) {
                failed(p, "member change", &e);
                return;
        }
        print_members(&ms);
        etcd_members_clear(&ms);
        finish(p, 0);
}

static int cmd_member_promote(struct probe *p) {
        uint64_t id;
        if (parse_u64(p->argv[0], &id) < 0)
                return -EINVAL;
        call(p, ETCD_MEMBER_PROMOTE, etcd_req_member_id(id), member_id_done);
        return 0;
}

static int cmd_member_remove(struct probe *p) {
        uint64_t id;
        if (parse_u64(p->argv[0], &id) < 0)
                return -EINVAL;
        call(p, ETCD_MEMBER_REMOVE, etcd_req_member_id(id), member_id_done);
        return 0;
}

static void status_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        struct etcd_status s;
        struct etcd_error e;
        if (failed(p, "status", err))
                return;
        if (etcd_parse_status(reply, &s, &e) < 0) {
                failed(p, "status", &e);
                return;
        }
        printf("member=%" PRIu64 " leader=%" PRIu64 " raft_index=%" PRId64 " raft_term=%" PRId64
               " version=%s learner=%s endpoint=%s\n",
               s.member_id, s.leader, s.raft_index, s.raft_term, s.version, s.learner ? "true" : "false",
               etcd_client_current_endpoint(p->c));
        etcd_status_clear(&s);
        finish(p, 0);
}

static int cmd_status(struct probe *p) {
        call(p, ETCD_STATUS, NULL, status_done);
        return 0;
}

static void move_leader_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        if (failed(p, "move-leader", err))
                return;
        printf("moved\n");
        finish(p, 0);
}

static int cmd_move_leader(struct probe *p) {
        uint64_t id;
        if (parse_u64(p->argv[0], &id) < 0)
                return -EINVAL;
        call(p, ETCD_MOVE_LEADER, etcd_req_move_leader(id), move_leader_done);
        return 0;
}

static void health_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct probe *p = ud;
        json_t *h;
        if (failed(p, "health", err))
                return;
        h = json_object_get(reply, "health");
        printf("%s\n", json_is_string(h) ? json_string_value(h) : "?");
        finish(p, json_is_string(h) && streq(json_string_value(h), "true") ? 0 : 1);
}

/* GET /health of the first endpoint (no failover). */
static int cmd_health(struct probe *p) {
        int r = etcd_get(p->c, etcd_client_endpoints(p->c)[0], "/health", health_done, p);
        if (r < 0) {
                fprintf(stderr, "etcd-probe: cannot start request: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

/* sync-get KEY: the blocking wrapper for CLIs, on a client with its own loop. */
static int cmd_sync_get(struct probe *p) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        struct etcd_error err = {0};
        struct etcd_kvs r;
        json_t *reply = NULL;
        int k;

        k = etcd_client_new(NULL, etcd_client_endpoints(p->c), NULL, &c);
        if (k < 0) {
                fprintf(stderr, "etcd-probe: cannot create client: %s\n", strerror(-k));
                return 1;
        }
        if (etcd_call_sync(c, ETCD_RANGE, etcd_req_range(p->argv[0], false, 0, false), &reply, &err) < 0) {
                fprintf(stderr, "etcd-probe: sync-get: %s (code %d)\n", err.msg, err.code);
                return 1;
        }
        k = etcd_parse_range(reply, &r, &err);
        json_decref(reply);
        if (k < 0) {
                fprintf(stderr, "etcd-probe: sync-get: %s\n", err.msg);
                return 1;
        }
        if (r.n == 0)
                fprintf(stderr, "etcd-probe: '%s' not found\n", p->argv[0]);
        else
                printf("%.*s\n", (int)r.kvs[0].value_len, r.kvs[0].value);
        k = r.n ? 0 : 1;
        etcd_kvs_clear(&r);
        return k ? 1 : 3; /* 3: done, no loop to run */
}

static const struct command {
        const char *name;
        int nargs;
        const char *args;
        int (*run)(struct probe *p);
} commands[] = {
    {"put", 2, "KEY VALUE", cmd_put},
    {"get", 1, "KEY", cmd_get},
    {"get-prefix", 1, "PREFIX", cmd_get_prefix},
    {"del", 1, "KEY", cmd_del},
    {"revision", 0, "", cmd_revision},
    {"put-seq", 3, "PREFIX FROM TO", cmd_put_seq},
    {"txn-version", 3, "KEY VERSION NEWVALUE", cmd_txn_version},
    {"lease-put", 3, "KEY VALUE TTL", cmd_lease_put},
    {"keepalive", 1, "LEASE", cmd_keepalive},
    {"revoke", 1, "LEASE", cmd_revoke},
    {"watch", 3, "PREFIX START_REV COUNT", cmd_watch},
    {"ack", 3, "PREFIX START_REV COUNT", cmd_ack},
    {"members", 0, "", cmd_members},
    {"member-add-learner", 1, "PEERURLS", cmd_member_add_learner},
    {"member-promote", 1, "ID", cmd_member_promote},
    {"member-remove", 1, "ID", cmd_member_remove},
    {"status", 0, "", cmd_status},
    {"move-leader", 1, "ID", cmd_move_leader},
    {"health", 0, "", cmd_health},
    {"sync-get", 1, "KEY", cmd_sync_get},
};

static int usage(void) {
        fprintf(stderr, "usage: etcd-probe ENDPOINTS COMMAND [ARGS...]\ncommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(stderr, "  %s %s\n", commands[i].name, commands[i].args);
        return 2;
}

int main(int argc, char **argv) {
        struct probe p = {0};
        _cleanup_strv_ char **eps = NULL;
        const struct command *cmd = NULL;
        char err[512];
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 3)
                return usage();
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[2], commands[i].name))
                        cmd = &commands[i];
        if (!cmd || argc - 3 != cmd->nargs)
                return usage();
        if (urls_parse(argv[1], &eps, err, sizeof err) < 0) {
                fprintf(stderr, "etcd-probe: %s\n", err);
                return 2;
        }
        r = sd_event_new(&p.event);
        if (r < 0) {
                fprintf(stderr, "etcd-probe: sd_event_new: %s\n", strerror(-r));
                return 1;
        }
        r = etcd_client_new(p.event, eps, NULL, &p.c);
        if (r < 0) {
                fprintf(stderr, "etcd-probe: cannot create client: %s\n", strerror(-r));
                sd_event_unref(p.event);
                return 1;
        }
        p.argv = argv + 3;
        r = cmd->run(&p);
        if (r == -EINVAL) {
                fprintf(stderr, "etcd-probe: bad arguments for %s: expected %s\n", cmd->name, cmd->args);
                r = 2;
        } else if (r == 3) {
                r = 0;
        } else if (r == 0) {
                r = sd_event_loop(p.event);
                if (r < 0) {
                        fprintf(stderr, "etcd-probe: event loop: %s\n", strerror(-r));
                        r = 1;
                }
        }
        if (p.w)
                etcd_watch_free(p.w);
        etcd_client_free(p.c);
        sd_event_unref(p.event);
        return r;
}
