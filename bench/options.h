/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Command-line options of colo-rdma-bench. */
#ifndef COLO_BENCH_OPTIONS_H
#define COLO_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct bench_options {
    bool listen;
    bool loopback;
    bool verify;
    bool per_checkpoint;
    char *host;
    uint16_t port;
    char transport[8];
    uint64_t ram_bytes;
    uint32_t blocks;
    uint64_t dirty_pages;
    uint64_t checkpoints;
    uint64_t warmup;
    uint64_t seed;
    uint32_t timeout_ms;
    char *cache_path;
    bool cache_is_temp; /* chosen by us: removed at exit */
};

/* 0 to run, 1 after --help, -1 on a bad option (message on err). */
int bench_options_parse(struct bench_options *o, int argc, char **argv, FILE *err);
void bench_options_free(struct bench_options *o);
/* "64M", "1G", "4096" -> bytes; -1 on a malformed size. */
int bench_parse_size(const char *s, uint64_t *out);

#endif
