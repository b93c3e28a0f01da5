/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/softdirty.h"

#define PM_SOFT_DIRTY (1ull << 55)

int bench_softdirty_clear(struct bench_softdirty *sd)
{
    return pwrite(sd->clear_fd, "4", 1, 0) == 1 ? 0 : -1;
}

static int read_entries(struct bench_softdirty *sd, const void *addr, size_t n, uint64_t *out)
{
    off_t off = (off_t)((uintptr_t)addr / (uintptr_t)sysconf(_SC_PAGESIZE) * sizeof(*out));
    size_t want = n * sizeof(*out), got = 0;

    while (got < want) {
        ssize_t r = pread(sd->pagemap_fd, (char *)out + got, want - got, off + (off_t)got);

        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Writes a fresh page after a clear and expects its bit set: the only reliable test. */
static int probe(struct bench_softdirty *sd, char *err, size_t errlen)
{
    long psz = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t e = 0;
    struct utsname u;
    int ok;

    if (p == MAP_FAILED) {
        snprintf(err, errlen, "soft-dirty probe: mmap: %s", strerror(errno));
        return -1;
    }
    p[0] = 1;
    ok = !bench_softdirty_clear(sd);
    p[0] = 2;
    ok = ok && !read_entries(sd, (const void *)p, 1, &e) && (e & PM_SOFT_DIRTY);
    munmap((void *)p, (size_t)psz);
    if (!ok) {
        uname(&u);
        snprintf(err, errlen, "--dirty-tracking softdirty is unavailable: kernel %s does not "
                 "set soft-dirty bits (built without CONFIG_MEM_SOFT_DIRTY?): use "
                 "--dirty-tracking workload", u.release);
        return -1;
    }
    return 0;
}

int bench_softdirty_open(struct bench_softdirty *sd, uint64_t ram_bytes, char *err,
                         size_t errlen)
{
    *sd = (struct bench_softdirty){.pagemap_fd = -1, .clear_fd = -1};
    sd->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    sd->clear_fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (sd->pagemap_fd < 0 || sd->clear_fd < 0) {
        snprintf(err, errlen, "--dirty-tracking softdirty: cannot open /proc/self/%s: %s: use "
                 "--dirty-tracking workload", sd->pagemap_fd < 0 ? "pagemap" : "clear_refs",
                 strerror(errno));
        bench_softdirty_close(sd);
        return -1;
    }
    sd->nentries = (size_t)(ram_bytes / (uint64_t)sysconf(_SC_PAGESIZE));
    sd->entries = calloc(sd->nentries ? sd->nentries : 1, sizeof(*sd->entries));
    if (!sd->entries) {
        snprintf(err, errlen, "--dirty-tracking softdirty: out of memory");
        bench_softdirty_close(sd);
        return -1;
    }
    if (probe(sd, err, errlen)) {
        bench_softdirty_close(sd);
        return -1;
    }
    return 0;
}

void bench_softdirty_close(struct bench_softdirty *sd)
{
    if (sd->pagemap_fd >= 0)
        close(sd->pagemap_fd);
    if (sd->clear_fd >= 0)
        close(sd->clear_fd);
    free(sd->entries);
    *sd = (struct bench_softdirty){.pagemap_fd = -1, .clear_fd = -1};
}

int bench_softdirty_collect(struct bench_softdirty *sd, struct bench_workload *w)
{
    size_t per_page = w->page_size / (size_t)sysconf(_SC_PAGESIZE);

    if (read_entries(sd, w->ram, sd->nentries, sd->entries))
        return -1;
    /* a guest page is dirty when any of its base pages is */
    for (size_t i = 0; i < sd->nentries; i++) {
        uint64_t page = i / per_page;

        if (sd->entries[i] & PM_SOFT_DIRTY)
            w->bitmap[page / 64] |= 1ull << (page % 64);
    }
    bench_workload_list_from_bitmap(w);
    return 0;
}
