/* metrics.h: every Prometheus metric of DESIGN.md ("Observability") is spelled
 * here and nowhere else, with its type and help text, and the writer of the
 * text exposition format (# HELP, # TYPE, samples). */
#pragma once

#include <stdio.h>

enum metric_id {
        /* supervisor */
        M_CLUSTER_VOTING_MEMBERS,
        M_CLUSTER_LEARNERS,
        M_IDEAL_CLUSTER_SIZE,
        M_FAILURE_TOLERANCE,
        M_IS_COORDINATOR,
        M_ETCD_UP,
        M_ETCD_RESTARTS_TOTAL,
        M_MEMBERSHIP_CHANGES_TOTAL, /* {action} */
        M_LAST_SNAPSHOT_TIMESTAMP_SECONDS,
        M_SNAPSHOT_FAILURES_TOTAL,
        /* agent */
        M_DEPLOY_ID,
        M_RESOURCES,        /* {kind,state} */
        M_CHECKAPPLY_TOTAL, /* {kind,eventful,errorful} */
        M_CONVERGED,
        _M_MAX,
};

struct metric_def {
        const char *name;
        const char *type; /* "gauge" or "counter" */
        const char *help;
};

extern const struct metric_def metric_defs[_M_MAX];

/* "# HELP" and "# TYPE" lines of one metric: once, before its samples. */
void metric_head(FILE *f, enum metric_id m);
/* One sample. labels: NULL, or pairs name, value, ..., NULL (values escaped). */
void metric_sample(FILE *f, enum metric_id m, double v, ...);
/* metric_head + one sample without labels. */
void metric_one(FILE *f, enum metric_id m, double v);

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct httpd_req;
/* Answer a /metrics request: fill(f, userdata) writes the samples (with
 * the calls above), the reply carries them as PROM_CONTENT_TYPE. */
void metrics_reply(struct httpd_req *req, void (*fill)(FILE *f, void *userdata), void *userdata);
