/* deploy.c: the deploy record: its origin, a new record, its JSON payload
 * and the checks a payload read back must pass. Reading the latest deploy
 * and the compare-and-write transaction for the next id (DESIGN.md
 * "Deploys") are deploy_etcd.c. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <stdio.h>
#include <unistd.h>

#include "deploy.h"
#include "macro.h"
#include "sign.h"
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

bool deploy_hash_is_valid(const char *s) {
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

static int opt_string(json_t *o, const char *field, char **ret, char *err, size_t errlen) {
        json_t *v = json_object_get(o, field);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return errmsg(err, errlen, -EBADMSG, "'%s' must be a string", field);
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

/* "signature" and "signer": both or neither, each of its fixed length. */
static int signature_from_json(json_t *j, struct deploy *d, char *err, size_t errlen) {
        json_t *s = json_object_get(j, "signature"), *k = json_object_get(j, "signer");

        if (!s && !k)
                return 0;
        if (!s || !k)
                return errmsg(err, errlen, -EBADMSG, "deploy record has '%s' without '%s'",
                              s ? "signature" : "signer", s ? "signer" : "signature");
        if (!json_is_string(s) || !sign_is_signature(json_string_value(s)))
                return errmsg(
                    err, errlen, -EBADMSG,
                    "'signature' must be %d lowercase hex digits (an Ed25519 signature), got %s%zu "
                    "characters",
                    SIGN_SIG_HEX_LEN, json_is_string(s) ? "" : "a non-string, ",
                    json_is_string(s) ? json_string_length(s) : 0);
        if (!json_is_string(k) || !sign_is_fingerprint(json_string_value(k)))
                return errmsg(err, errlen, -EBADMSG,
                              "'signer' must be %d lowercase hex digits (a key fingerprint)", SIGN_FPR_LEN);
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
                return errmsg(err, errlen, -EBADMSG, "deploy record must be a JSON object");
        json_object_foreach(j, k, v) {
                bool ok = false;
                for (size_t i = 0; known[i]; i++)
                        ok = ok || streq(known[i], k);
                if (!ok)
                        return errmsg(err, errlen, -EBADMSG, "unknown field '%s' in deploy record", k);
        }
        v = json_object_get(j, "id");
        if (!json_is_integer(v) || json_integer_value(v) < 1)
                return errmsg(err, errlen, -EBADMSG, "'id' must be an integer >= 1");
        d.id = (int64_t)json_integer_value(v);
        v = json_object_get(j, "hash");
        if (!json_is_string(v) || !deploy_hash_is_valid(json_string_value(v)))
                return errmsg(err, errlen, -EBADMSG, "'hash' must be 64 lowercase hex digits");
        strlcpy(d.hash, json_string_value(v), sizeof d.hash);
        v = json_object_get(j, "previous");
        if (d.id == 1) {
                if (v && !json_is_null(v))
                        return errmsg(err, errlen, -EBADMSG, "'previous' must be null for deploy 1");
        } else {
                if (!json_is_string(v) || !deploy_hash_is_valid(json_string_value(v)))
                        return errmsg(err, errlen, -EBADMSG,
                                      "'previous' must be 64 lowercase hex digits for deploy %lld",
                                      (long long)d.id);
                strlcpy(d.previous, json_string_value(v), sizeof d.previous);
        }
        v = json_object_get(j, "time");
        if (!json_is_string(v) || !is_rfc3339(json_string_value(v)))
                return errmsg(err, errlen, -EBADMSG,
                              "'time' must be an RFC 3339 time like 2024-01-02T03:04:05Z");
        v = json_object_get(j, "graph");
        if (v && !json_is_string(v))
                return errmsg(err, errlen, -EBADMSG, "'graph' must be a string");
        o = json_object_get(j, "origin");
        if (o && !json_is_object(o))
                return errmsg(err, errlen, -EBADMSG, "'origin' must be an object");
        if ((r = signature_from_json(j, &d, err, errlen)) < 0)
                return r;
        if (v) {
                sha256_hex(json_string_value(v), json_string_length(v), h);
                if (!streq(h, d.hash))
                        return errmsg(err, errlen, -EBADMSG,
                                      "'hash' %s does not match the sha256 of 'graph' (%s)", d.hash, h);
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
                        return errmsg(err, errlen, -EBADMSG, "unknown field '%s' in deploy origin", k);
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
                return errmsg(err, errlen, -EBADMSG, "deploy record is not JSON: %d:%d: %s", je.line,
                              je.column, je.text);
        return deploy_from_json(j, ret, err, errlen);
}
