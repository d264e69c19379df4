/* health.c: our own etcd as this node sees it. A status tick asks it for
 * its health, its member id and cluster, whether it is a learner and
 * whether it leads (which makes us the coordinator, coordinator_run.c):
 * every 100 ms while it starts or waits for promotion, every second
 * otherwise, and at once when its output says it serves or was promoted.
 * An etcd that keeps failing on its data has its member removed when the
 * others keep quorum (the data then goes aside, node.c). Reports up to
 * node.c through n->on_role_event, n->on_bootstrap and n->on_status. */
#include <bsd/string.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

#define TICK_USEC (1 * USEC_PER_SEC)
#define FAST_TICK_USEC (100 * USEC_PER_MSEC)
/* how late the tick may fire: sd-event's default (accuracy 0) is 250 ms,
 * which stretched the 100 ms tick to 250 ms and made every step of a
 * formation wait for it */
#define TICK_ACCURACY_USEC USEC_PER_MSEC
/* status ticks our etcd may fail before we take back our endpoints key */
#define UNHEALTHY_WITHDRAW_TICKS 3
/* How long our etcd may see no leader before we call the quorum lost: an
 * election takes one to two election timeouts, so a shorter gap is an
 * election, not a lost majority. Three timeouts, at least 3 s. */
static uint64_t quorum_lost_usec(const struct node *n) {
        uint64_t t = 3ULL * etcd_election_timeout_ms(n->sc) * USEC_PER_MSEC;
        return t < 3 * USEC_PER_SEC ? 3 * USEC_PER_SEC : t;
}

static void become_coordinator(struct node *n, bool yes) {
        if (n->coordinator == yes)
                return;
        n->coordinator = yes;
        if (yes) {
                log_notice("our etcd is the raft leader: acting as coordinator");
                session_announce_coordinator(n);
                coordinator_forget(n);
                view_refresh_soon(n);
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
                log_warnx("our etcd has been unhealthy for %u s: withdrawing our endpoints so that the "
                          "coordinator "
                          "does not count this member as healthy",
                          n->unhealthy_ticks);
                session_withdraw_endpoints(n);
        }
}

/* Our own etcd says which cluster our data belongs to: record it the first
 * time (PREFIX/cluster.json), complain once if it ever disagrees. */
static void note_cluster_id(struct node *n, uint64_t cid) {
        if (!cid || n->ident.id == cid ||
            !(n->role == ROLE_MEMBER || n->role == ROLE_NOMINEE || n->role == ROLE_LEAVING))
                return;
        if (n->ident.id && n->ident.known) {
                if (n->own_mismatch_warned != cid)
                        log_errorx(
                            "our etcd's data belongs to cluster %016llx but %s/cluster.json says %016llx; "
                            "not acting on other clusters' keys until this is resolved",
                            (unsigned long long)cid, n->sc->prefix, (unsigned long long)n->ident.id);
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
                log_info("this prefix belongs to cluster %016llx, generation %lld", (unsigned long long)cid,
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
                snprintf(id, sizeof id, "%llx", (unsigned long long)st.member_id);
                log_set_field("MGMT_ETCD_MEMBER", id); /* journald field on every record */
        }
        n->my_id = st.member_id;
        n->learner = st.learner;
        note_cluster_id(n, st.cluster_id);
        if (st.leader == 0) {
                uint64_t now = now_usec();
                if (!n->leaderless_since) {
                        n->leaderless_since = now;
                        log_info("our etcd sees no leader (an election?); no membership change until it "
                                 "has one");
                } else if (!n->quorum_warned && now - n->leaderless_since >= quorum_lost_usec(n)) {
                        log_warnx("quorum lost: our etcd has seen no leader for %llus; no membership change "
                                  "until it is back",
                                  (unsigned long long)((now - n->leaderless_since) / USEC_PER_SEC));
                        n->quorum_warned = true;
                }
                note_unhealthy(n);
                etcd_status_clear(&st);
                return;
        }
        if (n->quorum_warned)
                log_notice("quorum is back: leader %llx", (unsigned long long)st.leader);
        else if (n->leaderless_since)
                log_info("our etcd has a leader again: %llx, after %llu ms", (unsigned long long)st.leader,
                         (unsigned long long)((now_usec() - n->leaderless_since) / USEC_PER_MSEC));
        n->quorum_warned = false;
        n->leaderless_since = 0;
        if (!n->healthy)
                log_info("our etcd is healthy (member %llx%s)", (unsigned long long)st.member_id,
                         st.learner ? ", learner" : "");
        n->healthy = true;
        n->unhealthy_ticks = 0;
        child_mark_healthy(&n->child);
        if (n->role == ROLE_NOMINEE && !st.learner) {
                n->on_role_event(n, REV_PROMOTED, NULL);
                view_update_endpoints(n);
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
                n->on_bootstrap(n); /* node.c: the seed's first keys */
        if (!st.learner && (n->role == ROLE_MEMBER || n->role == ROLE_LEAVING))
                session_publish_endpoints(n);
        if (!n->lease && !n->session_busy)
                session_start(n);
        become_coordinator(n,
                           st.leader == st.member_id && (n->role == ROLE_MEMBER || n->role == ROLE_LEAVING));
        /* snapshot.c: scheduled snapshots only while a healthy voting member */
        snapsched_set_member(n->snap, n->client, n->role == ROLE_MEMBER && !st.learner);
        etcd_status_clear(&st);
        n->on_status(n); /* node.c: STATUS=, READY= */
}

static void status_now(struct node *n) {
        etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_STATUS, json_object(), status_done, n);
}

/* etcd's output says it now serves, or applied a promotion: ask it now
 * instead of on the next tick (a learner is promoted, and a promoted one
 * publishes its endpoints, that much sooner). */
static void etcd_hint(struct child *ch, void *ud) {
        struct node *n = ud;
        if (!n->shutting_down && (ch->state == CHILD_STARTING || ch->state == CHILD_UP))
                status_now(n);
}

/* The tick asks our etcd for its status: every 100 ms while it starts or is
 * a learner waiting for promotion (so the coordinator hears of it at once),
 * every second otherwise; etcd_hint() asks between ticks. Timeouts (nominee,
 * dead grace) are judged on the one-second beat, when a coordinator, or a
 * nominee waiting for its member to be added, reads the cluster again. */
static int tick_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        bool fast = n->child.state == CHILD_STARTING || n->role == ROLE_NOMINEE;
        sd_event_source_set_time(s, usec + (fast ? FAST_TICK_USEC : TICK_USEC));
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (n->shutting_down)
                return 0;
        if (n->child.state == CHILD_STARTING || n->child.state == CHILD_UP)
                status_now(n);
        else
                become_coordinator(n, false);
        if (usec - n->last_beat < TICK_USEC - FAST_TICK_USEC / 2)
                return 0;
        n->last_beat = usec;
        if (n->coordinator || (n->role == ROLE_VOLUNTEER && strv_contains(n->nom_hosts, n->sc->hostname)))
                view_refresh(n);
        return 0;
}

/* Does etcd's failure say it cannot read its data (bbolt, WAL, snapshot)? */
static bool data_error(const char *e) {
        static const char *const words[] = {"bbolt",          "wal",          "snap", "fatal error: fault",
                                            "database",       "corrupt",      "crc",  "checksum",
                                            "unexpected EOF", "out of range", NULL};
        for (size_t i = 0; words[i]; i++)
                if (strcasestr(e, words[i]))
                        return true;
        return false;
}

static void damaged_removed(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        n->damaged_busy = false;
        if (err) {
                log_warnx("cannot remove our member: %s; trying again after etcd's next failure", err->msg);
                return;
        }
        /* our own cluster committed the removal: the data may go aside */
        log_notice("our member was removed; this host volunteers again with fresh data");
        n->damaged = true;
        n->on_role_event(n, REV_REMOVED, NULL);
        n->damaged = false;
}

/* etcd keeps failing on its data: if the cluster keeps a quorum of healthy
 * voters without us, have it remove our member (we move the damaged data
 * aside and rejoin as a new member); alone, keep everything and say how to
 * restore. */
static void check_damaged(struct node *n) {
        const char *e = n->child.prev_error;
        if (!n->child.loop_reported || !data_error(e) || n->damaged_busy ||
            (n->role != ROLE_MEMBER && n->role != ROLE_LEAVING))
                return;
        const struct etcd_member *me = view_my_member(n);
        size_t voters = 0, healthy = 0;
        for (size_t i = 0; i < n->members.n; i++) {
                const struct etcd_member *m = &n->members.m[i];
                if (m->learner)
                        continue;
                voters++;
                if (m != me && m->name && strv_contains(n->end_hosts, m->name))
                        healthy++;
        }
        if (!n->view_ok || !me || voters < 2 || healthy < (voters - 1) / 2 + 1) {
                if (!n->damaged_warned)
                        log_errorx(
                            "etcd cannot start on its data in '%s' (%s), and no quorum of other members can "
                            "do without it: if this is the last copy, stop the supervisor and run "
                            "'mgmt-supervisor restore --from SNAPSHOT' (mgmt-supervisor(8)); the data is "
                            "kept as it is",
                            n->sc->data_dir, e);
                n->damaged_warned = true;
                return;
        }
        log_warnx(
            "etcd cannot start on its data in '%s' (%s); %zu of the other %zu voters are healthy: removing "
            "our member %llx, then moving the data aside and joining again",
            n->sc->data_dir, e, healthy, voters - 1, (unsigned long long)me->id);
        n->damaged_busy = true;
        if (etcd_call(n->client, ETCD_MEMBER_REMOVE, etcd_req_member_id(me->id), damaged_removed, n) < 0)
                n->damaged_busy = false;
}

/* etcd exited on its own. */
static void child_exited(struct child *ch, int status, void *ud) {
        struct node *n = ud;
        n->healthy = false;
        become_coordinator(n, false);
        if (n->shutting_down)
                return;
        if (n->endpoints_published)
                session_withdraw_endpoints(n);
        if (ch->removed_seen) {
                n->on_role_event(n, REV_REMOVED, NULL);
                return;
        }
        n->on_role_event(n, REV_ETCD_EXIT, NULL);
        check_damaged(n);
}

/* Our etcd child reports its exit and its output hints here. */
void health_init(struct node *n) {
        child_init(&n->child, n->event, n->sc->stop_timeout, child_exited, n);
        n->child.on_hint = etcd_hint;
}

/* The first status tick a quarter second after now. */
int health_tick_start(struct node *n, uint64_t now) {
        int r = sd_event_add_time(n->event, &n->tick, CLOCK_MONOTONIC, now + TICK_USEC / 4,
                                  TICK_ACCURACY_USEC, tick_cb, n);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(n->tick, SD_EVENT_ON);
}
