/* role.c: this node's role as a pure transition function, the twin of
 * coordinator_decide(). node.c observes an event (a fresh read of the
 * cluster, our etcd promoted, removed, exited or stopped), describes it as
 * facts, and carries out the one action role_next() returns. The rule that
 * keeps quorum: a member that is to leave keeps its etcd serving (LEAVING)
 * until its removal is committed and confirmed by its own cluster (read from
 * its own etcd, or etcd saying it was removed); only then is etcd stopped
 * (DEPARTED) and its data moved aside. */
#include "supervisor.h"

const char *node_role_to_string(enum node_role r) {
        static const char *const names[] = {
            [ROLE_CLIENT] = "client", [ROLE_VOLUNTEER] = "volunteer", [ROLE_NOMINEE] = "nominee",
            [ROLE_MEMBER] = "member", [ROLE_LEAVING] = "leaving",     [ROLE_DEPARTED] = "departed",
        };
        return names[r];
}

const char *role_event_to_string(enum role_event e) {
        static const char *const names[] = {
            [REV_VIEW] = "view",           [REV_PROMOTED] = "promoted", [REV_REMOVED] = "removed",
            [REV_ETCD_EXIT] = "etcd-exit", [REV_STOPPED] = "stopped",
        };
        return names[e];
}

const char *role_action_to_string(enum role_action a) {
        static const char *const names[] = {
            [RA_NONE] = "none",           [RA_START_ETCD] = "start-etcd", [RA_RESTART_ETCD] = "restart-etcd",
            [RA_STOP_ETCD] = "stop-etcd", [RA_CLEAR_DATA] = "clear-data", [RA_REFUSE] = "refuse",
        };
        return names[a];
}

static bool has_etcd(enum node_role r) {
        return r == ROLE_NOMINEE || r == ROLE_MEMBER || r == ROLE_LEAVING;
}

static void step(struct role_step *ret, enum node_role r, enum role_action a, const char *why) {
        *ret = (struct role_step){.role = r, .action = a, .why = why};
}

static void on_view(enum node_role r, const struct role_facts *f, struct role_step *ret) {
        if (!f->same_cluster) {
                if (f->superseded && has_etcd(r))
                        return step(ret, ROLE_DEPARTED, RA_STOP_ETCD,
                                    "the cluster was restored as a newer generation: our data belongs to "
                                    "the old one");
                return step(ret, r, RA_REFUSE, "the cluster read is not the one this node belongs to");
        }
        switch (r) {
        case ROLE_CLIENT:
        case ROLE_DEPARTED:
                return step(ret, r, RA_NONE, NULL);
        case ROLE_VOLUNTEER:
                if (f->no_server)
                        return step(ret, ROLE_CLIENT, RA_NONE, "--no-server");
                if (f->nominated && f->member)
                        return step(ret, ROLE_NOMINEE, RA_START_ETCD, "nominated and added as a learner");
                return step(ret, r, RA_NONE,
                            f->nominated ? "nominated; waiting to be added as a member" : NULL);
        case ROLE_NOMINEE:
        case ROLE_MEMBER:
        case ROLE_LEAVING:
                if (!f->member) {
                        /* only our own cluster, as our own etcd applied it, can say we are gone */
                        if (f->own_view || (r == ROLE_NOMINEE && !f->etcd_running))
                                return step(ret, ROLE_DEPARTED, RA_STOP_ETCD,
                                            "our member was removed from the cluster");
                        return step(
                            ret, r, RA_NONE,
                            "not in the member list read elsewhere; waiting for our own etcd to confirm");
                }
                if (f->no_server || !f->nominated)
                        return step(ret, ROLE_LEAVING, RA_NONE,
                                    f->no_server ? "--no-server: serving until the coordinator removes us"
                                                 : "no longer nominated: serving until removed");
                if (r == ROLE_LEAVING)
                        return step(ret, f->learner ? ROLE_NOMINEE : ROLE_MEMBER, RA_NONE,
                                    "nominated again");
                return step(ret, r, RA_NONE, NULL);
        }
        return step(ret, r, RA_NONE, NULL);
}

void role_next(enum node_role r, enum role_event ev, const struct role_facts *f, struct role_step *ret) {
        switch (ev) {
        case REV_VIEW:
                return on_view(r, f, ret);
        case REV_PROMOTED:
                if (r == ROLE_NOMINEE)
                        return step(ret, ROLE_MEMBER, RA_NONE, "promoted to a voting member");
                return step(ret, r, RA_NONE, NULL);
        case REV_REMOVED:
                if (has_etcd(r))
                        return step(ret, ROLE_DEPARTED, RA_STOP_ETCD,
                                    "etcd says this member was removed from the cluster");
                return step(ret, r, RA_NONE, NULL);
        case REV_ETCD_EXIT:
                if (has_etcd(r))
                        return step(ret, r, RA_RESTART_ETCD, "etcd exited; restarting it, data kept");
                if (r == ROLE_DEPARTED)
                        return step(ret, f->no_server ? ROLE_CLIENT : ROLE_VOLUNTEER, RA_CLEAR_DATA,
                                    "etcd stopped");
                return step(ret, r, RA_NONE, NULL);
        case REV_STOPPED:
                if (r == ROLE_DEPARTED)
                        return step(ret, f->no_server ? ROLE_CLIENT : ROLE_VOLUNTEER, RA_CLEAR_DATA,
                                    "etcd stopped after our removal");
                return step(ret, r, RA_NONE, NULL);
        }
        return step(ret, r, RA_NONE, NULL);
}

const char *start_mode_to_string(enum start_mode m) {
        static const char *const names[] = {
            [START_RESTART] = "restart-member",
            [START_BOOTSTRAP] = "bootstrap",
            [START_JOIN] = "join",
            [START_REFUSE] = "refuse",
        };
        return names[m];
}

/* How a supervisor starts: with data it restarts its member (never a second
 * cluster over old data); a prefix with no record of a cluster and no seeds
 * bootstraps; one that ever belonged to a cluster only rejoins, through its
 * seeds or its cached endpoints, and refuses when it has neither. */
enum start_mode node_start_mode(bool data, bool seeds, bool ident_known, bool cached, bool no_server) {
        if (data)
                return START_RESTART;
        if (no_server && !seeds)
                return START_REFUSE;
        if (seeds)
                return START_JOIN;
        if (!ident_known)
                return START_BOOTSTRAP;
        return cached ? START_JOIN : START_REFUSE;
}
