/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary's RAM cache: one mapping of a file or a device-DAX device,
 * one region per RAM block (each aligned to the source's alignment), into
 * which checkpoint pages land (copied by the tcp backend, written by the NIC
 * for rdma). A checkpoint's ranges are persisted exactly before
 * vmstate-received, and copied to the guest RAM only once it is complete.
 */
#ifndef COLO_CACHE_RAM_CACHE_H
#define COLO_CACHE_RAM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo-rdma/colo-rdma.h"
#include "core/ram_layout.h"

struct colo_ram_cache;

/* colo_ram_cache_open flags: take over an existing plain file with data in it. */
#define COLO_CACHE_OVERWRITE 1u

/*
 * Opens (creating or extending a plain file) the cache for layout. Refuses a
 * path that is too small, not writable or on a file system without room,
 * before anything is mapped, and leaves no file it created behind. An
 * existing plain file that holds data is refused unless this process made
 * it its cache before or flags has COLO_CACHE_OVERWRITE (a device-DAX
 * device is dedicated to its use by its namespace and always taken).
 */
int colo_ram_cache_open(const char *path, const struct colo_ram_layout *layout, unsigned flags,
                        struct colo_ram_cache **out);
void colo_ram_cache_close(struct colo_ram_cache **c);

uint8_t *colo_ram_cache_block(const struct colo_ram_cache *c, uint32_t block);
/* "file", "devdax" or "fsdax-file" (a file on a DAX mount: cannot be registered for RDMA). */
const char *colo_ram_cache_kind(const struct colo_ram_cache *c);
bool colo_ram_cache_is_fsdax(const struct colo_ram_cache *c);
/* Bytes the whole mapping spans. */
size_t colo_ram_cache_size(const struct colo_ram_cache *c);

/* Persists exactly the listed ranges (pmem2 persist: cache flush or msync). */
int colo_ram_cache_persist(struct colo_ram_cache *c, const struct colo_dirty_run *runs, size_t n);
/* Copies exactly the listed ranges from the cache into the layout's guest RAM. */
void colo_ram_cache_apply(const struct colo_ram_cache *c, const struct colo_dirty_run *runs,
                          size_t n);

#endif
