/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The connection handshake (proto/handshake.c): the input is a peer's hello.
 * Checks: colo_hello_decode refuses short input, a wrong magic and a nonzero
 * reserved field and nothing else; a decoded hello re-encodes to the same 40
 * bytes; colo_hello_check against a fixed local hello (either role) accepts
 * exactly a peer of the other role with the same version, page size and RAM
 * layout.
 */
#include <stdint.h>
#include <string.h>

#include "common/error.h"
#include "fuzz_common.h"
#include "proto/handshake.h"
#include "proto/message.h"

static struct colo_ram_layout layout;
static struct colo_hello mine[2]; /* [COLO_ROLE_PRIMARY], [COLO_ROLE_SECONDARY] */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static uint8_t dummy; /* the layout's host memory is never touched here */

    (void)argc;
    (void)argv;
    FUZZ_CHECK(colo_ram_layout_init(&layout, 4096) == 0);
    FUZZ_CHECK(colo_ram_layout_add(&layout, "pc.ram", &dummy, 1ull << 30) == 0);
    FUZZ_CHECK(colo_ram_layout_add(&layout, "vga.vram", &dummy, 16ull << 20) == 0);
    colo_hello_from_layout(&mine[COLO_ROLE_PRIMARY], COLO_ROLE_PRIMARY, 0, &layout);
    colo_hello_from_layout(&mine[COLO_ROLE_SECONDARY], COLO_ROLE_SECONDARY, 0, &layout);
    return 0;
}

static int reference_match(const struct colo_hello *me, const struct colo_hello *peer)
{
    return peer->version == COLO_PROTO_VERSION && peer->role <= COLO_ROLE_SECONDARY &&
           peer->role != me->role && peer->page_size == me->page_size &&
           peer->nblocks == me->nblocks && peer->total_pages == me->total_pages &&
           peer->fingerprint == me->fingerprint;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct colo_hello peer;
    uint8_t wire[COLO_HELLO_WIRE_SIZE];
    int ret;

    colo_err_clear();
    memset(&peer, 0xa5, sizeof(peer));
    ret = colo_hello_decode(data, size, &peer);
    FUZZ_CHECK(ret == 0 || ret == COLO_E_HANDSHAKE);
    if (size < COLO_HELLO_WIRE_SIZE) {
        FUZZ_CHECK(ret != 0);
        return 0;
    }
    FUZZ_CHECK((ret == 0) ==
               (colo_get_be32(data) == COLO_HELLO_MAGIC && colo_get_be32(data + 20) == 0));
    if (ret) {
        FUZZ_CHECK(colo_errormsg()[0] != '\0');
        return 0;
    }
    colo_hello_encode(&peer, wire);
    FUZZ_CHECK(memcmp(wire, data, sizeof(wire)) == 0);
    for (int role = COLO_ROLE_PRIMARY; role <= COLO_ROLE_SECONDARY; role++) {
        ret = colo_hello_check(&mine[role], &peer);
        FUZZ_CHECK(ret == 0 || ret == COLO_E_HANDSHAKE);
        FUZZ_CHECK((ret == 0) == reference_match(&mine[role], &peer));
    }
    return 0;
}
