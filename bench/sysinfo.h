/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the machine offers: memory limits, kernel, what a cache path is. */
#ifndef COLO_BENCH_SYSINFO_H
#define COLO_BENCH_SYSINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_meminfo {
    uint64_t available;     /* MemAvailable, bytes; 0 if unknown */
    uint64_t memlock;       /* RLIMIT_MEMLOCK soft limit, UINT64_MAX = unlimited */
    bool ipc_lock;          /* CAP_IPC_LOCK: the memlock limit does not apply */
    uint64_t huge_free;     /* HugePages_Free */
    uint64_t huge_size;     /* Hugepagesize, bytes */
};

void bench_meminfo_read(struct bench_meminfo *m);
/*
 * Checks that need bytes of memory fit: needed against MemAvailable and,
 * when rdma is set, ram against the memlock limit (registered memory is
 * pinned). 0, or -1 with the problem and its fix in msg.
 */
int bench_check_memory(const struct bench_meminfo *m, uint64_t needed, uint64_t ram, bool rdma,
                       char *msg, size_t len);
/*
 * True when a library error means the transport cannot run on this machine
 * (not built in, no device, no kernel support) rather than a failure of it.
 */
bool bench_transport_unavailable(int err);
/* VmLck and VmPin of this process (KiB, /proc/self/status; 0 if unknown):
 * registered memory is pinned (VmPin). */
void bench_locked_kib(uint64_t *locked, uint64_t *pinned);
/* "Linux 6.1.0-18-amd64 x86_64" */
void bench_kernel(char *buf, size_t len);
/* "device-DAX", "file on tmpfs", "file on ext4 (0x...)": what a cache path is. */
void bench_cache_kind(const char *path, char *buf, size_t len);

#endif
