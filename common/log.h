/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal logging: every layer reports through colo_log(), which hands the
 * formatted message to the one process-wide sink set with colo_set_log()
 * (public header), or to stderr when COLO_RDMA_DEBUG is set and no sink was
 * ever set. Messages carry no trailing newline.
 */
#ifndef COLO_COMMON_LOG_H
#define COLO_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "colo-rdma/colo-rdma.h"

/* Whether a message of this level would reach the sink: guards messages
 * that cost something to build. */
bool colo_log_enabled(int level);
/* Formats and delivers one message; keeps errno. Any thread. */
void colo_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
