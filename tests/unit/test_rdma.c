/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rdma backend's logic on any machine: a fake verbs table stands in for
 * the device. Credit accounting, WRITE splitting and batching, the mapping
 * of completion errors, malformed peer messages, the liveness probe, and
 * teardown from every half-built state; connect and accept through the
 * connection manager's events, the sleeping path of the completion wait
 * (completion channel, event channel, async events, wake-up eventfd), and
 * shared-key authentication against a scripted peer over the fake device.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "proto/auth.h"
#include "transport/rdma.h"
#include "transport/rdma_conn.h"
#include "transport/rdma_mr.h"
#include "transport/rdma_write.h"

#include "mock_stream.h"

/* ---- the fake device ---- */

enum step { S_PD, S_CC, S_CQ, S_QP, S_MR, S_RECV, S_NSTEPS };

static struct {
    struct ibv_context ctx;
    struct rdma_cm_id id;
    struct ibv_qp qp;
    struct ibv_qp udqp;      /* the liveness probe's */
    struct ibv_ah ah;
    bool no_ud;              /* the device has no UD QPs */
    int probe_recvs, probe_sends;
    struct ibv_send_wr probe_wr;
    uint8_t probe_sent[CRDMA_PROBE_WIRE];
    struct ibv_pd pd;
    struct ibv_comp_channel cc;
    struct ibv_cq cq;
    struct ibv_mr mrs[64];
    int nmrs;
    int fail_at;             /* enum step that fails, or -1 */
    int fail_qp_tries;       /* create_qp calls that fail */
    char log[256];           /* destroy order: u a q c h m p i e */
    int live;                /* resources created minus destroyed */
    /* the wire */
    struct ibv_send_wr sent[1024];
    struct ibv_sge sent_sge[1024];
    int nsent;
    int post_send_calls;
    int post_send_enomem;    /* next posts that return ENOMEM */
    bool auto_complete;      /* signaled sends complete at once */
    bool probe_auto_complete; /* probe sends too */
    unsigned post_delay_us;  /* an RC post takes this long (rxe runs the QP in it) */
    unsigned slow_link_ms;   /* a slow link: each reap waits this long, then completes
                              * the oldest signaled WRITE (one per reap) */
    uint64_t slow_q[64];
    int slow_head, slow_tail;
    struct crdma_conn *alive_peer; /* its peer shows life at every reap */
    struct ibv_wc cq_q[1024];
    int cq_head, cq_tail;
    int recvs_posted;
    uint8_t *ring;           /* the conn's control buffer, to write peer messages */
    uint32_t recv_fifo[1024]; /* RC receive slots posted, oldest first */
    int recv_fifo_head, recv_fifo_tail;
    /* the completion channel: req_notify "raises" an event for what is staged */
    int notify_on_arm;       /* arms that raise an event */
    int arms, cq_events_taken, cq_events_acked;
    bool staging;            /* cq_push stages instead of completing */
    struct ibv_wc staged[64];
    int nstaged;
    /* async events (one pending at a time) */
    bool async_pending;
    struct ibv_async_event async_ev;
    /* the connection manager */
    bool fail_ec, fail_resolve_addr;
    int addr_ev, route_ev, connect_ev, accept_ev; /* queued by those calls; -1: none */
    int ev_status;
    uint8_t peer_priv[64];   /* what the peer's ESTABLISHED / REJECTED carries */
    uint8_t peer_priv_len;
    uint8_t sent_priv[64];   /* what connect / accept sent */
    uint8_t sent_priv_len;
    struct rdma_conn_param sent_param;
    uint8_t ack_timeout;
    int backlog;
    int rejects;
    uint8_t reject_data[64];
    uint8_t reject_len;
    int disconnects, migrates, ahs;
    int cm_got, cm_acked;
    /* a scripted peer that authenticates (auth_script): fed by our sends */
    bool auth_peer;
    enum colo_role peer_role;
    const char *peer_key;
    bool truncate_proof;
    uint8_t peer_in[256];
    size_t peer_in_len;
    int peer_state;
} fk;

/* Event channels, ids and events of the fake connection manager. */
struct fake_ec {
    struct rdma_event_channel ec; /* fd: an eventfd, readable while events wait */
    struct rdma_cm_event *q[16];
    int head, tail;
};
static struct fake_ec fecs[8];
static int nfecs;
static struct rdma_cm_id fids[8];
static int nfids;
static struct rdma_cm_event fevs[64];
static int nfevs;
static int async_fd = -1; /* the fake device's async fd: an eventfd never written */

static void logd(char c)
{
    size_t n = strlen(fk.log);

    fk.log[n] = c;
    fk.log[n + 1] = '\0';
    fk.live--;
}

static void cq_push(uint64_t wr_id, enum ibv_wc_status st, uint32_t len)
{
    enum ibv_wc_opcode op;

    switch (CRDMA_WR_KIND(wr_id)) {
    case CRDMA_WR_RECV:
    case CRDMA_WR_PROBE_RECV:
        op = IBV_WC_RECV;
        break;
    case CRDMA_WR_WRITE:
        op = IBV_WC_RDMA_WRITE;
        break;
    default:
        op = IBV_WC_SEND;
    }
    if (fk.staging) {
        fk.staged[fk.nstaged++] =
            (struct ibv_wc){.wr_id = wr_id, .status = st, .opcode = op, .byte_len = len};
        return;
    }
    fk.cq_q[fk.cq_tail++ % 1024] =
        (struct ibv_wc){.wr_id = wr_id, .status = st, .opcode = op, .byte_len = len};
}

static struct ibv_pd *f_alloc_pd(struct ibv_context *c)
{
    if (fk.fail_at == S_PD)
        return errno = ENOMEM, NULL;
    fk.live++;
    return &fk.pd;
}

static int f_dealloc_pd(struct ibv_pd *pd)
{
    logd('p');
    return 0;
}

static struct ibv_comp_channel *f_create_cc(struct ibv_context *c)
{
    if (fk.fail_at == S_CC)
        return errno = EMFILE, NULL;
    fk.live++;
    fk.cc.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* written when an event is raised */
    return &fk.cc;
}

static int f_destroy_cc(struct ibv_comp_channel *cc)
{
    close(cc->fd);
    logd('h');
    return 0;
}

static struct ibv_cq *f_create_cq(struct ibv_context *c, int cqe, void *ctx,
                                  struct ibv_comp_channel *cc, int v)
{
    if (fk.fail_at == S_CQ)
        return errno = ENOMEM, NULL;
    fk.live++;
    return &fk.cq;
}

static int f_destroy_cq(struct ibv_cq *cq)
{
    logd('c');
    return 0;
}

static int f_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    if (fk.fail_at == S_QP || fk.fail_qp_tries-- > 0)
        return errno = EINVAL, -1;
    fk.live++;
    a->cap.max_inline_data = a->cap.max_inline_data ? 32 : 0;
    id->qp = &fk.qp;
    return 0;
}

static void f_destroy_qp(struct rdma_cm_id *id)
{
    logd('q');
}

static struct ibv_qp *f_create_plain_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *a)
{
    if (fk.no_ud || a->qp_type != IBV_QPT_UD)
        return errno = EOPNOTSUPP, NULL;
    fk.live++;
    fk.udqp.qp_num = 0x4242;
    return &fk.udqp;
}

static int f_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask)
{
    return 0;
}

static int f_destroy_plain_qp(struct ibv_qp *qp)
{
    logd('u');
    return 0;
}

static int f_init_qp_attr(struct rdma_cm_id *id, struct ibv_qp_attr *a, int *mask)
{
    *mask = IBV_QP_STATE | IBV_QP_AV;
    return 0;
}

static struct ibv_ah *f_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *a)
{
    fk.live++;
    fk.ahs++;
    return &fk.ah;
}

static int f_destroy_ah(struct ibv_ah *ah)
{
    logd('a');
    return 0;
}

static struct ibv_mr *f_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access)
{
    struct ibv_mr *mr;

    if (fk.fail_at == S_MR)
        return errno = ENOMEM, NULL;
    fk.live++;
    mr = &fk.mrs[fk.nmrs++];
    mr->addr = addr;
    mr->length = len;
    mr->lkey = 0x100 + (uint32_t)fk.nmrs;
    mr->rkey = 0x200 + (uint32_t)fk.nmrs;
    if (len == CRDMA_RING_BYTES)
        fk.ring = addr;
    return mr;
}

static int f_dereg_mr(struct ibv_mr *mr)
{
    logd('m');
    return 0;
}

static int f_destroy_id(struct rdma_cm_id *id)
{
    logd('i');
    return 0;
}

static void f_destroy_ec(struct rdma_event_channel *ec)
{
    for (int i = 0; i < nfecs; i++)
        if (ec == &fecs[i].ec)
            close(ec->fd);
    logd('e');
}

static int f_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    if (fk.fail_at == S_RECV)
        return EINVAL;
    for (; wr; wr = wr->next) {
        (*(qp == &fk.udqp ? &fk.probe_recvs : &fk.recvs_posted))++;
        if (qp != &fk.udqp)
            fk.recv_fifo[fk.recv_fifo_tail++ % 1024] = (uint32_t)CRDMA_WR_N(wr->wr_id);
    }
    return 0;
}

static void auth_script(const struct ibv_send_wr *wr);

static int f_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    if (qp == &fk.udqp) {
        fk.probe_sends++;
        fk.probe_wr = *wr;
        memcpy(fk.probe_sent, (void *)(uintptr_t)wr->sg_list->addr, CRDMA_PROBE_WIRE);
        if (fk.probe_auto_complete)
            cq_push(wr->wr_id, IBV_WC_SUCCESS, 0);
        return 0;
    }
    fk.post_send_calls++;
    if (fk.post_delay_us)
        usleep(fk.post_delay_us);
    if (fk.post_send_enomem > 0) {
        fk.post_send_enomem--;
        *bad = wr;
        return ENOMEM;
    }
    for (; wr; wr = wr->next) {
        fk.sent_sge[fk.nsent] = *wr->sg_list;
        fk.sent[fk.nsent] = *wr;
        fk.sent[fk.nsent].sg_list = &fk.sent_sge[fk.nsent];
        fk.nsent++;
        if (fk.slow_link_ms && wr->opcode == IBV_WR_RDMA_WRITE &&
            (wr->send_flags & IBV_SEND_SIGNALED))
            fk.slow_q[fk.slow_tail++ % 64] = wr->wr_id;
        else if (fk.auto_complete && (wr->send_flags & IBV_SEND_SIGNALED))
            cq_push(wr->wr_id, IBV_WC_SUCCESS, 0);
        if (fk.auth_peer)
            auth_script(wr);
    }
    return 0;
}

static int f_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    int got = 0;

    if (fk.alive_peer)
        crdma_heartbeat_heard(fk.alive_peer);
    if (fk.slow_head < fk.slow_tail) {
        usleep(fk.slow_link_ms * 1000);
        cq_push(fk.slow_q[fk.slow_head++ % 64], IBV_WC_SUCCESS, 0);
    }
    while (got < n && fk.cq_head < fk.cq_tail)
        wc[got++] = fk.cq_q[fk.cq_head++ % 1024];
    return got;
}

/* Arming raises an event on the channel (notify_on_arm): what is staged
 * completes only once the waiter takes the event, as a completion that
 * arrives while it sleeps. */
static int f_req_notify(struct ibv_cq *cq, int s)
{
    uint64_t one = 1;

    fk.arms++;
    if (fk.notify_on_arm > 0) {
        fk.notify_on_arm--;
        assert_int_equal(write(fk.cc.fd, &one, sizeof(one)), sizeof(one));
    }
    return 0;
}

static int f_get_cq_event(struct ibv_comp_channel *cc, struct ibv_cq **cq, void **ctx)
{
    uint64_t n;

    if (read(cc->fd, &n, sizeof(n)) != sizeof(n))
        return errno = EAGAIN, -1;
    for (int i = 0; i < fk.nstaged; i++)
        fk.cq_q[fk.cq_tail++ % 1024] = fk.staged[i];
    fk.nstaged = 0;
    fk.cq_events_taken++;
    *cq = &fk.cq;
    *ctx = NULL;
    return 0;
}

static void f_ack_cq_events(struct ibv_cq *cq, unsigned n)
{
    fk.cq_events_acked += (int)n;
    logd('k');
    fk.live++; /* an ack destroys nothing */
}

static int f_query_device(struct ibv_context *c, struct ibv_device_attr *a)
{
    memset(a, 0, sizeof(*a));
    a->max_qp_wr = 16; /* a small send queue, to exercise batching */
    a->max_sge = 4;
    a->max_mr_size = 1 << 20;
    a->max_mr = 100;
    return 0;
}

static int f_query_port(struct ibv_context *c, uint8_t p, struct ibv_port_attr *a)
{
    memset(a, 0, sizeof(*a));
    a->state = IBV_PORT_ACTIVE;
    a->max_msg_sz = 1 << 16;
    a->active_mtu = IBV_MTU_1024;
    return 0;
}

static int f_get_async_event(struct ibv_context *c, struct ibv_async_event *e)
{
    if (!fk.async_pending)
        return errno = EAGAIN, -1;
    fk.async_pending = false;
    *e = fk.async_ev;
    return 0;
}

static void f_ack_async_event(struct ibv_async_event *e)
{
}

static struct fake_ec *fake_ec_of(struct rdma_event_channel *ec)
{
    for (int i = 0; i < nfecs; i++)
        if (ec == &fecs[i].ec)
            return &fecs[i];
    return NULL;
}

/* Queues a connection-manager event on ec (-1: none) and makes its fd readable. */
static void cm_queue(struct rdma_event_channel *ec, int type, struct rdma_cm_id *id,
                     const void *priv, uint8_t priv_len)
{
    struct fake_ec *f = fake_ec_of(ec);
    struct rdma_cm_event *ev;
    uint64_t one = 1;

    if (type < 0)
        return;
    assert_non_null(f);
    ev = &fevs[nfevs++];
    *ev = (struct rdma_cm_event){.id = id, .event = (enum rdma_cm_event_type)type,
                                 .status = fk.ev_status};
    ev->param.conn.private_data = priv;
    ev->param.conn.private_data_len = priv_len;
    f->q[f->tail++ % 16] = ev;
    assert_int_equal(write(ec->fd, &one, sizeof(one)), sizeof(one));
}

static int f_get_cm_event(struct rdma_event_channel *ec, struct rdma_cm_event **e)
{
    struct fake_ec *f = fake_ec_of(ec);
    uint64_t n;

    if (!f || f->head == f->tail)
        return errno = EAGAIN, -1;
    *e = f->q[f->head++ % 16];
    if (f->head == f->tail && read(ec->fd, &n, sizeof(n)) != sizeof(n))
        fail_msg("event channel fd not readable with an event queued");
    fk.cm_got++;
    return 0;
}

static int f_ack_cm_event(struct rdma_cm_event *e)
{
    fk.cm_acked++;
    return 0;
}

static struct rdma_event_channel *f_create_ec(void)
{
    struct fake_ec *f;

    if (fk.fail_ec)
        return errno = ENODEV, NULL;
    f = &fecs[nfecs++];
    memset(f, 0, sizeof(*f));
    f->ec.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    fk.live++;
    return &f->ec;
}

/* An id as the connection manager makes one (create_id, or a connect request's). */
static struct rdma_cm_id *fake_id(struct rdma_event_channel *ec, void *ctx)
{
    struct rdma_cm_id *id = &fids[nfids++];

    memset(id, 0, sizeof(*id));
    id->verbs = &fk.ctx;
    id->port_num = 1;
    id->channel = ec;
    id->context = ctx;
    fk.live++;
    return id;
}

static int f_create_id(struct rdma_event_channel *ec, struct rdma_cm_id **id, void *ctx,
                       enum rdma_port_space ps)
{
    *id = fake_id(ec, ctx);
    return 0;
}

static int f_migrate_id(struct rdma_cm_id *id, struct rdma_event_channel *ec)
{
    fk.migrates++;
    id->channel = ec;
    return 0;
}

static int f_set_option(struct rdma_cm_id *id, int level, int name, void *val, size_t len)
{
    if (level == RDMA_OPTION_ID && name == RDMA_OPTION_ID_ACK_TIMEOUT && len == 1)
        fk.ack_timeout = *(uint8_t *)val;
    return 0;
}

static int f_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src, struct sockaddr *dst,
                          int timeout_ms)
{
    if (fk.fail_resolve_addr)
        return errno = EADDRNOTAVAIL, -1;
    cm_queue(id->channel, fk.addr_ev, id, NULL, 0);
    return 0;
}

static int f_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
    cm_queue(id->channel, fk.route_ev, id, NULL, 0);
    return 0;
}

static void keep_param(const struct rdma_conn_param *p)
{
    fk.sent_param = *p;
    fk.sent_priv_len = p->private_data_len;
    memcpy(fk.sent_priv, p->private_data, p->private_data_len);
}

static int f_connect(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
    keep_param(p);
    cm_queue(id->channel, fk.connect_ev, id, fk.peer_priv_len ? fk.peer_priv : NULL,
             fk.peer_priv_len);
    return 0;
}

static int f_accept(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
    keep_param(p);
    cm_queue(id->channel, fk.accept_ev, id, NULL, 0);
    return 0;
}

static int f_reject(struct rdma_cm_id *id, const void *data, uint8_t len)
{
    fk.rejects++;
    fk.reject_len = len;
    if (len)
        memcpy(fk.reject_data, data, len);
    return 0;
}

static int f_disconnect(struct rdma_cm_id *id)
{
    fk.disconnects++;
    return 0;
}

static int f_bind_addr(struct rdma_cm_id *id, struct sockaddr *a)
{
    return 0;
}

static int f_listen(struct rdma_cm_id *id, int backlog)
{
    fk.backlog = backlog;
    return 0;
}

static __be16 f_get_src_port(struct rdma_cm_id *id)
{
    return htons(4711);
}

static const struct colo_verbs fake = {
    .alloc_pd = f_alloc_pd,
    .dealloc_pd = f_dealloc_pd,
    .create_comp_channel = f_create_cc,
    .destroy_comp_channel = f_destroy_cc,
    .create_cq = f_create_cq,
    .destroy_cq = f_destroy_cq,
    .create_qp = f_create_qp,
    .destroy_qp = f_destroy_qp,
    .create_plain_qp = f_create_plain_qp,
    .modify_qp = f_modify_qp,
    .destroy_plain_qp = f_destroy_plain_qp,
    .init_qp_attr = f_init_qp_attr,
    .create_ah = f_create_ah,
    .destroy_ah = f_destroy_ah,
    .reg_mr = f_reg_mr,
    .dereg_mr = f_dereg_mr,
    .destroy_id = f_destroy_id,
    .destroy_event_channel = f_destroy_ec,
    .post_recv = f_post_recv,
    .post_send = f_post_send,
    .poll_cq = f_poll_cq,
    .req_notify_cq = f_req_notify,
    .get_cq_event = f_get_cq_event,
    .ack_cq_events = f_ack_cq_events,
    .query_device = f_query_device,
    .query_port = f_query_port,
    .get_async_event = f_get_async_event,
    .ack_async_event = f_ack_async_event,
    .get_cm_event = f_get_cm_event,
    .ack_cm_event = f_ack_cm_event,
    .create_event_channel = f_create_ec,
    .create_id = f_create_id,
    .migrate_id = f_migrate_id,
    .set_option = f_set_option,
    .resolve_addr = f_resolve_addr,
    .resolve_route = f_resolve_route,
    .connect = f_connect,
    .accept = f_accept,
    .reject = f_reject,
    .disconnect = f_disconnect,
    .bind_addr = f_bind_addr,
    .listen = f_listen,
    .get_src_port = f_get_src_port,
};

static struct rdma_event_channel plain_ec; /* fd 0: never polled by these tests */

/* A connection built on the fake device (no event channel unless asked). */
static struct crdma_conn *fake_conn(bool with_ec)
{
    struct crdma_conn *c;

    assert_int_equal(crdma_conn_new(&c), 0);
    c->res.id = &fk.id;
    fk.live++; /* the id */
    if (with_ec) {
        c->res.ec = &plain_ec;
        fk.live++;
    }
    return c;
}

static int setup(void **state)
{
    memset(&fk, 0, sizeof(fk));
    nfecs = nfids = nfevs = 0;
    fk.fail_at = -1;
    fk.auto_complete = true;
    fk.addr_ev = RDMA_CM_EVENT_ADDR_RESOLVED;
    fk.route_ev = RDMA_CM_EVENT_ROUTE_RESOLVED;
    fk.connect_ev = RDMA_CM_EVENT_ESTABLISHED;
    fk.accept_ev = RDMA_CM_EVENT_ESTABLISHED;
    if (async_fd < 0)
        async_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    fk.ctx.async_fd = async_fd;
    fk.id.verbs = &fk.ctx;
    fk.id.port_num = 1;
    colo_verbs = &fake;
    return 0;
}

static int teardown(void **state)
{
    colo_verbs = &colo_verbs_real;
    return 0;
}

/* ---- teardown from every half-built state ---- */

static void test_teardown_from_each_step(void **state)
{
    /* what each failure leaves to destroy, in the documented order */
    static const char *want[S_NSTEPS + 1] = {
        [S_PD] = "ie", [S_CC] = "pie", [S_CQ] = "hpie", [S_QP] = "chpie",
        [S_MR] = "qchpie", [S_RECV] = "qchmpie", [S_NSTEPS] = "uqchmpie",
    };

    for (int step = 0; step <= S_NSTEPS; step++) {
        struct crdma_conn *c;
        int ret;

        setup(NULL);
        fk.fail_at = step < S_NSTEPS ? step : -1;
        c = fake_conn(true);
        ret = crdma_conn_build(c);
        if (step < S_NSTEPS) {
            assert_int_not_equal(ret, 0);
            assert_true(strlen(colo_errormsg()) > 0);
        } else {
            assert_int_equal(ret, 0);
            assert_int_equal(fk.recvs_posted, CRDMA_RECV_DEPTH);
            assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS);
        }
        crdma_conn_destroy(c);
        assert_string_equal(fk.log, want[step]);
        assert_int_equal(fk.live, 0);
    }
    crdma_conn_destroy(NULL);
}

static void test_qp_without_inline_is_retried(void **state)
{
    struct crdma_conn *c = fake_conn(false);

    fk.fail_qp_tries = 1;
    assert_int_equal(crdma_conn_build(c), 0);
    assert_int_equal(c->res.lim.max_inline, 0);
    assert_int_equal(c->res.lim.sq_depth, 16);
    crdma_conn_destroy(c);
}

/* ---- the liveness probe ---- */

/* Puts a probe datagram into probe receive slot `slot` and completes it. */
static void peer_probes(struct crdma_conn *c, uint32_t slot, uint32_t src_qp, uint32_t cookie)
{
    uint8_t *m = fk.ring + CRDMA_PROBE_AREA_OFFSET + (size_t)slot * CRDMA_PROBE_SLOT +
                 CRDMA_PROBE_GRH;

    colo_put_be32(m, CRDMA_PROBE_MAGIC);
    colo_put_be32(m + 4, cookie);
    colo_put_be64(m + 8, 7);
    fk.cq_q[fk.cq_tail++ % 1024] = (struct ibv_wc){
        .wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, slot),
        .status = IBV_WC_SUCCESS,
        .opcode = IBV_WC_RECV,
        .byte_len = CRDMA_PROBE_GRH + CRDMA_PROBE_WIRE,
        .src_qp = src_qp,
    };
}

static void test_probe_counts_as_life(void **state)
{
    struct crdma_conn *c = fake_conn(true);

    assert_int_equal(crdma_conn_build(c), 0);
    assert_non_null(c->probe.qp);
    crdma_probe_connect(c, 0x77, 0xc00c1e);
    assert_non_null(c->probe.ah);
    /* A probe goes to the peer's QPN with the peer's cookie; one at a time. */
    crdma_probe_send(c);
    crdma_probe_send(c);
    assert_int_equal(fk.probe_sends, 1);
    assert_int_equal(fk.probe_wr.wr.ud.remote_qpn, 0x77);
    assert_int_equal(fk.probe_wr.wr.ud.remote_qkey, CRDMA_PROBE_QKEY);
    assert_ptr_equal(fk.probe_wr.wr.ud.ah, &fk.ah);
    assert_int_equal(colo_get_be32(fk.probe_sent), CRDMA_PROBE_MAGIC);
    assert_int_equal(colo_get_be32(fk.probe_sent + 4), 0xc00c1e);
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_SEND, 0), IBV_WC_SUCCESS, 0);
    assert_int_equal(crdma_progress(c), 0);
    crdma_probe_send(c);
    assert_int_equal(fk.probe_sends, 2);
    /* A good probe is life; its buffer goes straight back. */
    c->live.last_rx_ns = 1;
    peer_probes(c, 3, 0x77, c->probe.cookie);
    assert_int_equal(crdma_progress(c), 0);
    assert_true(c->live.last_rx_ns > 1);
    assert_int_equal(c->probe.received, 1);
    assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS + 1);
    /* From another QP, or with another cookie: refused, not life. */
    c->live.last_rx_ns = 1;
    peer_probes(c, 4, 0x78, c->probe.cookie);
    peer_probes(c, 5, 0x77, c->probe.cookie + 1);
    assert_int_equal(crdma_progress(c), 0);
    assert_int_equal(c->live.last_rx_ns, 1);
    assert_int_equal(c->probe.refused, 2);
    assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS + 3);
    assert_false(c->loss.lost);
    crdma_conn_destroy(c);
    assert_string_equal(fk.log, "uaqchmpie");
    assert_int_equal(fk.live, 0);
}

static void test_probe_failures_are_not_the_connections(void **state)
{
    struct crdma_conn *c = fake_conn(false);

    assert_int_equal(crdma_conn_build(c), 0);
    crdma_probe_connect(c, 0x77, 1);
    crdma_probe_send(c);
    /* A failed probe send puts the probe QP aside; the connection lives on. */
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_SEND, 0), IBV_WC_GENERAL_ERR, 0);
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, 0), IBV_WC_WR_FLUSH_ERR, 0);
    assert_int_equal(crdma_progress(c), 0);
    assert_false(c->loss.lost);
    assert_non_null(c->probe.ah);
    assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS); /* the flushed one not reposted */
    /* The next send re-arms it: every receive posted anew, then the probe. */
    crdma_probe_send(c);
    assert_int_equal(c->probe.rearms, 1);
    assert_int_equal(fk.probe_recvs, 2 * CRDMA_PROBE_RECVS);
    assert_int_equal(fk.probe_sends, 2);
    assert_int_equal(CRDMA_WR_N(fk.probe_wr.wr_id), CRDMA_PROBE_WR_N(1, 0));
    /* What the old QP still flushes is not the new one's. */
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, CRDMA_PROBE_WR_N(0, 1)), IBV_WC_WR_FLUSH_ERR, 0);
    assert_int_equal(crdma_progress(c), 0);
    assert_false(c->probe.broken);
    assert_true(c->probe.send_busy);
    crdma_conn_destroy(c);
    assert_string_equal(fk.log, "uaqchmpi"); /* the address handle went with the probe */
}

/* Anyone can send the probe QP a datagram that does not fit: it recovers. */
static void test_probe_survives_malformed_datagrams(void **state)
{
    struct crdma_conn *c = fake_conn(true);
    uint32_t gen1 = CRDMA_PROBE_WR_N(1, 0);

    assert_int_equal(crdma_conn_build(c), 0);
    crdma_probe_connect(c, 0x77, 0x5eed);
    crdma_probe_send(c);
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_SEND, 0), IBV_WC_SUCCESS, 0);
    /* Too long for the slot: the UD QP is in error, its receives flushed. */
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, 2), IBV_WC_LOC_LEN_ERR, 0);
    for (uint32_t i = 0; i < CRDMA_PROBE_RECVS; i++)
        if (i != 2)
            cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, i), IBV_WC_WR_FLUSH_ERR, 0);
    assert_int_equal(crdma_progress(c), 0);
    assert_false(c->loss.lost);
    assert_int_equal(c->probe.refused, 1);
    /* ... a probe from the peer is life again once the next tick re-armed it */
    crdma_probe_send(c);
    assert_int_equal(c->probe.rearms, 1);
    assert_int_equal(fk.probe_sends, 2);
    c->live.last_rx_ns = 1;
    peer_probes(c, 5, 0x77, c->probe.cookie);
    fk.cq_q[(fk.cq_tail - 1) % 1024].wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, gen1 | 5);
    assert_int_equal(crdma_progress(c), 0);
    assert_true(c->live.last_rx_ns > 1);
    assert_int_equal(c->probe.received, 1);
    /* A datagram with immediate data, well-formed or not, is refused, not life. */
    c->live.last_rx_ns = 1;
    peer_probes(c, 6, 0x77, c->probe.cookie);
    fk.cq_q[(fk.cq_tail - 1) % 1024].wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, gen1 | 6);
    fk.cq_q[(fk.cq_tail - 1) % 1024].wc_flags = IBV_WC_WITH_IMM;
    assert_int_equal(crdma_progress(c), 0);
    assert_int_equal(c->live.last_rx_ns, 1);
    assert_int_equal(c->probe.refused, 2);
    assert_false(c->probe.broken);
    crdma_conn_destroy(c);
    assert_int_equal(fk.live, 0);
}

static void test_no_ud_means_no_probe(void **state)
{
    struct crdma_conn *c = fake_conn(false);

    fk.no_ud = true;
    assert_int_equal(crdma_conn_build(c), 0);
    assert_null(c->probe.qp);
    crdma_probe_connect(c, 0x77, 1);
    crdma_probe_send(c);
    assert_null(c->probe.ah);
    assert_int_equal(fk.probe_sends, 0);
    /* ... and a peer without one (QPN 0) is not probed either. */
    fk.no_ud = false;
    crdma_conn_destroy(c);
    c = fake_conn(false);
    assert_int_equal(crdma_conn_build(c), 0);
    crdma_probe_connect(c, 0, 1);
    assert_null(c->probe.ah);
    crdma_conn_destroy(c);
}

/* ---- credits ---- */

/* Puts a message from the peer into receive slot `slot` and completes it. */
static void peer_sends(struct crdma_conn *c, uint32_t slot, uint16_t type, uint16_t credits,
                       const char *payload)
{
    uint8_t *m = fk.ring + (size_t)slot * CRDMA_SLOT_SIZE;
    uint32_t len = payload ? (uint32_t)strlen(payload) : 0;

    m[0] = (uint8_t)(type >> 8);
    m[1] = (uint8_t)type;
    m[2] = (uint8_t)(credits >> 8);
    m[3] = (uint8_t)credits;
    colo_put_be32(m + 4, len);
    if (len)
        memcpy(m + CRDMA_CTRL_HDR, payload, len);
    cq_push(CRDMA_WR_ID(CRDMA_WR_RECV, slot), IBV_WC_SUCCESS, CRDMA_CTRL_HDR + len);
}

static void test_credits_never_over_post(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    int data = 0;

    c->res.lim.max_qp_wr = 1024;
    assert_int_equal(crdma_conn_build(c), 0);
    c->res.sq_free = 1024; /* the send queue is not what this test limits */
    /* Data may use every credit but the last (deadline 1: long passed). */
    while (crdma_ctrl_send(c, CRDMA_CTRL_DATA, "x", 1, 1) == 0) {
        data++;
        crdma_progress(c); /* send completions free the send slots */
    }
    assert_int_equal(data, CRDMA_RECV_DEPTH - 1);
    assert_int_equal(c->ctrl.peer_credits, 1);
    /* The last credit carries a heartbeat or credit update, then nothing. */
    assert_int_equal(crdma_ctrl_try_send(c, CRDMA_CTRL_HEARTBEAT), 0);
    assert_int_equal(crdma_ctrl_try_send(c, CRDMA_CTRL_CREDIT), -EAGAIN);
    assert_int_equal(fk.nsent, CRDMA_RECV_DEPTH);
    /* A waiting sender gives up at its deadline, naming why. */
    assert_int_equal(crdma_ctrl_send(c, CRDMA_CTRL_DATA, "x", 1, 1), -ETIMEDOUT);
    assert_non_null(strstr(colo_errormsg(), "credits"));
    /* The peer returns 10 credits in a heartbeat: sending resumes. */
    peer_sends(c, 0, CRDMA_CTRL_HEARTBEAT, 10, NULL);
    crdma_progress(c);
    assert_int_equal(c->ctrl.peer_credits, 10);
    assert_int_equal(crdma_ctrl_send(c, CRDMA_CTRL_DATA, "y", 1, 0), 0);
    /* the heartbeat's receive buffer went straight back, owed as a credit */
    assert_int_equal(c->ctrl.credits_to_return, 0); /* ... and rode on that data message */
    assert_int_equal(fk.sent_sge[fk.nsent - 1].length, CRDMA_CTRL_HDR + 1);
    assert_int_equal(((uint8_t *)(uintptr_t)fk.sent_sge[fk.nsent - 1].addr)[3], 1);
    assert_true(fk.sent[fk.nsent - 1].send_flags & IBV_SEND_INLINE);
    crdma_conn_destroy(c);
}

static void test_reads_return_credits(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    char buf[128];
    int before;

    assert_int_equal(crdma_conn_build(c), 0);
    for (uint32_t s = 0; s < CRDMA_RECV_DEPTH / 2; s++)
        peer_sends(c, s, CRDMA_CTRL_DATA, 0, "abc");
    before = fk.recvs_posted;
    assert_int_equal(crdma_ctrl_read(c, buf, 2, 0), 2);
    assert_memory_equal(buf, "ab", 2);
    assert_int_equal(fk.recvs_posted, before); /* slot not consumed yet */
    assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), 1 + 3 * (CRDMA_RECV_DEPTH / 2 - 1));
    /* every slot went back, and half a ring owed triggers a credit update */
    assert_int_equal(fk.recvs_posted, before + CRDMA_RECV_DEPTH / 2);
    assert_int_equal(fk.nsent, 1);
    assert_int_equal(((uint8_t *)(uintptr_t)fk.sent_sge[0].addr)[1], CRDMA_CTRL_CREDIT);
    assert_int_equal(c->ctrl.credits_to_return, 0);
    crdma_conn_destroy(c);
}

static void test_malformed_peer_messages(void **state)
{
    struct {
        uint16_t type, credits;
        const char *payload;
        uint32_t len_override;
        const char *why;
    } bad[] = {
        {9, 0, NULL, 0, "malformed"},
        {CRDMA_CTRL_CREDIT, 0, "xx", 0, "malformed"},
        {CRDMA_CTRL_HEARTBEAT, 1000, NULL, 0, "returned 1000 credits"},
        {CRDMA_CTRL_DATA, 0, "abc", 2, "expected at least"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct crdma_conn *c;
        char buf[8];

        setup(NULL);
        c = fake_conn(false);
        assert_int_equal(crdma_conn_build(c), 0);
        peer_sends(c, 0, bad[i].type, bad[i].credits, bad[i].payload);
        if (bad[i].len_override)
            fk.cq_q[(fk.cq_tail - 1) % 1024].byte_len = bad[i].len_override;
        assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), bad[i].why));
        assert_true(c->loss.lost);
        crdma_conn_destroy(c);
    }
}

/* A receive consumed by anything but a plain SEND: the slot holds no message. */
static void test_receive_must_be_a_send(void **state)
{
    struct {
        enum ibv_wc_opcode op;
        unsigned flags;
        const char *why;
    } bad[] = {
        {IBV_WC_RECV_RDMA_WITH_IMM, IBV_WC_WITH_IMM, "an RDMA WRITE with immediate data"},
        {IBV_WC_RECV, IBV_WC_WITH_IMM, "a SEND with immediate data"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct crdma_conn *c;
        char buf[8];

        setup(NULL);
        c = fake_conn(false);
        assert_int_equal(crdma_conn_build(c), 0);
        /* a well-formed message sits in the slot: it must not be parsed */
        peer_sends(c, 0, CRDMA_CTRL_DATA, 0, "abc");
        fk.cq_q[(fk.cq_tail - 1) % 1024].opcode = bad[i].op;
        fk.cq_q[(fk.cq_tail - 1) % 1024].wc_flags = bad[i].flags;
        assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), bad[i].why));
        assert_non_null(strstr(colo_errormsg(), "expected a SEND"));
        assert_true(c->loss.lost);
        crdma_conn_destroy(c);
    }
}

/* ---- completion errors ---- */

static void test_completion_errors_mean_peer_lost(void **state)
{
    struct {
        enum ibv_wc_status st;
        const char *why;
    } table[] = {
        {IBV_WC_RETRY_EXC_ERR, "unreachable"},
        {IBV_WC_RNR_RETRY_EXC_ERR, "RNR"},
        {IBV_WC_WR_FLUSH_ERR, "flushed"},
        {IBV_WC_REM_ACCESS_ERR, "refused a remote access"},
        {IBV_WC_LOC_PROT_ERR, "completion error"},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct crdma_conn *c = fake_conn(false);
        struct ibv_wc wc = {.wr_id = CRDMA_WR_ID(CRDMA_WR_WRITE, 1), .status = table[i].st};

        assert_int_equal(crdma_completion_error(c, &wc), COLO_E_PEER_LOST);
        assert_true(c->loss.lost);
        assert_non_null(strstr(c->loss.reason, table[i].why));
        assert_non_null(strstr(c->loss.reason, "RDMA WRITE"));
        crdma_conn_destroy(c);
    }
}

static void test_flush_during_teardown_is_no_failure(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    struct ibv_wc wc = {.wr_id = CRDMA_WR_ID(CRDMA_WR_RECV, 3), .status = IBV_WC_WR_FLUSH_ERR};

    c->loss.tearing_down = true;
    assert_int_equal(crdma_completion_error(c, &wc), 0);
    assert_false(c->loss.lost);
    crdma_conn_destroy(c);
}

static void test_error_completion_through_progress(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    char buf[4];

    assert_int_equal(crdma_conn_build(c), 0);
    cq_push(CRDMA_WR_ID(CRDMA_WR_SEND, 0), IBV_WC_RETRY_EXC_ERR, 0);
    assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "transport retries exhausted"));
    /* later sends fail at once with the same reason */
    assert_int_equal(crdma_ctrl_send(c, CRDMA_CTRL_DATA, "x", 1, 0), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "transport retries exhausted"));
    crdma_conn_destroy(c);
}

/* ---- WRITE splitting and batching ---- */

static uint8_t guest[64 * 4096] __attribute__((aligned(4096)));

static void write_conn(struct crdma_conn **out, struct colo_ram_layout *l)
{
    struct crdma_conn *c = fake_conn(false);

    assert_int_equal(crdma_conn_build(c), 0);
    assert_int_equal(colo_ram_layout_init(l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(l, "pc.ram", guest, sizeof(guest)), 0);
    /* local: two chunks split at page 40; remote: split at page 20 */
    c->mr.nlocal = 2;
    c->mr.local[0] = (struct crdma_chunk){(uintptr_t)guest, 40 * 4096, 0x11};
    c->mr.local[1] = (struct crdma_chunk){(uintptr_t)guest + 40 * 4096, 24 * 4096, 0x12};
    c->mr.nremote = 2;
    c->mr.remote[0] = (struct crdma_chunk){0x10000000, 20 * 4096, 0x21};
    c->mr.remote[1] = (struct crdma_chunk){0x10000000 + 20 * 4096, 44 * 4096, 0x22};
    c->mr.remote_block[0] = 0x10000000;
    c->res.lim.max_msg_size = 8 * 4096;
    *out = c;
}

static void test_write_splits_at_every_limit(void **state)
{
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c;
    struct colo_dirty_run run = {.block = 0, .first_page = 15, .page_count = 30};
    /* pages 15..44: remote chunk ends at 20, max message 8 pages, local chunk ends at 40 */
    static const struct {
        uint64_t page, pages;
        uint32_t lkey, rkey;
    } want[] = {{15, 5, 0x11, 0x21}, {20, 8, 0x11, 0x22}, {28, 8, 0x11, 0x22},
                {36, 4, 0x11, 0x22}, {40, 5, 0x12, 0x22}};

    write_conn(&c, &l);
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(b.n, 5);
    assert_int_equal(crdma_write_post(c, &b, 0), 0);
    assert_int_equal(fk.nsent, 5);
    for (int i = 0; i < 5; i++) {
        struct ibv_send_wr *wr = &fk.sent[i];

        assert_int_equal(wr->opcode, IBV_WR_RDMA_WRITE);
        assert_true(wr->sg_list->addr == (uintptr_t)guest + want[i].page * 4096);
        assert_int_equal(wr->sg_list->length, want[i].pages * 4096);
        assert_int_equal(wr->sg_list->lkey, want[i].lkey);
        assert_true(wr->wr.rdma.remote_addr == 0x10000000 + want[i].page * 4096);
        assert_int_equal(wr->wr.rdma.rkey, want[i].rkey);
        /* only the last WRITE of the batch is signaled, and it covers all five */
        assert_int_equal(!!(wr->send_flags & IBV_SEND_SIGNALED), i == 4);
    }
    assert_true(fk.sent[4].wr_id == CRDMA_WR_ID_BYTES(CRDMA_WR_WRITE, 5, 30 * 4096));
    assert_int_equal(fk.post_send_calls, 1); /* one doorbell */
    assert_true(c->push.doorbells == 1);
    assert_int_equal(crdma_write_drain(c, 0), 0);
    assert_int_equal(c->push.writes_outstanding, 0);
    assert_int_equal(c->res.sq_free, c->res.lim.sq_depth);
    crdma_conn_destroy(c);
}

static void test_write_batches_follow_the_send_queue(void **state)
{
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c;

    write_conn(&c, &l);
    fk.auto_complete = false; /* completions arrive only when the test says */
    c->res.lim.max_msg_size = 4096; /* one page per WRITE */
    /* 40 single-page WRITEs against a 16-entry send queue */
    for (uint64_t p = 0; p < 40; p++) {
        struct colo_dirty_run run = {.block = 0, .first_page = p, .page_count = 1};

        if (b.n == CRDMA_WRITE_BATCH - 1)
            break;
        assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    }
    /* The first post fills the queue; the rest waits for completions, and
     * none comes within the timeout: the link takes nothing, a lost peer. */
    fk.post_send_enomem = 1; /* and one ENOMEM is survived by reaping */
    assert_int_equal(crdma_write_post(c, &b, 1), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "no RDMA WRITE completed for 1 ms while waiting "
                                            "for send-queue room for RDMA WRITEs (16 WRITEs, "
                                            "65536 bytes in flight"));
    assert_int_equal(fk.nsent, 16);
    assert_int_equal(c->res.sq_free, 0);
    assert_true(fk.sent[15].send_flags & IBV_SEND_SIGNALED);
    for (int i = 0; i < 15; i++)
        assert_false(fk.sent[i].send_flags & IBV_SEND_SIGNALED);
    cq_push(fk.sent[15].wr_id, IBV_WC_SUCCESS, 0);
    fk.auto_complete = true;
    b.n = 40 - 16; /* what was not posted */
    memmove(b.wr, b.wr + 16, b.n * sizeof(b.wr[0]));
    memmove(b.sge, b.sge + 16, b.n * sizeof(b.sge[0]));
    for (uint32_t i = 0; i < b.n; i++)
        b.wr[i].sg_list = &b.sge[i];
    assert_int_equal(crdma_write_post(c, &b, 0), 0);
    assert_int_equal(fk.nsent, 40);
    assert_int_equal(crdma_write_drain(c, 0), 0);
    assert_true(c->push.write_wrs == 40);
    assert_true(c->push.doorbells >= 3);
    crdma_conn_destroy(c);
}

static uint8_t big_ram[8u << 20] __attribute__((aligned(4096)));

/* c built, with one block of the first len bytes of big_ram registered on
 * both sides as one chunk, and only the chunk size splitting WRITEs; returns
 * the run of the whole block. */
static struct colo_dirty_run big_block_conn(struct crdma_conn *c, struct colo_ram_layout *l,
                                            uint64_t len)
{
    uint8_t *ram = big_ram;

    assert_true(len <= sizeof(big_ram));
    assert_int_equal(crdma_conn_build(c), 0);
    assert_int_equal(colo_ram_layout_init(l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(l, "pc.ram", ram, len), 0);
    c->mr.nlocal = c->mr.nremote = 1;
    c->mr.local[0] = (struct crdma_chunk){(uintptr_t)ram, len, 0x11};
    c->mr.remote[0] = (struct crdma_chunk){0x20000000, len, 0x21};
    c->mr.remote_block[0] = 0x20000000;
    c->res.lim.max_msg_size = 0;
    return (struct colo_dirty_run){.block = 0, .first_page = 0, .page_count = len / 4096};
}

/* A long run goes in chunks, with at most a window in flight (heartbeats
 * queued behind the WRITEs must not starve). */
static void test_write_window_bounds_bytes_in_flight(void **state)
{
    const uint64_t len = 2u << 20;
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c = fake_conn(false);
    struct colo_dirty_run run = big_block_conn(c, &l, len);

    fk.auto_complete = false;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(b.n, len / CRDMA_WRITE_CHUNK);
    /* the first post stops at the window, then waits for completions */
    assert_int_equal(crdma_write_post(c, &b, 1), COLO_E_PEER_LOST);
    assert_int_equal(fk.nsent, CRDMA_WRITE_WINDOW / CRDMA_WRITE_CHUNK);
    assert_true(c->push.bytes_outstanding == CRDMA_WRITE_WINDOW);
    /* each chunk is signaled (CRDMA_WRITE_SIGNAL_BYTES): a window completes in parts */
    for (int i = 0; i < fk.nsent; i++) {
        assert_int_equal(fk.sent[i].sg_list->length, CRDMA_WRITE_CHUNK);
        assert_true(fk.sent[i].send_flags & IBV_SEND_SIGNALED);
        assert_true(fk.sent[i].wr_id == CRDMA_WR_ID_BYTES(CRDMA_WR_WRITE, 1, CRDMA_WRITE_CHUNK));
    }
    cq_push(fk.sent[0].wr_id, IBV_WC_SUCCESS, 0);
    crdma_progress(c);
    assert_true(c->push.bytes_outstanding == CRDMA_WRITE_WINDOW - CRDMA_WRITE_CHUNK);
    for (int i = 1; i < fk.nsent; i++)
        cq_push(fk.sent[i].wr_id, IBV_WC_SUCCESS, 0);
    fk.auto_complete = true;
    crdma_progress(c);
    assert_true(c->push.bytes_outstanding == 0);
    crdma_conn_destroy(c);
}

/*
 * The waits for WRITEs fail when none completed for a whole timeout, not when
 * a push takes longer than one: on a lossy link (go-back-N resends from the
 * lost packet on) a window may take long, yet its WRITEs keep completing.
 * Regression: the netem suite's 20% loss case failed, once in five on a loaded
 * machine, with "timed out while waiting for RDMA WRITEs to complete" after
 * one window took longer than the 30 s timeout. Here each 256 KiB WRITE
 * completes 150 ms after the last, 8 of them (1.2 s) against a 400 ms
 * timeout: a deadline per wait failed them after 4; a link that stops
 * completing is a lost peer after one timeout.
 */
static void test_slow_writes_keep_moving(void **state)
{
    const uint64_t len = 2u << 20;
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c = fake_conn(false);
    struct colo_dirty_run run = big_block_conn(c, &l, len);
    uint64_t t0;

    fk.slow_link_ms = 150;
    t0 = colo_now_ns();
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 400), 0);
    assert_int_equal(crdma_write_post(c, &b, 400), 0);
    assert_int_equal(crdma_write_drain(c, 400), 0);
    assert_true(colo_now_ns() - t0 >= 8 * 150 * COLO_NS_PER_MS);
    assert_int_equal(fk.nsent, len / CRDMA_WRITE_CHUNK);
    assert_true(c->push.completions == len / CRDMA_WRITE_CHUNK);
    assert_int_equal(c->push.writes_outstanding, 0);

    /* A link that completes nothing: the drain gives up after one timeout. */
    fk.slow_link_ms = 0;
    fk.auto_complete = false;
    run.page_count = CRDMA_WRITE_CHUNK / 4096;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 50), 0);
    assert_int_equal(crdma_write_post(c, &b, 50), 0);
    t0 = colo_now_ns();
    assert_int_equal(crdma_write_drain(c, 50), COLO_E_PEER_LOST);
    assert_true(colo_now_ns() - t0 >= 50 * COLO_NS_PER_MS);
    assert_non_null(strstr(colo_errormsg(), "rdma: no RDMA WRITE completed for 50 ms while "
                                            "waiting for RDMA WRITEs to complete (1 WRITEs, "
                                            "262144 bytes in flight"));
    cq_push(fk.sent[fk.nsent - 1].wr_id, IBV_WC_SUCCESS, 0);
    crdma_progress(c);
    crdma_conn_destroy(c);
}

/*
 * A push whose completions are there as soon as it posts never sleeps with
 * the lock released, so a heartbeat thread waiting for the lock cannot tick
 * meanwhile: the pushing thread does the heartbeat's work itself when a tick
 * is due (probe, RC heartbeat, the peer's deadline). Regression: on rxe,
 * which runs a user QP inside ibv_post_send, a 64 MiB push held the lock
 * longer than the secondary's 2 s deadline, and both sides failed over.
 * No timing decides the result: every post takes longer than a tick.
 */
static void test_long_push_keeps_the_heartbeat(void **state)
{
    const uint64_t len = 8u << 20;
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c = fake_conn(false);
    struct colo_dirty_run run = big_block_conn(c, &l, len);
    int rc_sends = 0;

    crdma_probe_connect(c, 0x77, 0xc00c1e);
    fk.probe_auto_complete = true;
    fk.post_delay_us = 12000; /* > the 10 ms tick of a 40 ms interval */
    fk.alive_peer = c; /* its probes come with every reap: never near the deadline */
    /* The heartbeat "runs" but never gets the lock: there is no thread. */
    c->live.heartbeat_ms = 40;
    c->live.last_rx_ns = c->live.last_tx_ns = colo_now_ns();
    c->live.hb_next_tick_ns = 0;
    c->live.hb_running = true;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(crdma_write_post(c, &b, 0), 0);
    assert_int_equal(crdma_write_drain(c, 0), 0);
    assert_int_equal(c->push.doorbells, len / CRDMA_WRITE_WINDOW);
    /* a tick before each doorbell: a probe each, and RC heartbeats (96+ ms
     * passed without a control message, the interval is 40) */
    assert_true(c->live.hb_ticks_by_waiter >= len / CRDMA_WRITE_WINDOW);
    assert_true(fk.probe_sends >= (int)(len / CRDMA_WRITE_WINDOW));
    for (int i = 0; i < fk.nsent; i++)
        rc_sends += fk.sent[i].opcode == IBV_WR_SEND;
    assert_true(rc_sends >= 1);
    assert_false(crdma_conn_is_lost(c));
    /* A peer silent for longer than the deadline is lost in the middle of a push. */
    fk.alive_peer = NULL;
    c->live.last_rx_ns = colo_now_ns() - 1000 * COLO_NS_PER_MS;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(crdma_write_post(c, &b, 0), COLO_E_PEER_LOST);
    assert_non_null(strstr(c->loss.reason, "nothing from the peer"));
    c->live.hb_running = false;
    crdma_conn_destroy(c);
}

static void test_write_outside_registration_is_refused(void **state)
{
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c;
    struct colo_dirty_run run = {.block = 0, .first_page = 60, .page_count = 4};

    write_conn(&c, &l);
    c->mr.remote[1].len = 30 * 4096; /* the remote side covers pages 0..49 only */
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), -EFAULT);
    assert_non_null(strstr(colo_errormsg(), "outside the registered memory"));
    crdma_conn_destroy(c);
}

static void test_find_chunk(void **state)
{
    struct crdma_chunk k[3] = {{100, 10, 1}, {110, 5, 2}, {200, 50, 3}};

    assert_null(crdma_find_chunk(k, 3, 99));
    assert_int_equal(crdma_find_chunk(k, 3, 100)->key, 1);
    assert_int_equal(crdma_find_chunk(k, 3, 109)->key, 1);
    assert_int_equal(crdma_find_chunk(k, 3, 110)->key, 2);
    assert_null(crdma_find_chunk(k, 3, 115));
    assert_int_equal(crdma_find_chunk(k, 3, 249)->key, 3);
    assert_null(crdma_find_chunk(k, 3, 250));
    assert_null(crdma_find_chunk(k, 0, 100));
}

/* The cache announcement of section 8, two chunks of half the RAM each, the
 * reserved field of chunk bad_chunk (-1: none) set to reserved. */
static void put_announcement(struct mock_conn *m, int bad_chunk, uint32_t reserved)
{
    uint8_t w[8 + 2 * 24 + 8];

    colo_put_be32(w, 2);
    colo_put_be32(w + 4, 1);
    for (int i = 0; i < 2; i++) {
        uint8_t *k = w + 8 + 24 * i;

        colo_put_be64(k, 0x10000000 + (uint64_t)i * sizeof(guest) / 2);
        colo_put_be64(k + 8, sizeof(guest) / 2);
        colo_put_be32(k + 16, 0x21 + (uint32_t)i);
        colo_put_be32(k + 20, i == bad_chunk ? reserved : 0);
    }
    colo_put_be64(w + 56, 0x10000000);
    mock_conn_put(m, w, sizeof(w));
}

/*
 * The primary reads the announcement only as the protocol writes it: a
 * chunk record whose reserved last 4 bytes are not 0 is refused, naming the
 * chunk and the value, before anything of it is used (docs/protocol.md,
 * section 20, defect 11: they were not checked).
 */
static void test_cache_announcement_reserved_field(void **state)
{
    static const struct {
        int chunk;
        uint32_t reserved;
    } cases[] = {{-1, 0}, {0, 1}, {1, 0x80000000u}, {1, 0xffffffffu}};
    char want[96];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mock_conn *m = mock_conn_new();
        struct colo_stream *f = mock_stream_new(m);
        struct crdma_conn *c = fake_conn(false);
        struct colo_ram_layout l;
        int ret;

        assert_int_equal(crdma_conn_build(c), 0);
        assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
        assert_int_equal(colo_ram_layout_add(&l, "pc.ram", guest, sizeof(guest)), 0);
        colo_stream_set_ram(f, &l, NULL);
        put_announcement(m, cases[i].chunk, cases[i].reserved);
        ret = crdma_mr_register_ram(c, f);
        if (cases[i].chunk < 0) {
            assert_int_equal(ret, 0);
            assert_int_equal(c->mr.nremote, 2);
            assert_int_equal(crdma_mr_remote_chunk(c, 0x10000000 + sizeof(guest) / 2)->key, 0x22);
        } else {
            snprintf(want, sizeof(want), "cache chunk %d: reserved field is %" PRIu32
                     ", expected 0", cases[i].chunk, cases[i].reserved);
            assert_int_equal(ret, COLO_E_PROTOCOL);
            assert_non_null(strstr(colo_errormsg(), want));
            assert_int_equal(c->mr.nremote, 0); /* nothing of it kept */
        }
        crdma_conn_destroy(c);
        colo_stream_delete(&f);
        mock_conn_unref(m);
    }
}

/* ---- the sleeping path of the completion wait ---- */

/* A completion that arrives while the waiter sleeps: the wait arms the CQ,
 * sleeps on the completion channel, takes the event, re-arms and drains;
 * events are acked in batches, and the last ones before the CQ goes. */
static void test_wait_sleeps_on_the_completion_channel(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    char buf[8];

    assert_int_equal(crdma_conn_build(c), 0);
    for (int i = 0; i < CRDMA_CQ_ACK_BATCH + 1; i++) {
        /* Nothing to reap when the wait starts; the peer's message comes
         * with the channel's event, after the arming. */
        fk.staging = true;
        peer_sends(c, (uint32_t)i, CRDMA_CTRL_DATA, 0, "abc");
        fk.staging = false;
        fk.notify_on_arm = 1;
        assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), 3);
        assert_memory_equal(buf, "abc", 3);
        assert_int_equal(fk.arms, i + 1);             /* armed once per sleep */
        assert_int_equal(fk.cq_events_taken, i + 1);  /* woken by the channel */
        assert_false(c->wait.cq_armed);               /* the event disarmed it */
    }
    /* Acked in one batch of CRDMA_CQ_ACK_BATCH; the one after at teardown,
     * before the CQ is destroyed ('k' before 'c'). */
    assert_int_equal(fk.cq_events_acked, CRDMA_CQ_ACK_BATCH);
    assert_int_equal(c->wait.cq_events_unacked, 1);
    fk.log[0] = '\0';
    crdma_conn_destroy(c);
    assert_int_equal(fk.cq_events_acked, CRDMA_CQ_ACK_BATCH + 1);
    assert_string_equal(fk.log, "uqkchmpi");
    assert_int_equal(fk.live, 0);
}

struct wake_probe {
    int calls;
};

/* Wakes the waiter between its arming and its sleep, ready on the third look. */
static bool woken_on_second_look(struct crdma_conn *c, void *arg)
{
    struct wake_probe *w = arg;

    if (++w->calls == 2)
        crdma_conn_wake(c);
    return w->calls == 3;
}

static void test_wait_woken_by_the_eventfd(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    struct wake_probe w = {0};
    uint64_t v;

    assert_int_equal(crdma_conn_build(c), 0);
    assert_int_equal(crdma_wait(c, woken_on_second_look, &w, 0, "testing"), 0);
    assert_int_equal(w.calls, 3);
    assert_int_equal(fk.arms, 1);
    assert_int_equal(fk.cq_events_taken, 0);
    /* the wake-up was consumed: the next sleep is a real one */
    assert_int_equal(read(c->wait.wake_fd, &v, sizeof(v)), -1);
    assert_int_equal(errno, EAGAIN);
    crdma_conn_destroy(c);
    assert_int_equal(fk.live, 0);
}

struct shutter {
    struct crdma_conn *c;
    pthread_t tid;
};

/* What crdma_shutdown does from another thread. */
static void *shut(void *arg)
{
    struct shutter *sh = arg;

    pthread_mutex_lock(&sh->c->lock);
    crdma_conn_lost(sh->c, -EPIPE, "rdma: connection shut down");
    pthread_mutex_unlock(&sh->c->lock);
    crdma_conn_wake(sh->c);
    return NULL;
}

/* A reader without a deadline is ended by a shutdown from another thread,
 * whether it already sleeps or not yet. */
static void test_wait_ended_by_a_shutdown(void **state)
{
    struct shutter sh = {.c = fake_conn(false)};
    char buf[4];

    assert_int_equal(crdma_conn_build(sh.c), 0);
    pthread_mutex_lock(&sh.c->lock);
    assert_int_equal(pthread_create(&sh.tid, NULL, shut, &sh), 0);
    assert_int_equal(crdma_ctrl_read(sh.c, buf, sizeof(buf), 0), -EPIPE);
    assert_string_equal(colo_errormsg(), "rdma: connection shut down");
    pthread_mutex_unlock(&sh.c->lock);
    pthread_join(sh.tid, NULL);
    crdma_conn_destroy(sh.c);
    assert_int_equal(fk.live, 0);
}

/* The event channel fires while the waiter sleeps: the peer disconnected. */
static void test_wait_sees_a_disconnect(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    char buf[4];

    c->res.ec = f_create_ec();
    assert_int_equal(crdma_conn_build(c), 0);
    cm_queue(c->res.ec, RDMA_CM_EVENT_DISCONNECTED, c->res.id, NULL, 0);
    assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), COLO_E_PEER_LOST);
    assert_string_equal(colo_errormsg(), "rdma: the peer disconnected");
    assert_int_equal(fk.cm_got, 1);
    assert_int_equal(fk.cm_acked, 1);
    /* ... during teardown a disconnect is no loss */
    crdma_conn_destroy(c);
    c = fake_conn(false);
    c->res.ec = f_create_ec();
    assert_int_equal(crdma_conn_build(c), 0);
    crdma_conn_begin_teardown(c);
    cm_queue(c->res.ec, RDMA_CM_EVENT_DISCONNECTED, c->res.id, NULL, 0);
    crdma_check_events(c);
    assert_false(crdma_conn_is_lost(c));
    crdma_conn_destroy(c);
    assert_int_equal(fk.live, 0);
}

/* Device events: a fatal error of our QP or the port is a loss; another
 * QP's is not. */
static void test_wait_sees_device_events(void **state)
{
    static const struct {
        enum ibv_event_type type;
        bool ours;
        bool lost;
    } table[] = {
        {IBV_EVENT_QP_FATAL, true, true},
        {IBV_EVENT_QP_FATAL, false, false},
        {IBV_EVENT_PORT_ERR, true, true},
        {IBV_EVENT_DEVICE_FATAL, true, true},
        {IBV_EVENT_PORT_ACTIVE, true, false},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        static struct ibv_qp other;
        struct crdma_conn *c;
        struct wake_probe w = {0};
        char want[128], buf[4];
        uint64_t one = 1;
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

        setup(NULL);
        fk.ctx.async_fd = fd; /* readable: the waiter wakes to look */
        assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
        c = fake_conn(false);
        assert_int_equal(crdma_conn_build(c), 0);
        fk.async_pending = true;
        fk.async_ev.event_type = table[i].type;
        fk.async_ev.element.qp = table[i].ours ? &fk.qp : &other;
        if (table[i].lost) {
            snprintf(want, sizeof(want), "rdma: %s", ibv_event_type_str(table[i].type));
            assert_int_equal(crdma_ctrl_read(c, buf, sizeof(buf), 0), COLO_E_PEER_LOST);
            assert_string_equal(colo_errormsg(), want);
        } else {
            /* looked at, and nothing lost: the third look ends the wait */
            assert_int_equal(crdma_wait(c, woken_on_second_look, &w, 0, "testing"), 0);
            assert_false(fk.async_pending);
            assert_false(crdma_conn_is_lost(c));
        }
        crdma_conn_destroy(c);
        close(fd);
        assert_int_equal(fk.live, 0);
    }
}

/* ---- connect and accept through the connection manager ---- */

struct hello_check {
    const char *want;
    int calls;
    size_t got_len;
    char got[64];
};

static int check_hello(void *arg, const void *peer, size_t len)
{
    struct hello_check *h = arg;

    h->calls++;
    h->got_len = len;
    memcpy(h->got, peer, len);
    if (len != strlen(h->want) || memcmp(peer, h->want, len))
        return colo_err(COLO_E_HANDSHAKE, "test hello: got \"%.*s\", expected \"%s\"", (int)len,
                        (const char *)peer, h->want);
    return 0;
}

static int refused(void *arg, const void *data, size_t len)
{
    return colo_err(COLO_E_HANDSHAKE, "refused by the peer: %.*s", (int)len, (const char *)data);
}

static struct colo_rdma_hello test_hello(const char *mine, struct hello_check *h)
{
    return (struct colo_rdma_hello){.data = mine, .len = strlen(mine), .check = check_hello,
                                    .arg = h, .refusal = "NOPE", .refusal_len = 4,
                                    .refused = refused};
}

/* The private data a peer sends: its hello, then its probe's QPN and cookie. */
static void peer_private(uint8_t *out, uint8_t *len, const char *hello, uint32_t qpn,
                         uint32_t cookie)
{
    size_t n = strlen(hello);

    memcpy(out, hello, n);
    colo_put_be32(out + n, qpn);
    colo_put_be32(out + n + 4, cookie);
    *len = (uint8_t)(n + 8);
}

static const struct colo_rdma_options test_opt = {
    .timeout_ms = 5000,
    .heartbeat_ms = 60000, /* its thread runs, and never ticks during a test */
};

static void test_connect_establishes(void **state)
{
    struct hello_check h = {.want = "SEC1"};
    struct colo_rdma_hello mine = test_hello("PRI1", &h);
    struct colo_stream *s = NULL;

    peer_private(fk.peer_priv, &fk.peer_priv_len, "SEC1", 0x99, 0xc0ffee);
    assert_int_equal(colo_rdma_connect("127.0.0.1", 4711, &test_opt, &mine, &s), 0);
    assert_non_null(s);
    /* what crossed: our hello and our probe, an ACK timeout, no RNR retry */
    assert_int_equal(fk.sent_priv_len, 4 + 8);
    assert_memory_equal(fk.sent_priv, "PRI1", 4);
    assert_int_equal(colo_get_be32(fk.sent_priv + 4), 0x4242);
    assert_int_equal(fk.ack_timeout, CRDMA_ACK_TIMEOUT);
    assert_int_equal(fk.sent_param.retry_count, CRDMA_RETRY_COUNT);
    assert_int_equal(fk.sent_param.rnr_retry_count, 0);
    /* the peer's hello went to the check, without the probe's 8 bytes */
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.got_len, 4);
    assert_int_equal(fk.ahs, 1); /* our probe aims at the peer's */
    assert_int_equal(fk.recvs_posted, CRDMA_RECV_DEPTH);
    /* the stream carries bytes as control messages */
    colo_stream_put_buffer(s, "hello", 5);
    assert_int_equal(colo_stream_fflush(s), 0);
    assert_int_equal(fk.nsent, 1);
    assert_int_equal(fk.sent_sge[0].length, CRDMA_CTRL_HDR + 5);
    assert_memory_equal((uint8_t *)(uintptr_t)fk.sent_sge[0].addr + CRDMA_CTRL_HDR, "hello", 5);
    colo_stream_delete(&s);
    assert_null(s);
    assert_int_equal(fk.disconnects, 1);
    assert_string_equal(fk.log, "uaqchmpie");
    assert_int_equal(fk.live, 0);
    assert_int_equal(fk.cm_got, 3); /* address, route, established */
    assert_int_equal(fk.cm_acked, 3);
}

/* Every way connect fails: its code, its message, nothing left behind. */
static void test_connect_failures(void **state)
{
    enum { F_NONE, F_EC, F_RESOLVE, F_ADDR, F_ROUTE, F_REJ, F_REJ_WHY, F_HELLO, F_UNREACH, F_QP };
    static const struct {
        int what;
        int ret;
        const char *msg;
    } table[] = {
        {F_EC, -ENODEV, "rdma: create event channel: No such device (is an RDMA device and "
                        "rdma_ucm there?)"},
        {F_RESOLVE, COLO_E_PEER_LOST, "rdma: resolve 127.0.0.1: Cannot assign requested address "
                                      "(no RDMA device for that address?)"},
        {F_ADDR, COLO_E_PEER_LOST, "rdma: resolving the address: RDMA_CM_EVENT_ADDR_ERROR "
                                   "(status -113), expected RDMA_CM_EVENT_ADDR_RESOLVED"},
        {F_ROUTE, -ETIMEDOUT, "rdma: timed out while resolving the route"},
        {F_REJ, COLO_E_PEER_LOST, "rdma: 127.0.0.1 port 4711 refused the connection (nothing "
                                  "listening there?)"},
        {F_REJ_WHY, COLO_E_HANDSHAKE, "refused by the peer: VERSION"},
        {F_HELLO, COLO_E_HANDSHAKE, "test hello: got \"SECX\", expected \"SEC1\""},
        {F_UNREACH, COLO_E_PEER_LOST, "rdma: connecting: RDMA_CM_EVENT_UNREACHABLE (status -113), "
                                      "expected RDMA_CM_EVENT_ESTABLISHED"},
        {F_QP, -EINVAL, "rdma: create QP (16 send, 64 receive WRs): Invalid argument"},
    };
    struct colo_rdma_options opt = test_opt;
    struct colo_rdma_hello bad = {.data = "x", .len = 1};

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct hello_check h = {.want = "SEC1"};
        struct colo_rdma_hello mine = test_hello("PRI1", &h);
        struct colo_stream *s = NULL;

        setup(NULL);
        peer_private(fk.peer_priv, &fk.peer_priv_len, "SEC1", 0x99, 1);
        opt.timeout_ms = 5000;
        switch (table[i].what) {
        case F_EC: fk.fail_ec = true; break;
        case F_RESOLVE: fk.fail_resolve_addr = true; break;
        case F_ADDR: fk.addr_ev = RDMA_CM_EVENT_ADDR_ERROR; fk.ev_status = -113; break;
        case F_ROUTE: fk.route_ev = -1; opt.timeout_ms = 1; break; /* never answered */
        case F_REJ: fk.connect_ev = RDMA_CM_EVENT_REJECTED; fk.peer_priv_len = 0; break;
        case F_REJ_WHY:
            fk.connect_ev = RDMA_CM_EVENT_REJECTED;
            memcpy(fk.peer_priv, "VERSION", 7);
            fk.peer_priv_len = 7;
            break;
        case F_HELLO: peer_private(fk.peer_priv, &fk.peer_priv_len, "SECX", 0x99, 1); break;
        case F_UNREACH: fk.connect_ev = RDMA_CM_EVENT_UNREACHABLE; fk.ev_status = -113; break;
        case F_QP: fk.fail_at = S_QP; break;
        }
        assert_int_equal(colo_rdma_connect("127.0.0.1", 4711, &opt, &mine, &s), table[i].ret);
        assert_string_equal(colo_errormsg(), table[i].msg);
        assert_null(s);
        assert_int_equal(fk.live, 0);
        assert_int_equal(fk.cm_got, fk.cm_acked);
        assert_int_equal(fk.disconnects, 0);
    }
    /* Refused before anything is made: no address, no hello check. */
    setup(NULL);
    assert_int_equal(colo_rdma_connect("", 4711, &opt, &bad, NULL), COLO_E_CONFIG);
    assert_string_equal(colo_errormsg(), "rdma: no peer address: expected a host name or address");
    assert_int_equal(colo_rdma_connect("127.0.0.1", 4711, &opt, &bad, NULL), COLO_E_CONFIG);
    assert_string_equal(colo_errormsg(), "rdma: hello of 1 bytes: expected a check callback and "
                                         "at most 48 bytes");
    assert_int_equal(fk.live, 0);
}

/* A connect request on the listener's channel, for the primary's id. */
static struct rdma_cm_id *primary_requests(struct colo_rdma_listener *l, const char *hello)
{
    struct rdma_event_channel *lec = &fecs[0].ec; /* the listener's, made first */
    struct rdma_cm_id *child = fake_id(lec, NULL);

    peer_private(fk.peer_priv, &fk.peer_priv_len, hello, 0x55, 0xabc);
    cm_queue(lec, RDMA_CM_EVENT_CONNECT_REQUEST, child, fk.peer_priv, fk.peer_priv_len);
    return child;
}

static void test_accept_establishes(void **state)
{
    struct hello_check h = {.want = "PRI1"};
    struct colo_rdma_hello mine = test_hello("SEC1", &h);
    struct colo_rdma_listener *l = NULL;
    struct colo_rdma_pending *p = NULL;
    struct colo_stream *s = NULL;
    struct rdma_cm_id *child;

    assert_int_equal(colo_rdma_listen(NULL, 0, &l), 0);
    assert_int_equal(colo_rdma_listener_port(l), 4711);
    assert_int_equal(fk.backlog, COLO_LISTEN_BACKLOG);
    assert_int_equal(colo_rdma_listener_fd(l), fecs[0].ec.fd);
    /* nothing yet: try again later */
    assert_int_equal(colo_rdma_accept_request(l, &mine, 1, &p), -EAGAIN);
    child = primary_requests(l, "PRI1");
    assert_int_equal(colo_rdma_accept_request(l, &mine, 1000, &p), 0);
    assert_non_null(p);
    /* the request has a channel of its own; nothing built for it yet */
    assert_int_equal(fk.migrates, 1);
    assert_ptr_equal(child->channel, &fecs[1].ec);
    assert_int_equal(fk.recvs_posted, 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(fk.ack_timeout, 0);
    assert_int_equal(colo_rdma_accept_finish(p, &test_opt, &mine, colo_deadline_after_ms(5000),
                                             -1, &s),
                     0);
    assert_non_null(s);
    /* the secondary's QP retransmits like the primary's (protocol.md defect 18) */
    assert_int_equal(fk.ack_timeout, CRDMA_ACK_TIMEOUT);
    assert_int_equal(fk.sent_priv_len, 4 + 8);
    assert_memory_equal(fk.sent_priv, "SEC1", 4);
    assert_int_equal(colo_get_be32(fk.sent_priv + 4), 0x4242);
    assert_int_equal(fk.sent_param.rnr_retry_count, 0);
    assert_int_equal(fk.ahs, 1);
    assert_int_equal(fk.rejects, 0);
    colo_stream_delete(&s);
    colo_rdma_listener_delete(&l);
    assert_null(l);
    assert_string_equal(fk.log, "uaqchmpieie");
    assert_int_equal(fk.live, 0);
    assert_int_equal(fk.cm_got, fk.cm_acked);
}

/* Every way accepting fails: code, message, the refusal sent, nothing left. */
static void test_accept_failures(void **state)
{
    enum { A_HELLO, A_OTHER_ID, A_LISTENER_EV, A_REJECTED, A_CANCEL, A_DEADLINE, A_GAVE_UP,
           A_NO_QP };
    static const struct {
        int what;
        int ret;
        const char *msg; /* NULL: no message (nothing to take, try again) */
        int rejects;
    } table[] = {
        {A_HELLO, COLO_E_HANDSHAKE, "test hello: got \"PRIX\", expected \"PRI1\"", 1},
        {A_OTHER_ID, -EAGAIN, NULL, 0},
        {A_LISTENER_EV, COLO_E_PEER_LOST, "rdma: listener: RDMA_CM_EVENT_DEVICE_REMOVAL (status "
                                          "0), expected RDMA_CM_EVENT_CONNECT_REQUEST", 0},
        {A_REJECTED, -ECONNABORTED, "rdma: the primary abandoned its connection before it was "
                                    "established (rdma: establishing: RDMA_CM_EVENT_REJECTED "
                                    "(status 0), expected RDMA_CM_EVENT_ESTABLISHED)", 0},
        {A_CANCEL, -ECANCELED, "rdma: cancelled while establishing", 0},
        {A_DEADLINE, -ECONNABORTED, "rdma: the connection was not established by the handshake "
                                    "deadline: its primary gave up on it, or never completes it",
         0},
        {A_GAVE_UP, -ECONNABORTED, "rdma: the primary gave up its connect request "
                                   "(RDMA_CM_EVENT_REJECTED) before it was answered: rdma: "
                                   "create QP (16 send, 64 receive WRs): Invalid argument", 1},
        {A_NO_QP, -ECONNABORTED, "rdma: the primary gave up its connect request before it was "
                                 "answered (the kernel no longer sets up a QP for it): rdma: "
                                 "create QP (16 send, 64 receive WRs): Invalid argument", 1},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct hello_check h = {.want = "PRI1"};
        struct colo_rdma_hello mine = test_hello("SEC1", &h);
        struct colo_rdma_listener *l = NULL;
        struct colo_rdma_pending *p = NULL;
        struct colo_stream *s = NULL;
        uint64_t deadline = colo_deadline_after_ms(5000);
        int cancel_fd = -1, ret;

        setup(NULL);
        assert_int_equal(colo_rdma_listen("127.0.0.1", 0, &l), 0);
        switch (table[i].what) {
        case A_HELLO:
            primary_requests(l, "PRIX");
            break;
        case A_OTHER_ID: /* a refused request's late event: not the listener's */
            cm_queue(&fecs[0].ec, RDMA_CM_EVENT_DISCONNECTED, fake_id(NULL, NULL), NULL, 0);
            fk.live--; /* that id is not ours to destroy */
            break;
        case A_LISTENER_EV:
            cm_queue(&fecs[0].ec, RDMA_CM_EVENT_DEVICE_REMOVAL, &fids[0], NULL, 0);
            break;
        default:
            primary_requests(l, "PRI1");
        }
        ret = colo_rdma_accept_request(l, &mine, 1000, &p);
        if (table[i].what <= A_LISTENER_EV) {
            assert_int_equal(ret, table[i].ret);
            assert_null(p);
        } else {
            assert_int_equal(ret, 0);
            switch (table[i].what) {
            case A_REJECTED: fk.accept_ev = RDMA_CM_EVENT_REJECTED; break;
            case A_CANCEL: {
                uint64_t one = 1;

                fk.accept_ev = -1;
                cancel_fd = eventfd(0, EFD_CLOEXEC);
                assert_int_equal(write(cancel_fd, &one, sizeof(one)), sizeof(one));
                break;
            }
            case A_DEADLINE: fk.accept_ev = -1; deadline = colo_now_ns() + 1; break;
            case A_GAVE_UP: /* its REJ came before we built anything */
                fk.fail_at = S_QP;
                cm_queue(&fecs[1].ec, RDMA_CM_EVENT_REJECTED, &fids[1], NULL, 0);
                break;
            case A_NO_QP: fk.fail_at = S_QP; break;
            }
            assert_int_equal(colo_rdma_accept_finish(p, &test_opt, &mine, deadline, cancel_fd,
                                                     &s),
                             table[i].ret);
            assert_null(s);
            if (cancel_fd >= 0)
                close(cancel_fd);
        }
        if (table[i].msg)
            assert_string_equal(colo_errormsg(), table[i].msg);
        assert_int_equal(fk.rejects, table[i].rejects);
        if (table[i].what == A_HELLO) {
            /* the refusal says why; never our hello */
            assert_int_equal(fk.reject_len, 4);
            assert_memory_equal(fk.reject_data, "NOPE", 4);
        }
        colo_rdma_listener_delete(&l);
        if (fk.live != 0)
            fail_msg("case %zu: %d resources left", i, fk.live);
        assert_int_equal(fk.cm_got, fk.cm_acked);
    }
}

/* ---- authentication over the fake device, against a scripted peer ---- */

static const uint8_t peer_nonce[COLO_AUTH_NONCE] = {
    0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static struct rdma_event_channel *peer_ec; /* where the peer's disconnect shows */

/* A DATA message from the peer into the oldest receive posted. */
static void peer_delivers(const void *payload, uint32_t len)
{
    uint32_t slot;
    uint8_t *m;

    assert_true(fk.recv_fifo_head < fk.recv_fifo_tail);
    slot = fk.recv_fifo[fk.recv_fifo_head++ % 1024];
    m = fk.ring + (size_t)slot * CRDMA_SLOT_SIZE;
    m[0] = 0;
    m[1] = CRDMA_CTRL_DATA;
    m[2] = m[3] = 0;
    colo_put_be32(m + 4, len);
    memcpy(m + CRDMA_CTRL_HDR, payload, len);
    cq_push(CRDMA_WR_ID(CRDMA_WR_RECV, slot), IBV_WC_SUCCESS, CRDMA_CTRL_HDR + len);
}

/*
 * The peer's side of colo_auth_run, driven by what we send: our challenge
 * is answered with the peer's, our proof with the peer's proof under
 * fk.peer_key; with truncate_proof only half of it comes, and then the
 * peer disconnects.
 */
static void auth_script(const struct ibv_send_wr *wr)
{
    const uint8_t *m = (const uint8_t *)(uintptr_t)wr->sg_list->addr;
    uint32_t len;

    if (wr->opcode != IBV_WR_SEND || m[1] != CRDMA_CTRL_DATA)
        return;
    len = colo_get_be32(m + 4);
    assert_true(fk.peer_in_len + len <= sizeof(fk.peer_in));
    memcpy(fk.peer_in + fk.peer_in_len, m + CRDMA_CTRL_HDR, len);
    fk.peer_in_len += len;
    if (fk.peer_state == 0 && fk.peer_in_len >= 4 + COLO_AUTH_NONCE) {
        uint8_t msg[4 + COLO_AUTH_NONCE];

        assert_int_equal(colo_get_be32(fk.peer_in), 0x41555448); /* "AUTH" */
        colo_put_be32(msg, 0x41555448);
        memcpy(msg + 4, peer_nonce, COLO_AUTH_NONCE);
        peer_delivers(msg, sizeof(msg));
        fk.peer_state = 1;
    }
    if (fk.peer_state == 1 && fk.peer_in_len >= 4 + COLO_AUTH_NONCE + COLO_AUTH_PROOF) {
        uint8_t proof[COLO_AUTH_PROOF];

        colo_auth_proof((const uint8_t *)fk.peer_key, strlen(fk.peer_key), fk.peer_role,
                        fk.peer_in + 4, peer_nonce, NULL, proof);
        peer_delivers(proof, fk.truncate_proof ? COLO_AUTH_PROOF / 2 : COLO_AUTH_PROOF);
        if (fk.truncate_proof)
            cm_queue(peer_ec, RDMA_CM_EVENT_DISCONNECTED, NULL, NULL, 0);
        fk.peer_state = 2;
    }
}

/* A connected stream pair (forward, return path) of the given role on the fake device. */
static void connected(enum colo_role role, struct colo_stream **fwd, struct colo_stream **rp,
                      struct colo_rdma_listener **l)
{
    static struct hello_check h;
    struct colo_rdma_hello mine;

    if (role == COLO_ROLE_PRIMARY) {
        h = (struct hello_check){.want = "SEC1"};
        mine = test_hello("PRI1", &h);
        peer_private(fk.peer_priv, &fk.peer_priv_len, "SEC1", 0x99, 1);
        assert_int_equal(colo_rdma_connect("127.0.0.1", 4711, &test_opt, &mine, fwd), 0);
        peer_ec = &fecs[0].ec;
    } else {
        struct colo_rdma_pending *p = NULL;

        h = (struct hello_check){.want = "PRI1"};
        mine = test_hello("SEC1", &h);
        assert_int_equal(colo_rdma_listen(NULL, 0, l), 0);
        primary_requests(*l, "PRI1");
        assert_int_equal(colo_rdma_accept_request(*l, &mine, 1000, &p), 0);
        assert_int_equal(colo_rdma_accept_finish(p, &test_opt, &mine,
                                                 colo_deadline_after_ms(5000), -1, fwd),
                         0);
        peer_ec = &fecs[1].ec;
    }
    assert_int_equal(colo_stream_open_return_path(*fwd, rp), 0);
}

static void test_auth_over_rdma(void **state)
{
    static const struct {
        enum colo_role role;
        const char *peer_key;
        bool truncate;
        int ret;
        const char *msg;
    } table[] = {
        {COLO_ROLE_PRIMARY, "key", false, 0, NULL},
        {COLO_ROLE_SECONDARY, "key", false, 0, NULL},
        {COLO_ROLE_PRIMARY, "another key", false, COLO_E_AUTH,
         "authentication failed: the secondary does not hold the same key"},
        {COLO_ROLE_SECONDARY, "another key", false, COLO_E_AUTH,
         "authentication failed: the primary does not hold the same key"},
        {COLO_ROLE_PRIMARY, "", false, COLO_E_AUTH,
         "authentication failed: the secondary does not hold the same key"},
        {COLO_ROLE_PRIMARY, "key", true, COLO_E_PEER_LOST,
         "rdma: the peer disconnected while waiting for the peer (16 of 32 bytes arrived)"},
        {COLO_ROLE_SECONDARY, "key", true, COLO_E_PEER_LOST,
         "rdma: the peer disconnected while waiting for the peer (16 of 32 bytes arrived)"},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct colo_stream *fwd = NULL, *rp = NULL, *out, *in;
        struct colo_rdma_listener *l = NULL;
        int ret;

        setup(NULL);
        connected(table[i].role, &fwd, &rp, &l);
        fk.auth_peer = true;
        fk.peer_role = table[i].role == COLO_ROLE_PRIMARY ? COLO_ROLE_SECONDARY
                                                          : COLO_ROLE_PRIMARY;
        fk.peer_key = table[i].peer_key;
        fk.truncate_proof = table[i].truncate;
        /* as lib/session.c: the primary writes forward, the secondary back */
        out = table[i].role == COLO_ROLE_PRIMARY ? fwd : rp;
        in = table[i].role == COLO_ROLE_PRIMARY ? rp : fwd;
        ret = colo_auth_run(out, in, table[i].role, (const uint8_t *)"key", 3, NULL, NULL);
        assert_int_equal(ret, table[i].ret);
        if (table[i].msg)
            assert_string_equal(colo_errormsg(), table[i].msg);
        /* the peer got our challenge and our proof, whole */
        assert_int_equal(fk.peer_state, 2);
        assert_int_equal(fk.peer_in_len, 4 + COLO_AUTH_NONCE + COLO_AUTH_PROOF);
        colo_stream_delete(&rp);
        colo_stream_delete(&fwd);
        colo_rdma_listener_delete(&l);
        assert_int_equal(fk.live, 0);
        assert_int_equal(fk.cm_got, fk.cm_acked);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_teardown_from_each_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qp_without_inline_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_counts_as_life, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_failures_are_not_the_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe_survives_malformed_datagrams, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_ud_means_no_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credits_never_over_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_return_credits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_peer_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_must_be_a_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completion_errors_mean_peer_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_during_teardown_is_no_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_completion_through_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_splits_at_every_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_batches_follow_the_send_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_outside_registration_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slow_writes_keep_moving, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_window_bounds_bytes_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_push_keeps_the_heartbeat, setup, teardown),
        cmocka_unit_test(test_find_chunk),
        cmocka_unit_test_setup_teardown(test_cache_announcement_reserved_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_sleeps_on_the_completion_channel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_woken_by_the_eventfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ended_by_a_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_sees_a_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_sees_device_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_establishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_establishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_over_rdma, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
