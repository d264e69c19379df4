/* etcdargs.c: the supervisor's option table, its resolved configuration, and
 * the etcd command line computed from it (listen/advertise URLs, data dir,
 * initial cluster, TLS, pass-through --etcd-arg). Pure apart from resolving
 * advertise addresses, so a config file and the equivalent flags can be
 * checked to give the same etcd command line. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

const struct opt_def supervisor_opts[_OPT_MAX] = {
    [OPT_HOSTNAME_] = {"hostname", NULL, OPT_HOSTNAME, "NAME", NULL,
                       "this node's name in the cluster (default: the system host name)"},
    [OPT_SEEDS] = {"seeds", NULL, OPT_URLS, "URLS", NULL,
                   "client URLs of existing members to join; none: bootstrap a new cluster"},
    [OPT_CLIENT_URLS] = {"client-urls", NULL, OPT_URLS, "URLS", "http://127.0.0.1:2379",
                         "URLs etcd listens on for clients"},
    [OPT_SERVER_URLS] = {"server-urls", "peer-urls", OPT_URLS, "URLS", "http://127.0.0.1:2380",
                         "URLs etcd listens on for its peers"},
    [OPT_ADV_CLIENT_URLS] = {"advertise-client-urls", NULL, OPT_URLS, "URLS", NULL,
                             "client URLs told to others (default: --client-urls; a wildcard is "
                             "replaced by this host's address)"},
    [OPT_ADV_SERVER_URLS] = {"advertise-server-urls", NULL, OPT_URLS, "URLS", NULL,
                             "peer URLs told to others (default: --server-urls, as above)"},
    [OPT_IDEAL] = {"ideal-cluster-size", NULL, OPT_INT, "N", "5",
                   "voting members wanted; written to /_mgmt/idealClusterSize at bootstrap if absent", 1,
                   1000},
    [OPT_NO_SERVER] = {"no-server", NULL, OPT_BOOL, NULL, "false",
                       "never run etcd here: client only (a member restarted so leaves the cluster)"},
    [OPT_PREFIX] = {"prefix", NULL, OPT_STRING, "DIR", "/var/lib/mgmt",
                    "state directory: etcd data (DIR/etcd), endpoint cache, lease (default "
                    "$STATE_DIRECTORY under systemd)"},
    [OPT_TMP_PREFIX] = {"tmp-prefix", NULL, OPT_BOOL, NULL, "false",
                        "use a new temporary directory as --prefix (for tests and demos; removed on exit)"},
    [OPT_ETCD_BINARY] = {"etcd-binary", NULL, OPT_STRING, "PATH", "etcd", "the etcd program to run"},
    [OPT_NOMINATE_TIMEOUT] =
        {"nominate-timeout", NULL, OPT_SECONDS, "SECONDS", "30",
         "a nominee whose etcd has not started by then is removed and cools down (at least 1)"},
    [OPT_DEAD_GRACE] = {"dead-member-grace", NULL, OPT_SECONDS, "SECONDS", "60",
                        "a member whose host is gone this long is removed (at least 1)"},
    [OPT_STOP_TIMEOUT] = {"stop-timeout", NULL, OPT_SECONDS, "SECONDS", "15",
                          "how long etcd may take to stop after SIGTERM before SIGKILL"},
    [OPT_CERT] = {"cert-file", NULL, OPT_STRING, "FILE", NULL,
                  "client TLS certificate (etcd serves it; we present it to etcd)"},
    [OPT_KEY] = {"key-file", NULL, OPT_STRING, "FILE", NULL, "key of --cert-file"},
    [OPT_CA] = {"trusted-ca-file", NULL, OPT_STRING, "FILE", NULL, "CA for client certificates"},
    [OPT_CLIENT_CERT_AUTH] = {"client-cert-auth", NULL, OPT_BOOL, NULL, "false",
                              "etcd requires client certificates"},
    [OPT_PEER_CERT] = {"peer-cert-file", NULL, OPT_STRING, "FILE", NULL, "peer TLS certificate"},
    [OPT_PEER_KEY] = {"peer-key-file", NULL, OPT_STRING, "FILE", NULL, "key of --peer-cert-file"},
    [OPT_PEER_CA] = {"peer-trusted-ca-file", NULL, OPT_STRING, "FILE", NULL, "CA for peer certificates"},
    [OPT_PEER_CLIENT_CERT_AUTH] = {"peer-client-cert-auth", NULL, OPT_BOOL, NULL, "false",
                                   "etcd requires peer certificates"},
    [OPT_ETCD_ARG] = {"etcd-arg", NULL, OPT_LIST, "ARG", NULL,
                      "pass ARG to etcd as is, e.g. --etcd-arg=--heartbeat-interval=500 (ETCD_* "
                      "variables reach etcd too); flags the supervisor sets itself (etcd's name, data-dir, "
                      "initial-cluster*, listen/advertise URLs...) are refused"},
    [OPT_METRICS_LISTEN] = {"metrics-listen", NULL, OPT_STRING, "ADDR:PORT", NULL,
                            "serve /metrics (Prometheus), /health, /status (JSON) and a status page at / on "
                            "ADDR:PORT ([ADDR]:PORT for IPv6, *:PORT for all); default off"},
    [OPT_SNAPSHOT_INTERVAL] =
        {"snapshot-interval", NULL, OPT_SECONDS, "SECONDS", "1800",
         "a voting member snapshots its etcd this often (jittered by up to 10%); 0: never"},
    [OPT_SNAPSHOT_DIR] = {"snapshot-dir", NULL, OPT_STRING, "DIR", NULL,
                          "where scheduled snapshots go (default PREFIX/snapshots)"},
    [OPT_SNAPSHOT_KEEP] = {"snapshot-keep", NULL, OPT_INT, "N", "48",
                           "keep the newest N scheduled snapshots, delete older ones", 1, 100000},
    [OPT_SNAPSHOT_COMMAND] = {"snapshot-command", NULL, OPT_STRING, "CMD", NULL,
                              "run CMD through /bin/sh after each good snapshot, its path as $1 (e.g. to "
                              "copy it off the host); a failure is logged and counted"},
    [OPT_DEFRAG_THRESHOLD] =
        {"defrag-threshold", NULL, OPT_STRING, "SIZE", "64M",
         "the coordinator defragments a member, one at a time, when this much (and a "
         "quarter) of its db file is free space, e.g. 512K, 64M, 1G; 0: only to clear a "
         "NOSPACE alarm"},
    [OPT_AUTH] = {"auth", NULL, OPT_BOOL, NULL, NULL,
                  "enable etcd users and roles when this supervisor coordinates (idempotent): supervisors "
                  "are root, each agent host-NAME, mgmt-deploy deployer; needs --auth-root-password-file"},
    [OPT_AUTH_ROOT_PASSWORD_FILE] = {"auth-root-password-file", NULL, OPT_STRING, "FILE", NULL,
                                     "etcd root's password (mode 0600, one line); every supervisor of an "
                                     "auth-enabled cluster needs it"},
    [OPT_AUTH_HOST_PASSWORD_FILE] = {"auth-host-password-file", NULL, OPT_STRING, "FILE", NULL,
                                     "create/update etcd user host-NAME (role host-NAME: read /_mgmt/, "
                                     "write only this host's status, converged and exported keys) with "
                                     "this password; the local agent's --etcd-password-file"},
    [OPT_AUTH_DEPLOYER_PASSWORD_FILE] = {"auth-deployer-password-file", NULL, OPT_STRING, "FILE", NULL,
                                         "create/update etcd user deployer (role deployer: read /_mgmt/, "
                                         "write only /_mgmt/deploy/) with this password"},
};

/* Source address this host uses to reach host:port (no packet is sent). */
static int route_source(const char *host, char *out, size_t outlen) {
        struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd, r = -EHOSTUNREACH;

        if (getaddrinfo(host, "9", &hints, &res) != 0 || !res)
                return -EHOSTUNREACH;
        fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
            getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
            getnameinfo((struct sockaddr *)&ss, sl, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) == 0)
                r = 0;
        if (fd >= 0)
                close(fd);
        freeaddrinfo(res);
        return r;
}

/* First non-loopback IPv4 address of an interface that is up. */
static int first_address(char *out, size_t outlen) {
        struct ifaddrs *ifa = NULL;
        int r = -EADDRNOTAVAIL;
        if (getifaddrs(&ifa) < 0)
                return -errno;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                    !(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) &&
                    (ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) >> 24) != 127) {
                        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
                                  (socklen_t)outlen);
                        r = 0;
                        break;
                }
        freeifaddrs(ifa);
        return r;
}

/* Advertised URLs: the listen URLs with wildcards replaced by our address. */
static int derive_advertise(char *const *listen, char *const *seeds, char ***ret, char *err, size_t errlen) {
        _cleanup_strv_ char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; listen[i]; i++) {
                _cleanup_free_ char *scheme = NULL, *host = NULL;
                int port;
                char addr[128], url[300];
                if (url_split(listen[i], &scheme, &host, &port) < 0)
                        return -EINVAL;
                if (!host_is_wildcard(host)) {
                        strv_push(&v, listen[i]);
                        continue;
                }
                int r = -EADDRNOTAVAIL;
                _cleanup_free_ char *seedhost = NULL;
                if (seeds && seeds[0] && url_split(seeds[0], NULL, &seedhost, NULL) >= 0)
                        r = route_source(seedhost, addr, sizeof addr);
                if (r < 0)
                        r = first_address(addr, sizeof addr);
                if (r < 0) {
                        snprintf(
                            err, errlen,
                            "cannot derive an address to advertise for '%s': give --advertise-client-urls "
                            "and --advertise-server-urls",
                            listen[i]);
                        return -EINVAL;
                }
                snprintf(url, sizeof url, strchr(addr, ':') ? "%s://[%s]:%d" : "%s://%s:%d", scheme, addr,
                         port);
                strv_push(&v, url);
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static bool any_remote(char *const *urls) {
        for (size_t i = 0; urls && urls[i]; i++) {
                _cleanup_free_ char *host = NULL;
                if (url_split(urls[i], NULL, &host, NULL) >= 0 && !host_is_loopback(host))
                        return true;
        }
        return false;
}

static bool any_scheme(char *const *urls, const char *scheme) {
        for (size_t i = 0; urls && urls[i]; i++)
                if (startswith(urls[i], scheme) && urls[i][strlen(scheme)] == ':')
                        return true;
        return false;
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* The flag name of an etcd argument: "--data-dir=/x" -> "data-dir" (etcd
 * also takes one dash); NULL for a value. */
static size_t flag_name(const char *arg, const char **ret) {
        if (arg[0] != '-')
                return 0;
        arg += arg[1] == '-' ? 2 : 1;
        *ret = arg;
        return strcspn(arg, "=");
}

/* arg is etcd flag name: what follows the name ("=value" or ""), else NULL. */
static const char *flag_is(const char *arg, const char *name) {
        const char *f;
        size_t n = flag_name(arg, &f);
        return n && n == strlen(name) && strneq(f, name, n) ? f + n : NULL;
}

static bool etcd_arg_given(const struct sup_config *sc, const char *name) {
        for (size_t i = 0; sc->etcd_args && sc->etcd_args[i]; i++)
                if (flag_is(sc->etcd_args[i], name))
                        return true;
        return false;
}

/* The value of etcd flag name as this supervisor passes it (--etcd-arg
 * "--name=V", or "--name" then "V"; the last one wins, as in etcd), else
 * its ETCD_* twin from our environment, else NULL. */
static const char *etcd_arg_value(const struct sup_config *sc, const char *name, const char *env) {
        const char *v = NULL;
        bool given = false;
        for (size_t i = 0; sc->etcd_args && sc->etcd_args[i]; i++) {
                const char *rest = flag_is(sc->etcd_args[i], name), *next = sc->etcd_args[i + 1];
                if (!rest)
                        continue;
                given = true;
                v = *rest == '=' ? rest + 1 : next && next[0] != '-' ? next : NULL;
        }
        return given ? v : getenv(env);
}

unsigned etcd_election_timeout_ms(const struct sup_config *sc) {
        const char *v = etcd_arg_value(sc, "election-timeout", "ETCD_ELECTION_TIMEOUT");
        char *end;
        errno = 0;
        unsigned long ms = v && *v ? strtoul(v, &end, 10) : 0;
        /* etcd refuses to start on a bad value: its default is what we judge by */
        if (!v || !*v || errno || *end || ms == 0 || ms > 50000)
                return 1000;
        return (unsigned)ms;
}

/* Flags the supervisor owns: passing them through would move the data out of
 * its checks or contradict the cluster it computes. */
static const char *const owned_flags[] = {
    "name",
    "data-dir",
    "wal-dir",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "listen-client-urls",
    "listen-peer-urls",
    "advertise-client-urls",
    "initial-advertise-peer-urls",
    "force-new-cluster",
    "discovery",
    "discovery-srv",
    "config-file",
    NULL,
};

static int check_etcd_args(char *const *args, char *err, size_t errlen) {
        for (size_t i = 0; args && args[i]; i++) {
                for (size_t k = 0; owned_flags[k]; k++)
                        if (flag_is(args[i], owned_flags[k])) {
                                snprintf(err, errlen,
                                         "--etcd-arg '%s': the supervisor sets --%s itself (use --prefix, "
                                         "--hostname, --client-urls, --server-urls and the advertise flags)",
                                         args[i], owned_flags[k]);
                                return -EINVAL;
                        }
        }
        return 0;
}

/* A listen or advertise URL is scheme://host:port and nothing more. */
static int check_url_shape(char *const *urls, const char *flag, char *err, size_t errlen) {
        for (size_t i = 0; urls && urls[i]; i++) {
                const char *p = strstr(urls[i], "://");
                const char *colon = p ? strrchr(p + 3, ':') : NULL;
                const char *bracket = p ? strrchr(p + 3, ']') : NULL;
                if (!colon || (bracket && colon < bracket) || !colon[1] ||
                    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
                        snprintf(err, errlen,
                                 "%s '%s': expected scheme://host:port with a numeric port and no path",
                                 flag, urls[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

int sup_config_from(struct sup_config *sc, const struct config *cfg, char *err, size_t errlen) {
        const struct opt_val *v = cfg->v;
        int r;

        *sc = (struct sup_config){0};
        r = node_hostname(v[OPT_HOSTNAME_].s, &sc->hostname, err, errlen);
        if (r < 0)
                return r;
        sc->seeds = v[OPT_SEEDS].list ? strv_copy(v[OPT_SEEDS].list) : NULL;
        sc->client_urls = strv_copy(v[OPT_CLIENT_URLS].list);
        sc->server_urls = strv_copy(v[OPT_SERVER_URLS].list);
        sc->ideal = v[OPT_IDEAL].n;
        sc->no_server = v[OPT_NO_SERVER].b;
        sc->etcd_binary = strdup(v[OPT_ETCD_BINARY].s);
        sc->nominate_timeout = (uint64_t)v[OPT_NOMINATE_TIMEOUT].n;
        sc->dead_grace = (uint64_t)v[OPT_DEAD_GRACE].n;
        sc->stop_timeout = (uint64_t)v[OPT_STOP_TIMEOUT].n;
        sc->cert = dup_or_null(v[OPT_CERT].s);
        sc->key = dup_or_null(v[OPT_KEY].s);
        sc->ca = dup_or_null(v[OPT_CA].s);
        sc->peer_cert = dup_or_null(v[OPT_PEER_CERT].s);
        sc->peer_key = dup_or_null(v[OPT_PEER_KEY].s);
        sc->peer_ca = dup_or_null(v[OPT_PEER_CA].s);
        sc->client_cert_auth = v[OPT_CLIENT_CERT_AUTH].b;
        sc->peer_client_cert_auth = v[OPT_PEER_CLIENT_CERT_AUTH].b;
        sc->etcd_args = strv_copy(v[OPT_ETCD_ARG].list);
        if (!sc->hostname || !sc->client_urls || !sc->server_urls || !sc->etcd_binary || !sc->etcd_args)
                return -ENOMEM;

        if ((r = check_etcd_args(sc->etcd_args, err, errlen)) < 0 ||
            (r = check_url_shape(sc->client_urls, "--client-urls", err, errlen)) < 0 ||
            (r = check_url_shape(sc->server_urls, "--server-urls", err, errlen)) < 0 ||
            (r = check_url_shape(v[OPT_ADV_CLIENT_URLS].list, "--advertise-client-urls", err, errlen)) < 0 ||
            (r = check_url_shape(v[OPT_ADV_SERVER_URLS].list, "--advertise-server-urls", err, errlen)) < 0)
                return r;
        if (sc->nominate_timeout < USEC_PER_SEC || sc->dead_grace < USEC_PER_SEC ||
            sc->stop_timeout < USEC_PER_SEC) {
                snprintf(err, errlen, "--%s must be at least 1 second",
                         sc->nominate_timeout < USEC_PER_SEC ? "nominate-timeout"
                         : sc->dead_grace < USEC_PER_SEC     ? "dead-member-grace"
                                                             : "stop-timeout");
                return -EINVAL;
        }
        if ((sc->cert != NULL) != (sc->key != NULL)) {
                snprintf(err, errlen, "--cert-file and --key-file go together");
                return -EINVAL;
        }
        if ((sc->peer_cert != NULL) != (sc->peer_key != NULL)) {
                snprintf(err, errlen, "--peer-cert-file and --peer-key-file go together");
                return -EINVAL;
        }
        if (sc->cert && any_scheme(sc->client_urls, "http")) {
                snprintf(err, errlen,
                         "--cert-file is given but --client-urls use http://: use https:// URLs");
                return -EINVAL;
        }
        if (!sc->cert && any_scheme(sc->client_urls, "https")) {
                snprintf(err, errlen, "--client-urls use https:// but no --cert-file/--key-file is given");
                return -EINVAL;
        }
        if (sc->peer_cert && any_scheme(sc->server_urls, "http")) {
                snprintf(err, errlen,
                         "--peer-cert-file is given but --server-urls use http://: use https:// URLs");
                return -EINVAL;
        }
        if (!sc->peer_cert && any_scheme(sc->server_urls, "https")) {
                snprintf(err, errlen,
                         "--server-urls use https:// but no --peer-cert-file/--peer-key-file is given");
                return -EINVAL;
        }

        if (v[OPT_ADV_CLIENT_URLS].list)
                sc->adv_client_urls = strv_copy(v[OPT_ADV_CLIENT_URLS].list);
        else if ((r = derive_advertise(sc->client_urls, sc->seeds, &sc->adv_client_urls, err, errlen)) < 0)
                return r;
        if (v[OPT_ADV_SERVER_URLS].list)
                sc->adv_server_urls = strv_copy(v[OPT_ADV_SERVER_URLS].list);
        else if ((r = derive_advertise(sc->server_urls, sc->seeds, &sc->adv_server_urls, err, errlen)) < 0)
                return r;
        char *const *adv[2] = {sc->adv_client_urls, sc->adv_server_urls};
        const char *advflag[2] = {"--advertise-client-urls", "--advertise-server-urls"};
        for (size_t l = 0; l < 2; l++)
                for (size_t i = 0; adv[l][i]; i++) {
                        _cleanup_free_ char *h = NULL;
                        if (url_split(adv[l][i], NULL, &h, NULL) >= 0 && host_is_wildcard(h)) {
                                snprintf(err, errlen,
                                         "cannot advertise wildcard address in '%s' (%s): give this host's "
                                         "address",
                                         adv[l][i], advflag[l]);
                                return -EINVAL;
                        }
                }
        if (any_remote(sc->seeds) &&
            (!any_remote(sc->adv_server_urls) || !any_remote(sc->adv_client_urls))) {
                snprintf(err, errlen,
                         "the seeds are remote but this node would advertise loopback URLs (%s, %s): listen "
                         "on an "
                         "external address or give --advertise-client-urls and --advertise-server-urls",
                         sc->adv_client_urls[0], sc->adv_server_urls[0]);
                return -EINVAL;
        }

        if (maint_parse_size(v[OPT_DEFRAG_THRESHOLD].s, &sc->defrag_threshold) < 0) {
                snprintf(err, errlen,
                         "--defrag-threshold '%s' is not a size (bytes, or with K, M, G: e.g. 64M)",
                         v[OPT_DEFRAG_THRESHOLD].s ? v[OPT_DEFRAG_THRESHOLD].s : "");
                return -EINVAL;
        }
        sc->tmp_prefix = v[OPT_TMP_PREFIX].b;
        if (v[OPT_TMP_PREFIX].b) {
                char tmpl[] = "/tmp/mgmt-XXXXXX";
                if (!mkdtemp(tmpl))
                        return -errno;
                sc->prefix = strdup(tmpl);
        } else if (!v[OPT_PREFIX].set && getenv("STATE_DIRECTORY"))
                sc->prefix = strdup(getenv("STATE_DIRECTORY"));
        else
                sc->prefix = strdup(v[OPT_PREFIX].s);
        if (!sc->prefix || asprintf(&sc->data_dir, "%s/etcd", sc->prefix) < 0)
                return -ENOMEM;
        sc->snapshot_interval = (uint64_t)v[OPT_SNAPSHOT_INTERVAL].n;
        sc->snapshot_keep = v[OPT_SNAPSHOT_KEEP].n;
        sc->snapshot_command = dup_or_null(v[OPT_SNAPSHOT_COMMAND].s);
        sc->auth = v[OPT_AUTH].b;
        sc->auth_root_pw_file = dup_or_null(v[OPT_AUTH_ROOT_PASSWORD_FILE].s);
        sc->auth_host_pw_file = dup_or_null(v[OPT_AUTH_HOST_PASSWORD_FILE].s);
        sc->auth_deployer_pw_file = dup_or_null(v[OPT_AUTH_DEPLOYER_PASSWORD_FILE].s);
        if ((sc->auth || sc->auth_host_pw_file || sc->auth_deployer_pw_file) && !sc->auth_root_pw_file) {
                snprintf(err, errlen,
                         "%s needs --auth-root-password-file (supervisors talk to etcd as root)",
                         sc->auth                ? "--auth"
                         : sc->auth_host_pw_file ? "--auth-host-password-file"
                                                 : "--auth-deployer-password-file");
                return -EINVAL;
        }
        /* bad password files stop us here, before anything is written */
        const char *pwf[] = {sc->auth_root_pw_file, sc->auth_host_pw_file, sc->auth_deployer_pw_file};
        const char *pwflag[] = {"--auth-root-password-file", "--auth-host-password-file",
                                "--auth-deployer-password-file"};
        for (size_t i = 0; i < ELEMENTSOF(pwf); i++) {
                _cleanup_password_ char *pw = NULL;
                char perr[400];
                if (pwf[i] && (r = etcd_password_file_read(pwf[i], &pw, perr, sizeof perr)) < 0) {
                        snprintf(err, errlen, "%s: %s", pwflag[i], perr);
                        return -EINVAL; /* a configuration error, whatever the cause */
                }
        }
        if (sc->auth_root_pw_file && etcd_auth_check_cert(sc->cert, "--cert-file", err, errlen) < 0)
                return -EINVAL;
        if (v[OPT_SNAPSHOT_DIR].s)
                sc->snapshot_dir = strdup(v[OPT_SNAPSHOT_DIR].s);
        else if (asprintf(&sc->snapshot_dir, "%s/snapshots", sc->prefix) < 0)
                sc->snapshot_dir = NULL;
        if (!sc->snapshot_dir)
                return -ENOMEM;
        return 0;
}

/* Can we bind every listen URL? etcd would otherwise crash-loop on "address
 * already in use"; say which port and which flag instead. */
int sup_check_ports(const struct sup_config *sc, char *err, size_t errlen) {
        char *const *lists[2] = {sc->client_urls, sc->server_urls};
        const char *flags[2] = {"--client-urls", "--server-urls"};

        for (size_t l = 0; l < 2; l++)
                for (size_t i = 0; lists[l][i]; i++) {
                        _cleanup_free_ char *host = NULL;
                        int port;
                        char ps[16];
                        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
                        if (url_split(lists[l][i], NULL, &host, &port) < 0)
                                continue;
                        if (l == 1 && strv_contains(sc->client_urls, lists[l][i])) {
                                snprintf(err, errlen, "%s and --client-urls both use '%s'", flags[l],
                                         lists[l][i]);
                                return -EADDRINUSE;
                        }
                        snprintf(ps, sizeof ps, "%d", port);
                        if (getaddrinfo(host_is_wildcard(host) ? NULL : host, ps, &hints, &res) != 0)
                                continue;
                        int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
                        int r = 0;
                        if (fd >= 0) {
                                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                                if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
                                        r = -errno;
                                close(fd);
                        }
                        freeaddrinfo(res);
                        if (r == -EADDRINUSE) {
                                snprintf(err, errlen, "port %d (%s %s) is already in use by another process",
                                         port, flags[l], lists[l][i]);
                                return r;
                        }
                        if (r == -EADDRNOTAVAIL) {
                                snprintf(err, errlen, "address '%s' (%s %s) is not an address of this host",
                                         host, flags[l], lists[l][i]);
                                return r;
                        }
                }
        return 0;
}

void sup_config_free(struct sup_config *sc) {
        free(sc->hostname);
        strv_free(sc->seeds);
        strv_free(sc->client_urls);
        strv_free(sc->server_urls);
        strv_free(sc->adv_client_urls);
        strv_free(sc->adv_server_urls);
        free(sc->prefix);
        free(sc->data_dir);
        free(sc->etcd_binary);
        free(sc->cert);
        free(sc->key);
        free(sc->ca);
        free(sc->peer_cert);
        free(sc->peer_key);
        free(sc->peer_ca);
        strv_free(sc->etcd_args);
        free(sc->cluster_token);
        free(sc->snapshot_dir);
        free(sc->snapshot_command);
        free(sc->auth_root_pw_file);
        free(sc->auth_host_pw_file);
        free(sc->auth_deployer_pw_file);
        *sc = (struct sup_config){0};
}

static void push_flag(char ***v, const char *flag, const char *value) {
        char *s;
        if (asprintf(&s, "%s=%s", flag, value) >= 0)
                strv_consume(v, s);
}

static void push_urls(char ***v, const char *flag, char *const *urls) {
        _cleanup_free_ char *j = strv_join(urls, ",");
        push_flag(v, flag, j ? j : "");
}

char **etcd_argv(const struct sup_config *sc, const char *initial_cluster, bool existing) {
        char **v = NULL;
        _cleanup_free_ char *self = NULL;

        strv_push(&v, sc->etcd_binary);
        push_flag(&v, "--name", sc->hostname);
        push_flag(&v, "--data-dir", sc->data_dir);
        push_urls(&v, "--listen-client-urls", sc->client_urls);
        push_urls(&v, "--advertise-client-urls", sc->adv_client_urls);
        push_urls(&v, "--listen-peer-urls", sc->server_urls);
        push_urls(&v, "--initial-advertise-peer-urls", sc->adv_server_urls);
        if (!initial_cluster) {
                /* every advertised peer URL under our name */
                _cleanup_strv_ char **parts = NULL;
                for (size_t i = 0; sc->adv_server_urls[i]; i++) {
                        char *p;
                        if (asprintf(&p, "%s=%s", sc->hostname, sc->adv_server_urls[i]) >= 0)
                                strv_consume(&parts, p);
                }
                self = strv_join(parts, ",");
                initial_cluster = self;
        }
        push_flag(&v, "--initial-cluster", initial_cluster ? initial_cluster : "");
        push_flag(&v, "--initial-cluster-state", existing ? "existing" : "new");
        if (!existing) {
                _cleanup_free_ char *token = NULL;
                if (sc->cluster_token)
                        push_flag(&v, "--initial-cluster-token", sc->cluster_token);
                else if (asprintf(&token, "mgmt-%s", sc->hostname) >= 0)
                        push_flag(&v, "--initial-cluster-token", token);
        }
        /* the coordinator checks member health itself, precisely and sooner
         * than etcd's 5 s rule; an --etcd-arg can turn the rule back on */
        if (!etcd_arg_given(sc, "strict-reconfig-check"))
                strv_push(&v, "--strict-reconfig-check=false");
        if (!etcd_arg_given(sc, "auto-compaction-retention"))
                strv_push(&v, "--auto-compaction-retention=1");
        if (sc->cert) {
                push_flag(&v, "--cert-file", sc->cert);
                push_flag(&v, "--key-file", sc->key);
        }
        if (sc->ca)
                push_flag(&v, "--trusted-ca-file", sc->ca);
        if (sc->client_cert_auth)
                strv_push(&v, "--client-cert-auth");
        if (sc->peer_cert) {
                push_flag(&v, "--peer-cert-file", sc->peer_cert);
                push_flag(&v, "--peer-key-file", sc->peer_key);
        }
        if (sc->peer_ca)
                push_flag(&v, "--peer-trusted-ca-file", sc->peer_ca);
        if (sc->peer_client_cert_auth)
                strv_push(&v, "--peer-client-cert-auth");
        for (size_t i = 0; sc->etcd_args && sc->etcd_args[i]; i++)
                strv_push(&v, sc->etcd_args[i]);
        return v;
}

char *initial_cluster_from(const struct etcd_members *ms, const char *self, char *const *self_peer_urls) {
        _cleanup_strv_ char **parts = NULL;

        for (size_t i = 0; i < ms->n; i++) {
                const struct etcd_member *m = &ms->m[i];
                const char *name = m->name;
                for (size_t j = 0; m->peer_urls[j]; j++)
                        if (strv_contains(self_peer_urls, m->peer_urls[j]))
                                name = self;
                if (!name || !*name)
                        continue; /* another unstarted member: cannot be named */
                for (size_t j = 0; m->peer_urls[j]; j++) {
                        char *p;
                        if (asprintf(&p, "%s=%s", name, m->peer_urls[j]) >= 0)
                                strv_consume(&parts, p);
                }
        }
        return strv_join(parts, ",");
}
