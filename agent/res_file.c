/* res_file.c: the "file" resource kind: check the file against the resource,
 * then change only what differs (content via temp file + rename, mode, owner,
 * group; parents created; state absent removes it). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "macro.h"
#include "util.h"

/* A user or group given by name or by number. */
static int lookup_id(const char *s, bool group, unsigned *ret) {
        int64_t n;

        if (parse_int64(s, &n) >= 0 && n >= 0 && n < (int64_t)UINT32_MAX) {
                *ret = (unsigned)n;
                return 0;
        }
        errno = 0;
        if (group) {
                struct group *gr = getgrnam(s);
                if (!gr)
                        return errno > 0 ? -errno : -ESRCH;
                *ret = gr->gr_gid;
        } else {
                struct passwd *pw = getpwnam(s);
                if (!pw)
                        return errno > 0 ? -errno : -ESRCH;
                *ret = pw->pw_uid;
        }
        return 0;
}

static int parent_dir(const char *path, char *buf, size_t len) {
        const char *slash = strrchr(path, '/');

        if (!slash || slash == path)
                return snprintf(buf, len, "/") < (int)len ? 0 : -ENAMETOOLONG;
        if ((size_t)(slash - path) >= len)
                return -ENAMETOOLONG;
        memcpy(buf, path, (size_t)(slash - path));
        buf[slash - path] = 0;
        return 0;
}

/* Content differs (or the file is missing)? 1 yes, 0 no, -errno. */
static int content_differs(const char *path, const char *content) {
        _cleanup_free_ char *cur = NULL;
        size_t len = 0, want = strlen(content);
        int r;

        r = read_file_max(path, want, &cur, &len);
        if (r == -ENOENT || r == -EFBIG)
                return 1;
        if (r < 0)
                return r;
        return len != want || memcmp(cur, content, want) != 0;
}

int res_file_apply(const struct res_file *f, char *err, size_t errlen) {
        struct stat st;
        bool exists, changed = false;
        int r;

        if (lstat(f->path, &st) < 0) {
                if (errno != ENOENT) {
                        snprintf(err, errlen, "cannot stat '%s': %s", f->path, strerror(errno));
                        return -errno;
                }
                exists = false;
        } else
                exists = true;

        if (f->absent) {
                if (!exists)
                        return 0;
                /* a file resource removes files (or symlinks), never a directory */
                if (S_ISDIR(st.st_mode)) {
                        snprintf(err, errlen, "'%s' is a directory, not a file: not removing it", f->path);
                        return -EISDIR;
                }
                if (unlink(f->path) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot remove '%s': %s", f->path, strerror(-r));
                        return r;
                }
                log_info("file '%s': removed", f->path);
                return 1;
        }

        if (exists && !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "'%s' exists and is not a regular file", f->path);
                return -EEXIST;
        }

        unsigned mode = f->mode >= 0 ? (unsigned)f->mode : exists ? (st.st_mode & 07777) : 0644;
        r = exists && f->content ? content_differs(f->path, f->content) : !exists;
        if (r < 0) {
                snprintf(err, errlen, "cannot read '%s': %s", f->path, strerror(-r));
                return r;
        }
        if (r > 0) {
                char dir[PATH_MAX];
                const char *data = f->content ? f->content : "";

                if (parent_dir(f->path, dir, sizeof dir) >= 0 && (r = mkdir_p(dir, 0755)) < 0) {
                        snprintf(err, errlen, "cannot create directory '%s': %s", dir, strerror(-r));
                        return r;
                }
                /* a replaced file keeps its owner and group unless the graph sets them */
                r = write_file_atomic_owned(f->path, data, strlen(data), mode,
                                            exists && !f->owner ? st.st_uid : (uid_t)-1,
                                            exists && !f->group ? st.st_gid : (gid_t)-1);
                if (r < 0) {
                        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(-r));
                        return r;
                }
                log_info("file '%s': %s", f->path, exists ? "content replaced" : "created");
                changed = true;
                if (lstat(f->path, &st) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot stat '%s': %s", f->path, strerror(-r));
                        return r;
                }
        }

        if (f->mode >= 0 && (st.st_mode & 07777) != (unsigned)f->mode) {
                if (chmod(f->path, (mode_t)f->mode) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot chmod '%s': %s", f->path, strerror(-r));
                        return r;
                }
                log_info("file '%s': mode set to %04o", f->path, (unsigned)f->mode);
                changed = true;
        }

        uid_t uid = (uid_t)-1;
        gid_t gid = (gid_t)-1;
        unsigned id;
        if (f->owner) {
                if ((r = lookup_id(f->owner, false, &id)) < 0) {
                        snprintf(err, errlen, "unknown owner '%s' for '%s'", f->owner, f->path);
                        return r;
                }
                if (st.st_uid != id)
                        uid = id;
        }
        if (f->group) {
                if ((r = lookup_id(f->group, true, &id)) < 0) {
                        snprintf(err, errlen, "unknown group '%s' for '%s'", f->group, f->path);
                        return r;
                }
                if (st.st_gid != id)
                        gid = id;
        }
        if (uid != (uid_t)-1 || gid != (gid_t)-1) {
                if (lchown(f->path, uid, gid) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot chown '%s': %s", f->path, strerror(-r));
                        return r;
                }
                log_info("file '%s': owner/group changed", f->path);
                changed = true;
        }
        return changed;
}
