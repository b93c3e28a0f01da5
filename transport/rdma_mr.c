/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/resource.h>

#include "cache/ram_cache.h"
#include "common/error.h"
#include "core/byteorder.h"
#include "transport/rdma_mr.h"

#define CHUNK_WIRE 24 /* be64 addr | be64 len | be32 rkey | be32 0 */

int crdma_ensure_memlock(uint64_t bytes)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= bytes)
        return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= bytes ? bytes : rl.rlim_max;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < bytes) {
        /* Unprivileged and over the hard limit: only the admin can help. */
        struct rlimit up = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};

        if (setrlimit(RLIMIT_MEMLOCK, &up))
            return colo_err(-ENOMEM,
                            "rdma: registering %" PRIu64 " bytes needs RLIMIT_MEMLOCK of at "
                            "least that, the hard limit is %" PRIu64
                            ": raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a "
                            "systemd unit, or memlock in /etc/security/limits.conf)",
                            bytes, (uint64_t)rl.rlim_max);
        return 0;
    }
    if (setrlimit(RLIMIT_MEMLOCK, &rl))
        return colo_err(-errno, "rdma: raising RLIMIT_MEMLOCK to %" PRIu64 ": %s", bytes,
                        strerror(errno));
    return 0;
}

int crdma_register_region(struct crdma_conn *c, void *addr, uint64_t len, int access,
                          bool fsdax, struct crdma_chunk *out, uint32_t *nout)
{
    const struct crdma_limits *lim = crdma_conn_limits(c);
    uint64_t max = lim->max_mr_size ? lim->max_mr_size & ~4095ull : len;
    uint8_t *p = addr;

    if (!max)
        max = 4096;
    while (len) {
        uint64_t n = len < max ? len : max;
        struct ibv_mr *mr;

        if (*nout == CRDMA_MAX_CHUNKS || c->mr.nmrs == CRDMA_MAX_CHUNKS ||
            (lim->max_mr && c->mr.nmrs >= lim->max_mr))
            return colo_err(-E2BIG, "rdma: more than %d memory regions needed (device "
                            "max_mr_size %" PRIu64 ")", CRDMA_MAX_CHUNKS, lim->max_mr_size);
        mr = colo_verbs->reg_mr(crdma_conn_pd(c), p, n, access);
        if (!mr) {
            int err = errno;

            if (err == EOPNOTSUPP && fsdax)
                return colo_err(COLO_E_CACHE,
                                "rdma: the RAM cache is a file on an fs-DAX mount, which "
                                "the kernel will not pin for RDMA: use device-DAX "
                                "(/dev/daxX.Y) or a file on a non-DAX file system");
            if (err == ENOMEM || err == EPERM || err == EAGAIN)
                return colo_err(-ENOMEM,
                                "rdma: registering %" PRIu64 " bytes failed (%s): the locked "
                                "memory limit is too low; raise it (ulimit -l unlimited)",
                                n, strerror(err));
            return colo_err(-err, "rdma: register %" PRIu64 " bytes at %p: %s", n, (void *)p,
                            strerror(err));
        }
        c->mr.mrs[c->mr.nmrs++] = mr;
        out[(*nout)++] = (struct crdma_chunk){
            .addr = (uintptr_t)p,
            .len = n,
            .key = access & IBV_ACCESS_REMOTE_WRITE ? mr->rkey : mr->lkey,
        };
        p += n;
        len -= n;
    }
    return 0;
}

const struct crdma_chunk *crdma_find_chunk(const struct crdma_chunk *chunks, uint32_t n,
                                           uint64_t addr)
{
    uint32_t lo = 0, hi = n;

    /* Chunks are sorted and disjoint (checked on receipt for remote ones). */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (addr < chunks[mid].addr)
            hi = mid;
        else if (addr - chunks[mid].addr >= chunks[mid].len)
            lo = mid + 1;
        else
            return &chunks[mid];
    }
    return NULL;
}

int crdma_mr_expose_cache(struct crdma_conn *c, struct colo_stream *f)
{
    const struct colo_ram_layout *layout = colo_stream_ram_layout(f);
    struct colo_ram_cache *cache = colo_stream_ram_cache(f);
    struct crdma_chunk chunks[CRDMA_MAX_CHUNKS];
    uint32_t n = 0;
    uint8_t wire[CHUNK_WIRE];
    int ret;

    ret = crdma_ensure_memlock(colo_ram_cache_size(cache) + CRDMA_MEMLOCK_SLACK);
    if (!ret)
        ret = crdma_register_region(c, colo_ram_cache_block(cache, 0), colo_ram_cache_size(cache),
                                    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
                                    colo_ram_cache_is_fsdax(cache), chunks, &n);
    if (ret)
        return ret;
    colo_stream_put_be32(f, n);
    colo_stream_put_be32(f, layout->nblocks);
    for (uint32_t i = 0; i < n; i++) {
        colo_put_be64(wire, chunks[i].addr);
        colo_put_be64(wire + 8, chunks[i].len);
        colo_put_be32(wire + 16, chunks[i].key);
        colo_put_be32(wire + 20, 0);
        colo_stream_put_buffer(f, wire, sizeof(wire));
    }
    for (uint32_t b = 0; b < layout->nblocks; b++)
        colo_stream_put_be64(f, (uintptr_t)colo_ram_cache_block(cache, b));
    return colo_stream_fflush(f);
}

/* Every byte of each block's cache must lie in the announced chunks. */
static int check_remote(struct crdma_conn *c, const struct colo_ram_layout *layout)
{
    for (uint32_t i = 0; i < c->mr.nremote; i++) {
        const struct crdma_chunk *k = &c->mr.remote[i];

        if (!k->len || k->addr + k->len < k->addr ||
            (i && k->addr < c->mr.remote[i - 1].addr + c->mr.remote[i - 1].len))
            return colo_err(COLO_E_PROTOCOL, "rdma: the secondary announced a bad cache "
                            "chunk %" PRIu32 " (%" PRIu64 "+%" PRIu64 ")", i, k->addr, k->len);
    }
    for (uint32_t b = 0; b < layout->nblocks; b++) {
        uint64_t a = c->mr.remote_block[b], end = a + layout->blocks[b].length;

        if (end < a)
            return colo_err(COLO_E_PROTOCOL, "rdma: cache of block %s wraps around",
                            layout->blocks[b].name);
        while (a < end) {
            const struct crdma_chunk *k = crdma_find_chunk(c->mr.remote, c->mr.nremote, a);

            if (!k)
                return colo_err(COLO_E_PROTOCOL,
                                "rdma: cache of block %s at %" PRIx64
                                " is not inside the announced regions",
                                layout->blocks[b].name, a);
            a = k->addr + k->len;
        }
    }
    return 0;
}

int crdma_mr_register_ram(struct crdma_conn *c, struct colo_stream *f)
{
    const struct colo_ram_layout *layout = colo_stream_ram_layout(f);
    uint64_t total = 0;
    uint8_t wire[CHUNK_WIRE];
    uint32_t n, nblocks;
    int ret;

    for (uint32_t b = 0; b < layout->nblocks; b++)
        total += layout->blocks[b].length;
    ret = crdma_ensure_memlock(total + CRDMA_MEMLOCK_SLACK);
    /* A source of RDMA WRITE needs no remote access: local read only. */
    for (uint32_t b = 0; !ret && b < layout->nblocks; b++)
        ret = crdma_register_region(c, layout->blocks[b].host, layout->blocks[b].length, 0,
                                    false, c->mr.local, &c->mr.nlocal);
    if (ret)
        return ret;
    /* Blocks need not be in address order: sort the chunks for lookups. */
    for (uint32_t i = 1; i < c->mr.nlocal; i++)
        for (uint32_t j = i; j && c->mr.local[j - 1].addr > c->mr.local[j].addr; j--) {
            struct crdma_chunk t = c->mr.local[j];

            c->mr.local[j] = c->mr.local[j - 1];
            c->mr.local[j - 1] = t;
        }

    n = colo_stream_get_be32(f);
    nblocks = colo_stream_get_be32(f);
    if ((ret = colo_stream_error(f)) != 0)
        return ret;
    if (n == 0 || n > CRDMA_MAX_CHUNKS || nblocks != layout->nblocks)
        return colo_err(COLO_E_PROTOCOL,
                        "rdma: cache layout of %" PRIu32 " chunks and %" PRIu32
                        " blocks: expected 1..%d chunks and %" PRIu32 " blocks",
                        n, nblocks, CRDMA_MAX_CHUNKS, layout->nblocks);
    for (uint32_t i = 0; i < n; i++) {
        ret = colo_stream_get_buffer(f, wire, sizeof(wire));
        if (ret)
            return ret;
        if (colo_get_be32(wire + 20))
            return colo_err(COLO_E_PROTOCOL, "rdma: the secondary's cache chunk %" PRIu32
                            ": reserved field is %" PRIu32 ", expected 0", i,
                            colo_get_be32(wire + 20));
        c->mr.remote[i] = (struct crdma_chunk){.addr = colo_get_be64(wire),
                                           .len = colo_get_be64(wire + 8),
                                           .key = colo_get_be32(wire + 16)};
    }
    c->mr.nremote = n;
    for (uint32_t b = 0; b < nblocks; b++)
        c->mr.remote_block[b] = colo_stream_get_be64(f);
    ret = colo_stream_error(f);
    return ret ? ret : check_remote(c, layout);
}

void crdma_mr_release(struct crdma_conn *c)
{
    for (uint32_t i = 0; i < c->mr.nmrs; i++)
        colo_verbs->dereg_mr(c->mr.mrs[i]);
    c->mr.nmrs = 0;
}

const struct crdma_chunk *crdma_mr_local_chunk(const struct crdma_conn *c, uint64_t addr)
{
    return crdma_find_chunk(c->mr.local, c->mr.nlocal, addr);
}

const struct crdma_chunk *crdma_mr_remote_chunk(const struct crdma_conn *c, uint64_t addr)
{
    return crdma_find_chunk(c->mr.remote, c->mr.nremote, addr);
}

uint64_t crdma_mr_remote_block(const struct crdma_conn *c, uint32_t block)
{
    return c->mr.remote_block[block];
}
