/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirtying workloads: each epoch (the time between two checkpoints) picks a
 * set of pages from a seeded generator, so that every transport sees the same
 * pages, then writes new bytes into them.
 */
#ifndef COLO_BENCH_WORKLOAD_H
#define COLO_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/options.h"
#include "bench/replay.h"

struct bench_workload {
    enum bench_workload_kind kind;
    uint8_t *ram;          /* may be NULL when only pages are picked (tests) */
    uint32_t page_size;
    uint64_t pages;        /* total */
    uint64_t per_block;    /* pages per block */
    uint64_t dirty;        /* pages per epoch (uniform, hotset, stream) */
    uint64_t pick_rng;     /* which pages: independent of the bytes written */
    uint64_t fill_rng;     /* the new bytes */
    uint64_t stream_pos;
    uint64_t hot_mult, hot_add; /* hotset: rank -> page permutation */
    uint64_t epoch;
    const struct bench_replay *replay;
    uint64_t *bitmap;      /* scratch: one bit per page, all clear between epochs */
    uint64_t *list;        /* this epoch's pages, sorted and unique */
    size_t nlist;
    struct colo_dirty_run *runs;
    size_t nruns;
};

struct bench_workload_params {
    enum bench_workload_kind kind;
    uint8_t *ram;
    uint64_t ram_bytes;
    uint32_t blocks;
    uint32_t page_size;
    uint64_t dirty;
    uint64_t seed;
    const struct bench_replay *replay; /* BENCH_WL_REPLAY */
};

/* 0, or -1 when out of memory. */
int bench_workload_init(struct bench_workload *w, const struct bench_workload_params *p);
void bench_workload_free(struct bench_workload *w);
/* Picks the next epoch's pages into w->list; touches no memory. */
size_t bench_workload_pick(struct bench_workload *w);
/* Lists every page (the first warm-up checkpoint sends all RAM). */
size_t bench_workload_pick_all(struct bench_workload *w);
/* Writes new bytes into every listed page. */
void bench_workload_touch(struct bench_workload *w);
/* Rebuilds w->list from the bits set in w->bitmap and clears them. */
size_t bench_workload_list_from_bitmap(struct bench_workload *w);
/* Turns w->list into runs of contiguous pages inside one block (w->runs). */
size_t bench_workload_runs(struct bench_workload *w);
uint64_t bench_rand(uint64_t *state);

#endif
