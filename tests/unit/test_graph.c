/* test_graph.c: graph parsing and validation over the corpus in
 * tests/data/graphs/{good,bad} ($MGMT_TESTDATA, default tests/data from the
 * repo root), plus toposort, ${hostname}, and the JSON form of resources. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

static const char *datadir(void) {
        const char *d = getenv("MGMT_TESTDATA");
        return d && *d ? d : "tests/data";
}

static int cmpstr(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted paths of *.yaml files in graphs/<sub>. */
static char **corpus(const char *sub) {
        char dir[4096];
        char **v = NULL;
        DIR *d;
        struct dirent *e;

        snprintf(dir, sizeof dir, "%s/graphs/%s", datadir(), sub);
        d = opendir(dir);
        ck_assert_msg(d, "cannot open '%s' (run from the repo root or set MGMT_TESTDATA)", dir);
        while ((e = readdir(d))) {
                size_t n = strlen(e->d_name);
                if (n < 6 || !streq(e->d_name + n - 5, ".yaml"))
                        continue;
                char *p = NULL;
                ck_assert_int_ge(asprintf(&p, "%s/%s", dir, e->d_name), 0);
                ck_assert_int_eq(strv_consume(&v, p), 0);
        }
        closedir(d);
        if (v)
                qsort(v, strv_length(v), sizeof(char *), cmpstr);
        return v;
}

START_TEST(test_good_corpus) {
        _cleanup_strv_ char **files = corpus("good");
        ck_assert_int_ge(strv_length(files), 5);
        for (char **f = files; *f; f++) {
                struct graph *g = NULL;
                char err[1024] = "";
                _cleanup_free_ char *text = NULL;
                int r = graph_load_file(*f, &g, &text, err, sizeof err);
                ck_assert_msg(r == 0, "%s: expected valid, got: %s", *f, err);
                ck_assert_ptr_nonnull(text);
                ck_assert_ptr_nonnull(g->name);
                size_t *order = NULL;
                ck_assert_int_eq(graph_toposort(g, &order), 0);
                free(order);
                /* every resource survives its JSON form (export/collect) unchanged */
                for (size_t i = 0; i < g->n_res; i++) {
                        json_t *j = resource_to_json(&g->res[i]);
                        struct resource back;
                        ck_assert_ptr_nonnull(j);
                        ck_assert_msg(resource_from_json(j, &back, err, sizeof err) == 0, "%s: %s: %s", *f,
                                      g->res[i].name, err);
                        ck_assert_msg(resource_equal(&g->res[i], &back), "%s: %s changed in JSON", *f,
                                      g->res[i].name);
                        resource_clear(&back);
                        json_decref(j);
                }
                ck_assert_int_eq(graph_subst_hostname(g, "h1", NULL, 0), 0);
                graph_free(g);
        }
}
END_TEST

START_TEST(test_bad_corpus) {
        _cleanup_strv_ char **files = corpus("bad");
        ck_assert_int_ge(strv_length(files), 30);
        for (char **f = files; *f; f++) {
                _cleanup_free_ char *text = NULL;
                size_t len;
                struct graph *g = NULL;
                char err[1024] = "", expect[1024], want[1200];

                ck_assert_int_eq(read_file_max(*f, GRAPH_MAX_SIZE, &text, &len), 0);
                ck_assert_msg(startswith(text, "# expect: "), "%s: first line must be '# expect: MESSAGE'",
                              *f);
                size_t n = strcspn(text + 10, "\n");
                ck_assert_uint_lt(n, sizeof expect);
                memcpy(expect, text + 10, n);
                expect[n] = 0;
                int r = graph_parse(text, len, *f, &g, err, sizeof err);
                ck_assert_msg(r == -EINVAL, "%s: expected an error '%s', got %d", *f, expect, r);
                ck_assert_ptr_null(g);
                /* FILE:LINE:COL: message */
                snprintf(want, sizeof want, "%s:%s", *f, expect);
                ck_assert_msg(strstr(err, want), "%s:\n  expected: %s\n  got:      %s", *f, want, err);
        }
}
END_TEST

START_TEST(test_size_limit) {
        size_t len = GRAPH_MAX_SIZE + 1;
        char *text = malloc(len), err[512];
        struct graph *g = NULL;
        ck_assert_ptr_nonnull(text);
        memset(text, '#', len);
        ck_assert_int_eq(graph_parse(text, len, "big.yaml", &g, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "big.yaml: graph is 1048577 bytes, larger than the limit"));
        free(text);
}
END_TEST

static struct graph *parse_ok(const char *text) {
        struct graph *g = NULL;
        char err[1024] = "";
        int r = graph_parse(text, strlen(text), "t.yaml", &g, err, sizeof err);
        ck_assert_msg(r == 0, "expected valid graph, got: %s", err);
        return g;
}

static const char *parse_err(const char *text) {
        static char err[1024];
        struct graph *g = NULL;
        int r = graph_parse(text, strlen(text), "t.yaml", &g, err, sizeof err);
        ck_assert_int_eq(r, -EINVAL);
        return err;
}

START_TEST(test_fields) {
        struct graph *g =
            parse_ok("graph: g\n"
                     "resources:\n"
                     "  file:\n"
                     "  - {name: '@@a', path: /a, mode: '0644'}\n"
                     "  - {name: b, path: /b, mode: 0600, state: absent, owner: root, group: '0'}\n"
                     "  - {name: c, path: /c, content: ''}\n"
                     "  exec:\n"
                     "  - {name: e, cmd: ls, timeout: 1.5}\n"
                     "collect:\n"
                     "- {kind: file, pattern: /tmp/in/}\n"
                     "- {kind: print, pattern: '*'}\n");
        ck_assert_str_eq(g->name, "g");
        ck_assert_uint_eq(g->n_res, 4);
        ck_assert_str_eq(g->res[0].name, "a");
        ck_assert(g->res[0].exported);
        ck_assert_int_eq(g->res[0].file.mode, 0644);
        ck_assert_ptr_null(g->res[0].file.content);
        ck_assert(!g->res[0].file.absent);
        ck_assert_uint_eq(g->res[0].line, 4);
        ck_assert_uint_eq(g->res[0].col, 5);
        ck_assert_int_eq(g->res[1].file.mode, 0600);
        ck_assert(g->res[1].file.absent);
        ck_assert_str_eq(g->res[1].file.owner, "root");
        ck_assert_str_eq(g->res[1].file.group, "0");
        ck_assert_int_eq(g->res[2].file.mode, -1);
        ck_assert_str_eq(g->res[2].file.content, "");
        ck_assert_int_eq(g->res[3].kind, RES_EXEC);
        ck_assert_uint_eq(g->res[3].exec.timeout_usec, 1500000);
        ck_assert_uint_eq(g->n_collect, 2);
        ck_assert_int_eq(g->collect[1].kind, RES_PRINT);
        graph_free(g);

        ck_assert_ptr_nonnull(
            strstr(parse_err("graph: g\nresources: {file: [{name: a, path: /a, mode: 99999}]}\n"),
                   "t.yaml:2:46: file resource 'a': 'mode' must be an octal mode"));
        ck_assert_ptr_nonnull(
            strstr(parse_err("graph: g\nresources: {file: [{name: a, path: /a, state: absent, "
                             "content: x}]}\n"),
                   "'content' makes no sense with state 'absent'"));
        ck_assert_ptr_nonnull(strstr(parse_err("graph: g\nresources: {exec: [{name: a, cmd: ''}]}\n"),
                                     "'cmd' must not be empty"));
        ck_assert_ptr_nonnull(strstr(parse_err("graph: g\nresources: {noop: [{name: '@@'}]}\n"),
                                     "resource name must not be empty"));
        {
                char err[256];
                struct graph *g0 = NULL;
                ck_assert_int_eq(graph_parse(NULL, 0, "none", &g0, err, sizeof err), -EINVAL);
                ck_assert_str_eq(err,
                                 "none:1:1: empty graph: expected a mapping with at least 'graph: NAME'");
        }
        ck_assert_ptr_nonnull(
            strstr(parse_err("graph: ''\n"), "t.yaml:1:8: 'graph' (the graph name) must not be empty"));
        ck_assert_ptr_nonnull(
            strstr(parse_err("graph: g\nresources: {noop: [{name: \"a\\0b\"}]}\n"), "contains a NUL byte"));
        ck_assert_ptr_nonnull(
            strstr(parse_err("graph: g\nresources: [a]\n"), "t.yaml:2:12: 'resources' must be a mapping"));
        ck_assert_ptr_nonnull(
            strstr(parse_err("graph: g\nedges: [{name: e, from: x, to: {kind: noop, name: a}}]\n"),
                   "'from' of edge 'e' must be a mapping"));
}
END_TEST

START_TEST(test_toposort) {
        /* d -> b and c -> a: order respects edges, ties by position */
        struct graph *g = parse_ok("graph: g\n"
                                   "resources:\n"
                                   "  noop: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}]\n"
                                   "edges:\n"
                                   "- {name: db, from: {kind: noop, name: d}, to: {kind: noop, name: b}}\n"
                                   "- {name: ca, from: {kind: noop, name: c}, to: {kind: noop, name: a}}\n");
        size_t *order = NULL;
        ck_assert_int_eq(graph_toposort(g, &order), 0);
        /* ready at start: c(2), d(3), e(4); c releases a(0) which is then smallest */
        size_t want[] = {2, 0, 3, 1, 4};
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                ck_assert_uint_eq(order[i], want[i]);
        free(order);
        /* a cycle made by hand is refused by toposort too */
        g->edges[0].from = 1; /* b -> b */
        ck_assert_int_eq(graph_toposort(g, &order), -ELOOP);
        graph_free(g);

        /* empty graph: nothing to order */
        g = parse_ok("graph: e\n");
        ck_assert_int_eq(graph_toposort(g, &order), 0);
        free(order);
        graph_free(g);
}
END_TEST

START_TEST(test_subst_hostname) {
        struct graph *g = parse_ok("graph: g-${hostname}\n"
                                   "resources:\n"
                                   "  file: [{name: 'f-${hostname}', path: '/tmp/${hostname}/x', content: "
                                   "'${hostname}${hostname} ${other}'}]\n"
                                   "  print: [{name: p, msg: 'on ${hostname}'}]\n"
                                   "collect: [{kind: file, pattern: '/in/${hostname}/'}]\n");
        ck_assert_int_eq(graph_subst_hostname(g, "bad/host", NULL, 0), -EINVAL);
        ck_assert_int_eq(graph_subst_hostname(g, "node-1.example", NULL, 0), 0);
        ck_assert_str_eq(g->name, "g-node-1.example");
        ck_assert_str_eq(g->res[0].name, "f-node-1.example");
        ck_assert_str_eq(g->res[0].file.path, "/tmp/node-1.example/x");
        ck_assert_str_eq(g->res[0].file.content, "node-1.examplenode-1.example ${other}");
        ck_assert_str_eq(g->res[1].print.msg, "on node-1.example");
        ck_assert_str_eq(g->collect[0].pattern, "/in/node-1.example/");
        graph_free(g);
}
END_TEST

/* What was unique before ${hostname} is replaced may collide after it. */
START_TEST(test_subst_collision) {
        char err[512];
        struct graph *g = parse_ok("graph: g\n"
                                   "resources:\n"
                                   "  print: [{name: 'a-${hostname}', msg: x}, {name: a-h1, msg: y}]\n");
        ck_assert_int_eq(graph_subst_hostname(g, "h2", err, sizeof err), 0);
        graph_free(g);
        g = parse_ok("graph: g\n"
                     "resources:\n"
                     "  print: [{name: 'a-${hostname}', msg: x}, {name: a-h1, msg: y}]\n");
        ck_assert_int_eq(graph_subst_hostname(g, "h1", err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "3:44: duplicate print resource name 'a-h1'"), "got: %s", err);
        graph_free(g);
        g = parse_ok("graph: g\n"
                     "resources:\n"
                     "  file: [{name: a, path: '/tmp/${hostname}'}, {name: b, path: /tmp/h1}]\n");
        ck_assert_int_eq(graph_subst_hostname(g, "h1", err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "both manage '/tmp/h1'"), "got: %s", err);
        graph_free(g);
}
END_TEST

START_TEST(test_json_roundtrip) {
        char path[4096];
        struct graph *g = NULL;
        char err[1024] = "";

        snprintf(path, sizeof path, "%s/graphs/good/all-kinds.yaml", datadir());
        ck_assert_msg(graph_load_file(path, &g, NULL, err, sizeof err) == 0, "%s", err);
        for (size_t i = 0; i < g->n_res; i++) {
                json_t *j = resource_to_json(&g->res[i]);
                struct resource r = {0}, cp = {0};
                ck_assert_ptr_nonnull(j);
                int q = resource_from_json(j, &r, err, sizeof err);
                ck_assert_msg(q == 0, "resource %zu: %s", i, err);
                ck_assert(resource_equal(&g->res[i], &r));
                ck_assert_int_eq(resource_copy(&r, &cp), 0);
                ck_assert(resource_equal(&cp, &r));
                cp.file.mode = 0777;
                if (cp.kind == RES_FILE)
                        ck_assert(!resource_equal(&cp, &r));
                resource_clear(&r);
                resource_clear(&cp);
                ck_assert_ptr_null(cp.name);
                json_decref(j);
        }
        graph_free(g);

        /* exported survives the JSON form; mode as a JSON integer is its value */
        json_t *j = json_pack("{s:s, s:s, s:b, s:s, s:i}", "kind", "file", "name", "x", "exported", 1,
                              "path", "/x", "mode", 0644);
        struct resource r;
        ck_assert_int_eq(resource_from_json(j, &r, err, sizeof err), 0);
        ck_assert(r.exported);
        ck_assert_int_eq(r.file.mode, 0644);
        json_t *back = resource_to_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(back, "mode")), "0644");
        json_decref(back);
        resource_clear(&r);
        json_decref(j);
}
END_TEST

START_TEST(test_json_invalid) {
        static const struct {
                const char *json, *want;
        } cases[] = {
            {"[]", "must be a JSON object"},
            {"{\"name\": \"a\"}", "has no 'kind'"},
            {"{\"kind\": \"timer\", \"name\": \"a\"}", "unknown resource kind 'timer'"},
            {"{\"kind\": \"file\", \"name\": \"a\"}", "has no 'path'"},
            {"{\"kind\": \"file\", \"name\": \"a\", \"path\": \"rel\"}", "'path' must be absolute"},
            {"{\"kind\": \"file\", \"name\": \"a\", \"path\": \"/a\", \"bogus\": 1}",
             "unknown field 'bogus'"},
            {"{\"kind\": \"file\", \"name\": \"a\", \"path\": \"/a\", \"mode\": 99999}", "out of range"},
            {"{\"kind\": \"noop\", \"name\": \"a/b\"}", "must not contain '/'"},
            {"{\"kind\": \"noop\", \"name\": \"a\", \"exported\": \"yes\"}",
             "'exported' must be true or false"},
            {"{\"kind\": \"exec\", \"name\": \"a\", \"cmd\": [\"ls\"]}", "'cmd' must be a string"},
            {"{\"kind\": \"print\", \"name\": \"a\", \"msg\": null}", "'msg' has no value"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_error_t je;
                json_t *j = json_loads(cases[i].json, 0, &je);
                struct resource r;
                char err[512] = "";
                ck_assert_ptr_nonnull(j);
                ck_assert_int_eq(resource_from_json(j, &r, err, sizeof err), -EINVAL);
                ck_assert_msg(strstr(err, cases[i].want), "%s: want '%s', got '%s'", cases[i].json,
                              cases[i].want, err);
                json_decref(j);
        }
}
END_TEST

START_TEST(test_kind_names) {
        for (int k = 0; k < _RES_KIND_MAX; k++)
                ck_assert_int_eq(res_kind_from_string(res_kind_to_string((enum res_kind)k)), k);
        ck_assert_int_eq(res_kind_from_string("timer"), -EINVAL);
        ck_assert_int_eq(res_kind_from_string(NULL), -EINVAL);
        ck_assert_ptr_null(res_kind_to_string(_RES_KIND_MAX));
}
END_TEST

static size_t count_lines(const char *s) {
        size_t n = *s ? 1 : 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* Five errors in five places: five located messages, in one run. */
START_TEST(test_every_error) {
        static const char text[] = "graph: five\n"
                                   "resources:\n"
                                   "  exec:\n"
                                   "  - name: a\n"
                                   "    cmd: \"true\"\n"
                                   "    cwd: /tmp\n"        /* 6:5 refused field */
                                   "    timeout: forever\n" /* 7:14 bad number */
                                   "  file:\n"
                                   "  - name: f\n"
                                   "    path: relative\n" /* 10:11 not absolute */
                                   "  noop:\n"
                                   "  - name: n\n"
                                   "  - name: n\n" /* 13:5 duplicate */
                                   "edges:\n"
                                   "- name: e\n"
                                   "  from: {kind: noop, name: n}\n"
                                   "  to: {kind: exec, name: nope}\n"; /* 17:26 no such resource */
        char err[GRAPH_ERR_LEN] = "";
        struct graph *g = NULL;

        ck_assert_int_eq(graph_parse(text, sizeof text - 1, "five.yaml", &g, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(g);
        ck_assert_msg(count_lines(err) == 5, "expected 5 errors, got:\n%s", err);
        ck_assert_ptr_nonnull(
            strstr(err, "five.yaml:6:5: field 'cwd' in exec resource 'a' is not supported"));
        ck_assert_ptr_nonnull(strstr(err, "five.yaml:7:14: exec resource 'a': 'timeout' must be a number"));
        ck_assert_ptr_nonnull(strstr(err, "five.yaml:10:11: file resource 'f': 'path' must be absolute"));
        ck_assert_ptr_nonnull(strstr(err, "five.yaml:13:5: duplicate noop resource name 'n'"));
        ck_assert_ptr_nonnull(strstr(err, "five.yaml:17:26: 'to' of edge 'e' names no existing resource"));

        /* an edge to a refused resource does not add a second error for it */
        static const char text2[] = "graph: x\nresources:\n  exec:\n  - name: a\n    cmd: ''\n"
                                    "  noop:\n  - name: n\nedges:\n- name: e\n"
                                    "  from: {kind: noop, name: n}\n  to: {kind: exec, name: a}\n";
        ck_assert_int_eq(graph_parse(text2, sizeof text2 - 1, "x.yaml", &g, err, sizeof err), -EINVAL);
        ck_assert_msg(count_lines(err) == 1, "expected 1 error, got:\n%s", err);
}
END_TEST

/* More than GRAPH_ERRORS_MAX errors: the first ones, then a count. */
START_TEST(test_error_cap) {
        _cleanup_free_ char *text = strdup("graph: many\nresources:\n  noop:\n");
        char err[GRAPH_ERR_LEN] = "";
        struct graph *g = NULL;

        for (int i = 0; i < GRAPH_ERRORS_MAX + 10; i++) {
                char *t = NULL;
                ck_assert_int_ge(asprintf(&t, "%s  - name: n%d\n    bogus: 1\n", text, i), 0);
                free(text);
                text = t;
        }
        ck_assert_int_eq(graph_parse(text, strlen(text), "many.yaml", &g, err, sizeof err), -EINVAL);
        ck_assert_uint_eq(count_lines(err), GRAPH_ERRORS_MAX + 1);
        ck_assert_ptr_nonnull(strstr(err, "\n... and 10 more errors"));
        /* a small buffer keeps whole lines and still says how many were left out */
        char small[300];
        ck_assert_int_eq(graph_parse(text, strlen(text), "many.yaml", &g, small, sizeof small), -EINVAL);
        ck_assert_ptr_nonnull(strstr(small, "more errors"));
}
END_TEST

/* Whether a new graph exports what the old one did decides whether the
 * agent publishes its exports again: a table of pairs. */
START_TEST(test_exports_equal) {
        static const char *const head = "graph: g\nresources:\n";
        static const struct {
                const char *a, *b;
                bool equal;
        } cases[] = {
            /* nothing exported on either side, whatever else changed */
            {NULL, NULL, true},
            {NULL, "  print: [{name: p, msg: x}]\n", true},
            {"  print: [{name: p, msg: x}]\n", "  print: [{name: p, msg: y}]\n  noop: [{name: n}]\n", true},
            {"  file: [{name: f, path: /a, content: x}]\n", "  file: [{name: f, path: /a, content: y}]\n",
             true},
            /* an export appears or goes */
            {NULL, "  file: [{name: '@@f', path: /a, content: x}]\n", false},
            {"  file: [{name: '@@f', path: /a, content: x}]\n", NULL, false},
            {"  file: [{name: '@@f', path: /a, content: x}]\n", "  print: [{name: p, msg: x}]\n", false},
            /* the same export, other resources changed or reordered */
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  print: [{name: p, msg: x}]\n  file: [{name: '@@f', path: /a, content: x}]\n", true},
            {"  file: [{name: '@@f', path: /a, content: x}, {name: '@@g', path: /b, content: y}]\n",
             "  file: [{name: '@@g', path: /b, content: y}, {name: '@@f', path: /a, content: x}]\n", true},
            /* any field of an export, its name, its kind */
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  file: [{name: '@@f', path: /a, content: y}]\n", false},
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  file: [{name: '@@f', path: /b, content: x}]\n", false},
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  file: [{name: '@@f', path: /a, content: x, mode: '0600'}]\n", false},
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  file: [{name: '@@g', path: /a, content: x}]\n", false},
            {"  print: [{name: '@@p', msg: x}]\n", "  exec: [{name: '@@p', cmd: x}]\n", false},
            /* exported on one side, applied locally on the other */
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  file: [{name: f, path: /a, content: x}]\n", false},
            /* one export more */
            {"  file: [{name: '@@f', path: /a, content: x}]\n",
             "  file: [{name: '@@f', path: /a, content: x}, {name: '@@g', path: /b, content: x}]\n", false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct graph *a = NULL, *b = NULL;
                _cleanup_free_ char *ta = NULL, *tb = NULL;
                if (cases[i].a) {
                        ck_assert_int_ge(asprintf(&ta, "%s%s", head, cases[i].a), 0);
                        a = parse_ok(ta);
                }
                if (cases[i].b) {
                        ck_assert_int_ge(asprintf(&tb, "%s%s", head, cases[i].b), 0);
                        b = parse_ok(tb);
                }
                ck_assert_msg(graph_exports_equal(a, b) == cases[i].equal, "case %zu: a, b", i);
                ck_assert_msg(graph_exports_equal(b, a) == cases[i].equal, "case %zu: b, a", i);
                ck_assert_msg(graph_exports_equal(a, a), "case %zu: a, a", i);
                if (a)
                        graph_free(a);
                if (b)
                        graph_free(b);
        }
}
END_TEST

static Suite *graph_suite(void) {
        Suite *s = suite_create("graph");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_good_corpus);
        tcase_add_test(tc, test_bad_corpus);
        tcase_add_test(tc, test_size_limit);
        tcase_add_test(tc, test_fields);
        tcase_add_test(tc, test_toposort);
        tcase_add_test(tc, test_subst_hostname);
        tcase_add_test(tc, test_subst_collision);
        tcase_add_test(tc, test_json_roundtrip);
        tcase_add_test(tc, test_json_invalid);
        tcase_add_test(tc, test_kind_names);
        tcase_add_test(tc, test_every_error);
        tcase_add_test(tc, test_error_cap);
        tcase_add_test(tc, test_exports_equal);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(graph_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
