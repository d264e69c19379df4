/* etcd.c: the etcd v3 JSON-gateway client. libcurl multi is driven by
 * sd-event io and timer sources (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION), so
 * requests and watch streams never block the loop. Requests fail over to the
 * next endpoint on transport errors; watches reconnect with backoff and
 * resume from the revision after the last event delivered. */
#include <curl/curl.h>
#include <stdio.h>
#include <sys/epoll.h>

#include "etcd.h"
#include "log.h"
#include "util.h"

#define MAX_REPLY (64u << 20)     /* a unary reply larger than this is refused */
#define MAX_WATCH_MSG (16u << 20) /* one watch message */

struct etcd_req;

struct etcd_client {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        char **endpoints;
        size_t cur;
        char *cert, *key, *ca;
        uint64_t timeout_usec;
        bool pinned;
        struct etcd_req *reqs; /* in flight, for cleanup */
        struct etcd_watch *watches;
};

struct etcd_req {
        struct etcd_client *c;
        struct etcd_req *prev, *next;
        CURL *easy;
        struct curl_slist *headers;
        char *path, *body;
        char *fixed; /* endpoint of etcd_call_at/etcd_get, no failover */
        uint64_t timeout_usec; /* 0: the client's */
        bool get;
        char *buf;
        size_t len, cap;
        size_t ep;
        size_t tries;
        etcd_cb cb;
        void *ud;
        struct etcd_watch *watch;
        bool stream;     /* a watch stream (its watch may be gone) */
        bool pending;    /* stream data arrived that watch_dispatch has not parsed */
        bool delivering; /* inside watch callbacks: must not be removed now */
        size_t scanned;  /* bytes of buf already searched for a message end */
        etcd_data_cb data; /* etcd_stream_raw: bytes go here, not into buf */
        void *data_ud;
        size_t delivered;  /* bytes given to data */
        char errbuf[CURL_ERROR_SIZE];
};

struct etcd_watch {
        struct etcd_client *c;
        struct etcd_watch *prev, *next;
        char *key;
        bool prefix;
        int64_t next_rev;
        etcd_watch_cb cb;
        void *ud;
        struct etcd_req *req;
        sd_event_source *retry;
        unsigned failures;
        bool established;
        bool dead; /* compacted or canceled for good */
};

static int ensure_curl(void) {
        static bool done;
        if (!done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                        return -EIO;
                done = true;
        }
        return 0;
}

static void set_err(struct etcd_error *err, int code, const char *fmt, ...) _printf_(3, 4);
static void set_err(struct etcd_error *err, int code, const char *fmt, ...) {
        va_list ap;
        if (!err)
                return;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
}

/* ---------------- sd-event <-> curl multi glue ---------------- */

static void process_done(struct etcd_client *c);
static void watch_dispatch(struct etcd_client *c);

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct etcd_client *c = userdata;
        int flags = 0, running;

        if (revents & EPOLLIN)
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(c->multi, fd, flags, &running);
        watch_dispatch(c);
        process_done(c);
        return 0;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
        struct etcd_client *c = userp;
        sd_event_source *src = socketp;
        uint32_t ev = 0;

        if (what == CURL_POLL_REMOVE) {
                if (src) {
                        sd_event_source_disable_unref(src);
                        curl_multi_assign(c->multi, s, NULL);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                ev |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                ev |= EPOLLOUT;
        if (!src) {
                if (sd_event_add_io(c->event, &src, s, ev, io_cb, c) < 0)
                        return -1;
                (void) sd_event_source_set_description(src, "curl-socket");
                curl_multi_assign(c->multi, s, src);
        } else {
                sd_event_source_set_io_events(src, ev);
                sd_event_source_set_enabled(src, SD_EVENT_ON);
        }
        return 0;
}

static int timer_fired(sd_event_source *s, uint64_t usec, void *userdata) {
        struct etcd_client *c = userdata;
        int running;
        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        watch_dispatch(c);
        process_done(c);
        return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
        struct etcd_client *c = userp;
        uint64_t now;

        if (timeout_ms < 0) {
                sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return 0;
        }
        sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(c->timer, now + (uint64_t) timeout_ms * USEC_PER_MSEC);
        sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        return 0;
}

/* ---------------- client ---------------- */

int etcd_client_new(sd_event *event, char *const *endpoints, const struct etcd_tls *tls,
                    struct etcd_client **ret) {
        struct etcd_client *c;
        int r;

        if (ensure_curl() < 0)
                return -EIO;
        if (strv_length(endpoints) == 0)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->timeout_usec = 5 * USEC_PER_SEC;
        if (event)
                c->event = sd_event_ref(event);
        else if ((r = sd_event_new(&c->event)) < 0)
                goto fail;
        c->endpoints = strv_copy(endpoints);
        if (tls) {
                c->cert = tls->cert_file ? strdup(tls->cert_file) : NULL;
                c->key = tls->key_file ? strdup(tls->key_file) : NULL;
                c->ca = tls->ca_file ? strdup(tls->ca_file) : NULL;
        }
        c->multi = curl_multi_init();
        if (!c->endpoints || !c->multi) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, timer_fired, c);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->timer, "curl-timer");
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        *ret = c;
        return 0;
fail:
        etcd_client_free(c);
        return r;
}

static void req_free(struct etcd_req *q);

void etcd_client_free(struct etcd_client *c) {
        if (!c)
                return;
        while (c->watches)
                etcd_watch_free(c->watches);
        while (c->reqs)
                req_free(c->reqs);
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        strv_free(c->endpoints);
        free(c->cert);
        free(c->key);
        free(c->ca);
        free(c);
}

int etcd_client_set_endpoints(struct etcd_client *c, char *const *endpoints) {
        char **nv;
        const char *cur = c->endpoints[c->cur];
        size_t idx = 0;

        if (strv_length(endpoints) == 0)
                return -EINVAL;
        nv = strv_copy(endpoints);
        if (!nv)
                return -ENOMEM;
        for (size_t i = 0; nv[i]; i++)
                if (streq(nv[i], cur))
                        idx = i;
        /* in-flight requests keep their index; clamp on use */
        strv_free(c->endpoints);
        c->endpoints = nv;
        c->cur = idx;
        return 0;
}

char *const *etcd_client_endpoints(struct etcd_client *c) {
        return c->endpoints;
}

const char *etcd_client_current_endpoint(struct etcd_client *c) {
        return c->endpoints[c->cur];
}

void etcd_client_set_timeout(struct etcd_client *c, uint64_t usec) {
        c->timeout_usec = usec;
}

void etcd_client_set_pinned(struct etcd_client *c, bool pinned) {
        c->pinned = pinned;
}

sd_event *etcd_client_event(struct etcd_client *c) {
        return c->event;
}

/* ---------------- requests ---------------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);

static void req_free(struct etcd_req *q) {
        if (!q)
                return;
        if (q->easy) {
                curl_multi_remove_handle(q->c->multi, q->easy);
                curl_easy_cleanup(q->easy);
        }
        if (q->prev)
                q->prev->next = q->next;
        else if (q->c->reqs == q)
                q->c->reqs = q->next;
        if (q->next)
                q->next->prev = q->prev;
        curl_slist_free_all(q->headers);
        free(q->path);
        free(q->body);
        free(q->fixed);
        free(q->buf);
        free(q);
}

static const char *req_endpoint(struct etcd_req *q) {
        size_t n = strv_length(q->c->endpoints);
        if (q->fixed)
                return q->fixed;
        if (q->ep >= n)
                q->ep = 0;
        return q->c->endpoints[q->ep];
}

/* (Re)start the transfer on the request's current endpoint. */
static int req_start(struct etcd_req *q) {
        struct etcd_client *c = q->c;
        char url[1024];

        if (q->easy) {
                curl_multi_remove_handle(c->multi, q->easy);
                curl_easy_cleanup(q->easy);
        }
        q->easy = curl_easy_init();
        if (!q->easy)
                return -ENOMEM;
        q->len = 0;
        snprintf(url, sizeof url, "%s%s", req_endpoint(q), q->path);
        curl_easy_setopt(q->easy, CURLOPT_URL, url);
        curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
        curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
        curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
        curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(q->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(q->easy, CURLOPT_TCP_KEEPIDLE, 5L);
        curl_easy_setopt(q->easy, CURLOPT_TCP_KEEPINTVL, 2L);
        curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS,
                         (long) (c->timeout_usec < 2 * USEC_PER_SEC ? c->timeout_usec / 1000 : 2000));
        if (q->data) {
                /* a long stream: no overall limit, but abort when it stalls */
                long stall = (long) (c->timeout_usec / USEC_PER_SEC);
                curl_easy_setopt(q->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
                curl_easy_setopt(q->easy, CURLOPT_LOW_SPEED_TIME, stall > 0 ? stall : 1L);
        } else if (!q->stream)
                curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS,
                                 (long) ((q->timeout_usec ? q->timeout_usec : c->timeout_usec) / 1000));
        if (!q->get) {
                curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
                curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body);
                curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(q->body));
                curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers);
        }
        if (c->cert)
                curl_easy_setopt(q->easy, CURLOPT_SSLCERT, c->cert);
        if (c->key)
                curl_easy_setopt(q->easy, CURLOPT_SSLKEY, c->key);
        if (c->ca)
                curl_easy_setopt(q->easy, CURLOPT_CAINFO, c->ca);
        if (curl_multi_add_handle(c->multi, q->easy) != CURLM_OK)
                return -EIO;
        return 0;
}

/* Create and start a request; body is consumed. endpoint NULL: the client's
 * endpoints with failover; watch non-NULL: a stream for that watch. */
static int req_new_timeout(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, bool get,
                           struct etcd_watch *watch, uint64_t timeout_usec, etcd_cb cb, void *userdata,
                           struct etcd_req **ret) {
        struct etcd_req *q = calloc(1, sizeof *q);
        int r;

        if (!q) {
                json_decref(body);
                return -ENOMEM;
        }
        q->c = c;
        q->timeout_usec = timeout_usec;
        q->path = strdup(path);
        q->get = get;
        q->ep = c->cur;
        q->watch = watch;
        q->stream = watch != NULL;
        q->cb = cb;
        q->ud = userdata;
        if (endpoint)
                q->fixed = strdup(endpoint);
        if (!get) {
                q->body = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
                q->headers = curl_slist_append(NULL, "Content-Type: application/json");
                q->headers = curl_slist_append(q->headers, "Expect:");
        }
        json_decref(body);
        q->next = c->reqs;
        if (c->reqs)
                c->reqs->prev = q;
        c->reqs = q;
        if (!q->path || (!get && (!q->body || !q->headers)) || (endpoint && !q->fixed)) {
                req_free(q);
                return -ENOMEM;
        }
        r = req_start(q);
        if (r < 0) {
                req_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

static int req_new(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, bool get,
                   struct etcd_watch *watch, etcd_cb cb, void *userdata, struct etcd_req **ret) {
        return req_new_timeout(c, endpoint, path, body, get, watch, 0, cb, userdata, ret);
}

int etcd_call(struct etcd_client *c, const char *path, json_t *body, etcd_cb cb, void *userdata) {
        struct etcd_req *q;
        return req_new(c, NULL, path, body, false, NULL, cb, userdata, &q);
}

int etcd_call_at(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, etcd_cb cb,
                 void *userdata) {
        struct etcd_req *q;
        return req_new(c, endpoint, path, body, false, NULL, cb, userdata, &q);
}

int etcd_call_at_timeout(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                         uint64_t timeout_usec, etcd_cb cb, void *userdata) {
        struct etcd_req *q;
        return req_new_timeout(c, endpoint, path, body, false, NULL, timeout_usec, cb, userdata, &q);
}

int etcd_get(struct etcd_client *c, const char *endpoint, const char *path, etcd_cb cb, void *userdata) {
        struct etcd_req *q;
        return req_new(c, endpoint, path, NULL, true, NULL, cb, userdata, &q);
}

int etcd_stream_raw(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                    etcd_data_cb data_cb, void *data_userdata, etcd_cb done_cb, void *userdata) {
        struct etcd_req *q = calloc(1, sizeof *q);
        int r;

        if (!q) {
                json_decref(body);
                return -ENOMEM;
        }
        /* req_new starts the transfer; data must be set before: build by hand */
        q->c = c;
        q->path = strdup(path);
        q->ep = c->cur;
        q->cb = done_cb;
        q->ud = userdata;
        q->data = data_cb;
        q->data_ud = data_userdata;
        if (endpoint)
                q->fixed = strdup(endpoint);
        q->body = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
        q->headers = curl_slist_append(NULL, "Content-Type: application/json");
        q->headers = curl_slist_append(q->headers, "Expect:");
        json_decref(body);
        q->next = c->reqs;
        if (c->reqs)
                c->reqs->prev = q;
        c->reqs = q;
        if (!q->path || !q->body || !q->headers || (endpoint && !q->fixed)) {
                req_free(q);
                return -ENOMEM;
        }
        r = req_start(q);
        if (r < 0)
                req_free(q);
        return r;
}

static void watch_stream_ended(struct etcd_watch *w, const char *why);

/* libcurl calls this with each piece of a reply. It only buffers: watch
 * callbacks run later from watch_dispatch, outside every libcurl callback,
 * where they may start, stop and free requests and watches. */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct etcd_req *q = userdata;
        size_t n = size * nmemb, limit = q->watch ? MAX_WATCH_MSG : MAX_REPLY;

        if (q->data) {
                if (q->data(ptr, n, q->data_ud) < 0)
                        return 0; /* the receiver refused: CURLE_WRITE_ERROR */
                q->delivered += n;
                return n;
        }
        if (q->len + n + 1 > limit)
                return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        if (q->len + n + 1 > q->cap) {
                size_t nc = q->cap ? q->cap : 4096;
                while (nc < q->len + n + 1)
                        nc *= 2;
                char *nb = realloc(q->buf, nc);
                if (!nb)
                        return 0;
                q->buf = nb;
                q->cap = nc;
        }
        memcpy(q->buf + q->len, ptr, n);
        q->len += n;
        q->buf[q->len] = 0;
        if (q->stream) {
                if (!q->watch)
                        return 0; /* nobody listens any more */
                q->pending = true;
        }
        return n;
}

/* Decode a finished unary reply into JSON or an error. */
static json_t *req_decode(struct etcd_req *q, long status, struct etcd_error *err) {
        json_error_t jerr;
        json_t *j;

        j = q->len ? json_loadb(q->buf, q->len, 0, &jerr) : NULL;
        if (status == 200) {
                if (!j)
                        set_err(err, ETCD_ERR_PROTOCOL, "invalid JSON from %s%s: %s", req_endpoint(q), q->path,
                                q->len ? jerr.text : "empty reply");
                else if (!json_is_object(j)) {
                        set_err(err, ETCD_ERR_PROTOCOL, "reply from %s%s is not a JSON object", req_endpoint(q),
                                q->path);
                        json_decref(j);
                        j = NULL;
                }
                return j;
        }
        if (j && etcd_parse_error(j, err) == 1) {
                json_decref(j);
                return NULL;
        }
        if (status == 404 && startswith(q->path, "/v3/"))
                /* a peer listener answers 404 to the gateway's paths */
                set_err(err, ETCD_ERR_HTTP,
                        "HTTP 404 from %s%s: this looks like a peer URL (port 2380?); --seeds takes client URLs",
                        req_endpoint(q), q->path);
        else
                set_err(err, ETCD_ERR_HTTP, "HTTP %ld from %s%s", status, req_endpoint(q), q->path);
        json_decref(j);
        return NULL;
}

/* A failed transfer moves to the next endpoint unless all were tried. */
static bool req_failover(struct etcd_req *q) {
        struct etcd_client *c = q->c;
        size_t n = strv_length(c->endpoints);

        if (q->fixed || c->pinned || q->tries + 1 >= n)
                return false;
        q->tries++;
        q->ep = (q->ep + 1) % n;
        c->cur = q->ep;
        log_debug("etcd: trying next endpoint %s", c->endpoints[q->ep]);
        return req_start(q) >= 0;
}

static bool watch_on_data(struct etcd_watch *w);

/* End a stream that we decided to stop (its watch freed, over, or a bad
 * message): no transport failure, so the endpoint is not rotated. */
static void watch_abort(struct etcd_req *q) {
        struct etcd_watch *w = q->watch;

        if (w)
                w->req = NULL;
        req_free(q);
        if (w)
                watch_stream_ended(w, "stream stopped after an error message");
}

/* Deliver what a stream has buffered. Returns false when the stream ended
 * here (its watch freed by a callback, over, or a bad message): q is gone. */
static bool stream_deliver(struct etcd_req *q) {
        q->pending = false;
        if (q->watch && watch_on_data(q->watch) && q->watch)
                return true;
        watch_abort(q);
        return false;
}

/* Deliver buffered watch messages, one stream at a time, starting over after
 * each because a callback may free or create any request. */
static void watch_dispatch(struct etcd_client *c) {
        struct etcd_req *q;

again:
        for (q = c->reqs; q; q = q->next)
                if (q->stream && q->pending) {
                        (void) stream_deliver(q);
                        goto again;
                }
}

static void req_done(struct etcd_req *q, CURLcode res) {
        struct etcd_error err = { 0 };
        long status = 0;
        json_t *reply = NULL;

        if (q->stream && !q->watch) {
                req_free(q);
                return;
        }
        /* messages that arrived with the end of the stream come first */
        if (q->watch && q->pending && !stream_deliver(q))
                return;
        if (q->watch) {
                struct etcd_watch *w = q->watch;
                char why[300];
                if (res != CURLE_OK)
                        snprintf(why, sizeof why, "%s: %s", req_endpoint(q),
                                 q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
                else {
                        curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
                        snprintf(why, sizeof why, "%s: stream closed (HTTP %ld)", req_endpoint(q), status);
                }
                w->req = NULL;
                if (res != CURLE_OK && !q->fixed && !q->c->pinned)
                        q->c->cur = (q->ep + 1) % strv_length(q->c->endpoints);
                req_free(q);
                watch_stream_ended(w, why);
                return;
        }
        if (q->data) {
                /* a raw stream cannot resume: fail over only before its first byte */
                if (res != CURLE_OK && q->delivered == 0 && req_failover(q))
                        return;
                if (res == CURLE_WRITE_ERROR)
                        set_err(&err, ETCD_ERR_PROTOCOL, "stream from %s%s stopped by its receiver", req_endpoint(q),
                                q->path);
                else if (res != CURLE_OK)
                        set_err(&err, ETCD_ERR_TRANSPORT, "stream from %s%s broke: %s", req_endpoint(q), q->path,
                                q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
                else if (curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status), status != 200)
                        set_err(&err, ETCD_ERR_HTTP, "HTTP %ld from %s%s", status, req_endpoint(q), q->path);
                etcd_cb cb = q->cb;
                void *ud = q->ud;
                struct etcd_client *c = q->c;
                bool failed = res != CURLE_OK || status != 200;
                req_free(q);
                if (cb)
                        cb(c, failed ? &err : NULL, NULL, ud);
                return;
        }
        if (res != CURLE_OK) {
                if (req_failover(q))
                        return;
                set_err(&err, ETCD_ERR_TRANSPORT, "cannot reach etcd at %s: %s", req_endpoint(q),
                        q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
        } else {
                curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
                reply = req_decode(q, status, &err);
                /* etcd "Unavailable" (no leader, stopping): another member may answer */
                if (!reply && err.code == 14 && req_failover(q))
                        return;
                /* a call pinned to one endpoint says nothing about the others */
                if (reply && !q->fixed)
                        q->c->cur = q->ep < strv_length(q->c->endpoints) ? q->ep : 0;
        }
        etcd_cb cb = q->cb;
        void *ud = q->ud;
        struct etcd_client *c = q->c;
        req_free(q);
        if (cb)
                cb(c, reply ? NULL : &err, reply, ud);
        json_decref(reply);
}

static void process_done(struct etcd_client *c) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(c->multi, &left))) {
                if (m->msg != CURLMSG_DONE)
                        continue;
                struct etcd_req *q = NULL;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &q);
                if (q)
                        req_done(q, m->data.result);
        }
}

struct sync_state {
        bool done;
        json_t *reply;
        struct etcd_error err;
};

static void sync_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct sync_state *s = ud;
        s->done = true;
        if (err)
                s->err = *err;
        else
                s->reply = json_incref(reply);
}

int etcd_run_until(struct etcd_client *c, const bool *done, uint64_t timeout_usec) {
        uint64_t deadline = timeout_usec == UINT64_MAX ? UINT64_MAX : now_usec() + timeout_usec;
        while (!*done) {
                uint64_t now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                int r = sd_event_run(c->event, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0)
                        return r;
        }
        return 0;
}

int etcd_call_sync(struct etcd_client *c, const char *path, json_t *body, json_t **ret_reply,
                   struct etcd_error *err) {
        struct sync_state s = { 0 };
        int r = etcd_call(c, path, body, sync_cb, &s);
        if (r < 0) {
                set_err(err, ETCD_ERR_TRANSPORT, "cannot start request: %s", strerror(-r));
                return -EIO;
        }
        r = etcd_run_until(c, &s.done, UINT64_MAX);
        if (r < 0) {
                set_err(err, ETCD_ERR_TRANSPORT, "event loop failed: %s", strerror(-r));
                return -EIO;
        }
        if (!s.reply) {
                if (err)
                        *err = s.err;
                return -EIO;
        }
        if (ret_reply)
                *ret_reply = s.reply;
        else
                json_decref(s.reply);
        return 0;
}

/* ---------------- watches ---------------- */

static char *prefix_end(const char *key);

static int watch_connect(struct etcd_watch *w) {
        _cleanup_free_ char *k = b64_encode(w->key, strlen(w->key));
        _cleanup_free_ char *end = NULL, *endb = NULL;
        json_t *cr, *body;
        struct etcd_req *q;
        char rev[32];
        int r;

        if (!k)
                return -ENOMEM;
        cr = json_pack("{s:s, s:b}", "key", k, "progress_notify", 1);
        if (!cr)
                return -ENOMEM;
        if (w->prefix) {
                end = prefix_end(w->key);
                endb = end ? b64_encode(end, strlen(end)) : NULL;
                if (!endb) {
                        json_decref(cr);
                        return -ENOMEM;
                }
                json_object_set_new(cr, "range_end", json_string(endb));
        }
        if (w->next_rev > 0) {
                snprintf(rev, sizeof rev, "%lld", (long long) w->next_rev);
                json_object_set_new(cr, "start_revision", json_string(rev));
        }
        body = json_pack("{s:o}", "create_request", cr);
        if (!body)
                return -ENOMEM;
        w->established = false;
        /* req_new starts the transfer; mark it a stream before data can arrive */
        r = req_new(w->c, NULL, "/v3/watch", body, false, w, NULL, NULL, &q);
        if (r < 0)
                return r;
        w->req = q;
        return 0;
}

static int watch_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        struct etcd_watch *w = userdata;
        int r = watch_connect(w);
        if (r < 0)
                watch_stream_ended(w, "cannot start watch request");
        return 0;
}

static void watch_stream_ended(struct etcd_watch *w, const char *why) {
        struct etcd_error err;
        uint64_t delay, now;

        if (w->dead)
                return;
        if (w->established)
                w->failures = 0;
        w->established = false;
        w->failures++;
        delay = w->failures <= 1 ? 50 * USEC_PER_MSEC : (100 * USEC_PER_MSEC) << (w->failures < 6 ? w->failures : 6);
        if (delay > 5 * USEC_PER_SEC)
                delay = 5 * USEC_PER_SEC;
        set_err(&err, ETCD_ERR_TRANSPORT, "watch on '%s' interrupted (%s); reconnecting from revision %lld",
                w->key, why, (long long) w->next_rev);
        sd_event_now(w->c->event, CLOCK_MONOTONIC, &now);
        if (!w->retry)
                sd_event_add_time(w->c->event, &w->retry, CLOCK_MONOTONIC, now + delay, 1000, watch_retry_cb, w);
        else {
                sd_event_source_set_time(w->retry, now + delay);
                sd_event_source_set_enabled(w->retry, SD_EVENT_ONESHOT);
        }
        if (w->failures == 1 || w->failures % 10 == 0)
                w->cb(w, &err, NULL, w->ud);
}

/* Deliver one decoded watch message; returns false when the watch is over. */
static bool watch_handle(struct etcd_watch *w, json_t *j) {
        struct etcd_watch_msg m = { 0 };
        struct etcd_error err = { 0 };
        json_t *e = json_object_get(j, "error");

        if (e) {
                json_t *msg = json_object_get(e, "message");
                set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s' failed: %s", w->key,
                        json_is_string(msg) ? json_string_value(msg) : "stream error");
                w->cb(w, &err, NULL, w->ud);
                return false;
        }
        if (etcd_parse_watch_msg(json_object_get(j, "result"), &m, &err) < 0) {
                w->cb(w, &err, NULL, w->ud);
                return false;
        }
        if (m.compact_revision > 0) {
                set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s': revision %lld was compacted (oldest %lld)",
                        w->key, (long long) w->next_rev, (long long) m.compact_revision);
                w->dead = true;
                w->cb(w, &err, &m, w->ud);
                etcd_watch_msg_clear(&m);
                return false;
        }
        if (m.canceled) {
                set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s' canceled by etcd: %s", w->key,
                        m.cancel_reason ? m.cancel_reason : "no reason given");
                w->cb(w, &err, NULL, w->ud);
                etcd_watch_msg_clear(&m);
                return false;
        }
        if (m.created) {
                w->established = true;
                w->failures = 0;
                if (w->next_rev <= 0)
                        w->next_rev = m.revision + 1;
        }
        /* drop events already delivered before a reconnect */
        size_t k = 0;
        for (size_t i = 0; i < m.n_events; i++) {
                if (m.events[i].kv.mod_revision < w->next_rev) {
                        etcd_kv_clear(&m.events[i].kv);
                        continue;
                }
                m.events[k++] = m.events[i];
        }
        m.n_events = k;
        if (k > 0) {
                w->next_rev = m.events[k - 1].kv.mod_revision + 1;
                w->cb(w, NULL, &m, w->ud);
        } else if (!m.created && m.revision + 1 > w->next_rev && w->established) {
                w->next_rev = m.revision + 1; /* progress notification */
        }
        etcd_watch_msg_clear(&m);
        return true;
}

/* Parse every complete message in the stream buffer. The gateway ends each
 * message with a newline (JSON strings never hold a raw one), so a message is
 * parsed only once its newline has arrived, whatever byte a chunk was cut at;
 * a line that is not yet a whole value (pretty-printed output) waits for the
 * next newline. Returns false to abort the stream (bad stream, watch over, or
 * the watch freed by its callback). */
static bool watch_on_data(struct etcd_watch *w) {
        struct etcd_req *q = w->req;
        size_t off = 0;
        bool ok = true;

        q->delivering = true;
        while (off < q->len) {
                json_error_t jerr;
                while (off < q->len && (q->buf[off] == '\n' || q->buf[off] == '\r' || q->buf[off] == ' '))
                        off++;
                if (off >= q->len)
                        break;
                size_t from = q->scanned > off ? q->scanned : off;
                char *nl = memchr(q->buf + from, '\n', q->len - from);
                if (!nl) {
                        q->scanned = q->len;
                        break; /* wait for more */
                }
                size_t end = (size_t) (nl - q->buf);
                json_t *j = json_loadb(q->buf + off, end - off, 0, &jerr);
                if (!j && json_error_code(&jerr) == json_error_premature_end_of_input) {
                        q->scanned = end + 1;
                        continue; /* a value spread over lines: up to the next newline */
                }
                q->scanned = 0;
                if (!j) {
                        struct etcd_error err;
                        set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s': bad JSON in stream: %s", w->key,
                                jerr.text);
                        w->cb(w, &err, NULL, w->ud);
                        ok = false;
                        break;
                }
                off = end + 1;
                ok = watch_handle(w, j);
                json_decref(j);
                if (!q->watch) /* freed by its callback */
                        ok = false;
                if (!ok)
                        break;
        }
        q->delivering = false;
        if (ok && off > 0) {
                memmove(q->buf, q->buf + off, q->len - off);
                q->len -= off;
                q->buf[q->len] = 0;
                q->scanned = q->scanned > off ? q->scanned - off : 0;
        }
        return ok;
}

int etcd_watch_new(struct etcd_client *c, const char *key, bool prefix, int64_t start_revision,
                   etcd_watch_cb cb, void *userdata, struct etcd_watch **ret) {
        struct etcd_watch *w = calloc(1, sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        w->c = c;
        w->key = strdup(key);
        w->prefix = prefix;
        w->next_rev = start_revision;
        w->cb = cb;
        w->ud = userdata;
        if (!w->key) {
                free(w);
                return -ENOMEM;
        }
        w->next = c->watches;
        if (c->watches)
                c->watches->prev = w;
        c->watches = w;
        r = watch_connect(w);
        if (r < 0) {
                etcd_watch_free(w);
                return r;
        }
        if (ret)
                *ret = w;
        return 0;
}

void etcd_watch_free(struct etcd_watch *w) {
        if (!w)
                return;
        if (w->req) {
                w->req->watch = NULL;
                /* while its messages are being delivered, watch_dispatch frees the stream after */
                if (!w->req->delivering)
                        req_free(w->req);
        }
        sd_event_source_disable_unref(w->retry);
        if (w->prev)
                w->prev->next = w->next;
        else if (w->c->watches == w)
                w->c->watches = w->next;
        if (w->next)
                w->next->prev = w->prev;
        free(w->key);
        free(w);
}

int64_t etcd_watch_next_revision(struct etcd_watch *w) {
        return w->next_rev;
}

bool etcd_watch_is_established(struct etcd_watch *w) {
        return w->established;
}

/* ---------------- request bodies ---------------- */

/* The key just past every key with this prefix. */
static char *prefix_end(const char *key) {
        size_t n = strlen(key);
        char *e = strdup(key);
        if (!e)
                return NULL;
        while (n > 0) {
                if ((unsigned char) e[n - 1] < 0xff) {
                        e[n - 1]++;
                        e[n] = 0;
                        return e;
                }
                n--;
        }
        free(e);
        return strdup("\0"); /* whole keyspace: not used here */
}

static json_t *jb64(const char *s) {
        _cleanup_free_ char *b = b64_encode(s, strlen(s));
        return b ? json_string(b) : NULL;
}

static json_t *jint(int64_t v) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long) v);
        return json_string(buf);
}

static json_t *juint(uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long) v);
        return json_string(buf);
}

static json_t *key_range(const char *key, bool prefix) {
        json_t *o = json_object();
        json_object_set_new(o, "key", jb64(key));
        if (prefix) {
                _cleanup_free_ char *e = prefix_end(key);
                json_object_set_new(o, "range_end", jb64(e ? e : ""));
        }
        return o;
}

json_t *etcd_req_range(const char *key, bool prefix, int64_t revision, bool keys_only) {
        json_t *o = key_range(key, prefix);
        if (revision > 0)
                json_object_set_new(o, "revision", jint(revision));
        if (keys_only)
                json_object_set_new(o, "keys_only", json_true());
        return o;
}

json_t *etcd_req_put(const char *key, const char *value, int64_t lease) {
        json_t *o = json_object();
        json_object_set_new(o, "key", jb64(key));
        json_object_set_new(o, "value", jb64(value));
        if (lease)
                json_object_set_new(o, "lease", jint(lease));
        return o;
}

json_t *etcd_req_delete(const char *key, bool prefix) {
        return key_range(key, prefix);
}

json_t *etcd_req_lease_grant(int64_t ttl) {
        return json_pack("{s:o}", "TTL", jint(ttl));
}

json_t *etcd_req_lease_id(int64_t id) {
        return json_pack("{s:o}", "ID", jint(id));
}

json_t *etcd_req_member_add(char *const *peer_urls, bool learner) {
        json_t *a = json_array();
        for (size_t i = 0; peer_urls && peer_urls[i]; i++)
                json_array_append_new(a, json_string(peer_urls[i]));
        return json_pack("{s:o, s:b}", "peerURLs", a, "isLearner", learner);
}

json_t *etcd_req_member_id(uint64_t id) {
        return json_pack("{s:o}", "ID", juint(id));
}

json_t *etcd_req_move_leader(uint64_t target) {
        return json_pack("{s:o}", "targetID", juint(target));
}

static const char *cmp_result(const char *op) {
        if (streq(op, "="))
                return "EQUAL";
        if (streq(op, "!="))
                return "NOT_EQUAL";
        if (streq(op, ">"))
                return "GREATER";
        return "LESS";
}

static json_t *cmp_new(const char *key, const char *op, const char *target, const char *field, json_t *v) {
        json_t *o = json_object();
        json_object_set_new(o, "key", jb64(key));
        json_object_set_new(o, "result", json_string(cmp_result(op)));
        json_object_set_new(o, "target", json_string(target));
        json_object_set_new(o, field, v);
        return o;
}

json_t *etcd_cmp_value(const char *key, const char *op, const char *value) {
        return cmp_new(key, op, "VALUE", "value", jb64(value));
}
json_t *etcd_cmp_version(const char *key, const char *op, int64_t version) {
        return cmp_new(key, op, "VERSION", "version", jint(version));
}
json_t *etcd_cmp_create(const char *key, const char *op, int64_t rev) {
        return cmp_new(key, op, "CREATE", "create_revision", jint(rev));
}
json_t *etcd_cmp_mod(const char *key, const char *op, int64_t rev) {
        return cmp_new(key, op, "MOD", "mod_revision", jint(rev));
}
json_t *etcd_cmp_lease(const char *key, const char *op, int64_t lease) {
        return cmp_new(key, op, "LEASE", "lease", jint(lease));
}

json_t *etcd_op_put(const char *key, const char *value, int64_t lease) {
        return json_pack("{s:o}", "request_put", etcd_req_put(key, value, lease));
}
json_t *etcd_op_delete(const char *key, bool prefix) {
        return json_pack("{s:o}", "request_delete_range", etcd_req_delete(key, prefix));
}
json_t *etcd_op_range(const char *key, bool prefix) {
        return json_pack("{s:o}", "request_range", etcd_req_range(key, prefix, 0, false));
}

json_t *etcd_req_txn(json_t *compare, json_t *success, json_t *failure) {
        json_t *o = json_object();
        json_object_set_new(o, "compare", compare ? compare : json_array());
        json_object_set_new(o, "success", success ? success : json_array());
        json_object_set_new(o, "failure", failure ? failure : json_array());
        return o;
}

/* ---------------- reply parsing ---------------- */

int etcd_json_int64(json_t *obj, const char *field, int64_t *ret) {
        json_t *v = obj ? json_object_get(obj, field) : NULL;
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return 0;
        }
        if (json_is_string(v))
                return parse_int64(json_string_value(v), ret);
        return -EBADMSG;
}

int etcd_json_uint64(json_t *obj, const char *field, uint64_t *ret) {
        json_t *v = obj ? json_object_get(obj, field) : NULL;
        char *end;
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                *ret = (uint64_t) json_integer_value(v);
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        const char *s = json_string_value(v);
        if (!*s || *s == '-')
                return -EBADMSG;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (errno || *end)
                return -EBADMSG;
        *ret = u;
        return 0;
}

#define BAD(err, ...)                                            \
        ({                                                       \
                set_err((err), ETCD_ERR_PROTOCOL, __VA_ARGS__); \
                -EBADMSG;                                        \
        })

int etcd_parse_error(json_t *reply, struct etcd_error *err) {
        json_t *e, *code, *msg;

        if (!json_is_object(reply))
                return 0;
        e = json_object_get(reply, "error");
        if (!e) {
                /* the gateway of etcd 3.5 and later: {"code": 5, "message": "..."} */
                code = json_object_get(reply, "code");
                msg = json_object_get(reply, "message");
                if (!json_is_integer(code) || !json_is_string(msg))
                        return 0;
        } else if (json_is_object(e)) { /* stream error shape */
                code = json_object_get(e, "grpc_code");
                if (!code)
                        code = json_object_get(e, "code");
                msg = json_object_get(e, "message");
        } else {
                code = json_object_get(reply, "code");
                msg = json_is_string(e) ? e : json_object_get(reply, "message");
        }
        set_err(err, json_is_integer(code) && json_integer_value(code) > 0 ? (int) json_integer_value(code) : 2,
                "%s", json_is_string(msg) ? json_string_value(msg) : "unknown etcd error");
        return 1;
}

int etcd_parse_cluster_id(json_t *reply, uint64_t *ret) {
        json_t *h = json_object_get(reply, "header");
        uint64_t id = 0;
        if (!json_is_object(h) || etcd_json_uint64(h, "cluster_id", &id) < 0 || id == 0)
                return -EBADMSG;
        *ret = id;
        return 0;
}

int etcd_parse_revision(json_t *reply, int64_t *ret) {
        json_t *h = json_object_get(reply, "header");
        if (!json_is_object(h))
                return -EBADMSG;
        return etcd_json_int64(h, "revision", ret);
}

void etcd_kv_clear(struct etcd_kv *kv) {
        free(kv->key);
        free(kv->value);
        *kv = (struct etcd_kv){ 0 };
}

void etcd_kvs_clear(struct etcd_kvs *r) {
        for (size_t i = 0; i < r->n; i++)
                etcd_kv_clear(&r->kvs[i]);
        free(r->kvs);
        *r = (struct etcd_kvs){ 0 };
}

static int b64_field(json_t *o, const char *f, bool required, char **ret, size_t *ret_len,
                     struct etcd_error *err) {
        json_t *v = json_object_get(o, f);
        if (!v) {
                if (required)
                        return BAD(err, "missing '%s' in key-value", f);
                *ret = strdup("");
                if (ret_len)
                        *ret_len = 0;
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_is_string(v) || b64_decode(json_string_value(v), ret, ret_len) < 0)
                return BAD(err, "'%s' is not valid base64", f);
        return 0;
}

int etcd_parse_kv(json_t *j, struct etcd_kv *kv, struct etcd_error *err) {
        struct etcd_kv k = { 0 };

        if (!json_is_object(j))
                return BAD(err, "key-value is not an object");
        if (b64_field(j, "key", true, &k.key, NULL, err) < 0)
                return -EBADMSG;
        if (b64_field(j, "value", false, &k.value, &k.value_len, err) < 0) {
                etcd_kv_clear(&k);
                return -EBADMSG;
        }
        if (etcd_json_int64(j, "create_revision", &k.create_revision) < 0 ||
            etcd_json_int64(j, "mod_revision", &k.mod_revision) < 0 ||
            etcd_json_int64(j, "version", &k.version) < 0 || etcd_json_int64(j, "lease", &k.lease) < 0) {
                etcd_kv_clear(&k);
                return BAD(err, "bad revision, version or lease in key-value");
        }
        *kv = k;
        return 0;
}

static int parse_kvs_into(json_t *reply, struct etcd_kvs *r, struct etcd_error *err) {
        json_t *kvs = json_object_get(reply, "kvs");

        if (etcd_parse_revision(reply, &r->revision) < 0)
                return BAD(err, "reply has no valid header revision");
        if (etcd_json_int64(reply, "count", &r->count) < 0)
                return BAD(err, "bad 'count' in range reply");
        r->more = json_is_true(json_object_get(reply, "more"));
        if (!kvs)
                return 0;
        if (!json_is_array(kvs))
                return BAD(err, "'kvs' is not an array");
        r->kvs = calloc(json_array_size(kvs) + 1, sizeof(struct etcd_kv));
        if (!r->kvs)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(kvs); i++) {
                if (etcd_parse_kv(json_array_get(kvs, i), &r->kvs[i], err) < 0)
                        return -EBADMSG;
                r->n++;
        }
        return 0;
}

int etcd_parse_range(json_t *reply, struct etcd_kvs *ret, struct etcd_error *err) {
        struct etcd_kvs r = { 0 };
        if (!json_is_object(reply))
                return BAD(err, "range reply is not an object");
        int k = parse_kvs_into(reply, &r, err);
        if (k < 0) {
                etcd_kvs_clear(&r);
                return k;
        }
        *ret = r;
        return 0;
}

int etcd_parse_txn(json_t *reply, bool *ret_succeeded, struct etcd_error *err) {
        json_t *s;
        int64_t rev;
        if (!json_is_object(reply) || etcd_parse_revision(reply, &rev) < 0)
                return BAD(err, "txn reply has no valid header");
        s = json_object_get(reply, "succeeded");
        if (s && !json_is_boolean(s))
                return BAD(err, "'succeeded' is not a boolean");
        *ret_succeeded = json_is_true(s);
        return 0;
}

int etcd_parse_txn_range(json_t *reply, size_t i, struct etcd_kvs *ret, struct etcd_error *err) {
        json_t *resps = json_object_get(reply, "responses");
        json_t *rr;
        if (!json_is_array(resps) || i >= json_array_size(resps))
                return BAD(err, "txn reply has no response %zu", i);
        rr = json_object_get(json_array_get(resps, i), "response_range");
        if (!json_is_object(rr))
                return BAD(err, "txn response %zu is not a range", i);
        /* a range response inside a txn carries its own header */
        if (!json_object_get(rr, "header"))
                json_object_set(rr, "header", json_object_get(reply, "header"));
        return etcd_parse_range(rr, ret, err);
}

int etcd_parse_lease_grant(json_t *reply, int64_t *ret_id, int64_t *ret_ttl, struct etcd_error *err) {
        int64_t id, ttl;
        if (!json_is_object(reply) || etcd_json_int64(reply, "ID", &id) < 0 ||
            etcd_json_int64(reply, "TTL", &ttl) < 0 || id == 0)
                return BAD(err, "lease grant reply has no valid ID/TTL");
        json_t *e = json_object_get(reply, "error");
        if (json_is_string(e) && *json_string_value(e))
                return BAD(err, "lease grant failed: %s", json_string_value(e));
        *ret_id = id;
        if (ret_ttl)
                *ret_ttl = ttl;
        return 0;
}

int etcd_parse_lease_keepalive(json_t *reply, int64_t *ret_ttl, struct etcd_error *err) {
        json_t *r = json_object_get(reply, "result");
        int64_t ttl;
        if (!json_is_object(r))
                return BAD(err, "keepalive reply has no 'result'");
        if (etcd_json_int64(r, "TTL", &ttl) < 0)
                return BAD(err, "keepalive reply has a bad TTL");
        *ret_ttl = ttl; /* 0 (or missing): the lease is gone */
        return 0;
}

void etcd_members_clear(struct etcd_members *ms) {
        for (size_t i = 0; i < ms->n; i++) {
                free(ms->m[i].name);
                strv_free(ms->m[i].peer_urls);
                strv_free(ms->m[i].client_urls);
        }
        free(ms->m);
        *ms = (struct etcd_members){ 0 };
}

static int str_array(json_t *a, char ***ret) {
        char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        if (a && !json_is_array(a)) {
                free(v);
                return -EBADMSG;
        }
        for (size_t i = 0; a && i < json_array_size(a); i++) {
                json_t *s = json_array_get(a, i);
                if (!json_is_string(s) || strv_push(&v, json_string_value(s)) < 0) {
                        strv_free(v);
                        return -EBADMSG;
                }
        }
        *ret = v;
        return 0;
}

static int parse_member(json_t *j, struct etcd_member *m, struct etcd_error *err) {
        json_t *name = json_object_get(j, "name");
        if (!json_is_object(j))
                return BAD(err, "member is not an object");
        if (etcd_json_uint64(j, "ID", &m->id) < 0 || m->id == 0)
                return BAD(err, "member has no valid ID");
        if (name && !json_is_string(name))
                return BAD(err, "member name is not a string");
        m->name = strdup(name ? json_string_value(name) : "");
        if (!m->name)
                return -ENOMEM;
        if (str_array(json_object_get(j, "peerURLs"), &m->peer_urls) < 0 ||
            str_array(json_object_get(j, "clientURLs"), &m->client_urls) < 0)
                return BAD(err, "member URLs are not a list of strings");
        json_t *l = json_object_get(j, "isLearner");
        if (l && !json_is_boolean(l))
                return BAD(err, "isLearner is not a boolean");
        m->learner = json_is_true(l);
        return 0;
}

static int parse_member_list(json_t *reply, struct etcd_members *ms, struct etcd_error *err) {
        json_t *h = json_object_get(reply, "header"), *a = json_object_get(reply, "members");
        if (!json_is_object(h))
                return BAD(err, "member reply has no header");
        if (etcd_json_uint64(h, "cluster_id", &ms->cluster_id) < 0 ||
            etcd_json_uint64(h, "member_id", &ms->member_id) < 0 || etcd_json_int64(h, "revision", &ms->revision) < 0)
                return BAD(err, "member reply header has bad ids");
        if (a && !json_is_array(a))
                return BAD(err, "'members' is not an array");
        ms->m = calloc(json_array_size(a) + 1, sizeof(struct etcd_member));
        if (!ms->m)
                return -ENOMEM;
        for (size_t i = 0; a && i < json_array_size(a); i++) {
                ms->n++;
                if (parse_member(json_array_get(a, i), &ms->m[i], err) < 0)
                        return -EBADMSG;
        }
        return 0;
}

int etcd_parse_members(json_t *reply, struct etcd_members *ret, struct etcd_error *err) {
        struct etcd_members ms = { 0 };
        if (!json_is_object(reply))
                return BAD(err, "member list reply is not an object");
        int r = parse_member_list(reply, &ms, err);
        if (r < 0) {
                etcd_members_clear(&ms);
                return r;
        }
        *ret = ms;
        return 0;
}

int etcd_parse_member_add(json_t *reply, uint64_t *ret_id, struct etcd_members *ret, struct etcd_error *err) {
        json_t *m = json_object_get(reply, "member");
        uint64_t id;
        if (!json_is_object(m) || etcd_json_uint64(m, "ID", &id) < 0 || id == 0)
                return BAD(err, "member add reply has no new member ID");
        if (ret && etcd_parse_members(reply, ret, err) < 0)
                return -EBADMSG;
        *ret_id = id;
        return 0;
}

void etcd_status_clear(struct etcd_status *s) {
        free(s->version);
        strv_free(s->errors);
        *s = (struct etcd_status){ 0 };
}

int etcd_parse_status(json_t *reply, struct etcd_status *ret, struct etcd_error *err) {
        struct etcd_status s = { 0 };
        json_t *h = json_object_get(reply, "header"), *v = json_object_get(reply, "version");

        if (!json_is_object(reply) || !json_is_object(h))
                return BAD(err, "status reply has no header");
        if (etcd_json_uint64(h, "member_id", &s.member_id) < 0 || etcd_json_uint64(h, "cluster_id", &s.cluster_id) < 0 ||
            etcd_json_uint64(reply, "leader", &s.leader) < 0 ||
            etcd_json_int64(reply, "raftIndex", &s.raft_index) < 0 ||
            etcd_json_int64(reply, "raftTerm", &s.raft_term) < 0 || etcd_json_int64(reply, "dbSize", &s.db_size) < 0 ||
            etcd_json_int64(reply, "dbSizeInUse", &s.db_size_in_use) < 0 ||
            etcd_json_int64(h, "revision", &s.revision) < 0)
                return BAD(err, "status reply has bad numbers");
        if (v && !json_is_string(v))
                return BAD(err, "status version is not a string");
        s.version = strdup(v ? json_string_value(v) : "");
        s.learner = json_is_true(json_object_get(reply, "isLearner"));
        if (!s.version || str_array(json_object_get(reply, "errors"), &s.errors) < 0) {
                etcd_status_clear(&s);
                return BAD(err, "status reply has bad errors list");
        }
        *ret = s;
        return 0;
}

void etcd_watch_msg_clear(struct etcd_watch_msg *m) {
        for (size_t i = 0; i < m->n_events; i++)
                etcd_kv_clear(&m->events[i].kv);
        free(m->events);
        free(m->cancel_reason);
        *m = (struct etcd_watch_msg){ 0 };
}

int etcd_parse_watch_msg(json_t *msg, struct etcd_watch_msg *ret, struct etcd_error *err) {
        struct etcd_watch_msg m = { 0 };
        json_t *h, *evs, *cr;

        if (!json_is_object(msg))
                return BAD(err, "watch message has no 'result' object");
        h = json_object_get(msg, "header");
        if (!json_is_object(h) || etcd_json_int64(h, "revision", &m.revision) < 0)
                return BAD(err, "watch message has no valid header");
        if (etcd_json_int64(msg, "watch_id", &m.watch_id) < 0 ||
            etcd_json_int64(msg, "compact_revision", &m.compact_revision) < 0)
                return BAD(err, "watch message has bad ids");
        m.created = json_is_true(json_object_get(msg, "created"));
        m.canceled = json_is_true(json_object_get(msg, "canceled"));
        cr = json_object_get(msg, "cancel_reason");
        if (json_is_string(cr))
                m.cancel_reason = strdup(json_string_value(cr));
        evs = json_object_get(msg, "events");
        if (evs && !json_is_array(evs)) {
                etcd_watch_msg_clear(&m);
                return BAD(err, "watch 'events' is not an array");
        }
        m.events = calloc(json_array_size(evs) + 1, sizeof(struct etcd_event));
        if (!m.events) {
                etcd_watch_msg_clear(&m);
                return -ENOMEM;
        }
        for (size_t i = 0; evs && i < json_array_size(evs); i++) {
                json_t *e = json_array_get(evs, i), *t = json_object_get(e, "type");
                if (!json_is_object(e) || (t && !json_is_string(t))) {
                        etcd_watch_msg_clear(&m);
                        return BAD(err, "watch event %zu is malformed", i);
                }
                if (!t || streq(json_string_value(t), "PUT"))
                        m.events[i].type = ETCD_EVENT_PUT;
                else if (streq(json_string_value(t), "DELETE"))
                        m.events[i].type = ETCD_EVENT_DELETE;
                else {
                        etcd_watch_msg_clear(&m);
                        return BAD(err, "watch event %zu has unknown type '%s'", i, json_string_value(t));
                }
                if (etcd_parse_kv(json_object_get(e, "kv"), &m.events[i].kv, err) < 0) {
                        etcd_watch_msg_clear(&m);
                        return -EBADMSG;
                }
                m.n_events++;
        }
        *ret = m;
        return 0;
}
