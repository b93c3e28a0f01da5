/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend table of lib/: every entry complete, names round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "lib/backend.h"

static void test_every_entry_is_complete(void **state)
{
    for (int i = 0; i < COLO_TRANSPORT__COUNT; i++) {
        const struct colo_backend *be = colo_backend_get((enum colo_transport)i);
        enum colo_transport t;

        assert_non_null(be);
        assert_non_null(be->name);
        assert_int_equal(colo_backend_parse(be->name, &t), 0);
        assert_int_equal(t, i);
        if (be->unavailable) {
            /* a backend this build lacks says why, and has no operations */
            assert_int_equal(colo_backend_check(t), COLO_E_NO_BACKEND);
            assert_non_null(strstr(colo_errormsg(), be->name));
            assert_null(be->connect);
            continue;
        }
        assert_int_equal(colo_backend_check(t), 0);
        assert_non_null(be->connect);
        assert_non_null(be->listen);
        assert_non_null(be->accept_fd);
        assert_non_null(be->accept);
        assert_non_null(be->port);
        assert_non_null(be->listener_delete);
    }
}

static void test_unknown_name_lists_the_known_ones(void **state)
{
    enum colo_transport t;

    assert_int_equal(colo_backend_parse("carrier-pigeon", &t), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "'carrier-pigeon': expected tcp or rdma"));
    assert_int_equal(colo_backend_parse(NULL, &t), COLO_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_entry_is_complete),
        cmocka_unit_test(test_unknown_name_lists_the_known_ones),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
