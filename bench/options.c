/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/options.h"

#define PAGE_SIZE 4096u

static const char usage[] =
    "Usage: colo-rdma-bench [options] HOST     run the primary against a secondary on HOST\n"
    "       colo-rdma-bench --listen [options] run the secondary\n"
    "       colo-rdma-bench --loopback [options] run both on this machine (two processes)\n"
    "\n"
    "  -t, --transport NAME   tcp (default) or rdma\n"
    "  -p, --port N           TCP port (default 9090; 0 with --listen picks one)\n"
    "  -r, --ram SIZE         guest RAM, e.g. 64M, 1G (default 64M)\n"
    "  -b, --blocks N         RAM blocks the RAM is split into (default 4)\n"
    "  -d, --dirty N          pages dirtied between checkpoints (default 1024)\n"
    "  -n, --checkpoints N    timed checkpoints (default 100)\n"
    "  -w, --warmup N         untimed checkpoints first (default 2; the first sends all RAM)\n"
    "  -c, --cache PATH       secondary's RAM cache: a file or /dev/daxX.Y\n"
    "                         (default: a file in /dev/shm, removed at exit)\n"
    "  -s, --seed N           workload seed (default 1)\n"
    "  -T, --timeout MS       timeout for connect and every wait (default 30000)\n"
    "  -V, --verify           compare the cache with the primary's RAM after each checkpoint\n"
    "                         (--loopback only)\n"
    "  -v, --per-checkpoint   print one line per checkpoint\n"
    "  -h, --help             this text\n"
    "\n"
    "Times are in microseconds: request = request->reply round trip, pages = page push,\n"
    "state = dirty list + device state, received/loaded = waits for the secondary.\n";

int bench_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int bad(FILE *err, const char *opt, const char *val, const char *expected)
{
    fprintf(err, "colo-rdma-bench: invalid %s '%s': expected %s\n", opt, val ? val : "",
            expected);
    return -1;
}

int bench_options_parse(struct bench_options *o, int argc, char **argv, FILE *err)
{
    static const struct option longopts[] = {
        {"listen", no_argument, NULL, 'l'},     {"loopback", no_argument, NULL, 'L'},
        {"transport", required_argument, NULL, 't'}, {"port", required_argument, NULL, 'p'},
        {"ram", required_argument, NULL, 'r'},  {"blocks", required_argument, NULL, 'b'},
        {"dirty", required_argument, NULL, 'd'}, {"checkpoints", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'}, {"cache", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'}, {"timeout", required_argument, NULL, 'T'},
        {"verify", no_argument, NULL, 'V'},     {"per-checkpoint", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int c;

    *o = (struct bench_options){
        .port = 9090, .ram_bytes = 64ull << 20, .blocks = 4, .dirty_pages = 1024,
        .checkpoints = 100, .warmup = 2, .seed = 1, .timeout_ms = 30000,
    };
    strcpy(o->transport, "tcp");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":lLt:p:r:b:d:n:w:c:s:T:Vvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = true; break;
        case 'L': o->loopback = true; break;
        case 'V': o->verify = true; break;
        case 'v': o->per_checkpoint = true; break;
        case 'h': fputs(usage, stdout); return 1;
        case 't':
            if (strcmp(optarg, "tcp") && strcmp(optarg, "rdma"))
                return bad(err, "--transport", optarg, "tcp or rdma");
            strcpy(o->transport, optarg);
            break;
        case 'p':
            if (parse_u64(optarg, 65535, &v))
                return bad(err, "--port", optarg, "a port number 0..65535");
            o->port = (uint16_t)v;
            break;
        case 'r':
            if (bench_parse_size(optarg, &o->ram_bytes) || o->ram_bytes == 0)
                return bad(err, "--ram", optarg, "a size such as 64M or 1G");
            break;
        case 'b':
            if (parse_u64(optarg, 256, &v) || v == 0)
                return bad(err, "--blocks", optarg, "1..256");
            o->blocks = (uint32_t)v;
            break;
        case 'd':
            if (parse_u64(optarg, UINT64_MAX, &o->dirty_pages))
                return bad(err, "--dirty", optarg, "a page count");
            break;
        case 'n':
            if (parse_u64(optarg, 100000000, &o->checkpoints) || !o->checkpoints)
                return bad(err, "--checkpoints", optarg, "1..100000000");
            break;
        case 'w':
            if (parse_u64(optarg, 1000000, &o->warmup))
                return bad(err, "--warmup", optarg, "0..1000000");
            break;
        case 'c':
            free(o->cache_path);
            o->cache_path = strdup(optarg);
            break;
        case 's':
            if (parse_u64(optarg, UINT64_MAX, &o->seed))
                return bad(err, "--seed", optarg, "an unsigned number");
            break;
        case 'T':
            if (parse_u64(optarg, 86400000, &v) || !v)
                return bad(err, "--timeout", optarg, "milliseconds, 1..86400000");
            o->timeout_ms = (uint32_t)v;
            break;
        case ':':
            fprintf(err, "colo-rdma-bench: option %s needs a value (see --help)\n",
                    argv[optind - 1]);
            return -1;
        default:
            fprintf(err, "colo-rdma-bench: unknown option %s (see --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc)
        o->host = strdup(argv[optind++]);
    if (optind < argc) {
        fprintf(err, "colo-rdma-bench: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (o->listen + o->loopback + !!o->host != 1) {
        fprintf(err, "colo-rdma-bench: give exactly one of HOST, --listen or --loopback "
                "(see --help)\n");
        return -1;
    }
    if (o->ram_bytes % ((uint64_t)o->blocks * PAGE_SIZE))
        return bad(err, "--ram", "", "a multiple of blocks x 4096 bytes");
    if (o->dirty_pages > o->ram_bytes / PAGE_SIZE) {
        fprintf(err, "colo-rdma-bench: --dirty %" PRIu64 " exceeds the %" PRIu64
                " pages of --ram\n", o->dirty_pages, o->ram_bytes / PAGE_SIZE);
        return -1;
    }
    if (o->verify && !o->loopback) {
        fprintf(err, "colo-rdma-bench: --verify needs --loopback (it reads the cache file)\n");
        return -1;
    }
    if (o->loopback)
        o->host = strdup("127.0.0.1");
    if (!o->cache_path && (o->listen || o->loopback)) {
        /* tmpfs by default: the bench measures the transport, not a disk's msync. */
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        size_t len = strlen(dir) + 64;

        o->cache_path = malloc(len);
        if (o->cache_path)
            snprintf(o->cache_path, len, "%s/colo-rdma-cache.%ld", dir, (long)getpid());
        o->cache_is_temp = true;
    }
    if (o->loopback && o->port == 9090)
        o->port = 0;
    return 0;
}

void bench_options_free(struct bench_options *o)
{
    if (o->cache_is_temp && o->cache_path)
        unlink(o->cache_path);
    free(o->host);
    free(o->cache_path);
    o->host = o->cache_path = NULL;
}
