/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page frames on the stream (between checkpoint-reply and vmstate-send):
 *   be32 "PAGE" | be32 block | be64 first page | be64 page count | pages
 * and one end marker per checkpoint:
 *   be32 "PEND" | be32 0 | be64 sequence number | be64 0
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache/ram_cache.h"
#include "common/error.h"
#include "common/log.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "transport/tcp.h"

#define FRAME_PAGE 0x50414745u /* "PAGE" */
#define FRAME_END 0x50454e44u  /* "PEND" */
#define FRAME_HDR_SIZE 24
#define IOV_MAX_LOCAL 8

/* One connection, shared by a stream and its return path. */
struct tcp_conn {
    int fd;
    int refs;
};

struct colo_tcp_listener {
    int fd;
    uint16_t port;
};

/* timeout_ms 0: no timeout (common/timeutil.h). */
static int wait_fd(int fd, short events, uint32_t timeout_ms, const char *what)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    do {
        n = poll(&p, 1, timeout_ms ? (timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms) : -1);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return colo_err(-errno, "tcp: poll while %s: %s", what, strerror(errno));
    if (n == 0)
        return colo_err(-ETIMEDOUT, "tcp: timed out after %" PRIu32 " ms while %s", timeout_ms,
                        what);
    if (p.revents & POLLNVAL)
        return colo_err(-EBADF, "tcp: connection already closed while %s", what);
    return 0;
}

/*
 * Bytes of this write handed to the kernel (moved) less what the send queue
 * still holds, unsent or unacknowledged. Earlier writes' bytes in the queue
 * offset it; only its growth means something: the peer acknowledged that
 * much.
 */
static int64_t peer_acked(int fd, size_t moved)
{
    int queued;

    if (ioctl(fd, SIOCOUTQ, &queued) < 0 || queued < 0)
        queued = 0;
    return (int64_t)moved - queued;
}

/*
 * A write's timeout ran out before it moved COLO_STREAM_PROGRESS bytes (or
 * the rest): a peer that took some of them since the last mark trickles
 * ("too little"), one that took none is silent ("no data", the stream's
 * wording for -ETIMEDOUT). The stream adds what was being sent.
 */
static int write_window_failed(int fd, uint32_t timeout_ms, size_t moved, int64_t mark)
{
    int64_t took = peer_acked(fd, moved) - mark;

    if (took > 0)
        return colo_err(COLO_E_PEER_LOST, "tcp: the peer took too little for %" PRIu32 " ms (%"
                        PRId64 " bytes acknowledged in that time, %zu of the write handed to the "
                        "kernel; a write must move %u KiB, or what is left of it, within each "
                        "timeout)", timeout_ms, took, moved, COLO_STREAM_PROGRESS / 1024);
    return colo_err(-ETIMEDOUT, "tcp: timed out after %" PRIu32 " ms while sending to the peer",
                    timeout_ms);
}

static int tcp_writev(void *opaque, const struct iovec *iov_in, int iovcnt, uint32_t timeout_ms)
{
    struct tcp_conn *c = opaque;
    struct iovec iov[IOV_MAX_LOCAL];
    size_t moved = 0, since = 0;
    int64_t mark = 0; /* peer_acked() when the current timeout began */
    uint64_t due, quarter_ns = (uint64_t)timeout_ms * COLO_NS_PER_MS / 4;
    int first = 0, ret;

    if (iovcnt > IOV_MAX_LOCAL)
        return colo_err(-EINVAL, "tcp: %d buffers in one write, at most %d", iovcnt,
                        IOV_MAX_LOCAL);
    memcpy(iov, iov_in, (size_t)iovcnt * sizeof(*iov));
    /* The write must keep moving as a read must (stream/stream.h): a peer
     * that takes a few bytes just inside every wait does not hold it. */
    due = timeout_ms ? colo_deadline_after_ms(timeout_ms) : 0;
    if (due)
        mark = peer_acked(c->fd, 0);
    while (first < iovcnt) {
        struct msghdr mh = {.msg_iov = iov + first, .msg_iovlen = (size_t)(iovcnt - first)};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                uint64_t now = colo_now_ns();
                int64_t acked = due ? peer_acked(c->fd, moved) : 0;

                /* The send buffer can hold megabytes and wakes a writer only
                 * once a third of it is free: what the peer acknowledged of
                 * it counts as moving too. */
                if (due && acked - mark >= COLO_STREAM_PROGRESS) {
                    due = colo_deadline_after_ms(timeout_ms);
                    mark = acked;
                    since = 0;
                }
                if (due && now >= due)
                    return write_window_failed(c->fd, timeout_ms, moved, mark);
                /* With a timeout, look again every quarter of it. */
                ret = wait_fd(c->fd, POLLOUT,
                              due ? (uint32_t)colo_ms_until(
                                        due < now + quarter_ns ? due : now + quarter_ns, now)
                                  : 0,
                              "sending to the peer");
                if (ret && !(ret == -ETIMEDOUT && due))
                    return ret;
                continue;
            }
            if (errno == EPIPE || errno == ECONNRESET)
                return colo_err(COLO_E_PEER_LOST, "tcp: send: %s", strerror(errno));
            return colo_err(-errno, "tcp: send: %s", strerror(errno));
        }
        moved += (size_t)n;
        since += (size_t)n;
        if (due && since >= COLO_STREAM_PROGRESS) {
            due = colo_deadline_after_ms(timeout_ms);
            mark = peer_acked(c->fd, moved);
            since = 0;
        }
        while (first < iovcnt && (size_t)n >= iov[first].iov_len)
            n -= (ssize_t)iov[first++].iov_len;
        if (first < iovcnt) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + n;
            iov[first].iov_len -= (size_t)n;
        }
    }
    return 0;
}

static ssize_t tcp_read(void *opaque, void *buf, size_t len, uint32_t timeout_ms)
{
    struct tcp_conn *c = opaque;

    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        int ret;

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            if (errno == ECONNRESET)
                return colo_err(COLO_E_PEER_LOST, "tcp: receive: %s", strerror(errno));
            return colo_err(-errno, "tcp: receive: %s", strerror(errno));
        }
        ret = wait_fd(c->fd, POLLIN, timeout_ms, "waiting for the peer");
        if (ret)
            return ret;
    }
}

static int tcp_shutdown(void *opaque)
{
    struct tcp_conn *c = opaque;

    if (shutdown(c->fd, SHUT_RDWR) && errno != ENOTCONN)
        return colo_err(-errno, "tcp: shutdown: %s", strerror(errno));
    return 0;
}

static int tcp_open_return_path(void *opaque, void **rp)
{
    struct tcp_conn *c = opaque;

    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    *rp = c;
    return 0;
}

static void tcp_close(void *opaque)
{
    struct tcp_conn *c = opaque;

    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
        return;
    close(c->fd);
    free(c);
}

/* Primary: one frame header and the pages straight from guest RAM. */
static int tcp_save_page(void *opaque, struct colo_stream *f, const struct colo_dirty_run *run)
{
    const struct colo_ram_layout *layout = colo_stream_ram_layout(f);
    const struct colo_ram_block *b = &layout->blocks[run->block];

    colo_stream_put_be32(f, FRAME_PAGE);
    colo_stream_put_be32(f, run->block);
    colo_stream_put_be64(f, run->first_page);
    colo_stream_put_be64(f, run->page_count);
    colo_stream_put_buffer(f, (const uint8_t *)b->host + run->first_page * layout->page_size,
                           run->page_count * layout->page_size);
    return colo_stream_error(f);
}

static int tcp_after_ram_iterate(void *opaque, struct colo_stream *f, uint64_t seq)
{
    colo_stream_put_be32(f, FRAME_END);
    colo_stream_put_be32(f, 0);
    colo_stream_put_be64(f, seq);
    colo_stream_put_be64(f, 0);
    return colo_stream_error(f);
}

/* Secondary: places every frame in the cache until the end marker. */
static int tcp_load_ram(void *opaque, struct colo_stream *f, uint64_t seq,
                        struct colo_dirty_list *placed)
{
    const struct colo_ram_layout *layout = colo_stream_ram_layout(f);
    struct colo_ram_cache *cache = colo_stream_ram_cache(f);
    uint8_t hdr[FRAME_HDR_SIZE];
    int ret;

    if (!cache)
        return colo_err(-EINVAL, "tcp: no RAM cache to load pages into");
    for (;;) {
        struct colo_dirty_run run;
        uint32_t magic;

        /* The magic first: anything else (a COLO message, 12 bytes) is refused
         * at once, not after waiting for the rest of a header that never comes. */
        ret = colo_stream_get_buffer(f, hdr, 4);
        if (ret)
            return ret;
        magic = colo_get_be32(hdr);
        if (magic != FRAME_END && magic != FRAME_PAGE)
            return colo_err(COLO_E_PROTOCOL,
                            "tcp: page frame magic 0x%08" PRIx32 ", expected 0x%08" PRIx32
                            " (PAGE) or 0x%08" PRIx32 " (PEND)",
                            magic, FRAME_PAGE, FRAME_END);
        ret = colo_stream_get_buffer(f, hdr + 4, sizeof(hdr) - 4);
        if (ret)
            return ret;
        if (magic == FRAME_END) {
            uint64_t end_seq = colo_get_be64(hdr + 8);

            if (colo_get_be32(hdr + 4) || colo_get_be64(hdr + 16))
                return colo_err(COLO_E_PROTOCOL, "tcp: page stream end marker with nonzero "
                                "reserved fields");
            if (end_seq != seq)
                return colo_err(COLO_E_PROTOCOL,
                                "tcp: page stream end for checkpoint %" PRIu64
                                ", expected %" PRIu64,
                                end_seq, seq);
            return 0;
        }
        run = (struct colo_dirty_run){
            .block = colo_get_be32(hdr + 4),
            .first_page = colo_get_be64(hdr + 8),
            .page_count = colo_get_be64(hdr + 16),
        };
        ret = colo_dirty_run_check_as(layout, &run, placed->count, COLO_E_PROTOCOL,
                                      "tcp: page frame");
        if (ret)
            return ret;
        if (placed->pages + run.page_count > layout->total_pages)
            return colo_err(COLO_E_PROTOCOL,
                            "tcp: more pages in checkpoint %" PRIu64
                            " than the layout holds (%" PRIu64 ")",
                            seq, layout->total_pages);
        ret = colo_stream_get_buffer(
            f, colo_ram_cache_block(cache, run.block) + run.first_page * layout->page_size,
            run.page_count * layout->page_size);
        if (ret)
            return ret;
        ret = colo_dirty_list_append(placed, &run);
        if (ret)
            return ret;
    }
}

/* A peer that is gone has closed its end (or the stack reset it). */
static int tcp_check(void *opaque)
{
    struct tcp_conn *c = opaque;
    struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};

    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return colo_err(COLO_E_PEER_LOST, "tcp: the peer closed the connection");
    return 0;
}

static const struct colo_stream_ops tcp_ops = {
    .name = "tcp",
    .check = tcp_check,
    .writev = tcp_writev,
    .read = tcp_read,
    .shutdown = tcp_shutdown,
    .open_return_path = tcp_open_return_path,
    .close = tcp_close,
    .save_page = tcp_save_page,
    .after_ram_iterate = tcp_after_ram_iterate,
    .load_ram = tcp_load_ram,
};

static int stream_from_fd(int fd, uint32_t timeout_ms, struct colo_stream **out)
{
    struct tcp_conn *c;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return colo_err(-ENOMEM, "tcp: out of memory");
    }
    c->fd = fd;
    c->refs = 1;
    return colo_stream_new(&tcp_ops, c, timeout_ms, out);
}

/* Non-blocking connect bounded by the deadline. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline_ns, int *fd_out)
{
    uint32_t left_ms = deadline_ns ? (uint32_t)colo_ms_until(deadline_ns, colo_now_ns()) : 0;
    int fd, err = 0, ret;
    socklen_t len = sizeof(err);

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    if ((ret = colo_set_nonblock(fd)) != 0)
        goto out_close;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
        ret = -errno;
        goto out_close;
    }
    ret = wait_fd(fd, POLLOUT, left_ms, "connecting");
    if (ret)
        goto out_close;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
        ret = -(err ? err : errno);
        goto out_close;
    }
    *fd_out = fd;
    return 0;

out_close:
    close(fd);
    return ret;
}

int colo_tcp_connect(const char *host, uint16_t port, uint32_t timeout_ms,
                     struct colo_stream **out)
{
    uint64_t deadline = colo_deadline_after_ms(timeout_ms);
    struct addrinfo *res, *ai;
    int fd = -1, ret;

    if (!host || !host[0])
        return colo_err(COLO_E_CONFIG, "tcp: no peer address: expected a host name or address");
    ret = colo_resolve("tcp", host, port, 0, &res);
    if (ret)
        return ret;
    ret = -EHOSTUNREACH;
    for (ai = res; ai; ai = ai->ai_next) {
        ret = connect_one(ai, deadline, &fd);
        if (!ret)
            break;
    }
    freeaddrinfo(res);
    if (ret)
        return colo_err(ret == -ETIMEDOUT ? -ETIMEDOUT : COLO_E_PEER_LOST,
                        "tcp: connect to %s port %u: %s", host, port, strerror(-ret));
    return stream_from_fd(fd, timeout_ms, out);
}

static int listen_on(const struct sockaddr *sa, socklen_t salen, int family, int dual_stack,
                     int *fd_out)
{
    int one = 1, zero = 0, ret;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6 && dual_stack)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, sa, salen) || listen(fd, COLO_LISTEN_BACKLOG) || colo_set_nonblock(fd)) {
        ret = -errno;
        close(fd);
        return ret;
    }
    *fd_out = fd;
    return 0;
}

int colo_tcp_listen(const char *host, uint16_t port, struct colo_tcp_listener **out)
{
    struct colo_tcp_listener *l;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd = -1, ret = -EADDRNOTAVAIL;

    if (!host || !host[0]) {
        /* Dual-stack where IPv6 exists, IPv4 only otherwise. */
        struct sockaddr_in6 any6 = {.sin6_family = AF_INET6, .sin6_port = htons(port),
                                    .sin6_addr = IN6ADDR_ANY_INIT};
        struct sockaddr_in any4 = {.sin_family = AF_INET, .sin_port = htons(port)};

        ret = listen_on((struct sockaddr *)&any6, sizeof(any6), AF_INET6, 1, &fd);
        if (ret)
            ret = listen_on((struct sockaddr *)&any4, sizeof(any4), AF_INET, 0, &fd);
    } else {
        struct addrinfo *res, *ai;

        ret = colo_resolve("tcp", host, port, AI_PASSIVE, &res);
        if (ret)
            return ret;
        for (ai = res; ai; ai = ai->ai_next) {
            ret = listen_on(ai->ai_addr, ai->ai_addrlen, ai->ai_family, 0, &fd);
            if (!ret)
                break;
        }
        freeaddrinfo(res);
    }
    if (ret)
        return colo_err(ret, "tcp: listen on %s port %u: %s", host && host[0] ? host : "(any)",
                        port, strerror(-ret));
    l = calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        return colo_err(-ENOMEM, "tcp: out of memory");
    }
    l->fd = fd;
    getsockname(fd, (struct sockaddr *)&ss, &sslen);
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    *out = l;
    return 0;
}

uint16_t colo_tcp_listener_port(const struct colo_tcp_listener *l)
{
    return l->port;
}

int colo_tcp_listener_fd(const struct colo_tcp_listener *l)
{
    return l->fd;
}

int colo_tcp_accept(struct colo_tcp_listener *l, uint32_t wait_ms, uint32_t timeout_ms,
                    struct colo_stream **out)
{
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int fd, ret;

    for (;;) {
        ret = wait_fd(l->fd, POLLIN, wait_ms, "waiting for a primary to connect");
        if (ret == -ETIMEDOUT)
            return -EAGAIN;
        if (ret)
            return ret;
        peer_len = sizeof(peer);
        fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            return colo_err(-errno, "tcp: accept: %s", strerror(errno));
    }
    if (colo_log_enabled(COLO_LOG_INFO)) {
        char host[NI_MAXHOST], serv[NI_MAXSERV];

        if (getnameinfo((struct sockaddr *)&peer, peer_len, host, sizeof(host), serv,
                        sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
            snprintf(host, sizeof(host), "?");
            snprintf(serv, sizeof(serv), "?");
        }
        colo_log(COLO_LOG_INFO, "tcp: connection from %s port %s", host, serv);
    }
    return stream_from_fd(fd, timeout_ms, out);
}

void colo_tcp_listener_delete(struct colo_tcp_listener **lp)
{
    struct colo_tcp_listener *l = lp ? *lp : NULL;

    if (!l)
        return;
    close(l->fd);
    free(l);
    *lp = NULL;
}
