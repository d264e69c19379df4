/* keys.c: builds and parses the /_mgmt/... key schema (DESIGN.md, "etcd keys"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "keys.h"
#include "macro.h"
#include "util.h"

static char *fmt(const char *f, ...) _printf_(1, 2);
static char *fmt(const char *f, ...) {
        va_list ap;
        char *r;
        va_start(ap, f);
        if (vasprintf(&r, f, ap) < 0)
                r = NULL;
        va_end(ap);
        return r;
}

char *key_ideal_size(void) {
        return strdup(MGMT_NS "/idealClusterSize");
}
char *key_volunteer(const char *h) {
        return fmt(MGMT_NS "/volunteer/%s", h);
}
char *key_volunteer_prefix(void) {
        return strdup(MGMT_NS "/volunteer/");
}
char *key_nominated(const char *h) {
        return fmt(MGMT_NS "/nominated/%s", h);
}
char *key_nominated_prefix(void) {
        return strdup(MGMT_NS "/nominated/");
}
char *key_endpoints(const char *h) {
        return fmt(MGMT_NS "/endpoints/%s", h);
}
char *key_endpoints_prefix(void) {
        return strdup(MGMT_NS "/endpoints/");
}
char *key_coordinator(void) {
        return strdup(MGMT_NS "/coordinator");
}
char *key_cluster(void) {
        return strdup(MGMT_NS "/cluster");
}
char *key_plan(void) {
        return strdup(MGMT_NS "/plan");
}
char *key_deploy_prefix(void) {
        return strdup(MGMT_NS "/deploy/");
}
char *key_deploy_payload(int64_t id) {
        return fmt(MGMT_NS "/deploy/%lld/payload", (long long)id);
}
char *key_deploy_hash(int64_t id) {
        return fmt(MGMT_NS "/deploy/%lld/hash", (long long)id);
}
char *key_exported_prefix(void) {
        return strdup(MGMT_NS "/exported/");
}
char *key_exported_host_prefix(const char *h) {
        return fmt(MGMT_NS "/exported/%s/resources/", h);
}
char *key_exported(const char *h, const char *kind, const char *name) {
        return fmt(MGMT_NS "/exported/%s/resources/%s/%s", h, kind, name);
}
char *key_converged(const char *h) {
        return fmt(MGMT_NS "/converged/%s", h);
}
char *key_status(const char *h) {
        return fmt(MGMT_NS "/status/%s", h);
}
char *key_status_prefix(void) {
        return strdup(MGMT_NS "/status/");
}
char *key_snapshot(const char *h) {
        return fmt(MGMT_NS "/snapshot/%s", h);
}
char *key_snapshot_prefix(void) {
        return strdup(MGMT_NS "/snapshot/");
}

const char *key_host_suffix(const char *key, const char *prefix) {
        if (!key || !prefix || !startswith(key, prefix))
                return NULL;
        key += strlen(prefix);
        return hostname_is_valid(key) ? key : NULL;
}

int64_t key_deploy_id(const char *key, const char **ret_leaf) {
        const char *p = MGMT_NS "/deploy/";
        char *end;
        long long id;

        if (!startswith(key, p))
                return -1;
        key += strlen(p);
        if (*key < '1' || *key > '9')
                return -1;
        errno = 0;
        id = strtoll(key, &end, 10);
        if (errno || *end != '/' || id < 1)
                return -1;
        if (ret_leaf)
                *ret_leaf = end + 1;
        return id;
}

int key_exported_parse(const char *key, char **ret_host, char **ret_kind, char **ret_name) {
        const char *p = MGMT_NS "/exported/", *h, *r, *k, *n;

        if (!startswith(key, p))
                return -EINVAL;
        h = key + strlen(p);
        r = strstr(h, "/resources/");
        if (!r)
                return -EINVAL;
        k = r + strlen("/resources/");
        n = strchr(k, '/');
        if (!n || n == k || !n[1])
                return -EINVAL;
        _cleanup_free_ char *host = strndup(h, (size_t)(r - h));
        if (!host || !hostname_is_valid(host))
                return -EINVAL;
        _cleanup_free_ char *kind = strndup(k, (size_t)(n - k));
        _cleanup_free_ char *name = strdup(n + 1);
        if (!kind || !name)
                return -ENOMEM;
        *ret_host = TAKE_PTR(host);
        *ret_kind = TAKE_PTR(kind);
        *ret_name = TAKE_PTR(name);
        return 0;
}
