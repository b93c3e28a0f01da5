/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * End to end over tcp on loopback, through the public API only: 100
 * checkpoints of random dirty pages, with the secondary's cache and applied
 * guest RAM compared byte for byte with the primary's RAM after each one;
 * then the ways a session can go wrong.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
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

#include <colo-rdma/colo-rdma.h>

#define NBLOCKS 3
static const uint64_t block_len[NBLOCKS] = {1 << 20, 512 << 10, 64 << 10};

struct side {
    uint8_t *ram[NBLOCKS];
    struct colo_config *cfg;
};

struct secondary_thread {
    struct colo_listener *l;
    struct colo_session *s;
    pthread_t tid;
    int sessions;   /* how many sessions to serve */
    int last_ret;
    int again_ret; /* a serve call after the session ended */
    int accept_ret;
    uint64_t served;
    char msg[512]; /* colo_errormsg() of the last failure in the thread */
};

static char cache_path[64];

static void side_init(struct side *sd, const char *host, uint16_t port, const uint64_t *lens)
{
    assert_int_equal(colo_config_new(&sd->cfg), 0);
    assert_int_equal(colo_config_set_address(sd->cfg, host, port), 0);
    assert_int_equal(colo_config_set_timeout_ms(sd->cfg, 10000), 0);
    for (int i = 0; i < NBLOCKS; i++) {
        char name[16];

        sd->ram[i] = calloc(1, lens[i]);
        assert_non_null(sd->ram[i]);
        snprintf(name, sizeof(name), "block%d", i);
        assert_int_equal(colo_config_add_ram_block(sd->cfg, name, sd->ram[i], lens[i]), 0);
    }
    assert_int_equal(colo_config_set_cache_path(sd->cfg, cache_path), 0);
}

static void side_fini(struct side *sd)
{
    for (int i = 0; i < NBLOCKS; i++)
        free(sd->ram[i]);
    colo_config_delete(&sd->cfg);
}

static void *serve(void *arg)
{
    struct secondary_thread *t = arg;

    for (int n = 0; n < t->sessions; n++) {
        int ret = colo_listener_accept(t->l, &t->s);

        t->accept_ret = ret;
        if (ret) {
            t->last_ret = ret;
            continue;
        }
        do {
            ret = colo_secondary_serve(t->s, NULL);
            if (!ret)
                t->served++;
        } while (!ret);
        t->last_ret = ret;
        snprintf(t->msg, sizeof(t->msg), "%s", colo_errormsg());
        t->again_ret = colo_secondary_serve(t->s, NULL);
        colo_session_close(&t->s);
    }
    return NULL;
}

static void start_secondary(struct secondary_thread *t, struct side *sec, int sessions)
{
    memset(t, 0, sizeof(*t));
    t->sessions = sessions;
    assert_int_equal(colo_listener_new(sec->cfg, &t->l), 0);
    assert_int_equal(pthread_create(&t->tid, NULL, serve, t), 0);
}

static void stop_secondary(struct secondary_thread *t)
{
    pthread_join(t->tid, NULL);
    colo_listener_delete(&t->l);
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int setup(void **state)
{
    strcpy(cache_path, "/tmp/colo-tcp-test.XXXXXX");
    close(mkstemp(cache_path));
    return 0;
}

static int teardown(void **state)
{
    unlink(cache_path);
    return 0;
}

/* Primary checkpoints with random dirty pages; secondary verified after each. */
static void run_verified(const char *host, int checkpoints, bool pipelined)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    uint64_t seed = 0x1234567;
    struct colo_dirty_run runs[64];
    uint8_t state_buf[300];

    side_init(&sec, host, 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, host, colo_listener_port(t.l), block_len);
    assert_int_equal(colo_config_set_pipelined(pri.cfg, pipelined), 0);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);

    for (int c = 1; c <= checkpoints; c++) {
        size_t n = c == 1 ? NBLOCKS : 1 + rng(&seed) % 64;
        struct colo_checkpoint_stats st;
        const void *vm;
        uint64_t vmlen;

        for (size_t i = 0; i < n; i++) {
            uint32_t b = c == 1 ? (uint32_t)i : (uint32_t)(rng(&seed) % NBLOCKS);
            uint64_t pages = block_len[b] / 4096;
            uint64_t first = c == 1 ? 0 : rng(&seed) % pages;
            uint64_t count = c == 1 ? pages : 1 + rng(&seed) % (pages - first < 8 ? pages - first : 8);

            runs[i] = (struct colo_dirty_run){.block = b, .first_page = first, .page_count = count};
            for (uint64_t pg = first; pg < first + count; pg++)
                for (int k = 0; k < 4096; k += 512)
                    pri.ram[b][pg * 4096 + (uint64_t)k] = (uint8_t)rng(&seed);
        }
        memset(state_buf, c, sizeof(state_buf));
        assert_int_equal(colo_primary_checkpoint(p, runs, n, state_buf, sizeof(state_buf), &st), 0);
        assert_true(st.seq == (uint64_t)c);
        assert_true(st.total_ns > 0 && st.vmstate_bytes == sizeof(state_buf));
        /* The secondary is idle again, waiting for the next request. */
        for (uint32_t b = 0; b < NBLOCKS; b++) {
            const void *addr;
            uint64_t len;

            assert_int_equal(colo_session_cache_block(t.s, b, &addr, &len), 0);
            assert_true(len == block_len[b]);
            if (memcmp(addr, pri.ram[b], len))
                fail_msg("checkpoint %d: cache of block %u differs from the primary", c, b);
            if (memcmp(sec.ram[b], pri.ram[b], len))
                fail_msg("checkpoint %d: applied RAM of block %u differs", c, b);
        }
        assert_int_equal(colo_session_vmstate(t.s, &vm, &vmlen), 0);
        assert_true(vmlen == sizeof(state_buf));
        assert_memory_equal(vm, state_buf, sizeof(state_buf));
        assert_true(colo_session_seq(t.s) == (uint64_t)c);
    }
    assert_true(colo_session_seq(p) == (uint64_t)checkpoints);
    colo_session_close(&p);
    assert_null(p);
    stop_secondary(&t);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    /* an orderly end stays one: it is not reported as a lost peer later */
    assert_int_equal(t.again_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == (uint64_t)checkpoints);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_100_checkpoints_verified_ipv4(void **state)
{
    run_verified("127.0.0.1", 100, true);
}

static void test_not_pipelined(void **state)
{
    run_verified("127.0.0.1", 30, false);
}

/*
 * Background push: runs pushed between checkpoints join the next one, whose
 * own runs are only those dirtied since (some written again); the secondary
 * applies the union only when the checkpoint completes. Bad runs are refused
 * and leave the session usable; no push between begin and commit.
 */
static void run_background_push(uint32_t pri_version, uint32_t sec_version, bool early)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_checkpoint_stats st;
    struct colo_dirty_run bad = {.block = 1, .first_page = 127, .page_count = 2};
    uint64_t seed = 77;
    bool v2 = pri_version >= 2 && sec_version >= 2;

    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_protocol_version(sec.cfg, sec_version), 0);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_config_set_protocol_version(pri.cfg, pri_version), 0);
    /* early resume: the push collects the previous vmstate-loaded first */
    assert_int_equal(colo_config_set_early_resume(pri.cfg, early), 0);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_session_protocol_version(p), v2 ? 2 : 1);
    assert_int_equal(colo_primary_push_background(p, &bad, 1), COLO_E_DIRTY_LIST);
    assert_non_null(strstr(colo_errormsg(), "outside block block1"));
    for (uint64_t c = 1; c <= 12; c++) {
        /* before: pages 10c..10c+3 of block 0; after: 10c+2..10c+5 (two again) */
        struct colo_dirty_run before = {.block = 0, .first_page = 10 * c, .page_count = 4};
        struct colo_dirty_run after[2] = {{.block = 0, .first_page = 10 * c + 2, .page_count = 4},
                                          {.block = 2, .first_page = c, .page_count = 1}};

        for (uint64_t pg = 0; pg < 4; pg++)
            pri.ram[0][(10 * c + pg) * 4096] = (uint8_t)rng(&seed);
        assert_int_equal(colo_primary_push_background(p, &before, 1), 0);
        assert_int_equal(colo_primary_push_background(p, NULL, 0), 0);
        /* nothing of the coming checkpoint is in the secondary's guest yet
         * (version 2: its pages may be in the cache already) */
        if (c > 1)
            assert_int_not_equal(memcmp(sec.ram[0], pri.ram[0], block_len[0]), 0);
        for (uint64_t pg = 2; pg < 6; pg++)
            pri.ram[0][(10 * c + pg) * 4096 + 1] = (uint8_t)rng(&seed);
        pri.ram[2][c * 4096] = (uint8_t)c;
        if (c == 5) {
            assert_int_equal(colo_primary_checkpoint_begin(p, NULL), 0);
            assert_int_equal(colo_primary_push_background(p, &before, 1), -EINVAL);
            assert_non_null(strstr(colo_errormsg(), "expected colo_primary_checkpoint_commit"));
            assert_int_equal(colo_primary_checkpoint_commit(p, after, 2, "s", 1, &st), 0);
        } else {
            assert_int_equal(colo_primary_checkpoint(p, after, 2, "s", 1, &st), 0);
        }
        assert_true(st.seq == c);
        /* tcp v1 carries the pushed runs with the checkpoint: none moved ahead;
         * v2 announces them with background-pages */
        assert_true(st.background_pages == (v2 ? 4 : 0));
        assert_true(st.pages == 7); /* 10c..10c+5 and one page of block 2 */
        /* with early resume the secondary may still apply it: checked at the end */
        for (uint32_t b = 0; !early && b < NBLOCKS; b++)
            if (memcmp(sec.ram[b], pri.ram[b], block_len[b]))
                fail_msg("checkpoint %" PRIu64 ": applied RAM of block %u differs", c, b);
    }
    /* a checkpoint without a push before it names only its own runs */
    assert_int_equal(colo_primary_checkpoint(p, &bad, 0, NULL, 0, &st), 0);
    assert_true(st.background_pages == 0 && st.pages == 0);
    colo_session_close(&p);
    stop_secondary(&t);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == 13);
    for (uint32_t b = 0; b < NBLOCKS; b++)
        if (memcmp(sec.ram[b], pri.ram[b], block_len[b]))
            fail_msg("after the last checkpoint: applied RAM of block %u differs", b);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_background_push(void **state)
{
    run_background_push(2, 2, false);
}

/* A peer of 0.4 or older speaks version 1 (pinned here): either side may be it. */
static void test_background_push_with_a_version_1_peer(void **state)
{
    run_background_push(1, 2, false);
    run_background_push(2, 1, false);
}

/* With early resume the push first collects the last checkpoint's
 * vmstate-loaded: the pages it announces belong to the next one. */
static void test_background_push_early_resume(void **state)
{
    run_background_push(2, 2, true);
    run_background_push(1, 2, true);
}

static void test_early_resume(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_checkpoint_stats st;

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_config_set_early_resume(pri.cfg, 1), 0);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    for (uint64_t c = 1; c <= 20; c++) {
        struct colo_dirty_run run = {.block = 1, .first_page = c, .page_count = 2};

        memset(pri.ram[1] + c * 4096, (int)c, 2 * 4096);
        assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, &st), 0);
        assert_true(st.seq == c);
        /* returned at vmstate-received: the previous checkpoint is complete */
        assert_true(colo_session_seq(p) == c - 1);
    }
    colo_session_close(&p); /* collects the last vmstate-loaded, then goodbye */
    stop_secondary(&t);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == 20);
    assert_int_equal(memcmp(sec.ram[1], pri.ram[1], block_len[1]), 0);
    side_fini(&pri);
    side_fini(&sec);
}

/*
 * begin/commit: the request's round trip before the pause; a bad list at
 * commit is refused before anything is sent and commit can be retried;
 * out-of-order calls are refused; the secondary's RAM matches after each.
 */
static void test_begin_commit(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_checkpoint_stats st;
    struct colo_dirty_run bad = {.block = 7, .first_page = 0, .page_count = 1};

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    /* commit before begin */
    assert_int_equal(colo_primary_checkpoint_commit(p, &bad, 0, NULL, 0, NULL), -EINVAL);
    assert_non_null(strstr(colo_errormsg(), "colo_primary_checkpoint_begin first"));
    for (uint64_t c = 1; c <= 10; c++) {
        struct colo_dirty_run run = {.block = 0, .first_page = c, .page_count = 3};

        memset(&st, 0xff, sizeof(st));
        assert_int_equal(colo_primary_checkpoint_begin(p, &st), 0);
        assert_true(st.seq == c);
        assert_true(st.request_ns > 0);
        /* the guest "ran" after the request: these writes are in this checkpoint */
        memset(pri.ram[0] + c * 4096, (int)c + 1, 3 * 4096);
        if (c == 3) {
            assert_int_equal(colo_primary_checkpoint_commit(p, &bad, 1, "s", 1, &st),
                             COLO_E_DIRTY_LIST);
            /* a second begin while one is open, and the one-call form */
            assert_int_equal(colo_primary_checkpoint_begin(p, NULL), -EINVAL);
            assert_non_null(strstr(colo_errormsg(), "expected idle"));
            assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, NULL), -EINVAL);
            assert_int_equal(colo_primary_checkpoint_commit(p, &run, 1, "s", 1, &st), 0);
            assert_true(colo_session_seq(p) == c);
            continue;
        }
        assert_int_equal(colo_primary_checkpoint_commit(p, &run, 1, "s", 1, &st), 0);
        assert_true(st.seq == c && st.pages == 3);
        assert_true(st.total_ns > 0);
        assert_true(colo_session_seq(p) == c);
        assert_int_equal(memcmp(sec.ram[0], pri.ram[0], block_len[0]), 0);
    }
    colo_session_close(&p);
    stop_secondary(&t);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == 10);
    side_fini(&pri);
    side_fini(&sec);
}

/* A bad list at commit leaves the begun checkpoint open: commit again. */
static void test_commit_retried_after_bad_list(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run bad = {.block = 0, .first_page = 1u << 30, .page_count = 1};
    struct colo_dirty_run run = {.block = 2, .first_page = 1, .page_count = 1};

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint_begin(p, NULL), 0);
    assert_int_equal(colo_primary_checkpoint_commit(p, &bad, 1, NULL, 0, NULL), COLO_E_DIRTY_LIST);
    memset(pri.ram[2] + 4096, 0x5a, 4096);
    assert_int_equal(colo_primary_checkpoint_commit(p, &run, 1, NULL, 0, NULL), 0);
    assert_true(colo_session_seq(p) == 1);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, NULL, 0, NULL), 0);
    assert_int_equal(colo_primary_checkpoint_begin(NULL, NULL), -EINVAL);
    colo_session_close(&p);
    stop_secondary(&t);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == 2);
    assert_int_equal(memcmp(sec.ram[2], pri.ram[2], block_len[2]), 0);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_shutdown_from_another_thread(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = 1};
    struct timespec t0, t1;

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, NULL, 0, NULL), 0);
    assert_int_equal(colo_session_check(p), 0); /* between checkpoints: all well */
    /* the secondary now waits for the next request: fail it from here */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    colo_session_shutdown(t.s);
    pthread_join(t.tid, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_not_equal(t.last_ret, 0);
    assert_int_not_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t1.tv_sec - t0.tv_sec < 2); /* at once, not after the 10 s timeout */
    /* the primary sees it without a checkpoint (the close may take a moment) */
    for (int i = 0; i < 100 && colo_session_check(p) == 0; i++)
        usleep(10000);
    assert_int_equal(colo_session_check(p), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "closed the connection"));
    assert_int_not_equal(colo_primary_checkpoint(p, &run, 1, NULL, 0, NULL), 0);
    assert_int_equal(colo_session_check(NULL), -EINVAL);
    colo_session_close(&p);
    colo_session_shutdown(NULL);
    colo_listener_delete(&t.l);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_ipv6(void **state)
{
    struct colo_config *cfg;
    struct colo_listener *l = NULL;
    int ret;

    /* skip where the machine has no IPv6 loopback */
    assert_int_equal(colo_config_new(&cfg), 0);
    colo_config_add_ram_block(cfg, "x", cache_path, 4096);
    colo_config_set_address(cfg, "::1", 0);
    colo_config_set_cache_path(cfg, cache_path);
    ret = colo_listener_new(cfg, &l);
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    if (ret) {
        print_message("no IPv6 loopback here (%s): skipped\n", colo_errormsg());
        skip();
    }
    run_verified("::1", 5, true);
}

static void test_layout_mismatch_both_sides(void **state)
{
    static const uint64_t other[NBLOCKS] = {1 << 20, 512 << 10, 128 << 10};
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p = NULL;

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), other);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "RAM layout differs"));
    assert_null(p);
    stop_secondary(&t);
    assert_int_equal(t.accept_ret, COLO_E_HANDSHAKE);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_listener_takes_the_next_session(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = 1};

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 2);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
        assert_int_equal(colo_primary_checkpoint(p, &run, 1, NULL, 0, NULL), 0);
        colo_session_close(&p);
    }
    stop_secondary(&t);
    assert_true(t.served == 2);
    side_fini(&pri);
    side_fini(&sec);
}

static void *serve_one_then_vanish(void *arg)
{
    struct secondary_thread *t = arg;

    t->accept_ret = colo_listener_accept(t->l, &t->s);
    if (!t->accept_ret) {
        t->last_ret = colo_secondary_serve(t->s, NULL);
        colo_session_close(&t->s); /* no goodbye from a secondary: the link just ends */
    }
    return NULL;
}

static void test_secondary_lost_mid_session(void **state)
{
    struct side pri, sec;
    struct secondary_thread t = {0};
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 1, .first_page = 3, .page_count = 2};
    int ret;

    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_listener_new(sec.cfg, &t.l), 0);
    assert_int_equal(pthread_create(&t.tid, NULL, serve_one_then_vanish, &t), 0);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, NULL), 0);
    pthread_join(t.tid, NULL);
    assert_int_equal(t.last_ret, 0);
    ret = colo_primary_checkpoint(p, &run, 1, "s", 1, NULL);
    assert_true(ret == COLO_E_PEER_LOST || ret == -EPIPE);
    assert_non_null(strstr(colo_errormsg(), "checkpoint 2 failed"));
    /* every later call says the same: how the session ended */
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, NULL), ret);
    assert_non_null(strstr(colo_errormsg(), "the session has ended (checkpoint 2 failed"));
    assert_non_null(strstr(colo_errormsg(), "close it"));
    colo_session_close(&p);
    colo_listener_delete(&t.l);
    side_fini(&pri);
    side_fini(&sec);
}

/*
 * A timeout is a lost peer (COLO_E_PEER_LOST, failover for QEMU) and says
 * what was awaited; "checkpoint N failed" names the checkpoint being worked
 * on: the one after the last completed.
 */
static void test_timeout_names_what_was_awaited(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = 1};
    int ret;

    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_timeout_ms(sec.cfg, 1000), 0);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, NULL), 0);
    /* the primary now stays silent: the secondary gives up after 1000 ms */
    pthread_join(t.tid, NULL);
    print_message("secondary: %s\n", t.msg);
    assert_int_equal(t.last_ret, COLO_E_PEER_LOST);
    assert_true(t.served == 1);
    assert_non_null(strstr(t.msg, "checkpoint 2 failed: tcp: nothing from the peer for 1000 ms "
                                  "while the secondary waited for checkpoint-request"));
    /* the primary's next checkpoint meets the closed connection, and says where */
    ret = colo_primary_checkpoint(p, &run, 1, "s", 1, NULL);
    print_message("primary: %s\n", colo_errormsg());
    assert_int_equal(ret, COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "checkpoint 2 failed: tcp: "));
    assert_non_null(strstr(colo_errormsg(), " while the primary "));
    colo_session_close(&p);
    colo_listener_delete(&t.l);
    side_fini(&pri);
    side_fini(&sec);
}

static int slow_load(void *opaque, const void *state, uint64_t len)
{
    usleep(2500 * 1000);
    return 0;
}

/* The primary's wait for vmstate-loaded times out: it names it. */
static void test_primary_timeout_names_vmstate_loaded(void **state)
{
    static const struct colo_secondary_ops slow = {.load_vmstate = slow_load};
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = 1};

    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_secondary_ops(sec.cfg, &slow, NULL), 0);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_config_set_timeout_ms(pri.cfg, 2000), 0);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, NULL), COLO_E_PEER_LOST);
    print_message("primary: %s\n", colo_errormsg());
    assert_non_null(strstr(colo_errormsg(), "checkpoint 1 failed: tcp: nothing from the peer "
                                            "for 2000 ms while the primary waited for "
                                            "vmstate-loaded"));
    colo_session_close(&p);
    stop_secondary(&t);
    side_fini(&pri);
    side_fini(&sec);
}

/* A primary gone between checkpoints: the secondary says at which stage. */
static void test_closed_connection_names_the_stage(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = 1};

    side_init(&sec, "127.0.0.1", 0, block_len);
    start_secondary(&t, &sec, 1);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, "s", 1, NULL), 0);
    colo_session_shutdown(p); /* the link ends without a goodbye */
    pthread_join(t.tid, NULL);
    print_message("secondary: %s\n", t.msg);
    assert_int_equal(t.last_ret, COLO_E_PEER_LOST);
    assert_non_null(strstr(t.msg, "checkpoint 2 failed: tcp: the peer closed the connection "
                                  "while the secondary waited for checkpoint-request"));
    colo_session_close(&p);
    colo_listener_delete(&t.l);
    side_fini(&pri);
    side_fini(&sec);
}

/* Cuts the link just before vmstate-loaded goes out: the checkpoint is applied. */
static int resume_then_cut(void *opaque)
{
    struct secondary_thread *t = opaque;

    colo_session_shutdown(t->s);
    return 0;
}

static void *serve_ack_lost(void *arg)
{
    struct secondary_thread *t = arg;
    const void *vm;
    uint64_t len;

    t->accept_ret = colo_listener_accept(t->l, &t->s);
    if (t->accept_ret)
        return NULL;
    t->last_ret = colo_secondary_serve(t->s, NULL);
    snprintf(t->msg, sizeof(t->msg), "%s", colo_errormsg());
    if (t->last_ret == 0) {
        t->served++;
        /* the checkpoint counts: sequence number and device state are its own */
        if (colo_session_seq(t->s) != 1 || colo_session_vmstate(t->s, &vm, &len) || len != 3 ||
            memcmp(vm, "one", 3))
            t->served = 100;
        /* and the session is over: the next call says why, at once */
        t->last_ret = colo_secondary_serve(t->s, NULL);
        snprintf(t->msg, sizeof(t->msg), "%s", colo_errormsg());
    }
    colo_session_close(&t->s);
    return NULL;
}

/*
 * The secondary applied a checkpoint (pages, state, resumed) but could not
 * send vmstate-loaded: for QEMU its guest is at the new checkpoint, so
 * serve returns 0 for it, and the next call returns the lost peer.
 */
static void test_applied_checkpoint_counts_when_its_ack_is_lost(void **state)
{
    static const struct colo_secondary_ops ops = {.resume_vm = resume_then_cut};
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run run = {.block = 0, .first_page = 2, .page_count = 1};

    memset(&t, 0, sizeof(t));
    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_secondary_ops(sec.cfg, &ops, &t), 0);
    assert_int_equal(colo_listener_new(sec.cfg, &t.l), 0);
    assert_int_equal(pthread_create(&t.tid, NULL, serve_ack_lost, &t), 0);
    side_init(&pri, "127.0.0.1", colo_listener_port(t.l), block_len);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    memset(pri.ram[0] + 2 * 4096, 0x3c, 4096);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, "one", 3, NULL), COLO_E_PEER_LOST);
    pthread_join(t.tid, NULL);
    print_message("secondary: served %" PRIu64 ", then %d: %s\n", t.served, t.last_ret, t.msg);
    assert_true(t.served == 1);
    assert_int_equal(t.last_ret, COLO_E_PEER_LOST);
    assert_non_null(strstr(t.msg, "checkpoint 1 was applied, but its vmstate-loaded could not "
                                  "be sent"));
    assert_int_equal(memcmp(sec.ram[0], pri.ram[0], block_len[0]), 0);
    colo_session_close(&p);
    colo_listener_delete(&t.l);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_connect_refused_and_accept_timeout(void **state)
{
    struct side sd;
    struct colo_listener *l = NULL;
    struct colo_session *s = NULL;
    uint16_t port;

    side_init(&sd, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_timeout_ms(sd.cfg, 200), 0);
    assert_int_equal(colo_listener_new(sd.cfg, &l), 0);
    port = colo_listener_port(l);
    assert_int_equal(colo_listener_accept(l, &s), -ETIMEDOUT);
    assert_non_null(strstr(colo_errormsg(), "timed out after 200 ms"));
    colo_listener_delete(&l);
    assert_null(l);

    /* nobody listens on that port any more */
    assert_int_equal(colo_config_set_address(sd.cfg, "127.0.0.1", port), 0);
    assert_int_equal(colo_primary_connect(sd.cfg, &s), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "connect to 127.0.0.1 port"));
    assert_int_equal(colo_config_set_address(sd.cfg, "no-such-host.invalid", port), 0);
    assert_int_equal(colo_primary_connect(sd.cfg, &s), -EHOSTUNREACH);
    assert_non_null(strstr(colo_errormsg(), "cannot resolve"));
    assert_null(s);
    side_fini(&sd);
}


/* ---- peers without the key, before authentication ---- */

static int raw_connect(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Reads exactly len bytes (0) or fails (-1) within 10 s. */
static int raw_read(int fd, uint8_t *buf, size_t len)
{
    while (len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 10000) != 1)
            return -1;
        n = recv(fd, buf, len, 0);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* True once the secondary has closed fd (whatever it sent before). */
static bool closed_by_peer(int fd)
{
    uint8_t buf[256];

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 10000) != 1)
            return false;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return true;
    }
}

/* A peer without the key that sends a hello that passes (the secondary's own
 * with the role turned to primary's) one byte every delay_ms. */
struct dripper {
    uint16_t port;
    int delay_ms;
    int fd;
    int sent;
    pthread_t tid;
};

static void *drip(void *arg)
{
    struct dripper *d = arg;
    uint8_t hello[40];

    if (raw_read(d->fd, hello, sizeof(hello)))
        return NULL;
    hello[7] = 0; /* role: primary */
    for (d->sent = 0; d->sent < (int)sizeof(hello); d->sent++) {
        usleep((useconds_t)d->delay_ms * 1000);
        if (send(d->fd, hello + d->sent, 1, MSG_NOSIGNAL) != 1)
            break;
    }
    return NULL;
}

static void start_dripper(struct dripper *d, uint16_t port, int delay_ms)
{
    d->port = port;
    d->delay_ms = delay_ms;
    d->sent = 0;
    d->fd = raw_connect(port);
    assert_int_equal(pthread_create(&d->tid, NULL, drip, d), 0);
}

/*
 * A secondary whose waits and handshake deadline are far away (20 s) and a
 * primary that gives up after 5 s: the primary is served only if the
 * unauthenticated connections before it do not hold the listener.
 */
static void hostile_sides(struct side *sec, struct side *pri, struct secondary_thread *t)
{
    side_init(sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_timeout_ms(sec->cfg, 20000), 0);
    assert_int_equal(colo_config_set_handshake_timeout_ms(sec->cfg, 20000), 0);
    assert_int_equal(colo_config_set_auth_key(sec->cfg, "key", 3), 0);
    start_secondary(t, sec, 1);
    side_init(pri, "127.0.0.1", colo_listener_port(t->l), block_len);
    assert_int_equal(colo_config_set_timeout_ms(pri->cfg, 5000), 0);
    assert_int_equal(colo_config_set_auth_key(pri->cfg, "key", 3), 0);
}

static void one_checkpoint_and_close(struct side *pri, struct secondary_thread *t)
{
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = 1};
    struct colo_session *p = NULL;

    assert_int_equal(colo_primary_connect(pri->cfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, &run, 1, NULL, 0, NULL), 0);
    colo_session_close(&p);
    stop_secondary(t);
    assert_int_equal(t->accept_ret, 0);
    assert_true(t->served == 1);
}

/* A connection that never says anything, then a real primary 0.2 s later:
 * served at once, the silent one closed once the primary won. */
static void test_silent_peer_does_not_delay_primary(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    int silent;

    hostile_sides(&sec, &pri, &t);
    silent = raw_connect(colo_listener_port(t.l));
    usleep(200000);
    one_checkpoint_and_close(&pri, &t);
    assert_true(closed_by_peer(silent));
    close(silent);
    side_fini(&pri);
    side_fini(&sec);
}

/* A hello dripped one byte every 100 ms (4 s for all of it): the primary is
 * served meanwhile, and the dripper is cut off before its hello is whole. */
static void test_dripping_peer_does_not_delay_primary(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct dripper d;

    hostile_sides(&sec, &pri, &t);
    start_dripper(&d, colo_listener_port(t.l), 100);
    usleep(200000);
    one_checkpoint_and_close(&pri, &t);
    pthread_join(d.tid, NULL);
    assert_true(d.sent < 40);
    close(d.fd);
    side_fini(&pri);
    side_fini(&sec);
}

/* More silent connections than the secondary runs handshakes at once, then
 * a primary: the oldest are cancelled for the newcomers, the primary served. */
static void test_many_silent_peers_do_not_delay_primary(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    int silent[12];

    hostile_sides(&sec, &pri, &t);
    for (int i = 0; i < 12; i++)
        silent[i] = raw_connect(colo_listener_port(t.l));
    usleep(200000);
    one_checkpoint_and_close(&pri, &t);
    for (int i = 0; i < 12; i++) {
        assert_true(closed_by_peer(silent[i]));
        close(silent[i]);
    }
    side_fini(&pri);
    side_fini(&sec);
}

/* The deadline covers the whole phase: a hello dripped faster than every
 * wait's timeout (20 s) still ends at the 300 ms handshake deadline. */
static void test_handshake_deadline_is_absolute(void **state)
{
    struct side sec;
    struct colo_listener *l = NULL;
    struct colo_session *s = NULL;
    struct dripper d;

    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_timeout_ms(sec.cfg, 20000), 0);
    assert_int_equal(colo_config_set_handshake_timeout_ms(sec.cfg, 300), 0);
    assert_int_equal(colo_listener_new(sec.cfg, &l), 0);
    start_dripper(&d, colo_listener_port(l), 100);
    assert_int_equal(colo_listener_accept(l, &s), -ETIMEDOUT);
    assert_non_null(strstr(colo_errormsg(), "not authenticated within the 300 ms handshake "
                                            "deadline"));
    assert_null(s);
    pthread_join(d.tid, NULL);
    assert_true(d.sent < 40);
    close(d.fd);
    colo_listener_delete(&l);
    side_fini(&sec);
}

/* The primary's side too: a "secondary" that accepts and says nothing. */
static void *accept_and_hold(void *arg)
{
    int *fds = arg;

    fds[1] = accept(fds[0], NULL, NULL);
    return NULL;
}

static void test_primary_handshake_deadline(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    struct colo_session *p = NULL;
    int fds[2] = {socket(AF_INET, SOCK_STREAM, 0), -1};
    struct side pri;
    pthread_t tid;

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fds[0], 1), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&a, &alen), 0);
    assert_int_equal(pthread_create(&tid, NULL, accept_and_hold, fds), 0);
    side_init(&pri, "127.0.0.1", ntohs(a.sin_port), block_len);
    assert_int_equal(colo_config_set_timeout_ms(pri.cfg, 20000), 0);
    assert_int_equal(colo_config_set_handshake_timeout_ms(pri.cfg, 300), 0);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), -ETIMEDOUT);
    assert_non_null(strstr(colo_errormsg(), "the secondary was not authenticated within the "
                                            "300 ms handshake deadline"));
    pthread_join(tid, NULL);
    close(fds[1]);
    close(fds[0]);
    side_fini(&pri);
}

/* One colo_listener_accept() in a thread of its own, its error message kept. */
struct acceptor {
    struct colo_listener *l;
    struct colo_session *s;
    int ret;
    char why[512];
    pthread_t tid;
};

static void *accept_once(void *arg)
{
    struct acceptor *a = arg;

    a->ret = colo_listener_accept(a->l, &a->s);
    snprintf(a->why, sizeof(a->why), "%s", colo_errormsg());
    return NULL;
}

static void start_acceptor(struct acceptor *a, struct colo_listener *l)
{
    a->l = l;
    a->s = NULL;
    assert_int_equal(pthread_create(&a->tid, NULL, accept_once, a), 0);
}

/* Echoing the secondary's own hello, or its challenge, gets a keyless peer
 * nowhere: the role in the hello and the nonce in the challenge are checked. */
static void test_echo_refused(void **state)
{
    struct colo_listener *l = NULL;
    struct acceptor a;
    struct side sec;
    uint8_t buf[40];
    int fd;

    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_auth_key(sec.cfg, "key", 3), 0);
    assert_int_equal(colo_listener_new(sec.cfg, &l), 0);

    start_acceptor(&a, l);
    fd = raw_connect(colo_listener_port(l));
    assert_int_equal(raw_read(fd, buf, sizeof(buf)), 0);
    assert_int_equal(send(fd, buf, sizeof(buf), MSG_NOSIGNAL), (ssize_t)sizeof(buf));
    pthread_join(a.tid, NULL);
    assert_int_equal(a.ret, COLO_E_HANDSHAKE);
    assert_non_null(strstr(a.why, "peer role 1: expected the primary"));
    close(fd);

    start_acceptor(&a, l);
    fd = raw_connect(colo_listener_port(l));
    assert_int_equal(raw_read(fd, buf, sizeof(buf)), 0);
    buf[7] = 0; /* a hello that passes: anyone can make one, the key decides */
    assert_int_equal(send(fd, buf, sizeof(buf), MSG_NOSIGNAL), (ssize_t)sizeof(buf));
    assert_int_equal(raw_read(fd, buf, 36), 0); /* AUTH and the secondary's nonce */
    assert_int_equal(send(fd, buf, 36, MSG_NOSIGNAL), 36);
    pthread_join(a.tid, NULL);
    assert_int_equal(a.ret, COLO_E_AUTH);
    assert_non_null(strstr(a.why, "echoed our challenge"));
    assert_null(a.s);
    close(fd);
    colo_listener_delete(&l);
    side_fini(&sec);
}

/* ---- authentication failures ---- */

/* Different keys, or a key on one side only: both sides refuse, each
 * saying the other does not hold the key. */
static void test_wrong_key(void **state)
{
    static const struct {
        const char *sec_key, *pri_key;
    } table[] = {
        {"the right key", "a wrong key"},
        {"the right key", NULL},
        {NULL, "a key"},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct colo_listener *l = NULL;
        struct colo_session *p = NULL;
        struct side sec, pri;
        struct acceptor a;

        side_init(&sec, "127.0.0.1", 0, block_len);
        if (table[i].sec_key)
            assert_int_equal(colo_config_set_auth_key(sec.cfg, table[i].sec_key,
                                                      strlen(table[i].sec_key)), 0);
        assert_int_equal(colo_listener_new(sec.cfg, &l), 0);
        start_acceptor(&a, l);
        side_init(&pri, "127.0.0.1", colo_listener_port(l), block_len);
        if (table[i].pri_key)
            assert_int_equal(colo_config_set_auth_key(pri.cfg, table[i].pri_key,
                                                      strlen(table[i].pri_key)), 0);
        assert_int_equal(colo_primary_connect(pri.cfg, &p), COLO_E_AUTH);
        /* version 2: the proofs cover the hellos too, and the message says so */
        assert_string_equal(colo_errormsg(),
                            "authentication failed: the secondary does not hold the same key "
                            "(or the hellos were changed on the way)");
        assert_null(p);
        pthread_join(a.tid, NULL);
        assert_int_equal(a.ret, COLO_E_AUTH);
        assert_string_equal(a.why,
                            "authentication failed: the primary does not hold the same key "
                            "(or the hellos were changed on the way)");
        assert_null(a.s);
        colo_listener_delete(&l);
        side_fini(&pri);
        side_fini(&sec);
    }
}

/*
 * A proxy between primary and secondary that forwards both ways until, in
 * direction cut (0: primary to secondary, 1: back), the AUTH challenge has
 * passed with its nonce and half of the proof after it; then that direction
 * ends (FIN after those bytes) and the connection is taken down. It finds
 * the challenge by its magic, so it needs to know nothing of the hello.
 */
struct proxy {
    int lfd;
    uint16_t port;   /* where the primary connects */
    uint16_t target; /* the secondary's port */
    int cut;
    pthread_t tid;
};

static bool send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Forwards what arrived on from; in the cut direction only up to the cut.
 * True once the cut is reached. */
static bool forward(int from, int to, bool cut_dir, uint32_t *window, long *left, bool *failed)
{
    uint8_t buf[4096];
    ssize_t n = recv(from, buf, sizeof(buf), 0);
    size_t k = 0;

    if (n <= 0)
        return *failed = true, false;
    if (!cut_dir)
        return *failed = !send_all(to, buf, (size_t)n), false;
    for (; k < (size_t)n && *left != 0; k++) {
        if (*left > 0) {
            (*left)--;
            continue;
        }
        *window = *window << 8 | buf[k];
        if (*window == 0x41555448u) /* "AUTH", then the nonce and half the proof */
            *left = 32 + 32 / 2;
    }
    *failed = !send_all(to, buf, k);
    return *left == 0;
}

static void *proxy_run(void *arg)
{
    struct proxy *px = arg;
    int fd[2] = {accept(px->lfd, NULL, NULL), raw_connect(px->target)};
    uint32_t window = 0;
    long left = -1; /* bytes still to forward after the magic; -1: not seen yet */
    bool failed = false;
    uint8_t buf[256];

    while (!failed) {
        struct pollfd p[2] = {{.fd = fd[0], .events = POLLIN}, {.fd = fd[1], .events = POLLIN}};

        if (poll(p, 2, 10000) <= 0)
            break;
        for (int d = 0; d < 2 && !failed; d++) {
            if (!p[d].revents ||
                !forward(fd[d], fd[1 - d], d == px->cut, &window, &left, &failed))
                continue;
            /* The receiver gets the half proof and then the end of the
             * stream; the sender is cut off. */
            shutdown(fd[1 - d], SHUT_WR);
            close(fd[d]);
            while (recv(fd[1 - d], buf, sizeof(buf), 0) > 0)
                ;
            close(fd[1 - d]);
            return NULL;
        }
    }
    close(fd[0]);
    close(fd[1]);
    return NULL;
}

/* A proof cut in half on its way, in either direction: the side that
 * receives it fails, saying how much came; the other side's outcome depends
 * on how far it got, so it is only cleaned up. */
static void test_truncated_proof(void **state)
{
    for (int cut = 0; cut < 2; cut++) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t alen = sizeof(sa);
        struct colo_listener *l = NULL;
        struct colo_session *p = NULL;
        struct side sec, pri;
        struct acceptor a;
        struct proxy px = {.cut = cut};
        int ret;

        side_init(&sec, "127.0.0.1", 0, block_len);
        assert_int_equal(colo_config_set_auth_key(sec.cfg, "key", 3), 0);
        assert_int_equal(colo_listener_new(sec.cfg, &l), 0);
        start_acceptor(&a, l);
        px.target = colo_listener_port(l);
        px.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(bind(px.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(px.lfd, 1), 0);
        assert_int_equal(getsockname(px.lfd, (struct sockaddr *)&sa, &alen), 0);
        px.port = ntohs(sa.sin_port);
        assert_int_equal(pthread_create(&px.tid, NULL, proxy_run, &px), 0);
        side_init(&pri, "127.0.0.1", px.port, block_len);
        assert_int_equal(colo_config_set_auth_key(pri.cfg, "key", 3), 0);
        ret = colo_primary_connect(pri.cfg, &p);
        if (cut == 1) {
            assert_int_equal(ret, COLO_E_PEER_LOST);
            assert_string_equal(colo_errormsg(), "tcp: the peer closed the connection while "
                                                 "waiting for the peer (16 of 32 bytes arrived)");
        } else {
            assert_int_not_equal(ret, 0);
        }
        assert_null(p);
        pthread_join(px.tid, NULL);
        close(px.lfd);
        pthread_join(a.tid, NULL);
        if (cut == 0) {
            assert_int_equal(a.ret, COLO_E_PEER_LOST);
            assert_string_equal(a.why, "tcp: the peer closed the connection while waiting for "
                                       "the peer (16 of 32 bytes arrived)");
            assert_null(a.s);
        }
        colo_session_close(&a.s);
        colo_listener_delete(&l);
        side_fini(&pri);
        side_fini(&sec);
    }
}

/* The public side of the cache check: the listener refuses a foreign file unless told. */
static void test_listener_refuses_a_foreign_cache_file(void **state)
{
    struct side sec;
    struct colo_listener *l = NULL;
    char path[64] = "/tmp/colo-foreign-cache.XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a cache", 11), 11);
    close(fd);
    side_init(&sec, "127.0.0.1", 0, block_len);
    assert_int_equal(colo_config_set_cache_path(sec.cfg, path), 0);
    assert_int_equal(colo_listener_new(sec.cfg, &l), COLO_E_CACHE);
    print_message("%s\n", colo_errormsg());
    assert_non_null(strstr(colo_errormsg(), path));
    assert_non_null(strstr(colo_errormsg(), "colo_config_set_cache_overwrite()"));
    assert_null(l);
    assert_int_equal(colo_config_set_cache_overwrite(sec.cfg, 1), 0);
    assert_int_equal(colo_listener_new(sec.cfg, &l), 0);
    colo_listener_delete(&l);
    /* the same process's cache: a later listener takes it without the option */
    assert_int_equal(colo_config_set_cache_overwrite(sec.cfg, 0), 0);
    assert_int_equal(colo_listener_new(sec.cfg, &l), 0);
    colo_listener_delete(&l);
    unlink(path);
    side_fini(&sec);
}

static void test_config_errors(void **state)
{
    struct colo_config *cfg;
    struct colo_listener *l = NULL;
    struct colo_session *s = NULL;
    static uint8_t ram[8192];

    assert_int_equal(colo_config_new(&cfg), 0);
    assert_int_equal(colo_config_set_transport(cfg, "carrier-pigeon"), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "expected tcp or rdma"));
    assert_int_equal(colo_config_set_timeout_ms(cfg, 0), COLO_E_CONFIG);
    assert_int_equal(colo_config_set_handshake_timeout_ms(cfg, 0), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "handshake timeout 0 ms: expected 10..600000 ms"));
    assert_int_equal(colo_config_set_handshake_timeout_ms(cfg, 600001), COLO_E_CONFIG);
    assert_int_equal(colo_config_set_handshake_timeout_ms(cfg, 10), 0);
    assert_int_equal(colo_config_set_page_size(cfg, 3000), COLO_E_CONFIG);
    assert_int_equal(colo_config_add_ram_block(cfg, "a", ram, 100), COLO_E_CONFIG);
    assert_int_equal(colo_config_set_max_vmstate(cfg, UINT64_MAX), COLO_E_CONFIG);
    /* no RAM block */
    assert_int_equal(colo_config_set_address(cfg, "127.0.0.1", 0), 0);
    assert_int_equal(colo_primary_connect(cfg, &s), COLO_E_CONFIG);
    assert_int_equal(colo_config_add_ram_block(cfg, "a", ram, sizeof(ram)), 0);
    assert_int_equal(colo_config_set_page_size(cfg, 8192), COLO_E_CONFIG);
    /* a cache that cannot be made fails before listening */
    assert_int_equal(colo_config_set_cache_path(cfg, "/nonexistent-dir/cache"), 0);
    assert_int_equal(colo_listener_new(cfg, &l), COLO_E_CACHE);
    assert_non_null(strstr(colo_errormsg(), "/nonexistent-dir/cache"));
    assert_null(l);
    /* rdma without an RDMA device (as on a build machine) fails clearly */
    assert_int_equal(colo_config_set_transport(cfg, "rdma"), 0);
    if (access("/dev/infiniband/rdma_cm", F_OK) != 0) {
        assert_int_not_equal(colo_primary_connect(cfg, &s), 0);
        assert_non_null(strstr(colo_errormsg(), "rdma"));
        assert_null(s);
    }
    colo_config_delete(&cfg);
    assert_null(cfg);
    colo_config_delete(&cfg);
    assert_string_equal(colo_strerror(COLO_E_PEER_LOST), "peer lost");
    assert_string_equal(colo_strerror(-ENOENT), "No such file or directory");
    assert_string_equal(colo_strerror(-20000), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_100_checkpoints_verified_ipv4),
        cmocka_unit_test(test_not_pipelined),
        cmocka_unit_test(test_background_push),
        cmocka_unit_test(test_background_push_with_a_version_1_peer),
        cmocka_unit_test(test_background_push_early_resume),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_early_resume),
        cmocka_unit_test(test_begin_commit),
        cmocka_unit_test(test_commit_retried_after_bad_list),
        cmocka_unit_test(test_shutdown_from_another_thread),
        cmocka_unit_test(test_layout_mismatch_both_sides),
        cmocka_unit_test(test_listener_takes_the_next_session),
        cmocka_unit_test(test_secondary_lost_mid_session),
        cmocka_unit_test(test_timeout_names_what_was_awaited),
        cmocka_unit_test(test_primary_timeout_names_vmstate_loaded),
        cmocka_unit_test(test_closed_connection_names_the_stage),
        cmocka_unit_test(test_applied_checkpoint_counts_when_its_ack_is_lost),
        cmocka_unit_test(test_connect_refused_and_accept_timeout),
        cmocka_unit_test(test_silent_peer_does_not_delay_primary),
        cmocka_unit_test(test_dripping_peer_does_not_delay_primary),
        cmocka_unit_test(test_many_silent_peers_do_not_delay_primary),
        cmocka_unit_test(test_handshake_deadline_is_absolute),
        cmocka_unit_test(test_primary_handshake_deadline),
        cmocka_unit_test(test_echo_refused),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_truncated_proof),
        cmocka_unit_test(test_listener_refuses_a_foreign_cache_file),
        cmocka_unit_test(test_config_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
