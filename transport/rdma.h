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
    /* Accept side: what a rejection carries when check refused the peer
     * (check may fill it in; at most COLO_RDMA_HELLO_MAX bytes). Never our
     * hello: that would tell anyone what to send. */
    const void *refusal;
    size_t refusal_len;
    /* Connect side: the error a rejection's private data means (NULL: a
     * plain refusal). */
    int (*refused)(void *arg, const void *data, size_t len);
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
/* Refuses (and forgets) a primary whose hello mine->check rejects, sending
 * mine->refusal so that the primary can say what differs. accept_request +
 * accept_finish in one, under opt->timeout_ms. */
int colo_rdma_accept(struct colo_rdma_listener *l, const struct colo_rdma_options *opt,
                     const struct colo_rdma_hello *mine, struct colo_stream **out);

/*
 * The same in two steps, so that a listener answers every connect request at
 * once and runs the connections' setup side by side: accept_request takes
 * one request (waiting at most wait_ms: -EAGAIN when none came), refuses a
 * wrong hello at once and moves the others to a channel of their own;
 * accept_finish (in any thread) builds, accepts and waits for the
 * connection by deadline_ns or until cancel_fd (an eventfd, -1: none) is
 * readable, and takes over the pending request, also on failure. A request
 * the primary abandoned fails there with -ECONNABORTED, saying so.
 */
struct colo_rdma_pending;
int colo_rdma_accept_request(struct colo_rdma_listener *l, const struct colo_rdma_hello *mine,
                             uint32_t wait_ms, struct colo_rdma_pending **out);
int colo_rdma_accept_finish(struct colo_rdma_pending *p, const struct colo_rdma_options *opt,
                            const struct colo_rdma_hello *mine, uint64_t deadline_ns,
                            int cancel_fd, struct colo_stream **out);
/* Rejects and frees a request never finished; accepts NULL. */
void colo_rdma_pending_delete(struct colo_rdma_pending **p);
void colo_rdma_listener_delete(struct colo_rdma_listener **l);

#endif
