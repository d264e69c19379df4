/* util.c: URL lists, hostname validation, base64, time and file helpers. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "macro.h"
#include "strv.h"
#include "util.h"

bool hostname_is_valid(const char *h) {
        size_t n;

        if (!h || !isalnum((unsigned char)h[0]))
                return false;
        n = strlen(h);
        if (n > 63)
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
                        return false;
        return true;
}

int node_hostname_pick(const char *given, const char *system, char **ret, char *err, size_t errlen) {
        char *h;

        if (given && !hostname_is_valid(given)) {
                snprintf(err, errlen,
                         "invalid hostname '%s': use --hostname with [A-Za-z0-9][A-Za-z0-9.-]{0,62}", given);
                return -EINVAL;
        }
        if (!given && (!system || !hostname_is_valid(system))) {
                snprintf(err, errlen,
                         "system host name '%s' is not a valid node name: give --hostname "
                         "([A-Za-z0-9][A-Za-z0-9.-]{0,62}, the same for this node's mgmt-supervisor and "
                         "mgmt-agent)",
                         system ? system : "");
                return -EINVAL;
        }
        h = strdup(given ? given : system);
        if (!h) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

int node_hostname(const char *given, char **ret, char *err, size_t errlen) {
        char buf[256] = "";

        if (!given && gethostname(buf, sizeof buf - 1) < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot get the hostname: %s", strerror(-r));
                return r;
        }
        return node_hostname_pick(given, given ? NULL : buf, ret, err, errlen);
}

int url_split(const char *url, char **ret_scheme, char **ret_host, int *ret_port) {
        const char *p, *hs, *he, *ps;
        char *end;
        long port;

        p = strstr(url, "://");
        if (!p)
                return -EINVAL;
        hs = p + 3;
        if (*hs == '[') {
                he = strchr(hs, ']');
                if (!he)
                        return -EINVAL;
                ps = he + 1;
                hs++;
        } else {
                he = hs + strcspn(hs, ":/");
                ps = he;
        }
        if (he == hs || *ps != ':')
                return -EINVAL;
        errno = 0;
        port = strtol(ps + 1, &end, 10);
        if (errno || end == ps + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
                return -EINVAL;
        if (ret_scheme && !(*ret_scheme = strndup(url, (size_t)(p - url))))
                return -ENOMEM;
        if (ret_host && !(*ret_host = strndup(hs, (size_t)(he - hs))))
                return -ENOMEM;
        if (ret_port)
                *ret_port = (int)port;
        return 0;
}

int urls_parse(const char *s, char ***ret, char *err, size_t errlen) {
        _cleanup_strv_ char **v = calloc(URLS_MAX + 1, sizeof(char *));
        _cleanup_free_ char *copy = NULL;
        size_t len = s ? strnlen(s, URLS_MAX_LEN + 1) : 0, n = 0;
        char *save = NULL, *tok;

        if (len > URLS_MAX_LEN) {
                snprintf(err, errlen, "URL list longer than the limit of %d bytes", URLS_MAX_LEN);
                return -E2BIG;
        }
        copy = strndup(s ? s : "", len);
        if (!v || !copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, ",; \t\n", &save); tok; tok = strtok_r(NULL, ",; \t\n", &save)) {
                _cleanup_free_ char *scheme = NULL, *host = NULL;
                if (n >= URLS_MAX) {
                        snprintf(err, errlen, "more than %d URLs in the list", URLS_MAX);
                        return -E2BIG;
                }
                if (url_split(tok, &scheme, &host, NULL) < 0 ||
                    (!streq(scheme, "http") && !streq(scheme, "https"))) {
                        snprintf(err, errlen,
                                 "invalid URL '%.200s': expected http://HOST:PORT or https://HOST:PORT",
                                 tok);
                        return -EINVAL;
                }
                /* drop a trailing slash so URLs compare equal */
                size_t l = strlen(tok);
                if (l > 0 && tok[l - 1] == '/')
                        tok[l - 1] = 0;
                if (!(v[n++] = strdup(tok)))
                        return -ENOMEM;
        }
        if (n == 0) {
                snprintf(err, errlen, "empty URL list");
                return -EINVAL;
        }
        if (strv_uniq(v) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(v);
        return 0;
}

bool host_is_wildcard(const char *host) {
        return streq(host, "0.0.0.0") || streq(host, "::") || streq(host, "");
}

bool host_is_loopback(const char *host) {
        return startswith(host, "127.") || streq(host, "::1") || streq(host, "localhost") ||
               startswith(host, "localhost.");
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const void *data, size_t len) {
        const unsigned char *d = data;
        char *r, *p;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        r = p = malloc((len + 2) / 3 * 4 + 1);
        if (!r)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                unsigned v = (unsigned)d[i] << 16;
                if (i + 1 < len)
                        v |= (unsigned)d[i + 1] << 8;
                if (i + 2 < len)
                        v |= d[i + 2];
                *p++ = b64chars[(v >> 18) & 63];
                *p++ = b64chars[(v >> 12) & 63];
                *p++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
                *p++ = i + 2 < len ? b64chars[v & 63] : '=';
        }
        *p = 0;
        return r;
}

static int b64_val(char c) {
        const char *p = c ? strchr(b64chars, c) : NULL;
        return p ? (int)(p - b64chars) : -1;
}

int b64_decode(const char *s, char **ret, size_t *ret_len) {
        size_t n = strlen(s), o = 0;
        _cleanup_free_ char *r = NULL;

        if (n % 4 != 0)
                return -EINVAL;
        r = malloc(n / 4 * 3 + 1);
        if (!r)
                return -ENOMEM;
        for (size_t i = 0; i < n; i += 4) {
                int a = b64_val(s[i]), b = b64_val(s[i + 1]), c, d;
                if (a < 0 || b < 0)
                        return -EINVAL;
                bool last = i + 4 == n;
                c = s[i + 2] == '=' && last ? -2 : b64_val(s[i + 2]);
                d = s[i + 3] == '=' && last ? -2 : b64_val(s[i + 3]);
                if (c == -1 || d == -1 || (c == -2 && d != -2))
                        return -EINVAL;
                unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)(c < 0 ? 0 : c) << 6 |
                             (unsigned)(d < 0 ? 0 : d);
                r[o++] = (char)(v >> 16);
                if (c >= 0)
                        r[o++] = (char)(v >> 8 & 255);
                if (d >= 0)
                        r[o++] = (char)(v & 255);
        }
        r[o] = 0;
        *ret = TAKE_PTR(r);
        if (ret_len)
                *ret_len = o;
        return 0;
}

int errmsg(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        if (err && errlen) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

int parse_int64(const char *s, int64_t *ret) {
        char *end;
        long long v;

        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

char *rfc3339_now(void) {
        char buf[32];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return strdup(buf);
}

int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0, cap;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (size_t)st.st_size > max)
                return -EFBIG;
        cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max + 1)
                                return -EFBIG;
                        char *nb = realloc(buf, cap * 2);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int write_via_temp(const char *path, const void *data, size_t len, unsigned mode, uid_t uid,
                          gid_t gid, bool durable);

int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode) {
        return write_via_temp(path, data, len, mode, (uid_t)-1, (gid_t)-1, true);
}

int write_file_atomic_owned(const char *path, const void *data, size_t len, unsigned mode, uid_t uid,
                            gid_t gid) {
        return write_via_temp(path, data, len, mode, uid, gid, true);
}

int write_file_replace(const char *path, const void *data, size_t len, unsigned mode) {
        return write_via_temp(path, data, len, mode, (uid_t)-1, (gid_t)-1, false);
}

/* A temp file beside path, written, (durable: fsynced,) closed, renamed
 * over path. It is closed before the rename, so that the close is reported
 * to inotify under the temp name: a watcher of path (the agent's drift
 * detection) sees one event for the replacement, not a write after it. */
static int write_via_temp(const char *path, const void *data, size_t len, unsigned mode, uid_t uid,
                          gid_t gid, bool durable) {
        char tmp[PATH_MAX];
        _cleanup_close_ int fd = -1;
        const char *p = data, *slash = strrchr(path, '/');
        int dl = slash ? (int)(slash - path) : 0;

        /* a short name beside the file: "<path>.suffix" fails for names near NAME_MAX */
        if (snprintf(tmp, sizeof tmp, "%.*s%s.mgmt-XXXXXX", dl, path, slash ? "/" : "") >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        unlink(tmp);
                        return r;
                }
                p += n;
                len -= (size_t)n;
        }
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        if (fchmod(fd, mode) < 0 || (durable && fsync(fd) < 0) || close(TAKE_FD(fd)) < 0 ||
            rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        return 0;
}

int mkdir_p(const char *path, unsigned mode) {
        char buf[PATH_MAX];
        struct stat st;

        /* the common case, and cheap: every mkdir() below locks its parent
         * directory even when it answers EEXIST (an agent applying a file
         * resource calls this on every write, hundreds of agents at once
         * in the benchmark) */
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return 0;
        if (strlcpy(buf, path, sizeof buf) >= sizeof buf)
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_one(const char *p, const struct stat *st _unused_, int flag, struct FTW *ftw _unused_) {
        return flag == FTW_DP ? rmdir(p) : unlink(p);
}

int rm_rf(const char *path) {
        if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

bool url_list_holds(const char *list, const char *url) {
        size_t n = strlen(url);
        for (const char *p = list; p && *p;) {
                const char *e = strchrnul(p, ',');
                if ((size_t)(e - p) == n && strneq(p, url, n))
                        return true;
                p = *e ? e + 1 : e;
        }
        return false;
}
