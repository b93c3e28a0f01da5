/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bench/replay.h"

static int push_range(struct bench_replay *r, size_t *cap, uint64_t first, uint64_t count)
{
    if (r->nranges == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        struct bench_range *n = realloc(r->ranges, ncap * sizeof(*n));

        if (!n)
            return -1;
        r->ranges = n;
        *cap = ncap;
    }
    r->ranges[r->nranges++] = (struct bench_range){first, count};
    return 0;
}

static int push_epoch(struct bench_replay *r, size_t *cap)
{
    if (r->nepochs + 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        size_t *n = realloc(r->epoch_start, ncap * sizeof(*n));

        if (!n)
            return -1;
        r->epoch_start = n;
        *cap = ncap;
    }
    r->epoch_start[++r->nepochs] = r->nranges;
    return 0;
}

/* Digits only: strtoull alone would accept signs and spaces. */
static int parse_page(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;

    if (s == end)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* One epoch's line (comment stripped, not blank): tokens N, A-B or a lone "-". */
static int parse_line(struct bench_replay *r, size_t *cap, char *line, const char *name,
                      unsigned long lineno, uint64_t pages, FILE *err)
{
    char *save = NULL, *tok;
    bool empty_epoch = false;
    size_t ntok = 0;

    for (tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        const char *dash = strchr(tok, '-');
        const char *end = tok + strlen(tok);
        uint64_t a, b;

        ntok++;
        if (!strcmp(tok, "-")) {
            empty_epoch = true;
            continue;
        }
        if (dash ? parse_page(tok, dash, &a) || parse_page(dash + 1, end, &b)
                 : parse_page(tok, end, &a)) {
            fprintf(err, "colo-rdma-bench: %s:%lu: '%s' is not a page number or a range A-B\n",
                    name, lineno, tok);
            return -1;
        }
        if (!dash)
            b = a;
        if (b < a) {
            fprintf(err, "colo-rdma-bench: %s:%lu: range '%s' ends before it starts\n", name,
                    lineno, tok);
            return -1;
        }
        if (b >= pages) {
            fprintf(err, "colo-rdma-bench: %s:%lu: page %" PRIu64 " is beyond the %" PRIu64
                         " pages of --ram: use a larger --ram or fix the file\n",
                    name, lineno, b, pages);
            return -1;
        }
        if (push_range(r, cap, a, b - a + 1)) {
            fprintf(err, "colo-rdma-bench: %s:%lu: out of memory\n", name, lineno);
            return -1;
        }
    }
    if (empty_epoch && ntok > 1) {
        fprintf(err, "colo-rdma-bench: %s:%lu: '-' (an epoch without dirty pages) must be "
                     "alone on its line\n", name, lineno);
        return -1;
    }
    return 0;
}

int bench_replay_read(struct bench_replay *r, FILE *in, const char *name, uint64_t pages,
                      FILE *err)
{
    size_t rcap = 0, ecap = 0, len = 0;
    unsigned long lineno = 0;
    char *line = NULL;
    int ret = 0;

    *r = (struct bench_replay){0};
    ecap = 64;
    r->epoch_start = malloc(ecap * sizeof(*r->epoch_start));
    if (!r->epoch_start) {
        fprintf(err, "colo-rdma-bench: %s: out of memory\n", name);
        return -1;
    }
    r->epoch_start[0] = 0;
    while (!ret && getline(&line, &len, in) >= 0) {
        char *hash = strchr(line, '#'), *nl = strchr(line, '\n');

        lineno++;
        if (hash)
            *hash = '\0';
        if (nl)
            *nl = '\0';
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        ret = parse_line(r, &rcap, line, name, lineno, pages, err);
        if (!ret && push_epoch(r, &ecap)) {
            fprintf(err, "colo-rdma-bench: %s:%lu: out of memory\n", name, lineno);
            ret = -1;
        }
    }
    free(line);
    if (!ret && ferror(in)) {
        fprintf(err, "colo-rdma-bench: %s: read error: %s\n", name, strerror(errno));
        ret = -1;
    }
    if (!ret && !r->nepochs) {
        fprintf(err, "colo-rdma-bench: %s: no epoch: give one line of dirty pages per "
                     "checkpoint (see colo-rdma-bench(1))\n", name);
        ret = -1;
    }
    if (ret)
        bench_replay_free(r);
    return ret;
}

int bench_replay_load(struct bench_replay *r, const char *path, uint64_t pages, FILE *err)
{
    FILE *f = fopen(path, "r");
    int ret;

    if (!f) {
        *r = (struct bench_replay){0};
        fprintf(err, "colo-rdma-bench: cannot open the replay file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    ret = bench_replay_read(r, f, path, pages, err);
    fclose(f);
    return ret;
}

void bench_replay_free(struct bench_replay *r)
{
    free(r->ranges);
    free(r->epoch_start);
    *r = (struct bench_replay){0};
}
