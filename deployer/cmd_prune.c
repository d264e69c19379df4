/* cmd_prune.c: 'prune --keep N': remove all but the newest N deploys. The
 * latest deploy is never removed (N >= 1), each deploy's payload and hash go
 * together in one transaction that also requires the latest deploy to still
 * exist, and agents, which follow the highest id, are not affected. */
#include <stdio.h>

#include "deployer.h"
#include "keys.h"
#include "log.h"
#include "macro.h"

/* deploys per transaction: two deletes each, under etcd's default 128 ops */
#define PRUNE_BATCH 60

int cmd_prune(struct deployer *d) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        struct etcd_error e = {0};
        long long keep = d->cfg.v[OPT_KEEP].n;
        size_t n = 0, removed = 0;
        int r;

        if (!d->cfg.v[OPT_KEEP].set || keep < 1) {
                fprintf(stderr, "mgmt-deploy: prune needs --keep N with N >= 1 (the latest deploy is never "
                                "removed)\n");
                return EXIT_USAGE;
        }
        if (deployer_connect(d, &c) < 0)
                return EXIT_ERROR;
        r = deploy_list_ids(c, &ids, &n, &e);
        if (r < 0) {
                log_errorx("cannot list deploys: %s", e.msg);
                return EXIT_ERROR;
        }
        if (n <= (size_t)keep) {
                if (d->json)
                        printf("{\"removed\": 0, \"kept\": %zu}\n", n);
                else
                        printf("nothing to prune: %zu deploy(s), keeping %lld\n", n, keep);
                return EXIT_DONE;
        }
        int64_t latest = ids[n - 1];
        size_t victims = n - (size_t)keep;
        _cleanup_free_ char *lk = key_deploy_payload(latest);
        for (size_t i = 0; i < victims; i += PRUNE_BATCH) {
                json_t *ops = json_array(), *reply = NULL;
                bool ok = false;
                for (size_t j = i; j < victims && j < i + PRUNE_BATCH; j++) {
                        _cleanup_free_ char *pk = key_deploy_payload(ids[j]), *hk = key_deploy_hash(ids[j]);
                        json_array_append_new(ops, etcd_op_delete(pk, false));
                        json_array_append_new(ops, etcd_op_delete(hk, false));
                }
                r = etcd_call_sync(c, ETCD_TXN,
                                   etcd_req_txn(json_pack("[o]", etcd_cmp_version(lk, ">", 0)), ops, NULL),
                                   &reply, &e);
                if (r >= 0)
                        r = etcd_parse_txn(reply, &ok, &e);
                json_decref(reply);
                if (r < 0) {
                        log_errorx(
                            "cannot remove deploys %lld..: %s (%zu removed so far, each with its hash)",
                            (long long)ids[i], e.msg, removed);
                        return EXIT_ERROR;
                }
                if (!ok) {
                        log_errorx(
                            "the latest deploy %lld vanished while pruning; stopped (%zu removed so far)",
                            (long long)latest, removed);
                        return EXIT_ERROR;
                }
                removed += (i + PRUNE_BATCH < victims ? PRUNE_BATCH : victims - i);
        }
        if (d->json)
                printf("{\"removed\": %zu, \"kept\": %lld, \"first_kept\": %lld, \"latest\": %lld}\n",
                       removed, keep, (long long)ids[victims], (long long)latest);
        else
                printf("removed %zu deploy(s) (%lld..%lld); kept %lld (%lld..%lld)\n", removed,
                       (long long)ids[0], (long long)ids[victims - 1], keep, (long long)ids[victims],
                       (long long)latest);
        return EXIT_DONE;
}
