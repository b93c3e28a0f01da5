/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "colo-rdma-config.h"

static __thread char last_msg[512];

int colo_verr(int err, const char *fmt, va_list ap)
{
    char msg[sizeof(last_msg)];

    /* Formats aside first: callers often wrap colo_errormsg() itself. */
    vsnprintf(msg, sizeof(msg), fmt, ap);
    memcpy(last_msg, msg, sizeof(msg));
    return err;
}

int colo_err(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    colo_verr(err, fmt, ap);
    va_end(ap);
    return err;
}

void colo_err_clear(void)
{
    last_msg[0] = '\0';
}

const char *colo_errormsg(void)
{
    return last_msg;
}

const char *colo_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case COLO_E_PROTOCOL:
        return "COLO protocol violation";
    case COLO_E_DIRTY_LIST:
        return "invalid dirty-page list";
    case COLO_E_HANDSHAKE:
        return "handshake mismatch";
    case COLO_E_PEER_LOST:
        return "peer lost";
    case COLO_E_SHUTDOWN:
        return "session ended by peer";
    case COLO_E_CONFIG:
        return "invalid configuration";
    case COLO_E_CACHE:
        return "RAM cache unusable";
    case COLO_E_NO_BACKEND:
        return "transport not available";
    case COLO_E_AUTH:
        return "authentication failed";
    case COLO_E_INTEGRITY:
        return "checkpoint integrity check failed";
    default:
        break;
    }
    if (err < 0 && err > COLO_E_BASE)
        return strerror(-err);
    return "unknown error";
}

const char *colo_version(void)
{
    return COLO_RDMA_VERSION;
}
