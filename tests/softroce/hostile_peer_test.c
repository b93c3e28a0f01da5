/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hostile or broken primary against a real secondary over RDMA. The
 * primary is a child process built from the library's internals, so it can
 * speak the handshake and then misbehave; the secondary uses the public API.
 * For each case the secondary must end that session with a clear error,
 * leave its guest RAM and cache untouched, and then serve a good primary.
 *
 *   hostile_peer_test CASE     (run through vm-run, which sets COLO_RDMA_ADDR)
 *
 * CASE: version | no-key | order | seq | seq-repeat | flood | vmstate-size |
 *       dirty-range | dirty-overlap | dirty-overflow | garbage |
 *       truncated-silent | stopped |
 *       before authentication: preauth-deadline (connected, then nothing but
 *       heartbeats), layout-refused (the refusal names only the primary's
 *       own values), abandoned (a connect request given up at once),
 *       preauth-silent (a real primary while a keyless one holds on);
 *       on the data path: inject, inject-integrity (protocol version 2, a
 *       garbage WRITE into a listed cache page after checkpoint 2's pages,
 *       without and with integrity digests)
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>

#include "colo-rdma/colo-rdma.h"
#include "proto/auth.h"
#include "proto/digest.h"
#include "proto/dirty_wire.h"
#include "proto/handshake.h"
#include "proto/message.h"
#include "transport/rdma.h"

#define RAM_LEN (1u << 20)
#define PAGES (RAM_LEN / 4096)
#define KEY "hostile-test-key"
#define MAX_VMSTATE 4096
#define HEARTBEAT_MS 250

static const char *addr, *which;
static int child_ready_fd = -1; /* preauth-silent: the child says it is connected */
static char cache_path[128];
static uint8_t pri_ram[RAM_LEN], sec_ram[RAM_LEN];

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_msg(struct colo_stream *f, uint32_t cmd, uint64_t value)
{
    uint8_t wire[COLO_MSG_WIRE_SIZE];

    colo_msg_encode(&(struct colo_msg){.cmd = cmd, .value = value}, wire);
    colo_stream_put_buffer(f, wire, sizeof(wire));
}

static void put_runs(struct colo_stream *f, const struct colo_dirty_run *runs, size_t n)
{
    uint8_t wire[4 * COLO_DIRTY_RUN_WIRE_SIZE];

    colo_dirty_list_encode(runs, n, wire);
    colo_stream_put_buffer(f, wire, n * COLO_DIRTY_RUN_WIRE_SIZE);
}

static uint8_t peer_hello_wire[COLO_HELLO_WIRE_SIZE]; /* the secondary's, for auth v2 */

static int hello_check(void *arg, const void *peer, size_t len)
{
    if (len == sizeof(peer_hello_wire))
        memcpy(peer_hello_wire, peer, len);
    return colo_hello_check_wire(arg, peer, len);
}

/* What the library's primary makes of a rejection (lib/backend_rdma.c). */
static int hello_refused(void *arg, const void *data, size_t len)
{
    return colo_hello_refusal_check(arg, data, len);
}

/* Waits for one event on ec, up to 10 s: its type, or -1. */
static int raw_event(struct rdma_event_channel *ec)
{
    struct rdma_cm_event *ev;
    int type;

    if (rdma_get_cm_event(ec, &ev))
        return -1;
    type = ev->event;
    rdma_ack_cm_event(ev);
    return type;
}

/*
 * A connect request with a good hello, given up at once: the id and its QP
 * are destroyed right after rdma_connect, as a primary whose connect timed
 * out does. Plain librdmacm, so nothing of the library waits for an answer.
 */
static int abandoned_connect(uint16_t port, const uint8_t hello_wire[COLO_HELLO_WIRE_SIZE])
{
    struct rdma_event_channel *ec = rdma_create_event_channel();
    struct ibv_qp_init_attr attr = {.cap = {.max_send_wr = 4, .max_recv_wr = 4,
                                            .max_send_sge = 1, .max_recv_sge = 1},
                                    .qp_type = IBV_QPT_RC};
    uint8_t priv[COLO_HELLO_WIRE_SIZE + 8] = {0};
    struct rdma_conn_param param = {.private_data = priv, .private_data_len = sizeof(priv),
                                    .retry_count = 7};
    struct addrinfo *res;
    struct rdma_cm_id *id;
    char service[8];

    snprintf(service, sizeof(service), "%u", port);
    memcpy(priv, hello_wire, COLO_HELLO_WIRE_SIZE);
    if (!ec || rdma_create_id(ec, &id, NULL, RDMA_PS_TCP) ||
        getaddrinfo(addr, service, NULL, &res) ||
        rdma_resolve_addr(id, NULL, res->ai_addr, 2000) ||
        raw_event(ec) != RDMA_CM_EVENT_ADDR_RESOLVED || rdma_resolve_route(id, 2000) ||
        raw_event(ec) != RDMA_CM_EVENT_ROUTE_RESOLVED)
        return 20;
    attr.send_cq = attr.recv_cq = ibv_create_cq(id->verbs, 8, NULL, NULL, 0);
    if (!attr.send_cq || rdma_create_qp(id, NULL, &attr) || rdma_connect(id, &param))
        return 21;
    rdma_destroy_qp(id);
    rdma_destroy_id(id);
    ibv_destroy_cq(attr.send_cq);
    rdma_destroy_event_channel(ec);
    freeaddrinfo(res);
    return 0;
}

/* The hostile primary: connects properly, then sends what its case says. */
/* The inject cases: checkpoint 1 fills every page, checkpoint 2 these. */
#define INJECT_FIRST 10
#define INJECT_PAGES 4
#define INJECT_PAGE 11 /* listed in checkpoint 2: gets the garbage WRITE */
#define INJECT_GARBAGE 0xee

static void fill_checkpoint(uint8_t *ram, uint64_t seq)
{
    if (seq == 1)
        for (size_t i = 0; i < RAM_LEN; i++)
            ram[i] = (uint8_t)(i * 7 + 3);
    else
        memset(ram + INJECT_FIRST * 4096, 0x5c, INJECT_PAGES * 4096);
}

static const uint8_t *layout_block(const void *opaque, uint32_t block)
{
    const struct colo_ram_layout *layout = opaque;

    return layout->blocks[block].host;
}

/* Pushes one run through the RAM hooks (RDMA WRITE into the cache). */
static int push_run(struct colo_stream *fwd, uint64_t seq, const struct colo_dirty_run *run)
{
    int ret = colo_stream_before_ram_iterate(fwd, seq);

    if (!ret)
        ret = colo_stream_save_page(fwd, run);
    if (!ret)
        ret = colo_stream_after_ram_iterate(fwd, seq);
    return ret ? ret : colo_stream_flush_ram(fwd);
}

/*
 * One checkpoint as the library's primary sends it (version 2, digest when
 * dkey is set). With inject, after the checkpoint's own WRITEs and before
 * its state, a second WRITE puts garbage into one listed cache page (what an
 * on-path attacker who saw the rkey and address could do); the primary's RAM
 * then holds the real page again, and its digest covers the real page.
 * 0 once vmstate-loaded arrived.
 */
static int inject_checkpoint(struct colo_stream *fwd, struct colo_stream *rp,
                             const struct colo_ram_layout *layout, uint64_t seq, bool inject,
                             const uint8_t *dkey)
{
    static uint8_t saved[4096];
    struct colo_dirty_run run = seq == 1
        ? (struct colo_dirty_run){.block = 0, .first_page = 0, .page_count = PAGES}
        : (struct colo_dirty_run){.block = 0, .first_page = INJECT_FIRST,
                                  .page_count = INJECT_PAGES};
    struct colo_dirty_run bad = {.block = 0, .first_page = INJECT_PAGE, .page_count = 1};
    const char *state = seq == 1 ? "s1" : "s2";
    uint8_t msg[COLO_MSG_WIRE_SIZE], digest[COLO_DIGEST_SIZE];
    int ret;

    put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, seq);
    ret = colo_stream_fflush(fwd);
    if (!ret)
        ret = colo_stream_get_buffer(rp, msg, sizeof(msg)); /* checkpoint-reply */
    fill_checkpoint(pri_ram, seq);
    if (!ret)
        ret = push_run(fwd, seq, &run);
    if (!ret && inject) {
        memcpy(saved, pri_ram + INJECT_PAGE * 4096, sizeof(saved));
        memset(pri_ram + INJECT_PAGE * 4096, INJECT_GARBAGE, sizeof(saved));
        ret = push_run(fwd, seq, &bad);
        memcpy(pri_ram + INJECT_PAGE * 4096, saved, sizeof(saved));
    }
    if (ret)
        return ret;
    put_msg(fwd, COLO_CMD_VMSTATE_SEND, seq);
    put_msg(fwd, COLO_CMD_DIRTY_LIST, 1);
    put_runs(fwd, &run, 1);
    put_msg(fwd, COLO_CMD_VMSTATE_SIZE, 2);
    colo_stream_put_buffer(fwd, state, 2);
    if (dkey) {
        struct colo_digest_input in = {
            .key = dkey, .seq = seq, .runs = &run, .nruns = 1, .layout = layout,
            .block = layout_block, .opaque = layout, .vmstate = state, .vmstate_len = 2,
        };

        colo_digest_checkpoint(&in, digest);
        put_msg(fwd, COLO_CMD_DIGEST, COLO_DIGEST_SIZE);
        colo_stream_put_buffer(fwd, digest, sizeof(digest));
    }
    ret = colo_stream_fflush(fwd);
    if (!ret)
        ret = colo_stream_get_buffer(rp, msg, sizeof(msg)); /* vmstate-received */
    if (!ret)
        ret = colo_stream_get_buffer(rp, msg, sizeof(msg)); /* vmstate-loaded */
    return ret;
}

/* The inject cases' primary: exits 0 when the secondary did what the case expects. */
static void inject_child(struct colo_stream *fwd, const struct colo_ram_layout *layout,
                         const uint8_t *hello_wire)
{
    struct colo_stream *rp;
    bool integrity = !strcmp(which, "inject-integrity");
    struct colo_auth_transcript t = {.primary_hello = hello_wire,
                                     .secondary_hello = peer_hello_wire};
    uint8_t dkey[COLO_AUTH_PROOF], ready[COLO_MSG_WIRE_SIZE];
    int ret;

    if (colo_stream_open_return_path(fwd, &rp) ||
        colo_auth_run(fwd, rp, COLO_ROLE_PRIMARY, (const uint8_t *)KEY, strlen(KEY), &t, dkey) ||
        colo_stream_register_ram(rp) || colo_stream_get_buffer(rp, ready, sizeof(ready)))
        _exit(13);
    if (inject_checkpoint(fwd, rp, layout, 1, false, integrity ? dkey : NULL))
        _exit(14);
    ret = inject_checkpoint(fwd, rp, layout, 2, true, integrity ? dkey : NULL);
    if (integrity) /* refused: the secondary closed before vmstate-received */
        _exit(ret ? 0 : 15);
    if (ret)
        _exit(16);
    put_msg(fwd, COLO_CMD_GOODBYE, 2);
    colo_stream_fflush(fwd);
    while (!colo_stream_get_buffer(rp, ready, 1))
        ;
    colo_stream_delete(&rp);
    colo_stream_delete(&fwd);
    _exit(0);
}

static void hostile_child(int port_fd)
{
    struct colo_rdma_options opt = {.timeout_ms = 20000, .heartbeat_ms = HEARTBEAT_MS};
    struct colo_ram_layout layout;
    struct colo_stream *fwd, *rp;
    struct colo_hello hello;
    uint8_t hello_wire[COLO_HELLO_WIRE_SIZE];
    struct colo_rdma_hello mine = {.data = hello_wire, .len = sizeof(hello_wire),
                                   .check = hello_check, .arg = &hello,
                                   .refused = hello_refused};
    uint8_t ready[COLO_MSG_WIRE_SIZE];
    uint16_t port;
    int ret;

    if (read(port_fd, &port, sizeof(port)) != sizeof(port))
        _exit(10);
    colo_ram_layout_init(&layout, 4096);
    colo_ram_layout_add(&layout, "pc.ram", pri_ram,
                        strcmp(which, "layout-refused") ? RAM_LEN : RAM_LEN / 2);
    colo_hello_from_layout(&hello, COLO_ROLE_PRIMARY,
                           strncmp(which, "inject", 6)
                               ? 0
                               : colo_hello_caps(2, !strcmp(which, "inject-integrity")),
                           &layout);
    if (!strcmp(which, "version"))
        hello.version = COLO_PROTO_VERSION + 1;
    colo_hello_encode(&hello, hello_wire);
    if (!strcmp(which, "abandoned"))
        _exit(abandoned_connect(port, hello_wire));
    ret = colo_rdma_connect(addr, port, &opt, &mine, &fwd);
    if (!strcmp(which, "version")) {
        /* refused at connect, with the secondary's own reason */
        _exit(ret == COLO_E_HANDSHAKE && strstr(colo_errormsg(), "protocol version") ? 0 : 11);
    }
    if (!strcmp(which, "layout-refused")) {
        /* told that its layout was refused, and nothing of the secondary's */
        fprintf(stderr, "layout-refused: the primary was told: %s\n", colo_errormsg());
        _exit(ret == COLO_E_HANDSHAKE && strstr(colo_errormsg(), "RAM layout") &&
                      !strstr(colo_errormsg(), "peer has")
                  ? 0
                  : 11);
    }
    if (ret)
        _exit(12);
    colo_stream_set_ram(fwd, &layout, NULL);
    if (!strncmp(which, "inject", 6))
        inject_child(fwd, &layout, hello_wire);
    if (!strncmp(which, "preauth-", 8)) {
        /* connected, and then nothing but the heartbeat thread's messages */
        if (colo_stream_open_return_path(fwd, &rp) ||
            (child_ready_fd >= 0 && write(child_ready_fd, "c", 1) != 1))
            _exit(13);
        while (!colo_stream_get_buffer(rp, ready, 1))
            ;
        _exit(0);
    }
    if (!strcmp(which, "no-key")) {
        /* straight to a checkpoint, no authentication: no rkey may come back */
        if (colo_stream_open_return_path(fwd, &rp))
            _exit(13);
        put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, 1);
        colo_stream_fflush(fwd);
        while (!colo_stream_get_buffer(rp, ready, 1))
            ;
        colo_stream_delete(&rp);
        colo_stream_delete(&fwd);
        _exit(0);
    }
    if (colo_stream_open_return_path(fwd, &rp) ||
        colo_auth_run(fwd, rp, COLO_ROLE_PRIMARY, (const uint8_t *)KEY, strlen(KEY), NULL, NULL) ||
        colo_stream_register_ram(rp) || colo_stream_get_buffer(rp, ready, sizeof(ready)))
        _exit(13);

    if (!strcmp(which, "order")) {
        put_msg(fwd, COLO_CMD_VMSTATE_SIZE, 5);
    } else if (!strcmp(which, "seq")) {
        put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, 2);
    } else if (!strcmp(which, "seq-repeat")) {
        put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, 0); /* the last completed one again */
    } else if (!strcmp(which, "flood")) {
        /* requests as fast as the credits let them go, never reading a reply */
        for (int i = 0; i < 100000 && !colo_stream_error(fwd); i++) {
            put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, 1);
            if (i % 64 == 63)
                colo_stream_fflush(fwd);
        }
    } else if (!strcmp(which, "vmstate-size") || !strncmp(which, "dirty", 5)) {
        struct colo_dirty_run runs[2] = {{.block = 0, .first_page = PAGES - 1, .page_count = 2},
                                         {.block = 0, .first_page = 0, .page_count = 1}};

        put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, 1);
        colo_stream_fflush(fwd);
        colo_stream_get_buffer(rp, ready, sizeof(ready)); /* checkpoint-reply */
        put_msg(fwd, COLO_CMD_VMSTATE_SEND, 1);
        if (!strcmp(which, "dirty-range")) {
            put_msg(fwd, COLO_CMD_DIRTY_LIST, 1); /* last page + 1 is outside */
            put_runs(fwd, runs, 1);
        } else if (!strcmp(which, "dirty-overflow")) {
            /* first page + count wraps around 2^64 */
            runs[0] = (struct colo_dirty_run){.block = 0, .first_page = UINT64_MAX - 1,
                                              .page_count = 5};
            put_msg(fwd, COLO_CMD_DIRTY_LIST, 1);
            put_runs(fwd, runs, 1);
        } else if (!strcmp(which, "dirty-overlap")) {
            runs[0] = (struct colo_dirty_run){.block = 0, .first_page = 0, .page_count = 4};
            runs[1] = (struct colo_dirty_run){.block = 0, .first_page = 2, .page_count = 1};
            put_msg(fwd, COLO_CMD_DIRTY_LIST, 2);
            put_runs(fwd, runs, 2);
        } else {
            put_msg(fwd, COLO_CMD_DIRTY_LIST, 0);
        }
        put_msg(fwd, COLO_CMD_VMSTATE_SIZE, MAX_VMSTATE + 1);
    } else if (!strcmp(which, "garbage")) {
        /* a flood: a megabyte of noise, within the credits the secondary grants */
        static uint8_t noise[1 << 20];

        for (size_t i = 0; i < sizeof(noise); i++)
            noise[i] = (uint8_t)(i * 2654435761u >> 13);
        colo_stream_put_buffer(fwd, noise, sizeof(noise));
    } else if (!strcmp(which, "truncated-silent") || !strcmp(which, "stopped")) {
        put_msg(fwd, COLO_CMD_CHECKPOINT_REQUEST, 1);
        colo_stream_fflush(fwd);
        colo_stream_get_buffer(rp, ready, sizeof(ready)); /* checkpoint-reply */
        colo_stream_put_buffer(fwd, "\0\0\0\x04\0\0", 6);  /* half a vmstate-send */
        colo_stream_fflush(fwd);
        if (!strcmp(which, "stopped"))
            raise(SIGSTOP); /* silent from here on: no heartbeat either */
    }
    colo_stream_fflush(fwd);
    /* Stay until the secondary hangs up, so the error is its own. */
    while (!colo_stream_get_buffer(rp, ready, 1))
        ;
    colo_stream_delete(&rp);
    colo_stream_delete(&fwd);
    _exit(0);
}

static struct colo_config *config(uint8_t *ram, uint16_t port)
{
    struct colo_config *cfg;

    assert_int_equal(colo_config_new(&cfg), 0);
    assert_int_equal(colo_config_set_transport(cfg, "rdma"), 0);
    assert_int_equal(colo_config_set_address(cfg, addr, port), 0);
    assert_int_equal(colo_config_set_timeout_ms(cfg, 8000), 0);
    assert_int_equal(colo_config_set_heartbeat_ms(cfg, HEARTBEAT_MS), 0);
    assert_int_equal(colo_config_add_ram_block(cfg, "pc.ram", ram, RAM_LEN), 0);
    assert_int_equal(colo_config_set_cache_path(cfg, cache_path), 0);
    assert_int_equal(colo_config_set_max_vmstate(cfg, MAX_VMSTATE), 0);
    assert_int_equal(colo_config_set_auth_key(cfg, KEY, strlen(KEY)), 0);
    if (!strcmp(which, "preauth-deadline"))
        assert_int_equal(colo_config_set_handshake_timeout_ms(cfg, 2000), 0);
    return cfg;
}

static void *good_primary(void *arg)
{
    uint16_t port = *(uint16_t *)arg;
    struct colo_config *cfg = config(pri_ram, port);
    struct colo_dirty_run run = {.block = 0, .first_page = 0, .page_count = PAGES};
    struct colo_session *p;
    intptr_t ret;

    memset(pri_ram, 0x77, RAM_LEN);
    ret = colo_primary_connect(cfg, &p);
    if (!ret)
        ret = colo_primary_checkpoint(p, &run, 1, "ok", 2, NULL);
    colo_session_close(&p);
    colo_config_delete(&cfg);
    return (void *)ret;
}

/* Forks the hostile primary, before any verbs use in this process; it reads
 * the port from fds[1]. The secondary's guest RAM starts as 0x11. */
static pid_t fork_child(int fds[2])
{
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[1]);
        hostile_child(fds[0]);
    }
    close(fds[0]);
    memset(sec_ram, 0x11, RAM_LEN);
    return pid;
}

static void test_hostile(void **state)
{
    static const struct {
        const char *name;
        int err;
        const char *why;
    } cases[] = {
        {"version", COLO_E_HANDSHAKE, "protocol version"},
        {"no-key", COLO_E_AUTH, "expected the AUTH challenge"},
        {"order", COLO_E_PROTOCOL, "unexpected vmstate-size"},
        {"seq", COLO_E_PROTOCOL, "expected sequence number 1, received 2"},
        {"seq-repeat", COLO_E_PROTOCOL, "checkpoint-request: value 0 out of range"},
        {"flood", COLO_E_PROTOCOL, "checkpoint-request"},
        {"vmstate-size", COLO_E_PROTOCOL, "expected at most 4096"},
        {"dirty-range", COLO_E_DIRTY_LIST, "outside block pc.ram"},
        {"dirty-overlap", COLO_E_DIRTY_LIST, "overlaps"},
        {"dirty-overflow", COLO_E_DIRTY_LIST, "outside block pc.ram"},
        {"garbage", COLO_E_PROTOCOL, "unknown COLO command"},
        {"truncated-silent", COLO_E_PEER_LOST, "nothing from the peer for"},
        {"stopped", COLO_E_PEER_LOST, "heartbeat deadline"},
        /* heartbeats are no sign of life before authentication */
        {"preauth-deadline", -ETIMEDOUT, "not authenticated within the 2000 ms handshake"},
        {"layout-refused", COLO_E_HANDSHAKE, "RAM layout differs"},
        /* given up by its primary: nothing to report, the wait goes on */
        {"abandoned", -ETIMEDOUT, "waiting for a primary to connect"},
    };
    const void *cache;
    uint64_t len, t0;
    struct colo_listener *l;
    struct colo_session *s;
    struct colo_config *cfg;
    int fds[2], ret = 0, status, c = -1;
    uint16_t port;
    pthread_t tid;
    void *good;
    pid_t pid;

    for (int i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++)
        if (!strcmp(which, cases[i].name))
            c = i;
    if (c < 0)
        fail_msg("unknown case %s", which);
    pid = fork_child(fds);
    cfg = config(sec_ram, 0);
    assert_int_equal(colo_listener_new(cfg, &l), 0);
    assert_int_equal(colo_session_cache_block(NULL, 0, &cache, &len), -EINVAL);
    port = colo_listener_port(l);
    assert_int_equal(write(fds[1], &port, sizeof(port)), sizeof(port));
    t0 = now_ms();
    ret = colo_listener_accept(l, &s);
    if (!ret) {
        while ((ret = colo_secondary_serve(s, NULL)) == 0)
            ;
        colo_session_close(&s);
    }
    print_message("%s: the secondary reported %s after %" PRIu64 " ms: %s\n", which,
                  colo_strerror(ret), now_ms() - t0, colo_errormsg());
    assert_int_equal(ret, cases[c].err);
    assert_non_null(strstr(colo_errormsg(), cases[c].why));
    if (!strcmp(which, "stopped"))
        kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (strcmp(which, "stopped"))
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* nothing of the hostile session reached the guest RAM */
    for (size_t i = 0; i < RAM_LEN; i++)
        if (sec_ram[i] != 0x11)
            fail_msg("guest RAM byte %zu was written by a hostile primary", i);
    /* the listener serves the next, good primary */
    assert_int_equal(pthread_create(&tid, NULL, good_primary, &port), 0);
    assert_int_equal(colo_listener_accept(l, &s), 0);
    assert_int_equal(colo_secondary_serve(s, NULL), 0);
    assert_int_equal(colo_secondary_serve(s, NULL), COLO_E_SHUTDOWN);
    colo_session_close(&s);
    pthread_join(tid, &good);
    assert_int_equal((intptr_t)good, 0);
    assert_int_equal(memcmp(sec_ram, pri_ram, RAM_LEN), 0);
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    close(fds[1]);
}

struct acceptor {
    struct colo_listener *l;
    struct colo_session *s;
    int ret;
    char why[512];
    uint64_t done_ms;
};

static void *accept_once(void *arg)
{
    struct acceptor *a = arg;

    a->ret = colo_listener_accept(a->l, &a->s);
    a->done_ms = now_ms();
    snprintf(a->why, sizeof(a->why), "%s", colo_errormsg());
    return NULL;
}

/*
 * preauth-silent: a keyless peer connects (good hello) and then sends
 * nothing but its heartbeats; 0.5 s later a good primary connects. It is
 * served at once, while the keyless one is still connected (before: the
 * listener was held by it for every wait of the handshake).
 */
static void test_preauth_silent(void **state)
{
    struct acceptor a = {0};
    struct colo_config *cfg;
    int fds[2], ready[2], status;
    pthread_t acc, tid;
    uint64_t t0;
    uint16_t port;
    char c;
    void *good;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[1]);
        close(ready[0]);
        child_ready_fd = ready[1];
        hostile_child(fds[0]);
    }
    close(fds[0]);
    close(ready[1]);
    memset(sec_ram, 0x11, RAM_LEN);
    cfg = config(sec_ram, 0);
    assert_int_equal(colo_listener_new(cfg, &a.l), 0);
    port = colo_listener_port(a.l);
    assert_int_equal(pthread_create(&acc, NULL, accept_once, &a), 0);
    assert_int_equal(write(fds[1], &port, sizeof(port)), sizeof(port));
    assert_int_equal(read(ready[0], &c, 1), 1); /* the keyless one is connected */
    usleep(500000);
    t0 = now_ms();
    assert_int_equal(pthread_create(&tid, NULL, good_primary, &port), 0);
    pthread_join(acc, NULL);
    print_message("preauth-silent: accept returned %s %" PRIu64 " ms after the good primary "
                  "started (a keyless peer connected 0.5 s before it): %s\n",
                  colo_strerror(a.ret), a.done_ms - t0, a.ret ? a.why : "");
    assert_int_equal(a.ret, 0);
    assert_int_equal(colo_secondary_serve(a.s, NULL), 0);
    assert_int_equal(colo_secondary_serve(a.s, NULL), COLO_E_SHUTDOWN);
    colo_session_close(&a.s);
    pthread_join(tid, &good);
    assert_int_equal((intptr_t)good, 0);
    assert_int_equal(memcmp(sec_ram, pri_ram, RAM_LEN), 0);
    /* the keyless one was closed once the good one won */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    colo_listener_delete(&a.l);
    colo_config_delete(&cfg);
    close(fds[1]);
    close(ready[0]);
}

/*
 * inject, inject-integrity: checkpoint 1 is good; into checkpoint 2 the
 * primary writes garbage into a listed cache page after its own WRITEs.
 * Without digests the garbage reaches the guest RAM unnoticed (the threat);
 * with them checkpoint 2 fails with COLO_E_INTEGRITY before anything is
 * applied, and the guest RAM and device state stay at checkpoint 1.
 */
static void test_inject(void **state)
{
    bool integrity = !strcmp(which, "inject-integrity");
    static uint8_t want[RAM_LEN];
    struct colo_listener *l;
    struct colo_session *s;
    struct colo_config *cfg;
    int fds[2], ret, status;
    const void *vm;
    uint64_t vmlen;
    uint16_t port;
    pid_t pid;

    pid = fork_child(fds);
    cfg = config(sec_ram, 0);
    assert_int_equal(colo_config_set_integrity(cfg, integrity), 0);
    assert_int_equal(colo_listener_new(cfg, &l), 0);
    port = colo_listener_port(l);
    assert_int_equal(write(fds[1], &port, sizeof(port)), sizeof(port));
    assert_int_equal(colo_listener_accept(l, &s), 0);
    assert_int_equal(colo_session_protocol_version(s), 2);
    assert_int_equal(colo_secondary_serve(s, NULL), 0);
    fill_checkpoint(want, 1);
    assert_memory_equal(sec_ram, want, RAM_LEN);
    ret = colo_secondary_serve(s, NULL);
    print_message("%s: checkpoint 2 with a garbage WRITE into cache page %d: %s%s%s\n", which,
                  INJECT_PAGE, ret ? colo_strerror(ret) : "completed",
                  ret ? ": " : "", ret ? colo_errormsg() : "");
    if (integrity) {
        assert_int_equal(ret, COLO_E_INTEGRITY);
        assert_non_null(strstr(colo_errormsg(), "checkpoint 2"));
        assert_non_null(strstr(colo_errormsg(), "the cache does not hold what the primary sent"));
        /* nothing of checkpoint 2 applied */
        assert_memory_equal(sec_ram, want, RAM_LEN);
        assert_int_equal(colo_session_vmstate(s, &vm, &vmlen), 0);
        assert_true(vmlen == 2 && !memcmp(vm, "s1", 2));
    } else {
        /* the threat: completed, and the garbage is in the guest */
        assert_int_equal(ret, 0);
        fill_checkpoint(want, 2);
        memset(want + INJECT_PAGE * 4096, INJECT_GARBAGE, 4096);
        assert_memory_equal(sec_ram, want, RAM_LEN);
        assert_int_equal(colo_secondary_serve(s, NULL), COLO_E_SHUTDOWN);
    }
    colo_session_close(&s);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status))
        fail_msg("%s: the primary exited %d", which, WEXITSTATUS(status));
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    close(fds[1]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hostile)};
    const struct CMUnitTest silent[] = {cmocka_unit_test(test_preauth_silent)};
    const struct CMUnitTest inject[] = {cmocka_unit_test(test_inject)};
    int ret;

    addr = getenv("COLO_RDMA_ADDR");
    if (argc < 2 || !addr) {
        fprintf(stderr, "usage: COLO_RDMA_ADDR=A %s CASE (run it through tests/softroce/vm-run)\n",
                argv[0]);
        return 2;
    }
    which = argv[1];
    snprintf(cache_path, sizeof(cache_path), "/tmp/colo-hostile-cache.%ld", (long)getpid());
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(which, "preauth-silent"))
        ret = cmocka_run_group_tests(silent, NULL, NULL);
    else if (!strncmp(which, "inject", 6))
        ret = cmocka_run_group_tests(inject, NULL, NULL);
    else
        ret = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(cache_path);
    return ret;
}
