/* test_linebuf.c: unit tests for lib/linebuf.c, the line splitter behind the
 * logging of children's output: lines cut at any byte, empty lines skipped,
 * long lines in pieces, the last line without its newline, a real pipe. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linebuf.h"
#include "macro.h"

struct seen {
        char text[4096]; /* the lines joined by '|' */
        size_t n;
};

static void on_line(const char *line, size_t len, void *userdata) {
        struct seen *s = userdata;

        ck_assert_uint_eq(strlen(line), len); /* NUL-terminated, no newline */
        ck_assert_ptr_null(memchr(line, '\n', len));
        strncat(s->text, line, sizeof s->text - strlen(s->text) - 2);
        strcat(s->text, "|");
        s->n++;
}

/* The same input cut at every byte gives the same lines. */
START_TEST(test_lines_any_cut) {
        static const char in[] = "one\ntwo\n\n\nthree\nlast";
        size_t n = strlen(in);

        for (size_t cut = 0; cut <= n; cut++) {
                struct seen s = {0};
                struct linebuf lb;
                linebuf_init(&lb, 1024, on_line, &s);
                linebuf_feed(&lb, in, cut);
                linebuf_feed(&lb, in + cut, n - cut);
                ck_assert_str_eq(s.text, "one|two|three|");
                linebuf_flush(&lb);
                ck_assert_str_eq(s.text, "one|two|three|last|");
                linebuf_flush(&lb); /* nothing left: nothing delivered */
                ck_assert_uint_eq(s.n, 4);
        }
}
END_TEST

/* Empty input and lone newlines deliver nothing. */
START_TEST(test_lines_empty) {
        struct seen s = {0};
        struct linebuf lb;

        linebuf_init(&lb, 16, on_line, &s);
        linebuf_feed(&lb, "", 0);
        linebuf_feed(&lb, "\n\n\n", 3);
        linebuf_flush(&lb);
        ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* A line longer than max comes in pieces of max bytes; max is capped. */
START_TEST(test_lines_long) {
        struct seen s = {0};
        struct linebuf lb;

        linebuf_init(&lb, 4, on_line, &s);
        linebuf_feed(&lb, "abcdefghij\nxy\n", 14);
        ck_assert_str_eq(s.text, "abcd|efgh|ij|xy|");
        s = (struct seen){0};
        linebuf_init(&lb, 4, on_line, &s);
        linebuf_feed(&lb, "abcd\n", 5); /* exactly max: one line */
        ck_assert_str_eq(s.text, "abcd|");

        linebuf_init(&lb, 1000000, on_line, &s);
        ck_assert_uint_eq(lb.max, LINEBUF_MAX);
        linebuf_init(&lb, 0, on_line, &s);
        ck_assert_uint_eq(lb.max, LINEBUF_MAX);
}
END_TEST

static void count_line(const char *line, size_t len, void *userdata) {
        size_t *v = userdata;

        (void)line;
        ck_assert_uint_le(len, LINEBUF_MAX);
        v[0] += len;
        v[1]++;
}

START_TEST(test_lines_huge) {
        size_t big = 3 * LINEBUF_MAX + 5, v[2] = {0, 0};
        char *data = malloc(big);
        struct linebuf lb;

        ck_assert_ptr_nonnull(data);
        memset(data, 'x', big);
        linebuf_init(&lb, LINEBUF_MAX, count_line, v);
        linebuf_feed(&lb, data, big);
        linebuf_flush(&lb);
        ck_assert_uint_eq(v[0], big);
        ck_assert_uint_eq(v[1], 4);
        free(data);
}
END_TEST

/* linebuf_read: 1 while the writer is open and the pipe empty, 0 at EOF. */
START_TEST(test_lines_pipe) {
        struct seen s = {0};
        struct linebuf lb;
        int fds[2];

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        linebuf_init(&lb, 1024, on_line, &s);
        ck_assert_int_eq(linebuf_read(&lb, fds[0]), 1);
        ck_assert_int_eq(write(fds[1], "a\nb", 3), 3);
        ck_assert_int_eq(linebuf_read(&lb, fds[0]), 1);
        ck_assert_str_eq(s.text, "a|");
        ck_assert_int_eq(write(fds[1], "c\n", 2), 2);
        close(fds[1]);
        ck_assert_int_eq(linebuf_read(&lb, fds[0]), 0);
        ck_assert_str_eq(s.text, "a|bc|");
        close(fds[0]);
        ck_assert_int_eq(linebuf_read(&lb, fds[0]), 0); /* a closed fd: an error, reported as the end */
}
END_TEST

static Suite *linebuf_suite(void) {
        Suite *s = suite_create("linebuf");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_lines_any_cut);
        tcase_add_test(tc, test_lines_empty);
        tcase_add_test(tc, test_lines_long);
        tcase_add_test(tc, test_lines_huge);
        tcase_add_test(tc, test_lines_pipe);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(linebuf_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
