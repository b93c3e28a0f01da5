/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Big-endian load and store of the wire's fixed-width fields (and one
 * little-endian store for a hash input), byte by byte
 * so that alignment and host byte order never matter.
 */
#ifndef COLO_CORE_BYTEORDER_H
#define COLO_CORE_BYTEORDER_H

#include <stdint.h>

static inline void colo_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void colo_put_be64(uint8_t *p, uint64_t v)
{
    colo_put_be32(p, (uint32_t)(v >> 32));
    colo_put_be32(p + 4, (uint32_t)v);
}

/* Little-endian: only where a hash input is defined that way (the RAM
 * layout fingerprint), never for a wire field. */
static inline void colo_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t colo_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t colo_get_be64(const uint8_t *p)
{
    return (uint64_t)colo_get_be32(p) << 32 | colo_get_be32(p + 4);
}

#endif
