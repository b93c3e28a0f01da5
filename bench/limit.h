/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The raw verbs limit: perftest's ib_write_bw run locally (server and client
 * on the same device and address) with the checkpoint's message size and
 * bytes, so every row can state how close it comes to what the NIC does.
 */
#ifndef COLO_BENCH_LIMIT_H
#define COLO_BENCH_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_rdma_dev {
    bool present;
    char name[64];
    char addr[128]; /* COLO_RDMA_ADDR, else 127.0.0.1 for the out-of-band exchange */
    char info[256]; /* for the header: port, state, MTU, or why there is none */
};

/* COLO_RDMA_DEV/COLO_RDMA_ADDR (soft-RoCE harness), else the first of ibv_devices. */
void bench_rdma_dev_detect(struct bench_rdma_dev *d);
/*
 * Measures ib_write_bw with msg_size bytes per write and about total bytes.
 * 0 with *gbytes_per_s (GB/s, 10^9), or -1 with the reason in note.
 */
int bench_limit_measure(const struct bench_rdma_dev *d, uint64_t msg_size, uint64_t total,
                        double *gbytes_per_s, char *note, size_t len);

/*
 * Measures ib_send_lat with small messages (like the control messages): the
 * typical one-way latency in microseconds. 0, or -1 with the reason in note.
 */
int bench_latency_measure(const struct bench_rdma_dev *d, double *one_way_us, char *note,
                          size_t len);

/* One-way messages on the critical path of a checkpoint: request, reply, the
 * state (vmstate-send + dirty-list + vmstate-size + state in one message),
 * vmstate-received, vmstate-loaded. */
#define BENCH_CRITICAL_MESSAGES 5

#endif
