/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rdma entry of the backend table. The hello rides in the connect and
 * accept private data: built and checked here, carried opaque by the backend.
 */
#include <string.h>

#include "lib/backend.h"
#include "proto/handshake.h"
#include "transport/rdma.h"
#include "transport/verbs_shim.h"

struct rdma_hello {
    struct colo_hello mine;
    struct colo_hello_pair *pair; /* mine as sent; the peer's once checked */
    uint8_t refusal[COLO_HELLO_REFUSAL_SIZE];
    struct colo_rdma_hello h;
};

_Static_assert(COLO_HELLO_WIRE_SIZE <= COLO_RDMA_HELLO_MAX, "the hello fits the private data");
_Static_assert(COLO_HELLO_REFUSAL_SIZE <= COLO_RDMA_HELLO_MAX, "so does the refusal");

/* Checks the peer's hello; a refused one is told why in rh->refusal. */
static int hello_check(void *arg, const void *peer, size_t len)
{
    struct rdma_hello *rh = arg;
    int ret = colo_hello_check_wire(&rh->mine, peer, len);

    if (ret) {
        colo_hello_refusal_encode(&rh->mine, peer, len, rh->refusal);
        return ret;
    }
    memcpy(rh->pair->peer, peer, COLO_HELLO_WIRE_SIZE);
    rh->pair->have_peer = true;
    return 0;
}

static int hello_refused(void *arg, const void *data, size_t len)
{
    struct rdma_hello *rh = arg;

    return colo_hello_refusal_check(&rh->mine, data, len);
}

/* pair->mine is the session's hello, valid by construction. */
static void hello_init(struct rdma_hello *rh, struct colo_hello_pair *pair)
{
    if (colo_hello_decode(pair->mine, sizeof(pair->mine), &rh->mine))
        memset(&rh->mine, 0, sizeof(rh->mine));
    rh->pair = pair;
    memset(rh->refusal, 0, sizeof(rh->refusal));
    rh->h = (struct colo_rdma_hello){
        .data = pair->mine, .len = sizeof(pair->mine), .check = hello_check, .arg = rh,
        .refusal = rh->refusal, .refusal_len = sizeof(rh->refusal), .refused = hello_refused};
}

static void options(const struct colo_config *cfg, struct colo_rdma_options *opt)
{
    *opt = (struct colo_rdma_options){
        .timeout_ms = cfg->timeout_ms,
        .heartbeat_ms = cfg->heartbeat_ms,
        .busy_poll = cfg->busy_poll,
    };
}

static int backend_rdma_connect(const struct colo_config *cfg, const struct colo_ram_layout *layout,
                                struct colo_hello_pair *hellos, struct colo_stream **out)
{
    struct colo_rdma_options opt;
    struct rdma_hello hello;

    options(cfg, &opt);
    hello_init(&hello, hellos);
    return colo_rdma_connect(cfg->host, cfg->port, &opt, &hello.h, out);
}

static int backend_rdma_listen(const struct colo_config *cfg, void **listener)
{
    struct colo_rdma_listener *l;
    int ret = colo_rdma_listen(cfg->host, cfg->port, &l);

    if (!ret)
        *listener = l;
    return ret;
}

static int backend_rdma_accept_fd(const void *listener)
{
    return colo_rdma_listener_fd(listener);
}

/* Answers the request at once: refused, or handed to establish. */
static int backend_rdma_accept(void *listener, const struct colo_config *cfg,
                               const struct colo_ram_layout *layout,
                               struct colo_hello_pair *hellos, uint32_t wait_ms,
                               struct colo_stream **out, void **pending)
{
    struct colo_rdma_pending *p;
    struct rdma_hello hello;
    int ret;

    *out = NULL;
    hello_init(&hello, hellos);
    ret = colo_rdma_accept_request(listener, &hello.h, wait_ms, &p);
    if (!ret)
        *pending = p;
    return ret;
}

static int backend_rdma_establish(void *pending, const struct colo_config *cfg,
                                  const struct colo_ram_layout *layout,
                                  struct colo_hello_pair *hellos, uint64_t deadline_ns,
                                  int cancel_fd, struct colo_stream **out)
{
    struct colo_rdma_options opt;
    struct rdma_hello hello;

    options(cfg, &opt);
    hello_init(&hello, hellos);
    return colo_rdma_accept_finish(pending, &opt, &hello.h, deadline_ns, cancel_fd, out);
}

static uint16_t backend_rdma_port(const void *listener)
{
    return colo_rdma_listener_port(listener);
}

static void backend_rdma_listener_delete(void **listener)
{
    struct colo_rdma_listener *l = *listener;

    colo_rdma_listener_delete(&l);
    *listener = NULL;
}

static void backend_rdma_work_counts(uint64_t out[4])
{
    struct crdma_verbs_counts c;

    crdma_verbs_counts_get(&c);
    out[0] = c.wr_posted;
    out[1] = c.doorbells;
    out[2] = c.completions;
    out[3] = c.cq_wakeups;
}

const struct colo_backend colo_backend_rdma = {
    .name = "rdma",
    .checks_hello = true,
    .connect = backend_rdma_connect,
    .listen = backend_rdma_listen,
    .accept_fd = backend_rdma_accept_fd,
    .accept = backend_rdma_accept,
    .establish = backend_rdma_establish,
    .port = backend_rdma_port,
    .work_counts = backend_rdma_work_counts,
    .listener_delete = backend_rdma_listener_delete,
};
