/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A buffered byte stream in the spirit of QEMU's QEMUFile, plus RAM hooks in
 * the spirit of QEMUFileHooks. Backends (tcp, rdma) plug in through
 * struct colo_stream_ops; proto/ drives only this interface.
 *
 * Errors latch: the first error wins, and every later call is a no-op that
 * returns it (get_* return 0). colo_stream_error() reads the latch.
 */
#ifndef COLO_STREAM_STREAM_H
#define COLO_STREAM_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/dirty_list.h"
#include "core/ram_layout.h"

struct colo_stream;
struct colo_ram_cache;

/* Every timeout_ms here: 0 means no timeout, in every backend
 * (common/timeutil.h). */
struct colo_stream_ops {
    const char *name;
    /* Writes every byte of iov or fails: 0 or a negative code. */
    int (*writev)(void *opaque, const struct iovec *iov, int iovcnt, uint32_t timeout_ms);
    /* Reads 1..len bytes: their number, 0 at end of stream, or a negative code. */
    ssize_t (*read)(void *opaque, void *buf, size_t len, uint32_t timeout_ms);
    /* Wakes any waiter on the connection and makes later I/O fail. */
    int (*shutdown)(void *opaque);
    /* The reverse direction of the same connection (QEMU's return path). */
    int (*open_return_path)(void *opaque, void **rp_opaque);
    /* Drops this stream's reference to the connection. */
    void (*close)(void *opaque);
    /* Without blocking: 0 while the peer is there as far as the backend
     * knows, else the error that ended it. NULL: nothing to look at. */
    int (*check)(void *opaque);
    /* The backend notices a lost peer by itself (rdma: its heartbeat) and
     * then fails a waiting read: the wait for the next message between
     * checkpoints needs no timeout (colo_stream_wait_idle). */
    bool watches_peer;

    /*
     * RAM hooks; NULL where a backend has nothing to do. The primary calls
     * before_ram_iterate, save_page for every run, after_ram_iterate, then
     * flush_ram, which returns when every page pushed is placed at the
     * secondary or, on an ordered byte stream, is ordered before anything
     * written after it (the secondary places pages before it reads on).
     * It flushes nothing of the byte stream: what it holds (an end marker,
     * a request held back) leaves with the next colo_stream_fflush().
     * The secondary calls load_ram at the same point of the protocol: it
     * places pages that travel in the stream and appends every run it
     * placed to `placed`.
     */
    int (*register_ram)(void *opaque, struct colo_stream *f);
    int (*before_ram_iterate)(void *opaque, struct colo_stream *f, uint64_t seq);
    int (*save_page)(void *opaque, struct colo_stream *f, const struct colo_dirty_run *run);
    int (*after_ram_iterate)(void *opaque, struct colo_stream *f, uint64_t seq);
    int (*flush_ram)(void *opaque, struct colo_stream *f);
    int (*load_ram)(void *opaque, struct colo_stream *f, uint64_t seq,
                    struct colo_dirty_list *placed);
};

#define COLO_STREAM_BUF_SIZE 32768
/* A read must bring this much (or all it wants) per timeout: a trickle that
 * keeps every wait just alive still fails (colo_stream_get_buffer). */
#define COLO_STREAM_PROGRESS (64u << 10)

/* Takes over opaque: ops->close runs when the stream is deleted. */
int colo_stream_new(const struct colo_stream_ops *ops, void *opaque, uint32_t timeout_ms,
                    struct colo_stream **out);
/* Flushes nothing: call colo_stream_fflush() first where it matters. */
void colo_stream_delete(struct colo_stream **f);
/* The return path inherits the timeout and the deadline. */
int colo_stream_open_return_path(struct colo_stream *f, struct colo_stream **rp);
/*
 * An absolute deadline (CLOCK_MONOTONIC ns, 0: none) over every later wait:
 * each is cut to what is left, and once it passed every call fails with
 * -ETIMEDOUT naming deadline_ms. The pre-authentication phase runs under one,
 * so a peer that drips bytes cannot stretch it.
 */
void colo_stream_set_deadline(struct colo_stream *f, uint64_t deadline_ns, uint32_t deadline_ms);

void colo_stream_put_be32(struct colo_stream *f, uint32_t v);
void colo_stream_put_be64(struct colo_stream *f, uint64_t v);
/* Large buffers go to the backend without a copy. */
void colo_stream_put_buffer(struct colo_stream *f, const void *buf, size_t len);
int colo_stream_fflush(struct colo_stream *f);
uint32_t colo_stream_get_be32(struct colo_stream *f);
uint64_t colo_stream_get_be64(struct colo_stream *f);
/* Reads exactly len bytes: 0 or the latched error. */
int colo_stream_get_buffer(struct colo_stream *f, void *buf, size_t len);
/*
 * Between checkpoints: waits until the peer sends something. Where the
 * backend watches the peer (ops->watches_peer), for as long as it takes, so
 * a primary may checkpoint less often than the timeout; elsewhere (tcp) it
 * returns at once and the read that follows keeps the timeout.
 */
int colo_stream_wait_idle(struct colo_stream *f);
/*
 * Before f waits for the peer (a read its buffer cannot serve), out's
 * buffered bytes are flushed (out NULL: none). A reply may then stay in out
 * and leave with the next message when what follows it has arrived already,
 * but never while the peer waits for it. A failed flush fails f too.
 */
void colo_stream_flush_before_wait(struct colo_stream *f, struct colo_stream *out);

/* The latched error (0 if none); re-records its message for colo_errormsg(). */
int colo_stream_error(struct colo_stream *f);
/* The latched error, or what the backend's check finds (then latched). */
int colo_stream_check(struct colo_stream *f);
/* Latches err with a message, unless an error is latched already. Returns the latched one. */
int colo_stream_set_error(struct colo_stream *f, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * What this side does next on the stream, as a clause for the messages of
 * I/O failures: "the secondary waited for checkpoint-request" gives "tcp: the
 * peer closed the connection while the secondary waited for
 * checkpoint-request". It stays until set again. A read or write that times
 * out, or finds the connection closed or reset, latches COLO_E_PEER_LOST.
 */
void colo_stream_set_context(struct colo_stream *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Shuts the connection down from any thread, touching only the backend (no
 * latch): the stream's own thread then fails in its wait. */
void colo_stream_wake_shutdown(struct colo_stream *f);
/* Latches -EPIPE and shuts the connection down (both directions). */
int colo_stream_shutdown(struct colo_stream *f);
const char *colo_stream_backend(const struct colo_stream *f);
uint64_t colo_stream_bytes_written(const struct colo_stream *f);

/* RAM side: the layout (both sides) and the cache (secondary) the hooks use;
 * a return path opened later inherits them. */
void colo_stream_set_ram(struct colo_stream *f, const struct colo_ram_layout *layout,
                         struct colo_ram_cache *cache);
/* Runs the backend's registration (rdma: MRs and the cache layout exchange). */
int colo_stream_register_ram(struct colo_stream *f);
const struct colo_ram_layout *colo_stream_ram_layout(const struct colo_stream *f);
struct colo_ram_cache *colo_stream_ram_cache(const struct colo_stream *f);
int colo_stream_before_ram_iterate(struct colo_stream *f, uint64_t seq);
int colo_stream_save_page(struct colo_stream *f, const struct colo_dirty_run *run);
int colo_stream_after_ram_iterate(struct colo_stream *f, uint64_t seq);
int colo_stream_flush_ram(struct colo_stream *f);
int colo_stream_load_ram(struct colo_stream *f, uint64_t seq, struct colo_dirty_list *placed);
/* True when pages travel in the stream (the backend has load_ram): then the
 * pages placed must be exactly the checkpoint's dirty list. */
bool colo_stream_places_pages(const struct colo_stream *f);

#endif
