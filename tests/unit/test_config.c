/* test_config.c: unit tests for lib/config.c (flag > env > file > default, errors). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

enum { O_HOST, O_SEEDS, O_SIZE, O_SERVER, O_TIMEOUT, O_NOSERVER, O_ARG, O_PREFIX, O_N };

static const struct opt_def opts[] = {
    [O_HOST] = {"hostname", NULL, OPT_HOSTNAME, "NAME", "defhost", "this node's name", 0, 0},
    [O_SEEDS] = {"seeds", NULL, OPT_URLS, "URLS", NULL, "client URLs to join", 0, 0},
    [O_SIZE] = {"ideal-cluster-size", NULL, OPT_INT, "N", "5", "ideal member count", 1, 99},
    [O_SERVER] = {"server-urls", "peer-urls", OPT_URLS, "URLS", "http://127.0.0.1:2380", "peer URLs", 0, 0},
    [O_TIMEOUT] = {"nominate-timeout", NULL, OPT_SECONDS, "S", "30", "timeout", 0, 0},
    [O_NOSERVER] = {"no-server", NULL, OPT_BOOL, NULL, NULL, "client only", 0, 0},
    [O_ARG] = {"etcd-arg", NULL, OPT_LIST, "ARG", NULL, "extra etcd flag", 0, 0},
    [O_PREFIX] = {"prefix", NULL, OPT_STRING, "DIR", "/var/lib/mgmt", "state dir", 0, 0},
};

static char tmpdir[64];
static char errpath[128];

static void setup(void) {
        static const char *const env[] = {
            "MGMT_HOSTNAME",         "MGMT_SEEDS",     "MGMT_IDEAL_CLUSTER_SIZE", "MGMT_SERVER_URLS",
            "MGMT_NOMINATE_TIMEOUT", "MGMT_NO_SERVER", "MGMT_ETCD_ARG",           "MGMT_PREFIX",
            "MGMT_CONFIG",           "MGMT_LOG_LEVEL", "MGMT_PEER_URLS"};
        for (size_t i = 0; i < ELEMENTSOF(env); i++)
                unsetenv(env[i]);
        strcpy(tmpdir, "/tmp/test_config.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        /* capture stderr: error messages are part of the contract */
        snprintf(errpath, sizeof errpath, "%s/stderr", tmpdir);
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        close(fd);
}

static void teardown(void) {
        rm_rf(tmpdir);
}

static char *stderr_text(void) {
        char *s = NULL;
        fflush(stderr);
        ck_assert_int_eq(read_file_max(errpath, 1 << 20, &s, NULL), 0);
        return s;
}

static char *write_yaml(const char *text) {
        char *p;
        ck_assert_int_ge(asprintf(&p, "%s/mgmt.yaml", tmpdir), 0);
        ck_assert_int_eq(write_file_atomic(p, text, strlen(text), 0600), 0);
        return p;
}

static int parse(struct config *cfg, int argc, char **argv) {
        return config_parse(cfg, "prog", "1.0", "usage: prog [OPTIONS]\n", NULL, opts, O_N, argc, argv);
}

START_TEST(test_defaults) {
        struct config cfg;
        char *argv[] = {"prog", NULL};
        ck_assert_int_eq(parse(&cfg, 1, argv), 0);
        ck_assert_str_eq(cfg.v[O_HOST].s, "defhost");
        ck_assert(!cfg.v[O_HOST].set);
        ck_assert_int_eq(cfg.v[O_HOST].src, SRC_DEFAULT);
        ck_assert_int_eq(cfg.v[O_SIZE].n, 5);
        ck_assert_int_eq(cfg.v[O_TIMEOUT].n, 30 * 1000000LL);
        ck_assert(!cfg.v[O_NOSERVER].b);
        ck_assert_ptr_null(cfg.v[O_ARG].list);
        ck_assert_ptr_null(cfg.v[O_SEEDS].list);
        ck_assert_uint_eq(strv_length(cfg.v[O_SERVER].list), 1);
        ck_assert_str_eq(cfg.v[O_SERVER].list[0], "http://127.0.0.1:2380");
        ck_assert_uint_eq(strv_length(cfg.args), 0);
        config_free(&cfg);
}
END_TEST

START_TEST(test_precedence) {
        struct config cfg;
        _cleanup_free_ char *path = write_yaml("hostname: filehost\n"
                                               "ideal-cluster-size: 3\n"
                                               "prefix: /file/prefix\n"
                                               "nominate-timeout: 2.5\n"
                                               "seeds: [\"http://f1:1\", \"http://f2:2\"]\n");
        setenv("MGMT_HOSTNAME", "envhost", 1);
        setenv("MGMT_IDEAL_CLUSTER_SIZE", "4", 1);
        char *argv[] = {"prog", "--config", path, "--hostname", "flaghost", "pos1", "--", "--pos2", NULL};
        ck_assert_int_eq(parse(&cfg, 8, argv), 0);
        /* flag beats env and file */
        ck_assert_str_eq(cfg.v[O_HOST].s, "flaghost");
        ck_assert_int_eq(cfg.v[O_HOST].src, SRC_FLAG);
        /* env beats file */
        ck_assert_int_eq(cfg.v[O_SIZE].n, 4);
        ck_assert_int_eq(cfg.v[O_SIZE].src, SRC_ENV);
        /* file beats default */
        ck_assert_str_eq(cfg.v[O_PREFIX].s, "/file/prefix");
        ck_assert_int_eq(cfg.v[O_PREFIX].src, SRC_FILE);
        ck_assert(cfg.v[O_PREFIX].set);
        ck_assert_int_eq(cfg.v[O_TIMEOUT].n, 2500000);
        ck_assert_uint_eq(strv_length(cfg.v[O_SEEDS].list), 2);
        ck_assert_str_eq(cfg.v[O_SEEDS].list[1], "http://f2:2");
        /* default stays */
        ck_assert_int_eq(cfg.v[O_SERVER].src, SRC_DEFAULT);
        ck_assert_str_eq(cfg.config_file, path);
        /* positional arguments, "--" ends options */
        ck_assert_uint_eq(strv_length(cfg.args), 2);
        ck_assert_str_eq(cfg.args[0], "pos1");
        ck_assert_str_eq(cfg.args[1], "--pos2");
        config_free(&cfg);

        /* MGMT_CONFIG names the file too; flag=value form */
        setenv("MGMT_CONFIG", path, 1);
        unsetenv("MGMT_HOSTNAME");
        char *argv2[] = {"prog", "--ideal-cluster-size=7", NULL};
        ck_assert_int_eq(parse(&cfg, 2, argv2), 0);
        ck_assert_str_eq(cfg.v[O_HOST].s, "filehost");
        ck_assert_int_eq(cfg.v[O_SIZE].n, 7);
        config_free(&cfg);
}
END_TEST

START_TEST(test_alias_and_bool) {
        struct config cfg;
        char *argv[] = {"prog", "--peer-urls", "http://10.0.0.1:2380;https://[::1]:2381", "--no-server",
                        NULL};
        ck_assert_int_eq(parse(&cfg, 4, argv), 0);
        ck_assert_uint_eq(strv_length(cfg.v[O_SERVER].list), 2);
        ck_assert_str_eq(cfg.v[O_SERVER].list[0], "http://10.0.0.1:2380");
        ck_assert_str_eq(cfg.v[O_SERVER].list[1], "https://[::1]:2381");
        ck_assert_int_eq(cfg.v[O_SERVER].src, SRC_FLAG);
        ck_assert(cfg.v[O_NOSERVER].b);
        config_free(&cfg);

        setenv("MGMT_NO_SERVER", "yes", 1);
        char *argv2[] = {"prog", NULL};
        ck_assert_int_eq(parse(&cfg, 1, argv2), 0);
        ck_assert(cfg.v[O_NOSERVER].b);
        ck_assert_int_eq(cfg.v[O_NOSERVER].src, SRC_ENV);
        config_free(&cfg);

        char *argv3[] = {"prog", "--no-server=false", NULL};
        ck_assert_int_eq(parse(&cfg, 2, argv3), 0);
        ck_assert(!cfg.v[O_NOSERVER].b);
        config_free(&cfg);

        /* the alias's environment twin counts; the name's own wins over it */
        unsetenv("MGMT_NO_SERVER");
        setenv("MGMT_PEER_URLS", "http://10.0.0.2:2380", 1);
        ck_assert_int_eq(parse(&cfg, 1, argv2), 0);
        ck_assert_str_eq(cfg.v[O_SERVER].list[0], "http://10.0.0.2:2380");
        ck_assert_int_eq(cfg.v[O_SERVER].src, SRC_ENV);
        config_free(&cfg);
        setenv("MGMT_SERVER_URLS", "http://10.0.0.3:2380", 1);
        ck_assert_int_eq(parse(&cfg, 1, argv2), 0);
        ck_assert_str_eq(cfg.v[O_SERVER].list[0], "http://10.0.0.3:2380");
        config_free(&cfg);
        unsetenv("MGMT_SERVER_URLS");
        unsetenv("MGMT_PEER_URLS");

        setenv("MGMT_NO_SERVER", "maybe", 1);
        ck_assert_int_eq(parse(&cfg, 1, argv2), CONFIG_EXIT_USAGE);
        config_free(&cfg);
        _cleanup_free_ char *e = stderr_text();
        ck_assert_msg(strstr(e, "MGMT_NO_SERVER") != NULL, "stderr: %s", e);
}
END_TEST

START_TEST(test_usage_errors) {
        static const char *const cases[][3] = {
            {"--bogus", NULL, "unknown option '--bogus'"},
            {"-x", NULL, "unknown option '-x'"},
            {"--ideal-cluster-size", "abc", "invalid --ideal-cluster-size 'abc'"},
            {"--ideal-cluster-size", "0", "invalid --ideal-cluster-size '0'"},
            {"--ideal-cluster-size", "100", "invalid --ideal-cluster-size '100'"},
            {"--seeds", "http://a:1,nope", "invalid URL 'nope'"},
            {"--seeds", "", "invalid --seeds"},
            {"--hostname", "bad_host", "invalid --hostname 'bad_host'"},
            {"--hostname", "-lead", "invalid --hostname '-lead'"},
            {"--nominate-timeout", "soon", "invalid --nominate-timeout 'soon'"},
            {"--nominate-timeout", "-1", "invalid --nominate-timeout '-1'"},
            {"--hostname", NULL, "needs a value"},
            {"--log-level", "loud", "invalid --log-level"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct config cfg;
                char *argv[] = {"prog", (char *)cases[i][0], (char *)cases[i][1], NULL};
                int argc = cases[i][1] ? 3 : 2;
                ck_assert_msg(parse(&cfg, argc, argv) == CONFIG_EXIT_USAGE, "case %zu not a usage error", i);
                config_free(&cfg);
                _cleanup_free_ char *e = stderr_text();
                ck_assert_msg(strstr(e, cases[i][2]) != NULL, "case %zu: '%s' not in stderr: %s", i,
                              cases[i][2], e);
                ck_assert_msg(strstr(e, "prog: ") != NULL, "case %zu: no program name: %s", i, e);
                ck_assert_int_eq(truncate(errpath, 0), 0);
                lseek(STDERR_FILENO, 0, SEEK_SET);
        }

        /* bad env values are usage errors naming the variable */
        struct config cfg;
        char *argv[] = {"prog", NULL};
        setenv("MGMT_SEEDS", "http://ok:1 ftp://x:2", 1);
        ck_assert_int_eq(parse(&cfg, 1, argv), CONFIG_EXIT_USAGE);
        config_free(&cfg);
        _cleanup_free_ char *e = stderr_text();
        ck_assert_msg(strstr(e, "MGMT_SEEDS") && strstr(e, "ftp://x:2"), "stderr: %s", e);
}
END_TEST

START_TEST(test_help_version) {
        struct config cfg;
        char *argv[] = {"prog", "--bogus", "--help", NULL};
        FILE *saved = stdout;
        stdout = fopen("/dev/null", "w");
        ck_assert_int_eq(parse(&cfg, 3, argv), CONFIG_EXIT_OK);
        config_free(&cfg);
        char *argv2[] = {"prog", "--version", NULL};
        ck_assert_int_eq(parse(&cfg, 2, argv2), CONFIG_EXIT_OK);
        config_free(&cfg);
        fclose(stdout);
        stdout = saved;

        /* help lists every option with its env twin and default */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        config_print_help(f, "usage\n", "footer\n", opts, O_N);
        fclose(f);
        ck_assert(strstr(buf, "--ideal-cluster-size N") != NULL);
        ck_assert(strstr(buf, "env MGMT_IDEAL_CLUSTER_SIZE, default 5") != NULL);
        ck_assert(strstr(buf, "alias --peer-urls") != NULL);
        ck_assert(strstr(buf, "MGMT_ETCD_ARG") != NULL);
        ck_assert(strstr(buf, "repeatable") != NULL);
        ck_assert(strstr(buf, "footer\n") != NULL);
        free(buf);
}
END_TEST

START_TEST(test_list) {
        struct config cfg;
        _cleanup_free_ char *path = write_yaml("etcd-arg:\n  - --file-a\n  - --file-b\n");
        char *argv[] = {"prog", "--config", path, NULL};
        ck_assert_int_eq(parse(&cfg, 3, argv), 0);
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 2);
        ck_assert_str_eq(cfg.v[O_ARG].list[0], "--file-a");
        config_free(&cfg);

        /* env replaces the file's list; whitespace separated */
        setenv("MGMT_ETCD_ARG", "--env-a  --env-b\t--env-c", 1);
        ck_assert_int_eq(parse(&cfg, 3, argv), 0);
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 3);
        ck_assert_str_eq(cfg.v[O_ARG].list[2], "--env-c");
        config_free(&cfg);

        /* flags replace env, and repeat; a value may start with dashes */
        char *argv2[] = {"prog",
                         "--config",
                         path,
                         "--etcd-arg",
                         "--heartbeat-interval=100",
                         "--etcd-arg=--election-timeout=1000",
                         NULL};
        ck_assert_int_eq(parse(&cfg, 6, argv2), 0);
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 2);
        ck_assert_str_eq(cfg.v[O_ARG].list[0], "--heartbeat-interval=100");
        ck_assert_str_eq(cfg.v[O_ARG].list[1], "--election-timeout=1000");
        ck_assert_int_eq(cfg.v[O_ARG].src, SRC_FLAG);
        config_free(&cfg);

        /* an env value of only whitespace sets nothing */
        setenv("MGMT_ETCD_ARG", "   ", 1);
        char *argv3[] = {"prog", NULL};
        ck_assert_int_eq(parse(&cfg, 1, argv3), 0);
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 0);
        config_free(&cfg);
}
END_TEST

static void expect_file_error(const char *yaml, const char *what) {
        struct config cfg;
        _cleanup_free_ char *path = write_yaml(yaml);
        char *argv[] = {"prog", "--config", path, NULL};
        ck_assert_int_eq(truncate(errpath, 0), 0);
        lseek(STDERR_FILENO, 0, SEEK_SET);
        ck_assert_int_eq(parse(&cfg, 3, argv), CONFIG_EXIT_USAGE);
        config_free(&cfg);
        _cleanup_free_ char *e = stderr_text();
        ck_assert_msg(strstr(e, what) != NULL, "'%s' not in stderr: %s", what, e);
}

START_TEST(test_file_errors) {
        char loc[200];
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:2:1: unknown option 'bogus'", tmpdir);
        expect_file_error("hostname: a\nbogus: 1\n", loc);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:3:21: invalid --ideal-cluster-size 'many'", tmpdir);
        expect_file_error("hostname: a\n\nideal-cluster-size: many\n", loc);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:11: invalid --hostname", tmpdir);
        expect_file_error("hostname: no_underscore\n", loc);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:8: invalid --seeds", tmpdir);
        expect_file_error("seeds: [\"http://a:1\", \"bad\"]\n", loc);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:2:", tmpdir);
        expect_file_error("hostname: a\n  : [\n", loc); /* syntax error */
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:1: expected a mapping", tmpdir);
        expect_file_error("- a\n- b\n", loc);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:11: 'hostname' takes a single value", tmpdir);
        expect_file_error("hostname: [a, b]\n", loc);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:11: 'hostname' must be a scalar", tmpdir);
        expect_file_error("hostname: {a: b}\n", loc);

        /* missing file */
        struct config cfg;
        char missing[128];
        snprintf(missing, sizeof missing, "%s/nope.yaml", tmpdir);
        char *argv[] = {"prog", "--config", missing, NULL};
        ck_assert_int_eq(parse(&cfg, 3, argv), CONFIG_EXIT_USAGE);
        config_free(&cfg);
        _cleanup_free_ char *e = stderr_text();
        ck_assert_msg(strstr(e, missing) != NULL, "stderr: %s", e);

        /* empty file is fine */
        _cleanup_free_ char *path = write_yaml("");
        char *argv2[] = {"prog", "--config", path, NULL};
        ck_assert_int_eq(parse(&cfg, 3, argv2), 0);
        ck_assert_str_eq(cfg.v[O_HOST].s, "defhost");
        config_free(&cfg);
}
END_TEST

static char *nested(const char *open, const char *close, size_t depth) {
        size_t lo = strlen(open), lc = strlen(close), o = 0;
        char *t = malloc(16 + depth * (lo + lc) + 4);
        ck_assert_ptr_nonnull(t);
        o += (size_t)sprintf(t, "etcd-arg: ");
        for (size_t i = 0; i < depth; i++, o += lo)
                memcpy(t + o, open, lo);
        t[o++] = 'x';
        for (size_t i = 0; i < depth; i++, o += lc)
                memcpy(t + o, close, lc);
        strcpy(t + o, "\n");
        return t;
}

/* A config file nested 100,000 deep took 27 s (quadratic in libyaml's
 * loader): depth and size are capped, with the file and line:col named,
 * and refused at once. */
START_TEST(test_file_limits) {
        char loc[200];
        uint64_t t0;

        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:74: config file nested deeper than %d levels", tmpdir,
                 CONFIG_MAX_DEPTH);
        _cleanup_free_ char *deep = nested("[", "]", 100000);
        t0 = now_usec();
        expect_file_error(deep, loc);
        ck_assert_uint_lt(now_usec() - t0, 1000000);
        _cleanup_free_ char *deepmap = nested("{a: ", "}", 100000);
        t0 = now_usec();
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:1:263: config file nested deeper than", tmpdir);
        expect_file_error(deepmap, loc);
        ck_assert_uint_lt(now_usec() - t0, 1000000);
        /* at the limit (the top mapping is level 1): a plain error about the value */
        _cleanup_free_ char *ok = nested("[", "]", CONFIG_MAX_DEPTH - 1);
        expect_file_error(ok, "'etcd-arg' items must be scalars");
        _cleanup_free_ char *ko = nested("[", "]", CONFIG_MAX_DEPTH);
        expect_file_error(ko, "nested deeper than");

        /* a file of 1 MiB + 1 byte */
        size_t n = CONFIG_MAX_SIZE + 1;
        _cleanup_free_ char *huge = malloc(n + 1);
        ck_assert_ptr_nonnull(huge);
        memset(huge, '#', n);
        huge[n - 1] = '\n';
        huge[n] = 0;
        snprintf(loc, sizeof loc, "%s/mgmt.yaml: config file larger than the limit of %d bytes", tmpdir,
                 CONFIG_MAX_SIZE);
        expect_file_error(huge, loc);

        /* a list option with too many items; each item parsed once */
        char *list = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&list, &len);
        fputs("hostname: a\netcd-arg:\n", f);
        for (int i = 0; i < CONFIG_MAX_ITEMS + 1; i++)
                fprintf(f, "- --x%d\n", i);
        fclose(f);
        snprintf(loc, sizeof loc, "%s/mgmt.yaml:3:1: 'etcd-arg' has %d items, more than the limit of %d",
                 tmpdir, CONFIG_MAX_ITEMS + 1, CONFIG_MAX_ITEMS);
        expect_file_error(list, loc);
        free(list);
}
END_TEST

START_TEST(test_reload) {
        struct config cfg;
        _cleanup_free_ char *path = write_yaml("hostname: one\nprefix: /p1\netcd-arg: --a\n");
        setenv("MGMT_HOSTNAME", "envhost", 1);
        char *argv[] = {"prog", "--config", path, NULL};
        ck_assert_int_eq(parse(&cfg, 3, argv), 0);
        ck_assert_str_eq(cfg.v[O_HOST].s, "envhost");
        ck_assert_str_eq(cfg.v[O_PREFIX].s, "/p1");
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 1);
        free(write_yaml("hostname: two\nprefix: /p2\netcd-arg: --b\n"));
        ck_assert_int_eq(config_reload_file(&cfg), 0);
        ck_assert_str_eq(cfg.v[O_HOST].s, "envhost");
        ck_assert_str_eq(cfg.v[O_PREFIX].s, "/p2");
        /* a reloaded list replaces the old one */
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 1);
        ck_assert_str_eq(cfg.v[O_ARG].list[0], "--b");
        free(write_yaml("prefix: [\n"));
        ck_assert_int_eq(config_reload_file(&cfg), -EINVAL);
        ck_assert_str_eq(cfg.v[O_PREFIX].s, "/p2");
        /* an error after a good key changes nothing */
        free(write_yaml("prefix: /p3\nnominate-timeout: 9\nideal-cluster-size: lots\n"));
        ck_assert_int_eq(config_reload_file(&cfg), -EINVAL);
        ck_assert_str_eq(cfg.v[O_PREFIX].s, "/p2");
        ck_assert_int_eq(cfg.v[O_TIMEOUT].n, 30 * 1000000LL);
        /* a key removed from the file goes back to its default */
        free(write_yaml("nominate-timeout: 9\n"));
        ck_assert_int_eq(config_reload_file(&cfg), 0);
        ck_assert_str_eq(cfg.v[O_PREFIX].s, "/var/lib/mgmt");
        ck_assert_int_eq(cfg.v[O_PREFIX].src, SRC_DEFAULT);
        ck_assert_int_eq(cfg.v[O_TIMEOUT].n, 9 * 1000000LL);
        ck_assert_uint_eq(strv_length(cfg.v[O_ARG].list), 0);
        ck_assert_str_eq(cfg.v[O_HOST].s, "envhost");
        config_free(&cfg);
}
END_TEST

START_TEST(test_env_name) {
        char buf[64];
        config_env_name("client-urls", buf, sizeof buf);
        ck_assert_str_eq(buf, "MGMT_CLIENT_URLS");
        config_env_name("hostname", buf, sizeof buf);
        ck_assert_str_eq(buf, "MGMT_HOSTNAME");
        config_env_name("peer-client-cert-auth", buf, sizeof buf);
        ck_assert_str_eq(buf, "MGMT_PEER_CLIENT_CERT_AUTH");
        config_env_name("abcdefgh", buf, 8); /* truncated, still terminated */
        ck_assert_str_eq(buf, "MGMT_AB");
}
END_TEST

START_TEST(test_config_set) {
        struct config cfg;
        char err[256];
        char *argv[] = {"prog", NULL};
        ck_assert_int_eq(parse(&cfg, 1, argv), 0);
        ck_assert_int_eq(config_set(&cfg, O_SIZE, "9", SRC_FLAG, err, sizeof err), 0);
        ck_assert_int_eq(cfg.v[O_SIZE].n, 9);
        ck_assert_int_eq(config_set(&cfg, O_SIZE, "9x", SRC_FLAG, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "--ideal-cluster-size") != NULL, "%s", err);
        ck_assert_int_eq(config_set(&cfg, O_TIMEOUT, "0.25", SRC_FLAG, err, sizeof err), 0);
        ck_assert_int_eq(cfg.v[O_TIMEOUT].n, 250000);
        ck_assert_int_eq(config_set(&cfg, O_TIMEOUT, "5s", SRC_FLAG, err, sizeof err), 0);
        ck_assert_int_eq(cfg.v[O_TIMEOUT].n, 5000000);
        ck_assert_int_eq(config_set(&cfg, O_TIMEOUT, "nan", SRC_FLAG, err, sizeof err), -EINVAL);
        ck_assert_int_eq(config_set(&cfg, O_TIMEOUT, "inf", SRC_FLAG, err, sizeof err), -EINVAL);
        config_free(&cfg);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_precedence);
        tcase_add_test(tc, test_alias_and_bool);
        tcase_add_test(tc, test_usage_errors);
        tcase_add_test(tc, test_help_version);
        tcase_add_test(tc, test_list);
        tcase_add_test(tc, test_file_errors);
        tcase_add_test(tc, test_reload);
        tcase_add_test(tc, test_file_limits);
        tcase_add_test(tc, test_env_name);
        tcase_add_test(tc, test_config_set);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(config_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
