/* maintenance_run.c: the members' upkeep, carried out by the coordinator
 * (maintenance.c decides). Every MAINT_READ_USEC, and at once after an action, the coordinator reads
 * each member's status on its own client URL and the cluster's alarms, asks
 * maintenance_decide() for one action and carries it out. An action in
 * flight holds the membership round too: one change at a time. */

#include <bsd/string.h>
#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "supervisor.h"
#include "util.h"

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
void maintenance_run(struct node *n) {
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
                plan_report_maint(n);
        if (a.type == MACT_NONE)
                return;
        const struct mmember *target = NULL;
        for (size_t i = 0; i < k; i++)
                if (mm[i].id == a.id)
                        target = &mm[i];
        maint_execute(n, &a, target);
}
