/* sha256.c: SHA-256 hex digests (deploy hashes, key fingerprints) from libcrypto. */
#include <openssl/evp.h>
#include <stdio.h>

#include "util.h"

void sha256_hex(const void *data, size_t len, char out[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        /* EVP_Digest with a fetched-by-name algorithm cannot fail short of a
         * broken libcrypto; an empty string then fails every hash compare */
        out[0] = 0;
        if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
                return;
        for (unsigned i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}
