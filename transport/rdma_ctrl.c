/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control channel: stream bytes and COLO messages as SEND/RECV messages.
 *
 * Flow control by credits, so that no SEND ever meets an empty receive queue
 * (RNR is never relied on): the peer pre-posts CRDMA_RECV_DEPTH receives and
 * each SEND spends one credit; a receive buffer is posted again once its
 * bytes are read, and the credit travels back in the header of the next
 * message, or in a credit update when half the ring is owed. A data message
 * needs two credits: the last one is kept for a credit update or a
 * heartbeat, so two sides that both wait for credits can always unblock.
 *
 * Message: be16 type | be16 credits returned | be32 payload length | payload.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "transport/rdma_conn.h"

static uint8_t *recv_slot(struct crdma_conn *c, uint32_t slot)
{
    return crdma_conn_ring(c, (size_t)slot * CRDMA_SLOT_SIZE);
}

static uint8_t *send_slot(struct crdma_conn *c, uint32_t slot)
{
    return crdma_conn_ring(c, (size_t)(CRDMA_RECV_DEPTH + slot) * CRDMA_SLOT_SIZE);
}

static void fill_recv(struct crdma_conn *c, uint32_t slot, struct ibv_recv_wr *wr,
                      struct ibv_sge *sge)
{
    *sge = (struct ibv_sge){
        .addr = (uintptr_t)recv_slot(c, slot),
        .length = CRDMA_SLOT_SIZE,
        .lkey = crdma_conn_ring_lkey(c),
    };
    *wr = (struct ibv_recv_wr){.wr_id = CRDMA_WR_ID(CRDMA_WR_RECV, slot), .sg_list = sge,
                               .num_sge = 1};
}

static int post_all_recvs(struct crdma_conn *c)
{
    struct ibv_recv_wr wr[CRDMA_RECV_DEPTH], *bad;
    struct ibv_sge sge[CRDMA_RECV_DEPTH];
    int ret;

    for (uint32_t i = 0; i < CRDMA_RECV_DEPTH; i++) {
        fill_recv(c, i, &wr[i], &sge[i]);
        wr[i].next = i + 1 < CRDMA_RECV_DEPTH ? &wr[i + 1] : NULL;
    }
    ret = colo_verbs->post_recv(crdma_conn_qp(c), wr, &bad);
    if (ret)
        return colo_err(-ret, "rdma: post the receive ring: %s", strerror(ret));
    return 0;
}

static int repost(struct crdma_conn *c, uint32_t slot)
{
    struct ibv_recv_wr wr, *bad;
    struct ibv_sge sge;
    int ret;

    fill_recv(c, slot, &wr, &sge);
    ret = colo_verbs->post_recv(crdma_conn_qp(c), &wr, &bad);
    if (ret) {
        crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: post a receive: %s", strerror(ret));
        return crdma_conn_lost_code(c);
    }
    c->ctrl.credits_to_return++;
    return 0;
}

/* One received message: its credits taken, its bytes queued for the reader
 * (or its buffer posted again at once when it carries none). */
static int on_message(struct crdma_conn *c, uint32_t slot, uint32_t byte_len)
{
    const uint8_t *m;
    uint16_t type, credits;
    uint32_t len;

    if (slot >= CRDMA_RECV_DEPTH || byte_len < CRDMA_CTRL_HDR) {
        crdma_conn_lost(c, COLO_E_PROTOCOL, "rdma: control message of %" PRIu32
                        " bytes: expected at least %d", byte_len, CRDMA_CTRL_HDR);
        return crdma_conn_lost_code(c);
    }
    m = recv_slot(c, slot);
    type = (uint16_t)(m[0] << 8 | m[1]);
    credits = (uint16_t)(m[2] << 8 | m[3]);
    len = colo_get_be32(m + 4);
    if (len != byte_len - CRDMA_CTRL_HDR || (type != CRDMA_CTRL_DATA && len) ||
        type < CRDMA_CTRL_DATA || type > CRDMA_CTRL_HEARTBEAT) {
        crdma_conn_lost(c, COLO_E_PROTOCOL,
                        "rdma: malformed control message: type %u, length %" PRIu32
                        " in %" PRIu32 " bytes",
                        type, len, byte_len);
        return crdma_conn_lost_code(c);
    }
    if (c->ctrl.peer_credits + credits > CRDMA_RECV_DEPTH) {
        crdma_conn_lost(c, COLO_E_PROTOCOL,
                        "rdma: the peer returned %u credits, holding %" PRIu32 " of %d", credits,
                        c->ctrl.peer_credits, CRDMA_RECV_DEPTH);
        return crdma_conn_lost_code(c);
    }
    c->ctrl.peer_credits += credits;
    if (type == CRDMA_CTRL_DATA && len) {
        c->ctrl.ready[(c->ctrl.ready_head + c->ctrl.ready_count) % CRDMA_RECV_DEPTH] = slot;
        if (c->ctrl.ready_count++ == 0) {
            c->ctrl.head_off = 0;
            c->ctrl.head_len = len;
        }
        return 0;
    }
    return repost(c, slot); /* nothing to read: the buffer goes back at once */
}

void crdma_ctrl_on_recv(struct crdma_conn *c, const struct ibv_wc *wc)
{
    /* Only a plain SEND may land in a receive slot: a WRITE with immediate
     * (or a SEND with one) consumes a receive too, but its bytes are not in
     * the slot. */
    if (wc->opcode != IBV_WC_RECV || (wc->wc_flags & IBV_WC_WITH_IMM)) {
        crdma_conn_lost(c, COLO_E_PROTOCOL,
                        "rdma: the peer's message arrived as %s%s: expected a SEND "
                        "without immediate data",
                        wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM ? "an RDMA WRITE" : "a SEND",
                        wc->wc_flags & IBV_WC_WITH_IMM ? " with immediate data" : "");
        return;
    }
    crdma_heartbeat_heard(c);
    on_message(c, (uint32_t)CRDMA_WR_N(wc->wr_id), wc->byte_len);
}

void crdma_ctrl_on_send(struct crdma_conn *c, const struct ibv_wc *wc)
{
    uint32_t slot = (uint32_t)CRDMA_WR_N(wc->wr_id);

    crdma_sq_give(c, 1);
    if (slot < CRDMA_SEND_SLOTS)
        c->ctrl.send_slot_busy[slot] = false;
}

static int free_send_slot(struct crdma_conn *c)
{
    for (uint32_t i = 0; i < CRDMA_SEND_SLOTS; i++) {
        uint32_t s = (c->ctrl.next_send_slot + i) % CRDMA_SEND_SLOTS;

        if (!c->ctrl.send_slot_busy[s])
            return (int)s;
    }
    return -1;
}

static bool can_send(struct crdma_conn *c, void *arg)
{
    uint16_t type = *(uint16_t *)arg;
    uint32_t need = type == CRDMA_CTRL_DATA ? 2 : 1;

    return c->ctrl.peer_credits >= need && crdma_sq_room(c) >= 1 && free_send_slot(c) >= 0;
}

static int ctrl_send(struct crdma_conn *c, uint16_t type, const void *buf, size_t len,
                     bool wait, uint64_t deadline_ns)
{
    struct ibv_send_wr wr, *bad;
    struct ibv_sge sge;
    uint8_t *m;
    uint32_t credits;
    bool inline_ok = CRDMA_CTRL_HDR + len <= crdma_conn_limits(c)->max_inline;
    int slot, ret;

    if (len > CRDMA_CTRL_PAYLOAD)
        return colo_err(-EMSGSIZE, "rdma: control message of %zu bytes, at most %d", len,
                        CRDMA_CTRL_PAYLOAD);
    if (crdma_conn_is_lost(c))
        return crdma_conn_lost_error(c);
    if (!can_send(c, &type)) {
        if (!wait)
            return -EAGAIN;
        ret = crdma_wait(c, can_send, &type, deadline_ns, "waiting for the peer's credits");
        if (ret)
            return ret;
    }
    slot = free_send_slot(c);
    m = send_slot(c, (uint32_t)slot);
    credits = c->ctrl.credits_to_return > 0xffff ? 0xffff : c->ctrl.credits_to_return;
    m[0] = (uint8_t)(type >> 8);
    m[1] = (uint8_t)type;
    m[2] = (uint8_t)(credits >> 8);
    m[3] = (uint8_t)credits;
    colo_put_be32(m + 4, (uint32_t)len);
    if (len)
        memcpy(m + CRDMA_CTRL_HDR, buf, len);
    sge = (struct ibv_sge){.addr = (uintptr_t)m, .length = (uint32_t)(CRDMA_CTRL_HDR + len),
                           .lkey = crdma_conn_ring_lkey(c)};
    wr = (struct ibv_send_wr){
        .wr_id = CRDMA_WR_ID(CRDMA_WR_SEND, slot),
        .sg_list = &sge,
        .num_sge = 1,
        .opcode = IBV_WR_SEND,
        .send_flags = IBV_SEND_SIGNALED | (inline_ok ? IBV_SEND_INLINE : 0),
    };
    for (;;) {
        ret = colo_verbs->post_send(crdma_conn_qp(c), &wr, &bad);
        if (ret != ENOMEM)
            break;
        /* The send queue is full after all: reap and try again. */
        if (crdma_progress(c))
            return crdma_conn_lost_error(c);
    }
    if (ret) {
        crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: post a send: %s", strerror(ret));
        return crdma_conn_lost_error(c);
    }
    c->ctrl.credits_to_return -= credits;
    c->ctrl.peer_credits--;
    crdma_sq_take(c, 1);
    c->ctrl.send_slot_busy[slot] = true;
    c->ctrl.next_send_slot = ((uint32_t)slot + 1) % CRDMA_SEND_SLOTS;
    crdma_heartbeat_spoke(c);
    return 0;
}

int crdma_ctrl_send(struct crdma_conn *c, uint16_t type, const void *buf, size_t len,
                    uint64_t deadline_ns)
{
    return ctrl_send(c, type, buf, len, true, deadline_ns);
}

int crdma_ctrl_try_send(struct crdma_conn *c, uint16_t type)
{
    return ctrl_send(c, type, NULL, 0, false, 0);
}

void crdma_ctrl_maybe_return_credits(struct crdma_conn *c)
{
    /* Best effort: without a credit now, the next message carries them. */
    if (c->ctrl.credits_to_return >= CRDMA_RECV_DEPTH / 2)
        (void)crdma_ctrl_try_send(c, CRDMA_CTRL_CREDIT);
}

static bool have_data(struct crdma_conn *c, void *arg)
{
    return c->ctrl.ready_count > 0;
}

ssize_t crdma_ctrl_read(struct crdma_conn *c, void *buf, size_t len, uint64_t deadline_ns)
{
    uint8_t *p = buf;
    size_t got = 0;
    int ret;

    ret = crdma_wait(c, have_data, NULL, deadline_ns, "waiting for the peer");
    if (ret)
        return ret;
    while (got < len && c->ctrl.ready_count) {
        uint32_t slot = c->ctrl.ready[c->ctrl.ready_head];
        size_t n = c->ctrl.head_len - c->ctrl.head_off;

        if (n > len - got)
            n = len - got;
        memcpy(p + got, recv_slot(c, slot) + CRDMA_CTRL_HDR + c->ctrl.head_off, n);
        got += n;
        c->ctrl.head_off += (uint32_t)n;
        if (c->ctrl.head_off < c->ctrl.head_len)
            break;
        /* Slot consumed: hand it back to the peer. */
        c->ctrl.ready_head = (c->ctrl.ready_head + 1) % CRDMA_RECV_DEPTH;
        c->ctrl.ready_count--;
        c->ctrl.head_off = 0;
        c->ctrl.head_len = c->ctrl.ready_count
                          ? colo_get_be32(recv_slot(c, c->ctrl.ready[c->ctrl.ready_head]) + 4)
                          : 0;
        if (repost(c, slot))
            return crdma_conn_lost_code(c);
    }
    crdma_ctrl_maybe_return_credits(c);
    return (ssize_t)got;
}

int crdma_ctrl_build(struct crdma_conn *c)
{
    c->ctrl.peer_credits = CRDMA_RECV_DEPTH;
    return post_all_recvs(c);
}

static bool sends_done(struct crdma_conn *c, void *arg)
{
    for (uint32_t i = 0; i < CRDMA_SEND_SLOTS; i++)
        if (c->ctrl.send_slot_busy[i])
            return false;
    return true;
}

int crdma_ctrl_drain(struct crdma_conn *c, uint64_t deadline_ns, const char *what)
{
    return crdma_wait(c, sends_done, NULL, deadline_ns, what);
}
