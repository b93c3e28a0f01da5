/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bench's own raw pumps: the page push with no protocol at all, the
 * ceiling of each transport's own path. A pump is open during its run and
 * pushes the very runs of each checkpoint right after the library did
 * (between checkpoints, outside their timing), so that the ceiling and the
 * measured thing meet the same pages and the same machine load.
 *   rdma (pump_rdma.c): a loopback RC QP pair on the RDMA device, the guest
 *     RAM and a cache-sized buffer registered once, each checkpoint's runs
 *     posted as the library posts them (WRITEs split at 256 KiB, chains of at
 *     most 64 with the last one signaled, one doorbell per chain, at most
 *     512 in the send queue and 1 MiB in flight), completions slept on
 *     (event) or spun on (--poll busy) as the library does; timed from the
 *     first post to the last completion, like the bench's "pages" phase.
 *   tcp (pump_tcp.c): one TCP connection to the session's address, the tcp
 *     backend's frames (24-byte header + pages, small payloads copied into a
 *     32 KiB buffer, larger ones written from RAM with writev, an end marker)
 *     read on the other end by a process of its own (as the bench's secondary
 *     is) into a cache-sized buffer at each
 *     run's place; timed from the first write to the last, like the bench's
 *     "pages" phase; each checkpoint waits for the reader's acknowledgement
 *     (untimed), so every checkpoint starts with an empty pipe as in the bench.
 * And a TCP latency: a 64-byte ping-pong on one connection.
 */
#ifndef COLO_BENCH_PUMP_H
#define COLO_BENCH_PUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/limit.h"

struct bench_pump_params {
    uint8_t *ram;        /* the source: the bench's guest RAM */
    uint64_t ram_bytes;
    uint32_t blocks;
    uint32_t page_size;
    bool busy_poll;      /* rdma: spin on the CQ instead of sleeping */
    uint32_t timeout_ms; /* every wait */
};

struct bench_pump_result {
    double gbytes;       /* timed bytes / timed time, GB/s */
    uint64_t checkpoints, bytes, writes, ns;
};

struct bench_pump;

/*
 * Opens the pump of transport ("rdma": on device d; "tcp": to host). 0, or -1
 * with the reason in note.
 */
int bench_pump_open(struct bench_pump **pp, const char *transport,
                    const struct bench_rdma_dev *d, const char *host,
                    const struct bench_pump_params *p, char *note, size_t len);
/*
 * Pushes one checkpoint's runs; timed ones count in the result. *ns (if not
 * NULL): this push's time. 0, or -1 (note).
 */
int bench_pump_push(struct bench_pump *pm, const struct colo_dirty_run *runs, size_t nruns,
                    bool timed, uint64_t *ns, char *note, size_t len);
void bench_pump_result(const struct bench_pump *pm, struct bench_pump_result *res);
/* "verbs pump: 50 checkpoints, 12000 WRITEs of 4363 bytes on average, events" */
void bench_pump_describe(const struct bench_pump *pm, char *buf, size_t len);
/* Accepts NULL and half-opened pumps; sets *pp to NULL. */
void bench_pump_close(struct bench_pump **pp);

/* Median one-way time (half the round trip) of 64-byte messages over TCP to host. */
int bench_tcp_pingpong(const char *host, uint32_t timeout_ms, double *one_way_us, char *note,
                       size_t len);

#endif
