/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "transport/verbs_shim.h"

static struct crdma_verbs_counts counts;

static void count(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

void crdma_verbs_counts_get(struct crdma_verbs_counts *out)
{
    out->wr_posted = __atomic_load_n(&counts.wr_posted, __ATOMIC_RELAXED);
    out->doorbells = __atomic_load_n(&counts.doorbells, __ATOMIC_RELAXED);
    out->completions = __atomic_load_n(&counts.completions, __ATOMIC_RELAXED);
    out->cq_wakeups = __atomic_load_n(&counts.cq_wakeups, __ATOMIC_RELAXED);
}

/* Wrappers for the verbs that are static inline in the headers; the post,
 * poll and event wrappers also count (struct crdma_verbs_counts). */
static int shim_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
    return ibv_req_notify_cq(cq, solicited_only);
}

static int shim_get_cq_event(struct ibv_comp_channel *cc, struct ibv_cq **cq, void **cq_ctx)
{
    int ret = ibv_get_cq_event(cc, cq, cq_ctx);

    if (!ret)
        count(&counts.cq_wakeups, 1);
    return ret;
}

static int shim_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    int ret = ibv_poll_cq(cq, n, wc);

    if (ret > 0)
        count(&counts.completions, (uint64_t)ret);
    return ret;
}

static int shim_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    int ret = ibv_post_send(qp, wr, bad);
    uint64_t n = 0;

    /* on failure *bad is the first request not posted */
    for (; wr && !(ret && wr == *bad); wr = wr->next)
        n++;
    count(&counts.doorbells, 1);
    count(&counts.wr_posted, n);
    return ret;
}

static int shim_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    int ret = ibv_post_recv(qp, wr, bad);
    uint64_t n = 0;

    for (; wr && !(ret && wr == *bad); wr = wr->next)
        n++;
    count(&counts.doorbells, 1);
    count(&counts.wr_posted, n);
    return ret;
}

static int shim_query_port(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr)
{
    return ibv_query_port(ctx, port, attr);
}

static struct ibv_mr *shim_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
    return ibv_reg_mr(pd, addr, len, access);
}

const struct colo_verbs colo_verbs_real = {
    .create_event_channel = rdma_create_event_channel,
    .destroy_event_channel = rdma_destroy_event_channel,
    .create_id = rdma_create_id,
    .destroy_id = rdma_destroy_id,
    .migrate_id = rdma_migrate_id,
    .set_option = rdma_set_option,
    .resolve_addr = rdma_resolve_addr,
    .resolve_route = rdma_resolve_route,
    .bind_addr = rdma_bind_addr,
    .listen = rdma_listen,
    .connect = rdma_connect,
    .accept = rdma_accept,
    .reject = rdma_reject,
    .disconnect = rdma_disconnect,
    .get_src_port = rdma_get_src_port,
    .get_cm_event = rdma_get_cm_event,
    .ack_cm_event = rdma_ack_cm_event,
    .create_qp = rdma_create_qp,
    .destroy_qp = rdma_destroy_qp,
    .init_qp_attr = rdma_init_qp_attr,
    .create_plain_qp = ibv_create_qp,
    .modify_qp = ibv_modify_qp,
    .destroy_plain_qp = ibv_destroy_qp,
    .create_ah = ibv_create_ah,
    .destroy_ah = ibv_destroy_ah,
    .alloc_pd = ibv_alloc_pd,
    .dealloc_pd = ibv_dealloc_pd,
    .create_comp_channel = ibv_create_comp_channel,
    .destroy_comp_channel = ibv_destroy_comp_channel,
    .create_cq = ibv_create_cq,
    .destroy_cq = ibv_destroy_cq,
    .req_notify_cq = shim_req_notify_cq,
    .get_cq_event = shim_get_cq_event,
    .ack_cq_events = ibv_ack_cq_events,
    .poll_cq = shim_poll_cq,
    .reg_mr = shim_reg_mr,
    .dereg_mr = ibv_dereg_mr,
    .post_send = shim_post_send,
    .post_recv = shim_post_recv,
    .query_device = ibv_query_device,
    .query_port = shim_query_port,
    .get_async_event = ibv_get_async_event,
    .ack_async_event = ibv_ack_async_event,
};

const struct colo_verbs *colo_verbs = &colo_verbs_real;
