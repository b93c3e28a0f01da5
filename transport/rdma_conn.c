/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/net.h"
#include "transport/rdma_conn.h"

int crdma_conn_new(struct crdma_conn **out)
{
    struct crdma_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return colo_err(-ENOMEM, "rdma: out of memory");
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wake_fd < 0) {
        int err = errno;

        free(c);
        return colo_err(-err, "rdma: eventfd: %s", strerror(err));
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->hb_cond, NULL);
    c->refs = 1;
    *out = c;
    return 0;
}

void crdma_conn_lost(struct crdma_conn *c, int err, const char *fmt, ...)
{
    va_list ap;

    if (c->lost)
        return;
    c->lost = true;
    c->lost_err = err;
    va_start(ap, fmt);
    vsnprintf(c->lost_reason, sizeof(c->lost_reason), fmt, ap);
    va_end(ap);
    /* Any thread: the heartbeat thread declares most losses. */
    COLO_TRACE(rdma_conn_lost, err);
    colo_log(COLO_LOG_WARNING, "rdma: peer lost: %s", c->lost_reason);
}

int crdma_conn_lost_error(const struct crdma_conn *c)
{
    return colo_err(c->lost_err, "%s", c->lost_reason);
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

    ret = colo_verbs->query_device(c->id->verbs, &dev);
    if (ret)
        return colo_err(-ret, "rdma: query device: %s", strerror(ret));
    ret = colo_verbs->query_port(c->id->verbs, c->id->port_num, &port);
    if (ret)
        return colo_err(-ret, "rdma: query port %u: %s", c->id->port_num, strerror(ret));
    if (port.state != IBV_PORT_ACTIVE)
        return colo_err(-ENETDOWN, "rdma: port %u of %s is %s, expected PORT_ACTIVE",
                        c->id->port_num, ibv_get_device_name(c->id->verbs->device),
                        ibv_port_state_str(port.state));
    c->lim.max_qp_wr = (uint32_t)dev.max_qp_wr;
    c->lim.max_sge = (uint32_t)dev.max_sge;
    c->lim.max_mr_size = dev.max_mr_size;
    c->lim.max_mr = (uint32_t)dev.max_mr;
    c->lim.max_msg_size = port.max_msg_sz;
    c->lim.active_mtu = mtu_bytes(port.active_mtu);
    c->lim.sq_depth = c->lim.max_qp_wr < CRDMA_SQ_DEPTH ? c->lim.max_qp_wr : CRDMA_SQ_DEPTH;
    return 0;
}

static int create_qp(struct crdma_conn *c)
{
    struct ibv_qp_init_attr attr = {
        .send_cq = c->cq,
        .recv_cq = c->cq,
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0, /* selective signaling */
        .cap = {
            .max_send_wr = c->lim.sq_depth,
            .max_recv_wr = CRDMA_RECV_DEPTH,
            .max_send_sge = 1,
            .max_recv_sge = 1,
            .max_inline_data = CRDMA_WANT_INLINE,
        },
    };

    if (colo_verbs->create_qp(c->id, c->pd, &attr)) {
        /* Some devices give no inline data at all: ask again without. */
        attr.cap.max_inline_data = 0;
        if (colo_verbs->create_qp(c->id, c->pd, &attr))
            return colo_err(-errno, "rdma: create QP (%" PRIu32 " send, %d receive WRs): %s",
                            c->lim.sq_depth, CRDMA_RECV_DEPTH, strerror(errno));
    }
    c->qp_created = true;
    c->lim.max_inline = attr.cap.max_inline_data;
    c->sq_free = c->lim.sq_depth;
    return 0;
}

int crdma_conn_build(struct crdma_conn *c)
{
    size_t ring = CRDMA_RING_BYTES;
    int ret;

    ret = query_limits(c);
    if (ret)
        return ret;
    c->pd = colo_verbs->alloc_pd(c->id->verbs);
    if (!c->pd)
        return colo_err(-ENOMEM, "rdma: allocate protection domain: %s", strerror(errno));
    c->cc = colo_verbs->create_comp_channel(c->id->verbs);
    if (!c->cc)
        return colo_err(-errno, "rdma: create completion channel: %s", strerror(errno));
    ret = colo_set_nonblock(c->cc->fd);
    if (ret)
        return colo_err(ret, "rdma: completion channel: %s", strerror(-ret));
    c->cq = colo_verbs->create_cq(c->id->verbs,
                                  (int)(c->lim.sq_depth + CRDMA_RECV_DEPTH + CRDMA_PROBE_SENDS +
                                        CRDMA_PROBE_RECVS),
                                  c, c->cc, 0);
    if (!c->cq)
        return colo_err(-errno, "rdma: create completion queue: %s", strerror(errno));
    ret = create_qp(c);
    if (ret)
        return ret;
    c->ctrl_buf = aligned_alloc(4096, ring);
    if (!c->ctrl_buf)
        return colo_err(-ENOMEM, "rdma: out of memory for the control ring");
    memset(c->ctrl_buf, 0, ring);
    c->ctrl_mr = colo_verbs->reg_mr(c->pd, c->ctrl_buf, ring, IBV_ACCESS_LOCAL_WRITE);
    if (!c->ctrl_mr)
        return colo_err(-errno, "rdma: register the control ring: %s", strerror(errno));
    c->peer_credits = CRDMA_RECV_DEPTH;
    ret = crdma_ctrl_post_all_recvs(c);
    if (ret)
        return ret;
    crdma_probe_build(c);
    return 0;
}

/* Debug level (COLO_RDMA_DEBUG=1): what one connection did, when it closes. */
static void debug_summary(const struct crdma_conn *c)
{
    if (!c->qp_created)
        return;
    COLO_TRACE(rdma_conn_destroy, c->probes_sent, c->probes_received, c->write_wrs, c->doorbells);
    colo_log(COLO_LOG_DEBUG,
             "rdma: connection closed%s%s: liveness probe %s, %" PRIu64 " sent, %" PRIu64
             " received, %" PRIu64 " refused, %" PRIu64 " re-arms; %" PRIu64 " WRITE WRs in %" PRIu64
             " doorbells",
             c->lost ? ": " : "", c->lost ? c->lost_reason : "",
             c->probe_qp ? (c->probe_ah ? "on" : "off") : "unavailable", c->probes_sent,
             c->probes_received, c->probes_refused, c->probe_rearms, c->write_wrs, c->doorbells);
}

void crdma_conn_destroy(struct crdma_conn *c)
{
    if (!c)
        return;
    crdma_heartbeat_stop(c);
    debug_summary(c);
    c->tearing_down = true;
    /* 1. The probe's QP and address handle, then the QP: no more work can
     * start or complete after this. */
    crdma_probe_destroy(c);
    if (c->qp_created)
        colo_verbs->destroy_qp(c->id);
    /* 2. CQ, after acking every event taken from its channel. */
    if (c->cq) {
        if (c->cq_events_unacked)
            colo_verbs->ack_cq_events(c->cq, c->cq_events_unacked);
        colo_verbs->destroy_cq(c->cq);
    }
    /* 3. The completion channel, only once its CQ is gone (else EBUSY). */
    if (c->cc)
        colo_verbs->destroy_comp_channel(c->cc);
    /* 4. MRs: control ring, then RAM or cache chunks. */
    if (c->ctrl_mr)
        colo_verbs->dereg_mr(c->ctrl_mr);
    for (uint32_t i = 0; i < c->nram_mrs; i++)
        colo_verbs->dereg_mr(c->ram_mrs[i]);
    free(c->ctrl_buf);
    /* 5. PD, 6. cm_id, 7. event channel. */
    if (c->pd)
        colo_verbs->dealloc_pd(c->pd);
    if (c->id)
        colo_verbs->destroy_id(c->id);
    if (c->ec)
        colo_verbs->destroy_event_channel(c->ec);
    close(c->wake_fd);
    pthread_cond_destroy(&c->hb_cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void crdma_conn_wake(struct crdma_conn *c)
{
    uint64_t one = 1;

    if (write(c->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return; /* the eventfd can only be full: a wake is pending anyway */
}
