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
 * An exec's watchcmd (every output line), its pollint and any resource's
 * meta poll mark it DIRTY too (the daemon only, not --once).
 * noop (the engine's, from --noop, or a resource's meta): check only, log
 * what would change, never apply. meta retry/delay bound the retries of a
 * failed resource (by default: forever with backoff, none with --once).
 */
#include <bsd/string.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "agent.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

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
        if (r->meta.delay_usec)
                delay = r->meta.delay_usec;
        /* meta retry: 0 the default (forever in the daemon, never with --once), -1 forever, N times */
        rs->will_retry =
            r->meta.retry == 0 ? e->retry : r->meta.retry < 0 || rs->fails <= (unsigned)r->meta.retry;
        rs->retry_at = now_usec() + delay;
        if (rs->will_retry)
                log_warnx("%s failed: %s (retry %u in %.1f s)", l, msg, rs->fails, (double)delay / 1e6);
        else if (r->meta.retry > 0)
                log_errorx("%s failed: %s (no retries left of %d)", l, msg, r->meta.retry);
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

/* The rename of our own write into place: the file there is still the inode
 * we wrote (anything else put there, or a write into it, is drift). */
static bool own_rename(const struct rstate *rs, const struct res_file *f, const struct inotify_event *ev) {
        struct stat st;
        return rs->own_ino && (ev->mask & ~IN_ISDIR) == IN_MOVED_TO && lstat(f->path, &st) == 0 &&
               S_ISREG(st.st_mode) && st.st_ino == rs->own_ino;
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
                } else if (ev->len == 0 || !streq(ev->name, base) || own_rename(rs, f, ev))
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
        if (r == -EMFILE || r == -ENFILE || r == -ENOSPC) {
                /* a limit, not a missing directory: drift would go unnoticed, say so (once) */
                static bool warned;
                if (!warned)
                        log_warn_errno(
                            r,
                            "file '%s': cannot watch '%s' for drift: %m; raise "
                            "fs.inotify.max_user_instances / max_user_watches: until then drift is "
                            "repaired only on the next deploy or SIGHUP",
                            f->path, dir);
                warned = true;
        } else if (r < 0)
                log_debug_errno(r, "file '%s': cannot watch '%s' for drift: %m", f->path, dir);
}

static void on_exec_done(struct exec_job *j, int status, bool ran, void *userdata) {
        struct engine *e = userdata;

        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                struct rstate *rs = &e->rs[i];
                if (rs->job != j)
                        continue;
                rs->job = NULL;
                if (e->g->res[i].kind == RES_PKG)
                        e->apt_busy = false;
                if (status == 0) {
                        bool again = rs->refresh || rs->poked; /* refreshed or poked while it ran */
                        rs->done = true;
                        if (rs->job_noop && ran)
                                e->n_would++;
                        rs_ok(e, rs, ran && !rs->job_noop);
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

static int on_svc_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static void on_svc_done(struct svc_job *j, int r, bool changed, const char *msg, void *userdata) {
        struct engine *e = userdata;

        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                struct rstate *rs = &e->rs[i];
                const struct resource *res = &e->g->res[i];
                if (rs->svc_job != j)
                        continue;
                rs->svc_job = NULL;
                if (r < 0) {
                        rs_failed(e, rs, msg ? msg : strerror(-r));
                        break;
                }
                bool noop = rs->job_noop, again = rs->refresh || rs->poked;
                if (noop && changed)
                        e->n_would++;
                rs_ok(e, rs, changed && !noop);
                if (again)
                        rs->st = RS_DIRTY;
                /* drift: the unit's PropertiesChanged signals (the daemon only) */
                if (e->retry && !rs->svc_watch) {
                        int k = svc_watch(e->svc, res->name, on_svc_changed, e, &rs->svc_watch);
                        if (k < 0)
                                log_warn_errno(k, "svc '%s': cannot watch the unit for changes: %m",
                                               res->name);
                }
                break;
        }
        engine_schedule(e);
}

/* dpkg's status changed (a package installed or removed, by us or by
 * hand): check every package resource again. */
static int on_dpkg_status(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        struct engine *e = userdata;

        if (ev->len == 0 || !streq(ev->name, "status"))
                return 0;
        if (e->pkgdb)
                pkg_db_invalidate(e->pkgdb);
        for (size_t i = 0; e->g && i < e->g->n_res; i++)
                if (e->g->res[i].kind == RES_PKG && e->rs[i].st == RS_OK) {
                        log_debug("pkg '%s': dpkg status changed, checking", e->g->res[i].name);
                        e->rs[i].st = RS_DIRTY;
                }
        engine_schedule(e);
        return 0;
}

/* pkg: the check reads dpkg's status in process; apt-get runs only to
 * change something (or, for "newest", to simulate), one at a time. */
static void engine_run_pkg(struct engine *e, size_t i, bool noop) {
        struct rstate *rs = &e->rs[i];
        const struct resource *r = &e->g->res[i];
        _cleanup_free_ char *ifcmd = NULL, *cmd = NULL;
        const char *version = NULL;
        char err[512], l[256];
        int k;

        if (e->retry && !e->dpkg_watch) {
                k = sd_event_add_inotify(e->event, &e->dpkg_watch, DPKG_ADMINDIR,
                                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ONLYDIR,
                                         on_dpkg_status, e);
                if (k < 0)
                        log_warn_errno(k, "cannot watch '%s' for package changes: %m", DPKG_ADMINDIR);
        }
        if (!e->pkgdb && (k = pkg_db_new(&e->pkgdb)) < 0) {
                rs_failed(e, rs, strerror(-k));
                return;
        }
        k = pkg_db_refresh(e->pkgdb, DPKG_ADMINDIR "/status");
        if (k < 0) {
                snprintf(err, sizeof err, "cannot read dpkg's status '%s': %s", DPKG_ADMINDIR "/status",
                         strerror(-k));
                rs_failed(e, rs, err);
                return;
        }
        bool installed = pkg_db_installed(e->pkgdb, r->name, &version);
        if ((k = pkg_plan(r->name, r->pkg.state, installed, &ifcmd, &cmd)) < 0) {
                rs_failed(e, rs, strerror(-k));
                return;
        }
        log_debug("pkg '%s': %s%s%s", r->name, installed ? "installed " : "not installed",
                  version ? version : "", cmd ? "" : " (as wanted)");
        if (!cmd) {
                rs_ok(e, rs, false);
                return;
        }
        if (noop && !ifcmd) {
                log_notice("noop: pkg '%s': would %s it", r->name, installed ? "remove" : "install");
                e->n_would++;
                rs_ok(e, rs, false);
                return;
        }
        if (e->apt_busy)
                return; /* stays DIRTY: run when the apt-get running now ends */
        log_info("%s: %s", res_label(r, l, sizeof l),
                 noop        ? "checking for an upgrade (noop)"
                 : ifcmd     ? "upgrading if apt has a newer version"
                 : installed ? "removing"
                             : "installing");
        struct res_exec x = {.cmd = cmd, .ifcmd = ifcmd};
        k = exec_job_start(e->event, l, &x, false, noop, on_exec_done, e, &rs->job);
        if (k < 0) {
                snprintf(err, sizeof err, "cannot run apt-get: %s", strerror(-k));
                rs_failed(e, rs, err);
                return;
        }
        e->apt_busy = true;
        rs->job_noop = noop;
        rs->st = RS_RUNNING;
}

/* Check (and if needed apply) one resource whose predecessors are all OK. */
static void engine_run_one(struct engine *e, size_t i) {
        struct rstate *rs = &e->rs[i];
        const struct resource *r = &e->g->res[i];
        char err[512] = "";
        char l[256];
        bool refresh = rs->refresh, poked = rs->poked;
        bool noop = e->noop || r->meta.noop;
        int k;

        rs->refresh = rs->poked = false;
        switch (r->kind) {
        case RES_FILE:
                k = res_file_apply(&r->file, noop, err, sizeof err);
                if (k < 0) {
                        rs_failed(e, rs, err);
                        return;
                }
                if (noop && k > 0)
                        e->n_would++;
                struct stat st;
                if (!noop && k > 0 && lstat(r->file.path, &st) == 0 && S_ISREG(st.st_mode))
                        rs->own_ino = st.st_ino; /* on_inotify: its rename is not drift */
                rs_ok(e, rs, !noop && (k > 0 || refresh));
                rs_watch_file(e, rs, &r->file);
                return;
        case RES_PRINT:
                if (!rs->done || refresh) {
                        if (noop) {
                                log_notice("noop: print '%s': would print: %s", r->name,
                                           r->print.msg ? r->print.msg : "");
                                e->n_would++;
                        } else
                                log_notice("print '%s': %s", r->name, r->print.msg ? r->print.msg : "");
                        rs->done = true;
                        rs_ok(e, rs, !noop);
                } else
                        rs_ok(e, rs, false);
                return;
        case RES_NOOP:
                rs_ok(e, rs, refresh && !noop);
                return;
        case RES_EXEC:
                if (rs->done && !refresh && !poked) {
                        rs_ok(e, rs, false);
                        return;
                }
                if (noop && !r->exec.ifcmd) {
                        log_notice("noop: %s: would run cmd '%s'", res_label(r, l, sizeof l), r->exec.cmd);
                        e->n_would++;
                        rs->done = true;
                        rs_ok(e, rs, false);
                        return;
                }
                log_info("%s: %s%s", res_label(r, l, sizeof l), noop ? "checking ifcmd (noop)" : "running",
                         refresh ? " (refresh)"
                         : poked ? " (watch or poll event)"
                                 : "");
                k = exec_job_start(e->event, r->name, &r->exec, false, noop, on_exec_done, e, &rs->job);
                if (k < 0) {
                        snprintf(err, sizeof err, "cannot start: %s", strerror(-k));
                        rs_failed(e, rs, err);
                        return;
                }
                rs->job_noop = noop;
                rs->st = RS_RUNNING;
                return;
        case RES_PKG:
                engine_run_pkg(e, i, noop);
                return;
        case RES_SVC:
                if (!e->svc && (k = svc_bus_new(e->event, &e->svc)) < 0) {
                        rs_failed(e, rs, strerror(-k));
                        return;
                }
                k = svc_job_start(e->svc, r->name, &r->svc, refresh, noop, on_svc_done, e, &rs->svc_job, err,
                                  sizeof err);
                if (k < 0) {
                        rs_failed(e, rs, err[0] ? err : strerror(-k));
                        return;
                }
                rs->job_noop = noop;
                rs->st = RS_RUNNING;
                return;
        default:
                rs_failed(e, rs, "unknown kind");
                return;
        }
}

/* A unit's properties changed (stopped by hand, disabled...): check it. */
static int on_svc_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct engine *e = userdata;
        sd_bus_slot *slot = sd_bus_get_current_slot(sd_bus_message_get_bus(m));
        const char *iface = NULL;

        if (sd_bus_message_read(m, "s", &iface) < 0 || !iface ||
            !streq(iface, "org.freedesktop.systemd1.Unit"))
                return 0;
        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                struct rstate *rs = &e->rs[i];
                if (rs->svc_watch != slot)
                        continue;
                if (rs->st == RS_OK) {
                        log_info("svc '%s': properties changed, checking", e->g->res[i].name);
                        rs->st = RS_DIRTY;
                        engine_schedule(e);
                }
                break;
        }
        return 0;
}

/* The resource of a source or job (sources carry the engine, not the
 * resource: states move between arrays when the graph changes). */
static struct rstate *rs_find(struct engine *e, const void *src) {
        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                struct rstate *rs = &e->rs[i];
                if (rs->poll_timer == src || rs->watch == src || rs->watch_restart == src)
                        return rs;
        }
        return NULL;
}

/* A watch or poll event: check the resource again. */
static void rs_poke(struct engine *e, struct rstate *rs) {
        rs->poked = true;
        if (rs->st == RS_OK)
                rs->st = RS_DIRTY;
        engine_schedule(e);
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        struct engine *e = userdata;
        struct rstate *rs = rs_find(e, s);
        uint64_t every;

        if (!rs)
                return 0;
        const struct resource *r = &e->g->res[rs_index(e, rs)];
        every = r->meta.poll_usec ? r->meta.poll_usec : r->exec.pollint_usec;
        (void)sd_event_source_set_time_relative(s, every);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ON);
        log_debug("%s: poll", r->name);
        rs_poke(e, rs);
        return 0;
}

static void on_watch_line(struct exec_job *j, void *userdata) {
        struct engine *e = userdata;
        struct rstate *rs = rs_find(e, j);

        if (rs)
                rs_poke(e, rs);
}

static void rs_start_watch(struct engine *e, struct rstate *rs);

static int on_watch_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        struct engine *e = userdata;
        struct rstate *rs = rs_find(e, s);

        if (rs) {
                rs->watch_restart = sd_event_source_unref(rs->watch_restart);
                rs_start_watch(e, rs);
        }
        return 0;
}

/* A watchcmd ended (it should not): start it again a second later. */
static void on_watch_done(struct exec_job *j, int status, bool ran, void *userdata) {
        struct engine *e = userdata;
        struct rstate *rs = rs_find(e, j);

        if (!rs)
                return;
        rs->watch = NULL;
        if (sd_event_add_time_relative(e->event, &rs->watch_restart, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                       on_watch_restart, e) < 0)
                log_warnx("exec '%s': cannot restart watchcmd", e->g->res[rs_index(e, rs)].name);
}

static void rs_start_watch(struct engine *e, struct rstate *rs) {
        const struct resource *r = &e->g->res[rs_index(e, rs)];
        int k;

        if (rs->watch || rs->watch_restart)
                return;
        k = exec_watch_start(e->event, r->name, r->exec.watchcmd, r->exec.watchshell, on_watch_line,
                             on_watch_done, e, &rs->watch);
        if (k < 0) {
                log_warnx("exec '%s': cannot start watchcmd: %s; retrying in 1 s", r->name, strerror(-k));
                (void)sd_event_add_time_relative(e->event, &rs->watch_restart, CLOCK_MONOTONIC, USEC_PER_SEC,
                                                 0, on_watch_restart, e);
        }
}

/* The daemon's event sources of a resource: its poll timer and watchcmd. */
static void rs_start_events(struct engine *e, struct rstate *rs) {
        const struct resource *r = &e->g->res[rs_index(e, rs)];
        uint64_t every = r->meta.poll_usec;

        if (!e->retry) /* --once: one check, no events */
                return;
        if (r->kind == RES_EXEC && !every)
                every = r->exec.pollint_usec;
        if (every && !rs->poll_timer &&
            sd_event_add_time_relative(e->event, &rs->poll_timer, CLOCK_MONOTONIC, every, 0, on_poll, e) >=
                0)
                (void)sd_event_source_set_enabled(rs->poll_timer, SD_EVENT_ON);
        if (r->kind == RES_EXEC && r->exec.watchcmd)
                rs_start_watch(e, rs);
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
