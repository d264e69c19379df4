/* test_trust.c: the agent's side of trust: which collected resources the
 * composed graph takes with and without --trusted-keys, and the verdict of
 * agent_trust_check on payloads as they arrive from etcd. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "deploy.h"
#include "graph.h"
#include "macro.h"
#include "sign.h"
#include "util.h"

static const char priv_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                               "-----END PRIVATE KEY-----\n";
static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
                              "-----END PUBLIC KEY-----\n";

static struct graph *parse(const char *text) {
        struct graph *g = NULL;
        char err[512];
        ck_assert_msg(graph_parse(text, strlen(text), "t.yaml", &g, err, sizeof err) == 0, "%s", err);
        return g;
}

/* A collected resource from host h, parsed from its export JSON. */
static void collected(struct collected *c, const char *host, const char *json) {
        json_error_t je;
        char err[256];
        json_t *j = json_loads(json, 0, &je);
        ck_assert_ptr_nonnull(j);
        *c = (struct collected){.host = strdup(host)};
        ck_assert_int_eq(resource_from_json(j, &c->res, err, sizeof err), 0);
        c->key = strdup(c->res.name);
        json_decref(j);
}

static size_t count_kind(const struct graph *g, enum res_kind k) {
        size_t n = 0;
        for (size_t i = 0; i < g->n_res; i++)
                n += g->res[i].kind == k;
        return n;
}

START_TEST(test_compose_under_trust) {
        static const char deny[] =
            "graph: g\ncollect:\n- kind: exec\n  pattern: any\n- kind: file\n  pattern: /c/\n";
        static const char allow[] = "graph: g\ncollect:\n- kind: exec\n  pattern: any\n  allow_exec: "
                                    "true\n- kind: file\n  pattern: /c/\n";
        static const char files_only[] = "graph: g\ncollect:\n- kind: file\n  pattern: /c/\n";
        struct collected coll[3];
        struct graph *g;

        collected(&coll[0], "hb", "{\"kind\":\"exec\",\"name\":\"evil\",\"cmd\":\"true\"}");
        collected(&coll[1], "hb", "{\"kind\":\"file\",\"name\":\"f\",\"path\":\"/x/f\",\"content\":\"x\"}");
        collected(&coll[2], "hb", "{\"kind\":\"print\",\"name\":\"p\",\"msg\":\"m\"}");
        static const struct {
                const char *graph;
                bool trusted;
                size_t execs, files, prints;
        } t[] = {
            {deny, false, 1, 1, 0},      /* no trust: as before */
            {deny, true, 0, 1, 0},       /* trust: exec refused, file kept */
            {allow, true, 1, 1, 0},      /* trust, allowed */
            {allow, false, 1, 1, 0},     /* allow_exec without trust changes nothing */
            {files_only, true, 0, 1, 0}, /* only collected kinds, ever */
            {files_only, false, 0, 1, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct graph *base = parse(t[i].graph);
                ck_assert_int_eq(agent_exchange_compose(base, coll, ELEMENTSOF(coll), t[i].trusted, &g), 0);
                ck_assert_msg(count_kind(g, RES_EXEC) == t[i].execs, "case %zu: %zu execs", i,
                              count_kind(g, RES_EXEC));
                ck_assert_msg(count_kind(g, RES_FILE) == t[i].files, "case %zu", i);
                ck_assert_msg(count_kind(g, RES_PRINT) == t[i].prints, "case %zu", i);
                graph_free(g);
                graph_free(base);
        }
        for (size_t i = 0; i < ELEMENTSOF(coll); i++) {
                free(coll[i].key);
                free(coll[i].host);
                resource_clear(&coll[i].res);
        }
}
END_TEST

static char *signed_payload(int64_t id, const char *graph) {
        struct sign_key *k = NULL;
        struct deploy d;
        char prev[65], err[256];
        sha256_hex("prev", 4, prev);
        ck_assert_int_eq(sign_key_from_pem(priv_pem, strlen(priv_pem), true, "k", &k, err, sizeof err), 0);
        ck_assert_int_eq(deploy_new(&d, id, id > 1 ? prev : NULL, graph, strlen(graph), NULL), 0);
        ck_assert_int_eq(deploy_sign(&d, k), 0);
        char *text = deploy_encode(&d);
        deploy_clear(&d);
        sign_key_free(k);
        return text;
}

START_TEST(test_trust_check) {
        struct agent a = {0};
        struct sign_keyring kr = {0};
        struct sign_key *k = NULL;
        char err[512];

        /* without trusted keys nothing is checked, not even the payload */
        ck_assert_int_eq(agent_trust_check(&a, 3, "nonsense", 8, err, sizeof err), 0);

        ck_assert_int_eq(sign_key_from_pem(pub_pem, strlen(pub_pem), false, "k", &k, err, sizeof err), 0);
        ck_assert_int_eq(sign_keyring_add(&kr, k), 1);
        a.trusted = &kr;
        _cleanup_free_ char *p3 = signed_payload(3, "graph: g\n");
        ck_assert_int_eq(agent_trust_check(&a, 3, p3, strlen(p3), err, sizeof err), 0);
        /* the same bytes under another id */
        ck_assert_int_eq(agent_trust_check(&a, 4, p3, strlen(p3), err, sizeof err), -EPERM);
        ck_assert_ptr_nonnull(strstr(err, "deploy 4 holds the record of deploy 3"));
        /* malformed payloads are refused with the decoder's reason */
        ck_assert_int_eq(agent_trust_check(&a, 3, "nonsense", 8, err, sizeof err), -EPERM);
        ck_assert_ptr_nonnull(strstr(err, "deploy 3: bad payload: deploy record is not JSON"));
        ck_assert_int_eq(agent_trust_check(&a, 3, "", 0, err, sizeof err), -EPERM);
        /* unsigned */
        struct deploy d;
        ck_assert_int_eq(deploy_new(&d, 1, NULL, "graph: g\n", 9, NULL), 0);
        _cleanup_free_ char *p1 = deploy_encode(&d);
        deploy_clear(&d);
        ck_assert_int_eq(agent_trust_check(&a, 1, p1, strlen(p1), err, sizeof err), -EPERM);
        ck_assert_ptr_nonnull(strstr(err, "deploy 1 is not signed"));
        sign_keyring_clear(&kr);
}
END_TEST

static Suite *trust_suite(void) {
        Suite *s = suite_create("trust");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_compose_under_trust);
        tcase_add_test(tc, test_trust_check);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(trust_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
