/* daemon.h: the signal handling both daemons (mgmt-supervisor, mgmt-agent)
 * set up the same way: signal handlers do nothing but wake the loop.
 *
 * Recipe:
 *   1. daemon_block_signals() first, before the event loop and any child:
 *      SIGTERM, SIGINT, SIGHUP and SIGCHLD are blocked, so that sd-event takes
 *      them through a signalfd (its child sources need SIGCHLD blocked);
 *   2. daemon_add_signals(e, stop, hup, ud) once what they act on exists:
 *      SIGTERM and SIGINT log "received SIG..., stopping" and call stop(ud);
 *      SIGHUP calls hup(ud) (a hangup never ends a daemon). One set per
 *      process. */
#pragma once

#include <systemd/sd-event.h>

typedef void (*daemon_signal_fn)(void *userdata);

void daemon_block_signals(void);
int daemon_add_signals(sd_event *e, daemon_signal_fn stop, daemon_signal_fn hup, void *userdata);
