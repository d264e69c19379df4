/* connect.c: the etcd client of mgmt-deploy, from --seeds, TLS flags, the
 * etcd user (--etcd-user, --etcd-password-file) and --timeout. */
#include "deployer.h"
#include "log.h"
#include "macro.h"

/* A client with a private event loop; each request is bounded by --timeout
 * (at most 10 s, so that a dead endpoint leaves time to try the next). */
int deployer_connect(struct deployer *d, struct etcd_client **ret) {
        struct etcd_tls tls = {
            .cert_file = d->cfg.v[OPT_CERT_FILE].s,
            .key_file = d->cfg.v[OPT_KEY_FILE].s,
            .ca_file = d->cfg.v[OPT_TRUSTED_CA_FILE].s,
        };
        struct etcd_client *c = NULL;
        char err[512];
        uint64_t per_call = d->timeout_usec;
        int r;

        if (!!tls.cert_file != !!tls.key_file) {
                log_errorx("--cert-file and --key-file must be given together");
                return -EINVAL;
        }
        r = etcd_client_new(NULL, d->cfg.v[OPT_SEEDS].list, &tls, &c);
        if (r < 0)
                return log_error_errno(r, "cannot set up the etcd client: %m");
        r = etcd_client_login_file(c, d->cfg.v[OPT_ETCD_USER].s, d->cfg.v[OPT_ETCD_PASSWORD_FILE].s, err,
                                   sizeof err);
        if (r >= 0 && etcd_client_auth_user(c))
                r = etcd_auth_check_cert(tls.cert_file, "--cert-file", err, sizeof err);
        if (r < 0) {
                etcd_client_free(c);
                log_errorx("%s", err);
                return r;
        }
        if (per_call == 0 || per_call > 10 * USEC_PER_SEC)
                per_call = 10 * USEC_PER_SEC;
        etcd_client_set_timeout(c, per_call);
        *ret = c;
        return 0;
}
