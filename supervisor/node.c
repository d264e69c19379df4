/* node.c: this node's role in the cluster.
 *
 * Duties, all driven by events on the sd-event loop:
 *   - the session: a lease kept alive, our volunteer key (refusing a
 *     duplicate hostname) and endpoints key on it;
 *   - watches on volunteer/, nominated/, endpoints/ and idealClusterSize,
 *     each event scheduling a refresh that re-reads the whole picture in one
 *     transaction plus the member list (rounds are idempotent);
 *   - the role (role.c decides, this file acts): start etcd joining the
 *     cluster when nominated and added; keep serving while leaving; stop
 *     etcd and move its data aside only once our removal is confirmed by
 *     our own cluster; refuse to act on a view from another cluster;
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
#define FAST_TICK_USEC (100 * USEC_PER_MSEC)
/* status ticks our etcd may fail before we take back our endpoints key */
#define UNHEALTHY_WITHDRAW_TICKS 3

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

/* Client endpoints: our own etcd first when it runs, then every member the
 * cluster lists and every published endpoint, then seeds. A view that names
 * no endpoint at all (power loss: nobody has published yet) leaves the list
 * as it is: a known-good list is never shrunk to seeds that may be dead. */
static void update_endpoints(struct node *n) {
        _cleanup_strv_ char **v = NULL;
        if (n->child.state != CHILD_DOWN && !n->learner)
                strv_extend(&v, n->sc->adv_client_urls);
        for (size_t i = 0; n->view_ok && i < n->members.n; i++)
                strv_extend(&v, n->members.m[i].client_urls);
        for (size_t i = 0; n->view_ok && n->end_urls && n->end_urls[i]; i++) {
                char err[256];
                _cleanup_strv_ char **u = NULL;
                if (urls_parse(n->end_urls[i], &u, err, sizeof err) < 0) {
                        /* once per value: a hostile or broken key must not flood the log */
                        if (!n->bad_endpoints_text || !streq(n->bad_endpoints_text, n->end_urls[i])) {
                                log_warnx("ignoring endpoints of host '%s': %s", n->end_hosts[i], err);
                                free(n->bad_endpoints_text);
                                n->bad_endpoints_text = strdup(n->end_urls[i]);
                        }
                        continue;
                }
                strv_extend(&v, u);
        }
        /* one linear pass (n log n) instead of a search per URL */
        strv_uniq(v);
        if (strv_length(v) == 0)
                return;
        _cleanup_strv_ char **known = strv_copy(v);
        strv_extend_uniq(&v, n->sc->seeds);
        etcd_client_set_endpoints(n->client, v);
        cache_write(n, known);
}

/* ---------------- session: lease, volunteer, endpoints ---------------- */

static void session_start(struct node *n);
static void judge_view(struct node *n);
static void restore_ideal(struct node *n);
static void refresh_soon(struct node *n);
static void volunteer(struct node *n);
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
        /* 250 ms, doubling to 16 s: a seed that starts a moment after us is met at once */
        uint64_t delay = (USEC_PER_SEC / 4) << (n->session_failures < 6 ? n->session_failures : 6), now;
        _cleanup_free_ char *eps = strv_join(etcd_client_endpoints(n->client), ",");

        n->session_busy = false;
        n->session_failures++;
        if (n->session_failures == 1 || n->session_failures % 10 == 0)
                log_warnx("%s: %s (endpoints %s); retrying in %.2gs, backing off to 16s", what,
                          err ? err->msg : "failed", eps ? eps : "?", (double) delay / USEC_PER_SEC);
        /* systemd shows why the start takes long; notify_status() sends the role again once connected */
        sd_notifyf(false, "STATUS=waiting for etcd at %s: %s", eps ? eps : "?", err ? err->msg : what);
        n->status[0] = 0;
        if (n->shutting_down)
                return;
        sd_event_now(n->event, CLOCK_MONOTONIC, &now);
        n->session_timer = sd_event_source_disable_unref(n->session_timer);
        sd_event_add_time(n->event, &n->session_timer, CLOCK_MONOTONIC, now + delay, 0, session_timer_cb, n);
}

/* A write whose failure changes nothing here but is worth a line in the
 * log; userdata is a static description. */
static void warn_on_error(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        if (err)
                log_warnx("%s: %s", (const char *) ud, err->msg);
}

static void announce_coordinator(struct node *n) {
        _cleanup_free_ char *k = key_coordinator();
        /* for observers only; the next leadership change writes it again */
        if (n->coordinator && n->lease)
                etcd_call(n->client, ETCD_PUT, etcd_req_put(k, n->sc->hostname, n->lease), warn_on_error,
                          (void *) "cannot record ourselves in /_mgmt/coordinator");
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
                        etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), warn_on_error,
                                  (void *) "cannot take over our volunteer key");
                        /* the old lease would expire anyway; revoking only hurries it */
                        if (holder && holder != n->lease)
                                etcd_call(n->client, ETCD_LEASE_REVOKE, etcd_req_lease_id(holder), warn_on_error,
                                          (void *) "cannot revoke our previous session lease");
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
        n->ka_ok_at = now_usec();
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
        n->ka_ok_at = now_usec();
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
        /* keepalives failing for a whole TTL: the lease may be gone with our
         * keys; a new session puts them back (a stale one is revoked) */
        if (n->ka_ok_at && usec - n->ka_ok_at > (uint64_t) lease_ttl(n) * USEC_PER_SEC) {
                log_warnx("lease keepalives have failed for %llus: session lease %llx may have expired; starting a "
                          "new session",
                          (unsigned long long) ((usec - n->ka_ok_at) / USEC_PER_SEC), (unsigned long long) n->lease);
                n->ka_ok_at = 0;
                drop_lease(n);
                session_start(n);
                return 0;
        }
        n->ka_lease = n->lease;
        int r = n->healthy && !n->learner
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
        log_info("published endpoints %s", v ? v : "");
}

static void publish_endpoints(struct node *n) {
        _cleanup_free_ char *k = key_endpoints(n->sc->hostname);
        _cleanup_free_ char *v = strv_join(n->sc->adv_client_urls, ",");
        if (!n->lease || n->endpoints_published)
                return;
        n->endpoints_published = true;
        if (etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), published, n) < 0)
                n->endpoints_published = false;
}

static void withdraw_endpoints(struct node *n) {
        _cleanup_free_ char *k = key_endpoints(n->sc->hostname);
        n->endpoints_published = false;
        /* best effort: an unhealthy member often has no quorum to write
         * with; then the key goes with our session lease instead */
        etcd_call(n->client, ETCD_DELETE, etcd_req_delete(k, false), warn_on_error,
                  (void *) "cannot withdraw our endpoints (they go with our lease)");
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

/* Does the comma-joined URL list hold any of urls? Returns the first shared one. */
static const char *shared_url(const char *list, char *const *urls) {
        for (size_t i = 0; urls && urls[i]; i++) {
                size_t n = strlen(urls[i]);
                for (const char *p = list; p && *p;) {
                        const char *e = strchrnul(p, ',');
                        if ((size_t) (e - p) == n && strneq(p, urls[i], n))
                                return urls[i];
                        p = *e ? e + 1 : e;
                }
        }
        return NULL;
}

/* Another host volunteering (before us) or serving with our URLs. */
static void find_url_conflict(struct node *n, const struct etcd_kvs *vol, const struct etcd_kvs *ep,
                              const char *vp, const char *epp) {
        int64_t mine = INT64_MAX;
        free(n->url_conflict);
        free(n->url_conflict_what);
        n->url_conflict = n->url_conflict_what = NULL;
        for (size_t i = 0; i < vol->n; i++) {
                const char *h = key_host_suffix(vol->kvs[i].key, vp);
                if (h && streq(h, n->sc->hostname))
                        mine = vol->kvs[i].create_revision;
        }
        for (size_t l = 0; l < 2 && !n->url_conflict; l++) {
                const struct etcd_kvs *kvs = l == 0 ? vol : ep;
                char *const *urls = l == 0 ? n->sc->adv_server_urls : n->sc->adv_client_urls;
                for (size_t i = 0; i < kvs->n; i++) {
                        const char *h = key_host_suffix(kvs->kvs[i].key, l == 0 ? vp : epp);
                        const char *u = shared_url(kvs->kvs[i].value, urls);
                        if (!h || !u || streq(h, n->sc->hostname) || (l == 0 && kvs->kvs[i].create_revision > mine))
                                continue;
                        n->url_conflict = strdup(h);
                        if (asprintf(&n->url_conflict_what, "%s URL '%s'", l == 0 ? "peer" : "client", u) < 0)
                                n->url_conflict_what = NULL;
                        break;
                }
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
        n->view_own = n->view_own_pending;
        judge_view(n);
        n->have_state = true;
        if (n->view_ok)
                update_endpoints(n);
        node_after_change(n);
        if (n->refresh_again) {
                n->refresh_again = false;
                refresh_soon(n);
        }
}

/* /_mgmt/cluster: {"id": hex, "generation": N, "created": time} */
static void parse_cluster_key(struct node *n, const char *v) {
        json_t *j = v ? json_loads(v, 0, NULL) : NULL;
        const char *id = NULL;
        json_int_t gen = 0;
        n->view_key_id = 0;
        n->view_gen = 0;
        if (j && json_unpack(j, "{s:s, s:I}", "id", &id, "generation", &gen) == 0 && gen > 0) {
                n->view_key_id = strtoull(id, NULL, 16);
                n->view_gen = gen;
        } else if (v && (!n->cluster_key_text || !streq(n->cluster_key_text, v)))
                log_warnx("ignoring a malformed /_mgmt/cluster value '%.80s'", v);
        free(n->cluster_key_text);
        n->cluster_key_text = v ? strdup(v) : NULL;
        json_decref(j);
}

/* Is what we just read from the cluster this node belongs to? A node with no
 * record yet adopts the cluster it first reads; a record is replaced only by
 * a newer generation of the cluster (a restore), and data of the old one is
 * then moved aside by the role function. */
static void judge_view(struct node *n) {
        uint64_t cid = n->view_cid;
        bool coherent = cid && cid == n->members.cluster_id;
        bool newer = coherent && n->view_key_id == cid && n->view_gen > n->ident.generation;
        bool has_etcd = n->role == ROLE_NOMINEE || n->role == ROLE_MEMBER || n->role == ROLE_LEAVING ||
                        n->role == ROLE_DEPARTED;

        n->view_superseded = false;
        if (!coherent) {
                n->view_ok = false;
                return;
        }
        if (!n->ident.id && !has_etcd) {
                /* a volunteer or client: adopt the first cluster we meet, or a newer generation */
                if (!n->ident.known || n->view_gen >= n->ident.generation || !n->view_gen) {
                        n->ident.id = cid;
                        n->ident.known = true;
                        if (n->view_gen > 0)
                                n->ident.generation = n->view_gen;
                        if (n->ident.generation < 1)
                                n->ident.generation = 1;
                        if (ident_save(n->sc->prefix, &n->ident) < 0)
                                log_warn("cannot record the cluster in '%s/cluster.json'", n->sc->prefix);
                        log_info("joined cluster %016llx, generation %lld", (unsigned long long) cid,
                                 n->ident.generation);
                }
        }
        if (!n->ident.id) {
                n->view_ok = true; /* a member whose etcd has not reported yet: the old behaviour */
                return;
        }
        if (cid == n->ident.id) {
                n->view_ok = true;
                if (n->refused_cid) {
                        log_notice("the cluster read is ours again (%016llx)", (unsigned long long) cid);
                        n->refused_cid = 0;
                }
                if (n->view_key_id == cid && n->view_gen > n->ident.generation) {
                        n->ident.generation = n->view_gen;
                        ident_save(n->sc->prefix, &n->ident);
                }
                return;
        }
        if (newer && !has_etcd) {
                log_notice("cluster %016llx, generation %lld, replaces our record of %016llx, generation %lld "
                           "(restored from a snapshot): joining it",
                           (unsigned long long) cid, (long long) n->view_gen, (unsigned long long) n->ident.id,
                           n->ident.generation);
                n->ident.id = cid;
                n->ident.generation = n->view_gen;
                ident_save(n->sc->prefix, &n->ident);
                n->view_ok = true;
                return;
        }
        n->view_ok = false;
        n->view_superseded = newer;
}

static void state_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_kvs kv[5] = { 0 };
        struct etcd_error perr;
        bool ok;

        if (err || etcd_parse_txn(reply, &ok, &perr) < 0) {
                n->refresh_busy = false;
                n->refresh_again = false;
                log_debug("cannot read cluster state: %s", err ? err->msg : perr.msg);
                return;
        }
        n->view_cid = 0;
        etcd_parse_cluster_id(reply, &n->view_cid);
        for (size_t i = 0; i < 5; i++)
                if (etcd_parse_txn_range(reply, i, &kv[i], &perr) < 0) {
                        n->refresh_busy = false;
                        for (size_t j = 0; j < 5; j++)
                                etcd_kvs_clear(&kv[j]);
                        log_warnx("bad cluster state reply: %s", perr.msg);
                        return;
                }
        _cleanup_free_ char *vp = key_volunteer_prefix(), *np = key_nominated_prefix(), *ep = key_endpoints_prefix();
        _cleanup_free_ char *ik = key_ideal_size();
        if (!vp || !np || !ep || !ik) {
                n->refresh_busy = false;
                for (size_t j = 0; j < 5; j++)
                        etcd_kvs_clear(&kv[j]);
                log_errorx("out of memory reading the cluster state");
                return;
        }
        split_kvs(&kv[0], vp, &n->vol_hosts, &n->vol_urls);
        free(n->vol_crev);
        n->vol_crev = calloc(kv[0].n + 1, sizeof *n->vol_crev);
        for (size_t i = 0, k = 0; n->vol_crev && i < kv[0].n; i++)
                if (key_host_suffix(kv[0].kvs[i].key, vp))
                        n->vol_crev[k++] = kv[0].kvs[i].create_revision;
        split_kvs(&kv[1], np, &n->nom_hosts, &n->nom_urls);
        split_kvs(&kv[2], ep, &n->end_hosts, &n->end_urls);
        find_url_conflict(n, &kv[0], &kv[2], vp, ep);
        const char *iv = kv[3].n ? kv[3].kvs[0].value : NULL;
        n->ideal_missing = !iv;
        if (!iv) {
                /* deleted: the last size we saw stands (the coordinator puts it back),
                 * so the target never depends on which host leads */
                n->ideal = n->ideal_seen > 0 ? n->ideal_seen : n->sc->ideal;
        } else {
                const char *e = NULL;
                long long v = strtonum(iv, 1, 1000, &e);
                if (e) {
                        if (!n->ideal_text || !streq(n->ideal_text, iv))
                                log_warnx("ignoring %s '%s': %s (must be 1..1000); no resizing", ik, iv, e);
                        n->ideal = -1;
                } else
                        n->ideal = n->ideal_seen = v;
        }
        free(n->ideal_text);
        n->ideal_text = iv ? strdup(iv) : NULL;
        parse_cluster_key(n, kv[4].n ? kv[4].kvs[0].value : NULL);
        for (size_t j = 0; j < 5; j++)
                etcd_kvs_clear(&kv[j]);
        /* the member list from our own etcd when it is a healthy voter: only
         * what our own etcd applied can confirm our removal */
        n->view_own_pending = n->child.state == CHILD_UP && n->healthy && !n->learner;
        int r = n->view_own_pending
                        ? etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_MEMBER_LIST, json_object(),
                                       members_done, n)
                        : etcd_call(n->client, ETCD_MEMBER_LIST, json_object(), members_done, n);
        if (r < 0)
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
                            *i = key_ideal_size(), *ck = key_cluster();
        json_t *ops = json_pack("[ooooo]", etcd_op_range(v, true), etcd_op_range(no, true), etcd_op_range(e, true),
                                etcd_op_range(i, false), etcd_op_range(ck, false));
        n->refresh_busy = true;
        if (etcd_call(n->client, ETCD_TXN, etcd_req_txn(NULL, ops, NULL), state_done, n) < 0)
                n->refresh_busy = false;
}

/* The coordinator puts a deleted idealClusterSize back with the last value seen. */
static void ideal_restored(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        n->ideal_restore_busy = false;
        if (err)
                log_warnx("cannot restore idealClusterSize: %s", err->msg);
}

static void restore_ideal(struct node *n) {
        if (!n->ideal_missing || n->ideal_seen < 1 || n->ideal_restore_busy)
                return;
        _cleanup_free_ char *ik = key_ideal_size();
        char v[32];
        snprintf(v, sizeof v, "%lld", n->ideal_seen);
        log_notice("coordinator: %s was deleted; putting back the last value seen, %lld", ik, n->ideal_seen);
        n->ideal_restore_busy = true;
        if (etcd_call(n->client, ETCD_TXN,
                      etcd_req_txn(json_pack("[o]", etcd_cmp_version(ik, "=", 0)), json_pack("[o]", etcd_op_put(ik, v, 0)),
                                   NULL),
                      ideal_restored, n) < 0)
                n->ideal_restore_busy = false;
}

/* ---------------- the role: observe, decide (role.c), act ---------------- */

/* Our member: the one with our name; an unstarted learner (no name yet)
 * carrying our advertised peer URLs. Never a member named after another host,
 * even with our URLs (two hosts given the same URLs). */
static const struct etcd_member *my_member(struct node *n) {
        for (size_t i = 0; i < n->members.n; i++) {
                const struct etcd_member *m = &n->members.m[i];
                if (m->name && *m->name) {
                        if (streq(m->name, n->sc->hostname))
                                return m;
                        continue;
                }
                for (size_t j = 0; m->peer_urls[j]; j++)
                        if (strv_contains(n->sc->adv_server_urls, m->peer_urls[j]))
                                return m;
        }
        return NULL;
}

static bool etcd_running(const struct node *n) {
        return n->child.state == CHILD_STARTING || n->child.state == CHILD_UP;
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

/* Data of a member whose removal its own cluster confirmed (or of an older
 * generation of the cluster) goes under PREFIX/old/, never deleted outright. */
static void move_data_aside(struct node *n, const char *why) {
        char to[4096];
        int r = data_move_aside(n->sc->prefix, n->sc->data_dir, why, to, sizeof to);
        if (r < 0)
                log_error_errno(r, "cannot move etcd data '%s' aside: %m", n->sc->data_dir);
        else if (r > 0)
                log_notice("moved etcd data '%s' aside to '%s' (%s)", n->sc->data_dir, to, why);
}

static void role_event(struct node *n, enum role_event ev, const struct role_facts *f);

static void stopped_cb(struct child *ch, void *ud) {
        struct node *n = ud;
        ch->on_stopped = NULL;
        if (n->shutting_down)
                return;
        role_event(n, REV_STOPPED, NULL);
}

static void refuse_view(struct node *n) {
        if (n->refused_cid == n->view_cid)
                return;
        n->refused_cid = n->view_cid;
        log_errorx("refusing to act: the cluster read through %s has id %016llx (member list %016llx), but this "
                   "node belongs to cluster %016llx, generation %lld (%s/cluster.json); keeping our data and "
                   "doing nothing until they agree",
                   etcd_client_current_endpoint(n->client), (unsigned long long) n->view_cid,
                   (unsigned long long) n->members.cluster_id, (unsigned long long) n->ident.id,
                   n->ident.generation, n->sc->prefix);
}

/* Carry out one step of the role function. */
static void role_event(struct node *n, enum role_event ev, const struct role_facts *fin) {
        struct role_facts f = fin ? *fin : (struct role_facts){ 0 };
        struct role_step st;

        f.no_server = n->sc->no_server;
        f.learner = n->learner;
        f.etcd_running = etcd_running(n);
        role_next(n->role, ev, &f, &st);
        if (st.role != n->role) {
                log_notice("role: %s -> %s: %s", node_role_to_string(n->role), node_role_to_string(st.role),
                           st.why ? st.why : role_event_to_string(ev));
                if (st.role == ROLE_DEPARTED && n->role != ROLE_DEPARTED)
                        n->clear_why = f.superseded ? "old-generation" : "removed";
                n->role = st.role;
                n->learner_announced = false;
        } else if (st.why && st.action == RA_NONE && ev == REV_VIEW)
                log_debug("role %s: %s", node_role_to_string(n->role), st.why);

        switch (st.action) {
        case RA_NONE:
                break;
        case RA_START_ETCD: {
                _cleanup_free_ char *ic = initial_cluster_from(&n->members, n->sc->hostname, n->sc->adv_server_urls);
                log_notice("nominated: joining the cluster (initial cluster %s)", ic);
                move_data_aside(n, "stale"); /* a volunteer has none; anything there predates us */
                start_etcd(n, ic, true);
                break;
        }
        case RA_RESTART_ETCD:
                child_schedule_restart(&n->child);
                break;
        case RA_STOP_ETCD:
                log_notice("leaving the cluster: %s; stopping etcd", st.why);
                if (n->endpoints_published)
                        withdraw_endpoints(n);
                n->coordinator = false;
                n->child.on_stopped = stopped_cb;
                child_stop(&n->child);
                break;
        case RA_CLEAR_DATA:
                move_data_aside(n, n->clear_why ? n->clear_why : "removed");
                n->healthy = n->learner = n->coordinator = false;
                n->my_id = 0;
                round_forget(n);
                update_endpoints(n);
                if (!n->sc->no_server && !n->volunteered && n->lease)
                        volunteer(n);
                refresh_soon(n);
                break;
        case RA_REFUSE:
                refuse_view(n);
                break;
        }
}

static void bootstrap_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        bool ok = false;
        struct etcd_error perr;
        if (err || etcd_parse_txn(reply, &ok, &perr) < 0) {
                log_warnx("cannot record bootstrap keys: %s; will retry", err ? err->msg : perr.msg);
                return;
        }
        n->bootstrap_pending = false;
        log_notice("bootstrapped a new cluster %016llx (token %s): nominated '%s', idealClusterSize %lld "
                   "(unless already set)",
                   (unsigned long long) n->ident.id, n->ident.token, n->sc->hostname, n->sc->ideal);
        refresh_soon(n);
}

/* The seed records the cluster, itself as nominated and the ideal size, each
 * only if absent, in one transaction. */
static void bootstrap_keys(struct node *n) {
        _cleanup_free_ char *nk = key_nominated(n->sc->hostname), *ik = key_ideal_size(), *ck = key_cluster();
        _cleanup_free_ char *urls = strv_join(n->sc->adv_server_urls, ",");
        _cleanup_free_ char *now = rfc3339_now();
        char ideal[32], id[32];
        if (!n->ident.id)
                return; /* our etcd has not told us the cluster id yet */
        snprintf(ideal, sizeof ideal, "%lld", n->sc->ideal);
        snprintf(id, sizeof id, "%016llx", (unsigned long long) n->ident.id);
        json_t *cj = json_pack("{s:s, s:I, s:s}", "id", id, "generation", (json_int_t) n->ident.generation, "created",
                               now ? now : "");
        _cleanup_free_ char *cv = cj ? json_dumps(cj, JSON_SORT_KEYS) : NULL;
        json_decref(cj);
        if (!cv)
                return;
        /* three independent "put if absent": nested txns are not in 3.4, so
         * the first two ride along and the last one reports */
        etcd_call(n->client, ETCD_TXN,
                  etcd_req_txn(json_pack("[o]", etcd_cmp_version(ik, "=", 0)),
                               json_pack("[o]", etcd_op_put(ik, ideal, 0)), NULL),
                  NULL, NULL); /* checked by the coordinator: a missing size is restored */
        etcd_call(n->client, ETCD_TXN,
                  etcd_req_txn(json_pack("[o]", etcd_cmp_version(ck, "=", 0)), json_pack("[o]", etcd_op_put(ck, cv, 0)),
                               NULL),
                  NULL, NULL); /* read back on every refresh; absent only until this lands */
        etcd_call(n->client, ETCD_TXN,
                  etcd_req_txn(json_pack("[o]", etcd_cmp_version(nk, "=", 0)),
                               json_pack("[o]", etcd_op_put(nk, urls, 0)), NULL),
                  bootstrap_done, n);
}

/* A volunteer whose advertised URLs another host already uses refuses to
 * start: etcd would fail to bind, or worse, we would adopt their member. */
static bool check_url_conflict(struct node *n) {
        if (!n->url_conflict)
                return false;
        log_errorx("host '%s' already uses %s, which this node ('%s') advertises too: two hosts cannot share URLs; "
                   "give this node its own --server-urls/--client-urls (and advertise flags); refusing to start",
                   n->url_conflict, n->url_conflict_what ? n->url_conflict_what : "our URLs", n->sc->hostname);
        node_shutdown(n, 1);
        return true;
}

/* Called after every refresh: act on what we read, then coordinate. */
void node_after_change(struct node *n) {
        struct role_facts f = {
                .same_cluster = n->view_ok,
                .superseded = n->view_superseded,
                .nominated = strv_contains(n->nom_hosts, n->sc->hostname),
                .member = my_member(n) != NULL,
                .own_view = n->view_own,
        };

        if (n->bootstrap_pending) {
                notify_status(n);
                return;
        }
        if ((n->role == ROLE_VOLUNTEER || n->role == ROLE_CLIENT) && check_url_conflict(n))
                return;
        role_event(n, REV_VIEW, &f);
        if (n->coordinator && n->view_ok) {
                restore_ideal(n);
                round_run(n);
        }
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

/* Our own etcd says which cluster our data belongs to: record it the first
 * time (PREFIX/cluster.json), complain once if it ever disagrees. */
static void note_cluster_id(struct node *n, uint64_t cid) {
        if (!cid || n->ident.id == cid || !(n->role == ROLE_MEMBER || n->role == ROLE_NOMINEE || n->role == ROLE_LEAVING))
                return;
        if (n->ident.id && n->ident.known) {
                if (n->own_mismatch_warned != cid)
                        log_errorx("our etcd's data belongs to cluster %016llx but %s/cluster.json says %016llx; "
                                   "not acting on other clusters' keys until this is resolved",
                                   (unsigned long long) cid, n->sc->prefix, (unsigned long long) n->ident.id);
                n->own_mismatch_warned = cid;
                return;
        }
        n->ident.id = cid;
        n->ident.known = true;
        if (n->ident.generation < 1)
                n->ident.generation = 1;
        int r = ident_save(n->sc->prefix, &n->ident);
        if (r < 0)
                log_error_errno(r, "cannot record the cluster in '%s/cluster.json': %m", n->sc->prefix);
        else
                log_info("this prefix belongs to cluster %016llx, generation %lld", (unsigned long long) cid,
                         n->ident.generation);
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
        note_cluster_id(n, st.cluster_id);
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
                role_event(n, REV_PROMOTED, NULL);
                update_endpoints(n);
        } else if (n->role == ROLE_NOMINEE && n->lease && !n->learner_announced) {
                /* our learner answers: touch our volunteer key so the
                 * coordinator's watch fires and it promotes us now, not on
                 * its next tick (a member change is not a key event) */
                _cleanup_free_ char *k = key_volunteer(n->sc->hostname);
                _cleanup_free_ char *v = strv_join(n->sc->adv_server_urls, ",");
                n->learner_announced = true;
                etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), NULL, NULL); /* only a hint */
        }
        if (n->bootstrap_pending)
                bootstrap_keys(n);
        if (!st.learner && (n->role == ROLE_MEMBER || n->role == ROLE_LEAVING))
                publish_endpoints(n);
        if (!n->lease && !n->session_busy)
                session_start(n);
        become_coordinator(n, st.leader == st.member_id && (n->role == ROLE_MEMBER || n->role == ROLE_LEAVING));
        /* snapshot.c: scheduled snapshots only while a healthy voting member */
        snapsched_set_member(n->snap, n->client, n->role == ROLE_MEMBER && !st.learner);
        etcd_status_clear(&st);
        notify_status(n);
}

/* The tick asks our etcd for its status: every 100 ms while it starts or is
 * a learner waiting for promotion (so the coordinator hears of it at once),
 * every second otherwise. Timeouts (nominee, dead grace) are judged on the
 * one-second beat, when a coordinator, or a nominee waiting for its member
 * to be added, reads the cluster again. */
static int tick_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        bool fast = n->child.state == CHILD_STARTING || n->role == ROLE_NOMINEE;
        sd_event_source_set_time(s, usec + (fast ? FAST_TICK_USEC : TICK_USEC));
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (n->shutting_down)
                return 0;
        if (n->child.state == CHILD_STARTING || n->child.state == CHILD_UP)
                etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_STATUS, json_object(), status_done, n);
        else
                become_coordinator(n, false);
        if (usec - n->last_beat < TICK_USEC - FAST_TICK_USEC / 2)
                return 0;
        n->last_beat = usec;
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
                role_event(n, REV_REMOVED, NULL);
                return;
        }
        role_event(n, REV_ETCD_EXIT, NULL);
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
        n->lock_fd = -1;
        child_init(&n->child, e, sc->stop_timeout, child_exited, n);
        if (snapsched_new(e, sc, &n->snap) < 0) /* snapshot.c */
                log_warnx("cannot set up scheduled snapshots");
        *ret = n;
        return 0;
}

/* The prefix: a directory only we can read, locked for our lifetime. */
static int prefix_prepare(struct node *n) {
        struct sup_config *sc = n->sc;
        struct stat st;
        char err[512];
        int r;

        if (lstat(sc->prefix, &st) == 0 && !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "--prefix '%s' exists and is not a directory", sc->prefix);
        r = mkdir_p(sc->prefix, 0700);
        if (r < 0)
                return log_error_errno(r, "cannot create state directory '%s': %m", sc->prefix);
        if (stat(sc->prefix, &st) == 0 && (st.st_mode & 077)) {
                if (chmod(sc->prefix, 0700) < 0)
                        return log_error_errno(-errno, "state directory '%s' is open to others (mode %04o) and "
                                               "cannot be tightened: %m", sc->prefix, (unsigned) (st.st_mode & 07777));
                log_notice("tightened state directory '%s' from mode %04o to 0700", sc->prefix,
                           (unsigned) (st.st_mode & 07777));
        }
        if (access(sc->prefix, W_OK) < 0)
                return log_error_errno(-errno, "state directory '%s' is not writable: %m", sc->prefix);
        if (lstat(sc->data_dir, &st) == 0 && S_ISDIR(st.st_mode) && access(sc->data_dir, W_OK) < 0)
                return log_error_errno(-errno, "etcd data dir '%s' is not writable: %m", sc->data_dir);
        r = prefix_lock(sc->prefix, &n->lock_fd, err, sizeof err);
        if (r < 0) {
                log_errorx("%s", err);
                return r;
        }
        r = ident_load(sc->prefix, &n->ident, err, sizeof err);
        if (r < 0) {
                log_errorx("%s", err);
                return r;
        }
        return 0;
}

int node_start(struct node *n) {
        struct sup_config *sc = n->sc;
        _cleanup_strv_ char **eps = NULL, **cached = NULL;
        char p[4096];
        _cleanup_free_ char *old = NULL;
        int r;

        r = prefix_prepare(n);
        if (r < 0)
                return r;
        cached = cache_read(n);
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
        enum start_mode mode = node_start_mode(data, sc->seeds, n->ident.known, cached, sc->no_server);
        if (mode == START_REFUSE && sc->no_server)
                return log_error_errno(-EINVAL, "--no-server needs --seeds: there is no cluster to be a client of");
        if (mode == START_REFUSE)
                return log_error_errno(-ENOENT,
                                       "this prefix belonged to cluster %016llx (generation %lld, %s/cluster.json) "
                                       "and has neither data nor cached endpoints: it will not bootstrap a second "
                                       "cluster; give --seeds, or move %s/cluster.json aside to start a new cluster",
                                       (unsigned long long) n->ident.id, n->ident.generation, sc->prefix, sc->prefix);

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

        if (mode == START_RESTART) {
                /* never bootstrap over old data: restart our member */
                log_notice("found etcd data in '%s': restarting our member", sc->data_dir);
                n->role = sc->no_server ? ROLE_LEAVING : ROLE_MEMBER;
                if (sc->no_server)
                        log_notice("--no-server with member data: serving until the coordinator removes us");
                start_etcd(n, NULL, true);
        } else if (mode == START_BOOTSTRAP) {
                log_notice("no --seeds, no data and no record of a cluster: bootstrapping a new one-member cluster");
                n->role = ROLE_MEMBER;
                n->bootstrap_pending = true;
                n->ident = (struct cluster_ident){ .known = true, .generation = 1 };
                ident_new_token(sc->hostname, n->ident.token, sizeof n->ident.token);
                r = ident_save(sc->prefix, &n->ident);
                if (r < 0)
                        return log_error_errno(r, "cannot write '%s/cluster.json': %m", sc->prefix);
                free(sc->cluster_token);
                sc->cluster_token = strdup(n->ident.token);
                start_etcd(n, NULL, false);
        } else {
                _cleanup_free_ char *s = strv_join(sc->seeds ? sc->seeds : cached, ",");
                n->role = sc->no_server ? ROLE_CLIENT : ROLE_VOLUNTEER;
                log_notice("joining through %s %s as %s", sc->seeds ? "seeds" : "cached endpoints", s,
                           node_role_to_string(n->role));
                session_start(n);
        }
        /* a restarted member reaches the cluster through the others right
         * away (its own etcd may never come back: removed); a lone seed
         * starts its session once its etcd answers */
        if ((n->role == ROLE_MEMBER || n->role == ROLE_LEAVING) && (sc->seeds || cached) && !n->session_busy)
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
        free(n->vol_crev);
        free(n->url_conflict);
        free(n->url_conflict_what);
        free(n->cluster_key_text);
        free(n->bad_endpoints_text);
        if (n->lock_fd >= 0)
                close(n->lock_fd);
        etcd_members_clear(&n->members);
        round_forget(n);
        free(n->track);
        free(n->last_decision);
        free(n->plan_since);
        sd_event_unref(n->event);
        free(n);
}

/* The node's values for the metrics listener (metrics.c), read here so that
 * the listener knows nothing of the node's insides. */
void node_metrics(const struct node *n, struct sup_metrics *ret) {
        *ret = (struct sup_metrics){
                .ideal = n->ideal,
                .coordinator = n->coordinator,
                .etcd_up = n->child.state == CHILD_UP && n->healthy,
                /* a client or volunteer is connected while its session lease lives */
                .ready = ((n->role == ROLE_MEMBER || n->role == ROLE_LEAVING) && n->healthy && n->have_state) ||
                         ((n->role == ROLE_CLIENT || n->role == ROLE_VOLUNTEER) && n->have_state && n->lease),
                .member = n->role == ROLE_MEMBER,
                .etcd_restarts = n->child.total_crashes,
                .last_snapshot = n->snap ? snapsched_last_success(n->snap) : 0,
                .snapshot_failures = n->snap ? snapsched_failures(n->snap) : 0,
                .client = n->client,
        };
        for (size_t i = 0; i < n->members.n; i++) {
                if (n->members.m[i].learner)
                        ret->learners++;
                else
                        ret->voters++;
        }
}
