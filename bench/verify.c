/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "bench/verify.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

uint64_t bench_hash_page(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t h = FNV_OFFSET;

    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, b + i, sizeof(w));
        h = (h ^ w) * FNV_PRIME;
    }
    for (size_t i = len & ~(size_t)7; i < len; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

void bench_hash_pages(const uint8_t *p, uint64_t len, uint32_t page_size, uint64_t *out)
{
    for (uint64_t i = 0; i < len / page_size; i++)
        out[i] = bench_hash_page(p + i * page_size, page_size);
}

uint64_t bench_hash_block(const uint8_t *p, uint64_t len, uint32_t page_size)
{
    uint64_t h = FNV_OFFSET;

    for (uint64_t i = 0; i < len / page_size; i++)
        h = (h ^ bench_hash_page(p + i * page_size, page_size)) * FNV_PRIME;
    return h;
}

uint64_t bench_first_diff_page(const uint8_t *p, uint64_t len, uint32_t page_size,
                               const uint64_t *page_hashes)
{
    for (uint64_t i = 0; i < len / page_size; i++)
        if (bench_hash_page(p + i * page_size, page_size) != page_hashes[i])
            return i;
    return UINT64_MAX;
}
