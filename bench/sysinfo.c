/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/sysinfo.h"

bool bench_transport_unavailable(int err)
{
    return err == COLO_E_NO_BACKEND || err == -ENODEV || err == -ENXIO || err == -ENOSYS ||
           err == -EAFNOSUPPORT || err == -EPROTONOSUPPORT || err == -EOPNOTSUPP;
}

void bench_meminfo_read(struct bench_meminfo *m)
{
    struct rlimit rl;
    char line[256];
    FILE *f;

    *m = (struct bench_meminfo){.memlock = UINT64_MAX, .huge_size = 2u << 20};
    if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY)
        m->memlock = rl.rlim_cur;
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        uint64_t v;

        if (sscanf(line, "MemAvailable: %" SCNu64, &v) == 1)
            m->available = v << 10;
        else if (sscanf(line, "HugePages_Free: %" SCNu64, &v) == 1)
            m->huge_free = v;
        else if (sscanf(line, "Hugepagesize: %" SCNu64, &v) == 1)
            m->huge_size = v << 10;
    }
    if (f)
        fclose(f);
    f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f)) {
        uint64_t caps;

        if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
            m->ipc_lock = caps & (1ull << 14); /* CAP_IPC_LOCK */
    }
    if (f)
        fclose(f);
}

int bench_check_memory(const struct bench_meminfo *m, uint64_t needed, uint64_t ram, bool rdma,
                       char *msg, size_t len)
{
    if (m->available && needed > m->available) {
        snprintf(msg, len, "the run needs %" PRIu64 " MiB of memory but MemAvailable is %" PRIu64
                 " MiB: use a smaller --ram", needed >> 20, m->available >> 20);
        return -1;
    }
    if (rdma && !m->ipc_lock && ram > m->memlock) {
        snprintf(msg, len, "rdma registers (pins) the %" PRIu64 " MiB of guest RAM but "
                 "RLIMIT_MEMLOCK is %" PRIu64 " KiB: raise it (ulimit -l unlimited, or memlock "
                 "in /etc/security/limits.conf) or use a smaller --ram", ram >> 20,
                 m->memlock >> 10);
        return -1;
    }
    return 0;
}

void bench_locked_kib(uint64_t *locked, uint64_t *pinned)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];

    *locked = *pinned = 0;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "VmLck: %" SCNu64, locked);
        sscanf(line, "VmPin: %" SCNu64, pinned);
    }
    fclose(f);
}

void bench_kernel(char *buf, size_t len)
{
    struct utsname u;

    if (uname(&u))
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "%s %s %s", u.sysname, u.release, u.machine);
}

void bench_cache_kind(const char *path, char *buf, size_t len)
{
    struct statfs fs;
    struct stat st;

    if (!stat(path, &st) && S_ISCHR(st.st_mode)) {
        snprintf(buf, len, "device-DAX");
        return;
    }
    if (statfs(path, &fs)) {
        snprintf(buf, len, "file");
        return;
    }
    switch ((unsigned long)fs.f_type) {
    case 0x01021994: snprintf(buf, len, "file on tmpfs"); break;
    case 0xef53: snprintf(buf, len, "file on ext4"); break;
    case 0x58465342: snprintf(buf, len, "file on xfs"); break;
    case 0x9123683e: snprintf(buf, len, "file on btrfs"); break;
    case 0x794c7630: snprintf(buf, len, "file on overlayfs"); break;
    default: snprintf(buf, len, "file (fs 0x%lx)", (unsigned long)fs.f_type); break;
    }
}
