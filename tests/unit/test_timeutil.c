/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deadlines and their rounding (common/timeutil.h): 0 means no timeout. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/timeutil.h"

static void test_zero_timeout_is_no_deadline(void **state)
{
    uint64_t before = colo_now_ns();
    uint64_t d = colo_deadline_after_ms(5);

    assert_int_equal(colo_deadline_after_ms(0), 0);
    assert_true(d >= before + 5 * COLO_NS_PER_MS);
    assert_true(d <= colo_now_ns() + 5 * COLO_NS_PER_MS);
}

static void test_ms_until_rounds_up(void **state)
{
    uint64_t now = 10 * COLO_NS_PER_S;

    assert_int_equal(colo_ms_until(now + 1, now), 1);
    assert_int_equal(colo_ms_until(now + COLO_NS_PER_MS, now), 1);
    assert_int_equal(colo_ms_until(now + COLO_NS_PER_MS + 1, now), 2);
    /* passed: still 1, so that a poll never spins with 0 */
    assert_int_equal(colo_ms_until(now, now), 1);
    assert_int_equal(colo_ms_until(now - 1, now), 1);
    assert_int_equal(colo_ms_until(UINT64_MAX, 0), INT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_timeout_is_no_deadline),
        cmocka_unit_test(test_ms_until_rounds_up),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
