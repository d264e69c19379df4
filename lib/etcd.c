/* etcd.c: the transport of the etcd v3 JSON-gateway client: the client,
 * requests and raw streams, endpoint failover on transport errors. The
 * sd-event side of libcurl multi lives in etcd_loop.c, watches in
 * etcd_watch.c, tokens in etcd_auth.c, request bodies and reply parsers in
 * etcd_json.c (map: etcd_internal.h). */
#include <curl/curl.h>
#include <stdio.h>
#include <sys/epoll.h>

#include "etcd_internal.h"
#include "log.h"
#include "strv.h"
#include "util.h"

static int ensure_curl(void) {
        static bool done;
        if (!done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                        return -EIO;
                done = true;
        }
        return 0;
}

/* ---------------- client ---------------- */

static void after_io(struct etcd_client *c);

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
        c->after_io = after_io;
        r = etcd_loop_attach(c); /* etcd_loop.c */
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        etcd_client_free(c);
        return r;
}

void etcd_client_free(struct etcd_client *c) {
        if (!c)
                return;
        if (c->watch_ops)
                c->watch_ops->free_all(c);
        while (c->reqs)
                etcd_req_free(c->reqs);
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        strv_free(c->endpoints);
        free(c->cert);
        free(c->key);
        free(c->ca);
        if (c->auth_ops)
                c->auth_ops->free(c);
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

void etcd_req_free(struct etcd_req *q) {
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
        curl_slist_free_all(q->auth_headers);
        if (q->body && q->path && startswith(q->path, "/v3/auth/"))
                explicit_bzero(q->body, strlen(q->body)); /* it may hold a password */
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
        int r;

        if (q->easy) {
                curl_multi_remove_handle(c->multi, q->easy);
                curl_easy_cleanup(q->easy);
                q->easy = NULL;
        }
        r = c->auth_ops ? c->auth_ops->prepare(q) : 0;
        if (r != 0)
                return r < 0 ? r : 0; /* > 0: started again once a token is there */
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
                         (long)(c->timeout_usec < 2 * USEC_PER_SEC ? c->timeout_usec / 1000 : 2000));
        if (q->data) {
                /* a long stream: no overall limit, but abort when it stalls */
                long stall = (long)(c->timeout_usec / USEC_PER_SEC);
                curl_easy_setopt(q->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
                curl_easy_setopt(q->easy, CURLOPT_LOW_SPEED_TIME, stall > 0 ? stall : 1L);
        } else if (!q->stream)
                curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS,
                                 (long)((q->timeout_usec ? q->timeout_usec : c->timeout_usec) / 1000));
        if (!q->get) {
                curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
                curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body);
                curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
                curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER,
                                 q->auth_headers ? q->auth_headers : q->headers);
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

int etcd_req_restart(struct etcd_req *q) {
        return req_start(q);
}

/* Create and start a request with its own timeout (0: the client's). */
static int req_new_timeout(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                           bool get, struct etcd_watch *watch, uint64_t timeout_usec, etcd_cb cb,
                           void *userdata, struct etcd_req **ret) {
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
                etcd_req_free(q);
                return -ENOMEM;
        }
        r = req_start(q);
        if (r < 0) {
                etcd_req_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

/* Create and start a request (see etcd_internal.h). */
int etcd_req_new(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, bool get,
                 struct etcd_watch *watch, etcd_cb cb, void *userdata, struct etcd_req **ret) {
        return req_new_timeout(c, endpoint, path, body, get, watch, 0, cb, userdata, ret);
}

int etcd_call_at_timeout(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                         uint64_t timeout_usec, etcd_cb cb, void *userdata) {
        struct etcd_req *q;
        return req_new_timeout(c, endpoint, path, body, false, NULL, timeout_usec, cb, userdata, &q);
}

int etcd_call(struct etcd_client *c, const char *path, json_t *body, etcd_cb cb, void *userdata) {
        struct etcd_req *q;
        return etcd_req_new(c, NULL, path, body, false, NULL, cb, userdata, &q);
}

int etcd_call_at(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, etcd_cb cb,
                 void *userdata) {
        struct etcd_req *q;
        return etcd_req_new(c, endpoint, path, body, false, NULL, cb, userdata, &q);
}

int etcd_get(struct etcd_client *c, const char *endpoint, const char *path, etcd_cb cb, void *userdata) {
        struct etcd_req *q;
        return etcd_req_new(c, endpoint, path, NULL, true, NULL, cb, userdata, &q);
}

int etcd_stream_raw(struct etcd_client *c, const char *endpoint, const char *path, json_t *body,
                    etcd_data_cb data_cb, void *data_userdata, etcd_cb done_cb, void *userdata) {
        struct etcd_req *q = calloc(1, sizeof *q);
        int r;

        if (!q) {
                json_decref(body);
                return -ENOMEM;
        }
        /* etcd_req_new starts the transfer; data must be set before: build by hand */
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
                etcd_req_free(q);
                return -ENOMEM;
        }
        r = req_start(q);
        if (r < 0)
                etcd_req_free(q);
        return r;
}

/* libcurl calls this with each piece of a reply. It only buffers: watch
 * callbacks run later from the watch dispatch, outside every libcurl callback,
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
                        etcd_set_err(err, ETCD_ERR_PROTOCOL, "invalid JSON from %s%s: %s", req_endpoint(q),
                                     q->path, q->len ? jerr.text : "empty reply");
                else if (!json_is_object(j)) {
                        etcd_set_err(err, ETCD_ERR_PROTOCOL, "reply from %s%s is not a JSON object",
                                     req_endpoint(q), q->path);
                        json_decref(j);
                        j = NULL;
                }
                return j;
        }
        if (j && etcd_parse_error(j, err) == 1) {
                json_decref(j);
                return NULL;
        }
        if (status == 400 && q->len && strstr(q->buf, "CommonName of client"))
                etcd_set_err(
                    err, ETCD_ERR_HTTP,
                    "etcd at %s refused our client certificate because it has a subject CN and auth "
                    "is enabled (etcd: \"CommonName of client sending a request against gateway will "
                    "be ignored\"): issue the client certificate with an empty CN",
                    req_endpoint(q));
        else if (status == 404 && startswith(q->path, "/v3/"))
                /* a peer listener answers 404 to the gateway's paths */
                etcd_set_err(
                    err, ETCD_ERR_HTTP,
                    "HTTP 404 from %s%s: this looks like a peer URL (port 2380?); --seeds takes client URLs",
                    req_endpoint(q), q->path);
        else
                etcd_set_err(err, ETCD_ERR_HTTP, "HTTP %ld from %s%s", status, req_endpoint(q), q->path);
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

static void req_done(struct etcd_req *q, CURLcode res) {
        struct etcd_error err = {0};
        long status = 0;
        json_t *reply = NULL;

        if (q->stream && !q->watch) {
                etcd_req_free(q);
                return;
        }
        /* messages that arrived with the end of the stream come first */
        if (q->watch && q->pending && !q->c->watch_ops->deliver(q))
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
                struct etcd_client *c = q->c;
                w->req = NULL;
                if (res != CURLE_OK && !q->fixed && !c->pinned)
                        c->cur = (q->ep + 1) % strv_length(c->endpoints);
                etcd_req_free(q);
                c->watch_ops->ended(w, why);
                return;
        }
        if (q->data) {
                /* a raw stream cannot resume: fail over only before its first byte */
                if (res != CURLE_OK && q->delivered == 0 && req_failover(q))
                        return;
                if (res == CURLE_WRITE_ERROR)
                        etcd_set_err(&err, ETCD_ERR_PROTOCOL, "stream from %s%s stopped by its receiver",
                                     req_endpoint(q), q->path);
                else if (res != CURLE_OK)
                        etcd_set_err(&err, ETCD_ERR_TRANSPORT, "stream from %s%s broke: %s", req_endpoint(q),
                                     q->path, q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
                else if (curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status), status != 200) {
                        /* the error went to the receiver as data; it may be an expired
                         * token (3.4 sends HTTP 500 "auth: invalid auth token"): the next
                         * attempt authenticates afresh */
                        if (q->c->auth_ops && q->c->auth_user) {
                                log_debug("etcd: stream from %s%s ended with HTTP %ld; dropping the token, "
                                          "the next attempt authenticates afresh",
                                          req_endpoint(q), q->path, status);
                                q->c->auth_ops->invalidate(q->c, q->auth_gen);
                        }
                        etcd_set_err(&err, ETCD_ERR_HTTP, "HTTP %ld from %s%s", status, req_endpoint(q),
                                     q->path);
                }
                etcd_cb cb = q->cb;
                void *ud = q->ud;
                struct etcd_client *c = q->c;
                bool failed = res != CURLE_OK || status != 200;
                etcd_req_free(q);
                if (cb)
                        cb(c, failed ? &err : NULL, NULL, ud);
                return;
        }
        if (res != CURLE_OK) {
                if (req_failover(q))
                        return;
                etcd_set_err(&err, ETCD_ERR_TRANSPORT, "cannot reach etcd at %s: %s", req_endpoint(q),
                             q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
        } else {
                curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
                reply = req_decode(q, status, &err);
                /* a token etcd no longer takes: authenticate again, retry once */
                if (!reply && q->c->auth_ops && q->c->auth_ops->retry(q, &err))
                        return;
                if (!reply && !q->c->auth_user && err.code == 3 && strstr(err.msg, "user name is empty"))
                        etcd_set_err(&err, 3,
                                     "etcd at %s has authentication enabled and no etcd user was given "
                                     "(etcdserver: user name is empty)",
                                     req_endpoint(q));
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
        etcd_req_free(q);
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
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
                if (q)
                        req_done(q, m->data.result);
        }
}

/* etcd_loop.c calls this after curl ran: stream data first, then finished
 * transfers. */
static void after_io(struct etcd_client *c) {
        if (c->watch_ops)
                c->watch_ops->dispatch(c);
        process_done(c);
}

/* ---------------- synchronous calls ---------------- */

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
        struct sync_state s = {0};
        int r = etcd_call(c, path, body, sync_cb, &s);
        if (r < 0) {
                etcd_set_err(err, ETCD_ERR_TRANSPORT, "cannot start request: %s", strerror(-r));
                return -EIO;
        }
        r = etcd_run_until(c, &s.done, UINT64_MAX);
        if (r < 0) {
                etcd_set_err(err, ETCD_ERR_TRANSPORT, "event loop failed: %s", strerror(-r));
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
