/* test_etcd_auth.c: unit tests for lib/etcd_auth.c: password files (mode,
 * empty, newline, size) and which etcd errors mean "renew the token". */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd.h"
#include "macro.h"

static char dir[] = "/tmp/mgmt-test-auth-XXXXXX";

static void tmp_setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void tmp_teardown(void) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(dir, sizeof dir, "%s", "/tmp/mgmt-test-auth-XXXXXX");
}

/* Write data (len bytes) to dir/name with mode; returns the path. */
static char *put(const char *name, const char *data, size_t len, mode_t mode) {
        char *p = NULL;
        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
        close(fd);
        ck_assert_int_eq(chmod(p, mode), 0);
        return p;
}

START_TEST(test_password_file) {
        static const struct {
                const char *data;
                size_t len;
                mode_t mode;
                int r;
                const char *want; /* password, or a piece of the error */
        } t[] = {
            {"s3cret", 6, 0600, 0, "s3cret"},
            {"s3cret\n", 7, 0600, 0, "s3cret"},
            {"s3cret\n\n", 8, 0600, 0, "s3cret\n"}, /* only one newline is the file's */
            {"with space \n", 12, 0400, 0, "with space "},
            {"s3cret\n", 7, 0644, -EPERM, "accessible by group or others (mode 0644)"},
            {"s3cret\n", 7, 0640, -EPERM, "chmod 600"},
            {"s3cret\n", 7, 0604, -EPERM, "mode 0604"},
            {"", 0, 0600, -EINVAL, "is empty"},
            {"\n", 1, 0600, -EINVAL, "is empty"},
            {"a\0b", 3, 0600, -EINVAL, "NUL byte"},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *p = put("pw", t[i].data, t[i].len, t[i].mode);
                _cleanup_password_ char *pw = NULL;
                char err[300] = "";
                int r = etcd_password_file_read(p, &pw, err, sizeof err);
                ck_assert_msg(r == t[i].r, "case %zu: %d (%s)", i, r, err);
                if (r == 0)
                        ck_assert_str_eq(pw, t[i].want);
                else {
                        ck_assert_ptr_null(pw);
                        ck_assert_msg(strstr(err, t[i].want), "case %zu: %s", i, err);
                        ck_assert_msg(strstr(err, p), "case %zu names no file: %s", i, err);
                        ck_assert_msg(!strstr(err, "s3cret"), "case %zu shows the password: %s", i, err);
                }
        }
}
END_TEST

START_TEST(test_password_file_edges) {
        _cleanup_password_ char *pw = NULL;
        char err[300];
        _cleanup_free_ char *missing = NULL;

        ck_assert_int_ge(asprintf(&missing, "%s/absent", dir), 0);
        ck_assert_int_eq(etcd_password_file_read(missing, &pw, err, sizeof err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err, "absent"));
        ck_assert_int_eq(etcd_password_file_read("", &pw, err, sizeof err), -EINVAL);

        /* a directory with a private mode is still not a password file */
        ck_assert_int_eq(chmod(dir, 0700), 0);
        _cleanup_free_ char *sub = NULL;
        ck_assert_int_ge(asprintf(&sub, "%s/d", dir), 0);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        ck_assert_int_eq(etcd_password_file_read(sub, &pw, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "not a regular file"));

        /* 4096 bytes (plus a newline) is the most; one more is refused */
        char big[4098];
        memset(big, 'x', sizeof big);
        big[4096] = '\n';
        _cleanup_free_ char *ok = put("ok", big, 4097, 0600);
        ck_assert_int_eq(etcd_password_file_read(ok, &pw, err, sizeof err), 0);
        ck_assert_uint_eq(strlen(pw), 4096);
        _cleanup_free_ char *huge = put("huge", big, 4098, 0600);
        char *pw2 = NULL;
        ck_assert_int_eq(etcd_password_file_read(huge, &pw2, err, sizeof err), -E2BIG);
        ck_assert_ptr_null(pw2);
}
END_TEST

/* A FIFO (or a device) named as the password file is refused at once: the
 * open must not wait for a writer, so the check on the opened file runs. */
START_TEST(test_password_file_fifo) {
        _cleanup_password_ char *pw = NULL;
        _cleanup_free_ char *fifo = NULL;
        char err[300] = "";

        ck_assert_int_ge(asprintf(&fifo, "%s/fifo", dir), 0);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        alarm(3); /* without O_NONBLOCK the open blocks: SIGALRM fails the test */
        ck_assert_int_eq(etcd_password_file_read(fifo, &pw, err, sizeof err), -EINVAL);
        alarm(0);
        ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
        ck_assert_ptr_null(pw);
}
END_TEST

/* What the 3.4 and 3.5 gateways answer (seen on the wire), and what they do not mean. */
START_TEST(test_auth_renewal) {
        ck_assert(etcd_error_is_auth_renewal(16, "etcdserver: invalid auth token"));
        ck_assert(etcd_error_is_auth_renewal(16, ""));
        ck_assert(etcd_error_is_auth_renewal(3, "etcdserver: user name is empty"));
        ck_assert(etcd_error_is_auth_renewal(
            0, "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"));
        ck_assert(etcd_error_is_auth_renewal(0, "rpc error: code = InvalidArgument desc = etcdserver: user "
                                                "name is empty"));
        ck_assert(!etcd_error_is_auth_renewal(7, "etcdserver: permission denied"));
        ck_assert(!etcd_error_is_auth_renewal(
            3, "etcdserver: authentication failed, invalid user ID or password"));
        ck_assert(!etcd_error_is_auth_renewal(9, "etcdserver: authentication is not enabled"));
        ck_assert(!etcd_error_is_auth_renewal(14, "etcdserver: no leader"));
        ck_assert(!etcd_error_is_auth_renewal(0, NULL));
        ck_assert(!etcd_error_is_auth_renewal(0, "rpc error: code = PermissionDenied desc = x"));
}
END_TEST

static Suite *auth_suite(void) {
        Suite *s = suite_create("etcd_auth");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_auth_renewal);
        suite_add_tcase(s, tc);
        TCase *tf = tcase_create("files");
        tcase_add_checked_fixture(tf, tmp_setup, tmp_teardown);
        tcase_add_test(tf, test_password_file);
        tcase_add_test(tf, test_password_file_edges);
        tcase_add_test(tf, test_password_file_fifo);
        suite_add_tcase(s, tf);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(auth_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
