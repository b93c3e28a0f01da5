/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "transport/rdma.h"
#include "transport/rdma_conn.h"
#include "transport/rdma_mr.h"
#include "transport/rdma_write.h"

/* What a stream holds: the shared connection and its page-push batch. */
struct crdma_stream {
    struct crdma_conn *c;
    uint32_t timeout_ms;
    struct crdma_write_batch batch;
};

struct colo_rdma_listener {
    struct rdma_event_channel *ec;
    struct rdma_cm_id *id;
    uint16_t port;
};

/* Waits for the next connection-manager event on ec (non-blocking fd); fails
 * with -ECANCELED as soon as cancel_fd (an eventfd, or -1) is readable. */
static int next_cm_event(struct rdma_event_channel *ec, uint64_t deadline_ns, int cancel_fd,
                         const char *what, struct rdma_cm_event **ev)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = ec->fd, .events = POLLIN},
                              {.fd = cancel_fd, .events = POLLIN}};
        uint64_t now = colo_now_ns();
        int n;

        if (colo_verbs->get_cm_event(ec, ev) == 0)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return colo_err(-errno, "rdma: %s: %s", what, strerror(errno));
        if (deadline_ns && now >= deadline_ns)
            return colo_err(-ETIMEDOUT, "rdma: timed out while %s", what);
        n = poll(p, 2, deadline_ns ? colo_ms_until(deadline_ns, now) : -1);
        if (n < 0 && errno != EINTR)
            return colo_err(-errno, "rdma: poll: %s", strerror(errno));
        if (n > 0 && p[1].revents)
            return colo_err(-ECANCELED, "rdma: cancelled while %s", what);
    }
}

/* Waits for one expected event; any other ends the attempt with its name. */
static int expect_cm_event_or_cancel(struct rdma_event_channel *ec, enum rdma_cm_event_type want,
                                     uint64_t deadline_ns, int cancel_fd, const char *what,
                                     struct rdma_cm_event **out)
{
    struct rdma_cm_event *ev;
    int ret = next_cm_event(ec, deadline_ns, cancel_fd, what, &ev);

    if (ret)
        return ret;
    if (ev->event != want) {
        ret = colo_err(COLO_E_PEER_LOST, "rdma: %s: %s (status %d), expected %s", what,
                       rdma_event_str(ev->event), ev->status, rdma_event_str(want));
        if (out && ev->event == RDMA_CM_EVENT_REJECTED) {
            *out = ev; /* the caller reads the reason from the private data */
            return ret;
        }
        colo_verbs->ack_cm_event(ev);
        return ret;
    }
    if (out)
        *out = ev;
    else
        colo_verbs->ack_cm_event(ev);
    return 0;
}

static int expect_cm_event(struct rdma_event_channel *ec, enum rdma_cm_event_type want,
                           uint64_t deadline_ns, const char *what, struct rdma_cm_event **out)
{
    return expect_cm_event_or_cancel(ec, want, deadline_ns, -1, what, out);
}

/*
 * Private data of connect and accept: the upper layer's hello, then where
 * the sender's liveness probe listens: be32 UD QPN (0: none) | be32 cookie.
 */
#define CRDMA_PROBE_PRIVATE_SIZE 8
#define CRDMA_PRIVATE_MAX (COLO_RDMA_HELLO_MAX + CRDMA_PROBE_PRIVATE_SIZE)

static int check_hello_size(const struct colo_rdma_hello *mine)
{
    if (!mine || !mine->check || mine->len > COLO_RDMA_HELLO_MAX)
        return colo_err(COLO_E_CONFIG, "rdma: hello of %zu bytes: expected a check callback "
                        "and at most %d bytes", mine ? mine->len : 0, COLO_RDMA_HELLO_MAX);
    return 0;
}

/* Hands the peer's hello (the head of its private data) to the upper layer. */
static int check_private_hello(const struct colo_rdma_hello *mine, const void *data, size_t len)
{
    return mine->check(mine->arg, data, len < mine->len ? len : mine->len);
}

static size_t private_data(const struct crdma_conn *c, const struct colo_rdma_hello *mine,
                           uint8_t out[CRDMA_PRIVATE_MAX])
{
    uint32_t qpn, cookie;

    memcpy(out, mine->data, mine->len);
    crdma_probe_announce(c, &qpn, &cookie);
    colo_put_be32(out + mine->len, qpn);
    colo_put_be32(out + mine->len + 4, cookie);
    return mine->len + CRDMA_PROBE_PRIVATE_SIZE;
}

/* Aims our probe at the peer's, if its private data announced one. */
static void connect_probe(struct crdma_conn *c, const struct colo_rdma_hello *mine,
                          const uint8_t *data, size_t len)
{
    if (data && len >= mine->len + CRDMA_PROBE_PRIVATE_SIZE)
        crdma_probe_connect(c, colo_get_be32(data + mine->len),
                            colo_get_be32(data + mine->len + 4));
}

static void conn_param(struct rdma_conn_param *p, const uint8_t *priv, size_t len)
{
    *p = (struct rdma_conn_param){
        .private_data = priv,
        .private_data_len = (uint8_t)len,
        .responder_resources = 0, /* no RDMA READ either way */
        .initiator_depth = 0,
        .retry_count = CRDMA_RETRY_COUNT,
        .rnr_retry_count = 0,     /* credits make RNR impossible: never retry it */
    };
}

/* librdmacm's resolve timeouts: ours, or (0: no timeout) the longest it takes. */
static int cm_timeout_ms(const struct colo_rdma_options *opt)
{
    return opt->timeout_ms && opt->timeout_ms <= INT_MAX ? (int)opt->timeout_ms : INT_MAX;
}

/* A non-blocking event channel and, where id is given, an id on it. */
static int new_event_channel(struct rdma_event_channel **ec, struct rdma_cm_id **id, void *ctx)
{
    int ret;

    *ec = colo_verbs->create_event_channel();
    if (!*ec)
        return colo_err(-errno, "rdma: create event channel: %s (is an RDMA device and "
                        "rdma_ucm there?)", strerror(errno));
    ret = colo_set_nonblock((*ec)->fd);
    if (ret)
        return colo_err(ret, "rdma: event channel: cannot make it non-blocking: %s",
                        strerror(-ret));
    if (id && colo_verbs->create_id(*ec, id, ctx, RDMA_PS_TCP))
        return colo_err(-errno, "rdma: create id: %s", strerror(errno));
    return 0;
}

/* ---- stream ops ---- */

static int crdma_writev(void *opaque, const struct iovec *iov, int iovcnt, uint32_t timeout_ms)
{
    struct crdma_stream *s = opaque;
    struct crdma_conn *c = s->c;
    uint64_t deadline = colo_deadline_after_ms(timeout_ms);
    uint8_t chunk[CRDMA_CTRL_PAYLOAD];
    size_t fill = 0;
    int ret = 0;

    pthread_mutex_lock(&c->lock);
    /* Gathers the buffers into as few messages as possible. */
    for (int i = 0; !ret && i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;

        while (!ret && left) {
            size_t n = CRDMA_CTRL_PAYLOAD - fill < left ? CRDMA_CTRL_PAYLOAD - fill : left;

            memcpy(chunk + fill, p, n);
            fill += n;
            p += n;
            left -= n;
            if (fill == CRDMA_CTRL_PAYLOAD) {
                ret = crdma_ctrl_send(c, CRDMA_CTRL_DATA, chunk, fill, deadline);
                fill = 0;
            }
        }
    }
    if (!ret && fill)
        ret = crdma_ctrl_send(c, CRDMA_CTRL_DATA, chunk, fill, deadline);
    pthread_mutex_unlock(&c->lock);
    return ret;
}

static ssize_t crdma_read(void *opaque, void *buf, size_t len, uint32_t timeout_ms)
{
    struct crdma_stream *s = opaque;
    ssize_t n;

    pthread_mutex_lock(&s->c->lock);
    n = crdma_ctrl_read(s->c, buf, len, colo_deadline_after_ms(timeout_ms));
    pthread_mutex_unlock(&s->c->lock);
    return n;
}

static int crdma_shutdown(void *opaque)
{
    struct crdma_stream *s = opaque;

    /* From any thread: the owner may sleep in poll() with the lock released. */
    pthread_mutex_lock(&s->c->lock);
    crdma_conn_lost(s->c, -EPIPE, "rdma: connection shut down");
    colo_verbs->disconnect(crdma_conn_id(s->c));
    pthread_mutex_unlock(&s->c->lock);
    crdma_conn_wake(s->c);
    return 0;
}

/* Reaps and looks at the events, so a loss the heartbeat missed shows too. */
static int crdma_check(void *opaque)
{
    struct crdma_stream *s = opaque;
    int ret = 0;

    pthread_mutex_lock(&s->c->lock);
    crdma_progress(s->c);
    crdma_check_events(s->c);
    if (crdma_conn_is_lost(s->c))
        ret = crdma_conn_lost_error(s->c);
    pthread_mutex_unlock(&s->c->lock);
    return ret;
}

static struct crdma_stream *stream_state_new(struct crdma_conn *c, uint32_t timeout_ms)
{
    struct crdma_stream *s = calloc(1, sizeof(*s));

    if (s) {
        s->c = c;
        s->timeout_ms = timeout_ms;
    }
    return s;
}

static int crdma_open_return_path(void *opaque, void **rp)
{
    struct crdma_stream *s = opaque, *r = stream_state_new(s->c, s->timeout_ms);

    if (!r)
        return colo_err(-ENOMEM, "rdma: out of memory");
    __atomic_add_fetch(&s->c->refs, 1, __ATOMIC_RELAXED);
    *rp = r;
    return 0;
}

static void crdma_close(void *opaque)
{
    struct crdma_stream *s = opaque;
    struct crdma_conn *c = s->c;

    free(s);
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
        return;
    pthread_mutex_lock(&c->lock);
    /*
     * The last messages (a goodbye) must reach the peer before the
     * disconnect, which travels another path and could overtake them: a
     * send's completion means the peer acknowledged it. Under loss that can
     * take several retransmissions, so the wait is as long as the peer's own
     * patience (its heartbeat deadline), and the probe keeps running
     * meanwhile so that the peer does not give up on us first.
     */
    if (!crdma_conn_is_lost(c)) {
        uint32_t hb_ms = crdma_heartbeat_interval_ms(c);
        uint32_t patience_ms = hb_ms ? hb_ms * CRDMA_HEARTBEAT_MISSES : CRDMA_CLOSE_FLUSH_MS;

        crdma_heartbeat_closing(c);
        crdma_ctrl_drain(c, colo_deadline_after_ms(patience_ms), "flushing the last messages");
    }
    pthread_mutex_unlock(&c->lock);
    crdma_heartbeat_stop(c);
    pthread_mutex_lock(&c->lock);
    crdma_conn_begin_teardown(c);
    if (!crdma_conn_is_lost(c))
        colo_verbs->disconnect(crdma_conn_id(c));
    pthread_mutex_unlock(&c->lock);
    crdma_conn_destroy(c);
}

static int crdma_register_ram(void *opaque, struct colo_stream *f)
{
    struct crdma_stream *s = opaque;

    /* The secondary holds the cache; the primary the source RAM. */
    if (colo_stream_ram_cache(f))
        return crdma_mr_expose_cache(s->c, f);
    return crdma_mr_register_ram(s->c, f);
}

static int crdma_save_page(void *opaque, struct colo_stream *f, const struct colo_dirty_run *run)
{
    struct crdma_stream *s = opaque;
    int ret;

    pthread_mutex_lock(&s->c->lock);
    ret = crdma_write_run(s->c, &s->batch, colo_stream_ram_layout(f), run, s->timeout_ms);
    pthread_mutex_unlock(&s->c->lock);
    return ret;
}

static int crdma_after_ram_iterate(void *opaque, struct colo_stream *f, uint64_t seq)
{
    struct crdma_stream *s = opaque;
    int ret;

    pthread_mutex_lock(&s->c->lock);
    ret = crdma_write_post(s->c, &s->batch, s->timeout_ms);
    pthread_mutex_unlock(&s->c->lock);
    return ret;
}

/* Returns once every WRITE completed: RC completion means the peer has it. */
static int crdma_flush_ram(void *opaque, struct colo_stream *f)
{
    struct crdma_stream *s = opaque;
    int ret;

    pthread_mutex_lock(&s->c->lock);
    ret = crdma_write_post(s->c, &s->batch, s->timeout_ms);
    if (!ret)
        ret = crdma_write_drain(s->c, s->timeout_ms);
    pthread_mutex_unlock(&s->c->lock);
    return ret;
}

static const struct colo_stream_ops crdma_ops = {
    .name = "rdma",
    .writev = crdma_writev,
    .read = crdma_read,
    .shutdown = crdma_shutdown,
    .check = crdma_check,
    .watches_peer = true, /* the heartbeat thread fails a waiting read */
    .open_return_path = crdma_open_return_path,
    .close = crdma_close,
    .register_ram = crdma_register_ram,
    .save_page = crdma_save_page,
    .after_ram_iterate = crdma_after_ram_iterate,
    .flush_ram = crdma_flush_ram,
    /* load_ram: nothing to do, the NIC placed the pages in the cache. */
};

/* Connected: the channels go non-blocking, the heartbeat starts, a stream wraps it. */
static int finish_connection(struct crdma_conn *c, const struct colo_rdma_options *opt,
                             struct colo_stream **out)
{
    struct crdma_stream *s;
    int ret;

    crdma_wait_set_busy_poll(c, opt->busy_poll);
    ret = colo_set_nonblock(crdma_conn_id(c)->verbs->async_fd);
    if (!ret)
        ret = crdma_heartbeat_start(c, opt->heartbeat_ms ? opt->heartbeat_ms : COLO_RDMA_DEFAULT_HEARTBEAT_MS);
    if (ret) {
        crdma_conn_destroy(c);
        return ret;
    }
    s = stream_state_new(c, opt->timeout_ms);
    if (!s) {
        crdma_conn_destroy(c);
        return colo_err(-ENOMEM, "rdma: out of memory");
    }
    return colo_stream_new(&crdma_ops, s, opt->timeout_ms, out);
}

/* rxe with an ACK timeout of 0 never retransmits: both sides set one. */
static void set_ack_timeout(struct rdma_cm_id *id)
{
    uint8_t tmo = CRDMA_ACK_TIMEOUT;

    colo_verbs->set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &tmo, sizeof(tmo));
}

int colo_rdma_connect(const char *host, uint16_t port, const struct colo_rdma_options *opt,
                      const struct colo_rdma_hello *mine, struct colo_stream **out)
{
    uint64_t deadline = colo_deadline_after_ms(opt->timeout_ms);
    uint8_t priv[CRDMA_PRIVATE_MAX];
    struct rdma_conn_param param;
    struct rdma_cm_event *ev = NULL;
    struct addrinfo *res = NULL;
    struct rdma_event_channel *ec = NULL;
    struct rdma_cm_id *id = NULL;
    struct crdma_conn *c;
    int ret;

    if (!host || !host[0])
        return colo_err(COLO_E_CONFIG, "rdma: no peer address: expected a host name or address");
    ret = check_hello_size(mine);
    if (ret)
        return ret;
    ret = crdma_conn_new(&c);
    if (ret)
        return ret;
    ret = new_event_channel(&ec, &id, c);
    crdma_conn_attach(c, ec, id);
    if (ret)
        goto out_destroy;
    ret = colo_resolve("rdma", host, port, 0, &res);
    if (ret)
        goto out_destroy;
    if (colo_verbs->resolve_addr(id, NULL, res->ai_addr, cm_timeout_ms(opt))) {
        ret = colo_err(COLO_E_PEER_LOST, "rdma: resolve %s: %s (no RDMA device for that "
                       "address?)", host, strerror(errno));
        goto out_destroy;
    }
    ret = expect_cm_event(ec, RDMA_CM_EVENT_ADDR_RESOLVED, deadline, "resolving the address",
                          NULL);
    if (ret)
        goto out_destroy;
    set_ack_timeout(id);
    if (colo_verbs->resolve_route(id, cm_timeout_ms(opt))) {
        ret = colo_err(-errno, "rdma: resolve route to %s: %s", host, strerror(errno));
        goto out_destroy;
    }
    ret = expect_cm_event(ec, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, "resolving the route",
                          NULL);
    if (!ret)
        ret = crdma_conn_build(c);
    if (ret)
        goto out_destroy;
    conn_param(&param, priv, private_data(c, mine, priv));
    if (colo_verbs->connect(id, &param)) {
        ret = colo_err(-errno, "rdma: connect to %s port %u: %s", host, port, strerror(errno));
        goto out_destroy;
    }
    ret = expect_cm_event(ec, RDMA_CM_EVENT_ESTABLISHED, deadline, "connecting", &ev);
    if (ev && ev->event == RDMA_CM_EVENT_REJECTED) {
        /* The secondary said why in the rejection (what, not its own hello;
         * a secondary before 0.4 sent its hello): the upper layer reads it. */
        int why = ev->param.conn.private_data_len && mine->refused
                      ? mine->refused(mine->arg, ev->param.conn.private_data,
                                      ev->param.conn.private_data_len)
                      : 0;

        colo_verbs->ack_cm_event(ev);
        ret = why ? why : colo_err(COLO_E_PEER_LOST, "rdma: %s port %u refused the connection "
                                   "(nothing listening there?)", host, port);
        goto out_destroy;
    }
    if (ret)
        goto out_destroy;
    ret = check_private_hello(mine, ev->param.conn.private_data, ev->param.conn.private_data_len);
    if (!ret)
        connect_probe(c, mine, ev->param.conn.private_data, ev->param.conn.private_data_len);
    colo_verbs->ack_cm_event(ev);
    if (ret)
        goto out_destroy;
    freeaddrinfo(res);
    return finish_connection(c, opt, out);

out_destroy:
    if (res)
        freeaddrinfo(res);
    crdma_conn_destroy(c);
    return ret;
}

int colo_rdma_listen(const char *host, uint16_t port, struct colo_rdma_listener **out)
{
    struct colo_rdma_listener *l = calloc(1, sizeof(*l));
    struct addrinfo *res = NULL;
    struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    struct sockaddr *sa = (struct sockaddr *)&any;
    int ret;

    if (!l)
        return colo_err(-ENOMEM, "rdma: out of memory");
    ret = new_event_channel(&l->ec, &l->id, NULL);
    if (ret)
        goto out_free;
    if (host && host[0]) {
        ret = colo_resolve("rdma", host, port, AI_PASSIVE, &res);
        if (ret)
            goto out_free;
        sa = res->ai_addr;
    }
    if (colo_verbs->bind_addr(l->id, sa) || colo_verbs->listen(l->id, COLO_LISTEN_BACKLOG)) {
        ret = colo_err(-errno, "rdma: listen on %s port %u: %s", host && host[0] ? host : "(any)",
                       port, strerror(errno));
        goto out_free;
    }
    l->port = ntohs(colo_verbs->get_src_port(l->id));
    if (res)
        freeaddrinfo(res);
    *out = l;
    return 0;

out_free:
    if (res)
        freeaddrinfo(res);
    colo_rdma_listener_delete(&l);
    return ret;
}

uint16_t colo_rdma_listener_port(const struct colo_rdma_listener *l)
{
    return l->port;
}

int colo_rdma_listener_fd(const struct colo_rdma_listener *l)
{
    return l->ec->fd;
}

void colo_rdma_listener_delete(struct colo_rdma_listener **lp)
{
    struct colo_rdma_listener *l = lp ? *lp : NULL;

    if (!l)
        return;
    if (l->id)
        colo_verbs->destroy_id(l->id);
    if (l->ec)
        colo_verbs->destroy_event_channel(l->ec);
    free(l);
    *lp = NULL;
}

/* A connect request taken from the listener, not answered yet. */
struct colo_rdma_pending {
    struct crdma_conn *c;
    uint8_t peer[CRDMA_PRIVATE_MAX];
    uint8_t peer_len;
};

void colo_rdma_pending_delete(struct colo_rdma_pending **pp)
{
    struct colo_rdma_pending *p = pp ? *pp : NULL;

    if (!p)
        return;
    if (p->c) {
        colo_verbs->reject(crdma_conn_id(p->c), NULL, 0);
        crdma_conn_destroy(p->c);
    }
    free(p);
    *pp = NULL;
}

/*
 * Takes the next connect request off the listener's channel (waiting at
 * most wait_ms) and answers a wrong hello at once with mine->refusal (why,
 * never our own hello). Any other request moves to an event channel of its
 * own at once, so the listener's channel only ever holds new requests, and
 * nothing is built for it yet: colo_rdma_accept_finish does that.
 */
int colo_rdma_accept_request(struct colo_rdma_listener *l, const struct colo_rdma_hello *mine,
                             uint32_t wait_ms, struct colo_rdma_pending **out)
{
    struct colo_rdma_pending *p;
    struct rdma_event_channel *ec = NULL;
    struct rdma_cm_event *ev;
    struct rdma_cm_id *child;
    struct crdma_conn *c;
    int ret;

    ret = check_hello_size(mine);
    if (ret)
        return ret;
    ret = next_cm_event(l->ec, colo_deadline_after_ms(wait_ms), -1,
                        "waiting for a primary to connect", &ev);
    if (ret)
        return ret == -ETIMEDOUT ? -EAGAIN : ret;
    if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST && ev->id != l->id) {
        /* A request's own event that came before it moved to its channel
         * (it was refused, or its primary gave up): nothing to take. */
        colo_verbs->ack_cm_event(ev);
        return -EAGAIN;
    }
    if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
        ret = colo_err(COLO_E_PEER_LOST, "rdma: listener: %s (status %d), expected %s",
                       rdma_event_str(ev->event), ev->status,
                       rdma_event_str(RDMA_CM_EVENT_CONNECT_REQUEST));
        colo_verbs->ack_cm_event(ev);
        return ret;
    }
    p = calloc(1, sizeof(*p));
    child = ev->id;
    if (p) {
        p->peer_len = ev->param.conn.private_data_len < sizeof(p->peer)
                          ? ev->param.conn.private_data_len
                          : sizeof(p->peer);
        memcpy(p->peer, ev->param.conn.private_data, p->peer_len);
    }
    colo_verbs->ack_cm_event(ev);
    if (!p) {
        colo_verbs->reject(child, NULL, 0);
        colo_verbs->destroy_id(child);
        return colo_err(-ENOMEM, "rdma: out of memory");
    }
    ret = check_private_hello(mine, p->peer, p->peer_len);
    if (ret) {
        /* Refused before anything is built; the refusal tells the primary why. */
        colo_verbs->reject(child, mine->refusal, (uint8_t)mine->refusal_len);
        colo_verbs->destroy_id(child);
        free(p);
        return ret;
    }
    ret = crdma_conn_new(&c);
    if (ret) {
        colo_verbs->reject(child, NULL, 0);
        colo_verbs->destroy_id(child);
        free(p);
        return ret;
    }
    crdma_conn_attach(c, NULL, child);
    child->context = c;
    p->c = c;
    ret = new_event_channel(&ec, NULL, NULL);
    crdma_conn_attach(c, ec, child);
    if (!ret && colo_verbs->migrate_id(child, ec))
        ret = colo_err(-errno, "rdma: move the connection to its own event channel: %s",
                       strerror(errno));
    if (ret) {
        colo_rdma_pending_delete(&p);
        return ret;
    }
    *out = p;
    return 0;
}

/*
 * Why building for a request failed, when its primary gave up on it (its
 * connect timed out, or it was destroyed): the kernel's connection manager
 * has already left the request-received state (the peer's REJ arrived), and
 * it refuses to initialise a QP for that id, so create QP fails with EINVAL,
 * often before any event says so. Seen as "create QP (512 send, 64 receive
 * WRs): Invalid argument" when the listener took an old request after a busy
 * spell. Reported as -ECONNABORTED: nobody is waiting for an answer.
 */
static int abandoned_error(struct crdma_conn *c, int ret)
{
    struct rdma_cm_event *ev;
    char why[256];

    snprintf(why, sizeof(why), "%s", colo_errormsg());
    if (colo_verbs->get_cm_event(crdma_conn_ec(c), &ev) == 0) {
        ret = colo_err(-ECONNABORTED, "rdma: the primary gave up its connect request (%s) "
                       "before it was answered: %s", rdma_event_str(ev->event), why);
        colo_verbs->ack_cm_event(ev);
        return ret;
    }
    if (ret == -EINVAL)
        return colo_err(-ECONNABORTED, "rdma: the primary gave up its connect request before "
                        "it was answered (the kernel no longer sets up a QP for it): %s", why);
    return ret;
}

/*
 * Answers a taken request: builds the QP and its resources, accepts, and
 * waits for the connection by deadline_ns (or until cancel_fd, -1: none, is
 * readable). Takes over p, also on failure.
 */
int colo_rdma_accept_finish(struct colo_rdma_pending *p, const struct colo_rdma_options *opt,
                            const struct colo_rdma_hello *mine, uint64_t deadline_ns,
                            int cancel_fd, struct colo_stream **out)
{
    uint8_t priv[CRDMA_PRIVATE_MAX];
    struct rdma_conn_param param;
    struct crdma_conn *c = p->c;
    int ret;

    ret = crdma_conn_build(c);
    if (ret) {
        ret = abandoned_error(c, ret);
        goto out_reject;
    }
    /* the passive side's QP too: the CM applies it at accept */
    set_ack_timeout(crdma_conn_id(c));
    conn_param(&param, priv, private_data(c, mine, priv));
    if (colo_verbs->accept(crdma_conn_id(c), &param)) {
        ret = abandoned_error(c, colo_err(-errno, "rdma: accept: %s", strerror(errno)));
        goto out_destroy;
    }
    ret = expect_cm_event_or_cancel(crdma_conn_ec(c), RDMA_CM_EVENT_ESTABLISHED, deadline_ns,
                                    cancel_fd,
                                    "establishing", NULL);
    if (ret == COLO_E_PEER_LOST) {
        /* Another event than ESTABLISHED (REJECTED, CONNECT_ERROR, ...). */
        char why[256];

        snprintf(why, sizeof(why), "%s", colo_errormsg());
        ret = colo_err(-ECONNABORTED, "rdma: the primary abandoned its connection before it "
                       "was established (%s)", why);
    } else if (ret == -ETIMEDOUT) {
        /* Accepted, and never established: given up after our answer left. */
        ret = colo_err(-ECONNABORTED, "rdma: the connection was not established by the "
                       "handshake deadline: its primary gave up on it, or never completes it");
    }
    if (ret)
        goto out_destroy;
    connect_probe(c, mine, p->peer, p->peer_len);
    free(p);
    return finish_connection(c, opt, out);

out_reject:
    colo_verbs->reject(crdma_conn_id(c), NULL, 0);
out_destroy:
    p->c = NULL;
    crdma_conn_destroy(c);
    free(p);
    return ret;
}

int colo_rdma_accept(struct colo_rdma_listener *l, const struct colo_rdma_options *opt,
                     const struct colo_rdma_hello *mine, struct colo_stream **out)
{
    uint64_t deadline = colo_deadline_after_ms(opt->timeout_ms);
    struct colo_rdma_pending *p;
    int ret;

    do {
        uint64_t now = colo_now_ns();

        if (deadline && now >= deadline)
            return colo_err(-ETIMEDOUT, "rdma: timed out while waiting for a primary to connect");
        ret = colo_rdma_accept_request(l, mine, deadline ? (uint32_t)colo_ms_until(deadline, now) : 0,
                                       &p);
    } while (ret == -EAGAIN);
    if (ret)
        return ret;
    return colo_rdma_accept_finish(p, opt, mine, deadline, -1, out);
}
