/* hoststatus.c: the status record an agent writes at /_mgmt/status/<host>,
 * encoded (the agent) and decoded (mgmt-deploy --wait, show, cluster status)
 * in one place, so the two sides cannot drift apart. */
#include <jansson.h>
#include <stdio.h>

#include "hoststatus.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

#ifndef _cleanup_json_
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

static const char *const state_names[_DEPLOY_STATE_MAX] = {
    [DEPLOY_STATE_APPLYING] = "applying",
    [DEPLOY_STATE_CONVERGED] = "converged",
    [DEPLOY_STATE_FAILED] = "failed",
};

const char *deploy_state_to_string(enum deploy_state s) {
        return (unsigned)s < _DEPLOY_STATE_MAX ? state_names[s] : NULL;
}

int deploy_state_from_string(const char *s) {
        for (int i = 0; s && i < _DEPLOY_STATE_MAX; i++)
                if (streq(s, state_names[i]))
                        return i;
        return -EINVAL;
}

void host_status_clear(struct host_status *s) {
        free(s->host);
        strv_free(s->errors);
        free(s->time);
        *s = (struct host_status){0};
}

int host_status_decode(const char *host, const char *text, size_t len, struct host_status *ret, char *err,
                       size_t errlen) {
        _cleanup_json_ json_t *j = NULL;
        struct host_status s = {0};
        json_error_t je;
        json_t *v;
        int st;

        j = json_loadb(text, len, 0, &je);
        if (!json_is_object(j))
                return errmsg(err, errlen, -EBADMSG, "status of '%s' is not a JSON object", host);
        v = json_object_get(j, "deploy");
        if (json_is_integer(v))
                s.deploy = (int64_t)json_integer_value(v);
        else if (!json_is_string(v) || parse_int64(json_string_value(v), &s.deploy) < 0)
                return errmsg(err, errlen, -EBADMSG, "status of '%s': 'deploy' must be an integer", host);
        v = json_object_get(j, "state");
        st = json_is_string(v) ? deploy_state_from_string(json_string_value(v)) : -EINVAL;
        if (st < 0)
                return errmsg(err, errlen, -EBADMSG,
                              "status of '%s': 'state' must be applying, converged or failed", host);
        s.state = (enum deploy_state)st;
        if (!(s.host = strdup(host)))
                return -ENOMEM;
        v = json_object_get(j, "errors");
        if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                        if (json_is_string(e) && strv_push(&s.errors, json_string_value(e)) < 0) {
                                host_status_clear(&s);
                                return -ENOMEM;
                        }
                }
        }
        v = json_object_get(j, "time");
        if (json_is_string(v) && !(s.time = strdup(json_string_value(v)))) {
                host_status_clear(&s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

char *host_status_encode(const struct host_status *s) {
        const char *state = deploy_state_to_string(s->state);
        json_t *errors, *j;
        char *text;

        if (!state)
                return NULL;
        errors = json_array();
        if (!errors)
                return NULL;
        for (size_t i = 0; s->errors && s->errors[i]; i++)
                if (json_array_append_new(errors, json_string(s->errors[i])) < 0) {
                        json_decref(errors);
                        return NULL;
                }
        j = json_pack("{s:I, s:s, s:o, s:s}", "deploy", (json_int_t)s->deploy, "state", state, "errors",
                      errors, "time", s->time ? s->time : "");
        if (!j)
                return NULL;
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return text;
}
