/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary's page-frame reader of the tcp backend against a raw peer
 * on loopback (no hello, no authentication: the protocol driver on one
 * end, bytes written by the test on the other): what a malformed or short
 * frame costs, and how it is reported.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/ram_cache.h"
#include "common/error.h"
#include "core/byteorder.h"
#include "proto/message.h"
#include "proto/secondary.h"
#include "transport/tcp.h"

#define PAGES 8

static uint8_t guest[PAGES * 4096];

struct fixture {
    char cache_path[64];
    struct colo_ram_layout layout;
    struct colo_ram_cache *cache;
    struct colo_tcp_listener *l;
    struct colo_stream *peer;   /* the test's raw primary */
    struct colo_stream *in, *rp; /* the secondary's ends */
    struct colo_secondary sec;
};

static int setup_timeout(void **state, uint32_t timeout_ms)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    int fd;

    if (!fx)
        return -1;
    strcpy(fx->cache_path, "/tmp/colo-frames-test.XXXXXX");
    fd = mkstemp(fx->cache_path);
    if (fd < 0)
        return -1;
    close(fd);
    memset(guest, 0, sizeof(guest));
    if (colo_ram_layout_init(&fx->layout, 4096) ||
        colo_ram_layout_add(&fx->layout, "pc.ram", guest, sizeof(guest)) ||
        colo_ram_cache_open(fx->cache_path, &fx->layout, 0, &fx->cache) ||
        colo_tcp_listen("127.0.0.1", 0, &fx->l) ||
        colo_tcp_connect("127.0.0.1", colo_tcp_listener_port(fx->l), 2000, &fx->peer) ||
        colo_tcp_accept(fx->l, timeout_ms, timeout_ms, &fx->in))
        return -1;
    colo_stream_set_ram(fx->in, &fx->layout, fx->cache);
    if (colo_stream_open_return_path(fx->in, &fx->rp))
        return -1;
    colo_secondary_init(&fx->sec, fx->in, fx->rp, &fx->layout, fx->cache, 4096, 16, NULL, NULL);
    if (colo_secondary_send_ready(&fx->sec, 7))
        return -1;
    *state = fx;
    return 0;
}

/* The secondary's timeout is long: a test that waits for it has failed. */
static int setup(void **state)
{
    return setup_timeout(state, 3000);
}

static int setup_short(void **state)
{
    return setup_timeout(state, 300);
}

static int setup_1s(void **state)
{
    return setup_timeout(state, 1000);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    colo_secondary_fini(&fx->sec);
    colo_stream_delete(&fx->rp);
    colo_stream_delete(&fx->in);
    colo_stream_delete(&fx->peer);
    colo_tcp_listener_delete(&fx->l);
    colo_ram_cache_close(&fx->cache);
    unlink(fx->cache_path);
    free(fx);
    return 0;
}

static void put_msg(struct fixture *fx, uint32_t cmd, uint64_t value)
{
    struct colo_msg m = {.cmd = cmd, .value = value};
    uint8_t wire[COLO_MSG_WIRE_SIZE];

    colo_msg_encode(&m, wire);
    colo_stream_put_buffer(fx->peer, wire, sizeof(wire));
}

static void put_frame(struct fixture *fx, uint32_t magic, uint32_t block, uint64_t a, uint64_t b)
{
    colo_stream_put_be32(fx->peer, magic);
    colo_stream_put_be32(fx->peer, block);
    colo_stream_put_be64(fx->peer, a);
    colo_stream_put_be64(fx->peer, b);
}

/* Serves one checkpoint; returns its result and the milliseconds it took. */
static int serve(struct fixture *fx, long *ms)
{
    struct timespec t0, t1;
    int ret;

    if (!colo_stream_error(fx->peer)) /* not when the test shut it down */
        assert_int_equal(colo_stream_fflush(fx->peer), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ret = colo_secondary_serve_one(&fx->sec, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    print_message("%d after %ld ms: %s\n", ret, *ms, colo_errormsg());
    return ret;
}

/*
 * A 12-byte COLO message where a 24-byte page frame header is due, the
 * peer still connected: refused at its first word, not after the timeout.
 */
static void test_message_instead_of_frame_fails_at_once(void **state)
{
    struct fixture *fx = *state;
    long ms;

    put_msg(fx, COLO_CMD_CHECKPOINT_REQUEST, 1);
    put_msg(fx, COLO_CMD_VMSTATE_SEND, 1);
    assert_int_equal(serve(fx, &ms), COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "page frame magic 0x00000004"));
    assert_true(ms < 1000);
}

/* The same message, and then the peer closes: at once, and it says where. */
static void test_short_frame_then_close(void **state)
{
    struct fixture *fx = *state;
    long ms;

    put_msg(fx, COLO_CMD_CHECKPOINT_REQUEST, 1);
    colo_stream_put_be32(fx->peer, 0x50414745u); /* "PAGE" */
    colo_stream_put_be64(fx->peer, 0);
    assert_int_equal(colo_stream_fflush(fx->peer), 0);
    colo_stream_shutdown(fx->peer);
    assert_int_equal(serve(fx, &ms), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "tcp: the peer closed the connection while the "
                                            "secondary received the pages of checkpoint 1"));
    assert_non_null(strstr(colo_errormsg(), "8 of 20 bytes"));
    assert_true(ms < 1000);
}

/* A short header and silence: the timeout names the frame and what arrived. */
static void test_short_frame_then_silence(void **state)
{
    struct fixture *fx = *state;
    long ms;

    put_msg(fx, COLO_CMD_CHECKPOINT_REQUEST, 1);
    colo_stream_put_be32(fx->peer, 0x50414745u);
    colo_stream_put_be64(fx->peer, 0);
    assert_int_equal(serve(fx, &ms), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "tcp: nothing from the peer for 300 ms while the "
                                            "secondary received the pages of checkpoint 1"));
    assert_non_null(strstr(colo_errormsg(), "8 of 20 bytes"));
}

/* A bad page frame is a protocol error of the frame, not a dirty-list error. */
static void test_bad_frame_is_not_a_dirty_list_error(void **state)
{
    struct fixture *fx = *state;
    long ms;

    put_msg(fx, COLO_CMD_CHECKPOINT_REQUEST, 1);
    put_frame(fx, 0x50414745u, 7, 0, 1);
    assert_int_equal(serve(fx, &ms), COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "tcp: page frame 0: block 7 out of range"));
    assert_null(strstr(colo_errormsg(), "dirty"));
}

/*
 * Pages of a checkpoint that then fails stay in the cache (documented): the
 * guest RAM is untouched, the cache differs from it in those pages.
 */
static void test_failed_checkpoint_pages_stay_in_the_cache(void **state)
{
    struct fixture *fx = *state;
    uint8_t page[4096];
    long ms;

    memset(page, 0xc3, sizeof(page));
    memset(colo_ram_cache_block(fx->cache, 0), 0, sizeof(guest));
    put_msg(fx, COLO_CMD_CHECKPOINT_REQUEST, 1);
    put_frame(fx, 0x50414745u, 0, 3, 1);
    colo_stream_put_buffer(fx->peer, page, sizeof(page));
    put_frame(fx, 0x50414745u, 0, 9, 1); /* outside the 8-page block */
    assert_int_equal(serve(fx, &ms), COLO_E_PROTOCOL);
    assert_int_equal(colo_ram_cache_block(fx->cache, 0)[3 * 4096 + 5], 0xc3);
    for (size_t i = 0; i < sizeof(guest); i++)
        assert_int_equal(guest[i], 0);
}

struct dripper {
    struct colo_stream *peer;
    int stop;
    size_t sent;
};

/* 16 bytes every 5 ms (2 pages would take 2.6 s): never silent for 1 s. */
static void *drip(void *arg)
{
    struct dripper *d = arg;
    uint8_t bytes[16];
    struct timespec pause = {.tv_nsec = 5000000};

    memset(bytes, 0x5a, sizeof(bytes));
    while (!__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE) && d->sent < 2 * 4096) {
        colo_stream_put_buffer(d->peer, bytes, sizeof(bytes));
        if (colo_stream_fflush(d->peer))
            break;
        d->sent += sizeof(bytes);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/*
 * An authenticated peer that trickles a frame's pages (a byte just inside
 * every timeout used to keep the read alive for ever: 2 pages at this rate
 * would take 2.6 s, 64 MiB 6 hours) fails within about one timeout with a
 * message that says it trickled; its pages never reach the guest.
 */
static void test_trickled_pages_fail(void **state)
{
    struct fixture *fx = *state;
    struct dripper d = {.peer = fx->peer};
    uint8_t zero[sizeof(guest)] = {0};
    pthread_t tid;
    int ret;

    put_msg(fx, COLO_CMD_CHECKPOINT_REQUEST, 1);
    put_frame(fx, 0x50414745u, 0, 0, 2);
    assert_int_equal(colo_stream_fflush(fx->peer), 0);
    assert_int_equal(pthread_create(&tid, NULL, drip, &d), 0);
    ret = colo_secondary_serve_one(&fx->sec, NULL);
    __atomic_store_n(&d.stop, 1, __ATOMIC_RELEASE);
    pthread_join(tid, NULL);
    print_message("%d after %zu bytes: %s\n", ret, d.sent, colo_errormsg());
    assert_int_equal(ret, COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "tcp: the peer sent too little for 1000 ms while "
                                            "the secondary received the pages of checkpoint 1"));
    assert_non_null(strstr(colo_errormsg(), "a read must get 64 KiB"));
    assert_true(d.sent < 2 * 4096);
    assert_memory_equal(guest, zero, sizeof(guest));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_message_instead_of_frame_fails_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_frame_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_frame_then_silence, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_trickled_pages_fail, setup_1s, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frame_is_not_a_dirty_list_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_checkpoint_pages_stay_in_the_cache, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
