/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rdma backend's logic on any machine: a fake verbs table stands in for
 * the device. Credit accounting, WRITE splitting and batching, the mapping
 * of completion errors, malformed peer messages, the liveness probe, and
 * teardown from every half-built state.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "transport/rdma_conn.h"
#include "transport/rdma_mr.h"
#include "transport/rdma_write.h"

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
    struct crdma_conn *alive_peer; /* its peer shows life at every reap */
    struct ibv_wc cq_q[1024];
    int cq_head, cq_tail;
    int recvs_posted;
    uint8_t *ring;           /* the conn's control buffer, to write peer messages */
} fk;

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
    fk.cc.fd = dup(0 + 2); /* any fd that fcntl accepts */
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
    logd('e');
}

static int f_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    if (fk.fail_at == S_RECV)
        return EINVAL;
    for (; wr; wr = wr->next)
        (*(qp == &fk.udqp ? &fk.probe_recvs : &fk.recvs_posted))++;
    return 0;
}

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
        if (fk.auto_complete && (wr->send_flags & IBV_SEND_SIGNALED))
            cq_push(wr->wr_id, IBV_WC_SUCCESS, 0);
    }
    return 0;
}

static int f_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
    int got = 0;

    if (fk.alive_peer)
        fk.alive_peer->last_rx_ns = colo_now_ns();
    while (got < n && fk.cq_head < fk.cq_tail)
        wc[got++] = fk.cq_q[fk.cq_head++ % 1024];
    return got;
}

static int f_req_notify(struct ibv_cq *cq, int s)
{
    return 0;
}

static int f_get_cq_event(struct ibv_comp_channel *cc, struct ibv_cq **cq, void **ctx)
{
    return errno = EAGAIN, -1;
}

static void f_ack_cq_events(struct ibv_cq *cq, unsigned n)
{
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
    return errno = EAGAIN, -1;
}

static int f_get_cm_event(struct rdma_event_channel *ec, struct rdma_cm_event **e)
{
    return errno = EAGAIN, -1;
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
    .get_cm_event = f_get_cm_event,
};

static struct rdma_event_channel fake_ec;

/* A connection built on the fake device (no event channel unless asked). */
static struct crdma_conn *fake_conn(bool with_ec)
{
    struct crdma_conn *c;

    assert_int_equal(crdma_conn_new(&c), 0);
    c->id = &fk.id;
    fk.live++; /* the id */
    if (with_ec) {
        c->ec = &fake_ec;
        fk.live++;
    }
    return c;
}

static int setup(void **state)
{
    memset(&fk, 0, sizeof(fk));
    fk.fail_at = -1;
    fk.auto_complete = true;
    fk.ctx.async_fd = 2;
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
    assert_int_equal(c->lim.max_inline, 0);
    assert_int_equal(c->lim.sq_depth, 16);
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
    assert_non_null(c->probe_qp);
    crdma_probe_connect(c, 0x77, 0xc00c1e);
    assert_non_null(c->probe_ah);
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
    c->last_rx_ns = 1;
    peer_probes(c, 3, 0x77, c->probe_cookie);
    assert_int_equal(crdma_progress(c), 0);
    assert_true(c->last_rx_ns > 1);
    assert_int_equal(c->probes_received, 1);
    assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS + 1);
    /* From another QP, or with another cookie: refused, not life. */
    c->last_rx_ns = 1;
    peer_probes(c, 4, 0x78, c->probe_cookie);
    peer_probes(c, 5, 0x77, c->probe_cookie + 1);
    assert_int_equal(crdma_progress(c), 0);
    assert_int_equal(c->last_rx_ns, 1);
    assert_int_equal(c->probes_refused, 2);
    assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS + 3);
    assert_false(c->lost);
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
    assert_false(c->lost);
    assert_non_null(c->probe_ah);
    assert_int_equal(fk.probe_recvs, CRDMA_PROBE_RECVS); /* the flushed one not reposted */
    /* The next send re-arms it: every receive posted anew, then the probe. */
    crdma_probe_send(c);
    assert_int_equal(c->probe_rearms, 1);
    assert_int_equal(fk.probe_recvs, 2 * CRDMA_PROBE_RECVS);
    assert_int_equal(fk.probe_sends, 2);
    assert_int_equal(CRDMA_WR_N(fk.probe_wr.wr_id), CRDMA_PROBE_WR_N(1, 0));
    /* What the old QP still flushes is not the new one's. */
    cq_push(CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, CRDMA_PROBE_WR_N(0, 1)), IBV_WC_WR_FLUSH_ERR, 0);
    assert_int_equal(crdma_progress(c), 0);
    assert_false(c->probe_broken);
    assert_true(c->probe_send_busy);
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
    assert_false(c->lost);
    assert_int_equal(c->probes_refused, 1);
    /* ... a probe from the peer is life again once the next tick re-armed it */
    crdma_probe_send(c);
    assert_int_equal(c->probe_rearms, 1);
    assert_int_equal(fk.probe_sends, 2);
    c->last_rx_ns = 1;
    peer_probes(c, 5, 0x77, c->probe_cookie);
    fk.cq_q[(fk.cq_tail - 1) % 1024].wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, gen1 | 5);
    assert_int_equal(crdma_progress(c), 0);
    assert_true(c->last_rx_ns > 1);
    assert_int_equal(c->probes_received, 1);
    /* A datagram with immediate data, well-formed or not, is refused, not life. */
    c->last_rx_ns = 1;
    peer_probes(c, 6, 0x77, c->probe_cookie);
    fk.cq_q[(fk.cq_tail - 1) % 1024].wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, gen1 | 6);
    fk.cq_q[(fk.cq_tail - 1) % 1024].wc_flags = IBV_WC_WITH_IMM;
    assert_int_equal(crdma_progress(c), 0);
    assert_int_equal(c->last_rx_ns, 1);
    assert_int_equal(c->probes_refused, 2);
    assert_false(c->probe_broken);
    crdma_conn_destroy(c);
    assert_int_equal(fk.live, 0);
}

static void test_no_ud_means_no_probe(void **state)
{
    struct crdma_conn *c = fake_conn(false);

    fk.no_ud = true;
    assert_int_equal(crdma_conn_build(c), 0);
    assert_null(c->probe_qp);
    crdma_probe_connect(c, 0x77, 1);
    crdma_probe_send(c);
    assert_null(c->probe_ah);
    assert_int_equal(fk.probe_sends, 0);
    /* ... and a peer without one (QPN 0) is not probed either. */
    fk.no_ud = false;
    crdma_conn_destroy(c);
    c = fake_conn(false);
    assert_int_equal(crdma_conn_build(c), 0);
    crdma_probe_connect(c, 0, 1);
    assert_null(c->probe_ah);
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

    c->lim.max_qp_wr = 1024;
    assert_int_equal(crdma_conn_build(c), 0);
    c->sq_free = 1024; /* the send queue is not what this test limits */
    /* Data may use every credit but the last (deadline 1: long passed). */
    while (crdma_ctrl_send(c, CRDMA_CTRL_DATA, "x", 1, 1) == 0) {
        data++;
        crdma_progress(c); /* send completions free the send slots */
    }
    assert_int_equal(data, CRDMA_RECV_DEPTH - 1);
    assert_int_equal(c->peer_credits, 1);
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
    assert_int_equal(c->peer_credits, 10);
    assert_int_equal(crdma_ctrl_send(c, CRDMA_CTRL_DATA, "y", 1, 0), 0);
    /* the heartbeat's receive buffer went straight back, owed as a credit */
    assert_int_equal(c->credits_to_return, 0); /* ... and rode on that data message */
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
    assert_int_equal(c->credits_to_return, 0);
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
        assert_true(c->lost);
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
        assert_true(c->lost);
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
        assert_true(c->lost);
        assert_non_null(strstr(c->lost_reason, table[i].why));
        assert_non_null(strstr(c->lost_reason, "RDMA WRITE"));
        crdma_conn_destroy(c);
    }
}

static void test_flush_during_teardown_is_no_failure(void **state)
{
    struct crdma_conn *c = fake_conn(false);
    struct ibv_wc wc = {.wr_id = CRDMA_WR_ID(CRDMA_WR_RECV, 3), .status = IBV_WC_WR_FLUSH_ERR};

    c->tearing_down = true;
    assert_int_equal(crdma_completion_error(c, &wc), 0);
    assert_false(c->lost);
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
    c->nlocal = 2;
    c->local[0] = (struct crdma_chunk){(uintptr_t)guest, 40 * 4096, 0x11};
    c->local[1] = (struct crdma_chunk){(uintptr_t)guest + 40 * 4096, 24 * 4096, 0x12};
    c->nremote = 2;
    c->remote[0] = (struct crdma_chunk){0x10000000, 20 * 4096, 0x21};
    c->remote[1] = (struct crdma_chunk){0x10000000 + 20 * 4096, 44 * 4096, 0x22};
    c->remote_block[0] = 0x10000000;
    c->lim.max_msg_size = 8 * 4096;
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
    assert_true(c->doorbells == 1);
    assert_int_equal(crdma_write_drain(c, 0), 0);
    assert_int_equal(c->writes_outstanding, 0);
    assert_int_equal(c->sq_free, c->lim.sq_depth);
    crdma_conn_destroy(c);
}

static void test_write_batches_follow_the_send_queue(void **state)
{
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c;

    write_conn(&c, &l);
    fk.auto_complete = false; /* completions arrive only when the test says */
    c->lim.max_msg_size = 4096; /* one page per WRITE */
    /* 40 single-page WRITEs against a 16-entry send queue */
    for (uint64_t p = 0; p < 40; p++) {
        struct colo_dirty_run run = {.block = 0, .first_page = p, .page_count = 1};

        if (b.n == CRDMA_WRITE_BATCH - 1)
            break;
        assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    }
    /* The first post fills the queue; the rest waits for completions. */
    fk.post_send_enomem = 1; /* and one ENOMEM is survived by reaping */
    assert_int_equal(crdma_write_post(c, &b, 1), -ETIMEDOUT);
    assert_int_equal(fk.nsent, 16);
    assert_int_equal(c->sq_free, 0);
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
    assert_true(c->write_wrs == 40);
    assert_true(c->doorbells >= 3);
    crdma_conn_destroy(c);
}

/* A long run goes in chunks, with at most a window in flight (heartbeats
 * queued behind the WRITEs must not starve). */
static void test_write_window_bounds_bytes_in_flight(void **state)
{
    static uint8_t big[2u << 20] __attribute__((aligned(4096)));
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c = fake_conn(false);
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = sizeof(big) / 4096};

    assert_int_equal(crdma_conn_build(c), 0);
    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "pc.ram", big, sizeof(big)), 0);
    c->nlocal = c->nremote = 1;
    c->local[0] = (struct crdma_chunk){(uintptr_t)big, sizeof(big), 0x11};
    c->remote[0] = (struct crdma_chunk){0x20000000, sizeof(big), 0x21};
    c->remote_block[0] = 0x20000000;
    c->lim.max_msg_size = 0; /* only the chunk size splits */
    fk.auto_complete = false;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(b.n, sizeof(big) / CRDMA_WRITE_CHUNK);
    /* the first post stops at the window, then waits for completions */
    assert_int_equal(crdma_write_post(c, &b, 1), -ETIMEDOUT);
    assert_int_equal(fk.nsent, CRDMA_WRITE_WINDOW / CRDMA_WRITE_CHUNK);
    assert_true(c->write_bytes_outstanding == CRDMA_WRITE_WINDOW);
    for (int i = 0; i < fk.nsent; i++)
        assert_int_equal(fk.sent[i].sg_list->length, CRDMA_WRITE_CHUNK);
    cq_push(fk.sent[fk.nsent - 1].wr_id, IBV_WC_SUCCESS, 0);
    fk.auto_complete = true;
    crdma_progress(c);
    assert_true(c->write_bytes_outstanding == 0);
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
    static uint8_t big[8u << 20] __attribute__((aligned(4096)));
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c = fake_conn(false);
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = sizeof(big) / 4096};
    int rc_sends = 0;

    assert_int_equal(crdma_conn_build(c), 0);
    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "pc.ram", big, sizeof(big)), 0);
    c->nlocal = c->nremote = 1;
    c->local[0] = (struct crdma_chunk){(uintptr_t)big, sizeof(big), 0x11};
    c->remote[0] = (struct crdma_chunk){0x20000000, sizeof(big), 0x21};
    c->remote_block[0] = 0x20000000;
    c->lim.max_msg_size = 0;
    crdma_probe_connect(c, 0x77, 0xc00c1e);
    fk.probe_auto_complete = true;
    fk.post_delay_us = 12000; /* > the 10 ms tick of a 40 ms interval */
    fk.alive_peer = c; /* its probes come with every reap: never near the deadline */
    /* The heartbeat "runs" but never gets the lock: there is no thread. */
    c->heartbeat_ms = 40;
    c->last_rx_ns = c->last_tx_ns = colo_now_ns();
    c->hb_next_tick_ns = 0;
    c->hb_running = true;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(crdma_write_post(c, &b, 0), 0);
    assert_int_equal(crdma_write_drain(c, 0), 0);
    assert_int_equal(c->doorbells, sizeof(big) / CRDMA_WRITE_WINDOW);
    /* a tick before each doorbell: a probe each, and RC heartbeats (96+ ms
     * passed without a control message, the interval is 40) */
    assert_true(c->hb_ticks_by_waiter >= sizeof(big) / CRDMA_WRITE_WINDOW);
    assert_true(fk.probe_sends >= (int)(sizeof(big) / CRDMA_WRITE_WINDOW));
    for (int i = 0; i < fk.nsent; i++)
        rc_sends += fk.sent[i].opcode == IBV_WR_SEND;
    assert_true(rc_sends >= 1);
    assert_false(c->lost);
    /* A peer silent for longer than the deadline is lost in the middle of a push. */
    fk.alive_peer = NULL;
    c->last_rx_ns = colo_now_ns() - 1000 * COLO_NS_PER_MS;
    assert_int_equal(crdma_write_run(c, &b, &l, &run, 0), 0);
    assert_int_equal(crdma_write_post(c, &b, 0), COLO_E_PEER_LOST);
    assert_non_null(strstr(c->lost_reason, "nothing from the peer"));
    c->hb_running = false;
    crdma_conn_destroy(c);
}

static void test_write_outside_registration_is_refused(void **state)
{
    struct colo_ram_layout l;
    struct crdma_write_batch b = {0};
    struct crdma_conn *c;
    struct colo_dirty_run run = {.block = 0, .first_page = 60, .page_count = 4};

    write_conn(&c, &l);
    c->remote[1].len = 30 * 4096; /* the remote side covers pages 0..49 only */
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
        cmocka_unit_test_setup_teardown(test_write_window_bounds_bytes_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_push_keeps_the_heartbeat, setup, teardown),
        cmocka_unit_test(test_find_chunk),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
