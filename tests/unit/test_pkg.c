/* test_pkg.c: the pkg kind without apt: dpkg status parsing (installed,
 * half-installed, removed with config left, several architectures, no
 * final newline) and the apt-get command chosen for each wanted state. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "macro.h"

static const char status[] = "Package: zlib1g\n"
                             "Status: install ok installed\n"
                             "Priority: required\n"
                             "Architecture: amd64\n"
                             "Multi-Arch: same\n"
                             "Version: 1:1.2.13.dfsg-1\n"
                             "Description: compression library - runtime\n"
                             " zlib is a library implementing the deflate compression method found\n"
                             " Package: not-a-package (a continuation line)\n"
                             "\n"
                             "Package: zlib1g\n"
                             "Status: install ok installed\n"
                             "Architecture: i386\n"
                             "Version: 1:1.2.13.dfsg-1\n"
                             "\n"
                             "Package: removed-conf\n"
                             "Status: deinstall ok config-files\n"
                             "Architecture: amd64\n"
                             "Version: 1.0\n"
                             "\n"
                             "Package: half\n"
                             "Status: install reinstreq half-installed\n"
                             "Architecture: all\n"
                             "Version: 2.0\n"
                             "\n\n"
                             "Package: last\n"
                             "Status: install ok installed\n"
                             "Architecture: all\n"
                             "Version: 3.0"; /* no final newline */

START_TEST(test_status_parse) {
        struct pkg_db *db = NULL;
        const char *v = NULL;

        ck_assert_int_eq(pkg_db_new(&db), 0);
        ck_assert_int_eq(pkg_db_parse(db, status, strlen(status)), 0);
        ck_assert(pkg_db_installed(db, "zlib1g", &v));
        ck_assert_str_eq(v, "1:1.2.13.dfsg-1");
        ck_assert(pkg_db_installed(db, "zlib1g:i386", NULL));
        ck_assert(!pkg_db_installed(db, "zlib1g:arm64", NULL));
        ck_assert(!pkg_db_installed(db, "removed-conf", NULL));
        ck_assert(!pkg_db_installed(db, "half", NULL));
        ck_assert(pkg_db_installed(db, "last", &v));
        ck_assert_str_eq(v, "3.0");
        ck_assert(pkg_db_installed(db, "last:amd64", NULL)); /* Architecture: all */
        ck_assert(!pkg_db_installed(db, "not-a-package", NULL));
        ck_assert(!pkg_db_installed(db, "absent", NULL));
        /* empty status: nothing installed */
        ck_assert_int_eq(pkg_db_parse(db, "", 0), 0);
        ck_assert(!pkg_db_installed(db, "zlib1g", NULL));
        pkg_db_free(db);
}
END_TEST

START_TEST(test_plan) {
        char *ifcmd, *cmd;

        ck_assert_int_eq(pkg_plan("x", PKG_INSTALLED, true, &ifcmd, &cmd), 0);
        ck_assert_ptr_null(cmd);
        ck_assert_ptr_null(ifcmd);
        ck_assert_int_eq(pkg_plan("x", PKG_UNINSTALLED, false, &ifcmd, &cmd), 0);
        ck_assert_ptr_null(cmd);
        ck_assert_int_eq(pkg_plan("x", PKG_INSTALLED, false, &ifcmd, &cmd), 0);
        ck_assert_ptr_nonnull(
            strstr(cmd, "DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none apt-get install -y"));
        ck_assert_ptr_nonnull(strstr(cmd, "-- 'x'"));
        ck_assert_ptr_null(ifcmd);
        free(cmd);
        ck_assert_int_eq(pkg_plan("x", PKG_UNINSTALLED, true, &ifcmd, &cmd), 0);
        ck_assert_ptr_nonnull(strstr(cmd, "apt-get remove -y"));
        free(cmd);
        /* newest: install when missing; when installed, only if apt has an upgrade */
        ck_assert_int_eq(pkg_plan("x", PKG_NEWEST, false, &ifcmd, &cmd), 0);
        ck_assert_ptr_null(ifcmd);
        ck_assert_ptr_nonnull(strstr(cmd, "apt-get install"));
        free(cmd);
        ck_assert_int_eq(pkg_plan("lib.x+y:amd64", PKG_NEWEST, true, &ifcmd, &cmd), 0);
        ck_assert_ptr_nonnull(
            strstr(ifcmd, "apt-get -s -q install -- 'lib.x+y:amd64' | grep -qF 'Inst lib.x+y '"));
        free(ifcmd);
        free(cmd);
}
END_TEST

static Suite *pkg_suite(void) {
        Suite *s = suite_create("pkg");
        TCase *tc = tcase_create("pkg");
        tcase_add_test(tc, test_status_parse);
        tcase_add_test(tc, test_plan);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(pkg_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
