/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The configuration object behind the public colo_config_* setters. */
#ifndef COLO_LIB_CONFIG_H
#define COLO_LIB_CONFIG_H

#include <stdbool.h>

#include "colo-rdma/colo-rdma.h"
#include "core/ram_layout.h"

#define COLO_DEFAULT_TIMEOUT_MS 30000u  /* > QEMU's default 20 s checkpoint period */
#define COLO_DEFAULT_MAX_VMSTATE (64ull << 20)
#define COLO_DEFAULT_PORT 9090
#define COLO_DEFAULT_HEARTBEAT_MS 500
/*
 * From accept (or connect) to authenticated, the whole phase: an honest
 * handshake is two or three round trips plus, over rdma, the connection's
 * setup (about 0.1-0.3 s under soft-RoCE in a TCG guest, milliseconds on real
 * hardware), so 5 s leaves a tenfold margin on the slowest machine we test on
 * while bounding how long a peer without the key holds a handshake slot.
 */
#define COLO_DEFAULT_HANDSHAKE_TIMEOUT_MS 5000u
#define COLO_HANDSHAKE_TIMEOUT_MIN_MS 10u
#define COLO_HANDSHAKE_TIMEOUT_MAX_MS 600000u

/* Index into the backend table (lib/backend.c). */
enum colo_transport {
    COLO_TRANSPORT_TCP,
    COLO_TRANSPORT_RDMA,
    COLO_TRANSPORT__COUNT,
};

struct colo_config {
    enum colo_transport transport;
    char *host;
    uint16_t port;
    uint32_t timeout_ms;
    uint32_t page_size;
    uint32_t nblocks;
    struct {
        char name[COLO_RAM_BLOCK_NAME_MAX];
        void *host;
        uint64_t length;
    } blocks[COLO_RAM_BLOCKS_MAX];
    char *cache_path;
    bool cache_overwrite;
    uint64_t max_vmstate;
    struct colo_secondary_ops ops;
    void *opaque;
    uint8_t *auth_key;
    size_t auth_key_len;
    bool busy_poll;
    bool early_resume;
    bool pipelined;
    uint32_t heartbeat_ms;
    uint32_t handshake_timeout_ms;
    uint16_t max_version; /* the highest protocol version offered */
    bool integrity;
};

/* Deep copy (strings duplicated). */
int colo_config_copy(const struct colo_config *src, struct colo_config **out);
/* Builds the RAM layout the config describes. */
int colo_config_layout(const struct colo_config *cfg, struct colo_ram_layout *layout);

#endif
