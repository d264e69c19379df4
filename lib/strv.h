/* strv.h: NULL-terminated string vectors (char **, last element NULL) used
 * for URL lists, argv and host sets. A NULL vector is an empty one. */
#pragma once

#include <stddef.h>

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

#define _cleanup_strv_ __attribute__((cleanup(strv_freep)))
