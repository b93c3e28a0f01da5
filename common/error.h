/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal error reporting: one negative code, one human message per thread. */
#ifndef COLO_COMMON_ERROR_H
#define COLO_COMMON_ERROR_H

#include <stdarg.h>

#include "colo-rdma/colo-rdma.h"

/* Records a message for colo_errormsg() and returns err (a negative code). */
int colo_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int colo_verr(int err, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Clears this thread's message. */
void colo_err_clear(void);

#endif
