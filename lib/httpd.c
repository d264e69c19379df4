/* httpd.c: libmicrohttpd inside an sd-event loop (see httpd.h). MHD runs
 * without a thread of its own (external epoll mode): its epoll fd is watched
 * by sd-event, MHD_run() is called when it is readable or when MHD's own
 * timeout passes. A request answered later is suspended meanwhile. */
#include <microhttpd.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd.h"
#include "log.h"
#include "macro.h"

struct httpd_req {
        struct httpd *h;
        struct MHD_Connection *con;
        struct MHD_Response *resp;
        unsigned status;
        bool handled, suspended, answered, done;
        struct httpd_req *next, *prev;
};

struct httpd {
        sd_event *event;
        struct MHD_Daemon *d;
        sd_event_source *io, *timer;
        httpd_handler handler;
        void *userdata;
        struct httpd_req *reqs;
};

static void rearm(struct httpd *h);

static void run(struct httpd *h) {
        MHD_run(h->d);
        rearm(h);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        run(userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        run(userdata);
        return 0;
}

/* Arm the time source for MHD's next timeout, or turn it off. */
static void rearm(struct httpd *h) {
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t now;

        if (MHD_get_timeout(h->d, &ms) != MHD_YES) {
                sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
                return;
        }
        sd_event_now(h->event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(h->timer, now + ms * USEC_PER_MSEC);
        sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static void req_unlink(struct httpd_req *r) {
        if (r->prev)
                r->prev->next = r->next;
        else if (r->h->reqs == r)
                r->h->reqs = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->next = r->prev = NULL;
}

static enum MHD_Result queue(struct httpd_req *r) {
        enum MHD_Result ret = MHD_queue_response(r->con, r->status, r->resp);
        MHD_destroy_response(r->resp);
        r->resp = NULL;
        r->answered = true;
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        struct httpd *h = cls;
        struct httpd_req *r = *con_cls;

        if (!r) {
                if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD)) {
                        static const char msg[] = "only GET and HEAD\n";
                        struct MHD_Response *resp = MHD_create_response_from_buffer(
                            sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
                        enum MHD_Result ret = MHD_queue_response(con, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
                        MHD_destroy_response(resp);
                        return ret;
                }
                r = calloc(1, sizeof *r);
                if (!r)
                        return MHD_NO;
                r->h = h;
                r->con = con;
                r->next = h->reqs;
                if (h->reqs)
                        h->reqs->prev = r;
                h->reqs = r;
                *con_cls = r;
                return MHD_YES; /* headers only so far; the handler runs on the next call */
        }
        if (*upload_data_size) {
                *upload_data_size = 0; /* GET bodies are ignored */
                return MHD_YES;
        }
        if (r->resp)
                return queue(r);
        if (r->handled)
                return MHD_YES; /* still waiting (a resumed call without an answer cannot happen) */
        r->handled = true;
        h->handler(r, url, h->userdata);
        if (r->resp)
                return queue(r);
        r->suspended = true;
        MHD_suspend_connection(con);
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        struct httpd_req *r = *con_cls;

        if (!r)
                return;
        *con_cls = NULL;
        req_unlink(r);
        if (r->resp)
                MHD_destroy_response(r->resp);
        if (!r->answered && r->handled && !r->resp && !r->done) {
                /* the handler still owes an answer: let it find a dead request */
                r->con = NULL;
                r->h = NULL;
                return;
        }
        free(r);
}

const char *httpd_req_arg(struct httpd_req *req, const char *name) {
        if (!req->con)
                return NULL;
        return MHD_lookup_connection_value(req->con, MHD_GET_ARGUMENT_KIND, name);
}

void httpd_reply(struct httpd_req *r, unsigned status, const char *content_type, const char *body,
                 size_t len) {
        r->done = true;
        if (!r->con) { /* the connection went away while we worked */
                free(r);
                return;
        }
        r->resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!r->resp) {
                r->resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
        r->status = status;
        if (content_type)
                MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (r->suspended) {
                r->suspended = false;
                MHD_resume_connection(r->con);
                /* MHD must run to send it: its ITC wakes the epoll fd, and this makes sure */
                sd_event_source_set_time(r->h->timer, 0);
                sd_event_source_set_enabled(r->h->timer, SD_EVENT_ONESHOT);
        }
}

int httpd_parse_listen(const char *listen, char **ret_host, char **ret_port, char *err, size_t errlen) {
        const char *colon, *hs, *he;
        char *end;
        long port;

        if (!listen || !*listen) {
                snprintf(err, errlen, "empty listen address (want ADDR:PORT)");
                return -EINVAL;
        }
        colon = strrchr(listen, ':');
        if (!colon || !colon[1]) {
                snprintf(err, errlen, "listen address '%s' has no port (want ADDR:PORT)", listen);
                return -EINVAL;
        }
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || port < 1 || port > 65535) {
                snprintf(err, errlen, "bad port in listen address '%s' (want 1..65535)", listen);
                return -EINVAL;
        }
        hs = listen;
        he = colon;
        if (*hs == '[') {
                if (he - hs < 3 || he[-1] != ']') {
                        snprintf(err, errlen, "bad IPv6 address in '%s' (want [ADDR]:PORT)", listen);
                        return -EINVAL;
                }
                hs++;
                he--;
        } else if (memchr(hs, ':', (size_t)(he - hs))) {
                snprintf(err, errlen, "IPv6 address in '%s' needs brackets ([ADDR]:PORT)", listen);
                return -EINVAL;
        }
        if (he == hs) {
                snprintf(err, errlen, "listen address '%s' has no host (want ADDR:PORT, '*:PORT' for all)",
                         listen);
                return -EINVAL;
        }
        char *host = strndup(hs, (size_t)(he - hs));
        char *p = strdup(colon + 1);
        if (!host || !p) {
                free(host);
                free(p);
                return -ENOMEM;
        }
        *ret_host = host;
        *ret_port = p;
        return 0;
}

/* Bind and listen ourselves, so that an address in use is our clear error. */
static int open_listener(const char *addr, char *err, size_t errlen) {
        _cleanup_free_ char *host = NULL, *port = NULL;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                        *ai = NULL;
        int r, fd = -1, one = 1;

        r = httpd_parse_listen(addr, &host, &port, err, errlen);
        if (r < 0)
                return r;
        r = getaddrinfo(streq(host, "*") ? NULL : host, port, &hints, &ai);
        if (r != 0) {
                snprintf(err, errlen, "cannot resolve listen address '%s': %s", addr, gai_strerror(r));
                return -EINVAL;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot create a socket for '%s': %s", addr, strerror(errno));
                freeaddrinfo(ai);
                return r;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot listen on '%s': %s%s", addr, strerror(errno),
                         r == -EADDRINUSE ? " (another program, or another mgmt daemon, holds it)" : "");
                close(fd);
                freeaddrinfo(ai);
                return r;
        }
        freeaddrinfo(ai);
        return fd;
}

int httpd_new(sd_event *e, const char *listen, httpd_handler handler, void *userdata, struct httpd **ret,
              char *err, size_t errlen) {
        struct httpd *h;
        const union MHD_DaemonInfo *info;
        int fd, r;

        fd = open_listener(listen, err, errlen);
        if (fd < 0)
                return fd;
        h = calloc(1, sizeof *h);
        if (!h) {
                close(fd);
                return -ENOMEM;
        }
        h->event = sd_event_ref(e);
        h->handler = handler;
        h->userdata = userdata;
        h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, h,
                                MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)64, MHD_OPTION_END);
        if (!h->d) {
                close(fd);
                snprintf(err, errlen, "cannot start the HTTP listener on '%s'", listen);
                httpd_free(h);
                return -EIO;
        }
        info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0) {
                snprintf(err, errlen, "the HTTP listener has no epoll fd");
                httpd_free(h);
                return -EIO;
        }
        r = sd_event_add_io(e, &h->io, info->epoll_fd, EPOLLIN, on_io, h);
        if (r >= 0)
                r = sd_event_add_time(e, &h->timer, CLOCK_MONOTONIC, 0, 0, on_timer, h);
        if (r < 0) {
                snprintf(err, errlen, "cannot watch the HTTP listener: %s", strerror(-r));
                httpd_free(h);
                return r;
        }
        (void)sd_event_source_set_description(h->io, "httpd-io");
        (void)sd_event_source_set_description(h->timer, "httpd-timer");
        rearm(h);
        *ret = h;
        return 0;
}

void httpd_free(struct httpd *h) {
        static const char msg[] = "shutting down\n";

        if (!h)
                return;
        if (h->d) {
                /* MHD refuses to stop with suspended connections: answer them */
                for (struct httpd_req *r = h->reqs; r; r = r->next)
                        if (r->suspended)
                                httpd_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", msg,
                                            sizeof msg - 1);
                MHD_run(h->d);
                MHD_stop_daemon(h->d);
        }
        sd_event_source_disable_unref(h->io);
        sd_event_source_disable_unref(h->timer);
        sd_event_unref(h->event);
        free(h);
}
