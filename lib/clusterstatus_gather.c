/* clusterstatus_gather.c: reads what the `status --json` document is built
 * from, on the client's event loop: one member list, one txn of the /_mgmt
 * keys, then every member's /v3/maintenance/status and /health on its own
 * client URL, all in parallel; the last reply builds the document
 * (clusterstatus.c) and reports it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clusterstatus.h"
#include "keys.h"
#include "macro.h"

json_t *cluster_status_txn(void) {
        _cleanup_free_ char *ideal = key_ideal_size(), *coord = key_coordinator(), *plan = key_plan(),
                            *cluster = key_cluster(), *vol = key_volunteer_prefix(),
                            *nom = key_nominated_prefix(), *end = key_endpoints_prefix(),
                            *st = key_status_prefix(), *snap = key_snapshot_prefix();
        if (!ideal || !coord || !plan || !cluster || !vol || !nom || !end || !st || !snap)
                return NULL;
        json_t *ops = json_pack("[ooooooooo]", etcd_op_range(ideal, false), etcd_op_range(coord, false),
                                etcd_op_range(plan, false), etcd_op_range(cluster, false),
                                etcd_op_range(vol, true), etcd_op_range(nom, true), etcd_op_range(end, true),
                                etcd_op_range(st, true), etcd_op_range(snap, true));
        if (!ops)
                return NULL;
        return etcd_req_txn(NULL, ops, NULL);
}

struct probe;

struct cluster_status_gather {
        struct cluster_status_gather *next; /* every gather in flight (cluster_status_abandon) */
        struct probe *probes_in_flight;
        struct etcd_client *c;
        cluster_status_cb cb;
        void *userdata;
        unsigned pending;
        json_t *members, *txn, *probes;
        char error[600];
};

struct probe {
        struct cluster_status_gather *g;
        struct probe *next;
        char id[32];
        const char *what; /* "status" or "health" */
};

static struct cluster_status_gather *in_flight;

static void gather_free(struct cluster_status_gather *g) {
        for (struct cluster_status_gather **pp = &in_flight; *pp; pp = &(*pp)->next)
                if (*pp == g) {
                        *pp = g->next;
                        break;
                }
        while (g->probes_in_flight) {
                struct probe *p = g->probes_in_flight;
                g->probes_in_flight = p->next;
                free(p);
        }
        json_decref(g->members);
        json_decref(g->txn);
        json_decref(g->probes);
        free(g);
}

/* One reply less to wait for; after the last, build the document and report. */
static void gather_step_done(struct cluster_status_gather *g) {
        if (--g->pending > 0)
                return;
        if (g->cb) {
                _cleanup_(json_decrefp) json_t *doc = NULL;
                if (!g->error[0])
                        doc = cluster_status_doc(g->members, g->txn, g->probes, time(NULL), g->error,
                                                 sizeof g->error);
                g->cb(doc, doc ? NULL : g->error, g->userdata);
        }
        gather_free(g);
}

static void probe_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata) {
        struct probe *p = userdata;
        struct cluster_status_gather *g = p->g;
        json_t *o = json_object_get(g->probes, p->id);

        if (!o) {
                o = json_object();
                json_object_set_new(g->probes, p->id, o);
        }
        if (o && reply)
                json_object_set(o, p->what, reply);
        else if (o && err && !json_object_get(o, "error"))
                json_object_set_new(o, "error", json_string(err->msg));
        for (struct probe **pp = &g->probes_in_flight; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        free(p);
        gather_step_done(g);
}

static int probe_start(struct cluster_status_gather *g, const char *endpoint, uint64_t id, bool health) {
        struct probe *p = calloc(1, sizeof *p);
        int r;
        if (!p)
                return -ENOMEM;
        p->g = g;
        snprintf(p->id, sizeof p->id, "%" PRIx64, id);
        p->what = health ? "health" : "status";
        g->pending++;
        r = health ? etcd_get(g->c, endpoint, "/health", probe_cb, p)
                   : etcd_call_at(g->c, endpoint, ETCD_STATUS, json_object(), probe_cb, p);
        if (r < 0) {
                g->pending--;
                free(p);
                return r;
        }
        p->next = g->probes_in_flight;
        g->probes_in_flight = p;
        return r;
}

static void members_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata) {
        struct cluster_status_gather *g = userdata;
        struct etcd_members ms = {0};
        struct etcd_error e = {0};

        if (!reply) {
                snprintf(g->error, sizeof g->error, "cannot read the member list: %s", err ? err->msg : "?");
        } else if (etcd_parse_members(reply, &ms, &e) < 0) {
                snprintf(g->error, sizeof g->error, "bad member list: %s", e.msg);
        } else {
                g->members = json_incref(reply);
                for (size_t i = 0; i < ms.n; i++) {
                        const char *url = ms.m[i].client_urls ? ms.m[i].client_urls[0] : NULL;
                        if (!url)
                                continue;
                        (void)probe_start(g, url, ms.m[i].id, false);
                        (void)probe_start(g, url, ms.m[i].id, true);
                }
        }
        etcd_members_clear(&ms);
        gather_step_done(g);
}

static void txn_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata) {
        struct cluster_status_gather *g = userdata;
        if (reply)
                g->txn = json_incref(reply);
        else if (!g->error[0])
                snprintf(g->error, sizeof g->error, "cannot read the /_mgmt keys: %s", err ? err->msg : "?");
        gather_step_done(g);
}

int cluster_status_gather(struct etcd_client *c, cluster_status_cb cb, void *userdata,
                          struct cluster_status_gather **ret) {
        struct cluster_status_gather *g = calloc(1, sizeof *g);
        json_t *txn = cluster_status_txn();
        int r;

        if (!g || !txn || !(g->probes = json_object())) {
                free(g);
                json_decref(txn);
                return -ENOMEM;
        }
        *g = (struct cluster_status_gather){
            .c = c, .cb = cb, .userdata = userdata, .probes = g->probes, .next = in_flight};
        in_flight = g;
        /* held while starting, so that a reply arriving at once cannot finish us */
        g->pending = 1;
        g->pending++;
        r = etcd_call(c, ETCD_MEMBER_LIST, json_object(), members_cb, g);
        if (r < 0)
                g->pending--;
        g->pending++;
        int r2 = etcd_call(c, ETCD_TXN, txn, txn_cb, g);
        if (r2 < 0)
                g->pending--;
        if (r < 0 || r2 < 0) {
                g->cb = NULL;
                gather_step_done(g);
                return r < 0 ? r : r2;
        }
        if (ret)
                *ret = g;
        gather_step_done(g);
        return 0;
}

void cluster_status_cancel(struct cluster_status_gather *g) {
        if (g)
                g->cb = NULL;
}

void cluster_status_abandon(struct etcd_client *c) {
        for (struct cluster_status_gather *g = in_flight, *next; g; g = next) {
                next = g->next;
                if (g->c == c)
                        gather_free(g);
        }
}
