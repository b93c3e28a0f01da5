/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary's page-frame reader of the tcp backend against a raw peer
 * on loopback (no hello, no authentication: the protocol driver on one
 * end, bytes written by the test on the other): what a malformed or short
 * frame costs, and how it is reported. And the write side of the progress
 * rule: the backend's write against a raw socket read at a set pace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/*
 * The write side of the progress rule (transport/tcp.c): a write must move
 * COLO_STREAM_PROGRESS bytes, or what is left of it, within each timeout. The
 * test's end of the connection has a receive buffer of rcvbuf bytes and reads
 * chunk bytes every pause_ms while the write runs, then the rest at once,
 * until it has all, the write failed, or READER_MAX_MS passed.
 */
#define WRITE_TIMEOUT_MS 1000
#define READER_MAX_MS 30000

struct reader {
    size_t len; /* of the write */
    int rcvbuf;
    size_t chunk;
    long pause_ms;
    int fd;
    int stop;  /* the write failed */
    int drain; /* the write is done: no more pauses */
    size_t got;
    bool intact; /* every byte as written */
};

static uint8_t write_byte(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 12));
}

/* Up to chunk bytes every pause_ms, each checked; then the connection is
 * shut, so that a write still waiting fails at once. */
static void *read_paced(void *arg)
{
    struct reader *r = arg;
    struct timespec pause = {.tv_sec = r->pause_ms / 1000, .tv_nsec = r->pause_ms % 1000 * 1000000};
    static uint8_t buf[256 << 10];
    struct timespec t0, t;

    r->intact = true;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        ssize_t n = recv(r->fd, buf, r->chunk < sizeof(buf) ? r->chunk : sizeof(buf),
                         MSG_DONTWAIT);

        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != write_byte(r->got + (size_t)i))
                r->intact = false;
        if (n > 0)
            r->got += (size_t)n;
        if (n == 0 || r->got == r->len || __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > READER_MAX_MS)
            break;
        if (!__atomic_load_n(&r->drain, __ATOMIC_ACQUIRE))
            nanosleep(&pause, NULL);
    }
    shutdown(r->fd, SHUT_RDWR);
    return NULL;
}

/*
 * Writes r->len bytes in one write with the tcp backend's stream (timeout
 * WRITE_TIMEOUT_MS) to a reader of this pace: the write's result and how
 * long it took.
 */
static int write_to_reader(struct reader *r, long *ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), ret;
    struct colo_stream *w;
    struct timespec t0, t1;
    uint8_t *data = malloc(r->len);
    pthread_t tid;

    assert_non_null(data);
    for (size_t i = 0; i < r->len; i++)
        data[i] = write_byte(i);
    /* set before listen: the accepted socket inherits it, and its window */
    assert_true(lfd >= 0);
    assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &r->rcvbuf, sizeof(r->rcvbuf)), 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
    assert_int_equal(colo_tcp_connect("127.0.0.1", ntohs(sa.sin_port), WRITE_TIMEOUT_MS, &w), 0);
    r->fd = accept(lfd, NULL, NULL);
    assert_true(r->fd >= 0);
    assert_int_equal(pthread_create(&tid, NULL, read_paced, r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    colo_stream_put_buffer(w, data, r->len);
    ret = colo_stream_fflush(w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    __atomic_store_n(ret ? &r->stop : &r->drain, 1, __ATOMIC_RELEASE);
    pthread_join(tid, NULL);
    colo_stream_delete(&w);
    close(r->fd);
    close(lfd);
    free(data);
    return ret;
}

/*
 * 2 KiB every 100 ms (20 KB/s, a third of 64 KiB per second at the best)
 * through a 4 KiB receive buffer, so that its acknowledgements come several
 * times a second: the peer takes something all the time, never 64 KiB within
 * a timeout; the write fails within about one timeout, saying so (before the
 * rule each wait got the whole timeout again, and 4 MiB would have taken 3.5
 * minutes; with it, until now, the message was "took no data").
 */
static void test_slow_reader_fails_a_write(void **state)
{
    struct reader r = {.len = 4u << 20, .rcvbuf = 4096, .chunk = 2048, .pause_ms = 100};
    long ms;
    int ret = write_to_reader(&r, &ms);

    print_message("a 4 MiB write to a reader of 2 KiB per 100 ms: %d after %ld ms, %zu bytes "
                  "read: %s\n", ret, ms, r.got, colo_errormsg());
    assert_int_equal(ret, COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "tcp: the peer took too little for 1000 ms"));
    assert_non_null(strstr(colo_errormsg(), "a write must move 64 KiB"));
    assert_true(ms >= WRITE_TIMEOUT_MS - 10 && ms < 3 * WRITE_TIMEOUT_MS);
    assert_true(r.got > 0 && r.got < r.len);
    assert_true(r.intact);
}

/*
 * 256 KiB every 400 ms through a 256 KiB receive buffer (640 KB/s unloaded,
 * ten times the rule's 64 KiB per second; few wake-ups, so that a loaded
 * machine slows it little, and reads of whole 64 KiB loopback segments, so
 * that each opens the window at once): the whole write goes through, byte
 * for byte.
 * Until now the writer woke only once a third of the megabytes the kernel
 * lets a loopback socket queue had drained, and this peer was failed after
 * one timeout as one that "took no data".
 */
static void test_paced_reader_takes_a_write(void **state)
{
    struct reader r = {.len = 5u << 20, .rcvbuf = 256 << 10, .chunk = 256 << 10,
                       .pause_ms = 400};
    long ms;
    int ret = write_to_reader(&r, &ms);

    print_message("a 5 MiB write to a reader of 256 KiB per 400 ms: %d after %ld ms, %zu bytes "
                  "read%s%s\n", ret, ms, r.got, ret ? ": " : "", ret ? colo_errormsg() : "");
    assert_int_equal(ret, 0);
    assert_int_equal(r.got, r.len);
    assert_true(r.intact);
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
        cmocka_unit_test(test_slow_reader_fails_a_write),
        cmocka_unit_test(test_paced_reader_takes_a_write),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
