/* coordinator.c: the membership decision as a pure function. The acting
 * coordinator (the supervisor whose etcd is raft leader) feeds it the cluster
 * as it reads it and carries out the one action it returns; the next round
 * sees the result. Every rule is idempotent, so a new coordinator finishes
 * whatever a dead one left half done. */
#include <stdio.h>

#include "macro.h"
#include "supervisor.h"

const char *caction_to_string(enum caction_type t) {
        static const char *const names[] = {
            [ACT_NONE] = "none",
            [ACT_NOMINATE] = "nominate",
            [ACT_ADD_LEARNER] = "add-learner",
            [ACT_PROMOTE] = "promote",
            [ACT_UNNOMINATE] = "unnominate",
            [ACT_REMOVE] = "remove",
            [ACT_TRANSFER] = "transfer-leadership",
            [ACT_RENOMINATE] = "repair-nomination",
        };
        return names[t];
}

static const struct chost *find_host(const struct cstate *s, const char *name) {
        for (size_t i = 0; name && i < s->n_hosts; i++)
                if (streq(s->hosts[i].name, name))
                        return &s->hosts[i];
        return NULL;
}

static const struct cmember *member_of(const struct cstate *s, const char *host) {
        for (size_t i = 0; i < s->n_members; i++)
                if (s->members[i].host && streq(s->members[i].host, host))
                        return &s->members[i];
        return NULL;
}

static bool member_healthy(const struct cstate *s, const struct cmember *m) {
        const struct chost *h = find_host(s, m->host);
        return m->started && !m->learner && h && h->endpoints;
}

size_t cstate_healthy_voters(const struct cstate *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_members; i++)
                if (member_healthy(s, &s->members[i]))
                        n++;
        return n;
}

/* The voters that do not count as healthy, and why, for a log line: "h3
 * (no endpoints key), 9a0b... (not started)". */
static const char *unhealthy_voters(const struct cstate *s, char *buf, size_t len) {
        size_t at = 0;
        buf[0] = 0;
        for (size_t i = 0; i < s->n_members && at < len; i++) {
                const struct cmember *m = &s->members[i];
                if (m->learner || member_healthy(s, m))
                        continue;
                const char *why = !m->started              ? "not started"
                                  : !find_host(s, m->host) ? "no host with its name or URLs"
                                                           : "no endpoints key";
                int k = m->host ? snprintf(buf + at, len - at, "%s%s (%s)", at ? ", " : "", m->host, why)
                                : snprintf(buf + at, len - at, "%s%llx (%s)", at ? ", " : "",
                                           (unsigned long long)m->id, why);
                if (k < 0)
                        break;
                at += (size_t)k;
        }
        return buf;
}

static size_t voters(const struct cstate *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_members; i++)
                if (!s->members[i].learner)
                        n++;
        return n;
}

/* Would removing voter m keep a quorum of healthy voters? */
static bool removal_keeps_quorum(const struct cstate *s, const struct cmember *m) {
        size_t n = voters(s), healthy = cstate_healthy_voters(s);
        if (n <= 1)
                return false;
        if (member_healthy(s, m))
                healthy--;
        return healthy >= (n - 1) / 2 + 1;
}

static void set(struct caction *a, enum caction_type t, const char *host, uint64_t id, const char *fmt, ...)
    _printf_(5, 6);
static void set(struct caction *a, enum caction_type t, const char *host, uint64_t id, const char *fmt,
                ...) {
        va_list ap;
        a->type = t;
        a->host = host;
        a->id = id;
        va_start(ap, fmt);
        vsnprintf(a->why, sizeof a->why, fmt, ap);
        va_end(ap);
}

/* Removing a voter: the coordinator hands leadership over first. The member
 * is removed while its etcd still serves (it leaves once it sees the removal
 * committed), so the removal never needs the leaving member to be gone. */
static bool remove_voter(const struct cstate *s, const struct cmember *m, struct caction *a,
                         const char *why) {
        if (!removal_keeps_quorum(s, m)) {
                set(a, ACT_NONE, m->host, m->id,
                    "not removing %s (%s): it would break quorum (%zu healthy of %zu voting)",
                    m->host ? m->host : m->name, why, cstate_healthy_voters(s), voters(s));
                return false;
        }
        if (m->id == s->self_id) {
                for (size_t i = 0; i < s->n_members; i++) {
                        const struct cmember *o = &s->members[i];
                        if (o->id != s->self_id && member_healthy(s, o)) {
                                set(a, ACT_TRANSFER, o->host, o->id,
                                    "moving leadership to %s before removing ourselves (%s)", o->host, why);
                                return true;
                        }
                }
                set(a, ACT_NONE, m->host, m->id, "cannot remove ourselves (%s): no other healthy member",
                    why);
                return false;
        }
        set(a, ACT_REMOVE, m->host, m->id, "removing member %s: %s", m->host ? m->host : m->name, why);
        return true;
}

void coordinator_decide(const struct cstate *s, struct caction *a) {
        size_t nv = voters(s), wanted = 0;

        *a = (struct caction){.type = ACT_NONE};

        /* 1. a learner: promote once started; remove if it never starts */
        for (size_t i = 0; i < s->n_members; i++) {
                const struct cmember *m = &s->members[i];
                const struct chost *h = find_host(s, m->host);
                if (!m->learner)
                        continue;
                if (!h || !h->nominated) {
                        set(a, ACT_REMOVE, m->host, m->id, "removing learner %s: not nominated",
                            m->host ? m->host : "(unnamed)");
                        return;
                }
                if (m->started && !h->volunteer && !h->endpoints) {
                        /* started, then its host died before promotion */
                        if (h->gone_since && s->now - h->gone_since >= s->dead_grace) {
                                set(a, ACT_REMOVE, m->host, m->id,
                                    "removing learner %s: its host is gone; cooling down", m->host);
                                a->cooldown = true;
                        } else
                                set(a, ACT_NONE, m->host, m->id,
                                    "learner %s: host gone, waiting for the grace period", m->host);
                        return;
                }
                if (h->nominated_since && s->now - h->nominated_since >= s->nominate_timeout) {
                        /* never started, or started and never caught up */
                        set(a, ACT_REMOVE, m->host, m->id,
                            "removing learner %s: not promoted within %llus (%s); cooling down", m->host,
                            (unsigned long long)(s->nominate_timeout / USEC_PER_SEC),
                            m->started ? "it never caught up" : "its etcd did not start");
                        a->cooldown = true;
                        return;
                }
                if (m->started) {
                        /* quorum must hold after the promotion, counting the learner */
                        size_t hv = cstate_healthy_voters(s) + (h->endpoints || h->volunteer ? 1 : 0);
                        if (hv < (nv + 1) / 2 + 1) {
                                char why[256];
                                set(a, ACT_NONE, m->host, m->id,
                                    "not promoting learner %s yet: %zu of %zu voters are healthy; not: %s",
                                    m->host, cstate_healthy_voters(s), nv,
                                    unhealthy_voters(s, why, sizeof why));
                                return;
                        }
                        set(a, ACT_PROMOTE, m->host, m->id, "promoting learner %s: its etcd has started",
                            m->host);
                        return;
                }
                set(a, ACT_NONE, m->host, m->id, "waiting for learner %s to start", m->host);
                return;
        }

        /* 2. dead voting members first: no volunteer and no endpoints for the grace period */
        for (size_t i = 0; i < s->n_members; i++) {
                const struct cmember *m = &s->members[i];
                const struct chost *h = find_host(s, m->host);
                if (m->learner || m->id == s->self_id)
                        continue;
                if (h && (h->volunteer || h->endpoints))
                        continue;
                if (h && h->gone_since) {
                        uint64_t gone = s->now - h->gone_since;
                        if (gone < s->dead_grace) {
                                /* not an action: the reason the coordinator waits */
                                set(a, ACT_NONE, m->host, m->id, "member %s is gone: %llus of grace left",
                                    m->host,
                                    (unsigned long long)((s->dead_grace - gone + USEC_PER_SEC - 1) /
                                                         USEC_PER_SEC));
                                continue;
                        }
                        char why[128];
                        snprintf(why, sizeof why, "host gone for %llus (grace %llus)",
                                 (unsigned long long)(gone / USEC_PER_SEC),
                                 (unsigned long long)(s->dead_grace / USEC_PER_SEC));
                        if (remove_voter(s, m, a, why))
                                return;
                }
        }

        /* 3. live members that stopped volunteering (--no-server restart):
         * removed while their etcd still serves; they leave once it is committed */
        for (size_t i = 0; i < s->n_members; i++) {
                const struct cmember *m = &s->members[i];
                const struct chost *h = find_host(s, m->host);
                if (!m->learner && h && h->endpoints && !h->volunteer &&
                    remove_voter(s, m, a, "it stopped volunteering (--no-server)"))
                        return;
        }

        /* 4. more voters than ideal: remove one, an unhealthy one first, never
         * ourselves (the coordinator is the last one standing), last by name */
        if (s->ideal >= 1 && (long long)nv > s->ideal) {
                const struct cmember *pick = NULL;
                for (size_t i = s->n_hosts; i-- > 0;) {
                        const struct cmember *m = member_of(s, s->hosts[i].name);
                        if (!m || m->learner || m->id == s->self_id)
                                continue;
                        if (!pick || (member_healthy(s, pick) && !member_healthy(s, m)))
                                pick = m;
                }
                if (pick) {
                        char why[128];
                        snprintf(why, sizeof why, "%zu voters > ideal %lld", nv, s->ideal);
                        remove_voter(s, pick, a, why);
                }
                return;
        }

        /* 5. keys are intent, the member list is truth: a voting member whose
         * nomination key is missing gets it back */
        for (size_t i = 0; i < s->n_members; i++) {
                const struct cmember *m = &s->members[i];
                const struct chost *h = find_host(s, m->host);
                if (!m->learner && m->started && h && !h->nominated && (h->volunteer || h->endpoints)) {
                        set(a, ACT_RENOMINATE, m->host, m->id,
                            "repairing the nomination key of %s: it is a voting member", m->host);
                        return;
                }
        }

        /* 6. nominated hosts that are not members yet: add as learner, or drop */
        wanted = nv;
        for (size_t i = 0; i < s->n_hosts; i++)
                if (s->hosts[i].nominated && !member_of(s, s->hosts[i].name))
                        wanted++;
        for (size_t i = 0; i < s->n_hosts; i++) {
                const struct chost *h = &s->hosts[i];
                if (!h->nominated || member_of(s, h->name))
                        continue;
                if (s->ideal >= 1 && (long long)wanted > s->ideal) {
                        set(a, ACT_UNNOMINATE, h->name, 0,
                            "un-nominating %s before it joins: %zu wanted > ideal %lld", h->name, wanted,
                            s->ideal);
                        return;
                }
                if (!h->volunteer) {
                        set(a, ACT_UNNOMINATE, h->name, 0,
                            "un-nominating %s: nominated but not volunteering", h->name);
                        return;
                }
                if (h->conflict) {
                        set(a, ACT_UNNOMINATE, h->name, 0, "un-nominating %s: its URLs collide with host %s",
                            h->name, h->conflict);
                        return;
                }
                if (cstate_healthy_voters(s) < nv) {
                        char why[256];
                        set(a, ACT_NONE, h->name, 0,
                            "not adding %s as learner yet: %zu of %zu voters are healthy; not: %s", h->name,
                            cstate_healthy_voters(s), nv, unhealthy_voters(s, why, sizeof why));
                        return;
                }
                set(a, ACT_ADD_LEARNER, h->name, 0, "adding %s as learner: it is nominated", h->name);
                return;
        }

        if (s->ideal < 1)
                return; /* the caller warns about the invalid size */

        /* 7. too few: nominate the first free volunteer by name */
        if ((long long)wanted < s->ideal) {
                for (size_t i = 0; i < s->n_hosts; i++) {
                        const struct chost *h = &s->hosts[i];
                        if (!h->volunteer || h->nominated || member_of(s, h->name))
                                continue;
                        if (h->conflict) {
                                set(a, ACT_NONE, h->name, 0,
                                    "not nominating %s: its URLs collide with host %s", h->name,
                                    h->conflict);
                                continue;
                        }
                        if (h->cooldown_until > s->now)
                                continue;
                        set(a, ACT_NOMINATE, h->name, 0,
                            "nominating %s: %zu voters and nominees < ideal %lld", h->name, wanted,
                            s->ideal);
                        return;
                }
        }
}
