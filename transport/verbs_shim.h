/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every libibverbs and librdmacm call of the rdma backend goes through this
 * table. Many verbs are static inline and cannot be interposed by the linker;
 * a table can be swapped by unit tests, which mock the device, inject post
 * errors and bad completions, and count what was created and destroyed.
 */
#ifndef COLO_TRANSPORT_VERBS_SHIM_H
#define COLO_TRANSPORT_VERBS_SHIM_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* What this process's library did through the real table (the unit tests'
 * tables count nothing here); relaxed atomics, any thread. */
struct crdma_verbs_counts {
    uint64_t wr_posted;   /* work requests in successful or partial posts */
    uint64_t doorbells;   /* post_send and post_recv calls */
    uint64_t completions; /* work completions returned by poll_cq */
    uint64_t cq_wakeups;  /* get_cq_event calls that returned an event */
};
void crdma_verbs_counts_get(struct crdma_verbs_counts *out);

struct colo_verbs {
    struct rdma_event_channel *(*create_event_channel)(void);
    void (*destroy_event_channel)(struct rdma_event_channel *ec);
    int (*create_id)(struct rdma_event_channel *ec, struct rdma_cm_id **id, void *ctx,
                     enum rdma_port_space ps);
    int (*destroy_id)(struct rdma_cm_id *id);
    int (*migrate_id)(struct rdma_cm_id *id, struct rdma_event_channel *ec);
    int (*set_option)(struct rdma_cm_id *id, int level, int name, void *val, size_t len);
    int (*resolve_addr)(struct rdma_cm_id *id, struct sockaddr *src, struct sockaddr *dst,
                        int timeout_ms);
    int (*resolve_route)(struct rdma_cm_id *id, int timeout_ms);
    int (*bind_addr)(struct rdma_cm_id *id, struct sockaddr *addr);
    int (*listen)(struct rdma_cm_id *id, int backlog);
    int (*connect)(struct rdma_cm_id *id, struct rdma_conn_param *param);
    int (*accept)(struct rdma_cm_id *id, struct rdma_conn_param *param);
    int (*reject)(struct rdma_cm_id *id, const void *data, uint8_t len);
    int (*disconnect)(struct rdma_cm_id *id);
    __be16 (*get_src_port)(struct rdma_cm_id *id);
    int (*get_cm_event)(struct rdma_event_channel *ec, struct rdma_cm_event **ev);
    int (*ack_cm_event)(struct rdma_cm_event *ev);
    int (*create_qp)(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    void (*destroy_qp)(struct rdma_cm_id *id);
    /* The liveness probe's UD QP, set up by hand next to the cm_id's QP. */
    int (*init_qp_attr)(struct rdma_cm_id *id, struct ibv_qp_attr *attr, int *mask);
    struct ibv_qp *(*create_plain_qp)(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
    int (*modify_qp)(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
    int (*destroy_plain_qp)(struct ibv_qp *qp);
    struct ibv_ah *(*create_ah)(struct ibv_pd *pd, struct ibv_ah_attr *attr);
    int (*destroy_ah)(struct ibv_ah *ah);

    struct ibv_pd *(*alloc_pd)(struct ibv_context *ctx);
    int (*dealloc_pd)(struct ibv_pd *pd);
    struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *ctx);
    int (*destroy_comp_channel)(struct ibv_comp_channel *cc);
    struct ibv_cq *(*create_cq)(struct ibv_context *ctx, int cqe, void *cq_ctx,
                                struct ibv_comp_channel *cc, int vector);
    int (*destroy_cq)(struct ibv_cq *cq);
    int (*req_notify_cq)(struct ibv_cq *cq, int solicited_only);
    int (*get_cq_event)(struct ibv_comp_channel *cc, struct ibv_cq **cq, void **cq_ctx);
    void (*ack_cq_events)(struct ibv_cq *cq, unsigned int n);
    int (*poll_cq)(struct ibv_cq *cq, int n, struct ibv_wc *wc);
    struct ibv_mr *(*reg_mr)(struct ibv_pd *pd, void *addr, size_t len, int access);
    int (*dereg_mr)(struct ibv_mr *mr);
    /* Positive errno on failure, as libibverbs returns it. */
    int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
    int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
    int (*query_device)(struct ibv_context *ctx, struct ibv_device_attr *attr);
    int (*query_port)(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr);
    int (*get_async_event)(struct ibv_context *ctx, struct ibv_async_event *ev);
    void (*ack_async_event)(struct ibv_async_event *ev);
};

/* The table in use: the real libraries unless a test installed its own. */
extern const struct colo_verbs *colo_verbs;
extern const struct colo_verbs colo_verbs_real;

#endif
