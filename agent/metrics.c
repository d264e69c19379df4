/* metrics.c: the agent's --metrics-listen endpoints, served from its sd-event
 * loop by lib/httpd.c:
 *   /metrics  mgmt_deploy_id, mgmt_resources{kind,state},
 *             mgmt_checkapply_total{kind,eventful,errorful}, mgmt_converged;
 *   /health   200 while the agent is connected (holds its session lease)
 *             or, without a cluster, while its graph is not failed; else 503;
 *   /status   the `mgmt-supervisor status --json` document, through the agent's etcd client. */
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "clusterstatus.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

static struct httpd *the_httpd;

static void write_metrics(FILE *f, void *userdata) {
        struct agent *a = userdata;
        size_t counts[_RES_KIND_MAX][ENGINE_RES_STATES];

        metric_one(f, M_DEPLOY_ID, (double)a->deploy_id);
        engine_count_resources(a->engine, counts);
        metric_head(f, M_RESOURCES);
        for (unsigned k = 0; k < _RES_KIND_MAX; k++)
                for (unsigned s = 0; s < ENGINE_RES_STATES; s++)
                        metric_sample(f, M_RESOURCES, (double)counts[k][s], "kind", res_kind_to_string(k),
                                      "state", engine_res_state_name(s), (const char *)NULL);
        metric_head(f, M_CHECKAPPLY_TOTAL);
        for (unsigned k = 0; k < _RES_KIND_MAX; k++)
                for (unsigned ev = 0; ev < 2; ev++)
                        for (unsigned er = 0; er < 2; er++)
                                metric_sample(f, M_CHECKAPPLY_TOTAL,
                                              (double)engine_checkapply_count(a->engine, k, ev, er), "kind",
                                              res_kind_to_string(k), "eventful", ev ? "true" : "false",
                                              "errorful", er ? "true" : "false", (const char *)NULL);
        metric_one(f, M_CONVERGED, engine_get_state(a->engine) == ENGINE_CONVERGED);
}

static void status_gathered(json_t *doc, const char *error, void *userdata) {
        struct httpd_req *req = userdata;
        char *body = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;

        if (body)
                httpd_reply(req, 200, "application/json", body, strlen(body));
        else {
                static const char msg[] = "{\"error\": \"cannot gather the cluster status\"}\n";
                log_debug("status: %s", error ? error : "out of memory");
                httpd_reply(req, 503, "application/json", msg, sizeof msg - 1);
        }
        free(body);
}

static void on_request(struct httpd_req *req, const char *path, void *userdata) {
        struct agent *a = userdata;

        if (streq(path, "/metrics")) {
                metrics_reply(req, write_metrics, a);
        } else if (streq(path, "/health")) {
                bool ok = a->etcd ? a->lease > 0 : engine_get_state(a->engine) != ENGINE_FAILED;
                if (ok)
                        httpd_reply(req, 200, "application/json", "{\"health\": true}\n", 17);
                else
                        httpd_reply(req, 503, "application/json", "{\"health\": false}\n", 18);
        } else if (streq(path, "/status")) {
                if (!a->etcd || cluster_status_gather(a->etcd, status_gathered, req, NULL) < 0) {
                        static const char msg[] = "{\"error\": \"no etcd client\"}\n";
                        httpd_reply(req, 503, "application/json", msg, sizeof msg - 1);
                }
        } else {
                static const char msg[] = "not found: try /metrics, /health or /status\n";
                httpd_reply(req, 404, "text/plain", msg, sizeof msg - 1);
        }
}

int agent_listener_start(struct agent *a, const char *listen) {
        char err[512];
        int r;

        if (!listen || !*listen)
                return 0;
        r = httpd_new(a->event, listen, on_request, a, &the_httpd, err, sizeof err);
        if (r < 0) {
                log_errorx("--metrics-listen: %s", err);
                return r;
        }
        log_info("serving /metrics, /health and /status on %s", listen);
        return 0;
}

void agent_listener_stop(void) {
        httpd_free(the_httpd);
        the_httpd = NULL;
}
