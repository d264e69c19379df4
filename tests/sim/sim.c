/* sim.c: a deterministic simulation of the membership protocol. The real
 * coordinator_decide() (coordinator.c) and role_next() (role.c) run for N = 1..7
 * hosts against a small model of etcd's membership rules: voters and learners
 * (one learner at a time, as etcd 3.4 allows), etcd processes started or not,
 * quorum needed for every change and every key write, a removed member's etcd
 * learning of its removal late. Seeded random schedules inject ideal-size
 * changes, host kills and restarts, etcd crashes, stale (delayed) views and a
 * coordinator dying between the two halves of a removal. After every step:
 *   - quorum is never lost by one of our own actions (only by injected kills);
 *   - no host moves aside the data of a member still in the member list;
 *   - our coordinator never asks for a second learner or an unready promotion;
 *   - exactly one cluster: no host ever bootstraps after the first.
 * When faults stop, the cluster must reach min(ideal, live volunteers) voters
 * with no learner left.
 *
 *   sim [SCHEDULES [FIRST_SEED]]   run schedules, print "N passed, N failed"
 *   sim --seed S [--trace]         replay one schedule, printing every step
 *   sim --legacy ...               the old leave-before-remove order (must fail)
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "supervisor.h"

#define MAXH 7
#define HIST 4 /* views may be up to this many steps stale */
#define SEC USEC_PER_SEC

struct host {
        char name[16];
        bool alive;           /* supervisor running */
        bool etcd;            /* etcd child running */
        uint64_t data;        /* member id whose data is in the data dir, 0 none */
        bool removed_pending; /* our etcd will learn it was removed */
        bool nominated;       /* nominated/<host> */
        enum node_role role;
        uint64_t gone_since, nominated_since, cooldown_until; /* coordinator's timers */
};

struct member {
        uint64_t id;
        int host;
        bool learner, started;
};

struct world {
        int n;
        struct host h[MAXH];
        struct member m[MAXH * 2];
        int nm;
        long long ideal;
        uint64_t next_id, now;
        int leader;             /* host index of the raft leader, -1 none */
        int pending_key_delete; /* host whose nomination key a removal still has to delete, -1 */
        bool legacy;
        bool trace;
        int faults_left;
        char fail[512];
        /* stale views: a snapshot of the world per step */
        struct {
                struct host h[MAXH];
                struct member m[MAXH * 2];
                int nm;
        } hist[HIST];
        int hist_pos;
};

static uint64_t rng_state;
static uint64_t total_steps; /* over every schedule run */
static uint64_t rnd(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}
static int rnd_n(int n) {
        return (int)(rnd() % (uint64_t)n);
}

static void trace(struct world *w, const char *fmt, ...) _printf_(2, 3);
static void trace(struct world *w, const char *fmt, ...) {
        va_list ap;
        if (!w->trace)
                return;
        va_start(ap, fmt);
        printf("t=%3llu ", (unsigned long long)(w->now / SEC));
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
}

static void failf(struct world *w, const char *fmt, ...) _printf_(2, 3);
static void failf(struct world *w, const char *fmt, ...) {
        va_list ap;
        if (w->fail[0])
                return;
        va_start(ap, fmt);
        vsnprintf(w->fail, sizeof w->fail, fmt, ap);
        va_end(ap);
        trace(w, "INVARIANT BROKEN: %s", w->fail);
}

static struct member *member_by_host(struct world *w, int h) {
        for (int i = 0; i < w->nm; i++)
                if (w->m[i].host == h)
                        return &w->m[i];
        return NULL;
}

static struct member *member_by_id(struct world *w, uint64_t id) {
        for (int i = 0; i < w->nm; i++)
                if (w->m[i].id == id)
                        return &w->m[i];
        return NULL;
}

static int voters(const struct world *w) {
        int n = 0;
        for (int i = 0; i < w->nm; i++)
                n += !w->m[i].learner;
        return n;
}

/* A voter counts toward quorum while its etcd runs on a live host with its data. */
static bool quorum(const struct world *w) {
        int up = 0, nv = voters(w);
        for (int i = 0; i < w->nm; i++) {
                const struct host *h = &w->h[w->m[i].host];
                if (!w->m[i].learner && h->alive && h->etcd && h->data == w->m[i].id)
                        up++;
        }
        return nv > 0 && up > nv / 2;
}

static bool healthy(const struct world *w, int hi) {
        const struct host *h = &w->h[hi];
        for (int i = 0; i < w->nm; i++)
                if (w->m[i].host == hi)
                        return h->alive && h->etcd && h->data == w->m[i].id && quorum(w);
        return false;
}

static void pick_leader(struct world *w) {
        if (w->leader >= 0 && healthy(w, w->leader) && member_by_host(w, w->leader) &&
            !member_by_host(w, w->leader)->learner)
                return;
        w->leader = -1;
        if (!quorum(w))
                return;
        int c[MAXH], n = 0;
        for (int i = 0; i < w->nm; i++)
                if (!w->m[i].learner && healthy(w, w->m[i].host))
                        c[n++] = w->m[i].host;
        if (n)
                w->leader = c[rnd_n(n)];
}

/* ---------- the coordinator, as round.c feeds it ---------- */

static void coordinator_round(struct world *w) {
        struct cmember cm[MAXH * 2];
        struct chost ch[MAXH];
        struct caction a;
        int self = w->leader;

        if (self < 0 || !quorum(w))
                return;
        /* a leaving coordinator keeps coordinating until removed */
        for (int i = 0; i < w->n; i++) {
                struct host *h = &w->h[i];
                bool vol = h->alive && h->role != ROLE_CLIENT;
                bool ep = healthy(w, i) && member_by_host(w, i) && !member_by_host(w, i)->learner;
                ch[i] = (struct chost){
                    .name = h->name, .volunteer = vol, .nominated = h->nominated, .endpoints = ep};
                if (!vol && !ep) {
                        if (!h->gone_since)
                                h->gone_since = w->now;
                } else
                        h->gone_since = 0;
                struct member *m = member_by_host(w, i);
                if (!h->nominated || (m && m->started && !m->learner))
                        h->nominated_since = 0;
                else if (!h->nominated_since)
                        h->nominated_since = w->now;
                ch[i].gone_since = h->gone_since;
                ch[i].nominated_since = h->nominated_since;
                ch[i].cooldown_until = h->cooldown_until;
        }
        for (int i = 0; i < w->nm; i++)
                cm[i] = (struct cmember){.id = w->m[i].id,
                                         .name = w->m[i].started ? w->h[w->m[i].host].name : "",
                                         .host = w->h[w->m[i].host].name,
                                         .learner = w->m[i].learner,
                                         .started = w->m[i].started};
        struct cstate s = {.self = w->h[self].name,
                           .self_id = member_by_host(w, self)->id,
                           .ideal = w->ideal,
                           .members = cm,
                           .n_members = (size_t)w->nm,
                           .hosts = ch,
                           .n_hosts = (size_t)w->n,
                           .now = w->now,
                           .nominate_timeout = 30 * SEC,
                           .dead_grace = 60 * SEC};
        coordinator_decide(&s, &a);
        if (a.type == ACT_NONE)
                return;
        int hi = -1;
        for (int i = 0; a.host && i < w->n; i++)
                if (streq(w->h[i].name, a.host))
                        hi = i;
        trace(w, "coordinator %s: %s (%s)", w->h[self].name, caction_to_string(a.type), a.why);
        bool q_before = quorum(w);
        switch (a.type) {
        case ACT_NOMINATE:
        case ACT_RENOMINATE:
                w->h[hi].nominated = true;
                break;
        case ACT_UNNOMINATE:
                w->h[hi].nominated = false;
                break;
        case ACT_ADD_LEARNER:
                for (int i = 0; i < w->nm; i++)
                        if (w->m[i].learner)
                                failf(w, "coordinator added a second learner (%s) while %s is one", a.host,
                                      w->h[w->m[i].host].name);
                w->m[w->nm++] = (struct member){.id = w->next_id++, .host = hi, .learner = true};
                break;
        case ACT_PROMOTE: {
                struct member *m = member_by_id(w, a.id);
                if (!m || !m->started || !w->h[m->host].etcd) {
                        trace(w, "etcd refuses: learner not ready");
                        break;
                }
                m->learner = false;
                break;
        }
        case ACT_REMOVE: {
                struct member *m = member_by_id(w, a.id);
                if (!m)
                        break;
                if (a.cooldown && hi >= 0) {
                        w->h[hi].cooldown_until = w->now + 60 * SEC;
                        w->h[hi].nominated_since = 0;
                }
                int mh = m->host;
                if (w->legacy && w->h[mh].nominated && !m->learner) {
                        /* the old order: un-nominate first, remove on a later round */
                        w->h[mh].nominated = false;
                        break;
                }
                *m = w->m[--w->nm];
                if (w->h[mh].etcd)
                        w->h[mh].removed_pending = true;
                /* the nomination key goes in a second request: the coordinator may die in between */
                if (rnd_n(8) == 0) {
                        trace(w, "coordinator dies before deleting nominated/%s", w->h[mh].name);
                        w->leader = -1;
                } else
                        w->h[mh].nominated = false;
                break;
        }
        case ACT_TRANSFER:
                if (healthy(w, hi))
                        w->leader = hi;
                break;
        case ACT_NONE:
                break;
        }
        if (q_before && !quorum(w))
                failf(w, "quorum lost by the coordinator's own action %s %s", caction_to_string(a.type),
                      a.host ? a.host : "");
}

/* ---------- a node: observe, role_next(), act, as node.c does ---------- */

static void node_act(struct world *w, int hi, enum role_event ev, const struct role_facts *fin);

static void node_view(struct world *w, int hi, int age) {
        struct host *h = &w->h[hi];
        /* a view read some steps ago (delayed watch event, slow reply) */
        int slot = (w->hist_pos - age + HIST * 4) % HIST;
        const struct host *vh = age ? w->hist[slot].h : w->h;
        const struct member *vm = age ? w->hist[slot].m : w->m;
        int vnm = age ? w->hist[slot].nm : w->nm;
        bool member = false, learner = false;
        if (!quorum(w))
                return; /* no linearizable read without quorum */
        for (int i = 0; i < vnm; i++)
                if (vm[i].host == hi) {
                        member = true;
                        learner = vm[i].learner;
                }
        struct role_facts f = {
            .same_cluster = true,
            .nominated = vh[hi].nominated,
            .member = member,
            /* only a fresh read from our own healthy voting etcd is "own" */
            .own_view = age == 0 && healthy(w, hi) && member && !learner,
        };
        node_act(w, hi, REV_VIEW, &f);
        (void)h;
}

static void node_act(struct world *w, int hi, enum role_event ev, const struct role_facts *fin) {
        struct host *h = &w->h[hi];
        struct role_facts f = fin ? *fin : (struct role_facts){0};
        struct role_step st;
        struct member *me = member_by_host(w, hi);

        f.learner = me && me->learner;
        f.etcd_running = h->etcd;
        if (w->legacy && ev == REV_VIEW && (h->role == ROLE_MEMBER || h->role == ROLE_NOMINEE) &&
            (!f.nominated || !f.member)) {
                /* the old node: leave at once, stop etcd and wipe */
                st =
                    (struct role_step){.role = ROLE_DEPARTED, .action = RA_STOP_ETCD, .why = "legacy leave"};
        } else
                role_next(h->role, ev, &f, &st);
        if (st.role != h->role)
                trace(w, "%s: %s -> %s (%s)", h->name, node_role_to_string(h->role),
                      node_role_to_string(st.role), st.why ? st.why : role_event_to_string(ev));
        h->role = st.role;
        bool q_before = quorum(w);
        switch (st.action) {
        case RA_NONE:
        case RA_REFUSE:
                break;
        case RA_START_ETCD:
                if (!me) {
                        /* a stale view: the member it saw is gone by now; its
                         * etcd hears from the cluster that it was removed */
                        h->etcd = true;
                        h->data = 999999;
                        h->removed_pending = true;
                        break;
                }
                h->etcd = true;
                h->data = me->id;
                me->started = true;
                break;
        case RA_RESTART_ETCD:
                h->etcd = true;
                if (me && h->data == me->id)
                        me->started = true;
                break;
        case RA_STOP_ETCD:
                h->etcd = false;
                node_act(w, hi, REV_STOPPED, NULL);
                break;
        case RA_CLEAR_DATA:
                if (h->data && member_by_id(w, h->data))
                        failf(w, "%s moved aside the data of member %" PRIu64 ", still in the member list",
                              h->name, h->data);
                h->data = 0;
                h->removed_pending = false;
                break;
        }
        if (q_before && !quorum(w))
                failf(w, "quorum lost by %s's own action %s", h->name, role_action_to_string(st.action));
}

/* ---------- faults ---------- */

static void host_start(struct world *w, int hi) {
        struct host *h = &w->h[hi];
        /* node_start decides as the real one does: h1 runs without --seeds;
         * every prefix has met the cluster and cached its endpoints */
        enum start_mode mode = node_start_mode(h->data != 0, hi != 0, true, true, false);
        if (mode == START_BOOTSTRAP)
                failf(w, "%s would bootstrap a second cluster", h->name);
        if (mode == START_REFUSE || mode == START_BOOTSTRAP)
                return;
        h->alive = true;
        if (mode == START_RESTART) {
                h->role = ROLE_MEMBER;
                h->etcd = true;
                struct member *me = member_by_host(w, hi);
                if (!me || me->id != h->data)
                        h->removed_pending = true; /* peers tell it: removed */
                else
                        h->removed_pending = false;
        } else
                h->role = ROLE_VOLUNTEER;
}

static void snapshot(struct world *w) {
        w->hist_pos = (w->hist_pos + 1) % HIST;
        memcpy(w->hist[w->hist_pos].h, w->h, sizeof w->h);
        memcpy(w->hist[w->hist_pos].m, w->m, sizeof w->m);
        w->hist[w->hist_pos].nm = w->nm;
}

/* One step: a coordinator round, a node event, or (while allowed) a fault. */
static void step(struct world *w, bool faults) {
        int r = rnd_n(faults ? 20 : 14);
        int hi = rnd_n(w->n);
        struct host *h = &w->h[hi];

        w->now += SEC;
        total_steps++;
        pick_leader(w);
        if (r < 5) {
                coordinator_round(w);
        } else if (r < 11) {
                if (h->alive)
                        node_view(w, hi, faults ? rnd_n(HIST) : 0);
        } else if (r < 13) {
                /* our etcd: promoted, or learns it was removed (and exits) */
                struct member *me = member_by_host(w, hi);
                if (h->alive && h->etcd && h->removed_pending) {
                        h->etcd = false;
                        node_act(w, hi, REV_REMOVED, NULL);
                } else if (h->alive && h->etcd && me && !me->learner && h->role == ROLE_NOMINEE)
                        node_act(w, hi, REV_PROMOTED, NULL);
        } else if (r < 14) {
                if (h->alive && h->etcd && !h->removed_pending && rnd_n(4) == 0) {
                        trace(w, "%s: etcd crashes", h->name);
                        h->etcd = false;
                        node_act(w, hi, REV_ETCD_EXIT, NULL);
                }
        } else if (w->faults_left > 0) {
                w->faults_left--;
                int k = rnd_n(4);
                if (k == 0) {
                        w->ideal = 1 + rnd_n(w->n);
                        trace(w, "operator: idealClusterSize %lld", w->ideal);
                } else if (k == 1 && h->alive) {
                        trace(w, "kill %s", h->name);
                        h->alive = h->etcd = false;
                        if (w->leader == hi)
                                w->leader = -1;
                } else if (k == 2 && !h->alive) {
                        trace(w, "restart %s", h->name);
                        host_start(w, hi);
                } else if (k == 3 && h->alive) {
                        trace(w, "%s: supervisor restarts (SIGTERM, data kept)", h->name);
                        h->etcd = false;
                        host_start(w, hi);
                }
        }
        snapshot(w);
}

static int live_volunteers(const struct world *w) {
        int n = 0;
        for (int i = 0; i < w->n; i++)
                n += w->h[i].alive;
        return n;
}

static bool settled(struct world *w) {
        int want = (int)(w->ideal < live_volunteers(w) ? w->ideal : live_volunteers(w));
        for (int i = 0; i < w->nm; i++)
                if (w->m[i].learner || !w->h[w->m[i].host].alive)
                        return false;
        return voters(w) == want && quorum(w);
}

/* Run one schedule; returns 0 if every invariant held. */
static int run(uint64_t seed, bool legacy, bool tr, char *why, size_t whylen) {
        struct world w = {.legacy = legacy, .trace = tr, .leader = 0, .pending_key_delete = -1};
        rng_state = seed * 2654435761ULL + 88172645463325252ULL;
        for (int i = 0; i < 3; i++)
                rnd();
        w.n = 1 + rnd_n(MAXH);
        w.ideal = 1 + rnd_n(w.n);
        w.next_id = 100;
        w.faults_left = 2 + rnd_n(12);
        for (int i = 0; i < w.n; i++) {
                snprintf(w.h[i].name, sizeof w.h[i].name, "h%d", i + 1);
                w.h[i].role = ROLE_VOLUNTEER;
                w.h[i].alive = true;
        }
        /* h1 bootstraps: the one and only cluster */
        w.m[w.nm++] = (struct member){.id = w.next_id++, .host = 0, .started = true};
        w.h[0] =
            (struct host){.alive = true, .etcd = true, .data = 100, .nominated = true, .role = ROLE_MEMBER};
        snprintf(w.h[0].name, sizeof w.h[0].name, "h1");
        for (int i = 0; i < HIST; i++)
                snapshot(&w);
        trace(&w, "seed %" PRIu64 ": %d hosts, ideal %lld, %d faults", seed, w.n, w.ideal, w.faults_left);
        for (int i = 0; i < 300 && !w.fail[0]; i++)
                step(&w, true);
        /* faults stop: every host comes back; the cluster must settle */
        w.faults_left = 0;
        if (!quorum(&w)) {
                /* only injected kills can cost the quorum: bring every host back */
                for (int i = 0; i < w.n; i++)
                        if (!w.h[i].alive)
                                host_start(&w, i);
        }
        int i;
        for (i = 0; i < 3000 && !w.fail[0] && !settled(&w); i++)
                step(&w, false);
        if (!w.fail[0] && !settled(&w))
                failf(&w, "did not settle: %d voters, ideal %lld, %d live, learners %s", voters(&w), w.ideal,
                      live_volunteers(&w), w.nm > voters(&w) ? "left" : "none");
        if (w.fail[0]) {
                snprintf(why, whylen, "%s", w.fail);
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        uint64_t n = 10000, first = 1, seed = 0;
        bool legacy = false, tr = false, one = false;
        char why[512];
        int pos = 0;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--legacy"))
                        legacy = true;
                else if (streq(argv[i], "--trace"))
                        tr = true;
                else if (streq(argv[i], "--seed") && i + 1 < argc) {
                        seed = strtoull(argv[++i], NULL, 10);
                        one = true;
                } else if (pos == 0) {
                        n = strtoull(argv[i], NULL, 10);
                        pos++;
                } else
                        first = strtoull(argv[i], NULL, 10);
        }
        if (one) {
                int r = run(seed, legacy, true, why, sizeof why);
                printf("seed %" PRIu64 ": %s\n", seed, r ? why : "ok");
                return r;
        }
        uint64_t passed = 0, failed = 0;
        for (uint64_t s = first; s < first + n; s++) {
                if (run(s, legacy, tr, why, sizeof why)) {
                        if (failed < 5)
                                printf("seed %" PRIu64 " failed: %s (replay: sim%s --seed %" PRIu64 ")\n", s,
                                       why, legacy ? " --legacy" : "", s);
                        failed++;
                } else
                        passed++;
        }
        printf("sim%s: %" PRIu64 " schedules, %" PRIu64 " steps, %" PRIu64 " passed, %" PRIu64 " failed\n",
               legacy ? " (legacy order)" : "", n, total_steps, passed, failed);
        return failed ? 1 : 0;
}
