/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "lib/backend.h"
#include "lib/config.h"
#include "proto/auth.h"
#include "proto/handshake.h"
#include "proto/message.h"

int colo_config_new(struct colo_config **out)
{
    struct colo_config *cfg = calloc(1, sizeof(*cfg));

    if (!cfg)
        return colo_err(-ENOMEM, "config: out of memory");
    cfg->transport = COLO_TRANSPORT_TCP;
    cfg->port = COLO_DEFAULT_PORT;
    cfg->timeout_ms = COLO_DEFAULT_TIMEOUT_MS;
    cfg->page_size = 4096;
    cfg->max_vmstate = COLO_DEFAULT_MAX_VMSTATE;
    cfg->heartbeat_ms = COLO_DEFAULT_HEARTBEAT_MS;
    cfg->pipelined = true;
    cfg->handshake_timeout_ms = COLO_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    cfg->max_version = COLO_PROTO_VERSION_MAX;
    *out = cfg;
    return 0;
}

void colo_config_delete(struct colo_config **cfgp)
{
    struct colo_config *cfg = cfgp ? *cfgp : NULL;

    if (!cfg)
        return;
    free(cfg->host);
    free(cfg->cache_path);
    if (cfg->auth_key)
        memset(cfg->auth_key, 0, cfg->auth_key_len);
    free(cfg->auth_key);
    free(cfg);
    *cfgp = NULL;
}

static int set_string(char **dst, const char *src)
{
    char *copy = NULL;

    if (src && !(copy = strdup(src)))
        return colo_err(-ENOMEM, "config: out of memory");
    free(*dst);
    *dst = copy;
    return 0;
}

int colo_config_copy(const struct colo_config *src, struct colo_config **out)
{
    struct colo_config *cfg = malloc(sizeof(*cfg));

    if (!cfg)
        return colo_err(-ENOMEM, "config: out of memory");
    *cfg = *src;
    cfg->host = cfg->cache_path = NULL;
    cfg->auth_key = NULL;
    cfg->auth_key_len = 0;
    if (set_string(&cfg->host, src->host) || set_string(&cfg->cache_path, src->cache_path) ||
        (src->auth_key && colo_config_set_auth_key(cfg, src->auth_key, src->auth_key_len))) {
        colo_config_delete(&cfg);
        return -ENOMEM;
    }
    *out = cfg;
    return 0;
}

int colo_config_set_transport(struct colo_config *cfg, const char *name)
{
    return colo_backend_parse(name, &cfg->transport);
}

int colo_config_set_address(struct colo_config *cfg, const char *host, uint16_t port)
{
    cfg->port = port;
    return set_string(&cfg->host, host);
}

int colo_config_set_timeout_ms(struct colo_config *cfg, uint32_t timeout_ms)
{
    if (timeout_ms == 0)
        return colo_err(COLO_E_CONFIG, "timeout 0 ms: expected at least 1 ms");
    cfg->timeout_ms = timeout_ms;
    return 0;
}

int colo_config_set_handshake_timeout_ms(struct colo_config *cfg, uint32_t timeout_ms)
{
    if (timeout_ms < COLO_HANDSHAKE_TIMEOUT_MIN_MS || timeout_ms > COLO_HANDSHAKE_TIMEOUT_MAX_MS)
        return colo_err(COLO_E_CONFIG, "handshake timeout %" PRIu32 " ms: expected %u..%u ms",
                        timeout_ms, COLO_HANDSHAKE_TIMEOUT_MIN_MS, COLO_HANDSHAKE_TIMEOUT_MAX_MS);
    cfg->handshake_timeout_ms = timeout_ms;
    return 0;
}

int colo_config_add_ram_block(struct colo_config *cfg, const char *name, void *host,
                              uint64_t length)
{
    struct colo_ram_layout probe;
    int ret = colo_config_layout(cfg, &probe);

    /* Validate now, so a bad block is reported where it is added. */
    if (!ret)
        ret = colo_ram_layout_add(&probe, name, host, length);
    if (ret)
        return ret;
    strcpy(cfg->blocks[cfg->nblocks].name, name);
    cfg->blocks[cfg->nblocks].host = host;
    cfg->blocks[cfg->nblocks].length = length;
    cfg->nblocks++;
    return 0;
}

int colo_config_set_page_size(struct colo_config *cfg, uint32_t page_size)
{
    struct colo_ram_layout probe;
    int ret;

    if (cfg->nblocks)
        return colo_err(COLO_E_CONFIG, "page size: set it before adding RAM blocks");
    ret = colo_ram_layout_init(&probe, page_size);
    if (!ret)
        cfg->page_size = page_size;
    return ret;
}

int colo_config_set_cache_path(struct colo_config *cfg, const char *path)
{
    return set_string(&cfg->cache_path, path);
}

int colo_config_set_max_vmstate(struct colo_config *cfg, uint64_t max_bytes)
{
    if (max_bytes > COLO_VMSTATE_HARD_MAX)
        return colo_err(COLO_E_CONFIG,
                        "maximum device state %" PRIu64 " bytes: expected at most %" PRIu64,
                        max_bytes, (uint64_t)COLO_VMSTATE_HARD_MAX);
    cfg->max_vmstate = max_bytes;
    return 0;
}

int colo_config_set_secondary_ops(struct colo_config *cfg, const struct colo_secondary_ops *ops,
                                  void *opaque)
{
    memset(&cfg->ops, 0, sizeof(cfg->ops));
    if (ops)
        cfg->ops = *ops;
    cfg->opaque = opaque;
    return 0;
}

int colo_config_layout(const struct colo_config *cfg, struct colo_ram_layout *layout)
{
    int ret = colo_ram_layout_init(layout, cfg->page_size);

    for (uint32_t i = 0; !ret && i < cfg->nblocks; i++)
        ret = colo_ram_layout_add(layout, cfg->blocks[i].name, cfg->blocks[i].host,
                                  cfg->blocks[i].length);
    return ret;
}

int colo_config_set_auth_key(struct colo_config *cfg, const void *key, size_t len)
{
    uint8_t *copy;

    if (!key || len == 0 || len > COLO_AUTH_KEY_MAX)
        return colo_err(COLO_E_CONFIG, "authentication key of %zu bytes: expected 1..%d bytes",
                        len, COLO_AUTH_KEY_MAX);
    copy = malloc(len);
    if (!copy)
        return colo_err(-ENOMEM, "config: out of memory");
    memcpy(copy, key, len);
    if (cfg->auth_key)
        memset(cfg->auth_key, 0, cfg->auth_key_len);
    free(cfg->auth_key);
    cfg->auth_key = copy;
    cfg->auth_key_len = len;
    return 0;
}

int colo_config_set_busy_poll(struct colo_config *cfg, int enabled)
{
    cfg->busy_poll = enabled != 0;
    return 0;
}

int colo_config_set_heartbeat_ms(struct colo_config *cfg, uint32_t interval_ms)
{
    if (interval_ms < 10 || interval_ms > 60000)
        return colo_err(COLO_E_CONFIG, "heartbeat interval %u ms: expected 10..60000 ms",
                        interval_ms);
    cfg->heartbeat_ms = interval_ms;
    return 0;
}

int colo_config_set_early_resume(struct colo_config *cfg, int enabled)
{
    cfg->early_resume = enabled != 0;
    return 0;
}

int colo_config_set_pipelined(struct colo_config *cfg, int enabled)
{
    cfg->pipelined = enabled != 0;
    return 0;
}

int colo_config_set_cache_overwrite(struct colo_config *cfg, int enabled)
{
    cfg->cache_overwrite = enabled != 0;
    return 0;
}

int colo_config_set_protocol_version(struct colo_config *cfg, uint32_t version)
{
    if (version < COLO_PROTO_VERSION || version > COLO_PROTO_VERSION_MAX)
        return colo_err(COLO_E_CONFIG, "protocol version %" PRIu32 ": expected %d..%d",
                        version, COLO_PROTO_VERSION, COLO_PROTO_VERSION_MAX);
    cfg->max_version = (uint16_t)version;
    return 0;
}

int colo_config_set_integrity(struct colo_config *cfg, int enabled)
{
    cfg->integrity = enabled != 0;
    return 0;
}
