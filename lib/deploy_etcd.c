/* deploy_etcd.c: deploy records in etcd: the highest id, reading one deploy
 * or the latest at one revision, and the compare-and-write transaction that
 * writes the next id (DESIGN.md "Deploys"). The record itself: deploy.c. */
#include <bsd/string.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy.h"
#include "etcd.h"
#include "keys.h"
#include "macro.h"
#include "util.h"

#ifndef _cleanup_json_
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

void deploy_head_clear(struct deploy_head *h) {
        deploy_clear(&h->record);
        *h = (struct deploy_head){0};
}

static int etcd_fail(struct etcd_error *err, int code, const char *fmt, ...) _printf_(3, 4);
static int etcd_fail(struct etcd_error *err, int code, const char *fmt, ...) {
        va_list ap;
        if (err) {
                err->code = code;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof err->msg, fmt, ap);
                va_end(ap);
        }
        return code == ETCD_ERR_PROTOCOL ? -EBADMSG : -EIO;
}

/* Range call; reply parsed into ret. */
static int range(struct etcd_client *c, const char *key, bool prefix, int64_t rev, bool keys_only,
                 struct etcd_kvs *ret, struct etcd_error *err) {
        _cleanup_json_ json_t *reply = NULL;
        json_t *body = etcd_req_range(key, prefix, rev, keys_only);
        int r;

        if (!body)
                return -ENOMEM;
        r = etcd_call_sync(c, ETCD_RANGE, body, &reply, err);
        if (r < 0)
                return r;
        r = etcd_parse_range(reply, ret, err);
        return r < 0 ? -EBADMSG : 0;
}

static int cmp_int64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

int64_t deploy_highest_id(const struct etcd_kvs *kvs) {
        int64_t best = 0;

        for (size_t i = 0; kvs && i < kvs->n; i++) {
                const char *leaf = NULL;
                int64_t id = key_deploy_id(kvs->kvs[i].key, &leaf);
                if (id > best && leaf && streq(leaf, "payload"))
                        best = id;
        }
        return best;
}

/* Ids of every payload key in a keys-only range of the deploy prefix. */
static int ids_from_kvs(const struct etcd_kvs *kvs, int64_t **ret, size_t *ret_n) {
        int64_t *ids = calloc(kvs->n + 1, sizeof(int64_t));
        size_t n = 0;

        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < kvs->n; i++) {
                const char *leaf = NULL;
                int64_t id = key_deploy_id(kvs->kvs[i].key, &leaf);
                if (id > 0 && leaf && streq(leaf, "payload"))
                        ids[n++] = id;
        }
        qsort(ids, n, sizeof(int64_t), cmp_int64);
        *ret = ids;
        *ret_n = n;
        return 0;
}

int deploy_list_ids(struct etcd_client *c, int64_t **ret_ids, size_t *ret_n, struct etcd_error *err) {
        _cleanup_free_ char *prefix = key_deploy_prefix();
        struct etcd_kvs kvs = {0};
        int r;

        if (!prefix)
                return -ENOMEM;
        r = range(c, prefix, true, 0, true, &kvs, err);
        if (r >= 0)
                r = ids_from_kvs(&kvs, ret_ids, ret_n);
        etcd_kvs_clear(&kvs);
        return r;
}

/* Payload and hash of one id at a revision (0 = latest). */
static int read_at(struct etcd_client *c, int64_t id, int64_t rev, struct deploy *ret,
                   char hash[DEPLOY_HASH_LEN + 1], struct etcd_error *err) {
        _cleanup_free_ char *kp = key_deploy_payload(id), *kh = key_deploy_hash(id);
        struct etcd_kvs p = {0}, h = {0};
        struct deploy d = {0};
        char why[400];
        int r;

        if (!kp || !kh)
                return -ENOMEM;
        r = range(c, kp, false, rev, false, &p, err);
        if (r < 0)
                goto out;
        if (p.n == 0) {
                r = -ENOENT;
                if (err)
                        snprintf(err->msg, sizeof err->msg, "no deploy %lld: key '%s' does not exist",
                                 (long long)id, kp);
                goto out;
        }
        r = range(c, kh, false, p.revision, false, &h, err);
        if (r < 0)
                goto out;
        if (h.n == 0 || !h.kvs[0].value || !deploy_hash_is_valid(h.kvs[0].value)) {
                r = etcd_fail(err, ETCD_ERR_PROTOCOL, "key '%s' is %s (expected 64 lowercase hex digits)",
                              kh, h.n == 0 ? "missing" : "malformed");
                goto out;
        }
        r = deploy_decode(p.kvs[0].value, p.kvs[0].value_len, &d, why, sizeof why);
        if (r < 0) {
                r = r == -ENOMEM ? r : etcd_fail(err, ETCD_ERR_PROTOCOL, "key '%s': %s", kp, why);
                goto out;
        }
        if (d.id != id || !streq(d.hash, h.kvs[0].value)) {
                r = etcd_fail(err, ETCD_ERR_PROTOCOL,
                              "key '%s' records id %lld and hash %.12s, but the key is for id %lld with "
                              "hash %.12s in '%s'",
                              kp, (long long)d.id, d.hash, (long long)id, h.kvs[0].value, kh);
                deploy_clear(&d);
                goto out;
        }
        if (hash)
                strlcpy(hash, h.kvs[0].value, DEPLOY_HASH_LEN + 1);
        *ret = d;
        r = 0;
out:
        etcd_kvs_clear(&p);
        etcd_kvs_clear(&h);
        return r;
}

int deploy_read(struct etcd_client *c, int64_t id, struct deploy *ret, struct etcd_error *err) {
        return read_at(c, id, 0, ret, NULL, err);
}

int deploy_read_latest(struct etcd_client *c, struct deploy_head *ret, struct etcd_error *err) {
        _cleanup_free_ char *prefix = key_deploy_prefix();
        struct etcd_kvs kvs = {0};
        struct deploy_head h = {0};
        int r;

        if (!prefix)
                return -ENOMEM;
        r = range(c, prefix, true, 0, true, &kvs, err);
        if (r < 0)
                return r;
        h.revision = kvs.revision;
        h.id = deploy_highest_id(&kvs);
        if (h.id == 0 && kvs.n > 0)
                /* the first deploy's compare wants the prefix empty: say why it never will be */
                r = etcd_fail(err, ETCD_ERR_PROTOCOL,
                              "key '%s' is under '%s' but there is no deploy payload: remove it to deploy",
                              kvs.kvs[0].key, prefix);
        etcd_kvs_clear(&kvs);
        if (r < 0)
                return r;
        if (h.id == 0) {
                *ret = h;
                return 0;
        }
        r = read_at(c, h.id, h.revision, &h.record, h.hash, err);
        if (r == -ENOENT) /* compacted or deleted between the two reads */
                r = etcd_fail(err, ETCD_ERR_PROTOCOL, "deploy %lld vanished while reading it",
                              (long long)h.id);
        if (r < 0)
                return r;
        *ret = h;
        return 0;
}

/* "/_mgmt/deploy/" -> "/_mgmt/deploy0": the end of the prefix range. */
static char *prefix_end(const char *p) {
        char *e = strdup(p);
        size_t n;
        if (!e)
                return NULL;
        n = strlen(e);
        if (n > 0)
                e[n - 1]++;
        return e;
}

json_t *deploy_txn_compare(const struct deploy_head *head) {
        _cleanup_free_ char *next = key_deploy_payload(head->id + 1);
        json_t *cmp = json_array();

        if (!next || !cmp)
                goto oom;
        if (json_array_append_new(cmp, etcd_cmp_version(next, "=", 0)) < 0)
                goto oom;
        if (head->id == 0) {
                /* no deploy at all: every key under the prefix has version 0 (none exists) */
                _cleanup_free_ char *prefix = key_deploy_prefix(), *end = NULL, *end64 = NULL;
                json_t *all;
                if (!prefix || !(end = prefix_end(prefix)) || !(end64 = b64_encode(end, strlen(end))))
                        goto oom;
                all = etcd_cmp_version(prefix, "=", 0);
                if (!all || json_object_set_new(all, "range_end", json_string(end64)) < 0 ||
                    json_array_append_new(cmp, all) < 0)
                        goto oom;
        } else {
                _cleanup_free_ char *cur = key_deploy_payload(head->id), *hash = key_deploy_hash(head->id);
                if (!cur || !hash || json_array_append_new(cmp, etcd_cmp_version(cur, ">", 0)) < 0 ||
                    json_array_append_new(cmp, etcd_cmp_value(hash, "=", head->hash)) < 0)
                        goto oom;
        }
        return cmp;
oom:
        json_decref(cmp);
        return NULL;
}

/* A range op that returns keys only (the payloads can be large). */
static json_t *op_range_keys(const char *key, bool prefix) {
        json_t *op = etcd_op_range(key, prefix), *rr;
        if (op && (rr = json_object_get(op, "request_range")))
                json_object_set_new(rr, "keys_only", json_true());
        return op;
}

json_t *deploy_txn_request(const struct deploy_head *head, const struct deploy *d) {
        _cleanup_free_ char *kp = key_deploy_payload(d->id), *kh = key_deploy_hash(d->id);
        _cleanup_free_ char *hp = key_deploy_payload(head->id), *hh = key_deploy_hash(head->id);
        _cleanup_free_ char *payload = deploy_encode(d), *prefix = key_deploy_prefix();
        json_t *cmp = NULL, *ok = NULL, *fail = NULL;

        if (!kp || !kh || !hp || !hh || !payload || !prefix)
                return NULL;
        cmp = deploy_txn_compare(head);
        ok = json_pack("[o, o]", etcd_op_put(kp, payload, 0), etcd_op_put(kh, d->hash, 0));
        /* on failure, read what the compares looked at, to explain the refusal */
        if (head->id == 0)
                fail = json_pack("[o, o]", op_range_keys(kp, false), op_range_keys(prefix, true));
        else
                fail = json_pack("[o, o, o]", op_range_keys(kp, false), etcd_op_range(hh, false),
                                 op_range_keys(hp, false));
        if (!cmp || !ok || !fail) {
                json_decref(cmp);
                json_decref(ok);
                json_decref(fail);
                return NULL;
        }
        return etcd_req_txn(cmp, ok, fail);
}

/* Say in words which compare failed, from the failure branch's ranges. */
static void explain(json_t *reply, const struct deploy_head *head, const struct deploy *d, char *why,
                    size_t whylen) {
        _cleanup_free_ char *kp = key_deploy_payload(d->id), *hh = key_deploy_hash(head->id);
        _cleanup_free_ char *hp = key_deploy_payload(head->id), *prefix = key_deploy_prefix();
        struct etcd_kvs a = {0}, b = {0}, c = {0};
        struct etcd_error e;

        snprintf(why, whylen, "the deploy keys changed since they were read (revision %lld)",
                 (long long)head->revision);
        if (etcd_parse_txn_range(reply, 0, &a, &e) < 0 || etcd_parse_txn_range(reply, 1, &b, &e) < 0)
                goto out;
        if (a.n > 0) {
                snprintf(
                    why, whylen,
                    "key '%s' exists, expected it absent (version 0): another deploy took id %lld first", kp,
                    (long long)d->id);
                goto out;
        }
        if (head->id == 0) {
                if (b.n > 0)
                        snprintf(why, whylen,
                                 "expected no key under '%s' for the first deploy, but '%s' exists: another "
                                 "deploy "
                                 "came first",
                                 prefix, b.kvs[0].key);
                goto out;
        }
        if (etcd_parse_txn_range(reply, 2, &c, &e) < 0)
                goto out;
        if (c.n == 0)
                snprintf(why, whylen, "key '%s' is missing, expected deploy %lld to exist (version > 0)", hp,
                         (long long)head->id);
        else if (b.n == 0)
                snprintf(why, whylen, "key '%s' is missing, expected the hash %s read before", hh,
                         head->hash);
        else if (!b.kvs[0].value || !streq(b.kvs[0].value, head->hash))
                snprintf(why, whylen, "key '%s' is '%.64s', expected '%s' (the hash read before)", hh,
                         b.kvs[0].value ? b.kvs[0].value : "", head->hash);
out:
        etcd_kvs_clear(&a);
        etcd_kvs_clear(&b);
        etcd_kvs_clear(&c);
}

int deploy_try_write(struct etcd_client *c, const struct deploy_head *head, const struct deploy *d,
                     char *why, size_t whylen, struct etcd_error *err) {
        _cleanup_json_ json_t *reply = NULL;
        json_t *body;
        bool ok = false;
        int r;

        if (head->id < 0 || head->id == INT64_MAX || d->id != head->id + 1)
                return -EINVAL;
        body = deploy_txn_request(head, d);
        if (!body)
                return -ENOMEM;
        r = etcd_call_sync(c, ETCD_TXN, body, &reply, err);
        if (r < 0)
                return r;
        r = etcd_parse_txn(reply, &ok, err);
        if (r < 0)
                return -EBADMSG;
        if (ok)
                return 1;
        explain(reply, head, d, why, whylen);
        return 0;
}
