/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primary's side of the checkpoint protocol over the stream interface:
 * request -> reply -> pages (RAM hooks) -> vmstate-send, dirty-list,
 * vmstate-size + device state -> vmstate-received -> vmstate-loaded.
 * begin covers request -> reply, commit the rest, so that a VMM can send
 * the request while its guest still runs.
 */
#ifndef COLO_PROTO_PRIMARY_H
#define COLO_PROTO_PRIMARY_H

#include "colo-rdma/colo-rdma.h"
#include "core/dirty_list.h"
#include "proto/fsm.h"
#include "stream/stream.h"

struct colo_primary {
    struct colo_fsm fsm;
    struct colo_stream *out; /* to the secondary */
    struct colo_stream *in;  /* return path */
    const struct colo_ram_layout *layout;
    struct colo_dirty_list list;       /* this checkpoint's runs (sent as its dirty list) */
    struct colo_dirty_list background; /* pushed since the last checkpoint, canonical */
    struct colo_dirty_list pushing;    /* background push: the caller's runs, canonical */
    struct colo_dirty_list scratch;    /* where two lists merge */
    uint8_t *wire;
    size_t wire_cap;
    uint64_t epoch;
    const uint8_t *digest_key; /* COLO_DIGEST_SIZE bytes: with fsm.integrity */
    bool early_resume;   /* return at vmstate-received */
    bool pipelined;      /* one call: push ahead of checkpoint-reply */
    bool loaded_pending; /* the last checkpoint's vmstate-loaded is still to come */
    struct colo_checkpoint_stats cur; /* the begun checkpoint (seq 0: none) */
};

void colo_primary_init(struct colo_primary *p, struct colo_stream *out, struct colo_stream *in,
                       const struct colo_ram_layout *layout);
void colo_primary_fini(struct colo_primary *p);
/* Waits for checkpoint-ready. */
int colo_primary_wait_ready(struct colo_primary *p);
/* checkpoint-request -> checkpoint-reply, while the primary's guest may run. */
int colo_primary_begin(struct colo_primary *p, struct colo_checkpoint_stats *st);
/* After begin: pages, dirty list, device state -> received (-> loaded). */
int colo_primary_commit(struct colo_primary *p, const struct colo_dirty_run *runs, size_t nruns,
                        const void *vmstate, uint64_t vmstate_len,
                        struct colo_checkpoint_stats *st);
/* begin + commit, or pipelined (the reply read after the push); a bad list
 * or state is refused before the request. */
int colo_primary_run(struct colo_primary *p, const struct colo_dirty_run *runs, size_t nruns,
                     const void *vmstate, uint64_t vmstate_len, struct colo_checkpoint_stats *st);
/*
 * Between checkpoints: pushes runs ahead of the next checkpoint, whose dirty
 * list then also names them. Where pages travel in the stream (tcp, v1) they
 * are kept and pushed with that checkpoint. Collects a pending vmstate-loaded
 * first: nothing lands in the cache while the secondary applies from it.
 */
int colo_primary_background(struct colo_primary *p, const struct colo_dirty_run *runs,
                            size_t nruns);
/* Early resume: waits for the outstanding vmstate-loaded, if any. */
int colo_primary_collect_loaded(struct colo_primary *p);
/* Sends goodbye if the session is idle. */
int colo_primary_goodbye(struct colo_primary *p);

#endif
