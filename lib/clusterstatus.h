/* clusterstatus.h: the whole cluster as one JSON document, the stable
 * `mgmt-supervisor status --json` schema (documented in mgmt-supervisor(8)),
 * and the table printed from it. Used by the status command and by the
 * /status endpoint of the metrics listener.
 *
 * Recipe:
 *   1. cluster_status_gather(client, cb, ud, &g): one member list, one txn
 *      reading the /_mgmt keys, then every member's /v3/maintenance/status
 *      and /health on its own client URL, all in parallel on the client's loop;
 *   2. cb(doc, error, ud) once: doc (borrowed) or error (a sentence);
 *   3. cluster_status_cancel(g) before cb drops the callback (the calls in
 *      flight finish and free what they hold);
 *   4. cluster_status_render(doc, now, f) prints the table.
 * cluster_status_doc() is the pure part: raw replies in, document out.
 * Files: clusterstatus.c (the document), clusterstatus_gather.c (the reads),
 * clusterstatus_table.c (the table). */
#pragma once

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "etcd.h"

#define CS_SCHEMA_VERSION 1

/* Field names of the document, spelled once. */
#define CS_SCHEMA "schema"
#define CS_TIME "time"
#define CS_REVISION "revision"
#define CS_CLUSTER "cluster" /* {"id", "generation", "created"} */
#define CS_CLUSTER_ID "id"
#define CS_GENERATION "generation"
#define CS_CREATED "created"
#define CS_IDEAL "ideal"
#define CS_VOTERS "voters"
#define CS_LEARNERS "learners"
#define CS_HEALTHY_VOTERS "healthy_voters"
#define CS_QUORUM "quorum"
#define CS_FAILURE_TOLERANCE "failure_tolerance"
#define CS_LEADER "leader"
#define CS_COORDINATOR "coordinator"
#define CS_PLAN "plan"
#define CS_HOSTS "hosts"
#define CS_H_NAME "name"
#define CS_H_ROLE "role"
#define CS_H_MEMBER_ID "member_id"
#define CS_H_LEADER "leader"
#define CS_H_HEALTHY "healthy"
#define CS_H_RAFT_INDEX "raft_index"
#define CS_H_RAFT_LAG "raft_index_lag"
#define CS_H_DB_SIZE "db_size"
#define CS_H_VERSION "etcd_version"
#define CS_H_CLIENT_URLS "client_urls"
#define CS_H_VOLUNTEER "volunteer"
#define CS_H_NOMINATED "nominated"
#define CS_H_ENDPOINTS "endpoints"
#define CS_H_DEPLOY "deploy"
#define CS_H_DEPLOY_STATE "deploy_state"
#define CS_H_SNAPSHOT_TIME "snapshot_time"
#define CS_H_SNAPSHOT_AGE "snapshot_age_seconds"
#define CS_H_ERROR "error"

/* Ops of the txn that reads the keys, in this order. */
enum {
        CS_OP_IDEAL,
        CS_OP_COORDINATOR,
        CS_OP_PLAN,
        CS_OP_CLUSTER,
        CS_OP_VOLUNTEER,
        CS_OP_NOMINATED,
        CS_OP_ENDPOINTS,
        CS_OP_STATUS,
        CS_OP_SNAPSHOT,
        _CS_OP_MAX,
};

/* The txn body reading every key the document needs (new reference). */
json_t *cluster_status_txn(void);

/* Pure: build the document. members: the member list reply; txn: the reply
 * to cluster_status_txn(); probes: object member id (16 hex digits) ->
 * {"status": reply or absent, "health": reply or absent, "error": text or
 * absent}; now: wall clock. Returns a new reference, or NULL with err set. */
json_t *cluster_status_doc(json_t *members, json_t *txn, json_t *probes, time_t now, char *err,
                           size_t errlen);

/* Print the table of a document (header, plan, one row per host). */
void cluster_status_render(json_t *doc, time_t now, FILE *f);

typedef void (*cluster_status_cb)(json_t *doc, const char *error, void *userdata);
struct cluster_status_gather;
int cluster_status_gather(struct etcd_client *c, cluster_status_cb cb, void *userdata,
                          struct cluster_status_gather **ret);
void cluster_status_cancel(struct cluster_status_gather *g);
/* Free every gather still waiting on client c, without calling back: only
 * right before etcd_client_free(c), which drops their replies. */
void cluster_status_abandon(struct etcd_client *c);

/* RFC 3339 UTC ("2026-01-02T03:04:05Z", fraction and offset accepted) to epoch seconds; -1 if malformed. */
time_t rfc3339_parse(const char *s);
