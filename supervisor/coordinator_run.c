/* round.c: the coordinator round. Build the cluster state from what the last
 * refresh read (plus the timers this coordinator keeps: since when a nominee
 * waits, since when a host is gone, cool-downs), ask coordinator_decide()
 * for one action, carry it out, and refresh when it is done. One membership
 * change is in flight at a time. With no membership change to make, the
 * members' upkeep: their db sizes and alarms read, maintenance_decide()
 * (maintenance.c) asked, its one action (compact, defragment, hand
 * leadership over, clear a NOSPACE alarm) carried out. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <inttypes.h>
#include <stdio.h>

#include "keys.h"
#include "log.h"
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

/* The shape of a reason: its text without digits, so a countdown ("41 s
 * of grace left") is one decision, logged once. */
static bool same_shape(const char *a, const char *b) {
        while (*a || *b) {
                while (*a >= '0' && *a <= '9')
                        a++;
                while (*b >= '0' && *b <= '9')
                        b++;
                if (*a != *b)
                        return false;
                if (*a)
                        a++, b++;
        }
        return true;
}

static void plan_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        if (err)
                log_debug("cannot publish the plan: %s", err->msg);
}

/* Log a decision once (a retried one is not repeated) and publish it as
 * /_mgmt/plan on our session lease, so operators see what the coordinator
 * does next or why it waits. quiet: the caller logs the action itself. */
static void publish_plan(struct node *n, const char *action, const char *host, const char *why, bool act,
                         bool quiet) {
        bool changed = !n->last_decision || !same_shape(n->last_decision, why);

        if (changed) {
                if (act && !quiet)
                        log_notice("coordinator: %s", why);
                else if (!act && !startswith(why, "nothing to do"))
                        log_info("coordinator: %s", why);
                free(n->plan_since);
                n->plan_since = rfc3339_now();
        }
        if (n->last_decision && streq(n->last_decision, why))
                return;
        free(n->last_decision);
        n->last_decision = strdup(why);
        if (!n->lease)
                return;
        _cleanup_free_ char *k = key_plan();
        json_t *j = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "coordinator", n->sc->hostname, "action", action,
                              "host", host, "why", why, "since", n->plan_since ? n->plan_since : "");
        _cleanup_free_ char *v = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
        json_decref(j);
        if (v && k)
                etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), plan_done, n);
}

static void report(struct node *n, const struct caction *a) {
        const char *why = a->why[0] ? a->why : "nothing to do: the cluster is at its ideal size";
        publish_plan(n, caction_to_string(a->type), a->host, why, a->type != ACT_NONE, false);
}

/* The maintenance decision in the plan; its actions log themselves. */
static void report_maint(struct node *n) {
        struct maint *m = &n->maint;
        publish_plan(n, maction_to_string(m->type), m->host[0] ? m->host : NULL, m->why,
                     m->type != MACT_NONE, true);
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

/* ---------------- maintenance (maintenance.c decides) ----------------
 * Every MAINT_READ_USEC, and at once after an action, the coordinator reads
 * each member's status on its own client URL and the cluster's alarms, asks
 * maintenance_decide() for one action and carries it out. An action in
 * flight holds the membership round too: one change at a time. */
#define MAINT_READ_USEC (10 * USEC_PER_SEC)
#define MAINT_COOLDOWN_USEC (10 * 60 * USEC_PER_SEC)
#define MAINT_DISARM_BACKOFF_USEC (30 * USEC_PER_SEC)
#define MAINT_DEFRAG_TIMEOUT_USEC (10 * 60 * USEC_PER_SEC)

static const struct etcd_member *member_by_id(struct node *n, uint64_t id) {
        for (size_t i = 0; i < n->members.n; i++)
                if (n->members.m[i].id == id)
                        return &n->members.m[i];
        return NULL;
}

static void maint_decide(struct node *n);

static void maint_status_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct maint_slot *sl = ud;
        struct node *n = sl->n;
        struct etcd_status st;
        struct etcd_error perr;
        if (!err && etcd_parse_status(reply, &st, &perr) >= 0) {
                sl->answered = true;
                sl->db_size = st.db_size;
                sl->db_in_use = st.db_size_in_use;
                sl->revision = st.revision;
                sl->leader = st.leader;
                etcd_status_clear(&st);
        }
        if (--n->maint.pending == 0)
                maint_decide(n);
}

static void maint_alarm_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct maint *m = &n->maint;
        json_t *al = err ? NULL : json_object_get(reply, "alarms"), *v;
        size_t i;
        m->alarms_ok = !err;
        m->n_nospace = 0;
        json_array_foreach(al, i, v) {
                uint64_t id;
                const char *kind = json_string_value(json_object_get(v, "alarm"));
                if (kind && streq(kind, "NOSPACE") && etcd_json_uint64(v, "memberID", &id) >= 0 &&
                    m->n_nospace < MAINT_MAX_MEMBERS)
                        m->nospace[m->n_nospace++] = id;
        }
        if (err)
                log_debug("maintenance: cannot read the alarms: %s", err->msg);
        if (--m->pending == 0)
                maint_decide(n);
}

/* Start a read of every member's status and the alarms, when due. */
static void maint_read(struct node *n) {
        struct maint *m = &n->maint;
        uint64_t now = now_usec();
        if (m->busy || now < m->next_read)
                return;
        m->busy = true;
        m->n_slots = 0;
        m->pending = 1; /* ours, until every call is sent */
        for (size_t i = 0; i < n->members.n && m->n_slots < MAINT_MAX_MEMBERS; i++) {
                const struct etcd_member *em = &n->members.m[i];
                if (!em->name || !*em->name || !em->client_urls || !em->client_urls[0])
                        continue; /* not started */
                struct maint_slot *sl = &m->slots[m->n_slots++];
                *sl = (struct maint_slot){.n = n, .id = em->id};
                if (etcd_call_at(n->client, em->client_urls[0], ETCD_STATUS, json_object(), maint_status_cb,
                                 sl) >= 0)
                        m->pending++;
        }
        if (etcd_call(n->client, ETCD_ALARM, json_pack("{s:s}", "action", "GET"), maint_alarm_cb, n) >= 0)
                m->pending++;
        if (--m->pending == 0)
                maint_decide(n);
}

static int cmp_mmember(const void *a, const void *b) {
        const struct mmember *x = a, *y = b;
        return strcmp(x->host ? x->host : "", y->host ? y->host : "");
}

/* An action is done: read again at once. */
static void maint_act_done(struct node *n) {
        n->maint.acting = false;
        n->maint.busy = false;
        n->maint.next_read = 0;
}

static void maint_compacted(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct maint *m = &n->maint;
        if (err && !strstr(err->msg, "has been compacted")) {
                log_warnx("maintenance: compaction to revision %lld failed: %s", (long long)m->compacted,
                          err->msg);
                m->compacted = 0;
        } else if (err)
                log_info("maintenance: revision %lld was compacted already", (long long)m->compacted);
        else {
                log_notice("maintenance: compacted to revision %lld", (long long)m->compacted);
                m->reclaimed = true;
        }
        maint_act_done(n);
}

static void maint_defrag_status(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                                void *ud) {
        struct node *n = ud;
        struct maint *m = &n->maint;
        struct etcd_status st = {0};
        struct etcd_error perr;
        uint64_t ms = (now_usec() - m->defrag_start) / USEC_PER_MSEC;
        if (!err && etcd_parse_status(reply, &st, &perr) >= 0) {
                char a[32], b[32], f[32];
                maint_format_size(m->defrag_before, a, sizeof a);
                maint_format_size(st.db_size, b, sizeof b);
                maint_format_size(m->defrag_before > st.db_size ? m->defrag_before - st.db_size : 0, f,
                                  sizeof f);
                log_notice("defragmented %s in %llu ms: db %s -> %s, %s freed (%lld bytes)", m->defrag_host,
                           (unsigned long long)ms, a, b, f,
                           (long long)(m->defrag_before > st.db_size ? m->defrag_before - st.db_size : 0));
                etcd_status_clear(&st);
        } else
                log_notice("defragmented %s in %llu ms (its size after is unknown: %s)", m->defrag_host,
                           (unsigned long long)ms, err ? err->msg : perr.msg);
        m->reclaimed = true;
        maint_act_done(n);
}

static void maint_remember(struct maint *m, uint64_t id) {
        size_t k = 0;
        while (k < MAINT_MAX_MEMBERS - 1 && m->done[k].id && m->done[k].id != id)
                k++;
        m->done[k].id = id;
        m->done[k].at = now_usec();
}

static void maint_defragged(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct maint *m = &n->maint;
        maint_remember(m, m->defrag_id);
        if (err) {
                log_warnx("defragmenting %s failed: %s", m->defrag_host, err->msg);
                maint_act_done(n);
                return;
        }
        if (etcd_call_at(c, m->defrag_url, ETCD_STATUS, json_object(), maint_defrag_status, n) < 0)
                maint_defrag_status(c, &(struct etcd_error){.msg = "cannot ask"}, NULL, n);
}

static void maint_simple_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct maint *m = &n->maint;
        if (err)
                log_warnx("maintenance: %s %s failed: %s", maction_to_string(m->type), m->host, err->msg);
        else if (m->type == MACT_TRANSFER)
                log_notice("maintenance: moved leadership to %s", m->host);
        maint_act_done(n);
}

/* One NOSPACE alarm deactivated (or, with reply NULL and no error, the
 * sender's own count): done when every one has answered. */
static void maint_disarmed(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct maint *m = &n->maint;
        if (err) {
                log_warnx("maintenance: cannot clear a NOSPACE alarm: %s", err->msg);
                m->disarm_failed = true;
        }
        if (--m->disarming > 0)
                return;
        if (!m->disarm_failed)
                log_notice("maintenance: cleared the NOSPACE alarm of %s", m->alarm_hosts);
        m->disarm_failed = false;
        m->last_disarm = now_usec();
        m->reclaimed = false;
        maint_act_done(n);
}

static void maint_execute(struct node *n, const struct maction *a, const struct mmember *mm) {
        struct maint *m = &n->maint;
        const struct etcd_member *em = member_by_id(n, a->id);
        char id[32];
        int r = -EINVAL;

        snprintf(id, sizeof id, "%" PRIu64, a->id);
        m->acting = true;
        switch (a->type) {
        case MACT_COMPACT: {
                char rev[32];
                snprintf(rev, sizeof rev, "%lld", (long long)a->revision);
                m->compacted = a->revision;
                r = etcd_call(n->client, ETCD_COMPACT,
                              json_pack("{s:s, s:b}", "revision", rev, "physical", 1), maint_compacted, n);
                break;
        }
        case MACT_DEFRAG: {
                char fr[32], db[32];
                if (!em || !mm || !em->client_urls[0])
                        break;
                maint_format_size(mm->db_size - mm->db_in_use, fr, sizeof fr);
                maint_format_size(mm->db_size, db, sizeof db);
                log_notice("defragmenting %s (member %016" PRIx64 "): %s of its %s db free", a->host, a->id,
                           fr, db);
                m->defrag_id = a->id;
                m->defrag_before = mm->db_size;
                m->defrag_start = now_usec();
                strlcpy(m->defrag_host, a->host, sizeof m->defrag_host);
                strlcpy(m->defrag_url, em->client_urls[0], sizeof m->defrag_url);
                r = etcd_call_at_timeout(n->client, m->defrag_url, ETCD_DEFRAG, json_object(),
                                         MAINT_DEFRAG_TIMEOUT_USEC, maint_defragged, n);
                break;
        }
        case MACT_TRANSFER:
                log_notice("maintenance: %s", a->why);
                r = etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_MOVE_LEADER,
                                 etcd_req_move_leader(a->id), maint_simple_done, n);
                break;
        case MACT_DISARM:
                /* every member's alarm, in parallel; done when all answered */
                m->disarming = 1;
                for (size_t i = 0; i < m->n_nospace; i++) {
                        snprintf(id, sizeof id, "%" PRIu64, m->nospace[i]);
                        if (etcd_call(n->client, ETCD_ALARM,
                                      json_pack("{s:s, s:s, s:s}", "action", "DEACTIVATE", "memberID", id,
                                                "alarm", "NOSPACE"),
                                      maint_disarmed, n) >= 0)
                                m->disarming++;
                }
                maint_disarmed(n->client, NULL, NULL, n);
                r = 0;
                break;
        case MACT_NONE:
                break;
        }
        if (r < 0) {
                if (a->type != MACT_NONE)
                        log_warnx("maintenance: cannot %s %s", maction_to_string(a->type),
                                  a->host ? a->host : "");
                maint_act_done(n);
                n->maint.next_read = now_usec() + MAINT_READ_USEC;
        }
}

/* Every read is in: decide and act, if we still coordinate and nothing else runs. */
static void maint_decide(struct node *n) {
        struct maint *m = &n->maint;
        struct mmember mm[MAINT_MAX_MEMBERS];
        struct mstate s = {0};
        struct maction a;
        size_t k = 0;

        m->busy = false;
        m->next_read = now_usec() + MAINT_READ_USEC;
        if (!n->coordinator || n->shutting_down || n->round_busy || !n->my_id)
                return;
        /* only while our own etcd says it leads: the leader is never taken for a follower */
        bool leading = false;
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].id == n->my_id)
                        leading = m->slots[i].answered && m->slots[i].leader == n->my_id;
        if (!leading)
                return;
        for (size_t i = 0; i < m->n_slots; i++) {
                const struct maint_slot *sl = &m->slots[i];
                const struct etcd_member *em = member_by_id(n, sl->id);
                if (!em || !em->name || !*em->name)
                        continue;
                mm[k] = (struct mmember){.id = sl->id,
                                         .host = em->name,
                                         .learner = em->learner,
                                         .answered = sl->answered,
                                         .db_size = sl->db_size,
                                         .db_in_use = sl->db_in_use};
                for (size_t j = 0; j < m->n_nospace; j++)
                        mm[k].nospace = mm[k].nospace || m->nospace[j] == sl->id;
                for (size_t j = 0; j < MAINT_MAX_MEMBERS && m->done[j].id; j++)
                        if (m->done[j].id == sl->id)
                                mm[k].defragged_at = m->done[j].at;
                if (sl->answered && sl->revision > s.revision)
                        s.revision = sl->revision;
                k++;
        }
        qsort(mm, k, sizeof *mm, cmp_mmember);
        m->alarm_hosts[0] = 0;
        for (size_t i = 0; i < k; i++)
                if (mm[i].nospace) {
                        if (m->alarm_hosts[0])
                                strlcat(m->alarm_hosts, ", ", sizeof m->alarm_hosts);
                        strlcat(m->alarm_hosts, mm[i].host, sizeof m->alarm_hosts);
                }
        s.self_id = n->my_id;
        s.members = mm;
        s.n_members = k;
        s.threshold = n->sc->defrag_threshold;
        s.compacted = m->compacted;
        s.reclaimed = m->reclaimed;
        s.now = now_usec();
        s.last_disarm = m->last_disarm;
        s.cooldown = MAINT_COOLDOWN_USEC;
        s.disarm_backoff = MAINT_DISARM_BACKOFF_USEC;
        maintenance_decide(&s, &a);
        m->type = a.type;
        strlcpy(m->why, a.why, sizeof m->why);
        strlcpy(m->host, a.host ? a.host : "", sizeof m->host);
        if (m->why[0])
                report_maint(n);
        if (a.type == MACT_NONE)
                return;
        const struct mmember *target = NULL;
        for (size_t i = 0; i < k; i++)
                if (mm[i].id == a.id)
                        target = &mm[i];
        maint_execute(n, &a, target);
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
                maint_read(n);
                if (n->maint.why[0] && (!a.why[0] || n->maint.type != MACT_NONE)) {
                        report_maint(n);
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
