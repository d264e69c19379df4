/* wait.c: --wait: follow /_mgmt/status/<host> until every host waited for
 * converged on the new deploy, one failed, or the timeout passes.
 *
 * The hosts waited for (DESIGN.md "Membership safety"): every host whose
 * agent reports a status when the wait starts (its status key lives on the
 * agent's session lease), every host holding a volunteer or endpoints key
 * (a supervisor's session), every host that starts reporting during the
 * wait, and the hosts named by --hosts. A host whose status key vanishes
 * (agent stopped, lease expired) stays in the set as pending: it is never
 * dropped, so a dead host makes --wait time out (exit 4) naming it. With
 * --min-hosts N (fleets that shrink on purpose) hosts that do not report
 * are not waited for, as long as N hosts converged; --hosts are always
 * waited for. Only the exact deploy id counts: a host reporting another id
 * (even a higher one) has not converged on this one.
 *
 * wait_decide() is the decision as a pure function (tests/unit/test_wait.c);
 * the rest reads etcd and keeps the set up to date. */
#include <stdio.h>

#include "deploy.h"
#include "deployer.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

static bool host_converged(const struct wait_host *h, int64_t id) {
        return h->reporting && h->st.deploy == id && h->st.state == DEPLOY_STATE_CONVERGED;
}

enum wait_verdict wait_decide(const struct wait_host *hosts, size_t n, int64_t id, size_t min_hosts,
                              size_t *ret_done, size_t *ret_failed) {
        size_t done = 0;
        bool pending = false;

        for (size_t i = 0; i < n; i++) {
                const struct wait_host *h = &hosts[i];
                if (h->reporting && h->st.deploy == id && h->st.state == DEPLOY_STATE_FAILED) {
                        if (ret_failed)
                                *ret_failed = i;
                        if (ret_done)
                                *ret_done = done;
                        return WAIT_FAILED;
                }
                if (host_converged(h, id))
                        done++;
                else if (h->required || h->reporting || min_hosts == 0)
                        pending = true;
                /* else: not reporting, and --min-hosts says the fleet may shrink */
        }
        if (ret_done)
                *ret_done = done;
        if (pending || done == 0 || done < min_hosts)
                return WAIT_PENDING;
        return WAIT_DONE;
}

/* "h2 (applying deploy 3)", "h3 (stopped reporting; last: converged deploy 2)",
 * "h4 (never reported)". */
static char *host_describe(const struct wait_host *h) {
        char *s = NULL;
        int r;

        if (h->reporting)
                r = asprintf(&s, "%s (%s deploy %lld)", h->host, deploy_state_to_string(h->st.state),
                             (long long)h->st.deploy);
        else if (h->has_status)
                r = asprintf(&s, "%s (stopped reporting: status key gone; last: %s deploy %lld)", h->host,
                             deploy_state_to_string(h->st.state), (long long)h->st.deploy);
        else
                r = asprintf(&s, "%s (never reported%s)", h->host, h->required ? "; named by --hosts" : "");
        return r < 0 ? NULL : s;
}

char *wait_pending_list(const struct wait_host *hosts, size_t n, int64_t id, size_t min_hosts, size_t max) {
        _cleanup_strv_ char **v = NULL;
        size_t count = 0;

        for (size_t i = 0; i < n; i++) {
                const struct wait_host *h = &hosts[i];
                if (host_converged(h, id) || (!h->required && !h->reporting && min_hosts > 0))
                        continue;
                if (max > 0 && count++ >= max)
                        continue;
                if (strv_consume(&v, host_describe(h)) < 0)
                        return NULL;
        }
        if (max > 0 && count > max) {
                char *more = NULL;
                if (asprintf(&more, "and %zu more", count - max) < 0 || strv_consume(&v, more) < 0)
                        return NULL;
        }
        return v ? strv_join(v, ", ") : NULL;
}

/* Progress lines name at most this many pending hosts, and come at most
 * once per PROGRESS_USEC: with hundreds of agents a line per status
 * event, each naming every pending host, was megabytes of log per deploy. */
#define PROGRESS_HOSTS 10
#define PROGRESS_USEC USEC_PER_SEC

struct waiter {
        int64_t id;
        size_t min_hosts;
        struct wait_host *hosts;
        size_t n;
        char *prefix;
        int result;             /* -1 while undecided */
        char *last_progress;    /* the newest progress line */
        bool progress_due;      /* ... not printed yet */
        uint64_t progress_when; /* when a progress line was printed last */
        bool resync;            /* the watch was compacted: read again */
        bool read;              /* the first read is in: every host we know of is there */
        struct etcd_watch *watch;
        uint64_t timeout_usec, deadline;
};

static void wait_host_clear(struct wait_host *h) {
        free(h->host);
        host_status_clear(&h->st);
        *h = (struct wait_host){0};
}

/* The entry of host, added (not reporting, no status) if new. */
static struct wait_host *waiter_host(struct waiter *w, const char *host) {
        for (size_t i = 0; i < w->n; i++)
                if (streq(w->hosts[i].host, host))
                        return &w->hosts[i];
        struct wait_host *nh = reallocarray(w->hosts, w->n + 1, sizeof(*nh));
        if (!nh)
                return NULL;
        w->hosts = nh;
        nh = &w->hosts[w->n];
        *nh = (struct wait_host){.host = strdup(host)};
        if (!nh->host)
                return NULL;
        w->n++;
        return nh;
}

/* A status key's value at kv->mod_revision, from the read or the watch
 * (the two overlap: whatever is older than what we have is dropped). */
static int waiter_put(struct waiter *w, const struct etcd_kv *kv) {
        const char *host = key_host_suffix(kv->key, w->prefix);
        struct wait_host *h;
        struct host_status s;
        char err[256];

        if (!host) {
                log_debug("ignoring status key '%s': not a valid host name", kv->key);
                return 0;
        }
        h = waiter_host(w, host);
        if (!h)
                return -ENOMEM;
        if (kv->mod_revision > 0 && kv->mod_revision <= h->rev)
                return 0;
        h->rev = kv->mod_revision;
        if (host_status_decode(host, kv->value ? kv->value : "", kv->value_len, &s, err, sizeof err) < 0) {
                /* it reports, but nothing we can read: pending, and said why */
                log_warnx("malformed status of host '%s': %s", host, err);
                host_status_clear(&h->st);
                h->st.deploy = -1;
                h->st.state = DEPLOY_STATE_APPLYING;
                h->reporting = true;
                h->has_status = true;
                return 0;
        }
        host_status_clear(&h->st);
        h->st = s;
        h->reporting = true;
        h->has_status = true;
        return 0;
}

/* host's status key is gone as of revision rev (deleted, or absent from a
 * read at rev). */
static void waiter_gone(struct waiter *w, const char *host, int64_t rev) {
        for (size_t i = 0; i < w->n; i++) {
                struct wait_host *h = &w->hosts[i];
                if (!streq(h->host, host) || rev <= h->rev)
                        continue;
                h->rev = rev;
                if (!h->reporting)
                        continue;
                h->reporting = false;
                log_warnx(
                    "host '%s' stopped reporting status (agent stopped or its session lease expired)%s",
                    host,
                    w->min_hosts > 0 && !h->required ? "; --min-hosts: not waiting for it"
                                                     : "; still waiting for it");
        }
}

/* The newest progress line, if not printed yet and the last one is old enough. */
static void waiter_progress(struct waiter *w) {
        uint64_t now = now_usec();

        if (!w->progress_due || (w->progress_when > 0 && now < w->progress_when + PROGRESS_USEC))
                return;
        log_info("waiting for deploy %lld: %s", (long long)w->id, w->last_progress);
        w->progress_due = false;
        w->progress_when = now;
}

/* Decide from the statuses seen so far; print progress when it changes. */
static void waiter_evaluate(struct waiter *w) {
        size_t done = 0, failed = 0;
        enum wait_verdict v = wait_decide(w->hosts, w->n, w->id, w->min_hosts, &done, &failed);

        if (v == WAIT_FAILED) {
                struct host_status *s = &w->hosts[failed].st;
                _cleanup_free_ char *errs = strv_join(s->errors, "; ");
                log_errorx("host '%s' failed to apply deploy %lld: %s", w->hosts[failed].host,
                           (long long)w->id, errs && *errs ? errs : "no error reported");
                w->result = EXIT_FAILED;
                return;
        }
        if (v == WAIT_DONE) {
                if (done == w->n)
                        log_info("all %zu hosts converged on deploy %lld", w->n, (long long)w->id);
                else {
                        _cleanup_strv_ char **gone = NULL;
                        for (size_t i = 0; i < w->n; i++)
                                if (!host_converged(&w->hosts[i], w->id))
                                        (void)strv_push(&gone, w->hosts[i].host);
                        _cleanup_free_ char *g = gone ? strv_join(gone, ", ") : NULL;
                        log_notice(
                            "%zu of %zu hosts converged on deploy %lld (--min-hosts %zu); not reporting, "
                            "not waited for: %s",
                            done, w->n, (long long)w->id, w->min_hosts, g ? g : "?");
                }
                w->result = EXIT_DONE;
                return;
        }
        char *line = NULL;
        if (w->n == 0)
                line = strdup("no agent reports status yet");
        else {
                _cleanup_free_ char *pending =
                    wait_pending_list(w->hosts, w->n, w->id, w->min_hosts, PROGRESS_HOSTS);
                if (asprintf(&line, "%zu/%zu hosts converged%s%s%s", done, w->n,
                             done < w->min_hosts ? " (fewer than --min-hosts)" : "",
                             pending ? ", pending: " : "", pending ? pending : "") < 0)
                        line = NULL;
        }
        if (line && (!w->last_progress || !streq(line, w->last_progress))) {
                free(w->last_progress);
                w->last_progress = line;
                w->progress_due = true;
                waiter_progress(w);
        } else
                free(line);
}

/* The status keys, and the hosts holding a live volunteer or endpoints
 * key (on a lease: a supervisor's session; each runs an agent that must
 * converge too). */
enum { READ_STATUS, READ_VOLUNTEER, READ_ENDPOINTS, _READ_MAX };

/* Hosts holding a lease-bound key of a range: added to the set. */
static int waiter_add_cluster_hosts(struct waiter *w, const struct etcd_kvs *kvs, const char *prefix) {
        for (size_t i = 0; i < kvs->n; i++) {
                const char *host = key_host_suffix(kvs->kvs[i].key, prefix);
                if (kvs->kvs[i].lease == 0) /* not a supervisor's session: a stray key */
                        continue;
                if (host && !waiter_host(w, host))
                        return -ENOMEM;
        }
        return 0;
}

/* Every status key now; a host in the set without one stopped reporting.
 * With cluster set (when the wait starts), the volunteer and endpoints
 * keys too, in the same txn: one round trip, one revision. Reading them
 * one after the other cost a round trip each, and right after a deploy
 * every agent is writing its status, so each one waited in etcd's queue. */
static int waiter_read(struct waiter *w, struct etcd_client *c, bool cluster) {
        _cleanup_(json_decrefp) json_t *reply = NULL;
        _cleanup_free_ char *vprefix = key_volunteer_prefix(), *eprefix = key_endpoints_prefix();
        const char *prefixes[_READ_MAX] = {
            [READ_STATUS] = w->prefix, [READ_VOLUNTEER] = vprefix, [READ_ENDPOINTS] = eprefix};
        struct etcd_kvs kvs[_READ_MAX] = {0};
        struct etcd_error e = {0};
        size_t n = cluster ? _READ_MAX : 1;
        int r = 0;

        if (!vprefix || !eprefix)
                return log_error_errno(-ENOMEM, "out of memory");
        json_t *ops = json_array();
        for (size_t i = 0; ops && i < n; i++)
                if (json_array_append_new(ops, etcd_op_range(prefixes[i], true)) < 0) {
                        json_decref(ops);
                        ops = NULL;
                }
        if (!ops)
                return log_error_errno(-ENOMEM, "out of memory");
        r = etcd_call_sync(c, ETCD_TXN, etcd_req_txn(NULL, ops, NULL), &reply, &e);
        if (r < 0)
                log_errorx("cannot read agent status under '%s': %s", w->prefix, e.msg);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = etcd_parse_txn_range(reply, i, &kvs[i], &e);
                if (r < 0)
                        log_errorx("cannot read '%s': %s", prefixes[i], e.msg);
        }
        for (size_t i = READ_VOLUNTEER; r >= 0 && i < n; i++)
                r = waiter_add_cluster_hosts(w, &kvs[i], prefixes[i]);
        if (r >= 0) {
                const struct etcd_kvs *st = &kvs[READ_STATUS];
                log_debug("read %zu status keys at revision %lld", st->n, (long long)st->revision);
                for (size_t i = 0; i < w->n; i++) {
                        bool seen = false;
                        for (size_t k = 0; k < st->n && !seen; k++) {
                                const char *host = key_host_suffix(st->kvs[k].key, w->prefix);
                                seen = host && streq(host, w->hosts[i].host);
                        }
                        if (!seen)
                                waiter_gone(w, w->hosts[i].host, st->revision);
                }
                for (size_t i = 0; i < st->n && r >= 0; i++)
                        r = waiter_put(w, &st->kvs[i]);
        }
        for (size_t i = 0; i < _READ_MAX; i++)
                etcd_kvs_clear(&kvs[i]);
        if (r == -ENOMEM)
                return log_error_errno(r, "out of memory");
        return r < 0 ? -EIO : 0;
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
                        if (host)
                                waiter_gone(w, host, ev->kv.mod_revision);
                } else if (waiter_put(w, &ev->kv) < 0)
                        w->result = EXIT_ERROR;
        }
        /* before the first read, a host that reports first is not all hosts;
         * before the deploy is written, there is nothing to decide */
        if (w->result < 0 && w->read && w->id > 0)
                waiter_evaluate(w);
}

struct waiter *wait_free(struct waiter *w) {
        if (!w)
                return NULL;
        etcd_watch_free(w->watch);
        for (size_t i = 0; i < w->n; i++)
                wait_host_clear(&w->hosts[i]);
        free(w->hosts);
        free(w->prefix);
        free(w->last_progress);
        free(w);
        return NULL;
}

/* Run the loop until decided, compacted (resync), past the deadline, or,
 * with created set, until etcd has confirmed that watch. */
static void waiter_run(struct waiter *w, struct etcd_client *c, struct etcd_watch *created) {
        uint64_t deadline = w->deadline;

        while (w->result < 0 && !w->resync && (!created || etcd_watch_next_revision(created) <= 0)) {
                waiter_progress(w);
                uint64_t now = now_usec(), until = deadline;
                if (now >= deadline)
                        return;
                if (w->progress_due && w->progress_when + PROGRESS_USEC < until) {
                        until = w->progress_when + PROGRESS_USEC;
                        if (until <= now) /* came due since waiter_progress() looked */
                                until = now + 1;
                }
                int r = sd_event_run(etcd_client_event(c), until - now);
                if (r < 0) {
                        log_error_errno(r, "event loop failed: %m");
                        w->result = EXIT_ERROR;
                }
        }
}

/* Open the watch of the status keys, from now, and let etcd confirm it;
 * then read them. A watch asked to start at the read's revision would
 * start behind: the agents write their status meanwhile, and etcd catches
 * such a watcher up only every 100 ms. Read and watch overlap; each host
 * keeps the newest revision it was told (waiter_put, waiter_gone). first:
 * also read which hosts hold a supervisor's session. */
static void waiter_watch_and_read(struct waiter *w, struct etcd_client *c, bool first) {
        w->resync = false;
        etcd_watch_free(w->watch);
        w->watch = NULL;
        int r = etcd_watch_new(c, w->prefix, true, 0, on_watch, w, &w->watch);
        if (r < 0) {
                log_error_errno(r, "cannot watch '%s': %m", w->prefix);
                w->result = EXIT_ERROR;
                return;
        }
        waiter_run(w, c, w->watch); /* until etcd confirms the watch */
        if (w->result >= 0 || w->resync || now_usec() >= w->deadline)
                return;
        log_debug("watch of '%s' confirmed from revision %lld", w->prefix,
                  (long long)etcd_watch_next_revision(w->watch));
        if (waiter_read(w, c, first) < 0) {
                w->result = EXIT_ERROR;
                return;
        }
        w->read = true;
        if (w->id > 0)
                waiter_evaluate(w);
}

struct waiter *wait_prepare(struct etcd_client *c, uint64_t timeout_usec, char *const *hosts,
                            size_t min_hosts) {
        struct waiter *w = calloc(1, sizeof(*w));

        if (!w) {
                log_error_errno(-ENOMEM, "out of memory");
                return NULL;
        }
        *w = (struct waiter){.min_hosts = min_hosts, .timeout_usec = timeout_usec, .result = -1};
        w->deadline = now_usec() + timeout_usec;
        w->prefix = key_status_prefix();
        if (!w->prefix) {
                log_error_errno(-ENOMEM, "out of memory");
                return wait_free(w);
        }
        for (size_t i = 0; hosts && hosts[i]; i++) {
                struct wait_host *h = waiter_host(w, hosts[i]);
                if (!h) {
                        log_error_errno(-ENOMEM, "out of memory");
                        return wait_free(w);
                }
                h->required = true;
        }
        do
                waiter_watch_and_read(w, c, true);
        while (w->result < 0 && w->resync && now_usec() < w->deadline);
        if (w->result >= 0) /* logged */
                return wait_free(w);
        if (!w->read) {
                log_errorx("etcd did not confirm a watch of '%s' within %.0f s", w->prefix,
                           (double)timeout_usec / 1e6);
                return wait_free(w);
        }
        return w;
}

int wait_for_deploy(struct waiter *w, struct etcd_client *c, int64_t id) {
        w->id = id;
        w->deadline = now_usec() + w->timeout_usec;
        log_info("waiting up to %.0f s for every agent to converge on deploy %lld",
                 (double)w->timeout_usec / 1e6, (long long)id);
        if (w->read)
                waiter_evaluate(w);
        for (;;) {
                if (w->resync) /* compacted: watch and read again (wait_prepare did the first read) */
                        waiter_watch_and_read(w, c, false);
                waiter_run(w, c, NULL);
                if (w->result >= 0 || !w->resync || now_usec() >= w->deadline)
                        break;
        }
        if (w->result < 0) {
                double t = (double)w->timeout_usec / 1e6;
                if (w->n == 0)
                        log_errorx("timed out after %.0f s: no agent reports status under '%s'", t,
                                   w->prefix);
                else {
                        size_t done = 0;
                        (void)wait_decide(w->hosts, w->n, id, w->min_hosts, &done, NULL);
                        _cleanup_free_ char *pending =
                            wait_pending_list(w->hosts, w->n, id, w->min_hosts, 0);
                        if (pending)
                                log_errorx(
                                    "timed out after %.0f s waiting for deploy %lld; pending hosts: %s", t,
                                    (long long)id, pending);
                        else
                                log_errorx(
                                    "timed out after %.0f s waiting for deploy %lld: %zu hosts converged, "
                                    "fewer than --min-hosts %zu",
                                    t, (long long)id, done, w->min_hosts);
                }
                w->result = EXIT_TIMEOUT;
        }
        return w->result;
}
