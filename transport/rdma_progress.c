/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Completions, connection events and device events of one connection, the
 * wait loop (event-driven: arm, drain, sleep, drain; or busy-poll), and the
 * heartbeat. Every way of losing the peer ends in crdma_conn_lost(), which
 * the waiters turn into COLO_E_PEER_LOST with the reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "transport/rdma_conn.h"

static const char *wr_kind_str(uint64_t wr_id)
{
    switch (CRDMA_WR_KIND(wr_id)) {
    case CRDMA_WR_RECV:
        return "receive";
    case CRDMA_WR_SEND:
        return "send";
    case CRDMA_WR_WRITE:
        return "RDMA WRITE";
    default:
        return "unknown work request";
    }
}

int crdma_completion_error(struct crdma_conn *c, const struct ibv_wc *wc)
{
    const char *why;

    /* Flushed work is the normal end of a queue pair being torn down. */
    if (c->tearing_down && wc->status == IBV_WC_WR_FLUSH_ERR)
        return 0;
    switch (wc->status) {
    case IBV_WC_RETRY_EXC_ERR:
        why = "transport retries exhausted: the peer is unreachable";
        break;
    case IBV_WC_RNR_RETRY_EXC_ERR:
        why = "the peer had no receive posted (RNR)";
        break;
    case IBV_WC_WR_FLUSH_ERR:
        why = "work flushed: the connection is in error";
        break;
    case IBV_WC_REM_ACCESS_ERR:
        why = "the peer refused a remote access";
        break;
    default:
        why = "work completion error";
        break;
    }
    crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: %s failed: %s (%s)", wr_kind_str(wc->wr_id),
                    ibv_wc_status_str(wc->status), why);
    return c->lost_err;
}

/* Handles the completions of one poll. */
static void on_completion(struct crdma_conn *c, const struct ibv_wc *wc)
{
    uint64_t n = CRDMA_WR_N(wc->wr_id);

    /* The probe's own failures are not the connection's: it just falls silent. */
    if (CRDMA_WR_KIND(wc->wr_id) == CRDMA_WR_PROBE_RECV ||
        CRDMA_WR_KIND(wc->wr_id) == CRDMA_WR_PROBE_SEND) {
        crdma_probe_on_completion(c, wc);
        return;
    }
    if (wc->status != IBV_WC_SUCCESS) {
        crdma_completion_error(c, wc);
        return;
    }
    switch (CRDMA_WR_KIND(wc->wr_id)) {
    case CRDMA_WR_RECV:
        /* Only a plain SEND may land in a receive slot: a WRITE with
         * immediate (or a SEND with one) consumes a receive too, but its
         * bytes are not in the slot. */
        if (wc->opcode != IBV_WC_RECV || (wc->wc_flags & IBV_WC_WITH_IMM)) {
            crdma_conn_lost(c, COLO_E_PROTOCOL,
                            "rdma: the peer's message arrived as %s%s: expected a SEND "
                            "without immediate data",
                            wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM ? "an RDMA WRITE"
                                                                    : "a SEND",
                            wc->wc_flags & IBV_WC_WITH_IMM ? " with immediate data" : "");
            break;
        }
        c->last_rx_ns = colo_now_ns();
        crdma_ctrl_on_recv(c, (uint32_t)n, wc->byte_len);
        break;
    case CRDMA_WR_SEND:
        c->sq_free++;
        crdma_ctrl_on_send_done(c, (uint32_t)n);
        break;
    case CRDMA_WR_WRITE:
        /* A signaled WRITE completes itself and the unsignaled ones before it. */
        c->sq_free += (uint32_t)n;
        c->writes_outstanding -= (uint32_t)n;
        c->write_bytes_outstanding -= CRDMA_WR_BYTES(wc->wr_id);
        break;
    default:
        crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: completion with unknown wr_id %" PRIx64,
                        (uint64_t)wc->wr_id);
    }
}

static void poll_cm_events(struct crdma_conn *c)
{
    struct rdma_cm_event *ev;

    if (!c->ec)
        return;
    while (colo_verbs->get_cm_event(c->ec, &ev) == 0) {
        enum rdma_cm_event_type type = ev->event;

        colo_verbs->ack_cm_event(ev);
        switch (type) {
        case RDMA_CM_EVENT_DISCONNECTED:
            if (!c->tearing_down)
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: the peer disconnected");
            break;
        case RDMA_CM_EVENT_DEVICE_REMOVAL:
            crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: the RDMA device was removed");
            break;
        case RDMA_CM_EVENT_ADDR_CHANGE:
            crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: the local address changed");
            break;
        default:
            break; /* TIMEWAIT_EXIT and the like */
        }
    }
}

static void poll_async_events(struct crdma_conn *c)
{
    struct ibv_async_event ev;

    if (!c->id || !c->id->verbs)
        return;
    while (colo_verbs->get_async_event(c->id->verbs, &ev) == 0) {
        enum ibv_event_type type = ev.event_type;
        bool ours = true;

        if (type == IBV_EVENT_QP_FATAL || type == IBV_EVENT_QP_REQ_ERR ||
            type == IBV_EVENT_QP_ACCESS_ERR)
            ours = ev.element.qp == c->id->qp;
        colo_verbs->ack_async_event(&ev);
        switch (type) {
        case IBV_EVENT_QP_FATAL:
        case IBV_EVENT_QP_REQ_ERR:
        case IBV_EVENT_QP_ACCESS_ERR:
        case IBV_EVENT_PORT_ERR:
        case IBV_EVENT_DEVICE_FATAL:
            if (ours)
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: %s", ibv_event_type_str(type));
            break;
        default:
            break;
        }
    }
}

void crdma_check_events(struct crdma_conn *c)
{
    poll_cm_events(c);
    poll_async_events(c);
    c->events_checked_ns = colo_now_ns();
}

int crdma_progress(struct crdma_conn *c)
{
    struct ibv_wc wc[CRDMA_POLL_BATCH];
    int n;

    if (c->cq) {
        do {
            n = colo_verbs->poll_cq(c->cq, CRDMA_POLL_BATCH, wc);
            if (n < 0) {
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: polling the completion queue failed");
                break;
            }
            for (int i = 0; i < n; i++)
                on_completion(c, &wc[i]);
        } while (n == CRDMA_POLL_BATCH);
    }
    return c->lost ? c->lost_err : 0;
}

/* Takes every pending event off the completion channel; acks in batches. */
static void take_cq_events(struct crdma_conn *c)
{
    struct ibv_cq *cq;
    void *ctx;

    while (colo_verbs->get_cq_event(c->cc, &cq, &ctx) == 0) {
        c->cq_events_unacked++;
        c->cq_armed = false;
    }
    if (c->cq_events_unacked >= CRDMA_CQ_ACK_BATCH) {
        colo_verbs->ack_cq_events(c->cq, c->cq_events_unacked);
        c->cq_events_unacked = 0;
    }
}

int crdma_wait(struct crdma_conn *c, bool (*done)(struct crdma_conn *, void *), void *arg,
               uint64_t deadline_ns, const char *what)
{
    for (;;) {
        struct pollfd fds[4];
        int nfds = 0;
        uint64_t now, slice_ms;

        crdma_progress(c);
        /* Done at once, time after time, never sleeps: tick here then. */
        crdma_heartbeat_due(c);
        /* What already arrived is still delivered after the peer is gone. */
        if (done(c, arg))
            return 0;
        if (c->lost)
            return crdma_conn_lost_error(c);
        now = colo_now_ns();
        if (deadline_ns && now >= deadline_ns)
            return colo_err(-ETIMEDOUT, "rdma: timed out while %s", what);
        if (c->busy_poll) {
            /* Connection and device events cost system calls: look at them
             * once a millisecond, not on every spin. */
            if (now - c->events_checked_ns > COLO_NS_PER_MS) {
                crdma_check_events(c);
                /* ... and let the heartbeat thread in as often. */
                pthread_mutex_unlock(&c->lock);
                sched_yield();
                pthread_mutex_lock(&c->lock);
            }
            continue;
        }
        if (!c->cq_armed) {
            /* Arm, then drain again: a completion between the last poll and
             * the arming would otherwise raise no event. */
            if (colo_verbs->req_notify_cq(c->cq, 0)) {
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: arming the completion queue failed");
                continue;
            }
            c->cq_armed = true;
            continue;
        }
        fds[nfds++] = (struct pollfd){.fd = c->cc->fd, .events = POLLIN};
        if (c->ec)
            fds[nfds++] = (struct pollfd){.fd = c->ec->fd, .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = c->id->verbs->async_fd, .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = c->wake_fd, .events = POLLIN};
        /* Wake at least every heartbeat interval to see a deadline pass. */
        slice_ms = c->heartbeat_ms ? c->heartbeat_ms : CRDMA_IDLE_SLICE_MS;
        if (deadline_ns && (uint64_t)colo_ms_until(deadline_ns, now) < slice_ms)
            slice_ms = (uint64_t)colo_ms_until(deadline_ns, now);
        pthread_mutex_unlock(&c->lock);
        poll(fds, (nfds_t)nfds, (int)slice_ms);
        pthread_mutex_lock(&c->lock);
        take_cq_events(c);
        if (fds[nfds - 1].revents) { /* a shutdown woke us: reset the eventfd */
            uint64_t v;

            if (read(c->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                crdma_conn_lost(c, -errno, "rdma: wake-up eventfd: %s", strerror(errno));
        }
        /* Only when they fired (or a slice passed): the checks are system calls. */
        for (int i = 1; i < nfds; i++)
            if (fds[i].revents) {
                crdma_check_events(c);
                break;
            }
        if (colo_now_ns() - c->events_checked_ns > slice_ms * COLO_NS_PER_MS)
            crdma_check_events(c);
    }
}

static uint64_t heartbeat_tick_ns(const struct crdma_conn *c)
{
    uint64_t tick_ns = (uint64_t)c->heartbeat_ms * COLO_NS_PER_MS / CRDMA_TICKS_PER_INTERVAL;

    return tick_ns < COLO_NS_PER_MS ? COLO_NS_PER_MS : tick_ns;
}

/*
 * One tick (CRDMA_TICKS_PER_INTERVAL an interval): reap, look at the events,
 * check the deadline, send a probe; and a heartbeat on the RC QP once an
 * interval passed without any send there (it also carries credits, and its
 * failure is how a dead RC path shows when no checkpoint runs). Lock held.
 */
static void heartbeat_tick(struct crdma_conn *c)
{
    uint64_t deadline_ns = (uint64_t)c->heartbeat_ms * CRDMA_HEARTBEAT_MISSES * COLO_NS_PER_MS;
    uint64_t now;

    c->hb_in_tick = true;
    crdma_progress(c);
    crdma_check_events(c);
    now = colo_now_ns();
    c->hb_next_tick_ns = now + heartbeat_tick_ns(c);
    if (now - c->last_rx_ns > deadline_ns) {
        crdma_conn_lost(c, COLO_E_PEER_LOST,
                        "rdma: nothing from the peer for %" PRIu64
                        " ms (heartbeat deadline %" PRIu32 " ms)",
                        (now - c->last_rx_ns) / COLO_NS_PER_MS,
                        c->heartbeat_ms * CRDMA_HEARTBEAT_MISSES);
    } else {
        crdma_probe_send(c);
        if (!c->closing && now - c->last_tx_ns >= (uint64_t)c->heartbeat_ms * COLO_NS_PER_MS)
            crdma_ctrl_try_send(c, CRDMA_CTRL_HEARTBEAT);
    }
    c->hb_in_tick = false;
}

void crdma_heartbeat_due(struct crdma_conn *c)
{
    if (!c->hb_running || c->hb_stop || c->lost || c->hb_in_tick ||
        colo_now_ns() < c->hb_next_tick_ns)
        return;
    c->hb_ticks_by_waiter++;
    heartbeat_tick(c);
}

/* The heartbeat thread: a tick every tick_ns unless a lock holder did one. */
static void *heartbeat_main(void *arg)
{
    struct crdma_conn *c = arg;
    uint64_t tick_ns = heartbeat_tick_ns(c);

    pthread_mutex_lock(&c->lock);
    while (!c->hb_stop) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(tick_ns % COLO_NS_PER_S);
        ts.tv_sec += (time_t)(tick_ns / COLO_NS_PER_S) + ts.tv_nsec / (long)COLO_NS_PER_S;
        ts.tv_nsec %= (long)COLO_NS_PER_S;
        pthread_cond_timedwait(&c->hb_cond, &c->lock, &ts);
        if (c->hb_stop || c->lost || c->hb_in_tick)
            continue;
        heartbeat_tick(c);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int crdma_heartbeat_start(struct crdma_conn *c, uint32_t interval_ms)
{
    pthread_condattr_t attr;
    int ret;

    c->heartbeat_ms = interval_ms;
    c->last_rx_ns = c->last_tx_ns = colo_now_ns();
    c->hb_next_tick_ns = c->last_rx_ns + heartbeat_tick_ns(c);
    /* The cond waits on the monotonic clock, like every deadline here. */
    pthread_cond_destroy(&c->hb_cond);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->hb_cond, &attr);
    pthread_condattr_destroy(&attr);
    ret = pthread_create(&c->hb_thread, NULL, heartbeat_main, c);
    if (ret)
        return colo_err(-ret, "rdma: start the heartbeat thread: %s", strerror(ret));
    c->hb_running = true;
    return 0;
}

void crdma_heartbeat_stop(struct crdma_conn *c)
{
    if (!c->hb_running)
        return;
    pthread_mutex_lock(&c->lock);
    c->hb_stop = true;
    pthread_cond_signal(&c->hb_cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->hb_thread, NULL);
    c->hb_running = false;
}
