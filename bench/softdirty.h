/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --dirty-tracking softdirty: the kernel marks every page written since the
 * last clear (write "4" to /proc/self/clear_refs) with bit 55 of its
 * /proc/self/pagemap entry. Needs CONFIG_MEM_SOFT_DIRTY.
 */
#ifndef COLO_BENCH_SOFTDIRTY_H
#define COLO_BENCH_SOFTDIRTY_H

#include <stddef.h>

#include "bench/workload.h"

struct bench_softdirty {
    int pagemap_fd;
    int clear_fd;
    uint64_t *entries; /* one pagemap entry per base page of the RAM */
    size_t nentries;
};

/* Opens the files and checks that the bits work here: 0, or -1 with why in err. */
int bench_softdirty_open(struct bench_softdirty *sd, uint64_t ram_bytes, char *err,
                         size_t errlen);
void bench_softdirty_close(struct bench_softdirty *sd);
/* Clears the bits of the whole process (before the workload writes). */
int bench_softdirty_clear(struct bench_softdirty *sd);
/* Lists the guest pages of w->ram written since the clear into w->list. -1 on error. */
int bench_softdirty_collect(struct bench_softdirty *sd, struct bench_workload *w);

#endif
