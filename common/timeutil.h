/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef COLO_COMMON_TIMEUTIL_H
#define COLO_COMMON_TIMEUTIL_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

#define COLO_NS_PER_MS UINT64_C(1000000)
#define COLO_NS_PER_S UINT64_C(1000000000)

/* Monotonic clock in nanoseconds, for phase timings and deadlines. */
static inline uint64_t colo_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * COLO_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/*
 * One meaning for both backends: a timeout of 0 ms means "no timeout" (wait
 * as long as it takes, until the peer is lost or shut down), and so does a
 * deadline of 0 ns, which is what a timeout of 0 gives.
 */
static inline uint64_t colo_deadline_after_ms(uint32_t timeout_ms)
{
    return timeout_ms ? colo_now_ns() + (uint64_t)timeout_ms * COLO_NS_PER_MS : 0;
}

/* Milliseconds from now_ns to a set deadline_ns, rounded up and at least 1:
 * a poll() that long neither wakes before the deadline nor spins. */
static inline int colo_ms_until(uint64_t deadline_ns, uint64_t now_ns)
{
    uint64_t ms = 1;

    if (deadline_ns > now_ns) {
        uint64_t left = deadline_ns - now_ns;

        ms = left / COLO_NS_PER_MS + (left % COLO_NS_PER_MS != 0);
    }
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

#endif
