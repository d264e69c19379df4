/* node.c: this node's role in the cluster.
 *
 * Duties, all driven by events on the sd-event loop:
 *   - the session: a lease kept alive, our volunteer key (refusing a
 *     duplicate hostname) and endpoints key on it;
 *   - watches on volunteer/, nominated/, endpoints/ and idealClusterSize,
 *     each event scheduling a refresh that re-reads the whole picture in one
 *     transaction plus the member list (rounds are idempotent);
 *   - reacting to nomination: start etcd joining the existing cluster;
 *     to un-nomination or removal: stop etcd, wipe its data, volunteer again;
 *   - a one-second tick asking our own etcd for its status: health, learner,
 *     and whether it is the raft leader, which makes us the coordinator;
 *   - the endpoints cache under the prefix, sd_notify READY/STATUS/WATCHDOG.
 */
#include <bsd/stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "keys.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

/* The session lease: our keys vanish this long after we die. Part of the
 * time to detect a dead host, so it follows --dead-member-grace (3..10 s). */
static int64_t lease_ttl(const struct node *n) {
        int64_t t = (int64_t) (n->sc->dead_grace / USEC_PER_SEC / 2);
        return t < 3 ? 3 : t > 10 ? 10 : t;
}
#define TICK_USEC (1 * USEC_PER_SEC)
/* status ticks our etcd may fail before we take back our endpoints key */
#define UNHEALTHY_WITHDRAW_TICKS 3

const char *node_role_to_string(enum node_role r) {
        static const char *const names[] = {
                [ROLE_CLIENT] = "client", [ROLE_VOLUNTEER] = "volunteer", [ROLE_NOMINEE] = "nominee",
                [ROLE_MEMBER] = "member", [ROLE_LEAVING] = "leaving",
        };
        return names[r];
}

static void set_role(struct node *n, enum node_role r) {
        if (n->role != r)
                log_notice("role: %s -> %s", node_role_to_string(n->role), node_role_to_string(r));
        n->role = r;
}

static bool has_data(struct node *n) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/member", n->sc->data_dir);
        return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---------------- sd_notify ---------------- */

static void notify_status(struct node *n) {
        char buf[256];
        size_t voters = 0;
        for (size_t i = 0; i < n->members.n; i++)
                if (!n->members.m[i].learner)
                        voters++;
        snprintf(buf, sizeof buf, "%s%s, %zu voting member(s), ideal %lld", node_role_to_string(n->role),
                 n->coordinator ? " (coordinator)" : "", voters, n->ideal);
        if (!streq(buf, n->status)) {
                snprintf(n->status, sizeof n->status, "%s", buf);
                sd_notifyf(false, "STATUS=%s", buf);
                log_debug("status: %s", buf);
        }
        bool ready = (n->role == ROLE_MEMBER && n->healthy && n->have_state) ||
                     ((n->role == ROLE_CLIENT || n->role == ROLE_VOLUNTEER) && n->have_state);
        if (ready && !n->ready_sent) {
                n->ready_sent = true;
                sd_notify(false, "READY=1");
                log_notice("ready: %s", buf);
        }
}

/* ---------------- endpoints cache ---------------- */

static void cache_path(struct node *n, char *p, size_t len) {
        snprintf(p, len, "%s/endpoints", n->sc->prefix);
}

static char **cache_read(struct node *n) {
        char p[4096], err[256];
        _cleanup_free_ char *text = NULL;
        char **urls = NULL;
        cache_path(n, p, sizeof p);
        if (read_file_max(p, 1 << 16, &text, NULL) < 0)
                return NULL;
        if (urls_parse(text, &urls, err, sizeof err) < 0)
                return NULL;
        return urls;
}

static void cache_write(struct node *n, char *const *urls) {
        char p[4096];
        _cleanup_free_ char *j = strv_join(urls, "\n");
        cache_path(n, p, sizeof p);
        if (j && write_file_atomic(p, j, strlen(j), 0600) < 0)
                log_warn("cannot write endpoint cache '%s'", p);
}

/* Client endpoints: our own etcd first when it runs, then every known member, then seeds. */
static void update_endpoints(struct node *n) {
        _cleanup_strv_ char **v = NULL;
        if (n->child.state != CHILD_DOWN && !n->learner)
                for (size_t i = 0; n->sc->adv_client_urls[i]; i++)
                        strv_push(&v, n->sc->adv_client_urls[i]);
        for (size_t i = 0; n->end_urls && n->end_urls[i]; i++) {
                char err[256];
                _cleanup_strv_ char **u = NULL;
                if (urls_parse(n->end_urls[i], &u, err, sizeof err) < 0)
                        continue;
                for (size_t j = 0; u[j]; j++)
                        if (!strv_contains(v, u[j]))
                                strv_push(&v, u[j]);
        }
        _cleanup_strv_ char **known = strv_copy(v);
        for (size_t i = 0; n->sc->seeds && n->sc->seeds[i]; i++)
                if (!strv_contains(v, n->sc->seeds[i]))
                        strv_push(&v, n->sc->seeds[i]);
        if (strv_length(v) == 0)
                return;
        etcd_client_set_endpoints(n->client, v);
        if (strv_length(known) > 0)
                cache_write(n, known);
}

/* ---------------- session: lease, volunteer, endpoints ---------------- */

static void session_start(struct node *n);
static void session_retry(struct node *n, const char *what, const struct etcd_error *err);
static void watches_start(struct node *n, int64_t rev);

static void lease_file(struct node *n, char *p, size_t len) {
        snprintf(p, len, "%s/lease", n->sc->prefix);
}

static int session_timer_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        n->session_timer = sd_event_source_disable_unref(n->session_timer);
        session_start(n);
        return 0;
}

static void session_retry(struct node *n, const char *what, const struct etcd_error *err) {
        uint64_t delay = USEC_PER_SEC << (n->session_failures < 4 ? n->session_failures : 4), now;
        _cleanup_free_ char *eps = strv_join(etcd_client_endpoints(n->client), ",");

        n->session_busy = false;
        n->session_failures++;
        if (n->session_failures == 1 || n->session_failures % 10 == 0)
                log_warnx("%s: %s (endpoints %s); retrying every %llus", what, err ? err->msg : "failed",
                          eps ? eps : "?", (unsigned long long) (delay / USEC_PER_SEC));
        if (n->shutting_down)
                return;
        sd_event_now(n->event, CLOCK_MONOTONIC, &now);
        n->session_timer = sd_event_source_disable_unref(n->session_timer);
        sd_event_add_time(n->event, &n->session_timer, CLOCK_MONOTONIC, now + delay, 0, session_timer_cb, n);
}

static void announce_coordinator(struct node *n) {
        _cleanup_free_ char *k = key_coordinator();
        if (n->coordinator && n->lease)
                etcd_call(n->client, ETCD_PUT, etcd_req_put(k, n->sc->hostname, n->lease), NULL, NULL);
}

static void session_ready(struct node *n, int64_t rev) {
        if (n->session_failures > 0)
                log_notice("connected to etcd at %s", etcd_client_current_endpoint(n->client));
        n->session_failures = 0;
        n->session_busy = false;
        if (!n->watches[0])
                watches_start(n, rev + 1);
        n->endpoints_published = false; /* re-put on the new lease */
        announce_coordinator(n);
        node_refresh(n);
}

static void volunteer_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        bool ok;
        struct etcd_error perr;
        struct etcd_kvs kvs = { 0 };
        int64_t rev = 0;

        if (err)
                return session_retry(n, "cannot volunteer", err);
        if (etcd_parse_txn(reply, &ok, &perr) < 0)
                return session_retry(n, "cannot volunteer", &perr);
        etcd_parse_revision(reply, &rev);
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
                        etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), NULL, NULL);
                        if (holder && holder != n->lease)
                                etcd_call(n->client, ETCD_LEASE_REVOKE, etcd_req_lease_id(holder), NULL, NULL);
                } else {
                        _cleanup_free_ char *k = key_volunteer(n->sc->hostname);
                        log_errorx("hostname '%s' is already in use: another supervisor volunteers under it "
                                   "(key %s held by lease %llx); refusing to start",
                                   n->sc->hostname, k ? k : "", (unsigned long long) holder);
                        node_shutdown(n, 1);
                        return;
                }
        }
        if (!n->volunteered)
                log_notice("volunteering as '%s' (peer URLs %s)", n->sc->hostname, n->sc->adv_server_urls[0]);
        n->volunteered = true;
        session_ready(n, rev);
}

static void volunteer(struct node *n) {
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
        int64_t id, rev = 0;
        char p[4096], buf[32];

        if (err)
                return session_retry(n, "cannot reach etcd", err);
        if (etcd_parse_lease_grant(reply, &id, NULL, &perr) < 0)
                return session_retry(n, "cannot get a lease", &perr);
        etcd_parse_revision(reply, &rev);
        n->lease = id;
        lease_file(n, p, sizeof p);
        snprintf(buf, sizeof buf, "%lld\n", (long long) id);
        write_file_atomic(p, buf, strlen(buf), 0600);
        log_debug("session lease %llx", (unsigned long long) id);
        if (n->role == ROLE_CLIENT || n->role == ROLE_LEAVING || n->sc->no_server)
                session_ready(n, rev);
        else
                volunteer(n);
}

static void session_start(struct node *n) {
        if (n->session_busy || n->shutting_down)
                return;
        n->session_busy = true;
        if (etcd_call(n->client, ETCD_LEASE_GRANT, etcd_req_lease_grant(lease_ttl(n)), granted, n) < 0)
                session_retry(n, "cannot reach etcd", NULL);
}

/* Forget the current lease (expired or lost); its keys may still be around
 * for a moment, and a new session must recognise them as ours. */
static void drop_lease(struct node *n) {
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
        if (etcd_parse_lease_keepalive(reply, &ttl, &perr) < 0 || ttl <= 0) {
                log_warnx("session lease %llx expired; starting a new session", (unsigned long long) n->lease);
                drop_lease(n);
                session_start(n);
        }
}

static int keepalive_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        sd_event_source_set_time(s, usec + (uint64_t) lease_ttl(n) * USEC_PER_SEC / 3);
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        /* one keepalive in flight; a healthy member keeps its lease through
         * its own etcd, so partitioned endpoints in the list cannot starve it */
        if (!n->lease || n->session_busy || n->ka_lease)
                return 0;
        n->ka_lease = n->lease;
        int r = n->healthy && !n->learner
                        ? etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_LEASE_KEEPALIVE,
                                       etcd_req_lease_id(n->lease), keepalive_done, n)
                        : etcd_call(n->client, ETCD_LEASE_KEEPALIVE, etcd_req_lease_id(n->lease), keepalive_done, n);
        if (r < 0)
                n->ka_lease = 0;
        return 0;
}

static void publish_endpoints(struct node *n) {
        _cleanup_free_ char *k = key_endpoints(n->sc->hostname);
        _cleanup_free_ char *v = strv_join(n->sc->adv_client_urls, ",");
        if (!n->lease || n->endpoints_published)
                return;
        n->endpoints_published = true;
        etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), NULL, NULL);
        log_info("published endpoints %s", v);
}

static void withdraw_endpoints(struct node *n) {
        _cleanup_free_ char *k = key_endpoints(n->sc->hostname);
        n->endpoints_published = false;
        etcd_call(n->client, ETCD_DELETE, etcd_req_delete(k, false), NULL, NULL);
}

/* ---------------- watches and refresh ---------------- */

static int refresh_defer_cb(sd_event_source *s, void *ud) {
        struct node *n = ud;
        n->refresh_defer = sd_event_source_disable_unref(n->refresh_defer);
        node_refresh(n);
        return 0;
}

static void refresh_soon(struct node *n) {
        if (!n->refresh_defer && !n->shutting_down)
                sd_event_add_defer(n->event, &n->refresh_defer, refresh_defer_cb, n);
}

static void watch_cb(struct etcd_watch *w, const struct etcd_error *err, const struct etcd_watch_msg *msg,
                     void *ud) {
        struct node *n = ud;
        if (err) {
                log_debug("%s", err->msg);
                if (msg && msg->compact_revision > 0) {
                        /* re-create every watch from now and re-read everything */
                        for (size_t i = 0; i < ELEMENTSOF(n->watches); i++)
                                if (n->watches[i] == w)
                                        n->watches[i] = NULL;
                        etcd_watch_free(w);
                        watches_start(n, 0);
                        refresh_soon(n);
                }
                return;
        }
        refresh_soon(n);
}

static void watches_start(struct node *n, int64_t rev) {
        char *keys[4] = { key_volunteer_prefix(), key_nominated_prefix(), key_endpoints_prefix(), key_ideal_size() };
        for (size_t i = 0; i < 4; i++) {
                if (!n->watches[i] &&
                    etcd_watch_new(n->client, keys[i], i < 3, rev, watch_cb, n, &n->watches[i]) < 0)
                        log_warnx("cannot watch '%s'", keys[i]);
                free(keys[i]);
        }
}

static void split_kvs(const struct etcd_kvs *kvs, const char *prefix, char ***hosts, char ***vals) {
        strv_free(*hosts);
        strv_free(*vals);
        *hosts = calloc(1, sizeof(char *));
        *vals = calloc(1, sizeof(char *));
        for (size_t i = 0; i < kvs->n; i++) {
                const char *h = key_host_suffix(kvs->kvs[i].key, prefix);
                if (!h)
                        continue;
                strv_push(hosts, h);
                strv_push(vals, kvs->kvs[i].value);
        }
}

static void members_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_members ms;
        struct etcd_error perr;

        n->refresh_busy = false;
        if (err || etcd_parse_members(reply, &ms, &perr) < 0) {
                log_debug("member list failed: %s", err ? err->msg : perr.msg);
                if (n->refresh_again) {
                        n->refresh_again = false;
                        refresh_soon(n);
                }
                return;
        }
        etcd_members_clear(&n->members);
        n->members = ms;
        n->have_state = true;
        update_endpoints(n);
        node_after_change(n);
        if (n->refresh_again) {
                n->refresh_again = false;
                refresh_soon(n);
        }
}

static void state_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_kvs kv[4] = { 0 };
        struct etcd_error perr;
        bool ok;

        if (err || etcd_parse_txn(reply, &ok, &perr) < 0) {
                n->refresh_busy = false;
                n->refresh_again = false;
                log_debug("cannot read cluster state: %s", err ? err->msg : perr.msg);
                return;
        }
        for (size_t i = 0; i < 4; i++)
                if (etcd_parse_txn_range(reply, i, &kv[i], &perr) < 0) {
                        n->refresh_busy = false;
                        for (size_t j = 0; j < 4; j++)
                                etcd_kvs_clear(&kv[j]);
                        log_warnx("bad cluster state reply: %s", perr.msg);
                        return;
                }
        _cleanup_free_ char *vp = key_volunteer_prefix(), *np = key_nominated_prefix(), *ep = key_endpoints_prefix();
        _cleanup_free_ char *ik = key_ideal_size();
        if (!vp || !np || !ep || !ik) {
                n->refresh_busy = false;
                for (size_t j = 0; j < 4; j++)
                        etcd_kvs_clear(&kv[j]);
                log_errorx("out of memory reading the cluster state");
                return;
        }
        split_kvs(&kv[0], vp, &n->vol_hosts, &n->vol_urls);
        split_kvs(&kv[1], np, &n->nom_hosts, &n->nom_urls);
        split_kvs(&kv[2], ep, &n->end_hosts, &n->end_urls);
        const char *iv = kv[3].n ? kv[3].kvs[0].value : NULL;
        if (!iv) {
                n->ideal = n->sc->ideal;
        } else {
                const char *e = NULL;
                long long v = strtonum(iv, 1, 1000, &e);
                if (e) {
                        if (!n->ideal_text || !streq(n->ideal_text, iv))
                                log_warnx("ignoring %s '%s': %s (must be 1..1000); no resizing", ik, iv, e);
                        n->ideal = -1;
                } else
                        n->ideal = v;
        }
        free(n->ideal_text);
        n->ideal_text = iv ? strdup(iv) : NULL;
        for (size_t j = 0; j < 4; j++)
                etcd_kvs_clear(&kv[j]);
        if (etcd_call(n->client, ETCD_MEMBER_LIST, json_object(), members_done, n) < 0)
                n->refresh_busy = false;
}

void node_refresh(struct node *n) {
        if (n->shutting_down || n->session_busy)
                return;
        if (n->refresh_busy) {
                n->refresh_again = true;
                return;
        }
        _cleanup_free_ char *v = key_volunteer_prefix(), *no = key_nominated_prefix(), *e = key_endpoints_prefix(),
                            *i = key_ideal_size();
        json_t *ops = json_pack("[oooo]", etcd_op_range(v, true), etcd_op_range(no, true), etcd_op_range(e, true),
                                etcd_op_range(i, false));
        n->refresh_busy = true;
        if (etcd_call(n->client, ETCD_TXN, etcd_req_txn(NULL, ops, NULL), state_done, n) < 0)
                n->refresh_busy = false;
}

/* ---------------- reacting to nomination ---------------- */

static const struct etcd_member *my_member(struct node *n) {
        for (size_t i = 0; i < n->members.n; i++) {
                const struct etcd_member *m = &n->members.m[i];
                if (streq(m->name, n->sc->hostname))
                        return m;
                for (size_t j = 0; m->peer_urls[j]; j++)
                        if (strv_contains(n->sc->adv_server_urls, m->peer_urls[j]))
                                return m;
        }
        return NULL;
}

static void start_etcd(struct node *n, const char *initial_cluster, bool existing) {
        _cleanup_strv_ char **argv = etcd_argv(n->sc, initial_cluster, existing);
        int r;

        if (mkdir_p(n->sc->prefix, 0700) < 0)
                log_warn("cannot create '%s'", n->sc->prefix);
        n->healthy = false;
        r = child_start(&n->child, argv);
        if (r < 0)
                log_error_errno(r, "cannot start etcd '%s': %m", n->sc->etcd_binary);
}

static void wipe_and_volunteer(struct node *n) {
        log_notice("wiping etcd data in '%s'", n->sc->data_dir);
        int r = rm_rf(n->sc->data_dir);
        if (r < 0)
                log_error_errno(r, "cannot wipe '%s': %m", n->sc->data_dir);
        n->healthy = n->learner = n->coordinator = false;
        n->my_id = 0;
        round_forget(n);
        set_role(n, n->sc->no_server ? ROLE_CLIENT : ROLE_VOLUNTEER);
        update_endpoints(n);
        if (!n->sc->no_server && !n->volunteered && n->lease)
                volunteer(n);
        refresh_soon(n);
}

static void stopped_for_leave(struct child *ch, void *ud) {
        struct node *n = ud;
        ch->on_stopped = NULL;
        if (n->shutting_down)
                return;
        wipe_and_volunteer(n);
}

static void leave(struct node *n, const char *why) {
        if (n->role == ROLE_LEAVING && n->child.state == CHILD_STOPPING)
                return;
        log_notice("leaving the cluster: %s; stopping etcd", why);
        set_role(n, ROLE_LEAVING);
        withdraw_endpoints(n);
        n->coordinator = false;
        n->child.on_stopped = stopped_for_leave;
        child_stop(&n->child);
}

static void bootstrap_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        if (err) {
                log_warnx("cannot record bootstrap keys: %s; will retry", err->msg);
                return;
        }
        n->bootstrap_pending = false;
        log_notice("bootstrapped a new cluster: nominated '%s', idealClusterSize %lld (unless already set)",
                   n->sc->hostname, n->sc->ideal);
        refresh_soon(n);
}

/* The seed records itself as nominated and the ideal size, each only if absent. */
static void bootstrap_keys(struct node *n) {
        _cleanup_free_ char *nk = key_nominated(n->sc->hostname), *ik = key_ideal_size();
        _cleanup_free_ char *urls = strv_join(n->sc->adv_server_urls, ",");
        char ideal[32];
        snprintf(ideal, sizeof ideal, "%lld", n->sc->ideal);
        /* two independent "put if absent": a txn per key */
        etcd_call(n->client, ETCD_TXN,
                  etcd_req_txn(json_pack("[o]", etcd_cmp_version(ik, "=", 0)),
                               json_pack("[o]", etcd_op_put(ik, ideal, 0)), NULL),
                  NULL, NULL);
        etcd_call(n->client, ETCD_TXN,
                  etcd_req_txn(json_pack("[o]", etcd_cmp_version(nk, "=", 0)),
                               json_pack("[o]", etcd_op_put(nk, urls, 0)), NULL),
                  bootstrap_done, n);
}

/* Called after every refresh: act on our own nomination, then coordinate. */
void node_after_change(struct node *n) {
        bool nominated = strv_contains(n->nom_hosts, n->sc->hostname);
        const struct etcd_member *me = my_member(n);

        if (n->bootstrap_pending) {
                notify_status(n);
                return;
        }
        switch (n->role) {
        case ROLE_VOLUNTEER:
                if (nominated && me && n->child.state == CHILD_DOWN) {
                        _cleanup_free_ char *ic = initial_cluster_from(&n->members, n->sc->hostname,
                                                                       n->sc->adv_server_urls);
                        log_notice("nominated: joining the cluster (initial cluster %s)", ic);
                        rm_rf(n->sc->data_dir);
                        set_role(n, ROLE_NOMINEE);
                        start_etcd(n, ic, true);
                } else if (nominated && !me)
                        log_debug("nominated; waiting to be added as a member");
                break;
        case ROLE_NOMINEE:
        case ROLE_MEMBER:
                if (!nominated)
                        leave(n, "no longer nominated");
                else if (!me && n->child.state != CHILD_STARTING)
                        leave(n, "our member was removed from the cluster");
                break;
        case ROLE_LEAVING:
                if (n->child.state != CHILD_STOPPING && (!nominated || !me))
                        leave(n, n->sc->no_server ? "--no-server: un-nominated by the coordinator"
                                                  : "un-nominated");
                break;
        case ROLE_CLIENT:
                break;
        }
        if (n->coordinator)
                round_run(n);
        notify_status(n);
}

/* ---------------- our own etcd: health, leadership ---------------- */

static void become_coordinator(struct node *n, bool yes) {
        if (n->coordinator == yes)
                return;
        n->coordinator = yes;
        if (yes) {
                log_notice("our etcd is the raft leader: acting as coordinator");
                announce_coordinator(n);
                round_forget(n);
                refresh_soon(n);
        } else
                log_notice("no longer coordinator");
}

/* The coordinator counts a voter as healthy while its endpoints key exists,
 * also when judging whether a removal keeps quorum: a member whose etcd stays
 * unhealthy takes the key back (best effort: without quorum nobody can write,
 * and the key goes with our lease instead). */
static void note_unhealthy(struct node *n) {
        n->healthy = false;
        become_coordinator(n, false);
        if (++n->unhealthy_ticks == UNHEALTHY_WITHDRAW_TICKS && n->endpoints_published) {
                log_warnx("our etcd has been unhealthy for %u s: withdrawing our endpoints so that the coordinator "
                          "does not count this member as healthy",
                          n->unhealthy_ticks);
                withdraw_endpoints(n);
        }
}

static void status_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_status st;
        struct etcd_error perr;

        if (n->child.state != CHILD_STARTING && n->child.state != CHILD_UP)
                return;
        if (err || etcd_parse_status(reply, &st, &perr) < 0) {
                if (n->healthy)
                        log_warnx("our etcd does not answer: %s", err ? err->msg : perr.msg);
                note_unhealthy(n);
                return;
        }
        if (n->my_id != st.member_id) {
                char id[32];
                snprintf(id, sizeof id, "%llx", (unsigned long long) st.member_id);
                log_set_field("MGMT_ETCD_MEMBER", id); /* journald field on every record */
        }
        n->my_id = st.member_id;
        n->learner = st.learner;
        if (st.leader == 0) {
                if (!n->quorum_warned)
                        log_warnx("quorum lost: our etcd sees no leader; no membership change until it is back");
                n->quorum_warned = true;
                note_unhealthy(n);
                etcd_status_clear(&st);
                return;
        }
        if (n->quorum_warned)
                log_notice("quorum is back: leader %llx", (unsigned long long) st.leader);
        n->quorum_warned = false;
        if (!n->healthy)
                log_info("our etcd is healthy (member %llx%s)", (unsigned long long) st.member_id,
                         st.learner ? ", learner" : "");
        n->healthy = true;
        n->unhealthy_ticks = 0;
        child_mark_healthy(&n->child);
        if (n->role == ROLE_NOMINEE && !st.learner) {
                set_role(n, ROLE_MEMBER);
                update_endpoints(n);
        }
        if (n->bootstrap_pending)
                bootstrap_keys(n);
        if (!st.learner && (n->role == ROLE_MEMBER || n->role == ROLE_LEAVING))
                publish_endpoints(n);
        if (!n->lease && !n->session_busy)
                session_start(n);
        become_coordinator(n, st.leader == st.member_id && n->role == ROLE_MEMBER);
        /* snapshot.c: scheduled snapshots only while a healthy voting member */
        snapsched_set_member(n->snap, n->client, n->role == ROLE_MEMBER && !st.learner);
        etcd_status_clear(&st);
        notify_status(n);
}

static int tick_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        sd_event_source_set_time(s, usec + TICK_USEC);
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (n->shutting_down)
                return 0;
        if (n->child.state == CHILD_STARTING || n->child.state == CHILD_UP)
                etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_STATUS, json_object(), status_done, n);
        else
                become_coordinator(n, false);
        /* timeouts (nominee, dead grace) are judged on the tick too; a
         * nominee waiting for its member to be added looks again */
        if (n->coordinator || (n->role == ROLE_VOLUNTEER && strv_contains(n->nom_hosts, n->sc->hostname)))
                node_refresh(n);
        return 0;
}

/* etcd exited on its own. */
static void child_exited(struct child *ch, int status, void *ud) {
        struct node *n = ud;
        n->healthy = false;
        become_coordinator(n, false);
        if (n->shutting_down)
                return;
        if (n->endpoints_published)
                withdraw_endpoints(n);
        if (ch->removed_seen) {
                log_notice("etcd says this member was removed from the cluster");
                wipe_and_volunteer(n);
                return;
        }
        if (n->role == ROLE_LEAVING && !n->sc->no_server) {
                wipe_and_volunteer(n);
                return;
        }
        child_schedule_restart(ch);
}

/* ---------------- life cycle ---------------- */

int node_new(sd_event *e, struct config *cfg, struct sup_config *sc, struct node **ret) {
        struct node *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->event = sd_event_ref(e);
        n->cfg = cfg;
        n->sc = sc;
        n->ideal = sc->ideal;
        child_init(&n->child, e, sc->stop_timeout, child_exited, n);
        if (snapsched_new(e, sc, &n->snap) < 0) /* snapshot.c */
                log_warnx("cannot set up scheduled snapshots");
        *ret = n;
        return 0;
}

int node_start(struct node *n) {
        struct sup_config *sc = n->sc;
        _cleanup_strv_ char **eps = NULL, **cached = cache_read(n);
        char p[4096];
        _cleanup_free_ char *old = NULL;
        int r;

        r = mkdir_p(sc->prefix, 0700);
        if (r < 0)
                return log_error_errno(r, "cannot create state directory '%s': %m", sc->prefix);
        lease_file(n, p, sizeof p);
        if (read_file_max(p, 64, &old, NULL) >= 0)
                parse_int64(strtok(old, "\n"), &n->old_lease);

        bool data = has_data(n);
        if (!sc->no_server || data) {
                char err[512];
                r = sup_check_ports(sc, err, sizeof err);
                if (r < 0) {
                        log_errorx("%s", err);
                        return r;
                }
        }
        if (!sc->seeds && !data && sc->no_server)
                return log_error_errno(-EINVAL, "--no-server needs --seeds: there is no cluster to be a client of");

        /* endpoints: ourselves if we have a member, then cached members, then seeds */
        if (!sc->no_server && (data || !sc->seeds))
                for (size_t i = 0; sc->adv_client_urls[i]; i++)
                        strv_push(&eps, sc->adv_client_urls[i]);
        if (data && sc->no_server)
                for (size_t i = 0; sc->adv_client_urls[i]; i++)
                        strv_push(&eps, sc->adv_client_urls[i]);
        for (size_t i = 0; cached && cached[i]; i++)
                if (!strv_contains(eps, cached[i]))
                        strv_push(&eps, cached[i]);
        for (size_t i = 0; sc->seeds && sc->seeds[i]; i++)
                if (!strv_contains(eps, sc->seeds[i]))
                        strv_push(&eps, sc->seeds[i]);
        struct etcd_tls tls = { sc->cert, sc->key, sc->ca };
        r = etcd_client_new(n->event, eps, &tls, &n->client);
        if (r < 0)
                return log_error_errno(r, "cannot create etcd client: %m");
        etcd_client_set_timeout(n->client, 3 * USEC_PER_SEC);

        if (data) {
                /* never bootstrap over old data: restart our member */
                log_notice("found etcd data in '%s': restarting our member", sc->data_dir);
                set_role(n, sc->no_server ? ROLE_LEAVING : ROLE_MEMBER);
                if (sc->no_server)
                        log_notice("--no-server with member data: serving until the coordinator removes us");
                start_etcd(n, NULL, true);
        } else if (!sc->seeds) {
                log_notice("no --seeds and no data: bootstrapping a new one-member cluster");
                set_role(n, ROLE_MEMBER);
                n->bootstrap_pending = true;
                start_etcd(n, NULL, false);
        } else {
                _cleanup_free_ char *s = strv_join(sc->seeds, ",");
                set_role(n, sc->no_server ? ROLE_CLIENT : ROLE_VOLUNTEER);
                log_notice("joining through seeds %s as %s", s, node_role_to_string(n->role));
                session_start(n);
        }
        /* a restarted member reaches the cluster through the others right
         * away (its own etcd may never come back: removed); a lone seed
         * starts its session once its etcd answers */
        if ((n->role == ROLE_MEMBER || n->role == ROLE_LEAVING) && (sc->seeds || cached))
                session_start(n);

        uint64_t now;
        sd_event_now(n->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(n->event, &n->tick, CLOCK_MONOTONIC, now + TICK_USEC / 4, 0, tick_cb, n);
        if (r < 0)
                return r;
        sd_event_source_set_enabled(n->tick, SD_EVENT_ON);
        r = sd_event_add_time(n->event, &n->keepalive_timer, CLOCK_MONOTONIC,
                              now + (uint64_t) lease_ttl(n) * USEC_PER_SEC / 3, 0, keepalive_cb, n);
        if (r < 0)
                return r;
        sd_event_source_set_enabled(n->keepalive_timer, SD_EVENT_ON);
        return 0;
}

static void shutdown_stopped(struct child *ch, void *ud) {
        struct node *n = ud;
        log_notice("etcd stopped; data and membership kept; exiting");
        sd_event_exit(n->event, n->exit_code);
}

static void revoked(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        if (err)
                log_debug("lease revoke failed: %s", err->msg);
        n->lease = 0;
        if (n->child.state == CHILD_DOWN)
                sd_event_exit(n->event, n->exit_code);
        else {
                n->child.on_stopped = shutdown_stopped;
                child_stop(&n->child);
        }
}

void node_shutdown(struct node *n, int code) {
        if (n->shutting_down)
                return;
        n->shutting_down = true;
        n->exit_code = code;
        sd_notify(false, "STOPPING=1");
        log_notice("stopping%s", code ? " after an error" : "");
        n->tick = sd_event_source_disable_unref(n->tick);
        n->session_timer = sd_event_source_disable_unref(n->session_timer);
        for (size_t i = 0; i < ELEMENTSOF(n->watches); i++) {
                etcd_watch_free(n->watches[i]);
                n->watches[i] = NULL;
        }
        /* our keys go with the lease; the member stays (a restart within the grace rejoins) */
        if (n->lease) {
                etcd_client_set_timeout(n->client, 2 * USEC_PER_SEC);
                if (etcd_call(n->client, ETCD_LEASE_REVOKE, etcd_req_lease_id(n->lease), revoked, n) >= 0)
                        return;
        }
        revoked(n->client, NULL, NULL, n);
}

void node_reload(struct node *n) {
        if (config_reload_file(n->cfg) < 0) {
                log_warnx("config file '%s' has errors; keeping the running configuration",
                          n->cfg->config_file ? n->cfg->config_file : "");
                return;
        }
        /* only timeouts can change at run time; the rest needs a restart */
        n->sc->nominate_timeout = (uint64_t) n->cfg->v[OPT_NOMINATE_TIMEOUT].n;
        n->sc->dead_grace = (uint64_t) n->cfg->v[OPT_DEAD_GRACE].n;
        n->sc->stop_timeout = n->child.stop_timeout = (uint64_t) n->cfg->v[OPT_STOP_TIMEOUT].n;
        log_notice("reloaded '%s': nominate-timeout %llus, dead-member-grace %llus",
                   n->cfg->config_file ? n->cfg->config_file : "(no config file)",
                   (unsigned long long) (n->sc->nominate_timeout / USEC_PER_SEC),
                   (unsigned long long) (n->sc->dead_grace / USEC_PER_SEC));
}

void node_free(struct node *n) {
        if (!n)
                return;
        if (n->child.pid > 0)
                child_kill_now(&n->child);
        for (size_t i = 0; i < ELEMENTSOF(n->watches); i++)
                etcd_watch_free(n->watches[i]);
        etcd_client_free(n->client);
        snapsched_free(n->snap); /* snapshot.c: after the client, so no stream is left */
        sd_event_source_disable_unref(n->tick);
        sd_event_source_disable_unref(n->keepalive_timer);
        sd_event_source_disable_unref(n->session_timer);
        sd_event_source_disable_unref(n->refresh_defer);
        sd_event_source_disable_unref(n->child.child_src);
        sd_event_source_disable_unref(n->child.timer);
        sd_event_source_disable_unref(n->child.out_src);
        if (n->child.out_fd >= 0)
                close(n->child.out_fd);
        strv_free(n->child.argv);
        strv_free(n->vol_hosts);
        strv_free(n->vol_urls);
        strv_free(n->nom_hosts);
        strv_free(n->nom_urls);
        strv_free(n->end_hosts);
        strv_free(n->end_urls);
        free(n->ideal_text);
        etcd_members_clear(&n->members);
        round_forget(n);
        free(n->track);
        free(n->last_decision);
        sd_event_unref(n->event);
        free(n);
}
