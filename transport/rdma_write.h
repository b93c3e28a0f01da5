/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primary's page push: each run of dirty pages becomes RDMA WRITEs from
 * guest RAM straight into the secondary's cache (no copy on either side),
 * split where a WRITE would cross a local or remote registration or exceed
 * the port's largest message or CRDMA_WRITE_CHUNK. WRITEs are chained
 * unsignaled behind a signaled WRITE (one at least every
 * CRDMA_WRITE_SIGNAL_BYTES) and posted with one doorbell per batch, with at
 * most CRDMA_WRITE_WINDOW bytes in flight. The waits for WRITEs (send-queue
 * room, the drain) fail only when none completed for a whole timeout_ms
 * (0: no timeout): COLO_E_PEER_LOST.
 */
#ifndef COLO_TRANSPORT_RDMA_WRITE_H
#define COLO_TRANSPORT_RDMA_WRITE_H

#include "colo-rdma/colo-rdma.h"
#include "core/ram_layout.h"
#include "transport/rdma_conn.h"

#define CRDMA_WRITE_BATCH 64

struct crdma_write_batch {
    struct ibv_send_wr wr[CRDMA_WRITE_BATCH];
    struct ibv_sge sge[CRDMA_WRITE_BATCH];
    uint32_t n;
};

/* Adds the WRITEs of one run; posts full batches. Lock held. */
int crdma_write_run(struct crdma_conn *c, struct crdma_write_batch *b,
                    const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                    uint32_t timeout_ms);
/* Posts what is batched. Lock held. */
int crdma_write_post(struct crdma_conn *c, struct crdma_write_batch *b, uint32_t timeout_ms);
/* Waits until every WRITE posted has completed, i.e. is placed at the peer. */
int crdma_write_drain(struct crdma_conn *c, uint32_t timeout_ms);
/* A signaled WRITE's successful completion (from crdma_progress). */
void crdma_write_on_completion(struct crdma_conn *c, const struct ibv_wc *wc);

struct crdma_write_stats {
    uint64_t doorbells;
    uint64_t write_wrs;
};
struct crdma_write_stats crdma_write_stats(const struct crdma_conn *c);

#endif
