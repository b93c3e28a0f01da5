/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Samples of checkpoint timings and the perftest-like summary. */
#ifndef COLO_BENCH_STATS_H
#define COLO_BENCH_STATS_H

#include <stdint.h>
#include <stdio.h>

#include <colo-rdma/colo-rdma.h>

struct bench_samples {
    struct colo_checkpoint_stats *v;
    size_t n, cap;
};

void bench_samples_init(struct bench_samples *s, size_t expected);
void bench_samples_free(struct bench_samples *s);
void bench_samples_add(struct bench_samples *s, const struct colo_checkpoint_stats *st);
/* Percentile p (0..100) of n sorted values, nearest rank. */
uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p);
void bench_samples_report(const struct bench_samples *s, FILE *out);

#endif
