/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "colo-rdma-config.h"
#include "common/error.h"
#include "lib/backend.h"

#if !HAVE_RDMA
static const struct colo_backend missing_rdma = {
    .name = "rdma",
    .unavailable = "this build has no libibverbs/librdmacm (install libibverbs-dev and "
                   "librdmacm-dev and rebuild), use tcp",
};
#endif

static const struct colo_backend *const backends[COLO_TRANSPORT__COUNT] = {
    [COLO_TRANSPORT_TCP] = &colo_backend_tcp,
#if HAVE_RDMA
    [COLO_TRANSPORT_RDMA] = &colo_backend_rdma,
#else
    [COLO_TRANSPORT_RDMA] = &missing_rdma,
#endif
};

const struct colo_backend *colo_backend_get(enum colo_transport t)
{
    return backends[t];
}

int colo_backend_parse(const char *name, enum colo_transport *t)
{
    char known[128] = "";

    for (int i = 0; i < COLO_TRANSPORT__COUNT; i++) {
        if (name && !strcmp(name, backends[i]->name)) {
            *t = (enum colo_transport)i;
            return 0;
        }
        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                 i == 0                           ? ""
                 : i == COLO_TRANSPORT__COUNT - 1 ? " or "
                                                  : ", ",
                 backends[i]->name);
    }
    return colo_err(COLO_E_CONFIG, "transport '%s': expected %s", name ? name : "(null)", known);
}

int colo_backend_check(enum colo_transport t)
{
    const struct colo_backend *be = backends[t];

    if (!be->unavailable)
        return 0;
    return colo_err(COLO_E_NO_BACKEND, "transport %s is not available: %s", be->name,
                    be->unavailable);
}
