/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The socket pump and the TCP ping-pong (see pump.h): one connection to the
 * address the bench's tcp session uses, a reader thread on the other end.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench/ceiling.h"
#include "bench/pump_priv.h"

static void set_timeouts(int fd, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* as the tcp backend */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected pair on host (port 0: any): *a the connecting end, *b the accepted one. */
static int tcp_pair(const char *host, uint32_t timeout_ms, int *a, int *b, char *note,
                    size_t len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    struct sockaddr_storage sa;
    socklen_t salen;
    int lfd = -1, one = 1;

    *a = *b = -1;
    if (getaddrinfo(host, "0", &hints, &ai)) {
        snprintf(note, len, "socket pump: %s is not a numeric address", host);
        return -1;
    }
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    salen = ai->ai_addrlen;
    freeaddrinfo(ai);
    lfd = socket(sa.ss_family, SOCK_STREAM, 0);
    if (lfd < 0)
        goto out_err;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, salen) || listen(lfd, 1) ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen))
        goto out_err;
    *a = socket(sa.ss_family, SOCK_STREAM, 0);
    if (*a < 0 || connect(*a, (struct sockaddr *)&sa, salen))
        goto out_err;
    *b = accept(lfd, NULL, NULL);
    if (*b < 0)
        goto out_err;
    close(lfd);
    set_timeouts(*a, timeout_ms);
    set_timeouts(*b, timeout_ms);
    return 0;

out_err:
    snprintf(note, len, "socket pump: connect over %s: %s", host, strerror(errno));
    if (lfd >= 0)
        close(lfd);
    if (*a >= 0)
        close(*a);
    *a = -1;
    return -1;
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n) {
        ssize_t k = writev(fd, iov, n);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n) {
            iov->iov_base = (uint8_t *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

static int read_some(int fd, void *buf, size_t len, size_t *got)
{
    for (;;) {
        ssize_t k = recv(fd, buf, len, 0);

        if (k > 0) {
            *got = (size_t)k;
            return 0;
        }
        if (k < 0 && errno == EINTR)
            continue;
        return -1; /* closed, error or timeout */
    }
}

/* The stream's buffered reader: copies small reads, large ones go straight. */
struct reader {
    int fd;
    uint8_t buf[BENCH_TCP_STREAM_BUF];
    size_t pos, len;
};

static int get(struct reader *r, uint8_t *p, size_t len)
{
    while (len) {
        size_t avail = r->len - r->pos, got;

        if (!avail && len >= sizeof(r->buf)) {
            if (read_some(r->fd, p, len, &got))
                return -1;
            p += got;
            len -= got;
            continue;
        }
        if (!avail) {
            if (read_some(r->fd, r->buf, sizeof(r->buf), &got))
                return -1;
            r->pos = 0;
            r->len = got;
            continue;
        }
        if (avail > len)
            avail = len;
        memcpy(p, r->buf + r->pos, avail);
        r->pos += avail;
        p += avail;
        len -= avail;
    }
    return 0;
}

#define FRAME_PAGE 0x50414745u /* "PAGE", as the tcp backend */
#define FRAME_END 0x50454e44u  /* "PEND" */

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

struct tcp_pump {
    const struct bench_pump_params *p;
    int a, b;                /* the writer's end, the reader's end */
    pid_t reader;            /* a process of its own, as the bench's secondary is */
    struct reader r;
    uint8_t *cache;
    int sink_err;
    /* the writer, buffered like the stream */
    uint8_t buf[BENCH_TCP_STREAM_BUF];
    size_t len;
    uint64_t writes;
};

/* The reader: frames into the cache at each run's place; an end marker is acknowledged. */
static void sink_main(struct tcp_pump *t)
{
    uint8_t hdr[BENCH_TCP_FRAME_HDR];

    for (;;) {
        struct colo_dirty_run run;
        uint64_t off, bytes;

        if (get(&t->r, hdr, sizeof(hdr)))
            break; /* closed at the end, or failed */
        if (get_be32(hdr) == FRAME_END) {
            if (send(t->r.fd, "k", 1, MSG_NOSIGNAL) != 1)
                break;
            continue;
        }
        run = (struct colo_dirty_run){.block = get_be32(hdr + 4), .first_page = get_be64(hdr + 8),
                                      .page_count = get_be64(hdr + 16)};
        off = bench_pump_run_offset(t->p, &run);
        bytes = run.page_count * t->p->page_size;
        if (get_be32(hdr) != FRAME_PAGE || run.block >= t->p->blocks ||
            off + bytes > t->p->ram_bytes) {
            t->sink_err = EPROTO;
            break;
        }
        if (get(&t->r, t->cache + off, bytes))
            break;
    }
    shutdown(t->r.fd, SHUT_RDWR);
}

static int flush_with(struct tcp_pump *t, const void *extra, size_t extra_len)
{
    struct iovec iov[2];
    int n = 0;

    if (t->len)
        iov[n++] = (struct iovec){.iov_base = t->buf, .iov_len = t->len};
    if (extra_len)
        iov[n++] = (struct iovec){.iov_base = (void *)extra, .iov_len = extra_len};
    if (!n)
        return 0;
    t->len = 0;
    t->writes++;
    return write_all(t->a, iov, n);
}

static int put(struct tcp_pump *t, const void *p, size_t len)
{
    if (len >= BENCH_TCP_DIRECT)
        return flush_with(t, p, len);
    if (t->len + len > sizeof(t->buf) && flush_with(t, NULL, 0))
        return -1;
    memcpy(t->buf + t->len, p, len);
    t->len += len;
    return 0;
}

/* One checkpoint: a frame per run, the end marker, then the reader's acknowledgement. */
static int pump_tcp_push(void *impl, const struct colo_dirty_run *runs, size_t nruns,
                         uint64_t *writes, char *note, size_t len)
{
    struct tcp_pump *t = impl;
    uint8_t hdr[BENCH_TCP_FRAME_HDR];
    uint64_t w0 = t->writes;

    for (size_t i = 0; i < nruns; i++) {
        put_be32(hdr, FRAME_PAGE);
        put_be32(hdr + 4, runs[i].block);
        put_be64(hdr + 8, runs[i].first_page);
        put_be64(hdr + 16, runs[i].page_count);
        if (put(t, hdr, sizeof(hdr)) ||
            put(t, t->p->ram + bench_pump_run_offset(t->p, &runs[i]),
                runs[i].page_count * t->p->page_size))
            goto out_err;
    }
    memset(hdr, 0, sizeof(hdr));
    put_be32(hdr, FRAME_END);
    if (put(t, hdr, sizeof(hdr)) || flush_with(t, NULL, 0))
        goto out_err;
    *writes = t->writes - w0;
    return 0;

out_err:
    snprintf(note, len, "socket pump: %s", strerror(errno ? errno : EPIPE));
    return -1;
}

/*
 * Untimed: the reader has placed the whole checkpoint. The page push is timed
 * to the last write, as the bench's is; in the bench the rest drains while
 * the state is sent and the secondary persists and applies.
 */
static int pump_tcp_settle(void *impl, char *note, size_t len)
{
    struct tcp_pump *t = impl;
    char ack;

    if (recv(t->a, &ack, 1, MSG_WAITALL) == 1)
        return 0;
    snprintf(note, len, "socket pump: the reader failed or got a bad frame");
    return -1;
}

static void pump_tcp_close(void *impl)
{
    struct tcp_pump *t = impl;

    if (t->a >= 0)
        shutdown(t->a, SHUT_RDWR);
    if (t->reader > 0)
        waitpid(t->reader, NULL, 0); /* it ends at the end of the stream */
    if (t->a >= 0)
        close(t->a);
    if (t->b >= 0)
        close(t->b);
    free(t);
}

static const struct bench_pump_ops pump_tcp_ops = {
    .name = "socket pump",
    .push = pump_tcp_push,
    .settle = pump_tcp_settle,
    .close = pump_tcp_close,
};

int bench_pump_tcp_open(void **impl, const struct bench_pump_ops **ops, const char *host,
                        const struct bench_pump_params *p, char *note, size_t len)
{
    struct tcp_pump *t = calloc(1, sizeof(*t));

    *impl = NULL;
    *ops = &pump_tcp_ops;
    if (!t) {
        snprintf(note, len, "socket pump: out of memory");
        return -1;
    }
    t->p = p;
    t->a = t->b = -1;
    if (tcp_pair(host, p->timeout_ms, &t->a, &t->b, note, len))
        goto out_close;
    t->r.fd = t->b;
    set_timeouts(t->b, 0); /* the reader waits out the bench's checkpoints between pushes */
    fflush(NULL);
    t->reader = fork();
    if (t->reader < 0) {
        snprintf(note, len, "socket pump: cannot start the reader: %s", strerror(errno));
        goto out_close;
    }
    if (t->reader == 0) {
        /* the child: only the socket (no inherited session or control connection held
         * open), a cache of its own, then _exit */
        for (int fd = 3; fd < 4096; fd++)
            if (fd != t->b)
                close(fd);
        t->cache = mmap(NULL, (size_t)p->ram_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (t->cache == MAP_FAILED)
            _exit(1);
        /* the bench's cache is allocated before the run: no first-touch faults later */
        memset(t->cache, 0, (size_t)p->ram_bytes);
        if (send(t->b, "r", 1, MSG_NOSIGNAL) != 1)
            _exit(1);
        sink_main(t);
        _exit(t->sink_err ? 1 : 0);
    }
    close(t->b);
    t->b = -1;
    if (pump_tcp_settle(t, note, len)) /* the reader is ready */
        goto out_close;
    *impl = t;
    return 0;

out_close:
    pump_tcp_close(t);
    return -1;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return a < b ? -1 : a > b;
}

struct echo {
    int fd;
    size_t rounds;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    uint8_t m[64];

    for (size_t i = 0; i < e->rounds; i++)
        if (recv(e->fd, m, sizeof(m), MSG_WAITALL) != (ssize_t)sizeof(m) ||
            send(e->fd, m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
            break;
    return NULL;
}

#define PINGPONG_WARMUP 100
#define PINGPONG_ROUNDS 1000

int bench_tcp_pingpong(const char *host, uint32_t timeout_ms, double *one_way_us, char *note,
                       size_t len)
{
    struct echo e = {.rounds = PINGPONG_WARMUP + PINGPONG_ROUNDS};
    uint64_t *rtt = calloc(PINGPONG_ROUNDS, sizeof(*rtt));
    uint8_t m[64] = {0};
    pthread_t th;
    int a, ret = -1;

    if (!rtt) {
        snprintf(note, len, "tcp ping-pong: out of memory");
        return -1;
    }
    if (tcp_pair(host, timeout_ms, &a, &e.fd, note, len)) {
        free(rtt);
        return -1;
    }
    if (pthread_create(&th, NULL, echo_main, &e)) {
        snprintf(note, len, "tcp ping-pong: cannot start the echo thread");
        goto out;
    }
    for (size_t i = 0; i < e.rounds; i++) {
        uint64_t t0 = bench_pump_now_ns();

        if (send(a, m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m) ||
            recv(a, m, sizeof(m), MSG_WAITALL) != (ssize_t)sizeof(m))
            break;
        if (i >= PINGPONG_WARMUP)
            rtt[i - PINGPONG_WARMUP] = bench_pump_now_ns() - t0;
        if (i + 1 == e.rounds)
            ret = 0;
    }
    shutdown(a, SHUT_RDWR);
    pthread_join(th, NULL);
    if (ret) {
        snprintf(note, len, "tcp ping-pong: the connection failed: %s", strerror(errno));
        goto out;
    }
    qsort(rtt, PINGPONG_ROUNDS, sizeof(*rtt), cmp_u64);
    *one_way_us = (double)rtt[PINGPONG_ROUNDS / 2] / 2e3;
out:
    close(a);
    close(e.fd);
    free(rtt);
    return ret;
}
