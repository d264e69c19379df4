/* sign.c: Ed25519 keys, signatures and the canonical bytes of a deploy
 * record (see sign.h), through OpenSSL 3's EVP interface. */
#include <bsd/string.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "deploy.h"
#include "macro.h"
#include "sign.h"
#include "strv.h"
#include "util.h"

#define KEY_FILE_MAX (64 * 1024)

_Static_assert(sizeof(((struct deploy *)0)->signature) == SIGN_SIG_HEX_LEN + 1, "deploy.h signature size");
_Static_assert(sizeof(((struct deploy *)0)->signer) == SIGN_FPR_LEN + 1, "deploy.h signer size");

struct sign_key {
        EVP_PKEY *pkey;
        bool private_key;
        char fpr[SIGN_FPR_LEN + 1];
        char *origin;
};

void sign_key_free(struct sign_key *k) {
        if (!k)
                return;
        EVP_PKEY_free(k->pkey);
        free(k->origin);
        free(k);
}

const char *sign_key_fingerprint(const struct sign_key *k) {
        return k->fpr;
}

const char *sign_key_origin(const struct sign_key *k) {
        return k->origin ? k->origin : "";
}

static bool is_lower_hex(const char *s, size_t len) {
        if (!s || strlen(s) != len)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

bool sign_is_signature(const char *s) {
        return is_lower_hex(s, SIGN_SIG_HEX_LEN);
}

bool sign_is_fingerprint(const char *s) {
        return is_lower_hex(s, SIGN_FPR_LEN);
}

/* Wrap a loaded EVP_PKEY (taken): check it is Ed25519, compute the fingerprint. */
static int key_wrap(EVP_PKEY *pkey, bool private_key, const char *what, struct sign_key **ret, char *err,
                    size_t errlen) {
        unsigned char raw[32];
        size_t rawlen = sizeof raw;
        struct sign_key *k;

        if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
                int r = errmsg(err, errlen, -EINVAL,
                               "'%s' holds a %s key, expected an Ed25519 key (see 'mgmt-deploy keygen')",
                               what, OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
                EVP_PKEY_free(pkey);
                return r;
        }
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 || rawlen != sizeof raw) {
                EVP_PKEY_free(pkey);
                return errmsg(err, errlen, -EINVAL, "'%s': cannot read the raw public key", what);
        }
        k = calloc(1, sizeof *k);
        if (!k || !(k->origin = strdup(what))) {
                free(k);
                EVP_PKEY_free(pkey);
                return -ENOMEM;
        }
        k->pkey = pkey;
        k->private_key = private_key;
        sha256_hex(raw, rawlen, k->fpr);
        *ret = k;
        return 0;
}

static bool has_pem_label(const char *pem, size_t len, const char *label) {
        return memmem(pem, len, label, strlen(label)) != NULL;
}

static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        return 0;
}

int sign_key_from_pem(const char *pem, size_t len, bool private_key, const char *what, struct sign_key **ret,
                      char *err, size_t errlen) {
        EVP_PKEY *pkey;
        BIO *bio;

        if (private_key && has_pem_label(pem, len, "-----BEGIN PUBLIC KEY-----"))
                return errmsg(err, errlen, -EINVAL,
                              "'%s' is a public key, but a private key is needed to sign (give deploy.key, "
                              "not deploy.pub)",
                              what);
        if (!private_key && has_pem_label(pem, len, "PRIVATE KEY-----"))
                return errmsg(
                    err, errlen, -EINVAL,
                    "'%s' is a private key: give the public key (deploy.pub) and keep the private key "
                    "off the nodes",
                    what);
        if (private_key && has_pem_label(pem, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
                return errmsg(
                    err, errlen, -EINVAL,
                    "'%s' is encrypted with a passphrase, which mgmt-deploy cannot ask for: use an "
                    "unencrypted key readable only by its owner (mode 0600)",
                    what);
        if (len > INT32_MAX)
                return errmsg(err, errlen, -EINVAL, "'%s' is too large to be a key", what);
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        /* no_passphrase: never let libcrypto prompt on a terminal */
        pkey = private_key ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                           : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!pkey) {
                unsigned long e = ERR_get_error();
                char buf[256] = "no PEM block found";
                if (e)
                        ERR_error_string_n(e, buf, sizeof buf);
                ERR_clear_error();
                return errmsg(err, errlen, -EINVAL, "'%s' is not a PEM %s key (%s)", what,
                              private_key ? "private" : "public", buf);
        }
        return key_wrap(pkey, private_key, what, ret, err, errlen);
}

static int load_file(const char *path, bool private_key, struct sign_key **ret, char *err, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t len = 0;
        int r;

        if (stat(path, &st) < 0)
                return errmsg(err, errlen, -errno, "cannot read key '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return errmsg(err, errlen, -EINVAL, "key '%s' is not a regular file", path);
        r = read_file_max(path, KEY_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return errmsg(err, errlen, -EINVAL, "key '%s' is larger than %d bytes: not a key", path,
                              KEY_FILE_MAX);
        if (r < 0)
                return errmsg(err, errlen, r, "cannot read key '%s': %s", path, strerror(-r));
        /* a public key given by mistake is named as such before its mode is looked at */
        if (private_key && (st.st_mode & 077) && !has_pem_label(text, len, "-----BEGIN PUBLIC KEY-----")) {
                explicit_bzero(text, len);
                return errmsg(err, errlen, -EPERM,
                              "private key '%s' is readable by others (mode %04o): run 'chmod 600 %s'", path,
                              (unsigned)(st.st_mode & 07777), path);
        }
        r = sign_key_from_pem(text, len, private_key, path, ret, err, errlen);
        explicit_bzero(text, len);
        return r;
}

int sign_key_load_private(const char *path, struct sign_key **ret, char *err, size_t errlen) {
        return load_file(path, true, ret, err, errlen);
}

int sign_key_load_public(const char *path, struct sign_key **ret, char *err, size_t errlen) {
        return load_file(path, false, ret, err, errlen);
}

/* Write data to a new file (O_EXCL): never over an existing one. */
static int write_new(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        const char *p = data;

        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0) /* the umask may have taken bits away from the public key */
                goto fail;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                p += n;
                len -= (size_t)n;
        }
        if (fsync(fd) < 0)
                goto fail;
        return 0;
fail : {
        int r = -errno;
        (void)unlink(path);
        return r;
}
}

/* PEM text of one side of a key, from a memory BIO. */
static char *pem_of(EVP_PKEY *pkey, bool private_key, size_t *ret_len) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL, *out = NULL;
        long n;
        int ok;

        if (!bio)
                return NULL;
        ok = private_key ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(bio, pkey);
        n = ok == 1 ? BIO_get_mem_data(bio, &data) : 0;
        if (n > 0 && (out = malloc((size_t)n + 1))) {
                memcpy(out, data, (size_t)n);
                out[n] = 0;
                *ret_len = (size_t)n;
        }
        if (n > 0)
                OPENSSL_cleanse(data, (size_t)n);
        BIO_free(bio);
        return out;
}

int sign_keygen_dir(const char *dir, char ret_fpr[SIGN_FPR_LEN + 1], char *err, size_t errlen) {
        _cleanup_free_ char *kpath = NULL, *ppath = NULL, *kpem = NULL, *ppem = NULL;
        struct sign_key *k = NULL;
        size_t klen = 0, plen = 0;
        EVP_PKEY *pkey;
        int r;

        if (asprintf(&kpath, "%s/%s", dir, SIGN_KEY_FILE) < 0 ||
            asprintf(&ppath, "%s/%s", dir, SIGN_PUB_FILE) < 0)
                return -ENOMEM;
        if (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0)
                return errmsg(err, errlen, -EEXIST,
                              "'%s' already exists: refusing to overwrite a key (move it aside first)",
                              access(kpath, F_OK) == 0 ? kpath : ppath);
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return errmsg(err, errlen, r, "cannot create directory '%s': %s", dir, strerror(-r));
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!pkey)
                return errmsg(err, errlen, -EIO, "cannot generate an Ed25519 key (libcrypto)");
        kpem = pem_of(pkey, true, &klen);
        ppem = pem_of(pkey, false, &plen);
        r = key_wrap(pkey, true, kpath, &k, err, errlen);
        if (r < 0)
                goto out;
        if (!kpem || !ppem) {
                r = -ENOMEM;
                goto out;
        }
        r = write_new(kpath, kpem, klen, 0600);
        if (r < 0) {
                r = errmsg(err, errlen, r, "cannot write '%s': %s", kpath, strerror(-r));
                goto out;
        }
        r = write_new(ppath, ppem, plen, 0644);
        if (r < 0) {
                (void)unlink(kpath); /* the key we just created: without its public half it is of no use */
                r = errmsg(err, errlen, r, "cannot write '%s': %s", ppath, strerror(-r));
                goto out;
        }
        if (ret_fpr)
                strlcpy(ret_fpr, k->fpr, SIGN_FPR_LEN + 1);
        r = 0;
out:
        if (kpem)
                explicit_bzero(kpem, klen);
        sign_key_free(k);
        return r;
}

static void put_field(unsigned char **p, const void *data, size_t len) {
        for (int i = 7; i >= 0; i--)
                *(*p)++ = (unsigned char)((uint64_t)len >> (8 * i));
        if (len)
                memcpy(*p, data, len);
        *p += len;
}

int sign_canonical(int64_t id, const char *previous, const char *hash, const char *graph, size_t graph_len,
                   unsigned char **ret, size_t *ret_len) {
        char ids[32];
        size_t tl = strlen(SIGN_TAG) + 1, il, pl, hl, total;
        unsigned char *buf, *p;

        if (!previous)
                previous = "";
        if (!hash)
                hash = "";
        if (!graph)
                graph = "";
        il = (size_t)snprintf(ids, sizeof ids, "%lld", (long long)id);
        pl = strlen(previous);
        hl = strlen(hash);
        if (graph_len > SIZE_MAX - tl - il - pl - hl - 32)
                return -EOVERFLOW;
        total = tl + 4 * 8 + il + pl + hl + graph_len;
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        p = buf;
        memcpy(p, SIGN_TAG, tl); /* with its NUL */
        p += tl;
        put_field(&p, ids, il);
        put_field(&p, previous, pl);
        put_field(&p, hash, hl);
        put_field(&p, graph, graph_len);
        *ret = buf;
        *ret_len = total;
        return 0;
}

static void to_hex(const unsigned char *b, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[b[i] >> 4];
                out[2 * i + 1] = digits[b[i] & 15];
        }
        out[2 * n] = 0;
}

static int from_hex(const char *s, unsigned char *out, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int v = 0;
                for (int j = 0; j < 2; j++) {
                        char c = s[2 * i + j];
                        v <<= 4;
                        if (c >= '0' && c <= '9')
                                v |= c - '0';
                        else if (c >= 'a' && c <= 'f')
                                v |= c - 'a' + 10;
                        else
                                return -EINVAL;
                }
                out[i] = (unsigned char)v;
        }
        return 0;
}

int sign_data(const struct sign_key *k, const void *data, size_t len, char ret_hex[SIGN_SIG_HEX_LEN + 1]) {
        unsigned char sig[SIGN_SIG_BYTES];
        size_t siglen = sizeof sig;
        EVP_MD_CTX *ctx;
        int ok;

        if (!k->private_key)
                return -EINVAL;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, data, len) == 1 && siglen == sizeof sig;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        if (!ok)
                return -EIO;
        to_hex(sig, sizeof sig, ret_hex);
        return 0;
}

int sign_verify_data(const struct sign_key *k, const void *data, size_t len, const char *sig_hex) {
        unsigned char sig[SIGN_SIG_BYTES];
        EVP_MD_CTX *ctx;
        int r;

        if (!sign_is_signature(sig_hex) || from_hex(sig_hex, sig, sizeof sig) < 0)
                return 0;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1)
                r = -EIO;
        else
                r = EVP_DigestVerify(ctx, sig, sizeof sig, data, len) == 1 ? 1 : 0;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return r;
}

void sign_keyring_clear(struct sign_keyring *kr) {
        for (size_t i = 0; i < kr->n; i++)
                sign_key_free(kr->keys[i]);
        free(kr->keys);
        *kr = (struct sign_keyring){0};
}

const struct sign_key *sign_keyring_find(const struct sign_keyring *kr, const char *fpr) {
        for (size_t i = 0; kr && fpr && i < kr->n; i++)
                if (streq(kr->keys[i]->fpr, fpr))
                        return kr->keys[i];
        return NULL;
}

int sign_keyring_add(struct sign_keyring *kr, struct sign_key *k) {
        struct sign_key **n;

        if (sign_keyring_find(kr, k->fpr)) {
                sign_key_free(k);
                return 0;
        }
        n = reallocarray(kr->keys, kr->n + 1, sizeof *n);
        if (!n) {
                sign_key_free(k);
                return -ENOMEM;
        }
        kr->keys = n;
        kr->keys[kr->n++] = k;
        return 1;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int sign_keyring_load(const char *path, struct sign_keyring *ret, char *err, size_t errlen) {
        struct sign_keyring kr = {0};
        _cleanup_strv_ char **files = NULL;
        struct stat st;
        int r;

        if (stat(path, &st) < 0)
                return errmsg(err, errlen, -errno, "cannot read trusted keys '%s': %s", path,
                              strerror(errno));
        if (S_ISDIR(st.st_mode)) {
                DIR *d = opendir(path);
                struct dirent *de;
                if (!d)
                        return errmsg(err, errlen, -errno, "cannot read directory '%s': %s", path,
                                      strerror(errno));
                while ((de = readdir(d))) {
                        size_t n = strlen(de->d_name);
                        char *f = NULL;
                        if (de->d_name[0] == '.' || n < 5 || !streq(de->d_name + n - 4, ".pub"))
                                continue;
                        if (asprintf(&f, "%s/%s", path, de->d_name) < 0 || strv_consume(&files, f) < 0) {
                                closedir(d);
                                return -ENOMEM;
                        }
                }
                closedir(d);
                if (!files)
                        return errmsg(err, errlen, -ENOENT,
                                      "no trusted key in '%s': expected one or more *.pub files", path);
                qsort(files, strv_length(files), sizeof(char *), cmp_str);
        } else if (strv_push(&files, path) < 0)
                return -ENOMEM;

        for (char **f = files; *f; f++) {
                struct sign_key *k = NULL;
                r = sign_key_load_public(*f, &k, err, errlen);
                if (r >= 0)
                        r = sign_keyring_add(&kr, k);
                if (r < 0) {
                        sign_keyring_clear(&kr);
                        return r;
                }
        }
        *ret = kr;
        return 0;
}

int deploy_sign(struct deploy *d, const struct sign_key *k) {
        _cleanup_free_ unsigned char *buf = NULL;
        size_t len = 0;
        int r;

        r = sign_canonical(d->id, d->previous, d->hash, d->graph, d->graph_len, &buf, &len);
        if (r < 0)
                return r;
        r = sign_data(k, buf, len, d->signature);
        if (r < 0)
                return r;
        strlcpy(d->signer, k->fpr, sizeof d->signer);
        return 0;
}

int deploy_verify(const struct deploy *d, int64_t id, const struct sign_keyring *kr, char *why,
                  size_t whylen) {
        _cleanup_free_ unsigned char *buf = NULL;
        const struct sign_key *k;
        size_t len = 0;
        int r;

        if (!d->signature[0] || !d->signer[0])
                return errmsg(why, whylen, -EPERM,
                              "deploy %lld is not signed, and this agent runs only deploys signed by a "
                              "trusted key",
                              (long long)id);
        if (!d->graph)
                return errmsg(why, whylen, -EPERM, "deploy %lld has no graph text to verify", (long long)id);
        k = sign_keyring_find(kr, d->signer);
        if (!k)
                return errmsg(why, whylen, -EPERM,
                              "deploy %lld is signed by key %.*s..., which is not trusted", (long long)id,
                              SIGN_FPR_SHORT, d->signer);
        if (d->id != id)
                return errmsg(why, whylen, -EPERM,
                              "deploy %lld holds the record of deploy %lld (signed by key %.*s... for id "
                              "%lld, not "
                              "%lld): a replayed deploy",
                              (long long)id, (long long)d->id, SIGN_FPR_SHORT, d->signer, (long long)d->id,
                              (long long)id);
        r = sign_canonical(id, d->previous, d->hash, d->graph, d->graph_len, &buf, &len);
        if (r < 0)
                return r;
        r = sign_verify_data(k, buf, len, d->signature);
        if (r < 0)
                return r;
        if (r == 0)
                return errmsg(
                    why, whylen, -EPERM,
                    "deploy %lld: the signature by key %.*s... does not match the record (id, previous "
                    "hash, hash or graph changed after signing)",
                    (long long)id, SIGN_FPR_SHORT, d->signer);
        return 0;
}
