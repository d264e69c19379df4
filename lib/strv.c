/* strv.c: NULL-terminated string vectors used for URL lists, argv and host sets. */
#include <bsd/stdlib.h>
#include <stdbool.h>
#include <stdio.h>

#include "macro.h"
#include "strv.h"

void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

size_t strv_length(char *const *v) {
        size_t n = 0;
        if (v)
                while (v[n])
                        n++;
        return n;
}

int strv_consume(char ***v, char *s) {
        size_t n;
        char **nv;

        if (!s)
                return -ENOMEM;
        n = strv_length(*v);
        nv = reallocarray(*v, n + 2, sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

int strv_push(char ***v, const char *s) {
        return strv_consume(v, strdup(s));
}

char **strv_copy(char *const *v) {
        char **r = calloc(1, sizeof(char *));
        if (!r)
                return NULL;
        for (size_t i = 0; v && v[i]; i++)
                if (strv_push(&r, v[i]) < 0) {
                        strv_free(r);
                        return NULL;
                }
        return r;
}

char *strv_join(char *const *v, const char *sep) {
        size_t len = 1, seplen = strlen(sep);
        char *r, *p;

        for (size_t i = 0; v && v[i]; i++)
                len += strlen(v[i]) + seplen;
        r = p = malloc(len);
        if (!r)
                return NULL;
        *p = 0;
        for (size_t i = 0; v && v[i]; i++) {
                if (i > 0) {
                        memcpy(p, sep, seplen);
                        p += seplen;
                }
                size_t l = strlen(v[i]);
                memcpy(p, v[i], l);
                p += l;
        }
        *p = 0;
        return r;
}

int strv_contains(char *const *v, const char *s) {
        for (size_t i = 0; v && v[i]; i++)
                if (streq(v[i], s))
                        return 1;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **v) {
        size_t n = strv_length(v);
        if (n > 1)
                qsort(v, n, sizeof(char *), cmp_str);
}

struct strv_slot {
        const char *s;
        size_t i;
};

static int cmp_slot(const void *a, const void *b) {
        const struct strv_slot *x = a, *y = b;
        int c = strcmp(x->s, y->s);
        return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Sort (string, position) pairs, mark every later copy of a string, then
 * compact in place: O(n log n) where a strv_contains() loop is O(n^2). */
int strv_uniq(char **v) {
        size_t n = strv_length(v), o = 0;
        _cleanup_free_ struct strv_slot *slots = NULL;
        _cleanup_free_ bool *dup = NULL;

        if (n < 2)
                return 0;
        slots = reallocarray(NULL, n, sizeof(*slots));
        dup = calloc(n, sizeof(bool));
        if (!slots || !dup)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                slots[i] = (struct strv_slot){v[i], i};
        qsort(slots, n, sizeof(*slots), cmp_slot);
        for (size_t i = 1; i < n; i++)
                if (streq(slots[i].s, slots[i - 1].s))
                        dup[slots[i].i] = true;
        for (size_t i = 0; i < n; i++) {
                if (dup[i])
                        free(v[i]);
                else
                        v[o++] = v[i];
        }
        v[o] = NULL;
        return 0;
}

int strv_extend(char ***v, char *const *add) {
        size_t n = strv_length(*v), m = strv_length(add), k = 0;
        char **nv;

        nv = reallocarray(*v, n + m + 1, sizeof(char *));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        for (; k < m; k++) {
                nv[n + k] = strdup(add[k]);
                if (!nv[n + k])
                        break;
        }
        nv[n + k] = NULL;
        return k < m ? -ENOMEM : 0;
}

int strv_extend_uniq(char ***v, char *const *add) {
        int r = strv_extend(v, add);
        return r < 0 ? r : strv_uniq(*v);
}

int startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}
