/* supervisor.h: the map of mgmt-supervisor.
 *
 * The daemon, in layers (each calls only the ones below it; a lower one
 * reports upward through a callback in struct node):
 *   main.c           the command table (run, status, snapshot, restore,
 *                    recover, help), the daemon's start-up and signals
 *   node.c           this node: how it starts, its etcd child, carrying
 *                    out its role's actions; sd_notify, shutdown, reload
 *   health.c         our own etcd: the status tick, health, leadership,
 *                    damaged data
 *   role.c           the node's role and start mode as pure functions
 *   coordinator_run.c the coordinator round: builds the cluster state,
 *                    carries out the one action decided; publishes the plan
 *   coordinator.c    the pure membership decision: state in, one action out
 *   maintenance.c    the pure maintenance decision (defrag, NOSPACE alarm)
 *   maintenance_run.c reads the members' sizes and alarms, carries it out
 *   plan.c           each decision of both rounds logged once and published
 *                    as /_mgmt/plan
 *   session.c        the lease, our volunteer and endpoints keys
 *   view.c           watches and the refresh: the cluster as this node
 *                    sees it, judged against the cluster it belongs to
 *   identity.c       the prefix lock, cluster.json, data moved aside
 *   child.c          the etcd child process state machine
 *   etcdargs.c       options and the etcd command line computed from them
 *   tls.c            certificate checks against the advertised URLs
 *   snapshot.c       scheduled snapshots of our own etcd while a voting member
 *   metrics.c        --metrics-listen: /metrics, /health, /status and / (status.html)
 * Operator commands:
 *   cmd_status.c     `status`: the cluster as a table or JSON (lib/clusterstatus.c)
 *   cmd_snapshot.c   `snapshot save FILE`, `snapshot list`
 *   cmd_restore.c    `restore --from FILE`
 *   cmd_recover.c    `recover`
 *   cmdopts.c        option parsing and help shared by the commands
 *   offline.c        the prefix lock and a short-lived etcd, for restore and recover
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "etcd.h"
#include "linebuf.h"

/* ---------- configuration ---------- */
enum {
        OPT_HOSTNAME_,
        OPT_SEEDS,
        OPT_CLIENT_URLS,
        OPT_SERVER_URLS,
        OPT_ADV_CLIENT_URLS,
        OPT_ADV_SERVER_URLS,
        OPT_IDEAL,
        OPT_NO_SERVER,
        OPT_PREFIX,
        OPT_TMP_PREFIX,
        OPT_ETCD_BINARY,
        OPT_NOMINATE_TIMEOUT,
        OPT_DEAD_GRACE,
        OPT_STOP_TIMEOUT,
        OPT_CERT,
        OPT_KEY,
        OPT_CA,
        OPT_CLIENT_CERT_AUTH,
        OPT_PEER_CERT,
        OPT_PEER_KEY,
        OPT_PEER_CA,
        OPT_PEER_CLIENT_CERT_AUTH,
        OPT_ETCD_ARG,
        OPT_METRICS_LISTEN,
        OPT_SNAPSHOT_INTERVAL,
        OPT_SNAPSHOT_DIR,
        OPT_SNAPSHOT_KEEP,
        OPT_SNAPSHOT_COMMAND,
        OPT_DEFRAG_THRESHOLD,
        OPT_AUTH,
        OPT_AUTH_ROOT_PASSWORD_FILE,
        OPT_AUTH_HOST_PASSWORD_FILE,
        OPT_AUTH_DEPLOYER_PASSWORD_FILE,
        _OPT_MAX,
};
extern const struct opt_def supervisor_opts[_OPT_MAX];

struct sup_config {
        char *hostname;
        char **seeds;
        char **client_urls, **server_urls;         /* listen */
        char **adv_client_urls, **adv_server_urls; /* advertised */
        long long ideal;
        bool no_server;
        char *prefix;
        char *data_dir;
        char *etcd_binary;
        uint64_t nominate_timeout, dead_grace, stop_timeout;
        char *cert, *key, *ca, *peer_cert, *peer_key, *peer_ca;
        bool client_cert_auth, peer_client_cert_auth;
        char **etcd_args;
        char *cluster_token; /* --initial-cluster-token at bootstrap (random) */
        bool tmp_prefix;
        /* scheduled snapshots (snapshot.c) */
        uint64_t snapshot_interval; /* 0: disabled */
        char *snapshot_dir;
        long long snapshot_keep;
        char *snapshot_command;
        int64_t defrag_threshold; /* free bytes in a member's db that call for a defrag; 0: never */
        /* etcd users and roles (auth.c) */
        bool auth;                   /* enable etcd auth when coordinator */
        char *auth_root_pw_file;     /* we talk to etcd as root */
        char *auth_host_pw_file;     /* user host-<hostname> for our agent */
        char *auth_deployer_pw_file; /* user deployer */
};

/* ---------- operator subcommands (table in main.c) ---------- */
/* Exit codes of subcommands (DESIGN.md "Operator commands"). */
enum { SUB_OK = 0, SUB_ERROR = 1, SUB_USAGE = 2, SUB_UNSAFE = 3 };
/* Options only subcommands take, indexed after the daemon's (main.c). */
enum { SOPT_FROM = _OPT_MAX, SOPT_YES, SOPT_JSON, SOPT_TIMEOUT, _SOPT_MAX };
/* A subcommand's help: its usage text, and the options it shows (indexes into
 * supervisor_opts and SOPT_*, ended by -1). Every command parses the daemon's
 * whole table, so that its --config file and MGMT_* environment apply. */
struct sub_spec {
        const char *name;
        const char *usage;
        const int *opts;
};
extern const char sub_exit_codes[];
/* supervisor_opts followed by the SOPT_* options (_SOPT_MAX entries). */
const struct opt_def *sub_all_opts(void);
/* Parse argv (argv[0] = the command's name): -1 to go on, or an exit code
 * after printing help or a usage error. cfg must be config_free'd. */
int sub_parse(const struct sub_spec *spec, int argc, char **argv, struct config *cfg);
/* cmdopts.c: the prefix and snapshot directory as the daemon resolves them */
char *sub_prefix(const struct config *cfg);
char *sub_snapshot_dir(const struct config *cfg);
struct snap_info;
/* Stream a snapshot (from endpoint, or the client's endpoints if NULL) to
 * path through a temp file, verify it, rename it. Waits (CLIs only). */
int snapshot_fetch(struct etcd_client *c, const char *endpoint, const char *path, const char *etcd_binary,
                   struct snap_info *ret, char *err, size_t errlen);
/* Snapshot file names (*.db, not hidden) in dir, sorted. */
int snapshot_dir_list(const char *dir, char ***ret);
int cmd_run(int argc, char **argv);      /* main.c: the daemon */
int cmd_snapshot(int argc, char **argv); /* cmd_snapshot.c: snapshot save FILE | list */
int cmd_restore(int argc, char **argv);  /* cmd_restore.c */
int cmd_recover(int argc, char **argv);  /* cmd_recover.c */
/* cmd_status.c (another change): with this prototype, its line in main.c's
 * table, { "status", cmd_status, "[--json] [--watch]", "..." }, is all it needs. */
int cmd_status(int argc, char **argv);

/* offline.c: for commands that work on the prefix with the daemon stopped */
/* Take PREFIX/lock (creating the prefix) for the command's life; -EBUSY,
 * after saying which pid holds it, when a supervisor runs. */
int offline_lock(const char *prefix, int *ret_fd);
/* The same check touching nothing: -EBUSY when held, else 0. */
int prefix_lock_probe(const char *prefix);
void time_stamp(char *buf, size_t len); /* UTC, e.g. 20260101T120000Z */
/* Status of one endpoint (3 s at most); ret must be etcd_status_clear'd. */
bool ask_status(struct etcd_client *c, const char *url, struct etcd_status *ret);
/* etcd with argv, its output appended to logpath; stop: TERM, then KILL. */
pid_t spawn_etcd(char **argv, const char *logpath);
void stop_etcd(pid_t pid, uint64_t timeout);
/* Until etcd at url answers (with a leader if want_leader); false on timeout
 * or when pid exits. */
bool wait_etcd(struct etcd_client *c, const char *url, pid_t pid, bool want_leader, uint64_t timeout,
               struct etcd_status *ret);
/* Parse a command's options, resolve them as the daemon does, run it. */
int sub_run_offline(const struct sub_spec *spec, int argc, char **argv,
                    int (*run)(struct config *, struct sup_config *));

/* etcdargs.c */
int sup_config_from(struct sup_config *sc, const struct config *cfg, char *err, size_t errlen);
void sup_config_free(struct sup_config *sc);
/* Every listen URL can be bound (checked before etcd is started). */
int sup_check_ports(const struct sup_config *sc, char *err, size_t errlen);
/* etcd's election timeout in ms as we start it (--etcd-arg, ETCD_ELECTION_TIMEOUT;
 * etcd's default 1000 when not given or not valid). */
unsigned etcd_election_timeout_ms(const struct sup_config *sc);
/* argv for etcd. initial_cluster NULL means a new one-member cluster. */
char **etcd_argv(const struct sup_config *sc, const char *initial_cluster, bool existing);
/* "name=url,name=url" from a member list, with self's name filled in for the
 * member carrying our advertised peer URL. */
char *initial_cluster_from(const struct etcd_members *ms, const char *self, char *const *self_peer_urls);

/* ---------- identity.c: prefix lock, cluster record, data moved aside ---------- */
struct cluster_ident {
        bool known;           /* PREFIX/cluster.json exists: this prefix belongs to a cluster */
        uint64_t id;          /* etcd cluster id; 0 until our etcd told us */
        char token[96];       /* --initial-cluster-token it was bootstrapped with */
        long long generation; /* 1 at bootstrap; a restore makes generation + 1 */
};
/* flock PREFIX/lock for the life of the process; -EBUSY (err names the pid) if held. */
int prefix_lock(const char *prefix, int *ret_fd, char *err, size_t errlen);
/* 1 loaded, 0 absent, < 0 damaged (err says so). */
int ident_load(const char *prefix, struct cluster_ident *ret, char *err, size_t errlen);
int ident_save(const char *prefix, const struct cluster_ident *c);
void ident_new_token(const char *host, char *buf, size_t len);
/* Make PREFIX a 0700 directory (tightening a looser one), check it and the
 * data dir are writable, take the lock, load cluster.json; logs why not. */
int prefix_prepare(const char *prefix, const char *data_dir, int *ret_lock_fd,
                   struct cluster_ident *ret_ident);
/* Rename data_dir to PREFIX/old/<UTC time>-<why> (ret_path); 0 if there was
 * none, 1 if moved. Only "removed" dirs are ever pruned (newest 3 kept). */
int data_move_aside(const char *prefix, const char *data_dir, const char *why, char *ret_path, size_t len);
/* ---------- cmd_status.c: `mgmt-supervisor status` ---------- */
int cmd_status(int argc, char **argv);

/* ---------- metrics.c: --metrics-listen (/metrics, /health, /status, /) ---------- */
struct node;
struct sup_metrics {
        long long voters, learners, ideal;
        bool coordinator;
        bool etcd_up; /* our etcd child runs and answers */
        bool ready;   /* a healthy member, or a client or volunteer with a session (/health) */
        bool member;  /* ready as a member: its own etcd answers, nothing more to ask */
        unsigned etcd_restarts;
        int64_t last_snapshot;      /* unix time of the newest good scheduled snapshot, 0 none */
        unsigned snapshot_failures; /* scheduled snapshots that failed a check, or their command */
        struct etcd_client *client; /* the node's client, for /status */
};
/* metrics.c: the values of the node the listener serves. */
void node_metrics(const struct node *n, struct sup_metrics *ret);
/* Bind and serve on "ADDR:PORT" from the loop; an address in use fails here. */
int sup_listener_start(sd_event *e, struct node *n, const char *listen);
void sup_listener_stop(void);
/* Counters fed by the code that acts. */
void sup_metrics_count_change(const char *action);

/* ---------- tls.c ---------- */
/* Does the certificate in cert_file cover the host of every URL (IP SANs
 * for addresses, DNS SANs or CN for names)? On failure err says what to add
 * to subjectAltName. Returns 0, -EINVAL (not covered) or -errno. */
int tls_check_cert(const char *cert_file, const char *flag, char *const *urls, char *err, size_t errlen);

/* ---------- child.c: the etcd process ---------- */
enum child_state {
        CHILD_DOWN,     /* not running, not wanted */
        CHILD_STARTING, /* spawned, not yet healthy */
        CHILD_UP,       /* answering status */
        CHILD_STOPPING, /* SIGTERM sent, deadline armed */
        CHILD_BACKOFF,  /* crashed, waiting to restart */
};

struct child;
typedef void (*child_exit_cb)(struct child *ch, int status, void *userdata);

struct child {
        sd_event *event;
        enum child_state state;
        pid_t pid;
        char **argv;
        sd_event_source *child_src, *timer, *out_src;
        int out_fd;
        struct linebuf lines; /* etcd's output, cut into lines */
        unsigned crashes;     /* unexpected exits since the last healthy period */
        unsigned total_crashes;
        uint64_t stop_timeout;
        uint64_t started_at;
        bool removed_seen;                     /* etcd said this member was removed */
        char last_error[512], prev_error[512]; /* etcd's last error line in this run and the previous one */
        bool loop_reported;
        child_exit_cb on_exit;
        void (*on_stopped)(struct child *ch, void *userdata);
        /* etcd printed a line saying its state may have changed (ready to
         * serve, a member promoted): only a hint to ask it now */
        void (*on_hint)(struct child *ch, void *userdata);
        void *userdata;
};

const char *child_state_to_string(enum child_state s);
void child_init(struct child *ch, sd_event *e, uint64_t stop_timeout, child_exit_cb on_exit, void *ud);
/* Spawn etcd with argv (copied). */
int child_start(struct child *ch, char *const *argv);
/* SIGTERM, then SIGKILL after stop_timeout; on_stopped called when reaped. */
void child_stop(struct child *ch);
/* After an unexpected exit: restart after a backoff that grows with crashes. */
void child_schedule_restart(struct child *ch);
void child_mark_healthy(struct child *ch);
void child_kill_now(struct child *ch);
/* Does this line of etcd's output hint that its status changed? */
bool etcd_line_hints(const char *line);
/* The level at which to copy one line of etcd's output: LOG_WARNING or
 * LOG_ERR for its warnings and errors (JSON "level", or capnslog "W |",
 * "E |", "C |"), else LOG_DEBUG. */
int etcd_line_level(const char *line);

/* ---------- coordinator.c: pure decision ---------- */
struct cmember {
        uint64_t id;
        char *name; /* host name; "" while a learner has not started */
        char *host; /* host this member belongs to (by name or peer URL), or NULL */
        bool learner;
        bool started;
};

struct chost {
        char *name;
        bool volunteer;           /* /_mgmt/volunteer/<host> present */
        bool nominated;           /* /_mgmt/nominated/<host> present */
        bool endpoints;           /* /_mgmt/endpoints/<host> present (healthy member) */
        uint64_t nominated_since; /* when this coordinator first saw it nominated and not started */
        uint64_t gone_since;      /* when first seen without volunteer and endpoints; 0 if present */
        uint64_t cooldown_until;
        const char *conflict; /* another host advertising one of its URLs, or NULL */
};

struct cstate {
        const char *self; /* coordinator's host */
        uint64_t self_id; /* coordinator's member id */
        long long ideal;  /* < 1: invalid, no resizing */
        struct cmember *members;
        size_t n_members;
        struct chost *hosts; /* sorted by name */
        size_t n_hosts;
        uint64_t now;
        uint64_t nominate_timeout, dead_grace;
};

enum caction_type {
        ACT_NONE,
        ACT_NOMINATE,    /* put nominated/<host> */
        ACT_ADD_LEARNER, /* member add --learner for <host> (already nominated) */
        ACT_PROMOTE,     /* member promote <id> */
        ACT_UNNOMINATE,  /* delete nominated/<host> */
        ACT_REMOVE,      /* member remove <id>, then delete nominated/<host> if any */
        ACT_TRANSFER,    /* move raft leadership to <id> before removing ourselves */
        ACT_RENOMINATE,  /* put nominated/<host> back for a voting member that lost it */
};

struct caction {
        enum caction_type type;
        const char *host;
        uint64_t id;
        bool cooldown; /* put host on cool-down after this */
        char why[256];
};

const char *caction_to_string(enum caction_type t);
/* One step of the round (DESIGN.md "Coordinator round"). Pure: no I/O. */
void coordinator_decide(const struct cstate *s, struct caction *ret);
/* Voting members that are healthy (started, host has endpoints). */
size_t cstate_healthy_voters(const struct cstate *s);

/* ---------- maintenance.c: pure maintenance decision ---------- */
#define MAINT_NOSPACE_MIN_FREE (64 * 1024) /* under NOSPACE: at least this, and 1/20 of the file */
#define MAINT_MAX_MEMBERS 16               /* members read per round; more are not maintained */
struct mmember {
        uint64_t id;
        const char *host;
        bool learner;
        bool answered; /* its status was read in this round */
        int64_t db_size, db_in_use;
        bool nospace;          /* a NOSPACE alarm is raised for it */
        uint64_t defragged_at; /* when this coordinator last defragmented it; 0 never */
};

struct mstate {
        uint64_t self_id;              /* the coordinator: raft leader */
        const struct mmember *members; /* sorted by host */
        size_t n_members;
        int64_t threshold;         /* --defrag-threshold; 0: only for NOSPACE */
        int64_t revision;          /* the current revision */
        int64_t compacted;         /* the revision last compacted to */
        bool reclaimed;            /* a defrag finished since the last alarm cleared */
        uint64_t now, last_disarm; /* CLOCK_MONOTONIC usec */
        uint64_t cooldown;         /* no second defrag of a member within this */
        uint64_t disarm_backoff;   /* an alarm back with nothing freed waits this */
};

enum maction_type {
        MACT_NONE,
        MACT_COMPACT,  /* compact to <revision> */
        MACT_DEFRAG,   /* defragment <id> on its own client URL */
        MACT_TRANSFER, /* move leadership to <id> before the leader is defragmented */
        MACT_DISARM,   /* deactivate every NOSPACE alarm (<id>: the first) */
};

struct maction {
        enum maction_type type;
        const char *host;
        uint64_t id;
        int64_t revision;
        char why[256];
};

const char *maction_to_string(enum maction_type t);
/* Pure: no I/O. ACT_NONE with a reason says why it waits, without one: nothing to do. */
void maintenance_decide(const struct mstate *s, struct maction *ret);
/* "64M", "512K", "1G" or bytes; -EINVAL if not a size. */
int maint_parse_size(const char *s, int64_t *ret);
void maint_format_size(int64_t bytes, char *buf, size_t len);

/* ---------- snapshot.c: scheduled snapshots ---------- */
struct snapsched;
int snapsched_new(sd_event *e, const struct sup_config *sc, struct snapsched **ret);
/* node.c, on each status tick: are we a healthy voting member? client is the
 * node's (borrowed; may change). Snapshots are taken only while this says
 * true; the first true starts the schedule. */
void snapsched_set_member(struct snapsched *s, struct etcd_client *client, bool voting_member_healthy);
/* Call after etcd_client_free of the client given above (no stream left). */
void snapsched_free(struct snapsched *s);
unsigned snapsched_failures(const struct snapsched *s);    /* mgmt_snapshot_failures_total */
int64_t snapsched_last_success(const struct snapsched *s); /* mgmt_last_snapshot_timestamp_seconds */
struct snap_info;
/* The /_mgmt/snapshot/<host> record: {time, revision, size, sha256, file}. */
json_t *snapshot_record(const struct snap_info *info, const char *file, const char *time);

/* ---------- role.c: the node's role as a pure transition function ---------- */
enum node_role {
        ROLE_CLIENT,    /* --no-server: client only, no etcd here */
        ROLE_VOLUNTEER, /* offering to serve, no etcd running */
        ROLE_NOMINEE,   /* nominated and added: etcd running as a learner */
        ROLE_MEMBER,    /* voting member */
        ROLE_LEAVING,   /* to be removed (un-nominated, --no-server): etcd serves until the removal is
                           committed */
        ROLE_DEPARTED,  /* removal confirmed: stopping etcd, then moving its data aside */
};

enum role_event {
        REV_VIEW,      /* a fresh read of the cluster: keys and member list */
        REV_PROMOTED,  /* our etcd reports it is a voter */
        REV_REMOVED,   /* our etcd reported this member removed */
        REV_ETCD_EXIT, /* our etcd exited on its own */
        REV_STOPPED,   /* our etcd stopped as we asked */
};

struct role_facts {
        bool no_server;    /* --no-server */
        bool same_cluster; /* REV_VIEW: read from the cluster our data (or record) belongs to */
        bool superseded;   /* REV_VIEW: ... or from a newer generation of it (restored) */
        bool nominated;    /* REV_VIEW: nominated/<self> exists */
        bool member;       /* REV_VIEW: the member list holds our member */
        bool own_view;     /* REV_VIEW: the member list was read from our own etcd */
        bool learner;      /* our etcd is a learner */
        bool etcd_running; /* our etcd is starting or up */
};

enum role_action {
        RA_NONE,
        RA_START_ETCD,   /* join: start etcd with --initial-cluster-state existing */
        RA_RESTART_ETCD, /* after a crash: restart after a backoff, data kept */
        RA_STOP_ETCD,    /* removal confirmed: stop etcd (REV_STOPPED follows) */
        RA_CLEAR_DATA,   /* move the removed member's data aside, volunteer again */
        RA_REFUSE,       /* the view is from another cluster: act on nothing, say so */
};

struct role_step {
        enum node_role role;
        enum role_action action;
        const char *why; /* static text, or NULL */
};

void role_next(enum node_role r, enum role_event ev, const struct role_facts *f, struct role_step *ret);
const char *role_event_to_string(enum role_event e);
const char *role_action_to_string(enum role_action a);

enum start_mode {
        START_RESTART,   /* data present: restart our member */
        START_BOOTSTRAP, /* a new one-member cluster */
        START_JOIN,      /* volunteer (or client) through seeds or cached endpoints */
        START_REFUSE,    /* nothing to join and not allowed to bootstrap */
};
enum start_mode node_start_mode(bool data, bool seeds, bool ident_known, bool cached, bool no_server);
const char *start_mode_to_string(enum start_mode m);
const char *node_role_to_string(enum node_role r);

struct node;
int node_new(sd_event *e, struct config *cfg, struct sup_config *sc, struct node **ret);
int node_start(struct node *n);
void node_free(struct node *n);
/* Orderly stop (SIGTERM): keep data and membership; calls sd_event_exit when done. */
void node_shutdown(struct node *n, int code);
/* SIGHUP: re-read the config file. */
void node_reload(struct node *n);

/* ---------- the node (node.c, round.c) ---------- */
/* The maintenance round's reads and memory, inside struct node so that no
 * call in flight outlives it (the client is freed first). */
struct maint_slot {
        struct node *n;
        uint64_t id;
        bool answered;
        int64_t db_size, db_in_use, revision;
        uint64_t leader; /* the leader it knows */
};
struct maint {
        struct maint_slot slots[MAINT_MAX_MEMBERS];
        size_t n_slots, pending; /* status reads in flight, alarm read included */
        bool busy, acting;       /* a read or an action in flight; acting: an action */
        bool alarms_ok;
        uint64_t nospace[MAINT_MAX_MEMBERS]; /* members with a NOSPACE alarm */
        size_t n_nospace, disarming;         /* alarms read; deactivations in flight */
        bool disarm_failed;
        char alarm_hosts[160]; /* hosts with a NOSPACE alarm, for the log */
        uint64_t next_read;    /* CLOCK_MONOTONIC */
        int64_t compacted;
        uint64_t last_disarm;
        bool reclaimed;
        struct {
                uint64_t id, at;
        } done[MAINT_MAX_MEMBERS]; /* members defragmented, when */
        /* the defrag in flight */
        uint64_t defrag_id, defrag_start;
        int64_t defrag_before;
        char defrag_host[256], defrag_url[512];
        char why[256]; /* the last decision's reason, for the plan */
        enum maction_type type;
        char host[256];
};

struct track {
        char *host;
        uint64_t nominated_since, gone_since, cooldown_until;
};

struct sup_auth;
struct node {
        sd_event *event;
        struct sup_auth *auth; /* auth.c; NULL without auth flags */
        /* upward reports of the lower layers (view.c, session.c) */
        void (*on_view)(struct node *n);
        void (*on_fatal)(struct node *n, int code);
        /* health.c reports up to node.c: a role event, the seed's keys to
         * write once its etcd answers, a status to show systemd */
        void (*on_role_event)(struct node *n, enum role_event ev, const struct role_facts *f);
        void (*on_bootstrap)(struct node *n);
        void (*on_status)(struct node *n);
        struct config *cfg;
        struct sup_config *sc;
        struct etcd_client *client;
        enum node_role role;
        struct child child;

        /* session */
        int64_t lease, old_lease;
        bool session_busy, volunteered;
        unsigned session_failures;
        sd_event_source *session_timer, *keepalive_timer, *tick, *refresh_defer;
        struct etcd_watch *watches[4];
        int64_t ka_lease;  /* lease of the keepalive in flight, 0 if none */
        uint64_t ka_ok_at; /* last successful keepalive (CLOCK_MONOTONIC) */

        /* what the last refresh read */
        bool have_state;
        char **vol_hosts, **vol_urls; /* parallel: host, its peer URLs */
        char **nom_hosts, **nom_urls;
        char **end_hosts, **end_urls;
        int64_t *vol_crev;           /* create revision of each volunteer key */
        long long ideal, ideal_seen; /* ideal_seen: last valid value read */
        bool ideal_missing, ideal_restore_busy;
        uint64_t view_cid;    /* cluster id in the header of the state read */
        uint64_t view_key_id; /* /_mgmt/cluster as read: id and generation */
        long long view_gen;
        char *cluster_key_text;
        char *bad_endpoints_text;        /* the last endpoints value refused, warned once */
        bool view_ok;                    /* the view is from our cluster (judge_view) */
        bool view_superseded;            /* ... or from a newer generation of it */
        bool view_own, view_own_pending; /* member list read from our own etcd */
        uint64_t refused_cid, own_mismatch_warned;
        char *url_conflict, *url_conflict_what; /* a host using our URLs before us */
        const char *clear_why;                  /* why the data of a departed member is moved aside */
        struct cluster_ident ident;
        int lock_fd;
        char *ideal_text;
        struct etcd_members members;
        bool refresh_busy, refresh_again;

        /* our own member */
        uint64_t my_id;
        bool healthy, learner, quorum_warned;
        uint64_t leaderless_since; /* first status read without a leader; 0 while it has one */
        unsigned unhealthy_ticks;  /* status ticks failed in a row */
        bool endpoints_published, bootstrap_pending, bootstrap_busy;
        int64_t endpoints_rev;                      /* revision of our endpoints put; 0 while in flight */
        bool learner_announced;                     /* our learner's readiness told to the coordinator */
        bool damaged, damaged_busy, damaged_warned; /* etcd cannot start on its data */

        /* coordinator */
        bool coordinator, round_busy;
        struct track *track;
        size_t n_track;
        char *last_decision, *plan_since;

        uint64_t last_beat; /* the last one-second tick */
        bool ready_sent, shutting_down;
        int exit_code;
        char status[256];
        struct snapsched *snap; /* scheduled snapshots (snapshot.c) */
        struct maint maint;     /* the coordinator's maintenance (maintenance_run.c) */
};

/* auth.c: etcd users and roles. auth_setup reads the password files and
 * makes the client talk as root (0 without auth flags; < 0 logged: exit);
 * auth_session_start (each session) and auth_ensure (each view change, until
 * done) idempotently create our host's user and role (and deployer's), and
 * as coordinator with --auth the root user and then enable auth; auth_free
 * forgets the passwords. */
int auth_setup(struct node *n);
void auth_session_start(struct node *n);
void auth_ensure(struct node *n);
void auth_free(struct node *n);
/* Subcommands: talk as root when --auth-root-password-file is given. */
int auth_client_login(struct etcd_client *c, const struct sup_config *sc);

/* session.c: lease, volunteer key, endpoints key */
int64_t session_lease_ttl(const struct node *n);
void session_lease_file(struct node *n, char *p, size_t len);
void session_start(struct node *n);
void session_volunteer(struct node *n);
void session_drop_lease(struct node *n);
int session_keepalive_cb(sd_event_source *s, uint64_t usec, void *ud);
void session_publish_endpoints(struct node *n);
void session_withdraw_endpoints(struct node *n);
void session_announce_coordinator(struct node *n);

/* view.c: watches, the refresh, the judged view, endpoint list and cache */
void view_watches_start(struct node *n);
void view_refresh(struct node *n);
void view_refresh_soon(struct node *n);
void view_update_endpoints(struct node *n);
char **view_cache_read(struct node *n);
/* Our member in the view: the one with our name, or an unstarted learner
 * with our peer URLs; never a member named after another host. */
const struct etcd_member *view_my_member(const struct node *n);

/* health.c: the status tick, leadership, damaged data */
void health_init(struct node *n);
int health_tick_start(struct node *n, uint64_t now);

/* node.c: acts on each fresh view (view.c calls it through n->on_view) */
void node_after_change(struct node *n);

/* coordinator_run.c: build the cluster state, decide (coordinator.c), carry out */
void coordinator_run(struct node *n);
void coordinator_forget(struct node *n);
void coordinator_restore_ideal(struct node *n);

/* plan.c: a decision logged once and published as /_mgmt/plan */
void plan_publish(struct node *n, const char *action, const char *host, const char *why, bool act,
                  bool quiet);
void plan_report_maint(struct node *n);

/* maintenance_run.c: read the members' db sizes and alarms, decide
 * (maintenance.c), carry out; called by the round when membership rests */
void maintenance_run(struct node *n);
