/* status.c: what the agent tells the cluster about itself: a lease (10 s TTL,
 * kept alive every 3 s from an sd-event timer), /_mgmt/status/<host> and
 * /_mgmt/converged/<host> on that lease (rewritten when the state changes and
 * whenever the lease had to be granted again), and the etcd endpoint list,
 * refreshed from /_mgmt/endpoints/ so the client can fail over. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "hoststatus.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

#define LEASE_TTL_SEC 10
#define KEEPALIVE_USEC (3 * USEC_PER_SEC)
#define ENDPOINTS_MAX 256 /* URLs in the endpoint list, all keys together */

static void lease_grant(struct agent *a);
static void status_send(struct agent *a);

/* The engine's state as the status record names it. */
static enum deploy_state status_state(enum engine_state st) {
        switch (st) {
        case ENGINE_CONVERGED:
                return DEPLOY_STATE_CONVERGED;
        case ENGINE_FAILED:
                return DEPLOY_STATE_FAILED;
        case ENGINE_APPLYING:
        default:
                return DEPLOY_STATE_APPLYING;
        }
}

char *agent_status_json(struct agent *a) {
        _cleanup_free_ char *now = rfc3339_now();
        char *deploy_error[] = {a->deploy_error ? a->deploy_error : (char *)"invalid deploy", NULL};
        struct host_status s = {.time = now};

        if (a->deploy_failed) {
                s.state = DEPLOY_STATE_FAILED;
                s.deploy = a->deploy_highest;
                s.errors = deploy_error;
        } else {
                s.state = status_state(engine_get_state(a->engine));
                s.deploy = a->deploy_id;
                s.errors = engine_errors(a->engine);
        }
        return host_status_encode(&s);
}

static int on_status_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct agent *a = userdata;

        sd_event_source_unref(s);
        if (!a->status_busy)
                status_send(a);
        return 0;
}

static void on_status_txn(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                          void *userdata) {
        struct agent *a = userdata;

        a->status_busy = false;
        if (err) {
                uint64_t delay = agent_etcd_trouble(a, "cannot write status", err->msg);
                a->status_dirty = true;
                if (err->code > 0 && strstr(err->msg, "lease not found")) {
                        a->lease = 0; /* expired while etcd was away: status follows the new lease */
                        lease_grant(a);
                        return;
                }
                (void)agent_later(a, delay, on_status_retry);
                return;
        }
        agent_etcd_fine(a);
        if (a->converged_pending)
                a->converged_lease = a->status_lease;
        log_debug("status written: %s", a->status_sent ? a->status_sent : "");
        if (a->status_dirty)
                status_send(a);
}

static void status_send(struct agent *a) {
        _cleanup_free_ char *skey = key_status(a->hostname), *ckey = key_converged(a->hostname);
        int r;

        if (!a->status_dirty || a->status_busy || a->lease <= 0 || a->stopping)
                return;
        char *s = agent_status_json(a);
        if (!s || !skey || !ckey) {
                free(s);
                log_error_errno(-ENOMEM, "out of memory");
                return;
        }
        bool converged = !a->deploy_failed && engine_get_state(a->engine) == ENGINE_CONVERGED;
        json_t *ops = json_array();
        json_array_append_new(ops, etcd_op_put(skey, s, a->lease));
        /* converged/<host> only when it changes (or the lease did): from one
         * converged deploy to the next it stays "true", and a put that
         * changes nothing is still a revision and a watch event for etcd */
        a->converged_pending = a->converged_lease != a->lease || a->converged_value != converged;
        if (a->converged_pending) {
                json_array_append_new(ops, etcd_op_put(ckey, converged ? "true" : "false", a->lease));
                a->converged_lease = 0; /* unknown until this txn succeeds */
                a->converged_value = converged;
        }
        a->status_lease = a->lease;
        free(a->status_sent);
        a->status_sent = s;
        a->status_dirty = false;
        a->status_busy = true;
        r = etcd_call(a->etcd, ETCD_TXN, etcd_req_txn(NULL, ops, NULL), on_status_txn, a);
        if (r < 0) {
                a->status_busy = false;
                a->status_dirty = true;
                log_warn_errno(r, "cannot write status: %m");
                (void)agent_later(a, USEC_PER_SEC, on_status_retry);
        }
}

void agent_status_update(struct agent *a) {
        a->status_dirty = true;
        /* etcd first: a deployer's --wait is waiting for it; the local copy after */
        if (a->etcd)
                status_send(a);
        if (a->prefix) {
                /* what status_send just sent, unless it could not send yet */
                _cleanup_free_ char *fresh = a->status_dirty ? agent_status_json(a) : NULL;
                const char *s = a->status_dirty ? fresh : a->status_sent;
                char path[PATH_MAX];
                if (s && snprintf(path, sizeof path, "%s/status.json", a->prefix) < (int)sizeof path) {
                        /* a copy of what goes to etcd, rewritten on every change:
                         * atomic, but not worth an fsync per deploy (a crash leaves
                         * the one before, and the agent writes it again) */
                        int r = write_file_replace(path, s, strlen(s), 0644);
                        if (r < 0)
                                log_debug_errno(r, "cannot write '%s': %m", path);
                }
        }
}

/* ---- lease ---- */

static int on_grant_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        sd_event_source_unref(s);
        lease_grant(userdata);
        return 0;
}

/* Forget a lease that may be gone and ask for a new one; on_grant rewrites
 * the status keys on it. */
static void lease_lost(struct agent *a) {
        a->lease = 0;
        a->keepalive_failing = false;
        lease_grant(a);
}

static void on_keepalive(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                         void *userdata) {
        struct agent *a = userdata;
        struct etcd_error perr = {0};
        int64_t ttl = 0;

        if (a->lease <= 0 || a->lease != a->keepalive_lease)
                return; /* an answer about a lease already given up */
        if (err && err->code <= 0) {
                /* unreachable: keep trying on the next tick, the lease may survive;
                 * the tick gives it up once its TTL passed without an answer */
                if (!a->keepalive_failing)
                        log_warnx("lease %llx keepalive failed: %s; retrying every %d s",
                                  (unsigned long long)a->lease, err->msg,
                                  (int)(KEEPALIVE_USEC / USEC_PER_SEC));
                else
                        log_debug("lease keepalive failed: %s", err->msg);
                a->keepalive_failing = true;
                return;
        }
        if (err) {
                log_warnx("lease %llx refused by etcd (%s): granting a new one",
                          (unsigned long long)a->lease, err->msg);
                lease_lost(a);
                return;
        }
        if (etcd_parse_lease_keepalive(reply, &ttl, &perr) < 0 || ttl <= 0) {
                log_warnx("lease %llx expired: granting a new one and rewriting status",
                          (unsigned long long)a->lease);
                lease_lost(a);
                return;
        }
        if (a->keepalive_failing)
                log_notice("lease %llx keepalive works again", (unsigned long long)a->lease);
        a->keepalive_failing = false;
        a->lease_ok_usec = now_usec();
}

static int on_keepalive_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct agent *a = userdata;
        int r;

        (void)sd_event_source_set_time_relative(s, KEEPALIVE_USEC);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (a->lease <= 0 || a->stopping)
                return 0;
        if (now_usec() - a->lease_ok_usec > LEASE_TTL_SEC * USEC_PER_SEC) {
                /* no keepalive got through for a whole TTL: etcd has most likely
                 * expired the lease and deleted our status keys with it */
                log_warnx(
                    "lease %llx: no successful keepalive for %d s, it may have expired: granting a new "
                    "one and writing status again",
                    (unsigned long long)a->lease, LEASE_TTL_SEC);
                lease_lost(a);
                return 0;
        }
        a->keepalive_lease = a->lease;
        r = etcd_call(a->etcd, ETCD_LEASE_KEEPALIVE, etcd_req_lease_id(a->lease), on_keepalive, a);
        if (r < 0)
                log_warn_errno(r, "cannot send lease keepalive: %m");
        return 0;
}

static void on_grant(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata) {
        struct agent *a = userdata;
        struct etcd_error perr = {0};
        int64_t id = 0, ttl = 0;

        a->lease_busy = false;
        if (err || etcd_parse_lease_grant(reply, &id, &ttl, &perr) < 0) {
                (void)agent_later(a, agent_etcd_trouble(a, "cannot get a lease", err ? err->msg : perr.msg),
                                  on_grant_retry);
                return;
        }
        agent_etcd_fine(a);
        a->lease = id;
        a->lease_ok_usec = now_usec();
        log_info("lease %llx granted (TTL %lld s)", (unsigned long long)id, (long long)ttl);
        if (!a->keepalive_timer)
                (void)sd_event_add_time_relative(a->event, &a->keepalive_timer, CLOCK_MONOTONIC,
                                                 KEEPALIVE_USEC, 0, on_keepalive_timer, a);
        a->status_dirty = true;
        status_send(a);
}

static void lease_grant(struct agent *a) {
        int r;

        if (a->lease_busy || a->stopping)
                return;
        a->lease_busy = true;
        r = etcd_call(a->etcd, ETCD_LEASE_GRANT, etcd_req_lease_grant(LEASE_TTL_SEC), on_grant, a);
        if (r < 0) {
                a->lease_busy = false;
                log_warn_errno(r, "cannot ask for a lease: %m");
                (void)agent_later(a, USEC_PER_SEC, on_grant_retry);
        }
}

int agent_status_start(struct agent *a) {
        lease_grant(a);
        return 0;
}

static void on_revoke(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata) {
        struct agent *a = userdata;

        if (err)
                log_warnx("cannot revoke lease: %s", err->msg);
        else
                log_info("lease revoked: status keys removed");
        (void)sd_event_exit(a->event, a->exit_code);
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct agent *a = userdata;

        sd_event_source_unref(s);
        log_warnx("etcd did not answer in time: exiting without revoking the lease");
        (void)sd_event_exit(a->event, a->exit_code);
        return 0;
}

void agent_status_stop(struct agent *a) {
        if (a->lease <= 0 ||
            etcd_call(a->etcd, ETCD_LEASE_REVOKE, etcd_req_lease_id(a->lease), on_revoke, a) < 0) {
                (void)sd_event_exit(a->event, a->exit_code);
                return;
        }
        (void)agent_later(a, 2 * USEC_PER_SEC, on_stop_timeout);
}

/* ---- endpoints ---- */

static void endpoints_refresh(struct agent *a);

static int on_endpoints_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        sd_event_source_unref(s);
        endpoints_refresh(userdata);
        return 0;
}

static void on_endpoints_watch(struct etcd_watch *w, const struct etcd_error *err,
                               const struct etcd_watch_msg *msg, void *userdata) {
        struct agent *a = userdata;

        if (err) {
                if (msg && msg->compact_revision > 0) {
                        etcd_watch_free(a->endpoints_watch);
                        a->endpoints_watch = NULL;
                }
                log_debug("endpoints watch: %s", err->msg);
                if (a->endpoints_watch)
                        return;
        }
        endpoints_refresh(a);
}

/* Warn about a bad endpoints value once per key and revision (not on every
 * refresh: any write under the prefix triggers one). bad collects the
 * "key@revision" of this refresh; the previous refresh's set says which
 * were already reported. */
static void endpoint_value_bad(struct agent *a, char ***bad, const struct etcd_kv *kv, const char *why) {
        _cleanup_free_ char *id = NULL;

        if (asprintf(&id, "%s@%lld", kv->key, (long long)kv->mod_revision) < 0)
                return;
        if (!strv_contains(a->endpoints_bad, id))
                log_warnx("ignoring endpoints key '%s' (%zu bytes): %s", kv->key, kv->value_len, why);
        (void)strv_consume(bad, TAKE_PTR(id));
}

/* Build the endpoint list from the keys under /_mgmt/endpoints/, each value
 * capped (urls_parse: 64 KiB, 64 URLs) and the whole list too. A known-good
 * list is never shrunk to something that does not answer: with no usable
 * key (none visible yet, e.g. after a power loss) the current list stays;
 * otherwise the endpoint that just answered this read stays in it, then the
 * keys' URLs, then the seeds as a last resort. */
static void on_endpoints_range(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                               void *userdata) {
        struct agent *a = userdata;
        struct etcd_kvs kvs = {0};
        struct etcd_error perr = {0};
        _cleanup_strv_ char **list = NULL, **bad = NULL, **sorted = NULL;
        bool capped = false;
        int r;

        if (err || etcd_parse_range(reply, &kvs, &perr) < 0) {
                log_debug("cannot read endpoints: %s", err ? err->msg : perr.msg);
                (void)agent_later(a, 5 * USEC_PER_SEC, on_endpoints_retry);
                return;
        }
        for (size_t i = 0; i < kvs.n; i++) {
                char ebuf[256];
                _cleanup_strv_ char **urls = NULL;
                if (!kvs.kvs[i].value || kvs.kvs[i].value_len == 0) {
                        endpoint_value_bad(a, &bad, &kvs.kvs[i], "empty");
                        continue;
                }
                if (urls_parse(kvs.kvs[i].value, &urls, ebuf, sizeof ebuf) < 0) {
                        endpoint_value_bad(a, &bad, &kvs.kvs[i], ebuf);
                        continue;
                }
                if (strv_length(list) + strv_length(urls) > ENDPOINTS_MAX) {
                        capped = true;
                        continue;
                }
                if (strv_extend(&list, urls) < 0)
                        break;
        }
        strv_free(a->endpoints_bad);
        a->endpoints_bad = TAKE_PTR(bad);
        if (capped)
                log_debug("more than %d endpoint URLs under the prefix: using the first ones",
                          ENDPOINTS_MAX);
        if (strv_length(list) == 0) {
                log_debug("no usable /_mgmt/endpoints/ key visible: keeping the current endpoint list");
        } else {
                _cleanup_strv_ char **head = NULL;
                const char *cur = etcd_client_current_endpoint(a->etcd);
                if (cur && strv_push(&head, cur) >= 0 && strv_extend(&head, list) >= 0 &&
                    strv_extend(&head, a->seeds) >= 0 && strv_uniq(head) >= 0) {
                        strv_free(list);
                        list = TAKE_PTR(head);
                } else if (strv_extend_uniq(&list, a->seeds) < 0)
                        log_error_errno(-ENOMEM, "out of memory");
                sorted = strv_copy(list);
                strv_sort(sorted);
                _cleanup_free_ char *key = sorted ? strv_join(sorted, ",") : NULL;
                if (key && (!a->endpoints_set || !streq(key, a->endpoints_set))) {
                        _cleanup_free_ char *joined = strv_join(list, ",");
                        r = etcd_client_set_endpoints(a->etcd, list);
                        if (r < 0)
                                log_warn_errno(r, "cannot set endpoints: %m");
                        else {
                                log_info("etcd endpoints: %s", joined ? joined : "?");
                                free(a->endpoints_set);
                                a->endpoints_set = TAKE_PTR(key);
                        }
                }
        }
        if (!a->endpoints_watch) {
                _cleanup_free_ char *prefix = key_endpoints_prefix();
                r = prefix ? etcd_watch_new(a->etcd, prefix, true, kvs.revision + 1, on_endpoints_watch, a,
                                            &a->endpoints_watch)
                           : -ENOMEM;
                if (r < 0) {
                        log_warn_errno(r, "cannot watch endpoints: %m; reading them again in 5 s");
                        (void)agent_later(a, 5 * USEC_PER_SEC, on_endpoints_retry);
                }
        }
        etcd_kvs_clear(&kvs);
}

static void endpoints_refresh(struct agent *a) {
        _cleanup_free_ char *prefix = key_endpoints_prefix();

        if (!prefix || etcd_call(a->etcd, ETCD_RANGE, etcd_req_range(prefix, true, 0, false),
                                 on_endpoints_range, a) < 0)
                (void)agent_later(a, 5 * USEC_PER_SEC, on_endpoints_retry);
}

int agent_endpoints_start(struct agent *a) {
        endpoints_refresh(a);
        return 0;
}
