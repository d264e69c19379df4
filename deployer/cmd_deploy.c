/* cmd_deploy.c: 'yaml FILE' and 'empty': validate the graph completely, then
 * write it as the next deploy id, retrying a lost race with a fresh read. */
#include <bsd/stdlib.h>
#include <stdio.h>
#include <time.h>

#include "deploy.h"
#include "deployer.h"
#include "graph.h"
#include "log.h"
#include "macro.h"
#include "sign.h"
#include "util.h"

static const char empty_graph[] = "graph: empty\n";

/* Short pause before retrying a lost race: 20..(40 << try) ms, capped at 1 s,
 * random so that racing deployers spread out. This is a CLI, not a daemon. */
static void backoff(unsigned try) {
        uint64_t max_ms = 40ULL << (try < 5 ? try : 5);
        if (max_ms > 1000)
                max_ms = 1000;
        uint64_t ms = 20 + arc4random_uniform((uint32_t)max_ms);
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static void print_result(struct deployer *d, int64_t id, const char *hash, const char *previous, bool noop) {
        if (d->json) {
                json_t *j = json_pack("{s:I, s:s, s:s?, s:b}", "id", (json_int_t)id, "hash", hash,
                                      "previous", previous && *previous ? previous : NULL, "noop", noop);
                if (j) {
                        json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
                        json_decref(j);
                }
                fputc('\n', stdout);
        } else
                printf("%lld\n", (long long)id);
        fflush(stdout);
}

/* The reply to our deploy transaction was lost (timeout, connection reset):
 * read the latest deploy again. Returns 1 when deploy `next` holds our graph
 * (done), 0 when it does not (nothing deployed), -EIO when etcd cannot say. */
static int settle_lost_reply(struct deployer *d, struct etcd_client *c, int64_t next, const char *hash) {
        struct deploy_head head = {0};
        struct etcd_error e = {0};
        int r;

        r = deploy_read_latest(c, &head, &e);
        if (r < 0) {
                log_errorx("cannot read the latest deploy either (%s): whether deploy %lld was written is "
                           "unknown; check with 'mgmt-deploy list'",
                           r == -ENOMEM ? "out of memory" : e.msg, (long long)next);
                return -EIO;
        }
        if (head.id == next && streq(head.hash, hash)) {
                log_notice("deploy %lld holds this graph (hash %.12s): the write went through",
                           (long long)next, hash);
                print_result(d, next, hash, head.record.previous, false);
                r = 1;
        } else {
                log_errorx("deploy %lld was not written (latest is %lld); nothing was deployed",
                           (long long)next, (long long)head.id);
                r = 0;
        }
        deploy_head_clear(&head);
        return r;
}

/* 1. Validate completely before anything is sent: 0, or -1 when the
 * errors were logged. */
static int validate_graph(const char *text, size_t len, const char *filename) {
        _cleanup_free_ char *err = malloc(GRAPH_ERR_LEN);
        struct graph *g = NULL;
        int r;

        if (!err) {
                log_errorx("out of memory");
                return -1;
        }
        r = graph_parse(text, len, filename, &g, err, GRAPH_ERR_LEN);
        if (r < 0) {
                if (r == -ENOMEM)
                        log_errorx("out of memory parsing '%s'", filename);
                else
                        log_lines(LOG_ERR, "", err); /* one line per validation error */
                log_errorx("nothing was deployed");
                return -1;
        }
        log_info("graph '%s' in '%s' is valid: %zu resources, %zu edges, %zu collects", g->name, filename,
                 g->n_res, g->n_edges, g->n_collect);
        graph_free(g);
        return 0;
}

enum { TRY_FAILED = -1, TRY_LOST = 0, TRY_DONE = 1 };

/* 2. One round: read the latest id and hash, write id+1 if nobody else did.
 * TRY_DONE with *ret_id (written, already there, or found after a lost
 * reply), TRY_LOST when another deploy took the id (why says which),
 * TRY_FAILED when it was logged why nothing was deployed. */
static int deploy_try(struct deployer *d, struct etcd_client *c, struct sign_key *key,
                      struct deploy_origin *origin, const char *text, size_t len, const char *filename,
                      const char *hash, int64_t *ret_id, int64_t *ret_next, char *why, size_t whylen) {
        struct deploy_head head = {0};
        struct deploy rec = {0};
        struct etcd_error e = {0};
        int64_t next;
        int r;

        r = deploy_read_latest(c, &head, &e);
        if (r < 0) {
                if (r == -ENOMEM)
                        log_errorx("out of memory");
                else
                        log_errorx("cannot read the latest deploy from etcd (%s): %s",
                                   etcd_client_current_endpoint(c) ? etcd_client_current_endpoint(c) : "?",
                                   e.msg);
                log_errorx("nothing was deployed");
                return TRY_FAILED;
        }
        if (head.id > 0 && streq(head.hash, hash) && !d->force &&
            (!key || streq(head.record.signer, sign_key_fingerprint(key)))) {
                log_info("graph is identical to the latest deploy %lld (hash %.12s): nothing to do "
                         "(use --force to deploy it again)",
                         (long long)head.id, hash);
                *ret_id = head.id;
                print_result(d, head.id, hash, head.record.previous, true);
                deploy_head_clear(&head);
                return TRY_DONE;
        }
        if (head.id == INT64_MAX) {
                log_errorx("the latest deploy id is %lld: no next id; nothing was deployed",
                           (long long)head.id);
                deploy_head_clear(&head);
                return TRY_FAILED;
        }
        r = deploy_new(&rec, head.id + 1, head.id > 0 ? head.hash : NULL, text, len, origin);
        if (r < 0) {
                log_error_errno(r, "cannot build the deploy record: %m");
                deploy_head_clear(&head);
                return TRY_FAILED;
        }
        if (key && (r = deploy_sign(&rec, key)) < 0) {
                log_error_errno(r, "cannot sign deploy %lld with '%s': %m; nothing was deployed",
                                (long long)rec.id, sign_key_origin(key));
                deploy_clear(&rec);
                deploy_head_clear(&head);
                return TRY_FAILED;
        }
        why[0] = 0;
        next = *ret_next = rec.id;
        r = deploy_try_write(c, &head, &rec, why, whylen, &e);
        if (r == 1) {
                *ret_id = rec.id;
                log_info("deployed '%s' as deploy %lld (hash %.12s%s%.12s)", filename, (long long)rec.id,
                         hash, head.id > 0 ? ", previous " : "", head.id > 0 ? head.hash : "");
                print_result(d, rec.id, hash, rec.previous, false);
                deploy_clear(&rec);
                deploy_head_clear(&head);
                return TRY_DONE;
        }
        deploy_clear(&rec);
        deploy_head_clear(&head);
        if (r < 0 && r != -ENOMEM && e.code == ETCD_ERR_TRANSPORT) {
                /* the transaction may have committed with its reply lost: look */
                log_warnx("cannot write deploy %lld: %s; checking whether it went through", (long long)next,
                          e.msg);
                r = settle_lost_reply(d, c, next, hash);
                if (r == 1) {
                        *ret_id = next;
                        return TRY_DONE;
                }
                return TRY_FAILED;
        }
        if (r < 0) {
                log_errorx("cannot write deploy %lld: %s", (long long)next,
                           r == -ENOMEM ? "out of memory" : e.msg);
                log_errorx("nothing was deployed");
                return TRY_FAILED;
        }
        return TRY_LOST;
}

int deploy_graph_text(struct deployer *d, const char *text, size_t len, const char *filename) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        _cleanup_sign_key_ struct sign_key *key = NULL;
        _cleanup_(wait_freep) struct waiter *w = NULL;
        struct deploy_origin origin = {0};
        char hash[65], why[1024];
        int64_t id = 0, next = 0;
        int r, ret = EXIT_ERROR;

        if (validate_graph(text, len, filename) < 0)
                return EXIT_ERROR;
        sha256_hex(text, len, hash);
        if (deployer_load_sign_key(d, &key) < 0) {
                log_errorx("nothing was deployed");
                return EXIT_ERROR;
        }

        r = deploy_origin_from_env(&origin);
        if (r < 0) {
                log_error_errno(r, "cannot build the deploy origin: %m");
                return EXIT_ERROR;
        }
        if (deployer_connect(d, &c) < 0)
                goto out;
        if (d->wait && !(w = wait_prepare(c, d->timeout_usec, d->hosts, d->min_hosts))) {
                log_errorx("nothing was deployed");
                goto out;
        }

        for (unsigned try = 1;; try++) {
                r = deploy_try(d, c, key, &origin, text, len, filename, hash, &id, &next, why, sizeof why);
                if (r == TRY_DONE)
                        break;
                if (r == TRY_FAILED)
                        goto out;
                if (try >= DEPLOY_MAX_TRIES) {
                        log_errorx(
                            "lost the race for the next deploy id %u times, giving up; last refusal: %s",
                            try, why);
                        log_errorx("nothing was deployed");
                        ret = EXIT_RACE;
                        goto out;
                }
                log_notice("lost the race for deploy %lld: %s; retrying with a fresh read (%u/%u)",
                           (long long)next, why, try + 1, DEPLOY_MAX_TRIES);
                backoff(try);
        }

        ret = w ? wait_for_deploy(w, c, id) : EXIT_DONE;
out:
        deploy_origin_clear(&origin);
        return ret;
}

int cmd_yaml(struct deployer *d) {
        _cleanup_free_ char *text = NULL;
        const char *file = d->args[0];
        bool in = streq(file, "-");
        size_t len = 0;
        int r;

        r = read_file_max(in ? "/dev/stdin" : file, GRAPH_MAX_SIZE, &text, &len);
        if (r == -EFBIG) {
                log_errorx("%s: graph is larger than the limit of %d bytes (1 MiB); nothing was deployed",
                           file, GRAPH_MAX_SIZE);
                return EXIT_ERROR;
        }
        if (r < 0) {
                log_errorx("cannot read graph '%s': %s; nothing was deployed", file, strerror(-r));
                return EXIT_ERROR;
        }
        return deploy_graph_text(d, text, len, in ? "<stdin>" : file);
}

/* validate FILE: every error, no cluster; exit 0 valid, 1 invalid. */
int cmd_validate(struct deployer *d) {
        _cleanup_free_ char *text = NULL, *err = malloc(GRAPH_ERR_LEN);
        const char *file = d->args[0];
        bool in = streq(file, "-");
        struct graph *g = NULL;
        size_t len = 0;
        int r;

        if (!err) {
                log_errorx("out of memory");
                return EXIT_ERROR;
        }
        r = read_file_max(in ? "/dev/stdin" : file, GRAPH_MAX_SIZE, &text, &len);
        if (r == -EFBIG) {
                log_errorx("%s: graph is larger than the limit of %d bytes (1 MiB)", file, GRAPH_MAX_SIZE);
                return EXIT_ERROR;
        }
        if (r < 0) {
                log_errorx("cannot read graph '%s': %s", file, strerror(-r));
                return EXIT_ERROR;
        }
        r = graph_parse(text, len, in ? "<stdin>" : file, &g, err, GRAPH_ERR_LEN);
        if (r < 0) {
                if (r == -ENOMEM)
                        log_errorx("out of memory parsing '%s'", file);
                else
                        log_lines(LOG_ERR, "", err); /* one line per validation error */
                return EXIT_ERROR;
        }
        if (d->json)
                printf("{\"valid\": true, \"resources\": %zu, \"edges\": %zu, \"collects\": %zu}\n",
                       g->n_res, g->n_edges, g->n_collect);
        else
                printf("%s: graph '%s' is valid: %zu resources, %zu edges, %zu collects\n",
                       in ? "<stdin>" : file, g->name, g->n_res, g->n_edges, g->n_collect);
        graph_free(g);
        return EXIT_DONE;
}

int cmd_empty(struct deployer *d) {
        return deploy_graph_text(d, empty_graph, sizeof(empty_graph) - 1, "<empty>");
}
