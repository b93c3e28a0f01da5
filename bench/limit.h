/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RDMA device and perftest's figures for it: ib_write_bw run locally
 * (server and client on the same device and address) shaped like the
 * library's page push (ceiling.h), and ib_send_lat for the control messages.
 */
#ifndef COLO_BENCH_LIMIT_H
#define COLO_BENCH_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/ceiling.h"

/* The device's limits from ibv_query_device (what the library sizes against). */
struct bench_dev_limits {
    bool known;
    uint64_t max_mr_size;
    uint32_t max_qp_wr, max_sge, max_cqe, max_mr, max_qp, max_qp_rd_atom;
};

struct bench_rdma_dev {
    bool present;
    bool soft;      /* rxe or siw: the device is software on the same CPUs */
    char name[64];
    char addr[128]; /* COLO_RDMA_ADDR, else 127.0.0.1 for the out-of-band exchange */
    char info[256]; /* for the header: port, state, MTU, or why there is none */
    struct bench_dev_limits limits;
};

/* COLO_RDMA_DEV/COLO_RDMA_ADDR (soft-RoCE harness), else the first of ibv_devices. */
void bench_rdma_dev_detect(struct bench_rdma_dev *d);
/*
 * Measures ib_write_bw shaped like the library's page push (see ceiling.h),
 * in duration mode, and takes its BW average (never the peak). 0 with
 * *gbytes_per_s (GB/s, 10^9), or -1 with the reason in note.
 */
int bench_limit_measure(const struct bench_rdma_dev *d, const struct bench_write_bw_shape *s,
                        double *gbytes_per_s, char *note, size_t len);

/*
 * Measures ib_send_lat with small messages (like the control messages),
 * sleeping on completion events (-e) when events is set, as the bench does
 * without --poll busy: the typical one-way latency in microseconds. 0, or -1
 * with the reason in note.
 */
int bench_latency_measure(const struct bench_rdma_dev *d, bool events, double *one_way_us,
                          char *note, size_t len);
/* "BW average" (4th column) of ib_write_bw's result line, in Gb/s; -1 if none. */
int bench_parse_write_bw(const char *out, double *gbits);

/* The latency floor of a checkpoint: one round trip (the request out, its
 * answers back), two one-way messages. The pipelined exchange reaches it up
 * to the secondary's work; waiting for the reply first costs a second one
 * (issue 12 targets: pause median <= 1.2x with early resume, <= 2.2x without). */
#define BENCH_CRITICAL_MESSAGES 2

#endif
