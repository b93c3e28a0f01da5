/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rdma backend: the stream interface over one reliable-connected queue
 * pair made with librdmacm. Control bytes travel as SEND/RECV messages
 * (rdma_ctrl.c); pages go by one-sided RDMA WRITE into the secondary's cache
 * (rdma_write.c). The upper layer's hello rides, opaque, in the private
 * data of connect and accept, and its check callback refuses a mismatched
 * peer before any resource is exposed.
 */
#ifndef COLO_TRANSPORT_RDMA_H
#define COLO_TRANSPORT_RDMA_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "stream/stream.h"

struct colo_rdma_options {
    uint32_t timeout_ms;   /* every wait; 0: none (common/timeutil.h) */
    uint32_t heartbeat_ms; /* interval (0: COLO_RDMA_DEFAULT_HEARTBEAT_MS); the peer
                            * is lost after 4 silent intervals */
    bool busy_poll;
};

/*
 * What the upper layer sends in the private data and how it judges the
 * peer's (librpma's rpma_conn_req_get_private_data, in spirit): the backend
 * never decodes it. check gets the peer's bytes (at most len of them) and
 * returns 0 or an error naming what differs.
 */
struct colo_rdma_hello {
    const void *data;
    size_t len; /* at most COLO_RDMA_HELLO_MAX */
    int (*check)(void *arg, const void *peer, size_t len);
    void *arg;
};

#define COLO_RDMA_DEFAULT_HEARTBEAT_MS 500

/* A RoCE connect request carries 56 bytes; the backend keeps 8 for its probe. */
#define COLO_RDMA_HELLO_MAX 48

struct colo_rdma_listener;

int colo_rdma_connect(const char *host, uint16_t port, const struct colo_rdma_options *opt,
                      const struct colo_rdma_hello *mine, struct colo_stream **out);
int colo_rdma_listen(const char *host, uint16_t port, struct colo_rdma_listener **out);
uint16_t colo_rdma_listener_port(const struct colo_rdma_listener *l);
/* Readable when a connection-manager event (a connect request) waits. */
int colo_rdma_listener_fd(const struct colo_rdma_listener *l);
/* Refuses (and forgets) a primary whose hello mine->check rejects, sending mine
 * back so that the primary can say what differs. */
int colo_rdma_accept(struct colo_rdma_listener *l, const struct colo_rdma_options *opt,
                     const struct colo_rdma_hello *mine, struct colo_stream **out);
void colo_rdma_listener_delete(struct colo_rdma_listener **l);

#endif
