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
 * Drift: every managed file's parent directory is watched with an sd-event
 * inotify source; an event on the file marks it DIRTY and a pass restores it.
 */
#include <bsd/string.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>

#include "agent.h"
#include "log.h"
#include "macro.h"
#include "util.h"

enum rs_state { RS_DIRTY, RS_RUNNING, RS_OK, RS_FAILED };

struct rstate {
        enum rs_state st;
        bool refresh;   /* a notify edge asked for a refresh */
        bool done;      /* exec/print: ran at least once successfully */
        unsigned fails; /* consecutive failures */
        uint64_t retry_at;
        char *error;
        struct exec_job *job;
        sd_event_source *inotify;
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
        char **errors;
        uint64_t backoff_min, backoff_max;
        bool in_pass;
        unsigned long long checkapply[_RES_KIND_MAX][2][2]; /* [kind][eventful][errorful] */
};

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

void engine_set_backoff(struct engine *e, uint64_t min_usec, uint64_t max_usec) {
        e->backoff_min = min_usec;
        e->backoff_max = max_usec;
}

static void rstate_clear(struct rstate *rs) {
        exec_job_cancel(rs->job);
        rs->job = NULL;
        rs->inotify = sd_event_source_unref(rs->inotify);
        free(rs->error);
        rs->error = NULL;
}

static void engine_schedule(struct engine *e) {
        if (e->defer)
                (void)sd_event_source_set_enabled(e->defer, SD_EVENT_ONESHOT);
}

static size_t rs_index(struct engine *e, struct rstate *rs) {
        return (size_t)(rs - e->rs);
}

static const char *res_label(const struct resource *r, char *buf, size_t len) {
        snprintf(buf, len, "%s[%s]", res_kind_to_string(r->kind), r->name);
        return buf;
}

/* A resource changed something: refresh its notify successors. */
static void engine_notify(struct engine *e, size_t i) {
        for (size_t k = 0; k < e->g->n_edges; k++) {
                const struct edge *ed = &e->g->edges[k];
                if (ed->from != i || !ed->notify)
                        continue;
                struct rstate *t = &e->rs[ed->to];
                char l1[256], l2[256];
                log_info("%s changed: refreshing %s", res_label(&e->g->res[i], l1, sizeof l1),
                         res_label(&e->g->res[ed->to], l2, sizeof l2));
                t->refresh = true;
                if (t->st != RS_RUNNING)
                        t->st = RS_DIRTY;
        }
}

static void rs_failed(struct engine *e, struct rstate *rs, const char *msg) {
        char l[256];
        const struct resource *r = &e->g->res[rs_index(e, rs)];

        rs->st = RS_FAILED;
        rs->fails++;
        e->checkapply[r->kind][0][1]++;
        free(rs->error);
        if (asprintf(&rs->error, "%s: %s", res_label(r, l, sizeof l), msg) < 0)
                rs->error = NULL;
        uint64_t delay = e->backoff_min;
        for (unsigned k = 1; k < rs->fails && delay < e->backoff_max; k++)
                delay *= 2;
        if (delay > e->backoff_max)
                delay = e->backoff_max;
        rs->retry_at = now_usec() + delay;
        if (e->retry)
                log_warnx("%s failed: %s (retry %u in %.1f s)", l, msg, rs->fails, (double)delay / 1e6);
        else
                log_errorx("%s failed: %s", l, msg);
}

static void rs_ok(struct engine *e, struct rstate *rs, bool changed) {
        e->checkapply[e->g->res[rs_index(e, rs)].kind][changed][0]++;
        rs->st = RS_OK;
        rs->fails = 0;
        free(rs->error);
        rs->error = NULL;
        if (changed)
                engine_notify(e, rs_index(e, rs));
}

static int on_inotify(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        struct engine *e = userdata;

        for (size_t i = 0; i < (e->g ? e->g->n_res : 0); i++) {
                struct rstate *rs = &e->rs[i];
                if (rs->inotify != s)
                        continue;
                const struct res_file *f = &e->g->res[i].file;
                const char *base = strrchr(f->path, '/');
                base = base ? base + 1 : f->path;
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                        /* the directory itself went away: re-create, watch again after */
                        rs->inotify = sd_event_source_unref(rs->inotify);
                        log_info("file '%s': parent directory changed, restoring", f->path);
                } else if (ev->len == 0 || !streq(ev->name, base))
                        return 0;
                else
                        log_info("file '%s': drift detected (event 0x%x), restoring", f->path, ev->mask);
                if (rs->st == RS_OK)
                        rs->st = RS_DIRTY;
                engine_schedule(e);
                return 0;
        }
        return 0;
}

static void rs_watch_file(struct engine *e, struct rstate *rs, const struct res_file *f) {
        char dir[PATH_MAX];
        const char *slash = strrchr(f->path, '/');
        int r;

        if (rs->inotify || !slash)
                return;
        if (slash == f->path)
                strlcpy(dir, "/", sizeof dir);
        else if ((size_t)(slash - f->path) < sizeof dir) {
                memcpy(dir, f->path, (size_t)(slash - f->path));
                dir[slash - f->path] = 0;
        } else
                return;
        r = sd_event_add_inotify(e->event, &rs->inotify, dir,
                                 IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                                     IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR,
                                 on_inotify, e);
        if (r < 0)
                log_debug_errno(r, "file '%s': cannot watch '%s' for drift: %m", f->path, dir);
}

static void on_exec_done(struct exec_job *j, int status, bool ran, void *userdata) {
        struct engine *e = userdata;

        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                struct rstate *rs = &e->rs[i];
                if (rs->job != j)
                        continue;
                rs->job = NULL;
                if (status == 0) {
                        bool again = rs->refresh; /* refreshed while it ran */
                        rs->done = true;
                        rs_ok(e, rs, ran);
                        if (again)
                                rs->st = RS_DIRTY;
                } else {
                        char msg[128];
                        if (status > 0)
                                snprintf(msg, sizeof msg, "cmd exited %d", status);
                        else if (status == -ETIME)
                                snprintf(msg, sizeof msg, "cmd timed out");
                        else if (status == -EINTR)
                                snprintf(msg, sizeof msg, "cmd killed by a signal");
                        else
                                snprintf(msg, sizeof msg, "cannot run cmd: %s", strerror(-status));
                        rs_failed(e, rs, msg);
                }
                break;
        }
        engine_schedule(e);
}

/* Check (and if needed apply) one resource whose predecessors are all OK. */
static void engine_run_one(struct engine *e, size_t i) {
        struct rstate *rs = &e->rs[i];
        const struct resource *r = &e->g->res[i];
        char err[512] = "";
        char l[256];
        bool refresh = rs->refresh;
        int k;

        rs->refresh = false;
        switch (r->kind) {
        case RES_FILE:
                k = res_file_apply(&r->file, err, sizeof err);
                if (k < 0) {
                        rs_failed(e, rs, err);
                        return;
                }
                rs_ok(e, rs, k > 0 || refresh);
                rs_watch_file(e, rs, &r->file);
                return;
        case RES_PRINT:
                if (!rs->done || refresh) {
                        log_notice("print '%s': %s", r->name, r->print.msg ? r->print.msg : "");
                        rs->done = true;
                        rs_ok(e, rs, true);
                } else
                        rs_ok(e, rs, false);
                return;
        case RES_NOOP:
                rs_ok(e, rs, refresh);
                return;
        case RES_EXEC:
                if (rs->done && !refresh) {
                        rs_ok(e, rs, false);
                        return;
                }
                log_info("%s: running%s", res_label(r, l, sizeof l), refresh ? " (refresh)" : "");
                k = exec_job_start(e->event, r->name, &r->exec, false, on_exec_done, e, &rs->job);
                if (k < 0) {
                        snprintf(err, sizeof err, "cannot start: %s", strerror(-k));
                        rs_failed(e, rs, err);
                        return;
                }
                rs->st = RS_RUNNING;
                return;
        default:
                rs_failed(e, rs, "unknown kind");
                return;
        }
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
                        failed = true;
                        if (rs->error)
                                (void)strv_push(&errs, rs->error);
                        if (!next_retry || rs->retry_at < next_retry)
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

        if (e->retry && failed && next_retry) {
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
                if (e->rs[i].st == RS_FAILED && e->rs[i].retry_at <= now + 1000)
                        e->rs[i].st = RS_DIRTY;
        engine_schedule(e);
        return 0;
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
        e->event = sd_event_ref(event);
        e->retry = retry;
        e->cb = cb;
        e->userdata = userdata;
        e->backoff_min = 1 * USEC_PER_SEC;
        e->backoff_max = 30 * USEC_PER_SEC;
        e->state = ENGINE_APPLYING;
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
        free(e->rs);
        free(e->order);
        if (e->g)
                graph_free(e->g);
        strv_free(e->errors);
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
                        if (rs[i].st == RS_OK && nr->kind == RES_FILE)
                                rs[i].st = RS_DIRTY; /* cheap re-check; changes nothing if converged */
                        if (rs[i].st == RS_FAILED) {
                                rs[i].st = RS_DIRTY;
                                rs[i].fails = 0;
                        }
                        break;
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
        e->reported = false; /* a new graph always gets a state report */
        log_info("engine: new graph with %zu resources", g ? g->n_res : 0);
        engine_schedule(e);
        return 0;
}

/* For the metrics listener: counters and the resources by state. */
unsigned long long engine_checkapply_count(const struct engine *e, enum res_kind k, bool eventful, bool errorful) {
        return k < _RES_KIND_MAX ? e->checkapply[k][eventful][errorful] : 0;
}

static const char *const rs_names[] = { [RS_DIRTY] = "pending", [RS_RUNNING] = "running", [RS_OK] = "ok",
                                        [RS_FAILED] = "failed" };

const char *engine_res_state_name(unsigned i) {
        return i < ELEMENTSOF(rs_names) ? rs_names[i] : NULL;
}

void engine_count_resources(const struct engine *e, size_t counts[_RES_KIND_MAX][ENGINE_RES_STATES]) {
        memset(counts, 0, sizeof(size_t) * _RES_KIND_MAX * ENGINE_RES_STATES);
        for (size_t i = 0; e->g && i < e->g->n_res; i++)
                counts[e->g->res[i].kind][e->rs[i].st]++;
}
