/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "core/byteorder.h"
#include "stream/stream.h"

struct colo_stream {
    const struct colo_stream_ops *ops;
    void *opaque;
    uint32_t timeout_ms;
    uint64_t deadline_ns; /* 0: none */
    uint32_t deadline_ms; /* what it was set to, for the message */
    /* The read in progress must keep moving (colo_stream_get_buffer): by
     * progress_ns (0: no read, or no timeout) the next COLO_STREAM_PROGRESS
     * bytes are due; progress_got counts those that came since it was set. */
    uint64_t progress_ns;
    size_t progress_got;
    uint64_t last_byte_ns; /* when the read in progress last got bytes */
    int error;
    char errmsg[512];
    char context[160]; /* what this side is doing, for the messages of I/O failures */
    size_t wlen;
    size_t rpos, rlen;
    uint64_t bytes_written;
    struct colo_stream *flush_first; /* its bytes leave before this stream waits */
    const struct colo_ram_layout *layout;
    struct colo_ram_cache *cache;
    uint8_t wbuf[COLO_STREAM_BUF_SIZE];
    uint8_t rbuf[COLO_STREAM_BUF_SIZE];
};

int colo_stream_new(const struct colo_stream_ops *ops, void *opaque, uint32_t timeout_ms,
                    struct colo_stream **out)
{
    struct colo_stream *f = calloc(1, sizeof(*f));

    if (!f) {
        ops->close(opaque);
        return colo_err(-ENOMEM, "stream: out of memory");
    }
    f->ops = ops;
    f->opaque = opaque;
    f->timeout_ms = timeout_ms;
    *out = f;
    return 0;
}

void colo_stream_delete(struct colo_stream **fp)
{
    struct colo_stream *f = fp ? *fp : NULL;

    if (!f)
        return;
    f->ops->close(f->opaque);
    free(f);
    *fp = NULL;
}

int colo_stream_open_return_path(struct colo_stream *f, struct colo_stream **rp)
{
    void *rp_opaque;
    int ret;

    if (f->error)
        return colo_stream_error(f);
    if (!f->ops->open_return_path)
        return colo_stream_set_error(f, -ENOTSUP, "%s: no return path", f->ops->name);
    ret = f->ops->open_return_path(f->opaque, &rp_opaque);
    if (ret)
        return colo_stream_set_error(f, ret, "%s: return path: %s", f->ops->name,
                                     colo_errormsg());
    ret = colo_stream_new(f->ops, rp_opaque, f->timeout_ms, rp);
    if (ret)
        return ret;
    colo_stream_set_deadline(*rp, f->deadline_ns, f->deadline_ms);
    (*rp)->layout = f->layout;
    (*rp)->cache = f->cache;
    return 0;
}

int colo_stream_set_error(struct colo_stream *f, int err, const char *fmt, ...)
{
    va_list ap;

    if (!f->error && err) {
        f->error = err;
        va_start(ap, fmt);
        vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
        va_end(ap);
    }
    return colo_stream_error(f);
}

void colo_stream_set_context(struct colo_stream *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(f->context, sizeof(f->context), fmt, ap);
    va_end(ap);
}

int colo_stream_error(struct colo_stream *f)
{
    if (f->error)
        colo_err(f->error, "%s", f->errmsg);
    return f->error;
}

static bool deadline_passed(const struct colo_stream *f)
{
    return f->deadline_ns && colo_now_ns() >= f->deadline_ns;
}

static int deadline_error(struct colo_stream *f)
{
    return colo_stream_set_error(f, -ETIMEDOUT, "%s: the %" PRIu32 " ms deadline passed",
                                 f->ops->name, f->deadline_ms);
}

/* Latches a backend failure; the backend recorded its message already. A
 * timeout at the stream's deadline is named as that, not as the last wait's. */
static int backend_error(struct colo_stream *f, int err)
{
    if (err == -ETIMEDOUT && deadline_passed(f))
        return deadline_error(f);
    return colo_stream_set_error(f, err, "%s", colo_errormsg());
}

/* The read's progress is overdue while bytes still came in the last
 * timeout: a trickle (a silent peer is reported as silent). */
static bool trickled(const struct colo_stream *f)
{
    uint64_t now = colo_now_ns();

    return f->progress_ns && now >= f->progress_ns && f->last_byte_ns &&
           now - f->last_byte_ns < (uint64_t)f->timeout_ms * 1000000u;
}

/* A read that did not keep moving: the peer is alive on the wire but sends
 * too little to ever finish, which is no better than a silent one. */
static int progress_error(struct colo_stream *f, size_t got, size_t want)
{
    const char *ctx = f->context[0] ? f->context : "waiting for the peer";

    return colo_stream_set_error(f, COLO_E_PEER_LOST,
                                 "%s: the peer sent too little for %" PRIu32 " ms while %s "
                                 "(%zu of %zu bytes arrived; a read must get %u KiB, or what "
                                 "is left of it, within each timeout)",
                                 f->ops->name, f->timeout_ms, ctx, got, want,
                                 COLO_STREAM_PROGRESS / 1024);
}

/*
 * Latches a failure of a read (reading) or write of the connection, naming
 * what this side was doing. A timeout means the peer fell silent once
 * connected: that is a lost peer (COLO_E_PEER_LOST), as for a closed or
 * reset connection. n < 0: the backend's error; 0: end of stream. got and
 * want: bytes of the current read that had arrived, and that were due.
 */
static int io_error(struct colo_stream *f, bool reading, ssize_t n, size_t got, size_t want)
{
    const char *ctx = f->context[0] ? f->context
                      : reading     ? "waiting for the peer"
                                    : "sending to the peer";
    char part[64] = "";
    int err = (int)n;

    if (got)
        snprintf(part, sizeof(part), " (%zu of %zu bytes arrived)", got, want);
    if (n == 0)
        return colo_stream_set_error(f, COLO_E_PEER_LOST,
                                     "%s: the peer closed the connection while %s%s",
                                     f->ops->name, ctx, part);
    if (err == -ETIMEDOUT && deadline_passed(f))
        return deadline_error(f);
    if (err == -ETIMEDOUT && reading && trickled(f))
        return progress_error(f, got, want);
    if (err == -ETIMEDOUT)
        return colo_stream_set_error(f, COLO_E_PEER_LOST,
                                     "%s: %s for %" PRIu32 " ms while %s%s", f->ops->name,
                                     reading ? "nothing from the peer" : "the peer took no data",
                                     f->timeout_ms, ctx, part);
    if (err == COLO_E_PEER_LOST)
        return colo_stream_set_error(f, err, "%s while %s%s", colo_errormsg(), ctx, part);
    return backend_error(f, err);
}

/* A read of want bytes begins, or the one in progress got n more bytes. */
static void progress_start(struct colo_stream *f)
{
    f->progress_got = 0;
    f->last_byte_ns = 0;
    f->progress_ns = f->timeout_ms ? colo_deadline_after_ms(f->timeout_ms) : 0;
}

static void progress_add(struct colo_stream *f, size_t n)
{
    f->progress_got += n;
    if (f->progress_ns && f->progress_got >= COLO_STREAM_PROGRESS)
        progress_start(f);
    f->last_byte_ns = colo_now_ns();
}

/*
 * The timeout of the next backend call: the stream's own, cut to what is
 * left before the deadline and, in a read, before the read's progress is
 * due, so that no wait (and no run of waits each fed by a byte or a backend
 * message) outlives either.
 */
static int next_timeout(struct colo_stream *f, uint32_t *ms, size_t got, size_t want)
{
    uint64_t now, until = f->deadline_ns;
    uint32_t left;

    *ms = f->timeout_ms;
    if (f->progress_ns && (!until || f->progress_ns < until))
        until = f->progress_ns;
    if (!until)
        return 0;
    now = colo_now_ns();
    if (now >= until)
        return until == f->deadline_ns ? deadline_error(f)
               : trickled(f)          ? progress_error(f, got, want)
                                      : io_error(f, true, -ETIMEDOUT, got, want);
    left = (uint32_t)colo_ms_until(until, now);
    if (!*ms || left < *ms)
        *ms = left;
    return 0;
}

void colo_stream_set_deadline(struct colo_stream *f, uint64_t deadline_ns, uint32_t deadline_ms)
{
    f->deadline_ns = deadline_ns;
    f->deadline_ms = deadline_ms;
}

int colo_stream_check(struct colo_stream *f)
{
    int ret;

    if (f->error || !f->ops->check)
        return colo_stream_error(f);
    ret = f->ops->check(f->opaque);
    return ret ? backend_error(f, ret) : 0;
}

void colo_stream_wake_shutdown(struct colo_stream *f)
{
    if (f->ops->shutdown)
        f->ops->shutdown(f->opaque);
}

int colo_stream_shutdown(struct colo_stream *f)
{
    if (f->ops->shutdown)
        f->ops->shutdown(f->opaque);
    return colo_stream_set_error(f, -EPIPE, "%s: stream shut down", f->ops->name);
}

const char *colo_stream_backend(const struct colo_stream *f)
{
    return f->ops->name;
}

uint64_t colo_stream_bytes_written(const struct colo_stream *f)
{
    return f->bytes_written + f->wlen;
}

static int write_iov(struct colo_stream *f, const void *extra, size_t extra_len)
{
    struct iovec iov[2];
    uint32_t tmo;
    int n = 0, ret;

    if (f->wlen)
        iov[n++] = (struct iovec){.iov_base = f->wbuf, .iov_len = f->wlen};
    if (extra_len)
        iov[n++] = (struct iovec){.iov_base = (void *)extra, .iov_len = extra_len};
    if (!n)
        return 0;
    ret = next_timeout(f, &tmo, 0, 0);
    if (ret)
        return ret;
    ret = f->ops->writev(f->opaque, iov, n, tmo);
    if (ret)
        return io_error(f, false, ret, 0, 0);
    f->bytes_written += f->wlen + extra_len;
    f->wlen = 0;
    return 0;
}

int colo_stream_fflush(struct colo_stream *f)
{
    if (f->error)
        return colo_stream_error(f);
    return write_iov(f, NULL, 0);
}

void colo_stream_put_buffer(struct colo_stream *f, const void *buf, size_t len)
{
    if (f->error || !len)
        return;
    if (len >= COLO_STREAM_BUF_SIZE / 4) {
        /* Large payloads (pages, device state) skip the copy. */
        write_iov(f, buf, len);
        return;
    }
    if (f->wlen + len > sizeof(f->wbuf) && write_iov(f, NULL, 0))
        return;
    memcpy(f->wbuf + f->wlen, buf, len);
    f->wlen += len;
}

void colo_stream_put_be32(struct colo_stream *f, uint32_t v)
{
    uint8_t b[4];

    colo_put_be32(b, v);
    colo_stream_put_buffer(f, b, sizeof(b));
}

void colo_stream_put_be64(struct colo_stream *f, uint64_t v)
{
    uint8_t b[8];

    colo_put_be64(b, v);
    colo_stream_put_buffer(f, b, sizeof(b));
}

void colo_stream_flush_before_wait(struct colo_stream *f, struct colo_stream *out)
{
    f->flush_first = out;
}

/* Before a wait for the peer: what the other direction holds goes first. */
static int flush_before_wait(struct colo_stream *f)
{
    struct colo_stream *out = f->flush_first;

    if (!out || !out->wlen || !colo_stream_fflush(out))
        return 0;
    return colo_stream_set_error(f, colo_stream_error(out), "%s", colo_errormsg());
}

/* Refills the read buffer with at least one byte; got and want for messages. */
static int fill_for(struct colo_stream *f, size_t got, size_t want, bool forever)
{
    uint32_t tmo;
    ssize_t n;

    if (flush_before_wait(f) || next_timeout(f, &tmo, got, want))
        return f->error;
    if (forever)
        tmo = 0;
    n = f->ops->read(f->opaque, f->rbuf, sizeof(f->rbuf), tmo);
    if (n <= 0)
        return io_error(f, true, n, got, want);
    progress_add(f, (size_t)n);
    f->rpos = 0;
    f->rlen = (size_t)n;
    return 0;
}

static int fill(struct colo_stream *f, size_t got, size_t want)
{
    return fill_for(f, got, want, false);
}

int colo_stream_wait_idle(struct colo_stream *f)
{
    if (f->error)
        return colo_stream_error(f);
    if (!f->ops->watches_peer || f->rpos < f->rlen || f->deadline_ns)
        return 0;
    return fill_for(f, 0, 0, true);
}

static int get_buffer(struct colo_stream *f, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t want = len;

    while (len) {
        size_t avail = f->rlen - f->rpos;

        if (!avail && len >= sizeof(f->rbuf)) {
            /* Large reads go straight into the destination. */
            uint32_t tmo;
            ssize_t n;

            if (flush_before_wait(f) || next_timeout(f, &tmo, want - len, want))
                return f->error;
            n = f->ops->read(f->opaque, p, len, tmo);
            if (n <= 0)
                return io_error(f, true, n, want - len, want);
            progress_add(f, (size_t)n);
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (!avail) {
            if (fill(f, want - len, want))
                return f->error;
            continue;
        }
        if (avail > len)
            avail = len;
        memcpy(p, f->rbuf + f->rpos, avail);
        f->rpos += avail;
        p += avail;
        len -= avail;
    }
    return 0;
}

/*
 * Each backend wait gets the whole timeout, so a peer sending a byte just
 * inside every timeout would keep one read alive for ever (a 64 MiB device
 * state, say), authenticated or not. So a read must also keep moving: its
 * first COLO_STREAM_PROGRESS bytes (or all of it, if less) within one
 * timeout, and each further such amount within one more; far below any
 * real link, and a message dripped byte by byte fails within one timeout.
 */
int colo_stream_get_buffer(struct colo_stream *f, void *buf, size_t len)
{
    int ret;

    if (f->error)
        return colo_stream_error(f);
    progress_start(f);
    ret = get_buffer(f, buf, len);
    f->progress_ns = 0;
    return ret;
}

uint32_t colo_stream_get_be32(struct colo_stream *f)
{
    uint8_t b[4];

    if (colo_stream_get_buffer(f, b, sizeof(b)))
        return 0;
    return colo_get_be32(b);
}

uint64_t colo_stream_get_be64(struct colo_stream *f)
{
    uint8_t b[8];

    if (colo_stream_get_buffer(f, b, sizeof(b)))
        return 0;
    return colo_get_be64(b);
}

/* ---- RAM hooks ---- */

void colo_stream_set_ram(struct colo_stream *f, const struct colo_ram_layout *layout,
                         struct colo_ram_cache *cache)
{
    f->layout = layout;
    f->cache = cache;
}

int colo_stream_register_ram(struct colo_stream *f)
{
    int ret;

    if (f->error)
        return colo_stream_error(f);
    if (!f->layout)
        return colo_stream_set_error(f, -EINVAL, "%s: RAM not set", f->ops->name);
    if (!f->ops->register_ram)
        return 0;
    ret = f->ops->register_ram(f->opaque, f);
    return ret ? backend_error(f, ret) : 0;
}

const struct colo_ram_layout *colo_stream_ram_layout(const struct colo_stream *f)
{
    return f->layout;
}

struct colo_ram_cache *colo_stream_ram_cache(const struct colo_stream *f)
{
    return f->cache;
}

/* Calls one optional hook with the sticky-error rules of the stream. */
#define CALL_HOOK(f, hook, ...)                                                                  \
    do {                                                                                         \
        int hook_ret_;                                                                           \
        if ((f)->error)                                                                          \
            return colo_stream_error(f);                                                         \
        if (!(f)->layout)                                                                        \
            return colo_stream_set_error((f), -EINVAL, "%s: RAM not registered",                 \
                                         (f)->ops->name);                                        \
        if (!(f)->ops->hook)                                                                     \
            return 0;                                                                            \
        hook_ret_ = (f)->ops->hook((f)->opaque, (f), __VA_ARGS__);                               \
        return hook_ret_ ? backend_error((f), hook_ret_) : 0;                                    \
    } while (0)

int colo_stream_before_ram_iterate(struct colo_stream *f, uint64_t seq)
{
    CALL_HOOK(f, before_ram_iterate, seq);
}

int colo_stream_save_page(struct colo_stream *f, const struct colo_dirty_run *run)
{
    CALL_HOOK(f, save_page, run);
}

int colo_stream_after_ram_iterate(struct colo_stream *f, uint64_t seq)
{
    CALL_HOOK(f, after_ram_iterate, seq);
}

int colo_stream_load_ram(struct colo_stream *f, uint64_t seq, struct colo_dirty_list *placed)
{
    CALL_HOOK(f, load_ram, seq, placed);
}

int colo_stream_flush_ram(struct colo_stream *f)
{
    int ret;

    if (f->error)
        return colo_stream_error(f);
    if (!f->ops->flush_ram)
        return 0; /* the frames are in the stream, before what follows */
    ret = f->ops->flush_ram(f->opaque, f);
    return ret ? backend_error(f, ret) : 0;
}

bool colo_stream_places_pages(const struct colo_stream *f)
{
    return f->ops->load_ram != NULL;
}
