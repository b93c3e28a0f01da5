/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdint.h>

#include "common/error.h"
#include "core/byteorder.h"
#include "proto/dirty_wire.h"

void colo_dirty_list_encode(const struct colo_dirty_run *runs, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++, out += COLO_DIRTY_RUN_WIRE_SIZE) {
        colo_put_be32(out, runs[i].block);
        colo_put_be32(out + 4, runs[i].reserved);
        colo_put_be64(out + 8, runs[i].first_page);
        colo_put_be64(out + 16, runs[i].page_count);
    }
}

int colo_dirty_list_decode(const uint8_t *buf, size_t len, size_t n, struct colo_dirty_run *out)
{
    return colo_dirty_list_decode_from(buf, len, n, 0, out);
}

int colo_dirty_list_decode_from(const uint8_t *buf, size_t len, size_t n, size_t first,
                                struct colo_dirty_run *out)
{
    if (n > SIZE_MAX / COLO_DIRTY_RUN_WIRE_SIZE || len != n * COLO_DIRTY_RUN_WIRE_SIZE)
        return colo_err(COLO_E_DIRTY_LIST,
                        "dirty list: %zu bytes for %zu runs, expected %d bytes per run", len, n,
                        COLO_DIRTY_RUN_WIRE_SIZE);
    for (size_t i = 0; i < n; i++, buf += COLO_DIRTY_RUN_WIRE_SIZE) {
        out[i].block = colo_get_be32(buf);
        out[i].reserved = colo_get_be32(buf + 4);
        out[i].first_page = colo_get_be64(buf + 8);
        out[i].page_count = colo_get_be64(buf + 16);
        if (out[i].reserved)
            return colo_err(COLO_E_DIRTY_LIST,
                            "dirty run %zu: reserved field is %" PRIu32 ", expected 0",
                            first + i, out[i].reserved);
    }
    return 0;
}
