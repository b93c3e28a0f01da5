/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bench/replay.h"
#include "bench/workload.h"

/* Parses text as a replay file of a RAM of pages; the error text lands in msg. */
static int parse(const char *text, uint64_t pages, struct bench_replay *r, char *msg, size_t len)
{
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    FILE *err = fmemopen(msg, len, "w");
    int ret;

    assert_non_null(in);
    assert_non_null(err);
    memset(msg, 0, len);
    ret = bench_replay_read(r, in, "rec.txt", pages, err);
    fclose(err);
    fclose(in);
    return ret;
}

static void test_valid(void **state)
{
    const char *text = "# recorded\n"
                       "0 1 2 17-31 4096\n"
                       "\n"
                       "-\n"
                       "  100-163\t16383   # last page\n";
    struct bench_replay r;
    char msg[256];

    assert_int_equal(parse(text, 16384, &r, msg, sizeof(msg)), 0);
    assert_int_equal(r.nepochs, 3);
    assert_int_equal(r.epoch_start[1] - r.epoch_start[0], 5);
    assert_int_equal(r.epoch_start[2] - r.epoch_start[1], 0);
    assert_int_equal(r.ranges[3].first, 17);
    assert_int_equal(r.ranges[3].count, 15);
    assert_int_equal(r.ranges[r.nranges - 1].first, 16383);
    bench_replay_free(&r);
}

static void expect_error(const char *text, const char *needle)
{
    struct bench_replay r;
    char msg[512];

    assert_int_equal(parse(text, 16384, &r, msg, sizeof(msg)), -1);
    if (!strstr(msg, needle))
        fail_msg("expected '%s' in '%s'", needle, msg);
    assert_null(r.ranges);
}

static void test_malformed(void **state)
{
    expect_error("0 1\nabc\n", "rec.txt:2: 'abc' is not a page number");
    expect_error("0\n\n# c\n5-\n", "rec.txt:4: '5-' is not a page number or a range");
    expect_error("-3\n", "rec.txt:1: '-3'");
    expect_error("+3\n", "rec.txt:1: '+3'");
    expect_error("9-3\n", "rec.txt:1: range '9-3' ends before it starts");
    expect_error("1\n16384\n", "rec.txt:2: page 16384 is beyond the 16384 pages");
    expect_error("16000-17000\n", "page 17000 is beyond");
    expect_error("- 4\n", "rec.txt:1: '-' (an epoch without dirty pages) must be alone");
    expect_error("99999999999999999999999\n", "is not a page number");
    expect_error("# only comments\n\n", "no epoch");
}

static void test_missing_file(void **state)
{
    struct bench_replay r;
    char msg[512] = "";
    FILE *err = fmemopen(msg, sizeof(msg), "w");

    assert_int_equal(bench_replay_load(&r, "/nonexistent/rec.txt", 100, err), -1);
    fclose(err);
    assert_non_null(strstr(msg, "cannot open the replay file /nonexistent/rec.txt"));
}

/* The replay workload dirties exactly the listed pages, epochs repeating. */
static void test_workload_replay(void **state)
{
    struct bench_replay r;
    struct bench_workload w;
    struct bench_workload_params p = {
        .kind = BENCH_WL_REPLAY, .ram_bytes = 64 << 20, .blocks = 4, .page_size = 4096,
        .seed = 1, .replay = &r,
    };
    char msg[256];

    assert_int_equal(parse("4095-4097 3 3\n-\n", 16384, &r, msg, sizeof(msg)), 0);
    assert_int_equal(bench_workload_init(&w, &p), 0);
    assert_int_equal(bench_workload_pick(&w), 4);
    assert_int_equal(w.list[0], 3);
    assert_int_equal(w.list[3], 4097);
    /* 4095 | 4096 4097 cross from block 0 into block 1 */
    assert_int_equal(bench_workload_runs(&w), 3);
    assert_int_equal(w.runs[1].block, 0);
    assert_int_equal(w.runs[1].first_page, 4095);
    assert_int_equal(w.runs[2].block, 1);
    assert_int_equal(w.runs[2].first_page, 0);
    assert_int_equal(w.runs[2].page_count, 2);
    assert_int_equal(bench_workload_pick(&w), 0);
    assert_int_equal(bench_workload_pick(&w), 4); /* wraps */
    bench_workload_free(&w);
    bench_replay_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_workload_replay),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
