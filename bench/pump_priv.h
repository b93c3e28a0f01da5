/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What pump.c shares with the two pumps. */
#ifndef COLO_BENCH_PUMP_PRIV_H
#define COLO_BENCH_PUMP_PRIV_H

#include "bench/pump.h"

struct bench_pump_ops {
    const char *name; /* "verbs pump", "socket pump" */
    int (*push)(void *impl, const struct colo_dirty_run *runs, size_t nruns, uint64_t *writes,
                char *note, size_t len);
    /* optional, untimed: after push, what the next checkpoint must not inherit */
    int (*settle)(void *impl, char *note, size_t len);
    void (*close)(void *impl);
};

struct bench_pump {
    const struct bench_pump_ops *ops;
    void *impl;
    struct bench_pump_params p;
    uint64_t block_len;
    struct bench_pump_result res;
};

/* Each pump's open: 0 with *impl, or -1 with the reason in note. */
int bench_pump_rdma_open(void **impl, const struct bench_pump_ops **ops,
                         const struct bench_rdma_dev *d, const struct bench_pump_params *p,
                         char *note, size_t len);
int bench_pump_tcp_open(void **impl, const struct bench_pump_ops **ops, const char *host,
                        const struct bench_pump_params *p, char *note, size_t len);

/* The byte offset of a run in the guest RAM (and in the cache). */
static inline uint64_t bench_pump_run_offset(const struct bench_pump_params *p,
                                             const struct colo_dirty_run *r)
{
    return r->block * (p->ram_bytes / p->blocks) + r->first_page * p->page_size;
}

uint64_t bench_pump_now_ns(void);

#endif
