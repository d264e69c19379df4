/* graph.h: the resource graph (mgmt's YAML format, DESIGN.md "Graphs"):
 * parsing, complete validation with FILE:LINE:COL errors, ${hostname}
 * substitution, JSON form of a resource (for export/collect), ordering.
 * Shared by mgmt-deploy (validate before sending) and mgmt-agent (apply). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAPH_MAX_SIZE (1024 * 1024) /* bytes of YAML accepted */

enum res_kind { RES_FILE, RES_EXEC, RES_PRINT, RES_NOOP, RES_SVC, RES_PKG, _RES_KIND_MAX };

/* Every kind's "meta" (mgmt's meta parameters); zero values mean "not set". */
struct res_meta {
        bool noop;           /* check only: report what would change, never apply */
        int retry;           /* 0: the agent's default; -1: forever; N: N retries then failed */
        uint64_t delay_usec; /* between retries (0: the agent's backoff) */
        uint64_t poll_usec;  /* check again every poll (0: only on events) */
};

struct res_file {
        char *path;    /* absolute; ends with '/' for a directory */
        char *content; /* NULL: content not managed */
        char *source;  /* NULL: none; else a local file whose content is copied */
        bool absent;   /* state: absent (default exists) */
        bool force;    /* replace a thing of the wrong type (moved aside, never deleted) */
        int mode;      /* -1: not managed; else 0..07777 */
        char *owner;   /* NULL: not managed */
        char *group;
};

struct res_exec {
        char *cmd;
        char *shell;           /* NULL: run cmd via /bin/sh -c */
        char *ifcmd;           /* run cmd only when ifcmd exits 0 */
        char *ifshell;         /* shell for ifcmd (NULL: /bin/sh) */
        char *watchcmd;        /* long-running; every output line triggers a check */
        char *watchshell;      /* shell for watchcmd */
        uint64_t timeout_usec; /* 0: none */
        uint64_t pollint_usec; /* check (ifcmd, cmd) again every pollint; 0: none */
};

struct res_print {
        char *msg;
};

enum svc_state { SVC_STATE_UNSET, SVC_RUNNING, SVC_STOPPED };
enum svc_startup { SVC_STARTUP_UNSET, SVC_ENABLED, SVC_DISABLED };

/* svc: a systemd unit; the resource name is the unit ("NAME.service" when
 * the name has no '.'). Unset fields are not managed. */
struct res_svc {
        enum svc_state state;
        enum svc_startup startup;
};

enum pkg_state { PKG_INSTALLED, PKG_UNINSTALLED, PKG_NEWEST };

/* pkg: a Debian package; the resource name is the package name. */
struct res_pkg {
        enum pkg_state state;
};

struct resource {
        enum res_kind kind;
        char *name;         /* without the "@@" */
        bool exported;      /* name started with "@@" */
        unsigned line, col; /* where it was declared (1-based), 0 if from JSON */
        struct res_meta meta;
        struct res_file file;
        struct res_exec exec;
        struct res_print print;
        struct res_svc svc;
        struct res_pkg pkg;
};

struct collect {
        enum res_kind kind;
        char *pattern;   /* for file: directory (ends with '/') where collected files land */
        bool allow_exec; /* kind exec: agents with --trusted-keys run collected execs only if set */
};

struct edge {
        char *name;
        size_t from, to; /* indexes into graph.res */
        bool notify;
};

struct graph {
        char *name;
        struct resource *res;
        size_t n_res;
        struct collect *collect;
        size_t n_collect;
        struct edge *edges;
        size_t n_edges;
};

const char *res_kind_to_string(enum res_kind k);
const char *svc_state_to_string(enum svc_state s);
const char *svc_startup_to_string(enum svc_startup s);
const char *pkg_state_to_string(enum pkg_state s);
/* The systemd unit of a svc resource: its name, plus ".service" when the
 * name has no '.' (as mgmt does). */
int svc_unit_name(const char *name, char *buf, size_t len);
int res_kind_from_string(const char *s); /* -EINVAL if unknown */

/* Validation goes on after an error: err holds every error found, one
 * "FILE:LINE:COL: message" per line, at most GRAPH_ERRORS_MAX of them and
 * then "... and N more errors". GRAPH_ERR_LEN holds that many. */
#define GRAPH_ERRORS_MAX 50
#define GRAPH_ERR_LEN (GRAPH_ERRORS_MAX * 600)

/* Parse and fully validate. filename is used in messages only. On error
 * returns -EINVAL and err holds the errors (see above). */
int graph_parse(const char *text, size_t len, const char *filename, struct graph **ret, char *err,
                size_t errlen);
/* Read a file (refusing > GRAPH_MAX_SIZE) and parse it. */
int graph_load_file(const char *path, struct graph **ret, char **ret_text, char *err, size_t errlen);
void graph_free(struct graph *g);

/* Replace ${hostname} in every string of the graph, then check again what
 * the replacement can break (unique names, unique file paths). -EINVAL with
 * err "LINE:COL: message" (the caller adds the file name), or -ENOMEM. */
int graph_subst_hostname(struct graph *g, const char *hostname, char *err, size_t errlen);

/* Indexes of resources in an order that respects every edge (ties by position). */
int graph_toposort(const struct graph *g, size_t **ret_order);

/* JSON form of one resource: {"kind":..,"name":..,<fields>}. */
json_t *resource_to_json(const struct resource *r);
/* Inverse, validated like YAML input; err names the bad field. */
int resource_from_json(json_t *j, struct resource *ret, char *err, size_t errlen);
void resource_clear(struct resource *r);
int resource_copy(const struct resource *src, struct resource *dst);
bool resource_equal(const struct resource *a, const struct resource *b);
/* a and b (either may be NULL: no resources) export the same resources
 * with the same JSON, i.e. publishing either writes the same keys and
 * values. A JSON that cannot be built counts as a difference. */
bool graph_exports_equal(const struct graph *a, const struct graph *b);
