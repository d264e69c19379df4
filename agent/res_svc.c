/* res_svc.c: the "svc" resource kind: a systemd unit driven over sd-bus
 * (org.freedesktop.systemd1, no systemctl subprocess), on the agent's
 * sd-event loop; every call is asynchronous so the loop never blocks.
 *
 * A check reads the unit's ActiveState, UnitFileState and LoadState
 * (Properties.GetAll); svc_decide() turns them and the wanted state into a
 * plan; applying it calls EnableUnitFiles/DisableUnitFiles (+ Reload), then
 * StartUnit/StopUnit/RestartUnit, and waits for the job's JobRemoved signal.
 * Drift: the engine watches the unit's PropertiesChanged signal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "agent.h"
#include "log.h"
#include "macro.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"

struct svc_bus {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *job_removed;
        struct svc_job *jobs; /* waiting for JobRemoved */
};

struct svc_job {
        struct svc_bus *sb;
        struct svc_job *next; /* in sb->jobs while waiting for a job */
        char unit[512];
        char *path;
        char *job_path;
        struct res_svc want;
        bool refresh, noop, changed;
        struct svc_plan plan;
        sd_bus_slot *call;
        svc_done_cb cb;
        void *userdata;
};

static bool in_list(const char *s, const char *const *list) {
        for (; *list; list++)
                if (streq(s, *list))
                        return true;
        return false;
}

/* The plan for a unit: a pure function of its properties and the resource. */
void svc_decide(const struct svc_props *p, const struct res_svc *want, bool refresh, struct svc_plan *ret) {
        static const char *const running[] = {"active", "reloading", "activating", NULL};
        static const char *const enabled[] = {"enabled", "enabled-runtime", NULL};
        static const char *const not_enableable[] = {"static",    "indirect", "generated",
                                                     "transient", "alias",    NULL};
        struct svc_plan plan = {0};
        bool is_running = in_list(p->active, running);

        if (streq(p->load, "not-found") || streq(p->load, "bad-setting") || streq(p->load, "error")) {
                /* a missing unit is stopped and disabled: nothing to do for that */
                if (want->state != SVC_RUNNING && want->startup != SVC_ENABLED && !refresh) {
                        *ret = plan;
                        return;
                }
                plan.error = streq(p->load, "not-found") ? "unit not found" : "unit cannot be loaded";
                *ret = plan;
                return;
        }
        if (streq(p->load, "masked") || streq(p->unitfile, "masked") ||
            streq(p->unitfile, "masked-runtime")) {
                if (want->state == SVC_RUNNING || want->startup == SVC_ENABLED) {
                        plan.error = "unit is masked";
                        *ret = plan;
                        return;
                }
        }
        if (want->startup == SVC_ENABLED && !in_list(p->unitfile, enabled)) {
                if (in_list(p->unitfile, not_enableable) || streq(p->unitfile, "")) {
                        plan.error = "unit has no [Install] section to enable (its unit file state is not "
                                     "'enabled' or 'disabled')";
                        *ret = plan;
                        return;
                }
                plan.enable = true;
        }
        if (want->startup == SVC_DISABLED &&
            (in_list(p->unitfile, enabled) || streq(p->unitfile, "linked") ||
             streq(p->unitfile, "linked-runtime")))
                plan.disable = true;
        if (want->state == SVC_RUNNING && !is_running)
                plan.start = true;
        else if (want->state == SVC_STOPPED && is_running)
                plan.stop = true;
        /* a notify refresh restarts a unit that is (to be) running */
        if (refresh && want->state != SVC_STOPPED && (is_running || want->state == SVC_RUNNING)) {
                plan.restart = true;
                plan.start = false;
        }
        *ret = plan;
}

bool svc_plan_empty(const struct svc_plan *p) {
        return !p->start && !p->stop && !p->restart && !p->enable && !p->disable;
}

/* Read a GetAll reply (a{sv}) of org.freedesktop.systemd1.Unit. */
int svc_props_parse(sd_bus_message *m, struct svc_props *ret) {
        struct svc_props p = {"", "", ""};
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
                const char *name, *value;
                char *dst = NULL;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                if (streq(name, "ActiveState"))
                        dst = p.active;
                else if (streq(name, "UnitFileState"))
                        dst = p.unitfile;
                else if (streq(name, "LoadState"))
                        dst = p.load;
                if (dst) {
                        r = sd_bus_message_read(m, "v", "s", &value);
                        if (r < 0)
                                return r;
                        snprintf(dst, sizeof p.active, "%s", value);
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (!p.active[0] || !p.load[0])
                return -EBADMSG;
        *ret = p;
        return 0;
}

static void job_free(struct svc_job *j) {
        if (!j)
                return;
        for (struct svc_job **pp = &j->sb->jobs; *pp; pp = &(*pp)->next)
                if (*pp == j) {
                        *pp = j->next;
                        break;
                }
        sd_bus_slot_unref(j->call);
        free(j->path);
        free(j->job_path);
        free(j);
}

static void job_finish(struct svc_job *j, int r, const char *msg) {
        j->call = sd_bus_slot_unref(j->call);
        j->cb(j, r, j->changed, msg, j->userdata);
        job_free(j);
}

static int job_next(struct svc_job *j);

/* The error of a method reply, or NULL. */
static const char *reply_error(sd_bus_message *m) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (!e)
                return NULL;
        return e->message ? e->message : e->name ? e->name : "failed";
}

static int on_step_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct svc_job *j = userdata;
        const char *err = reply_error(m);
        char msg[768];

        j->call = sd_bus_slot_unref(j->call);
        if (err) {
                snprintf(msg, sizeof msg, "unit '%s': %s", j->unit, err);
                job_finish(j, -EIO, msg);
                return 0;
        }
        j->changed = true;
        if (job_next(j) < 0)
                job_finish(j, -EIO, "cannot call systemd");
        return 0;
}

/* StartUnit/StopUnit/RestartUnit replied with a job: wait for JobRemoved. */
static int on_job_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct svc_job *j = userdata;
        const char *err = reply_error(m), *path;
        char msg[768];

        j->call = sd_bus_slot_unref(j->call);
        if (err) {
                snprintf(msg, sizeof msg, "unit '%s': %s", j->unit, err);
                job_finish(j, -EIO, msg);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) < 0 || !(j->job_path = strdup(path))) {
                job_finish(j, -EBADMSG, "bad reply from systemd");
                return 0;
        }
        j->changed = true;
        j->next = j->sb->jobs;
        j->sb->jobs = j;
        log_debug("svc '%s': waiting for job %s", j->unit, path);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct svc_bus *sb = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        char msg[768];

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        for (struct svc_job *j = sb->jobs; j; j = j->next) {
                if (!j->job_path || !streq(j->job_path, path))
                        continue;
                if (!streq(result, "done")) {
                        snprintf(msg, sizeof msg, "unit '%s': job ended '%s' (see journalctl -u %s)", unit,
                                 result, unit);
                        job_finish(j, -EIO, msg);
                } else {
                        log_info("svc '%s': job done", unit);
                        for (struct svc_job **pp = &sb->jobs; *pp; pp = &(*pp)->next)
                                if (*pp == j) {
                                        *pp = j->next;
                                        break;
                                }
                        j->next = NULL;
                        free(j->job_path);
                        j->job_path = NULL;
                        if (job_next(j) < 0)
                                job_finish(j, -EIO, "cannot call systemd");
                }
                break;
        }
        return 0;
}

/* Issue the next call of the plan, or finish. */
static int job_next(struct svc_job *j) {
        sd_bus *bus = j->sb->bus;
        const char *verb;

        if (j->plan.enable) {
                j->plan.enable = false;
                j->plan.reload = true;
                log_info("svc '%s': enabling", j->unit);
                return sd_bus_call_method_async(bus, &j->call, SD_DEST, SD_PATH, SD_MANAGER,
                                                "EnableUnitFiles", on_step_reply, j, "asbb", 1, j->unit, 0,
                                                1);
        }
        if (j->plan.disable) {
                j->plan.disable = false;
                j->plan.reload = true;
                log_info("svc '%s': disabling", j->unit);
                return sd_bus_call_method_async(bus, &j->call, SD_DEST, SD_PATH, SD_MANAGER,
                                                "DisableUnitFiles", on_step_reply, j, "asb", 1, j->unit, 0);
        }
        if (j->plan.reload) {
                j->plan.reload = false;
                return sd_bus_call_method_async(bus, &j->call, SD_DEST, SD_PATH, SD_MANAGER, "Reload",
                                                on_step_reply, j, "");
        }
        verb = j->plan.restart ? "RestartUnit"
               : j->plan.start ? "StartUnit"
               : j->plan.stop  ? "StopUnit"
                               : NULL;
        if (verb) {
                j->plan.restart = j->plan.start = j->plan.stop = false;
                log_info("svc '%s': %s", j->unit, verb);
                return sd_bus_call_method_async(bus, &j->call, SD_DEST, SD_PATH, SD_MANAGER, verb,
                                                on_job_reply, j, "ss", j->unit, "replace");
        }
        job_finish(j, 0, NULL);
        return 0;
}

static int on_props(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct svc_job *j = userdata;
        const char *err = reply_error(m);
        struct svc_props p;
        char msg[768];
        int r;

        j->call = sd_bus_slot_unref(j->call);
        if (err) {
                snprintf(msg, sizeof msg, "unit '%s': cannot read its state: %s", j->unit, err);
                job_finish(j, -EIO, msg);
                return 0;
        }
        r = svc_props_parse(m, &p);
        if (r < 0) {
                snprintf(msg, sizeof msg, "unit '%s': bad properties from systemd: %s", j->unit,
                         strerror(-r));
                job_finish(j, r, msg);
                return 0;
        }
        svc_decide(&p, &j->want, j->refresh, &j->plan);
        log_debug("svc '%s': ActiveState=%s UnitFileState=%s LoadState=%s", j->unit, p.active, p.unitfile,
                  p.load);
        if (j->plan.error) {
                snprintf(msg, sizeof msg, "unit '%s': %s (ActiveState=%s UnitFileState=%s LoadState=%s)",
                         j->unit, j->plan.error, p.active, p.unitfile, p.load);
                job_finish(j, -EINVAL, msg);
                return 0;
        }
        if (svc_plan_empty(&j->plan)) {
                job_finish(j, 0, NULL);
                return 0;
        }
        if (j->noop) {
                log_notice("noop: svc '%s': would%s%s%s%s%s (is %s, %s)", j->unit,
                           j->plan.enable ? " enable" : "", j->plan.disable ? " disable" : "",
                           j->plan.start ? " start" : "", j->plan.stop ? " stop" : "",
                           j->plan.restart ? " restart" : "", p.active,
                           p.unitfile[0] ? p.unitfile : "no unit file state");
                j->changed = true;
                job_finish(j, 0, NULL);
                return 0;
        }
        if (job_next(j) < 0)
                job_finish(j, -EIO, "cannot call systemd");
        return 0;
}

int svc_bus_new(sd_event *event, struct svc_bus **ret) {
        struct svc_bus *sb = calloc(1, sizeof *sb);
        if (!sb)
                return -ENOMEM;
        sb->event = sd_event_ref(event);
        *ret = sb;
        return 0;
}

/* Connect to the system bus on first use; subscribe to the manager's
 * signals (systemd sends unit and job signals only to subscribers). */
static int svc_bus_connect(struct svc_bus *sb) {
        int r;

        if (sb->bus)
                return 0;
        r = sd_bus_open_system(&sb->bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(sb->bus, sb->event, 0);
        if (r >= 0)
                r = sd_bus_match_signal(sb->bus, &sb->job_removed, SD_DEST, SD_PATH, SD_MANAGER,
                                        "JobRemoved", on_job_removed, sb);
        if (r >= 0)
                r = sd_bus_call_method_async(sb->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL,
                                             NULL, "");
        if (r < 0) {
                sb->job_removed = sd_bus_slot_unref(sb->job_removed);
                sb->bus = sd_bus_flush_close_unref(sb->bus);
        }
        return r;
}

void svc_bus_free(struct svc_bus *sb) {
        if (!sb)
                return;
        while (sb->jobs)
                svc_job_cancel(sb->jobs);
        sd_bus_slot_unref(sb->job_removed);
        sd_bus_flush_close_unref(sb->bus);
        sd_event_unref(sb->event);
        free(sb);
}

int svc_job_start(struct svc_bus *sb, const char *name, const struct res_svc *want, bool refresh, bool noop,
                  svc_done_cb cb, void *userdata, struct svc_job **ret, char *err, size_t errlen) {
        struct svc_job *j;
        int r;

        r = svc_bus_connect(sb);
        if (r < 0) {
                snprintf(err, errlen, "cannot connect to systemd on the system bus: %s", strerror(-r));
                return r;
        }
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->sb = sb;
        j->want = *want;
        j->refresh = refresh;
        j->noop = noop;
        j->cb = cb;
        j->userdata = userdata;
        if (svc_unit_name(name, j->unit, sizeof j->unit) < 0 ||
            sd_bus_path_encode(SD_PATH "/unit", j->unit, &j->path) < 0) {
                free(j->path);
                free(j);
                snprintf(err, errlen, "bad unit name '%s'", name);
                return -EINVAL;
        }
        r = sd_bus_call_method_async(sb->bus, &j->call, SD_DEST, j->path, "org.freedesktop.DBus.Properties",
                                     "GetAll", on_props, j, "s", SD_UNIT);
        if (r < 0) {
                snprintf(err, errlen, "cannot ask systemd about '%s': %s", j->unit, strerror(-r));
                free(j->path);
                free(j);
                return r;
        }
        *ret = j;
        return 0;
}

void svc_job_cancel(struct svc_job *j) {
        job_free(j); /* an issued job keeps running in systemd; we stop waiting */
}

int svc_watch(struct svc_bus *sb, const char *name, sd_bus_message_handler_t cb, void *userdata,
              sd_bus_slot **ret) {
        _cleanup_free_ char *path = NULL;
        char unit[512];
        int r;

        if ((r = svc_bus_connect(sb)) < 0)
                return r;
        if (svc_unit_name(name, unit, sizeof unit) < 0)
                return -EINVAL;
        r = sd_bus_path_encode(SD_PATH "/unit", unit, &path);
        if (r < 0)
                return r;
        return sd_bus_match_signal(sb->bus, ret, SD_DEST, path, "org.freedesktop.DBus.Properties",
                                   "PropertiesChanged", cb, userdata);
}
