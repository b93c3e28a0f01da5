/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirty-page lists (core/dirty_list.c) against a fixed RAM layout: a small
 * block, a one-page block and two blocks whose page counts reach toward
 * 2^52, so that first page + page count overflow is reachable.
 *
 * Input: byte 0 chooses max_runs (0..127, or unbounded from 0x80), the rest
 * is a wire list of 24-byte runs (a trailing partial run is kept for the
 * length checks). Checks:
 *  - colo_dirty_list_decode accepts exactly n * 24 bytes with zero reserved
 *    fields and yields what an independent parse yields;
 *  - colo_dirty_list_validate accepts exactly the canonical in-bounds lists
 *    of at most max_runs (an independent reading of the rules), so after a
 *    successful validate every run lies inside its block;
 *  - colo_dirty_list_normalize succeeds only when every run is in bounds and
 *    the merged list fits max_runs; its result covers exactly the same pages,
 *    is sorted with gaps between runs of a block, validates, and normalizing
 *    it again changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "fuzz_common.h"
#include "proto/dirty_wire.h"
#include "proto/message.h"

static struct colo_ram_layout layout;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static uint8_t dummy; /* host memory is never touched by these functions */

    (void)argc;
    (void)argv;
    FUZZ_CHECK(colo_ram_layout_init(&layout, 4096) == 0);
    FUZZ_CHECK(colo_ram_layout_add(&layout, "pc.ram", &dummy, 64 * 4096) == 0);
    FUZZ_CHECK(colo_ram_layout_add(&layout, "vga.vram", &dummy, 4096) == 0);
    FUZZ_CHECK(colo_ram_layout_add(&layout, "big", &dummy, 1ull << 48) == 0);
    FUZZ_CHECK(colo_ram_layout_add(&layout, "huge", &dummy, UINT64_MAX - 4095) == 0);
    return 0;
}

static int ref_run_ok(const struct colo_dirty_run *r)
{
    uint64_t npages;

    if (r->block >= layout.nblocks || r->reserved || !r->page_count)
        return 0;
    npages = layout.blocks[r->block].npages;
    return r->first_page < npages && r->page_count <= npages - r->first_page;
}

static int ref_all_ok(const struct colo_dirty_run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ref_run_ok(&runs[i]))
            return 0;
    return 1;
}

/* Sorted by block then page, no overlap (adjacent runs are allowed). */
static int ref_canonical(const struct colo_dirty_run *runs, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        const struct colo_dirty_run *p = &runs[i - 1], *r = &runs[i];

        if (r->block < p->block)
            return 0;
        if (r->block == p->block && r->first_page < p->first_page + p->page_count)
            return 0;
    }
    return 1;
}

static int run_cmp(const void *a, const void *b)
{
    const struct colo_dirty_run *x = a, *y = b;

    if (x->block != y->block)
        return x->block < y->block ? -1 : 1;
    if (x->first_page != y->first_page)
        return x->first_page < y->first_page ? -1 : 1;
    return 0;
}

/* out (merged, valid runs) covers exactly the pages of in (valid runs). */
static void check_same_pages(const struct colo_dirty_run *in, size_t n,
                             const struct colo_dirty_run *out, size_t m)
{
    struct colo_dirty_run *tmp = malloc((n + 1) * sizeof(*tmp));

    FUZZ_CHECK(tmp);
    /* Every input run lies inside one output run. */
    for (size_t i = 0; i < n; i++) {
        int found = 0;

        for (size_t j = 0; j < m && !found; j++)
            found = out[j].block == in[i].block && out[j].first_page <= in[i].first_page &&
                    in[i].first_page + in[i].page_count <= out[j].first_page + out[j].page_count;
        FUZZ_CHECK(found);
    }
    /* Every output run is covered by input runs without a gap. */
    for (size_t j = 0; j < m; j++) {
        uint64_t cur = out[j].first_page, end = out[j].first_page + out[j].page_count;
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
            if (in[i].block == out[j].block && in[i].first_page < end &&
                in[i].first_page + in[i].page_count > out[j].first_page)
                tmp[k++] = in[i];
        qsort(tmp, k, sizeof(*tmp), run_cmp);
        for (size_t i = 0; i < k; i++) {
            FUZZ_CHECK(tmp[i].first_page <= cur);
            if (tmp[i].first_page + tmp[i].page_count > cur)
                cur = tmp[i].first_page + tmp[i].page_count;
        }
        FUZZ_CHECK(cur == end);
    }
    free(tmp);
}

/* A normalized list: valid runs, sorted, a gap between runs of one block, pages summed. */
static void check_normalized(const struct colo_dirty_list *list)
{
    uint64_t pages = 0;

    for (size_t i = 0; i < list->count; i++) {
        FUZZ_CHECK(ref_run_ok(&list->runs[i]));
        if (i) {
            const struct colo_dirty_run *p = &list->runs[i - 1], *r = &list->runs[i];

            FUZZ_CHECK(r->block > p->block ||
                       (r->block == p->block && r->first_page > p->first_page + p->page_count));
        }
        pages += list->runs[i].page_count;
    }
    FUZZ_CHECK(pages == list->pages);
}

static void check_normalize(const struct colo_dirty_run *raw, size_t n, size_t max_runs)
{
    struct colo_dirty_list list = {0}, again = {0};
    int ret;

    ret = colo_dirty_list_normalize(&list, &layout, raw, n, max_runs);

    FUZZ_CHECK(ret == 0 || ret == COLO_E_DIRTY_LIST);
    if (!ref_all_ok(raw, n)) {
        FUZZ_CHECK(ret == COLO_E_DIRTY_LIST);
        colo_dirty_list_free(&list);
        return;
    }
    /* Every run is in bounds: only the merged count can refuse the list. */
    check_normalized(&list);
    check_same_pages(raw, n, list.runs, list.count);
    FUZZ_CHECK((ret == 0) == (list.count <= max_runs));
    if (!ret) {
        FUZZ_CHECK(colo_dirty_list_validate(&layout, list.runs, list.count, max_runs) == 0);
        FUZZ_CHECK(colo_dirty_list_normalize(&again, &layout, list.runs, list.count, max_runs) ==
                   0);
        FUZZ_CHECK(again.count == list.count && again.pages == list.pages);
        FUZZ_CHECK(!list.count || !memcmp(again.runs, list.runs, list.count * sizeof(*list.runs)));
    }
    colo_dirty_list_free(&again);
    colo_dirty_list_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct colo_dirty_run *raw, *dec;
    size_t n, max_runs, len;
    int ret, reserved_ok = 1;

    if (size < 1)
        return 0;
    colo_err_clear();
    max_runs = data[0] >= 0x80 ? SIZE_MAX : data[0];
    data++;
    size--;
    n = size / COLO_DIRTY_RUN_WIRE_SIZE;
    len = n * COLO_DIRTY_RUN_WIRE_SIZE;
    raw = calloc(n + 1, sizeof(*raw));
    dec = calloc(n + 1, sizeof(*dec));
    FUZZ_CHECK(raw && dec);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + i * COLO_DIRTY_RUN_WIRE_SIZE;

        raw[i] = (struct colo_dirty_run){colo_get_be32(p), colo_get_be32(p + 4),
                                         colo_get_be64(p + 8), colo_get_be64(p + 16)};
        reserved_ok &= raw[i].reserved == 0;
    }

    /* Decode: exact length, zero reserved fields, same fields as the reference parse. */
    ret = colo_dirty_list_decode(data, len, n, dec);
    FUZZ_CHECK(ret == 0 || ret == COLO_E_DIRTY_LIST);
    FUZZ_CHECK((ret == 0) == reserved_ok);
    if (!ret)
        FUZZ_CHECK(!n || !memcmp(dec, raw, n * sizeof(*raw)));
    if (size != len)
        FUZZ_CHECK(colo_dirty_list_decode(data, size, n, dec) == COLO_E_DIRTY_LIST);
    FUZZ_CHECK(colo_dirty_list_decode(data, len, n + 1, dec) == COLO_E_DIRTY_LIST);
    FUZZ_CHECK(colo_dirty_list_decode(data, len, SIZE_MAX / 8, dec) == COLO_E_DIRTY_LIST);

    /* Validate (the secondary's check) on the raw runs, reserved fields included. */
    ret = colo_dirty_list_validate(&layout, raw, n, max_runs);
    FUZZ_CHECK(ret == 0 || ret == COLO_E_DIRTY_LIST);
    FUZZ_CHECK((ret == 0) == (n <= max_runs && ref_all_ok(raw, n) && ref_canonical(raw, n)));
    if (!ret) {
        for (size_t i = 0; i < n; i++) {
            const struct colo_ram_block *b = &layout.blocks[raw[i].block];

            FUZZ_CHECK(raw[i].page_count >= 1);
            FUZZ_CHECK(raw[i].first_page + raw[i].page_count <= b->npages);
            FUZZ_CHECK(raw[i].first_page + raw[i].page_count > raw[i].first_page);
        }
    }

    /* Normalize (the primary's path) on the raw runs. */
    check_normalize(raw, n, max_runs);

    free(dec);
    free(raw);
    return 0;
}
