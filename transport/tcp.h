/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tcp backend: the whole stream interface over one TCP connection,
 * pages included (they are streamed and copied into the secondary's cache).
 * It is the baseline the rdma backend must beat and the fallback where there
 * is no RDMA device. IPv4 and IPv6; every wait has a timeout (0 ms: none,
 * as for every backend).
 */
#ifndef COLO_TRANSPORT_TCP_H
#define COLO_TRANSPORT_TCP_H

#include <stdint.h>

#include "stream/stream.h"

struct colo_tcp_listener;

int colo_tcp_connect(const char *host, uint16_t port, uint32_t timeout_ms,
                     struct colo_stream **out);
/* host NULL or "" binds every address (IPv6 and IPv4 where possible). */
int colo_tcp_listen(const char *host, uint16_t port, struct colo_tcp_listener **out);
uint16_t colo_tcp_listener_port(const struct colo_tcp_listener *l);
/* Readable when a connection waits to be accepted. */
int colo_tcp_listener_fd(const struct colo_tcp_listener *l);
/* Waits up to wait_ms for a connection (-EAGAIN when none came); the stream
 * then waits up to timeout_ms on the peer. */
int colo_tcp_accept(struct colo_tcp_listener *l, uint32_t wait_ms, uint32_t timeout_ms,
                    struct colo_stream **out);
void colo_tcp_listener_delete(struct colo_tcp_listener **l);

#endif
