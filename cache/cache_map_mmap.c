/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fallback without libpmem2: a shared mapping made durable with msync. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "cache/cache_map.h"

struct colo_cache_map {
    void *addr;
    size_t size;
};

int colo_cache_map_source_size(int fd, size_t *size)
{
    struct stat st;

    if (fstat(fd, &st))
        return colo_err(-errno, "RAM cache: stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return colo_err(COLO_E_CACHE,
                        "RAM cache: devices need libpmem2: rebuild with -Dpmem=enabled");
    *size = (size_t)st.st_size;
    return 0;
}

int colo_cache_map_source_alignment(int fd, size_t *align)
{
    *align = (size_t)sysconf(_SC_PAGESIZE);
    return 0;
}

int colo_cache_map_new(int fd, size_t size, struct colo_cache_map **out)
{
    struct colo_cache_map *m = calloc(1, sizeof(*m));

    if (!m)
        return colo_err(-ENOMEM, "RAM cache: out of memory");
    m->addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m->addr == MAP_FAILED) {
        int err = errno;

        free(m);
        return colo_err(-err, "RAM cache: mmap of %zu bytes: %s", size, strerror(err));
    }
    m->size = size;
    *out = m;
    return 0;
}

void colo_cache_map_delete(struct colo_cache_map **mp)
{
    struct colo_cache_map *m = mp ? *mp : NULL;

    if (!m)
        return;
    munmap(m->addr, m->size);
    free(m);
    *mp = NULL;
}

void *colo_cache_map_addr(const struct colo_cache_map *m)
{
    return m->addr;
}

int colo_cache_map_persist(struct colo_cache_map *m, void *addr, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~(page - 1);

    if (msync((void *)start, len + ((uintptr_t)addr - start), MS_SYNC))
        return colo_err(-errno, "RAM cache: msync: %s", strerror(errno));
    return 0;
}
