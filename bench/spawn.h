/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running helper programs (ibv_devinfo, ib_write_bw, gnuplot) with a deadline. */
#ifndef COLO_BENCH_SPAWN_H
#define COLO_BENCH_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* True when name is an executable file in PATH. */
bool bench_have_program(const char *name);
/*
 * Runs argv[0] (searched in PATH) with stdin from /dev/null, waits at most
 * timeout_ms (then kills it). With output, stdout and stderr are collected
 * into a malloc'd string (free it). Returns the exit status, or -1.
 */
int bench_run(char *const argv[], uint32_t timeout_ms, char **output);
/* Starts argv in the background, output discarded; the pid or -1. */
pid_t bench_start(char *const argv[]);
/* Waits up to timeout_ms for pid, then kills it. Exit status or -1. */
int bench_stop(pid_t pid, uint32_t timeout_ms);

#endif
