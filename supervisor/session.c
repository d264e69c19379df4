/* session.c: this node's session with the cluster: a lease kept alive
 * (a new one when keepalives fail for a whole TTL), our volunteer key on it
 * (refusing a duplicate hostname), our endpoints key while our member is
 * healthy, and /_mgmt/coordinator while we coordinate. It reports upward
 * through the node's callbacks (on_fatal); a new session re-reads the
 * cluster (view.c). */
#include <bsd/stdlib.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

/* The session lease: our keys vanish this long after we die. Part of the
 * time to detect a dead host, so it follows --dead-member-grace (3..10 s). */
int64_t session_lease_ttl(const struct node *n) {
        int64_t t = (int64_t)(n->sc->dead_grace / USEC_PER_SEC / 2);
        return t < 3 ? 3 : t > 10 ? 10 : t;
}

/* ---------------- session: lease, volunteer, endpoints ---------------- */

void session_lease_file(struct node *n, char *p, size_t len) {
        snprintf(p, len, "%s/lease", n->sc->prefix);
}

static int session_timer_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        n->session_timer = sd_event_source_disable_unref(n->session_timer);
        session_start(n);
        return 0;
}

static void session_retry(struct node *n, const char *what, const struct etcd_error *err) {
        /* 250 ms, doubling to 16 s: a seed that starts a moment after us is met at once */
        uint64_t delay = (USEC_PER_SEC / 4) << (n->session_failures < 6 ? n->session_failures : 6), now;
        _cleanup_free_ char *eps = strv_join(etcd_client_endpoints(n->client), ",");

        n->session_busy = false;
        n->session_failures++;
        if (n->session_failures == 1 || n->session_failures % 10 == 0)
                log_warnx("%s: %s%s (endpoints %s); retrying in %.2gs, backing off to 16s", what,
                          err ? err->msg : "failed",
                          !n->auth && err && strstr(err->msg, "no etcd user was given")
                              ? "; supervisors of this cluster need --auth-root-password-file"
                              : "",
                          eps ? eps : "?", (double)delay / USEC_PER_SEC);
        /* systemd shows why the start takes long; notify_status() sends the role again once connected */
        sd_notifyf(false, "STATUS=waiting for etcd at %s: %s", eps ? eps : "?", err ? err->msg : what);
        n->status[0] = 0;
        if (n->shutting_down)
                return;
        sd_event_now(n->event, CLOCK_MONOTONIC, &now);
        n->session_timer = sd_event_source_disable_unref(n->session_timer);
        /* accuracy a tenth of the delay: sd-event's default (250 ms) would
         * double the first one */
        sd_event_add_time(n->event, &n->session_timer, CLOCK_MONOTONIC, now + delay, delay / 10,
                          session_timer_cb, n);
}

/* A write whose failure changes nothing here but is worth a line in the
 * log; userdata is a static description. */
static void warn_on_error(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        if (err)
                log_warnx("%s: %s", (const char *)ud, err->msg);
}

/* Send such a write: what (static) is logged if etcd refuses it, or here if
 * it cannot even be sent. */
static void best_effort(struct node *n, const char *path, json_t *body, const char *what) {
        int r = etcd_call(n->client, path, body, warn_on_error, (void *)what);
        if (r < 0)
                log_warn_errno(r, "%s: %m", what);
}

void session_announce_coordinator(struct node *n) {
        _cleanup_free_ char *k = key_coordinator();
        /* for observers only; the next leadership change writes it again */
        if (n->coordinator && n->lease)
                best_effort(n, ETCD_PUT, etcd_req_put(k, n->sc->hostname, n->lease),
                            "cannot record ourselves in /_mgmt/coordinator");
}

static void session_ready(struct node *n) {
        if (n->session_failures > 0)
                log_notice("connected to etcd at %s", etcd_client_current_endpoint(n->client));
        n->session_failures = 0;
        n->session_busy = false;
        /* from now, not from rev + 1: etcd serves a watch from a past
         * revision only every 100 ms until it has caught up, and a nominee
         * heard of its learner 60-100 ms late; each watch's confirmation
         * triggers a read (view.c), which covers what came in between */
        if (!n->watches[0])
                view_watches_start(n);
        n->endpoints_published = false; /* re-put on the new lease */
        session_announce_coordinator(n);
        auth_session_start(n);
        view_refresh(n);
}

static void volunteer_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        bool ok;
        struct etcd_error perr;
        struct etcd_kvs kvs = {0};

        if (err)
                return session_retry(n, "cannot volunteer", err);
        if (etcd_parse_txn(reply, &ok, &perr) < 0)
                return session_retry(n, "cannot volunteer", &perr);
        if (!ok) {
                if (etcd_parse_txn_range(reply, 0, &kvs, &perr) < 0)
                        return session_retry(n, "cannot volunteer", &perr);
                int64_t holder = kvs.n ? kvs.kvs[0].lease : 0;
                _cleanup_free_ char *mine = strv_join(n->sc->adv_server_urls, ",");
                /* our own key from an earlier session or run: same lease we
                 * remember, or our very peer URLs (no two live supervisors
                 * can advertise the same ones) */
                bool ours = holder == n->lease || (holder && holder == n->old_lease) || holder == 0 ||
                            (kvs.n && mine && streq(kvs.kvs[0].value, mine));
                etcd_kvs_clear(&kvs);
                if (ours) {
                        /* our own key from a previous run: take it over */
                        _cleanup_free_ char *k = key_volunteer(n->sc->hostname);
                        _cleanup_free_ char *v = strv_join(n->sc->adv_server_urls, ",");
                        best_effort(n, ETCD_PUT, etcd_req_put(k, v, n->lease),
                                    "cannot take over our volunteer key");
                        /* the old lease would expire anyway; revoking only hurries it */
                        if (holder && holder != n->lease)
                                best_effort(n, ETCD_LEASE_REVOKE, etcd_req_lease_id(holder),
                                            "cannot revoke our previous session lease");
                } else {
                        _cleanup_free_ char *k = key_volunteer(n->sc->hostname);
                        log_errorx("hostname '%s' is already in use: another supervisor volunteers under it "
                                   "(key %s held by lease %llx); refusing to start",
                                   n->sc->hostname, k ? k : "", (unsigned long long)holder);
                        n->on_fatal(n, 1);
                        return;
                }
        }
        if (!n->volunteered)
                log_notice("volunteering as '%s' (peer URLs %s)", n->sc->hostname,
                           n->sc->adv_server_urls[0]);
        n->volunteered = true;
        session_ready(n);
}

void session_volunteer(struct node *n) {
        _cleanup_free_ char *k = key_volunteer(n->sc->hostname);
        _cleanup_free_ char *v = strv_join(n->sc->adv_server_urls, ",");
        json_t *cmp = json_pack("[o]", etcd_cmp_version(k, "=", 0));
        json_t *succ = json_pack("[o]", etcd_op_put(k, v, n->lease));
        json_t *fail = json_pack("[o]", etcd_op_range(k, false));
        int r = etcd_call(n->client, ETCD_TXN, etcd_req_txn(cmp, succ, fail), volunteer_done, n);
        if (r < 0)
                session_retry(n, "cannot volunteer", NULL);
}

static void granted(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_error perr;
        int64_t id;
        char p[4096], buf[32];

        if (err)
                return session_retry(n, "cannot reach etcd", err);
        if (etcd_parse_lease_grant(reply, &id, NULL, &perr) < 0)
                return session_retry(n, "cannot get a lease", &perr);
        n->lease = id;
        n->ka_ok_at = now_usec();
        session_lease_file(n, p, sizeof p);
        snprintf(buf, sizeof buf, "%lld\n", (long long)id);
        write_file_atomic(p, buf, strlen(buf), 0600);
        log_debug("session lease %llx", (unsigned long long)id);
        if (n->role == ROLE_CLIENT || n->role == ROLE_LEAVING || n->sc->no_server)
                session_ready(n);
        else
                session_volunteer(n);
}

void session_start(struct node *n) {
        if (n->session_busy || n->shutting_down)
                return;
        n->session_busy = true;
        if (etcd_call(n->client, ETCD_LEASE_GRANT, etcd_req_lease_grant(session_lease_ttl(n)), granted, n) <
            0)
                session_retry(n, "cannot reach etcd", NULL);
}

/* Forget the current lease (expired or lost); its keys may still be around
 * for a moment, and a new session must recognise them as ours. */
void session_drop_lease(struct node *n) {
        if (n->lease)
                n->old_lease = n->lease;
        n->lease = 0;
        n->volunteered = false;
}

static void keepalive_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        int64_t ttl = 0, sent = n->ka_lease;
        struct etcd_error perr;

        n->ka_lease = 0;
        if (sent != n->lease || !n->lease)
                return; /* an answer about a lease we no longer use */
        if (err) {
                log_debug("lease keepalive failed: %s", err->msg);
                return;
        }
        n->ka_ok_at = now_usec();
        if (etcd_parse_lease_keepalive(reply, &ttl, &perr) < 0 || ttl <= 0) {
                log_warnx("session lease %llx expired; starting a new session",
                          (unsigned long long)n->lease);
                session_drop_lease(n);
                session_start(n);
        }
}

int session_keepalive_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        sd_event_source_set_time(s, usec + (uint64_t)session_lease_ttl(n) * USEC_PER_SEC / 3);
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        /* one keepalive in flight; a healthy member keeps its lease through
         * its own etcd, so partitioned endpoints in the list cannot starve it */
        if (!n->lease || n->session_busy || n->ka_lease)
                return 0;
        /* keepalives failing for a whole TTL: the lease may be gone with our
         * keys; a new session puts them back (a stale one is revoked) */
        if (n->ka_ok_at && usec - n->ka_ok_at > (uint64_t)session_lease_ttl(n) * USEC_PER_SEC) {
                log_warnx("lease keepalives have failed for %llus: session lease %llx may have expired; "
                          "starting a "
                          "new session",
                          (unsigned long long)((usec - n->ka_ok_at) / USEC_PER_SEC),
                          (unsigned long long)n->lease);
                n->ka_ok_at = 0;
                session_drop_lease(n);
                session_start(n);
                return 0;
        }
        n->ka_lease = n->lease;
        int r =
            n->healthy && !n->learner
                ? etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_LEASE_KEEPALIVE,
                               etcd_req_lease_id(n->lease), keepalive_done, n)
                : etcd_call(n->client, ETCD_LEASE_KEEPALIVE, etcd_req_lease_id(n->lease), keepalive_done, n);
        if (r < 0)
                n->ka_lease = 0;
        return 0;
}

static void published(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        _cleanup_free_ char *v = strv_join(n->sc->adv_client_urls, ",");
        if (err) {
                /* tried again on the next status tick */
                log_warnx("cannot publish our endpoints: %s", err->msg);
                n->endpoints_published = false;
                return;
        }
        etcd_parse_revision(reply, &n->endpoints_rev);
        log_info("published endpoints %s", v ? v : "");
}

void session_publish_endpoints(struct node *n) {
        _cleanup_free_ char *k = key_endpoints(n->sc->hostname);
        _cleanup_free_ char *v = strv_join(n->sc->adv_client_urls, ",");
        if (!n->lease || n->endpoints_published)
                return;
        n->endpoints_published = true;
        n->endpoints_rev = 0;
        if (etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), published, n) < 0)
                n->endpoints_published = false;
}

void session_withdraw_endpoints(struct node *n) {
        _cleanup_free_ char *k = key_endpoints(n->sc->hostname);
        n->endpoints_published = false;
        /* best effort: an unhealthy member often has no quorum to write
         * with; then the key goes with our session lease instead */
        best_effort(n, ETCD_DELETE, etcd_req_delete(k, false),
                    "cannot withdraw our endpoints (they go with our lease)");
}
