/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * colo-glue: the pure-C half of QEMU's -colo-transport tcp|rdma; see
 * colo-glue.h.  No QEMU headers: QEMU's side is migration/colo-transport.c
 * in the patch series.
 */
#include "colo-glue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int colo_glue_parse_uri(const char *uri, char **host, uint16_t *port)
{
    const char *colon, *h = uri, *h_end;
    char *end;
    unsigned long p;

    if (!uri || !*uri)
        return -EINVAL;
    if (*uri == '[') {
        h = uri + 1;
        h_end = strchr(h, ']');
        if (!h_end || h_end[1] != ':')
            return -EINVAL;
        colon = h_end + 1;
    } else {
        colon = strrchr(uri, ':');
        if (!colon || strchr(uri, ':') != colon)
            return -EINVAL;
        h_end = colon;
    }
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p == 0 || p > 65535)
        return -EINVAL;
    if (port)
        *port = (uint16_t)p;
    if (host) {
        *host = h_end > h ? strndup(h, (size_t)(h_end - h)) : NULL;
        if (h_end > h && !*host)
            return -ENOMEM;
    }
    return 0;
}

int colo_glue_config_new(struct colo_config **out, const char *transport, const char *uri,
                         const char *key, uint32_t timeout_ms)
{
    struct colo_config *cfg = NULL;
    char *host = NULL;
    uint16_t port = 0;
    int ret;

    *out = NULL;
    ret = colo_glue_parse_uri(uri, &host, &port);
    if (ret)
        return ret;
    ret = colo_config_new(&cfg);
    if (!ret)
        ret = colo_config_set_transport(cfg, transport);
    if (!ret)
        ret = colo_config_set_address(cfg, host, port);
    if (!ret && timeout_ms)
        ret = colo_config_set_timeout_ms(cfg, timeout_ms);
    /*
     * The handshake (rdma connection, hello, authentication) of a QEMU whose
     * guest dirties memory while it starts COLO can outlast the library's 5 s
     * default under emulation: give it the link's timeout. A peer without
     * the key still cannot hold the listener, which runs handshakes side by
     * side.
     */
    if (!ret)
        ret = colo_config_set_handshake_timeout_ms(cfg, timeout_ms ? timeout_ms : 30000);
    /*
     * rdma: the peer is lost after four heartbeat intervals without a word
     * from it. The library's 500 ms (a 2 s deadline) is tighter than a
     * loaded host gives a checkpoint's push: under nested emulation, with
     * both heartbeat threads getting half their ticks, a 64 MiB push went
     * 2.3 s without a probe getting through and both sides failed over.
     * An eighth of the link's timeout, within 500..2000 ms (a 2 to 8 s
     * deadline); a peer that dies outright is seen at once (its
     * connection's DISCONNECTED), not by the deadline.
     */
    if (!ret && timeout_ms) {
        uint32_t hb = timeout_ms / 8;

        ret = colo_config_set_heartbeat_ms(cfg, hb < 500 ? 500 : hb > 2000 ? 2000 : hb);
    }
    if (!ret && key && *key)
        ret = colo_config_set_auth_key(cfg, key, strlen(key));
    free(host);
    if (ret) {
        colo_config_delete(&cfg);
        return ret;
    }
    *out = cfg;
    return 0;
}

int colo_glue_runs_add(struct colo_glue_runs *r, uint32_t block, uint64_t first, uint64_t count)
{
    struct colo_dirty_run *last = r->n ? &r->v[r->n - 1] : NULL;

    if (!count)
        return 0;
    r->pages += count;
    if (last && last->block == block && last->first_page + last->page_count == first) {
        last->page_count += count;
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct colo_dirty_run *v = realloc(r->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = (struct colo_dirty_run){ .block = block, .first_page = first,
                                            .page_count = count };
    return 0;
}

void colo_glue_runs_reset(struct colo_glue_runs *r)
{
    r->n = 0;
    r->pages = 0;
}

void colo_glue_runs_free(struct colo_glue_runs *r)
{
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
    r->pages = 0;
}

int colo_glue_seed_cache(struct colo_session *s, uint32_t block, const void *src,
                         uint64_t len, void **cache)
{
    const void *addr;
    uint64_t clen;
    int ret = colo_session_cache_block(s, block, &addr, &clen);

    if (ret)
        return ret;
    if (clen < len)
        return -ERANGE;
    /* The mapping is the library's shared read-write cache mapping. */
    memcpy((void *)addr, src, len);
    *cache = (void *)addr;
    return 0;
}
