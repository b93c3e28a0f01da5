/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The liveness probe: small datagrams on a UD QP of the connection's PD and
 * CQ, sent by the heartbeat thread every quarter interval. A probe carries
 * the receiver's cookie (announced in its private data) and must come from
 * the QPN the peer announced; anything else is counted and dropped. The
 * probe only ever adds evidence of life: if it cannot be set up, the
 * connection goes on with the RC heartbeat alone. Its QP is open to any
 * datagram with the public Q_Key, so an error there (a datagram that does
 * not fit, say) re-arms it at the next send: reset, back to RTS, receives
 * posted anew under a new generation, whose number the work requests carry
 * so that what the old one flushes is told apart.
 *
 * Probe: be32 magic "CLVP" | be32 receiver's cookie | be64 sequence.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "transport/rdma_conn.h"

static uint8_t *probe_slot(struct crdma_conn *c, uint32_t slot)
{
    return crdma_conn_ring(c, CRDMA_PROBE_AREA_OFFSET + (size_t)slot * CRDMA_PROBE_SLOT);
}

static uint32_t random32(void)
{
    uint32_t v;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = (uint32_t)colo_now_ns() ^ (uint32_t)(uintptr_t)&v;
    return v;
}

static int post_probe_recv(struct crdma_conn *c, uint32_t slot)
{
    struct ibv_sge sge = {
        .addr = (uintptr_t)probe_slot(c, slot),
        .length = CRDMA_PROBE_SLOT,
        .lkey = crdma_conn_ring_lkey(c),
    };
    struct ibv_recv_wr wr = {
        .wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_RECV, CRDMA_PROBE_WR_N(c->probe.gen, slot)),
        .sg_list = &sge,
        .num_sge = 1,
    }, *bad;

    return colo_verbs->post_recv(c->probe.qp, &wr, &bad);
}

/* Switches the probe off for good; the RC heartbeat carries on alone. */
static void probe_off(struct crdma_conn *c)
{
    if (c->probe.ah) {
        colo_verbs->destroy_ah(c->probe.ah);
        c->probe.ah = NULL;
    }
}

static int probe_to_rts(struct crdma_conn *c)
{
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_INIT,
        .pkey_index = 0,
        .port_num = crdma_conn_id(c)->port_num,
        .qkey = CRDMA_PROBE_QKEY,
    };

    if (colo_verbs->modify_qp(c->probe.qp, &a,
                              IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
        return -1;
    a = (struct ibv_qp_attr){.qp_state = IBV_QPS_RTR};
    if (colo_verbs->modify_qp(c->probe.qp, &a, IBV_QP_STATE))
        return -1;
    a = (struct ibv_qp_attr){.qp_state = IBV_QPS_RTS, .sq_psn = random32() & 0xffffff};
    return colo_verbs->modify_qp(c->probe.qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

/* To RTS with every receive posted; 0 or -1. */
static int probe_arm(struct crdma_conn *c)
{
    if (probe_to_rts(c))
        return -1;
    for (uint32_t i = 0; i < CRDMA_PROBE_RECVS; i++)
        if (post_probe_recv(c, i))
            return -1;
    return 0;
}

/* After an error: reset the QP, a new generation, armed again; else off for good. */
static void probe_rearm(struct crdma_conn *c)
{
    struct ibv_qp_attr a = {.qp_state = IBV_QPS_RESET};

    c->probe.broken = false;
    c->probe.send_busy = false; /* a reset QP completes nothing more */
    c->probe.gen++;
    c->probe.rearms++;
    if (colo_verbs->modify_qp(c->probe.qp, &a, IBV_QP_STATE) || probe_arm(c)) {
        colo_log(COLO_LOG_WARNING, "rdma: the liveness probe could not be re-armed after an "
                 "error: it stays off, the RC heartbeat goes on");
        probe_off(c);
    }
}

/* The QP is in error (or a post failed): re-armed by the next send. */
static void probe_broke(struct crdma_conn *c)
{
    if (!crdma_conn_tearing_down(c))
        c->probe.broken = true;
}

void crdma_probe_build(struct crdma_conn *c)
{
    struct ibv_qp_init_attr attr = {
        .send_cq = crdma_conn_cq(c),
        .recv_cq = crdma_conn_cq(c),
        .qp_type = IBV_QPT_UD,
        .sq_sig_all = 1,
        .cap = {.max_send_wr = CRDMA_PROBE_SENDS, .max_recv_wr = CRDMA_PROBE_RECVS,
                .max_send_sge = 1, .max_recv_sge = 1},
    };

    c->probe.qp = colo_verbs->create_plain_qp(crdma_conn_pd(c), &attr);
    if (!c->probe.qp)
        return; /* no UD on this device: heartbeats on the RC QP only */
    if (probe_arm(c) == 0) {
        c->probe.cookie = random32();
        return;
    }
    colo_verbs->destroy_plain_qp(c->probe.qp);
    c->probe.qp = NULL;
}

void crdma_probe_connect(struct crdma_conn *c, uint32_t peer_qpn, uint32_t peer_cookie)
{
    struct ibv_qp_attr a = {.qp_state = IBV_QPS_RTR};
    int mask = 0;

    if (!c->probe.qp || !peer_qpn)
        return;
    /* The address the RC QP was connected with also reaches the peer's UD QP. */
    if (colo_verbs->init_qp_attr(crdma_conn_id(c), &a, &mask) || !(mask & IBV_QP_AV))
        return;
    c->probe.ah = colo_verbs->create_ah(crdma_conn_pd(c), &a.ah_attr);
    c->probe.peer_qpn = peer_qpn;
    c->probe.peer_cookie = peer_cookie;
    /* Which UD QPNs to look for in a capture (and, in the tests, where a
     * third party aims its datagrams). */
    colo_log(COLO_LOG_DEBUG, "rdma: liveness probe %s: this side's UD QPN %" PRIu32
             ", the peer's %" PRIu32, c->probe.ah ? "on" : "off (no address handle)",
             (uint32_t)c->probe.qp->qp_num, peer_qpn);
}

void crdma_probe_send(struct crdma_conn *c)
{
    uint8_t *m = probe_slot(c, CRDMA_PROBE_RECVS); /* the send slot, after the receives */
    struct ibv_sge sge;
    struct ibv_send_wr wr, *bad;

    /* An address handle exists only on a built, connected probe. */
    if (!c->probe.ah || crdma_conn_is_lost(c))
        return;
    if (c->probe.broken)
        probe_rearm(c);
    if (!c->probe.ah || c->probe.send_busy)
        return;
    colo_put_be32(m, CRDMA_PROBE_MAGIC);
    colo_put_be32(m + 4, c->probe.peer_cookie);
    colo_put_be64(m + 8, c->probe.sent);
    sge = (struct ibv_sge){.addr = (uintptr_t)m, .length = CRDMA_PROBE_WIRE,
                           .lkey = crdma_conn_ring_lkey(c)};
    wr = (struct ibv_send_wr){
        .wr_id = CRDMA_WR_ID(CRDMA_WR_PROBE_SEND, CRDMA_PROBE_WR_N(c->probe.gen, 0)),
        .sg_list = &sge,
        .num_sge = 1,
        .opcode = IBV_WR_SEND,
        .send_flags = IBV_SEND_SIGNALED,
        .wr.ud = {.ah = c->probe.ah, .remote_qpn = c->probe.peer_qpn,
                  .remote_qkey = CRDMA_PROBE_QKEY},
    };
    if (colo_verbs->post_send(c->probe.qp, &wr, &bad)) {
        probe_broke(c);
        return;
    }
    c->probe.send_busy = true;
    c->probe.sent++;
}

static bool probe_valid(struct crdma_conn *c, const struct ibv_wc *wc, const uint8_t *p)
{
    return wc->byte_len == CRDMA_PROBE_GRH + CRDMA_PROBE_WIRE && c->probe.peer_qpn &&
           wc->src_qp == c->probe.peer_qpn && colo_get_be32(p) == CRDMA_PROBE_MAGIC &&
           colo_get_be32(p + 4) == c->probe.cookie;
}

void crdma_probe_on_completion(struct crdma_conn *c, const struct ibv_wc *wc)
{
    uint32_t n = (uint32_t)CRDMA_WR_N(wc->wr_id), slot = CRDMA_PROBE_WR_SLOT(n);

    /* What a QP flushed before its reset is history. */
    if (CRDMA_PROBE_WR_GEN(n) != CRDMA_PROBE_WR_GEN(CRDMA_PROBE_WR_N(c->probe.gen, 0)))
        return;
    if (CRDMA_WR_KIND(wc->wr_id) == CRDMA_WR_PROBE_SEND) {
        c->probe.send_busy = false;
        if (wc->status != IBV_WC_SUCCESS)
            probe_broke(c);
        return;
    }
    /* A failed receive means the UD QP is in error (or torn down): the
     * slot waits for the re-arm; the deadline still holds meanwhile. */
    if (slot >= CRDMA_PROBE_RECVS)
        return;
    if (wc->status != IBV_WC_SUCCESS) {
        c->probe.refused += wc->status != IBV_WC_WR_FLUSH_ERR;
        probe_broke(c);
        return;
    }
    if (wc->opcode == IBV_WC_RECV && !(wc->wc_flags & IBV_WC_WITH_IMM) &&
        probe_valid(c, wc, probe_slot(c, slot) + CRDMA_PROBE_GRH)) {
        crdma_heartbeat_heard(c);
        c->probe.received++;
    } else {
        c->probe.refused++;
    }
    if (post_probe_recv(c, slot))
        probe_broke(c);
}

/* The QP first: no send may still use the address handle. */
void crdma_probe_destroy(struct crdma_conn *c)
{
    if (c->probe.qp) {
        colo_verbs->destroy_plain_qp(c->probe.qp);
        c->probe.qp = NULL;
    }
    probe_off(c);
}

void crdma_probe_announce(const struct crdma_conn *c, uint32_t *qpn, uint32_t *cookie)
{
    *qpn = c->probe.qp ? c->probe.qp->qp_num : 0;
    *cookie = c->probe.cookie;
}

struct crdma_probe_stats crdma_probe_stats(const struct crdma_conn *c)
{
    return (struct crdma_probe_stats){
        .state = c->probe.qp ? (c->probe.ah ? "on" : "off") : "unavailable",
        .sent = c->probe.sent,
        .received = c->probe.received,
        .refused = c->probe.refused,
        .rearms = c->probe.rearms,
    };
}
