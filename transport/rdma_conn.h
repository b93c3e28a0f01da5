/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One RDMA connection of the rdma backend and everything it owns.
 *
 * Ownership and teardown order (rdma_conn_destroy, safe from any half-built
 * state): heartbeat thread, probe QP and address handle, QP, CQ (after
 * acking its events), completion channel, MRs (control ring, RAM or cache),
 * PD, cm_id, event channel.
 *
 * Locking: `lock` guards the queues, the rings and the credits. The caller's
 * thread takes it to post and to reap completions and drops it only while it
 * sleeps in poll(); the heartbeat thread takes it for each tick.
 */
#ifndef COLO_TRANSPORT_RDMA_CONN_H
#define COLO_TRANSPORT_RDMA_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/verbs_shim.h"

/* Control channel geometry. */
#define RDMA_RECV_DEPTH 64      /* pre-posted receives = initial peer credits */
#define RDMA_SEND_SLOTS 64      /* control send buffers */
#define RDMA_SLOT_SIZE 8192     /* one control message, header included */
#define RDMA_CTRL_HDR 8
#define RDMA_CTRL_PAYLOAD (RDMA_SLOT_SIZE - RDMA_CTRL_HDR)
#define RDMA_SQ_DEPTH 512       /* send queue (WRITEs and SENDs), capped by max_qp_wr */
#define RDMA_WANT_INLINE 64     /* inline data asked for; the device may give less */
/*
 * Transport retries outlast the heartbeat deadline (4 x 500 ms by default):
 * 7 tries of 4.096 us << 17 = 537 ms ride out a partition shorter than the
 * deadline, and the heartbeat alone decides when the peer is lost. Never 0:
 * rxe with an ACK timeout of 0 never retransmits. Single losses are resent
 * at once on the responder's sequence NAK; only a lost tail waits a timeout.
 */
#define RDMA_ACK_TIMEOUT 17
#define RDMA_RETRY_COUNT 7
#define RDMA_CQ_ACK_BATCH 16
/*
 * Liveness probe (rdma_probe.c): a UD QP beside the RC one. A heartbeat on
 * the RC QP queues behind the page push's WRITEs, and on a lossy link the
 * go-back-N retransmission of a window can hold it longer than the deadline.
 * Datagrams on their own QP overtake the push and are never retransmitted:
 * each side sends one every quarter interval; any that arrives is life.
 */
#define RDMA_PROBE_RECVS 16
#define RDMA_PROBE_SENDS 1         /* one probe in flight at a time */
#define RDMA_PROBE_GRH 40          /* a UD receive starts with the GRH */
#define RDMA_PROBE_WIRE 16         /* be32 magic | be32 cookie | be64 sequence */
#define RDMA_PROBE_SLOT 64
#define RDMA_PROBE_MAGIC 0x434c5650u /* "CLVP" */
#define RDMA_PROBE_QKEY 0x11c0105u
/* The control ring and, after it, one page with the probe's receive and send
 * slots (a whole page: the ring is page-aligned and registered in one MR). */
#define RDMA_PROBE_AREA_OFFSET ((size_t)(RDMA_RECV_DEPTH + RDMA_SEND_SLOTS) * RDMA_SLOT_SIZE)
#define RDMA_PROBE_AREA 4096
_Static_assert((RDMA_PROBE_RECVS + RDMA_PROBE_SENDS) * RDMA_PROBE_SLOT <= RDMA_PROBE_AREA,
               "the probe slots fit their page");
#define RDMA_RING_BYTES (RDMA_PROBE_AREA_OFFSET + RDMA_PROBE_AREA)
/*
 * Page push flow control: one WRITE carries at most RDMA_WRITE_CHUNK bytes,
 * and at most RDMA_WRITE_WINDOW bytes of WRITEs are in flight. A heartbeat or
 * control message queued behind the WRITEs of the same QP then waits for at
 * most a window's worth of data, so a long push on a slow or lossy link never
 * starves the secondary's heartbeat deadline. 1 MiB is still several times the
 * bandwidth-delay product of a 100 Gb/s link inside a data centre.
 */
#define RDMA_WRITE_CHUNK (256u << 10)
#define RDMA_WRITE_WINDOW (1u << 20)

/* Control message types (header: be16 type, be16 credits returned, be32 length). */
enum rdma_ctrl_type {
    RDMA_CTRL_DATA = 1,      /* stream bytes */
    RDMA_CTRL_CREDIT = 2,    /* credits only */
    RDMA_CTRL_HEARTBEAT = 3, /* liveness (and credits) */
};

/*
 * wr_id: low 8 bits the kind, the next 16 an index or a count, the top 40
 * the bytes a signaled WRITE completes.
 */
enum rdma_wr_kind {
    RDMA_WR_RECV = 1,  /* index: receive slot */
    RDMA_WR_SEND = 2,  /* index: send slot; always signaled */
    RDMA_WR_WRITE = 3, /* count: WRs this signaled WRITE completes */
    RDMA_WR_PROBE_RECV = 4, /* index: probe receive slot */
    RDMA_WR_PROBE_SEND = 5,
};
#define RDMA_WR_ID(kind, n) ((uint64_t)(n) << 8 | (kind))
#define RDMA_WR_ID_BYTES(kind, n, bytes) ((uint64_t)(bytes) << 24 | RDMA_WR_ID(kind, n))
#define RDMA_WR_KIND(id) ((unsigned)((id)&0xff))
#define RDMA_WR_N(id) (((id) >> 8) & 0xffff)
#define RDMA_WR_BYTES(id) ((id) >> 24)

struct rdma_limits {
    uint32_t max_qp_wr;
    uint32_t max_sge;
    uint32_t max_inline;  /* what the QP got */
    uint64_t max_mr_size;
    uint32_t max_mr;
    uint32_t max_msg_size;
    uint32_t active_mtu;  /* bytes */
    uint32_t sq_depth;
};

/* One registered chunk: a region may need several (max_mr_size). */
struct rdma_chunk {
    uint64_t addr;
    uint64_t len;
    uint32_t key; /* lkey for local chunks, rkey for remote ones */
};

#define RDMA_MAX_CHUNKS 1024

struct rdma_conn {
    pthread_mutex_t lock;
    int refs;

    /* resources, in creation order */
    struct rdma_event_channel *ec;
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *cc;
    struct ibv_cq *cq;
    bool qp_created;
    struct ibv_mr *ctrl_mr;
    uint8_t *ctrl_buf;
    struct ibv_mr *ram_mrs[RDMA_MAX_CHUNKS];
    uint32_t nram_mrs;
    unsigned cq_events_unacked;
    bool cq_armed;

    struct rdma_limits lim;

    /* control channel: receive side */
    uint32_t ready[RDMA_RECV_DEPTH]; /* FIFO of slots holding unread data */
    uint32_t ready_head, ready_count;
    uint32_t head_off;               /* bytes of the head slot already read */
    uint32_t head_len;               /* payload bytes of the head slot */
    uint32_t credits_to_return;      /* reposted receives not yet announced */
    /* control channel: send side */
    uint32_t peer_credits;           /* receives the peer has posted for us */
    bool send_slot_busy[RDMA_SEND_SLOTS];
    uint32_t next_send_slot;
    uint32_t sq_free;                /* free send-queue entries */

    /* page push (primary) */
    struct rdma_chunk local[RDMA_MAX_CHUNKS];  /* RAM block chunks, lkey */
    uint32_t nlocal;
    struct rdma_chunk remote[RDMA_MAX_CHUNKS]; /* cache chunks, rkey */
    uint32_t nremote;
    uint64_t remote_block[256];                /* cache address of each block */
    uint32_t writes_outstanding;               /* WRITEs posted, not yet complete */
    uint64_t write_bytes_outstanding;          /* their bytes (RDMA_WRITE_WINDOW) */
    uint64_t doorbells;
    uint64_t write_wrs;

    /* liveness probe: UD QP, the peer's address, and what crossed */
    struct ibv_qp *probe_qp;
    struct ibv_ah *probe_ah;
    uint32_t probe_cookie;      /* ours: the peer's probes must carry it */
    uint32_t peer_probe_qpn;
    uint32_t peer_probe_cookie;
    bool probe_send_busy;
    uint64_t probes_sent, probes_received, probes_refused;

    /* liveness */
    bool busy_poll;
    bool lost;
    bool tearing_down;
    int lost_err;
    char lost_reason[200];
    uint64_t last_rx_ns, last_tx_ns;
    uint64_t events_checked_ns;
    uint32_t heartbeat_ms;   /* interval; the deadline is 4 intervals */
    int wake_fd;             /* eventfd: shutdown wakes a sleeping waiter */
    bool hb_running;
    bool hb_stop;
    pthread_t hb_thread;
    pthread_cond_t hb_cond;
};

/* Allocates an empty connection (no resources yet). */
int rdma_conn_new(struct rdma_conn **out);
/* Tears down whatever exists, in the documented order; NULL is fine. */
void rdma_conn_destroy(struct rdma_conn *c);

/* Builds PD, completion channel, CQ, QP and the control ring on c->id, and
 * posts every receive. Reads the device limits first. */
int rdma_conn_build(struct rdma_conn *c);

/* Wakes a waiter sleeping in rdma_wait (from any thread, lock not needed). */
void rdma_conn_wake(struct rdma_conn *c);
/* Marks the peer lost with a reason (first one wins); waiters see it. */
void rdma_conn_lost(struct rdma_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reaps completions without blocking. Lock held. */
int rdma_progress(struct rdma_conn *c);
/* Takes connection-manager and device events (DISCONNECTED, DEVICE_REMOVAL,
 * QP fatal, port error...) without blocking. Lock held. */
void rdma_check_events(struct rdma_conn *c);
/* Waits (lock held on entry and exit) until done(c, arg) is true, the peer
 * is lost or the deadline passes. */
int rdma_wait(struct rdma_conn *c, bool (*done)(struct rdma_conn *, void *), void *arg,
              uint64_t deadline_ns, const char *what);
/* Maps a failed work completion to its outcome: 0 (ignored during teardown)
 * or the peer-lost error recorded on c. */
int rdma_completion_error(struct rdma_conn *c, const struct ibv_wc *wc);

/* Liveness probe (rdma_probe.c). Lock held. build: after the control ring;
 * a device without UD QPs (iWARP) leaves the probe off, not the connection.
 * connect: once established, with what the peer's private data announced
 * (QPN 0: the peer has no probe). on_completion: probe work completions. */
void rdma_probe_build(struct rdma_conn *c);
void rdma_probe_connect(struct rdma_conn *c, uint32_t peer_qpn, uint32_t peer_cookie);
void rdma_probe_send(struct rdma_conn *c);
void rdma_probe_on_completion(struct rdma_conn *c, const struct ibv_wc *wc);
void rdma_probe_destroy(struct rdma_conn *c);

/* Heartbeat thread: start after the connection is established. */
int rdma_heartbeat_start(struct rdma_conn *c, uint32_t interval_ms);
void rdma_heartbeat_stop(struct rdma_conn *c);

/* Control channel (rdma_ctrl.c). Lock held. */
int rdma_ctrl_post_all_recvs(struct rdma_conn *c);
int rdma_ctrl_send(struct rdma_conn *c, uint16_t type, const void *buf, size_t len,
                   uint64_t deadline_ns);
/* Handles one receive completion (called by rdma_progress). */
int rdma_ctrl_on_recv(struct rdma_conn *c, uint32_t slot, uint32_t byte_len);
void rdma_ctrl_on_send_done(struct rdma_conn *c, uint32_t slot);
/* Copies up to len unread bytes; waits for at least one. */
ssize_t rdma_ctrl_read(struct rdma_conn *c, void *buf, size_t len, uint64_t deadline_ns);
/* Sends a credit update or heartbeat when due (heartbeat thread, reader). */
int rdma_ctrl_maybe_return_credits(struct rdma_conn *c, bool force);

#endif
