/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --plot: latency CDFs per transport and pause vs dirty-set size, drawn by gnuplot. */
#ifndef COLO_BENCH_PLOT_H
#define COLO_BENCH_PLOT_H

#include <stddef.h>

#include "bench/report.h"

/* Before the run: gnuplot present and a usable path. 0, or -1 with the fix in err. */
int bench_plot_check(const char *path, char *err, size_t errlen);
/* Draws path (.svg or .png). 0, or -1 with the reason in err. */
int bench_plot(const char *path, const struct bench_env *env, const struct bench_run *runs,
               size_t n, char *err, size_t errlen);

#endif
