/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primary's page push: each run of dirty pages becomes RDMA WRITEs from
 * guest RAM straight into the secondary's cache (no copy on either side),
 * split where a WRITE would cross a local or remote registration or exceed
 * the port's largest message or RDMA_WRITE_CHUNK. WRITEs are chained
 * unsignaled behind one signaled WRITE and posted with one doorbell per
 * batch, with at most RDMA_WRITE_WINDOW bytes in flight.
 */
#ifndef COLO_TRANSPORT_RDMA_WRITE_H
#define COLO_TRANSPORT_RDMA_WRITE_H

#include "colo-rdma/colo-rdma.h"
#include "core/ram_layout.h"
#include "transport/rdma_conn.h"

#define RDMA_WRITE_BATCH 64

struct rdma_write_batch {
    struct ibv_send_wr wr[RDMA_WRITE_BATCH];
    struct ibv_sge sge[RDMA_WRITE_BATCH];
    uint32_t n;
};

/* Adds the WRITEs of one run; posts full batches. Lock held. */
int rdma_write_run(struct rdma_conn *c, struct rdma_write_batch *b,
                   const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                   uint64_t deadline_ns);
/* Posts what is batched. Lock held. */
int rdma_write_post(struct rdma_conn *c, struct rdma_write_batch *b, uint64_t deadline_ns);
/* Waits until every WRITE posted has completed, i.e. is placed at the peer. */
int rdma_write_drain(struct rdma_conn *c, uint64_t deadline_ns);

#endif
