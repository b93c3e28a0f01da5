/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Command-line options of colo-rdma-bench. */
#ifndef COLO_BENCH_OPTIONS_H
#define COLO_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The bench control connection's default port (perftest uses 18515). */
#define BENCH_CONTROL_PORT 18516
#define BENCH_MAX_DIRTY_SIZES 32
#define BENCH_MAX_TRANSPORTS 2

enum bench_workload_kind {
    BENCH_WL_IDLE,
    BENCH_WL_UNIFORM,
    BENCH_WL_HOTSET,
    BENCH_WL_STREAM,
    BENCH_WL_REPLAY,
};

enum bench_tracking {
    BENCH_TRACK_WORKLOAD, /* the workload lists the pages it wrote */
    BENCH_TRACK_SOFTDIRTY, /* the kernel's soft-dirty bits (/proc/self/pagemap) */
};

struct bench_options {
    bool listen;
    bool loopback;
    bool verify;
    bool per_checkpoint;
    bool hugepages;
    bool early_resume;
    bool pipelined;     /* the library's pipelined exchange (default on) */
    uint32_t protocol_version; /* the highest the primary offers (default 2) */
    bool busy_poll;
    uint32_t heartbeat_ms;
    bool samples;
    bool no_ceilings;       /* skip ib_write_bw, the pumps and the latency figures */
    uint32_t ceiling_duration; /* ib_write_bw -D seconds (>= 3) */
    char *host;
    uint16_t port;      /* bench control connection */
    uint16_t data_port; /* the library session on the secondary; 0 = ephemeral */
    const char *transports[BENCH_MAX_TRANSPORTS];
    unsigned ntransports;
    bool transport_all; /* rdma rows may be unavailable without failing the run */
    uint64_t ram_bytes;
    uint32_t blocks;
    uint32_t page_size;
    uint64_t vmstate_bytes;
    uint64_t dirty[BENCH_MAX_DIRTY_SIZES];
    unsigned ndirty;
    uint64_t checkpoints;
    uint64_t warmup;
    uint64_t seed;
    uint32_t timeout_ms;
    uint32_t interval_ms; /* 0: back-to-back */
    bool running_guest;   /* dirty pages spread over the interval, not all at once */
    uint32_t background_ms; /* running guest: push what is dirty every MS ms (0: off) */
    unsigned nbackground;   /* push variants per transport: 2 (off, then every MS) with
                               --transport all and --background-push, else 1 */
    enum bench_workload_kind workload;
    char *replay_path;
    enum bench_tracking tracking;
    uint8_t *auth_key; /* --auth-key-file, or a random one (loopback --integrity) */
    size_t auth_key_len;
    bool integrity;    /* primary: integrity digests, the secondary told */
    char *cache_path; /* secondary only; NULL: a file in /dev/shm */
    bool cache_overwrite; /* secondary only: take over an existing --cache file */
    char *json_path;
    char *csv_path;
    char *plot_path;
};

/*
 * Parses argv into o (which needs bench_options_free afterwards in every
 * case). Returns 0 to run, 1 after --help (printed on out), -1 on a bad
 * option (message, with the fix, on err). Checks only the command line; see
 * bench_check_memory() for the machine.
 */
int bench_options_parse(struct bench_options *o, int argc, char **argv, FILE *out, FILE *err);
void bench_options_free(struct bench_options *o);
/* "64M", "1G", "4096" -> bytes; -1 on a malformed size. */
int bench_parse_size(const char *s, uint64_t *out);
/* "256,1024,4K" -> up to max page counts; -1 on a malformed list. */
int bench_parse_list(const char *s, uint64_t *v, unsigned max, unsigned *n);
const char *bench_workload_name(enum bench_workload_kind k);
/* The names of the workloads, for the header and the errors. */
int bench_workload_from_name(const char *name, enum bench_workload_kind *k);

#endif
