/* test_maintenance.c: unit tests for supervisor/maintenance.c, the pure
 * maintenance decision. A table of member states (db sizes, alarms, health),
 * each with the one action the coordinator must take; a check that the input
 * is untouched; a simulation of a NOSPACE episode on three members; and the
 * size parser of --defrag-threshold. */
#include <bsd/string.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "supervisor.h"

#define SEC USEC_PER_SEC
#define NOW (100000 * SEC)
#define KiB 1024LL
#define MiB (1024LL * 1024)
#define THRESH (64 * MiB)
#define COOLDOWN (600 * SEC)
#define BACKOFF (30 * SEC)
#define MAXN 6

/* id, host, db size, in use; answered, voter, no alarm */
#define M(id_, host_, size_, used_)                                                                         \
        { .id = (id_), .host = (host_), .answered = true, .db_size = (size_), .db_in_use = (used_) }
#define DOWN(id_, host_)                                                                                    \
        { .id = (id_), .host = (host_), .answered = false }
#define LRN(id_, host_, size_, used_)                                                                       \
        {                                                                                                   \
                .id = (id_), .host = (host_), .learner = true, .answered = true, .db_size = (size_),        \
                .db_in_use = (used_)                                                                        \
        }
#define NOSPACE(id_, host_, size_, used_)                                                                   \
        {                                                                                                   \
                .id = (id_), .host = (host_), .answered = true, .db_size = (size_), .db_in_use = (used_),   \
                .nospace = true                                                                             \
        }

struct tcase {
        const char *name;
        uint64_t self_id;
        int64_t threshold; /* 0 in the table means THRESH; use -1 for "off" (0) */
        int64_t revision, compacted;
        bool reclaimed;
        uint64_t last_disarm;
        struct mmember members[MAXN]; /* end at id 0 */
        /* expected */
        enum maction_type type;
        uint64_t id; /* 0: not checked */
        int64_t revision_out;
        const char *why; /* substring; "" means empty */
};

static const struct tcase cases[] = {
    {
        .name = "nothing free anywhere: nothing to do",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 100 * MiB, 99 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "a follower past the threshold: defragment it",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 400 * MiB, 100 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_DEFRAG,
        .id = 2,
        .why = "b has 300.0 MiB of its 400.0 MiB db free",
    },
    {
        .name = "free bytes past the threshold but under a quarter of the file: no",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 1000 * MiB, 900 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "a quarter free but under the threshold bytes: no",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 80 * MiB, 20 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "exactly at the threshold and exactly a quarter: defragment",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 256 * MiB, 192 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_DEFRAG,
        .id = 2,
    },
    {
        .name = "threshold 0: no defrag without an alarm",
        .self_id = 1,
        .threshold = -1,
        .members = {M(1, "a", 100 * MiB, 1 * MiB), M(2, "b", 400 * MiB, 1 * MiB),
                    M(3, "c", 100 * MiB, 1 * MiB)},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "the leader and a follower need it: the follower first",
        .self_id = 1,
        .members = {M(1, "a", 400 * MiB, 10 * MiB), M(2, "b", 100 * MiB, 99 * MiB),
                    M(3, "c", 400 * MiB, 10 * MiB)},
        .type = MACT_DEFRAG,
        .id = 3,
    },
    {
        .name = "only the leader needs it: hand leadership to a follower that does not",
        .self_id = 2,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 400 * MiB, 10 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_TRANSFER,
        .id = 1,
        .why = "moving leadership to a before b (the leader",
    },
    {
        .name = "transfer skips a follower that is down",
        .self_id = 2,
        .members = {DOWN(1, "a"), M(2, "b", 400 * MiB, 10 * MiB), M(3, "c", 100 * MiB, 99 * MiB),
                    M(4, "d", 100 * MiB, 99 * MiB), M(5, "e", 100 * MiB, 99 * MiB)},
        .type = MACT_TRANSFER,
        .id = 3,
    },
    {
        .name = "two voters: tolerance 0, never",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 400 * MiB, 10 * MiB)},
        .type = MACT_NONE,
        .why = "failure tolerance is 0 (2 of 2 voters healthy)",
    },
    {
        .name = "one voter: tolerance 0, never",
        .self_id = 1,
        .members = {M(1, "a", 400 * MiB, 10 * MiB)},
        .type = MACT_NONE,
        .why = "failure tolerance is 0 (1 of 1 voters healthy)",
    },
    {
        .name = "three voters, one down: tolerance 0, never",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 400 * MiB, 10 * MiB), DOWN(3, "c")},
        .type = MACT_NONE,
        .why = "failure tolerance is 0 (2 of 3 voters healthy)",
    },
    {
        .name = "a member down is never picked, the healthy ones are",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), DOWN(2, "b"), M(3, "c", 400 * MiB, 10 * MiB),
                    M(4, "d", 100 * MiB, 99 * MiB), M(5, "e", 100 * MiB, 99 * MiB)},
        .type = MACT_DEFRAG,
        .id = 3,
    },
    {
        .name = "a learner does not count as a voter, but is defragmented",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 100 * MiB, 99 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB), LRN(4, "d", 400 * MiB, 10 * MiB)},
        .type = MACT_DEFRAG,
        .id = 4,
    },
    {
        .name = "a learner beside two voters: tolerance 0",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 100 * MiB, 99 * MiB),
                    LRN(3, "c", 400 * MiB, 10 * MiB)},
        .type = MACT_NONE,
        .why = "failure tolerance is 0",
    },
    {
        .name = "empty db sizes (a reply without them): nothing",
        .self_id = 1,
        .members = {M(1, "a", 0, 0), M(2, "b", 0, 0), M(3, "c", 0, 0)},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "in use larger than the file (bad reply): no free space",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 200 * MiB), M(2, "b", 100 * MiB, 400 * MiB), M(3, "c", 1, 1)},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "huge db (1 TiB, half free): defragment",
        .self_id = 1,
        .members = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 1024 * 1024 * MiB, 512 * 1024 * MiB),
                    M(3, "c", 100 * MiB, 99 * MiB)},
        .type = MACT_DEFRAG,
        .id = 2,
        .why = "512.0 GiB of its 1.0 TiB",
    },
    {
        .name = "no members read: nothing",
        .self_id = 1,
        .members = {{0}},
        .type = MACT_NONE,
        .why = "",
    },
    {
        .name = "NOSPACE: compact to the current revision first",
        .self_id = 1,
        .revision = 500,
        .compacted = 0,
        .members = {M(1, "a", 2 * MiB, 2 * MiB), NOSPACE(2, "b", 2 * MiB, 2 * MiB),
                    M(3, "c", 2 * MiB, 2 * MiB)},
        .type = MACT_COMPACT,
        .revision_out = 500,
        .why = "NOSPACE alarm on b: compacting to revision 500",
    },
    {
        .name = "NOSPACE, compacted: defragment below the normal threshold, a follower first",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .members = {NOSPACE(1, "a", 2 * MiB, 256 * KiB), NOSPACE(2, "b", 2 * MiB, 256 * KiB),
                    NOSPACE(3, "c", 2 * MiB, 256 * KiB)},
        .type = MACT_DEFRAG,
        .id = 2,
        .why = "under a NOSPACE alarm",
    },
    {
        .name = "NOSPACE, followers done: hand leadership over",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .members = {NOSPACE(1, "a", 2 * MiB, 256 * KiB), NOSPACE(2, "b", 300 * KiB, 256 * KiB),
                    NOSPACE(3, "c", 300 * KiB, 256 * KiB)},
        .type = MACT_TRANSFER,
        .id = 2,
    },
    {
        .name = "NOSPACE, every member defragmented: clear the alarm",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .members = {M(1, "a", 300 * KiB, 256 * KiB), NOSPACE(2, "b", 300 * KiB, 256 * KiB),
                    M(3, "c", 300 * KiB, 256 * KiB)},
        .type = MACT_DISARM,
        .id = 2,
        .why = "clearing the NOSPACE alarm of b",
    },
    {
        .name = "NOSPACE on two members, both defragmented: clear both in one action",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .members = {NOSPACE(1, "a", 300 * KiB, 256 * KiB), NOSPACE(2, "b", 300 * KiB, 256 * KiB),
                    M(3, "c", 300 * KiB, 256 * KiB)},
        .type = MACT_DISARM,
        .id = 1,
        .why = "clearing the NOSPACE alarm of a, b:",
    },
    {
        .name = "NOSPACE on two voters: defrag not allowed, alarm kept",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .members = {NOSPACE(1, "a", 2 * MiB, 256 * KiB), NOSPACE(2, "b", 2 * MiB, 256 * KiB)},
        .type = MACT_NONE,
        .why = "failure tolerance is 0",
    },
    {
        .name = "NOSPACE back right after clearing, nothing to reclaim: wait",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .last_disarm = NOW - 10 * SEC,
        .members = {NOSPACE(1, "a", 2 * MiB, 2 * MiB - 4 * KiB), M(2, "b", 2 * MiB, 2 * MiB - 4 * KiB),
                    M(3, "c", 2 * MiB, 2 * MiB - 4 * KiB)},
        .type = MACT_NONE,
        .why = "does not fit etcd's quota (quota-backend-bytes); delete data or raise the quota; clearing "
               "it again "
               "in 20s",
    },
    {
        .name = "NOSPACE back, something was reclaimed since: clear at once",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .reclaimed = true,
        .last_disarm = NOW - 10 * SEC,
        .members = {NOSPACE(1, "a", 2 * MiB, 2 * MiB - 4 * KiB), M(2, "b", 2 * MiB, 2 * MiB),
                    M(3, "c", 2 * MiB, 2 * MiB)},
        .type = MACT_DISARM,
        .id = 1,
    },
    {
        .name = "NOSPACE back, past the back-off: clear again",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .last_disarm = NOW - 31 * SEC,
        .members = {NOSPACE(1, "a", 2 * MiB, 2 * MiB), M(2, "b", 2 * MiB, 2 * MiB),
                    M(3, "c", 2 * MiB, 2 * MiB)},
        .type = MACT_DISARM,
        .id = 1,
    },
    {
        .name = "NOSPACE, new writes (deletes) since the compaction: compact again",
        .self_id = 1,
        .revision = 510,
        .compacted = 500,
        .members = {NOSPACE(1, "a", 2 * MiB, 2 * MiB), M(2, "b", 2 * MiB, 2 * MiB),
                    M(3, "c", 2 * MiB, 2 * MiB)},
        .type = MACT_COMPACT,
        .revision_out = 510,
    },
    {
        .name = "NOSPACE: 60 KiB free is under the 64 KiB floor",
        .self_id = 1,
        .revision = 500,
        .compacted = 500,
        .members = {M(1, "a", 600 * KiB, 600 * KiB), NOSPACE(2, "b", 600 * KiB, 540 * KiB),
                    M(3, "c", 600 * KiB, 600 * KiB)},
        .type = MACT_DISARM,
        .id = 2,
    },
};

static void run_case(const struct tcase *t, struct maction *a) {
        struct mstate s = {
            .self_id = t->self_id,
            .members = t->members,
            .threshold = t->threshold == 0  ? THRESH
                         : t->threshold < 0 ? 0
                                            : t->threshold,
            .revision = t->revision,
            .compacted = t->compacted,
            .reclaimed = t->reclaimed,
            .now = NOW,
            .last_disarm = t->last_disarm,
            .cooldown = COOLDOWN,
            .disarm_backoff = BACKOFF,
        };
        while (s.n_members < MAXN && t->members[s.n_members].id)
                s.n_members++;
        maintenance_decide(&s, a);
}

START_TEST(test_table) {
        const struct tcase *t = &cases[_i];
        struct maction a;
        run_case(t, &a);
        ck_assert_msg(a.type == t->type, "%s: got %s (%s), want %s", t->name, maction_to_string(a.type),
                      a.why, maction_to_string(t->type));
        if (t->id)
                ck_assert_msg(a.id == t->id, "%s: id %llu, want %llu", t->name, (unsigned long long)a.id,
                              (unsigned long long)t->id);
        if (t->revision_out)
                ck_assert_int_eq(a.revision, t->revision_out);
        if (t->why && !t->why[0])
                ck_assert_msg(!a.why[0], "%s: why should be empty, is '%s'", t->name, a.why);
        else if (t->why)
                ck_assert_msg(strstr(a.why, t->why), "%s: why '%s' lacks '%s'", t->name, a.why, t->why);
}
END_TEST

/* The decision reads its input and never writes it. */
START_TEST(test_pure) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct tcase copy = cases[i];
                struct maction a;
                run_case(&copy, &a);
                ck_assert_msg(memcmp(&copy, &cases[i], sizeof copy) == 0, "%s: input changed",
                              cases[i].name);
        }
}
END_TEST

/* Cool-down: a member defragmented a minute ago is not picked again; after
 * the cool-down it is. */
START_TEST(test_cooldown) {
        struct mmember ms[3] = {M(1, "a", 100 * MiB, 99 * MiB), M(2, "b", 400 * MiB, 10 * MiB),
                                M(3, "c", 100 * MiB, 99 * MiB)};
        struct mstate s = {.self_id = 1,
                           .members = ms,
                           .n_members = 3,
                           .threshold = THRESH,
                           .now = NOW,
                           .cooldown = COOLDOWN,
                           .disarm_backoff = BACKOFF};
        struct maction a;
        ms[1].defragged_at = NOW - 60 * SEC;
        maintenance_decide(&s, &a);
        ck_assert_int_eq(a.type, MACT_NONE);
        ms[1].defragged_at = NOW - COOLDOWN;
        maintenance_decide(&s, &a);
        ck_assert_int_eq(a.type, MACT_DEFRAG);
}
END_TEST

/* A NOSPACE episode on three members, the actions applied as the run layer
 * and etcd would: compact, defragment b and c, hand leadership to b, b (now
 * coordinating, with no memory) defragments a, then clears the alarm. Never
 * two defrags at once (one action per step), never the leader. */
START_TEST(test_sim_nospace) {
        struct mmember ms[3] = {NOSPACE(1, "a", 2 * MiB, 2 * MiB - 100 * KiB),
                                M(2, "b", 2 * MiB, 2 * MiB - 100 * KiB),
                                M(3, "c", 2 * MiB, 2 * MiB - 100 * KiB)};
        struct mstate s = {.self_id = 1,
                           .members = ms,
                           .n_members = 3,
                           .threshold = THRESH,
                           .revision = 900,
                           .now = NOW,
                           .cooldown = COOLDOWN,
                           .disarm_backoff = BACKOFF};
        struct maction a;
        char order[64] = "";
        bool cleared = false;

        for (int step = 0; step < 12 && !cleared; step++) {
                maintenance_decide(&s, &a);
                s.now += SEC;
                switch (a.type) {
                case MACT_COMPACT:
                        s.compacted = a.revision;
                        for (size_t i = 0; i < 3; i++)
                                ms[i].db_in_use = 200 * KiB; /* the compaction freed most of it */
                        strlcat(order, "C", sizeof order);
                        break;
                case MACT_DEFRAG:
                        ck_assert_msg(a.id != s.self_id, "the leader defragmented");
                        for (size_t i = 0; i < 3; i++)
                                if (ms[i].id == a.id) {
                                        ms[i].db_size = 208 * KiB;
                                        ms[i].defragged_at = s.now;
                                        strlcat(order, ms[i].host, sizeof order);
                                }
                        s.reclaimed = true;
                        break;
                case MACT_TRANSFER:
                        s.self_id = a.id;
                        for (size_t i = 0; i < 3; i++)
                                ms[i].defragged_at = 0; /* the new coordinator remembers nothing */
                        strlcat(order, "T", sizeof order);
                        break;
                case MACT_DISARM:
                        for (size_t i = 0; i < 3; i++)
                                ms[i].nospace = false;
                        cleared = true;
                        strlcat(order, "D", sizeof order);
                        break;
                case MACT_NONE:
                        ck_abort_msg("stuck at step %d: %s", step, a.why);
                }
        }
        ck_assert_str_eq(order, "CbcTaD");
        maintenance_decide(&s, &a);
        ck_assert_int_eq(a.type, MACT_NONE);
}
END_TEST

START_TEST(test_parse_size) {
        static const struct {
                const char *in;
                int r;
                int64_t v;
        } t[] = {
            {"0", 0, 0},
            {"100000", 0, 100000},
            {"512K", 0, 512 * KiB},
            {"64M", 0, 64 * MiB},
            {"64MiB", 0, 64 * MiB},
            {"64MB", 0, 64 * MiB},
            {"1g", 0, 1024 * MiB},
            {"2T", 0, 2LL * 1024 * 1024 * MiB},
            {"5B", 0, 5},
            {"", -EINVAL, 0},
            {"-1", -EINVAL, 0},
            {"M", -EINVAL, 0},
            {"12X", -EINVAL, 0},
            {"1.5M", -EINVAL, 0},
            {"64M ", -EINVAL, 0},
            {"99999999999999999999", -EINVAL, 0},
            {"9000000T", -EINVAL, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                int64_t v = -7;
                int r = maint_parse_size(t[i].in, &v);
                ck_assert_msg(r == t[i].r, "'%s': %d, want %d", t[i].in, r, t[i].r);
                if (r == 0)
                        ck_assert_msg(v == t[i].v, "'%s': %lld, want %lld", t[i].in, (long long)v,
                                      (long long)t[i].v);
                else
                        ck_assert_msg(v == -7, "'%s': output written on failure", t[i].in);
        }
        ck_assert_int_eq(maint_parse_size(NULL, &(int64_t){0}), -EINVAL);
}
END_TEST

START_TEST(test_format_size) {
        char b[32];
        maint_format_size(0, b, sizeof b);
        ck_assert_str_eq(b, "0 B");
        maint_format_size(1023, b, sizeof b);
        ck_assert_str_eq(b, "1023 B");
        maint_format_size(1536, b, sizeof b);
        ck_assert_str_eq(b, "1.5 KiB");
        maint_format_size(64 * MiB, b, sizeof b);
        ck_assert_str_eq(b, "64.0 MiB");
        ck_assert_str_eq(maction_to_string(MACT_DEFRAG), "defragment");
        ck_assert_str_eq(maction_to_string(MACT_DISARM), "clear-alarm");
}
END_TEST

static Suite *maintenance_suite(void) {
        Suite *s = suite_create("maintenance");
        TCase *tc = tcase_create("decide");
        tcase_add_loop_test(tc, test_table, 0, (int)ELEMENTSOF(cases));
        tcase_add_test(tc, test_pure);
        tcase_add_test(tc, test_cooldown);
        tcase_add_test(tc, test_sim_nospace);
        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_format_size);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(maintenance_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failures = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
