/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "bench/options.h"

static const char usage[] =
    "Usage: colo-rdma-bench [options] HOST      run the primary against a secondary on HOST\n"
    "       colo-rdma-bench --listen [options]  run the secondary (serves one primary)\n"
    "       colo-rdma-bench --loopback [options] run both on this machine (two processes)\n"
    "\n"
    "The primary carries its parameters to the secondary over the bench control\n"
    "connection (TCP, --port); the secondary needs only --listen and, if wanted, --cache.\n"
    "\n"
    "Roles and connection:\n"
    "  -l, --listen             run the secondary\n"
    "  -L, --loopback           run primary and secondary here (fork)\n"
    "  -p, --port N             bench control port (default 18516)\n"
    "  -P, --data-port N        secondary: port of the library session (default 0: any\n"
    "                           free port, announced to the primary)\n"
    "  -t, --transport NAME     tcp (default), rdma, or all (each in turn, same checkpoints)\n"
    "  -T, --timeout MS         timeout for connect and every wait (default 30000)\n"
    "Guest RAM and workload:\n"
    "  -r, --ram SIZE           guest RAM, e.g. 64M, 1G (default 64M)\n"
    "      --hugepages          back guest RAM with huge pages (MAP_HUGETLB)\n"
    "  -b, --blocks N           RAM blocks the RAM is split into (default 4)\n"
    "      --page-size SIZE     guest page size (default 4096)\n"
    "      --vmstate SIZE       device state per checkpoint (default 4K)\n"
    "  -W, --workload NAME      idle, uniform (default), hotset, stream, replay\n"
    "      --replay FILE        replay a recorded dirty-page list (implies --workload replay)\n"
    "  -d, --dirty LIST         pages dirtied per checkpoint, e.g. 256,1024,4096 (default 1024)\n"
    "      --dirty-tracking M   workload (default) or softdirty (the kernel's soft-dirty bits)\n"
    "  -s, --seed N             workload seed (default 1)\n"
    "Checkpoints:\n"
    "  -n, --checkpoints N      timed checkpoints per transport and dirty size (default 100)\n"
    "  -w, --warmup N           untimed checkpoints first, >= 1 (default 2; the first sends\n"
    "                           all RAM)\n"
    "  -i, --interval MS        start a checkpoint every MS ms (default 0: back-to-back)\n"
    ;
/* Split in two: ISO C limits a string literal to 4095 characters. */
static const char usage_more[] =
    "      --early-resume       the primary resumes at vmstate-received (default: at -loaded)\n"
    "      --running-guest      the workload writes each interval's pages spread over it\n"
    "                           (in 10 ms slices, or --background-push slices), as a\n"
    "                           running guest does; needs --interval\n"
    "      --background-push MS with --running-guest: push what is dirty every MS ms while\n"
    "                           the guest runs; the checkpoint carries the rest (0: off);\n"
    "                           with --transport all each transport runs without, then with\n"
    "      --pipeline on|off    push pages and state right after the request, reading the\n"
    "                           reply after them (default on), or wait for the reply first\n"
    "      --protocol-version N the highest protocol version the primary offers: 2\n"
    "                           (default) or 1 (as a 0.4 peer: tcp background push waits\n"
    "                           for the checkpoint)\n"
    "      --poll MODE          rdma completions: event (default) or busy (spin a core)\n"
    "      --heartbeat MS       rdma heartbeat interval on both sides (default 1000; the\n"
    "                           peer is lost after 4 silent intervals)\n"
    "  -c, --cache PATH         secondary's RAM cache: a file or /dev/daxX.Y\n"
    "                           (default: a file in /dev/shm, removed at exit)\n"
    "      --cache-overwrite    take over an existing --cache file that holds data\n"
    "      --auth-key-file FILE the shared authentication key (1..1024 bytes), on both sides\n"
    "      --integrity          a keyed digest of every checkpoint, checked by the secondary\n"
    "                           (needs --auth-key-file; --loopback makes a random key)\n"
    "  -V, --verify             check the secondary's guest RAM and cache after every\n"
    "                           checkpoint (hashes over the control connection)\n"
    "Output:\n"
    "  -v, --per-checkpoint     print one line per checkpoint\n"
    "      --json FILE          every figure as JSON\n"
    "      --csv FILE           every figure as CSV (samples go to FILE.samples.csv)\n"
    "      --samples            add the raw per-checkpoint samples to --json/--csv\n"
    "      --plot FILE          latency CDFs and pause vs dirty size (.svg or .png; gnuplot)\n"
    "      --no-ceilings        do not measure the ceilings (ib_write_bw, the raw verbs and\n"
    "                           socket pumps, ib_send_lat, the tcp ping-pong)\n"
    "      --ceiling-duration S ib_write_bw's duration, -D, 3..600 s (default 4; the first\n"
    "                           and last second are not counted)\n"
    "  -h, --help               this text\n"
    "\n"
    "Times are in microseconds: request = request->reply round trip, pages = page push,\n"
    "state = dirty list + device state, received/loaded = waits for the secondary.\n"
    "See colo-rdma-bench(1) for the replay file format.\n";

enum {
    OPT_HUGEPAGES = 256,
    OPT_PAGE_SIZE,
    OPT_VMSTATE,
    OPT_REPLAY,
    OPT_TRACKING,
    OPT_EARLY_RESUME,
    OPT_PIPELINE,
    OPT_PROTOCOL_VERSION,
    OPT_RUNNING_GUEST,
    OPT_BACKGROUND_PUSH,
    OPT_POLL,
    OPT_HEARTBEAT,
    OPT_JSON,
    OPT_CSV,
    OPT_SAMPLES,
    OPT_PLOT,
    OPT_CACHE_OVERWRITE,
    OPT_NO_CEILINGS,
    OPT_CEILING_DURATION,
    OPT_AUTH_KEY_FILE,
    OPT_INTEGRITY,
};

static const char *const workload_names[] = {
    [BENCH_WL_IDLE] = "idle",     [BENCH_WL_UNIFORM] = "uniform", [BENCH_WL_HOTSET] = "hotset",
    [BENCH_WL_STREAM] = "stream", [BENCH_WL_REPLAY] = "replay",
};

const char *bench_workload_name(enum bench_workload_kind k)
{
    return (unsigned)k < sizeof(workload_names) / sizeof(workload_names[0]) ? workload_names[k]
                                                                          : "?";
}

int bench_workload_from_name(const char *name, enum bench_workload_kind *k)
{
    for (unsigned i = 0; i < sizeof(workload_names) / sizeof(workload_names[0]); i++) {
        if (!strcmp(name, workload_names[i])) {
            *k = (enum bench_workload_kind)i;
            return 0;
        }
    }
    return -1;
}

int bench_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
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
    if (shift && *end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int bench_parse_list(const char *s, uint64_t *v, unsigned max, unsigned *n)
{
    char buf[512];
    char *save = NULL, *tok;

    if (!s || !*s || strlen(s) >= sizeof(buf) || s[strlen(s) - 1] == ',')
        return -1;
    strcpy(buf, s);
    *n = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == max || bench_parse_size(tok, &v[*n]))
            return -1;
        ++*n;
    }
    return *n ? 0 : -1;
}

static int bad(FILE *err, const char *opt, const char *val, const char *expected)
{
    fprintf(err, "colo-rdma-bench: invalid %s '%s': expected %s\n", opt, val ? val : "",
            expected);
    return -1;
}

static int set_string(char **dst, const char *src)
{
    free(*dst);
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

static int parse_transport(struct bench_options *o, const char *name, FILE *err)
{
    o->transport_all = false;
    if (!strcmp(name, "all")) {
        /* rdma first: the row that matters, tcp as the baseline after it */
        o->transports[0] = "rdma";
        o->transports[1] = "tcp";
        o->ntransports = 2;
        o->transport_all = true;
    } else if (!strcmp(name, "tcp") || !strcmp(name, "rdma")) {
        o->transports[0] = !strcmp(name, "tcp") ? "tcp" : "rdma";
        o->ntransports = 1;
    } else {
        return bad(err, "--transport", name, "tcp, rdma or all");
    }
    return 0;
}

/* The key is the file's bytes as they are (a trailing newline included). */
static int read_key_file(struct bench_options *o, const char *path, FILE *err)
{
    FILE *f = fopen(path, "rb");
    uint8_t buf[1025];
    size_t n;

    if (!f) {
        fprintf(err, "colo-rdma-bench: --auth-key-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n == 0 || n > 1024)
        return bad(err, "--auth-key-file", path, "a file of 1..1024 bytes");
    free(o->auth_key);
    o->auth_key = malloc(n);
    if (!o->auth_key)
        return -1;
    memcpy(o->auth_key, buf, n);
    o->auth_key_len = n;
    return 0;
}

/* --loopback --integrity without a key file: both processes share a random key. */
static int random_key(struct bench_options *o, FILE *err)
{
    o->auth_key = malloc(32);
    if (!o->auth_key || getrandom(o->auth_key, 32, 0) != 32) {
        fprintf(err, "colo-rdma-bench: --integrity: no random key: %s\n", strerror(errno));
        return -1;
    }
    o->auth_key_len = 32;
    return 0;
}

static bool is_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);

    return n > e && !strcasecmp(path + n - e, ext);
}

/* Checks between options, once all are known. */
static int check_combination(struct bench_options *o, bool dirty_given, FILE *err)
{
    uint64_t pages;

    if (o->listen + o->loopback + !!o->host != 1) {
        fprintf(err, "colo-rdma-bench: give exactly one of HOST, --listen or --loopback "
                     "(see --help)\n");
        return -1;
    }
    if (o->page_size < 4096 || o->page_size > (1u << 30) || (o->page_size & (o->page_size - 1)))
        return bad(err, "--page-size", "", "a power of two from 4096 to 1G");
    if (o->ram_bytes % ((uint64_t)o->blocks * o->page_size)) {
        fprintf(err, "colo-rdma-bench: --ram %" PRIu64 " is not a multiple of %" PRIu32
                     " blocks x %" PRIu32 " bytes per page: round it, e.g. --ram %" PRIu64 "\n",
                o->ram_bytes, o->blocks, o->page_size,
                (o->ram_bytes / ((uint64_t)o->blocks * o->page_size) + 1) * o->blocks *
                    o->page_size);
        return -1;
    }
    if (o->listen && o->integrity) {
        fprintf(err, "colo-rdma-bench: --integrity belongs to the primary, which tells the "
                     "secondary: give the secondary only --auth-key-file FILE\n");
        return -1;
    }
    if (o->listen)
        return 0; /* the rest comes from the primary */
    if (o->integrity && !o->auth_key_len) {
        if (o->loopback && random_key(o, err))
            return -1;
    }
    if (o->integrity && !o->auth_key_len) {
        fprintf(err, "colo-rdma-bench: --integrity needs a shared key: give --auth-key-file "
                     "FILE here and to 'colo-rdma-bench --listen' on the secondary\n");
        return -1;
    }
    if ((o->cache_path || o->cache_overwrite) && o->host) {
        fprintf(err, "colo-rdma-bench: --cache belongs to the secondary: give it to "
                     "'colo-rdma-bench --listen --cache PATH' on the secondary's host\n");
        return -1;
    }
    if (o->workload == BENCH_WL_REPLAY && !o->replay_path) {
        fprintf(err, "colo-rdma-bench: --workload replay needs --replay FILE "
                     "(see colo-rdma-bench(1) for the format)\n");
        return -1;
    }
    if (o->replay_path && o->workload != BENCH_WL_REPLAY) {
        fprintf(err, "colo-rdma-bench: --replay FILE conflicts with --workload %s: drop one\n",
                bench_workload_name(o->workload));
        return -1;
    }
    if (o->workload == BENCH_WL_IDLE || o->workload == BENCH_WL_REPLAY) {
        if (dirty_given) {
            fprintf(err, "colo-rdma-bench: --dirty does not apply to --workload %s (%s): "
                         "drop --dirty\n", bench_workload_name(o->workload),
                    o->workload == BENCH_WL_IDLE ? "it dirties no page"
                                                 : "the file lists the pages");
            return -1;
        }
        o->dirty[0] = 0;
        o->ndirty = 1;
    }
    pages = o->ram_bytes / o->page_size;
    for (unsigned i = 0; i < o->ndirty; i++) {
        if (o->dirty[i] > pages) {
            fprintf(err, "colo-rdma-bench: --dirty %" PRIu64 " exceeds the %" PRIu64
                         " pages of --ram: use a larger --ram or fewer pages\n",
                    o->dirty[i], pages);
            return -1;
        }
    }
    if (o->plot_path && !is_ext(o->plot_path, ".svg") && !is_ext(o->plot_path, ".png"))
        return bad(err, "--plot", o->plot_path, "a file name ending in .svg or .png");
    if (o->samples && !o->json_path && !o->csv_path) {
        fprintf(err, "colo-rdma-bench: --samples needs --json FILE or --csv FILE\n");
        return -1;
    }
    if (o->running_guest && !o->interval_ms) {
        fprintf(err, "colo-rdma-bench: --running-guest needs --interval MS (the time over "
                     "which the guest dirties its pages)\n");
        return -1;
    }
    if (o->running_guest && o->tracking == BENCH_TRACK_SOFTDIRTY) {
        fprintf(err, "colo-rdma-bench: --running-guest takes its pages from the workload: "
                     "drop --dirty-tracking softdirty\n");
        return -1;
    }
    if (o->background_ms && !o->running_guest) {
        fprintf(err, "colo-rdma-bench: --background-push needs --running-guest (pages are "
                     "pushed while the guest runs)\n");
        return -1;
    }
    if (o->background_ms > o->interval_ms) {
        fprintf(err, "colo-rdma-bench: --background-push %" PRIu32 " ms exceeds --interval %"
                     PRIu32 " ms: expected at most the interval\n",
                o->background_ms, o->interval_ms);
        return -1;
    }
    /* --transport all compares: each transport without the push, then with it. */
    o->nbackground = o->background_ms && o->transport_all ? 2 : 1;
    return 0;
}

int bench_options_parse(struct bench_options *o, int argc, char **argv, FILE *out, FILE *err)
{
    static const struct option longopts[] = {
        {"listen", no_argument, NULL, 'l'},
        {"loopback", no_argument, NULL, 'L'},
        {"port", required_argument, NULL, 'p'},
        {"data-port", required_argument, NULL, 'P'},
        {"transport", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"ram", required_argument, NULL, 'r'},
        {"hugepages", no_argument, NULL, OPT_HUGEPAGES},
        {"blocks", required_argument, NULL, 'b'},
        {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
        {"vmstate", required_argument, NULL, OPT_VMSTATE},
        {"workload", required_argument, NULL, 'W'},
        {"replay", required_argument, NULL, OPT_REPLAY},
        {"dirty", required_argument, NULL, 'd'},
        {"dirty-tracking", required_argument, NULL, OPT_TRACKING},
        {"seed", required_argument, NULL, 's'},
        {"checkpoints", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"interval", required_argument, NULL, 'i'},
        {"early-resume", no_argument, NULL, OPT_EARLY_RESUME},
        {"pipeline", required_argument, NULL, OPT_PIPELINE},
        {"protocol-version", required_argument, NULL, OPT_PROTOCOL_VERSION},
        {"running-guest", no_argument, NULL, OPT_RUNNING_GUEST},
        {"background-push", required_argument, NULL, OPT_BACKGROUND_PUSH},
        {"poll", required_argument, NULL, OPT_POLL},
        {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
        {"cache", required_argument, NULL, 'c'},
        {"cache-overwrite", no_argument, NULL, OPT_CACHE_OVERWRITE},
        {"verify", no_argument, NULL, 'V'},
        {"per-checkpoint", no_argument, NULL, 'v'},
        {"json", required_argument, NULL, OPT_JSON},
        {"csv", required_argument, NULL, OPT_CSV},
        {"samples", no_argument, NULL, OPT_SAMPLES},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"no-ceilings", no_argument, NULL, OPT_NO_CEILINGS},
        {"ceiling-duration", required_argument, NULL, OPT_CEILING_DURATION},
        {"auth-key-file", required_argument, NULL, OPT_AUTH_KEY_FILE},
        {"integrity", no_argument, NULL, OPT_INTEGRITY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool dirty_given = false;
    uint64_t v;
    int c;

    *o = (struct bench_options){
        .port = BENCH_CONTROL_PORT, .ram_bytes = 64ull << 20, .blocks = 4, .page_size = 4096,
        .vmstate_bytes = 4096, .heartbeat_ms = 1000, .dirty = {1024}, .ndirty = 1, .checkpoints = 100, .warmup = 2,
        .ceiling_duration = 4,
        .seed = 1, .timeout_ms = 30000, .workload = BENCH_WL_UNIFORM, .pipelined = true,
        .protocol_version = 2,
    };
    parse_transport(o, "tcp", err);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":lLp:P:t:T:r:b:W:d:s:n:w:i:c:Vvh", longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'l': o->listen = true; break;
        case 'L': o->loopback = true; break;
        case 'V': o->verify = true; break;
        case 'v': o->per_checkpoint = true; break;
        case OPT_HUGEPAGES: o->hugepages = true; break;
        case OPT_EARLY_RESUME: o->early_resume = true; break;
        case OPT_SAMPLES: o->samples = true; break;
        case OPT_CACHE_OVERWRITE: o->cache_overwrite = true; break;
        case OPT_NO_CEILINGS: o->no_ceilings = true; break;
        case OPT_INTEGRITY: o->integrity = true; break;
        case OPT_AUTH_KEY_FILE:
            if (read_key_file(o, optarg, err))
                return -1;
            break;
        case 'h': fputs(usage, out); fputs(usage_more, out); return 1;
        case 'p':
        case 'P':
            if (parse_u64(optarg, 65535, &v) || (c == 'p' && !v))
                return bad(err, c == 'p' ? "--port" : "--data-port", optarg,
                           c == 'p' ? "a port number 1..65535" : "a port number 0..65535");
            *(c == 'p' ? &o->port : &o->data_port) = (uint16_t)v;
            break;
        case 't':
            if (parse_transport(o, optarg, err))
                return -1;
            break;
        case 'T':
            if (parse_u64(optarg, 86400000, &v) || !v)
                return bad(err, "--timeout", optarg, "milliseconds, 1..86400000");
            o->timeout_ms = (uint32_t)v;
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
        case OPT_PAGE_SIZE:
            if (bench_parse_size(optarg, &v) || v < 4096 || v > (1u << 30) || (v & (v - 1)))
                return bad(err, "--page-size", optarg, "a power of two from 4096 to 1G");
            o->page_size = (uint32_t)v;
            break;
        case OPT_VMSTATE:
            if (bench_parse_size(optarg, &o->vmstate_bytes) || o->vmstate_bytes > (1ull << 30))
                return bad(err, "--vmstate", optarg, "a size from 0 to 1G");
            break;
        case 'W': {
            const char *name = optarg;

            if (!strncmp(name, "replay:", 7)) {
                if (set_string(&o->replay_path, name + 7))
                    return -1;
                name = "replay";
            }
            if (bench_workload_from_name(name, &o->workload))
                return bad(err, "--workload", optarg,
                           "idle, uniform, hotset, stream or replay (with --replay FILE)");
            break;
        }
        case OPT_REPLAY:
            if (!*optarg || set_string(&o->replay_path, optarg))
                return bad(err, "--replay", optarg, "a file name");
            o->workload = BENCH_WL_REPLAY;
            break;
        case 'd':
            if (bench_parse_list(optarg, o->dirty, BENCH_MAX_DIRTY_SIZES, &o->ndirty))
                return bad(err, "--dirty", optarg,
                           "page counts separated by commas, e.g. 256,1024,4096 (at most 32)");
            dirty_given = true;
            break;
        case OPT_TRACKING:
            if (!strcmp(optarg, "workload"))
                o->tracking = BENCH_TRACK_WORKLOAD;
            else if (!strcmp(optarg, "softdirty"))
                o->tracking = BENCH_TRACK_SOFTDIRTY;
            else
                return bad(err, "--dirty-tracking", optarg, "workload or softdirty");
            break;
        case 's':
            if (parse_u64(optarg, UINT64_MAX, &o->seed))
                return bad(err, "--seed", optarg, "an unsigned number");
            break;
        case 'n':
            if (parse_u64(optarg, 100000000, &o->checkpoints) || !o->checkpoints)
                return bad(err, "--checkpoints", optarg, "1..100000000");
            break;
        case 'w':
            if (parse_u64(optarg, 1000000, &o->warmup) || !o->warmup)
                return bad(err, "--warmup", optarg,
                           "1..1000000 (the first warm-up checkpoint sends all RAM)");
            break;
        case 'i':
            if (parse_u64(optarg, 3600000, &v))
                return bad(err, "--interval", optarg, "milliseconds, 0..3600000");
            o->interval_ms = (uint32_t)v;
            break;
        case OPT_RUNNING_GUEST: o->running_guest = true; break;
        case OPT_BACKGROUND_PUSH:
            if (parse_u64(optarg, 3600000, &v))
                return bad(err, "--background-push", optarg, "milliseconds, 0..3600000");
            o->background_ms = (uint32_t)v;
            break;
        case OPT_PIPELINE:
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                return bad(err, "--pipeline", optarg, "on or off");
            o->pipelined = !strcmp(optarg, "on");
            break;
        case OPT_PROTOCOL_VERSION:
            if (strcmp(optarg, "1") && strcmp(optarg, "2"))
                return bad(err, "--protocol-version", optarg, "1 or 2");
            o->protocol_version = (uint32_t)(optarg[0] - '0');
            break;
        case OPT_POLL:
            if (strcmp(optarg, "event") && strcmp(optarg, "busy"))
                return bad(err, "--poll", optarg, "event or busy");
            o->busy_poll = !strcmp(optarg, "busy");
            break;
        case OPT_CEILING_DURATION:
            if (parse_u64(optarg, 600, &v) || v < 3)
                return bad(err, "--ceiling-duration", optarg,
                           "seconds, 3..600 (perftest wants more than twice its 1 s margin)");
            o->ceiling_duration = (uint32_t)v;
            break;
        case OPT_HEARTBEAT:
            if (parse_u64(optarg, 60000, &v) || v < 10)
                return bad(err, "--heartbeat", optarg, "milliseconds, 10..60000");
            o->heartbeat_ms = (uint32_t)v;
            break;
        case 'c':
            if (!*optarg || set_string(&o->cache_path, optarg))
                return bad(err, "--cache", optarg, "a file or /dev/daxX.Y");
            break;
        case OPT_JSON:
        case OPT_CSV:
        case OPT_PLOT:
            if (!*optarg || set_string(c == OPT_JSON ? &o->json_path
                                       : c == OPT_CSV ? &o->csv_path : &o->plot_path, optarg))
                return bad(err, argv[optind - 1], optarg, "a file name");
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
    if (optind < argc && set_string(&o->host, argv[optind++]))
        return -1;
    if (optind < argc) {
        fprintf(err, "colo-rdma-bench: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    return check_combination(o, dirty_given, err);
}

void bench_options_free(struct bench_options *o)
{
    free(o->host);
    free(o->replay_path);
    free(o->cache_path);
    free(o->json_path);
    free(o->csv_path);
    free(o->plot_path);
    free(o->auth_key);
    o->auth_key = NULL;
    o->auth_key_len = 0;
    o->host = o->replay_path = o->cache_path = NULL;
    o->json_path = o->csv_path = o->plot_path = NULL;
}
