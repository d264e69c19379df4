/* test_sign.c: the canonical bytes of a deploy record, Ed25519 sign and
 * verify (RFC 8032 test vector), key loading refusals, the keyring, and
 * deploy_verify's verdicts (unsigned, unknown key, replay, tampering). */
#include <bsd/string.h>
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "deploy.h"
#include "macro.h"
#include "sign.h"
#include "util.h"

/* RFC 8032 section 7.1, TEST 1 */
static const char rfc_priv[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                               "-----END PRIVATE KEY-----\n";
static const char rfc_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
                              "-----END PUBLIC KEY-----\n";
static const char rfc_sig_empty[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3"
    "9701cf9b46bd25bf5f0595bbe24655141438e7a100b";
static const char ec_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFysgRxezfIGhEyR6MHYFAUc23B8e\n"
                             "xENTSMA/TIP9VVym3ui26lZA/bj7VLsbmzmrccsKBq5jP2CTTxLMIwIurQ==\n"
                             "-----END PUBLIC KEY-----\n";
static const char graph[] = "graph: g\nresources:\n  noop:\n  - name: a\n";

static struct sign_key *load(const char *pem, bool priv) {
        struct sign_key *k = NULL;
        char err[512];
        ck_assert_int_eq(sign_key_from_pem(pem, strlen(pem), priv, "test", &k, err, sizeof err), 0);
        return k;
}

START_TEST(test_canonical_layout) {
        _cleanup_free_ unsigned char *b = NULL;
        size_t len = 0, tl = strlen(SIGN_TAG) + 1;

        ck_assert_int_eq(sign_canonical(12, "ab", "cd", "x\0y", 3, &b, &len), 0);
        ck_assert_uint_eq(len, tl + 4 * 8 + 2 + 2 + 2 + 3);
        ck_assert_mem_eq(b, SIGN_TAG "\0", tl);
        const unsigned char *p = b + tl;
        static const unsigned char want[] = {0,   0,   0, 0, 0,   0,   0, 2, '1', '2', 0,   0, 0,  0,
                                             0,   0,   0, 2, 'a', 'b', 0, 0, 0,   0,   0,   0, 0,  2,
                                             'c', 'd', 0, 0, 0,   0,   0, 0, 0,   3,   'x', 0, 'y'};
        ck_assert_uint_eq(len - tl, sizeof want);
        ck_assert_mem_eq(p, want, sizeof want);
}
END_TEST

/* Records that differ in any field, or only in where one field ends and the
 * next begins, never share their canonical bytes. */
START_TEST(test_canonical_unambiguous) {
        static const struct {
                int64_t id;
                const char *prev, *hash, *graph;
        } t[] = {
            {1, "", "h", "g"},   {11, "", "h", "g"}, {1, "1", "h", "g"}, {1, "ab", "c", "g"},
            {1, "a", "bc", "g"}, {1, "", "hg", ""},  {1, "", "h", "g "}, {2, "", "h", "g"},
            {1, "", "", "hg"},   {1, "h", "", "g"},  {-1, "", "h", "g"},
        };
        unsigned char *bufs[ELEMENTSOF(t)];
        size_t lens[ELEMENTSOF(t)];

        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                ck_assert_int_eq(sign_canonical(t[i].id, t[i].prev, t[i].hash, t[i].graph,
                                                strlen(t[i].graph), &bufs[i], &lens[i]),
                                 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                for (size_t k = i + 1; k < ELEMENTSOF(t); k++)
                        ck_assert_msg(lens[i] != lens[k] || memcmp(bufs[i], bufs[k], lens[i]) != 0,
                                      "records %zu and %zu share their canonical bytes", i, k);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                free(bufs[i]);

        /* NULL previous (deploy 1) and "" are the same record; an empty graph is fine */
        _cleanup_free_ unsigned char *a = NULL, *b = NULL;
        size_t la, lb;
        ck_assert_int_eq(sign_canonical(1, NULL, "h", NULL, 0, &a, &la), 0);
        ck_assert_int_eq(sign_canonical(1, "", "h", "", 0, &b, &lb), 0);
        ck_assert_uint_eq(la, lb);
        ck_assert_mem_eq(a, b, la);
}
END_TEST

START_TEST(test_rfc8032_vector) {
        struct sign_key *k = load(rfc_priv, true), *pub = load(rfc_pub, false);
        char sig[SIGN_SIG_HEX_LEN + 1];

        ck_assert_str_eq(sign_key_fingerprint(k), sign_key_fingerprint(pub));
        /* fingerprint = sha256 of the raw public key (d75a98...511a) */
        static const unsigned char raw[] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                            0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                            0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
        char fpr[65];
        sha256_hex(raw, sizeof raw, fpr);
        ck_assert_str_eq(sign_key_fingerprint(pub), fpr);

        ck_assert_int_eq(sign_data(k, "", 0, sig), 0);
        ck_assert_str_eq(sig, rfc_sig_empty);
        ck_assert_int_eq(sign_verify_data(pub, "", 0, rfc_sig_empty), 1);
        ck_assert_int_eq(sign_verify_data(k, "", 0, rfc_sig_empty), 1);
        /* a public key cannot sign */
        ck_assert_int_eq(sign_data(pub, "", 0, sig), -EINVAL);
        sign_key_free(k);
        sign_key_free(pub);
}
END_TEST

START_TEST(test_verify_edges) {
        struct sign_key *k = load(rfc_priv, true), *pub = load(rfc_pub, false);
        char sig[SIGN_SIG_HEX_LEN + 1], bad[SIGN_SIG_HEX_LEN + 2];

        ck_assert_int_eq(sign_data(k, "data", 4, sig), 0);
        ck_assert(sign_is_signature(sig));
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, sig), 1);
        ck_assert_int_eq(sign_verify_data(pub, "dat", 3, sig), 0);
        ck_assert_int_eq(sign_verify_data(pub, "datb", 4, sig), 0);
        /* one flipped bit, in the first and the last byte */
        strlcpy(bad, sig, sizeof bad);
        bad[0] = bad[0] == '0' ? '1' : '0';
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, bad), 0);
        strlcpy(bad, sig, sizeof bad);
        bad[127] = bad[127] == '0' ? '1' : '0';
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, bad), 0);
        /* malformed: short, long, uppercase, not hex, empty */
        strlcpy(bad, sig, sizeof bad);
        bad[126] = 0;
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, bad), 0);
        snprintf(bad, sizeof bad, "%s0", sig);
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, bad), 0);
        ck_assert(!sign_is_signature(bad));
        strlcpy(bad, sig, sizeof bad);
        for (char *p = bad; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, bad), 0);
        strlcpy(bad, sig, sizeof bad);
        bad[5] = 'g';
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, bad), 0);
        ck_assert_int_eq(sign_verify_data(pub, "data", 4, ""), 0);
        ck_assert(!sign_is_fingerprint("abc"));
        ck_assert(sign_is_fingerprint(sign_key_fingerprint(pub)));
        sign_key_free(k);
        sign_key_free(pub);
}
END_TEST

START_TEST(test_key_refusals) {
        struct sign_key *k = NULL;
        char err[512];

        ck_assert_int_eq(
            sign_key_from_pem(rfc_pub, strlen(rfc_pub), true, "deploy.pub", &k, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "'deploy.pub' is a public key, but a private key is needed"));
        ck_assert_int_eq(
            sign_key_from_pem(rfc_priv, strlen(rfc_priv), false, "deploy.key", &k, err, sizeof err),
            -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "'deploy.key' is a private key"));
        ck_assert_int_eq(sign_key_from_pem("garbage\n", 8, true, "g", &k, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "'g' is not a PEM private key"));
        ck_assert_int_eq(sign_key_from_pem("", 0, false, "e", &k, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "'e' is not a PEM public key"));
        ck_assert_int_eq(sign_key_from_pem(ec_pub, strlen(ec_pub), false, "ec.pub", &k, err, sizeof err),
                         -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "expected an Ed25519 key"));
        /* a passphrase-protected key: refused, never a prompt */
        static const char enc[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqG\n"
                                  "-----END ENCRYPTED PRIVATE KEY-----\n";
        ck_assert_int_eq(sign_key_from_pem(enc, strlen(enc), true, "enc.key", &k, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "'enc.key' is encrypted with a passphrase"));
        /* a truncated key */
        char half[64];
        strlcpy(half, rfc_pub, sizeof half);
        ck_assert_int_eq(sign_key_from_pem(half, strlen(half), false, "half", &k, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(k);
}
END_TEST

static void tmpdir(char *buf, size_t len) {
        snprintf(buf, len, "%s/test-sign.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(buf));
}

START_TEST(test_files) {
        char dir[256], path[512], err[512], fpr[SIGN_FPR_LEN + 1];
        struct sign_key *k = NULL;
        struct sign_keyring kr = {0};
        struct stat st;

        tmpdir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/keys", dir);
        ck_assert_int_eq(sign_keygen_dir(path, fpr, err, sizeof err), 0);
        ck_assert(sign_is_fingerprint(fpr));
        snprintf(path, sizeof path, "%s/keys/deploy.key", dir);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(sign_key_load_private(path, &k, err, sizeof err), 0);
        ck_assert_str_eq(sign_key_fingerprint(k), fpr);
        sign_key_free(k);
        /* readable by others: refused */
        ck_assert_int_eq(chmod(path, 0640), 0);
        ck_assert_int_eq(sign_key_load_private(path, &k, err, sizeof err), -EPERM);
        ck_assert_ptr_nonnull(strstr(err, "readable by others (mode 0640)"));
        /* a second keygen into the same directory refuses and changes nothing */
        snprintf(path, sizeof path, "%s/keys", dir);
        ck_assert_int_eq(sign_keygen_dir(path, NULL, err, sizeof err), -EEXIST);
        ck_assert_ptr_nonnull(strstr(err, "refusing to overwrite"));

        /* a keyring from a directory: every *.pub, duplicates once, other files ignored */
        snprintf(path, sizeof path, "%s/ring", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        ck_assert_int_eq(sign_keyring_load(path, &kr, err, sizeof err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err, "no trusted key in"));
        snprintf(path, sizeof path, "%s/ring/a.pub", dir);
        ck_assert_int_eq(write_file_atomic(path, rfc_pub, strlen(rfc_pub), 0644), 0);
        snprintf(path, sizeof path, "%s/ring/a-again.pub", dir);
        ck_assert_int_eq(write_file_atomic(path, rfc_pub, strlen(rfc_pub), 0644), 0);
        snprintf(path, sizeof path, "%s/ring/notes.txt", dir);
        ck_assert_int_eq(write_file_atomic(path, "x", 1, 0644), 0);
        snprintf(path, sizeof path, "%s/ring", dir);
        ck_assert_int_eq(sign_keyring_load(path, &kr, err, sizeof err), 0);
        ck_assert_uint_eq(kr.n, 1);
        sign_keyring_clear(&kr);
        /* one bad *.pub fails the whole load, naming it */
        snprintf(path, sizeof path, "%s/ring/b.pub", dir);
        ck_assert_int_eq(write_file_atomic(path, "nope", 4, 0644), 0);
        snprintf(path, sizeof path, "%s/ring", dir);
        ck_assert_int_eq(sign_keyring_load(path, &kr, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "ring/b.pub' is not a PEM public key"));
        ck_assert_uint_eq(kr.n, 0);
        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

/* A signed record d (id 7) and a ring trusting its key. */
static void signed_record(struct deploy *d, struct sign_keyring *kr) {
        char prev[65];
        sha256_hex("old", 3, prev);
        ck_assert_int_eq(deploy_new(d, 7, prev, graph, strlen(graph), NULL), 0);
        struct sign_key *k = load(rfc_priv, true);
        ck_assert_int_eq(deploy_sign(d, k), 0);
        sign_key_free(k);
        *kr = (struct sign_keyring){0};
        ck_assert_int_eq(sign_keyring_add(kr, load(rfc_pub, false)), 1);
}

START_TEST(test_deploy_verify) {
        struct deploy d, back;
        struct sign_keyring kr, none = {0};
        char why[512];

        signed_record(&d, &kr);
        ck_assert_int_eq(deploy_verify(&d, 7, &kr, why, sizeof why), 0);
        /* through the JSON payload and back: still verifies */
        _cleanup_free_ char *text = deploy_encode(&d);
        ck_assert_int_eq(deploy_decode(text, strlen(text), &back, why, sizeof why), 0);
        ck_assert_str_eq(back.signature, d.signature);
        ck_assert_str_eq(back.signer, d.signer);
        ck_assert_int_eq(deploy_verify(&back, 7, &kr, why, sizeof why), 0);
        deploy_clear(&back);

        /* unknown key */
        ck_assert_int_eq(deploy_verify(&d, 7, &none, why, sizeof why), -EPERM);
        char want[128];
        snprintf(want, sizeof want, "deploy 7 is signed by key %.16s..., which is not trusted", d.signer);
        ck_assert_str_eq(why, want);
        /* replay: the record of 7 read from key 8 */
        ck_assert_int_eq(deploy_verify(&d, 8, &kr, why, sizeof why), -EPERM);
        ck_assert_ptr_nonnull(strstr(why, "a replayed deploy"));
        /* id changed in the record too: the signature no longer matches */
        d.id = 8;
        ck_assert_int_eq(deploy_verify(&d, 8, &kr, why, sizeof why), -EPERM);
        ck_assert_ptr_nonnull(strstr(why, "does not match the record"));
        d.id = 7;
        /* previous hash changed */
        char saved = d.previous[0];
        d.previous[0] = saved == 'a' ? 'b' : 'a';
        ck_assert_int_eq(deploy_verify(&d, 7, &kr, why, sizeof why), -EPERM);
        d.previous[0] = saved;
        ck_assert_int_eq(deploy_verify(&d, 7, &kr, why, sizeof why), 0);
        /* one byte of the graph changed */
        d.graph[3] ^= 1;
        ck_assert_int_eq(deploy_verify(&d, 7, &kr, why, sizeof why), -EPERM);
        d.graph[3] ^= 1;
        /* signer claims a trusted key but the signature is by another: no match */
        d.signature[10] = d.signature[10] == '0' ? '1' : '0';
        ck_assert_int_eq(deploy_verify(&d, 7, &kr, why, sizeof why), -EPERM);
        ck_assert_ptr_nonnull(strstr(why, "does not match"));
        /* unsigned */
        d.signature[0] = 0;
        d.signer[0] = 0;
        ck_assert_int_eq(deploy_verify(&d, 7, &kr, why, sizeof why), -EPERM);
        ck_assert_str_eq(why,
                         "deploy 7 is not signed, and this agent runs only deploys signed by a trusted key");
        deploy_clear(&d);
        sign_keyring_clear(&kr);
}
END_TEST

/* The record's signature fields: fixed lengths, both or neither. */
START_TEST(test_decode_signature_fields) {
        struct deploy d, back;
        struct sign_keyring kr;
        char why[512];

        signed_record(&d, &kr);
        json_t *j = deploy_to_json(&d, true);
        static const struct {
                const char *field, *value, *want;
        } t[] = {
            {"signature", "abcd",
             "'signature' must be 128 lowercase hex digits (an Ed25519 signature), got 4 characters"},
            {"signature", "", "got 0 characters"},
            {"signer", "abcd", "'signer' must be 64 lowercase hex digits"},
            {"signature", NULL, "deploy record has 'signer' without 'signature'"},
            {"signer", NULL, "deploy record has 'signature' without 'signer'"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                json_t *c = json_deep_copy(j);
                if (t[i].value)
                        json_object_set_new(c, t[i].field, json_string(t[i].value));
                else
                        json_object_del(c, t[i].field);
                ck_assert_int_eq(deploy_from_json(c, &back, why, sizeof why), -EBADMSG);
                ck_assert_msg(strstr(why, t[i].want), "case %zu: '%s'", i, why);
                json_decref(c);
        }
        /* uppercase hex and a number are refused too */
        json_t *c = json_deep_copy(j);
        char up[SIGN_SIG_HEX_LEN + 1];
        strlcpy(up, d.signature, sizeof up);
        for (char *p = up; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        json_object_set_new(c, "signature", json_string(up));
        ck_assert_int_eq(deploy_from_json(c, &back, why, sizeof why), -EBADMSG);
        json_object_set_new(c, "signature", json_integer(5));
        ck_assert_int_eq(deploy_from_json(c, &back, why, sizeof why), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(why, "a non-string"));
        json_decref(c);
        /* unsigned records carry neither field */
        d.signature[0] = d.signer[0] = 0;
        json_t *u = deploy_to_json(&d, true);
        ck_assert_ptr_null(json_object_get(u, "signature"));
        ck_assert_ptr_null(json_object_get(u, "signer"));
        ck_assert_int_eq(deploy_from_json(u, &back, why, sizeof why), 0);
        ck_assert_str_eq(back.signature, "");
        deploy_clear(&back);
        json_decref(u);
        json_decref(j);
        deploy_clear(&d);
        sign_keyring_clear(&kr);
}
END_TEST

static Suite *sign_suite(void) {
        Suite *s = suite_create("sign");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_canonical_layout);
        tcase_add_test(tc, test_canonical_unambiguous);
        tcase_add_test(tc, test_rfc8032_vector);
        tcase_add_test(tc, test_verify_edges);
        tcase_add_test(tc, test_key_refusals);
        tcase_add_test(tc, test_files);
        tcase_add_test(tc, test_deploy_verify);
        tcase_add_test(tc, test_decode_signature_fields);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(sign_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
