/* macro.h: small helpers shared by every file: cleanup attributes, array sizes. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void strv_freep(char ***p);

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_strv_ _cleanup_(strv_freep)

/* Take ownership of a pointer: return it and clear the variable. */
#define TAKE_PTR(p)                         \
        ({                                  \
                __typeof__(p) _p_ = (p);    \
                (p) = NULL;                 \
                _p_;                        \
        })

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

/* NULL-terminated string vectors. */
void strv_free(char **v);
size_t strv_length(char *const *v);
int strv_push(char ***v, const char *s); /* copies s */
int strv_consume(char ***v, char *s);    /* takes s */
char **strv_copy(char *const *v);
char *strv_join(char *const *v, const char *sep);
int strv_contains(char *const *v, const char *s);
void strv_sort(char **v);
/* Drop later copies of equal strings, keeping the first of each in order;
 * O(n log n). */
int strv_uniq(char **v);
/* Append copies of add to *v (may be NULL): one allocation, O(n + m). */
int strv_extend(char ***v, char *const *add);
/* Append copies of add to *v (may be NULL), then strv_uniq(): the union of
 * two lists, first occurrence order kept. */
int strv_extend_uniq(char ***v, char *const *add);

static inline void strv_freep(char ***p) {
        strv_free(*p);
}

int startswith(const char *s, const char *prefix);
