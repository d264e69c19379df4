/* test_etcdlog.c: unit tests for etcd_line_level (supervisor/child.c): which
 * lines of etcd's output the supervisor copies above debug; and
 * etcd_line_hints: after which lines it asks its etcd's status at once. */
#include <check.h>
#include <stdlib.h>
#include <syslog.h>

#include "supervisor.h"

static const struct {
        const char *line;
        int level;
} cases[] = {
    /* etcd 3.4+ zap JSON */
    {"{\"level\":\"info\",\"ts\":\"2024-01-01T00:00:00Z\",\"caller\":\"rafthttp/"
     "peer.go:128\",\"msg\":\"starting remote peer\"}",
     LOG_DEBUG},
    {"{\"level\":\"warn\",\"ts\":\"2024-01-01T00:00:00Z\",\"msg\":\"prober detected unhealthy status\"}",
     LOG_WARNING},
    {"{\"level\":\"error\",\"msg\":\"failed to publish\"}", LOG_ERR},
    {"{\"level\":\"fatal\",\"msg\":\"x\"}", LOG_ERR},
    {"{\"level\":\"panic\",\"msg\":\"x\"}", LOG_ERR},
    {"{\"level\":\"debug\",\"msg\":\"x\"}", LOG_DEBUG},
    {"{\"msg\":\"no level\"}", LOG_DEBUG},
    {"{not json at all, \"level\":\"warn\"", LOG_DEBUG},
    {"{\"level\":42}", LOG_DEBUG},
    /* capnslog (etcd 3.4 default) */
    {"2024-01-01 00:00:00.123456 I | etcdserver: published {Name:h1}", LOG_DEBUG},
    {"2024-01-01 00:00:00.123456 N | etcdserver/membership: set the initial cluster version", LOG_DEBUG},
    {"2024-01-01 00:00:00.123456 W | rafthttp: lost the TCP streaming connection with peer", LOG_WARNING},
    {"2024-01-01 00:00:00.123456 E | rafthttp: failed to dial", LOG_ERR},
    {"2024-01-01 00:00:00.123456 C | etcdmain: cannot access data directory", LOG_ERR},
    /* a message that happens to contain " W | " far from the start is not a level */
    {"2024-01-01 00:00:00.123456 I | etcdserver: the text goes on and on and on here: W | x", LOG_DEBUG},
    {"", LOG_DEBUG},
    {"plain text from a wrapper", LOG_DEBUG},
    {"W | at the very start", LOG_DEBUG},
};

START_TEST(test_levels) {
        ck_assert_msg(etcd_line_level(cases[_i].line) == cases[_i].level, "line %d '%s': got %d, want %d",
                      _i, cases[_i].line, etcd_line_level(cases[_i].line), cases[_i].level);
}
END_TEST

static const struct {
        const char *line;
        bool hint;
} hints[] = {
    /* etcd 3.4 capnslog */
    {"2026-12-01 08:16:09.695352 I | embed: ready to serve client requests", true},
    {"2026-12-01 08:16:09.706133 N | etcdserver/membership: promote member 7c4ac54b43651e83 in cluster "
     "6a32c6060a207df6",
     true},
    {"2026-12-01 08:16:09.694894 I | etcdserver/membership: added member 7c4ac54b43651e83", false},
    {"2026-12-01 08:16:09.695076 I | etcdserver: published {Name:h2 ClientURLs:[http://127.0.0.1:1]}",
     false},
    /* etcd 3.5 zap */
    {"{\"level\":\"info\",\"ts\":\"2026-12-01T08:16:09.695Z\",\"caller\":\"embed/serve.go:100\","
     "\"msg\":\"ready to serve client requests\"}",
     true},
    {"{\"level\":\"info\",\"caller\":\"membership/cluster.go:500\",\"msg\":\"promote member\","
     "\"promoted-member-id\":\"7c4ac54b43651e83\"}",
     true},
    {"{\"level\":\"info\",\"msg\":\"starting remote peer\"}", false},
    {"", false},
};

START_TEST(test_hints) {
        ck_assert_msg(etcd_line_hints(hints[_i].line) == hints[_i].hint, "line %d '%s': want %s", _i,
                      hints[_i].line, hints[_i].hint ? "a hint" : "no hint");
}
END_TEST

int main(void) {
        Suite *s = suite_create("etcdlog");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, test_levels, 0, sizeof cases / sizeof cases[0]);
        tcase_add_loop_test(tc, test_hints, 0, sizeof hints / sizeof hints[0]);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
