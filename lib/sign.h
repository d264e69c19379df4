/* sign.h: Ed25519 signatures of deploy records (DESIGN.md "Trust"), through
 * OpenSSL's libcrypto (no hand-written crypto).
 *
 * Recipe (signer, mgmt-deploy):
 *   1. sign_keygen_dir(dir): deploy.key (0600) and deploy.pub, once;
 *   2. sign_key_load_private(path, &k): refuses a public key, a key readable
 *      by group or others, a malformed file, a key that is not Ed25519;
 *   3. deploy_new(&d, ...) then deploy_sign(&d, k): fills d.signature and
 *      d.signer (the key's fingerprint).
 * Recipe (verifier, mgmt-agent):
 *   1. sign_keyring_load(FILE|DIR): one public key, or every *.pub in DIR;
 *   2. deploy_verify(&d, id, ring, why): id is the id of the etcd key the
 *      payload was read from, so an old signed payload copied to a new id
 *      (a replay) is refused.
 *
 * What is signed (sign_canonical): a fixed tag, then id (decimal), previous
 * hash ("" for deploy 1), graph hash and graph text, each preceded by its
 * length as 8 bytes big-endian, so no two records share their bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct deploy;

#define SIGN_FPR_LEN 64      /* sha256 hex of the raw 32-byte public key */
#define SIGN_FPR_SHORT 16    /* hex digits shown in messages */
#define SIGN_SIG_BYTES 64    /* Ed25519 signature */
#define SIGN_SIG_HEX_LEN 128 /* as stored in the deploy record */
#define SIGN_KEY_FILE "deploy.key"
#define SIGN_PUB_FILE "deploy.pub"
#define SIGN_TAG "mgmt-deploy-signature-v1"

struct sign_key;
void sign_key_free(struct sign_key *k);
static inline void sign_key_freep(struct sign_key **k) {
        sign_key_free(*k);
}
#define _cleanup_sign_key_ __attribute__((cleanup(sign_key_freep)))

/* Write DIR/deploy.key (0600) and DIR/deploy.pub (0644), creating DIR (0700)
 * if needed. Refuses (-EEXIST) when either file exists; writes neither then.
 * ret_fpr (may be NULL) gets the fingerprint. err says what failed. */
int sign_keygen_dir(const char *dir, char ret_fpr[SIGN_FPR_LEN + 1], char *err, size_t errlen);

/* Load a PEM private key (PKCS#8 "PRIVATE KEY"). -EINVAL (err names the file
 * and the problem): not PEM, a public key, not Ed25519; -EPERM: readable by
 * group or others; -errno when it cannot be read. */
int sign_key_load_private(const char *path, struct sign_key **ret, char *err, size_t errlen);
/* Load a PEM public key ("PUBLIC KEY"); a private key is refused. */
int sign_key_load_public(const char *path, struct sign_key **ret, char *err, size_t errlen);
/* Parse PEM text (tests, and the loaders above). */
int sign_key_from_pem(const char *pem, size_t len, bool private_key, const char *what, struct sign_key **ret,
                      char *err, size_t errlen);
/* 64 lowercase hex digits. */
const char *sign_key_fingerprint(const struct sign_key *k);
/* The path the key was loaded from, or "" */
const char *sign_key_origin(const struct sign_key *k);

/* The bytes that are signed; free() the result. */
int sign_canonical(int64_t id, const char *previous, const char *hash, const char *graph, size_t graph_len,
                   unsigned char **ret, size_t *ret_len);

/* Ed25519 over data with a private key: 128 lowercase hex digits + NUL. */
int sign_data(const struct sign_key *k, const void *data, size_t len, char ret_hex[SIGN_SIG_HEX_LEN + 1]);
/* 1: the signature verifies; 0: it does not (or is malformed); < 0: error. */
int sign_verify_data(const struct sign_key *k, const void *data, size_t len, const char *sig_hex);

/* True when s is exactly SIGN_SIG_HEX_LEN / SIGN_FPR_LEN lowercase hex digits. */
bool sign_is_signature(const char *s);
bool sign_is_fingerprint(const char *s);

/* A set of trusted public keys. */
struct sign_keyring {
        struct sign_key **keys;
        size_t n;
};
void sign_keyring_clear(struct sign_keyring *kr);
/* path: one public key file, or a directory whose every *.pub is loaded (at
 * least one; duplicates counted once). A bad file fails the whole load. */
int sign_keyring_load(const char *path, struct sign_keyring *ret, char *err, size_t errlen);
int sign_keyring_add(struct sign_keyring *kr, struct sign_key *k); /* takes k (freed on error) */
const struct sign_key *sign_keyring_find(const struct sign_keyring *kr, const char *fpr);

/* Sign d (its id, previous, hash and graph) with k: sets d->signature and
 * d->signer. */
int deploy_sign(struct deploy *d, const struct sign_key *k);
/* Verify the record read from deploy key id against the ring. 0: signed by a
 * trusted key over exactly this id and content; -EPERM: refused, why says
 * why in words naming the deploy and the key; -ENOMEM. */
int deploy_verify(const struct deploy *d, int64_t id, const struct sign_keyring *kr, char *why,
                  size_t whylen);
