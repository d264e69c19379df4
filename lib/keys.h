/* keys.h: every /_mgmt/... etcd key in DESIGN.md is built here and nowhere else.
 * All return malloc'd strings (NULL on ENOMEM). The namespace is fixed: "/_mgmt". */
#pragma once

#include <stdint.h>

#define MGMT_NS "/_mgmt"

char *key_ideal_size(void);            /* /_mgmt/idealClusterSize */
char *key_volunteer(const char *host); /* /_mgmt/volunteer/<host> */
char *key_volunteer_prefix(void);      /* /_mgmt/volunteer/ */
char *key_nominated(const char *host);
char *key_nominated_prefix(void);
char *key_endpoints(const char *host);
char *key_endpoints_prefix(void);
char *key_coordinator(void);
char *key_cluster(void);              /* /_mgmt/cluster: {id, generation, created} */
char *key_plan(void);                 /* /_mgmt/plan: the coordinator's decision */
char *key_deploy_prefix(void);        /* /_mgmt/deploy/ */
char *key_deploy_payload(int64_t id); /* /_mgmt/deploy/<id>/payload */
char *key_deploy_hash(int64_t id);
char *key_exported_prefix(void);                  /* /_mgmt/exported/ */
char *key_exported_host_prefix(const char *host); /* /_mgmt/exported/<host>/resources/ */
char *key_exported(const char *host, const char *kind, const char *name);
char *key_converged(const char *host);
char *key_status(const char *host);
char *key_status_prefix(void);
char *key_snapshot(const char *host); /* /_mgmt/snapshot/<host> */
char *key_snapshot_prefix(void);

/* The last path component after prefix, e.g. host of a volunteer key, or NULL
 * if key does not start with prefix or the rest is not a valid hostname. */
const char *key_host_suffix(const char *key, const char *prefix);
/* Deploy id of "/_mgmt/deploy/<id>/<leaf>" and which leaf; -1 if not such a key. */
int64_t key_deploy_id(const char *key, const char **ret_leaf);
/* Parse "/_mgmt/exported/<host>/resources/<kind>/<name>" into its parts (malloc'd). */
int key_exported_parse(const char *key, char **ret_host, char **ret_kind, char **ret_name);
