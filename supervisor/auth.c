/* auth.c: etcd users and roles (--auth). Supervisors talk to etcd as root:
 * any of them may become a member, and a member holds the whole database, so
 * a supervisor host is as trusted as the cluster. What auth confines is the
 * rest: each host's agent (user and role host-<name>: read /_mgmt/, write
 * only its own status, converged and exported keys) and mgmt-deploy (user
 * and role deployer: read /_mgmt/, write only /_mgmt/deploy/).
 *
 * Duties, each step idempotent, at every session start and retried on the
 * next view change until it went through:
 *   - at start: read the password files (0600) and make the client root;
 *   - with --auth-host-password-file: role host-<name> with its grants, user
 *     host-<name> (password set to the file's, once per process), the role
 *     granted;
 *   - with --auth-deployer-password-file: the same for deployer;
 *   - with --auth, as coordinator: user root with role root, then enable auth.
 * Passwords are never logged; request bodies that carry them are zeroed. */
#include <stdio.h>
#include <string.h>

#include "etcd.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "supervisor.h"
#include "util.h"

#define MAX_STEPS 24

struct auth_step {
        const char *path;
        json_t *body;
        const char *ok_if; /* an error holding this text is success (already there) */
        const char *what;  /* for the log */
        char name[80];     /* the user or role, for the log */
        bool add_existed;  /* this step is a user add; on "exists", run the next (changepw) */
        bool only_if_existed;
};

struct sup_auth {
        char *root_pw, *host_pw, *deployer_pw;
        char *host_user;
        bool users_done, enable_done, busy;
        bool pw_set; /* the passwords were set once by this process: later sessions only ensure */
        struct auth_step steps[MAX_STEPS];
        size_t n_steps, cur;
        bool existed;
        bool enabling; /* the running chain ends with auth enable */
};

/* Read one password file, logging a failure naming the flag. */
static int read_pw(const char *file, const char *flag, char **ret) {
        char err[512];
        int r;

        if (!file)
                return 0;
        r = etcd_password_file_read(file, ret, err, sizeof err);
        if (r < 0)
                return log_error_errno(r, "%s: %s", flag, err);
        return 0;
}

int auth_client_login(struct etcd_client *c, const struct sup_config *sc) {
        _cleanup_password_ char *pw = NULL;
        int r;

        if (!sc->auth_root_pw_file)
                return 0;
        r = read_pw(sc->auth_root_pw_file, "--auth-root-password-file", &pw);
        if (r < 0)
                return r;
        r = etcd_client_set_auth(c, "root", pw);
        if (r < 0)
                return log_error_errno(r, "cannot set the etcd user: %m");
        /* a cluster we are about to put under auth answers "not enabled" until then */
        etcd_client_set_auth_optional(c, true);
        return 0;
}

int auth_setup(struct node *n) {
        struct sup_config *sc = n->sc;
        struct sup_auth *a;
        int r;

        if (!sc->auth_root_pw_file)
                return 0;
        a = calloc(1, sizeof *a);
        if (!a)
                return log_error_errno(-ENOMEM, "out of memory");
        n->auth = a;
        if ((r = read_pw(sc->auth_root_pw_file, "--auth-root-password-file", &a->root_pw)) < 0 ||
            (r = read_pw(sc->auth_host_pw_file, "--auth-host-password-file", &a->host_pw)) < 0 ||
            (r = read_pw(sc->auth_deployer_pw_file, "--auth-deployer-password-file", &a->deployer_pw)) < 0)
                return r;
        if (asprintf(&a->host_user, "host-%s", sc->hostname) < 0)
                return log_error_errno(-ENOMEM, "out of memory");
        r = etcd_client_set_auth(n->client, "root", a->root_pw);
        if (r < 0)
                return log_error_errno(r, "cannot set the etcd user: %m");
        etcd_client_set_auth_optional(n->client, true);
        log_info("talking to etcd as root%s%s%s",
                 sc->auth ? "; --auth: enabling etcd auth as coordinator" : "",
                 a->host_pw ? "; ensuring user " : "", a->host_pw ? a->host_user : "");
        return 0;
}

static void steps_clear(struct sup_auth *a) {
        for (size_t i = 0; i < a->n_steps; i++)
                json_decref(a->steps[i].body);
        a->n_steps = a->cur = 0;
}

/* Queue one call; false when it could not be (no body: out of memory). */
static bool step(struct sup_auth *a, const char *path, json_t *body, const char *ok_if, const char *what) {
        if (a->n_steps >= MAX_STEPS || !body) {
                json_decref(body);
                return false;
        }
        const char *name = "";
        json_unpack(body, "{s?:s, s?:s}", "name", &name, "user", &name);
        a->steps[a->n_steps] = (struct auth_step){.path = path, .body = body, .ok_if = ok_if, .what = what};
        snprintf(a->steps[a->n_steps].name, sizeof a->steps[a->n_steps].name, "%s", name);
        a->n_steps++;
        return true;
}

/* A permission: type READ or READWRITE on key, or on every key under it
 * when prefix. */
static json_t *grant(const char *role, const char *type, const char *key, bool prefix) {
        _cleanup_free_ char *k = b64_encode(key, strlen(key));
        _cleanup_free_ char *end = NULL, *endb = NULL;
        json_t *perm;

        if (!k)
                return NULL;
        perm = json_pack("{s:s, s:s}", "permType", type, "key", k);
        if (!perm)
                return NULL;
        if (prefix) {
                end = etcd_prefix_end(key);
                endb = end ? b64_encode(end, strlen(end)) : NULL;
                if (!endb) {
                        json_decref(perm);
                        return NULL;
                }
                json_object_set_new(perm, "range_end", json_string(endb));
        }
        return json_pack("{s:s, s:o}", "name", role, "perm", perm);
}

/* User and role name (the same), its password and its grants. */
static void user_steps(struct sup_auth *a, const char *name, const char *pw, json_t *grants[],
                       size_t n_grants) {
        step(a, ETCD_ROLE_ADD, json_pack("{s:s}", "name", name), "already exists", "add role");
        for (size_t i = 0; i < n_grants; i++)
                step(a, ETCD_ROLE_GRANT, grants[i], NULL, "grant a permission to role");
        /* the flags go on these steps only, never on whatever step came before */
        if (step(a, ETCD_USER_ADD, json_pack("{s:s, s:s}", "name", name, "password", pw), "already exists",
                 "add user"))
                a->steps[a->n_steps - 1].add_existed = true;
        if (!a->pw_set &&
            /* once per process: a change of password ends the user's tokens */
            step(a, ETCD_USER_CHANGE_PW, json_pack("{s:s, s:s}", "name", name, "password", pw), NULL,
                 "set the password of user"))
                a->steps[a->n_steps - 1].only_if_existed = true;
        step(a, ETCD_USER_GRANT, json_pack("{s:s, s:s}", "user", name, "role", name), NULL,
             "grant its role to user");
}

static void run_step(struct node *n);

static void step_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct node *n = ud;
        struct sup_auth *a = n->auth;
        struct auth_step *s = &a->steps[a->cur];
        if (err && s->ok_if && strstr(err->msg, s->ok_if)) {
                if (s->add_existed)
                        a->existed = true;
                err = NULL;
        } else if (!err && s->add_existed)
                a->existed = false;
        if (err) {
                log_warnx("etcd auth: cannot %s '%s': %s; will retry", s->what, s->name, err->msg);
                a->busy = false;
                steps_clear(a);
                return;
        }
        a->cur++;
        run_step(n);
}

static void run_step(struct node *n) {
        struct sup_auth *a = n->auth;

        while (a->cur < a->n_steps && a->steps[a->cur].only_if_existed && !a->existed)
                a->cur++;
        if (a->cur >= a->n_steps) {
                if (a->enabling) {
                        a->enable_done = true;
                        log_notice("etcd auth is enabled: supervisors are root%s%s",
                                   a->host_pw ? ", this host's agent is " : "",
                                   a->host_pw ? a->host_user : "");
                }
                a->users_done = a->pw_set = true;
                a->busy = false;
                steps_clear(a);
                return;
        }
        struct auth_step *s = &a->steps[a->cur];
        json_t *body = s->body;
        s->body = NULL; /* the call consumes it */
        if (etcd_call(n->client, s->path, body, step_done, n) < 0) {
                a->busy = false;
                steps_clear(a);
        }
}

void auth_ensure(struct node *n) {
        struct sup_auth *a = n->auth;
        struct sup_config *sc = n->sc;

        if (!a || a->busy || n->shutting_down)
                return;
        bool enable = sc->auth && n->coordinator && !a->enable_done;
        if (a->users_done && !enable)
                return;
        a->enabling = false;
        if (!a->users_done && a->host_pw) {
                _cleanup_free_ char *all = strdup("/_mgmt/");
                _cleanup_free_ char *st = key_status(sc->hostname), *cv = key_converged(sc->hostname);
                _cleanup_free_ char *ex = NULL;
                if (!all || !st || !cv || asprintf(&ex, "/_mgmt/exported/%s/", sc->hostname) < 0)
                        return;
                json_t *g[] = {
                    grant(a->host_user, "READ", all, true),
                    grant(a->host_user, "READWRITE", st, false),
                    grant(a->host_user, "READWRITE", cv, false),
                    grant(a->host_user, "READWRITE", ex, true),
                };
                user_steps(a, a->host_user, a->host_pw, g, ELEMENTSOF(g));
        }
        if (!a->users_done && a->deployer_pw) {
                json_t *g[] = {
                    grant("deployer", "READ", "/_mgmt/", true),
                    grant("deployer", "READWRITE", "/_mgmt/deploy/", true),
                };
                user_steps(a, "deployer", a->deployer_pw, g, ELEMENTSOF(g));
        }
        if (enable) {
                step(a, ETCD_USER_ADD, json_pack("{s:s, s:s}", "name", "root", "password", a->root_pw),
                     "already exists", "add user");
                step(a, ETCD_ROLE_ADD, json_pack("{s:s}", "name", "root"), "already exists", "add role");
                step(a, ETCD_USER_GRANT, json_pack("{s:s, s:s}", "user", "root", "role", "root"), NULL,
                     "grant role root to user");
                step(a, ETCD_AUTH_ENABLE, json_object(), NULL, "enable auth for");
                a->enabling = true;
        }
        if (a->n_steps == 0) {
                a->users_done = true;
                return;
        }
        a->busy = true;
        a->cur = 0;
        a->existed = false;
        run_step(n);
}

void auth_session_start(struct node *n) {
        if (!n->auth)
                return;
        if (!n->auth->busy)
                n->auth->users_done = false; /* a user deleted meanwhile comes back */
        auth_ensure(n);
}

void auth_free(struct node *n) {
        struct sup_auth *a = n->auth;

        if (!a)
                return;
        steps_clear(a);
        etcd_password_free(a->root_pw);
        etcd_password_free(a->host_pw);
        etcd_password_free(a->deployer_pw);
        free(a->host_user);
        free(a);
        n->auth = NULL;
}
