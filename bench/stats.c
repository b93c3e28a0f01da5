/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "bench/stats.h"

void bench_samples_init(struct bench_samples *s, size_t expected)
{
    s->n = 0;
    s->cap = expected ? expected : 16;
    s->v = calloc(s->cap, sizeof(*s->v));
    if (!s->v)
        abort();
}

void bench_samples_free(struct bench_samples *s)
{
    free(s->v);
    s->v = NULL;
}

void bench_samples_add(struct bench_samples *s, const struct colo_checkpoint_stats *st)
{
    if (s->n == s->cap) {
        s->cap *= 2;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v)
            abort();
    }
    s->v[s->n++] = *st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank;

    if (!n)
        return 0;
    rank = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[rank ? rank - 1 : 0];
}

static void report_field(const struct bench_samples *s, size_t offset, const char *name,
                         FILE *out)
{
    uint64_t *v = malloc(s->n * sizeof(*v));
    double sum = 0;

    if (!v)
        abort();
    for (size_t i = 0; i < s->n; i++) {
        v[i] = *(const uint64_t *)((const char *)&s->v[i] + offset);
        sum += (double)v[i];
    }
    qsort(v, s->n, sizeof(*v), cmp_u64);
    fprintf(out, "%-10s %10.1f %10.1f %10.1f %10.1f %10.1f\n", name, v[0] / 1e3,
            bench_percentile(v, s->n, 50) / 1e3, sum / (double)s->n / 1e3,
            bench_percentile(v, s->n, 99) / 1e3, v[s->n - 1] / 1e3);
    free(v);
}

void bench_samples_report(const struct bench_samples *s, FILE *out)
{
    uint64_t bytes = 0, ns = 0;

    if (!s->n)
        return;
    for (size_t i = 0; i < s->n; i++) {
        bytes += s->v[i].page_bytes;
        ns += s->v[i].pages_ns;
    }
    fprintf(out, "# %zu checkpoints, %.1f pages each; times in us\n", s->n,
            (double)bytes / 4096.0 / (double)s->n);
    fprintf(out, "%-10s %10s %10s %10s %10s %10s\n", "phase", "min", "median", "avg", "p99",
            "max");
    report_field(s, offsetof(struct colo_checkpoint_stats, total_ns), "pause", out);
    report_field(s, offsetof(struct colo_checkpoint_stats, request_ns), "request", out);
    report_field(s, offsetof(struct colo_checkpoint_stats, pages_ns), "pages", out);
    report_field(s, offsetof(struct colo_checkpoint_stats, state_ns), "state", out);
    report_field(s, offsetof(struct colo_checkpoint_stats, received_ns), "received", out);
    report_field(s, offsetof(struct colo_checkpoint_stats, loaded_ns), "loaded", out);
    if (ns)
        fprintf(out, "# page push throughput: %.3f GB/s (%.3f Gb/s)\n",
                (double)bytes / (double)ns, (double)bytes * 8 / (double)ns);
}
