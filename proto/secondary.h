/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary's loop over the stream interface: checkpoint-ready once,
 * then per checkpoint (version 2 over a stream: after any number of
 * background-pages, whose frames go into the cache only): request -> stop,
 * reply -> pages (RAM hooks) ->
 * vmstate-send, dirty-list (validated), vmstate-size + device state ->
 * persist exactly the listed ranges -> vmstate-received -> apply them to the
 * guest RAM, load the state, resume -> vmstate-loaded.
 */
#ifndef COLO_PROTO_SECONDARY_H
#define COLO_PROTO_SECONDARY_H

#include "colo-rdma/colo-rdma.h"
#include "core/dirty_list.h"
#include "proto/fsm.h"
#include "cache/ram_cache.h"
#include "stream/stream.h"

struct colo_secondary {
    struct colo_fsm fsm;
    struct colo_stream *in;  /* from the primary */
    struct colo_stream *out; /* return path */
    const struct colo_ram_layout *layout;
    struct colo_ram_cache *cache;
    const struct colo_secondary_ops *ops;
    void *opaque;
    struct colo_dirty_list list;   /* the checkpoint's dirty list */
    struct colo_dirty_list placed; /* runs the backend placed from the stream */
    /* Version 2, pages in the stream: what background-pages placed since
     * the last checkpoint (canonical), part of the coming one. */
    struct colo_dirty_list background;
    struct colo_dirty_list batch;   /* one background-pages as it is read */
    struct colo_dirty_list scratch; /* where two lists merge */
    uint8_t *wire;
    size_t wire_cap;
    uint8_t *vmstate; /* the device state of the last completed checkpoint */
    size_t vmstate_cap;
    uint64_t vmstate_len;
    uint8_t *staging; /* the device state of the checkpoint being received */
    size_t staging_cap;
    uint64_t staging_len;
    const uint8_t *digest_key; /* COLO_DIGEST_SIZE bytes: with fsm.integrity */
    /* The last checkpoint was applied but its vmstate-loaded could not be
     * sent: the error, returned by every later call (the message is latched
     * on the return path). */
    int ack_err;
};

/* Bytes of device state the secondary reads at a time, growing its buffer. */
#define COLO_VMSTATE_CHUNK (1u << 20)

void colo_secondary_init(struct colo_secondary *s, struct colo_stream *in,
                         struct colo_stream *out, const struct colo_ram_layout *layout,
                         struct colo_ram_cache *cache, uint64_t max_vmstate, uint32_t max_runs,
                         const struct colo_secondary_ops *ops, void *opaque);
void colo_secondary_fini(struct colo_secondary *s);
int colo_secondary_send_ready(struct colo_secondary *s, uint64_t epoch);
/*
 * One checkpoint: 0 once it is applied (guest RAM, device state loaded, VM
 * resumed), COLO_E_SHUTDOWN on goodbye, or an error. When only its
 * vmstate-loaded could not be sent it still returns 0 (the guest holds the
 * new checkpoint) and sets ack_err: the session is failed, and every later
 * call returns that error at once.
 */
int colo_secondary_serve_one(struct colo_secondary *s, struct colo_checkpoint_stats *st);
/* The device state of the last completed checkpoint (kept when a later one fails). */
void colo_secondary_vmstate(const struct colo_secondary *s, const void **state, uint64_t *len);

#endif
