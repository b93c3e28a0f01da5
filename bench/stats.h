/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Samples of checkpoint timings and their summaries (perftest-like). */
#ifndef COLO_BENCH_STATS_H
#define COLO_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <colo-rdma/colo-rdma.h>

struct bench_samples {
    struct colo_checkpoint_stats *v;
    size_t n, cap;
};

/* The phases of struct colo_checkpoint_stats, in report order. */
enum bench_phase {
    BENCH_PAUSE,
    BENCH_REQUEST,
    BENCH_PAGES,
    BENCH_STATE,
    BENCH_RECEIVED,
    BENCH_LOADED,
    BENCH_NPHASES,
};

/* min / median / avg / stdev / p99 / p99.9 / max, in the unit of the input. */
struct bench_summary {
    size_t n;
    double min, median, avg, stdev, p99, p999, max;
};

/* 0, or -1 when out of memory. */
int bench_samples_init(struct bench_samples *s, size_t expected);
void bench_samples_free(struct bench_samples *s);
int bench_samples_add(struct bench_samples *s, const struct colo_checkpoint_stats *st);
const char *bench_phase_name(enum bench_phase p);
uint64_t bench_phase_value(const struct colo_checkpoint_stats *st, enum bench_phase p);
/* Percentile p (0..100) of n sorted values, nearest rank. */
uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p);
/* Sorts v in place and summarises it; the sample standard deviation (n - 1). */
void bench_summarize(uint64_t *v, size_t n, struct bench_summary *out);
/* Summary of one phase over all samples; -1 when out of memory. */
int bench_samples_summary(const struct bench_samples *s, enum bench_phase p,
                          struct bench_summary *out);

#endif
