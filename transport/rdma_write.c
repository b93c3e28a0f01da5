/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "transport/rdma_mr.h"
#include "transport/rdma_write.h"

/* Room for the next WRITE: a send-queue entry and space in the window. */
static bool sq_has_room(struct crdma_conn *c, void *arg)
{
    uint64_t next = *(const uint64_t *)arg;

    return crdma_sq_room(c) >= 1 &&
           (c->push.bytes_outstanding == 0 ||
            c->push.bytes_outstanding + next <= CRDMA_WRITE_WINDOW);
}

/* A wait for WRITEs: what it waits for, and the completions at its start. */
struct write_wait {
    bool (*done)(struct crdma_conn *c, void *arg);
    void *arg;
    uint64_t completions;
};

static bool done_or_completed(struct crdma_conn *c, void *arg)
{
    struct write_wait *w = arg;

    return w->done(c, w->arg) || c->push.completions != w->completions;
}

/*
 * Waits until done(c, arg), for as long as WRITEs keep completing: each
 * completion gives another timeout_ms (0: no timeout). A whole timeout in
 * which none completed means the link takes nothing: the peer is lost. (A
 * lossy link may take long for a window, since go-back-N resends from the
 * lost packet on, but its completions keep coming: CRDMA_WRITE_SIGNAL_BYTES.)
 */
static int wait_writes(struct crdma_conn *c, bool (*done)(struct crdma_conn *, void *), void *arg,
                       uint32_t timeout_ms, const char *what)
{
    for (;;) {
        struct write_wait w = {done, arg, c->push.completions};
        int ret = crdma_wait(c, done_or_completed, &w, colo_deadline_after_ms(timeout_ms), what);

        if (ret == -ETIMEDOUT)
            return colo_err(COLO_E_PEER_LOST, "rdma: no RDMA WRITE completed for %" PRIu32
                            " ms while %s (%" PRIu32 " WRITEs, %" PRIu64 " bytes in flight; "
                            "WRITEs must keep completing within each timeout)", timeout_ms,
                            what, c->push.writes_outstanding, c->push.bytes_outstanding);
        if (ret || done(c, arg))
            return ret;
    }
}

int crdma_write_post(struct crdma_conn *c, struct crdma_write_batch *b, uint32_t timeout_ms)
{
    uint32_t done = 0;

    while (done < b->n) {
        struct ibv_send_wr *bad;
        uint32_t k;
        int ret;

        uint64_t bytes = b->sge[done].length;

        /* The heartbeat's tick, if due: this loop may keep the lock for the
         * whole push when completions come as fast as the posts. */
        crdma_heartbeat_due(c);
        if (crdma_conn_is_lost(c))
            return crdma_conn_lost_error(c);
        if (!sq_has_room(c, &bytes)) {
            ret = wait_writes(c, sq_has_room, &bytes, timeout_ms,
                              "waiting for send-queue room for RDMA WRITEs");
            if (ret)
                return ret;
        }
        /* As many as the send queue and the window take; signaled: the last
         * one, and one at least every CRDMA_WRITE_SIGNAL_BYTES. */
        k = 1;
        while (done + k < b->n && k < crdma_sq_room(c) &&
               c->push.bytes_outstanding + bytes + b->sge[done + k].length <=
                   CRDMA_WRITE_WINDOW) {
            bytes += b->sge[done + k].length;
            k++;
        }
        for (uint32_t i = done, n = 0, since = 0; i < done + k; i++) {
            b->wr[i].next = i + 1 < done + k ? &b->wr[i + 1] : NULL;
            b->wr[i].send_flags = 0;
            b->wr[i].wr_id = CRDMA_WR_ID(CRDMA_WR_WRITE, 0);
            n++;
            since += b->sge[i].length;
            if (since >= CRDMA_WRITE_SIGNAL_BYTES || i == done + k - 1) {
                /* completes itself and the n - 1 unsignaled ones before it */
                b->wr[i].send_flags = IBV_SEND_SIGNALED;
                b->wr[i].wr_id = CRDMA_WR_ID_BYTES(CRDMA_WR_WRITE, n, since);
                n = since = 0;
            }
        }
        ret = colo_verbs->post_send(crdma_conn_qp(c), &b->wr[done], &bad);
        if (ret == ENOMEM) {
            /* Full after all: reap completions and try again. */
            if (bad != &b->wr[done]) {
                crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: partial post of WRITEs");
                return crdma_conn_lost_error(c);
            }
            crdma_progress(c);
            continue;
        }
        if (ret) {
            crdma_conn_lost(c, COLO_E_PEER_LOST, "rdma: post RDMA WRITE: %s", strerror(ret));
            return crdma_conn_lost_error(c);
        }
        crdma_sq_take(c, k);
        c->push.writes_outstanding += k;
        c->push.bytes_outstanding += bytes;
        c->push.doorbells++;
        c->push.write_wrs += k;
        done += k;
    }
    b->n = 0;
    return 0;
}

int crdma_write_run(struct crdma_conn *c, struct crdma_write_batch *b,
                    const struct colo_ram_layout *layout, const struct colo_dirty_run *run,
                    uint32_t timeout_ms)
{
    uint64_t off = run->first_page * layout->page_size;
    uint64_t len = run->page_count * layout->page_size;
    uint64_t laddr = (uintptr_t)layout->blocks[run->block].host + off;
    uint64_t raddr = crdma_mr_remote_block(c, run->block) + off;
    uint32_t max_msg = crdma_conn_limits(c)->max_msg_size;

    while (len) {
        const struct crdma_chunk *lk = crdma_mr_local_chunk(c, laddr);
        const struct crdma_chunk *rk = crdma_mr_remote_chunk(c, raddr);
        uint64_t n = len;
        uint32_t i;

        if (!lk || !rk)
            return colo_err(-EFAULT, "rdma: block %" PRIu32 " page %" PRIu64
                            " is outside the registered memory", run->block, run->first_page);
        if (n > lk->addr + lk->len - laddr)
            n = lk->addr + lk->len - laddr;
        if (n > rk->addr + rk->len - raddr)
            n = rk->addr + rk->len - raddr;
        if (max_msg && n > max_msg)
            n = max_msg;
        if (n > CRDMA_WRITE_CHUNK)
            n = CRDMA_WRITE_CHUNK;
        i = b->n++;
        b->sge[i] = (struct ibv_sge){.addr = laddr, .length = (uint32_t)n, .lkey = lk->key};
        b->wr[i] = (struct ibv_send_wr){
            .sg_list = &b->sge[i],
            .num_sge = 1,
            .opcode = IBV_WR_RDMA_WRITE,
            .wr.rdma = {.remote_addr = raddr, .rkey = rk->key},
        };
        if (b->n == CRDMA_WRITE_BATCH) {
            int ret = crdma_write_post(c, b, timeout_ms);

            if (ret)
                return ret;
        }
        laddr += n;
        raddr += n;
        len -= n;
    }
    return 0;
}

/* A signaled WRITE completes itself and the unsignaled ones before it. */
void crdma_write_on_completion(struct crdma_conn *c, const struct ibv_wc *wc)
{
    uint32_t n = (uint32_t)CRDMA_WR_N(wc->wr_id);

    crdma_sq_give(c, n);
    c->push.writes_outstanding -= n;
    c->push.bytes_outstanding -= CRDMA_WR_BYTES(wc->wr_id);
    c->push.completions++;
}

struct crdma_write_stats crdma_write_stats(const struct crdma_conn *c)
{
    return (struct crdma_write_stats){.doorbells = c->push.doorbells,
                                      .write_wrs = c->push.write_wrs};
}

static bool writes_done(struct crdma_conn *c, void *arg)
{
    return c->push.writes_outstanding == 0;
}

int crdma_write_drain(struct crdma_conn *c, uint32_t timeout_ms)
{
    return wait_writes(c, writes_done, NULL, timeout_ms, "waiting for RDMA WRITEs to complete");
}
