/* engine_internal.h: what the parts of the resource engine (agent/engine*.c)
 * share: a resource's state and the engine itself. The rest of the agent sees
 * struct engine only through agent.h. Not an API.
 *   engine.c        the state machine: passes, state report, retries, new graphs
 *   engine_run.c    carrying out one check (and apply) of each kind, its result
 *   engine_watch.c  events that mark a resource DIRTY: drift, unit changes,
 *                   watchcmd, poll
 *   engine_rstate.c a resource's transitions: OK, FAILED, ask for a pass
 * Each file calls only the ones below it in this list. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent.h"

enum rs_state { RS_DIRTY, RS_RUNNING, RS_OK, RS_FAILED };

struct rstate {
        enum rs_state st;
        bool refresh;    /* a notify edge asked for a refresh */
        bool poked;      /* watchcmd line or poll: check (an exec runs) again */
        bool job_noop;   /* the running job only checks (noop) */
        bool will_retry; /* FAILED: the retry timer will try again */
        sd_event_source *poll_timer;
        struct exec_job *watch;
        sd_event_source *watch_restart;
        struct svc_job *svc_job;
        sd_bus_slot *svc_watch; /* PropertiesChanged of the unit */
        bool done;              /* exec/print: ran at least once successfully */
        unsigned fails;         /* consecutive failures */
        uint64_t retry_at;
        char *error;
        struct exec_job *job;
        sd_event_source *inotify;
        ino_t own_ino; /* file: the inode our last write renamed into place */
};

struct engine {
        sd_event *event;
        bool retry;
        engine_state_cb cb;
        void *userdata;
        struct graph *g;
        struct rstate *rs;
        size_t *order;
        sd_event_source *defer;
        sd_event_source *retry_timer;
        enum engine_state state;
        bool reported;
        bool noop;            /* check only, for every resource */
        struct svc_bus *svc;  /* the system bus, opened for the first svc resource */
        struct pkg_db *pkgdb; /* dpkg's status, cached until it changes */
        bool apt_busy;        /* one apt-get at a time */
        sd_event_source *dpkg_watch;
        size_t n_would; /* noop: checks that found something to change */
        char **errors;
        uint64_t backoff_min, backoff_max;
        bool in_pass;
        /* drift watches of the graph replaced, kept until the next pass has
         * watched the new graph's files: see engine_set_graph */
        sd_event_source **retired;
        size_t n_retired;
        unsigned long long checkapply[_RES_KIND_MAX][2][2]; /* [kind][eventful][errorful] */
};

/* engine_rstate.c */
/* Run a pass soon (from the event loop, never nested). */
void engine_schedule(struct engine *e);
static inline size_t rs_index(struct engine *e, struct rstate *rs) {
        return (size_t)(rs - e->rs);
}
/* "kind[name]" into buf, for messages. */
const char *res_label(const struct resource *r, char *buf, size_t len);
/* The check or apply failed: keep msg, log it (once, here), plan the retry. */
void rs_failed(struct engine *e, struct rstate *rs, const char *msg);
/* The check or apply succeeded; changed: it changed something (notify). */
void rs_ok(struct engine *e, struct rstate *rs, bool changed);

/* engine_run.c */
/* Check (and if needed apply) one resource whose predecessors are all OK. */
void engine_run_one(struct engine *e, size_t i);

/* engine_watch.c */
/* Watch the parent directory of a file resource for drift (once). */
void rs_watch_file(struct engine *e, struct rstate *rs, const struct res_file *f);
/* Watch a unit's PropertiesChanged signals for drift (once). */
void rs_watch_unit(struct engine *e, struct rstate *rs, const char *name);
/* The daemon's event sources of a resource: its poll timer and watchcmd. */
void rs_start_events(struct engine *e, struct rstate *rs);
