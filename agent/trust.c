/* trust.c: --trusted-keys (DESIGN.md "Trust"). With trusted keys set, a
 * deploy runs only when it is signed by one of them over exactly its id and
 * content; anything else is refused with the reason (reported as the
 * deploy's failed status by deploys.c) and the previous graph keeps running.
 * Without them nothing is checked: whoever can write /_mgmt/deploy/ runs
 * commands as root on every agent. */
#include <errno.h>
#include <stdio.h>

#include "agent.h"
#include "deploy.h"
#include "log.h"
#include "macro.h"
#include "sign.h"

int agent_trust_load(struct agent *a, const char *path) {
        struct sign_keyring kr = {0};
        char err[1024] = "";
        int r;

        if (!path || !*path) {
                log_notice(
                    "no --trusted-keys: every deploy is applied unchecked (anyone who can write to etcd "
                    "runs commands on this host)");
                return 0;
        }
        r = sign_keyring_load(path, &kr, err, sizeof err);
        if (r == -ENOMEM)
                return log_error_errno(r, "cannot load --trusted-keys: %m");
        if (r < 0) {
                log_errorx("--trusted-keys: %s", err);
                return r;
        }
        a->trusted = malloc(sizeof *a->trusted);
        if (!a->trusted) {
                sign_keyring_clear(&kr);
                return log_error_errno(-ENOMEM, "out of memory");
        }
        *a->trusted = kr;
        for (size_t i = 0; i < kr.n; i++)
                log_info("trusting deploys signed by key %.*s... ('%s')", SIGN_FPR_SHORT,
                         sign_key_fingerprint(kr.keys[i]), sign_key_origin(kr.keys[i]));
        return 0;
}

void agent_trust_free(struct agent *a) {
        if (a->trusted)
                sign_keyring_clear(a->trusted);
        free(a->trusted);
        a->trusted = NULL;
}

int agent_trust_check(const struct agent *a, int64_t id, const char *payload, size_t len, char *err,
                      size_t errlen) {
        struct deploy d = {0};
        char why[512] = "";
        int r;

        if (!a->trusted)
                return 0;
        r = deploy_decode(payload, len, &d, why, sizeof why);
        if (r == -ENOMEM) {
                snprintf(err, errlen, "deploy %lld: out of memory", (long long)id);
                return r;
        }
        if (r < 0) {
                snprintf(err, errlen, "deploy %lld: bad payload: %s", (long long)id, why);
                return -EPERM;
        }
        r = deploy_verify(&d, id, a->trusted, err, errlen);
        if (r == -ENOMEM)
                snprintf(err, errlen, "deploy %lld: out of memory verifying its signature", (long long)id);
        else if (r >= 0)
                log_info("deploy %lld is signed by trusted key %.*s...", (long long)id, SIGN_FPR_SHORT,
                         d.signer);
        deploy_clear(&d);
        return r;
}
