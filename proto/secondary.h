/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary's loop over the stream interface: checkpoint-ready once,
 * then per checkpoint: request -> stop, reply -> pages (RAM hooks) ->
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
    uint8_t *wire;
    size_t wire_cap;
    uint8_t *vmstate; /* staging for device state */
    size_t vmstate_cap;
    uint64_t vmstate_len;
};

void colo_secondary_init(struct colo_secondary *s, struct colo_stream *in,
                         struct colo_stream *out, const struct colo_ram_layout *layout,
                         struct colo_ram_cache *cache, uint64_t max_vmstate, uint32_t max_runs,
                         const struct colo_secondary_ops *ops, void *opaque);
void colo_secondary_fini(struct colo_secondary *s);
int colo_secondary_send_ready(struct colo_secondary *s, uint64_t epoch);
/* One checkpoint: 0, COLO_E_SHUTDOWN on goodbye, or an error. */
int colo_secondary_serve_one(struct colo_secondary *s, struct colo_checkpoint_stats *st);

#endif
