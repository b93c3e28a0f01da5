/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checkpoint digest of protocol version 2 with integrity on: what the
 * primary pushed for one checkpoint, keyed with the session's digest key
 * (proto/auth.h colo_auth_digest_key), so that the secondary can tell that
 * its cache holds exactly that before it persists or applies anything:
 *
 *   HMAC-SHA256(digest key, "colo-rdma-checkpoint-v2" 0x00 | be64 seq |
 *               be64 run count | the runs, 24 bytes each as on the wire |
 *               for each run in order, its pages' bytes |
 *               be64 device-state length | device state)
 *
 * The primary hashes its guest RAM, the secondary its cache, each through
 * the block addresses a callback gives.
 */
#ifndef COLO_PROTO_DIGEST_H
#define COLO_PROTO_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/dirty_list.h"
#include "core/ram_layout.h"
#include "proto/message.h"

/* Where block `block` of the layout starts in the memory being hashed. */
typedef const uint8_t *(*colo_digest_block_fn)(const void *opaque, uint32_t block);

struct colo_digest_input {
    const uint8_t *key; /* COLO_DIGEST_SIZE bytes */
    uint64_t seq;
    const struct colo_dirty_run *runs; /* a validated list of the layout */
    size_t nruns;
    const struct colo_ram_layout *layout;
    colo_digest_block_fn block;
    const void *opaque;
    const void *vmstate;
    uint64_t vmstate_len;
};

void colo_digest_checkpoint(const struct colo_digest_input *in, uint8_t out[COLO_DIGEST_SIZE]);
/* Compares two digests in constant time: nonzero when equal. */
int colo_digest_equal(const uint8_t a[COLO_DIGEST_SIZE], const uint8_t b[COLO_DIGEST_SIZE]);

#endif
