/* test_svc.c: the svc kind without a bus: the decision (unit properties and
 * the wanted state in, the calls to make out) as a table, and the parsing of
 * a Properties.GetAll reply built in memory. The calls themselves need a
 * running systemd: tests/integration/svc.bats boots one in a container. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "agent.h"
#include "macro.h"

struct dcase {
        const char *active, *unitfile, *load;
        enum svc_state state;
        enum svc_startup startup;
        bool refresh;
        /* expected */
        bool enable, disable, start, stop, restart;
        const char *error; /* substring, or NULL */
};

static const struct dcase cases[] = {
    /* converged: nothing */
    {"active", "enabled", "loaded", SVC_RUNNING, SVC_ENABLED, false, 0, 0, 0, 0, 0, NULL},
    {"inactive", "disabled", "loaded", SVC_STOPPED, SVC_DISABLED, false, 0, 0, 0, 0, 0, NULL},
    {"failed", "disabled", "loaded", SVC_STOPPED, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, NULL},
    {"active", "static", "loaded", SVC_RUNNING, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, NULL},
    {"activating", "enabled", "loaded", SVC_RUNNING, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, NULL},
    {"active", "enabled-runtime", "loaded", SVC_STATE_UNSET, SVC_ENABLED, false, 0, 0, 0, 0, 0, NULL},
    /* nothing managed: nothing, whatever the unit does */
    {"inactive", "disabled", "loaded", SVC_STATE_UNSET, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, NULL},
    /* stopped by hand: start; disabled: enable */
    {"inactive", "enabled", "loaded", SVC_RUNNING, SVC_ENABLED, false, 0, 0, 1, 0, 0, NULL},
    {"failed", "disabled", "loaded", SVC_RUNNING, SVC_ENABLED, false, 1, 0, 1, 0, 0, NULL},
    {"active", "enabled", "loaded", SVC_STOPPED, SVC_DISABLED, false, 0, 1, 0, 1, 0, NULL},
    {"reloading", "linked", "loaded", SVC_STOPPED, SVC_DISABLED, false, 0, 1, 0, 1, 0, NULL},
    /* a static unit is "not enabled" already, and cannot be enabled */
    {"inactive", "static", "loaded", SVC_STATE_UNSET, SVC_DISABLED, false, 0, 0, 0, 0, 0, NULL},
    {"inactive", "static", "loaded", SVC_RUNNING, SVC_ENABLED, false, 0, 0, 0, 0, 0, "no [Install]"},
    /* missing or masked units */
    {"inactive", "", "not-found", SVC_RUNNING, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, "not found"},
    {"inactive", "", "not-found", SVC_STOPPED, SVC_DISABLED, false, 0, 0, 0, 0, 0, NULL},
    {"inactive", "masked", "masked", SVC_RUNNING, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, "masked"},
    {"inactive", "masked", "masked", SVC_STOPPED, SVC_STARTUP_UNSET, false, 0, 0, 0, 0, 0, NULL},
    /* notify: restart a running (or to-be-running) unit, never a stopped one */
    {"active", "enabled", "loaded", SVC_RUNNING, SVC_STARTUP_UNSET, true, 0, 0, 0, 0, 1, NULL},
    {"inactive", "enabled", "loaded", SVC_RUNNING, SVC_STARTUP_UNSET, true, 0, 0, 0, 0, 1, NULL},
    {"active", "enabled", "loaded", SVC_STATE_UNSET, SVC_STARTUP_UNSET, true, 0, 0, 0, 0, 1, NULL},
    {"inactive", "enabled", "loaded", SVC_STATE_UNSET, SVC_STARTUP_UNSET, true, 0, 0, 0, 0, 0, NULL},
    {"inactive", "enabled", "loaded", SVC_STOPPED, SVC_STARTUP_UNSET, true, 0, 0, 0, 0, 0, NULL},
};

START_TEST(test_decide) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct dcase *c = &cases[i];
                struct svc_props p;
                struct res_svc want = {.state = c->state, .startup = c->startup};
                struct svc_plan plan;

                snprintf(p.active, sizeof p.active, "%s", c->active);
                snprintf(p.unitfile, sizeof p.unitfile, "%s", c->unitfile);
                snprintf(p.load, sizeof p.load, "%s", c->load);
                struct svc_props copy = p;
                svc_decide(&p, &want, c->refresh, &plan);
                ck_assert_msg(memcmp(&copy, &p, sizeof p) == 0, "case %zu: input changed", i);
                if (c->error) {
                        ck_assert_msg(plan.error && strstr(plan.error, c->error),
                                      "case %zu: want error '%s', got '%s'", i, c->error,
                                      plan.error ? plan.error : "(none)");
                        continue;
                }
                ck_assert_msg(!plan.error, "case %zu: unexpected error '%s'", i, plan.error);
                ck_assert_msg(
                    plan.enable == c->enable && plan.disable == c->disable && plan.start == c->start &&
                        plan.stop == c->stop && plan.restart == c->restart,
                    "case %zu (%s/%s, want %d/%d refresh %d): got enable %d disable %d start %d stop %d "
                    "restart %d",
                    i, c->active, c->unitfile, c->state, c->startup, c->refresh, plan.enable, plan.disable,
                    plan.start, plan.stop, plan.restart);
                ck_assert(svc_plan_empty(&plan) ==
                          !(c->enable || c->disable || c->start || c->stop || c->restart));
        }
}
END_TEST

/* A GetAll reply as systemd sends it: many properties, three of interest. */
static sd_bus_message *props_message(sd_bus *bus, const char *active, const char *unitfile, bool with_load) {
        sd_bus_message *m = NULL;

        ck_assert_int_ge(sd_bus_message_new(bus, &m, SD_BUS_MESSAGE_METHOD_RETURN), 0);
        ck_assert_int_ge(sd_bus_message_open_container(m, 'a', "{sv}"), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "Id", "s", "x.service"), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "Names", "as", 2, "x.service", "y.service"), 0);
        if (with_load)
                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "LoadState", "s", "loaded"), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "ActiveState", "s", active), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "InactiveExitTimestamp", "t", (uint64_t)12345), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "UnitFileState", "s", unitfile), 0);
        ck_assert_int_ge(sd_bus_message_close_container(m), 0);
        ck_assert_int_ge(sd_bus_message_seal(m, 1, 0), 0);
        ck_assert_int_ge(sd_bus_message_rewind(m, true), 0);
        return m;
}

START_TEST(test_props_parse) {
        sd_bus *bus = NULL;
        struct svc_props p;

        /* a bus needs a connection to make messages: one end of a socket pair */
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_fd(bus, sv[0], sv[0]), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        sd_bus_message *m = props_message(bus, "active", "enabled", true);
        ck_assert_int_eq(svc_props_parse(m, &p), 0);
        ck_assert_str_eq(p.active, "active");
        ck_assert_str_eq(p.unitfile, "enabled");
        ck_assert_str_eq(p.load, "loaded");
        sd_bus_message_unref(m);
        /* no LoadState: refused, not guessed */
        m = props_message(bus, "inactive", "", false);
        ck_assert_int_eq(svc_props_parse(m, &p), -EBADMSG);
        sd_bus_message_unref(m);
        /* a long value is cut, never overflows */
        m = props_message(bus, "activeactiveactiveactiveactiveactiveactiveactive", "x", true);
        ck_assert_int_eq(svc_props_parse(m, &p), 0);
        ck_assert_uint_eq(strlen(p.active), sizeof p.active - 1);
        sd_bus_message_unref(m);
        sd_bus_close_unref(bus);
        close(sv[1]);
}
END_TEST

START_TEST(test_unit_name) {
        char buf[64];
        ck_assert_int_eq(svc_unit_name("nginx", buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "nginx.service");
        ck_assert_int_eq(svc_unit_name("foo.timer", buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "foo.timer");
        ck_assert_int_eq(
            svc_unit_name("0123456789012345678901234567890123456789012345678901234567890", buf, sizeof buf),
            -ENAMETOOLONG);
}
END_TEST

static Suite *svc_suite(void) {
        Suite *s = suite_create("svc");
        TCase *tc = tcase_create("svc");
        tcase_add_test(tc, test_decide);
        tcase_add_test(tc, test_props_parse);
        tcase_add_test(tc, test_unit_name);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(svc_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
