/* agent.c: the agent's core glue: engine state reports (sd_notify, status,
 * --converged-timeout, --once exit), exiting. */
#include <errno.h>
#include <systemd/sd-daemon.h>

#include "agent.h"
#include "log.h"
#include "macro.h"

static void agent_notify_status(struct agent *a, enum engine_state st) {
        if (a->deploy_failed)
                (void)sd_notifyf(false, "STATUS=deploy %lld failed: %s; running deploy graph %lld",
                                 (long long)a->deploy_highest, a->deploy_error ? a->deploy_error : "invalid",
                                 (long long)a->deploy_id);
        else
                (void)sd_notifyf(false, "STATUS=deploy %lld: %s", (long long)a->deploy_id,
                                 engine_state_to_string(st));
}

void agent_exit(struct agent *a, int code) {
        if (a->stopping)
                return;
        a->stopping = true;
        a->exit_code = code;
        (void)sd_notify(false, "STOPPING=1");
        if (a->etcd)
                agent_status_stop(a); /* exits the loop when the lease is revoked (or soon) */
        else
                (void)sd_event_exit(a->event, code);
}

static int on_converged_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct agent *a = userdata;

        log_notice("converged for %.1f s: exiting (--converged-timeout)",
                   (double)a->converged_timeout / 1e6);
        agent_exit(a, 0);
        return 0;
}

/* READY=1 once: the agent runs a first graph (applying, applied or failed)
 * or refused a deploy, so systemd's start job ends; a first apply that
 * installs packages must not run into the start timeout. STATUS= says
 * "applying" until it is done. */
void agent_ready(struct agent *a) {
        if (!a->ready_sent) {
                a->ready_sent = true;
                (void)sd_notify(false, "READY=1");
        }
}

void agent_on_engine_state(struct engine *e, enum engine_state st, void *userdata) {
        struct agent *a = userdata;

        agent_notify_status(a, st);
        agent_ready(a);
        if (a->etcd)
                agent_status_update(a);
        else if (a->once) {
                if (st == ENGINE_CONVERGED && a->noop)
                        log_notice("noop: graph checked: %zu resource check%s found something to change, "
                                   "nothing was changed",
                                   engine_noop_changes(e), engine_noop_changes(e) == 1 ? "" : "s");
                else if (st == ENGINE_CONVERGED)
                        log_notice("graph converged");
                else if (st == ENGINE_FAILED)
                        log_errorx("graph failed");
                if (st != ENGINE_APPLYING)
                        agent_exit(a, st == ENGINE_CONVERGED ? 0 : 1);
                return;
        }

        if (a->converged_timeout > 0) {
                if (st == ENGINE_CONVERGED) {
                        if (!a->converged_timer)
                                (void)sd_event_add_time_relative(a->event, &a->converged_timer,
                                                                 CLOCK_MONOTONIC, a->converged_timeout, 0,
                                                                 on_converged_timeout, a);
                } else
                        a->converged_timer = sd_event_source_disable_unref(a->converged_timer);
        }
}
