/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Integrity digests (protocol version 2) over tcp on loopback: a
 * man-in-the-middle proxy between primary and secondary flips one byte of a
 * page frame of checkpoint 2. Without digests the flipped byte reaches the
 * secondary's guest RAM (the threat, documented); with them checkpoint 2
 * fails with COLO_E_INTEGRITY and the guest RAM and device state stay at
 * checkpoint 1. Then the handshake's refusals and the digest's test vector
 * of docs/protocol.md.
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
#include <unistd.h>

#include <cmocka.h>

#include <colo-rdma/colo-rdma.h>
#include "proto/auth.h"
#include "proto/digest.h"

#define PAGE 4096
#define PAGES 16
#define RAM_LEN (PAGES * PAGE)
#define TARGET_PAGE 3
#define MARK 0xa5 /* checkpoint 2's target page: the proxy flips a byte inside it */
#define MARK_RUN 100

static const uint8_t key[] = "integrity-test-key-of-32-bytes!!";
static char cache_path[64];

struct side {
    uint8_t *ram;
    struct colo_config *cfg;
};

struct secondary_thread {
    struct colo_listener *l;
    pthread_t tid;
    int accept_ret;
    int last_ret;
    uint64_t served;
    char msg[512];
    uint8_t vmstate[64]; /* colo_session_vmstate() when the session ended */
    uint64_t vmstate_len;
};

struct proxy {
    int listen_fd;
    uint16_t port;
    uint16_t target_port;
    pthread_t tid;
    bool flip;          /* flip one byte after MARK_RUN bytes of MARK */
    uint64_t flipped_at; /* offset in the forward stream, 0: not yet */
};

static void side_init(struct side *sd, uint16_t port, bool integrity)
{
    sd->ram = calloc(1, RAM_LEN);
    assert_non_null(sd->ram);
    assert_int_equal(colo_config_new(&sd->cfg), 0);
    assert_int_equal(colo_config_set_address(sd->cfg, "127.0.0.1", port), 0);
    assert_int_equal(colo_config_set_timeout_ms(sd->cfg, 10000), 0);
    assert_int_equal(colo_config_add_ram_block(sd->cfg, "ram", sd->ram, RAM_LEN), 0);
    assert_int_equal(colo_config_set_cache_path(sd->cfg, cache_path), 0);
    assert_int_equal(colo_config_set_cache_overwrite(sd->cfg, 1), 0);
    assert_int_equal(colo_config_set_auth_key(sd->cfg, key, sizeof(key) - 1), 0);
    assert_int_equal(colo_config_set_integrity(sd->cfg, integrity), 0);
}

static void side_fini(struct side *sd)
{
    free(sd->ram);
    colo_config_delete(&sd->cfg);
}

/* Serves one session until it ends; keeps what the test checks after it. */
static void *serve(void *arg)
{
    struct secondary_thread *t = arg;
    struct colo_session *s;
    const void *vm;
    int ret = colo_listener_accept(t->l, &s);

    t->accept_ret = ret;
    if (ret) {
        snprintf(t->msg, sizeof(t->msg), "%s", colo_errormsg());
        return NULL;
    }
    while (!(ret = colo_secondary_serve(s, NULL)))
        t->served++;
    t->last_ret = ret;
    snprintf(t->msg, sizeof(t->msg), "%s", colo_errormsg());
    /* no cmocka assertion outside the test's own thread */
    if (!colo_session_vmstate(s, &vm, &t->vmstate_len) && t->vmstate_len <= sizeof(t->vmstate))
        memcpy(t->vmstate, vm, (size_t)t->vmstate_len);
    colo_session_close(&s);
    return NULL;
}

static void start_secondary(struct secondary_thread *t, struct side *sec)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(colo_listener_new(sec->cfg, &t->l), 0);
    assert_int_equal(pthread_create(&t->tid, NULL, serve, t), 0);
}

static void stop_secondary(struct secondary_thread *t)
{
    pthread_join(t->tid, NULL);
    colo_listener_delete(&t->l);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Forward-stream bytes: counts the run of MARK bytes and flips one inside. */
static void tamper(struct proxy *px, uint8_t *buf, size_t n, uint64_t *offset, size_t *run)
{
    for (size_t i = 0; i < n; i++, (*offset)++) {
        *run = buf[i] == MARK ? *run + 1 : 0;
        if (px->flip && !px->flipped_at && *run == MARK_RUN) {
            buf[i] ^= 0xff;
            px->flipped_at = *offset;
        }
    }
}

/* One connection relayed both ways until either end closes. */
static void *proxy_run(void *arg)
{
    struct proxy *px = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(px->target_port)};
    int pfd = accept(px->listen_fd, NULL, NULL);
    int sfd = socket(AF_INET, SOCK_STREAM, 0);
    uint64_t offset = 0;
    size_t run = 0;
    uint8_t *buf = malloc(65536);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!buf || pfd < 0 || sfd < 0 || connect(sfd, (struct sockaddr *)&sa, sizeof(sa)))
        goto out;
    for (;;) {
        struct pollfd fds[2] = {{.fd = pfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};

        if (poll(fds, 2, 20000) <= 0)
            break;
        if (fds[0].revents) {
            ssize_t n = recv(pfd, buf, 65536, 0);

            if (n <= 0)
                break;
            tamper(px, buf, (size_t)n, &offset, &run);
            if (write_all(sfd, buf, (size_t)n))
                break;
        }
        if (fds[1].revents) {
            ssize_t n = recv(sfd, buf, 65536, 0);

            if (n <= 0 || write_all(pfd, buf, (size_t)n))
                break;
        }
    }
out:
    free(buf);
    if (pfd >= 0)
        close(pfd);
    close(sfd);
    return NULL;
}

static void start_proxy(struct proxy *px, uint16_t target_port, bool flip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    memset(px, 0, sizeof(*px));
    px->target_port = target_port;
    px->flip = flip;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    px->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(px->listen_fd >= 0);
    assert_int_equal(bind(px->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(px->listen_fd, 1), 0);
    assert_int_equal(getsockname(px->listen_fd, (struct sockaddr *)&sa, &len), 0);
    px->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&px->tid, NULL, proxy_run, px), 0);
}

static void stop_proxy(struct proxy *px)
{
    pthread_join(px->tid, NULL);
    close(px->listen_fd);
}

static int setup(void **state)
{
    strcpy(cache_path, "/tmp/colo-integrity-test.XXXXXX");
    close(mkstemp(cache_path));
    return 0;
}

static int teardown(void **state)
{
    unlink(cache_path);
    return 0;
}

enum commit_mode { PIPELINED, BEGIN_COMMIT };

/* Checkpoint 2 with its target page through the proxy; returns its result. */
static int checkpoint_two(struct colo_session *p, struct side *pri, enum commit_mode mode)
{
    struct colo_dirty_run runs[] = {
        {.block = 0, .first_page = TARGET_PAGE, .page_count = 2},
        {.block = 0, .first_page = 9, .page_count = 1},
    };
    static const char state2[] = "state of checkpoint 2";
    int ret;

    memset(pri->ram + TARGET_PAGE * PAGE, MARK, PAGE);
    memset(pri->ram + (TARGET_PAGE + 1) * PAGE, 0x11, PAGE);
    memset(pri->ram + 9 * PAGE, 0x22, PAGE);
    if (mode == PIPELINED)
        return colo_primary_checkpoint(p, runs, 2, state2, sizeof(state2), NULL);
    ret = colo_primary_checkpoint_begin(p, NULL);
    return ret ? ret : colo_primary_checkpoint_commit(p, runs, 2, state2, sizeof(state2), NULL);
}

/*
 * Checkpoint 1 (every page) passes the proxy untouched; in checkpoint 2 the
 * proxy flips the 100th byte of the target page. Returns with the secondary
 * stopped; *pri_after1 is the primary's RAM of checkpoint 1.
 */
static void run_tampered(bool integrity, enum commit_mode mode, struct side *pri,
                         struct side *sec, struct secondary_thread *t, struct proxy *px,
                         uint8_t *pri_after1, int *ret2)
{
    static const char state1[] = "state of checkpoint 1";
    struct colo_dirty_run all = {.block = 0, .first_page = 0, .page_count = PAGES};
    struct colo_session *p;

    side_init(sec, 0, integrity);
    start_secondary(t, sec);
    start_proxy(px, colo_listener_port(t->l), true);
    side_init(pri, px->port, integrity);
    assert_int_equal(colo_config_set_pipelined(pri->cfg, mode == PIPELINED), 0);
    assert_int_equal(colo_primary_connect(pri->cfg, &p), 0);
    assert_int_equal(colo_session_protocol_version(p), 2);

    for (size_t i = 0; i < RAM_LEN; i++)
        pri->ram[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(colo_primary_checkpoint(p, &all, 1, state1, sizeof(state1), NULL), 0);
    memcpy(pri_after1, pri->ram, RAM_LEN);
    assert_int_equal(px->flipped_at, 0);

    *ret2 = checkpoint_two(p, pri, mode);
    assert_true(px->flipped_at != 0);
    colo_session_close(&p);
    stop_secondary(t);
    stop_proxy(px);
}

/* The threat: without digests the corrupted page reaches the guest. */
static void test_tampered_page_reaches_guest_without_integrity(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct proxy px;
    static uint8_t after1[RAM_LEN];
    size_t diffs = 0, at = 0;
    int ret2;

    run_tampered(false, PIPELINED, &pri, &sec, &t, &px, after1, &ret2);
    assert_int_equal(ret2, 0);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == 2);
    for (size_t i = 0; i < RAM_LEN; i++)
        if (sec.ram[i] != pri.ram[i]) {
            diffs++;
            at = i;
        }
    assert_int_equal(diffs, 1);
    assert_true(at / PAGE == TARGET_PAGE);
    assert_int_equal(sec.ram[at], MARK ^ 0xff);
    side_fini(&pri);
    side_fini(&sec);
}

static void expect_integrity_failure(enum commit_mode mode)
{
    static const char state1[] = "state of checkpoint 1";
    struct side pri, sec;
    struct secondary_thread t;
    struct proxy px;
    static uint8_t after1[RAM_LEN];
    int ret2;

    run_tampered(true, mode, &pri, &sec, &t, &px, after1, &ret2);
    assert_int_equal(ret2, COLO_E_PEER_LOST); /* the primary: the secondary closed */
    assert_int_equal(t.last_ret, COLO_E_INTEGRITY);
    assert_true(t.served == 1);
    if (!strstr(t.msg, "checkpoint 2") ||
        !strstr(t.msg, "the cache does not hold what the primary sent") ||
        !strstr(t.msg, "nothing was applied"))
        fail_msg("unexpected message: %s", t.msg);
    /* Nothing of checkpoint 2 applied: the guest holds checkpoint 1. */
    assert_memory_equal(sec.ram, after1, RAM_LEN);
    assert_true(t.vmstate_len == sizeof(state1));
    assert_memory_equal(t.vmstate, state1, sizeof(state1));
    side_fini(&pri);
    side_fini(&sec);
}

static void test_tampered_page_fails_pipelined_checkpoint(void **state)
{
    expect_integrity_failure(PIPELINED);
}

static void test_tampered_page_fails_committed_checkpoint(void **state)
{
    expect_integrity_failure(BEGIN_COMMIT);
}

/* Untampered, with a background push: every checkpoint passes its digest. */
static void test_checkpoints_pass_with_integrity(void **state)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p;
    struct colo_dirty_run bg = {.block = 0, .first_page = 5, .page_count = 3};
    struct colo_dirty_run run = {.block = 0, .first_page = 6, .page_count = 4};

    side_init(&sec, 0, true);
    start_secondary(&t, &sec);
    side_init(&pri, colo_listener_port(t.l), true);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), 0);
    for (int c = 1; c <= 5; c++) {
        memset(pri.ram + 5 * PAGE, c, 3 * PAGE);
        assert_int_equal(colo_primary_push_background(p, &bg, 1), 0);
        memset(pri.ram + 6 * PAGE, c + 100, 4 * PAGE); /* pushed page written again */
        assert_int_equal(colo_primary_checkpoint(p, &run, 1, &c, sizeof(c), NULL), 0);
        assert_memory_equal(sec.ram, pri.ram, RAM_LEN);
    }
    colo_session_close(&p);
    stop_secondary(&t);
    assert_int_equal(t.last_ret, COLO_E_SHUTDOWN);
    assert_true(t.served == 5);
    side_fini(&pri);
    side_fini(&sec);
}

/* A handshake that fails on both sides: the primary's error and message. */
static void expect_refused(bool pri_integrity, uint32_t pri_version, bool sec_integrity,
                           uint32_t sec_version, const char *pri_says, const char *sec_says)
{
    struct side pri, sec;
    struct secondary_thread t;
    struct colo_session *p = NULL;

    side_init(&sec, 0, sec_integrity);
    assert_int_equal(colo_config_set_protocol_version(sec.cfg, sec_version), 0);
    assert_int_equal(colo_config_set_timeout_ms(sec.cfg, 1000), 0);
    start_secondary(&t, &sec);
    side_init(&pri, colo_listener_port(t.l), pri_integrity);
    assert_int_equal(colo_config_set_protocol_version(pri.cfg, pri_version), 0);
    assert_int_equal(colo_primary_connect(pri.cfg, &p), COLO_E_HANDSHAKE);
    if (!strstr(colo_errormsg(), pri_says))
        fail_msg("primary: unexpected message: %s", colo_errormsg());
    assert_null(p);
    stop_secondary(&t);
    assert_int_not_equal(t.accept_ret, 0);
    if (sec_says && !strstr(t.msg, sec_says))
        fail_msg("secondary: unexpected message: %s", t.msg);
    side_fini(&pri);
    side_fini(&sec);
}

static void test_integrity_on_one_side_only(void **state)
{
    expect_refused(true, 2, false, 2,
                   "this side asks for them and the secondary does not (integrity off)",
                   NULL);
    expect_refused(false, 2, true, 2,
                   "the secondary asks for them and this side does not: enable "
                   "colo_config_set_integrity() on both sides or on neither", NULL);
}

static void test_integrity_against_version_1_peer(void **state)
{
    expect_refused(true, 2, false, 1, "it speaks protocol version 1 only", NULL);
    expect_refused(false, 1, true, 2, "the secondary asks for them and this side does not",
                   NULL);
}

static void test_integrity_needs_a_key(void **state)
{
    struct colo_config *cfg;
    struct colo_session *s = NULL;
    struct colo_listener *l = NULL;
    static uint8_t ram[PAGE];

    assert_int_equal(colo_config_new(&cfg), 0);
    assert_int_equal(colo_config_set_address(cfg, "127.0.0.1", 1), 0);
    assert_int_equal(colo_config_add_ram_block(cfg, "ram", ram, sizeof(ram)), 0);
    assert_int_equal(colo_config_set_cache_path(cfg, cache_path), 0);
    assert_int_equal(colo_config_set_integrity(cfg, 1), 0);
    assert_int_equal(colo_primary_connect(cfg, &s), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "integrity digests need an authentication key"));
    assert_null(s);
    assert_int_equal(colo_listener_new(cfg, &l), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "integrity digests need an authentication key"));
    assert_null(l);
    /* and version 2 */
    assert_int_equal(colo_config_set_auth_key(cfg, key, sizeof(key) - 1), 0);
    assert_int_equal(colo_config_set_protocol_version(cfg, 1), 0);
    assert_int_equal(colo_primary_connect(cfg, &s), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "integrity digests need protocol version 2"));
    colo_config_delete(&cfg);
    assert_string_equal(colo_strerror(COLO_E_INTEGRITY), "checkpoint integrity check failed");
}

static const uint8_t *vector_block(const void *opaque, uint32_t block)
{
    return opaque;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* docs/protocol.md section 21: the digest key and the checkpoint digest. */
static void test_digest_vector(void **state)
{
    uint8_t pn[COLO_AUTH_NONCE], sn[COLO_AUTH_NONCE], dkey[COLO_AUTH_PROOF];
    uint8_t digest[COLO_DIGEST_SIZE], again[COLO_DIGEST_SIZE];
    static uint8_t ram[4 * PAGE];
    struct colo_ram_layout layout;
    struct colo_dirty_run run = {.block = 0, .first_page = 1, .page_count = 1};
    struct colo_digest_input in = {
        .key = dkey, .seq = 1, .runs = &run, .nruns = 1, .layout = &layout,
        .block = vector_block, .opaque = ram, .vmstate = "hello", .vmstate_len = 5,
    };
    char text[2 * COLO_DIGEST_SIZE + 1];

    for (int i = 0; i < COLO_AUTH_NONCE; i++) {
        pn[i] = (uint8_t)i;
        sn[i] = (uint8_t)(0x80 + i);
    }
    colo_auth_digest_key((const uint8_t *)"secret", 6, pn, sn, dkey);
    hex(dkey, sizeof(dkey), text);
    assert_string_equal(text, "40eb35393391c8b48681584a436694782186affcfdb5f012f18bd4d1c784060a");
    assert_int_equal(colo_ram_layout_init(&layout, PAGE), 0);
    assert_int_equal(colo_ram_layout_add(&layout, "ram", ram, sizeof(ram)), 0);
    for (int i = 0; i < PAGE; i++)
        ram[PAGE + i] = (uint8_t)i;
    colo_digest_checkpoint(&in, digest);
    hex(digest, sizeof(digest), text);
    assert_string_equal(text, "e7c4916c5d474513feb6c3e959320beb3c7ca537213c6915898a856f9b3fde90");
    /* any byte of the page changes it */
    ram[PAGE + 4095] ^= 1;
    colo_digest_checkpoint(&in, again);
    assert_false(colo_digest_equal(digest, again));
    ram[PAGE + 4095] ^= 1;
    colo_digest_checkpoint(&in, again);
    assert_true(colo_digest_equal(digest, again));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_vector),
        cmocka_unit_test(test_integrity_needs_a_key),
        cmocka_unit_test(test_tampered_page_reaches_guest_without_integrity),
        cmocka_unit_test(test_tampered_page_fails_pipelined_checkpoint),
        cmocka_unit_test(test_tampered_page_fails_committed_checkpoint),
        cmocka_unit_test(test_checkpoints_pass_with_integrity),
        cmocka_unit_test(test_integrity_on_one_side_only),
        cmocka_unit_test(test_integrity_against_version_1_peer),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
