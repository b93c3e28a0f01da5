/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "core/byteorder.h"
#include "proto/digest.h"
#include "proto/dirty_wire.h"

static const char label[] = "colo-rdma-checkpoint-v2";

/* g_hmac_update takes a signed length: large runs go in slices. */
#define SLICE (1ull << 30)

static void update_be64(GHmac *h, uint64_t v)
{
    uint8_t b[8];

    colo_put_be64(b, v);
    g_hmac_update(h, b, sizeof(b));
}

static void update_bytes(GHmac *h, const uint8_t *p, uint64_t len)
{
    while (len) {
        uint64_t n = len < SLICE ? len : SLICE;

        g_hmac_update(h, p, (gssize)n);
        p += n;
        len -= n;
    }
}

void colo_digest_checkpoint(const struct colo_digest_input *in, uint8_t out[COLO_DIGEST_SIZE])
{
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, in->key, COLO_DIGEST_SIZE);
    uint64_t ps = in->layout->page_size;
    gsize len = COLO_DIGEST_SIZE;

    g_hmac_update(h, (const guchar *)label, sizeof(label)); /* with its NUL */
    update_be64(h, in->seq);
    update_be64(h, in->nruns);
    for (size_t i = 0; i < in->nruns; i++) {
        uint8_t wire[COLO_DIRTY_RUN_WIRE_SIZE];

        colo_dirty_list_encode(&in->runs[i], 1, wire);
        g_hmac_update(h, wire, sizeof(wire));
    }
    for (size_t i = 0; i < in->nruns; i++) {
        const struct colo_dirty_run *r = &in->runs[i];
        const uint8_t *base = in->block(in->opaque, r->block);

        update_bytes(h, base + r->first_page * ps, r->page_count * ps);
    }
    update_be64(h, in->vmstate_len);
    update_bytes(h, in->vmstate, in->vmstate_len);
    g_hmac_get_digest(h, out, &len);
    g_hmac_unref(h);
}

int colo_digest_equal(const uint8_t a[COLO_DIGEST_SIZE], const uint8_t b[COLO_DIGEST_SIZE])
{
    uint8_t diff = 0;

    /* No early exit: the time must not tell how much of a digest matched. */
    for (size_t i = 0; i < COLO_DIGEST_SIZE; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}
