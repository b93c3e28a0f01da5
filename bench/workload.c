/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "bench/workload.h"

#define PAGE_SIZE 4096u

/* xorshift64*: small, fast and reproducible across machines. */
uint64_t bench_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

void bench_workload_init(struct bench_workload *w, const struct bench_options *o, uint8_t *ram)
{
    *w = (struct bench_workload){
        .ram = ram,
        .pages = o->ram_bytes / PAGE_SIZE,
        .per_block = o->ram_bytes / PAGE_SIZE / o->blocks,
        .dirty = o->dirty_pages,
        .rng = o->seed * 0x9e3779b97f4a7c15ull + 1,
    };
    w->runs = calloc(w->pages ? w->pages : 1, sizeof(*w->runs));
    if (!w->runs)
        abort(); /* the bench cannot run without it; sizes were checked */
}

void bench_workload_free(struct bench_workload *w)
{
    free(w->runs);
    w->runs = NULL;
}

static void touch(struct bench_workload *w, uint64_t page)
{
    uint64_t *p = (uint64_t *)(w->ram + page * PAGE_SIZE);

    for (size_t i = 0; i < PAGE_SIZE / sizeof(*p); i += 64)
        p[i] = bench_rand(&w->rng);
    p[0] = bench_rand(&w->rng);
}

size_t bench_workload_dirty(struct bench_workload *w, int full)
{
    uint64_t n = full ? w->pages : w->dirty;

    for (uint64_t i = 0; i < n; i++) {
        uint64_t page = full ? i : bench_rand(&w->rng) % w->pages;

        touch(w, page);
        w->runs[i] = (struct colo_dirty_run){
            .block = (uint32_t)(page / w->per_block),
            .first_page = page % w->per_block,
            .page_count = 1,
        };
    }
    return (size_t)n;
}
