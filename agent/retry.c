/* retry.c: what the agent's etcd loops (deploys.c, exchange.c, status.c)
 * share when etcd fails them: one failure count with its backoff, logged
 * once per doubling; a one-shot timer to try again; the compaction-safe
 * branch of a prefix watch's error. */
#include "agent.h"
#include "log.h"

uint64_t agent_etcd_trouble(struct agent *a, const char *what, const char *msg) {
        unsigned n = ++a->etcd_failures;
        /* several loops share the count: double every second failure, at most 10 s */
        uint64_t delay = USEC_PER_SEC << ((n - 1) / 2 < 4 ? (n - 1) / 2 : 4);

        if (delay > 10 * USEC_PER_SEC)
                delay = 10 * USEC_PER_SEC;
        log_msg((n & (n - 1)) == 0 ? LOG_WARNING : LOG_DEBUG, 0,
                "%s: %s; retrying in %.0f s (%u failure%s in a row)", what, msg, (double)delay / 1e6, n,
                n == 1 ? "" : "s");
        return delay;
}

void agent_etcd_fine(struct agent *a) {
        if (a->etcd_failures > 1)
                log_notice("etcd answers again after %u failed requests", a->etcd_failures);
        a->etcd_failures = 0;
}

int agent_later(struct agent *a, uint64_t usec, sd_event_time_handler_t cb) {
        sd_event_source *s = NULL;

        return sd_event_add_time_relative(a->event, &s, CLOCK_MONOTONIC, usec, 0, cb, a);
}

void agent_watch_failed(struct agent *a, struct etcd_watch **w, const struct etcd_error *err,
                        const struct etcd_watch_msg *msg, const char *what,
                        void (*reread)(struct agent *a)) {
        if (msg && msg->compact_revision > 0) {
                log_warnx("%s: reading %s again", err->msg, what);
                etcd_watch_free(*w);
                *w = NULL;
                reread(a);
        } else
                log_warnx("watch of %s: %s", what, err->msg);
}
