/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/workload.h"

/* xorshift64*: small, fast and reproducible across machines. */
uint64_t bench_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t seed_state(uint64_t seed, uint64_t stream)
{
    uint64_t s = (seed + stream) * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;

    return s ? s : 1; /* xorshift never leaves 0 */
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;

        a = b;
        b = t;
    }
    return a;
}

int bench_workload_init(struct bench_workload *w, const struct bench_workload_params *p)
{
    uint64_t pages = p->ram_bytes / p->page_size;

    *w = (struct bench_workload){
        .kind = p->kind,
        .ram = p->ram,
        .page_size = p->page_size,
        .pages = pages,
        .per_block = pages / p->blocks,
        .dirty = p->dirty < pages ? p->dirty : pages,
        .pick_rng = seed_state(p->seed, 1),
        .fill_rng = seed_state(p->seed, 2),
        .replay = p->replay,
    };
    w->bitmap = calloc((pages + 63) / 64, sizeof(*w->bitmap));
    w->list = calloc(pages, sizeof(*w->list));
    w->runs = calloc(pages, sizeof(*w->runs));
    if (!w->bitmap || !w->list || !w->runs) {
        bench_workload_free(w);
        return -1;
    }
    w->stream_pos = bench_rand(&w->pick_rng) % pages;
    /* Hot pages are scattered over RAM by a seeded permutation rank -> page. */
    w->hot_mult = (bench_rand(&w->pick_rng) % pages) | 1;
    while (gcd(w->hot_mult, pages) != 1)
        w->hot_mult = (w->hot_mult + 2) % pages;
    w->hot_add = bench_rand(&w->pick_rng) % pages;
    return 0;
}

void bench_workload_free(struct bench_workload *w)
{
    free(w->bitmap);
    free(w->list);
    free(w->runs);
    w->bitmap = w->list = NULL;
    w->runs = NULL;
}

static int test_and_set(struct bench_workload *w, uint64_t page)
{
    uint64_t bit = 1ull << (page % 64);
    int was = !!(w->bitmap[page / 64] & bit);

    w->bitmap[page / 64] |= bit;
    return was;
}

/* Floyd's sampling: exactly n distinct pages in n draws, uniformly. */
static void pick_uniform(struct bench_workload *w)
{
    for (uint64_t j = w->pages - w->dirty; j < w->pages; j++) {
        uint64_t t = bench_rand(&w->pick_rng) % (j + 1);

        if (test_and_set(w, t))
            test_and_set(w, j);
    }
}

__extension__ typedef unsigned __int128 u128; /* rank * mult may exceed 64 bits */

static uint64_t hot_page(const struct bench_workload *w, uint64_t rank)
{
    return (uint64_t)(((u128)rank * w->hot_mult + w->hot_add) % w->pages);
}

/*
 * Ranks drawn log-uniformly (rank = pages^u - 1), which is a Zipf law with
 * exponent about 1: a few pages are dirtied in almost every epoch. When the
 * draws keep hitting pages already taken, the hottest free ranks fill the rest.
 */
static void pick_hotset(struct bench_workload *w)
{
    uint64_t got = 0, tries = 32 * w->dirty + 1024;

    while (got < w->dirty && tries--) {
        double u = (double)(bench_rand(&w->pick_rng) >> 11) * 0x1p-53;
        uint64_t rank = (uint64_t)pow((double)w->pages, u) - 1;

        if (rank >= w->pages)
            rank = w->pages - 1;
        got += !test_and_set(w, hot_page(w, rank));
    }
    for (uint64_t rank = 0; got < w->dirty && rank < w->pages; rank++)
        got += !test_and_set(w, hot_page(w, rank));
}

/* A guest streaming through its memory: continues where the last epoch ended. */
static void pick_stream(struct bench_workload *w)
{
    for (uint64_t i = 0; i < w->dirty; i++) {
        test_and_set(w, w->stream_pos);
        w->stream_pos = (w->stream_pos + 1) % w->pages;
    }
}

static void pick_replay(struct bench_workload *w)
{
    const struct bench_replay *r = w->replay;
    size_t e = (size_t)(w->epoch % r->nepochs);

    for (size_t i = r->epoch_start[e]; i < r->epoch_start[e + 1]; i++)
        for (uint64_t k = 0; k < r->ranges[i].count; k++)
            test_and_set(w, r->ranges[i].first + k);
}

size_t bench_workload_list_from_bitmap(struct bench_workload *w)
{
    w->nlist = 0;
    for (uint64_t i = 0; i < (w->pages + 63) / 64; i++) {
        uint64_t word = w->bitmap[i];

        w->bitmap[i] = 0;
        while (word) {
            w->list[w->nlist++] = i * 64 + (uint64_t)__builtin_ctzll(word);
            word &= word - 1;
        }
    }
    return w->nlist;
}

size_t bench_workload_pick(struct bench_workload *w)
{
    switch (w->kind) {
    case BENCH_WL_IDLE: break;
    case BENCH_WL_UNIFORM: pick_uniform(w); break;
    case BENCH_WL_HOTSET: pick_hotset(w); break;
    case BENCH_WL_STREAM: pick_stream(w); break;
    case BENCH_WL_REPLAY: pick_replay(w); break;
    }
    w->epoch++;
    return bench_workload_list_from_bitmap(w);
}

size_t bench_workload_pick_all(struct bench_workload *w)
{
    for (uint64_t i = 0; i < w->pages; i++)
        w->list[i] = i;
    w->nlist = w->pages;
    return w->nlist;
}

void bench_workload_touch(struct bench_workload *w)
{
    for (size_t i = 0; w->ram && i < w->nlist; i++) {
        uint64_t *p = (uint64_t *)(w->ram + w->list[i] * w->page_size);

        /* one word per cache-line pair is enough to make the page new */
        for (size_t k = 0; k < w->page_size / sizeof(*p); k += 64)
            p[k] = bench_rand(&w->fill_rng);
        p[1] = bench_rand(&w->fill_rng);
    }
}

size_t bench_workload_runs(struct bench_workload *w)
{
    struct colo_dirty_run *last = NULL;

    w->nruns = 0;
    for (size_t i = 0; i < w->nlist; i++) {
        uint32_t block = (uint32_t)(w->list[i] / w->per_block);
        uint64_t page = w->list[i] % w->per_block;

        if (last && last->block == block && last->first_page + last->page_count == page) {
            last->page_count++;
            continue;
        }
        last = &w->runs[w->nruns++];
        *last = (struct colo_dirty_run){.block = block, .first_page = page, .page_count = 1};
    }
    return w->nruns;
}
