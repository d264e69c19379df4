/* graph_fields.c: the resource kinds and their fields: which fields each
 * kind takes, each field's rule (with mgmt's fields this agent refuses named
 * with the reason) and mgmt's meta parameters. The value readers are in
 * graph_values.c, the JSON form, copy and equality in graph_resource.c. */
#include <bsd/string.h>
#include <ctype.h>
#include <stdio.h>

#include "graph.h"
#include "graph_internal.h"
#include "macro.h"
#include "util.h"

static const char *const kind_names[_RES_KIND_MAX] = {
    [RES_FILE] = "file", [RES_EXEC] = "exec", [RES_PRINT] = "print",
    [RES_NOOP] = "noop", [RES_SVC] = "svc",   [RES_PKG] = "pkg",
};

static const char *const svc_state_names[] = {
    [SVC_STATE_UNSET] = "", [SVC_RUNNING] = "running", [SVC_STOPPED] = "stopped"};
static const char *const svc_startup_names[] = {
    [SVC_STARTUP_UNSET] = "", [SVC_ENABLED] = "enabled", [SVC_DISABLED] = "disabled"};
static const char *const pkg_state_names[] = {
    [PKG_INSTALLED] = "installed", [PKG_UNINSTALLED] = "uninstalled", [PKG_NEWEST] = "newest"};

const char *svc_state_to_string(enum svc_state s) {
        return (unsigned)s < ELEMENTSOF(svc_state_names) ? svc_state_names[s] : NULL;
}

const char *svc_startup_to_string(enum svc_startup s) {
        return (unsigned)s < ELEMENTSOF(svc_startup_names) ? svc_startup_names[s] : NULL;
}

const char *pkg_state_to_string(enum pkg_state s) {
        return (unsigned)s < ELEMENTSOF(pkg_state_names) ? pkg_state_names[s] : NULL;
}

int svc_unit_name(const char *name, char *buf, size_t len) {
        int n = snprintf(buf, len, "%s%s", name, strchr(name, '.') ? "" : ".service");
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Debian package names (Policy 5.6.1), optionally with ":ARCH". */
static bool pkg_name_is_valid(const char *s) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        if (n < 2 || n > 128 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && !strchr("+-.", s[i]))
                        return false;
        if (colon) {
                if (!colon[1] || strlen(colon + 1) > 32)
                        return false;
                for (const char *p = colon + 1; *p; p++)
                        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
                                return false;
        }
        return true;
}

const char *res_kind_to_string(enum res_kind k) {
        if ((unsigned)k >= _RES_KIND_MAX)
                return NULL;
        return kind_names[k];
}

int res_kind_from_string(const char *s) {
        for (int k = 0; s && k < _RES_KIND_MAX; k++)
                if (streq(s, kind_names[k]))
                        return k;
        return -EINVAL;
}

void resource_clear(struct resource *r) {
        if (!r)
                return;
        free(r->name);
        free(r->file.path);
        free(r->file.content);
        free(r->file.source);
        free(r->file.owner);
        free(r->file.group);
        free(r->exec.cmd);
        free(r->exec.shell);
        free(r->exec.ifcmd);
        free(r->exec.ifshell);
        free(r->exec.watchcmd);
        free(r->exec.watchshell);
        free(r->print.msg);
        *r = (struct resource){.file.mode = -1};
}

static const char *const fields_file[] = {"name",  "path",  "content", "source", "state", "mode",
                                          "owner", "group", "recurse", "force",  "meta",  NULL};
static const char *const fields_exec[] = {"name",       "cmd",     "shell",   "ifcmd", "ifshell", "watchcmd",
                                          "watchshell", "timeout", "pollint", "state", "meta",    NULL};
static const char *const fields_print[] = {"name", "msg", "meta", NULL};
static const char *const fields_noop[] = {"name", "meta", NULL};
static const char *const fields_svc[] = {"name", "state", "startup", "session", "meta", NULL};
static const char *const fields_pkg[] = {
    "name", "state", "allowuntrusted", "allownonfree", "allowunsupported", "meta", NULL};
static const char *const *const kind_fields[_RES_KIND_MAX] = {
    [RES_FILE] = fields_file, [RES_EXEC] = fields_exec, [RES_PRINT] = fields_print,
    [RES_NOOP] = fields_noop, [RES_SVC] = fields_svc,   [RES_PKG] = fields_pkg,
};

/* Fields of mgmt's resources this agent refuses, and why (docs/mgmt-graph.5). */
static const struct {
        int kind; /* -1: any kind */
        const char *field, *why;
} refused_fields[] = {
    {RES_EXEC, "cwd", "set the directory in 'cmd' instead ('cd DIR && ...')"},
    {RES_EXEC, "ifcwd", "set the directory in 'ifcmd' instead ('cd DIR && ...')"},
    {RES_EXEC, "watchcwd", "set the directory in 'watchcmd' instead ('cd DIR && ...')"},
    {RES_EXEC, "env", "set variables in 'cmd' instead ('VAR=value cmd')"},
    {RES_EXEC, "args", "write the arguments into 'cmd'"},
    {RES_EXEC, "user", "the agent runs commands as itself: use 'runuser -u USER -- cmd'"},
    {RES_EXEC, "group", "the agent runs commands as itself: use 'setpriv --regid GROUP cmd'"},
    {RES_EXEC, "sendoutput", "resources do not send values to each other here"},
    {RES_FILE, "fragments", "build the content in the graph, or with an exec"},
    {RES_FILE, "symlink", "symbolic links are not managed by the file kind"},
    {RES_FILE, "purge", "the agent never deletes files it does not manage"},
};

static const char *refused_why(enum res_kind kind, const char *field) {
        for (size_t i = 0; i < ELEMENTSOF(refused_fields); i++)
                if ((refused_fields[i].kind < 0 || refused_fields[i].kind == (int)kind) &&
                    streq(refused_fields[i].field, field))
                        return refused_fields[i].why;
        return NULL;
}

static bool field_known(const char *const *fields, const char *k) {
        for (; *fields; fields++)
                if (streq(*fields, k))
                        return true;
        return false;
}

static void fields_list(const char *const *fields, char *buf, size_t len) {
        buf[0] = 0;
        for (const char *const *f = fields; *f; f++) {
                if (f != fields)
                        strlcat(buf, ", ", len);
                strlcat(buf, *f, len);
        }
}

/* Check the keys of a mapping: scalars, known (extra may name one more
 * accepted key), no duplicates. Every bad key is reported (in "many" mode);
 * kind >= 0 explains fields of mgmt's that this agent refuses. */
static int check_keys_kind(struct ctx *c, const struct ynode *m, const char *const *fields,
                           const char *extra, const char *where, int kind) {
        char list[512];
        int r = 0;

        for (size_t i = 0; i + 1 < m->n; i += 2) {
                const struct ynode *k = m->items[i];
                const char *why;
                if (k->type != Y_SCALAR || ynode_is_null(k)) {
                        r = fail(c, k, "field names in %s must be strings", where);
                        if (!c->many)
                                return r;
                        continue;
                }
                if (!field_known(fields, k->value) && !(extra && streq(extra, k->value))) {
                        if (kind >= 0 && (why = refused_why((enum res_kind)kind, k->value)))
                                r = fail(c, k, "field '%s' in %s is not supported: %s", k->value, where,
                                         why);
                        else {
                                fields_list(fields, list, sizeof list);
                                if (extra) {
                                        strlcat(list, ", ", sizeof list);
                                        strlcat(list, extra, sizeof list);
                                }
                                r = fail(c, k, "unknown field '%s' in %s (known: %s)", k->value, where,
                                         list);
                        }
                        if (!c->many)
                                return r;
                        continue;
                }
                for (size_t j = 0; j < i; j += 2)
                        if (m->items[j]->type == Y_SCALAR && streq(m->items[j]->value, k->value)) {
                                r = fail(c, k, "duplicate field '%s' in %s", k->value, where);
                                if (!c->many)
                                        return r;
                                break;
                        }
        }
        return r;
}

int check_keys(struct ctx *c, const struct ynode *m, const char *const *fields, const char *extra,
               const char *where) {
        return check_keys_kind(c, m, fields, extra, where, -1);
}

/* meta: mgmt's meta parameters. noop, retry, delay and poll are honoured;
 * the others are accepted only at their empty value, with the reason. */
static int parse_meta(struct ctx *c, const char *where, const struct ynode *m, struct res_meta *ret) {
        static const char *const fields[] = {
            "noop",    "retry",   "delay",    "poll",      "limit",  "burst",  "sema",  "rewatch",
            "realize", "reverse", "autoedge", "autogroup", "hidden", "export", "reset", NULL};
        static const struct {
                const char *field, *why;
        } unset_only[] = {
            {"limit", "event rate limits are not supported (the agent checks on each event)"},
            {"burst", "event rate limits are not supported (the agent checks on each event)"},
            {"sema", "semaphores are not supported (the agent runs one resource at a time)"},
            {"rewatch", "watches are always kept across graph changes"},
            {"realize", "the agent always checks a resource before it applies it"},
            {"reverse", "removing what a resource did when it leaves the graph is not supported"},
            {"autoedge", "automatic edges are not added: write the edge in 'edges'"},
            {"autogroup", "resources are never grouped"},
            {"hidden", "every resource in the graph is applied"},
            {"export", "export with the '@@' name prefix"},
            {"reset", "retry counters are reset on every graph change already"},
        };
        char what[NAME_MAX_LEN + 96];
        struct res_meta meta = {0};
        const struct ynode *v;
        long long n;
        int r, bad = 0;

        if (ynode_is_null(m)) {
                *ret = meta;
                return 0;
        }
        if (m->type != Y_MAP)
                return fail(c, m, "%s: 'meta' must be a mapping (noop, retry, delay, poll), got %s", where,
                            ytype_name(m));
        snprintf(what, sizeof what, "'meta' of %s", where);
        if ((r = check_keys(c, m, fields, NULL, what)) < 0)
                bad = r;
#define META(key) (snprintf(what, sizeof what, "%s: meta '%s'", where, key), what)
        if ((v = map_get(m, "noop")) && (r = get_bool_opt(c, META("noop"), v, &meta.noop)) < 0)
                bad = r;
        if ((v = map_get(m, "retry")) && !is_unset(v)) {
                if ((r = get_int(c, META("retry"), v, -1, 32767, &n)) < 0)
                        bad = r;
                else
                        meta.retry = (int)n;
        }
        if ((v = map_get(m, "delay")) && !is_unset(v)) {
                if ((r = get_int(c, META("delay"), v, 0, 31536000000LL, &n)) < 0) /* ms, up to a year */
                        bad = r;
                else
                        meta.delay_usec = (uint64_t)n * 1000;
        }
        if ((v = map_get(m, "poll")) && !is_unset(v)) {
                if ((r = get_int(c, META("poll"), v, 0, 31536000, &n)) < 0) /* s */
                        bad = r;
                else
                        meta.poll_usec = (uint64_t)n * USEC_PER_SEC;
        }
        for (size_t i = 0; i < ELEMENTSOF(unset_only); i++)
                if ((v = map_get(m, unset_only[i].field)) && !is_unset(v))
                        bad = fail(c, v,
                                   "%s: meta '%s' is not supported: %s (only its empty value is accepted)",
                                   where, unset_only[i].field, unset_only[i].why);
#undef META
        if (bad < 0)
                return bad;
        *ret = meta;
        return 0;
}

/* Validate one resource mapping of a known kind and fill r. In "many" mode
 * every error of the resource is recorded before it fails. */
int resource_from_node(struct ctx *c, enum res_kind kind, const struct ynode *m, const char *extra,
                       struct resource *ret) {
        struct resource r = {.kind = kind, .file.mode = -1, .line = m->line, .col = m->col};
        const struct ynode *v;
        const char *kn = kind_names[kind], *s;
        char where[NAME_MAX_LEN + 64], what[NAME_MAX_LEN + 96];
        int q, bad = 0;
        long long n;

        if (m->type != Y_MAP)
                return fail(c, m, "a %s resource must be a mapping with at least 'name', got %s", kn,
                            ytype_name(m));
        v = map_get(m, "name");
        if (!v)
                return fail(c, m, "%s resource has no 'name'", kn);
        q = get_string(c, "'name'", v, &s);
        if (q < 0)
                return q;
        if (startswith(s, "@@")) {
                r.exported = true;
                s += 2;
                /* "@@" marks an export once; "@@@@x" would read as two different names */
                if (startswith(s, "@@"))
                        return fail(c, v,
                                    "resource name '@@%s': '@@' marks an export once, the name itself must "
                                    "not start with '@@'",
                                    s);
        }
        q = check_name(c, "resource name", v, s);
        if (q < 0)
                return q;
        r.name = strdup(s);
        if (!r.name)
                return -ENOMEM;
        snprintf(where, sizeof where, "%s resource '%s'", kn, r.name);

/* a field error: -ENOMEM ends it now; -EINVAL ends it now or after every field */
#define CHECK(expr)                                                                                         \
        do {                                                                                                \
                int _q = (expr);                                                                            \
                if (_q < 0) {                                                                               \
                        bad = _q;                                                                           \
                        if (_q != -EINVAL || !c->many)                                                      \
                                goto fail;                                                                  \
                }                                                                                           \
        } while (0)
#define FIELD(key) (snprintf(what, sizeof what, "%s: '%s'", where, key), what)
        CHECK(check_keys_kind(c, m, kind_fields[kind], extra, where, (int)kind));
        if ((v = map_get(m, "meta")))
                CHECK(parse_meta(c, where, v, &r.meta));

        switch (kind) {
        case RES_FILE:
                v = map_get(m, "path");
                if (!v)
                        CHECK(fail(c, m, "%s has no 'path' (required, an absolute file name)", where));
                else if ((q = dup_string(c, FIELD("path"), v, &r.file.path)) < 0)
                        CHECK(q);
                else if (r.file.path[0] != '/')
                        CHECK(fail(c, v, "%s: 'path' must be absolute, got '%s'", where, r.file.path));
                else if ((s = path_problem(r.file.path)))
                        CHECK(fail(c, v, "%s: 'path' %s, got '%s'", where, s, r.file.path));
                bool dir = r.file.path && r.file.path[0] && r.file.path[strlen(r.file.path) - 1] == '/';
                if (dir && streq(r.file.path, "/"))
                        CHECK(fail(c, v, "%s: 'path' must not be the root directory", where));
                if ((v = map_get(m, "content"))) {
                        CHECK(dup_string(c, FIELD("content"), v, &r.file.content));
                        if (dir)
                                CHECK(fail(c, v,
                                           "%s: 'content' makes no sense for a directory (a 'path' ending "
                                           "in '/')",
                                           where));
                }
                if ((v = map_get(m, "source")) && !is_unset(v)) {
                        CHECK(dup_string(c, FIELD("source"), v, &r.file.source));
                        if (r.file.source && r.file.source[0] != '/')
                                CHECK(fail(c, v, "%s: 'source' must be an absolute path, got '%s'", where,
                                           r.file.source));
                        else if (r.file.source && (s = path_problem(r.file.source)))
                                CHECK(fail(c, v, "%s: 'source' %s, got '%s'", where, s, r.file.source));
                        else if (r.file.source && (dir || r.file.source[strlen(r.file.source) - 1] == '/'))
                                CHECK(fail(c, v,
                                           "%s: 'source' of a directory is not supported (a tree copy): "
                                           "give each file its own resource",
                                           where));
                        if (r.file.content)
                                CHECK(fail(c, v, "%s: give 'content' or 'source', not both", where));
                }
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "absent"))
                                r.file.absent = true;
                        else if (!streq(s, "exists"))
                                CHECK(fail(c, v, "%s: 'state' must be 'exists' or 'absent', got '%s'", where,
                                           s));
                }
                if ((v = map_get(m, "mode")) && !ynode_is_null(v) && !(v->type == Y_SCALAR && v->len == 0))
                        CHECK(parse_mode(c, FIELD("mode"), v, &r.file.mode));
                if ((v = map_get(m, "owner"))) {
                        CHECK(dup_string_opt(c, FIELD("owner"), v, &r.file.owner));
                        if (r.file.owner && !account_is_valid(r.file.owner))
                                CHECK(fail(c, v, "%s: 'owner' must be a user name or number, got '%s'",
                                           where, r.file.owner));
                }
                if ((v = map_get(m, "group"))) {
                        CHECK(dup_string_opt(c, FIELD("group"), v, &r.file.group));
                        if (r.file.group && !account_is_valid(r.file.group))
                                CHECK(fail(c, v, "%s: 'group' must be a group name or number, got '%s'",
                                           where, r.file.group));
                }
                if ((v = map_get(m, "force")))
                        CHECK(get_bool_opt(c, FIELD("force"), v, &r.file.force));
                if ((v = map_get(m, "recurse"))) {
                        bool rec = false;
                        CHECK(get_bool_opt(c, FIELD("recurse"), v, &rec));
                        if (rec)
                                CHECK(fail(c, v,
                                           "%s: 'recurse: true' (managing a whole directory tree) is not "
                                           "supported: give each file its own resource",
                                           where));
                }
                if (r.file.absent && (r.file.content || r.file.source))
                        CHECK(fail(c, map_get(m, r.file.content ? "content" : "source"),
                                   "%s: '%s' makes no sense with state 'absent'", where,
                                   r.file.content ? "content" : "source"));
                break;
        case RES_EXEC:
                v = map_get(m, "cmd");
                if (!v)
                        CHECK(fail(c, m, "%s has no 'cmd' (required, the command to run)", where));
                else if ((q = dup_string(c, FIELD("cmd"), v, &r.exec.cmd)) < 0)
                        CHECK(q);
                else if (!*r.exec.cmd)
                        CHECK(fail(c, v, "%s: 'cmd' must not be empty", where));
                CHECK(parse_shell(c, FIELD("shell"), map_get(m, "shell"), &r.exec.shell));
                CHECK(dup_string_opt(c, FIELD("ifcmd"), map_get(m, "ifcmd"), &r.exec.ifcmd));
                CHECK(parse_shell(c, FIELD("ifshell"), map_get(m, "ifshell"), &r.exec.ifshell));
                CHECK(dup_string_opt(c, FIELD("watchcmd"), map_get(m, "watchcmd"), &r.exec.watchcmd));
                CHECK(parse_shell(c, FIELD("watchshell"), map_get(m, "watchshell"), &r.exec.watchshell));
                if ((v = map_get(m, "timeout")) && !is_unset(v))
                        CHECK(parse_timeout(c, FIELD("timeout"), v, &r.exec.timeout_usec));
                if ((v = map_get(m, "pollint")) && !is_unset(v)) {
                        if ((q = get_int(c, FIELD("pollint"), v, 0, 31536000, &n)) < 0)
                                CHECK(q);
                        else
                                r.exec.pollint_usec = (uint64_t)n * USEC_PER_SEC;
                }
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (!streq(s, "present"))
                                CHECK(fail(c, v,
                                           "%s: 'state' of an exec can only be 'present' (mgmt's only "
                                           "value; a command cannot be made absent), got '%s'",
                                           where, s));
                }
                break;
        case RES_PRINT:
                v = map_get(m, "msg");
                if (!v)
                        CHECK(fail(c, m, "%s has no 'msg' (required, the message to print)", where));
                else
                        CHECK(dup_string(c, FIELD("msg"), v, &r.print.msg));
                break;
        case RES_SVC: {
                char unit[NAME_MAX_LEN + 16];
                bool session = false;
                if (svc_unit_name(r.name, unit, sizeof unit) < 0 || strlen(unit) > NAME_MAX_LEN)
                        CHECK(fail(c, map_get(m, "name"), "%s: the unit name is too long", where));
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "running"))
                                r.svc.state = SVC_RUNNING;
                        else if (streq(s, "stopped"))
                                r.svc.state = SVC_STOPPED;
                        else
                                CHECK(fail(c, v, "%s: 'state' must be 'running' or 'stopped', got '%s'",
                                           where, s));
                }
                if ((v = map_get(m, "startup")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("startup"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "enabled"))
                                r.svc.startup = SVC_ENABLED;
                        else if (streq(s, "disabled"))
                                r.svc.startup = SVC_DISABLED;
                        else
                                CHECK(fail(c, v,
                                           "%s: 'startup' must be 'enabled', 'disabled' or '', got '%s'",
                                           where, s));
                }
                if ((v = map_get(m, "session"))) {
                        CHECK(get_bool_opt(c, FIELD("session"), v, &session));
                        if (session)
                                CHECK(
                                    fail(c, v,
                                         "%s: 'session: true' (a user's service manager) is not supported: "
                                         "the agent manages the system's units",
                                         where));
                }
                break;
        }
        case RES_PKG:
                if (!pkg_name_is_valid(r.name))
                        CHECK(fail(c, map_get(m, "name"),
                                   "%s: '%s' is not a Debian package name ([a-z0-9][a-z0-9+.-]+, "
                                   "optionally ':ARCH')",
                                   where, r.name));
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "installed"))
                                r.pkg.state = PKG_INSTALLED;
                        else if (streq(s, "uninstalled"))
                                r.pkg.state = PKG_UNINSTALLED;
                        else if (streq(s, "newest"))
                                r.pkg.state = PKG_NEWEST;
                        else
                                CHECK(fail(
                                    c, v,
                                    "%s: 'state' must be 'installed', 'uninstalled' or 'newest', got '%s' "
                                    "(pinning a version is not supported: use apt preferences)",
                                    where, s));
                }
                for (size_t i = 0; i < 3; i++) {
                        static const char *const allow[] = {"allowuntrusted", "allownonfree",
                                                            "allowunsupported"};
                        bool yes = false;
                        if ((v = map_get(m, allow[i]))) {
                                CHECK(get_bool_opt(c, FIELD(allow[i]), v, &yes));
                                if (yes)
                                        CHECK(
                                            fail(c, v,
                                                 "%s: '%s: true' is not supported: packages come from apt's "
                                                 "configured, trusted sources",
                                                 where, allow[i]));
                        }
                }
                break;
        default:
                break;
        }
#undef FIELD
#undef CHECK
        if (bad < 0)
                goto fail;
        *ret = r;
        return 0;
fail:
        resource_clear(&r);
        return bad;
}
