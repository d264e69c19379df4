/* maintenance.c: the maintenance decision as a pure function, shaped like
 * coordinator_decide(): the coordinator feeds it every member's db sizes and
 * alarms as just read, and carries out the one action it returns (compact,
 * defragment one member, hand leadership over, clear a NOSPACE alarm).
 *
 * The threshold: a member is defragmented when the free space inside its db
 * file (etcd's dbSize - dbSizeInUse) reaches both --defrag-threshold bytes
 * and a quarter of the file. Under a NOSPACE alarm, after a compaction to the
 * current revision, any member with at least 64 KiB and a twentieth of its
 * file free is defragmented, then the alarm is cleared. A defrag blocks its
 * member, so: one member at a time, the others before the leader (which hands
 * leadership over first), and never while the failure tolerance is 0. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <stdio.h>

#include "macro.h"
#include "supervisor.h"

const char *maction_to_string(enum maction_type t) {
        static const char *const names[] = {
            [MACT_NONE] = "none",          [MACT_COMPACT] = "compact",
            [MACT_DEFRAG] = "defragment",  [MACT_TRANSFER] = "transfer-leadership",
            [MACT_DISARM] = "clear-alarm",
        };
        return names[t];
}

/* "64M", "512K", "1G", "100000": bytes (binary suffixes, optional "iB"/"B"). */
int maint_parse_size(const char *s, int64_t *ret) {
        char *end;
        if (!s || !isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        unsigned shift = 0;
        switch (toupper((unsigned char)*end)) {
        case 'K':
                shift = 10;
                break;
        case 'M':
                shift = 20;
                break;
        case 'G':
                shift = 30;
                break;
        case 'T':
                shift = 40;
                break;
        case 'B':
        case '\0':
                break;
        default:
                return -EINVAL;
        }
        if (shift) {
                end++;
                if (streq(end, "iB") || streq(end, "B"))
                        end += strlen(end);
        } else if (streq(end, "B"))
                end++;
        if (*end || v > (unsigned long long)(INT64_MAX >> shift))
                return -EINVAL;
        *ret = (int64_t)(v << shift);
        return 0;
}

/* Bytes as text for reasons and logs: "1.4 MiB". */
void maint_format_size(int64_t b, char *buf, size_t len) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)b;
        size_t u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%lld B", (long long)b);
        else
                snprintf(buf, len, "%.1f %s", v, units[u]);
}

static int64_t free_of(const struct mmember *m) {
        return m->db_size > m->db_in_use ? m->db_size - m->db_in_use : 0;
}

static bool any_alarm(const struct mstate *s) {
        for (size_t i = 0; i < s->n_members; i++)
                if (s->members[i].nospace)
                        return true;
        return false;
}

/* Does m want a defrag now? Reason for it in why. */
static bool needs_defrag(const struct mstate *s, const struct mmember *m, bool alarm) {
        int64_t f = free_of(m);
        if (!m->answered || m->db_size <= 0)
                return false;
        if (m->defragged_at && s->now - m->defragged_at < (alarm ? s->disarm_backoff : s->cooldown))
                return false; /* done already: what is left is not ours to free */
        if (alarm)
                return f >= MAINT_NOSPACE_MIN_FREE && f * 20 >= m->db_size;
        return s->threshold > 0 && f >= s->threshold && f * 4 >= m->db_size;
}

static void set(struct maction *a, enum maction_type t, const struct mmember *m, const char *fmt, ...)
    _printf_(4, 5);
static void set(struct maction *a, enum maction_type t, const struct mmember *m, const char *fmt, ...) {
        va_list ap;
        a->type = t;
        a->host = m ? m->host : NULL;
        a->id = m ? m->id : 0;
        va_start(ap, fmt);
        vsnprintf(a->why, sizeof a->why, fmt, ap);
        va_end(ap);
}

void maintenance_decide(const struct mstate *s, struct maction *a) {
        bool alarm = any_alarm(s);
        size_t nv = 0, healthy = 0;
        const struct mmember *pick = NULL, *self = NULL;

        *a = (struct maction){.type = MACT_NONE};
        for (size_t i = 0; i < s->n_members; i++) {
                const struct mmember *m = &s->members[i];
                if (m->id == s->self_id)
                        self = m;
                if (m->learner)
                        continue;
                nv++;
                if (m->answered)
                        healthy++;
        }
        long long tolerance = (long long)healthy - (long long)(nv / 2 + 1);
        if (tolerance < 0)
                tolerance = 0;

        /* 1. NOSPACE: compaction first, to the current revision */
        if (alarm && s->revision > s->compacted) {
                const struct mmember *m = NULL;
                for (size_t i = 0; !m && i < s->n_members; i++)
                        if (s->members[i].nospace)
                                m = &s->members[i];
                set(a, MACT_COMPACT, m,
                    "NOSPACE alarm on %s: compacting to revision %lld, then defragmenting",
                    m && m->host ? m->host : "a member", (long long)s->revision);
                a->revision = s->revision;
                return;
        }

        /* 2. one member to defragment: the others first, the leader last */
        for (size_t i = 0; !pick && i < s->n_members; i++)
                if (s->members[i].id != s->self_id && needs_defrag(s, &s->members[i], alarm))
                        pick = &s->members[i];
        if (!pick && self && needs_defrag(s, self, alarm))
                pick = self;
        if (pick) {
                char fr[32], db[32];
                maint_format_size(free_of(pick), fr, sizeof fr);
                maint_format_size(pick->db_size, db, sizeof db);
                if (tolerance < 1) {
                        set(a, MACT_NONE, pick,
                            "not defragmenting %s (%s of its %s db free): the failure tolerance is 0 (%zu "
                            "of %zu "
                            "voters healthy) and a defrag blocks its member",
                            pick->host, fr, db, healthy, nv);
                        return;
                }
                if (pick == self) {
                        const struct mmember *to = NULL;
                        for (size_t i = 0; i < s->n_members; i++) {
                                const struct mmember *m = &s->members[i];
                                if (m == self || m->learner || !m->answered)
                                        continue;
                                if (!to || (needs_defrag(s, to, alarm) && !needs_defrag(s, m, alarm)))
                                        to = m;
                        }
                        if (!to) {
                                set(a, MACT_NONE, self,
                                    "not defragmenting %s: no other healthy voter to lead", self->host);
                                return;
                        }
                        set(a, MACT_TRANSFER, to,
                            "moving leadership to %s before %s (the leader, %s of %s free) "
                            "is defragmented",
                            to->host, self->host, fr, db);
                        return;
                }
                set(a, MACT_DEFRAG, pick, "%s has %s of its %s db free%s: defragment it", pick->host, fr, db,
                    alarm ? " under a NOSPACE alarm" : "");
                return;
        }

        /* 3. NOSPACE with nothing left to reclaim: clear the alarm, again only
         * after a back-off when it came back and nothing was freed since */
        if (alarm) {
                const struct mmember *m = NULL;
                for (size_t i = 0; !m && i < s->n_members; i++)
                        if (s->members[i].nospace)
                                m = &s->members[i];
                if (s->last_disarm && !s->reclaimed && s->now - s->last_disarm < s->disarm_backoff) {
                        set(a, MACT_NONE, m,
                            "NOSPACE alarm on %s is back and nothing is left to reclaim: the data does not "
                            "fit "
                            "etcd's quota (quota-backend-bytes); delete data or raise the quota; clearing "
                            "it again "
                            "in %llus",
                            m->host ? m->host : "a member",
                            (unsigned long long)((s->disarm_backoff - (s->now - s->last_disarm) +
                                                  USEC_PER_SEC - 1) /
                                                 USEC_PER_SEC));
                        return;
                }
                char names[160] = "";
                for (size_t i = 0; i < s->n_members; i++)
                        if (s->members[i].nospace) {
                                if (names[0])
                                        strlcat(names, ", ", sizeof names);
                                strlcat(names, s->members[i].host ? s->members[i].host : "?", sizeof names);
                        }
                set(a, MACT_DISARM, m, "clearing the NOSPACE alarm of %s: compacted and defragmented",
                    names);
        }
}
