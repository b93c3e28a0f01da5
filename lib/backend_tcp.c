/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tcp entry of the backend table; the hello travels in the stream. */
#include "lib/backend.h"
#include "transport/tcp.h"

static int backend_tcp_connect(const struct colo_config *cfg, const struct colo_ram_layout *layout,
                               struct colo_hello_pair *hellos, struct colo_stream **out)
{
    return colo_tcp_connect(cfg->host, cfg->port, cfg->timeout_ms, out);
}

static int backend_tcp_listen(const struct colo_config *cfg, void **listener)
{
    struct colo_tcp_listener *l;
    int ret = colo_tcp_listen(cfg->host, cfg->port, &l);

    if (!ret)
        *listener = l;
    return ret;
}

static int backend_tcp_accept_fd(const void *listener)
{
    return colo_tcp_listener_fd(listener);
}

static int backend_tcp_accept(void *listener, const struct colo_config *cfg,
                              const struct colo_ram_layout *layout,
                              struct colo_hello_pair *hellos, uint32_t wait_ms,
                              struct colo_stream **out, void **pending)
{
    *pending = NULL;
    return colo_tcp_accept(listener, wait_ms, cfg->timeout_ms, out);
}

static uint16_t backend_tcp_port(const void *listener)
{
    return colo_tcp_listener_port(listener);
}

static void backend_tcp_listener_delete(void **listener)
{
    struct colo_tcp_listener *l = *listener;

    colo_tcp_listener_delete(&l);
    *listener = NULL;
}

const struct colo_backend colo_backend_tcp = {
    .name = "tcp",
    .connect = backend_tcp_connect,
    .listen = backend_tcp_listen,
    .accept_fd = backend_tcp_accept_fd,
    .accept = backend_tcp_accept,
    .port = backend_tcp_port,
    .listener_delete = backend_tcp_listener_delete,
};
