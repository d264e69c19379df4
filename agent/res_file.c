/* res_file.c: the "file" resource kind: check the file against the resource,
 * then change only what differs (content via temp file + rename, mode, owner,
 * group; parents created; state absent removes it). A path ending in '/' is
 * a directory. Mode and owner are set through an O_NOFOLLOW descriptor, so a
 * symlink swapped in after the check is never followed. With noop nothing
 * is changed: each difference is logged as what would be done. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

#define SOURCE_MAX (64 * 1024 * 1024) /* bytes copied from a 'source' */

/* Move what is at path aside (PATH.mgmt-aside.<time>), never deleting it. */
static int move_aside(const char *path, char *err, size_t errlen) {
        char aside[PATH_MAX];

        if (snprintf(aside, sizeof aside, "%s.mgmt-aside.%lld", path, (long long)time(NULL)) >=
            (int)sizeof aside) {
                snprintf(err, errlen, "cannot move '%s' aside: name too long", path);
                return -ENAMETOOLONG;
        }
        if (rename(path, aside) < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot move '%s' aside to '%s': %s", path, aside, strerror(-r));
                return r;
        }
        log_notice("file '%s': moved aside to '%s' (force)", path, aside);
        return 0;
}

/* Mode, owner and group of what is at path (a regular file or, for dir, a
 * directory), set through a descriptor opened without following a symlink.
 * Returns 1 if something changed (or would, with noop), 0, or -errno. */
static int apply_attrs(const struct res_file *f, const char *path, bool dir, bool noop, char *err,
                       size_t errlen) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        bool changed = false;
        uid_t uid = (uid_t)-1;
        gid_t gid = (gid_t)-1;
        unsigned id;
        int r;

        if (f->mode < 0 && !f->owner && !f->group)
                return 0;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (dir ? O_DIRECTORY : 0));
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP)
                        snprintf(err, errlen, "'%s' became a symbolic link: not following it", path);
                else
                        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(-r));
                return r;
        }
        if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "'%s' changed under us and is no longer a %s", path,
                         dir ? "directory" : "regular file");
                return -EEXIST;
        }
        if (f->mode >= 0 && (st.st_mode & 07777) != (unsigned)f->mode) {
                if (noop)
                        log_notice("noop: file '%s': would set mode %04o (is %04o)", f->path,
                                   (unsigned)f->mode, (unsigned)(st.st_mode & 07777));
                else if (fchmod(fd, (mode_t)f->mode) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot chmod '%s': %s", path, strerror(-r));
                        return r;
                } else
                        log_info("file '%s': mode set to %04o", f->path, (unsigned)f->mode);
                changed = true;
        }
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
                if (noop)
                        log_notice("noop: file '%s': would change owner/group", f->path);
                else if (fchown(fd, uid, gid) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot chown '%s': %s", path, strerror(-r));
                        return r;
                } else
                        log_info("file '%s': owner/group changed", f->path);
                changed = true;
        }
        return changed;
}

/* absent: true: remove what is there (a file or an empty directory), or with
 * force move aside a thing of the other type. 1 when changed (or would be). */
static int file_remove(const struct res_file *f, const char *path, bool dir, const struct stat *st,
                       bool exists, bool noop, char *err, size_t errlen) {
        int r;

        if (!exists)
                return 0;
        if (dir ? !S_ISDIR(st->st_mode) : S_ISDIR(st->st_mode)) {
                if (!f->force) {
                        snprintf(err, errlen, "'%s' is %s: not removing it", path,
                                 dir ? "not a directory" : "a directory, not a file");
                        return dir ? -ENOTDIR : -EISDIR;
                }
                if (noop) {
                        log_notice("noop: file '%s': would move it aside (force)", f->path);
                        return 1;
                }
                r = move_aside(path, err, errlen);
                return r < 0 ? r : 1;
        }
        if (noop) {
                log_notice("noop: file '%s': would remove it", f->path);
                return 1;
        }
        if ((dir ? rmdir(path) : unlink(path)) < 0) {
                r = -errno;
                if (r == -ENOTEMPTY || r == -EEXIST)
                        snprintf(err, errlen,
                                 "directory '%s' is not empty: the agent never deletes files "
                                 "it does not manage",
                                 path);
                else
                        snprintf(err, errlen, "cannot remove '%s': %s", path, strerror(-r));
                return r;
        }
        log_info("file '%s': removed", f->path);
        return 1;
}

/* A directory: created (parents 0755) when missing, then its attributes.
 * changed: whether something was already changed (moved aside). */
static int dir_ensure(const struct res_file *f, const char *path, bool exists, bool changed, bool noop,
                      char *err, size_t errlen) {
        int r;

        if (!exists) {
                if (noop) {
                        log_notice("noop: file '%s': would create the directory", f->path);
                        return 1;
                }
                char pdir[PATH_MAX];
                /* parents 0755; the directory's own mode is set below, past the umask */
                if (parent_dir(path, pdir, sizeof pdir) >= 0 && (r = mkdir_p(pdir, 0755)) < 0) {
                        snprintf(err, errlen, "cannot create directory '%s': %s", pdir, strerror(-r));
                        return r;
                }
                if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                        r = -errno;
                        snprintf(err, errlen, "cannot create directory '%s': %s", path, strerror(-r));
                        return r;
                }
                log_info("file '%s': directory created", f->path);
                changed = true;
        }
        r = apply_attrs(f, path, true, noop, err, errlen);
        return r < 0 ? r : (changed || r > 0);
}

/* source: the content of a local text file (64 MiB at most, no NUL byte). */
static int read_source(const char *source, char **ret, char *err, size_t errlen) {
        _cleanup_free_ char *src = NULL;
        size_t len = 0;
        int r;

        r = read_file_max(source, SOURCE_MAX, &src, &len);
        if (r < 0) {
                snprintf(err, errlen, "cannot read source '%s': %s", source,
                         r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
                return r;
        }
        if (memchr(src, 0, len)) {
                snprintf(err, errlen, "source '%s' contains a NUL byte: binary files are not copied",
                         source);
                return -EINVAL;
        }
        *ret = TAKE_PTR(src);
        return 0;
}

int res_file_apply(const struct res_file *f, bool noop, char *err, size_t errlen) {
        char path[PATH_MAX];
        _cleanup_free_ char *src = NULL;
        const char *content = f->content;
        size_t plen = strlen(f->path);
        bool dir = plen > 1 && f->path[plen - 1] == '/';
        struct stat st;
        bool exists, changed = false;
        int r;

        /* a directory is "PATH/" in the graph, "PATH" for the system calls */
        if (plen >= sizeof path) {
                snprintf(err, errlen, "path '%s' is too long", f->path);
                return -ENAMETOOLONG;
        }
        memcpy(path, f->path, plen + 1);
        if (dir)
                path[plen - 1] = 0;

        if (lstat(path, &st) < 0) {
                if (errno != ENOENT) {
                        r = -errno;
                        snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(-r));
                        return r;
                }
                exists = false;
        } else
                exists = true;

        if (f->absent)
                return file_remove(f, path, dir, &st, exists, noop, err, errlen);

        /* the wrong type of thing: refused, or moved aside with force */
        if (exists && (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
                if (!f->force) {
                        snprintf(err, errlen, "'%s' exists and is not a %s (force: true moves it aside)",
                                 path, dir ? "directory" : "regular file");
                        return -EEXIST;
                }
                if (noop) {
                        log_notice("noop: file '%s': would move the %s there aside (force) and create it",
                                   f->path, S_ISDIR(st.st_mode) ? "directory" : "file");
                        return 1;
                }
                if ((r = move_aside(path, err, errlen)) < 0)
                        return r;
                exists = false;
                changed = true;
        }

        if (dir)
                return dir_ensure(f, path, exists, changed, noop, err, errlen);

        if (f->source) {
                r = read_source(f->source, &src, err, errlen);
                if (r < 0)
                        return r;
                content = src;
        }

        unsigned mode = f->mode >= 0 ? (unsigned)f->mode : exists ? (st.st_mode & 07777) : 0644;
        r = exists && content ? content_differs(path, content) : !exists;
        if (r < 0) {
                snprintf(err, errlen, "cannot read '%s': %s", path, strerror(-r));
                return r;
        }
        if (r > 0) {
                char pdir[PATH_MAX];
                const char *data = content ? content : "";

                if (noop) {
                        log_notice("noop: file '%s': would %s", f->path,
                                   exists ? "replace the content" : "create it");
                        if (!exists)
                                return 1;
                        changed = true;
                } else {
                        if (parent_dir(path, pdir, sizeof pdir) >= 0 && (r = mkdir_p(pdir, 0755)) < 0) {
                                snprintf(err, errlen, "cannot create directory '%s': %s", pdir,
                                         strerror(-r));
                                return r;
                        }
                        /* a replaced file keeps its owner and group unless the graph sets them */
                        r = write_file_atomic_owned(path, data, strlen(data), mode,
                                                    exists && !f->owner ? st.st_uid : (uid_t)-1,
                                                    exists && !f->group ? st.st_gid : (gid_t)-1);
                        if (r < 0) {
                                snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-r));
                                return r;
                        }
                        log_info("file '%s': %s", f->path, exists ? "content replaced" : "created");
                        changed = true;
                }
        }

        r = apply_attrs(f, path, false, noop, err, errlen);
        if (r < 0)
                return r;
        return changed || r > 0;
}
