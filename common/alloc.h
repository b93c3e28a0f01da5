/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one growth helper for buffers and arrays that are reused across checkpoints. */
#ifndef COLO_COMMON_ALLOC_H
#define COLO_COMMON_ALLOC_H

#include <stddef.h>

/*
 * Grows the array *bufp (the address of any object pointer) to hold at least
 * n elements of elem bytes and sets *cap to n; nothing changes when it holds
 * them already, or on failure. Returns 0, or -ENOMEM (also when n * elem
 * overflows) with a message that begins with what.
 */
int colo_grow_array(void *bufp, size_t *cap, size_t n, size_t elem, const char *what);

#endif
