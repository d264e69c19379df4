/* tls.c: start-up check that our certificates cover the addresses we advertise. */
#include <stdio.h>

#include "supervisor.h"

int tls_check_cert(const char *cert_file, const char *flag, char *const *urls, char *err, size_t errlen) {
        (void) cert_file;
        (void) flag;
        (void) urls;
        (void) err;
        (void) errlen;
        return 0; /* placeholder until the check lands (issue 7) */
}
