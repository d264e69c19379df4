/* plan.c: the coordinator's decisions, logged once and published as
 * /_mgmt/plan on its session lease, so operators see what it does next or
 * why it waits. Both rounds report here: coordinator_run.c (membership) and
 * maintenance_run.c (the members' upkeep). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "supervisor.h"
#include "util.h"

/* The shape of a reason: its text without digits, so a countdown ("41 s
 * of grace left") is one decision, logged once. */
static bool same_shape(const char *a, const char *b) {
        while (*a || *b) {
                while (*a >= '0' && *a <= '9')
                        a++;
                while (*b >= '0' && *b <= '9')
                        b++;
                if (*a != *b)
                        return false;
                if (*a)
                        a++, b++;
        }
        return true;
}

static void plan_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        if (err)
                log_debug("cannot publish the plan: %s", err->msg);
}

/* Log a decision once (a retried one is not repeated) and publish it as
 * /_mgmt/plan on our session lease, so operators see what the coordinator
 * does next or why it waits. quiet: the caller logs the action itself. */
void plan_publish(struct node *n, const char *action, const char *host, const char *why, bool act,
                  bool quiet) {
        bool changed = !n->last_decision || !same_shape(n->last_decision, why);

        if (changed) {
                if (act && !quiet)
                        log_notice("coordinator: %s", why);
                else if (!act && !startswith(why, "nothing to do"))
                        log_info("coordinator: %s", why);
                free(n->plan_since);
                n->plan_since = rfc3339_now();
        }
        if (n->last_decision && streq(n->last_decision, why))
                return;
        free(n->last_decision);
        n->last_decision = strdup(why);
        if (!n->lease)
                return;
        _cleanup_free_ char *k = key_plan();
        json_t *j = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "coordinator", n->sc->hostname, "action", action,
                              "host", host, "why", why, "since", n->plan_since ? n->plan_since : "");
        _cleanup_free_ char *v = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
        json_decref(j);
        /* informative only (the next decision publishes it again): debug, as in plan_done */
        int r = v && k ? etcd_call(n->client, ETCD_PUT, etcd_req_put(k, v, n->lease), plan_done, n) : 0;
        if (r < 0)
                log_debug_errno(r, "cannot publish the plan: %m");
}

/* The maintenance decision in the plan; its actions log themselves. */
void plan_report_maint(struct node *n) {
        struct maint *m = &n->maint;
        plan_publish(n, maction_to_string(m->type), m->host[0] ? m->host : NULL, m->why,
                     m->type != MACT_NONE, true);
}
