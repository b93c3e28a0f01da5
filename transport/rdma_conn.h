/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One RDMA connection of the rdma backend and everything it owns, split into
 * sub-structs by concern. Each sub-struct is read and written only by the file
 * that owns it; the others go through that file's functions (the accessors
 * below its part of this header).
 *
 *   res    resources (rdma_conn.c): event channel, cm_id, PD, completion
 *          channel, CQ, QP, the control ring and its MR, device limits and
 *          the send-queue entries that the control channel and the page push
 *          share (crdma_sq_*)
 *   loss   resources (rdma_conn.c): whether and why the peer is lost, and
 *          whether the connection is being torn down
 *   wait   completions and events (rdma_progress.c): CQ arming and unacked
 *          events, the wake-up eventfd, busy polling
 *   live   liveness (rdma_heartbeat.c): the heartbeat thread, its interval,
 *          when we last heard from and spoke to the peer
 *   ctrl   control channel (rdma_ctrl.c): receive ring, credits, send slots
 *   push   page push (rdma_write.c): WRITEs and bytes in flight, counters
 *   probe  liveness probe (rdma_probe.c): UD QP, address handle, cookies
 *   mr     memory registration (rdma_mr.c): RAM or cache MRs, the local and
 *          remote chunks and where each block's cache lies
 *
 * Completions are dispatched by the kind in their wr_id to the owner's
 * handler in one table (rdma_progress.c).
 *
 * Teardown order (crdma_conn_destroy, safe from any half-built state):
 * heartbeat thread, probe QP and address handle, QP, CQ (after acking its
 * events), completion channel, MRs (control ring, RAM or cache), PD, cm_id,
 * event channel; then the wake-up eventfd, the heartbeat's cond, the lock.
 *
 * Locking: `lock` guards every sub-struct. The caller's thread takes it to
 * post and to reap completions and drops it only while it sleeps in poll();
 * the heartbeat thread takes it for each tick. `refs` counts the streams
 * sharing the connection (rdma.c).
 */
#ifndef COLO_TRANSPORT_RDMA_CONN_H
#define COLO_TRANSPORT_RDMA_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/ram_layout.h"
#include "transport/verbs_shim.h"

/* Control channel geometry. */
#define CRDMA_RECV_DEPTH 64      /* pre-posted receives = initial peer credits */
#define CRDMA_SEND_SLOTS 64      /* control send buffers */
#define CRDMA_SLOT_SIZE 8192     /* one control message, header included */
#define CRDMA_CTRL_HDR 8
#define CRDMA_CTRL_PAYLOAD (CRDMA_SLOT_SIZE - CRDMA_CTRL_HDR)
#define CRDMA_SQ_DEPTH 512       /* send queue (WRITEs and SENDs), capped by max_qp_wr */
#define CRDMA_WANT_INLINE 64     /* inline data asked for; the device may give less */
/*
 * Transport retries outlast the heartbeat deadline (4 x 500 ms by default):
 * 7 tries of 4.096 us << 17 = 537 ms ride out a partition shorter than the
 * deadline, and the heartbeat alone decides when the peer is lost. Never 0:
 * rxe with an ACK timeout of 0 never retransmits. Single losses are resent
 * at once on the responder's sequence NAK; only a lost tail waits a timeout.
 */
#define CRDMA_ACK_TIMEOUT 17
#define CRDMA_RETRY_COUNT 7
#define CRDMA_CQ_ACK_BATCH 16
/*
 * Liveness probe (rdma_probe.c): a UD QP beside the RC one. A heartbeat on
 * the RC QP queues behind the page push's WRITEs, and on a lossy link the
 * go-back-N retransmission of a window can hold it longer than the deadline.
 * Datagrams on their own QP overtake the push and are never retransmitted:
 * each side sends one every quarter interval; any that arrives is life.
 */
#define CRDMA_PROBE_RECVS 8
#define CRDMA_PROBE_SENDS 1         /* one probe in flight at a time */
#define CRDMA_PROBE_GRH 40          /* a UD receive starts with the GRH */
#define CRDMA_PROBE_WIRE 16         /* be32 magic | be32 cookie | be64 sequence */
/* Anyone may send a datagram to the probe's QPN (its Q_Key is public), and
 * one longer than a receive slot puts the UD QP in error: a slot holds the
 * largest datagram there is (the GRH and a 4096-byte MTU). */
#define CRDMA_PROBE_MAX_UD 4096
#define CRDMA_PROBE_SLOT (CRDMA_PROBE_GRH + CRDMA_PROBE_MAX_UD)
#define CRDMA_PROBE_MAGIC 0x434c5650u /* "CLVP" */
#define CRDMA_PROBE_QKEY 0x11c0105u
/* A probe work request's number: the QP's generation (it counts re-arms, so
 * the completions of a QP that was reset are told apart) and the slot. */
#define CRDMA_PROBE_SLOT_BITS 4
#define CRDMA_PROBE_WR_N(gen, slot) \
    ((uint32_t)((gen) << CRDMA_PROBE_SLOT_BITS | (slot)) & 0xffffu)
#define CRDMA_PROBE_WR_GEN(n) (((n) >> CRDMA_PROBE_SLOT_BITS) & (0xffffu >> CRDMA_PROBE_SLOT_BITS))
#define CRDMA_PROBE_WR_SLOT(n) ((n) & ((1u << CRDMA_PROBE_SLOT_BITS) - 1))
_Static_assert(CRDMA_PROBE_RECVS + CRDMA_PROBE_SENDS <= 1u << CRDMA_PROBE_SLOT_BITS,
               "probe slots fit their bits of the work request number");
/* The control ring and, after it, whole pages with the probe's receive and
 * send slots (the ring is page-aligned and registered in one MR). */
#define CRDMA_PROBE_AREA_OFFSET ((size_t)(CRDMA_RECV_DEPTH + CRDMA_SEND_SLOTS) * CRDMA_SLOT_SIZE)
#define CRDMA_PROBE_AREA \
    (((size_t)(CRDMA_PROBE_RECVS + CRDMA_PROBE_SENDS) * CRDMA_PROBE_SLOT + 4095) & ~(size_t)4095)
#define CRDMA_RING_BYTES (CRDMA_PROBE_AREA_OFFSET + CRDMA_PROBE_AREA)
/*
 * Page push flow control: one WRITE carries at most CRDMA_WRITE_CHUNK bytes,
 * and at most CRDMA_WRITE_WINDOW bytes of WRITEs are in flight. A heartbeat or
 * control message queued behind the WRITEs of the same QP then waits for at
 * most a window's worth of data, so a long push on a slow or lossy link never
 * starves the secondary's heartbeat deadline. 1 MiB is still several times the
 * bandwidth-delay product of a 100 Gb/s link inside a data centre.
 */
#define CRDMA_WRITE_CHUNK (256u << 10)
#define CRDMA_WRITE_WINDOW (1u << 20)
/*
 * A signaled WRITE at least every this many bytes of a chain, so that a
 * window's completions come in parts: a wait for WRITEs fails only after a
 * whole timeout in which none completed, and on a lossy link (go-back-N
 * resends from the lost packet on) a window may take long but keeps moving.
 */
#define CRDMA_WRITE_SIGNAL_BYTES CRDMA_WRITE_CHUNK

/* Completions reaped per ibv_poll_cq call. */
#define CRDMA_POLL_BATCH 32
/*
 * Busy polling: CQ polls between two looks at the clock (deadline, heartbeat
 * tick, events). A clock read is a system call, and in a VM whose clock
 * source is not the TSC (HPET under emulation) a trap as well, which made
 * every spin of the loop cost more than the poll itself.
 */
#define CRDMA_SPINS_PER_CLOCK 256
/* The peer is lost after this many heartbeat intervals without a word. */
#define CRDMA_HEARTBEAT_MISSES 4
/* Without a heartbeat, how long close waits for its last sends to be acknowledged. */
#define CRDMA_CLOSE_FLUSH_MS 1000
/* The heartbeat thread wakes (and probes) this many times an interval. */
#define CRDMA_TICKS_PER_INTERVAL 4
/* A waiter without a heartbeat still wakes this often to look at events. */
#define CRDMA_IDLE_SLICE_MS 100
/* Room under RLIMIT_MEMLOCK beyond the registered RAM: the control ring,
 * the probe area and what libibverbs pins for itself. */
#define CRDMA_MEMLOCK_SLACK (4u << 20)

/* Control message types (header: be16 type, be16 credits returned, be32 length). */
enum crdma_ctrl_type {
    CRDMA_CTRL_DATA = 1,      /* stream bytes */
    CRDMA_CTRL_CREDIT = 2,    /* credits only */
    CRDMA_CTRL_HEARTBEAT = 3, /* liveness (and credits) */
};

/*
 * wr_id: low 8 bits the kind, the next 16 an index or a count, the top 40
 * the bytes a signaled WRITE completes.
 */
enum crdma_wr_kind {
    CRDMA_WR_RECV = 1,  /* index: receive slot */
    CRDMA_WR_SEND = 2,  /* index: send slot; always signaled */
    CRDMA_WR_WRITE = 3, /* count: WRs this signaled WRITE completes */
    CRDMA_WR_PROBE_RECV = 4, /* index: probe receive slot */
    CRDMA_WR_PROBE_SEND = 5,
};
#define CRDMA_WR_ID(kind, n) ((uint64_t)(n) << 8 | (kind))
#define CRDMA_WR_ID_BYTES(kind, n, bytes) ((uint64_t)(bytes) << 24 | CRDMA_WR_ID(kind, n))
#define CRDMA_WR_KIND(id) ((unsigned)((id)&0xff))
#define CRDMA_WR_N(id) (((id) >> 8) & 0xffff)
#define CRDMA_WR_BYTES(id) ((id) >> 24)

struct crdma_limits {
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
struct crdma_chunk {
    uint64_t addr;
    uint64_t len;
    uint32_t key; /* lkey for local chunks, rkey for remote ones */
};

#define CRDMA_MAX_CHUNKS 1024

/* Resources (rdma_conn.c), in creation order. */
struct crdma_res {
    struct rdma_event_channel *ec;
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *cc;
    struct ibv_cq *cq;
    bool qp_created;
    struct ibv_mr *ring_mr;
    uint8_t *ring;               /* control slots, then the probe area */
    struct crdma_limits lim;
    uint32_t sq_free;            /* free send-queue entries (SENDs and WRITEs) */
};

/* Whether and why the peer is lost (rdma_conn.c). */
struct crdma_loss {
    bool lost;
    bool tearing_down;
    int err;
    char reason[200];
};

/* Completions and events (rdma_progress.c). */
struct crdma_wait_state {
    unsigned cq_events_unacked;
    bool cq_armed;
    bool busy_poll;
    uint64_t events_checked_ns;
    int wake_fd;                 /* eventfd: shutdown wakes a sleeping waiter */
};

/* Liveness (rdma_heartbeat.c). */
struct crdma_live {
    uint32_t heartbeat_ms;       /* interval; the deadline is CRDMA_HEARTBEAT_MISSES of them */
    uint64_t last_rx_ns, last_tx_ns;
    bool closing;                /* close flushes the last sends: no RC heartbeat */
    bool hb_running;
    bool hb_stop;
    bool hb_in_tick;             /* a tick runs (on this lock): no nested one */
    uint64_t hb_next_tick_ns;
    uint64_t hb_ticks_by_waiter; /* ticks done by a posting or waiting thread */
    pthread_t hb_thread;
    pthread_cond_t hb_cond;
};

/* Control channel (rdma_ctrl.c). */
struct crdma_ctrl {
    /* receive side */
    uint32_t ready[CRDMA_RECV_DEPTH]; /* FIFO of slots holding unread data */
    uint32_t ready_head, ready_count;
    uint32_t head_off;               /* bytes of the head slot already read */
    uint32_t head_len;               /* payload bytes of the head slot */
    uint32_t credits_to_return;      /* reposted receives not yet announced */
    /* send side */
    uint32_t peer_credits;           /* receives the peer has posted for us */
    bool send_slot_busy[CRDMA_SEND_SLOTS];
    uint32_t next_send_slot;
};

/* Page push, primary (rdma_write.c). */
struct crdma_push {
    uint32_t writes_outstanding;     /* WRITEs posted, not yet complete */
    uint64_t bytes_outstanding;      /* their bytes (CRDMA_WRITE_WINDOW) */
    uint64_t doorbells;
    uint64_t write_wrs;
    uint64_t completions;            /* signaled WRITEs completed: progress */
};

/* Liveness probe (rdma_probe.c): UD QP, the peer's address, and what crossed. */
struct crdma_probe {
    struct ibv_qp *qp;
    struct ibv_ah *ah;
    uint32_t cookie;            /* ours: the peer's probes must carry it */
    uint32_t peer_qpn;
    uint32_t peer_cookie;
    bool send_busy;
    bool broken;                /* its QP is in error: re-armed at the next send */
    uint32_t gen;               /* re-arms so far (in the work request numbers) */
    uint64_t sent, received, refused, rearms;
};

/* Memory registration (rdma_mr.c). */
struct crdma_mrs {
    struct ibv_mr *mrs[CRDMA_MAX_CHUNKS];  /* RAM or cache */
    uint32_t nmrs;
    struct crdma_chunk local[CRDMA_MAX_CHUNKS];  /* primary: RAM block chunks, lkey */
    uint32_t nlocal;
    struct crdma_chunk remote[CRDMA_MAX_CHUNKS]; /* primary: cache chunks, rkey */
    uint32_t nremote;
    uint64_t remote_block[COLO_RAM_BLOCKS_MAX]; /* cache address of each block */
};

struct crdma_conn {
    pthread_mutex_t lock;
    int refs;
    struct crdma_res res;
    struct crdma_loss loss;
    struct crdma_wait_state wait;
    struct crdma_live live;
    struct crdma_ctrl ctrl;
    struct crdma_push push;
    struct crdma_probe probe;
    struct crdma_mrs mr;
};

/* ---- resources (rdma_conn.c) ---- */

/* Allocates an empty connection (no resources yet). */
int crdma_conn_new(struct crdma_conn **out);
/* Tears down whatever exists, in the documented order; NULL is fine. */
void crdma_conn_destroy(struct crdma_conn *c);
/* Hands the connection its event channel and cm_id (either may be NULL);
 * from then on crdma_conn_destroy destroys them. */
void crdma_conn_attach(struct crdma_conn *c, struct rdma_event_channel *ec,
                       struct rdma_cm_id *id);

/* Builds PD, completion channel, CQ, QP and the control ring on the cm_id,
 * and posts every receive. Reads the device limits first. */
int crdma_conn_build(struct crdma_conn *c);

/* Marks the peer lost with a reason (first one wins); waiters see it. */
void crdma_conn_lost(struct crdma_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* After a loss: re-records its reason for colo_errormsg() and returns its code. */
int crdma_conn_lost_error(const struct crdma_conn *c);
/* From now on flushed work is the normal end of the queues, not a loss. */
void crdma_conn_begin_teardown(struct crdma_conn *c);

static inline bool crdma_conn_is_lost(const struct crdma_conn *c)
{
    return c->loss.lost;
}

/* The loss's code, without recording its message (0 while not lost). */
static inline int crdma_conn_lost_code(const struct crdma_conn *c)
{
    return c->loss.lost ? c->loss.err : 0;
}

static inline bool crdma_conn_tearing_down(const struct crdma_conn *c)
{
    return c->loss.tearing_down;
}

static inline struct rdma_cm_id *crdma_conn_id(const struct crdma_conn *c)
{
    return c->res.id;
}

static inline struct rdma_event_channel *crdma_conn_ec(const struct crdma_conn *c)
{
    return c->res.ec;
}

static inline struct ibv_qp *crdma_conn_qp(const struct crdma_conn *c)
{
    return c->res.id->qp;
}

static inline struct ibv_pd *crdma_conn_pd(const struct crdma_conn *c)
{
    return c->res.pd;
}

static inline struct ibv_cq *crdma_conn_cq(const struct crdma_conn *c)
{
    return c->res.cq;
}

static inline struct ibv_comp_channel *crdma_conn_cc(const struct crdma_conn *c)
{
    return c->res.cc;
}

static inline const struct crdma_limits *crdma_conn_limits(const struct crdma_conn *c)
{
    return &c->res.lim;
}

/* The control ring at byte offset off (CRDMA_RING_BYTES in all), and its lkey. */
static inline uint8_t *crdma_conn_ring(const struct crdma_conn *c, size_t off)
{
    return c->res.ring + off;
}

static inline uint32_t crdma_conn_ring_lkey(const struct crdma_conn *c)
{
    return c->res.ring_mr->lkey;
}

/* Send-queue entries, shared by the control channel and the page push:
 * taken when posted, given back by their completions. */
static inline uint32_t crdma_sq_room(const struct crdma_conn *c)
{
    return c->res.sq_free;
}

static inline void crdma_sq_take(struct crdma_conn *c, uint32_t n)
{
    c->res.sq_free -= n;
}

static inline void crdma_sq_give(struct crdma_conn *c, uint32_t n)
{
    c->res.sq_free += n;
}

/* ---- completions, events and the wait (rdma_progress.c) ---- */

/* The wait's own state: the wake-up eventfd (init) and, before the CQ is
 * destroyed, acking every event taken from its channel (ack_all). */
int crdma_wait_init(struct crdma_conn *c);
void crdma_wait_ack_all(struct crdma_conn *c);
void crdma_wait_fini(struct crdma_conn *c);
/* Busy-poll instead of sleeping on the completion channel. */
void crdma_wait_set_busy_poll(struct crdma_conn *c, bool on);
/* Wakes a waiter sleeping in crdma_wait (from any thread, lock not needed). */
void crdma_conn_wake(struct crdma_conn *c);
/* Reaps completions without blocking, each to its owner. Lock held. */
int crdma_progress(struct crdma_conn *c);
/* Takes connection-manager and device events (DISCONNECTED, DEVICE_REMOVAL,
 * QP fatal, port error...) without blocking. Lock held. */
void crdma_check_events(struct crdma_conn *c);
/* Waits (lock held on entry and exit) until done(c, arg) is true, the peer
 * is lost or the deadline passes. Deadlines are monotonic ns; 0 means none
 * (common/timeutil.h). */
int crdma_wait(struct crdma_conn *c, bool (*done)(struct crdma_conn *, void *), void *arg,
               uint64_t deadline_ns, const char *what);
/* Maps a failed work completion to its outcome: 0 (ignored during teardown)
 * or the peer-lost error recorded on c. */
int crdma_completion_error(struct crdma_conn *c, const struct ibv_wc *wc);

/* ---- liveness: the heartbeat (rdma_heartbeat.c) ---- */

void crdma_heartbeat_init(struct crdma_conn *c);
void crdma_heartbeat_fini(struct crdma_conn *c);
/* Heartbeat thread: start after the connection is established. */
int crdma_heartbeat_start(struct crdma_conn *c, uint32_t interval_ms);
void crdma_heartbeat_stop(struct crdma_conn *c);
/* Evidence of life from the peer (any receive, a valid probe), and a send
 * of ours on the RC QP (which makes a heartbeat unnecessary). Lock held. */
void crdma_heartbeat_heard(struct crdma_conn *c);
void crdma_heartbeat_spoke(struct crdma_conn *c);
/* The interval, 0 before the heartbeat started. */
uint32_t crdma_heartbeat_interval_ms(const struct crdma_conn *c);
/* Close flushes its last sends: no more RC heartbeats (the probe goes on). */
void crdma_heartbeat_closing(struct crdma_conn *c);
/*
 * The heartbeat thread's work (reap, events, the peer's deadline, a probe, an
 * RC heartbeat when nothing was sent for an interval) if a tick is due. Lock
 * held. Whoever holds the lock for long calls it: a thread that posts WRITE
 * after WRITE whose completions are already there never sleeps with the lock
 * released, and the heartbeat thread, blocked on the lock, would send nothing
 * until the peer's deadline passed (seen on rxe, which runs a user QP's
 * requester inside ibv_post_send: a 64 MiB push held the lock for seconds).
 */
void crdma_heartbeat_due(struct crdma_conn *c);

/* ---- liveness probe (rdma_probe.c) ---- */

/* Lock held. build: after the control ring; a device without UD QPs (iWARP)
 * leaves the probe off, not the connection. connect: once established, with
 * what the peer's private data announced (QPN 0: the peer has no probe).
 * on_completion: probe work completions, failed ones included. */
void crdma_probe_build(struct crdma_conn *c);
void crdma_probe_connect(struct crdma_conn *c, uint32_t peer_qpn, uint32_t peer_cookie);
void crdma_probe_send(struct crdma_conn *c);
void crdma_probe_on_completion(struct crdma_conn *c, const struct ibv_wc *wc);
void crdma_probe_destroy(struct crdma_conn *c);
/* What our private data announces: our probe's QPN (0: none) and cookie. */
void crdma_probe_announce(const struct crdma_conn *c, uint32_t *qpn, uint32_t *cookie);

struct crdma_probe_stats {
    const char *state; /* "on", "off" or "unavailable" */
    uint64_t sent, received, refused, rearms;
};
struct crdma_probe_stats crdma_probe_stats(const struct crdma_conn *c);

/* ---- control channel (rdma_ctrl.c) ---- */

/* Lock held. build: the peer's initial credits and every receive posted. */
int crdma_ctrl_build(struct crdma_conn *c);
/* Waits for credits until the deadline (0: none). */
int crdma_ctrl_send(struct crdma_conn *c, uint16_t type, const void *buf, size_t len,
                    uint64_t deadline_ns);
/* A heartbeat or credit update: never waits, -EAGAIN without a credit. */
int crdma_ctrl_try_send(struct crdma_conn *c, uint16_t type);
/* Successful completions of receives and sends (from crdma_progress). */
void crdma_ctrl_on_recv(struct crdma_conn *c, const struct ibv_wc *wc);
void crdma_ctrl_on_send(struct crdma_conn *c, const struct ibv_wc *wc);
/* Copies up to len unread bytes; waits for at least one. */
ssize_t crdma_ctrl_read(struct crdma_conn *c, void *buf, size_t len, uint64_t deadline_ns);
/* Sends a credit update when due (reader). */
void crdma_ctrl_maybe_return_credits(struct crdma_conn *c);
/* Waits until every send posted has completed (the peer acknowledged it). */
int crdma_ctrl_drain(struct crdma_conn *c, uint64_t deadline_ns, const char *what);

#endif
