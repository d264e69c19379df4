/* wait.c: --wait: follow /_mgmt/status/<host> until every reporting agent
 * converged on the new deploy, one failed, or the timeout passes. */
#include <stdio.h>

#include "deploy.h"
#include "deployer.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "util.h"

struct waiter {
        int64_t id;
        struct host_status *hosts;
        size_t n;
        char *prefix;
        int result; /* -1 while undecided */
        char *last_progress;
        bool resync; /* the watch was compacted: read again */
};

static void waiter_remove(struct waiter *w, const char *host) {
        for (size_t i = 0; i < w->n; i++)
                if (streq(w->hosts[i].host, host)) {
                        host_status_clear(&w->hosts[i]);
                        w->hosts[i] = w->hosts[--w->n];
                        return;
                }
}

static int waiter_put(struct waiter *w, const struct etcd_kv *kv) {
        const char *host = key_host_suffix(kv->key, w->prefix);
        struct host_status s;
        char err[256];

        if (!host) {
                log_debug("ignoring status key '%s': not a valid host name", kv->key);
                return 0;
        }
        if (host_status_decode(host, kv->value ? kv->value : "", kv->value_len, &s, err, sizeof err) < 0) {
                log_warnx("ignoring malformed status of host '%s': %s", host, err);
                waiter_remove(w, host);
                return 0;
        }
        waiter_remove(w, host);
        struct host_status *nh = reallocarray(w->hosts, w->n + 1, sizeof(*nh));
        if (!nh) {
                host_status_clear(&s);
                return -ENOMEM;
        }
        w->hosts = nh;
        w->hosts[w->n++] = s;
        return 0;
}

/* Decide from the statuses seen so far; print progress when it changes. */
static void waiter_evaluate(struct waiter *w) {
        _cleanup_free_ char *pending = NULL;
        size_t done = 0, np = 0;

        for (size_t i = 0; i < w->n; i++) {
                struct host_status *s = &w->hosts[i];
                if (s->deploy == w->id && s->state == DEPLOY_STATE_FAILED) {
                        _cleanup_free_ char *errs = strv_join(s->errors, "; ");
                        log_errorx("host '%s' failed to apply deploy %lld: %s", s->host, (long long) w->id,
                                   errs && *errs ? errs : "no error reported");
                        w->result = EXIT_FAILED;
                        return;
                }
                if ((s->deploy == w->id && s->state == DEPLOY_STATE_CONVERGED) || s->deploy > w->id) {
                        done++;
                        continue;
                }
                char *p = NULL;
                if (asprintf(&p, "%s%s%s (%s deploy %lld)", pending ? pending : "", pending ? ", " : "", s->host,
                             deploy_state_to_string(s->state), (long long) s->deploy) < 0)
                        return;
                free(pending);
                pending = p;
                np++;
        }
        if (w->n > 0 && np == 0) {
                log_info("all %zu hosts converged on deploy %lld", w->n, (long long) w->id);
                w->result = EXIT_DONE;
                return;
        }
        char *line = NULL;
        if (w->n == 0)
                line = strdup("no agent reports status yet");
        else if (asprintf(&line, "%zu/%zu hosts converged, pending: %s", done, w->n, pending) < 0)
                line = NULL;
        if (line && (!w->last_progress || !streq(line, w->last_progress))) {
                log_info("waiting for deploy %lld: %s", (long long) w->id, line);
                free(w->last_progress);
                w->last_progress = line;
        } else
                free(line);
}

static int waiter_read(struct waiter *w, struct etcd_client *c, int64_t *ret_rev) {
        _cleanup_(json_decrefp) json_t *reply = NULL;
        struct etcd_error e = { 0 };
        struct etcd_kvs kvs = { 0 };
        int r;

        r = etcd_call_sync(c, ETCD_RANGE, etcd_req_range(w->prefix, true, 0, false), &reply, &e);
        if (r >= 0)
                r = etcd_parse_range(reply, &kvs, &e);
        if (r < 0) {
                log_errorx("cannot read agent status under '%s': %s", w->prefix, e.msg);
                return -EIO;
        }
        for (size_t i = 0; i < w->n; i++)
                host_status_clear(&w->hosts[i]);
        w->n = 0;
        for (size_t i = 0; i < kvs.n && r >= 0; i++)
                r = waiter_put(w, &kvs.kvs[i]);
        *ret_rev = kvs.revision;
        etcd_kvs_clear(&kvs);
        return r;
}

static void on_watch(struct etcd_watch *wt, const struct etcd_error *err, const struct etcd_watch_msg *msg,
                     void *userdata) {
        struct waiter *w = userdata;

        if (err) {
                if (msg && msg->compact_revision > 0)
                        w->resync = true;
                else
                        log_warnx("watch on '%s': %s (retrying)", w->prefix, err->msg);
                return;
        }
        for (size_t i = 0; msg && i < msg->n_events; i++) {
                const struct etcd_event *ev = &msg->events[i];
                if (ev->type == ETCD_EVENT_DELETE) {
                        const char *host = key_host_suffix(ev->kv.key, w->prefix);
                        if (host) {
                                log_info("host '%s' stopped reporting status", host);
                                waiter_remove(w, host);
                        }
                } else if (waiter_put(w, &ev->kv) < 0)
                        w->result = EXIT_ERROR;
        }
        if (w->result < 0)
                waiter_evaluate(w);
}

int wait_for_deploy(struct etcd_client *c, int64_t id, uint64_t timeout_usec) {
        struct waiter w = { .id = id, .result = -1 };
        struct etcd_watch *watch = NULL;
        uint64_t deadline = now_usec() + timeout_usec;
        int64_t rev = 0;
        int r;

        w.prefix = key_status_prefix();
        if (!w.prefix)
                return EXIT_ERROR;
        log_info("waiting up to %.0f s for every agent to converge on deploy %lld", (double) timeout_usec / 1e6,
                 (long long) id);
        for (;;) {
                if (waiter_read(&w, c, &rev) < 0) {
                        w.result = EXIT_ERROR;
                        break;
                }
                waiter_evaluate(&w);
                if (w.result >= 0)
                        break;
                w.resync = false;
                r = etcd_watch_new(c, w.prefix, true, rev + 1, on_watch, &w, &watch);
                if (r < 0) {
                        log_error_errno(r, "cannot watch '%s': %m", w.prefix);
                        w.result = EXIT_ERROR;
                        break;
                }
                while (w.result < 0 && !w.resync) {
                        uint64_t now = now_usec();
                        if (now >= deadline)
                                break;
                        r = sd_event_run(etcd_client_event(c), deadline - now);
                        if (r < 0) {
                                log_error_errno(r, "event loop failed: %m");
                                w.result = EXIT_ERROR;
                        }
                }
                etcd_watch_free(watch);
                watch = NULL;
                if (w.result >= 0 || !w.resync)
                        break;
        }
        if (w.result < 0) {
                if (w.n == 0)
                        log_errorx("timed out after %.0f s: no agent reports status under '%s'",
                                   (double) timeout_usec / 1e6, w.prefix);
                else {
                        _cleanup_free_ char *pending = NULL;
                        for (size_t i = 0; i < w.n; i++) {
                                struct host_status *s = &w.hosts[i];
                                if ((s->deploy == id && s->state == DEPLOY_STATE_CONVERGED) || s->deploy > id)
                                        continue;
                                char *p = NULL;
                                if (asprintf(&p, "%s%s%s (%s deploy %lld)", pending ? pending : "",
                                             pending ? ", " : "", s->host, deploy_state_to_string(s->state),
                                             (long long) s->deploy) >= 0) {
                                        free(pending);
                                        pending = p;
                                }
                        }
                        log_errorx("timed out after %.0f s waiting for deploy %lld; pending hosts: %s",
                                   (double) timeout_usec / 1e6, (long long) id, pending ? pending : "?");
                }
                w.result = EXIT_TIMEOUT;
        }
        for (size_t i = 0; i < w.n; i++)
                host_status_clear(&w.hosts[i]);
        free(w.hosts);
        free(w.prefix);
        free(w.last_progress);
        return w.result;
}
