/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef COLO_COMMON_TIMEUTIL_H
#define COLO_COMMON_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

/* Monotonic clock in nanoseconds, for phase timings and deadlines. */
static inline uint64_t colo_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
