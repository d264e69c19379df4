/* agent.h: mgmt-agent's private header, a map of the program.
 *
 *   main.c      flags, modes (--file --once, --seeds, --seeds --file), signals
 *   agent.c     glue: engine state -> sd_notify, status, exit; graph recomposition
 *   engine.c    resource engine: ordering, check-then-apply, retries, notify, drift
 *   res_file.c  kind "file": check and apply (atomic write, mode, owner, group)
 *   res_exec.c  kind "exec": child processes watched by sd-event (never block)
 *   deploys.c   follow /_mgmt/deploy/ with a watch, validate, hand graphs over
 *   exchange.c  export "@@" resources, collect every host's exports
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
/* Retry backoff bounds (tests shorten them). */
void engine_set_backoff(struct engine *e, uint64_t min_usec, uint64_t max_usec);

/* Metrics: check-apply runs by kind (eventful: changed something; errorful:
 * failed) and the current resources by kind and state (names below). */
#define ENGINE_RES_STATES 4
unsigned long long engine_checkapply_count(const struct engine *e, enum res_kind k, bool eventful, bool errorful);
const char *engine_res_state_name(unsigned i);
void engine_count_resources(const struct engine *e, size_t counts[_RES_KIND_MAX][ENGINE_RES_STATES]);

/* ---- res_file.c ---- */

/* Check then apply one file resource. Returns 1 if something was changed,
 * 0 if it already matched, -errno on failure with a message in err. */
int res_file_apply(const struct res_file *f, char *err, size_t errlen);

/* ---- res_exec.c ---- */

struct exec_job;
/* status: exit code (>= 0), or -errno (spawn failed, -ETIME on timeout,
 * -EINTR killed by a signal). ran_cmd: cmd itself ran (ifcmd said yes). */
typedef void (*exec_done_cb)(struct exec_job *j, int status, bool ran_cmd, void *userdata);
/* Run ifcmd (if any) then cmd as child processes; output goes to the log,
 * tagged with name. force: skip ifcmd. */
int exec_job_start(sd_event *event, const char *name, const struct res_exec *x, bool force, exec_done_cb cb,
                   void *userdata, struct exec_job **ret);
/* Kill the running child (SIGKILL) and free; the callback is not called. */
void exec_job_cancel(struct exec_job *j);

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
        int64_t file_until; /* --seeds --file: run until a deploy > this; -1: not in that mode */

        /* cluster (NULL with --once) */
        struct etcd_client *etcd;
        char **seeds;
        struct etcd_watch *deploy_watch;
        int64_t deploy_highest;
        struct etcd_watch *exported_watch;
        struct collected *coll;
        size_t n_coll;
        bool exports_dirty, exports_busy;
        struct etcd_watch *endpoints_watch;

        /* status.c */
        int64_t lease;
        bool lease_busy;
        sd_event_source *keepalive_timer;
        bool status_dirty, status_busy;
        char *status_sent;
        bool stopping;

        unsigned etcd_failures; /* failed etcd requests in a row (agent_etcd_trouble) */
};

/* agent.c */
/* A request to etcd failed: log it (a warning on the 1st, 2nd, 4th, 8th...
 * failure in a row, else at debug) and return the delay before retrying,
 * growing from 1 s to 10 s, so that an agent without etcd slows down. */
uint64_t agent_etcd_trouble(struct agent *a, const char *what, const char *msg);
/* A request to etcd succeeded: back to quick retries. */
void agent_etcd_fine(struct agent *a);
void agent_ready(struct agent *a);
void agent_on_engine_state(struct engine *e, enum engine_state st, void *userdata);
void agent_graph_changed(struct agent *a); /* recompose base + collected, give it to the engine */
void agent_exit(struct agent *a, int code);
/* Call cb(s, usec, a) once after usec; cb must sd_event_source_unref(s). */
int agent_later(struct agent *a, uint64_t usec, sd_event_time_handler_t cb);

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
/* Build the graph the engine runs: base minus exports plus collected resources. */
int agent_exchange_compose(const struct graph *base, const struct collected *coll, size_t n_coll,
                           struct graph **ret);
void agent_collected_free_all(struct agent *a);

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
