/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/net.h"
#include "transport/rdma_conn.h"
#include "transport/rdma_mr.h"
#include "transport/rdma_write.h"

int crdma_conn_new(struct crdma_conn **out)
{
    struct crdma_conn *c = calloc(1, sizeof(*c));
    int ret;

    if (!c)
        return colo_err(-ENOMEM, "rdma: out of memory");
    ret = crdma_wait_init(c);
    if (ret) {
        free(c);
        return ret;
    }
    pthread_mutex_init(&c->lock, NULL);
    crdma_heartbeat_init(c);
    c->refs = 1;
    *out = c;
    return 0;
}

void crdma_conn_attach(struct crdma_conn *c, struct rdma_event_channel *ec,
                       struct rdma_cm_id *id)
{
    c->res.ec = ec;
    c->res.id = id;
}

void crdma_conn_lost(struct crdma_conn *c, int err, const char *fmt, ...)
{
    va_list ap;

    if (c->loss.lost)
        return;
    c->loss.lost = true;
    c->loss.err = err;
    va_start(ap, fmt);
    vsnprintf(c->loss.reason, sizeof(c->loss.reason), fmt, ap);
    va_end(ap);
    /* Any thread: the heartbeat thread declares most losses. */
    COLO_TRACE(rdma_conn_lost, err);
    colo_log(COLO_LOG_WARNING, "rdma: peer lost: %s", c->loss.reason);
}

int crdma_conn_lost_error(const struct crdma_conn *c)
{
    return colo_err(c->loss.err, "%s", c->loss.reason);
}

void crdma_conn_begin_teardown(struct crdma_conn *c)
{
    c->loss.tearing_down = true;
}

static uint32_t mtu_bytes(enum ibv_mtu m)
{
    return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128u << m : 0;
}

/* Device and port limits: queried, never assumed. */
static int query_limits(struct crdma_conn *c)
{
    struct ibv_device_attr dev;
    struct ibv_port_attr port;
    int ret;

    ret = colo_verbs->query_device(c->res.id->verbs, &dev);
    if (ret)
        return colo_err(-ret, "rdma: query device: %s", strerror(ret));
    ret = colo_verbs->query_port(c->res.id->verbs, c->res.id->port_num, &port);
    if (ret)
        return colo_err(-ret, "rdma: query port %u: %s", c->res.id->port_num, strerror(ret));
    if (port.state != IBV_PORT_ACTIVE)
        return colo_err(-ENETDOWN, "rdma: port %u of %s is %s, expected PORT_ACTIVE",
                        c->res.id->port_num, ibv_get_device_name(c->res.id->verbs->device),
                        ibv_port_state_str(port.state));
    c->res.lim.max_qp_wr = (uint32_t)dev.max_qp_wr;
    c->res.lim.max_sge = (uint32_t)dev.max_sge;
    c->res.lim.max_mr_size = dev.max_mr_size;
    c->res.lim.max_mr = (uint32_t)dev.max_mr;
    c->res.lim.max_msg_size = port.max_msg_sz;
    c->res.lim.active_mtu = mtu_bytes(port.active_mtu);
    c->res.lim.sq_depth =
        c->res.lim.max_qp_wr < CRDMA_SQ_DEPTH ? c->res.lim.max_qp_wr : CRDMA_SQ_DEPTH;
    return 0;
}

static int create_qp(struct crdma_conn *c)
{
    struct ibv_qp_init_attr attr = {
        .send_cq = c->res.cq,
        .recv_cq = c->res.cq,
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0, /* selective signaling */
        .cap = {
            .max_send_wr = c->res.lim.sq_depth,
            .max_recv_wr = CRDMA_RECV_DEPTH,
            .max_send_sge = 1,
            .max_recv_sge = 1,
            .max_inline_data = CRDMA_WANT_INLINE,
        },
    };

    if (colo_verbs->create_qp(c->res.id, c->res.pd, &attr)) {
        /* Some devices give no inline data at all: ask again without. */
        attr.cap.max_inline_data = 0;
        if (colo_verbs->create_qp(c->res.id, c->res.pd, &attr))
            return colo_err(-errno, "rdma: create QP (%" PRIu32 " send, %d receive WRs): %s",
                            c->res.lim.sq_depth, CRDMA_RECV_DEPTH, strerror(errno));
    }
    c->res.qp_created = true;
    c->res.lim.max_inline = attr.cap.max_inline_data;
    c->res.sq_free = c->res.lim.sq_depth;
    return 0;
}

int crdma_conn_build(struct crdma_conn *c)
{
    size_t ring = CRDMA_RING_BYTES;
    int ret;

    ret = query_limits(c);
    if (ret)
        return ret;
    c->res.pd = colo_verbs->alloc_pd(c->res.id->verbs);
    if (!c->res.pd)
        return colo_err(-ENOMEM, "rdma: allocate protection domain: %s", strerror(errno));
    c->res.cc = colo_verbs->create_comp_channel(c->res.id->verbs);
    if (!c->res.cc)
        return colo_err(-errno, "rdma: create completion channel: %s", strerror(errno));
    ret = colo_set_nonblock(c->res.cc->fd);
    if (ret)
        return colo_err(ret, "rdma: completion channel: %s", strerror(-ret));
    c->res.cq = colo_verbs->create_cq(c->res.id->verbs,
                                  (int)(c->res.lim.sq_depth + CRDMA_RECV_DEPTH + CRDMA_PROBE_SENDS +
                                        CRDMA_PROBE_RECVS),
                                  c, c->res.cc, 0);
    if (!c->res.cq)
        return colo_err(-errno, "rdma: create completion queue: %s", strerror(errno));
    ret = create_qp(c);
    if (ret)
        return ret;
    c->res.ring = aligned_alloc(4096, ring);
    if (!c->res.ring)
        return colo_err(-ENOMEM, "rdma: out of memory for the control ring");
    memset(c->res.ring, 0, ring);
    c->res.ring_mr = colo_verbs->reg_mr(c->res.pd, c->res.ring, ring, IBV_ACCESS_LOCAL_WRITE);
    if (!c->res.ring_mr)
        return colo_err(-errno, "rdma: register the control ring: %s", strerror(errno));
    ret = crdma_ctrl_build(c);
    if (ret)
        return ret;
    crdma_probe_build(c);
    return 0;
}

/* Debug level (COLO_RDMA_DEBUG=1): what one connection did, when it closes. */
static void debug_summary(const struct crdma_conn *c)
{
    struct crdma_probe_stats p;
    struct crdma_write_stats w;

    if (!c->res.qp_created)
        return;
    p = crdma_probe_stats(c);
    w = crdma_write_stats(c);
    COLO_TRACE(rdma_conn_destroy, p.sent, p.received, w.write_wrs, w.doorbells);
    colo_log(COLO_LOG_DEBUG,
             "rdma: connection closed%s%s: liveness probe %s, %" PRIu64 " sent, %" PRIu64
             " received, %" PRIu64 " refused, %" PRIu64 " re-arms; %" PRIu64 " WRITE WRs in %" PRIu64
             " doorbells",
             c->loss.lost ? ": " : "", c->loss.lost ? c->loss.reason : "", p.state, p.sent,
             p.received, p.refused, p.rearms, w.write_wrs, w.doorbells);
}

void crdma_conn_destroy(struct crdma_conn *c)
{
    if (!c)
        return;
    crdma_heartbeat_stop(c);
    debug_summary(c);
    crdma_conn_begin_teardown(c);
    /* 1. The probe's QP and address handle, then the QP: no more work can
     * start or complete after this. */
    crdma_probe_destroy(c);
    if (c->res.qp_created)
        colo_verbs->destroy_qp(c->res.id);
    /* 2. CQ, after acking every event taken from its channel. */
    if (c->res.cq) {
        crdma_wait_ack_all(c);
        colo_verbs->destroy_cq(c->res.cq);
    }
    /* 3. The completion channel, only once its CQ is gone (else EBUSY). */
    if (c->res.cc)
        colo_verbs->destroy_comp_channel(c->res.cc);
    /* 4. MRs: control ring, then RAM or cache chunks. */
    if (c->res.ring_mr)
        colo_verbs->dereg_mr(c->res.ring_mr);
    crdma_mr_release(c);
    free(c->res.ring);
    /* 5. PD, 6. cm_id, 7. event channel. */
    if (c->res.pd)
        colo_verbs->dealloc_pd(c->res.pd);
    if (c->res.id)
        colo_verbs->destroy_id(c->res.id);
    if (c->res.ec)
        colo_verbs->destroy_event_channel(c->res.ec);
    crdma_wait_fini(c);
    crdma_heartbeat_fini(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
