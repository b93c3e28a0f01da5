/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The buffered stream: encoding, buffering, the sticky error and the return path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "mock_stream.h"

static void test_put_get_round_trip(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *f = mock_stream_new(c);
    static uint8_t big[100000];
    static uint8_t back[100000];

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    colo_stream_put_be32(f, 0xdeadbeef);
    colo_stream_put_be64(f, 0x0102030405060708ull);
    colo_stream_put_buffer(f, big, sizeof(big));
    assert_int_equal(colo_stream_fflush(f), 0);
    assert_int_equal(c->out_len, 12 + sizeof(big));
    assert_int_equal(c->out[0], 0xde);
    /* a large buffer goes out together with what was buffered, in one call */
    assert_int_equal(c->writev_calls, 1);
    assert_true(colo_stream_bytes_written(f) == 12 + sizeof(big));

    mock_conn_put(c, c->out, c->out_len);
    c->max_read = 1000; /* many partial reads */
    assert_true(colo_stream_get_be32(f) == 0xdeadbeef);
    assert_true(colo_stream_get_be64(f) == 0x0102030405060708ull);
    assert_int_equal(colo_stream_get_buffer(f, back, sizeof(back)), 0);
    assert_memory_equal(big, back, sizeof(big));
    colo_stream_delete(&f);
    assert_null(f);
    colo_stream_delete(&f); /* NULL is fine */
    mock_conn_unref(c);
}

static void test_error_is_sticky_first_wins(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *f = mock_stream_new(c);
    uint8_t buf[4];

    c->write_error = -EIO;
    colo_stream_put_be32(f, 1);
    assert_int_equal(colo_stream_fflush(f), -EIO);
    assert_int_equal(c->writev_calls, 1);
    /* a later, different error does not replace the first */
    assert_int_equal(colo_stream_set_error(f, -EPIPE, "later"), -EIO);
    c->write_error = 0;
    colo_stream_put_be64(f, 2);
    assert_int_equal(colo_stream_fflush(f), -EIO);
    assert_int_equal(c->writev_calls, 1); /* no-ops now */
    mock_conn_put(c, "abcd", 4);
    assert_true(colo_stream_get_be32(f) == 0);
    assert_int_equal(colo_stream_get_buffer(f, buf, 4), -EIO);
    assert_int_equal(c->in_pos, 0); /* nothing was read */
    assert_int_equal(colo_stream_error(f), -EIO);
    assert_non_null(strstr(colo_errormsg(), "mock: write failed"));
    colo_stream_delete(&f);
    mock_conn_unref(c);
}

static void test_eof_and_read_errors(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *f = mock_stream_new(c);
    uint8_t buf[8];

    mock_conn_put(c, "ab", 2);
    assert_int_equal(colo_stream_get_buffer(f, buf, 8), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "mock: the peer closed the connection while "
                                            "waiting for the peer (2 of 8 bytes arrived)"));
    colo_stream_delete(&f);

    /* a timeout once connected is a lost peer, and says what was awaited */
    f = mock_stream_new(c);
    c->read_error = -ETIMEDOUT;
    colo_stream_set_context(f, "the test waited for %s", "a be64");
    assert_true(colo_stream_get_be64(f) == 0);
    assert_int_equal(colo_stream_error(f), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "mock: nothing from the peer for 1000 ms while the "
                                            "test waited for a be64"));
    colo_stream_delete(&f);
    mock_conn_unref(c);
}

static void test_shutdown_and_return_path(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *f = mock_stream_new(c), *rp = NULL;

    assert_int_equal(colo_stream_open_return_path(f, &rp), 0);
    assert_int_equal(c->refs, 3);
    assert_string_equal(colo_stream_backend(rp), "mock");
    colo_stream_put_be32(rp, 5);
    assert_int_equal(colo_stream_fflush(rp), 0);
    assert_int_equal(colo_stream_shutdown(f), -EPIPE);
    assert_int_equal(c->shutdowns, 1);
    colo_stream_put_be32(f, 1);
    assert_int_equal(colo_stream_fflush(f), -EPIPE);
    assert_int_equal(colo_stream_open_return_path(f, &rp), -EPIPE);
    colo_stream_delete(&rp);
    colo_stream_delete(&f);
    assert_int_equal(c->refs, 1);
    mock_conn_unref(c);
}

static void test_ram_hooks_need_registration(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *f = mock_stream_new(c);
    struct colo_dirty_run run = {.page_count = 1};

    assert_int_equal(colo_stream_save_page(f, &run), -EINVAL);
    assert_non_null(strstr(colo_errormsg(), "RAM not registered"));
    colo_stream_delete(&f);
    mock_conn_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_round_trip),
        cmocka_unit_test(test_error_is_sticky_first_wins),
        cmocka_unit_test(test_eof_and_read_errors),
        cmocka_unit_test(test_shutdown_and_return_path),
        cmocka_unit_test(test_ram_hooks_need_registration),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
