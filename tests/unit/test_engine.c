/* test_engine.c: the agent's resource engine on a temp dir: ordering, notify,
 * idempotence, failure blocking, drift repair, each resource kind. */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "graph.h"
#include "macro.h"
#include "util.h"

static char tmpdir[256];
static sd_event *ev;
static int state_reports;
static enum engine_state last_state;

static void setup(void) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test-engine-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        ck_assert_int_ge(sd_event_new(&ev), 0);
        state_reports = 0;
}

static void teardown(void) {
        sd_event_unref(ev);
        ev = NULL;
        rm_rf(tmpdir);
}

static void on_state(struct engine *e, enum engine_state st, void *userdata) {
        state_reports++;
        last_state = st;
}

/* Substitute @D@ with the temp dir and parse. */
static struct graph *parse(const char *yaml) {
        char text[8192], err[512] = "";
        size_t o = 0;
        struct graph *g = NULL;

        for (const char *p = yaml; *p && o < sizeof text - PATH_MAX; p++) {
                if (strneq(p, "@D@", 3)) {
                        o += (size_t)snprintf(text + o, sizeof text - o, "%s", tmpdir);
                        p += 2;
                } else
                        text[o++] = *p;
        }
        text[o] = 0;
        int r = graph_parse(text, o, "test.yaml", &g, err, sizeof err);
        ck_assert_msg(r >= 0, "graph_parse: %s", err);
        return g;
}

/* Run the loop until the engine reports a settled state (or timeout). */
static enum engine_state run_until_settled(struct engine *e, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        int seen = state_reports;

        for (;;) {
                (void)sd_event_run(ev, 50 * USEC_PER_MSEC);
                if (state_reports > seen && last_state != ENGINE_APPLYING)
                        return last_state;
                if (now_usec() > deadline)
                        return engine_get_state(e);
        }
}

/* Run the loop for a while regardless of state changes. */
static void run_for(uint64_t usec) {
        uint64_t deadline = now_usec() + usec;
        while (now_usec() < deadline)
                (void)sd_event_run(ev, 20 * USEC_PER_MSEC);
}

static char *slurp(const char *name) {
        char path[PATH_MAX];
        char *s = NULL;
        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        if (read_file_max(path, 1 << 20, &s, NULL) < 0)
                return NULL;
        return s;
}

static int count_lines(const char *name) {
        _cleanup_free_ char *s = slurp(name);
        int n = 0;
        for (const char *p = s; p && *p; p++)
                n += *p == '\n';
        return n;
}

START_TEST(test_ordering) {
        struct engine *e = NULL;
        /* declared c, b, a; edges make a -> b -> c */
        struct graph *g = parse("graph: order\n"
                                "resources:\n"
                                "  exec:\n"
                                "  - name: c\n"
                                "    cmd: \"echo c >> @D@/log\"\n"
                                "  - name: b\n"
                                "    cmd: \"sleep 0.1; echo b >> @D@/log\"\n"
                                "  - name: a\n"
                                "    cmd: \"sleep 0.1; echo a >> @D@/log\"\n"
                                "edges:\n"
                                "- name: e1\n"
                                "  from: {kind: exec, name: a}\n"
                                "  to: {kind: exec, name: b}\n"
                                "- name: e2\n"
                                "  from: {kind: exec, name: b}\n"
                                "  to: {kind: exec, name: c}\n");
        ck_assert_int_ge(engine_new(ev, false, on_state, NULL, &e), 0);
        ck_assert_int_ge(engine_set_graph(e, g), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_CONVERGED);
        _cleanup_free_ char *log = slurp("log");
        ck_assert_str_eq(log, "a\nb\nc\n");
        engine_free(e);
}
END_TEST

static const char notify_graph[] = "graph: notify\n"
                                   "resources:\n"
                                   "  file:\n"
                                   "  - name: conf\n"
                                   "    path: \"@D@/sub/dir/conf\"\n"
                                   "    content: \"v1\\n\"\n"
                                   "    mode: \"0600\"\n"
                                   "  exec:\n"
                                   "  - name: reload\n"
                                   "    cmd: \"echo reload >> @D@/reloads\"\n"
                                   "edges:\n"
                                   "- name: e1\n"
                                   "  from: {kind: file, name: conf}\n"
                                   "  to: {kind: exec, name: reload}\n"
                                   "  notify: true\n";

START_TEST(test_notify_and_idempotence) {
        struct engine *e = NULL;
        struct stat st1, st2;
        char path[PATH_MAX];

        snprintf(path, sizeof path, "%s/sub/dir/conf", tmpdir);
        ck_assert_int_ge(engine_new(ev, true, on_state, NULL, &e), 0);
        ck_assert_int_ge(engine_set_graph(e, parse(notify_graph)), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_CONVERGED);
        _cleanup_free_ char *c = slurp("sub/dir/conf");
        ck_assert_str_eq(c, "v1\n");
        ck_assert_int_eq(stat(path, &st1), 0);
        ck_assert_int_eq(st1.st_mode & 07777, 0600);
        ck_assert_int_eq(count_lines("reloads"), 1);

        /* the same graph again: nothing changes, nothing runs */
        ck_assert_int_ge(engine_set_graph(e, parse(notify_graph)), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_CONVERGED);
        run_for(200 * USEC_PER_MSEC);
        ck_assert_int_eq(stat(path, &st2), 0);
        ck_assert_int_eq(st1.st_ino, st2.st_ino);
        ck_assert_int_eq(count_lines("reloads"), 1);

        /* drift: the file is rewritten behind our back; restored, and the exec refreshed */
        ck_assert_int_eq(write_file_atomic(path, "tampered\n", 9, 0644), 0);
        run_for(500 * USEC_PER_MSEC);
        _cleanup_free_ char *c2 = slurp("sub/dir/conf");
        ck_assert_str_eq(c2, "v1\n");
        ck_assert_int_eq(stat(path, &st2), 0);
        ck_assert_int_eq(st2.st_mode & 07777, 0600);
        ck_assert_int_eq(count_lines("reloads"), 2);

        /* drift: deleted, restored within a second */
        ck_assert_int_eq(unlink(path), 0);
        uint64_t t0 = now_usec();
        while (access(path, F_OK) < 0 && now_usec() - t0 < USEC_PER_SEC)
                (void)sd_event_run(ev, 20 * USEC_PER_MSEC);
        ck_assert_int_eq(access(path, F_OK), 0);
        run_for(200 * USEC_PER_MSEC);
        ck_assert_int_eq(count_lines("reloads"), 3);
        ck_assert_int_eq(engine_get_state(e), ENGINE_CONVERGED);

        /* a fresh engine on a converged host changes nothing either */
        engine_free(e);
        e = NULL;
        ck_assert_int_ge(engine_new(ev, true, on_state, NULL, &e), 0);
        ck_assert_int_ge(
            engine_set_graph(e, parse("graph: g\nresources:\n  file:\n  - name: conf\n"
                                      "    path: \"@D@/sub/dir/conf\"\n    content: \"v1\\n\"\n")),
            0);
        ck_assert_int_eq(stat(path, &st1), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_CONVERGED);
        ck_assert_int_eq(stat(path, &st2), 0);
        ck_assert_int_eq(st1.st_ino, st2.st_ino);
        engine_free(e);
}
END_TEST

START_TEST(test_failure_blocks_dependents) {
        struct engine *e = NULL;
        struct graph *g = parse("graph: fail\n"
                                "resources:\n"
                                "  exec:\n"
                                "  - name: bad\n"
                                "    cmd: \"echo try >> @D@/tries; exit 3\"\n"
                                "  - name: after\n"
                                "    cmd: \"touch @D@/after\"\n"
                                "  noop:\n"
                                "  - name: free\n"
                                "edges:\n"
                                "- name: e1\n"
                                "  from: {kind: exec, name: bad}\n"
                                "  to: {kind: exec, name: after}\n");
        ck_assert_int_ge(engine_new(ev, true, on_state, NULL, &e), 0);
        engine_set_backoff(e, 100 * USEC_PER_MSEC, 200 * USEC_PER_MSEC);
        ck_assert_int_ge(engine_set_graph(e, g), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_FAILED);
        char **errs = engine_errors(e);
        ck_assert_ptr_nonnull(errs);
        ck_assert_ptr_nonnull(strstr(errs[0], "exited 3"));
        /* retried with backoff, the dependent never ran */
        run_for(700 * USEC_PER_MSEC);
        ck_assert_int_ge(count_lines("tries"), 3);
        ck_assert_ptr_null(slurp("after"));
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/after", tmpdir);
        ck_assert_int_ne(access(p, F_OK), 0);
        engine_free(e);
}
END_TEST

START_TEST(test_exec_ifcmd_timeout) {
        struct engine *e = NULL;
        struct graph *g = parse("graph: x\n"
                                "resources:\n"
                                "  exec:\n"
                                "  - name: skipped\n"
                                "    cmd: \"touch @D@/skipped\"\n"
                                "    ifcmd: \"false\"\n"
                                "  - name: gated\n"
                                "    cmd: \"touch @D@/gated\"\n"
                                "    ifcmd: \"true\"\n"
                                "    shell: /bin/bash\n"
                                "  print:\n"
                                "  - name: hello\n"
                                "    msg: hello\n");
        ck_assert_int_ge(engine_new(ev, false, on_state, NULL, &e), 0);
        ck_assert_int_ge(engine_set_graph(e, g), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_CONVERGED);
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/skipped", tmpdir);
        ck_assert_int_ne(access(p, F_OK), 0);
        snprintf(p, sizeof p, "%s/gated", tmpdir);
        ck_assert_int_eq(access(p, F_OK), 0);

        g = parse("graph: t\nresources:\n  exec:\n  - name: slow\n    cmd: \"sleep 10\"\n    timeout: 1\n");
        uint64_t t0 = now_usec();
        ck_assert_int_ge(engine_set_graph(e, g), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_FAILED);
        ck_assert_uint_lt(now_usec() - t0, 3 * USEC_PER_SEC);
        ck_assert_ptr_nonnull(strstr(engine_errors(e)[0], "timed out"));
        engine_free(e);
}
END_TEST

/* The agent's etcd credentials (env twins of --etcd-user and
 * --etcd-password-file) do not reach the commands of exec resources. */
START_TEST(test_exec_env_no_credentials) {
        struct engine *e = NULL;
        ck_assert_int_eq(setenv("MGMT_ETCD_PASSWORD_FILE", "/etc/mgmt/etcd-host.pw", 1), 0);
        ck_assert_int_eq(setenv("MGMT_ETCD_USER", "host-h1", 1), 0);
        ck_assert_int_eq(setenv("MGMT_TEST_KEPT", "yes", 1), 0);
        struct graph *g = parse("graph: env\nresources:\n  exec:\n  - name: env\n"
                                "    cmd: \"env > @D@/env\"\n    ifcmd: \"env > @D@/ifenv\"\n");
        ck_assert_int_ge(engine_new(ev, false, on_state, NULL, &e), 0);
        ck_assert_int_ge(engine_set_graph(e, g), 0);
        ck_assert_int_eq(run_until_settled(e, 5 * USEC_PER_SEC), ENGINE_CONVERGED);
        const char *files[] = {"env", "ifenv"};
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *env = slurp(files[i]);
                ck_assert_ptr_nonnull(env);
                ck_assert_ptr_nonnull(strstr(env, "MGMT_TEST_KEPT=yes"));
                ck_assert_msg(!strstr(env, "MGMT_ETCD_PASSWORD_FILE"), "%s: %s", files[i], env);
                ck_assert_msg(!strstr(env, "MGMT_ETCD_USER"), "%s: %s", files[i], env);
        }
        engine_free(e);
        unsetenv("MGMT_ETCD_PASSWORD_FILE");
        unsetenv("MGMT_ETCD_USER");
        unsetenv("MGMT_TEST_KEPT");
}
END_TEST

START_TEST(test_file_kind) {
        struct res_file f = {.mode = -1};
        char path[PATH_MAX], err[256];

        snprintf(path, sizeof path, "%s/a/b/f", tmpdir);
        f.path = path;
        f.content = (char *)"x\n";
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 1);
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 0);
        f.mode = 0640;
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 1);
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 0);
        f.content = NULL; /* content not managed */
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 0);
        f.absent = true;
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 1);
        ck_assert_int_ne(access(path, F_OK), 0);
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 0);
        f.absent = false;
        f.owner = (char *)"no-such-user-mgmt";
        ck_assert_int_lt(res_file_apply(&f, false, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(err, "no-such-user-mgmt"));
}
END_TEST

/* Replacing content keeps what the graph does not manage; a directory is
 * never removed; a name near NAME_MAX can be written. */
START_TEST(test_file_keeps_owner) {
        struct res_file f = {.mode = -1};
        char path[PATH_MAX], err[256], name[251];
        struct stat st;

        snprintf(path, sizeof path, "%s/owned", tmpdir);
        ck_assert_int_eq(write_file_atomic(path, "old\n", 4, 0640), 0);
        /* tests run as root (make check installs packages): chown works */
        ck_assert_int_eq(chown(path, 65534, 65534), 0);
        f.path = path;
        f.content = (char *)"new\n";
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 1);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_uid, 65534);
        ck_assert_uint_eq(st.st_gid, 65534);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        f.owner = (char *)"0"; /* managed: set */
        f.content = (char *)"newer\n";
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 1);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_uid, 0);
        ck_assert_uint_eq(st.st_gid, 65534);

        snprintf(path, sizeof path, "%s/adir", tmpdir);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        f = (struct res_file){.mode = -1, .path = path, .absent = true};
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), -EISDIR);
        ck_assert_ptr_nonnull(strstr(err, "is a directory"));
        ck_assert_int_eq(access(path, F_OK), 0);

        memset(name, 'n', sizeof name - 1);
        name[sizeof name - 1] = 0;
        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        f = (struct res_file){.mode = -1, .path = path, .content = (char *)"long\n"};
        ck_assert_msg(res_file_apply(&f, false, err, sizeof err) == 1, "%s", err);
        ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

/* Mode and owner go through an O_NOFOLLOW descriptor: a symlink at the
 * path is refused, and the file it points to keeps its mode. */
START_TEST(test_file_symlink_not_followed) {
        struct res_file f = {.mode = 0600};
        char path[PATH_MAX], target[PATH_MAX], err[256];
        struct stat st;

        snprintf(target, sizeof target, "%s/target", tmpdir);
        snprintf(path, sizeof path, "%s/link", tmpdir);
        ck_assert_int_eq(write_file_atomic(target, "t\n", 2, 0644), 0);
        ck_assert_int_eq(symlink(target, path), 0);
        f.path = path;
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), -EEXIST);
        ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
        ck_assert_int_eq(stat(target, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0644);
        f.owner = (char *)"65534";
        ck_assert_int_lt(res_file_apply(&f, false, err, sizeof err), 0);
        ck_assert_int_eq(stat(target, &st), 0);
        ck_assert_uint_ne(st.st_uid, 65534);
        /* force moves the link aside (never deletes it) and writes a file */
        f.owner = NULL;
        f.force = true;
        f.content = (char *)"mine\n";
        ck_assert_msg(res_file_apply(&f, false, err, sizeof err) == 1, "%s", err);
        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(stat(target, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0644);
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 0);
}
END_TEST

/* A path ending in '/' is a directory; source copies a file's content;
 * noop changes nothing and says something would change. */
START_TEST(test_file_dir_source_noop) {
        struct res_file f = {.mode = 0700};
        char path[PATH_MAX], src[PATH_MAX], err[256];
        struct stat st;

        snprintf(path, sizeof path, "%s/x/y/", tmpdir);
        f.path = path;
        ck_assert_int_eq(res_file_apply(&f, true, err, sizeof err), 1);
        ck_assert_int_ne(access(path, F_OK), 0);
        ck_assert_msg(res_file_apply(&f, false, err, sizeof err) == 1, "%s", err);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 0);
        ck_assert_int_eq(res_file_apply(&f, true, err, sizeof err), 0);
        ck_assert_int_eq(chmod(path, 0755), 0);
        ck_assert_int_eq(res_file_apply(&f, true, err, sizeof err), 1); /* would set the mode */
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0755);
        ck_assert_int_eq(res_file_apply(&f, false, err, sizeof err), 1);

        /* a non-empty directory is never removed */
        snprintf(src, sizeof src, "%s/x/y/inner", tmpdir);
        ck_assert_int_eq(write_file_atomic(src, "s\n", 2, 0644), 0);
        f.absent = true;
        ck_assert_int_lt(res_file_apply(&f, false, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(err, "not empty"));
        ck_assert_int_eq(access(src, F_OK), 0);

        struct res_file c = {.mode = -1, .source = src};
        snprintf(path, sizeof path, "%s/copy", tmpdir);
        c.path = path;
        ck_assert_int_eq(res_file_apply(&c, true, err, sizeof err), 1);
        ck_assert_int_ne(access(path, F_OK), 0);
        ck_assert_int_eq(res_file_apply(&c, false, err, sizeof err), 1);
        _cleanup_free_ char *got = NULL;
        size_t len;
        ck_assert_int_eq(read_file_max(path, 100, &got, &len), 0);
        ck_assert_str_eq(got, "s\n");
        ck_assert_int_eq(res_file_apply(&c, false, err, sizeof err), 0);
        ck_assert_int_eq(write_file_atomic(path, "drift\n", 6, 0644), 0);
        ck_assert_int_eq(res_file_apply(&c, true, err, sizeof err), 1);
        ck_assert_int_eq(res_file_apply(&c, false, err, sizeof err), 1);
        c.source = (char *)"/nonexistent/mgmt-source";
        ck_assert_int_lt(res_file_apply(&c, false, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(err, "cannot read source"));
}
END_TEST

static Suite *engine_suite(void) {
        Suite *s = suite_create("engine");
        TCase *tc = tcase_create("engine");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_ordering);
        tcase_add_test(tc, test_file_symlink_not_followed);
        tcase_add_test(tc, test_file_dir_source_noop);
        tcase_add_test(tc, test_notify_and_idempotence);
        tcase_add_test(tc, test_failure_blocks_dependents);
        tcase_add_test(tc, test_exec_ifcmd_timeout);
        tcase_add_test(tc, test_exec_env_no_credentials);
        tcase_add_test(tc, test_file_kind);
        tcase_add_test(tc, test_file_keeps_owner);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL); /* sd-event child sources need it */

        SRunner *sr = srunner_create(engine_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
