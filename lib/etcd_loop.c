/* etcd_loop.c: the event loop side of the etcd client. libcurl multi is
 * driven by sd-event io and timer sources (CURLMOPT_SOCKETFUNCTION/
 * TIMERFUNCTION), so requests and streams never block the loop. After curl
 * ran, c->after_io (etcd.c) delivers stream data and finished transfers. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "etcd_internal.h"
#include "util.h"

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
        c->after_io(c);
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
                (void)sd_event_source_set_description(src, "curl-socket");
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
        c->after_io(c);
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
        sd_event_source_set_time(c->timer, now + (uint64_t)timeout_ms * USEC_PER_MSEC);
        sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        return 0;
}

/* Drive c->multi from c->event: a timer source for curl's timeouts and an
 * io source per socket. */
int etcd_loop_attach(struct etcd_client *c) {
        int r = sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, timer_fired, c);
        if (r < 0)
                return r;
        sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        (void)sd_event_source_set_description(c->timer, "curl-timer");
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        return 0;
}
