/* etcdsnap.c: writing the gateway's snapshot stream to a file, and checking
 * snapshot files the way etcd does (the sha256 it appends). Checking with
 * etcd's own tool: etcdsnap_tool.c. */
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>

#include "etcdsnap.h"
#include "macro.h"
#include "util.h"

#define MAX_MSG (4u << 20) /* one stream message; etcd sends 32 KiB chunks */
#define HASH_LEN 32

/* sha256 of everything but the last 32 bytes, and of everything. */
struct trailer_hash {
        EVP_MD_CTX *body, *whole;
        unsigned char tail[HASH_LEN];
        size_t tail_len;
        uint64_t size;
};

static int th_init(struct trailer_hash *h) {
        *h = (struct trailer_hash){.body = EVP_MD_CTX_new(), .whole = EVP_MD_CTX_new()};
        if (!h->body || !h->whole || !EVP_DigestInit_ex(h->body, EVP_sha256(), NULL) ||
            !EVP_DigestInit_ex(h->whole, EVP_sha256(), NULL))
                return -ENOMEM;
        return 0;
}

static void th_free(struct trailer_hash *h) {
        EVP_MD_CTX_free(h->body);
        EVP_MD_CTX_free(h->whole);
        h->body = h->whole = NULL;
}

static void th_update(struct trailer_hash *h, const unsigned char *d, size_t n) {
        EVP_DigestUpdate(h->whole, d, n);
        h->size += n;
        if (h->tail_len + n <= HASH_LEN) {
                memcpy(h->tail + h->tail_len, d, n);
                h->tail_len += n;
                return;
        }
        /* hash what can no longer be part of the trailer, keep the last 32 */
        size_t emit = h->tail_len + n - HASH_LEN;
        size_t from_tail = emit < h->tail_len ? emit : h->tail_len;
        EVP_DigestUpdate(h->body, h->tail, from_tail);
        memmove(h->tail, h->tail + from_tail, h->tail_len - from_tail);
        h->tail_len -= from_tail;
        size_t from_d = emit - from_tail;
        EVP_DigestUpdate(h->body, d, from_d);
        memcpy(h->tail + h->tail_len, d + from_d, n - from_d);
        h->tail_len += n - from_d;
}

/* etcd's own rule (snapshot restore): size % 512 == 32 and the last 32 bytes
 * are the sha256 of the rest. */
static int th_check(struct trailer_hash *h, const char *what, struct snap_info *ret, char *err,
                    size_t errlen) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;

        if (h->size == 0) {
                snprintf(err, errlen, "'%s' is empty: not an etcd snapshot", what);
                return -EBADMSG;
        }
        if (h->size % 512 != HASH_LEN) {
                snprintf(
                    err, errlen,
                    "'%s' is not a whole etcd snapshot: %llu bytes, where etcd writes a multiple of 512 "
                    "plus its 32-byte sha256 (truncated, or another kind of file)",
                    what, (unsigned long long)h->size);
                return -EBADMSG;
        }
        EVP_DigestFinal_ex(h->body, md, &mdlen);
        if (mdlen != HASH_LEN || memcmp(md, h->tail, HASH_LEN) != 0) {
                snprintf(err, errlen, "'%s' fails the sha256 check etcd appends to a snapshot (damaged)",
                         what);
                return -EBADMSG;
        }
        EVP_DigestFinal_ex(h->whole, md, &mdlen);
        for (unsigned i = 0; i < mdlen && i < 32; i++)
                snprintf(ret->sha256 + 2 * i, 3, "%02x", md[i]);
        ret->size = h->size;
        return 0;
}

struct snap_sink {
        int fd;
        char *path, *tmp;
        struct trailer_hash h;
        char *line;
        size_t line_len, line_cap;
        unsigned char *bin;
        size_t bin_cap;
        char err[512];
        bool committed;
};

int snap_sink_open(const char *final_path, struct snap_sink **ret) {
        struct snap_sink *s = calloc(1, sizeof *s);
        _cleanup_free_ char *copy = NULL;
        int r;

        if (!s)
                return -ENOMEM;
        s->fd = -1;
        copy = strdup(final_path);
        s->path = strdup(final_path);
        if (!copy || !s->path || th_init(&s->h) < 0) {
                snap_sink_free(s);
                return -ENOMEM;
        }
        /* beside the target, hidden, so a rename is atomic and a listing skips it */
        const char *base = basename(copy);
        _cleanup_free_ char *dir = strdup(final_path);
        if (!dir || asprintf(&s->tmp, "%s/.%s.part.XXXXXX", dirname(dir), base) < 0) {
                s->tmp = NULL;
                snap_sink_free(s);
                return -ENOMEM;
        }
        s->fd = mkostemp(s->tmp, O_CLOEXEC);
        if (s->fd < 0) {
                r = -errno;
                free(s->tmp);
                s->tmp = NULL;
                snap_sink_free(s);
                return r;
        }
        (void)fchmod(s->fd, 0600);
        *ret = s;
        return 0;
}

static int write_all(int fd, const unsigned char *d, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, d, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                d += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Decode base64 text and write the bytes. */
static int sink_blob(struct snap_sink *s, const char *b64, size_t bl) {
        size_t need = bl / 4 * 3 + 3;
        int out = 0, out2 = 0, r = 0;

        if (need > s->bin_cap) {
                unsigned char *nb = realloc(s->bin, need);
                if (!nb)
                        return -ENOMEM;
                s->bin = nb;
                s->bin_cap = need;
        }
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        if (!ctx)
                return -ENOMEM;
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, s->bin, &out, (const unsigned char *)b64, (int)bl) < 0 ||
            EVP_DecodeFinal(ctx, s->bin + out, &out2) < 0) {
                snprintf(s->err, sizeof s->err, "bad base64 in the snapshot stream");
                r = -EBADMSG;
        }
        EVP_ENCODE_CTX_free(ctx);
        if (r < 0)
                return r;
        th_update(&s->h, s->bin, (size_t)(out + out2));
        r = write_all(s->fd, s->bin, (size_t)(out + out2));
        if (r < 0)
                snprintf(s->err, sizeof s->err, "cannot write '%s': %s", s->tmp, strerror(-r));
        return r;
}

/* One message of the stream: {"result":{"blob":"..."}} or {"error":{...}}.
 * The common shape is cut out directly (a full JSON parse of every 44 KB
 * line was most of the CPU time); anything else goes through jansson. */
static int sink_message(struct snap_sink *s, const char *text, size_t len) {
        static const char head[] = "{\"result\":{", key[] = "\"blob\":\"";
        if (len > sizeof head && memcmp(text, head, sizeof head - 1) == 0) {
                const char *k = memmem(text, len, key, sizeof key - 1);
                if (k) {
                        const char *b = k + sizeof key - 1, *end = text + len;
                        const char *q = memchr(b, '"', (size_t)(end - b));
                        /* base64 never needs a JSON escape; the message must close right after */
                        if (q && !memchr(b, '\\', (size_t)(q - b)) && end - q >= 3 && q[1] == '}' &&
                            q[2] == '}' && !memchr(text, '\\', (size_t)(k - text)))
                                return sink_blob(s, b, (size_t)(q - b));
                }
        }
        json_error_t jerr;
        json_t *j = json_loadb(text, len, 0, &jerr), *e, *res, *blob;
        int r = 0;

        if (!j) {
                snprintf(s->err, sizeof s->err, "bad JSON in the snapshot stream: %s", jerr.text);
                return -EBADMSG;
        }
        if ((e = json_object_get(j, "error"))) {
                json_t *m = json_object_get(e, "message");
                snprintf(s->err, sizeof s->err, "etcd refused the snapshot: %s",
                         json_is_string(m) ? json_string_value(m) : "error in stream");
                json_decref(j);
                return -EIO;
        }
        res = json_object_get(j, "result");
        blob = json_object_get(res, "blob");
        if (!json_is_object(res) || (blob && !json_is_string(blob))) {
                snprintf(s->err, sizeof s->err, "unexpected message in the snapshot stream");
                json_decref(j);
                return -EBADMSG;
        }
        if (blob)
                r = sink_blob(s, json_string_value(blob), json_string_length(blob));
        json_decref(j);
        return r;
}

int snap_sink_feed(struct snap_sink *s, const void *data, size_t len) {
        const char *p = data, *end = p + len;

        if (s->err[0])
                return -EIO;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t take = (size_t)((nl ? nl : end) - p);
                if (s->line_len + take + 1 > MAX_MSG) {
                        snprintf(s->err, sizeof s->err,
                                 "a message in the snapshot stream is larger than %u bytes", MAX_MSG);
                        return -EBADMSG;
                }
                if (s->line_len + take + 1 > s->line_cap) {
                        size_t nc = s->line_cap ? s->line_cap : 65536;
                        while (nc < s->line_len + take + 1)
                                nc *= 2;
                        char *nb = realloc(s->line, nc);
                        if (!nb)
                                return -ENOMEM;
                        s->line = nb;
                        s->line_cap = nc;
                }
                memcpy(s->line + s->line_len, p, take);
                s->line_len += take;
                p += take;
                if (!nl)
                        break;
                p++; /* the newline */
                size_t k = 0;
                while (k < s->line_len && (s->line[k] == ' ' || s->line[k] == '\r'))
                        k++;
                if (k < s->line_len) {
                        int r = sink_message(s, s->line + k, s->line_len - k);
                        if (r < 0)
                                return r;
                }
                s->line_len = 0;
        }
        return 0;
}

int snap_sink_write_db(struct snap_sink *s, int db_fd) {
        static unsigned char buf[1 << 20];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        EVP_MD_CTX *copy = EVP_MD_CTX_new();
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(db_fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        snprintf(s->err, sizeof s->err, "cannot read the db: %s", strerror(errno));
                        break;
                }
                if (n == 0)
                        break;
                th_update(&s->h, buf, (size_t)n);
                if ((r = write_all(s->fd, buf, (size_t)n)) < 0) {
                        snprintf(s->err, sizeof s->err, "cannot write '%s': %s", s->tmp, strerror(-r));
                        break;
                }
        }
        /* etcd's trailer: the sha256 of everything before it */
        if (r >= 0 && (!EVP_MD_CTX_copy_ex(copy, s->h.whole) || !EVP_DigestFinal_ex(copy, md, &mdlen)))
                r = -EIO;
        if (r >= 0) {
                th_update(&s->h, md, mdlen);
                if ((r = write_all(s->fd, md, mdlen)) < 0)
                        snprintf(s->err, sizeof s->err, "cannot write '%s': %s", s->tmp, strerror(-r));
        }
        EVP_MD_CTX_free(copy);
        return r;
}

int snap_sink_feed_cb(const void *data, size_t len, void *userdata) {
        return snap_sink_feed(userdata, data, len);
}

const char *snap_sink_error(struct snap_sink *s) {
        return s->err[0] ? s->err : NULL;
}

uint64_t snap_sink_size(struct snap_sink *s) {
        return s->h.size;
}

const char *snap_sink_temp_path(struct snap_sink *s) {
        return s->tmp;
}

const char *snap_sink_path(struct snap_sink *s) {
        return s->path;
}

int snap_sink_finish(struct snap_sink *s, struct snap_info *ret, char *err, size_t errlen) {
        struct snap_info info = {0};
        int r;

        if (s->err[0]) {
                snprintf(err, errlen, "%s", s->err);
                return -EIO;
        }
        if (s->line_len > 0) { /* a last message without its newline */
                r = sink_message(s, s->line, s->line_len);
                s->line_len = 0;
                if (r < 0) {
                        snprintf(err, errlen, "%s", s->err);
                        return r;
                }
        }
        if (fsync(s->fd) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot fsync '%s': %s", s->tmp, strerror(errno));
                return r;
        }
        r = th_check(&s->h, s->tmp, &info, err, errlen);
        if (r < 0)
                return r;
        *ret = info;
        return 0;
}

static int fsync_dir_of(const char *path) {
        _cleanup_free_ char *d = strdup(path);
        if (!d)
                return -ENOMEM;
        int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int snap_sink_commit(struct snap_sink *s) {
        if (rename(s->tmp, s->path) < 0)
                return -errno;
        s->committed = true;
        return fsync_dir_of(s->path);
}

void snap_sink_free(struct snap_sink *s) {
        if (!s)
                return;
        if (s->fd >= 0)
                close(s->fd);
        if (s->tmp && !s->committed)
                (void)unlink(s->tmp);
        th_free(&s->h);
        free(s->tmp);
        free(s->path);
        free(s->line);
        free(s->bin);
        free(s);
}

int snap_file_check(const char *path, struct snap_info *ret, char *err, size_t errlen) {
        struct trailer_hash h;
        struct snap_info info = {0};
        static unsigned char buf[1 << 20];
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(err, errlen, "'%s' is not a regular file", path);
                return -EBADMSG;
        }
        if (th_init(&h) < 0) {
                close(fd);
                th_free(&h);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                th_update(&h, buf, (size_t)n);
        }
        r = th_check(&h, path, &info, err, errlen);
        if (r >= 0)
                *ret = info;
out:
        close(fd);
        th_free(&h);
        return r;
}
