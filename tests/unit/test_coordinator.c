/* test_coordinator.c: unit tests for supervisor/coordinator.c, the pure
 * membership decision. A table of cluster states, each with the one action
 * the coordinator must take; then two short simulations that apply the
 * actions until the cluster settles (grow from one member, shrink to ideal). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "supervisor.h"

#define SEC USEC_PER_SEC
#define NOW (1000 * SEC)
#define NOMINATE_TIMEOUT (30 * SEC)
#define DEAD_GRACE (60 * SEC)
#define MAXN 8

/* A started member carries its host name; an unstarted learner has name "". */
#define VOTER(id_, host_)                                                                                   \
        { .id = (id_), .name = (host_), .host = (host_), .learner = false, .started = true }
#define LEARNER(id_, host_, started_)                                                                       \
        {                                                                                                   \
                .id = (id_), .name = (started_) ? (host_) : "", .host = (host_), .learner = true,           \
                .started = (started_)                                                                       \
        }

/* A host as round.c builds it: volunteer, nominated, endpoints keys and timers. */
#define HOST(name_, vol_, nom_, ep_, nomsince_, gone_, cool_)                                               \
        {                                                                                                   \
                .name = (name_), .volunteer = (vol_), .nominated = (nom_), .endpoints = (ep_),              \
                .nominated_since = (nomsince_), .gone_since = (gone_), .cooldown_until = (cool_)            \
        }
/* a healthy voting member's host: volunteering, nominated, endpoints published */
#define MEMBER_HOST(name_) HOST(name_, true, true, true, 0, 0, 0)
/* a free volunteer */
#define FREE_HOST(name_) HOST(name_, true, false, false, 0, 0, 0)

struct tcase {
        const char *name;
        /* input (members end at id 0, hosts at name NULL) */
        const char *self;
        uint64_t self_id;
        long long ideal;
        uint64_t now, nominate_timeout, dead_grace;
        struct cmember members[MAXN];
        struct chost hosts[MAXN];
        /* expected */
        enum caction_type type;
        const char *host; /* NULL: not checked unless check_host */
        bool check_host;
        uint64_t id;
        bool cooldown;
        const char *why; /* substring of why; "" means why must be empty */
};

static const struct tcase cases[] = {
    {
        .name = "started learner whose host died, past the grace: remove and cool down",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), LEARNER(3, "h3", true)},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"),
                  HOST("h3", false, true, false, 0, NOW - 61 * SEC, 0)},
        .type = ACT_REMOVE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .cooldown = true,
        .why = "removing learner h3: its host is gone",
    },
    {
        .name = "started learner whose host died, within the grace: wait, do not promote",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), LEARNER(3, "h3", true)},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"),
                  HOST("h3", false, true, false, 0, NOW - 10 * SEC, 0)},
        .type = ACT_NONE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "waiting for the grace period",
    },
    {
        .name = "ideal lowered while a nominee has no member yet: un-nominate it, do not add it",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3"),
                  HOST("h4", true, true, false, NOW - SEC, 0, 0)},
        .type = ACT_UNNOMINATE,
        .host = "h4",
        .check_host = true,
        .id = 0,
        .why = "before it joins: 4 wanted > ideal 3",
    },
    {
        .name = "bootstrap: nominate the first volunteer by name",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), FREE_HOST("h2"), FREE_HOST("h3"), FREE_HOST("h4")},
        .type = ACT_NOMINATE,
        .host = "h2",
        .check_host = true,
        .id = 0,
        .why = "nominating h2: 1 voters and nominees < ideal 3",
    },
    {
        .name = "nominated host without a member: add it as learner",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, NOW - 1 * SEC, 0, 0), FREE_HOST("h3")},
        .type = ACT_ADD_LEARNER,
        .host = "h2",
        .check_host = true,
        .id = 0,
        .why = "adding h2 as learner",
    },
    {
        .name = "nominated host that stopped volunteering: un-nominate",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", false, true, false, NOW - 5 * SEC, NOW - 5 * SEC, 0),
                  FREE_HOST("h3")},
        .type = ACT_UNNOMINATE,
        .host = "h2",
        .check_host = true,
        .id = 0,
        .why = "un-nominating h2: nominated but not volunteering",
    },
    {
        .name = "learner whose etcd started: promote",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", true)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, true, 0, 0, 0), FREE_HOST("h3")},
        .type = ACT_PROMOTE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .why = "promoting learner h2",
    },
    {
        .name = "learner started but never caught up, past nominate_timeout: remove and cool down",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", true)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, NOW - 31 * SEC, 0, 0), FREE_HOST("h3")},
        .type = ACT_REMOVE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .cooldown = true,
        .why = "not promoted within 30s (it never caught up)",
    },
    {
        .name = "learner started while a voter is down: promoted only if quorum holds after",
        .self = "h1",
        .self_id = 1,
        .ideal = 4,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3"), LEARNER(4, "h4", true)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, 0, 0, 0),
                  HOST("h3", true, true, false, 0, 0, 0), HOST("h4", true, true, false, 0, 0, 0)},
        .type = ACT_NONE,
        .host = "h4",
        .check_host = true,
        .id = 4,
        .why = "not promoting learner h4 yet: 1 of 3 voters are healthy; not: h2 (no endpoints key), h3 (no "
               "endpoints key)",
    },
    {
        .name = "nominee while a voter is unhealthy: no learner added",
        .self = "h1",
        .self_id = 1,
        .ideal = 4,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", true, true, false, 0, 0, 0),
                  HOST("h4", true, true, false, 0, 0, 0)},
        .type = ACT_NONE,
        .host = "h4",
        .check_host = true,
        .why = "not adding h4 as learner yet: 2 of 3 voters are healthy; not: h3 (no endpoints key)",
    },
    {
        .name = "two volunteers with the same URLs: the later one is never nominated",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), {.name = "h2", .volunteer = true, .conflict = "h3"}, FREE_HOST("h3")},
        .type = ACT_NOMINATE,
        .host = "h3",
        .check_host = true,
        .why = "nominating h3",
    },
    {
        .name = "learner pending within the timeout: wait",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", false)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, NOW - 29 * SEC, 0, 0), FREE_HOST("h3")},
        .type = ACT_NONE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .cooldown = false,
        .why = "waiting for learner h2",
    },
    {
        .name = "learner pending exactly nominate_timeout: remove and cool down",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", false)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, NOW - 30 * SEC, 0, 0), FREE_HOST("h3")},
        .type = ACT_REMOVE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .cooldown = true,
        .why = "not promoted within 30s (its etcd did not start); cooling down",
    },
    {
        .name = "learner pending past nominate_timeout: remove and cool down",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", false)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, NOW - 300 * SEC, 0, 0), FREE_HOST("h3")},
        .type = ACT_REMOVE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .cooldown = true,
        .why = "cooling down",
    },
    {
        .name = "learner no longer nominated: remove (no cool-down)",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", false)},
        .hosts = {MEMBER_HOST("h1"), FREE_HOST("h2"), FREE_HOST("h3")},
        .type = ACT_REMOVE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .cooldown = false,
        .why = "removing learner h2: not nominated",
    },
    {
        .name = "learner of no known host: remove",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), {.id = 7, .name = "", .host = NULL, .learner = true, .started = false}},
        .hosts = {MEMBER_HOST("h1"), FREE_HOST("h2")},
        .type = ACT_REMOVE,
        .host = NULL,
        .check_host = true,
        .id = 7,
        .cooldown = false,
        .why = "removing learner (unnamed)",
    },
    {
        .name = "host in cool-down is skipped: next volunteer nominated",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, false, false, 0, 0, NOW + 10 * SEC), FREE_HOST("h3")},
        .type = ACT_NOMINATE,
        .host = "h3",
        .check_host = true,
        .id = 0,
        .why = "nominating h3",
    },
    {
        .name = "cool-down ending now: host nominated again",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, false, false, 0, 0, NOW), FREE_HOST("h3")},
        .type = ACT_NOMINATE,
        .host = "h2",
        .check_host = true,
        .id = 0,
        .why = "nominating h2",
    },
    {
        .name = "every volunteer cooling down: nothing to do",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, false, false, 0, 0, NOW + 1)},
        .type = ACT_NONE,
        .host = NULL,
        .check_host = true,
        .id = 0,
        .why = "",
    },
    {
        .name = "grow: 3 voters, ideal 5, nominate the first free volunteer by name",
        .self = "h2",
        .self_id = 2,
        .ideal = 5,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {FREE_HOST("a9"), MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3"), FREE_HOST("h4")},
        .type = ACT_NOMINATE,
        .host = "a9",
        .check_host = true,
        .id = 0,
        .why = "nominating a9: 3 voters and nominees < ideal 5",
    },
    {
        .name = "shrink: 5 voters, ideal 3, remove the last by name while it still serves",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3"), VOTER(4, "h4"), VOTER(5, "h5")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3"), MEMBER_HOST("h4"),
                  MEMBER_HOST("h5")},
        .type = ACT_REMOVE,
        .host = "h5",
        .check_host = true,
        .id = 5,
        .why = "removing member h5: 5 voters > ideal 3",
    },
    {
        .name = "shrink: never the coordinator, even when it sorts last",
        .self = "h5",
        .self_id = 5,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3"), VOTER(4, "h4"), VOTER(5, "h5")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3"), MEMBER_HOST("h4"),
                  MEMBER_HOST("h5")},
        .type = ACT_REMOVE,
        .host = "h4",
        .check_host = true,
        .id = 4,
        .why = "removing member h4: 5 voters > ideal 3",
    },
    {
        .name = "voter whose nomination key is gone, one voter too many: removed by size, not by key",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3"), VOTER(4, "h4")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3"),
                  HOST("h4", true, false, true, 0, 0, 0)},
        .type = ACT_REMOVE,
        .host = "h4",
        .check_host = true,
        .id = 4,
        .why = "removing member h4: 4 voters > ideal 3",
    },
    {
        .name = "quitter (--no-server restart), still nominated: removed while it serves",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", false, true, true, 0, 0, 0),
                  FREE_HOST("h4")},
        .type = ACT_REMOVE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "removing member h3: it stopped volunteering",
    },
    {
        .name = "quitter already un-nominated: remove",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", false, false, true, 0, 0, 0),
                  FREE_HOST("h4")},
        .type = ACT_REMOVE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "removing member h3: it stopped volunteering",
    },
    {
        .name = "coordinator itself quitting: transfer leadership to another healthy voter",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        /* h2 is not healthy (no endpoints): leadership goes to h3 */
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3"), VOTER(4, "h4")},
        .hosts = {HOST("h1", false, true, true, 0, 0, 0), HOST("h2", true, true, false, 0, 0, 0),
                  MEMBER_HOST("h3"), MEMBER_HOST("h4")},
        .type = ACT_TRANSFER,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "moving leadership to h3",
    },
    {
        .name = "coordinator whose key was deleted: the key is repaired, nothing removed",
        .self = "h2",
        .self_id = 2,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, false, true, 0, 0, 0), MEMBER_HOST("h3")},
        .type = ACT_RENOMINATE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .why = "repairing the nomination key of h2",
    },
    {
        .name = "lone coordinator quitting: cannot remove itself",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {HOST("h1", false, true, true, 0, 0, 0)},
        .type = ACT_NONE,
        .host = "h1",
        .check_host = true,
        .id = 1,
        .why = "quorum",
    },
    {
        .name = "dead member within the grace period: not removed",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", false, true, false, 0, NOW - 59 * SEC, 0),
                  FREE_HOST("h4")},
        .type = ACT_NONE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "member h3 is gone: 1s of grace left",
    },
    {
        .name = "dead member past the grace period: removed",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", false, true, false, 0, NOW - 60 * SEC, 0),
                  FREE_HOST("h4")},
        .type = ACT_REMOVE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "host gone for 60s (grace 60s)",
    },
    {
        .name = "dead member removed before a volunteer is added",
        .self = "h1",
        .self_id = 1,
        .ideal = 5,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {FREE_HOST("a0"), MEMBER_HOST("h1"), MEMBER_HOST("h2"),
                  HOST("h3", false, true, false, 0, NOW - 120 * SEC, 0), FREE_HOST("h4")},
        .type = ACT_REMOVE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "removing member h3: host gone",
    },
    {
        .name = "dead member within grace does not stop growing",
        .self = "h1",
        .self_id = 1,
        .ideal = 5,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", false, true, false, 0, NOW - 10 * SEC, 0),
                  FREE_HOST("h4")},
        .type = ACT_NOMINATE,
        .host = "h4",
        .check_host = true,
        .id = 0,
        .why = "nominating h4",
    },
    {
        .name = "ideal above the volunteers: nominate the last free one",
        .self = "h1",
        .self_id = 1,
        .ideal = 5,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), FREE_HOST("h3")},
        .type = ACT_NOMINATE,
        .host = "h3",
        .check_host = true,
        .id = 0,
        .why = "nominating h3: 2 voters and nominees < ideal 5",
    },
    {
        .name = "ideal above the volunteers, all serving: nothing to do",
        .self = "h1",
        .self_id = 1,
        .ideal = 5,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3")},
        .type = ACT_NONE,
        .host = NULL,
        .check_host = true,
        .id = 0,
        .why = "",
    },
    {
        .name = "ideal 0 (invalid): no growing",
        .self = "h1",
        .self_id = 1,
        .ideal = 0,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1")},
        .hosts = {MEMBER_HOST("h1"), FREE_HOST("h2"), FREE_HOST("h3")},
        .type = ACT_NONE,
        .host = NULL,
        .check_host = true,
        .id = 0,
        .why = "",
    },
    {
        .name = "ideal -1 (invalid): no shrinking",
        .self = "h1",
        .self_id = 1,
        .ideal = -1,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3")},
        .type = ACT_NONE,
        .host = NULL,
        .check_host = true,
        .id = 0,
        .why = "",
    },
    {
        .name = "a healthy voter without its key (deleted by hand): repaired, never removed",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        /* h3 volunteers but its etcd is not healthy (no endpoints): 2 of 3 healthy */
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, false, true, 0, 0, 0),
                  HOST("h3", true, true, false, 0, 0, 0)},
        .type = ACT_RENOMINATE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .why = "repairing the nomination key of h2: it is a voting member",
    },
    {
        .name = "shrinking with one unhealthy voter: the unhealthy one goes, quorum kept",
        .self = "h1",
        .self_id = 1,
        .ideal = 2,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, 0, 0, 0), MEMBER_HOST("h3")},
        .type = ACT_REMOVE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .why = "removing member h2: 3 voters > ideal 2",
    },
    {
        .name = "shrinking by an unhealthy voter keeps quorum",
        .self = "h1",
        .self_id = 1,
        .ideal = 2,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), HOST("h3", true, true, false, 0, 0, 0)},
        .type = ACT_REMOVE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "removing member h3: 3 voters > ideal 2",
    },
    {
        .name = "removing a dead voter when only the coordinator is healthy would break quorum",
        .self = "h1",
        .self_id = 1,
        .ideal = 3,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3")},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", false, true, false, 0, NOW - 100 * SEC, 0),
                  HOST("h3", false, true, false, 0, NOW - 100 * SEC, 0)},
        .type = ACT_NONE,
        .host = "h3",
        .check_host = true,
        .id = 3,
        .why = "quorum",
    },
    {
        .name = "one learner at a time: a pending learner blocks other nominations",
        .self = "h1",
        .self_id = 1,
        .ideal = 5,
        .now = NOW,
        .nominate_timeout = NOMINATE_TIMEOUT,
        .dead_grace = DEAD_GRACE,
        .members = {VOTER(1, "h1"), LEARNER(2, "h2", false)},
        .hosts = {MEMBER_HOST("h1"), HOST("h2", true, true, false, NOW - 1 * SEC, 0, 0),
                  HOST("h3", true, true, false, NOW - 1 * SEC, 0, 0), FREE_HOST("h4")},
        .type = ACT_NONE,
        .host = "h2",
        .check_host = true,
        .id = 2,
        .why = "waiting for learner h2 to start",
    },
};

static size_t count_members(const struct cmember *m) {
        size_t n = 0;
        while (n < MAXN && m[n].id != 0)
                n++;
        return n;
}

static size_t count_hosts(const struct chost *h) {
        size_t n = 0;
        while (n < MAXN && h[n].name)
                n++;
        return n;
}

START_TEST(test_table) {
        const struct tcase *c = &cases[_i];
        struct cstate s = {
            .self = c->self,
            .self_id = c->self_id,
            .ideal = c->ideal,
            .members = (struct cmember *)c->members,
            .n_members = count_members(c->members),
            .hosts = (struct chost *)c->hosts,
            .n_hosts = count_hosts(c->hosts),
            .now = c->now,
            .nominate_timeout = c->nominate_timeout,
            .dead_grace = c->dead_grace,
        };
        struct caction a;

        /* the table keeps hosts sorted by name, as round.c does */
        for (size_t i = 1; i < s.n_hosts; i++)
                ck_assert_msg(strcmp(s.hosts[i - 1].name, s.hosts[i].name) < 0,
                              "case '%s': hosts not sorted", c->name);

        memset(&a, 0x5a, sizeof a); /* every field must be written */
        coordinator_decide(&s, &a);

        ck_assert_msg(a.type == c->type, "case '%s': got %s, want %s (why: %s)", c->name,
                      caction_to_string(a.type), caction_to_string(c->type), a.why);
        if (c->check_host) {
                if (c->host)
                        ck_assert_msg(a.host && streq(a.host, c->host), "case '%s': host %s, want %s",
                                      c->name, a.host ? a.host : "(null)", c->host);
                else
                        ck_assert_msg(!a.host, "case '%s': host %s, want none", c->name, a.host);
        }
        ck_assert_msg(a.id == c->id, "case '%s': id %llu, want %llu", c->name, (unsigned long long)a.id,
                      (unsigned long long)c->id);
        ck_assert_msg(a.cooldown == c->cooldown, "case '%s': cooldown %d, want %d", c->name, a.cooldown,
                      c->cooldown);
        ck_assert_msg(memchr(a.why, 0, sizeof a.why), "case '%s': why not terminated", c->name);
        if (c->why[0])
                ck_assert_msg(strstr(a.why, c->why), "case '%s': why '%s' lacks '%s'", c->name, a.why,
                              c->why);
        else
                ck_assert_msg(a.why[0] == 0, "case '%s': why '%s', want empty", c->name, a.why);
}
END_TEST

/* The input is read only: deciding twice gives the same answer. */
START_TEST(test_pure) {
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                const struct tcase *c = &cases[k];
                struct cmember members[MAXN];
                struct chost hosts[MAXN];
                memcpy(members, c->members, sizeof members);
                memcpy(hosts, c->hosts, sizeof hosts);
                struct cstate s = {
                    .self = c->self,
                    .self_id = c->self_id,
                    .ideal = c->ideal,
                    .members = members,
                    .n_members = count_members(members),
                    .hosts = hosts,
                    .n_hosts = count_hosts(hosts),
                    .now = c->now,
                    .nominate_timeout = c->nominate_timeout,
                    .dead_grace = c->dead_grace,
                };
                struct caction a1, a2;
                coordinator_decide(&s, &a1);
                coordinator_decide(&s, &a2);
                ck_assert_msg(memcmp(members, c->members, sizeof members) == 0, "case '%s': members changed",
                              c->name);
                ck_assert_msg(memcmp(hosts, c->hosts, sizeof hosts) == 0, "case '%s': hosts changed",
                              c->name);
                ck_assert_int_eq(a1.type, a2.type);
                ck_assert_ptr_eq(a1.host, a2.host);
                ck_assert_str_eq(a1.why, a2.why);
        }
}
END_TEST

START_TEST(test_healthy_voters) {
        struct cmember members[] = {
            VOTER(1, "h1"),
            VOTER(2, "h2"),         /* no endpoints */
            LEARNER(3, "h3", true), /* learners do not vote */
            {.id = 4, .name = "h4", .host = "h4", .learner = false, .started = false},
            VOTER(5, "h5"), /* host unknown */
        };
        struct chost hosts[] = {
            MEMBER_HOST("h1"),
            HOST("h2", true, true, false, 0, 0, 0),
            MEMBER_HOST("h3"),
            MEMBER_HOST("h4"),
        };
        struct cstate s = {
            .self = "h1",
            .self_id = 1,
            .ideal = 3,
            .members = members,
            .n_members = ELEMENTSOF(members),
            .hosts = hosts,
            .n_hosts = ELEMENTSOF(hosts),
            .now = NOW,
            .nominate_timeout = NOMINATE_TIMEOUT,
            .dead_grace = DEAD_GRACE,
        };
        ck_assert_uint_eq(cstate_healthy_voters(&s), 1);
}
END_TEST

START_TEST(test_action_names) {
        ck_assert_str_eq(caction_to_string(ACT_NONE), "none");
        ck_assert_str_eq(caction_to_string(ACT_NOMINATE), "nominate");
        ck_assert_str_eq(caction_to_string(ACT_ADD_LEARNER), "add-learner");
        ck_assert_str_eq(caction_to_string(ACT_PROMOTE), "promote");
        ck_assert_str_eq(caction_to_string(ACT_UNNOMINATE), "unnominate");
        ck_assert_str_eq(caction_to_string(ACT_REMOVE), "remove");
        ck_assert_str_eq(caction_to_string(ACT_TRANSFER), "transfer-leadership");
}
END_TEST

/* ---------- simulation: apply each action as round.c would, until NONE ---------- */

struct sim {
        struct cmember members[MAXN];
        size_t n_members;
        struct chost hosts[MAXN];
        size_t n_hosts;
        uint64_t next_id;
};

static struct chost *sim_host(struct sim *m, const char *name) {
        for (size_t i = 0; i < m->n_hosts; i++)
                if (streq(m->hosts[i].name, name))
                        return &m->hosts[i];
        ck_abort_msg("no host %s", name);
        return NULL;
}

static struct cmember *sim_member(struct sim *m, uint64_t id) {
        for (size_t i = 0; i < m->n_members; i++)
                if (m->members[i].id == id)
                        return &m->members[i];
        ck_abort_msg("no member %llu", (unsigned long long)id);
        return NULL;
}

/* One round; returns the action's text "type host" and changes the cluster. */
static void sim_step(struct sim *m, const char *self, uint64_t self_id, long long ideal, char *out,
                     size_t outlen) {
        struct cstate s = {
            .self = self,
            .self_id = self_id,
            .ideal = ideal,
            .members = m->members,
            .n_members = m->n_members,
            .hosts = m->hosts,
            .n_hosts = m->n_hosts,
            .now = NOW,
            .nominate_timeout = NOMINATE_TIMEOUT,
            .dead_grace = DEAD_GRACE,
        };
        struct caction a;
        coordinator_decide(&s, &a);
        snprintf(out, outlen, "%s %s", caction_to_string(a.type), a.host ? a.host : "-");
        switch (a.type) {
        case ACT_NOMINATE:
                sim_host(m, a.host)->nominated = true;
                break;
        case ACT_ADD_LEARNER:
                ck_assert_uint_lt(m->n_members, MAXN);
                m->members[m->n_members++] = (struct cmember){.id = m->next_id++,
                                                              .name = "",
                                                              .host = (char *)a.host,
                                                              .learner = true,
                                                              .started = false};
                break;
        case ACT_PROMOTE:
                sim_member(m, a.id)->learner = false;
                break;
        case ACT_UNNOMINATE:
                sim_host(m, a.host)->nominated = false;
                break;
        case ACT_REMOVE: {
                struct cmember *cm = sim_member(m, a.id);
                if (a.host)
                        sim_host(m, a.host)->nominated = false;
                *cm = m->members[--m->n_members];
                break;
        }
        case ACT_NONE:
                /* a waiting learner's etcd comes up */
                for (size_t i = 0; i < m->n_members; i++)
                        if (m->members[i].learner && !m->members[i].started) {
                                m->members[i].started = true;
                                m->members[i].name = m->members[i].host;
                                sim_host(m, m->members[i].host)->endpoints = true;
                                snprintf(out, outlen, "started %s", m->members[i].host);
                        }
                break;
        case ACT_RENOMINATE:
                sim_host(m, a.host)->nominated = true;
                break;
        case ACT_TRANSFER:
                ck_abort_msg("unexpected transfer to %s", a.host);
        }
}

static void sim_run(struct sim *m, const char *self, uint64_t self_id, long long ideal,
                    const char *const *want) {
        char got[64];
        size_t i;
        for (i = 0; want[i]; i++) {
                sim_step(m, self, self_id, ideal, got, sizeof got);
                ck_assert_msg(streq(got, want[i]), "step %zu: got '%s', want '%s'", i, got, want[i]);
        }
        /* settled: nothing more to do, twice */
        sim_step(m, self, self_id, ideal, got, sizeof got);
        ck_assert_str_eq(got, "none -");
        sim_step(m, self, self_id, ideal, got, sizeof got);
        ck_assert_str_eq(got, "none -");
}

START_TEST(test_sim_grow) {
        struct sim m = {
            .members = {VOTER(1, "h1")},
            .n_members = 1,
            .hosts = {MEMBER_HOST("h1"), FREE_HOST("h2"), FREE_HOST("h3"), FREE_HOST("h4")},
            .n_hosts = 4,
            .next_id = 10,
        };
        static const char *const want[] = {
            "nominate h2",    "add-learner h2", "started h2", "promote h2", "nominate h3",
            "add-learner h3", "started h3",     "promote h3", NULL,
        };
        sim_run(&m, "h1", 1, 3, want);
        ck_assert_uint_eq(m.n_members, 3);
        ck_assert(!sim_host(&m, "h4")->nominated);
}
END_TEST

START_TEST(test_sim_shrink) {
        struct sim m = {
            .members = {VOTER(1, "h1"), VOTER(2, "h2"), VOTER(3, "h3"), VOTER(4, "h4"), VOTER(5, "h5")},
            .n_members = 5,
            .hosts = {MEMBER_HOST("h1"), MEMBER_HOST("h2"), MEMBER_HOST("h3"), MEMBER_HOST("h4"),
                      MEMBER_HOST("h5")},
            .n_hosts = 5,
            .next_id = 10,
        };
        static const char *const want[] = {
            "remove h4",
            "remove h3",
            NULL,
        };
        /* the coordinator h5 sorts last and stays */
        sim_run(&m, "h5", 5, 3, want);
        ck_assert_uint_eq(m.n_members, 3);
}
END_TEST

static Suite *coordinator_suite(void) {
        Suite *s = suite_create("coordinator");
        TCase *tc = tcase_create("decide");
        tcase_add_loop_test(tc, test_table, 0, (int)ELEMENTSOF(cases));
        tcase_add_test(tc, test_pure);
        tcase_add_test(tc, test_healthy_voters);
        tcase_add_test(tc, test_action_names);
        suite_add_tcase(s, tc);
        tc = tcase_create("simulate");
        tcase_add_test(tc, test_sim_grow);
        tcase_add_test(tc, test_sim_shrink);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(coordinator_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failures = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failures ? 1 : 0;
}
