/* test_etcdsnap.c: unit tests for lib/etcdsnap.c: the gateway's snapshot
 * stream cut at any byte, both message shapes, errors in the stream, and
 * etcd's sha256 trailer check on files. */
#include <check.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "etcdsnap.h"
#include "macro.h"
#include "util.h"

static char dir[64];

static void setup(void) {
        snprintf(dir, sizeof dir, "/tmp/test-etcdsnap.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        rm_rf(dir);
}

/* A fake snapshot: n bytes (a multiple of 512) and their sha256 after them. */
static unsigned char *payload(size_t n, size_t *ret_len) {
        unsigned char *p = malloc(n + 32);
        unsigned int l = 0;
        for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)(i * 131 + (i >> 9));
        EVP_Digest(p, n, p + n, &l, EVP_sha256(), NULL);
        *ret_len = n + 32;
        return p;
}

enum shape { FAST, HEADER_FIRST, BLOB_NOT_LAST, ESCAPED };

/* The gateway's stream of p: 32 KiB chunks, one JSON message per line. */
static char *stream_of(const unsigned char *p, size_t len, enum shape shape) {
        char *out = NULL;
        size_t olen = 0;
        FILE *f = open_memstream(&out, &olen);
        for (size_t off = 0; off < len; off += 32768) {
                size_t n = len - off < 32768 ? len - off : 32768;
                _cleanup_free_ char *b = b64_encode(p + off, n);
                switch (shape) {
                case FAST:
                        fprintf(f, "{\"result\":{\"blob\":\"%s\"}}\n", b);
                        break;
                case HEADER_FIRST:
                        fprintf(f,
                                "{\"result\":{\"header\":{\"revision\":\"7\"},\"remaining_bytes\":\"%zu\","
                                "\"blob\":\"%s\"}}\n",
                                len - off - n, b);
                        break;
                case BLOB_NOT_LAST:
                        fprintf(f, "{\"result\":{\"blob\":\"%s\",\"remaining_bytes\":\"%zu\"}}\n", b,
                                len - off - n);
                        break;
                case ESCAPED:
                        fputs("{\"result\":{\"blob\":\"", f);
                        for (char *c = b; *c; c++)
                                fputs(*c == '/' ? "\\/" : (char[]){*c, 0}, f);
                        fputs("\"}}\n", f);
                        break;
                }
        }
        fclose(f);
        return out;
}

static int feed_in_pieces(struct snap_sink *s, const char *text, size_t piece) {
        size_t len = strlen(text);
        for (size_t off = 0; off < len; off += piece) {
                int r = snap_sink_feed(s, text + off, len - off < piece ? len - off : piece);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const size_t pieces[] = {1, 7, 4096, 100000, 1 << 30};

START_TEST(test_stream_shapes_and_cuts) {
        size_t len;
        _cleanup_free_ unsigned char *p = payload(100 * 1024, &len); /* 4 messages */
        for (enum shape sh = FAST; sh <= ESCAPED; sh++)
                for (size_t k = 0; k < ELEMENTSOF(pieces); k++) {
                        char path[128], err[512];
                        struct snap_sink *s = NULL;
                        struct snap_info info;
                        _cleanup_free_ char *text = stream_of(p, len, sh), *got = NULL;
                        size_t glen = 0;
                        snprintf(path, sizeof path, "%s/s-%d-%zu.db", dir, (int)sh, k);
                        ck_assert_int_eq(snap_sink_open(path, &s), 0);
                        ck_assert_int_eq(feed_in_pieces(s, text, pieces[k]), 0);
                        ck_assert_int_eq(snap_sink_finish(s, &info, err, sizeof err), 0);
                        ck_assert_uint_eq(info.size, len);
                        ck_assert_int_eq(snap_sink_commit(s), 0);
                        snap_sink_free(s);
                        ck_assert_int_eq(read_file_max(path, 1 << 20, &got, &glen), 0);
                        ck_assert_uint_eq(glen, len);
                        ck_assert_mem_eq(got, p, len);
                        char hex[65];
                        sha256_hex(p, len, hex);
                        ck_assert_str_eq(info.sha256, hex);
                        /* and the file passes the same check on disk */
                        struct snap_info fi;
                        ck_assert_int_eq(snap_file_check(path, &fi, err, sizeof err), 0);
                        ck_assert_str_eq(fi.sha256, hex);
                }
}
END_TEST

START_TEST(test_stream_bad) {
        size_t len;
        _cleanup_free_ unsigned char *p = payload(100 * 1024, &len);
        _cleanup_free_ char *text = stream_of(p, len, FAST);
        char path[128], err[512];
        struct snap_sink *s = NULL;
        struct snap_info info;
        struct stat st;

        /* the last message lost: the trailer does not match */
        snprintf(path, sizeof path, "%s/t.db", dir);
        ck_assert_int_eq(snap_sink_open(path, &s), 0);
        text[strlen(text) - 1] = 0; /* the last message starts after the last newline */
        char *last = strrchr(text, '\n') + 1;
        ck_assert_int_eq(snap_sink_feed(s, text, (size_t)(last - text)), 0);
        ck_assert_int_lt(snap_sink_finish(s, &info, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(err, "not a whole etcd snapshot"));
        _cleanup_free_ char *tmp = strdup(snap_sink_temp_path(s));
        snap_sink_free(s); /* not committed: the temp file is gone, nothing at path */
        ck_assert_int_lt(stat(tmp, &st), 0);
        ck_assert_int_lt(stat(path, &st), 0);

        /* nothing at all */
        ck_assert_int_eq(snap_sink_open(path, &s), 0);
        ck_assert_int_lt(snap_sink_finish(s, &info, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(err, "is empty"));
        snap_sink_free(s);

        /* etcd's error inside the stream */
        ck_assert_int_eq(snap_sink_open(path, &s), 0);
        const char *e = "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}\n";
        ck_assert_int_lt(snap_sink_feed(s, e, strlen(e)), 0);
        ck_assert_ptr_nonnull(strstr(snap_sink_error(s), "etcdserver: no leader"));
        ck_assert_int_lt(snap_sink_finish(s, &info, err, sizeof err), 0);
        snap_sink_free(s);

        /* not JSON, bad base64, a blob that is not a string */
        const char *bad[] = {"<html>502</html>\n", "{\"result\":{\"blob\":\"!!!!\"}}\n",
                             "{\"result\":{\"blob\":5}}\n", "{\"result\":7}\n"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(snap_sink_open(path, &s), 0);
                ck_assert_int_lt(snap_sink_feed(s, bad[i], strlen(bad[i])), 0);
                ck_assert_ptr_nonnull(snap_sink_error(s));
                snap_sink_free(s);
        }
        ck_assert_int_lt(stat(path, &st), 0);
}
END_TEST

START_TEST(test_file_check) {
        size_t len;
        _cleanup_free_ unsigned char *p = payload(8192, &len);
        char path[128], err[512];
        struct snap_info info;

        snprintf(path, sizeof path, "%s/f.db", dir);
        ck_assert_int_eq(write_file_atomic(path, p, len, 0600), 0);
        ck_assert_int_eq(snap_file_check(path, &info, err, sizeof err), 0);
        ck_assert_uint_eq(info.size, len);
        /* one byte flipped */
        p[100] ^= 1;
        ck_assert_int_eq(write_file_atomic(path, p, len, 0600), 0);
        ck_assert_int_eq(snap_file_check(path, &info, err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "sha256"));
        /* truncated, empty, missing, a directory */
        ck_assert_int_eq(write_file_atomic(path, p, len - 1, 0600), 0);
        ck_assert_int_eq(snap_file_check(path, &info, err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "not a whole etcd snapshot"));
        ck_assert_int_eq(write_file_atomic(path, "", 0, 0600), 0);
        ck_assert_int_eq(snap_file_check(path, &info, err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "is empty"));
        snprintf(path, sizeof path, "%s/missing.db", dir);
        ck_assert_int_eq(snap_file_check(path, &info, err, sizeof err), -ENOENT);
        ck_assert_int_eq(snap_file_check(dir, &info, err, sizeof err), -EBADMSG);
}
END_TEST

static Suite *etcdsnap_suite(void) {
        Suite *s = suite_create("etcdsnap");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_stream_shapes_and_cuts);
        tcase_add_test(tc, test_stream_bad);
        tcase_add_test(tc, test_file_check);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(etcdsnap_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
