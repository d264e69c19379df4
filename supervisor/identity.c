/* identity.c: what a prefix remembers about itself, so a node acts only on
 * confirmed facts: the lock that keeps a second supervisor off the prefix,
 * the cluster the prefix belongs to (PREFIX/cluster.json: etcd cluster id,
 * the random token it was bootstrapped with, its generation), and moving
 * etcd data aside (PREFIX/old/<time>-<why>) instead of deleting it. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

/* removed members' data kept under PREFIX/old/ (older ones are pruned) */
#define KEEP_REMOVED 3

int prefix_lock(const char *prefix, int *ret_fd, char *err, size_t errlen) {
        char p[4096], buf[32];
        int fd;

        snprintf(p, sizeof p, "%s/lock", prefix);
        fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                snprintf(err, errlen, "cannot open lock file '%s': %s", p, strerror(errno));
                return -errno;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
                buf[n > 0 ? n : 0] = 0;
                buf[strcspn(buf, "\n")] = 0;
                if (r == -EWOULDBLOCK)
                        snprintf(err, errlen,
                                 "prefix '%s' is in use by another mgmt-supervisor (pid %s holds '%s'); one "
                                 "supervisor per prefix",
                                 prefix, buf[0] ? buf : "?", p);
                else
                        snprintf(err, errlen, "cannot lock '%s': %s", p, strerror(-r));
                close(fd);
                return r == -EWOULDBLOCK ? -EBUSY : r;
        }
        snprintf(buf, sizeof buf, "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0)
                log_warn("cannot write our pid into '%s'", p);
        *ret_fd = fd;
        return 0;
}

static int parse_hex64(const char *s, uint64_t *ret) {
        char *end;
        if (!*s || strlen(s) > 16 || strspn(s, "0123456789abcdefABCDEF") != strlen(s))
                return -EINVAL;
        errno = 0;
        *ret = strtoull(s, &end, 16);
        return errno || *end ? -EINVAL : 0;
}

static bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static void ident_path(const char *prefix, char *p, size_t len) {
        snprintf(p, len, "%s/cluster.json", prefix);
}

int ident_load(const char *prefix, struct cluster_ident *ret, char *err, size_t errlen) {
        char p[4096];
        _cleanup_free_ char *text = NULL;
        json_error_t je;
        const char *id = NULL, *token = NULL;
        json_int_t gen = 0;
        int r;

        ident_path(prefix, p, sizeof p);
        *ret = (struct cluster_ident){0};
        r = read_file_max(p, 4096, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                snprintf(err, errlen, "cannot read '%s': %s", p, strerror(-r));
                return r;
        }
        json_t *j = json_loads(text, 0, &je);
        if (!j ||
            json_unpack_ex(j, &je, 0, "{s?s, s:s, s:I}", "id", &id, "token", &token, "generation", &gen) <
                0 ||
            gen < 1 || strlen(token) >= sizeof ret->token || (id && *id && parse_hex64(id, &ret->id) < 0)) {
                snprintf(err, errlen,
                         "'%s' is damaged (%d:%d: %s); move it aside only if this host should "
                         "forget which cluster it belongs to",
                         p, je.line, je.column, j ? je.text : "not JSON");
                json_decref(j);
                return -EBADMSG;
        }
        strlcpy(ret->token, token, sizeof ret->token);
        ret->generation = gen;
        ret->known = true;
        json_decref(j);
        return 1;
}

int ident_save(const char *prefix, const struct cluster_ident *c) {
        char p[4096], id[32] = "";
        if (c->id)
                snprintf(id, sizeof id, "%016llx", (unsigned long long)c->id);
        json_t *j = json_pack("{s:s, s:s, s:I}", "id", id, "token", c->token, "generation",
                              (json_int_t)c->generation);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
        json_decref(j);
        if (!text)
                return -ENOMEM;
        ident_path(prefix, p, sizeof p);
        return write_file_atomic(p, text, strlen(text), 0600);
}

void ident_new_token(const char *host, char *buf, size_t len) {
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                rnd = now_usec() ^ ((uint64_t)getpid() << 32);
        snprintf(buf, len, "mgmt-%.32s-%016llx", host, (unsigned long long)rnd);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest KEEP_REMOVED "*-removed" dirs under old/. */
static void prune_removed(const char *olddir) {
        DIR *d = opendir(olddir);
        _cleanup_strv_ char **v = NULL;
        struct dirent *de;
        if (!d)
                return;
        while ((de = readdir(d)))
                if (endswith(de->d_name, "-removed"))
                        strv_push(&v, de->d_name);
        closedir(d);
        size_t n = strv_length(v);
        if (n <= KEEP_REMOVED)
                return;
        qsort(v, n, sizeof *v, cmp_str);
        for (size_t i = 0; i + KEEP_REMOVED < n; i++) {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", olddir, v[i]);
                log_info("pruning the data of a long-removed member: '%s'", p);
                rm_rf(p);
        }
}

int data_move_aside(const char *prefix, const char *data_dir, const char *why, char *ret_path, size_t len) {
        char olddir[3072], stamp[64];
        struct stat st;
        time_t t = time(NULL);
        struct tm tm;

        if (lstat(data_dir, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        snprintf(olddir, sizeof olddir, "%s/old", prefix);
        int r = mkdir_p(olddir, 0700);
        if (r < 0)
                return r;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        for (unsigned i = 0; i < 100; i++) {
                if (i == 0)
                        snprintf(ret_path, len, "%s/%s-%s", olddir, stamp, why);
                else
                        snprintf(ret_path, len, "%s/%s.%u-%s", olddir, stamp, i, why);
                if (lstat(ret_path, &st) < 0 && errno == ENOENT)
                        break;
        }
        if (rename(data_dir, ret_path) < 0)
                return -errno;
        if (streq(why, "removed"))
                prune_removed(olddir);
        return 1;
}

/* The prefix: a directory only we can read, locked for our lifetime, and
 * the record of the cluster it belongs to. */
int prefix_prepare(const char *prefix, const char *data_dir, int *ret_lock_fd,
                   struct cluster_ident *ret_ident) {
        struct stat st;
        char err[512];
        int r;

        if (lstat(prefix, &st) == 0 && !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "--prefix '%s' exists and is not a directory", prefix);
        r = mkdir_p(prefix, 0700);
        if (r < 0)
                return log_error_errno(r, "cannot create state directory '%s': %m", prefix);
        if (stat(prefix, &st) == 0 && (st.st_mode & 077)) {
                if (chmod(prefix, 0700) < 0)
                        return log_error_errno(-errno,
                                               "state directory '%s' is open to others (mode %04o) and "
                                               "cannot be tightened: %m",
                                               prefix, (unsigned)(st.st_mode & 07777));
                log_notice("tightened state directory '%s' from mode %04o to 0700", prefix,
                           (unsigned)(st.st_mode & 07777));
        }
        if (access(prefix, W_OK) < 0)
                return log_error_errno(-errno, "state directory '%s' is not writable: %m", prefix);
        if (lstat(data_dir, &st) == 0 && S_ISDIR(st.st_mode) && access(data_dir, W_OK) < 0)
                return log_error_errno(-errno, "etcd data dir '%s' is not writable: %m", data_dir);
        r = prefix_lock(prefix, ret_lock_fd, err, sizeof err);
        if (r < 0) {
                log_errorx("%s", err);
                return r;
        }
        r = ident_load(prefix, ret_ident, err, sizeof err);
        if (r < 0) {
                log_errorx("%s", err);
                return r;
        }
        return 0;
}
