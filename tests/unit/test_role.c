/* test_role.c: unit tests for supervisor/role.c, the node's role as a pure
 * transition function: a table of (role, event, facts) -> (role, action). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "supervisor.h"

struct rcase {
        const char *name;
        enum node_role role;
        enum role_event ev;
        struct role_facts f;
        enum node_role want_role;
        enum role_action want;
};

#define SAME .same_cluster = true

static const struct rcase cases[] = {
    {"volunteer nominated and added: start etcd",
     ROLE_VOLUNTEER,
     REV_VIEW,
     {SAME, .nominated = true, .member = true},
     ROLE_NOMINEE,
     RA_START_ETCD},
    {"volunteer nominated, member not added yet: wait",
     ROLE_VOLUNTEER,
     REV_VIEW,
     {SAME, .nominated = true},
     ROLE_VOLUNTEER,
     RA_NONE},
    {"volunteer with a member but no nomination (hand-made member): wait",
     ROLE_VOLUNTEER,
     REV_VIEW,
     {SAME, .member = true},
     ROLE_VOLUNTEER,
     RA_NONE},
    {"nominee promoted: member", ROLE_NOMINEE, REV_PROMOTED, {0}, ROLE_MEMBER, RA_NONE},
    {"member whose key was deleted: keeps serving (leaving), nothing stopped",
     ROLE_MEMBER,
     REV_VIEW,
     {SAME, .member = true, .own_view = true, .etcd_running = true},
     ROLE_LEAVING,
     RA_NONE},
    {"leaving member whose key is back: member again",
     ROLE_LEAVING,
     REV_VIEW,
     {SAME, .nominated = true, .member = true, .own_view = true, .etcd_running = true},
     ROLE_MEMBER,
     RA_NONE},
    {"member gone from a list read elsewhere: unconfirmed, keep serving",
     ROLE_MEMBER,
     REV_VIEW,
     {SAME, .nominated = true, .etcd_running = true},
     ROLE_MEMBER,
     RA_NONE},
    {"leaving member gone from a list read elsewhere: unconfirmed, keep serving",
     ROLE_LEAVING,
     REV_VIEW,
     {SAME, .etcd_running = true},
     ROLE_LEAVING,
     RA_NONE},
    {"member gone from its own etcd's list: confirmed, stop etcd",
     ROLE_MEMBER,
     REV_VIEW,
     {SAME, .own_view = true, .etcd_running = true},
     ROLE_DEPARTED,
     RA_STOP_ETCD},
    {"leaving member removed (own view): stop etcd",
     ROLE_LEAVING,
     REV_VIEW,
     {SAME, .own_view = true},
     ROLE_DEPARTED,
     RA_STOP_ETCD},
    {"etcd says removed: stop", ROLE_MEMBER, REV_REMOVED, {0}, ROLE_DEPARTED, RA_STOP_ETCD},
    {"etcd says removed to a leaving member: stop",
     ROLE_LEAVING,
     REV_REMOVED,
     {0},
     ROLE_DEPARTED,
     RA_STOP_ETCD},
    {"departed, etcd stopped: move data aside, volunteer",
     ROLE_DEPARTED,
     REV_STOPPED,
     {0},
     ROLE_VOLUNTEER,
     RA_CLEAR_DATA},
    {"departed --no-server, etcd stopped: client",
     ROLE_DEPARTED,
     REV_STOPPED,
     {.no_server = true},
     ROLE_CLIENT,
     RA_CLEAR_DATA},
    {"member's etcd crashed: restart, data kept",
     ROLE_MEMBER,
     REV_ETCD_EXIT,
     {0},
     ROLE_MEMBER,
     RA_RESTART_ETCD},
    {"leaving member's etcd crashed: restart (still needed until removed)",
     ROLE_LEAVING,
     REV_ETCD_EXIT,
     {0},
     ROLE_LEAVING,
     RA_RESTART_ETCD},
    {"view from another cluster: refuse, keep everything",
     ROLE_MEMBER,
     REV_VIEW,
     {.etcd_running = true},
     ROLE_MEMBER,
     RA_REFUSE},
    {"view from another cluster to a volunteer: refuse",
     ROLE_VOLUNTEER,
     REV_VIEW,
     {.nominated = true, .member = true},
     ROLE_VOLUNTEER,
     RA_REFUSE},
    {"newer generation (restored): member's old data goes aside",
     ROLE_MEMBER,
     REV_VIEW,
     {.superseded = true, .etcd_running = true},
     ROLE_DEPARTED,
     RA_STOP_ETCD},
    {"--no-server member: serves until removed",
     ROLE_MEMBER,
     REV_VIEW,
     {SAME, .no_server = true, .nominated = true, .member = true, .own_view = true},
     ROLE_LEAVING,
     RA_NONE},
    {"nominee's learner removed, its etcd down: depart",
     ROLE_NOMINEE,
     REV_VIEW,
     {SAME, .nominated = true},
     ROLE_DEPARTED,
     RA_STOP_ETCD},
    {"nominee's learner missing in another's view while running: wait",
     ROLE_NOMINEE,
     REV_VIEW,
     {SAME, .nominated = true, .etcd_running = true},
     ROLE_NOMINEE,
     RA_NONE},
    {"client sees anything: stays a client",
     ROLE_CLIENT,
     REV_VIEW,
     {SAME, .nominated = true, .member = true},
     ROLE_CLIENT,
     RA_NONE},
    {"volunteer's etcd cannot exit: nothing", ROLE_VOLUNTEER, REV_ETCD_EXIT, {0}, ROLE_VOLUNTEER, RA_NONE},
    {"stopped while a member (shutdown): nothing", ROLE_MEMBER, REV_STOPPED, {0}, ROLE_MEMBER, RA_NONE},
};

START_TEST(test_table) {
        const struct rcase *c = &cases[_i];
        struct role_step st;
        struct role_facts f = c->f;
        memset(&st, 0x5a, sizeof st);
        role_next(c->role, c->ev, &f, &st);
        ck_assert_msg(st.role == c->want_role && st.action == c->want, "case '%s': got %s/%s, want %s/%s",
                      c->name, node_role_to_string(st.role), role_action_to_string(st.action),
                      node_role_to_string(c->want_role), role_action_to_string(c->want));
        ck_assert_msg(memcmp(&f, &c->f, sizeof f) == 0, "case '%s': facts changed", c->name);
}
END_TEST

/* Safety over every input: data is only ever cleared from DEPARTED after a
 * stop, and a view that is not from our cluster never starts or stops etcd. */
START_TEST(test_exhaustive) {
        for (int r = ROLE_CLIENT; r <= ROLE_DEPARTED; r++)
                for (int e = REV_VIEW; e <= REV_STOPPED; e++)
                        for (unsigned bits = 0; bits < 256; bits++) {
                                struct role_facts f = {
                                    .no_server = bits & 1,
                                    .same_cluster = bits & 2,
                                    .superseded = bits & 4,
                                    .nominated = bits & 8,
                                    .member = bits & 16,
                                    .own_view = bits & 32,
                                    .learner = bits & 64,
                                    .etcd_running = bits & 128,
                                };
                                struct role_step st;
                                role_next(r, e, &f, &st);
                                if (st.action == RA_CLEAR_DATA)
                                        ck_assert_msg(r == ROLE_DEPARTED, "clear from %s",
                                                      node_role_to_string(r));
                                if (st.action == RA_STOP_ETCD && e == REV_VIEW && f.member)
                                        ck_assert_msg(f.superseded && !f.same_cluster,
                                                      "%s stops etcd while still a member",
                                                      node_role_to_string(r));
                                if (e == REV_VIEW && !f.same_cluster && !f.superseded)
                                        ck_assert(st.action == RA_REFUSE || st.action == RA_NONE);
                                if (st.action == RA_STOP_ETCD && e == REV_VIEW && !f.superseded &&
                                    f.etcd_running)
                                        ck_assert_msg(f.own_view, "stop on an unconfirmed view");
                        }
}
END_TEST

START_TEST(test_start_mode) {
        /* data, seeds, record, cache, no-server -> mode */
        static const struct {
                bool data, seeds, known, cached, no_server;
                enum start_mode want;
                const char *name;
        } t[] = {
            {true, false, true, true, false, START_RESTART, "data: restart, never bootstrap over it"},
            {true, true, false, false, true, START_RESTART, "--no-server with data: restart to be removed"},
            {false, false, false, false, false, START_BOOTSTRAP, "brand new seed: bootstrap"},
            {false, false, true, true, false, START_JOIN,
             "replaced seed, same command line: rejoin via cache"},
            {false, false, true, false, false, START_REFUSE,
             "replaced seed, no cache: refuse, no second cluster"},
            {false, true, false, false, false, START_JOIN, "joiner: join"},
            {false, true, true, false, false, START_JOIN, "known joiner with seeds: join"},
            {false, false, false, false, true, START_REFUSE,
             "--no-server without seeds: nothing to be a client of"},
            {false, true, false, false, true, START_JOIN, "client: join"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                enum start_mode m =
                    node_start_mode(t[i].data, t[i].seeds, t[i].known, t[i].cached, t[i].no_server);
                ck_assert_msg(m == t[i].want, "%s: got %s, want %s", t[i].name, start_mode_to_string(m),
                              start_mode_to_string(t[i].want));
        }
        /* exhaustive: a prefix with a record never bootstraps */
        for (unsigned b = 0; b < 32; b++)
                if (b & 4)
                        ck_assert(node_start_mode(b & 1, b & 2, true, b & 8, b & 16) != START_BOOTSTRAP);
}
END_TEST

int main(void) {
        Suite *s = suite_create("role");
        TCase *tc = tcase_create("transitions");
        tcase_add_loop_test(tc, test_table, 0, (int)ELEMENTSOF(cases));
        tcase_add_test(tc, test_exhaustive);
        tcase_add_test(tc, test_start_mode);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
