/* hoststatus.h: the status record an agent reports at /_mgmt/status/<host>:
 * {"deploy":N,"state":"applying|converged|failed","errors":[...],"time":"..."}
 * (the host is the key, not in the value). One file encodes and decodes it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum deploy_state { DEPLOY_STATE_APPLYING, DEPLOY_STATE_CONVERGED, DEPLOY_STATE_FAILED, _DEPLOY_STATE_MAX };
struct host_status {
        char *host;
        int64_t deploy;
        enum deploy_state state;
        char **errors; /* strv, may be NULL */
        char *time;
};
const char *deploy_state_to_string(enum deploy_state s);
int deploy_state_from_string(const char *s);
void host_status_clear(struct host_status *s);
/* Parse the JSON value of a status key; host is copied in. */
int host_status_decode(const char *host, const char *text, size_t len, struct host_status *ret, char *err,
                       size_t errlen);
/* The JSON value of a status key (compact, fields in the order above; time
 * NULL: ""). Returns a malloc'd string, NULL when out of memory or state is
 * not one of enum deploy_state. */
char *host_status_encode(const struct host_status *s);
