/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "colo-rdma/colo-rdma.h"
#include "bench/control.h"

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    do {
        n = poll(&p, 1, timeout_ms ? (int)timeout_ms : -1);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : n;
}

int bench_ctl_listen(uint16_t port, uint16_t *bound, char *err, size_t errlen)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port),
                             .sin6_addr = IN6ADDR_ANY_INIT};
    socklen_t alen = sizeof(a);
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, errlen, "control: socket: %s", strerror(errno));
        return -1;
    }
    /* dual stack, so IPv4 primaries reach it too */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)&a, &alen)) {
        snprintf(err, errlen, "control: cannot listen on port %u: %s%s", port, strerror(errno),
                 errno == EADDRINUSE ? " (another bench running? choose one with --port)" : "");
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin6_port);
    return fd;
}

static void ctl_init(struct bench_ctl *c, int fd, uint32_t timeout_ms)
{
    int one = 1;

    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->start = c->end = 0;
    c->err[0] = '\0';
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int bench_ctl_accept(int lfd, uint32_t timeout_ms, struct bench_ctl *c)
{
    int n = wait_fd(lfd, POLLIN, timeout_ms), fd;

    c->fd = -1;
    if (n <= 0) {
        snprintf(c->err, sizeof(c->err), "control: %s while waiting for the primary",
                 n ? strerror(errno) : "timed out");
        return -1;
    }
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        snprintf(c->err, sizeof(c->err), "control: accept: %s", strerror(errno));
        return -1;
    }
    ctl_init(c, fd, timeout_ms);
    return 0;
}

/* Non-blocking connect bounded by the timeout, over every address of host. */
static int connect_one(const struct addrinfo *ai, uint32_t timeout_ms, int *err)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    socklen_t len = sizeof(*err);

    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    if (wait_fd(fd, POLLOUT, timeout_ms) <= 0) {
        *err = ETIMEDOUT;
        close(fd);
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len) || *err) {
        close(fd);
        return -1;
    }
    /* back to blocking: every receive is bounded by poll */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

int bench_ctl_connect(const char *host, uint16_t port, uint32_t timeout_ms, struct bench_ctl *c)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    char service[8];
    int ret, err = 0, fd = -1;

    c->fd = -1;
    snprintf(service, sizeof(service), "%u", port);
    ret = getaddrinfo(host, service, &hints, &res);
    if (ret) {
        snprintf(c->err, sizeof(c->err), "cannot resolve '%s': %s (check the HOST argument)",
                 host, gai_strerror(ret));
        return -1;
    }
    for (ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, timeout_ms, &err);
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(c->err, sizeof(c->err),
                 "cannot reach the secondary at %s port %u: %s: start 'colo-rdma-bench --listen' "
                 "there first, or give its control port with --port",
                 host, port, strerror(err));
        return -1;
    }
    ctl_init(c, fd, timeout_ms);
    return 0;
}

void bench_ctl_close(struct bench_ctl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int bench_ctl_send_raw(struct bench_ctl *c, const void *p, size_t len)
{
    const char *b = p;

    while (len) {
        ssize_t n = send(c->fd, b, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(c->err, sizeof(c->err), "control connection: send: %s",
                     n < 0 ? strerror(errno) : "closed");
            return -1;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_ctl_send(struct bench_ctl *c, const char *fmt, ...)
{
    char line[BENCH_CONTROL_LINE_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1) {
        snprintf(c->err, sizeof(c->err), "control connection: line too long");
        return -1;
    }
    line[n++] = '\n';
    return bench_ctl_send_raw(c, line, (size_t)n);
}

/* Refills the buffer once, waiting at most until deadline (0: forever). */
static int fill(struct bench_ctl *c, uint64_t deadline)
{
    uint64_t now = now_ms();
    ssize_t n;
    int r;

    if (c->start == c->end)
        c->start = c->end = 0;
    if (c->end == sizeof(c->buf)) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    for (;;) {
        /* without a deadline, UINT32_MAX reaches poll() as -1: no limit */
        uint64_t left = deadline ? (deadline > now ? deadline - now : 0) : UINT32_MAX;

        if (deadline && !left) {
            r = 0;
            break;
        }
        if (c->watch && left > 100)
            left = 100;
        r = wait_fd(c->fd, POLLIN, (uint32_t)left);
        if (r != 0 || !c->watch)
            break;
        if (c->watch(c->watch_arg, c->err, sizeof(c->err)))
            return -1;
        now = now_ms();
    }
    if (r <= 0) {
        snprintf(c->err, sizeof(c->err), "control connection: %s",
                 r ? strerror(errno) : "timed out waiting for the peer");
        return -1;
    }
    do {
        n = recv(c->fd, c->buf + c->end, sizeof(c->buf) - c->end, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        snprintf(c->err, sizeof(c->err), "control connection: %s",
                 n ? strerror(errno) : "closed by the peer");
        return -1;
    }
    c->end += (size_t)n;
    return 0;
}

int bench_ctl_watch_session(void *session, char *why, size_t len)
{
    int ret = colo_session_check(session);

    if (ret)
        snprintf(why, len, "session: %s", colo_errormsg());
    return ret;
}

int bench_ctl_recv(struct bench_ctl *c, char *line, size_t len)
{
    uint64_t deadline = c->timeout_ms ? now_ms() + c->timeout_ms : 0;

    for (;;) {
        char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);

        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->start));

            if (n >= len) {
                snprintf(c->err, sizeof(c->err), "control connection: line too long");
                return -1;
            }
            memcpy(line, c->buf + c->start, n);
            line[n] = '\0';
            if (n && line[n - 1] == '\r')
                line[n - 1] = '\0';
            c->start += n + 1;
            return 0;
        }
        if (c->start == 0 && c->end == sizeof(c->buf)) {
            snprintf(c->err, sizeof(c->err), "control connection: line too long");
            return -1;
        }
        if (fill(c, deadline))
            return -1;
    }
}

int bench_ctl_recv_raw(struct bench_ctl *c, void *p, size_t len)
{
    uint64_t deadline = c->timeout_ms ? now_ms() + c->timeout_ms : 0;
    char *b = p;

    while (len) {
        size_t n = c->end - c->start;

        if (!n) {
            if (fill(c, deadline))
                return -1;
            continue;
        }
        if (n > len)
            n = len;
        memcpy(b, c->buf + c->start, n);
        c->start += n;
        b += n;
        len -= n;
    }
    return 0;
}

void bench_params_default(struct bench_params *p)
{
    *p = (struct bench_params){
        .ram_bytes = 64ull << 20, .blocks = 4, .page_size = 4096, .vmstate_bytes = 4096,
        .seed = 1, .timeout_ms = 30000, .warmup = 1, .heartbeat_ms = 1000,
    };
}

static int parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int bench_params_set(struct bench_params *p, const char *key, const char *value, char *err,
                     size_t errlen)
{
    static const struct {
        const char *key;
        uint64_t min, max;
    } keys[] = {
        {"ram", 1, UINT64_MAX}, {"blocks", 1, 256}, {"page-size", 4096, 1u << 30},
        {"hugepages", 0, 1},    {"vmstate", 0, 1u << 30}, {"seed", 0, UINT64_MAX},
        {"timeout", 1, 86400000}, {"verify", 0, 1}, {"warmup", 1, 1000000},
        {"busy-poll", 0, 1}, {"heartbeat", 10, 60000}, {"integrity", 0, 1},
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(key, keys[i].key))
            continue;
        if (parse_num(value, keys[i].min, keys[i].max, &v)) {
            snprintf(err, errlen, "parameter %s: '%s' is not a number from %" PRIu64
                     " to %" PRIu64, key, value ? value : "", keys[i].min, keys[i].max);
            return -1;
        }
        switch (i) {
        case 0: p->ram_bytes = v; break;
        case 1: p->blocks = (uint32_t)v; break;
        case 2: p->page_size = (uint32_t)v; break;
        case 3: p->hugepages = v; break;
        case 4: p->vmstate_bytes = v; break;
        case 5: p->seed = v; break;
        case 6: p->timeout_ms = (uint32_t)v; break;
        case 7: p->verify = v; break;
        case 8: p->warmup = v; break;
        case 9: p->busy_poll = v; break;
        case 10: p->heartbeat_ms = (uint32_t)v; break;
        default: p->integrity = v; break;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown parameter '%s' (a newer primary? use the same "
             "colo-rdma-bench version on both sides)", key);
    return -1;
}

int bench_params_check(const struct bench_params *p, char *err, size_t errlen)
{
    if (p->page_size & (p->page_size - 1)) {
        snprintf(err, errlen, "page-size %" PRIu32 " is not a power of two", p->page_size);
        return -1;
    }
    if (p->ram_bytes % ((uint64_t)p->blocks * p->page_size)) {
        snprintf(err, errlen, "ram %" PRIu64 " is not a multiple of %" PRIu32
                 " blocks x %" PRIu32 " bytes", p->ram_bytes, p->blocks, p->page_size);
        return -1;
    }
    return 0;
}

int bench_params_send(struct bench_ctl *c, const struct bench_params *p)
{
    if (bench_ctl_send(c, "set ram %" PRIu64, p->ram_bytes) ||
        bench_ctl_send(c, "set blocks %" PRIu32, p->blocks) ||
        bench_ctl_send(c, "set page-size %" PRIu32, p->page_size) ||
        bench_ctl_send(c, "set hugepages %d", p->hugepages) ||
        bench_ctl_send(c, "set vmstate %" PRIu64, p->vmstate_bytes) ||
        bench_ctl_send(c, "set seed %" PRIu64, p->seed) ||
        bench_ctl_send(c, "set timeout %" PRIu32, p->timeout_ms) ||
        bench_ctl_send(c, "set verify %d", p->verify) ||
        bench_ctl_send(c, "set warmup %" PRIu64, p->warmup) ||
        bench_ctl_send(c, "set busy-poll %d", p->busy_poll) ||
        bench_ctl_send(c, "set heartbeat %" PRIu32, p->heartbeat_ms))
        return -1;
    /* only when on: a secondary of a bench before 0.5 still serves without */
    if (p->integrity && bench_ctl_send(c, "set integrity 1"))
        return -1;
    return bench_ctl_send(c, "setup");
}
