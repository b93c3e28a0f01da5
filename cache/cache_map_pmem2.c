/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <libpmem2.h>
#include <stdlib.h>

#include "common/error.h"
#include "cache/cache_map.h"

struct colo_cache_map {
    struct pmem2_map *map;
    pmem2_persist_fn persist;
};

/* libpmem2 returns its own negative codes; they are errno values for system errors. */
static int pmem2_fail(int ret, const char *what)
{
    return colo_err(COLO_E_CACHE, "RAM cache: %s: %s", what, pmem2_errormsg());
}

int colo_cache_map_source_size(int fd, size_t *size)
{
    struct pmem2_source *src;
    int ret = pmem2_source_from_fd(&src, fd);

    if (ret)
        return pmem2_fail(ret, "source");
    ret = pmem2_source_size(src, size);
    pmem2_source_delete(&src);
    return ret ? pmem2_fail(ret, "source size") : 0;
}

int colo_cache_map_source_alignment(int fd, size_t *align)
{
    struct pmem2_source *src;
    int ret = pmem2_source_from_fd(&src, fd);

    if (ret)
        return pmem2_fail(ret, "source");
    ret = pmem2_source_alignment(src, align);
    pmem2_source_delete(&src);
    return ret ? pmem2_fail(ret, "source alignment") : 0;
}

int colo_cache_map_new(int fd, size_t size, struct colo_cache_map **out)
{
    struct pmem2_source *src = NULL;
    struct pmem2_config *cfg = NULL;
    struct colo_cache_map *m;
    int ret;

    m = calloc(1, sizeof(*m));
    if (!m)
        return colo_err(-ENOMEM, "RAM cache: out of memory");
    ret = pmem2_source_from_fd(&src, fd);
    if (ret) {
        ret = pmem2_fail(ret, "source");
        goto out_free;
    }
    ret = pmem2_config_new(&cfg);
    if (ret) {
        ret = pmem2_fail(ret, "config");
        goto out_delete_source;
    }
    /* Page granularity is the weakest we accept: msync makes a plain file durable. */
    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
    pmem2_config_set_length(cfg, size);
    ret = pmem2_map_new(&m->map, cfg, src);
    if (ret) {
        ret = pmem2_fail(ret, "map");
        goto out_delete_config;
    }
    m->persist = pmem2_get_persist_fn(m->map);
    pmem2_config_delete(&cfg);
    pmem2_source_delete(&src);
    *out = m;
    return 0;

out_delete_config:
    pmem2_config_delete(&cfg);
out_delete_source:
    pmem2_source_delete(&src);
out_free:
    free(m);
    return ret;
}

void colo_cache_map_delete(struct colo_cache_map **mp)
{
    struct colo_cache_map *m = mp ? *mp : NULL;

    if (!m)
        return;
    if (m->map)
        pmem2_map_delete(&m->map);
    free(m);
    *mp = NULL;
}

void *colo_cache_map_addr(const struct colo_cache_map *m)
{
    return pmem2_map_get_address(m->map);
}

int colo_cache_map_persist(struct colo_cache_map *m, void *addr, size_t len)
{
    /* The persist function cannot fail: it flushes caches or msyncs (and
     * aborts inside libpmem2 only on a programming error). */
    m->persist(addr, len);
    return 0;
}
