/* test_etcdargs.c: unit tests for supervisor/etcdargs.c: the etcd command
 * line for bootstrap and join, TLS and pass-through flags, the initial
 * cluster built from a member list, refused flag combinations, and the
 * same etcd command line from a YAML config file as from the equivalent
 * flags. Advertise URLs are explicit or loopback so no address is derived
 * from this host's interfaces. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

extern char **environ;

static char tmpdir[64];

/* Nothing from the environment may leak in: MGMT_* twins, the config file,
 * and systemd's STATE_DIRECTORY (the default --prefix). */
static void clear_env(void) {
        char name[128];
        for (size_t i = 0; i < _OPT_MAX; i++) {
                config_env_name(supervisor_opts[i].name, name, sizeof name);
                unsetenv(name);
        }
        unsetenv("MGMT_CONFIG");
        unsetenv("MGMT_LOG_LEVEL");
        unsetenv("STATE_DIRECTORY");
        for (size_t i = 0; environ && environ[i];) {
                if (startswith(environ[i], "MGMT_")) {
                        const char *eq = strchr(environ[i], '=');
                        size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
                        snprintf(name, sizeof name, "%.*s", (int)len, environ[i]);
                        unsetenv(name);
                        i = 0;
                } else
                        i++;
        }
}

static void setup(void) {
        clear_env();
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_etcdargs.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
        rm_rf(tmpdir);
}

/* Parse a NULL-terminated argument list (without argv[0]) into sc.
 * Returns what sup_config_from returns; the caller frees sc either way. */
static int sup_from_args(struct sup_config *sc, const char *const *args, char *err, size_t errlen) {
        char *argv[64] = {"mgmt-supervisor"};
        int argc = 1;
        struct config cfg;

        for (size_t i = 0; args[i]; i++) {
                ck_assert_int_lt(argc, (int)ELEMENTSOF(argv) - 1);
                argv[argc++] = (char *)args[i];
        }
        argv[argc] = NULL;
        err[0] = 0;
        ck_assert_int_eq(
            config_parse(&cfg, "mgmt-supervisor", "0", "usage", NULL, supervisor_opts, _OPT_MAX, argc, argv),
            0);
        int r = sup_config_from(sc, &cfg, err, errlen);
        config_free(&cfg);
        return r;
}

/* Same, for arguments that must be accepted. */
static void sup_ok(struct sup_config *sc, const char *const *args) {
        char err[512];
        int r = sup_from_args(sc, args, err, sizeof err);
        ck_assert_msg(r == 0, "sup_config_from: %d: %s", r, err);
}

static char *write_yaml(const char *text) {
        char *p;
        ck_assert_int_ge(asprintf(&p, "%s/supervisor.yaml", tmpdir), 0);
        ck_assert_int_eq(write_file_atomic(p, text, strlen(text), 0600), 0);
        return p;
}

static bool argv_has(char *const *v, const char *s) {
        return strv_contains(v, s);
}

static bool argv_has_prefix(char *const *v, const char *prefix) {
        for (size_t i = 0; v && v[i]; i++)
                if (startswith(v[i], prefix))
                        return true;
        return false;
}

static void assert_argv_eq(char *const *got, const char *const *want) {
        size_t i;
        for (i = 0; want[i]; i++) {
                ck_assert_msg(got[i], "argv[%zu] missing, want '%s'", i, want[i]);
                ck_assert_msg(streq(got[i], want[i]), "argv[%zu] = '%s', want '%s'", i, got[i], want[i]);
        }
        ck_assert_msg(!got[i], "extra argv[%zu] = '%s'", i, got[i]);
}

static void assert_argv_same(char *const *a, char *const *b) {
        size_t i;
        for (i = 0; a[i] && b[i]; i++)
                ck_assert_msg(streq(a[i], b[i]), "argv[%zu]: flags give '%s', file gives '%s'", i, a[i],
                              b[i]);
        ck_assert_msg(!a[i] && !b[i], "argv lengths differ at %zu ('%s' vs '%s')", i, a[i] ? a[i] : "(end)",
                      b[i] ? b[i] : "(end)");
}

/* ---------- etcd_election_timeout_ms ---------- */

START_TEST(test_election_timeout) {
        static const struct {
                const char *arg1, *arg2, *env;
                unsigned want;
        } t[] = {
            {NULL, NULL, NULL, 1000},                                         /* etcd's default */
            {"--etcd-arg=--election-timeout=5000", NULL, NULL, 5000},         /* flag=value */
            {"--etcd-arg=-election-timeout=2500", NULL, NULL, 2500},          /* one dash, as Go allows */
            {"--etcd-arg=--election-timeout", "--etcd-arg=4000", NULL, 4000}, /* flag, value */
            {"--etcd-arg=--election-timeout=2000", "--etcd-arg=--election-timeout=7000", NULL,
             7000},                                                     /* last wins */
            {NULL, NULL, "6000", 6000},                                 /* ETCD_ELECTION_TIMEOUT */
            {"--etcd-arg=--election-timeout=2000", NULL, "6000", 2000}, /* the flag wins over the env */
            {"--etcd-arg=--election-timeout=abc", NULL, NULL, 1000},    /* etcd refuses it: default */
            {"--etcd-arg=--election-timeout=0", NULL, NULL, 1000},
            {"--etcd-arg=--election-timeout=", NULL, NULL, 1000},
            {"--etcd-arg=--election-timeout=99999999999999999999", NULL, NULL, 1000},
            {"--etcd-arg=--election-timeouts=5000", NULL, NULL, 1000}, /* another flag */
            {"--etcd-arg=--heartbeat-interval=500", NULL, NULL, 1000},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct sup_config sc;
                const char *args[] = {"--hostname=h1", "--prefix=/p", t[i].arg1, t[i].arg2, NULL};
                if (t[i].env)
                        setenv("ETCD_ELECTION_TIMEOUT", t[i].env, 1);
                else
                        unsetenv("ETCD_ELECTION_TIMEOUT");
                sup_ok(&sc, args); /* a NULL arg1 ends the list there */
                ck_assert_msg(etcd_election_timeout_ms(&sc) == t[i].want, "case %zu: got %u, want %u", i,
                              etcd_election_timeout_ms(&sc), t[i].want);
                sup_config_free(&sc);
        }
        unsetenv("ETCD_ELECTION_TIMEOUT");
}
END_TEST

/* ---------- etcd_argv ---------- */

START_TEST(test_bootstrap) {
        struct sup_config sc;
        static const char *const args[] = {"--hostname=h1",      "--client-urls=http://127.0.0.1:12379",
                                           "--server-urls",      "http://127.0.0.1:12380",
                                           "--prefix=/srv/mgmt", NULL};
        sup_ok(&sc, args);
        /* loopback listen URLs are advertised as they are */
        ck_assert_str_eq(sc.adv_client_urls[0], "http://127.0.0.1:12379");
        ck_assert_str_eq(sc.adv_server_urls[0], "http://127.0.0.1:12380");
        ck_assert_str_eq(sc.data_dir, "/srv/mgmt/etcd");

        char **v = etcd_argv(&sc, NULL, false);
        static const char *const want[] = {
            "etcd",
            "--name=h1",
            "--data-dir=/srv/mgmt/etcd",
            "--listen-client-urls=http://127.0.0.1:12379",
            "--advertise-client-urls=http://127.0.0.1:12379",
            "--listen-peer-urls=http://127.0.0.1:12380",
            "--initial-advertise-peer-urls=http://127.0.0.1:12380",
            "--initial-cluster=h1=http://127.0.0.1:12380",
            "--initial-cluster-state=new",
            "--initial-cluster-token=mgmt-h1",
            "--strict-reconfig-check=false",
            "--auto-compaction-retention=1",
            NULL,
        };
        assert_argv_eq(v, want);
        strv_free(v);
        sup_config_free(&sc);
}
END_TEST

START_TEST(test_bootstrap_several_peer_urls) {
        struct sup_config sc;
        static const char *const args[] = {
            "--hostname=n-1",
            "--client-urls=http://0.0.0.0:2379",
            "--server-urls=http://0.0.0.0:2380",
            "--advertise-client-urls=http://10.1.0.5:2379",
            "--advertise-server-urls=http://10.1.0.5:2380;http://[fd00::5]:2380",
            "--prefix=/var/lib/x",
            "--etcd-binary=/opt/etcd/bin/etcd",
            NULL,
        };
        sup_ok(&sc, args);
        char **v = etcd_argv(&sc, NULL, false);
        ck_assert_str_eq(v[0], "/opt/etcd/bin/etcd");
        ck_assert(argv_has(v, "--name=n-1"));
        ck_assert(argv_has(v, "--data-dir=/var/lib/x/etcd"));
        ck_assert(argv_has(v, "--listen-client-urls=http://0.0.0.0:2379"));
        ck_assert(argv_has(v, "--advertise-client-urls=http://10.1.0.5:2379"));
        ck_assert(argv_has(v, "--initial-advertise-peer-urls=http://10.1.0.5:2380,http://[fd00::5]:2380"));
        ck_assert(argv_has(v, "--initial-cluster=n-1=http://10.1.0.5:2380,n-1=http://[fd00::5]:2380"));
        ck_assert(argv_has(v, "--initial-cluster-state=new"));
        strv_free(v);
        sup_config_free(&sc);
}
END_TEST

START_TEST(test_join) {
        struct sup_config sc;
        static const char *const args[] = {
            "--hostname=h2",
            "--seeds=http://10.0.0.1:2379,http://10.0.0.3:2379",
            "--client-urls=http://0.0.0.0:2379",
            "--server-urls=http://0.0.0.0:2380",
            "--advertise-client-urls=http://10.0.0.2:2379",
            "--advertise-server-urls=http://10.0.0.2:2380",
            "--prefix=/var/lib/mgmt",
            NULL,
        };
        const char *ic = "h1=http://10.0.0.1:2380,h3=http://10.0.0.3:2380,h2=http://10.0.0.2:2380";
        sup_ok(&sc, args);
        ck_assert_uint_eq(strv_length(sc.seeds), 2);
        char **v = etcd_argv(&sc, ic, true);
        static const char *const want[] = {
            "etcd",
            "--name=h2",
            "--data-dir=/var/lib/mgmt/etcd",
            "--listen-client-urls=http://0.0.0.0:2379",
            "--advertise-client-urls=http://10.0.0.2:2379",
            "--listen-peer-urls=http://0.0.0.0:2380",
            "--initial-advertise-peer-urls=http://10.0.0.2:2380",
            "--initial-cluster=h1=http://10.0.0.1:2380,h3=http://10.0.0.3:2380,h2=http://10.0.0.2:2380",
            "--initial-cluster-state=existing",
            "--strict-reconfig-check=false",
            "--auto-compaction-retention=1",
            NULL,
        };
        assert_argv_eq(v, want);
        /* a join never carries a cluster token for a new cluster */
        ck_assert(!argv_has_prefix(v, "--initial-cluster-token"));
        strv_free(v);
        sup_config_free(&sc);
}
END_TEST

START_TEST(test_tls) {
        struct sup_config sc;
        static const char *const args[] = {
            "--hostname=h1",
            "--client-urls=https://127.0.0.1:2379",
            "--server-urls=https://127.0.0.1:2380",
            "--cert-file=/etc/mgmt/client.crt",
            "--key-file=/etc/mgmt/client.key",
            "--trusted-ca-file=/etc/mgmt/ca.crt",
            "--client-cert-auth",
            "--peer-cert-file=/etc/mgmt/peer.crt",
            "--peer-key-file=/etc/mgmt/peer.key",
            "--peer-trusted-ca-file=/etc/mgmt/peer-ca.crt",
            "--peer-client-cert-auth",
            "--prefix=/p",
            NULL,
        };
        sup_ok(&sc, args);
        char **v = etcd_argv(&sc, NULL, false);
        static const char *const flags[] = {
            "--cert-file=/etc/mgmt/client.crt",
            "--key-file=/etc/mgmt/client.key",
            "--trusted-ca-file=/etc/mgmt/ca.crt",
            "--client-cert-auth",
            "--peer-cert-file=/etc/mgmt/peer.crt",
            "--peer-key-file=/etc/mgmt/peer.key",
            "--peer-trusted-ca-file=/etc/mgmt/peer-ca.crt",
            "--peer-client-cert-auth",
        };
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                ck_assert_msg(argv_has(v, flags[i]), "'%s' missing", flags[i]);
        ck_assert(argv_has(v, "--initial-cluster=h1=https://127.0.0.1:2380"));
        ck_assert(argv_has(v, "--advertise-client-urls=https://127.0.0.1:2379"));
        strv_free(v);
        sup_config_free(&sc);
}
END_TEST

START_TEST(test_no_tls_flags_by_default) {
        struct sup_config sc;
        static const char *const args[] = {"--hostname=h1", "--prefix=/p", NULL};
        sup_ok(&sc, args);
        char **v = etcd_argv(&sc, NULL, false);
        static const char *const prefixes[] = {"--cert-file", "--key-file", "--trusted-ca-file",
                                               "--client-cert-auth", "--peer-"};
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                ck_assert_msg(!argv_has_prefix(v, prefixes[i]), "unexpected '%s...'", prefixes[i]);
        /* the defaults: loopback 2379/2380 */
        ck_assert(argv_has(v, "--listen-client-urls=http://127.0.0.1:2379"));
        ck_assert(argv_has(v, "--initial-cluster=h1=http://127.0.0.1:2380"));
        strv_free(v);
        sup_config_free(&sc);
}
END_TEST

START_TEST(test_etcd_arg_passthrough) {
        struct sup_config sc;
        static const char *const args[] = {
            "--hostname=h1",           "--etcd-arg=--heartbeat-interval=500", "--prefix=/p", "--etcd-arg",
            "--election-timeout=5000", "--peer-client-cert-auth=false",       NULL,
        };
        sup_ok(&sc, args);
        char **v = etcd_argv(&sc, NULL, false);
        size_t n = strv_length(v);
        ck_assert_uint_ge(n, 3);
        /* appended last, in the order given */
        ck_assert_str_eq(v[n - 2], "--heartbeat-interval=500");
        ck_assert_str_eq(v[n - 1], "--election-timeout=5000");
        ck_assert(!argv_has(v, "--peer-client-cert-auth"));
        strv_free(v);

        /* also on a join */
        v = etcd_argv(&sc, "h0=http://127.0.0.1:3380", true);
        n = strv_length(v);
        ck_assert_str_eq(v[n - 2], "--heartbeat-interval=500");
        ck_assert_str_eq(v[n - 1], "--election-timeout=5000");
        strv_free(v);
        sup_config_free(&sc);
}
END_TEST

/* ---------- initial_cluster_from ---------- */

static void add_member(struct etcd_members *ms, uint64_t id, const char *name, const char *peers,
                       bool learner) {
        char err[256];
        struct etcd_member *m = reallocarray(ms->m, ms->n + 1, sizeof *m);
        ck_assert_ptr_nonnull(m);
        ms->m = m;
        m = &ms->m[ms->n++];
        *m = (struct etcd_member){.id = id, .name = strdup(name), .learner = learner};
        ck_assert_int_eq(urls_parse(peers, &m->peer_urls, err, sizeof err), 0);
        m->client_urls = calloc(1, sizeof(char *));
        ck_assert_ptr_nonnull(m->client_urls);
}

START_TEST(test_initial_cluster_from) {
        struct etcd_members ms = {0};
        char *self_peers[] = {"http://10.0.0.2:2380", NULL};

        add_member(&ms, 1, "h1", "http://10.0.0.1:2380", false);
        add_member(&ms, 2, "", "http://10.0.0.2:2380", true); /* us: an unstarted learner */
        add_member(&ms, 3, "h3", "http://10.0.0.3:2380,http://[fd00::3]:2380", false);
        add_member(&ms, 4, "", "http://10.0.0.4:2380", false); /* someone else, unstarted: no name */

        char *ic = initial_cluster_from(&ms, "h2", self_peers);
        ck_assert_ptr_nonnull(ic);
        ck_assert_str_eq(ic, "h1=http://10.0.0.1:2380,h2=http://10.0.0.2:2380,h3=http://"
                             "10.0.0.3:2380,h3=http://[fd00::3]:2380");
        free(ic);
        etcd_members_clear(&ms);
}
END_TEST

START_TEST(test_initial_cluster_from_restart) {
        struct etcd_members ms = {0};
        char *self_peers[] = {"http://127.0.0.1:22380", NULL};

        /* our member already started once under another name: ours wins */
        add_member(&ms, 1, "old-name", "http://127.0.0.1:22380", false);
        add_member(&ms, 2, "h1", "http://127.0.0.1:12380", false);
        char *ic = initial_cluster_from(&ms, "h2", self_peers);
        ck_assert_str_eq(ic, "h2=http://127.0.0.1:22380,h1=http://127.0.0.1:12380");
        free(ic);
        etcd_members_clear(&ms);

        /* no members at all: empty, not NULL */
        ic = initial_cluster_from(&ms, "h2", self_peers);
        ck_assert_ptr_nonnull(ic);
        ck_assert_str_eq(ic, "");
        free(ic);
}
END_TEST

/* ---------- the config file gives the same etcd command line as the flags ---------- */

static void check_same(const char *const *flags, const char *yaml, const char *initial_cluster,
                       bool existing) {
        struct sup_config a, b;
        _cleanup_free_ char *path = write_yaml(yaml);
        const char *const file_args[] = {"--config", path, NULL};

        sup_ok(&a, flags);
        sup_ok(&b, file_args);

        char **va = etcd_argv(&a, initial_cluster, existing);
        char **vb = etcd_argv(&b, initial_cluster, existing);
        assert_argv_same(va, vb);
        strv_free(va);
        strv_free(vb);

        /* what is not on etcd's command line agrees too */
        ck_assert_uint_eq(strv_length(a.seeds), strv_length(b.seeds));
        for (size_t i = 0; a.seeds && a.seeds[i]; i++)
                ck_assert_str_eq(a.seeds[i], b.seeds[i]);
        ck_assert_int_eq(a.ideal, b.ideal);
        ck_assert_int_eq(a.no_server, b.no_server);
        ck_assert_uint_eq(a.nominate_timeout, b.nominate_timeout);
        ck_assert_uint_eq(a.dead_grace, b.dead_grace);
        ck_assert_uint_eq(a.stop_timeout, b.stop_timeout);
        sup_config_free(&a);
        sup_config_free(&b);
}

START_TEST(test_file_equals_flags_join_tls) {
        static const char *const flags[] = {
            "--hostname=node-b",
            "--seeds=http://192.168.7.1:2379 http://192.168.7.3:2379",
            "--client-urls=https://0.0.0.0:2379,https://127.0.0.1:2379",
            "--peer-urls=https://0.0.0.0:2380",
            "--advertise-client-urls=https://192.168.7.2:2379",
            "--advertise-server-urls=https://192.168.7.2:2380",
            "--ideal-cluster-size=3",
            "--prefix=/srv/node-b",
            "--etcd-binary=/usr/local/bin/etcd",
            "--nominate-timeout=12.5",
            "--dead-member-grace=90",
            "--stop-timeout=5",
            "--cert-file=/etc/mgmt/c.crt",
            "--key-file=/etc/mgmt/c.key",
            "--trusted-ca-file=/etc/mgmt/ca.crt",
            "--client-cert-auth",
            "--peer-cert-file=/etc/mgmt/p.crt",
            "--peer-key-file=/etc/mgmt/p.key",
            "--peer-trusted-ca-file=/etc/mgmt/pca.crt",
            "--peer-client-cert-auth",
            "--etcd-arg=--heartbeat-interval=500",
            "--etcd-arg=--election-timeout=5000",
            NULL,
        };
        static const char yaml[] = "# the same settings as the flags\n"
                                   "hostname: node-b\n"
                                   "seeds:\n"
                                   "  - http://192.168.7.1:2379\n"
                                   "  - http://192.168.7.3:2379\n"
                                   "client-urls: [https://0.0.0.0:2379, https://127.0.0.1:2379]\n"
                                   "server-urls: https://0.0.0.0:2380\n"
                                   "advertise-client-urls: https://192.168.7.2:2379\n"
                                   "advertise-server-urls: \"https://192.168.7.2:2380\"\n"
                                   "ideal-cluster-size: 3\n"
                                   "prefix: /srv/node-b\n"
                                   "etcd-binary: /usr/local/bin/etcd\n"
                                   "nominate-timeout: 12.5\n"
                                   "dead-member-grace: 90\n"
                                   "stop-timeout: 5\n"
                                   "cert-file: /etc/mgmt/c.crt\n"
                                   "key-file: /etc/mgmt/c.key\n"
                                   "trusted-ca-file: /etc/mgmt/ca.crt\n"
                                   "client-cert-auth: true\n"
                                   "peer-cert-file: /etc/mgmt/p.crt\n"
                                   "peer-key-file: /etc/mgmt/p.key\n"
                                   "peer-trusted-ca-file: /etc/mgmt/pca.crt\n"
                                   "peer-client-cert-auth: yes\n"
                                   "etcd-arg:\n"
                                   "  - \"--heartbeat-interval=500\"\n"
                                   "  - --election-timeout=5000\n";
        check_same(flags, yaml, "node-a=https://192.168.7.1:2380,node-b=https://192.168.7.2:2380", true);
        check_same(flags, yaml, NULL, false);
}
END_TEST

START_TEST(test_file_equals_flags_bootstrap) {
        static const char *const flags[] = {
            "--hostname",
            "solo",
            "--client-urls",
            "http://127.0.0.1:32379",
            "--server-urls",
            "http://127.0.0.1:32380",
            "--prefix",
            "/tmp/solo",
            "--etcd-arg",
            "--quota-backend-bytes=1048576",
            NULL,
        };
        static const char yaml[] = "hostname: solo\n"
                                   "client-urls: http://127.0.0.1:32379\n"
                                   "peer-urls: http://127.0.0.1:32380\n"
                                   "prefix: /tmp/solo\n"
                                   "etcd-arg: --quota-backend-bytes=1048576\n";
        check_same(flags, yaml, NULL, false);
}
END_TEST

/* ---------- refused combinations ---------- */

static void check_refused(const char *const *args, const char *const *want_in_err) {
        struct sup_config sc;
        char err[512];
        int r = sup_from_args(&sc, args, err, sizeof err);
        ck_assert_msg(r == -EINVAL, "accepted (r=%d), want -EINVAL", r);
        for (size_t i = 0; want_in_err[i]; i++)
                ck_assert_msg(strstr(err, want_in_err[i]), "message '%s' lacks '%s'", err, want_in_err[i]);
        sup_config_free(&sc);
}

START_TEST(test_refused_cert_without_key) {
        static const char *const a1[] = {"--hostname=h1", "--client-urls=https://127.0.0.1:2379",
                                         "--cert-file=/c.crt", "--prefix=/p", NULL};
        static const char *const w1[] = {"--cert-file", "--key-file", "together", NULL};
        check_refused(a1, w1);

        static const char *const a2[] = {"--hostname=h1", "--client-urls=https://127.0.0.1:2379",
                                         "--key-file=/c.key", "--prefix=/p", NULL};
        check_refused(a2, w1);

        static const char *const a3[] = {"--hostname=h1", "--server-urls=https://127.0.0.1:2380",
                                         "--peer-cert-file=/p.crt", "--prefix=/p", NULL};
        static const char *const w3[] = {"--peer-cert-file", "--peer-key-file", "together", NULL};
        check_refused(a3, w3);
}
END_TEST

START_TEST(test_refused_https_without_cert) {
        static const char *const a1[] = {"--hostname=h1", "--client-urls=https://127.0.0.1:2379",
                                         "--prefix=/p", NULL};
        static const char *const w1[] = {"--client-urls", "https://", "--cert-file", NULL};
        check_refused(a1, w1);

        /* one https URL among http ones is enough */
        static const char *const a2[] = {"--hostname=h1",
                                         "--client-urls=http://127.0.0.1:2379,https://127.0.0.1:2389",
                                         "--prefix=/p", NULL};
        check_refused(a2, w1);

        static const char *const a3[] = {"--hostname=h1", "--server-urls=https://127.0.0.1:2380",
                                         "--prefix=/p", NULL};
        static const char *const w3[] = {"--server-urls", "https://", "--peer-cert-file", NULL};
        check_refused(a3, w3);
}
END_TEST

START_TEST(test_refused_cert_with_http) {
        static const char *const a1[] = {"--hostname=h1", "--cert-file=/c.crt", "--key-file=/c.key",
                                         "--prefix=/p", NULL};
        static const char *const w1[] = {"--cert-file", "http://", "https://", NULL};
        check_refused(a1, w1);

        static const char *const a2[] = {"--hostname=h1", "--peer-cert-file=/p.crt",
                                         "--peer-key-file=/p.key", "--prefix=/p", NULL};
        static const char *const w2[] = {"--peer-cert-file", "--server-urls", "http://", NULL};
        check_refused(a2, w2);
}
END_TEST

START_TEST(test_refused_remote_seeds_loopback_advertise) {
        /* loopback listen URLs are advertised as they are: remote peers could not reach us */
        static const char *const a1[] = {"--hostname=h2", "--seeds=http://10.0.0.1:2379", "--prefix=/p",
                                         NULL};
        static const char *const w1[] = {"seeds are remote", "loopback", "--advertise-client-urls",
                                         "--advertise-server-urls", NULL};
        check_refused(a1, w1);

        static const char *const a2[] = {"--hostname=h2",
                                         "--seeds=http://10.0.0.1:2379",
                                         "--advertise-client-urls=http://10.0.0.2:2379",
                                         "--advertise-server-urls=http://localhost:2380",
                                         "--prefix=/p",
                                         NULL};
        check_refused(a2, w1);

        static const char *const a3[] = {"--hostname=h2",
                                         "--seeds=http://10.0.0.1:2379",
                                         "--advertise-client-urls=http://127.0.0.1:2379",
                                         "--advertise-server-urls=http://10.0.0.2:2380",
                                         "--prefix=/p",
                                         NULL};
        check_refused(a3, w1);

        /* loopback seeds with loopback URLs are fine (a local test cluster) */
        struct sup_config sc;
        static const char *const ok[] = {"--hostname=h2",
                                         "--seeds=http://127.0.0.1:2379",
                                         "--client-urls=http://127.0.0.1:3379",
                                         "--server-urls=http://127.0.0.1:3380",
                                         "--prefix=/p",
                                         NULL};
        sup_ok(&sc, ok);
        sup_config_free(&sc);
}
END_TEST

START_TEST(test_refused_wildcard_advertise) {
        static const char *const a1[] = {"--hostname=h1", "--advertise-client-urls=http://0.0.0.0:2379",
                                         "--prefix=/p", NULL};
        static const char *const w1[] = {"wildcard", "http://0.0.0.0:2379", NULL};
        check_refused(a1, w1);
}
END_TEST

/* ---------- sup_check_ports ---------- */

/* A loopback TCP socket on a kernel-chosen port; listening if asked. */
static int loopback_socket(bool do_listen, int *ret_port) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        if (do_listen)
                ck_assert_int_eq(listen(fd, 1), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

START_TEST(test_check_ports) {
        struct sup_config sc;
        char err[512] = "", curl[64], cflag[96], sflag[96];
        int free_port, busy_port;

        close(loopback_socket(false, &free_port)); /* a port nobody uses now */
        int fd = loopback_socket(true, &busy_port);
        snprintf(curl, sizeof curl, "http://127.0.0.1:%d", free_port);
        snprintf(cflag, sizeof cflag, "--client-urls=%s", curl);

        /* free ports: fine */
        snprintf(sflag, sizeof sflag, "--server-urls=http://localhost:%d", free_port);
        const char *const fine[] = {"--hostname=h1", cflag, sflag, "--prefix=/p", NULL};
        sup_ok(&sc, fine);
        ck_assert_msg(sup_check_ports(&sc, err, sizeof err) == 0, "%s", err);
        sup_config_free(&sc);

        /* the same URL for clients and peers */
        snprintf(sflag, sizeof sflag, "--server-urls=%s", curl);
        const char *const same[] = {"--hostname=h1", cflag, sflag, "--prefix=/p", NULL};
        sup_ok(&sc, same);
        ck_assert_int_eq(sup_check_ports(&sc, err, sizeof err), -EADDRINUSE);
        ck_assert_msg(strstr(err, "--server-urls and --client-urls both use") && strstr(err, curl), "%s",
                      err);
        sup_config_free(&sc);

        /* a port another process listens on */
        char surl[64];
        snprintf(surl, sizeof surl, "http://127.0.0.1:%d", busy_port);
        snprintf(sflag, sizeof sflag, "--server-urls=%s", surl);
        const char *const busy[] = {"--hostname=h1", cflag, sflag, "--prefix=/p", NULL};
        err[0] = 0;
        sup_ok(&sc, busy);
        ck_assert_int_eq(sup_check_ports(&sc, err, sizeof err), -EADDRINUSE);
        ck_assert_msg(strstr(err, "already in use") && strstr(err, "--server-urls") && strstr(err, surl),
                      "%s", err);
        sup_config_free(&sc);
        close(fd);
}
END_TEST

static Suite *etcdargs_suite(void) {
        Suite *s = suite_create("etcdargs");
        TCase *tc = tcase_create("argv");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_election_timeout);
        tcase_add_test(tc, test_bootstrap);
        tcase_add_test(tc, test_bootstrap_several_peer_urls);
        tcase_add_test(tc, test_join);
        tcase_add_test(tc, test_tls);
        tcase_add_test(tc, test_no_tls_flags_by_default);
        tcase_add_test(tc, test_etcd_arg_passthrough);
        tcase_add_test(tc, test_initial_cluster_from);
        tcase_add_test(tc, test_initial_cluster_from_restart);
        suite_add_tcase(s, tc);

        tc = tcase_create("config file");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_file_equals_flags_join_tls);
        tcase_add_test(tc, test_file_equals_flags_bootstrap);
        suite_add_tcase(s, tc);

        tc = tcase_create("refused");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_refused_cert_without_key);
        tcase_add_test(tc, test_refused_https_without_cert);
        tcase_add_test(tc, test_refused_cert_with_http);
        tcase_add_test(tc, test_refused_remote_seeds_loopback_advertise);
        tcase_add_test(tc, test_refused_wildcard_advertise);
        tcase_add_test(tc, test_check_ports);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(etcdargs_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failures = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failures ? 1 : 0;
}
