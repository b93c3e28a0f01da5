/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dirty-page list: normalisation, wire codec and the validator against hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "proto/dirty_wire.h"

static uint8_t ram0[16 * 4096], ram1[4 * 4096];

static void layout(struct colo_ram_layout *l)
{
    assert_int_equal(colo_ram_layout_init(l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(l, "pc.ram", ram0, sizeof(ram0)), 0); /* 16 pages */
    assert_int_equal(colo_ram_layout_add(l, "rom", ram1, sizeof(ram1)), 0);    /* 4 pages */
}

#define RUN(b, f, n) ((struct colo_dirty_run){.block = (b), .first_page = (f), .page_count = (n)})

static void expect_invalid(const struct colo_dirty_run *runs, size_t n, const char *why)
{
    struct colo_ram_layout l;

    layout(&l);
    assert_int_equal(colo_dirty_list_validate(&l, runs, n, 100), COLO_E_DIRTY_LIST);
    assert_non_null(strstr(colo_errormsg(), why));
}

static void test_valid_lists(void **state)
{
    struct colo_ram_layout l;
    struct colo_dirty_run ok[] = {RUN(0, 0, 1), RUN(0, 1, 15), RUN(1, 0, 4)};

    layout(&l);
    assert_int_equal(colo_dirty_list_validate(&l, ok, 3, 100), 0);
    assert_int_equal(colo_dirty_list_validate(&l, NULL, 0, 100), 0);
}

static void test_hostile_lists(void **state)
{
    struct colo_dirty_run r[2];

    r[0] = RUN(2, 0, 1);
    expect_invalid(r, 1, "block 2 out of range: expected 0..1");
    r[0] = RUN(UINT32_MAX, 0, 1);
    expect_invalid(r, 1, "out of range");
    r[0] = RUN(0, 16, 1);
    expect_invalid(r, 1, "outside block pc.ram");
    r[0] = RUN(0, 15, 2);
    expect_invalid(r, 1, "outside block");
    r[0] = RUN(0, 0, 0);
    expect_invalid(r, 1, "page count 0");
    r[0] = RUN(0, UINT64_MAX - 1, 5); /* first + count overflows */
    expect_invalid(r, 1, "outside block");
    r[0] = RUN(0, 2, UINT64_MAX); /* huge count */
    expect_invalid(r, 1, "outside block");
    r[0] = RUN(0, 0, 1);
    r[0].reserved = 7;
    expect_invalid(r, 1, "reserved");
    r[0] = RUN(0, 0, 4);
    r[1] = RUN(0, 3, 2); /* overlap */
    expect_invalid(r, 2, "overlaps");
    r[0] = RUN(0, 5, 1);
    r[1] = RUN(0, 5, 1); /* duplicate */
    expect_invalid(r, 2, "overlaps");
    r[0] = RUN(1, 0, 1);
    r[1] = RUN(0, 0, 1); /* unsorted */
    expect_invalid(r, 2, "precedes");
}

static void test_max_count(void **state)
{
    struct colo_ram_layout l;
    struct colo_dirty_run runs[8];

    layout(&l);
    for (int i = 0; i < 8; i++)
        runs[i] = RUN(0, (uint64_t)i * 2, 1);
    assert_int_equal(colo_dirty_list_validate(&l, runs, 8, 8), 0);
    assert_int_equal(colo_dirty_list_validate(&l, runs, 8, 7), COLO_E_DIRTY_LIST);
    assert_non_null(strstr(colo_errormsg(), "expected at most 7"));
}

static void test_normalize_sorts_and_merges(void **state)
{
    struct colo_ram_layout l;
    struct colo_dirty_list list = {0};
    struct colo_dirty_run in[] = {RUN(1, 2, 1), RUN(0, 5, 2), RUN(0, 0, 3), RUN(0, 6, 4),
                                  RUN(0, 3, 2), RUN(1, 2, 2), RUN(0, 12, 1)};

    layout(&l);
    assert_int_equal(colo_dirty_list_normalize(&list, &l, in, 7, 100), 0);
    assert_int_equal(list.count, 3);
    assert_true(list.runs[0].block == 0 && list.runs[0].first_page == 0 &&
                list.runs[0].page_count == 10);
    assert_true(list.runs[1].block == 0 && list.runs[1].first_page == 12 &&
                list.runs[1].page_count == 1);
    assert_true(list.runs[2].block == 1 && list.runs[2].first_page == 2 &&
                list.runs[2].page_count == 2);
    assert_true(list.pages == 13);
    assert_int_equal(colo_dirty_list_validate(&l, list.runs, list.count, 100), 0);
    /* a bad input run is reported by its index and nothing is kept */
    in[4] = RUN(0, 16, 1);
    assert_int_equal(colo_dirty_list_normalize(&list, &l, in, 7, 100), COLO_E_DIRTY_LIST);
    assert_non_null(strstr(colo_errormsg(), "dirty run 4"));
    assert_int_equal(list.count, 0);
    /* too many runs after merging */
    in[4] = RUN(0, 3, 2);
    assert_int_equal(colo_dirty_list_normalize(&list, &l, in, 7, 2), COLO_E_DIRTY_LIST);
    colo_dirty_list_free(&list);
}

static void test_codec(void **state)
{
    struct colo_dirty_run in[] = {RUN(0, 1, 2), RUN(1, 0x0102030405060708ull, 9)}, out[2];
    uint8_t wire[2 * COLO_DIRTY_RUN_WIRE_SIZE];

    colo_dirty_list_encode(in, 2, wire);
    assert_int_equal(wire[8 + 24], 1);
    assert_int_equal(wire[15 + 24], 8);
    assert_int_equal(colo_dirty_list_decode(wire, sizeof(wire), 2, out), 0);
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(colo_dirty_list_decode(wire, sizeof(wire) - 1, 2, out), COLO_E_DIRTY_LIST);
    assert_int_equal(colo_dirty_list_decode(wire, sizeof(wire), 3, out), COLO_E_DIRTY_LIST);
    assert_int_equal(colo_dirty_list_decode(wire, 0, SIZE_MAX, out), COLO_E_DIRTY_LIST);
    wire[4] = 1; /* reserved */
    assert_int_equal(colo_dirty_list_decode(wire, sizeof(wire), 2, out), COLO_E_DIRTY_LIST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_lists),
        cmocka_unit_test(test_hostile_lists),
        cmocka_unit_test(test_max_count),
        cmocka_unit_test(test_normalize_sorts_and_merges),
        cmocka_unit_test(test_codec),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
