/* deploy.h: the numbered deploy record (/_mgmt/deploy/<id>/payload and
 * /hash) and the transaction that writes the next one (DESIGN.md "Deploys").
 * Shared by mgmt-deploy (writes) and mgmt-agent (reads). Files: deploy.c
 * (the record and its JSON), deploy_etcd.c (reading and writing it in etcd).
 *
 * Recipe (writer):
 *   1. validate the graph (graph_parse) before touching etcd;
 *   2. deploy_read_latest(c, &head, err): highest id N (0 when none), its hash
 *      and record, all read at one revision;
 *   3. if head.id > 0 and head.hash equals the new graph's hash: nothing to do
 *      (unless forced);
 *   4. deploy_new(&d, head.id + 1, head.hash, text, len, &origin) then
 *      deploy_try_write(c, &head, &d, why): 1 written, 0 lost the race (why
 *      says which key was not as expected): go to 2 after a short jittered
 *      backoff, a bounded number of times; < 0 etcd failure (err filled).
 * Recipe (reader, e.g. the agent): deploy_read_latest(), or deploy_read(id),
 * then graph_parse(d.graph, ...). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hoststatus.h"

struct etcd_client;
struct etcd_error;

#define DEPLOY_HASH_LEN 64

struct deploy_origin {
        char *hostname; /* host that ran mgmt-deploy */
        char *commit;   /* CI_COMMIT_SHA / GITHUB_SHA / GIT_COMMIT, or NULL */
        char *job_url;  /* CI_JOB_URL / GitHub run URL / BUILD_URL, or NULL */
};

struct deploy {
        int64_t id;                         /* >= 1 */
        char hash[DEPLOY_HASH_LEN + 1];     /* sha256 hex of graph */
        char previous[DEPLOY_HASH_LEN + 1]; /* hash of deploy id-1; "" for id 1 */
        char *graph;                        /* the YAML text, as deployed */
        size_t graph_len;
        char *time; /* RFC 3339, UTC */
        struct deploy_origin origin;
        char signature[128 + 1];          /* Ed25519 hex (sign.h), "" when unsigned */
        char signer[DEPLOY_HASH_LEN + 1]; /* fingerprint of the signing key, "" when unsigned */
};

void deploy_origin_clear(struct deploy_origin *o);
/* Origin from this process: gethostname() and the CI variables above. */
int deploy_origin_from_env(struct deploy_origin *ret);

void deploy_clear(struct deploy *d);
/* A new record: hash of text, time now, copies of text, previous and origin
 * (previous may be NULL or "" for id 1). */
int deploy_new(struct deploy *ret, int64_t id, const char *previous, const char *text, size_t len,
               const struct deploy_origin *origin);

/* JSON payload: {"id":N,"hash":H,"previous":H|null,"graph":TEXT,"time":T,
 * "origin":{"hostname":..,"commit":..,"job_url":..}}, plus "signature":
 * 128 hex digits and "signer": 64 hex digits when signed (both or neither). */
json_t *deploy_to_json(const struct deploy *d, bool with_graph);
char *deploy_encode(const struct deploy *d); /* compact JSON text */
/* Parse and validate a payload: types, id >= 1, hashes 64 lowercase hex,
 * hash == sha256(graph), previous absent only for id 1. err says what is wrong. */
int deploy_decode(const char *text, size_t len, struct deploy *ret, char *err, size_t errlen);
int deploy_from_json(json_t *j, struct deploy *ret, char *err, size_t errlen);
/* 64 lowercase hex digits: the form of a deploy's hash. */
bool deploy_hash_is_valid(const char *s);

/* The newest deploy as read from etcd. id == 0: no deploy at all. */
struct deploy_head {
        int64_t id;
        char hash[DEPLOY_HASH_LEN + 1]; /* value of deploy/<id>/hash */
        struct deploy record;           /* decoded payload (record.id == 0 when id == 0) */
        int64_t revision;               /* etcd revision of the read */
};
void deploy_head_clear(struct deploy_head *h);

/* Read the highest deploy id, its hash and payload at one revision.
 * Returns 0, -EIO (etcd unreachable or an error reply; err filled) or
 * -EBADMSG (stored data is malformed; err->msg says which key). */
int deploy_read_latest(struct etcd_client *c, struct deploy_head *ret, struct etcd_error *err);
/* Read one deploy by id: 0, -ENOENT if absent, -EIO, -EBADMSG. */
int deploy_read(struct etcd_client *c, int64_t id, struct deploy *ret, struct etcd_error *err);
/* The highest id among the payload keys of a range of the deploy prefix
 * (keys only is enough); 0 when there is none. The one definition of "the
 * latest deploy" for mgmt-deploy and mgmt-agent alike: it is computed from
 * what exists now, so a deleted deploy (even one with a far-ahead id) is
 * forgotten. */
struct etcd_kvs;
int64_t deploy_highest_id(const struct etcd_kvs *kvs);
/* Every deploy id present (sorted ascending), at one revision. */
int deploy_list_ids(struct etcd_client *c, int64_t **ret_ids, size_t *ret_n, struct etcd_error *err);

/* The compare list of the transaction that writes deploy head->id + 1
 * (exposed for unit tests). */
json_t *deploy_txn_compare(const struct deploy_head *head);
/* The whole txn request body. */
json_t *deploy_txn_request(const struct deploy_head *head, const struct deploy *d);
/* Write d as the next deploy after head in one transaction. Returns 1 when
 * written, 0 when a compare failed (why: which key and what was expected),
 * -EIO on etcd errors (err filled), -EINVAL if d->id != head->id + 1. */
int deploy_try_write(struct etcd_client *c, const struct deploy_head *head, const struct deploy *d,
                     char *why, size_t whylen, struct etcd_error *err);

/* The status an agent reports at /_mgmt/status/<host>: hoststatus.h. */
