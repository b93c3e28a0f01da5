/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "cache/cache_map.h"
#include "cache/ram_cache.h"

struct colo_ram_cache {
    int fd;
    struct colo_cache_map *map;
    const struct colo_ram_layout *layout;
    size_t size;
    const char *kind;
    bool fsdax;
    size_t offset[COLO_RAM_BLOCKS_MAX];
};

/*
 * The files this process made its RAM cache (created, or taken over), by
 * device and inode: a later listener of the same process may reopen them
 * without the overwrite option. The oldest is forgotten past the last slot.
 */
static struct {
    dev_t dev;
    ino_t ino;
} ours[64];
static size_t ours_next;
static pthread_mutex_t ours_lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_ours(const struct stat *st)
{
    bool found = false;

    pthread_mutex_lock(&ours_lock);
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]) && !found; i++)
        found = ours[i].ino && ours[i].dev == st->st_dev && ours[i].ino == st->st_ino;
    pthread_mutex_unlock(&ours_lock);
    return found;
}

static void make_ours(int fd)
{
    struct stat st;

    if (fstat(fd, &st))
        return;
    if (is_ours(&st))
        return;
    pthread_mutex_lock(&ours_lock);
    ours[ours_next].dev = st.st_dev;
    ours[ours_next].ino = st.st_ino;
    ours_next = (ours_next + 1) % (sizeof(ours) / sizeof(ours[0]));
    pthread_mutex_unlock(&ours_lock);
}

/*
 * An existing plain file with data in it is somebody's: unless this process
 * made it its cache before, or the caller allowed overwriting, it is refused
 * before a byte of it changes. An empty one holds nothing to lose.
 */
static int check_existing(const char *path, const struct stat *st, unsigned flags)
{
    if (st->st_size == 0 || is_ours(st))
        return 0;
    if (!(flags & COLO_CACHE_OVERWRITE))
        return colo_err(COLO_E_CACHE,
                        "RAM cache %s: the file exists and holds %lld bytes this process did "
                        "not write: not overwriting it (remove it, choose another path, or "
                        "allow it with colo_config_set_cache_overwrite())",
                        path, (long long)st->st_size);
    colo_log(COLO_LOG_INFO, "RAM cache %s: overwriting an existing file of %lld bytes "
             "(colo_config_set_cache_overwrite)", path, (long long)st->st_size);
    return 0;
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

/* A file on an fs-DAX mount maps fine but cannot be pinned for RDMA. */
static bool file_is_fsdax(int fd)
{
#ifdef STATX_ATTR_DAX
    struct statx stx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0)
        return (stx.stx_attributes_mask & STATX_ATTR_DAX) && (stx.stx_attributes & STATX_ATTR_DAX);
#endif
    return false;
}

/* Makes every byte of [0, need) allocated, so a store into the mapping can
 * never hit a full disk (SIGBUS); restores the file on failure. */
static int reserve_file(int fd, const char *path, size_t need, off_t orig_size, bool created)
{
    int err = posix_fallocate(fd, 0, (off_t)need);

    if (!err)
        return 0;
    if (created)
        unlink(path);
    else if ((size_t)orig_size < need && ftruncate(fd, orig_size))
        err = errno;
    if (err == ENOSPC || err == EFBIG || err == EDQUOT)
        return colo_err(COLO_E_CACHE,
                        "RAM cache %s: no room for %zu bytes (%s): free space on its file "
                        "system or choose another path",
                        path, need, strerror(err));
    return colo_err(COLO_E_CACHE, "RAM cache %s: cannot allocate %zu bytes: %s", path, need,
                    strerror(err));
}

int colo_ram_cache_open(const char *path, const struct colo_ram_layout *layout, unsigned flags,
                        struct colo_ram_cache **out)
{
    struct colo_ram_cache *c;
    struct stat st;
    bool created = false;
    size_t align, need = 0, have;
    int ret;

    if (!path || !path[0])
        return colo_err(COLO_E_CONFIG, "RAM cache: no path: expected a file or /dev/daxX.Y");
    c = calloc(1, sizeof(*c));
    if (!c)
        return colo_err(-ENOMEM, "RAM cache: out of memory");
    c->layout = layout;
    c->fd = open(path, O_RDWR | O_CLOEXEC);
    if (c->fd < 0 && errno == ENOENT) {
        c->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        created = c->fd >= 0;
    }
    if (c->fd < 0) {
        ret = colo_err(COLO_E_CACHE, "RAM cache %s: cannot open for writing: %s", path,
                       strerror(errno));
        goto out_free;
    }
    if (fstat(c->fd, &st)) {
        ret = colo_err(COLO_E_CACHE, "RAM cache %s: stat: %s", path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        ret = colo_err(COLO_E_CACHE,
                       "RAM cache %s: not a plain file or a device-DAX device (/dev/daxX.Y)",
                       path);
        goto out_close;
    }
    ret = colo_cache_map_source_alignment(c->fd, &align);
    if (ret)
        goto out_close;
    if (align < layout->page_size)
        align = layout->page_size;
    for (uint32_t i = 0; i < layout->nblocks; i++) {
        c->offset[i] = need;
        need = align_up(need + layout->blocks[i].length, align);
    }
    if (S_ISREG(st.st_mode)) {
        c->kind = "file";
        ret = created ? 0 : check_existing(path, &st, flags);
        if (ret)
            goto out_close;
        ret = reserve_file(c->fd, path, need, st.st_size, created);
        if (ret) {
            created = false; /* reserve_file removed it */
            goto out_close;
        }
        c->fsdax = file_is_fsdax(c->fd);
        if (c->fsdax)
            c->kind = "fsdax-file";
    } else {
        c->kind = "devdax";
        ret = colo_cache_map_source_size(c->fd, &have);
        if (ret)
            goto out_close;
        if (have < need) {
            ret = colo_err(COLO_E_CACHE,
                           "RAM cache %s: device holds %zu bytes, the RAM layout needs %zu", path,
                           have, need);
            goto out_close;
        }
    }
    c->size = need;
    ret = colo_cache_map_new(c->fd, need, &c->map);
    if (ret)
        goto out_close;
    if (S_ISREG(st.st_mode))
        make_ours(c->fd);
    *out = c;
    return 0;

out_close:
    close(c->fd);
    if (created)
        unlink(path);
out_free:
    free(c);
    return ret;
}

void colo_ram_cache_close(struct colo_ram_cache **cp)
{
    struct colo_ram_cache *c = cp ? *cp : NULL;

    if (!c)
        return;
    colo_cache_map_delete(&c->map);
    close(c->fd);
    free(c);
    *cp = NULL;
}

uint8_t *colo_ram_cache_block(const struct colo_ram_cache *c, uint32_t block)
{
    return (uint8_t *)colo_cache_map_addr(c->map) + c->offset[block];
}

const char *colo_ram_cache_kind(const struct colo_ram_cache *c)
{
    return c->kind;
}

bool colo_ram_cache_is_fsdax(const struct colo_ram_cache *c)
{
    return c->fsdax;
}

size_t colo_ram_cache_size(const struct colo_ram_cache *c)
{
    return c->size;
}

int colo_ram_cache_persist(struct colo_ram_cache *c, const struct colo_dirty_run *runs, size_t n)
{
    uint32_t ps = c->layout->page_size;

    for (size_t i = 0; i < n; i++) {
        int ret = colo_cache_map_persist(c->map,
                                         colo_ram_cache_block(c, runs[i].block) +
                                             runs[i].first_page * ps,
                                         runs[i].page_count * ps);
        if (ret)
            return ret;
    }
    return 0;
}

void colo_ram_cache_apply(const struct colo_ram_cache *c, const struct colo_dirty_run *runs,
                          size_t n)
{
    uint32_t ps = c->layout->page_size;

    for (size_t i = 0; i < n; i++) {
        size_t off = runs[i].first_page * ps;

        memcpy((uint8_t *)c->layout->blocks[runs[i].block].host + off,
               colo_ram_cache_block(c, runs[i].block) + off, runs[i].page_count * ps);
    }
}
