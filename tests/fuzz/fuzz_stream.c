/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "fuzz_stream.h"

static int fuzz_writev(void *opaque, const struct iovec *iov, int iovcnt, uint32_t timeout_ms)
{
    struct fuzz_conn *c = opaque;

    (void)timeout_ms;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > FUZZ_CONN_OUT_MAX - c->out_len)
            return colo_err(-ENOSPC, "fuzz: output full");
        if (c->out_len + iov[i].iov_len > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 256;
            uint8_t *p;

            while (cap < c->out_len + iov[i].iov_len)
                cap *= 2;
            p = realloc(c->out, cap);
            if (!p)
                return colo_err(-ENOMEM, "fuzz: out of memory");
            c->out = p;
            c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, iov[i].iov_base, iov[i].iov_len);
        c->out_len += iov[i].iov_len;
    }
    return 0;
}

/* End of input reads as a closed connection, as a peer that hung up. */
static ssize_t fuzz_read(void *opaque, void *buf, size_t len, uint32_t timeout_ms)
{
    struct fuzz_conn *c = opaque;
    size_t n = c->in_len - c->in_pos;

    (void)timeout_ms;
    if (!n)
        return 0;
    if (n > len)
        n = len;
    if (c->max_read && n > c->max_read)
        n = c->max_read;
    memcpy(buf, c->in + c->in_pos, n);
    c->in_pos += n;
    return (ssize_t)n;
}

static int fuzz_shutdown(void *opaque)
{
    struct fuzz_conn *c = opaque;

    c->in_pos = c->in_len;
    return 0;
}

static int fuzz_open_return_path(void *opaque, void **rp)
{
    ((struct fuzz_conn *)opaque)->refs++;
    *rp = opaque;
    return 0;
}

static void fuzz_close(void *opaque)
{
    fuzz_conn_unref(opaque);
}

struct fuzz_conn *fuzz_conn_new(const uint8_t *in, size_t len, size_t max_read)
{
    struct fuzz_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->in = in;
    c->in_len = len;
    c->max_read = max_read;
    c->refs = 1;
    return c;
}

void fuzz_conn_unref(struct fuzz_conn *c)
{
    if (c && --c->refs == 0) {
        free(c->out);
        free(c);
    }
}

void fuzz_stream_ops_init(struct colo_stream_ops *ops)
{
    *ops = (struct colo_stream_ops){
        .name = "fuzz",
        .writev = fuzz_writev,
        .read = fuzz_read,
        .shutdown = fuzz_shutdown,
        .open_return_path = fuzz_open_return_path,
        .close = fuzz_close,
    };
}

struct colo_stream *fuzz_stream_new(const struct colo_stream_ops *ops, struct fuzz_conn *conn)
{
    struct colo_stream *f = NULL;

    conn->refs++;
    if (colo_stream_new(ops, conn, 1000, &f))
        return NULL; /* colo_stream_new dropped the reference through ops->close */
    return f;
}
