/* daemon.c: the signal handling both daemons share (see daemon.h). */
#include <signal.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

/* one set of signals per process: the handlers' targets */
static struct {
        daemon_signal_fn stop, hup;
        void *userdata;
} handlers;

void daemon_block_signals(void) {
        sigset_t ss;

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_notice("received %s, stopping", strsignal((int)si->ssi_signo));
        handlers.stop(handlers.userdata);
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        handlers.hup(handlers.userdata);
        return 0;
}

int daemon_add_signals(sd_event *e, daemon_signal_fn stop, daemon_signal_fn hup, void *userdata) {
        int r;

        handlers.stop = stop;
        handlers.hup = hup;
        handlers.userdata = userdata;
        if ((r = sd_event_add_signal(e, NULL, SIGTERM, on_stop, NULL)) < 0 ||
            (r = sd_event_add_signal(e, NULL, SIGINT, on_stop, NULL)) < 0 ||
            (r = sd_event_add_signal(e, NULL, SIGHUP, on_hup, NULL)) < 0)
                return r;
        return 0;
}
