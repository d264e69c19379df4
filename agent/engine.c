/* engine.c: the resource engine. Runs a graph to convergence and keeps it there.
 *
 * Each resource is a small state machine: DIRTY (needs a check), RUNNING (an
 * exec child is out), OK, FAILED (retried with backoff). engine_pass() is the
 * function that runs the show; its duties:
 *   - walk resources in topological order; a DIRTY resource whose
 *     predecessors are all OK is checked and, only if needed, applied;
 *     a resource behind a FAILED or unfinished one waits (blocked);
 *   - a resource that changed something refreshes its `notify` successors
 *     (an exec runs again);
 *   - derive the engine state (applying / converged / failed) and report
 *     changes to the owner;
 *   - arm the retry timer for failed resources.
 * Carrying out one check is engine_run.c; the events that mark a resource
 * DIRTY again (drift, watchcmd, poll) are engine_watch.c; a resource's own
 * transitions (OK, FAILED) are engine_rstate.c.
 * noop (the engine's, from --noop, or a resource's meta): check only, log
 * what would change, never apply. meta retry/delay bound the retries of a
 * failed resource (by default: forever with backoff, none with --once).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "engine_internal.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

static const char *const state_names[] = {
    [ENGINE_APPLYING] = "applying",
    [ENGINE_CONVERGED] = "converged",
    [ENGINE_FAILED] = "failed",
};

const char *engine_state_to_string(enum engine_state s) {
        return state_names[s];
}

enum engine_state engine_get_state(const struct engine *e) {
        return e->state;
}

char **engine_errors(struct engine *e) {
        return e->errors;
}

void engine_set_noop(struct engine *e, bool noop) {
        e->noop = noop;
}

size_t engine_noop_changes(const struct engine *e) {
        return e->n_would;
}

void engine_set_backoff(struct engine *e, uint64_t min_usec, uint64_t max_usec) {
        e->backoff_min = min_usec;
        e->backoff_max = max_usec;
}

static void rstate_clear(struct rstate *rs) {
        exec_job_cancel(rs->job);
        rs->job = NULL;
        exec_job_cancel(rs->watch);
        rs->watch = NULL;
        svc_job_cancel(rs->svc_job);
        rs->svc_job = NULL;
        rs->svc_watch = sd_bus_slot_unref(rs->svc_watch);
        rs->poll_timer = sd_event_source_disable_unref(rs->poll_timer);
        rs->watch_restart = sd_event_source_disable_unref(rs->watch_restart);
        rs->inotify = sd_event_source_unref(rs->inotify);
        free(rs->error);
        rs->error = NULL;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);

static void engine_update_state(struct engine *e) {
        bool running = false, failed = false, pending = false;
        uint64_t next_retry = 0;
        char **errs = NULL;

        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                struct rstate *rs = &e->rs[i];
                /* a failed resource being retried still counts as failed: no flapping */
                if ((rs->st == RS_RUNNING || rs->st == RS_DIRTY) && rs->fails > 0 && e->retry) {
                        failed = true;
                        if (rs->error)
                                (void)strv_push(&errs, rs->error);
                }
                switch (rs->st) {
                case RS_RUNNING:
                        running = true;
                        break;
                case RS_DIRTY:
                        pending = true;
                        break;
                case RS_FAILED:
                        if (rs->will_retry && !e->retry)
                                running = true; /* --once with meta retry: not over yet */
                        else
                                failed = true;
                        if (rs->error)
                                (void)strv_push(&errs, rs->error);
                        if (rs->will_retry && (!next_retry || rs->retry_at < next_retry))
                                next_retry = rs->retry_at;
                        break;
                case RS_OK:
                        break;
                }
        }
        strv_free(e->errors);
        e->errors = errs;

        /* DIRTY left after a pass is blocked behind a running or failed resource */
        enum engine_state ns = failed && (e->retry || !running) ? ENGINE_FAILED
                               : running || pending             ? ENGINE_APPLYING
                                                                : ENGINE_CONVERGED;

        if (next_retry) {
                if (!e->retry_timer)
                        (void)sd_event_add_time(e->event, &e->retry_timer, CLOCK_MONOTONIC, next_retry, 0,
                                                on_retry, e);
                else {
                        (void)sd_event_source_set_time(e->retry_timer, next_retry);
                        (void)sd_event_source_set_enabled(e->retry_timer, SD_EVENT_ONESHOT);
                }
        }

        if (e->reported && ns == e->state)
                return;
        e->state = ns;
        e->reported = true;
        log_info("engine: %s", engine_state_to_string(ns));
        if (e->cb)
                e->cb(e, ns, e->userdata);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct engine *e = userdata;
        uint64_t now = now_usec();

        for (size_t i = 0; e->g && i < e->g->n_res; i++)
                if (e->rs[i].st == RS_FAILED && e->rs[i].will_retry && e->rs[i].retry_at <= now + 1000)
                        e->rs[i].st = RS_DIRTY;
        engine_schedule(e);
        return 0;
}

static void engine_release_retired(struct engine *e) {
        for (size_t i = 0; i < e->n_retired; i++)
                sd_event_source_unref(e->retired[i]);
        free(e->retired);
        e->retired = NULL;
        e->n_retired = 0;
}

static void engine_pass(struct engine *e) {
        for (size_t n = 0; e->g && n < e->g->n_res; n++) {
                size_t i = e->order[n];
                if (e->rs[i].st != RS_DIRTY)
                        continue;
                bool blocked = false;
                for (size_t k = 0; k < e->g->n_edges && !blocked; k++)
                        if (e->g->edges[k].to == i && e->rs[e->g->edges[k].from].st != RS_OK)
                                blocked = true;
                if (!blocked)
                        engine_run_one(e, i);
        }
        engine_release_retired(e);
        engine_update_state(e);
}

static int on_defer(sd_event_source *s, void *userdata) {
        engine_pass(userdata);
        return 0;
}

int engine_new(sd_event *event, bool retry, engine_state_cb cb, void *userdata, struct engine **ret) {
        struct engine *e = calloc(1, sizeof *e);
        int r;

        if (!e)
                return -ENOMEM;
        *e = (struct engine){
            .event = sd_event_ref(event),
            .retry = retry,
            .cb = cb,
            .userdata = userdata,
            .backoff_min = 1 * USEC_PER_SEC,
            .backoff_max = 30 * USEC_PER_SEC,
            .state = ENGINE_APPLYING,
        };
        r = sd_event_add_defer(event, &e->defer, on_defer, e);
        if (r < 0) {
                engine_free(e);
                return r;
        }
        (void)sd_event_source_set_enabled(e->defer, SD_EVENT_OFF);
        *ret = e;
        return 0;
}

void engine_free(struct engine *e) {
        if (!e)
                return;
        for (size_t i = 0; e->g && i < e->g->n_res; i++)
                rstate_clear(&e->rs[i]);
        engine_release_retired(e);
        free(e->rs);
        free(e->order);
        if (e->g)
                graph_free(e->g);
        strv_free(e->errors);
        svc_bus_free(e->svc);
        pkg_db_free(e->pkgdb);
        sd_event_source_unref(e->dpkg_watch);
        sd_event_source_unref(e->defer);
        sd_event_source_unref(e->retry_timer);
        sd_event_unref(e->event);
        free(e);
}

int engine_set_graph(struct engine *e, struct graph *g) {
        _cleanup_free_ struct rstate *rs = NULL;
        _cleanup_free_ size_t *order = NULL;
        _cleanup_free_ bool *taken = NULL;
        int r;

        if (g) {
                r = graph_toposort(g, &order);
                if (r < 0) {
                        graph_free(g);
                        return log_error_errno(r, "engine: cannot order graph: %m");
                }
                rs = calloc(g->n_res ? g->n_res : 1, sizeof *rs);
                if (!rs) {
                        graph_free(g);
                        return -ENOMEM;
                }
        }
        size_t n_old = e->g ? e->g->n_res : 0;
        taken = calloc(n_old ? n_old : 1, sizeof *taken);
        if (!taken) {
                if (g)
                        graph_free(g);
                return -ENOMEM;
        }

        /* carry the state of unchanged resources over, so nothing re-runs */
        for (size_t i = 0; g && i < g->n_res; i++) {
                const struct resource *nr = &g->res[i];
                rs[i].st = RS_DIRTY;
                for (size_t j = 0; j < n_old; j++) {
                        const struct resource * or = &e->g->res[j];
                        if (taken[j] || or->kind != nr->kind || !streq(or->name, nr->name) ||
                            !resource_equal(or, nr))
                                continue;
                        taken[j] = true;
                        rs[i] = e->rs[j];
                        memset(&e->rs[j], 0, sizeof e->rs[j]);
                        if (rs[i].st == RS_OK &&
                            (nr->kind == RES_FILE || nr->kind == RES_PKG || nr->kind == RES_SVC))
                                rs[i].st = RS_DIRTY; /* cheap re-check; changes nothing if converged */
                        if (rs[i].st == RS_FAILED) {
                                rs[i].st = RS_DIRTY;
                                rs[i].fails = 0;
                        }
                        break;
                }
        }
        /* The inotify sources of the files replaced are not dropped yet:
         * sd-event closes its inotify fd with the last source, and closing
         * an inotify fd waits for an RCU grace period (strace: close() took
         * 2-24 ms on every deploy that changed files); the next pass watches
         * the new files on the same fd, then lets these go. They match no
         * resource in on_inotify meanwhile. */
        if (n_old > 0) {
                sd_event_source **keep = reallocarray(e->retired, e->n_retired + n_old, sizeof *keep);
                if (keep) {
                        e->retired = keep;
                        for (size_t j = 0; j < n_old; j++)
                                if (e->rs[j].inotify)
                                        e->retired[e->n_retired++] = TAKE_PTR(e->rs[j].inotify);
                }
        }
        for (size_t j = 0; j < n_old; j++)
                rstate_clear(&e->rs[j]);
        free(e->rs);
        free(e->order);
        if (e->g)
                graph_free(e->g);
        e->g = g;
        e->rs = TAKE_PTR(rs);
        e->order = TAKE_PTR(order);
        for (size_t i = 0; g && i < g->n_res; i++)
                rs_start_events(e, &e->rs[i]);
        e->reported = false; /* a new graph always gets a state report */
        log_info("engine: new graph with %zu resources", g ? g->n_res : 0);
        engine_schedule(e);
        return 0;
}

/* For the metrics listener: counters and the resources by state. */
unsigned long long engine_checkapply_count(const struct engine *e, enum res_kind k, bool eventful,
                                           bool errorful) {
        return k < _RES_KIND_MAX ? e->checkapply[k][eventful][errorful] : 0;
}

static const char *const rs_names[] = {
    [RS_DIRTY] = "pending", [RS_RUNNING] = "running", [RS_OK] = "ok", [RS_FAILED] = "failed"};

const char *engine_res_state_name(unsigned i) {
        return i < ELEMENTSOF(rs_names) ? rs_names[i] : NULL;
}

void engine_count_resources(const struct engine *e, size_t counts[_RES_KIND_MAX][ENGINE_RES_STATES]) {
        memset(counts, 0, sizeof(size_t) * _RES_KIND_MAX * ENGINE_RES_STATES);
        for (size_t i = 0; e->g && i < e->g->n_res; i++)
                counts[e->g->res[i].kind][e->rs[i].st]++;
}
