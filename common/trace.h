/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Static trace points (USDT, provider colo_rdma): COLO_TRACE(name, args...)
 * puts a probe named `name` here when the build found <sys/sdt.h>
 * (HAVE_SDT), else nothing. A probe is a single nop with its arguments
 * described in an ELF note; it costs nothing until perf, bpftrace or
 * SystemTap attach to it. Names follow their function (primary_begin in
 * colo_primary_begin); 1 to 6 integer arguments, the checkpoint sequence
 * number first where there is one. The arguments are evaluated only when
 * HAVE_SDT: never pass anything with side effects.
 */
#ifndef COLO_COMMON_TRACE_H
#define COLO_COMMON_TRACE_H

#include "colo-rdma-config.h"

#if HAVE_SDT
#include <sys/sdt.h>

#define COLO_TRACE_NARG_(...) COLO_TRACE_NARG2_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define COLO_TRACE_NARG2_(a1, a2, a3, a4, a5, a6, n, ...) n
#define COLO_TRACE_CAT_(a, b) COLO_TRACE_CAT2_(a, b)
#define COLO_TRACE_CAT2_(a, b) a##b
#define COLO_TRACE(name, ...) \
    COLO_TRACE_CAT_(DTRACE_PROBE, COLO_TRACE_NARG_(__VA_ARGS__))(colo_rdma, name, __VA_ARGS__)
#else
#define COLO_TRACE(name, ...) do { } while (0)
#endif

#endif
