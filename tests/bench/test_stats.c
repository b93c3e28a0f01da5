/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bench/stats.h"

static void test_percentile(void **state)
{
    uint64_t v[1000];

    for (size_t i = 0; i < 1000; i++)
        v[i] = i + 1;
    assert_int_equal(bench_percentile(v, 100, 50), 50);
    assert_int_equal(bench_percentile(v, 100, 99), 99);
    assert_int_equal(bench_percentile(v, 100, 100), 100);
    assert_int_equal(bench_percentile(v, 100, 0), 1);
    assert_int_equal(bench_percentile(v, 1000, 99.9), 999);
    assert_int_equal(bench_percentile(v, 10, 99.9), 10);
    assert_int_equal(bench_percentile(v, 1, 50), 1);
    assert_int_equal(bench_percentile(v, 0, 50), 0);
}

static void test_summary(void **state)
{
    uint64_t v[] = {9, 2, 5, 4, 4, 7, 4, 5}; /* unsorted on purpose */
    struct bench_summary s;

    bench_summarize(v, 8, &s);
    assert_int_equal(s.n, 8);
    assert_true(s.min == 2 && s.max == 9);
    assert_true(s.avg == 5);
    assert_true(s.median == 4);
    /* sample standard deviation: sqrt(32 / 7) */
    assert_true(s.stdev > 2.1380 && s.stdev < 2.1381);
    assert_true(s.p99 == 9 && s.p999 == 9);

    v[0] = 42;
    bench_summarize(v, 1, &s);
    assert_true(s.stdev == 0 && s.min == 42 && s.max == 42 && s.median == 42);
    bench_summarize(v, 0, &s);
    assert_int_equal(s.n, 0);
}

static void test_samples(void **state)
{
    struct bench_samples s;
    struct bench_summary sum;

    assert_int_equal(bench_samples_init(&s, 1), 0);
    for (uint64_t i = 1; i <= 100; i++) {
        struct colo_checkpoint_stats st = {.seq = i, .total_ns = i * 1000, .pages_ns = 7};

        assert_int_equal(bench_samples_add(&s, &st), 0); /* grows past the first guess */
    }
    assert_int_equal(s.n, 100);
    assert_int_equal(bench_samples_summary(&s, BENCH_PAUSE, &sum), 0);
    assert_true(sum.median == 50000 && sum.p99 == 99000 && sum.max == 100000);
    assert_int_equal(bench_samples_summary(&s, BENCH_PAGES, &sum), 0);
    assert_true(sum.stdev == 0 && sum.avg == 7);
    assert_string_equal(bench_phase_name(BENCH_RECEIVED), "received");
    bench_samples_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_samples),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
