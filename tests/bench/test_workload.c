/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bench/workload.h"

#define PAGES 16384 /* 64 MiB of 4 KiB pages */
#define EPOCHS 5

/* The pages of EPOCHS epochs, concatenated; *n gets the count. */
static uint64_t *epochs(enum bench_workload_kind kind, uint64_t seed, uint64_t dirty, size_t *n)
{
    struct bench_workload_params p = {.kind = kind, .ram_bytes = (uint64_t)PAGES * 4096,
                                      .blocks = 4, .page_size = 4096, .dirty = dirty,
                                      .seed = seed};
    struct bench_workload w;
    uint64_t *out = calloc((size_t)dirty * EPOCHS + 1, sizeof(*out));

    assert_non_null(out);
    assert_int_equal(bench_workload_init(&w, &p), 0);
    *n = 0;
    for (int e = 0; e < EPOCHS; e++) {
        size_t got = bench_workload_pick(&w);

        assert_int_equal(got, dirty); /* exactly the requested distinct pages */
        for (size_t i = 0; i < got; i++) {
            assert_true(w.list[i] < PAGES);
            if (i)
                assert_true(w.list[i] > w.list[i - 1]); /* sorted, unique */
            out[(*n)++] = w.list[i];
        }
    }
    bench_workload_free(&w);
    return out;
}

static void check_seeded(enum bench_workload_kind kind, uint64_t dirty)
{
    size_t na, nb, nc;
    uint64_t *a = epochs(kind, 7, dirty, &na);
    uint64_t *b = epochs(kind, 7, dirty, &nb);
    uint64_t *c = epochs(kind, 8, dirty, &nc);

    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(*a));          /* same seed, same pages */
    assert_true(na != nc || memcmp(a, c, na * sizeof(*a))); /* other seed, other pages */
    free(a);
    free(b);
    free(c);
}

static void test_uniform(void **state)
{
    check_seeded(BENCH_WL_UNIFORM, 256);
    check_seeded(BENCH_WL_UNIFORM, 1);
    check_seeded(BENCH_WL_UNIFORM, PAGES - 1); /* Floyd: near-full sets stay exact */
}

static void test_hotset(void **state)
{
    struct bench_workload_params p = {.kind = BENCH_WL_HOTSET, .ram_bytes = (uint64_t)PAGES * 4096,
                                      .blocks = 4, .page_size = 4096, .dirty = 256, .seed = 3};
    struct bench_workload w;
    unsigned *hits = calloc(PAGES, sizeof(*hits)), max = 0, distinct = 0;

    check_seeded(BENCH_WL_HOTSET, 256);
    check_seeded(BENCH_WL_HOTSET, PAGES / 2); /* the fallback fills the rest */
    /* skewed: some pages are dirty in (nearly) every epoch, most in none */
    assert_int_equal(bench_workload_init(&w, &p), 0);
    for (int e = 0; e < 100; e++) {
        bench_workload_pick(&w);
        for (size_t i = 0; i < w.nlist; i++)
            hits[w.list[i]]++;
    }
    for (size_t i = 0; i < PAGES; i++) {
        max = hits[i] > max ? hits[i] : max;
        distinct += hits[i] != 0;
    }
    assert_true(max >= 95);
    assert_true(distinct < PAGES / 2);
    bench_workload_free(&w);
    free(hits);
}

static void test_stream(void **state)
{
    struct bench_workload_params p = {.kind = BENCH_WL_STREAM, .ram_bytes = (uint64_t)PAGES * 4096,
                                      .blocks = 4, .page_size = 4096, .dirty = 1000, .seed = 5};
    struct bench_workload w;
    uint64_t end;

    check_seeded(BENCH_WL_STREAM, 1000);
    assert_int_equal(bench_workload_init(&w, &p), 0);
    bench_workload_pick(&w);
    /* at most two runs per block boundary or wrap crossed */
    assert_true(bench_workload_runs(&w) <= 3);
    end = w.stream_pos;
    bench_workload_pick(&w);
    assert_int_equal(w.stream_pos, (end + 1000) % PAGES); /* continues where it stopped */
    bench_workload_free(&w);
}

static void test_idle_and_full(void **state)
{
    struct bench_workload_params p = {.kind = BENCH_WL_IDLE, .ram_bytes = 1 << 20, .blocks = 2,
                                      .page_size = 4096, .dirty = 10, .seed = 1};
    struct bench_workload w;
    uint8_t *ram = calloc(1, 1 << 20), *copy = malloc(1 << 20);

    p.ram = ram;
    assert_int_equal(bench_workload_init(&w, &p), 0);
    assert_int_equal(bench_workload_pick(&w), 0);
    assert_int_equal(bench_workload_runs(&w), 0);
    /* the first warm-up: all pages, one run per block, every page written */
    assert_int_equal(bench_workload_pick_all(&w), 256);
    bench_workload_touch(&w);
    assert_int_equal(bench_workload_runs(&w), 2);
    assert_int_equal(w.runs[1].block, 1);
    assert_int_equal(w.runs[1].page_count, 128);
    memcpy(copy, ram, 1 << 20);
    bench_workload_touch(&w);
    for (size_t pg = 0; pg < 256; pg++) /* new bytes in every dirtied page */
        assert_true(memcmp(copy + pg * 4096, ram + pg * 4096, 4096) != 0);
    bench_workload_free(&w);
    free(ram);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_hotset),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_idle_and_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
