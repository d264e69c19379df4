/* httpd.h: a small HTTP listener (libmicrohttpd) run from an sd-event loop:
 * MHD's epoll fd is an io source and its timeout a time source, so no thread
 * of ours and no HTTP parsing of ours. Serves --metrics-listen.
 *
 * Recipe:
 *   1. httpd_new(event, "ADDR:PORT", handler, ud, &h, err, errlen): the
 *      address is bound at once (in use: -EADDRINUSE and err says so);
 *   2. handler(req, path, ud) for every GET/HEAD: answer with httpd_reply(),
 *      now or later (the connection waits, e.g. for an etcd reply or a
 *      long-poll); exactly once per request;
 *   3. httpd_free(h) answers what still waits with 503 and stops. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

struct httpd;
struct httpd_req;

typedef void (*httpd_handler)(struct httpd_req *req, const char *path, void *userdata);

int httpd_new(sd_event *e, const char *listen, httpd_handler handler, void *userdata, struct httpd **ret,
              char *err, size_t errlen);
void httpd_free(struct httpd *h);
/* The value of query argument name ("/status?wait=x"), or NULL. */
const char *httpd_req_arg(struct httpd_req *req, const char *name);
/* Answer: body is copied. extra_header may be NULL ("Name: value"). */
void httpd_reply(struct httpd_req *req, unsigned status, const char *content_type, const char *body,
                 size_t len);
/* Split "ADDR:PORT" ("[v6]:PORT", "*:PORT" for every address). */
int httpd_parse_listen(const char *listen, char **ret_host, char **ret_port, char *err, size_t errlen);
