/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * colo-glue: the pure-C half of QEMU's -colo-transport tcp|rdma.
 *
 * Nothing here knows QEMU: it builds a colo-rdma configuration from the
 * migration parameters' strings, collects dirty-page runs, seeds the
 * secondary's RAM cache and finds the tcp session's socket for a
 * non-blocking teardown.  The patch series carries this file verbatim as
 * migration/colo-glue.h (build-qemu checks that the copies match).
 */
#ifndef COLO_GLUE_H
#define COLO_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include <colo-rdma/colo-rdma.h>

/* Splits "host:port" or "[v6addr]:port"; *host is malloc'ed (may be NULL). */
int colo_glue_parse_uri(const char *uri, char **host, uint16_t *port);

/*
 * A configuration for transport "tcp" or "rdma" to/at uri, with an optional
 * shared key (NULL or "" for none) and a timeout for every wait on the peer.
 * On failure returns a negative code and a message in colo_errormsg().
 */
int colo_glue_config_new(struct colo_config **cfg, const char *transport, const char *uri,
                         const char *key, uint32_t timeout_ms);

/* A growing list of dirty runs; adjacent runs of one block are merged. */
struct colo_glue_runs {
    struct colo_dirty_run *v;
    size_t n, cap;
    uint64_t pages;
};
int colo_glue_runs_add(struct colo_glue_runs *r, uint32_t block, uint64_t first, uint64_t count);
void colo_glue_runs_reset(struct colo_glue_runs *r);
void colo_glue_runs_free(struct colo_glue_runs *r);

/*
 * Secondary: copies a block's current contents into the session's RAM cache
 * before the first checkpoint, so that the cache holds the whole state of
 * the last checkpoint, not only the pages sent since the session began.
 * Returns the cache mapping of the block in *cache.
 */
int colo_glue_seed_cache(struct colo_session *s, uint32_t block, const void *src,
                         uint64_t len, void **cache);

#endif /* COLO_GLUE_H */
