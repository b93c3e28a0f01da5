/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Guest RAM: real anonymous memory, optionally on huge pages. */
#ifndef COLO_BENCH_RAM_H
#define COLO_BENCH_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Maps bytes of zeroed RAM (MAP_HUGETLB with huge). 0, or -1 with the fix in err. */
int bench_ram_alloc(uint64_t bytes, bool huge, uint8_t **out, char *err, size_t errlen);
void bench_ram_free(uint8_t **ram, uint64_t bytes);

#endif
