/* engine_watch.c: the events that mark a resource DIRTY again. Drift: every
 * managed file's parent directory is watched with an sd-event inotify source; an event on the file marks it
 * DIRTY and a pass restores it. An exec's watchcmd (every output line), its pollint and any resource's meta
 * poll mark it DIRTY too (the daemon only, not --once). Sources carry the engine, not the resource (states
 * move between arrays when the graph changes): each handler finds its resource first. */
#include <bsd/string.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "agent.h"
#include "engine_internal.h"
#include "log.h"
#include "macro.h"

/* The rename of our own write into place: the file there is still the inode
 * we wrote (anything else put there, or a write into it, is drift). */
static bool own_rename(const struct rstate *rs, const struct res_file *f, const struct inotify_event *ev) {
        struct stat st;
        return rs->own_ino && (ev->mask & ~IN_ISDIR) == IN_MOVED_TO && lstat(f->path, &st) == 0 &&
               S_ISREG(st.st_mode) && st.st_ino == rs->own_ino;
}

/* One source per watched directory, shared (one reference each) by the file
 * resources in it: sd-event dispatches one event to one source per loop
 * iteration, so a source per file multiplied the iterations our own writes
 * cost by the number of files in the directory (strace: 58 iterations per
 * deploy of three files in one directory). */
static int on_inotify(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        struct engine *e = userdata;
        bool dirty = false;

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
                        continue;
                else
                        log_info("file '%s': drift detected (event 0x%x), restoring", f->path, ev->mask);
                if (rs->st == RS_OK)
                        rs->st = RS_DIRTY;
                dirty = true;
        }
        if (dirty)
                engine_schedule(e);
        return 0;
}

/* The source another file resource of the graph already has on DIR. */
static sd_event_source *dir_source(const struct engine *e, const char *dir, size_t len) {
        for (size_t i = 0; e->g && i < e->g->n_res; i++) {
                const struct resource *r = &e->g->res[i];
                if (r->kind != RES_FILE || !e->rs[i].inotify)
                        continue;
                const char *slash = strrchr(r->file.path, '/');
                size_t l = slash ? (slash == r->file.path ? 1 : (size_t)(slash - r->file.path)) : 0;
                if (l == len && memcmp(r->file.path, dir, len) == 0)
                        return e->rs[i].inotify;
        }
        return NULL;
}

void rs_watch_file(struct engine *e, struct rstate *rs, const struct res_file *f) {
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
        sd_event_source *shared = dir_source(e, dir, strlen(dir));
        if (shared) {
                rs->inotify = sd_event_source_ref(shared);
                return;
        }
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

void rs_watch_unit(struct engine *e, struct rstate *rs, const char *name) {
        int k;

        if (rs->svc_watch)
                return;
        k = svc_watch(e->svc, name, on_svc_changed, e, &rs->svc_watch);
        if (k < 0)
                log_warn_errno(k, "svc '%s': cannot watch the unit for changes: %m", name);
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
void rs_start_events(struct engine *e, struct rstate *rs) {
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
