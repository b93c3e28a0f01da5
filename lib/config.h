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
    uint32_t heartbeat_ms;
};

/* Deep copy (strings duplicated). */
int colo_config_copy(const struct colo_config *src, struct colo_config **out);
/* Builds the RAM layout the config describes. */
int colo_config_layout(const struct colo_config *cfg, struct colo_ram_layout *layout);

#endif
