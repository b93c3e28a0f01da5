/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The small guest RAM layout and the RAM cache the stream harnesses share:
 * three blocks (16, 2 and 1 pages of 4 KiB; 16 pages make runs large enough
 * for the stream's direct-read path) and a cache on a temporary file in
 * /dev/shm (or $TMPDIR, /tmp), unlinked as soon as it is mapped.
 */
#ifndef COLO_TESTS_FUZZ_RAM_H
#define COLO_TESTS_FUZZ_RAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/ram_layout.h"
#include "cache/ram_cache.h"

#define FUZZ_PAGE 4096u
#define FUZZ_NBLOCKS 3

extern const uint64_t fuzz_block_pages[FUZZ_NBLOCKS];

struct fuzz_ram {
    struct colo_ram_layout layout;
    struct colo_ram_cache *cache;
    uint8_t *guest[FUZZ_NBLOCKS];
};

/* Builds the layout over fresh guest memory and opens the cache; aborts on failure. */
void fuzz_ram_init(struct fuzz_ram *r);
/* Fills every guest block with guest_byte and every cache block with cache_byte. */
void fuzz_ram_fill(struct fuzz_ram *r, uint8_t guest_byte, uint8_t cache_byte);
uint64_t fuzz_block_len(uint32_t block);

#endif
