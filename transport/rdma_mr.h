/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory registration of the rdma backend. The primary registers each guest
 * RAM block once, as a local source only; the secondary registers its RAM
 * cache for remote write and nothing else, and tells the primary where each
 * block's cache lies (address, rkey), which the primary checks before use.
 * Regions larger than the device's max_mr_size are split into chunks.
 */
#ifndef COLO_TRANSPORT_RDMA_MR_H
#define COLO_TRANSPORT_RDMA_MR_H

#include "core/ram_layout.h"
#include "transport/rdma_conn.h"
#include "stream/stream.h"

/* Registers [addr, addr + len) in chunks; appends them to out. Lock not needed. */
int crdma_register_region(struct crdma_conn *c, void *addr, uint64_t len, int access,
                          bool fsdax, struct crdma_chunk *out, uint32_t *nout);
/* Raises RLIMIT_MEMLOCK to cover bytes more, or says how to. */
int crdma_ensure_memlock(uint64_t bytes);

/* Secondary: registers the cache and sends its layout on f. */
int crdma_mr_expose_cache(struct crdma_conn *c, struct colo_stream *f);
/* Primary: registers the RAM blocks and receives and checks the cache layout. */
int crdma_mr_register_ram(struct crdma_conn *c, struct colo_stream *f);
/* Primary: the chunk holding [addr, addr+1), or NULL. */
const struct crdma_chunk *crdma_find_chunk(const struct crdma_chunk *chunks, uint32_t n,
                                           uint64_t addr);
/* Primary, for the page push: the registered local chunk and the announced
 * remote chunk holding addr (or NULL), and where a block's cache starts. */
const struct crdma_chunk *crdma_mr_local_chunk(const struct crdma_conn *c, uint64_t addr);
const struct crdma_chunk *crdma_mr_remote_chunk(const struct crdma_conn *c, uint64_t addr);
uint64_t crdma_mr_remote_block(const struct crdma_conn *c, uint32_t block);
/* Deregisters every RAM or cache MR (teardown, after the QP and CQ). */
void crdma_mr_release(struct crdma_conn *c);

#endif
