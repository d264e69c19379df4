/* metrics.c: the metric table, the Prometheus text format writer and the
 * /metrics reply. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>

#include "httpd.h"
#include "metrics.h"

const struct metric_def metric_defs[_M_MAX] = {
    [M_CLUSTER_VOTING_MEMBERS] =
        {"mgmt_cluster_voting_members", "gauge",
         "Voting members in the etcd member list, as this supervisor last read it."},
    [M_CLUSTER_LEARNERS] = {"mgmt_cluster_learners", "gauge", "Learners in the etcd member list."},
    [M_IDEAL_CLUSTER_SIZE] = {"mgmt_ideal_cluster_size", "gauge",
                              "/_mgmt/idealClusterSize (-1 when invalid)."},
    [M_FAILURE_TOLERANCE] = {"mgmt_failure_tolerance", "gauge",
                             "Voting members that may fail without losing quorum (voters - quorum)."},
    [M_IS_COORDINATOR] = {"mgmt_is_coordinator", "gauge",
                          "1 when this supervisor is the acting coordinator (its etcd is the raft leader)."},
    [M_ETCD_UP] = {"mgmt_etcd_up", "gauge", "1 when this node's etcd child runs and answers as healthy."},
    [M_ETCD_RESTARTS_TOTAL] = {"mgmt_etcd_restarts_total", "counter",
                               "Unexpected exits of the etcd child since the supervisor started."},
    [M_MEMBERSHIP_CHANGES_TOTAL] = {"mgmt_membership_changes_total", "counter",
                                    "Membership actions this supervisor started as coordinator, by action."},
    [M_LAST_SNAPSHOT_TIMESTAMP_SECONDS] = {"mgmt_last_snapshot_timestamp_seconds", "gauge",
                                           "Unix time of this member's newest good snapshot (0: none)."},
    [M_SNAPSHOT_FAILURES_TOTAL] = {"mgmt_snapshot_failures_total", "counter",
                                   "Snapshots of this member that failed."},
    [M_DEPLOY_ID] = {"mgmt_deploy_id", "gauge",
                     "Deploy id of the graph this agent runs (0: a local file or none)."},
    [M_RESOURCES] = {"mgmt_resources", "gauge", "Resources of the running graph by kind and state."},
    [M_CHECKAPPLY_TOTAL] =
        {"mgmt_checkapply_total", "counter",
         "Check-apply runs by kind, whether they changed something and whether they failed."},
    [M_CONVERGED] = {"mgmt_converged", "gauge", "1 when every resource of the graph is converged."},
};

void metric_head(FILE *f, enum metric_id m) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metric_defs[m].name, metric_defs[m].help,
                metric_defs[m].name, metric_defs[m].type);
}

static void escape(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

void metric_sample(FILE *f, enum metric_id m, double v, ...) {
        va_list ap;
        const char *name;
        bool first = true;

        fputs(metric_defs[m].name, f);
        va_start(ap, v);
        while ((name = va_arg(ap, const char *))) {
                const char *val = va_arg(ap, const char *);
                fprintf(f, "%s%s=\"", first ? "{" : ",", name);
                escape(f, val);
                fputc('"', f);
                first = false;
        }
        va_end(ap);
        if (!first)
                fputc('}', f);
        if (isnan(v))
                fputs(" NaN\n", f);
        else if (v == floor(v) && fabs(v) < 1e15)
                fprintf(f, " %.0f\n", v);
        else
                fprintf(f, " %.17g\n", v);
}

void metric_one(FILE *f, enum metric_id m, double v) {
        metric_head(f, m);
        metric_sample(f, m, v, (const char *)NULL);
}

void metrics_reply(struct httpd_req *req, void (*fill)(FILE *f, void *userdata), void *userdata) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f) {
                httpd_reply(req, 500, "text/plain", "out of memory\n", 14);
                return;
        }
        fill(f, userdata);
        fclose(f);
        httpd_reply(req, 200, PROM_CONTENT_TYPE, buf ? buf : "", buf ? len : 0);
        free(buf);
}
