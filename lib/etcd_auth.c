/* etcd_auth.c: etcd user authentication for the gateway client. With a user
 * set (etcd_client_set_auth), the first request asks /v3/auth/authenticate for
 * a token while every other request waits; then each request and watch carries
 * the token in its Authorization header. A request refused because the token
 * is invalid or expired (gRPC 16, "invalid auth token") or because it carried
 * none after auth was enabled ("user name is empty") authenticates again once
 * and is retried; a watch canceled for the same reason reconnects from its
 * revision. Also: reading a password file the way ssh reads a key. */
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd_internal.h"
#include "log.h"
#include "util.h"

#define PASSWORD_MAX 4096

/* Forget a secret: zero it, then free it. */
static void secret_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

int etcd_password_file_read(const char *path, char **ret, char *err, size_t errlen) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        char buf[PASSWORD_MAX + 2];
        size_t len = 0;

        if (!path || !*path) {
                snprintf(err, errlen, "no password file given");
                return -EINVAL;
        }
        /* O_NONBLOCK: a FIFO (or device) must not block the open before fstat
         * refuses it; on a regular file it changes nothing */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "cannot open password file '%s': %s", path, strerror(e));
                return -e;
        }
        if (fstat(fd, &st) < 0) {
                int e = errno;
                snprintf(err, errlen, "cannot stat password file '%s': %s", path, strerror(e));
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "password file '%s' is not a regular file", path);
                return -EINVAL;
        }
        if (st.st_mode & 0077) {
                snprintf(err, errlen,
                         "password file '%s' is accessible by group or others (mode %04o); "
                         "it must be readable by its owner only (chmod 600)",
                         path, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        explicit_bzero(buf, sizeof buf);
                        snprintf(err, errlen, "cannot read password file '%s': %s", path, strerror(e));
                        return -e;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len >= sizeof buf)
                        break;
        }
        if (len > 0 && buf[len - 1] == '\n')
                len--; /* one trailing newline, as editors and echo write it */
        if (len > PASSWORD_MAX) {
                explicit_bzero(buf, sizeof buf);
                snprintf(err, errlen, "password file '%s' is longer than %d bytes", path, PASSWORD_MAX);
                return -E2BIG;
        }
        if (len == 0) {
                snprintf(err, errlen, "password file '%s' is empty", path);
                return -EINVAL;
        }
        if (memchr(buf, 0, len)) {
                explicit_bzero(buf, sizeof buf);
                snprintf(err, errlen, "password file '%s' holds a NUL byte", path);
                return -EINVAL;
        }
        char *p = strndup(buf, len);
        explicit_bzero(buf, sizeof buf);
        if (!p) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

void etcd_password_free(char *p) {
        secret_free(p);
}

static void auth_client_free(struct etcd_client *c);
static int auth_prepare(struct etcd_req *q);
static bool auth_retry(struct etcd_req *q, const struct etcd_error *err);
static void auth_invalidate(struct etcd_client *c, unsigned gen);

/* etcd.c and etcd_watch.c reach the token through these */
static const struct etcd_auth_ops auth_ops = {
    .prepare = auth_prepare,
    .retry = auth_retry,
    .invalidate = auth_invalidate,
    .free = auth_client_free,
};

int etcd_client_set_auth(struct etcd_client *c, const char *user, const char *password) {
        char *u = NULL, *p = NULL;

        if (user) {
                u = strdup(user);
                p = strdup(password ? password : "");
                if (!u || !p) {
                        free(u);
                        secret_free(p);
                        return -ENOMEM;
                }
        }
        free(c->auth_user);
        secret_free(c->auth_password);
        secret_free(c->auth_token);
        c->auth_user = u;
        c->auth_password = p;
        c->auth_token = NULL;
        c->auth_gen++;
        c->auth_ops = &auth_ops;
        return 0;
}

void etcd_client_set_auth_optional(struct etcd_client *c, bool optional) {
        c->auth_optional = optional;
}

const char *etcd_client_auth_user(struct etcd_client *c) {
        return c->auth_user;
}

static void auth_client_free(struct etcd_client *c) {
        free(c->auth_user);
        secret_free(c->auth_password);
        secret_free(c->auth_token);
        c->auth_user = c->auth_password = c->auth_token = NULL;
}

/* Fail one request that cannot go on: a watch stream reconnects with
 * backoff, anything else reports err to its callback. */
static void auth_fail_one(struct etcd_req *q, const struct etcd_error *err) {
        struct etcd_client *c = q->c;

        q->auth_waiting = q->auth_mark = false;
        if (q->stream) {
                struct etcd_watch *w = q->watch;
                if (w)
                        w->req = NULL;
                etcd_req_free(q);
                if (w)
                        c->watch_ops->ended(w, err->msg);
        } else {
                etcd_cb cb = q->cb;
                void *ud = q->ud;
                etcd_req_free(q);
                if (cb)
                        cb(c, err, NULL, ud);
        }
}

/* Fail the requests that waited for a token which did not come. */
static void auth_fail_waiting(struct etcd_client *c, const struct etcd_error *err) {
        struct etcd_req *q;

        for (q = c->reqs; q; q = q->next)
                q->auth_mark = q->auth_waiting;
again:
        for (q = c->reqs; q; q = q->next)
                if (q->auth_mark) {
                        auth_fail_one(q, err);
                        goto again; /* a callback may have freed or added any request */
                }
}

/* Start the requests that waited for the token. */
static void auth_start_waiting(struct etcd_client *c) {
        struct etcd_req *q;

        for (q = c->reqs; q; q = q->next)
                q->auth_mark = q->auth_waiting;
again:
        for (q = c->reqs; q; q = q->next) {
                if (!q->auth_mark)
                        continue;
                q->auth_mark = q->auth_waiting = false;
                if (etcd_req_restart(q) < 0) {
                        struct etcd_error err;
                        etcd_set_err(&err, ETCD_ERR_TRANSPORT, "cannot start request to %s", q->path);
                        auth_fail_one(q, &err);
                }
                goto again; /* a failure callback may have freed or added any request */
        }
}

static void auth_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct etcd_error e;
        const char *tok = NULL;

        c->auth_inflight = false;
        if (!err && json_unpack(reply, "{s:s}", "token", &tok) < 0) {
                etcd_set_err(&e, ETCD_ERR_PROTOCOL, "etcd at %s sent no token for user '%s'",
                             etcd_client_current_endpoint(c), c->auth_user);
                auth_fail_waiting(c, &e);
                return;
        }
        if (err && err->code == 9 && strstr(err->msg, "not enabled") && c->auth_optional) {
                /* the supervisor that is about to enable auth: carry on without a token */
                log_debug("etcd: authentication is not enabled at %s; no token for '%s'",
                          etcd_client_current_endpoint(c), c->auth_user);
                c->auth_tokenless = true;
                auth_start_waiting(c);
                return;
        }
        if (err) {
                if (err->code > 0)
                        etcd_set_err(&e, err->code, "etcd at %s refused user '%s': %s%s",
                                     etcd_client_current_endpoint(c), c->auth_user, err->msg,
                                     err->code == 9
                                         ? " (a mgmt-supervisor with --auth enables it when it coordinates)"
                                         : "");
                else
                        e = *err;
                auth_fail_waiting(c, &e);
                return;
        }
        char *t = strdup(tok);
        if (!t) {
                etcd_set_err(&e, ETCD_ERR_PROTOCOL, "out of memory");
                auth_fail_waiting(c, &e);
                return;
        }
        secret_free(c->auth_token);
        c->auth_token = t;
        c->auth_tokenless = false;
        c->auth_gen++;
        log_debug("etcd: authenticated as '%s' at %s", c->auth_user, etcd_client_current_endpoint(c));
        auth_start_waiting(c);
}

static int auth_prepare(struct etcd_req *q) {
        struct etcd_client *c = q->c;

        curl_slist_free_all(q->auth_headers);
        q->auth_headers = NULL;
        if (!c->auth_user || q->get || streq(q->path, ETCD_AUTHENTICATE))
                return 0;
        if (c->auth_token) {
                _cleanup_free_ char *h = NULL;
                if (asprintf(&h, "Authorization: %s", c->auth_token) < 0)
                        return -ENOMEM;
                q->auth_headers = curl_slist_append(NULL, "Content-Type: application/json");
                if (q->auth_headers)
                        q->auth_headers = curl_slist_append(q->auth_headers, "Expect:");
                struct curl_slist *l = q->auth_headers ? curl_slist_append(q->auth_headers, h) : NULL;
                explicit_bzero(h, strlen(h));
                if (!l) {
                        curl_slist_free_all(q->auth_headers);
                        q->auth_headers = NULL;
                        return -ENOMEM;
                }
                q->auth_headers = l;
                q->auth_gen = c->auth_gen;
                return 0;
        }
        if (c->auth_tokenless) {
                q->auth_gen = c->auth_gen;
                return 0;
        }
        q->auth_waiting = true;
        if (!c->auth_inflight) {
                json_t *body = json_pack("{s:s, s:s}", "name", c->auth_user, "password", c->auth_password);
                if (!body)
                        return -ENOMEM;
                c->auth_inflight = true;
                int r = etcd_call(c, ETCD_AUTHENTICATE, body, auth_done, NULL);
                if (r < 0) {
                        c->auth_inflight = false;
                        q->auth_waiting = false;
                        return r;
                }
        }
        return 1;
}

static bool auth_retry(struct etcd_req *q, const struct etcd_error *err) {
        struct etcd_client *c = q->c;

        if (!c->auth_user || q->auth_retried || streq(q->path, ETCD_AUTHENTICATE) ||
            !etcd_error_is_auth_renewal(err->code, err->msg))
                return false;
        q->auth_retried = true;
        auth_invalidate(c, q->auth_gen);
        log_debug("etcd: token of '%s' refused (%s); authenticating again", c->auth_user, err->msg);
        return etcd_req_restart(q) >= 0;
}

static void auth_invalidate(struct etcd_client *c, unsigned gen) {
        if (gen != c->auth_gen)
                return; /* a newer token is already there */
        secret_free(c->auth_token);
        c->auth_token = NULL;
        c->auth_tokenless = false;
        c->auth_gen++;
}

int etcd_client_login_file(struct etcd_client *c, const char *user, const char *password_file, char *err,
                           size_t errlen) {
        _cleanup_password_ char *pw = NULL;
        int r;

        if (!password_file) {
                if (user) {
                        snprintf(err, errlen, "--etcd-user '%s' needs --etcd-password-file", user);
                        return -EINVAL;
                }
                return 0;
        }
        if (!user || !*user) {
                snprintf(err, errlen, "--etcd-password-file needs --etcd-user");
                return -EINVAL;
        }
        r = etcd_password_file_read(password_file, &pw, err, errlen);
        if (r < 0)
                return r;
        r = etcd_client_set_auth(c, user, pw);
        if (r < 0)
                snprintf(err, errlen, "out of memory");
        return r;
}

int etcd_cert_common_name(const char *cert_file, char **ret) {
        FILE *f;
        X509 *x;
        char cn[256];
        int n;

        *ret = NULL;
        f = fopen(cert_file, "re");
        if (!f)
                return -errno;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (!x)
                return -EINVAL;
        n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        X509_free(x);
        if (n > 0 && !(*ret = strdup(cn)))
                return -ENOMEM;
        return 0;
}

int etcd_auth_check_cert(const char *cert_file, const char *flag, char *err, size_t errlen) {
        _cleanup_free_ char *cn = NULL;

        if (!cert_file || etcd_cert_common_name(cert_file, &cn) < 0 || !cn)
                return 0; /* none, or unreadable: the TLS setup reports that */
        snprintf(
            err, errlen,
            "certificate '%s' (%s) has the subject CN '%s': with etcd auth, etcd's JSON gateway refuses "
            "client certificates that carry a CN (\"CommonName of client sending a request against "
            "gateway will be ignored\"); issue it with an empty subject CN, the names in subjectAltName "
            "only",
            cert_file, flag, cn);
        return -EINVAL;
}
