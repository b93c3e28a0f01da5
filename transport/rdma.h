/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rdma backend: the stream interface over one reliable-connected queue
 * pair made with librdmacm. Control bytes travel as SEND/RECV messages
 * (rdma_ctrl.c); pages go by one-sided RDMA WRITE into the secondary's cache
 * (rdma_write.c). The hello of the handshake rides in the private data of
 * connect and accept, so a mismatched peer is refused before any resource
 * is exposed.
 */
#ifndef COLO_TRANSPORT_RDMA_H
#define COLO_TRANSPORT_RDMA_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/handshake.h"
#include "stream/stream.h"

struct colo_rdma_options {
    uint32_t timeout_ms;
    uint32_t heartbeat_ms; /* interval; the peer is lost after 4 silent intervals */
    bool busy_poll;
};

struct colo_rdma_listener;

int colo_rdma_connect(const char *host, uint16_t port, const struct colo_rdma_options *opt,
                      const struct colo_hello *mine, struct colo_stream **out);
int colo_rdma_listen(const char *host, uint16_t port, struct colo_rdma_listener **out);
uint16_t colo_rdma_listener_port(const struct colo_rdma_listener *l);
/* Refuses (and forgets) a primary whose hello does not match, with its reason. */
int colo_rdma_accept(struct colo_rdma_listener *l, const struct colo_rdma_options *opt,
                     const struct colo_hello *mine, struct colo_stream **out);
void colo_rdma_listener_delete(struct colo_rdma_listener **l);

#endif
