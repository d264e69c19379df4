/* deployer.h: map of mgmt-deploy, the CI/operator CLI that validates a graph
 * and writes it as the next numbered deploy (DESIGN.md "Deploys"). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "deploy.h"
#include "etcd.h"

/* Exit codes (DESIGN.md "Interfaces"). */
enum {
        EXIT_DONE = 0,
        EXIT_ERROR = 1,
        EXIT_USAGE = 2,
        EXIT_RACE = 3,    /* lost the race for the next id after every retry */
        EXIT_TIMEOUT = 4, /* --wait: the timeout passed with hosts pending */
        EXIT_FAILED = 5,  /* --wait: a host failed to apply the deploy */
};

/* Global option indexes into the table in main.c. */
enum {
        OPT_SEEDS,
        OPT_FORCE,
        OPT_WAIT,
        OPT_TIMEOUT,
        OPT_JSON,
        OPT_CERT_FILE,
        OPT_KEY_FILE,
        OPT_TRUSTED_CA_FILE,
        OPT_SIGN_KEY,
        OPT_HOSTS,
        OPT_MIN_HOSTS,
        OPT_KEEP,
        OPT_ETCD_USER,
        OPT_ETCD_PASSWORD_FILE,
        _OPT_MAX,
};

#define DEPLOY_MAX_TRIES 10

struct deployer {
        struct config cfg;
        char **args; /* positional arguments after the command name */
        uint64_t timeout_usec;
        bool json, force, wait;
        char **hosts;     /* --hosts: hosts --wait always waits for */
        size_t min_hosts; /* --min-hosts */
};

/* connect.c */
int deployer_connect(struct deployer *d, struct etcd_client **ret);

/* cmd_deploy.c: yaml, empty */
int cmd_yaml(struct deployer *d);
int cmd_empty(struct deployer *d);
int cmd_validate(struct deployer *d); /* validate FILE: no cluster */
/* Validate text and write it as the next deploy (then --wait). */
int deploy_graph_text(struct deployer *d, const char *text, size_t len, const char *filename);

/* cmd_show.c: list, show, status */
int cmd_list(struct deployer *d);
int cmd_show(struct deployer *d);
int cmd_status(struct deployer *d);

/* cmd_prune.c: prune --keep N */
int cmd_prune(struct deployer *d);

/* cmd_keygen.c: keygen, and --sign-key */
struct sign_key;
int cmd_keygen(struct deployer *d);
/* Load --sign-key (MGMT_SIGN_KEY): 1 loaded, 0 not given, < 0 refused (logged). */
int deployer_load_sign_key(struct deployer *d, struct sign_key **ret);

/* wait.c */
/* One host --wait waits for. */
struct wait_host {
        char *host;
        bool required;   /* named by --hosts */
        bool reporting;  /* its status key exists now */
        bool has_status; /* st was read at least once */
        struct host_status st;
        int64_t rev; /* the etcd revision st and reporting are from */
};
enum wait_verdict { WAIT_PENDING, WAIT_DONE, WAIT_FAILED };
/* Pure: FAILED when a reporting host failed exactly deploy id (*ret_failed =
 * its index); DONE when at least one and at least min_hosts hosts converged
 * on exactly id and every other host is excused (min_hosts > 0, not named by
 * --hosts and not reporting); else PENDING. *ret_done: hosts converged. */
enum wait_verdict wait_decide(const struct wait_host *hosts, size_t n, int64_t id, size_t min_hosts,
                              size_t *ret_done, size_t *ret_failed);
/* The hosts not converged on id and not excused, described ("h2 (applying
 * deploy 4)"), comma-joined, NULL if none (or out of memory); at most max of
 * them (0: all), then "and N more". */
char *wait_pending_list(const struct wait_host *hosts, size_t n, int64_t id, size_t min_hosts, size_t max);
/* A wait on /_mgmt/status/, set up before the deploy is written: the watch
 * is opened and confirmed, and the status keys read, while etcd is idle,
 * not behind the burst of status writes that the deploy sets off (that
 * took a third of a 200-agent deploy). NULL on error (logged). hosts
 * (--hosts) may be NULL. */
struct waiter;
struct waiter *wait_prepare(struct etcd_client *c, uint64_t timeout_usec, char *const *hosts,
                            size_t min_hosts);
/* Wait until every host waited for converged on id (EXIT_DONE), one failed
 * (EXIT_FAILED) or timeout_usec passed from now (EXIT_TIMEOUT, naming the
 * hosts pending). */
int wait_for_deploy(struct waiter *w, struct etcd_client *c, int64_t id);
struct waiter *wait_free(struct waiter *w);
static inline void wait_freep(struct waiter **w) {
        wait_free(*w);
}
