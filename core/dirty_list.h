/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dirty-page list of one checkpoint: (block, first page, page count)
 * runs. A list is canonical when its runs are sorted by block and
 * first page and do not overlap; the secondary accepts only canonical lists
 * that lie inside the registered layout.
 */
#ifndef COLO_CORE_DIRTY_LIST_H
#define COLO_CORE_DIRTY_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "colo-rdma/colo-rdma.h"
#include "core/ram_layout.h"

struct colo_dirty_list {
    struct colo_dirty_run *runs;
    size_t count;
    size_t cap;
    uint64_t pages; /* sum of page_count */
};

void colo_dirty_list_reset(struct colo_dirty_list *list);
void colo_dirty_list_free(struct colo_dirty_list *list);
/* Room for n runs in all, growing by doubling (amortized O(1) per run). -ENOMEM. */
int colo_dirty_list_reserve(struct colo_dirty_list *list, size_t n);
/* Appends one run (no validation). -ENOMEM on allocation failure. */
int colo_dirty_list_append(struct colo_dirty_list *list, const struct colo_dirty_run *run);

/* Checks one run against the layout: block, nonzero count, no overflow, bounds. */
int colo_dirty_run_check(const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                         size_t index);
/* The same check, failing with err and messages that begin "<what> <index>: ". */
int colo_dirty_run_check_as(const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                            size_t index, int err, const char *what);
/*
 * Primary: copies the caller's runs into list, sorted and merged (overlapping
 * and adjacent runs become one). Every run is checked first.
 */
int colo_dirty_list_normalize(struct colo_dirty_list *list, const struct colo_ram_layout *layout,
                              const struct colo_dirty_run *runs, size_t n, size_t max_runs);
/* into := the canonical union of into and add (runs of the layout), through
 * scratch; COLO_E_DIRTY_LIST past max_runs, -ENOMEM. */
int colo_dirty_list_merge(struct colo_dirty_list *into, const struct colo_dirty_list *add,
                          struct colo_dirty_list *scratch, const struct colo_ram_layout *layout,
                          size_t max_runs);
/* Secondary: accepts only a canonical list inside the layout, of at most max_runs. */
int colo_dirty_list_validate(const struct colo_ram_layout *layout,
                             const struct colo_dirty_run *runs, size_t n, size_t max_runs);

#endif
