/* agent.h: mgmt-agent's private header, a map of the program.
 *
 *   main.c      flags, modes (--file --once, --seeds, --seeds --file), signals
 *   agent.c     glue: engine state -> sd_notify, status, exit
 *   engine.c    resource engine: ordering, passes, retries, notify, state report
 *   engine_run.c    one check-then-apply per kind, and its result
 *   engine_watch.c  drift and events: inotify, unit changes, watchcmd, poll
 *   engine_rstate.c one resource's transitions: OK (notify), FAILED (retry)
 *               (the four share engine_internal.h)
 *   res_file.c  kind "file": check and apply (atomic write, mode, owner, group)
 *   res_exec.c  kind "exec": child processes watched by sd-event (never block)
 *   res_svc.c   kind "svc": systemd units over sd-bus (check, enable, start, drift)
 *   res_pkg.c   kind "pkg": Debian packages (dpkg status, apt-get, serialized)
 *   deploys.c   follow /_mgmt/deploy/ with a watch, validate, hand graphs over
 *   exchange.c  export "@@" resources, collect every host's exports, compose
 *               the graph to run (deploy + collected)
 *   retry.c     etcd failures: shared backoff, retry timer, watch errors
 *   trust.c     --trusted-keys: only deploys signed by a trusted key run
 *   status.c    lease, /_mgmt/status/<host>, /_mgmt/converged/<host>, endpoints
 *   metrics.c   --metrics-listen: /metrics, /health, /status
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "graph.h"

/* ---- engine.c ---- */

enum engine_state { ENGINE_APPLYING, ENGINE_CONVERGED, ENGINE_FAILED };

struct engine;
typedef void (*engine_state_cb)(struct engine *e, enum engine_state state, void *userdata);

/* retry: failed resources are retried with backoff (false for --once). */
int engine_new(sd_event *event, bool retry, engine_state_cb cb, void *userdata, struct engine **ret);
void engine_free(struct engine *e);
/* Take ownership of g (NULL: an empty graph) and converge to it. Resources
 * equal to one of the previous graph keep their state (nothing re-runs). */
int engine_set_graph(struct engine *e, struct graph *g);
enum engine_state engine_get_state(const struct engine *e);
const char *engine_state_to_string(enum engine_state s);
/* Messages of the resources currently failed (borrowed, NULL-terminated). */
char **engine_errors(struct engine *e);
/* Check only, for every resource (--noop): log what would change. */
void engine_set_noop(struct engine *e, bool noop);
/* noop checks so far that found something to change. */
size_t engine_noop_changes(const struct engine *e);
/* Retry backoff bounds (tests shorten them). */
void engine_set_backoff(struct engine *e, uint64_t min_usec, uint64_t max_usec);

/* Metrics: check-apply runs by kind (eventful: changed something; errorful:
 * failed) and the current resources by kind and state (names below). */
#define ENGINE_RES_STATES 4
unsigned long long engine_checkapply_count(const struct engine *e, enum res_kind k, bool eventful,
                                           bool errorful);
const char *engine_res_state_name(unsigned i);
void engine_count_resources(const struct engine *e, size_t counts[_RES_KIND_MAX][ENGINE_RES_STATES]);

/* ---- res_file.c ---- */

/* Check then apply one file resource. Returns 1 if something was changed,
 * 0 if it already matched, -errno on failure with a message in err. With
 * noop nothing changes: 1 means something would, and each difference is
 * logged. */
int res_file_apply(const struct res_file *f, bool noop, char *err, size_t errlen);

/* ---- res_exec.c ---- */

struct exec_job;
/* status: exit code (>= 0), or -errno (spawn failed, -ETIME on timeout,
 * -EINTR killed by a signal). ran_cmd: cmd itself ran (ifcmd said yes). */
typedef void (*exec_done_cb)(struct exec_job *j, int status, bool ran_cmd, void *userdata);
/* Run ifcmd (if any, with ifshell) then cmd as child processes; output goes
 * to the log, tagged with name. force: skip ifcmd. noop: run only ifcmd
 * (-EINVAL without one) and call back with ran_cmd meaning "would run". */
int exec_job_start(sd_event *event, const char *name, const struct res_exec *x, bool force, bool noop,
                   exec_done_cb cb, void *userdata, struct exec_job **ret);
typedef void (*exec_line_cb)(struct exec_job *j, void *userdata);
/* Run a long-lived watchcmd: line_cb for every line it prints, cb when it
 * ends (status as above, ran_cmd false). */
int exec_watch_start(sd_event *event, const char *name, const char *cmd, const char *shell,
                     exec_line_cb line_cb, exec_done_cb cb, void *userdata, struct exec_job **ret);
/* Kill the running child (SIGKILL) and free; the callback is not called. */
void exec_job_cancel(struct exec_job *j);

/* ---- res_svc.c ---- */

#include <systemd/sd-bus.h>

struct svc_bus; /* the system bus connection, on the agent's loop */
struct svc_job; /* one check (and apply) of a unit */
struct svc_props {
        char active[32], unitfile[32], load[32]; /* ActiveState, UnitFileState, LoadState */
};
struct svc_plan {
        bool enable, disable, reload, start, stop, restart;
        const char *error; /* the wanted state cannot be reached */
};
/* The plan for a unit in state p (pure). refresh: a notify edge fired. */
void svc_decide(const struct svc_props *p, const struct res_svc *want, bool refresh, struct svc_plan *ret);
bool svc_plan_empty(const struct svc_plan *p);
/* Read a Properties.GetAll reply (a{sv}) of org.freedesktop.systemd1.Unit. */
int svc_props_parse(sd_bus_message *m, struct svc_props *ret);
int svc_bus_new(sd_event *event, struct svc_bus **ret); /* connects on first use */
void svc_bus_free(struct svc_bus *sb);
/* r: 0 or -errno with msg; changed: something was (noop: would be) changed. */
typedef void (*svc_done_cb)(struct svc_job *j, int r, bool changed, const char *msg, void *userdata);
/* Check the unit, and unless noop apply the plan, waiting for systemd's job. */
int svc_job_start(struct svc_bus *sb, const char *name, const struct res_svc *want, bool refresh, bool noop,
                  svc_done_cb cb, void *userdata, struct svc_job **ret, char *err, size_t errlen);
/* Stop waiting (no callback); a job already handed to systemd goes on. */
void svc_job_cancel(struct svc_job *j);
/* cb on every PropertiesChanged of the unit (drift). */
int svc_watch(struct svc_bus *sb, const char *name, sd_bus_message_handler_t cb, void *userdata,
              sd_bus_slot **ret);

/* ---- res_pkg.c ---- */

#define DPKG_ADMINDIR "/var/lib/dpkg"
struct pkg_db; /* the packages dpkg's status lists */
int pkg_db_new(struct pkg_db **ret);
void pkg_db_free(struct pkg_db *db);
/* Parse dpkg's status format (Package, Architecture, Version, Status). */
int pkg_db_parse(struct pkg_db *db, const char *text, size_t len);
/* Read path again if it changed since the last read (or invalidate). */
int pkg_db_refresh(struct pkg_db *db, const char *path);
void pkg_db_invalidate(struct pkg_db *db);
/* NAME or NAME:ARCH fully installed? Its version in *ret_version (borrowed). */
bool pkg_db_installed(const struct pkg_db *db, const char *spec, const char **ret_version);
/* The apt-get command to reach want (NULL: nothing to do), and for
 * "newest" the check (exit 0: an upgrade is pending). Pure. */
int pkg_plan(const char *name, enum pkg_state want, bool installed, char **ret_ifcmd, char **ret_cmd);

/* ---- the agent (main.c) and its cluster parts ---- */

struct collected {
        char *key; /* /_mgmt/exported/<host>/resources/<kind>/<name> */
        char *host;
        struct resource res;
};

struct agent {
        sd_event *event;
        char *hostname;
        struct engine *engine;
        bool once;
        bool noop;                  /* --noop: check only */
        uint64_t converged_timeout; /* 0: never exit on convergence */
        sd_event_source *converged_timer;
        bool ready_sent;
        int exit_code;

        /* the graph the host runs, after ${hostname} substitution */
        struct graph *base; /* NULL: empty graph (no deploy yet) */
        bool base_set;
        char *prefix;       /* --prefix state directory, or NULL */
        int64_t deploy_id;  /* deploy of base; 0 for --file */
        bool deploy_failed; /* deploy_id failed validation: base is an older one */
        char *deploy_error;
        int64_t file_until;           /* --seeds --file: run until a deploy > this; -1: not in that mode */
        struct sign_keyring *trusted; /* --trusted-keys, NULL: every deploy runs unchecked */

        /* cluster (NULL with --once) */
        struct etcd_client *etcd;
        char **seeds;
        struct etcd_watch *deploy_watch;
        int64_t deploy_highest;     /* the highest deploy id that exists, as last seen (0: none) */
        int64_t deploy_highest_rev; /* mod revision of its payload */
        struct etcd_watch *exported_watch;
        struct collected *coll;
        size_t n_coll;
        bool exports_dirty, exports_busy;
        struct etcd_watch *endpoints_watch;

        /* status.c */
        int64_t lease;
        bool lease_busy;
        sd_event_source *keepalive_timer;
        uint64_t lease_ok_usec;  /* last grant or successful keepalive (CLOCK_MONOTONIC) */
        int64_t keepalive_lease; /* the lease the last keepalive was sent for */
        bool keepalive_failing;  /* warned once; quiet until it works again */
        char **endpoints_bad;    /* "key@mod_revision" of values already warned about */
        char *endpoints_set;     /* the endpoint list last set, sorted and joined */
        bool status_dirty, status_busy;
        char *status_sent;
        int64_t status_lease;    /* the lease of the status txn in flight */
        int64_t converged_lease; /* converged/<host> holds converged_value on this lease (0: unknown) */
        bool converged_value, converged_pending;
        bool stopping;

        unsigned etcd_failures; /* failed etcd requests in a row (agent_etcd_trouble) */
};

/* agent.c */
void agent_ready(struct agent *a);
void agent_on_engine_state(struct engine *e, enum engine_state st, void *userdata);
void agent_exit(struct agent *a, int code);

/* retry.c */
/* A request to etcd failed: log it (a warning on the 1st, 2nd, 4th, 8th...
 * failure in a row, else at debug) and return the delay before retrying,
 * growing from 1 s to 10 s, so that an agent without etcd slows down. */
uint64_t agent_etcd_trouble(struct agent *a, const char *what, const char *msg);
/* A request to etcd succeeded: back to quick retries. */
void agent_etcd_fine(struct agent *a);
/* Call cb(s, usec, a) once after usec; cb must sd_event_source_unref(s). */
int agent_later(struct agent *a, uint64_t usec, sd_event_time_handler_t cb);
/* A prefix watch (deploys, exports) failed. After a compaction the events in
 * between are lost: the watch is freed (*w = NULL) and reread(a) reads the
 * prefix again and watches anew from that read; any other error is logged
 * (the client resumes the watch itself). */
void agent_watch_failed(struct agent *a, struct etcd_watch **w, const struct etcd_error *err,
                        const struct etcd_watch_msg *msg, const char *what, void (*reread)(struct agent *a));

/* deploys.c */
int agent_deploys_start(struct agent *a);
/* Install a new base graph (takes g); id 0 for a local file. */
void agent_set_base(struct agent *a, struct graph *g, int64_t id);
/* Decode a deploy payload and parse its graph; err holds the reason on failure. */
int agent_deploy_payload_graph(const char *payload, size_t len, int64_t id, const char *hostname,
                               struct graph **ret, char *err, size_t errlen);

/* exchange.c */
int agent_exchange_start(struct agent *a);
void agent_exchange_publish(struct agent *a); /* replace this host's exports */
/* Build the graph the engine runs: base minus exports plus collected resources.
 * trusted (--trusted-keys set): a collected exec only where base's collect
 * entry for exec says allow_exec. */
int agent_exchange_compose(const struct graph *base, const struct collected *coll, size_t n_coll,
                           bool trusted, struct graph **ret);
void agent_collected_free_all(struct agent *a);
void agent_graph_changed(struct agent *a); /* recompose base + collected, give it to the engine */

/* trust.c */
struct sign_keyring;
/* Load --trusted-keys FILE|DIR (path NULL: trust is off, say so). */
int agent_trust_load(struct agent *a, const char *path);
void agent_trust_free(struct agent *a);
/* With trusted keys: 0 when the payload read from deploy key id is signed by
 * one of them over exactly this id and content; -EPERM with the reason in err
 * otherwise. Without trusted keys: always 0. */
int agent_trust_check(const struct agent *a, int64_t id, const char *payload, size_t len, char *err,
                      size_t errlen);
/* metrics.c: --metrics-listen (/metrics, /health, /status) */
int agent_listener_start(struct agent *a, const char *listen);
void agent_listener_stop(void);

/* status.c */
int agent_status_start(struct agent *a);
void agent_status_update(struct agent *a); /* state changed: (re)write status keys */
void agent_status_stop(struct agent *a);   /* revoke the lease, best effort */
int agent_endpoints_start(struct agent *a);
/* The status JSON text for the current state (for tests and logs). */
char *agent_status_json(struct agent *a);
