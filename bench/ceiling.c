/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench/ceiling.h"

void bench_write_bw_shape(uint64_t avg_write, uint32_t page_size, uint32_t duration,
                          struct bench_write_bw_shape *s)
{
    uint64_t size = avg_write ? avg_write : page_size;
    uint64_t depth, per_signal;

    /* the library splits WRITEs at its chunk size */
    if (size > BENCH_RDMA_WRITE_CHUNK)
        size = BENCH_RDMA_WRITE_CHUNK;
    /* in flight: a send-queue entry each, and at most the window in bytes */
    depth = BENCH_RDMA_WRITE_WINDOW / size;
    if (depth > BENCH_RDMA_SQ_DEPTH)
        depth = BENCH_RDMA_SQ_DEPTH;
    if (depth < 1)
        depth = 1;
    s->size = size;
    s->tx_depth = (uint32_t)depth;
    /* one doorbell per batch, a batch never above the depth; a signaled WRITE
     * per batch and at least every BENCH_RDMA_WRITE_SIGNAL_BYTES */
    s->post_list = s->tx_depth < BENCH_RDMA_WRITE_BATCH ? s->tx_depth : BENCH_RDMA_WRITE_BATCH;
    per_signal = BENCH_RDMA_WRITE_SIGNAL_BYTES / size ? BENCH_RDMA_WRITE_SIGNAL_BYTES / size : 1;
    s->cq_mod = s->post_list < per_signal ? s->post_list : (uint32_t)per_signal;
    /* perftest wants the duration above twice its 1 s margin */
    s->duration = duration < 3 ? 3 : duration;
}

void bench_write_bw_shape_str(const struct bench_write_bw_shape *s, char *buf, size_t len)
{
    snprintf(buf, len, "-s %" PRIu64 " -t %" PRIu32 " -Q %" PRIu32 " -l %" PRIu32 " -D %" PRIu32
             " -f 1 --use_old_post_send", s->size, s->tx_depth, s->cq_mod, s->post_list, s->duration);
}

void bench_ceiling_judge(struct bench_ceiling *c, const char *transport, double push_gbytes)
{
    bool rdma = !strcmp(transport, "rdma");
    /* a tcp row is never divided by a verbs figure */
    double verbs = rdma ? c->perftest_gbytes : 0, other;
    int n;

    c->gbytes = 0;
    c->source = NULL;
    c->ratio = 0;
    c->reliable = false;
    c->reason[0] = '\0';
    if (c->pump_gbytes > 0) {
        c->gbytes = c->pump_gbytes;
        c->source = rdma ? "verbs pump" : "socket pump";
    }
    if (verbs > 0 && (c->gbytes <= 0 || verbs < c->gbytes)) {
        c->gbytes = verbs;
        c->source = "ib_write_bw";
    }
    if (c->gbytes <= 0) {
        n = snprintf(c->reason, sizeof(c->reason), "no ceiling: %.150s",
                     c->pump_note[0] ? c->pump_note : "pump not run");

        if (rdma && n > 0 && (size_t)n < sizeof(c->reason))
            snprintf(c->reason + n, sizeof(c->reason) - (size_t)n, "; ib_write_bw: %.150s",
                     c->perftest_note[0] ? c->perftest_note : "not run");
        return;
    }
    c->ratio = push_gbytes / c->gbytes;
    c->reliable = c->ratio <= BENCH_LIMIT_SLACK;
    if (c->reliable)
        return;
    other = !strcmp(c->source, "ib_write_bw") ? c->pump_gbytes : verbs;
    n = snprintf(c->reason, sizeof(c->reason),
             "the page push ran at %.3fx its ceiling (%s %.4f GB/s), above %.2f: that ceiling "
             "did not bound this path (%s), so the ratio is no result",
             c->ratio, c->source, c->gbytes, BENCH_LIMIT_SLACK,
             !strcmp(c->source, "ib_write_bw")
                 ? "ib_write_bw busy-polls its CQ and takes a CPU the emulated device needs"
                 : "the pump, which does less than the bench, ran slower than it: a disturbed "
                   "measurement on a shared machine");
    /* the other ceiling, if it held, is named (not divided by: the limit is the lower one) */
    if (rdma && other > 0 && push_gbytes <= other * BENCH_LIMIT_SLACK && n > 0 &&
        (size_t)n < sizeof(c->reason))
        snprintf(c->reason + n, sizeof(c->reason) - (size_t)n, "; the other ceiling (%s "
                 "%.4f GB/s) was not beaten", !strcmp(c->source, "ib_write_bw") ? "verbs pump"
                                                                               : "ib_write_bw",
                 other);
}

void bench_latency_judge(struct bench_latency_ceiling *l, double pause_median_us, int messages)
{
    double budget = messages * l->one_way_us;

    l->ratio = 0;
    l->reliable = false;
    l->reason[0] = '\0';
    if (l->one_way_us <= 0) {
        snprintf(l->reason, sizeof(l->reason), "no latency ceiling measured");
        return;
    }
    l->ratio = pause_median_us / budget;
    l->reliable = l->ratio * BENCH_LIMIT_SLACK >= 1;
    if (!l->reliable)
        snprintf(l->reason, sizeof(l->reason),
                 "the pause median (%.1f us) is below %d one-way messages of %s (%.1f us "
                 "each): that latency was no floor for this path, so the ratio is no result",
                 pause_median_us, messages, l->source ? l->source : "?", l->one_way_us);
}
