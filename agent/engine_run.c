/* engine_run.c: carrying out one check (and, only if needed, apply) of a
 * resource, per kind: a file in process, an exec or apt-get as a child, a
 * unit over sd-bus, a print; and taking in the result when a child or a
 * bus job ends. noop checks only and counts what would change. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "agent.h"
#include "engine_internal.h"
#include "log.h"
#include "macro.h"

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
                if (e->retry)
                        rs_watch_unit(e, rs, res->name);
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
void engine_run_one(struct engine *e, size_t i) {
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
