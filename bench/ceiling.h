/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ceilings a page push is compared with, and the judgement of that
 * comparison. Each transport is divided only by a ceiling of its own path:
 *   rdma: perftest's ib_write_bw run the way the library posts (message size,
 *         send-queue depth, signaled interval, post list, duration mode, BW
 *         average), and the bench's raw verbs pump (pump_rdma.c: the same
 *         QP, MR and post pattern with no protocol); the lower of the two;
 *   tcp:  the bench's socket pump (pump_tcp.c: one connection, the same
 *         frames and write sizes, the same path).
 * A page push that beats its ceiling by more than BENCH_LIMIT_SLACK shows that
 * the ceiling was not one: it is then reported as unreliable, with the
 * reason, instead of as a result.
 */
#ifndef COLO_BENCH_CEILING_H
#define COLO_BENCH_CEILING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The library's rdma page push pattern (transport/rdma_conn.h, rdma_write.h:
 * CRDMA_SQ_DEPTH, CRDMA_WRITE_BATCH, CRDMA_WRITE_CHUNK, CRDMA_WRITE_WINDOW,
 * CRDMA_WRITE_SIGNAL_BYTES),
 * repeated here because bench/ includes only its own and the public headers.
 * Keep them in step.
 */
#define BENCH_RDMA_SQ_DEPTH 512
#define BENCH_RDMA_WRITE_BATCH 64
#define BENCH_RDMA_WRITE_CHUNK (256u << 10)
#define BENCH_RDMA_WRITE_WINDOW (1u << 20)
#define BENCH_RDMA_WRITE_SIGNAL_BYTES BENCH_RDMA_WRITE_CHUNK /* a signaled WRITE at least per */
/* The tcp page frame (transport/tcp.c) and the stream's buffering (stream/stream.h). */
#define BENCH_TCP_FRAME_HDR 24
#define BENCH_TCP_STREAM_BUF 32768
#define BENCH_TCP_DIRECT (BENCH_TCP_STREAM_BUF / 4) /* payloads from here skip the copy */

/* A measured ratio above this marks the ceiling unreliable. */
#define BENCH_LIMIT_SLACK 1.05

/* How ib_write_bw is run so that it posts like the library does. */
struct bench_write_bw_shape {
    uint64_t size;      /* -s: the average WRITE of the checkpoints */
    uint32_t tx_depth;  /* -t: WRITEs in flight (send queue, capped by the byte window) */
    uint32_t cq_mod;    /* -Q: one signaled WRITE per this many */
    uint32_t post_list; /* -l: WRITEs per doorbell */
    uint32_t duration;  /* -D seconds (with -f 1: the first and last second not counted) */
};

/*
 * The shape for WRITEs of avg_write bytes on average (0: one page of
 * page_size). Events (-e) are not offered for WRITE by perftest (4.5: "Events
 * feature not available on WRITE verb"): ib_write_bw always polls.
 */
void bench_write_bw_shape(uint64_t avg_write, uint32_t page_size, uint32_t duration,
                          struct bench_write_bw_shape *s);
/*
 * "-s 4096 -t 256 -Q 64 -l 64 -D 4 -f 1 --use_old_post_send", for the report:
 * ibv_post_send as the library uses it (perftest 4.5's newer post path reports
 * 0 with -l in duration mode).
 */
void bench_write_bw_shape_str(const struct bench_write_bw_shape *s, char *buf, size_t len);

/* The ceilings of one row and their judgement. GB/s (10^9); 0 = not measured. */
struct bench_ceiling {
    double perftest_gbytes;  /* rdma: ib_write_bw */
    char perftest_note[192]; /* its command line shape, or why it failed */
    double pump_gbytes;      /* the bench's own raw pump of this transport */
    char pump_note[192];     /* what it did, or why it failed */
    double pump_paired;      /* median over the checkpoints of the library's rate over
                                the pump's for the same runs just after; 0: none */
    /* set by bench_ceiling_judge */
    double gbytes;           /* the ceiling: the lower of the measured ones */
    const char *source;      /* "ib_write_bw", "verbs pump", "socket pump", or NULL */
    double ratio;            /* page push / ceiling (0 without a ceiling) */
    bool reliable;           /* ratio <= BENCH_LIMIT_SLACK */
    char reason[400];        /* why unreliable, or why there is no ceiling */
};

/*
 * Picks the lower measured ceiling for a page push of push_gbytes over
 * transport and judges the ratio. A tcp row never takes the verbs figure.
 */
void bench_ceiling_judge(struct bench_ceiling *c, const char *transport, double push_gbytes);

/* The same judgement for latency: pause median over n one-way messages. */
struct bench_latency_ceiling {
    double one_way_us;    /* 0: not measured */
    const char *source;   /* "ib_send_lat", "ib_send_lat -e", "tcp ping-pong" */
    double ratio;         /* pause median / (n x one_way_us): >= 1 expected */
    bool reliable;        /* ratio >= 1 / BENCH_LIMIT_SLACK */
    char reason[256];
};
void bench_latency_judge(struct bench_latency_ceiling *l, double pause_median_us, int messages);

#endif
