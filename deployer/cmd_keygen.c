/* cmd_keygen.c: 'keygen DIR' (an Ed25519 pair for signing deploys) and the
 * --sign-key loader used by 'yaml' and 'empty' (DESIGN.md "Trust"). */
#include <stdio.h>

#include "deployer.h"
#include "log.h"
#include "macro.h"
#include "sign.h"

int cmd_keygen(struct deployer *d) {
        char err[1024] = "", fpr[SIGN_FPR_LEN + 1] = "";
        const char *dir = d->args[0];
        int r;

        r = sign_keygen_dir(dir, fpr, err, sizeof err);
        if (r == -ENOMEM) {
                log_errorx("out of memory; no key was written");
                return EXIT_ERROR;
        }
        if (r < 0) {
                log_errorx("%s; no key was written", err);
                return EXIT_ERROR;
        }
        log_info("wrote '%s/" SIGN_KEY_FILE "' (private, 0600: keep it off the nodes) and '%s/" SIGN_PUB_FILE
                 "' (give it to every agent with --trusted-keys)",
                 dir, dir);
        if (d->json)
                printf("{\"fingerprint\":\"%s\",\"key\":\"%s/" SIGN_KEY_FILE "\",\"pub\":\"%s/" SIGN_PUB_FILE
                       "\"}\n",
                       fpr, dir, dir);
        else
                printf("%s\n", fpr);
        return EXIT_DONE;
}

int deployer_load_sign_key(struct deployer *d, struct sign_key **ret) {
        const char *path = d->cfg.v[OPT_SIGN_KEY].s;
        char err[1024] = "";
        int r;

        *ret = NULL;
        if (!path || !*path)
                return 0;
        r = sign_key_load_private(path, ret, err, sizeof err);
        if (r == -ENOMEM)
                return log_error_errno(r, "cannot load the signing key: %m");
        if (r < 0) {
                log_errorx("--sign-key: %s", err);
                return r;
        }
        log_info("signing with key %.*s... from '%s'", SIGN_FPR_SHORT, sign_key_fingerprint(*ret), path);
        return 1;
}
