/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The raw verbs pump (see pump.h): one process, a listening and a connecting
 * rdma_cm id on the device's address, an RC QP on each, and the library's
 * post pattern with no protocol. Without the rdma backend it says so.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo-rdma-config.h"
#include "bench/ceiling.h"
#include "bench/pump_priv.h"

#if HAVE_RDMA

#include <netdb.h>
#include <poll.h>
#include <sys/mman.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

struct pump {
    struct rdma_event_channel *ec;
    struct rdma_cm_id *listen, *cli, *srv;
    struct ibv_pd *pd, *srv_pd;
    struct ibv_comp_channel *cc;
    struct ibv_cq *cq, *srv_cq;
    struct ibv_mr *src_mr, *dst_mr;
    uint8_t *dst;
    size_t dst_len;
    bool cli_qp, srv_qp, established_cli, established_srv;
    unsigned unacked_events;
    bool busy;
    uint32_t timeout_ms;
    /* the send queue, as the library keeps it */
    uint32_t sq_free, outstanding;
    uint64_t bytes_outstanding;
    struct ibv_send_wr wr[BENCH_RDMA_WRITE_BATCH];
    struct ibv_sge sge[BENCH_RDMA_WRITE_BATCH];
    uint32_t nbatch;
    uint64_t writes;
    const struct bench_pump_params *p;
    char *note;
    size_t len;
    char scratch[192]; /* the note while tearing down: a result is not overwritten */
};

static int fail(struct pump *pm, const char *what, int err)
{
    snprintf(pm->note, pm->len, "verbs pump: %s: %s", what, strerror(err ? err : EIO));
    return -1;
}

/* The next connection event, acknowledged; -1 on timeout or error. */
static int next_event(struct pump *pm, enum rdma_cm_event_type *type, struct rdma_cm_id **id,
                      struct rdma_cm_id **listen_id)
{
    struct pollfd p = {.fd = pm->ec->fd, .events = POLLIN};
    struct rdma_cm_event *ev;

    if (poll(&p, 1, (int)pm->timeout_ms) != 1)
        return fail(pm, "no connection event", ETIMEDOUT);
    if (rdma_get_cm_event(pm->ec, &ev))
        return fail(pm, "rdma_get_cm_event", errno);
    *type = ev->event;
    *id = ev->id;
    if (listen_id)
        *listen_id = ev->listen_id;
    if (ev->status && ev->event != RDMA_CM_EVENT_DISCONNECTED) {
        snprintf(pm->note, pm->len, "verbs pump: %s (status %d)", rdma_event_str(ev->event),
                 ev->status);
        rdma_ack_cm_event(ev);
        return -1;
    }
    rdma_ack_cm_event(ev);
    return 0;
}

static int expect_event(struct pump *pm, enum rdma_cm_event_type want)
{
    enum rdma_cm_event_type type;
    struct rdma_cm_id *id;

    if (next_event(pm, &type, &id, NULL))
        return -1;
    if (type != want) {
        snprintf(pm->note, pm->len, "verbs pump: %s, expected %s", rdma_event_str(type),
                 rdma_event_str(want));
        return -1;
    }
    return 0;
}

static int create_qp(struct pump *pm, struct rdma_cm_id *id, struct ibv_pd *pd,
                     struct ibv_cq *cq, uint32_t send_wr)
{
    struct ibv_qp_init_attr attr = {
        .send_cq = cq,
        .recv_cq = cq,
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0,
        .cap = {.max_send_wr = send_wr, .max_recv_wr = 1, .max_send_sge = 1,
                .max_recv_sge = 1},
    };

    if (rdma_create_qp(id, pd, &attr))
        return fail(pm, "create QP", errno);
    return 0;
}

/* Both ends on the device's address: listen, connect, accept, established twice. */
static int connect_pair(struct pump *pm, const char *addr)
{
    struct rdma_conn_param param = {.retry_count = 7, .rnr_retry_count = 7};
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *ai;
    struct sockaddr_storage sa;
    enum rdma_cm_event_type type;
    struct rdma_cm_id *id, *lid;

    if (getaddrinfo(addr, "0", &hints, &ai)) {
        snprintf(pm->note, pm->len, "verbs pump: %s is not a numeric address", addr);
        return -1;
    }
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    pm->ec = rdma_create_event_channel();
    if (!pm->ec)
        return fail(pm, "event channel", errno);
    if (rdma_create_id(pm->ec, &pm->listen, NULL, RDMA_PS_TCP) ||
        rdma_create_id(pm->ec, &pm->cli, NULL, RDMA_PS_TCP))
        return fail(pm, "rdma_create_id", errno);
    if (rdma_bind_addr(pm->listen, (struct sockaddr *)&sa) || rdma_listen(pm->listen, 1))
        return fail(pm, "bind and listen", errno);
    /* the port the listener got */
    if (sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = rdma_get_src_port(pm->listen);
    else
        ((struct sockaddr_in *)&sa)->sin_port = rdma_get_src_port(pm->listen);
    if (rdma_resolve_addr(pm->cli, NULL, (struct sockaddr *)&sa, (int)pm->timeout_ms))
        return fail(pm, "resolve address", errno);
    if (expect_event(pm, RDMA_CM_EVENT_ADDR_RESOLVED))
        return -1;
    if (rdma_resolve_route(pm->cli, (int)pm->timeout_ms))
        return fail(pm, "resolve route", errno);
    if (expect_event(pm, RDMA_CM_EVENT_ROUTE_RESOLVED))
        return -1;
    pm->pd = ibv_alloc_pd(pm->cli->verbs);
    if (!pm->pd)
        return fail(pm, "allocate PD", errno);
    pm->cc = ibv_create_comp_channel(pm->cli->verbs);
    if (!pm->cc)
        return fail(pm, "completion channel", errno);
    pm->cq = ibv_create_cq(pm->cli->verbs, BENCH_RDMA_SQ_DEPTH + 1, NULL, pm->cc, 0);
    if (!pm->cq)
        return fail(pm, "create CQ", errno);
    if (create_qp(pm, pm->cli, pm->pd, pm->cq, BENCH_RDMA_SQ_DEPTH))
        return -1;
    pm->cli_qp = true;
    if (rdma_connect(pm->cli, &param))
        return fail(pm, "connect", errno);
    while (!pm->established_cli || !pm->established_srv) {
        if (next_event(pm, &type, &id, &lid))
            return -1;
        if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
            pm->srv = id;
            pm->srv_pd = ibv_alloc_pd(id->verbs);
            if (!pm->srv_pd)
                return fail(pm, "allocate the server's PD", errno);
            pm->srv_cq = ibv_create_cq(id->verbs, 4, NULL, NULL, 0);
            if (!pm->srv_cq)
                return fail(pm, "create the server's CQ", errno);
            if (create_qp(pm, id, pm->srv_pd, pm->srv_cq, 1))
                return -1;
            pm->srv_qp = true;
            if (rdma_accept(id, &param))
                return fail(pm, "accept", errno);
        } else if (type == RDMA_CM_EVENT_ESTABLISHED) {
            if (id == pm->cli)
                pm->established_cli = true;
            else
                pm->established_srv = true;
        } else {
            snprintf(pm->note, pm->len, "verbs pump: %s while connecting", rdma_event_str(type));
            return -1;
        }
    }
    return 0;
}

/* Accounts n completions of signaled WRITEs (wr_id: bytes << 16 | WRs). */
static int take(struct pump *pm, const struct ibv_wc *wc, int n)
{
    if (n < 0)
        return fail(pm, "poll CQ", EIO);
    for (int i = 0; i < n; i++) {
        if (wc[i].status != IBV_WC_SUCCESS) {
            snprintf(pm->note, pm->len, "verbs pump: WRITE failed: %s",
                     ibv_wc_status_str(wc[i].status));
            return -1;
        }
        pm->sq_free += (uint32_t)(wc[i].wr_id & 0xffff);
        pm->outstanding -= (uint32_t)(wc[i].wr_id & 0xffff);
        pm->bytes_outstanding -= wc[i].wr_id >> 16;
    }
    return 0;
}

/* Reaps completions; with block set, sleeps (or spins) until there is one. */
static int reap(struct pump *pm, bool block)
{
    for (;;) {
        struct pollfd p = {.fd = pm->cc->fd, .events = POLLIN};
        struct ibv_wc wc[32];
        struct ibv_cq *cq;
        void *ctx;
        int n = ibv_poll_cq(pm->cq, 32, wc);

        if (take(pm, wc, n))
            return -1;
        if (n || !block)
            return 0;
        if (pm->busy)
            continue;
        /* event mode as the library does it: arm, drain, sleep, drain */
        if (ibv_req_notify_cq(pm->cq, 0))
            return fail(pm, "arm CQ", EIO);
        n = ibv_poll_cq(pm->cq, 32, wc);
        if (take(pm, wc, n))
            return -1;
        if (n)
            return 0;
        if (poll(&p, 1, (int)pm->timeout_ms) != 1)
            return fail(pm, "waiting for a completion", ETIMEDOUT);
        if (ibv_get_cq_event(pm->cc, &cq, &ctx))
            return fail(pm, "get CQ event", errno);
        /* acked in batches, and all of them before the CQ goes */
        if (++pm->unacked_events >= 64) {
            ibv_ack_cq_events(pm->cq, pm->unacked_events);
            pm->unacked_events = 0;
        }
    }
}

static bool has_room(const struct pump *pm, uint64_t next)
{
    return pm->sq_free >= 1 &&
           (pm->bytes_outstanding == 0 ||
            pm->bytes_outstanding + next <= BENCH_RDMA_WRITE_WINDOW);
}

/* crdma_write_post's pattern: chains of what the queue and window take, the
 * last WRITE signaled and one at least every BENCH_RDMA_WRITE_SIGNAL_BYTES. */
static int post_batch(struct pump *pm)
{
    uint32_t done = 0;

    while (done < pm->nbatch) {
        uint64_t bytes = pm->sge[done].length;
        struct ibv_send_wr *bad;
        uint32_t k = 1;
        int ret;

        while (!has_room(pm, bytes))
            if (reap(pm, true))
                return -1;
        while (done + k < pm->nbatch && k < pm->sq_free &&
               pm->bytes_outstanding + bytes + pm->sge[done + k].length <=
                   BENCH_RDMA_WRITE_WINDOW) {
            bytes += pm->sge[done + k].length;
            k++;
        }
        for (uint64_t i = done, n = 0, since = 0; i < done + k; i++) {
            pm->wr[i].next = i + 1 < done + k ? &pm->wr[i + 1] : NULL;
            pm->wr[i].send_flags = 0;
            pm->wr[i].wr_id = 0;
            n++;
            since += pm->sge[i].length;
            if (since >= BENCH_RDMA_WRITE_SIGNAL_BYTES || i == done + k - 1) {
                pm->wr[i].send_flags = IBV_SEND_SIGNALED;
                pm->wr[i].wr_id = since << 16 | n;
                n = since = 0;
            }
        }
        ret = ibv_post_send(pm->cli->qp, &pm->wr[done], &bad);
        if (ret == ENOMEM && bad == &pm->wr[done]) {
            if (reap(pm, true))
                return -1;
            continue;
        }
        if (ret)
            return fail(pm, "post WRITE", ret);
        pm->sq_free -= k;
        pm->outstanding += k;
        pm->bytes_outstanding += bytes;
        pm->writes += k;
        done += k;
    }
    pm->nbatch = 0;
    return 0;
}

/* One checkpoint: every run as WRITEs, then every completion. */
static int pump_rdma_push(void *impl, const struct colo_dirty_run *runs, size_t nruns,
                          uint64_t *writes, char *note, size_t len)
{
    struct pump *pm = impl;
    uint64_t w0 = pm->writes;

    pm->note = note;
    pm->len = len;
    for (size_t i = 0; i < nruns; i++) {
        uint64_t off = bench_pump_run_offset(pm->p, &runs[i]);
        uint64_t left = runs[i].page_count * pm->p->page_size;

        if (off + left > pm->dst_len) {
            snprintf(note, len, "verbs pump: a run outside the RAM");
            return -1;
        }
        while (left) {
            uint64_t n = left < BENCH_RDMA_WRITE_CHUNK ? left : BENCH_RDMA_WRITE_CHUNK;
            uint32_t b = pm->nbatch++;

            pm->sge[b] = (struct ibv_sge){.addr = (uintptr_t)(pm->p->ram + off),
                                          .length = (uint32_t)n, .lkey = pm->src_mr->lkey};
            pm->wr[b] = (struct ibv_send_wr){
                .sg_list = &pm->sge[b],
                .num_sge = 1,
                .opcode = IBV_WR_RDMA_WRITE,
                .wr.rdma = {.remote_addr = (uintptr_t)(pm->dst + off), .rkey = pm->dst_mr->rkey},
            };
            if (pm->nbatch == BENCH_RDMA_WRITE_BATCH && post_batch(pm))
                return -1;
            off += n;
            left -= n;
        }
    }
    if (post_batch(pm))
        return -1;
    while (pm->outstanding)
        if (reap(pm, true))
            return -1;
    *writes = pm->writes - w0;
    return 0;
}

/* Teardown in the documented order: QPs, CQs, channel, MRs, PDs, ids, event channel. */
static void pump_rdma_close(void *impl)
{
    struct pump *pm = impl;

    pm->note = pm->scratch;
    pm->len = sizeof(pm->scratch);
    if (pm->established_cli) {
        enum rdma_cm_event_type type;
        struct rdma_cm_id *id;

        rdma_disconnect(pm->cli);
        pm->timeout_ms = 500;
        /* both ends' DISCONNECTED, acked before their ids go */
        for (int i = 0; i < 2 && !next_event(pm, &type, &id, NULL); i++)
            ;
    }
    if (pm->cli_qp)
        rdma_destroy_qp(pm->cli);
    if (pm->srv_qp)
        rdma_destroy_qp(pm->srv);
    if (pm->cq) {
        if (pm->unacked_events)
            ibv_ack_cq_events(pm->cq, pm->unacked_events);
        ibv_destroy_cq(pm->cq);
    }
    if (pm->srv_cq)
        ibv_destroy_cq(pm->srv_cq);
    if (pm->cc)
        ibv_destroy_comp_channel(pm->cc);
    if (pm->src_mr)
        ibv_dereg_mr(pm->src_mr);
    if (pm->dst_mr)
        ibv_dereg_mr(pm->dst_mr);
    if (pm->pd)
        ibv_dealloc_pd(pm->pd);
    if (pm->srv_pd)
        ibv_dealloc_pd(pm->srv_pd);
    if (pm->srv)
        rdma_destroy_id(pm->srv);
    if (pm->cli)
        rdma_destroy_id(pm->cli);
    if (pm->listen)
        rdma_destroy_id(pm->listen);
    if (pm->ec)
        rdma_destroy_event_channel(pm->ec);
    if (pm->dst)
        munmap(pm->dst, pm->dst_len);
    free(pm);
}

static const struct bench_pump_ops pump_rdma_ops = {
    .name = "verbs pump",
    .push = pump_rdma_push,
    .close = pump_rdma_close,
};

int bench_pump_rdma_open(void **impl, const struct bench_pump_ops **ops,
                         const struct bench_rdma_dev *d, const struct bench_pump_params *p,
                         char *note, size_t len)
{
    struct pump *pm = calloc(1, sizeof(*pm));

    *impl = NULL;
    *ops = &pump_rdma_ops;
    if (!pm) {
        snprintf(note, len, "verbs pump: out of memory");
        return -1;
    }
    *pm = (struct pump){.busy = p->busy_poll, .timeout_ms = p->timeout_ms,
                        .sq_free = BENCH_RDMA_SQ_DEPTH, .p = p, .note = note, .len = len};
    if (!d->present) {
        snprintf(note, len, "no RDMA device");
        goto out_close;
    }
    pm->dst_len = (size_t)p->ram_bytes;
    pm->dst = mmap(NULL, pm->dst_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pm->dst == MAP_FAILED) {
        pm->dst = NULL;
        fail(pm, "a cache-sized buffer", errno);
        goto out_close;
    }
    if (connect_pair(pm, d->addr))
        goto out_close;
    pm->src_mr = ibv_reg_mr(pm->pd, p->ram, (size_t)p->ram_bytes, IBV_ACCESS_LOCAL_WRITE);
    pm->dst_mr = ibv_reg_mr(pm->srv_pd, pm->dst, pm->dst_len,
                            IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (!pm->src_mr || !pm->dst_mr) {
        fail(pm, "register the RAM and a cache-sized buffer (RLIMIT_MEMLOCK?)", errno);
        goto out_close;
    }
    *impl = pm;
    return 0;

out_close:
    pump_rdma_close(pm);
    return -1;
}

#else

int bench_pump_rdma_open(void **impl, const struct bench_pump_ops **ops,
                         const struct bench_rdma_dev *d, const struct bench_pump_params *p,
                         char *note, size_t len)
{
    *impl = NULL;
    *ops = NULL;
    snprintf(note, len, "verbs pump: built without the rdma backend");
    return -1;
}

#endif
