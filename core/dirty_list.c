/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "core/dirty_list.h"

void colo_dirty_list_reset(struct colo_dirty_list *list)
{
    list->count = 0;
    list->pages = 0;
}

void colo_dirty_list_free(struct colo_dirty_list *list)
{
    free(list->runs);
    memset(list, 0, sizeof(*list));
}

/* Doubling, so that appending run by run costs amortized O(1). */
int colo_dirty_list_reserve(struct colo_dirty_list *list, size_t n)
{
    size_t cap = list->cap ? list->cap : 64;

    if (n <= list->cap)
        return 0;
    while (cap < n)
        cap *= 2;
    return colo_grow_array(&list->runs, &list->cap, cap, sizeof(*list->runs), "dirty list");
}

int colo_dirty_list_append(struct colo_dirty_list *list, const struct colo_dirty_run *run)
{
    int ret = colo_dirty_list_reserve(list, list->count + 1);

    if (ret)
        return ret;
    list->runs[list->count++] = *run;
    list->pages += run->page_count;
    return 0;
}

int colo_dirty_run_check(const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                         size_t index)
{
    return colo_dirty_run_check_as(layout, run, index, COLO_E_DIRTY_LIST, "dirty run");
}

int colo_dirty_run_check_as(const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                            size_t index, int err, const char *what)
{
    const struct colo_ram_block *b;

    if (run->block >= layout->nblocks)
        return colo_err(err, "%s %zu: block %" PRIu32 " out of range: expected 0..%" PRIu32,
                        what, index, run->block, layout->nblocks - 1);
    b = &layout->blocks[run->block];
    if (run->reserved)
        return colo_err(err, "%s %zu: reserved field is %" PRIu32 ", expected 0", what, index,
                        run->reserved);
    if (run->page_count == 0)
        return colo_err(err, "%s %zu: page count 0, expected at least 1", what, index);
    if (run->first_page >= b->npages || run->page_count > b->npages - run->first_page)
        return colo_err(err,
                        "%s %zu: pages %" PRIu64 "+%" PRIu64
                        " outside block %s: expected within 0..%" PRIu64,
                        what, index, run->first_page, run->page_count, b->name, b->npages);
    return 0;
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

int colo_dirty_list_normalize(struct colo_dirty_list *list, const struct colo_ram_layout *layout,
                              const struct colo_dirty_run *runs, size_t n, size_t max_runs)
{
    size_t out = 0;
    int ret;

    colo_dirty_list_reset(list);
    if (n == 0)
        return 0; /* an empty checkpoint: nothing to sort (qsort wants a buffer) */
    for (size_t i = 0; i < n; i++) {
        ret = colo_dirty_run_check(layout, &runs[i], i);
        if (ret)
            return ret;
    }
    ret = colo_dirty_list_reserve(list, n);
    if (ret)
        return ret;
    memcpy(list->runs, runs, n * sizeof(*runs));
    qsort(list->runs, n, sizeof(*runs), run_cmp);
    for (size_t i = 0; i < n; i++) {
        struct colo_dirty_run *last = out ? &list->runs[out - 1] : NULL;
        const struct colo_dirty_run *r = &list->runs[i];

        /* Bounds were checked, so first_page + page_count cannot overflow. */
        if (last && last->block == r->block &&
            r->first_page <= last->first_page + last->page_count) {
            uint64_t end = r->first_page + r->page_count;

            if (end > last->first_page + last->page_count)
                last->page_count = end - last->first_page;
            continue;
        }
        list->runs[out++] = *r;
    }
    list->count = out;
    list->pages = 0;
    for (size_t i = 0; i < out; i++)
        list->pages += list->runs[i].page_count;
    if (out > max_runs)
        return colo_err(COLO_E_DIRTY_LIST,
                        "dirty list: %zu runs after merging, expected at most %zu", out,
                        max_runs);
    return 0;
}

int colo_dirty_list_merge(struct colo_dirty_list *into, const struct colo_dirty_list *add,
                          struct colo_dirty_list *scratch, const struct colo_ram_layout *layout,
                          size_t max_runs)
{
    int ret = colo_dirty_list_reserve(scratch, into->count + add->count);

    if (ret)
        return colo_err(ret, "dirty list: out of memory merging %zu and %zu runs", into->count,
                        add->count);
    if (into->count)
        memcpy(scratch->runs, into->runs, into->count * sizeof(*into->runs));
    if (add->count)
        memcpy(scratch->runs + into->count, add->runs, add->count * sizeof(*add->runs));
    scratch->count = into->count + add->count;
    return colo_dirty_list_normalize(into, layout, scratch->runs, scratch->count, max_runs);
}

int colo_dirty_list_validate(const struct colo_ram_layout *layout,
                             const struct colo_dirty_run *runs, size_t n, size_t max_runs)
{
    int ret;

    if (n > max_runs)
        return colo_err(COLO_E_DIRTY_LIST, "dirty list: %zu runs, expected at most %zu", n,
                        max_runs);
    for (size_t i = 0; i < n; i++) {
        ret = colo_dirty_run_check(layout, &runs[i], i);
        if (ret)
            return ret;
        if (i && (runs[i].block < runs[i - 1].block ||
                  (runs[i].block == runs[i - 1].block &&
                   runs[i].first_page < runs[i - 1].first_page + runs[i - 1].page_count)))
            return colo_err(COLO_E_DIRTY_LIST,
                            "dirty run %zu (block %" PRIu32 " page %" PRIu64
                            ") overlaps or precedes run %zu: expected sorted, disjoint runs",
                            i, runs[i].block, runs[i].first_page, i - 1);
    }
    return 0;
}
