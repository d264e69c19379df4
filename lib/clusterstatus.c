/* clusterstatus.c: the `status --json` document built from the raw replies
 * (member list, the txn of /_mgmt keys, each member's own status and health):
 * pure, no I/O. Gathering the replies: clusterstatus_gather.c; the table
 * printed from the document: clusterstatus_table.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clusterstatus.h"
#include "deploy.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

time_t rfc3339_parse(const char *s) {
        struct tm tm = {0};
        const char *p;
        time_t t;

        if (!s)
                return -1;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -1;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        t = timegm(&tm);
        if (*p == 'Z' || *p == 'z')
                p++;
        else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
                int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
                t -= (*p == '+' ? 1 : -1) * (h * 3600 + m * 60);
                p += 6;
        } else
                return -1;
        return *p ? -1 : t;
}

/* One host's facts while the document is built. */
struct cs_host {
        char *name;
        bool volunteer, nominated, endpoints, has_status;
        const struct etcd_member *m;
        json_t *obj;
};

struct cs_hosts {
        struct cs_host *h;
        size_t n;
};

static struct cs_host *host_get(struct cs_hosts *hs, const char *name) {
        for (size_t i = 0; i < hs->n; i++)
                if (streq(hs->h[i].name, name))
                        return &hs->h[i];
        struct cs_host *nh = reallocarray(hs->h, hs->n + 1, sizeof *nh);
        if (!nh)
                return NULL;
        hs->h = nh;
        nh = &hs->h[hs->n];
        *nh = (struct cs_host){.name = strdup(name)};
        if (!nh->name)
                return NULL;
        hs->n++;
        return nh;
}

static void hosts_clear(struct cs_hosts *hs) {
        for (size_t i = 0; i < hs->n; i++) {
                free(hs->h[i].name);
                json_decref(hs->h[i].obj);
        }
        free(hs->h);
        *hs = (struct cs_hosts){0};
}

static int cmp_host(const void *a, const void *b) {
        const struct cs_host *x = a, *y = b;
        /* unnamed learners last */
        if (!*x->name != !*y->name)
                return *x->name ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* Does one of the member's peer URLs appear in a comma-joined list? */
static bool urls_overlap(const struct etcd_member *m, const char *list) {
        _cleanup_strv_ char **v = NULL;
        char err[64];
        if (!list || urls_parse(list, &v, err, sizeof err) < 0)
                return false;
        for (char **p = m->peer_urls; p && *p; p++)
                if (strv_contains(v, *p))
                        return true;
        return false;
}

/* The host a member belongs to: its name, or for a learner that has not
 * started yet (no name), the host whose volunteer or nomination lists its peer URL. */
static const char *member_host(const struct etcd_member *m, const struct etcd_kvs *vol,
                               const struct etcd_kvs *nom, const char *vprefix, const char *nprefix) {
        if (m->name && *m->name)
                return hostname_is_valid(m->name) ? m->name : NULL;
        for (size_t i = 0; i < nom->n; i++)
                if (urls_overlap(m, nom->kvs[i].value))
                        return key_host_suffix(nom->kvs[i].key, nprefix);
        for (size_t i = 0; i < vol->n; i++)
                if (urls_overlap(m, vol->kvs[i].value))
                        return key_host_suffix(vol->kvs[i].key, vprefix);
        return NULL;
}

static json_t *json_value_of(const struct etcd_kvs *kvs) {
        json_error_t jerr;
        if (kvs->n == 0 || !kvs->kvs[0].value)
                return NULL;
        json_t *j = json_loadb(kvs->kvs[0].value, kvs->kvs[0].value_len, 0, &jerr);
        if (j && !json_is_object(j)) {
                json_decref(j);
                return NULL;
        }
        return j;
}

static void set_null_or(json_t *o, const char *k, json_t *v) {
        json_object_set_new(o, k, v ? v : json_null());
}

enum host_flag { HOST_VOLUNTEER, HOST_NOMINATED, HOST_ENDPOINTS, HOST_STATUS };

/* Every host with a key under prefix gets the flag (and a row). */
static void mark_hosts(struct cs_hosts *hs, const struct etcd_kvs *kvs, const char *prefix,
                       enum host_flag flag) {
        for (size_t i = 0; i < kvs->n; i++) {
                const char *h = key_host_suffix(kvs->kvs[i].key, prefix);
                struct cs_host *x = h ? host_get(hs, h) : NULL;
                if (!x)
                        continue;
                switch (flag) {
                case HOST_VOLUNTEER:
                        x->volunteer = true;
                        break;
                case HOST_NOMINATED:
                        x->nominated = true;
                        break;
                case HOST_ENDPOINTS:
                        x->endpoints = true;
                        break;
                case HOST_STATUS:
                        x->has_status = true;
                        break;
                }
        }
}

/* The columns of one host that come from its etcd member, if any: id, URLs,
 * leader, health, raft index and lag, size, version (set on o in that order).
 * Returns the host's error (JSON null when none) for the last column. */
static json_t *host_member_fields(json_t *o, const struct cs_host *x, json_t *probes, uint64_t leader,
                                  int64_t max_index, bool *ret_leader, bool *ret_healthy_voter) {
        json_t *urls = json_array();
        json_t *healthy = json_null(), *index = json_null(), *lag = json_null(), *dbsize = json_null(),
               *version = json_null(), *error = json_null();
        bool is_leader = false;
        char idbuf[32];
        if (x->m) {
                snprintf(idbuf, sizeof idbuf, "%" PRIx64, x->m->id);
                json_object_set_new(o, CS_H_MEMBER_ID, json_string(idbuf));
                for (char **u = x->m->client_urls; u && *u; u++)
                        json_array_append_new(urls, json_string(*u));
                is_leader = leader && x->m->id == leader;
                json_t *pr = json_object_get(probes, idbuf);
                json_t *sr = json_object_get(pr, "status"), *hr = json_object_get(pr, "health");
                struct etcd_status st = {0};
                struct etcd_error e = {0};
                bool status_ok = sr && etcd_parse_status(sr, &st, &e) >= 0;
                json_t *hv = json_object_get(hr, "health");
                bool health_ok =
                    hv && ((json_is_string(hv) && streq(json_string_value(hv), "true")) || json_is_true(hv));
                json_decref(healthy);
                healthy = json_boolean(status_ok && health_ok);
                *ret_healthy_voter = status_ok && health_ok && !x->m->learner;
                if (status_ok) {
                        json_decref(index);
                        json_decref(lag);
                        json_decref(dbsize);
                        index = json_integer(st.raft_index);
                        lag = json_integer(max_index - st.raft_index);
                        dbsize = json_integer(st.db_size);
                        if (st.version) {
                                json_decref(version);
                                version = json_string(st.version);
                        }
                        if (st.errors && st.errors[0]) {
                                _cleanup_free_ char *j = strv_join(st.errors, "; ");
                                json_decref(error);
                                error = json_string(j ? j : "");
                        }
                }
                json_t *pe = json_object_get(pr, "error");
                if (json_is_string(pe) && json_is_null(error)) {
                        json_decref(error);
                        error = json_copy(pe);
                } else if (!pr && json_is_null(error)) {
                        json_decref(error);
                        error = json_string(x->m->client_urls && x->m->client_urls[0]
                                                ? "not asked"
                                                : "not started (no client URL)");
                } else if (status_ok && !health_ok && json_is_null(error)) {
                        json_decref(error);
                        error = json_string("unhealthy");
                }
                etcd_status_clear(&st);
        } else
                json_object_set_new(o, CS_H_MEMBER_ID, json_null());
        json_object_set_new(o, CS_H_CLIENT_URLS, urls);
        json_object_set_new(o, CS_H_LEADER, json_boolean(is_leader));
        json_object_set_new(o, CS_H_HEALTHY, healthy);
        json_object_set_new(o, CS_H_RAFT_INDEX, index);
        json_object_set_new(o, CS_H_RAFT_LAG, lag);
        json_object_set_new(o, CS_H_DB_SIZE, dbsize);
        json_object_set_new(o, CS_H_VERSION, version);
        *ret_leader = is_leader;
        return error;
}

/* The agent's status of one host: its deploy and state, or nulls. */
static void host_deploy_fields(json_t *o, const struct cs_host *x, const struct etcd_kvs *status,
                               const char *sprefix) {
        json_t *deploy = NULL, *dstate = NULL;
        for (size_t k = 0; k < status->n; k++) {
                const struct etcd_kv *s = &status->kvs[k];
                struct host_status hst;
                char herr[128];
                if (!streq(key_host_suffix(s->key, sprefix) ?: "", x->name))
                        continue;
                if (host_status_decode(x->name, s->value ? s->value : "", s->value_len, &hst, herr,
                                       sizeof herr) >= 0) {
                        deploy = json_integer(hst.deploy);
                        dstate = json_string(deploy_state_to_string(hst.state));
                        host_status_clear(&hst);
                }
        }
        set_null_or(o, CS_H_DEPLOY, deploy);
        set_null_or(o, CS_H_DEPLOY_STATE, dstate);
}

/* The newest snapshot of one host: its time and age in seconds, or nulls. */
static void host_snapshot_fields(json_t *o, const struct cs_host *x, const struct etcd_kvs *snaps,
                                 const char *snprefix, time_t now) {
        json_t *stime = NULL, *sage = NULL;
        for (size_t k = 0; k < snaps->n; k++) {
                const struct etcd_kv *s = &snaps->kvs[k];
                json_error_t jerr;
                if (!streq(key_host_suffix(s->key, snprefix) ?: "", x->name) || !s->value)
                        continue;
                _cleanup_(json_decrefp) json_t *j = json_loadb(s->value, s->value_len, 0, &jerr);
                const char *t = json_string_value(json_object_get(j, "time"));
                time_t ts = rfc3339_parse(t);
                if (ts >= 0) {
                        stime = json_string(t);
                        sage = json_integer(now > ts ? (json_int_t)(now - ts) : 0);
                }
        }
        set_null_or(o, CS_H_SNAPSHOT_TIME, stime);
        set_null_or(o, CS_H_SNAPSHOT_AGE, sage);
}

/* The cluster object of the header: the cluster key as written, its id
 * from the member list when the key has none, nulls for what is missing. */
static json_t *cluster_object(const struct etcd_kvs *key, uint64_t cluster_id) {
        json_t *cluster = json_value_of(key);
        char idbuf[32];

        if (!cluster)
                cluster = json_object();
        if (!json_is_string(json_object_get(cluster, CS_CLUSTER_ID))) {
                snprintf(idbuf, sizeof idbuf, "%" PRIx64, cluster_id);
                json_object_set_new(cluster, CS_CLUSTER_ID, json_string(idbuf));
        }
        if (!json_is_integer(json_object_get(cluster, CS_GENERATION)))
                json_object_set_new(cluster, CS_GENERATION, json_null());
        if (!json_is_string(json_object_get(cluster, CS_CREATED)))
                json_object_set_new(cluster, CS_CREATED, json_null());
        return cluster;
}

json_t *cluster_status_doc(json_t *members, json_t *txn, json_t *probes, time_t now, char *err,
                           size_t errlen) {
        struct etcd_members ms = {0};
        struct etcd_kvs kv[_CS_OP_MAX] = {0};
        struct etcd_error e = {0};
        struct cs_hosts hs = {0};
        json_t *doc = NULL, *hosts = NULL;
        _cleanup_free_ char *vprefix = key_volunteer_prefix(), *nprefix = key_nominated_prefix(),
                            *eprefix = key_endpoints_prefix(), *sprefix = key_status_prefix(),
                            *snprefix = key_snapshot_prefix();
        uint64_t leader = 0;
        int64_t max_index = 0, max_term = -1;
        long long voters = 0, learners = 0, healthy_voters = 0;

        if (!vprefix || !nprefix || !eprefix || !sprefix || !snprefix) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        if (etcd_parse_members(members, &ms, &e) < 0) {
                snprintf(err, errlen, "bad member list: %s", e.msg);
                return NULL;
        }
        for (size_t i = 0; i < _CS_OP_MAX; i++)
                if (etcd_parse_txn_range(txn, i, &kv[i], &e) < 0) {
                        snprintf(err, errlen, "bad reply reading the /_mgmt keys: %s", e.msg);
                        goto fail;
                }

        /* leader and newest raft index from the members that answered, trusting the highest term */
        const char *id;
        json_t *p;
        json_object_foreach(probes, id, p) {
                struct etcd_status st = {0};
                json_t *sr = json_object_get(p, "status");
                if (sr && etcd_parse_status(sr, &st, &e) >= 0) {
                        if (st.raft_term > max_term && st.leader) {
                                max_term = st.raft_term;
                                leader = st.leader;
                        }
                        if (st.raft_index > max_index)
                                max_index = st.raft_index;
                }
                etcd_status_clear(&st);
        }

        /* every host we know of */
        mark_hosts(&hs, &kv[CS_OP_VOLUNTEER], vprefix, HOST_VOLUNTEER);
        mark_hosts(&hs, &kv[CS_OP_NOMINATED], nprefix, HOST_NOMINATED);
        mark_hosts(&hs, &kv[CS_OP_ENDPOINTS], eprefix, HOST_ENDPOINTS);
        mark_hosts(&hs, &kv[CS_OP_STATUS], sprefix, HOST_STATUS);
        for (size_t i = 0; i < ms.n; i++) {
                const char *h =
                    member_host(&ms.m[i], &kv[CS_OP_VOLUNTEER], &kv[CS_OP_NOMINATED], vprefix, nprefix);
                struct cs_host *x = host_get(&hs, h ? h : "");
                if (!x)
                        goto oom;
                if (!x->m) /* two members claiming one host: the first one's row */
                        x->m = &ms.m[i];
                if (ms.m[i].learner)
                        learners++;
                else
                        voters++;
        }
        if (hs.n)
                qsort(hs.h, hs.n, sizeof *hs.h, cmp_host);

        hosts = json_array();
        if (!hosts)
                goto oom;
        const char *leader_host = NULL;
        for (size_t i = 0; i < hs.n; i++) {
                struct cs_host *x = &hs.h[i];
                const char *role;
                json_t *o = json_object();
                if (!o)
                        goto oom;
                if (x->m && !x->volunteer && !x->endpoints && *x->name)
                        role = "gone";
                else if (x->m)
                        role = x->m->learner ? "learner" : "member";
                else if (x->volunteer)
                        role = "volunteer";
                else if (x->nominated && !x->has_status)
                        role = "gone";
                else
                        role = "client";
                json_object_set_new(o, CS_H_NAME, json_string(x->name));
                json_object_set_new(o, CS_H_ROLE, json_string(role));
                json_object_set_new(o, CS_H_VOLUNTEER, json_boolean(x->volunteer));
                json_object_set_new(o, CS_H_NOMINATED, json_boolean(x->nominated));
                json_object_set_new(o, CS_H_ENDPOINTS, json_boolean(x->endpoints));
                bool is_leader = false, healthy_voter = false;
                json_t *error =
                    host_member_fields(o, x, probes, leader, max_index, &is_leader, &healthy_voter);
                if (is_leader && *x->name)
                        leader_host = x->name;
                if (healthy_voter)
                        healthy_voters++;

                host_deploy_fields(o, x, &kv[CS_OP_STATUS], sprefix);
                host_snapshot_fields(o, x, &kv[CS_OP_SNAPSHOT], snprefix, now);
                json_object_set_new(o, CS_H_ERROR, error);
                json_array_append_new(hosts, o);
        }

        /* the header */
        char tbuf[64];
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *cluster = cluster_object(&kv[CS_OP_CLUSTER], ms.cluster_id);
        json_t *ideal = NULL;
        if (kv[CS_OP_IDEAL].n && kv[CS_OP_IDEAL].kvs[0].value) {
                int64_t v;
                if (parse_int64(kv[CS_OP_IDEAL].kvs[0].value, &v) >= 0)
                        ideal = json_integer(v);
        }
        json_t *coordinator = NULL;
        if (kv[CS_OP_COORDINATOR].n && kv[CS_OP_COORDINATOR].kvs[0].value)
                coordinator = json_string(kv[CS_OP_COORDINATOR].kvs[0].value);
        long long quorum = voters / 2 + 1;
        doc = json_object();
        if (!doc)
                goto oom;
        json_object_set_new(doc, CS_SCHEMA, json_integer(CS_SCHEMA_VERSION));
        json_object_set_new(doc, CS_TIME, json_string(tbuf));
        json_object_set_new(doc, CS_REVISION,
                            json_integer(ms.revision > kv[0].revision ? ms.revision : kv[0].revision));
        json_object_set_new(doc, CS_CLUSTER, cluster);
        set_null_or(doc, CS_IDEAL, ideal);
        json_object_set_new(doc, CS_VOTERS, json_integer(voters));
        json_object_set_new(doc, CS_LEARNERS, json_integer(learners));
        json_object_set_new(doc, CS_HEALTHY_VOTERS, json_integer(healthy_voters));
        json_object_set_new(doc, CS_QUORUM, json_integer(quorum));
        json_object_set_new(doc, CS_FAILURE_TOLERANCE, json_integer(voters ? voters - quorum : 0));
        set_null_or(doc, CS_LEADER, leader_host ? json_string(leader_host) : NULL);
        set_null_or(doc, CS_COORDINATOR, coordinator);
        set_null_or(doc, CS_PLAN, json_value_of(&kv[CS_OP_PLAN]));
        json_object_set_new(doc, CS_HOSTS, TAKE_PTR(hosts));
        goto out;
oom:
        snprintf(err, errlen, "out of memory");
fail:
        json_decref(hosts);
        json_decref(doc);
        doc = NULL;
out:
        hosts_clear(&hs);
        for (size_t i = 0; i < _CS_OP_MAX; i++)
                etcd_kvs_clear(&kv[i]);
        etcd_members_clear(&ms);
        return doc;
}
