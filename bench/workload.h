/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dirtying workloads for the bench: seeded, so every transport sees the same pages. */
#ifndef COLO_BENCH_WORKLOAD_H
#define COLO_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/options.h"

struct bench_workload {
    uint8_t *ram;
    uint64_t pages;       /* total */
    uint64_t per_block;   /* pages per block */
    uint64_t dirty;       /* pages per checkpoint */
    uint64_t rng;
    struct colo_dirty_run *runs;
};

void bench_workload_init(struct bench_workload *w, const struct bench_options *o, uint8_t *ram);
void bench_workload_free(struct bench_workload *w);
/* Dirties pages (all of them when full) with new bytes and lists them in w->runs. */
size_t bench_workload_dirty(struct bench_workload *w, int full);
uint64_t bench_rand(uint64_t *state);

#endif
