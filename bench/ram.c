/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "bench/ram.h"
#include "bench/sysinfo.h"

int bench_ram_alloc(uint64_t bytes, bool huge, uint8_t **out, char *err, size_t errlen)
{
    struct bench_meminfo m;
    void *p;

    bench_meminfo_read(&m);
    if (huge && bytes % m.huge_size) {
        snprintf(err, errlen, "--hugepages: --ram %" PRIu64 " is not a multiple of the huge "
                 "page size %" PRIu64 " KiB: round --ram", bytes, m.huge_size >> 10);
        return -1;
    }
    if (bytes > SIZE_MAX) {
        snprintf(err, errlen, "--ram %" PRIu64 " does not fit the address space", bytes);
        return -1;
    }
    p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (huge ? MAP_HUGETLB : 0), -1, 0);
    if (p == MAP_FAILED && huge) {
        uint64_t need = bytes / m.huge_size;

        snprintf(err, errlen, "--hugepages: cannot map %" PRIu64 " huge pages of %" PRIu64
                 " KiB (%s); %" PRIu64 " are free: reserve them with 'echo %" PRIu64
                 " > /proc/sys/vm/nr_hugepages' as root, or drop --hugepages",
                 need, m.huge_size >> 10, strerror(errno), m.huge_free, need);
        return -1;
    }
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %" PRIu64 " MiB of guest RAM: %s: use a smaller --ram",
                 bytes >> 20, strerror(errno));
        return -1;
    }
    *out = p;
    return 0;
}

void bench_ram_free(uint8_t **ram, uint64_t bytes)
{
    if (*ram)
        munmap(*ram, (size_t)bytes);
    *ram = NULL;
}
