/* res_pkg.c: the "pkg" resource kind for Debian. The check reads dpkg's
 * status database (/var/lib/dpkg/status, parsed in process and cached until
 * the file changes); a change is made by apt-get, run as a child process by
 * res_exec.c (output to the log line by line), DEBIAN_FRONTEND=noninteractive.
 * The engine runs one apt-get at a time and watches the status file with
 * inotify, so a package removed by hand is noticed as it happens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define DPKG_STATUS_MAX (256 * 1024 * 1024)

struct pkg_entry {
        char *name, *arch, *version;
        bool installed; /* Status: install ok installed */
};

struct pkg_db {
        struct pkg_entry *v;
        size_t n, cap;
        /* the status file this was read from */
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        bool loaded;
};

static void pkg_db_clear(struct pkg_db *db) {
        for (size_t i = 0; i < db->n; i++) {
                free(db->v[i].name);
                free(db->v[i].arch);
                free(db->v[i].version);
        }
        free(db->v);
        *db = (struct pkg_db){0};
}

void pkg_db_free(struct pkg_db *db) {
        if (!db)
                return;
        pkg_db_clear(db);
        free(db);
}

int pkg_db_new(struct pkg_db **ret) {
        *ret = calloc(1, sizeof **ret);
        return *ret ? 0 : -ENOMEM;
}

static int cmp_entry(const void *a, const void *b) {
        const struct pkg_entry *x = a, *y = b;
        return strcmp(x->name, y->name);
}

/* One field value of a stanza line "Name: value" (value up to end of line). */
static char *field_dup(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
        return strndup(p, (size_t)(end - p));
}

static int db_push(struct pkg_db *db, struct pkg_entry *e) {
        if (db->n == db->cap) {
                size_t nc = db->cap ? db->cap * 2 : 256;
                struct pkg_entry *nv = reallocarray(db->v, nc, sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                db->v = nv;
                db->cap = nc;
        }
        db->v[db->n++] = *e;
        *e = (struct pkg_entry){0};
        return 0;
}

/* Parse dpkg's status format: stanzas separated by blank lines; only
 * Package, Architecture, Version and Status are kept. */
int pkg_db_parse(struct pkg_db *db, const char *text, size_t len) {
        struct pkg_entry e = {0};
        const char *p = text, *end = text + len;
        int r = 0;

        pkg_db_clear(db);
        while (p <= end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                if (le == p || (le == p + 1 && *p == '\r') || p == end) { /* end of a stanza */
                        if (e.name) {
                                if ((r = db_push(db, &e)) < 0)
                                        break;
                        } else {
                                free(e.arch);
                                free(e.version);
                                e = (struct pkg_entry){0};
                        }
                } else if (*p != ' ' && *p != '\t') {
                        const char *colon = memchr(p, ':', (size_t)(le - p));
                        if (colon) {
                                size_t kl = (size_t)(colon - p);
                                char **dst = NULL;
                                if (kl == 7 && !strncasecmp(p, "Package", 7))
                                        dst = &e.name;
                                else if (kl == 12 && !strncasecmp(p, "Architecture", 12))
                                        dst = &e.arch;
                                else if (kl == 7 && !strncasecmp(p, "Version", 7))
                                        dst = &e.version;
                                else if (kl == 6 && !strncasecmp(p, "Status", 6)) {
                                        _cleanup_free_ char *st = field_dup(colon + 1, le);
                                        if (!st) {
                                                r = -ENOMEM;
                                                break;
                                        }
                                        /* "want flag status": the package is there when status is
                                         * "installed" */
                                        const char *last = strrchr(st, ' ');
                                        e.installed = last && streq(last + 1, "installed");
                                }
                                if (dst) {
                                        free(*dst);
                                        if (!(*dst = field_dup(colon + 1, le))) {
                                                r = -ENOMEM;
                                                break;
                                        }
                                }
                        }
                }
                if (!nl)
                        break;
                p = nl + 1;
        }
        if (r >= 0 && e.name)
                r = db_push(db, &e);
        free(e.name);
        free(e.arch);
        free(e.version);
        if (r < 0) {
                pkg_db_clear(db);
                return r;
        }
        if (db->n > 0)
                qsort(db->v, db->n, sizeof *db->v, cmp_entry);
        db->loaded = true;
        return 0;
}

/* Is NAME (or NAME:ARCH) installed? Its version in *ret_version (borrowed). */
bool pkg_db_installed(const struct pkg_db *db, const char *spec, const char **ret_version) {
        char name[256];
        const char *colon = strchr(spec, ':'), *arch = colon ? colon + 1 : NULL;
        size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);

        if (nl >= sizeof name)
                return false;
        memcpy(name, spec, nl);
        name[nl] = 0;
        size_t lo = 0, hi = db->n;
        while (lo < hi) { /* first entry with this name */
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(db->v[mid].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i < db->n && streq(db->v[i].name, name); i++) {
                const struct pkg_entry *x = &db->v[i];
                if (!x->installed)
                        continue;
                if (arch && !(x->arch && (streq(x->arch, arch) || streq(x->arch, "all"))))
                        continue;
                if (ret_version)
                        *ret_version = x->version;
                return true;
        }
        return false;
}

/* Read the status file again if it changed since the last read. */
int pkg_db_refresh(struct pkg_db *db, const char *path) {
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t len = 0;
        int r;

        if (stat(path, &st) < 0)
                return -errno;
        if (db->loaded && st.st_dev == db->dev && st.st_ino == db->ino && st.st_size == db->size &&
            st.st_mtim.tv_sec == db->mtime.tv_sec && st.st_mtim.tv_nsec == db->mtime.tv_nsec)
                return 0;
        r = read_file_max(path, DPKG_STATUS_MAX, &text, &len);
        if (r < 0)
                return r;
        r = pkg_db_parse(db, text, len);
        if (r < 0)
                return r;
        db->dev = st.st_dev;
        db->ino = st.st_ino;
        db->size = st.st_size;
        db->mtime = st.st_mtim;
        return 0;
}

void pkg_db_invalidate(struct pkg_db *db) {
        db->loaded = false;
}

/* What the check found and the command that repairs it; pure. *ret_cmd is
 * NULL when nothing needs doing. For "newest" the check itself needs apt:
 * *ret_ifcmd is the simulation that says whether an upgrade is pending. */
int pkg_plan(const char *name, enum pkg_state want, bool installed, char **ret_ifcmd, char **ret_cmd) {
        static const char env[] = "DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none";
        static const char opts[] =
            "-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
        char *ifcmd = NULL, *cmd = NULL;
        int r = 0;

        *ret_ifcmd = *ret_cmd = NULL;
        switch (want) {
        case PKG_INSTALLED:
                if (!installed)
                        r = asprintf(&cmd, "%s apt-get install %s -- '%s'", env, opts, name);
                break;
        case PKG_UNINSTALLED:
                if (installed)
                        r = asprintf(&cmd, "%s apt-get remove %s -- '%s'", env, opts, name);
                break;
        case PKG_NEWEST:
                r = asprintf(&cmd, "%s apt-get install %s -- '%s'", env, opts, name);
                /* installed: upgrade only when apt would ("Inst NAME [old] (new ...)") */
                if (r >= 0 && installed)
                        r = asprintf(&ifcmd,
                                     "LC_ALL=C apt-get -s -q install -- '%s' | grep -qF 'Inst %.*s '", name,
                                     (int)strcspn(name, ":"), name);
                break;
        }
        if (r < 0) {
                free(cmd);
                return -ENOMEM;
        }
        *ret_ifcmd = ifcmd;
        *ret_cmd = cmd;
        return 0;
}
