/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>

#include "common/error.h"
#include "proto/handshake.h"
#include "proto/message.h"

void colo_hello_from_layout(struct colo_hello *h, enum colo_role role, uint32_t caps,
                            const struct colo_ram_layout *layout)
{
    *h = (struct colo_hello){
        .version = COLO_PROTO_VERSION,
        .role = (uint16_t)role,
        .caps = caps,
        .page_size = layout->page_size,
        .nblocks = layout->nblocks,
        .total_pages = layout->total_pages,
        .fingerprint = colo_ram_layout_fingerprint(layout),
    };
}

void colo_hello_encode(const struct colo_hello *h, uint8_t out[COLO_HELLO_WIRE_SIZE])
{
    colo_put_be32(out, COLO_HELLO_MAGIC);
    out[4] = (uint8_t)(h->version >> 8);
    out[5] = (uint8_t)h->version;
    out[6] = (uint8_t)(h->role >> 8);
    out[7] = (uint8_t)h->role;
    colo_put_be32(out + 8, h->caps);
    colo_put_be32(out + 12, h->page_size);
    colo_put_be32(out + 16, h->nblocks);
    colo_put_be32(out + 20, 0);
    colo_put_be64(out + 24, h->total_pages);
    colo_put_be64(out + 32, h->fingerprint);
}

int colo_hello_decode(const uint8_t *buf, size_t len, struct colo_hello *h)
{
    uint32_t magic;

    if (len < COLO_HELLO_WIRE_SIZE)
        return colo_err(COLO_E_HANDSHAKE, "truncated hello: expected %d bytes, received %zu",
                        COLO_HELLO_WIRE_SIZE, len);
    magic = colo_get_be32(buf);
    if (magic != COLO_HELLO_MAGIC)
        return colo_err(COLO_E_HANDSHAKE,
                        "peer is not a colo-rdma endpoint: magic 0x%08" PRIx32
                        ", expected 0x%08" PRIx32,
                        magic, COLO_HELLO_MAGIC);
    if (colo_get_be32(buf + 20))
        return colo_err(COLO_E_HANDSHAKE, "hello: reserved field is not 0");
    h->version = (uint16_t)(buf[4] << 8 | buf[5]);
    h->role = (uint16_t)(buf[6] << 8 | buf[7]);
    h->caps = colo_get_be32(buf + 8);
    h->page_size = colo_get_be32(buf + 12);
    h->nblocks = colo_get_be32(buf + 16);
    h->total_pages = colo_get_be64(buf + 24);
    h->fingerprint = colo_get_be64(buf + 32);
    return 0;
}

int colo_hello_check(const struct colo_hello *mine, const struct colo_hello *peer)
{
    if (peer->version != mine->version)
        return colo_err(COLO_E_HANDSHAKE,
                        "protocol version: peer speaks %u, expected %u", peer->version,
                        mine->version);
    if (peer->role == mine->role || peer->role > COLO_ROLE_SECONDARY)
        return colo_err(COLO_E_HANDSHAKE, "peer role %u: expected the %s", peer->role,
                        mine->role == COLO_ROLE_PRIMARY ? "secondary (1)" : "primary (0)");
    if (peer->page_size != mine->page_size)
        return colo_err(COLO_E_HANDSHAKE,
                        "page size: peer uses %" PRIu32 ", expected %" PRIu32, peer->page_size,
                        mine->page_size);
    if (peer->nblocks != mine->nblocks || peer->total_pages != mine->total_pages ||
        peer->fingerprint != mine->fingerprint)
        return colo_err(COLO_E_HANDSHAKE,
                        "RAM layout differs: peer has %" PRIu32 " blocks, %" PRIu64
                        " pages, fingerprint %016" PRIx64 "; expected %" PRIu32 " blocks, %" PRIu64
                        " pages, fingerprint %016" PRIx64,
                        peer->nblocks, peer->total_pages, peer->fingerprint, mine->nblocks,
                        mine->total_pages, mine->fingerprint);
    return 0;
}

int colo_hello_check_wire(const struct colo_hello *mine, const uint8_t *buf, size_t len)
{
    struct colo_hello peer;
    struct colo_features f;
    int ret = colo_hello_decode(buf, len, &peer);

    if (!ret)
        ret = colo_hello_check(mine, &peer);
    return ret ? ret : colo_hello_negotiate(mine, &peer, &f);
}

uint32_t colo_hello_caps(uint16_t max_version, bool integrity)
{
    if (max_version < 2)
        return 0;
    return COLO_HELLO_CAP_V2 | (integrity ? COLO_HELLO_CAP_INTEGRITY : 0);
}

static const char *peer_name(const struct colo_hello *mine)
{
    return mine->role == COLO_ROLE_PRIMARY ? "secondary" : "primary";
}

int colo_hello_negotiate(const struct colo_hello *mine, const struct colo_hello *peer,
                         struct colo_features *out)
{
    bool v2 = mine->caps & peer->caps & COLO_HELLO_CAP_V2;
    bool want = mine->caps & COLO_HELLO_CAP_INTEGRITY;
    bool peer_wants = (peer->caps & COLO_HELLO_CAP_V2) && (peer->caps & COLO_HELLO_CAP_INTEGRITY);

    *out = (struct colo_features){.version = v2 ? 2 : 1, .integrity = want && peer_wants};
    if (want && !peer_wants)
        return colo_err(COLO_E_HANDSHAKE, "integrity digests: this side asks for them and the %s "
                        "does not (%s): enable colo_config_set_integrity() on both sides or on "
                        "neither", peer_name(mine),
                        peer->caps & COLO_HELLO_CAP_V2 ? "integrity off"
                                                       : "it speaks protocol version 1 only");
    if (peer_wants && !want)
        return colo_err(COLO_E_HANDSHAKE, "integrity digests: the %s asks for them and this side "
                        "does not: enable colo_config_set_integrity() on both sides or on "
                        "neither", peer_name(mine));
    return 0;
}

static enum colo_hello_refusal_reason refusal_reason(const struct colo_hello *mine,
                                                    const uint8_t *buf, size_t len)
{
    struct colo_hello peer;
    char saved[512];
    int bad;

    /* Classifying must not overwrite the message of the check that refused. */
    snprintf(saved, sizeof(saved), "%s", colo_errormsg());
    bad = colo_hello_decode(buf, len, &peer);
    colo_err(COLO_E_HANDSHAKE, "%s", saved);
    if (bad)
        return COLO_HELLO_REFUSED_MALFORMED;
    if (peer.version != mine->version)
        return COLO_HELLO_REFUSED_VERSION;
    if (peer.role == mine->role || peer.role > COLO_ROLE_SECONDARY)
        return COLO_HELLO_REFUSED_ROLE;
    if (peer.page_size != mine->page_size)
        return COLO_HELLO_REFUSED_PAGE_SIZE;
    if (peer.nblocks != mine->nblocks || peer.total_pages != mine->total_pages ||
        peer.fingerprint != mine->fingerprint)
        return COLO_HELLO_REFUSED_LAYOUT;
    return COLO_HELLO_REFUSED_FEATURES;
}

void colo_hello_refusal_encode(const struct colo_hello *mine, const uint8_t *buf, size_t len,
                               uint8_t out[COLO_HELLO_REFUSAL_SIZE])
{
    enum colo_hello_refusal_reason why = refusal_reason(mine, buf, len);

    colo_put_be32(out, COLO_HELLO_REFUSAL_MAGIC);
    out[4] = (uint8_t)(mine->version >> 8);
    out[5] = (uint8_t)mine->version;
    out[6] = 0;
    out[7] = (uint8_t)why;
}

int colo_hello_refusal_check(const struct colo_hello *mine, const uint8_t *buf, size_t len)
{
    uint16_t version;

    if (len >= COLO_HELLO_WIRE_SIZE && colo_get_be32(buf) == COLO_HELLO_MAGIC)
        return colo_hello_check_wire(mine, buf, len); /* a peer before 0.4 */
    if (len < COLO_HELLO_REFUSAL_SIZE || colo_get_be32(buf) != COLO_HELLO_REFUSAL_MAGIC)
        return 0;
    version = (uint16_t)(buf[4] << 8 | buf[5]);
    switch (buf[6] << 8 | buf[7]) {
    case COLO_HELLO_REFUSED_VERSION:
        return colo_err(COLO_E_HANDSHAKE, "protocol version: the peer speaks %u, we speak %u",
                        version, mine->version);
    case COLO_HELLO_REFUSED_ROLE:
        return colo_err(COLO_E_HANDSHAKE, "the peer refused our role %u (%s)", mine->role,
                        mine->role == COLO_ROLE_PRIMARY ? "primary" : "secondary");
    case COLO_HELLO_REFUSED_PAGE_SIZE:
        return colo_err(COLO_E_HANDSHAKE, "page size: the peer refused ours, %" PRIu32,
                        mine->page_size);
    case COLO_HELLO_REFUSED_LAYOUT:
        return colo_err(COLO_E_HANDSHAKE,
                        "RAM layout: the peer refused ours (%" PRIu32 " blocks, %" PRIu64
                        " pages, fingerprint %016" PRIx64 "): add the same blocks in the same "
                        "order on both sides",
                        mine->nblocks, mine->total_pages, mine->fingerprint);
    case COLO_HELLO_REFUSED_FEATURES:
        return colo_err(COLO_E_HANDSHAKE, "integrity digests: the peer refused ours (%s): enable "
                        "colo_config_set_integrity() on both sides or on neither",
                        mine->caps & COLO_HELLO_CAP_INTEGRITY ? "we ask for them"
                                                              : "we do not ask for them");
    default:
        return colo_err(COLO_E_HANDSHAKE, "the peer could not read our hello (it speaks "
                        "version %u)", version);
    }
}
