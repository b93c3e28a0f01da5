/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Completions, connection events and device events of one connection, and
 * the wait loop (event-driven: arm, drain, sleep, drain; or busy-poll); the
 * heartbeat is in rdma_heartbeat.c. Every completion goes, by the kind in
 * its wr_id, to the handler of the file that owns that kind of work (one
 * table, below). Every way of losing the peer ends in crdma_conn_lost(),
 * which the waiters turn into COLO_E_PEER_LOST with the reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "transport/rdma_conn.h"
#include "transport/rdma_write.h"

/*
 * Who handles the completions of each kind of work request. own_errors: the
 * owner takes its failed completions too (the probe's failures are not the
 * connection's: it just falls silent); for the others a failure is the
 * connection's, mapped by crdma_completion_error.
 */
struct crdma_wc_owner {
    const char *what; /* in error messages */
    bool own_errors;
    void (*on_wc)(struct crdma_conn *c, const struct ibv_wc *wc);
};

static const struct crdma_wc_owner wc_owners[] = {
    [CRDMA_WR_RECV] = {"receive", false, crdma_ctrl_on_recv},
    [CRDMA_WR_SEND] = {"send", false, crdma_ctrl_on_send},
    [CRDMA_WR_WRITE] = {"RDMA WRITE", false, crdma_write_on_completion},
    [CRDMA_WR_PROBE_RECV] = {"probe receive", true, crdma_probe_on_completion},
    [CRDMA_WR_PROBE_SEND] = {"probe send", true, crdma_probe_on_completion},
};

/* The owner of a completion's kind, or NULL for a wr_id we never posted. */
static const struct crdma_wc_owner *wc_owner(uint64_t wr_id)
{
    unsigned kind = CRDMA_WR_KIND(wr_id);

    if (kind >= sizeof(wc_owners) / sizeof(wc_owners[0]) || !wc_owners[kind].on_wc)
        return NULL;
    return &wc_owners[kind];
}

static const char *wr_kind_str(uint64_t wr_id)
{
    const struct crdma_wc_owner *o = wc_owner(wr_id);

    return o ? o->what : "unknown work request";
}

int crdma_completion_error(struct crdma_conn *c, const struct ibv_wc *wc)
{
    const char *why;

    /* Flushed work is the normal end of a queue pair being torn down. */
    if (crdma_conn_tearing_down(c) && wc->status == IBV_WC_WR_FLUSH_ERR)
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
    return crdma_conn_lost_code(c);
}

/* Hands one completion to the owner of its kind. */
static void on_completion(struct crdma_conn *c, const struct ibv_wc *wc)
{
    const struct crdma_wc_owner *o = wc_owner(wc->wr_id);

    if (o && o->own_errors) {
        o->on_wc(c, wc);
        return;
    }
    if (wc->status != IBV_WC_SUCCESS) {
        crdma_completion_error(c, wc);
        return;
    }
    if (!o) {
        crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: completion with unknown wr_id %" PRIx64,
                        (uint64_t)wc->wr_id);
        return;
    }
    o->on_wc(c, wc);
}

static void poll_cm_events(struct crdma_conn *c)
{
    struct rdma_cm_event *ev;

    if (!crdma_conn_ec(c))
        return;
    while (colo_verbs->get_cm_event(crdma_conn_ec(c), &ev) == 0) {
        enum rdma_cm_event_type type = ev->event;

        colo_verbs->ack_cm_event(ev);
        switch (type) {
        case RDMA_CM_EVENT_DISCONNECTED:
            if (!crdma_conn_tearing_down(c))
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
    struct rdma_cm_id *id = crdma_conn_id(c);
    struct ibv_async_event ev;

    if (!id || !id->verbs)
        return;
    while (colo_verbs->get_async_event(id->verbs, &ev) == 0) {
        enum ibv_event_type type = ev.event_type;
        bool ours = true;

        if (type == IBV_EVENT_QP_FATAL || type == IBV_EVENT_QP_REQ_ERR ||
            type == IBV_EVENT_QP_ACCESS_ERR)
            ours = ev.element.qp == id->qp;
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
    c->wait.events_checked_ns = colo_now_ns();
}

int crdma_progress(struct crdma_conn *c)
{
    struct ibv_wc wc[CRDMA_POLL_BATCH];
    int n;

    if (crdma_conn_cq(c)) {
        do {
            n = colo_verbs->poll_cq(crdma_conn_cq(c), CRDMA_POLL_BATCH, wc);
            if (n < 0) {
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: polling the completion queue failed");
                break;
            }
            for (int i = 0; i < n; i++)
                on_completion(c, &wc[i]);
        } while (n == CRDMA_POLL_BATCH);
    }
    return crdma_conn_lost_code(c);
}

/* Takes every pending event off the completion channel; acks in batches. */
static void take_cq_events(struct crdma_conn *c)
{
    struct ibv_cq *cq;
    void *ctx;

    while (colo_verbs->get_cq_event(crdma_conn_cc(c), &cq, &ctx) == 0) {
        c->wait.cq_events_unacked++;
        c->wait.cq_armed = false;
    }
    if (c->wait.cq_events_unacked >= CRDMA_CQ_ACK_BATCH)
        crdma_wait_ack_all(c);
}

int crdma_wait_init(struct crdma_conn *c)
{
    c->wait.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wait.wake_fd < 0) {
        int err = errno;

        return colo_err(-err, "rdma: eventfd: %s", strerror(err));
    }
    return 0;
}

void crdma_wait_ack_all(struct crdma_conn *c)
{
    if (c->wait.cq_events_unacked)
        colo_verbs->ack_cq_events(crdma_conn_cq(c), c->wait.cq_events_unacked);
    c->wait.cq_events_unacked = 0;
}

void crdma_wait_fini(struct crdma_conn *c)
{
    close(c->wait.wake_fd);
}

void crdma_wait_set_busy_poll(struct crdma_conn *c, bool on)
{
    c->wait.busy_poll = on;
}

void crdma_conn_wake(struct crdma_conn *c)
{
    uint64_t one = 1;

    if (write(c->wait.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return; /* the eventfd can only be full: a wake is pending anyway */
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
        if (crdma_conn_is_lost(c))
            return crdma_conn_lost_error(c);
        now = colo_now_ns();
        if (deadline_ns && now >= deadline_ns)
            return colo_err(-ETIMEDOUT, "rdma: timed out while %s", what);
        if (c->wait.busy_poll) {
            /* Connection and device events cost system calls: look at them
             * once a millisecond, not on every spin. */
            if (now - c->wait.events_checked_ns > COLO_NS_PER_MS) {
                crdma_check_events(c);
                /* ... and let the heartbeat thread in as often. */
                pthread_mutex_unlock(&c->lock);
                sched_yield();
                pthread_mutex_lock(&c->lock);
            }
            /* Then the CQ alone for a while, without the clock. */
            for (int i = 0; i < CRDMA_SPINS_PER_CLOCK; i++) {
                crdma_progress(c);
                if (done(c, arg) || crdma_conn_is_lost(c))
                    break;
            }
            continue;
        }
        if (!c->wait.cq_armed) {
            /* Arm, then drain again: a completion between the last poll and
             * the arming would otherwise raise no event. */
            if (colo_verbs->req_notify_cq(crdma_conn_cq(c), 0)) {
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: arming the completion queue failed");
                continue;
            }
            c->wait.cq_armed = true;
            continue;
        }
        fds[nfds++] = (struct pollfd){.fd = crdma_conn_cc(c)->fd, .events = POLLIN};
        if (crdma_conn_ec(c))
            fds[nfds++] = (struct pollfd){.fd = crdma_conn_ec(c)->fd, .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = crdma_conn_id(c)->verbs->async_fd, .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = c->wait.wake_fd, .events = POLLIN};
        /* Wake at least every heartbeat interval to see a deadline pass. */
        slice_ms = crdma_heartbeat_interval_ms(c);
        if (!slice_ms)
            slice_ms = CRDMA_IDLE_SLICE_MS;
        if (deadline_ns && (uint64_t)colo_ms_until(deadline_ns, now) < slice_ms)
            slice_ms = (uint64_t)colo_ms_until(deadline_ns, now);
        pthread_mutex_unlock(&c->lock);
        poll(fds, (nfds_t)nfds, (int)slice_ms);
        pthread_mutex_lock(&c->lock);
        take_cq_events(c);
        if (fds[nfds - 1].revents) { /* a shutdown woke us: reset the eventfd */
            uint64_t v;

            if (read(c->wait.wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                crdma_conn_lost(c, -errno, "rdma: wake-up eventfd: %s", strerror(errno));
        }
        /* Only when they fired (or a slice passed): the checks are system calls. */
        for (int i = 1; i < nfds; i++)
            if (fds[i].revents) {
                crdma_check_events(c);
                break;
            }
        if (colo_now_ns() - c->wait.events_checked_ns > slice_ms * COLO_NS_PER_MS)
            crdma_check_events(c);
    }
}
