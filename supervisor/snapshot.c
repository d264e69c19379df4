/* snapshot.c: scheduled snapshots of our own etcd while this node is a
 * healthy voting member (DESIGN.md "Snapshots and recovery").
 *
 * Duties, one snapshot at a time, every step an event on the node's loop:
 *   1. every --snapshot-interval (minus up to 10% jitter, so members do not
 *      all snapshot at once), if node.c told us within the last few seconds
 *      that we are a healthy voting member, stream our own member's
 *      /v3/maintenance/snapshot into a hidden temp file in --snapshot-dir;
 *   2. fsync it and check the sha256 etcd appends, then let etcd's own tool
 *      (etcdutl / etcdctl snapshot status) open it, as a child process;
 *   3. a snapshot failing any check is deleted and counted, never kept;
 *      a good one is renamed to mgmt-<host>-<UTC time>.db, described in a
 *      .json beside it, and recorded in /_mgmt/snapshot/<host>;
 *   4. keep the newest --snapshot-keep of ours, delete older ones;
 *   5. run --snapshot-command with the path as $1: a failure is logged and
 *      counted, never fatal.
 * node.c only calls snapsched_new, snapsched_set_member and snapsched_free. */
#include <bsd/stdlib.h>
#include <signal.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "etcdsnap.h"
#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

/* node.c reports membership every status tick (1 s); older news is stale */
#define MEMBER_FRESH_USEC (5 * USEC_PER_SEC)

enum snap_state { SNAP_IDLE, SNAP_STREAMING, SNAP_VERIFYING, SNAP_COMMAND };

struct snapsched {
        sd_event *event;
        const struct sup_config *sc;
        struct etcd_client *client; /* the node's, borrowed */
        sd_event_source *timer, *child_src;
        enum snap_state state;
        uint64_t member_seen; /* CLOCK_MONOTONIC of the last "voting member" report */
        struct snap_sink *sink;
        struct snap_info info;
        char *tool;
        char *path; /* the snapshot being made or shipped */
        pid_t pid;
        int out_fd, err_fd;
        uint64_t started;
        unsigned failures, command_failures, taken;
        int64_t last_success; /* realtime seconds of the newest good snapshot */
};

static void arm(struct snapsched *s) {
        uint64_t now, iv = s->sc->snapshot_interval, jitter = iv / 10;

        if (iv == 0)
                return;
        if (jitter > 0)
                iv -= (uint64_t)arc4random_uniform((uint32_t)(jitter > UINT32_MAX ? UINT32_MAX : jitter));
        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(s->timer, now + iv);
        sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* The end of one attempt, good or bad: back to idle, next one armed. */
static void finish(struct snapsched *s) {
        snap_sink_free(s->sink);
        s->sink = NULL;
        free(s->path);
        s->path = NULL;
        s->child_src = sd_event_source_disable_unref(s->child_src);
        s->pid = 0;
        s->state = SNAP_IDLE;
        arm(s);
}

static void fail(struct snapsched *s, const char *why) {
        s->failures++;
        log_errorx("snapshot failed (%u failure%s so far): %s", s->failures, s->failures == 1 ? "" : "s",
                   why);
        finish(s); /* frees the sink: a temp file that failed a check is deleted */
}

/* Ours are mgmt-<host>-<time>.db; keep the newest keep of them. */
static void retention(struct snapsched *s) {
        const char *dir = s->sc->snapshot_dir;
        _cleanup_strv_ char **names = NULL, **ours = NULL;
        _cleanup_free_ char *mine = NULL;

        if (asprintf(&mine, "mgmt-%s-", s->sc->hostname) < 0 || snapshot_dir_list(dir, &names) < 0)
                return;
        for (size_t i = 0; names && names[i]; i++)
                if (startswith(names[i], mine) && !strstr(names[i], "-before-recover")) /* recover's: kept */
                        strv_push(&ours, names[i]);
        size_t n = strv_length(ours);
        for (size_t i = 0; n > (size_t)s->sc->snapshot_keep && i < n - (size_t)s->sc->snapshot_keep; i++) {
                char p[4096], side[4200];
                snprintf(p, sizeof p, "%s/%s", dir, ours[i]);
                snprintf(side, sizeof side, "%s.json", p);
                if (unlink(p) < 0 && errno != ENOENT)
                        log_warn("cannot delete old snapshot '%s'", p);
                else
                        log_info("deleted old snapshot '%s' (--snapshot-keep %lld)", p,
                                 s->sc->snapshot_keep);
                (void)unlink(side);
        }
}

static int command_exited(sd_event_source *src, const siginfo_t *si, void *ud) {
        struct snapsched *s = ud;

        if (si->si_code != CLD_EXITED || si->si_status != 0) {
                s->command_failures++;
                log_errorx("--snapshot-command failed for '%s' (%s %d; %u command failure%s so far)",
                           s->path, si->si_code == CLD_EXITED ? "exit status" : "signal", si->si_status,
                           s->command_failures, s->command_failures == 1 ? "" : "s");
        } else
                log_info("--snapshot-command done for '%s'", s->path);
        finish(s);
        return 0;
}

static void run_command(struct snapsched *s) {
        const char *cmd = s->sc->snapshot_command;
        pid_t pid;

        if (!cmd) {
                finish(s);
                return;
        }
        pid = fork();
        if (pid < 0) {
                s->command_failures++;
                log_error("cannot start --snapshot-command (%u command failures so far)",
                          s->command_failures);
                finish(s);
                return;
        }
        if (pid == 0) {
                sigset_t ss;
                sigemptyset(&ss);
                sigprocmask(SIG_SETMASK, &ss, NULL);
                execl("/bin/sh", "sh", "-c", cmd, "sh", s->path, (char *)NULL);
                _exit(127);
        }
        s->pid = pid;
        s->state = SNAP_COMMAND;
        if (sd_event_add_child(s->event, &s->child_src, pid, WEXITED, command_exited, s) < 0) {
                log_errorx("cannot watch --snapshot-command (pid %d)", (int)pid);
                finish(s);
        }
}

static void record_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        if (err)
                log_warnx("cannot record the snapshot in etcd: %s", err->msg);
}

json_t *snapshot_record(const struct snap_info *info, const char *file, const char *time) {
        return json_pack("{s:s, s:I, s:I, s:s, s:s}", "time", time, "revision", (json_int_t)info->revision,
                         "size", (json_int_t)info->size, "sha256", info->sha256, "file", file);
}

static void keep(struct snapsched *s) {
        _cleanup_free_ char *now = rfc3339_now(), *side = NULL, *text = NULL, *key = NULL, *value = NULL;
        json_t *rec;
        int r;

        r = snap_sink_commit(s->sink);
        if (r < 0) {
                char why[600];
                snprintf(why, sizeof why, "cannot rename it to '%s': %s", s->path, strerror(-r));
                fail(s, why);
                return;
        }
        s->taken++;
        s->last_success = (int64_t)time(NULL);
        log_notice("snapshot '%s': %llu bytes, revision %lld, %lld keys, verified, in %.1f s", s->path,
                   (unsigned long long)s->info.size, (long long)s->info.revision,
                   (long long)s->info.total_keys, (double)(now_usec() - s->started) / 1e6);
        rec = snapshot_record(&s->info, s->path, now ? now : "");
        if (rec) {
                /* the listing's record of a verified snapshot, beside it */
                json_object_set_new(rec, "verified", json_true());
                json_object_set_new(rec, "keys", json_integer(s->info.total_keys));
                text = json_dumps(rec, JSON_COMPACT);
                if (text && asprintf(&side, "%s.json", s->path) >= 0 &&
                    (r = write_file_atomic(side, text, strlen(text), 0600)) < 0)
                        log_warn_errno(r, "cannot write '%s': %m", side);
                json_object_del(rec, "verified");
                json_object_del(rec, "keys");
                value = json_dumps(rec, JSON_COMPACT);
                key = key_snapshot(s->sc->hostname);
                if (key && value && s->client &&
                    (r = etcd_call(s->client, ETCD_PUT, etcd_req_put(key, value, 0), record_done, s)) < 0)
                        log_warn_errno(r, "cannot record the snapshot in etcd: %m");
                json_decref(rec);
        }
        retention(s);
        run_command(s);
}

static int tool_exited(sd_event_source *src, const siginfo_t *si, void *ud) {
        struct snapsched *s = ud;
        char err[600];
        int status = si->si_code == CLD_EXITED ? W_EXITCODE(si->si_status, 0) : W_EXITCODE(0, si->si_status);

        s->child_src = sd_event_source_disable_unref(s->child_src);
        s->pid = 0;
        if (snap_tool_status_collect(status, s->out_fd, s->err_fd, &s->info, err, sizeof err) < 0) {
                fail(s, err);
                return 0;
        }
        keep(s);
        return 0;
}

static void stream_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct snapsched *s = ud;
        char why[1024];

        if (err || snap_sink_error(s->sink)) {
                fail(s, snap_sink_error(s->sink) ? snap_sink_error(s->sink) : err->msg);
                return;
        }
        if (snap_sink_finish(s->sink, &s->info, why, sizeof why) < 0) {
                fail(s, why);
                return;
        }
        int r =
            snap_tool_status_spawn(s->tool, snap_sink_temp_path(s->sink), &s->pid, &s->out_fd, &s->err_fd);
        if (r < 0) {
                snprintf(why, sizeof why, "cannot run '%s': %s", s->tool, strerror(-r));
                fail(s, why);
                return;
        }
        s->state = SNAP_VERIFYING;
        r = sd_event_add_child(s->event, &s->child_src, s->pid, WEXITED, tool_exited, s);
        if (r < 0) {
                close(s->out_fd);
                close(s->err_fd);
                fail(s, "cannot watch etcd's snapshot tool");
        }
}

static void start(struct snapsched *s) {
        const struct sup_config *sc = s->sc;
        char name[128], why[1024];
        struct tm tm;
        time_t t = time(NULL);
        int r;

        r = mkdir_p(sc->snapshot_dir, 0700);
        if (r < 0) {
                snprintf(why, sizeof why, "cannot create --snapshot-dir '%s': %s", sc->snapshot_dir,
                         strerror(-r));
                fail(s, why);
                return;
        }
        strftime(name, sizeof name, "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm));
        for (unsigned k = 0; k < 100; k++) {
                struct stat st;
                free(s->path);
                if ((k == 0 ? asprintf(&s->path, "%s/mgmt-%s-%s.db", sc->snapshot_dir, sc->hostname, name)
                            : asprintf(&s->path, "%s/mgmt-%s-%s-%u.db", sc->snapshot_dir, sc->hostname, name,
                                       k)) < 0) {
                        s->path = NULL;
                        fail(s, "out of memory");
                        return;
                }
                if (lstat(s->path, &st) < 0)
                        break;
        }
        r = snap_sink_open(s->path, &s->sink);
        if (r < 0) {
                snprintf(why, sizeof why, "cannot create a file in --snapshot-dir '%s': %s",
                         sc->snapshot_dir, strerror(-r));
                fail(s, why);
                return;
        }
        s->started = now_usec();
        s->state = SNAP_STREAMING;
        log_info("snapshot of our etcd to '%s'", s->path);
        r = etcd_stream_raw(s->client, sc->adv_client_urls[0], ETCD_SNAPSHOT, NULL, snap_sink_feed_cb,
                            s->sink, stream_done, s);
        if (r < 0) {
                snprintf(why, sizeof why, "cannot start the snapshot stream: %s", strerror(-r));
                fail(s, why);
        }
}

static int timer_cb(sd_event_source *src, uint64_t usec, void *ud) {
        struct snapsched *s = ud;

        if (s->state != SNAP_IDLE)
                return 0; /* finish() arms the next one */
        if (!s->client || s->member_seen == 0 || now_usec() - s->member_seen > MEMBER_FRESH_USEC) {
                arm(s); /* not a healthy voting member now: try at the next interval */
                return 0;
        }
        if (!s->tool && snap_tool_find(s->sc->etcd_binary, &s->tool, NULL) < 0) {
                fail(s, "neither etcdutl nor etcdctl is installed: cannot verify snapshots");
                return 0;
        }
        start(s);
        return 0;
}

int snapsched_new(sd_event *e, const struct sup_config *sc, struct snapsched **ret) {
        struct snapsched *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->sc = sc;
        s->out_fd = s->err_fd = -1;
        r = sd_event_add_time(e, &s->timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC, timer_cb, s);
        if (r < 0) {
                snapsched_free(s);
                return r;
        }
        sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        (void)sd_event_source_set_description(s->timer, "snapshot-timer");
        *ret = s;
        return 0;
}

void snapsched_set_member(struct snapsched *s, struct etcd_client *client, bool voting_member_healthy) {
        if (!s)
                return;
        s->client = client;
        if (!voting_member_healthy)
                return;
        s->member_seen = now_usec();
        int enabled = SD_EVENT_OFF;
        sd_event_source_get_enabled(s->timer, &enabled);
        if (s->state == SNAP_IDLE && enabled == SD_EVENT_OFF)
                arm(s); /* the first report starts the schedule */
}

unsigned snapsched_failures(const struct snapsched *s) {
        return s ? s->failures : 0;
}

int64_t snapsched_last_success(const struct snapsched *s) {
        return s ? s->last_success : 0;
}

void snapsched_free(struct snapsched *s) {
        if (!s)
                return;
        if (s->pid > 0 && s->state == SNAP_COMMAND)
                (void)kill(s->pid, SIGTERM);
        if (s->state == SNAP_VERIFYING) {
                close(s->out_fd);
                close(s->err_fd);
        }
        sd_event_source_disable_unref(s->child_src);
        sd_event_source_disable_unref(s->timer);
        snap_sink_free(s->sink);
        free(s->path);
        free(s->tool);
        sd_event_unref(s->event);
        free(s);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Snapshot files in dir (*.db, not hidden), sorted by name = by time. */
int snapshot_dir_list(const char *dir, char ***ret) {
        DIR *d = opendir(dir);
        char **v = NULL;
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 4 || !streq(de->d_name + l - 3, ".db"))
                        continue;
                if (strv_push(&v, de->d_name) < 0) {
                        closedir(d);
                        strv_free(v);
                        return -ENOMEM;
                }
        }
        closedir(d);
        if (v)
                qsort(v, strv_length(v), sizeof *v, name_cmp);
        *ret = v;
        return 0;
}
