/* etcd_internal.h: what the pieces of the etcd client share and nobody else
 * may use: the client, request and watch structures, and the few functions
 * one file calls in another.
 *
 *   etcd.c        transport: the client, requests, endpoint failover,
 *                 raw streams, the synchronous helpers;
 *   etcd_loop.c   curl multi driven by sd-event;
 *   etcd_watch.c  watches: the stream per watch, message framing,
 *                 reconnection with backoff, dispatch outside libcurl;
 *   etcd_auth.c   user authentication: token, renewal, password files;
 *   etcd_json.c   request bodies and reply parsers (pure, no I/O).
 * Calls go downward only: watch and auth use etcd.c's requests; etcd.c
 * reaches them through the ops they plug in (struct etcd_watch_ops,
 * struct etcd_auth_ops); etcd_loop.c through c->after_io. */
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
        /* the layers above the transport plug in here (see below) */
        const struct etcd_watch_ops *watch_ops;
        const struct etcd_auth_ops *auth_ops;
        void (*after_io)(struct etcd_client *c); /* set by etcd.c for etcd_loop.c */
        /* etcd_auth.c */
        char *auth_user, *auth_password, *auth_token;
        unsigned auth_gen;   /* bumped whenever the token changes */
        bool auth_inflight;  /* an authenticate request is out */
        bool auth_optional;  /* "auth not enabled" means: go on without a token */
        bool auth_tokenless; /* ... and that is what etcd said */
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
        struct curl_slist *auth_headers; /* headers plus Authorization, per start */
        unsigned auth_gen;               /* the token generation this request carried */
        bool auth_waiting;               /* not started: waits for a token */
        bool auth_mark;                  /* scratch mark while waking waiters */
        bool auth_retried;               /* already re-authenticated once */
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
        unsigned reauths; /* token renewals since the stream was last established */
        bool established;
        bool dead;   /* compacted or canceled for good */
        bool reauth; /* canceled for an expired token: reconnect at once, quietly */
        bool notify_created;
};

/* etcd.c */
/* Create and start a request; body is consumed. endpoint NULL: the client's
 * endpoints with failover; watch non-NULL: a stream for that watch. */
int etcd_req_new(struct etcd_client *c, const char *endpoint, const char *path, json_t *body, bool get,
                 struct etcd_watch *watch, etcd_cb cb, void *userdata, struct etcd_req **ret);
void etcd_req_free(struct etcd_req *q);
/* (Re)start a request's transfer (it may wait for a token first). */
int etcd_req_restart(struct etcd_req *q);

/* The layers above the transport plug into the client when first used, so
 * that etcd.c and etcd_loop.c never call up into them: etcd_watch.c when a
 * watch is created, etcd_auth.c when a user is set. */
struct etcd_watch_ops {
        void (*dispatch)(struct etcd_client *c); /* curl ran: parse and deliver stream data */
        bool (*deliver)(struct etcd_req *q);     /* stream data arrived with the end of a stream */
        void (*ended)(struct etcd_watch *w, const char *why); /* its stream ended: reconnect */
        void (*free_all)(struct etcd_client *c);
};
struct etcd_auth_ops {
        /* Before a transfer starts: 0 go (Authorization header set when there
         * is a token), 1 wait for the token (the request is restarted when it
         * comes, or failed), < 0 error. */
        int (*prepare)(struct etcd_req *q);
        /* A request refused for its token: authenticate again and retry it,
         * once. True when it was restarted (nothing to report yet). */
        bool (*retry)(struct etcd_req *q, const struct etcd_error *err);
        /* Drop the token of generation gen (no-op when a newer one is in use). */
        void (*invalidate)(struct etcd_client *c, unsigned gen);
        void (*free)(struct etcd_client *c);
};

/* etcd_loop.c: curl multi driven by c->event; calls c->after_io after curl ran */
int etcd_loop_attach(struct etcd_client *c);

/* etcd_json.c */
void etcd_set_err(struct etcd_error *err, int code, const char *fmt, ...) _printf_(3, 4);
