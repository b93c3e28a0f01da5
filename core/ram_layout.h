/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest RAM layout both sides agree on: an ordered list of named blocks
 * of whole pages. Its fingerprint travels in the handshake, so a primary and
 * a secondary with different layouts never exchange a page.
 */
#ifndef COLO_CORE_RAM_LAYOUT_H
#define COLO_CORE_RAM_LAYOUT_H

#include <stdint.h>

#define COLO_RAM_BLOCK_NAME_MAX 64 /* including the terminating NUL */
#define COLO_RAM_BLOCKS_MAX 256

struct colo_ram_block {
    char name[COLO_RAM_BLOCK_NAME_MAX];
    void *host;     /* this side's guest RAM for the block */
    uint64_t length;
    uint64_t npages;
};

struct colo_ram_layout {
    uint32_t page_size;
    uint32_t nblocks;
    uint64_t total_pages;
    struct colo_ram_block blocks[COLO_RAM_BLOCKS_MAX];
};

/* page_size: a power of two from 4 KiB to 1 GiB. */
int colo_ram_layout_init(struct colo_ram_layout *layout, uint32_t page_size);
/* Appends a block; rejects empty, unaligned, duplicate or too many blocks. */
int colo_ram_layout_add(struct colo_ram_layout *layout, const char *name, void *host,
                        uint64_t length);
/* FNV-1a over the page size and every block's name and length. */
uint64_t colo_ram_layout_fingerprint(const struct colo_ram_layout *layout);

#endif
