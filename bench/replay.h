/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replay files: a recorded list of dirty pages per checkpoint (epoch).
 *
 *   # comment (also after a line's pages)
 *   0 1 2 17-31 4096        one line per epoch: global page numbers (page =
 *   -                       byte offset / page size) or inclusive ranges A-B;
 *   100-163                 "-" is an epoch without dirty pages; blank lines
 *                           are skipped. Epochs repeat when the run is longer.
 */
#ifndef COLO_BENCH_REPLAY_H
#define COLO_BENCH_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct bench_range {
    uint64_t first;
    uint64_t count;
};

struct bench_replay {
    struct bench_range *ranges;
    size_t nranges;
    size_t *epoch_start; /* nepochs + 1 offsets into ranges */
    size_t nepochs;
};

/*
 * Loads path, checking every page against pages (the RAM's page count).
 * Returns 0, or -1 with a message naming the file and line on err.
 */
int bench_replay_load(struct bench_replay *r, const char *path, uint64_t pages, FILE *err);
/* Same from an open stream; name is used in messages. */
int bench_replay_read(struct bench_replay *r, FILE *in, const char *name, uint64_t pages,
                      FILE *err);
void bench_replay_free(struct bench_replay *r);

#endif
