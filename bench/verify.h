/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --verify: the primary hashes each RAM block after a checkpoint and the
 * secondary compares the hashes with its applied guest RAM and its cache.
 * A block hash is FNV-1a over the page hashes, so that a differing block can
 * be narrowed to its first differing page with the page hashes alone.
 */
#ifndef COLO_BENCH_VERIFY_H
#define COLO_BENCH_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over 64-bit words, then any tail bytes: fast enough for 1 GiB per checkpoint. */
uint64_t bench_hash_page(const void *p, size_t len);
/* Hashes of each page of [p, p + len) into out (len / page_size entries). */
void bench_hash_pages(const uint8_t *p, uint64_t len, uint32_t page_size, uint64_t *out);
uint64_t bench_hash_block(const uint8_t *p, uint64_t len, uint32_t page_size);
/* First page of [p, p + len) whose hash differs from page_hashes, or UINT64_MAX. */
uint64_t bench_first_diff_page(const uint8_t *p, uint64_t len, uint32_t page_size,
                               const uint64_t *page_hashes);

#endif
