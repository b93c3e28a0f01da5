/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdlib.h>

#include "bench/stats.h"

int bench_samples_init(struct bench_samples *s, size_t expected)
{
    s->n = 0;
    s->cap = expected ? expected : 16;
    s->v = calloc(s->cap, sizeof(*s->v));
    return s->v ? 0 : -1;
}

void bench_samples_free(struct bench_samples *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int bench_samples_add(struct bench_samples *s, const struct colo_checkpoint_stats *st)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct colo_checkpoint_stats *n = realloc(s->v, ncap * sizeof(*n));

        if (!n)
            return -1;
        s->v = n;
        s->cap = ncap;
    }
    s->v[s->n++] = *st;
    return 0;
}

const char *bench_phase_name(enum bench_phase p)
{
    static const char *const names[BENCH_NPHASES] = {
        "pause", "request", "pages", "state", "received", "loaded",
    };

    return (unsigned)p < BENCH_NPHASES ? names[p] : "?";
}

uint64_t bench_phase_value(const struct colo_checkpoint_stats *st, enum bench_phase p)
{
    switch (p) {
    case BENCH_PAUSE: return st->total_ns;
    case BENCH_REQUEST: return st->request_ns;
    case BENCH_PAGES: return st->pages_ns;
    case BENCH_STATE: return st->state_ns;
    case BENCH_RECEIVED: return st->received_ns;
    case BENCH_LOADED: return st->loaded_ns;
    case BENCH_NPHASES: break;
    }
    return 0;
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
    /* nearest rank: the smallest value with at least p% of the samples at or below it;
     * the small epsilon keeps 99.9% of 1000 at rank 999 despite rounding */
    rank = (size_t)ceil(p / 100.0 * (double)n - 1e-9);
    if (rank > n)
        rank = n;
    return sorted[rank ? rank - 1 : 0];
}

void bench_summarize(uint64_t *v, size_t n, struct bench_summary *out)
{
    double sum = 0, sq = 0;

    *out = (struct bench_summary){.n = n};
    if (!n)
        return;
    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    out->avg = sum / (double)n;
    for (size_t i = 0; i < n; i++)
        sq += ((double)v[i] - out->avg) * ((double)v[i] - out->avg);
    out->stdev = n > 1 ? sqrt(sq / (double)(n - 1)) : 0;
    out->min = (double)v[0];
    out->median = (double)bench_percentile(v, n, 50);
    out->p99 = (double)bench_percentile(v, n, 99);
    out->p999 = (double)bench_percentile(v, n, 99.9);
    out->max = (double)v[n - 1];
}

int bench_samples_summary(const struct bench_samples *s, enum bench_phase p,
                          struct bench_summary *out)
{
    uint64_t *v = malloc((s->n ? s->n : 1) * sizeof(*v));

    if (!v)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        v[i] = bench_phase_value(&s->v[i], p);
    bench_summarize(v, s->n, out);
    free(v);
    return 0;
}
