/* graph_values.c: reading one typed value out of the YAML tree for a field
 * rule: strings, booleans, integers, modes, timeouts, names and paths, with
 * mgmt's empty defaults read as "not set" and a located error for each
 * wrong value. The rules of each kind are in graph_fields.c. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "graph.h"
#include "graph_internal.h"
#include "macro.h"
#include "util.h"

const char *ytype_name(const struct ynode *n) {
        if (ynode_is_null(n))
                return "nothing (null)";
        switch (n->type) {
        case Y_SCALAR:
                return "a scalar";
        case Y_SEQ:
                return "a list";
        default:
                return "a mapping";
        }
}

/* A string value: a scalar that is not null and has no NUL byte. */
int get_string(struct ctx *c, const char *what, const struct ynode *v, const char **ret) {
        if (v->type != Y_SCALAR)
                return fail(c, v, "%s must be a string, got %s", what, ytype_name(v));
        if (ynode_is_null(v))
                return fail(c, v, "%s has no value (write \"\" for an empty string)", what);
        if (strlen(v->value) != v->len)
                return fail(c, v, "%s contains a NUL byte", what);
        *ret = v->value;
        return 0;
}

int dup_string(struct ctx *c, const char *what, const struct ynode *v, char **ret) {
        const char *s;
        int r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int get_bool(struct ctx *c, const char *what, const struct ynode *v, bool *ret) {
        const char *s;
        int r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        if (!v->plain)
                return fail(c, v, "%s must be true or false, got the string \"%s\"", what, s);
        if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE") || streq(s, "yes") || streq(s, "on"))
                *ret = true;
        else if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE") || streq(s, "no") ||
                 streq(s, "off"))
                *ret = false;
        else
                return fail(c, v, "%s must be true or false, got '%s'", what, s);
        return 0;
}

bool has_ctrl(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Resource and edge names: non-empty, no '/', no control characters. */
int check_name(struct ctx *c, const char *what, const struct ynode *v, const char *name) {
        if (!*name)
                return fail(c, v, "%s must not be empty", what);
        if (strchr(name, '/'))
                return fail(c, v, "%s '%s' must not contain '/'", what, name);
        if (has_ctrl(name))
                return fail(c, v, "%s must not contain control characters", what);
        if (strlen(name) > NAME_MAX_LEN)
                return fail(c, v, "%s is longer than %d bytes", what, NAME_MAX_LEN);
        return 0;
}

/* What is wrong with an absolute file path, or NULL. One spelling per file:
 * no "." or ".." components (a collected basename must not climb out of its
 * directory), no "//", no control characters, each component <= NAME_MAX. */
const char *path_problem(const char *path) {
        if (strlen(path) >= PATH_MAX)
                return "is longer than PATH_MAX";
        if (has_ctrl(path))
                return "must not contain control characters";
        for (const char *p = path; *p;) {
                const char *e;
                size_t n;
                p++; /* the '/' */
                e = strchrnul(p, '/');
                n = (size_t)(e - p);
                if (n == 0 && *e)
                        return "must not contain '//'";
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return "must not contain '.' or '..' components";
                if (n > NAME_MAX_LEN)
                        return "has a component longer than 255 bytes";
                p = e;
        }
        return NULL;
}

/* owner/group: a user or group name or number (no ':', spaces or control characters). */
bool account_is_valid(const char *s) {
        if (!s || !*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || *s == ':' || *s == '/' || *s == 0x7f)
                        return false;
        return true;
}

/* mode: always octal ("0644", 0644, 644, "0o644"), 0..07777; a JSON integer is its value. */
int parse_mode(struct ctx *c, const char *what, const struct ynode *v, int *ret) {
        const char *s, *p;
        long m = 0;
        int r;

        if (v->type == Y_SCALAR && v->is_int) {
                if (v->ival < 0 || v->ival > 07777)
                        return fail(c, v, "%s %lld is out of range (0..07777)", what, v->ival);
                *ret = (int)v->ival;
                return 0;
        }
        r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        p = s;
        if (startswith(p, "0o") || startswith(p, "0O"))
                p += 2;
        if (!*p || strlen(p) > 5)
                goto bad;
        for (; *p; p++) {
                if (*p < '0' || *p > '7')
                        goto bad;
                m = m * 8 + (*p - '0');
        }
        if (m > 07777)
                goto bad;
        *ret = (int)m;
        return 0;
bad:
        return fail(c, v, "%s must be an octal mode like \"0644\" (at most 07777), got '%s'", what, s);
}

/* timeout: seconds, integer or decimal, 0 (none) up to one year. */
int parse_timeout(struct ctx *c, const char *what, const struct ynode *v, uint64_t *ret) {
        const char *s;
        char *end;
        double d;
        int r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        /* plain decimal only: strtod alone also takes hex, "inf" and exponents */
        if (s[strspn(s, "0123456789.")] != 0)
                return fail(c, v, "%s must be a number of seconds (0 to 31536000), got '%s'", what, s);
        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(d) || d < 0 || d > 86400.0 * 365)
                return fail(c, v, "%s must be a number of seconds (0 to 31536000), got '%s'", what, s);
        *ret = (uint64_t)llround(d * 1e6);
        /* 0 means no timeout: a tiny value must not round to it */
        if (*ret == 0 && d > 0)
                return fail(c, v, "%s must be 0 (no timeout) or at least 0.000001 seconds, got '%s'", what,
                            s);
        return 0;
}

const struct ynode *map_get(const struct ynode *m, const char *key) {
        for (size_t i = 0; i + 1 < m->n; i += 2)
                if (m->items[i]->type == Y_SCALAR && streq(m->items[i]->value, key))
                        return m->items[i + 1];
        return NULL;
}

/* mgmt writes every field with its empty default ('' , 0, false, [], {}):
 * such a value means "not set". */
bool is_unset(const struct ynode *v) {
        if (!v || ynode_is_null(v))
                return true;
        if (v->type != Y_SCALAR)
                return v->n == 0;
        if (v->len == 0)
                return true;
        return v->plain && (streq(v->value, "0") || streq(v->value, "false"));
}

/* An integer field (plain scalar or JSON integer) in [min, max]. */
int get_int(struct ctx *c, const char *what, const struct ynode *v, long long min, long long max,
            long long *ret) {
        const char *s;
        char *end;
        long long n;
        int r;

        if (v->type == Y_SCALAR && v->is_int)
                n = v->ival;
        else {
                if ((r = get_string(c, what, v, &s)) < 0)
                        return r;
                errno = 0;
                n = strtoll(s, &end, 10);
                if (errno || end == s || *end)
                        return fail(c, v, "%s must be a whole number, got '%s'", what, s);
        }
        if (n < min || n > max)
                return fail(c, v, "%s must be between %lld and %lld, got %lld", what, min, max, n);
        *ret = n;
        return 0;
}

/* A boolean field where mgmt's empty default ('' or unset) means false. */
int get_bool_opt(struct ctx *c, const char *what, const struct ynode *v, bool *ret) {
        if (is_unset(v)) {
                *ret = false;
                return 0;
        }
        return get_bool(c, what, v, ret);
}

/* An optional string field; mgmt's '' means not set (stays NULL). */
int dup_string_opt(struct ctx *c, const char *what, const struct ynode *v, char **ret) {
        if (!v || is_unset(v))
                return 0;
        return dup_string(c, what, v, ret);
}

/* A path to a shell: absolute. */
int parse_shell(struct ctx *c, const char *what, const struct ynode *v, char **ret) {
        int r = dup_string_opt(c, what, v, ret);
        if (r < 0 || !*ret)
                return r;
        if ((*ret)[0] != '/') {
                r = fail(c, v, "%s must be an absolute path, got '%s'", what, *ret);
                free(*ret);
                *ret = NULL;
        }
        return r;
}
