/* metrics.c: the supervisor's --metrics-listen endpoints, served from the
 * node's sd-event loop by lib/httpd.c:
 *   /metrics  Prometheus text (names in lib/metrics.h), values from node_metrics();
 *   /health   200 while this node is a healthy member, or a client or volunteer
 *             that etcd answers right now; else 503;
 *   /status   the `status --json` document, gathered on demand through the
 *             node's etcd client; /status?wait=REV answers once the cluster's
 *             revision passes REV (an etcd watch on /_mgmt/) or after 25 s:
 *             the long-poll of the page;
 *   /         the status page (supervisor/status.html, embedded at build time). */
#include <stdio.h>
#include <stdlib.h>

#include "clusterstatus.h"
#include "httpd.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "status_html.h"
#include "supervisor.h"
#include "util.h"

#define LONG_POLL_USEC (25 * USEC_PER_SEC)

/* membership actions, counted by name */
static const char *const change_actions[] = {"nominate",          "add-learner", "promote",
                                             "unnominate",        "remove",      "transfer-leadership",
                                             "repair-nomination", "other"};
static unsigned long long changes[ELEMENTSOF(change_actions)];

void sup_metrics_count_change(const char *action) {
        size_t i;
        for (i = 0; i + 1 < ELEMENTSOF(change_actions); i++)
                if (action && streq(action, change_actions[i]))
                        break;
        changes[i]++;
}

struct waiter {
        struct listener *l;
        struct httpd_req *req;
        int64_t after;
        sd_event_source *timer;
        struct waiter *next;
};

struct listener {
        sd_event *event;
        struct node *node;
        struct httpd *h;
        struct etcd_watch *watch; /* on /_mgmt/ while someone long-polls */
        struct waiter *waiters;
};

static struct listener *the_listener;

static void write_metrics(FILE *f, void *userdata) {
        const struct sup_metrics *m = userdata;
        long long quorum = m->voters / 2 + 1;

        metric_one(f, M_CLUSTER_VOTING_MEMBERS, (double)m->voters);
        metric_one(f, M_CLUSTER_LEARNERS, (double)m->learners);
        metric_one(f, M_IDEAL_CLUSTER_SIZE, (double)m->ideal);
        metric_one(f, M_FAILURE_TOLERANCE, (double)(m->voters ? m->voters - quorum : 0));
        metric_one(f, M_IS_COORDINATOR, m->coordinator);
        metric_one(f, M_ETCD_UP, m->etcd_up);
        metric_one(f, M_ETCD_RESTARTS_TOTAL, m->etcd_restarts);
        metric_head(f, M_MEMBERSHIP_CHANGES_TOTAL);
        for (size_t i = 0; i < ELEMENTSOF(change_actions); i++)
                metric_sample(f, M_MEMBERSHIP_CHANGES_TOTAL, (double)changes[i], "action", change_actions[i],
                              (const char *)NULL);
        metric_one(f, M_LAST_SNAPSHOT_TIMESTAMP_SECONDS, (double)m->last_snapshot);
        metric_one(f, M_SNAPSHOT_FAILURES_TOTAL, (double)m->snapshot_failures);
}

static void reply_text(struct httpd_req *req, unsigned status, const char *type, char *buf, size_t len) {
        httpd_reply(req, status, type, buf ? buf : "", buf ? len : 0);
        free(buf);
}

/* ---- /status ---- */

struct status_ask {
        struct listener *l;
        struct httpd_req *req;
        int64_t wait_after; /* > 0: park the request unless the revision passed this */
};

static void park(struct listener *l, struct httpd_req *req, int64_t after);

static void status_gathered(json_t *doc, const char *error, void *userdata) {
        struct status_ask *a = userdata;

        if (!doc) {
                char *body = NULL;
                if (asprintf(&body, "{\"error\": \"%s\"}\n", "cannot gather the cluster status") < 0)
                        body = NULL;
                log_debug("status: %s", error);
                reply_text(a->req, 503, "application/json", body, body ? strlen(body) : 0);
        } else if (a->wait_after > 0 &&
                   json_integer_value(json_object_get(doc, CS_REVISION)) <= a->wait_after && a->l) {
                park(a->l, a->req, a->wait_after);
        } else {
                char *body = json_dumps(doc, JSON_INDENT(1));
                reply_text(a->req, 200, "application/json", body, body ? strlen(body) : 0);
        }
        free(a);
}

static void status_start(struct listener *l, struct httpd_req *req, int64_t wait_after) {
        struct sup_metrics m;
        struct status_ask *a = calloc(1, sizeof *a);

        node_metrics(l->node, &m);
        if (!a || !m.client) {
                free(a);
                static const char msg[] = "{\"error\": \"not connected to etcd\"}\n";
                httpd_reply(req, 503, "application/json", msg, sizeof msg - 1);
                return;
        }
        *a = (struct status_ask){l, req, wait_after};
        if (cluster_status_gather(m.client, status_gathered, a, NULL) < 0) {
                free(a);
                static const char msg[] = "{\"error\": \"cannot ask etcd\"}\n";
                httpd_reply(req, 503, "application/json", msg, sizeof msg - 1);
        }
}

/* A change came, or the time is up: answer with a fresh document. */
static void waiter_release(struct waiter *w) {
        struct listener *l = w->l;
        for (struct waiter **p = &l->waiters; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        sd_event_source_disable_unref(w->timer);
        status_start(l, w->req, 0);
        free(w);
}

static int waiter_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        waiter_release(userdata);
        return 0;
}

static void watch_cb(struct etcd_watch *wt, const struct etcd_error *err, const struct etcd_watch_msg *msg,
                     void *userdata) {
        struct listener *l = userdata;

        if (err && !(msg && msg->compact_revision > 0))
                return; /* reconnecting */
        if (err) {
                etcd_watch_free(l->watch);
                l->watch = NULL;
        }
        while (l->waiters)
                waiter_release(l->waiters);
}

static void park(struct listener *l, struct httpd_req *req, int64_t after) {
        struct sup_metrics m;
        struct waiter *w = calloc(1, sizeof *w);
        uint64_t now;

        node_metrics(l->node, &m);
        if (!w) {
                status_start(l, req, 0);
                return;
        }
        *w = (struct waiter){.l = l, .req = req, .after = after};
        sd_event_now(l->event, CLOCK_MONOTONIC, &now);
        if (sd_event_add_time(l->event, &w->timer, CLOCK_MONOTONIC, now + LONG_POLL_USEC, 0, waiter_timeout,
                              w) < 0) {
                free(w);
                status_start(l, req, 0);
                return;
        }
        w->next = l->waiters;
        l->waiters = w;
        if (!l->watch && m.client &&
            etcd_watch_new(m.client, MGMT_NS "/", true, after + 1, watch_cb, l, &l->watch) < 0)
                log_debug("metrics listener: cannot watch '%s'", MGMT_NS "/");
}

/* ---- /health ---- */

static void reply_health(struct httpd_req *req, bool ok) {
        if (ok)
                httpd_reply(req, 200, "application/json", "{\"health\": true}\n", 17);
        else
                httpd_reply(req, 503, "application/json", "{\"health\": false}\n", 18);
}

static void health_answered(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                            void *userdata) {
        reply_health(userdata, reply != NULL);
}

/* A member is healthy by its own etcd's last answers; a client or volunteer
 * is healthy while the cluster answers it now (one small read). */
static void health_start(struct httpd_req *req, const struct sup_metrics *m) {
        _cleanup_free_ char *k = key_ideal_size();

        if (!m->ready || m->member || !m->client || !k) {
                reply_health(req, m->ready);
                return;
        }
        if (etcd_call(m->client, ETCD_RANGE, etcd_req_range(k, false, 0, true), health_answered, req) < 0)
                reply_health(req, false);
}

/* ---- dispatch ---- */

static void on_request(struct httpd_req *req, const char *path, void *userdata) {
        struct listener *l = userdata;
        struct sup_metrics m;

        node_metrics(l->node, &m);
        if (streq(path, "/metrics")) {
                metrics_reply(req, write_metrics, &m);
        } else if (streq(path, "/health")) {
                health_start(req, &m);
        } else if (streq(path, "/status")) {
                const char *wait = httpd_req_arg(req, "wait");
                int64_t after = 0;
                if (wait && (parse_int64(wait, &after) < 0 || after < 0)) {
                        static const char msg[] = "bad 'wait': want a revision\n";
                        httpd_reply(req, 400, "text/plain", msg, sizeof msg - 1);
                        return;
                }
                status_start(l, req, after);
        } else if (streq(path, "/")) {
                httpd_reply(req, 200, "text/html; charset=utf-8", status_html, sizeof status_html - 1);
        } else {
                static const char msg[] = "not found: try /metrics, /health, /status or /\n";
                httpd_reply(req, 404, "text/plain", msg, sizeof msg - 1);
        }
}

int sup_listener_start(sd_event *e, struct node *n, const char *listen) {
        struct listener *l;
        char err[512];
        int r;

        if (!listen || !*listen)
                return 0;
        l = calloc(1, sizeof *l);
        if (!l)
                return log_error_errno(-ENOMEM, "cannot start the metrics listener: %m");
        l->event = e;
        l->node = n;
        r = httpd_new(e, listen, on_request, l, &l->h, err, sizeof err);
        if (r < 0) {
                free(l);
                log_errorx("--metrics-listen: %s", err);
                return r;
        }
        the_listener = l;
        log_info("serving /metrics, /health, /status and / on %s", listen);
        return 0;
}

void sup_listener_stop(void) {
        struct listener *l = the_listener;

        if (!l)
                return;
        while (l->waiters) {
                struct waiter *w = l->waiters;
                l->waiters = w->next;
                sd_event_source_disable_unref(w->timer);
                free(w);
        }
        if (l->watch)
                etcd_watch_free(l->watch);
        httpd_free(l->h); /* answers what still waits with 503 */
        free(l);
        the_listener = NULL;
}

/* The node's values for the metrics listener (metrics.c), read here so that
 * the listener knows nothing of the node's insides. */
void node_metrics(const struct node *n, struct sup_metrics *ret) {
        *ret = (struct sup_metrics){
            .ideal = n->ideal,
            .coordinator = n->coordinator,
            .etcd_up = n->child.state == CHILD_UP && n->healthy,
            /* a client or volunteer is connected while its session lease lives */
            .ready = ((n->role == ROLE_MEMBER || n->role == ROLE_LEAVING) && n->healthy && n->have_state) ||
                     ((n->role == ROLE_CLIENT || n->role == ROLE_VOLUNTEER) && n->have_state && n->lease),
            .member = n->role == ROLE_MEMBER,
            .etcd_restarts = n->child.total_crashes,
            .last_snapshot = n->snap ? snapsched_last_success(n->snap) : 0,
            .snapshot_failures = n->snap ? snapsched_failures(n->snap) : 0,
            .client = n->client,
        };
        for (size_t i = 0; i < n->members.n; i++) {
                if (n->members.m[i].learner)
                        ret->learners++;
                else
                        ret->voters++;
        }
}
