/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dirty-page list on the wire: a run is be32 block, be32 reserved (0),
 * be64 first page, be64 page count.
 */
#ifndef COLO_PROTO_DIRTY_WIRE_H
#define COLO_PROTO_DIRTY_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/dirty_list.h"

#define COLO_DIRTY_RUN_WIRE_SIZE 24
/* Runs the secondary reads from the stream at a time (24 KiB). */
#define COLO_DIRTY_WIRE_CHUNK 1024

void colo_dirty_list_encode(const struct colo_dirty_run *runs, size_t n, uint8_t *out);
/* Decodes n runs from exactly n * 24 bytes; rejects a nonzero reserved field. */
int colo_dirty_list_decode(const uint8_t *buf, size_t len, size_t n, struct colo_dirty_run *out);
/* The same for runs first..first+n-1 of a longer list (for the messages). */
int colo_dirty_list_decode_from(const uint8_t *buf, size_t len, size_t n, size_t first,
                                struct colo_dirty_run *out);

#endif
