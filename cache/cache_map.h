/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the RAM cache maps its source and makes stores durable. Two variants,
 * chosen at build time: cache_map_pmem2.c (libpmem2: the mapping's persist
 * function, CPU cache flushes on pmem) and cache_map_mmap.c (mmap + msync).
 */
#ifndef COLO_CACHE_CACHE_MAP_H
#define COLO_CACHE_CACHE_MAP_H

#include <stddef.h>

struct colo_cache_map;

/* Size of the source behind fd (a device's own size for device-DAX). */
int colo_cache_map_source_size(int fd, size_t *size);
/* Alignment a region offset must have in this source (>= the page size). */
int colo_cache_map_source_alignment(int fd, size_t *align);
int colo_cache_map_new(int fd, size_t size, struct colo_cache_map **out);
void colo_cache_map_delete(struct colo_cache_map **m);
void *colo_cache_map_addr(const struct colo_cache_map *m);
int colo_cache_map_persist(struct colo_cache_map *m, void *addr, size_t len);

#endif
