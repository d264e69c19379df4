/* etcdsnap.h: etcd snapshots as files: the gateway's snapshot stream written
 * to a temp file beside the target (never held whole in memory), checked
 * against the sha256 etcd appends, and etcd's own tool (etcdutl on 3.5+,
 * etcdctl on 3.4) asked to open it.
 *
 * Recipe (daemon or CLI):
 *   1. snap_sink_open(final_path, &s);
 *   2. etcd_stream_raw(c, endpoint, ETCD_SNAPSHOT, NULL, snap_sink_feed_cb, s,
 *      done_cb, ud) and wait for done_cb;
 *   3. snap_sink_finish(s, &info, err): fsync, the trailing sha256 checked;
 *   4. snap_tool_status(tool, snap_sink_temp_path(s), &info, err) (or its
 *      spawn/collect halves from an event loop);
 *   5. snap_sink_commit(s) renames it into place; snap_sink_free(s) removes
 *      the temp file unless committed.
 * Files: etcdsnap.c (the sink, the sha256 check), etcdsnap_tool.c (etcd's
 * tool: snap_tool_*). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct snap_info {
        uint64_t size;      /* bytes of the file, etcd's hash trailer included */
        char sha256[65];    /* of the whole file */
        int64_t revision;   /* from etcd's tool */
        int64_t total_keys; /* from etcd's tool */
};

struct snap_sink;
int snap_sink_open(const char *final_path, struct snap_sink **ret);
/* Raw gateway bytes (JSON messages with base64 "blob" chunks); < 0 stops. */
int snap_sink_feed(struct snap_sink *s, const void *data, size_t len);
int snap_sink_feed_cb(const void *data, size_t len, void *userdata);
/* Instead of a stream: a bolt db file (etcd's member/snap/db, etcd stopped),
 * with etcd's sha256 trailer appended, as `etcdctl snapshot save` makes it. */
int snap_sink_write_db(struct snap_sink *s, int db_fd);
/* The error the stream carried or writing met, or NULL. */
const char *snap_sink_error(struct snap_sink *s);
uint64_t snap_sink_size(struct snap_sink *s);
const char *snap_sink_temp_path(struct snap_sink *s);
const char *snap_sink_path(struct snap_sink *s);
/* fsync and check the trailing sha256; 0, or -EBADMSG / -errno with err set. */
int snap_sink_finish(struct snap_sink *s, struct snap_info *ret, char *err, size_t errlen);
/* Rename over the final path and fsync the directory. */
int snap_sink_commit(struct snap_sink *s);
void snap_sink_free(struct snap_sink *s);

/* Check a snapshot file on disk: not empty, etcd's layout (size % 512 ==
 * 32) and its trailing sha256. 0, or -EBADMSG / -errno with err saying why. */
int snap_file_check(const char *path, struct snap_info *ret, char *err, size_t errlen);

/* etcd's snapshot tool for the installed version: etcdutl (3.5+) if it exists
 * beside etcd_binary or in PATH, else etcdctl. *ret_is_etcdutl tells which. */
int snap_tool_find(const char *etcd_binary, char **ret_path, bool *ret_is_etcdutl);
/* Start `TOOL snapshot status -w json FILE` with stdout and stderr in memfds. */
int snap_tool_status_spawn(const char *tool, const char *file, pid_t *ret_pid, int *ret_out, int *ret_err);
/* After it exited with status (waitpid form): revision and keys into ret, or
 * -EBADMSG with err holding the tool's own words. Closes the fds. */
int snap_tool_status_collect(int status, int out_fd, int err_fd, struct snap_info *ret, char *err,
                             size_t errlen);
/* Both, waiting (for CLIs). */
int snap_tool_status(const char *tool, const char *file, struct snap_info *ret, char *err, size_t errlen);
