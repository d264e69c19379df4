/* node.c: this node, the top of the daemon's layers.
 *
 * Duties, all driven by events on the sd-event loop:
 *   - start-up: lock and check the prefix, then restart our member,
 *     bootstrap, or join (node_start_mode() in role.c decides);
 *   - the role (role.c decides, this file acts): start etcd joining the
 *     cluster when nominated and added; keep serving while leaving; stop
 *     etcd and move its data aside only once our removal is confirmed by
 *     our own cluster; refuse to act on a view from another cluster;
 *   - sd_notify READY/STATUS/WATCHDOG, orderly shutdown, SIGHUP reload.
 * The session (session.c), the view of the cluster (view.c) and our own
 * etcd's health (health.c: the status tick, leadership, damaged data)
 * report up through n->on_fatal, n->on_view, n->on_role_event,
 * n->on_bootstrap and n->on_status. */
#include <bsd/stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "keys.h"
#include "clusterstatus.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

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

/* ---------------- the role: observe, decide (role.c), act ---------------- */

static bool etcd_running(const struct node *n) {
        return n->child.state == CHILD_STARTING || n->child.state == CHILD_UP;
}

static void start_etcd(struct node *n, const char *initial_cluster, bool existing) {
        _cleanup_strv_ char **argv = etcd_argv(n->sc, initial_cluster, existing);
        int r;

        if (mkdir_p(n->sc->prefix, 0700) < 0)
                log_warn("cannot create '%s'", n->sc->prefix);
        n->healthy = false;
        n->leaderless_since = 0; /* a new etcd's wait for a leader starts now */
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
        log_errorx(
            "refusing to act: the cluster read through %s has id %016llx (member list %016llx), but this "
            "node belongs to cluster %016llx, generation %lld (%s/cluster.json); keeping our data and "
            "doing nothing until they agree",
            etcd_client_current_endpoint(n->client), (unsigned long long)n->view_cid,
            (unsigned long long)n->members.cluster_id, (unsigned long long)n->ident.id, n->ident.generation,
            n->sc->prefix);
}

/* Carry out one step of the role function. */
static void role_event(struct node *n, enum role_event ev, const struct role_facts *fin) {
        struct role_facts f = fin ? *fin : (struct role_facts){0};
        struct role_step st;

        f.no_server = n->sc->no_server;
        f.learner = n->learner;
        f.etcd_running = etcd_running(n);
        role_next(n->role, ev, &f, &st);
        if (st.role != n->role) {
                log_notice("role: %s -> %s: %s", node_role_to_string(n->role), node_role_to_string(st.role),
                           st.why ? st.why : role_event_to_string(ev));
                if (st.role == ROLE_DEPARTED && n->role != ROLE_DEPARTED)
                        n->clear_why = n->damaged ? "damaged" : f.superseded ? "old-generation" : "removed";
                n->role = st.role;
                n->learner_announced = false;
        } else if (st.why && st.action == RA_NONE && ev == REV_VIEW)
                log_debug("role %s: %s", node_role_to_string(n->role), st.why);

        switch (st.action) {
        case RA_NONE:
                break;
        case RA_START_ETCD: {
                _cleanup_free_ char *ic =
                    initial_cluster_from(&n->members, n->sc->hostname, n->sc->adv_server_urls);
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
                        session_withdraw_endpoints(n);
                n->coordinator = false;
                n->child.on_stopped = stopped_cb;
                child_stop(&n->child);
                break;
        case RA_CLEAR_DATA:
                move_data_aside(n, n->clear_why ? n->clear_why : "removed");
                n->healthy = n->learner = n->coordinator = false;
                n->my_id = 0;
                coordinator_forget(n);
                view_update_endpoints(n);
                if (!n->sc->no_server && !n->volunteered && n->lease)
                        session_volunteer(n);
                view_refresh_soon(n);
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
        n->bootstrap_busy = false;
        if (err || etcd_parse_txn(reply, &ok, &perr) < 0) {
                log_warnx("cannot record bootstrap keys: %s; will retry", err ? err->msg : perr.msg);
                return;
        }
        n->bootstrap_pending = false;
        log_notice("bootstrapped a new cluster %016llx (token %s): nominated '%s', idealClusterSize %lld "
                   "(unless already set)",
                   (unsigned long long)n->ident.id, n->ident.token, n->sc->hostname, n->sc->ideal);
        view_refresh_soon(n);
}

/* The seed records the cluster, itself as nominated and the ideal size, each
 * only if absent (three transactions, one in flight at a time). */
static void bootstrap_keys(struct node *n) {
        _cleanup_free_ char *nk = key_nominated(n->sc->hostname), *ik = key_ideal_size(),
                            *ck = key_cluster();
        _cleanup_free_ char *urls = strv_join(n->sc->adv_server_urls, ",");
        _cleanup_free_ char *now = rfc3339_now();
        char ideal[32], id[32];
        if (!n->ident.id || n->bootstrap_busy)
                return; /* our etcd has not told us the cluster id yet, or they are on their way */
        snprintf(ideal, sizeof ideal, "%lld", n->sc->ideal);
        snprintf(id, sizeof id, "%016llx", (unsigned long long)n->ident.id);
        json_t *cj = json_pack("{s:s, s:I, s:s}", "id", id, "generation", (json_int_t)n->ident.generation,
                               "created", now ? now : "");
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
                  etcd_req_txn(json_pack("[o]", etcd_cmp_version(ck, "=", 0)),
                               json_pack("[o]", etcd_op_put(ck, cv, 0)), NULL),
                  NULL, NULL); /* read back on every refresh; absent only until this lands */
        n->bootstrap_busy = etcd_call(n->client, ETCD_TXN,
                                      etcd_req_txn(json_pack("[o]", etcd_cmp_version(nk, "=", 0)),
                                                   json_pack("[o]", etcd_op_put(nk, urls, 0)), NULL),
                                      bootstrap_done, n) >= 0;
}

/* A volunteer whose advertised URLs another host already uses refuses to
 * start: etcd would fail to bind, or worse, we would adopt their member. */
static bool check_url_conflict(struct node *n) {
        if (!n->url_conflict)
                return false;
        log_errorx(
            "host '%s' already uses %s, which this node ('%s') advertises too: two hosts cannot share URLs; "
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
            .member = view_my_member(n) != NULL,
            .own_view = n->view_own,
        };

        if (n->bootstrap_pending) {
                notify_status(n);
                return;
        }
        if ((n->role == ROLE_VOLUNTEER || n->role == ROLE_CLIENT) && check_url_conflict(n))
                return;
        role_event(n, REV_VIEW, &f);
        auth_ensure(n);
        if (n->coordinator && n->view_ok) {
                coordinator_restore_ideal(n);
                coordinator_run(n);
        }
        notify_status(n);
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
        n->on_view = node_after_change;
        n->on_fatal = node_shutdown;
        n->on_role_event = role_event;
        n->on_bootstrap = bootstrap_keys;
        n->on_status = notify_status;
        health_init(n);                         /* health.c: our etcd child's exit and output hints */
        if (snapsched_new(e, sc, &n->snap) < 0) /* snapshot.c */
                log_warnx("cannot set up scheduled snapshots");
        *ret = n;
        return 0;
}

int node_start(struct node *n) {
        struct sup_config *sc = n->sc;
        _cleanup_strv_ char **eps = NULL, **cached = NULL;
        char p[4096];
        _cleanup_free_ char *old = NULL;
        int r;

        r = prefix_prepare(n->sc->prefix, n->sc->data_dir, &n->lock_fd, &n->ident);
        if (r < 0)
                return r;
        cached = view_cache_read(n);
        session_lease_file(n, p, sizeof p);
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
                return log_error_errno(-EINVAL,
                                       "--no-server needs --seeds: there is no cluster to be a client of");
        if (mode == START_REFUSE)
                return log_error_errno(
                    -ENOENT,
                    "this prefix belonged to cluster %016llx (generation %lld, %s/cluster.json) "
                    "and has neither data nor cached endpoints: it will not bootstrap a second "
                    "cluster; give --seeds, or move %s/cluster.json aside to start a new cluster",
                    (unsigned long long)n->ident.id, n->ident.generation, sc->prefix, sc->prefix);

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
        struct etcd_tls tls = {sc->cert, sc->key, sc->ca};
        r = etcd_client_new(n->event, eps, &tls, &n->client);
        if (r < 0)
                return log_error_errno(r, "cannot create etcd client: %m");
        etcd_client_set_timeout(n->client, 3 * USEC_PER_SEC);
        r = auth_setup(n);
        if (r < 0)
                return r;

        if (mode == START_RESTART) {
                /* never bootstrap over old data: restart our member */
                log_notice("found etcd data in '%s': restarting our member", sc->data_dir);
                n->role = sc->no_server ? ROLE_LEAVING : ROLE_MEMBER;
                if (sc->no_server)
                        log_notice("--no-server with member data: serving until the coordinator removes us");
                start_etcd(n, NULL, true);
        } else if (mode == START_BOOTSTRAP) {
                log_notice("no --seeds, no data and no record of a cluster: bootstrapping a new one-member "
                           "cluster");
                n->role = ROLE_MEMBER;
                n->bootstrap_pending = true;
                n->ident = (struct cluster_ident){.known = true, .generation = 1};
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
        r = health_tick_start(n, now);
        if (r < 0)
                return r;
        r = sd_event_add_time(n->event, &n->keepalive_timer, CLOCK_MONOTONIC,
                              now + (uint64_t)session_lease_ttl(n) * USEC_PER_SEC / 3, 0,
                              session_keepalive_cb, n);
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
        n->sc->nominate_timeout = (uint64_t)n->cfg->v[OPT_NOMINATE_TIMEOUT].n;
        n->sc->dead_grace = (uint64_t)n->cfg->v[OPT_DEAD_GRACE].n;
        n->sc->stop_timeout = n->child.stop_timeout = (uint64_t)n->cfg->v[OPT_STOP_TIMEOUT].n;
        log_notice("reloaded '%s': nominate-timeout %llus, dead-member-grace %llus",
                   n->cfg->config_file ? n->cfg->config_file : "(no config file)",
                   (unsigned long long)(n->sc->nominate_timeout / USEC_PER_SEC),
                   (unsigned long long)(n->sc->dead_grace / USEC_PER_SEC));
}

void node_free(struct node *n) {
        if (!n)
                return;
        if (n->child.pid > 0)
                child_kill_now(&n->child);
        for (size_t i = 0; i < ELEMENTSOF(n->watches); i++)
                etcd_watch_free(n->watches[i]);
        cluster_status_abandon(n->client);
        etcd_client_free(n->client);
        auth_free(n);
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
        coordinator_forget(n);
        free(n->track);
        free(n->last_decision);
        free(n->plan_since);
        sd_event_unref(n->event);
        free(n);
}
