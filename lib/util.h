/* util.h: URL lists, hostnames, base64, time and file helpers shared by all programs. */
#pragma once

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Split a URL list on ',' ';' or whitespace. Every entry must be
 * http:// or https://host:port (port 1..65535; host a name, IPv4 or [IPv6]).
 * Duplicates are dropped (first kept), in O(n log n). A list longer than
 * URLS_MAX_LEN bytes or with more than URLS_MAX entries is refused (-E2BIG)
 * before any work per entry: such values come from etcd keys anyone can
 * write. On error returns -EINVAL or -E2BIG and writes a message naming the
 * bad entry (or the limit) to err. */
#define URLS_MAX_LEN (64 * 1024)
#define URLS_MAX 64
int urls_parse(const char *s, char ***ret, char *err, size_t errlen);
/* Does the comma-joined URL list (a volunteer or nominated value) hold url,
 * as a whole entry? */
bool url_list_holds(const char *list, const char *url);
/* Host and port of one URL (host without brackets). */
int url_split(const char *url, char **ret_scheme, char **ret_host, int *ret_port);
/* True when host is a wildcard (0.0.0.0, ::) or loopback (127/8, ::1, localhost). */
bool host_is_wildcard(const char *host);
bool host_is_loopback(const char *host);

/* [A-Za-z0-9][A-Za-z0-9.-]{0,62} */
bool hostname_is_valid(const char *h);
/* The name of this node, the same rule for every program: given (the
 * --hostname value) when set, else the system host name, which must then be a
 * valid node name as it is, never a guess that could differ from the name the
 * node's other program uses. 0 with *ret allocated; -EINVAL (the name is not
 * valid), -ENOMEM or gethostname's -errno, with a message in err. */
int node_hostname(const char *given, char **ret, char *err, size_t errlen);
/* node_hostname with the system host name passed in (NULL: unknown). */
int node_hostname_pick(const char *given, const char *system, char **ret, char *err, size_t errlen);

/* base64 (standard alphabet, padded). Returned strings are NUL-terminated;
 * decoded data also gets a terminating NUL not counted in ret_len. */
char *b64_encode(const void *data, size_t len);
int b64_decode(const char *s, char **ret, size_t *ret_len);

/* Write the message to err (when err and errlen are given) and return r:
 * how a function that fills an err buffer says what is wrong, in one line. */
int errmsg(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parse an int64 given as a JSON-ish decimal string. */
int parse_int64(const char *s, int64_t *ret);

uint64_t now_usec(void); /* CLOCK_MONOTONIC */
char *rfc3339_now(void); /* UTC, seconds precision */

/* Read a whole file, refusing anything larger than max bytes. */
int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len);
/* Write data to path atomically (temp file in the same dir, fsync, rename). */
int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* The same, the new file owned by uid:gid before it appears ((uid_t) -1 or
 * (gid_t) -1: the writer's). */
int write_file_atomic_owned(const char *path, const void *data, size_t len, unsigned mode, uid_t uid,
                            gid_t gid);
/* Atomic but not durable (no fsync): for a local copy of state kept
 * elsewhere too, which a crash may leave one version old (never torn). */
int write_file_replace(const char *path, const void *data, size_t len, unsigned mode);
/* mkdir -p with the given mode for created directories. */
int mkdir_p(const char *path, unsigned mode);
/* rm -rf */
int rm_rf(const char *path);

/* SHA-256 of data, as 64 lowercase hex chars + NUL in out. */
void sha256_hex(const void *data, size_t len, char out[65]);
