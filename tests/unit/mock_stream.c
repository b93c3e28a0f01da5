/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "mock_stream.h"
#include "proto/message.h"

static int mock_writev(void *opaque, const struct iovec *iov, int iovcnt, uint32_t timeout_ms)
{
    struct mock_conn *c = opaque;

    c->writev_calls++;
    if (c->write_error)
        return colo_err(c->write_error, "mock: write failed");
    for (int i = 0; i < iovcnt; i++) {
        if (c->out_len + iov[i].iov_len > sizeof(c->out))
            return colo_err(-ENOSPC, "mock: output full");
        memcpy(c->out + c->out_len, iov[i].iov_base, iov[i].iov_len);
        c->out_len += iov[i].iov_len;
    }
    return 0;
}

static ssize_t mock_read(void *opaque, void *buf, size_t len, uint32_t timeout_ms)
{
    struct mock_conn *c = opaque;
    size_t n = c->in_len - c->in_pos;

    if (!n)
        return c->read_error ? colo_err(c->read_error, "mock: read failed") : 0;
    if (n > len)
        n = len;
    if (c->max_read && n > c->max_read)
        n = c->max_read;
    memcpy(buf, c->in + c->in_pos, n);
    c->in_pos += n;
    return (ssize_t)n;
}

static int mock_shutdown(void *opaque)
{
    ((struct mock_conn *)opaque)->shutdowns++;
    return 0;
}

static int mock_open_return_path(void *opaque, void **rp)
{
    ((struct mock_conn *)opaque)->refs++;
    *rp = opaque;
    return 0;
}

static void mock_close(void *opaque)
{
    mock_conn_unref(opaque);
}

static const struct colo_stream_ops mock_ops = {
    .name = "mock",
    .writev = mock_writev,
    .read = mock_read,
    .shutdown = mock_shutdown,
    .open_return_path = mock_open_return_path,
    .close = mock_close,
};

struct mock_conn *mock_conn_new(void)
{
    struct mock_conn *c = calloc(1, sizeof(*c));

    if (c)
        c->refs = 1;
    return c;
}

struct colo_stream *mock_stream_new(struct mock_conn *conn)
{
    struct colo_stream *f = NULL;

    conn->refs++;
    if (colo_stream_new(&mock_ops, conn, 1000, &f))
        return NULL;
    return f;
}

void mock_conn_put(struct mock_conn *c, const void *buf, size_t len)
{
    memcpy(c->in + c->in_len, buf, len);
    c->in_len += len;
}

void mock_conn_put_msg(struct mock_conn *c, uint32_t cmd, uint64_t value)
{
    struct colo_msg m = {.cmd = cmd, .value = value};
    uint8_t wire[COLO_MSG_WIRE_SIZE];

    colo_msg_encode(&m, wire);
    mock_conn_put(c, wire, sizeof(wire));
}

void mock_conn_unref(struct mock_conn *c)
{
    if (--c->refs == 0)
        free(c);
}
