/* tls.c: start-up check that our certificates cover the addresses we advertise. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "macro.h"
#include "supervisor.h"
#include "util.h"

static void x509_freep(X509 **p) {
        if (*p)
                X509_free(*p);
}

static void filep(FILE **p) {
        if (*p)
                fclose(*p);
}

static bool host_is_ip(const char *host) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* A peer verifies the host of the URL it dialled against the certificate we
 * present: an address must be an IP SAN, a name a DNS SAN (or the CN when the
 * certificate has no DNS SANs). Checking here turns a handshake failure on some
 * other host, later, into one message at start-up saying what to fix. */
int tls_check_cert(const char *cert_file, const char *flag, char *const *urls, char *err, size_t errlen) {
        _cleanup_(filep) FILE *f = NULL;
        _cleanup_(x509_freep) X509 *x = NULL;

        f = fopen(cert_file, "re");
        if (!f) {
                int r = -errno;
                snprintf(err, errlen, "cannot read certificate '%s' (%s): %s", cert_file, flag,
                         strerror(-r));
                return r == -ENOMEM ? r : -EINVAL;
        }
        x = PEM_read_X509(f, NULL, NULL, NULL);
        if (!x) {
                unsigned long e = ERR_get_error();
                snprintf(err, errlen, "certificate '%s' (%s) is not a PEM X.509 certificate: %s", cert_file,
                         flag, e ? ERR_reason_error_string(e) : "no certificate found");
                ERR_clear_error();
                return -EINVAL;
        }
        for (char *const *u = urls; u && *u; u++) {
                _cleanup_free_ char *host = NULL;
                bool ip;
                int ok;

                if (url_split(*u, NULL, &host, NULL) < 0) {
                        snprintf(err, errlen, "invalid URL '%s' checked against certificate '%s' (%s)", *u,
                                 cert_file, flag);
                        return -EINVAL;
                }
                ip = host_is_ip(host);
                ok = ip ? X509_check_ip_asc(x, host, 0) : X509_check_host(x, host, 0, 0, NULL);
                if (ok < 0) {
                        ERR_clear_error();
                        snprintf(err, errlen, "cannot check certificate '%s' (%s) against %s", cert_file,
                                 flag, host);
                        return -EINVAL;
                }
                if (ok == 0) {
                        snprintf(
                            err, errlen,
                            "certificate '%s' (%s) does not cover %s advertised in %s: add %s:%s to its "
                            "subjectAltName",
                            cert_file, flag, host, *u, ip ? "IP" : "DNS", host);
                        return -EINVAL;
                }
        }
        return 0;
}
