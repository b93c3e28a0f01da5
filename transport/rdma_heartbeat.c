/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Liveness: the heartbeat thread of one connection and what it judges by,
 * when we last heard from the peer (a control message or a valid probe) and
 * when we last sent on the RC QP. The peer is lost after
 * CRDMA_HEARTBEAT_MISSES intervals without a word.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "transport/rdma_conn.h"

void crdma_heartbeat_init(struct crdma_conn *c)
{
    pthread_cond_init(&c->live.hb_cond, NULL);
}

void crdma_heartbeat_fini(struct crdma_conn *c)
{
    pthread_cond_destroy(&c->live.hb_cond);
}

void crdma_heartbeat_heard(struct crdma_conn *c)
{
    c->live.last_rx_ns = colo_now_ns();
}

void crdma_heartbeat_spoke(struct crdma_conn *c)
{
    c->live.last_tx_ns = colo_now_ns();
}

uint32_t crdma_heartbeat_interval_ms(const struct crdma_conn *c)
{
    return c->live.heartbeat_ms;
}

void crdma_heartbeat_closing(struct crdma_conn *c)
{
    c->live.closing = true;
}

static uint64_t heartbeat_tick_ns(const struct crdma_conn *c)
{
    uint64_t tick_ns = (uint64_t)c->live.heartbeat_ms * COLO_NS_PER_MS / CRDMA_TICKS_PER_INTERVAL;

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
    uint64_t deadline_ns =
        (uint64_t)c->live.heartbeat_ms * CRDMA_HEARTBEAT_MISSES * COLO_NS_PER_MS;
    uint64_t now;

    c->live.hb_in_tick = true;
    crdma_progress(c);
    crdma_check_events(c);
    now = colo_now_ns();
    c->live.hb_next_tick_ns = now + heartbeat_tick_ns(c);
    if (now - c->live.last_rx_ns > deadline_ns) {
        crdma_conn_lost(c, COLO_E_PEER_LOST,
                        "rdma: nothing from the peer for %" PRIu64
                        " ms (heartbeat deadline %" PRIu32 " ms)",
                        (now - c->live.last_rx_ns) / COLO_NS_PER_MS,
                        c->live.heartbeat_ms * CRDMA_HEARTBEAT_MISSES);
    } else {
        crdma_probe_send(c);
        if (!c->live.closing &&
            now - c->live.last_tx_ns >= (uint64_t)c->live.heartbeat_ms * COLO_NS_PER_MS)
            crdma_ctrl_try_send(c, CRDMA_CTRL_HEARTBEAT);
    }
    c->live.hb_in_tick = false;
}

void crdma_heartbeat_due(struct crdma_conn *c)
{
    if (!c->live.hb_running || c->live.hb_stop || crdma_conn_is_lost(c) ||
        c->live.hb_in_tick || colo_now_ns() < c->live.hb_next_tick_ns)
        return;
    c->live.hb_ticks_by_waiter++;
    heartbeat_tick(c);
}

/* The heartbeat thread: a tick every tick_ns unless a lock holder did one. */
static void *heartbeat_main(void *arg)
{
    struct crdma_conn *c = arg;
    uint64_t tick_ns = heartbeat_tick_ns(c);

    pthread_mutex_lock(&c->lock);
    while (!c->live.hb_stop) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(tick_ns % COLO_NS_PER_S);
        ts.tv_sec += (time_t)(tick_ns / COLO_NS_PER_S) + ts.tv_nsec / (long)COLO_NS_PER_S;
        ts.tv_nsec %= (long)COLO_NS_PER_S;
        pthread_cond_timedwait(&c->live.hb_cond, &c->lock, &ts);
        if (c->live.hb_stop || crdma_conn_is_lost(c) || c->live.hb_in_tick)
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

    c->live.heartbeat_ms = interval_ms;
    c->live.last_rx_ns = c->live.last_tx_ns = colo_now_ns();
    c->live.hb_next_tick_ns = c->live.last_rx_ns + heartbeat_tick_ns(c);
    /* The cond waits on the monotonic clock, like every deadline here. */
    pthread_cond_destroy(&c->live.hb_cond);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->live.hb_cond, &attr);
    pthread_condattr_destroy(&attr);
    ret = pthread_create(&c->live.hb_thread, NULL, heartbeat_main, c);
    if (ret)
        return colo_err(-ret, "rdma: start the heartbeat thread: %s", strerror(ret));
    c->live.hb_running = true;
    return 0;
}

void crdma_heartbeat_stop(struct crdma_conn *c)
{
    if (!c->live.hb_running)
        return;
    pthread_mutex_lock(&c->lock);
    c->live.hb_stop = true;
    pthread_cond_signal(&c->live.hb_cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->live.hb_thread, NULL);
    c->live.hb_running = false;
}
