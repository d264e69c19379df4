/* coordinator_run.c: the coordinator round. Build the cluster state from
 * what the last refresh read (plus the timers this coordinator keeps: since
 * when a nominee waits, since when a host is gone, cool-downs), ask
 * coordinator_decide() for one action, carry it out, and refresh when it is
 * done. One membership change is in flight at a time. With no membership
 * change to make, the members' upkeep (maintenance_run.c). Every decision
 * is published as /_mgmt/plan. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <inttypes.h>
#include <stdio.h>

#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

void coordinator_forget(struct node *n) {
        for (size_t i = 0; i < n->n_track; i++)
                free(n->track[i].host);
        n->n_track = 0;
}

static struct track *track_get(struct node *n, const char *host) {
        for (size_t i = 0; i < n->n_track; i++)
                if (streq(n->track[i].host, host))
                        return &n->track[i];
        struct track *t = reallocarray(n->track, n->n_track + 1, sizeof *t);
        if (!t)
                return NULL;
        n->track = t;
        t = &n->track[n->n_track++];
        *t = (struct track){.host = strdup(host)};
        return t;
}

/* The host a member belongs to: its name once started (a name that is not a
 * valid host, e.g. from a hand-made 'etcdctl member add', belongs to none),
 * else, for a learner not yet started, the nominee or volunteer advertising
 * one of its peer URLs. */
static const char *host_of_member(struct node *n, const struct etcd_member *m) {
        if (m->name && *m->name)
                return hostname_is_valid(m->name) ? m->name : NULL;
        for (size_t i = 0; n->nom_hosts && n->nom_hosts[i]; i++)
                for (size_t j = 0; m->peer_urls[j]; j++)
                        if (url_list_holds(n->nom_urls[i], m->peer_urls[j]))
                                return n->nom_hosts[i];
        for (size_t i = 0; n->vol_hosts && n->vol_hosts[i]; i++)
                for (size_t j = 0; m->peer_urls[j]; j++)
                        if (url_list_holds(n->vol_urls[i], m->peer_urls[j]))
                                return n->vol_hosts[i];
        return NULL;
}

static int cmp_host(const void *a, const void *b) {
        return strcmp(((const struct chost *)a)->name, ((const struct chost *)b)->name);
}

static int retry_cb(sd_event_source *s, uint64_t usec, void *ud) {
        struct node *n = ud;
        sd_event_source_disable_unref(s);
        n->round_busy = false;
        view_refresh(n);
        return 0;
}

/* etcd refuses changes for a while after another (strict reconfig check) or
 * while a learner catches up: those are retried quietly after a second. */
static bool transient(const char *msg) {
        return strstr(msg, "unhealthy cluster") || strstr(msg, "not in sync") ||
               strstr(msg, "too many learner") || strstr(msg, "leader changed") ||
               strstr(msg, "no leader") || strstr(msg, "timed out");
}

static void action_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        if (err) {
                uint64_t now;
                log_full_errno(transient(err->msg) ? LOG_INFO : LOG_WARNING, 0,
                               "membership change not done yet: %s; retrying in 1s", err->msg);
                sd_event_now(n->event, CLOCK_MONOTONIC, &now);
                /* 10 ms accuracy: sd-event's default would add up to 250 ms */
                if (sd_event_add_time(n->event, NULL, CLOCK_MONOTONIC, now + USEC_PER_SEC,
                                      10 * USEC_PER_MSEC, retry_cb, n) >= 0)
                        return;
        }
        n->round_busy = false;
        view_refresh(n);
}

struct added {
        struct node *n;
        char *host, *urls;
};

/* After member add, write the nomination again so the nominee's watch fires
 * now that its member exists (a member change is not a key event). */
static void learner_added(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct added *a = ud;
        if (!err) {
                _cleanup_free_ char *nk = key_nominated(a->host);
                if (etcd_call(c, ETCD_PUT, etcd_req_put(nk, a->urls, 0), action_done, a->n) < 0)
                        action_done(c, NULL, NULL, a->n);
        } else
                action_done(c, err, reply, a->n);
        free(a->host);
        free(a->urls);
        free(a);
}

struct pending_remove {
        struct node *n;
        char *key; /* nominated/<host> to delete once the member is gone, or NULL */
};

/* The member is removed first, while its etcd still serves; its nomination
 * key goes after. A coordinator dying in between leaves a key without a
 * member, which the next round drops or turns into a fresh nomination. */
static void nomination_after_remove(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                                    void *ud) {
        struct pending_remove *p = ud;
        struct node *n = p->n;
        _cleanup_free_ char *key = p->key;
        free(p);
        if (err || !key) {
                action_done(c, err, reply, n);
                return;
        }
        if (etcd_call(c, ETCD_DELETE, etcd_req_delete(key, false), action_done, n) < 0)
                action_done(c, NULL, NULL, n);
}

static void execute(struct node *n, const struct caction *a) {
        _cleanup_free_ char *nk = a->host ? key_nominated(a->host) : NULL;
        int r = 0;

        n->round_busy = true;
        sup_metrics_count_change(caction_to_string(a->type));
        switch (a->type) {
        case ACT_NOMINATE: {
                const char *urls = NULL;
                for (size_t i = 0; n->vol_hosts[i]; i++)
                        if (streq(n->vol_hosts[i], a->host))
                                urls = n->vol_urls[i];
                /* only if still volunteering and not yet nominated */
                _cleanup_free_ char *vk = key_volunteer(a->host);
                r = etcd_call(n->client, ETCD_TXN,
                              etcd_req_txn(json_pack("[oo]", etcd_cmp_version(vk, ">", 0),
                                                     etcd_cmp_version(nk, "=", 0)),
                                           json_pack("[o]", etcd_op_put(nk, urls ? urls : "", 0)), NULL),
                              action_done, n);
                break;
        }
        case ACT_ADD_LEARNER: {
                const char *urls = "";
                char err[256];
                _cleanup_strv_ char **pu = NULL;
                for (size_t i = 0; n->nom_hosts[i]; i++)
                        if (streq(n->nom_hosts[i], a->host))
                                urls = n->nom_urls[i];
                if (urls_parse(urls, &pu, err, sizeof err) < 0) {
                        log_warnx("nominated/%s holds bad peer URLs '%.120s': %s; un-nominating", a->host,
                                  urls, err);
                        r = etcd_call(n->client, ETCD_DELETE, etcd_req_delete(nk, false), action_done, n);
                        break;
                }
                struct track *t = track_get(n, a->host);
                if (t)
                        t->nominated_since = now_usec();
                struct added *ad = calloc(1, sizeof *ad);
                if (!ad) {
                        r = -ENOMEM;
                        break;
                }
                *ad = (struct added){n, strdup(a->host), strdup(urls)};
                r = etcd_call(n->client, ETCD_MEMBER_ADD, etcd_req_member_add(pu, true), learner_added, ad);
                if (r < 0) {
                        free(ad->host);
                        free(ad->urls);
                        free(ad);
                }
                break;
        }
        case ACT_PROMOTE:
                r = etcd_call(n->client, ETCD_MEMBER_PROMOTE, etcd_req_member_id(a->id), action_done, n);
                break;
        case ACT_UNNOMINATE:
                r = etcd_call(n->client, ETCD_DELETE, etcd_req_delete(nk, false), action_done, n);
                break;
        case ACT_REMOVE: {
                if (a->cooldown && a->host) {
                        struct track *t = track_get(n, a->host);
                        if (t) {
                                t->cooldown_until = now_usec() + 2 * n->sc->nominate_timeout;
                                t->nominated_since = 0;
                        }
                }
                struct pending_remove *p = malloc(sizeof *p);
                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                *p = (struct pending_remove){
                    n, a->host && strv_contains(n->nom_hosts, a->host) ? TAKE_PTR(nk) : NULL};
                r = etcd_call(n->client, ETCD_MEMBER_REMOVE, etcd_req_member_id(a->id),
                              nomination_after_remove, p);
                if (r < 0) {
                        free(p->key);
                        free(p);
                }
                break;
        }
        case ACT_RENOMINATE: {
                const struct etcd_member *m = NULL;
                for (size_t i = 0; i < n->members.n; i++)
                        if (n->members.m[i].id == a->id)
                                m = &n->members.m[i];
                _cleanup_free_ char *urls = m ? strv_join(m->peer_urls, ",") : NULL;
                if (!urls) {
                        r = -ENOENT;
                        break;
                }
                r = etcd_call(n->client, ETCD_TXN,
                              etcd_req_txn(json_pack("[o]", etcd_cmp_version(nk, "=", 0)),
                                           json_pack("[o]", etcd_op_put(nk, urls, 0)), NULL),
                              action_done, n);
                break;
        }
        case ACT_TRANSFER:
                r = etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_MOVE_LEADER,
                                 etcd_req_move_leader(a->id), action_done, n);
                break;
        case ACT_NONE:
                n->round_busy = false;
                break;
        }
        if (r < 0) {
                n->round_busy = false;
                log_error_errno(r, "cannot send membership change: %m");
        }
}

static void report(struct node *n, const struct caction *a) {
        const char *why = a->why[0] ? a->why : "nothing to do: the cluster is at its ideal size";
        plan_publish(n, caction_to_string(a->type), a->host, why, a->type != ACT_NONE, false);
}

/* A volunteer advertising a URL that an older volunteer or a member of
 * another name already uses is never nominated (its etcd could not bind, or
 * would pass for the other host's member). */
static void mark_conflicts(struct node *n, struct cstate *s) {
        for (size_t i = 0; n->vol_hosts && n->vol_hosts[i]; i++) {
                struct chost *h = NULL;
                for (size_t k = 0; k < s->n_hosts; k++)
                        if (streq(s->hosts[k].name, n->vol_hosts[i]))
                                h = &s->hosts[k];
                if (!h)
                        continue;
                for (size_t j = 0; !h->conflict && n->vol_hosts[j]; j++) {
                        if (j == i || (n->vol_crev && n->vol_crev[j] > n->vol_crev[i]))
                                continue;
                        _cleanup_strv_ char **u = NULL;
                        char err[256];
                        if (urls_parse(n->vol_urls[j], &u, err, sizeof err) < 0)
                                continue;
                        for (size_t k = 0; u[k]; k++)
                                if (url_list_holds(n->vol_urls[i], u[k]))
                                        h->conflict = n->vol_hosts[j];
                }
                for (size_t m = 0; !h->conflict && m < n->members.n; m++) {
                        const struct etcd_member *em = &n->members.m[m];
                        if (!em->name || !*em->name || streq(em->name, h->name))
                                continue;
                        for (size_t k = 0; em->peer_urls[k]; k++)
                                if (url_list_holds(n->vol_urls[i], em->peer_urls[k]))
                                        h->conflict = em->name;
                }
        }
}

void coordinator_run(struct node *n) {
        struct cstate s = {0};
        struct caction a;
        uint64_t now = now_usec();

        if (n->round_busy || n->maint.acting || !n->have_state || n->shutting_down)
                return;
        s.self = n->sc->hostname;
        s.self_id = n->my_id;
        s.ideal = n->ideal;
        s.now = now;
        s.nominate_timeout = n->sc->nominate_timeout;
        s.dead_grace = n->sc->dead_grace;
        s.members = calloc(n->members.n + 1, sizeof *s.members);
        s.hosts = calloc(strv_length(n->vol_hosts) + strv_length(n->nom_hosts) + strv_length(n->end_hosts) +
                             n->members.n + 1,
                         sizeof *s.hosts);
        if (!s.members || !s.hosts)
                goto out;

        /* every host we hear of, once */
        char **lists[3] = {n->vol_hosts, n->nom_hosts, n->end_hosts};
        for (size_t l = 0; l < 3; l++)
                for (size_t i = 0; lists[l] && lists[l][i]; i++) {
                        bool dup = false;
                        for (size_t k = 0; k < s.n_hosts; k++)
                                dup = dup || streq(s.hosts[k].name, lists[l][i]);
                        if (!dup)
                                s.hosts[s.n_hosts++].name = lists[l][i];
                }
        for (size_t i = 0; i < n->members.n; i++) {
                const struct etcd_member *m = &n->members.m[i];
                const char *h = host_of_member(n, m);
                s.members[i] = (struct cmember){.id = m->id,
                                                .name = m->name,
                                                .host = (char *)h,
                                                .learner = m->learner,
                                                .started = m->name && *m->name && m->client_urls[0]};
                s.n_members++;
                bool dup = !h;
                for (size_t k = 0; h && k < s.n_hosts; k++)
                        dup = dup || streq(s.hosts[k].name, h);
                if (!dup)
                        s.hosts[s.n_hosts++].name = (char *)h;
        }
        qsort(s.hosts, s.n_hosts, sizeof *s.hosts, cmp_host);
        for (size_t i = 0; i < s.n_hosts; i++) {
                struct chost *h = &s.hosts[i];
                struct track *t = track_get(n, h->name);
                h->volunteer = strv_contains(n->vol_hosts, h->name);
                h->nominated = strv_contains(n->nom_hosts, h->name);
                h->endpoints = strv_contains(n->end_hosts, h->name);
                if (!t)
                        continue;
                if (!h->volunteer && !h->endpoints) {
                        if (!t->gone_since) {
                                t->gone_since = now;
                                log_info("host %s is gone (no volunteer, no endpoints key); grace %llus",
                                         h->name, (unsigned long long)(n->sc->dead_grace / USEC_PER_SEC));
                        }
                } else
                        t->gone_since = 0;
                /* the nomination is done once the member votes */
                bool started = false;
                for (size_t k = 0; k < s.n_members; k++)
                        if (s.members[k].host && streq(s.members[k].host, h->name) && s.members[k].started &&
                            !s.members[k].learner)
                                started = true;
                if (!h->nominated || started)
                        t->nominated_since = 0;
                else if (!t->nominated_since)
                        t->nominated_since = now;
                h->gone_since = t->gone_since;
                h->nominated_since = t->nominated_since;
                h->cooldown_until = t->cooldown_until;
        }

        mark_conflicts(n, &s);
        coordinator_decide(&s, &a);
        if (s.ideal < 1 && !a.why[0])
                snprintf(a.why, sizeof a.why, "idealClusterSize '%s' is invalid: not resizing",
                         n->ideal_text ? n->ideal_text : "");
        if (a.type == ACT_NONE && s.ideal >= 1) {
                /* no membership change: the members' own upkeep */
                maintenance_run(n);
                if (n->maint.why[0] && (!a.why[0] || n->maint.type != MACT_NONE)) {
                        plan_report_maint(n);
                        goto out;
                }
        }
        report(n, &a);
        if (a.type != ACT_NONE)
                execute(n, &a);
out:
        free(s.members);
        free(s.hosts);
}

/* The coordinator puts a deleted idealClusterSize back with the last value seen. */
static void ideal_restored(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        n->ideal_restore_busy = false;
        if (err)
                log_warnx("cannot restore idealClusterSize: %s", err->msg);
}

void coordinator_restore_ideal(struct node *n) {
        if (!n->ideal_missing || n->ideal_seen < 1 || n->ideal_restore_busy)
                return;
        _cleanup_free_ char *ik = key_ideal_size();
        char v[32];
        snprintf(v, sizeof v, "%lld", n->ideal_seen);
        log_notice("coordinator: %s was deleted; putting back the last value seen, %lld", ik, n->ideal_seen);
        n->ideal_restore_busy = true;
        if (etcd_call(n->client, ETCD_TXN,
                      etcd_req_txn(json_pack("[o]", etcd_cmp_version(ik, "=", 0)),
                                   json_pack("[o]", etcd_op_put(ik, v, 0)), NULL),
                      ideal_restored, n) < 0)
                n->ideal_restore_busy = false;
}
