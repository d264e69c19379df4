/* etcd_internal.h: what the pieces of the etcd client share and nobody else
 * may use: the client, request and watch structures, and the few functions
 * one file calls in another.
 *
 *   etcd.c        transport: curl multi on sd-event, requests, endpoint
 *                 failover, raw streams, the synchronous helpers;
 *   etcd_watch.c  watches: the stream per watch, message framing,
 *                 reconnection with backoff, dispatch outside libcurl;
 *   etcd_json.c   request bodies and reply parsers (pure, no I/O). */
#pragma once

#include <curl/curl.h>

#include "etcd.h"

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
        char *fixed;           /* endpoint of etcd_call_at/etcd_get, no failover */
        uint64_t timeout_usec; /* 0: the client's */
        bool get;
        char *buf;
        size_t len, cap;
        size_t ep;
        size_t tries;
        etcd_cb cb;
        void *ud;
        struct etcd_watch *watch;
        bool stream;       /* a watch stream (its watch may be gone) */
        bool pending;      /* stream data arrived that etcd_watch_dispatch has not parsed */
        bool delivering;   /* inside watch callbacks: must not be removed now */
        size_t scanned;    /* bytes of buf already searched for a message end */
        etcd_data_cb data; /* etcd_stream_raw: bytes go here, not into buf */
        void *data_ud;
        size_t delivered; /* bytes given to data */
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

/* etcd.c */
/* Create and start a request; body is consumed. endpoint NULL: the client's
 * endpoints with failover; watch non-NULL: a stream for that watch. */
int etcd_req_new(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, bool get,
                 struct etcd_watch *watch, etcd_cb cb, void *userdata, struct etcd_req **ret);
void etcd_req_free(struct etcd_req *q);

/* etcd_watch.c */
void etcd_watch_stream_ended(struct etcd_watch *w, const char *why);
bool etcd_stream_deliver(struct etcd_req *q);
void etcd_watch_dispatch(struct etcd_client *c);

/* etcd_json.c */
void etcd_set_err(struct etcd_error *err, int code, const char *fmt, ...) _printf_(3, 4);
char *etcd_prefix_end(const char *key);
