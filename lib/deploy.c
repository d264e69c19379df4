/* deploy.c: deploy records (JSON payload), reading the latest deploy, and
 * the compare-and-write transaction for the next id (DESIGN.md "Deploys"). */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <stdio.h>
#include <unistd.h>

#include "deploy.h"
#include "etcd.h"
#include "keys.h"
#include "macro.h"
#include "sign.h"
#include "strv.h"
#include "util.h"

#ifndef _cleanup_json_
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

void deploy_origin_clear(struct deploy_origin *o) {
        free(o->hostname);
        free(o->commit);
        free(o->job_url);
        *o = (struct deploy_origin){0};
}

static const char *env_nonempty(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

int deploy_origin_from_env(struct deploy_origin *ret) {
        struct deploy_origin o = {0};
        char host[256] = {0};
        const char *v;

        if (gethostname(host, sizeof host - 1) < 0)
                strlcpy(host, "unknown", sizeof host);
        o.hostname = strdup(host);
        if (!o.hostname)
                goto oom;
        if ((v = env_nonempty("CI_COMMIT_SHA")) || (v = env_nonempty("GITHUB_SHA")) ||
            (v = env_nonempty("GIT_COMMIT")))
                if (!(o.commit = strdup(v)))
                        goto oom;
        if ((v = env_nonempty("CI_JOB_URL"))) {
                if (!(o.job_url = strdup(v)))
                        goto oom;
        } else if (env_nonempty("GITHUB_SERVER_URL") && env_nonempty("GITHUB_REPOSITORY") &&
                   env_nonempty("GITHUB_RUN_ID")) {
                if (asprintf(&o.job_url, "%s/%s/actions/runs/%s", getenv("GITHUB_SERVER_URL"),
                             getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID")) < 0) {
                        o.job_url = NULL;
                        goto oom;
                }
        } else if ((v = env_nonempty("BUILD_URL"))) {
                if (!(o.job_url = strdup(v)))
                        goto oom;
        }
        *ret = o;
        return 0;
oom:
        deploy_origin_clear(&o);
        return -ENOMEM;
}

void deploy_clear(struct deploy *d) {
        free(d->graph);
        free(d->time);
        deploy_origin_clear(&d->origin);
        *d = (struct deploy){0};
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int deploy_new(struct deploy *ret, int64_t id, const char *previous, const char *text, size_t len,
               const struct deploy_origin *origin) {
        struct deploy d = {.id = id};

        if (id < 1 || (id > 1 && (!previous || strlen(previous) != DEPLOY_HASH_LEN)))
                return -EINVAL;
        sha256_hex(text, len, d.hash);
        if (id > 1)
                strlcpy(d.previous, previous, sizeof d.previous);
        d.graph = malloc(len + 1);
        d.time = rfc3339_now();
        if (!d.graph || !d.time)
                goto oom;
        memcpy(d.graph, text, len);
        d.graph[len] = 0;
        d.graph_len = len;
        if (origin && (dup_opt(origin->hostname, &d.origin.hostname) < 0 ||
                       dup_opt(origin->commit, &d.origin.commit) < 0 ||
                       dup_opt(origin->job_url, &d.origin.job_url) < 0))
                goto oom;
        *ret = d;
        return 0;
oom:
        deploy_clear(&d);
        return -ENOMEM;
}

json_t *deploy_to_json(const struct deploy *d, bool with_graph) {
        json_t *o = json_object(), *j;

        if (!o)
                return NULL;
        if (d->origin.hostname)
                json_object_set_new(o, "hostname", json_string(d->origin.hostname));
        if (d->origin.commit)
                json_object_set_new(o, "commit", json_string(d->origin.commit));
        if (d->origin.job_url)
                json_object_set_new(o, "job_url", json_string(d->origin.job_url));
        j = json_pack("{s:I, s:s, s:o, s:s, s:o}", "id", (json_int_t)d->id, "hash", d->hash, "previous",
                      d->previous[0] ? json_string(d->previous) : json_null(), "time",
                      d->time ? d->time : "", "origin", o);
        if (j && with_graph &&
            json_object_set_new(j, "graph", json_stringn(d->graph ? d->graph : "", d->graph_len)) < 0) {
                json_decref(j);
                return NULL;
        }
        if (j && d->signature[0] &&
            (json_object_set_new(j, "signature", json_string(d->signature)) < 0 ||
             json_object_set_new(j, "signer", json_string(d->signer)) < 0)) {
                json_decref(j);
                return NULL;
        }
        return j;
}

char *deploy_encode(const struct deploy *d) {
        _cleanup_json_ json_t *j = deploy_to_json(d, true);
        if (!j)
                return NULL;
        return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

static bool is_hash(const char *s) {
        if (!s || strlen(s) != DEPLOY_HASH_LEN)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
                        return false;
        return true;
}

static bool is_rfc3339(const char *s) {
        /* YYYY-MM-DDTHH:MM:SS then optional fraction and Z or +hh:mm */
        static const char pat[] = "dddd-dd-ddTdd:dd:dd";
        size_t i;
        for (i = 0; pat[i]; i++) {
                if (!s[i])
                        return false;
                if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
                        return false;
        }
        s += i;
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char)*s))
                        return false;
                while (isdigit((unsigned char)*s))
                        s++;
        }
        if (streq(s, "Z"))
                return true;
        return (s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1]) &&
               isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
               isdigit((unsigned char)s[5]) && !s[6];
}

static int bad(char *err, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static int bad(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;
        if (err && errlen) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int opt_string(json_t *o, const char *field, char **ret, char *err, size_t errlen) {
        json_t *v = json_object_get(o, field);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return bad(err, errlen, "'%s' must be a string", field);
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

/* "signature" and "signer": both or neither, each of its fixed length. */
static int signature_from_json(json_t *j, struct deploy *d, char *err, size_t errlen) {
        json_t *s = json_object_get(j, "signature"), *k = json_object_get(j, "signer");

        if (!s && !k)
                return 0;
        if (!s || !k)
                return bad(err, errlen, "deploy record has '%s' without '%s'", s ? "signature" : "signer",
                           s ? "signer" : "signature");
        if (!json_is_string(s) || !sign_is_signature(json_string_value(s)))
                return bad(err, errlen,
                           "'signature' must be %d lowercase hex digits (an Ed25519 signature), got %s%zu "
                           "characters",
                           SIGN_SIG_HEX_LEN, json_is_string(s) ? "" : "a non-string, ",
                           json_is_string(s) ? json_string_length(s) : 0);
        if (!json_is_string(k) || !sign_is_fingerprint(json_string_value(k)))
                return bad(err, errlen, "'signer' must be %d lowercase hex digits (a key fingerprint)",
                           SIGN_FPR_LEN);
        strlcpy(d->signature, json_string_value(s), sizeof d->signature);
        strlcpy(d->signer, json_string_value(k), sizeof d->signer);
        return 0;
}

int deploy_from_json(json_t *j, struct deploy *ret, char *err, size_t errlen) {
        static const char *const known[] = {"id",     "hash",      "previous", "graph", "time",
                                            "origin", "signature", "signer",   NULL};
        struct deploy d = {0};
        json_t *v, *o;
        const char *k;
        char h[DEPLOY_HASH_LEN + 1];
        int r;

        if (!json_is_object(j))
                return bad(err, errlen, "deploy record must be a JSON object");
        json_object_foreach(j, k, v) {
                bool ok = false;
                for (size_t i = 0; known[i]; i++)
                        ok = ok || streq(known[i], k);
                if (!ok)
                        return bad(err, errlen, "unknown field '%s' in deploy record", k);
        }
        v = json_object_get(j, "id");
        if (!json_is_integer(v) || json_integer_value(v) < 1)
                return bad(err, errlen, "'id' must be an integer >= 1");
        d.id = (int64_t)json_integer_value(v);
        v = json_object_get(j, "hash");
        if (!json_is_string(v) || !is_hash(json_string_value(v)))
                return bad(err, errlen, "'hash' must be 64 lowercase hex digits");
        strlcpy(d.hash, json_string_value(v), sizeof d.hash);
        v = json_object_get(j, "previous");
        if (d.id == 1) {
                if (v && !json_is_null(v))
                        return bad(err, errlen, "'previous' must be null for deploy 1");
        } else {
                if (!json_is_string(v) || !is_hash(json_string_value(v)))
                        return bad(err, errlen, "'previous' must be 64 lowercase hex digits for deploy %lld",
                                   (long long)d.id);
                strlcpy(d.previous, json_string_value(v), sizeof d.previous);
        }
        v = json_object_get(j, "time");
        if (!json_is_string(v) || !is_rfc3339(json_string_value(v)))
                return bad(err, errlen, "'time' must be an RFC 3339 time like 2024-01-02T03:04:05Z");
        v = json_object_get(j, "graph");
        if (v && !json_is_string(v))
                return bad(err, errlen, "'graph' must be a string");
        o = json_object_get(j, "origin");
        if (o && !json_is_object(o))
                return bad(err, errlen, "'origin' must be an object");
        if ((r = signature_from_json(j, &d, err, errlen)) < 0)
                return r;
        if (v) {
                sha256_hex(json_string_value(v), json_string_length(v), h);
                if (!streq(h, d.hash))
                        return bad(err, errlen, "'hash' %s does not match the sha256 of 'graph' (%s)",
                                   d.hash, h);
        }
        if (!(d.time = strdup(json_string_value(json_object_get(j, "time")))))
                return -ENOMEM;
        if (v) {
                d.graph_len = json_string_length(v);
                d.graph = malloc(d.graph_len + 1);
                if (!d.graph) {
                        deploy_clear(&d);
                        return -ENOMEM;
                }
                memcpy(d.graph, json_string_value(v), d.graph_len + 1);
        }
        if (o) {
                json_object_foreach(o, k, v) if (!streq(k, "hostname") && !streq(k, "commit") &&
                                                 !streq(k, "job_url")) {
                        deploy_clear(&d);
                        return bad(err, errlen, "unknown field '%s' in deploy origin", k);
                }
                if ((r = opt_string(o, "hostname", &d.origin.hostname, err, errlen)) < 0 ||
                    (r = opt_string(o, "commit", &d.origin.commit, err, errlen)) < 0 ||
                    (r = opt_string(o, "job_url", &d.origin.job_url, err, errlen)) < 0) {
                        deploy_clear(&d);
                        return r;
                }
        }
        *ret = d;
        return 0;
}

int deploy_decode(const char *text, size_t len, struct deploy *ret, char *err, size_t errlen) {
        json_error_t je;
        _cleanup_json_ json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return bad(err, errlen, "deploy record is not JSON: %d:%d: %s", je.line, je.column, je.text);
        return deploy_from_json(j, ret, err, errlen);
}

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
        if (h.n == 0 || !h.kvs[0].value || !is_hash(h.kvs[0].value)) {
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
