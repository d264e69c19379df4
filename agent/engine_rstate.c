/* engine_rstate.c: one resource's transitions, at the bottom of the engine
 * (engine_run.c and engine_watch.c call these, never the other way): OK
 * (refreshing its notify successors when it changed something), FAILED (the
 * message kept and logged once here, the retry planned), and asking for a
 * pass. */
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "engine_internal.h"
#include "log.h"
#include "macro.h"
#include "util.h"

void engine_schedule(struct engine *e) {
        if (e->defer)
                (void)sd_event_source_set_enabled(e->defer, SD_EVENT_ONESHOT);
}

const char *res_label(const struct resource *r, char *buf, size_t len) {
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

void rs_failed(struct engine *e, struct rstate *rs, const char *msg) {
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

void rs_ok(struct engine *e, struct rstate *rs, bool changed) {
        e->checkapply[e->g->res[rs_index(e, rs)].kind][changed][0]++;
        rs->st = RS_OK;
        rs->fails = 0;
        free(rs->error);
        rs->error = NULL;
        if (changed)
                engine_notify(e, rs_index(e, rs));
}
