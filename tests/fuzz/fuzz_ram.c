/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "fuzz_common.h"
#include "fuzz_ram.h"

const uint64_t fuzz_block_pages[FUZZ_NBLOCKS] = {16, 2, 1};
static const char *const block_names[FUZZ_NBLOCKS] = {"pc.ram", "vga.vram", "pc.rom"};

uint64_t fuzz_block_len(uint32_t block)
{
    return fuzz_block_pages[block] * FUZZ_PAGE;
}

/* A directory for the cache file: tmpfs where there is one, so msync is cheap. */
static const char *cache_dir(void)
{
    const char *dir = getenv("COLO_FUZZ_CACHE_DIR");

    if (dir && dir[0])
        return dir;
    if (access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    dir = getenv("TMPDIR");
    return dir && dir[0] ? dir : "/tmp";
}

void fuzz_ram_init(struct fuzz_ram *r)
{
    char path[512];
    int fd;

    FUZZ_CHECK(colo_ram_layout_init(&r->layout, FUZZ_PAGE) == 0);
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++) {
        r->guest[i] = malloc(fuzz_block_len(i));
        FUZZ_CHECK(r->guest[i]);
        FUZZ_CHECK(
            colo_ram_layout_add(&r->layout, block_names[i], r->guest[i], fuzz_block_len(i)) == 0);
    }
    snprintf(path, sizeof(path), "%s/colo-fuzz-cache.XXXXXX", cache_dir());
    fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0);
    close(fd);
    if (colo_ram_cache_open(path, &r->layout, 0, &r->cache)) {
        fprintf(stderr, "fuzz: RAM cache %s: %s\n", path, colo_errormsg());
        unlink(path);
        abort();
    }
    unlink(path); /* the mapping stays; nothing is left behind */
}

void fuzz_ram_fill(struct fuzz_ram *r, uint8_t guest_byte, uint8_t cache_byte)
{
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++) {
        memset(r->guest[i], guest_byte, fuzz_block_len(i));
        memset(colo_ram_cache_block(r->cache, i), cache_byte, fuzz_block_len(i));
    }
}
