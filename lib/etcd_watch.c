/* etcd_watch.c: watches over the gateway's /v3/watch stream. Each watch owns
 * one streaming request; libcurl's write callback only buffers, and
 * etcd_watch_dispatch parses whole newline-ended messages later, outside every
 * libcurl callback. A broken stream reconnects with backoff from the revision
 * after the last event delivered; a compacted or canceled watch is over. */
#include <stdio.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"

static bool watch_on_data(struct etcd_watch *w);
static void watch_stream_ended(struct etcd_watch *w, const char *why);

/* End a stream that we decided to stop (its watch freed, over, or a bad
 * message): no transport failure, so the endpoint is not rotated. */
static void watch_abort(struct etcd_req *q) {
        struct etcd_watch *w = q->watch;

        if (w)
                w->req = NULL;
        etcd_req_free(q);
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
                        (void)stream_deliver(q);
                        goto again;
                }
}

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
                end = etcd_prefix_end(w->key);
                endb = end ? b64_encode(end, strlen(end)) : NULL;
                if (!endb) {
                        json_decref(cr);
                        return -ENOMEM;
                }
                json_object_set_new(cr, "range_end", json_string(endb));
        }
        if (w->next_rev > 0) {
                snprintf(rev, sizeof rev, "%lld", (long long)w->next_rev);
                json_object_set_new(cr, "start_revision", json_string(rev));
        }
        body = json_pack("{s:o}", "create_request", cr);
        if (!body)
                return -ENOMEM;
        w->established = false;
        /* etcd_req_new starts the transfer; mark it a stream before data can arrive */
        r = etcd_req_new(w->c, NULL, "/v3/watch", body, false, w, NULL, NULL, &q);
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
        if (w->reauth) {
                /* not a failure: reconnect now with a fresh token, tell nobody */
                w->reauth = false;
                w->established = false;
                sd_event_now(w->c->event, CLOCK_MONOTONIC, &now);
                if (!w->retry)
                        sd_event_add_time(w->c->event, &w->retry, CLOCK_MONOTONIC, now, 1000, watch_retry_cb,
                                          w);
                else {
                        sd_event_source_set_time(w->retry, now);
                        sd_event_source_set_enabled(w->retry, SD_EVENT_ONESHOT);
                }
                return;
        }
        if (w->established)
                w->failures = 0;
        w->established = false;
        w->failures++;
        delay = w->failures <= 1 ? 50 * USEC_PER_MSEC
                                 : (100 * USEC_PER_MSEC) << (w->failures < 6 ? w->failures : 6);
        if (delay > 5 * USEC_PER_SEC)
                delay = 5 * USEC_PER_SEC;
        etcd_set_err(&err, ETCD_ERR_TRANSPORT,
                     "watch on '%s' interrupted (%s); reconnecting from revision %lld", w->key, why,
                     (long long)w->next_rev);
        sd_event_now(w->c->event, CLOCK_MONOTONIC, &now);
        if (!w->retry)
                sd_event_add_time(w->c->event, &w->retry, CLOCK_MONOTONIC, now + delay, 1000, watch_retry_cb,
                                  w);
        else {
                sd_event_source_set_time(w->retry, now + delay);
                sd_event_source_set_enabled(w->retry, SD_EVENT_ONESHOT);
        }
        if (w->failures == 1 || w->failures % 10 == 0)
                w->cb(w, &err, NULL, w->ud);
}

/* Deliver one decoded watch message; returns false when the watch is over. */
static bool watch_handle(struct etcd_watch *w, json_t *j) {
        struct etcd_watch_msg m = {0};
        struct etcd_error err = {0};
        json_t *e = json_object_get(j, "error");

        if (e) {
                json_t *msg = json_object_get(e, "message");
                etcd_set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s' failed: %s", w->key,
                             json_is_string(msg) ? json_string_value(msg) : "stream error");
                w->cb(w, &err, NULL, w->ud);
                return false;
        }
        if (etcd_parse_watch_msg(json_object_get(j, "result"), &m, &err) < 0) {
                w->cb(w, &err, NULL, w->ud);
                return false;
        }
        if (m.compact_revision > 0) {
                etcd_set_err(&err, ETCD_ERR_PROTOCOL,
                             "watch on '%s': revision %lld was compacted (oldest %lld)", w->key,
                             (long long)w->next_rev, (long long)m.compact_revision);
                w->dead = true;
                w->cb(w, &err, &m, w->ud);
                etcd_watch_msg_clear(&m);
                return false;
        }
        if (m.canceled && w->c->auth_ops && w->c->auth_user &&
            etcd_error_is_auth_renewal(0, m.cancel_reason)) {
                /* the token expired (or auth was enabled since): drop it, so whichever
                 * reconnect comes next authenticates afresh rather than sending the
                 * refused token again at every backoff */
                w->c->auth_ops->invalidate(w->c, w->req ? w->req->auth_gen : w->c->auth_gen);
                if (w->reauths++ == 0) {
                        /* the first time: at once and quietly, same revision */
                        log_debug("watch on '%s': %s; authenticating again", w->key, m.cancel_reason);
                        w->reauth = true;
                        etcd_watch_msg_clear(&m);
                        return false;
                }
        }
        if (m.canceled) {
                etcd_set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s' canceled by etcd: %s", w->key,
                             m.cancel_reason ? m.cancel_reason : "no reason given");
                w->cb(w, &err, NULL, w->ud);
                etcd_watch_msg_clear(&m);
                return false;
        }
        if (m.created) {
                w->established = true;
                w->failures = 0;
                w->reauths = 0;
                if (w->next_rev <= 0)
                        w->next_rev = m.revision + 1;
                if (w->notify_created && m.n_events == 0) {
                        w->cb(w, NULL, &m, w->ud);
                        etcd_watch_msg_clear(&m);
                        return true; /* w may be freed: the caller looks at its stream */
                }
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
                size_t end = (size_t)(nl - q->buf);
                json_t *j = json_loadb(q->buf + off, end - off, 0, &jerr);
                if (!j && json_error_code(&jerr) == json_error_premature_end_of_input) {
                        q->scanned = end + 1;
                        continue; /* a value spread over lines: up to the next newline */
                }
                q->scanned = 0;
                if (!j) {
                        struct etcd_error err;
                        etcd_set_err(&err, ETCD_ERR_PROTOCOL, "watch on '%s': bad JSON in stream: %s",
                                     w->key, jerr.text);
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

static void watch_free_all(struct etcd_client *c) {
        while (c->watches)
                etcd_watch_free(c->watches);
}

/* etcd.c reaches the watches through these */
static const struct etcd_watch_ops watch_ops = {
    .dispatch = watch_dispatch,
    .deliver = stream_deliver,
    .ended = watch_stream_ended,
    .free_all = watch_free_all,
};

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
        c->watch_ops = &watch_ops;
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
                /* while its messages are being delivered, etcd_watch_dispatch frees the stream after */
                if (!w->req->delivering)
                        etcd_req_free(w->req);
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

void etcd_watch_notify_created(struct etcd_watch *w) {
        w->notify_created = true;
}

bool etcd_watch_is_established(struct etcd_watch *w) {
        return w->established;
}
