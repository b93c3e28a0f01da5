/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An in-memory stream backend for the fuzz harnesses: reads come from the
 * fuzzer's input (in chunks of at most max_read bytes, to exercise the
 * stream's refill and direct-read paths), writes are captured in a bounded
 * buffer so a harness can check what the driver answered.
 */
#ifndef COLO_TESTS_FUZZ_STREAM_H
#define COLO_TESTS_FUZZ_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "stream/stream.h"

#define FUZZ_CONN_OUT_MAX (1u << 20)

struct fuzz_conn {
    const uint8_t *in;
    size_t in_len, in_pos;
    size_t max_read; /* bytes per read call (0: as many as asked) */
    uint8_t *out;
    size_t out_len, out_cap;
    int refs;
};

/* A connection over in[0..len) with one reference. NULL on allocation failure. */
struct fuzz_conn *fuzz_conn_new(const uint8_t *in, size_t len, size_t max_read);
void fuzz_conn_unref(struct fuzz_conn *c);
/* Fills ops with the in-memory backend; RAM hooks stay NULL for the caller to set. */
void fuzz_stream_ops_init(struct colo_stream_ops *ops);
/* A stream on conn through ops (takes a reference). NULL on failure. */
struct colo_stream *fuzz_stream_new(const struct colo_stream_ops *ops, struct fuzz_conn *conn);

#endif
