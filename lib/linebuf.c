/* linebuf.c: the line splitter behind the logging of children's output
 * (see linebuf.h). */
#include <errno.h>
#include <unistd.h>

#include "linebuf.h"

void linebuf_init(struct linebuf *lb, size_t max, linebuf_cb cb, void *userdata) {
        lb->len = 0;
        lb->max = max == 0 || max > LINEBUF_MAX ? LINEBUF_MAX : max;
        lb->cb = cb;
        lb->userdata = userdata;
        lb->buf[0] = 0;
}

void linebuf_flush(struct linebuf *lb) {
        size_t len = lb->len;

        if (len == 0)
                return;
        lb->buf[len] = 0;
        lb->len = 0;
        lb->cb(lb->buf, len, lb->userdata);
}

void linebuf_feed(struct linebuf *lb, const char *data, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (data[i] == '\n') {
                        linebuf_flush(lb);
                        continue;
                }
                if (lb->len >= lb->max)
                        linebuf_flush(lb);
                lb->buf[lb->len++] = data[i];
        }
}

int linebuf_read(struct linebuf *lb, int fd) {
        char buf[4096];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 1 : 0;
                }
                if (n == 0)
                        return 0;
                linebuf_feed(lb, buf, (size_t)n);
        }
}
