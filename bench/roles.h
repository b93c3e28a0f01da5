/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The two roles of colo-rdma-bench: primary.c and secondary.c. */
#ifndef COLO_BENCH_ROLES_H
#define COLO_BENCH_ROLES_H

#include <stdint.h>

#include "bench/options.h"

/*
 * Runs the secondary: serves one primary on the control port. With
 * ready_fd >= 0 (loopback) it listens on any free port and writes the port
 * number (uint16_t) there. Returns the process exit status.
 */
int bench_secondary_main(const struct bench_options *o, int ready_fd);
/* Runs the primary against the control port of host. Returns the exit status. */
int bench_primary_main(const struct bench_options *o, const char *host, uint16_t port);

#endif
