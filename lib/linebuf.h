/* linebuf.h: cut a child's output into lines, for programs that log what
 * their children write (the agent's exec resources, the supervisor's etcd).
 *
 * Recipe:
 *   1. linebuf_init(&lb, max, on_line, userdata) with max the longest line
 *      delivered whole (at most LINEBUF_MAX); a longer one comes in pieces;
 *   2. when the child's (non-blocking) pipe is readable: linebuf_read(&lb, fd),
 *      or linebuf_feed(&lb, data, n) with bytes read elsewhere;
 *   3. at EOF, linebuf_flush(&lb) delivers a last line without its newline.
 *
 * on_line gets each non-empty line NUL-terminated, without its newline; the
 * buffer is already empty again when it is called. */
#pragma once

#include <stddef.h>

#define LINEBUF_MAX 8191

typedef void (*linebuf_cb)(const char *line, size_t len, void *userdata);

struct linebuf {
        size_t len, max;
        linebuf_cb cb;
        void *userdata;
        char buf[LINEBUF_MAX + 1];
};

void linebuf_init(struct linebuf *lb, size_t max, linebuf_cb cb, void *userdata);
/* Split data into lines; a line reaching max bytes is delivered at once. */
void linebuf_feed(struct linebuf *lb, const char *data, size_t n);
/* Deliver what is buffered as a line (nothing when empty). */
void linebuf_flush(struct linebuf *lb);
/* Read fd until it would block: 1 (more may come), or 0 at EOF or on a read
 * error (the caller flushes and closes). */
int linebuf_read(struct linebuf *lb, int fd);
