/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An in-memory stream backend for unit tests: scripted input, captured output, injected faults. */
#ifndef COLO_TESTS_MOCK_STREAM_H
#define COLO_TESTS_MOCK_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "stream/stream.h"

struct mock_conn {
    uint8_t in[4 << 20];
    size_t in_len, in_pos;
    uint8_t out[1 << 20];
    size_t out_len;
    size_t max_read;    /* bytes per read call (0: unlimited) to exercise refills */
    int write_error;    /* returned by the next write when nonzero */
    int read_error;     /* returned by reads once the input is consumed (0: EOF) */
    int writev_calls;
    int shutdowns;
    int refs;
};

struct mock_conn *mock_conn_new(void);
/* A stream on conn (takes a reference). */
struct colo_stream *mock_stream_new(struct mock_conn *conn);
void mock_conn_put(struct mock_conn *c, const void *buf, size_t len);
void mock_conn_put_msg(struct mock_conn *c, uint32_t cmd, uint64_t value);
void mock_conn_unref(struct mock_conn *c);

#endif
