/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <string.h>

#include "common/error.h"
#include "core/byteorder.h"
#include "core/ram_layout.h"

int colo_ram_layout_init(struct colo_ram_layout *layout, uint32_t page_size)
{
    memset(layout, 0, sizeof(*layout));
    if (page_size < 4096 || page_size > (1u << 30) || (page_size & (page_size - 1)))
        return colo_err(COLO_E_CONFIG,
                        "page size %" PRIu32 ": expected a power of two from 4096 to 1 GiB",
                        page_size);
    layout->page_size = page_size;
    return 0;
}

int colo_ram_layout_add(struct colo_ram_layout *layout, const char *name, void *host,
                        uint64_t length)
{
    struct colo_ram_block *b;

    if (!name || !name[0] || strlen(name) >= COLO_RAM_BLOCK_NAME_MAX)
        return colo_err(COLO_E_CONFIG, "RAM block name: expected 1..%d characters",
                        COLO_RAM_BLOCK_NAME_MAX - 1);
    if (layout->nblocks == COLO_RAM_BLOCKS_MAX)
        return colo_err(COLO_E_CONFIG, "RAM block %s: at most %d blocks are supported", name,
                        COLO_RAM_BLOCKS_MAX);
    if (length == 0 || length % layout->page_size)
        return colo_err(COLO_E_CONFIG,
                        "RAM block %s: length %" PRIu64
                        " must be a nonzero multiple of the page size %" PRIu32,
                        name, length, layout->page_size);
    if (!host)
        return colo_err(COLO_E_CONFIG, "RAM block %s: no host memory given", name);
    for (uint32_t i = 0; i < layout->nblocks; i++)
        if (!strcmp(layout->blocks[i].name, name))
            return colo_err(COLO_E_CONFIG, "RAM block %s: name used twice", name);
    b = &layout->blocks[layout->nblocks++];
    strcpy(b->name, name);
    b->host = host;
    b->length = length;
    b->npages = length / layout->page_size;
    layout->total_pages += b->npages;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/*
 * The integers are hashed as 8 little-endian bytes on every host: that is
 * what x86 and arm64 hosts always hashed (their own order), so a
 * little-endian peer of any version agrees, and a big-endian host now agrees
 * with them too (before 0.5 it hashed its own order and agreed with no one).
 */
uint64_t colo_ram_layout_fingerprint(const struct colo_ram_layout *layout)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint8_t le[8];

    colo_put_le64(le, layout->page_size);
    h = fnv1a(h, le, sizeof(le));
    for (uint32_t i = 0; i < layout->nblocks; i++) {
        const struct colo_ram_block *b = &layout->blocks[i];

        h = fnv1a(h, b->name, strlen(b->name) + 1);
        colo_put_le64(le, b->length);
        h = fnv1a(h, le, sizeof(le));
    }
    return h;
}
