/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The connection handshake: each side sends a fixed 40-byte hello (over the
 * byte stream for tcp, in the connect/accept private data for rdma) and
 * checks the peer's before any page or key material moves.
 *
 *   be32 magic "COLO" | be16 version | be16 role | be32 capabilities |
 *   be32 page size | be32 block count | be32 reserved (0) |
 *   be64 total pages | be64 RAM layout fingerprint
 */
#ifndef COLO_PROTO_HANDSHAKE_H
#define COLO_PROTO_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/fsm.h"
#include "core/ram_layout.h"

#define COLO_HELLO_MAGIC 0x434f4c4fu /* "COLO" */
/* The hello's version field: the base version every peer since 0.1 speaks
 * and checks for equality. Later versions are offered by capability bits,
 * which a version-1 peer ignores, so a new peer still talks to an old one. */
#define COLO_PROTO_VERSION 1
#define COLO_PROTO_VERSION_MAX 2
#define COLO_HELLO_WIRE_SIZE 40

/* Capability bits of the hello (others are ignored, for later versions). */
#define COLO_HELLO_CAP_V2 (1u << 0)        /* speaks protocol version 2 */
#define COLO_HELLO_CAP_INTEGRITY (1u << 1) /* v2: checkpoint digests (both or neither) */

struct colo_hello {
    uint16_t version;
    uint16_t role;
    uint32_t caps;
    uint32_t page_size;
    uint32_t nblocks;
    uint64_t total_pages;
    uint64_t fingerprint;
};

void colo_hello_from_layout(struct colo_hello *h, enum colo_role role, uint32_t caps,
                            const struct colo_ram_layout *layout);
void colo_hello_encode(const struct colo_hello *h, uint8_t out[COLO_HELLO_WIRE_SIZE]);
/* Rejects short input, a wrong magic or a nonzero reserved field. */
int colo_hello_decode(const uint8_t *buf, size_t len, struct colo_hello *h);
/* Checks the peer's hello against ours: version, role, page size, layout. */
int colo_hello_check(const struct colo_hello *mine, const struct colo_hello *peer);
/* Decodes the peer's hello from len bytes, then checks it against ours. */
int colo_hello_check_wire(const struct colo_hello *mine, const uint8_t *buf, size_t len);

/* What a session speaks, agreed from the two hellos. */
struct colo_features {
    uint16_t version; /* 1, or 2 when both offer it */
    bool integrity;   /* checkpoint digests (version 2, both sides asked) */
};

/* The capability bits a side offers: protocol version at most max_version
 * (1 or 2) and, in version 2, integrity digests when asked for. */
uint32_t colo_hello_caps(uint16_t max_version, bool integrity);
/*
 * Agrees on the features of two hellos that passed colo_hello_check: the
 * highest version both offer; integrity digests only when both sides asked
 * for them: a side that asks refuses a peer that does not (COLO_E_HANDSHAKE,
 * naming which side has to change), since a digest the secondary does not
 * check protects nothing.
 */
int colo_hello_negotiate(const struct colo_hello *mine, const struct colo_hello *peer,
                         struct colo_features *out);

/* The two hellos of one connection, as sent: the session negotiates from
 * them, and from version 2 on authentication covers them. */
struct colo_hello_pair {
    uint8_t mine[COLO_HELLO_WIRE_SIZE];
    uint8_t peer[COLO_HELLO_WIRE_SIZE];
    bool have_peer;
};

/*
 * What a refused peer is told (rdma: the private data of the rejection),
 * since 0.4 instead of the refusing side's own hello, which told anyone who
 * sent one wrong connect request the exact hello to send:
 *   be32 magic "CREF" | be16 our protocol version | be16 reason
 * The version stays, so that a later version can negotiate down.
 */
#define COLO_HELLO_REFUSAL_MAGIC 0x43524546u /* "CREF" */
#define COLO_HELLO_REFUSAL_SIZE 8

enum colo_hello_refusal_reason {
    COLO_HELLO_REFUSED_MALFORMED = 1,
    COLO_HELLO_REFUSED_VERSION = 2,
    COLO_HELLO_REFUSED_ROLE = 3,
    COLO_HELLO_REFUSED_PAGE_SIZE = 4,
    COLO_HELLO_REFUSED_LAYOUT = 5,
    COLO_HELLO_REFUSED_FEATURES = 6, /* since 0.5: integrity digests asked by one side only */
};

/* The refusal for the peer's hello in buf (which colo_hello_check_wire refused). */
void colo_hello_refusal_encode(const struct colo_hello *mine, const uint8_t *buf, size_t len,
                               uint8_t out[COLO_HELLO_REFUSAL_SIZE]);
/* The error a refusal from the peer means, naming only our own values;
 * a peer before 0.4 sent its hello instead, which is checked as before.
 * 0 when buf is neither. */
int colo_hello_refusal_check(const struct colo_hello *mine, const uint8_t *buf, size_t len);

#endif
