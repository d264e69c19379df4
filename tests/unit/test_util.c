/* test_util.c: unit tests for lib/util.c (base64, URL lists, hostnames, sha256, files,
 * errmsg) and log_lines (lib/log.c). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

/* Whole entries only: a URL that is a prefix of another entry is not held. */
START_TEST(test_url_list_holds) {
        ck_assert(url_list_holds("http://a:1,http://b:2", "http://b:2"));
        ck_assert(url_list_holds("http://a:1", "http://a:1"));
        ck_assert(!url_list_holds("http://a:12,http://b:2", "http://a:1"));
        ck_assert(!url_list_holds("http://a:1", "http://a:12"));
        ck_assert(!url_list_holds("", "http://a:1"));
        ck_assert(!url_list_holds(NULL, "http://a:1"));
        ck_assert(url_list_holds("x,,http://a:1", "http://a:1"));
}
END_TEST

START_TEST(test_b64_roundtrip) {
        static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
        static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (size_t i = 0; i < ELEMENTSOF(in); i++) {
                _cleanup_free_ char *e = b64_encode(in[i], strlen(in[i]));
                _cleanup_free_ char *d = NULL;
                size_t len = 99;
                ck_assert_ptr_nonnull(e);
                ck_assert_str_eq(e, out[i]);
                ck_assert_int_eq(b64_decode(e, &d, &len), 0);
                ck_assert_uint_eq(len, strlen(in[i]));
                ck_assert_str_eq(d, in[i]);
        }
}
END_TEST

START_TEST(test_b64_binary) {
        unsigned char buf[256];
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (unsigned char)(255 - i);
        for (size_t n = 0; n <= sizeof buf; n++) {
                _cleanup_free_ char *e = b64_encode(buf, n);
                _cleanup_free_ char *d = NULL;
                size_t len;
                ck_assert_ptr_nonnull(e);
                ck_assert_uint_eq(strlen(e), (n + 2) / 3 * 4);
                ck_assert_int_eq(b64_decode(e, &d, &len), 0);
                ck_assert_uint_eq(len, n);
                ck_assert_int_eq(memcmp(d, buf, n), 0);
                ck_assert_int_eq(d[n], 0);
        }
}
END_TEST

START_TEST(test_b64_invalid) {
        static const char *const bad[] = {
            "Zg=",                           /* length not a multiple of 4 */
            "Z",         "Zm9",  "Zm9v!A==", /* bad char */
            "Zm9v Zg==",                     /* space inside */
            "=Zg=",      "Z===", "Zg=a",     /* padding in the wrong place */
            "Zg==Zm9v",                      /* padding before the end */
            "Zm-_",                          /* url-safe alphabet is not accepted */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *d = NULL;
                ck_assert_msg(b64_decode(bad[i], &d, NULL) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(d);
        }
}
END_TEST

START_TEST(test_urls_parse_split) {
        _cleanup_strv_ char **v = NULL;
        char err[256] = "";
        ck_assert_int_eq(urls_parse(" http://a:1,https://b.example:2;http://127.0.0.1:3\thttp://[::1]:4 \n"
                                    "http://a:1 http://c:5/",
                                    &v, err, sizeof err),
                         0);
        ck_assert_uint_eq(strv_length(v), 5);
        ck_assert_str_eq(v[0], "http://a:1");
        ck_assert_str_eq(v[1], "https://b.example:2");
        ck_assert_str_eq(v[2], "http://127.0.0.1:3");
        ck_assert_str_eq(v[3], "http://[::1]:4");
        ck_assert_str_eq(v[4], "http://c:5"); /* trailing slash dropped, duplicate a:1 dropped */
}
END_TEST

/* Duplicates dropped in first-occurrence order; caps on length and count;
 * a hostile 1.4 MB list of 55,000 URLs is refused at once, and the list
 * operations stay n log n (100,000 entries well under a second). */
START_TEST(test_urls_caps_and_uniq) {
        _cleanup_strv_ char **v = NULL;
        char err[256];

        ck_assert_int_eq(
            urls_parse("http://b:1,http://a:1,http://b:1/,http://c:1,http://a:1", &v, err, sizeof err), 0);
        ck_assert_uint_eq(strv_length(v), 3);
        ck_assert_str_eq(v[0], "http://b:1");
        ck_assert_str_eq(v[1], "http://a:1");
        ck_assert_str_eq(v[2], "http://c:1");

        /* union: first occurrence order, nothing twice */
        char *add[] = {(char *)"http://d:1", (char *)"http://a:1", (char *)"http://d:1", NULL};
        ck_assert_int_eq(strv_extend_uniq(&v, add), 0);
        ck_assert_uint_eq(strv_length(v), 4);
        ck_assert_str_eq(v[3], "http://d:1");
        char **empty = NULL;
        ck_assert_int_eq(strv_extend_uniq(&empty, add), 0);
        ck_assert_uint_eq(strv_length(empty), 2);
        strv_free(empty);
        ck_assert_int_eq(strv_uniq(NULL), 0);

        /* exactly URLS_MAX is fine, one more is refused */
        char *list = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&list, &len);
        for (int i = 0; i < URLS_MAX; i++)
                fprintf(f, "%shttp://127.0.0.1:%d", i ? "," : "", 1000 + i);
        fflush(f);
        strv_free(TAKE_PTR(v));
        ck_assert_int_eq(urls_parse(list, &v, err, sizeof err), 0);
        ck_assert_uint_eq(strv_length(v), URLS_MAX);
        fprintf(f, ",http://127.0.0.1:99");
        fclose(f);
        strv_free(TAKE_PTR(v));
        ck_assert_int_eq(urls_parse(list, &v, err, sizeof err), -E2BIG);
        ck_assert_ptr_null(v);
        ck_assert_ptr_nonnull(strstr(err, "more than 64 URLs"));
        free(list);

        /* the hostile value: 55,000 URLs, 1.4 MB */
        f = open_memstream(&list, &len);
        for (int i = 0; i < 55000; i++)
                fprintf(f, "%shttp://10.%d.%d.%d:2379", i ? "," : "", i / 65536, (i / 256) % 256, i % 256);
        fclose(f);
        ck_assert_uint_gt(len, 1000000);
        uint64_t t0 = now_usec();
        ck_assert_int_eq(urls_parse(list, &v, err, sizeof err), -E2BIG);
        ck_assert_ptr_nonnull(strstr(err, "longer than the limit of 65536 bytes"));
        ck_assert_uint_lt(now_usec() - t0, 100000);
        free(list);

        /* 100,000 entries, every one twice: dedupe is n log n */
        char **big = calloc(200001, sizeof(char *));
        ck_assert_ptr_nonnull(big);
        for (int i = 0; i < 200000; i++)
                ck_assert_int_ne(asprintf(&big[i], "http://h%d:1", i % 100000), -1);
        t0 = now_usec();
        ck_assert_int_eq(strv_uniq(big), 0);
        ck_assert_uint_lt(now_usec() - t0, 2000000);
        ck_assert_uint_eq(strv_length(big), 100000);
        ck_assert_str_eq(big[0], "http://h0:1");
        ck_assert_str_eq(big[99999], "http://h99999:1");
        strv_free(big);
}
END_TEST

START_TEST(test_urls_parse_bad) {
        static const char *const bad[] = {
            "http://a:1,ftp://b:2", "http://a:1,b:2",       "http://a",    "http://a:0",
            "http://a:65536",       "http://a:12x",         "http://:80",  "http://[::1:80",
            "unix://a:1",           "http://a:1;http://a:", "http://a:-1", "http://a:99999999999999999999",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char **v = NULL;
                char err[256] = "";
                ck_assert_msg(urls_parse(bad[i], &v, err, sizeof err) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(v);
                ck_assert_msg(strstr(err, "invalid URL '") != NULL, "message '%s'", err);
        }
        /* the message names the bad entry, not the whole list */
        char **v = NULL;
        char err[256] = "";
        ck_assert_int_eq(urls_parse("http://good:1, http://bad", &v, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "'http://bad'") != NULL, "message '%s'", err);
        ck_assert_msg(strstr(err, "good") == NULL, "message '%s'", err);
        ck_assert_int_eq(urls_parse("", &v, err, sizeof err), -EINVAL);
        ck_assert_int_eq(urls_parse(" ,; ", &v, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(v);
        ck_assert_msg(strstr(err, "empty") != NULL, "message '%s'", err);
}
END_TEST

START_TEST(test_url_split) {
        char *scheme = NULL, *host = NULL;
        int port = 0;

        ck_assert_int_eq(url_split("http://[fe80::1]:2379", &scheme, &host, &port), 0);
        ck_assert_str_eq(scheme, "http");
        ck_assert_str_eq(host, "fe80::1");
        ck_assert_int_eq(port, 2379);
        free(scheme);
        free(host);

        ck_assert_int_eq(url_split("https://node-1.example.com:65535/", &scheme, &host, &port), 0);
        ck_assert_str_eq(scheme, "https");
        ck_assert_str_eq(host, "node-1.example.com");
        ck_assert_int_eq(port, 65535);
        free(scheme);
        free(host);

        ck_assert_int_eq(url_split("http://10.0.0.1:1", NULL, &host, NULL), 0);
        ck_assert_str_eq(host, "10.0.0.1");
        free(host);

        ck_assert_int_eq(url_split("http://[::1]", NULL, NULL, &port), -EINVAL);
        ck_assert_int_eq(url_split("http://[]:1", NULL, NULL, &port), -EINVAL);
        ck_assert_int_eq(url_split("http://[::1]x:1", NULL, NULL, &port), -EINVAL);
        ck_assert_int_eq(url_split("no-scheme:1", NULL, NULL, &port), -EINVAL);
        ck_assert_int_eq(url_split("http://h:1:2", NULL, NULL, &port), -EINVAL);
        ck_assert_int_eq(url_split("http://h:", NULL, NULL, &port), -EINVAL);
}
END_TEST

START_TEST(test_host_kinds) {
        ck_assert(host_is_wildcard("0.0.0.0"));
        ck_assert(host_is_wildcard("::"));
        ck_assert(!host_is_wildcard("127.0.0.1"));
        ck_assert(host_is_loopback("127.0.0.1"));
        ck_assert(host_is_loopback("127.5.4.3"));
        ck_assert(host_is_loopback("::1"));
        ck_assert(host_is_loopback("localhost"));
        ck_assert(!host_is_loopback("10.0.0.1"));
        ck_assert(!host_is_loopback("localhostx"));
}
END_TEST

START_TEST(test_hostname_valid) {
        char h[80];

        ck_assert(hostname_is_valid("a"));
        ck_assert(hostname_is_valid("node1"));
        ck_assert(hostname_is_valid("Node-1.example.com"));
        ck_assert(hostname_is_valid("1"));
        ck_assert(hostname_is_valid("a-"));
        ck_assert(!hostname_is_valid(NULL));
        ck_assert(!hostname_is_valid(""));
        ck_assert(!hostname_is_valid("-a"));
        ck_assert(!hostname_is_valid(".a"));
        ck_assert(!hostname_is_valid("a_b"));
        ck_assert(!hostname_is_valid("a/b"));
        ck_assert(!hostname_is_valid("a b"));
        ck_assert(!hostname_is_valid("a\n"));
        ck_assert(!hostname_is_valid("h\xc3\xa9"));
        ck_assert(!hostname_is_valid(".."));

        memset(h, 'a', sizeof h);
        h[63] = 0;
        ck_assert(hostname_is_valid(h)); /* 63 chars: the maximum */
        h[63] = 'b';
        h[64] = 0;
        ck_assert(!hostname_is_valid(h)); /* 64 chars */
}
END_TEST

/* The node name rule both programs use: the flag wins, else the system name
 * as it is, refused (never fixed up) when it is not a valid node name. */
START_TEST(test_node_hostname) {
        static const struct {
                const char *given, *system, *want, *err;
        } cases[] = {
            {"node1", "sys", "node1", NULL},
            {"node1", NULL, "node1", NULL},
            {NULL, "sys-1.example", "sys-1.example", NULL},
            {NULL, "my_host", NULL, "system host name 'my_host' is not a valid node name"},
            {NULL, "", NULL, "system host name '' is not a valid node name"},
            {NULL, NULL, NULL, "system host name '' is not a valid node name"},
            {"-bad", "sys", NULL, "invalid hostname '-bad'"},
            {"", "sys", NULL, "invalid hostname ''"},
        };
        char err[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *h = (char *)"untouched";
                err[0] = 0;
                int r = node_hostname_pick(cases[i].given, cases[i].system, &h, err, sizeof err);
                if (cases[i].want) {
                        ck_assert_int_eq(r, 0);
                        ck_assert_str_eq(h, cases[i].want);
                        ck_assert_str_eq(err, "");
                        free(h);
                } else {
                        ck_assert_int_eq(r, -EINVAL);
                        ck_assert_str_eq(h, "untouched");
                        ck_assert_msg(strstr(err, cases[i].err), "case %zu: '%s'", i, err);
                        ck_assert(strstr(err, "--hostname"));
                }
        }

        /* the system name itself: whatever it is, a name comes back valid or the call says why */
        char *h = NULL;
        err[0] = 0;
        int r = node_hostname(NULL, &h, err, sizeof err);
        if (r == 0) {
                ck_assert(hostname_is_valid(h));
                free(h);
        } else
                ck_assert(err[0] != 0);
        ck_assert_int_eq(node_hostname("given", &h, err, sizeof err), 0);
        ck_assert_str_eq(h, "given");
        free(h);
}
END_TEST

START_TEST(test_sha256) {
        char out[65];
        sha256_hex("", 0, out);
        ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, out);
        ck_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
        ck_assert_str_eq(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

        size_t n = 1000000;
        char *m = malloc(n);
        ck_assert_ptr_nonnull(m);
        memset(m, 'a', n);
        sha256_hex(m, n, out);
        free(m);
        ck_assert_str_eq(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(test_parse_int64) {
        int64_t v = 0;
        ck_assert_int_eq(parse_int64("123", &v), 0);
        ck_assert_int_eq(v, 123);
        ck_assert_int_eq(parse_int64("-9223372036854775808", &v), 0);
        ck_assert(v == INT64_MIN);
        ck_assert_int_eq(parse_int64("9223372036854775808", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("", &v), -EINVAL);
        ck_assert_int_eq(parse_int64(NULL, &v), -EINVAL);
        ck_assert_int_eq(parse_int64("12a", &v), -EINVAL);
}
END_TEST

/* errmsg fills err only when there is room, truncates, and returns r as given. */
START_TEST(test_errmsg) {
        char err[8] = "x";

        ck_assert_int_eq(errmsg(NULL, 0, -EBADMSG, "%s", "nowhere"), -EBADMSG);
        ck_assert_int_eq(errmsg(err, 0, -EINVAL, "%s", "no room"), -EINVAL);
        ck_assert_str_eq(err, "x");
        ck_assert_int_eq(errmsg(err, sizeof err, -EPERM, "key '%s'", "abc"), -EPERM);
        ck_assert_str_eq(err, "key 'ab");
        ck_assert_int_eq(errmsg(err, sizeof err, 0, "ok"), 0);
        ck_assert_str_eq(err, "ok");
}
END_TEST

static char tmpdir[64];

static void tmp_setup(void) {
        strcpy(tmpdir, "/tmp/test_util.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void) {
        rm_rf(tmpdir);
}

START_TEST(test_files) {
        char path[128], dir[128];
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        struct stat st;

        snprintf(path, sizeof path, "%s/f", tmpdir);
        ck_assert_int_eq(write_file_atomic(path, "hello\0world", 11, 0640), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        ck_assert_int_eq(read_file_max(path, 11, &data, &len), 0);
        ck_assert_uint_eq(len, 11);
        ck_assert_int_eq(memcmp(data, "hello\0world", 12), 0);
        free(TAKE_PTR(data));

        /* replace atomically */
        ck_assert_int_eq(write_file_atomic(path, "x", 1, 0600), 0);
        ck_assert_int_eq(read_file_max(path, 100, &data, &len), 0);
        ck_assert_str_eq(data, "x");
        free(TAKE_PTR(data));

        /* size limit */
        ck_assert_int_eq(write_file_atomic(path, "0123456789", 10, 0600), 0);
        ck_assert_int_eq(read_file_max(path, 9, &data, &len), -EFBIG);
        ck_assert_ptr_null(data);
        ck_assert_int_eq(read_file_max(path, 10, &data, &len), 0);
        ck_assert_uint_eq(len, 10);
        free(TAKE_PTR(data));

        /* empty file */
        ck_assert_int_eq(write_file_atomic(path, "", 0, 0600), 0);
        ck_assert_int_eq(read_file_max(path, 0, &data, &len), 0);
        ck_assert_uint_eq(len, 0);
        ck_assert_str_eq(data, "");
        free(TAKE_PTR(data));

        /* a non-regular file is limited while reading */
        ck_assert_int_eq(read_file_max("/dev/zero", 5000, &data, &len), -EFBIG);
        ck_assert_ptr_null(data);

        ck_assert_int_eq(read_file_max(tmpdir, 100, &data, &len), -EISDIR);
        snprintf(dir, sizeof dir, "%s/nope", tmpdir);
        ck_assert_int_eq(read_file_max(dir, 100, &data, &len), -ENOENT);
        snprintf(dir, sizeof dir, "%s/nope/f", tmpdir);
        ck_assert_int_eq(write_file_atomic(dir, "x", 1, 0600), -ENOENT);

        /* no temp files left behind */
        snprintf(dir, sizeof dir, "%s/a/b/c", tmpdir);
        ck_assert_int_eq(mkdir_p(dir, 0700), 0);
        ck_assert_int_eq(mkdir_p(dir, 0700), 0);
        ck_assert_int_eq(stat(dir, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        snprintf(dir, sizeof dir, "%s/a", tmpdir);
        ck_assert_int_eq(rm_rf(dir), 0);
        ck_assert_int_eq(stat(dir, &st), -1);
        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

/* log_lines: one record per line, each with the prefix; nothing for "". */
START_TEST(test_log_lines) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0, lines = 0;
        int fd, saved;

        ck_assert_int_ge(asprintf(&path, "%s/stderr", tmpdir), 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        log_lines(LOG_ERR, "invalid graph: ", "f:1:2: one\nf:3:4: two\n");
        log_lines(LOG_ERR, "never: ", "");
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
        ck_assert_int_eq(read_file_max(path, 4096, &text, &len), 0);
        for (size_t i = 0; i < len; i++)
                lines += text[i] == '\n';
        ck_assert_msg(lines == 2, "want 2 records, got: %s", text);
        ck_assert_ptr_nonnull(strstr(text, "invalid graph: f:1:2: one\n"));
        ck_assert_ptr_nonnull(strstr(text, "invalid graph: f:3:4: two\n"));
        ck_assert_ptr_null(strstr(text, "never"));
}
END_TEST

START_TEST(test_time) {
        _cleanup_free_ char *t = rfc3339_now();
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(strlen(t), 20);
        ck_assert_int_eq(t[4], '-');
        ck_assert_int_eq(t[10], 'T');
        ck_assert_int_eq(t[19], 'Z');
        uint64_t a = now_usec(), b = now_usec();
        ck_assert(b >= a);
}
END_TEST

static Suite *util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_url_list_holds);
        tcase_add_test(tc, test_b64_roundtrip);
        tcase_add_test(tc, test_b64_binary);
        tcase_add_test(tc, test_b64_invalid);
        tcase_add_test(tc, test_urls_parse_split);
        tcase_add_test(tc, test_urls_parse_bad);
        tcase_add_test(tc, test_urls_caps_and_uniq);
        tcase_add_test(tc, test_url_split);
        tcase_add_test(tc, test_host_kinds);
        tcase_add_test(tc, test_hostname_valid);
        tcase_add_test(tc, test_node_hostname);
        tcase_add_test(tc, test_sha256);
        tcase_add_test(tc, test_parse_int64);
        tcase_add_test(tc, test_errmsg);
        tcase_add_test(tc, test_time);
        suite_add_tcase(s, tc);
        TCase *tf = tcase_create("files");
        tcase_add_checked_fixture(tf, tmp_setup, tmp_teardown);
        tcase_add_test(tf, test_files);
        tcase_add_test(tf, test_log_lines);
        suite_add_tcase(s, tf);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(util_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
