/* view.c: what this node knows of the cluster. Watches on volunteer/,
 * nominated/, endpoints/ and idealClusterSize schedule a refresh that reads
 * the keys in one transaction and then the member list (from our own etcd
 * when it is a healthy voter: only that can confirm our removal); the view
 * is judged against the cluster this prefix belongs to (cluster.json), URL
 * conflicts are found, and the client's endpoint list and its cache under
 * the prefix follow. A fresh view is reported upward through on_view. */
#include <bsd/stdlib.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

static void judge_view(struct node *n);

static void cache_path(struct node *n, char *p, size_t len) {
        snprintf(p, len, "%s/endpoints", n->sc->prefix);
}

char **view_cache_read(struct node *n) {
        char p[4096], err[256];
        _cleanup_free_ char *text = NULL;
        char **urls = NULL;
        cache_path(n, p, sizeof p);
        if (read_file_max(p, 1 << 16, &text, NULL) < 0)
                return NULL;
        if (urls_parse(text, &urls, err, sizeof err) < 0)
                return NULL;
        return urls;
}

static void cache_write(struct node *n, char *const *urls) {
        char p[4096];
        _cleanup_free_ char *j = strv_join(urls, "\n");
        cache_path(n, p, sizeof p);
        if (j && write_file_atomic(p, j, strlen(j), 0600) < 0)
                log_warn("cannot write endpoint cache '%s'", p);
}

/* Client endpoints: our own etcd first when it runs, then every member the
 * cluster lists and every published endpoint, then seeds. A view that names
 * no endpoint at all (power loss: nobody has published yet) leaves the list
 * as it is: a known-good list is never shrunk to seeds that may be dead. */
void view_update_endpoints(struct node *n) {
        _cleanup_strv_ char **v = NULL;
        if (n->child.state != CHILD_DOWN && !n->learner)
                strv_extend(&v, n->sc->adv_client_urls);
        for (size_t i = 0; n->view_ok && i < n->members.n; i++)
                strv_extend(&v, n->members.m[i].client_urls);
        for (size_t i = 0; n->view_ok && n->end_urls && n->end_urls[i]; i++) {
                char err[256];
                _cleanup_strv_ char **u = NULL;
                if (urls_parse(n->end_urls[i], &u, err, sizeof err) < 0) {
                        /* once per value: a hostile or broken key must not flood the log */
                        if (!n->bad_endpoints_text || !streq(n->bad_endpoints_text, n->end_urls[i])) {
                                log_warnx("ignoring endpoints of host '%s': %s", n->end_hosts[i], err);
                                free(n->bad_endpoints_text);
                                n->bad_endpoints_text = strdup(n->end_urls[i]);
                        }
                        continue;
                }
                strv_extend(&v, u);
        }
        /* one linear pass (n log n) instead of a search per URL */
        strv_uniq(v);
        if (strv_length(v) == 0)
                return;
        _cleanup_strv_ char **known = strv_copy(v);
        strv_extend_uniq(&v, n->sc->seeds);
        etcd_client_set_endpoints(n->client, v);
        cache_write(n, known);
}

static int refresh_defer_cb(sd_event_source *s, void *ud) {
        struct node *n = ud;
        n->refresh_defer = sd_event_source_disable_unref(n->refresh_defer);
        view_refresh(n);
        return 0;
}

void view_refresh_soon(struct node *n) {
        if (!n->refresh_defer && !n->shutting_down)
                sd_event_add_defer(n->event, &n->refresh_defer, refresh_defer_cb, n);
}

static void watch_cb(struct etcd_watch *w, const struct etcd_error *err, const struct etcd_watch_msg *msg,
                     void *ud) {
        struct node *n = ud;
        if (err) {
                log_debug("%s", err->msg);
                if (msg && msg->compact_revision > 0) {
                        /* re-create every watch from now and re-read everything */
                        for (size_t i = 0; i < ELEMENTSOF(n->watches); i++)
                                if (n->watches[i] == w)
                                        n->watches[i] = NULL;
                        etcd_watch_free(w);
                        view_watches_start(n);
                        view_refresh_soon(n);
                }
                return;
        }
        view_refresh_soon(n);
}

/* From now, each confirmation followed by a read (watch_cb): a watch from a
 * past revision is a lagging watcher to etcd, served only every 100 ms. */
void view_watches_start(struct node *n) {
        char *keys[4] = {key_volunteer_prefix(), key_nominated_prefix(), key_endpoints_prefix(),
                         key_ideal_size()};
        for (size_t i = 0; i < 4; i++) {
                if (!n->watches[i]) {
                        if (etcd_watch_new(n->client, keys[i], i < 3, 0, watch_cb, n, &n->watches[i]) < 0)
                                log_warnx("cannot watch '%s'", keys[i]);
                        else
                                etcd_watch_notify_created(n->watches[i]);
                }
                free(keys[i]);
        }
}

static void split_kvs(const struct etcd_kvs *kvs, const char *prefix, char ***hosts, char ***vals) {
        strv_free(*hosts);
        strv_free(*vals);
        *hosts = calloc(1, sizeof(char *));
        *vals = calloc(1, sizeof(char *));
        for (size_t i = 0; i < kvs->n; i++) {
                const char *h = key_host_suffix(kvs->kvs[i].key, prefix);
                if (!h)
                        continue;
                strv_push(hosts, h);
                strv_push(vals, kvs->kvs[i].value);
        }
}

/* Does the comma-joined URL list hold any of urls? Returns the first shared one. */
static const char *shared_url(const char *list, char *const *urls) {
        for (size_t i = 0; urls && urls[i]; i++)
                if (url_list_holds(list, urls[i]))
                        return urls[i];
        return NULL;
}

/* Another host volunteering (before us) or serving with our URLs. */
static void find_url_conflict(struct node *n, const struct etcd_kvs *vol, const struct etcd_kvs *ep,
                              const char *vp, const char *epp) {
        int64_t mine = INT64_MAX;
        free(n->url_conflict);
        free(n->url_conflict_what);
        n->url_conflict = n->url_conflict_what = NULL;
        for (size_t i = 0; i < vol->n; i++) {
                const char *h = key_host_suffix(vol->kvs[i].key, vp);
                if (h && streq(h, n->sc->hostname))
                        mine = vol->kvs[i].create_revision;
        }
        for (size_t l = 0; l < 2 && !n->url_conflict; l++) {
                const struct etcd_kvs *kvs = l == 0 ? vol : ep;
                char *const *urls = l == 0 ? n->sc->adv_server_urls : n->sc->adv_client_urls;
                for (size_t i = 0; i < kvs->n; i++) {
                        const char *h = key_host_suffix(kvs->kvs[i].key, l == 0 ? vp : epp);
                        const char *u = shared_url(kvs->kvs[i].value, urls);
                        if (!h || !u || streq(h, n->sc->hostname) ||
                            (l == 0 && kvs->kvs[i].create_revision > mine))
                                continue;
                        n->url_conflict = strdup(h);
                        if (asprintf(&n->url_conflict_what, "%s URL '%s'", l == 0 ? "peer" : "client", u) <
                            0)
                                n->url_conflict_what = NULL;
                        break;
                }
        }
}

static void members_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_members ms;
        struct etcd_error perr;

        n->refresh_busy = false;
        if (err || etcd_parse_members(reply, &ms, &perr) < 0) {
                log_debug("member list failed: %s", err ? err->msg : perr.msg);
                if (n->refresh_again) {
                        n->refresh_again = false;
                        view_refresh_soon(n);
                }
                return;
        }
        etcd_members_clear(&n->members);
        n->members = ms;
        n->view_own = n->view_own_pending;
        judge_view(n);
        n->have_state = true;
        if (n->view_ok)
                view_update_endpoints(n);
        if (n->on_view)
                n->on_view(n);
        if (n->refresh_again) {
                n->refresh_again = false;
                view_refresh_soon(n);
        }
}

/* /_mgmt/cluster: {"id": hex, "generation": N, "created": time} */
static void parse_cluster_key(struct node *n, const char *v) {
        json_t *j = v ? json_loads(v, 0, NULL) : NULL;
        const char *id = NULL;
        json_int_t gen = 0;
        n->view_key_id = 0;
        n->view_gen = 0;
        if (j && json_unpack(j, "{s:s, s:I}", "id", &id, "generation", &gen) == 0 && gen > 0) {
                n->view_key_id = strtoull(id, NULL, 16);
                n->view_gen = gen;
        } else if (v && (!n->cluster_key_text || !streq(n->cluster_key_text, v)))
                log_warnx("ignoring a malformed /_mgmt/cluster value '%.80s'", v);
        free(n->cluster_key_text);
        n->cluster_key_text = v ? strdup(v) : NULL;
        json_decref(j);
}

/* Is what we just read from the cluster this node belongs to? A node with no
 * record yet adopts the cluster it first reads; a record is replaced only by
 * a newer generation of the cluster (a restore), and data of the old one is
 * then moved aside by the role function. */
static void judge_view(struct node *n) {
        uint64_t cid = n->view_cid;
        bool coherent = cid && cid == n->members.cluster_id;
        bool newer = coherent && n->view_key_id == cid && n->view_gen > n->ident.generation;
        bool has_etcd = n->role == ROLE_NOMINEE || n->role == ROLE_MEMBER || n->role == ROLE_LEAVING ||
                        n->role == ROLE_DEPARTED;

        n->view_superseded = false;
        if (!coherent) {
                n->view_ok = false;
                return;
        }
        if (!n->ident.id && !has_etcd) {
                /* a volunteer or client: adopt the first cluster we meet, or a newer generation */
                if (!n->ident.known || n->view_gen >= n->ident.generation || !n->view_gen) {
                        n->ident.id = cid;
                        n->ident.known = true;
                        if (n->view_gen > 0)
                                n->ident.generation = n->view_gen;
                        if (n->ident.generation < 1)
                                n->ident.generation = 1;
                        if (ident_save(n->sc->prefix, &n->ident) < 0)
                                log_warn("cannot record the cluster in '%s/cluster.json'", n->sc->prefix);
                        log_info("joined cluster %016llx, generation %lld", (unsigned long long)cid,
                                 n->ident.generation);
                }
        }
        if (!n->ident.id) {
                n->view_ok = true; /* a member whose etcd has not reported yet: the old behaviour */
                return;
        }
        if (cid == n->ident.id) {
                n->view_ok = true;
                if (n->refused_cid) {
                        log_notice("the cluster read is ours again (%016llx)", (unsigned long long)cid);
                        n->refused_cid = 0;
                }
                if (n->view_key_id == cid && n->view_gen > n->ident.generation) {
                        n->ident.generation = n->view_gen;
                        ident_save(n->sc->prefix, &n->ident);
                }
                return;
        }
        if (newer && !has_etcd) {
                log_notice(
                    "cluster %016llx, generation %lld, replaces our record of %016llx, generation %lld "
                    "(restored from a snapshot): joining it",
                    (unsigned long long)cid, (long long)n->view_gen, (unsigned long long)n->ident.id,
                    n->ident.generation);
                n->ident.id = cid;
                n->ident.generation = n->view_gen;
                ident_save(n->sc->prefix, &n->ident);
                n->view_ok = true;
                return;
        }
        n->view_ok = false;
        n->view_superseded = newer;
}

static void state_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct etcd_kvs kv[5] = {0};
        struct etcd_error perr;
        bool ok;

        if (err || etcd_parse_txn(reply, &ok, &perr) < 0) {
                n->refresh_busy = false;
                n->refresh_again = false;
                log_debug("cannot read cluster state: %s", err ? err->msg : perr.msg);
                return;
        }
        n->view_cid = 0;
        etcd_parse_cluster_id(reply, &n->view_cid);
        for (size_t i = 0; i < 5; i++)
                if (etcd_parse_txn_range(reply, i, &kv[i], &perr) < 0) {
                        n->refresh_busy = false;
                        for (size_t j = 0; j < 5; j++)
                                etcd_kvs_clear(&kv[j]);
                        log_warnx("bad cluster state reply: %s", perr.msg);
                        return;
                }
        _cleanup_free_ char *vp = key_volunteer_prefix(), *np = key_nominated_prefix(),
                            *ep = key_endpoints_prefix();
        _cleanup_free_ char *ik = key_ideal_size();
        if (!vp || !np || !ep || !ik) {
                n->refresh_busy = false;
                for (size_t j = 0; j < 5; j++)
                        etcd_kvs_clear(&kv[j]);
                log_errorx("out of memory reading the cluster state");
                return;
        }
        split_kvs(&kv[0], vp, &n->vol_hosts, &n->vol_urls);
        free(n->vol_crev);
        n->vol_crev = calloc(kv[0].n + 1, sizeof *n->vol_crev);
        for (size_t i = 0, k = 0; n->vol_crev && i < kv[0].n; i++)
                if (key_host_suffix(kv[0].kvs[i].key, vp))
                        n->vol_crev[k++] = kv[0].kvs[i].create_revision;
        split_kvs(&kv[1], np, &n->nom_hosts, &n->nom_urls);
        split_kvs(&kv[2], ep, &n->end_hosts, &n->end_urls);
        /* Keys are checked against what etcd holds, not what we sent: a
         * withdrawal sent when our etcd died can wait for a leader elsewhere
         * and land after the put made once it was back, and the coordinator
         * would count us unhealthy for good (chaos seed 7291). The health
         * tick puts it back. Only a read at or after our put's revision can
         * say it is gone. */
        if (n->endpoints_published && n->endpoints_rev > 0 && kv[2].revision >= n->endpoints_rev &&
            n->end_hosts && !strv_contains(n->end_hosts, n->sc->hostname)) {
                log_notice(
                    "our endpoints key is gone from etcd though we published it; publishing it again");
                n->endpoints_published = false;
        }
        find_url_conflict(n, &kv[0], &kv[2], vp, ep);
        const char *iv = kv[3].n ? kv[3].kvs[0].value : NULL;
        n->ideal_missing = !iv;
        if (!iv) {
                /* deleted: the last size we saw stands (the coordinator puts it back),
                 * so the target never depends on which host leads */
                n->ideal = n->ideal_seen > 0 ? n->ideal_seen : n->sc->ideal;
        } else {
                const char *e = NULL;
                long long v = strtonum(iv, 1, 1000, &e);
                if (e) {
                        if (!n->ideal_text || !streq(n->ideal_text, iv))
                                log_warnx("ignoring %s '%s': %s (must be 1..1000); no resizing", ik, iv, e);
                        n->ideal = -1;
                } else
                        n->ideal = n->ideal_seen = v;
        }
        free(n->ideal_text);
        n->ideal_text = iv ? strdup(iv) : NULL;
        parse_cluster_key(n, kv[4].n ? kv[4].kvs[0].value : NULL);
        for (size_t j = 0; j < 5; j++)
                etcd_kvs_clear(&kv[j]);
        /* the member list from our own etcd when it is a healthy voter: only
         * what our own etcd applied can confirm our removal */
        n->view_own_pending = n->child.state == CHILD_UP && n->healthy && !n->learner;
        int r = n->view_own_pending ? etcd_call_at(n->client, n->sc->adv_client_urls[0], ETCD_MEMBER_LIST,
                                                   json_object(), members_done, n)
                                    : etcd_call(n->client, ETCD_MEMBER_LIST, json_object(), members_done, n);
        if (r < 0)
                n->refresh_busy = false;
}

void view_refresh(struct node *n) {
        if (n->shutting_down || n->session_busy)
                return;
        if (n->refresh_busy) {
                n->refresh_again = true;
                return;
        }
        _cleanup_free_ char *v = key_volunteer_prefix(), *no = key_nominated_prefix(),
                            *e = key_endpoints_prefix(), *i = key_ideal_size(), *ck = key_cluster();
        json_t *ops = json_pack("[ooooo]", etcd_op_range(v, true), etcd_op_range(no, true),
                                etcd_op_range(e, true), etcd_op_range(i, false), etcd_op_range(ck, false));
        n->refresh_busy = true;
        if (etcd_call(n->client, ETCD_TXN, etcd_req_txn(NULL, ops, NULL), state_done, n) < 0)
                n->refresh_busy = false;
}

/* Our member: the one with our name; an unstarted learner (no name yet)
 * carrying our advertised peer URLs. Never a member named after another host,
 * even with our URLs (two hosts given the same URLs). */
const struct etcd_member *view_my_member(const struct node *n) {
        for (size_t i = 0; i < n->members.n; i++) {
                const struct etcd_member *m = &n->members.m[i];
                if (m->name && *m->name) {
                        if (streq(m->name, n->sc->hostname))
                                return m;
                        continue;
                }
                for (size_t j = 0; m->peer_urls[j]; j++)
                        if (strv_contains(n->sc->adv_server_urls, m->peer_urls[j]))
                                return m;
        }
        return NULL;
}
