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
 *       without and with integrity digests);
 *       probe-garbage (a third party sends malformed datagrams to the
 *       secondary's liveness probe during a good session whose only sign of
 *       life between its two checkpoints is that probe)
 *
 * CASE+bg (the cases from order to stopped): the same with background push
 * on; before it misbehaves the primary WRITEs every page into the cache
 * between checkpoints, as a background pass does, and none may reach the
 * secondary's guest RAM.
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

#include <arpa/inet.h>
#include <cmocka.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>

#include "colo-rdma/colo-rdma.h"
#include "core/byteorder.h"
#include "proto/auth.h"
#include "proto/digest.h"
#include "proto/dirty_wire.h"
#include "proto/handshake.h"
#include "proto/message.h"
#include "transport/rdma.h"
#include "transport/rdma_conn.h"

#define RAM_LEN (1u << 20)
#define PAGES (RAM_LEN / 4096)
#define KEY "hostile-test-key"
#define MAX_VMSTATE 4096
#define HEARTBEAT_MS 250

static const char *addr, *which;
static bool background; /* CASE+bg: pages pushed ahead of the misbehaviour */
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
    if (background) {
        /* a background pass: pages of checkpoint 1 in the cache, no message */
        struct colo_dirty_run all = {.block = 0, .first_page = 0, .page_count = PAGES};

        memset(pri_ram, 0xbb, RAM_LEN);
        if (push_run(fwd, 1, &all))
            _exit(14);
    }

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

static struct colo_config *config_hb(uint8_t *ram, uint16_t port, uint32_t heartbeat_ms)
{
    struct colo_config *cfg;

    assert_int_equal(colo_config_new(&cfg), 0);
    assert_int_equal(colo_config_set_transport(cfg, "rdma"), 0);
    assert_int_equal(colo_config_set_address(cfg, addr, port), 0);
    assert_int_equal(colo_config_set_timeout_ms(cfg, 8000), 0);
    assert_int_equal(colo_config_set_heartbeat_ms(cfg, heartbeat_ms), 0);
    assert_int_equal(colo_config_add_ram_block(cfg, "pc.ram", ram, RAM_LEN), 0);
    assert_int_equal(colo_config_set_cache_path(cfg, cache_path), 0);
    assert_int_equal(colo_config_set_max_vmstate(cfg, MAX_VMSTATE), 0);
    assert_int_equal(colo_config_set_auth_key(cfg, KEY, strlen(KEY)), 0);
    if (!strcmp(which, "preauth-deadline"))
        assert_int_equal(colo_config_set_handshake_timeout_ms(cfg, 2000), 0);
    return cfg;
}

static struct colo_config *config(uint8_t *ram, uint16_t port)
{
    return config_hb(ram, port, HEARTBEAT_MS);
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

/* Forks child(fds[0]), which never returns, before any verbs use in this
 * process; the parent keeps fds[1] to send it the port. */
static pid_t fork_with_pipe(int fds[2], void (*child)(int fd))
{
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[1]);
        child(fds[0]);
    }
    close(fds[0]);
    return pid;
}

/* The hostile primary; the secondary's guest RAM starts as 0x11. */
static pid_t fork_child(int fds[2])
{
    pid_t pid = fork_with_pipe(fds, hostile_child);

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
        /* "nothing from the peer for" or, when the 6 bytes came after the
         * read began (as with +bg), "the peer sent too little for" */
        {"truncated-silent", COLO_E_PEER_LOST,
         "while the secondary waited for vmstate-send (6 of 12 bytes arrived"},
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
    print_message("%s%s: the secondary reported %s after %" PRIu64 " ms: %s\n", which,
                  background ? "+bg" : "", colo_strerror(ret), now_ms() - t0, colo_errormsg());
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

/*
 * probe-garbage (issue 14): a third party sends malformed datagrams to the
 * secondary's liveness probe (its UD QPN, with the public Q_Key) right after
 * checkpoint 1 of a good, authenticated session. The good primary's interval
 * is long, the secondary's short: the primary sends an RC heartbeat only
 * after PROBE_PRIMARY_MS of silence and idles PROBE_IDLE_MS before
 * checkpoint 2, both longer than the secondary's deadline, so only the
 * primary's probes (one every PROBE_PRIMARY_MS / 4) keep the session alive
 * until checkpoint 2. The secondary must serve it and count the garbage as
 * refused.
 */
#define PROBE_PRIMARY_MS 16000
#define PROBE_SECONDARY_MS 3000
#define PROBE_IDLE_MS 20000
#define PROBE_PERIOD_MS (PROBE_PRIMARY_MS / CRDMA_TICKS_PER_INTERVAL)
#define PROBE_DEADLINE_MS (PROBE_SECONDARY_MS * CRDMA_HEARTBEAT_MISSES)
_Static_assert(PROBE_PRIMARY_MS > PROBE_DEADLINE_MS && PROBE_IDLE_MS > PROBE_DEADLINE_MS,
               "without its probes the primary is silent for longer than the deadline");
_Static_assert(3 * PROBE_PERIOD_MS <= PROBE_DEADLINE_MS,
               "three probe periods fit in the secondary's deadline");

/* What the third party sends, in this order; every one must be refused. The
 * MTU-sized one goes last: where it does not fit a receive slot, it puts the
 * QP in error, and what came after it before the re-arm would be lost. */
enum { GARBAGE_SHORT, GARBAGE_MAGIC, GARBAGE_COOKIE, GARBAGE_IMM, GARBAGE_MTU, GARBAGE_N };
static const char *const garbage_what[GARBAGE_N] = {
    [GARBAGE_SHORT] = "1 byte",
    [GARBAGE_MAGIC] = "16 bytes with a wrong magic",
    [GARBAGE_COOKIE] = "16 bytes with the magic CLVP and a wrong cookie",
    [GARBAGE_IMM] = "a probe-sized SEND with immediate data",
    [GARBAGE_MTU] = "an MTU-sized datagram",
};
#define GARBAGE_COOKIE_VALUE 0x0badc0deu

/* The third party's account, sent back to the test through a pipe. */
struct attack_report {
    int err;                 /* 0, or the step that failed */
    uint32_t qpn;            /* its own UD QPN */
    uint32_t gid_index;      /* of the RoCE v2 GID ::ffff:COLO_RDMA_ADDR */
    uint32_t mtu;            /* bytes in the MTU-sized datagram */
    uint32_t len[GARBAGE_N]; /* bytes of each datagram */
    int status[GARBAGE_N];   /* its send completion's status; -1: none */
};

/* A device whose port 1 holds gid as a RoCE v2 GID, opened; its index in *index. */
static struct ibv_context *open_roce_v2(const union ibv_gid *gid, uint32_t *index)
{
    struct ibv_device **list = ibv_get_device_list(NULL);
    struct ibv_context *ctx;

    for (int d = 0; list && list[d]; d++) {
        struct ibv_port_attr port;

        ctx = ibv_open_device(list[d]);
        if (!ctx)
            continue;
        if (!ibv_query_port(ctx, 1, &port))
            for (int i = 0; i < port.gid_tbl_len; i++) {
                struct ibv_gid_entry e;

                if (!ibv_query_gid_ex(ctx, 1, (uint32_t)i, &e, 0) &&
                    e.gid_type == IBV_GID_TYPE_ROCE_V2 && !memcmp(&e.gid, gid, sizeof(*gid))) {
                    *index = (uint32_t)i;
                    ibv_free_device_list(list);
                    return ctx;
                }
            }
        ibv_close_device(ctx);
    }
    if (list)
        ibv_free_device_list(list);
    return NULL;
}

/* Fills buf with datagram g; its length. */
static uint32_t garbage(uint8_t *buf, int g, uint32_t mtu)
{
    memset(buf, 0xa5, mtu);
    colo_put_be32(buf, g == GARBAGE_MAGIC ? 0x58585858u : CRDMA_PROBE_MAGIC);
    colo_put_be32(buf + 4, GARBAGE_COOKIE_VALUE);
    colo_put_be64(buf + 8, 0);
    return g == GARBAGE_SHORT ? 1 : g == GARBAGE_MTU ? mtu : CRDMA_PROBE_WIRE;
}

/*
 * The third party, with plain verbs on the same device: its own PD, CQ and
 * UD QP (any Q_Key of its own), an address handle aimed at the secondary's
 * address, and the garbage sent one datagram at a time to target, each
 * waited for. 0, or the step that failed; the process's end frees the rest.
 */
static int attack(uint32_t target, struct attack_report *r)
{
    static uint8_t buf[4096]; /* the largest RoCE MTU */
    struct ibv_qp_init_attr init = {.qp_type = IBV_QPT_UD, .sq_sig_all = 1,
                                    .cap = {.max_send_wr = 1, .max_recv_wr = 1,
                                            .max_send_sge = 1, .max_recv_sge = 1}};
    struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = 0x1234};
    struct ibv_ah_attr ah_attr = {.is_global = 1, .port_num = 1, .grh.hop_limit = 64};
    struct ibv_port_attr port;
    struct ibv_context *ctx;
    struct in_addr v4;
    struct ibv_pd *pd;
    struct ibv_mr *mr;
    struct ibv_qp *qp;
    struct ibv_ah *ah;

    /* the IPv4-mapped GID ::ffff:a.b.c.d */
    if (inet_pton(AF_INET, addr, &v4) != 1)
        return 1;
    ah_attr.grh.dgid.raw[10] = ah_attr.grh.dgid.raw[11] = 0xff;
    memcpy(ah_attr.grh.dgid.raw + 12, &v4, 4);
    ctx = open_roce_v2(&ah_attr.grh.dgid, &r->gid_index);
    if (!ctx)
        return 2;
    if (ibv_query_port(ctx, 1, &port))
        return 3;
    r->mtu = 128u << port.active_mtu; /* IBV_MTU_256 is 1 */
    if (r->mtu > sizeof(buf))
        r->mtu = sizeof(buf);
    pd = ibv_alloc_pd(ctx);
    if (!pd)
        return 4;
    init.send_cq = init.recv_cq = ibv_create_cq(ctx, 4, NULL, NULL, 0);
    mr = ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE);
    if (!init.send_cq || !mr)
        return 5;
    qp = ibv_create_qp(pd, &init);
    if (!qp)
        return 6;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
        return 7;
    a = (struct ibv_qp_attr){.qp_state = IBV_QPS_RTR};
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
        return 8;
    a = (struct ibv_qp_attr){.qp_state = IBV_QPS_RTS, .sq_psn = 1};
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
        return 9;
    ah_attr.grh.sgid_index = (uint8_t)r->gid_index;
    ah = ibv_create_ah(pd, &ah_attr);
    if (!ah)
        return 10;
    r->qpn = qp->qp_num;
    for (int g = 0; g < GARBAGE_N; g++) {
        struct ibv_sge sge = {.addr = (uintptr_t)buf, .lkey = mr->lkey};
        struct ibv_send_wr wr = {
            .sg_list = &sge, .num_sge = 1,
            .opcode = g == GARBAGE_IMM ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND,
            .imm_data = htonl(1),
            .wr.ud = {.ah = ah, .remote_qpn = target, .remote_qkey = CRDMA_PROBE_QKEY},
        }, *bad;
        struct ibv_wc wc;
        uint64_t t0 = now_ms();
        int n;

        sge.length = r->len[g] = garbage(buf, g, r->mtu);
        if (ibv_post_send(qp, &wr, &bad))
            return 11;
        while ((n = ibv_poll_cq(init.send_cq, 1, &wc)) == 0 && now_ms() - t0 < 5000)
            usleep(1000);
        if (n != 1)
            return 12;
        r->status[g] = wc.status;
    }
    return 0;
}

/* The third party's process: the target QPN arrives on in_fd, the report leaves on out_fd. */
static void attacker_child(int in_fd, int out_fd)
{
    struct attack_report r = {0};
    uint32_t target;

    for (int g = 0; g < GARBAGE_N; g++)
        r.status[g] = -1;
    if (read(in_fd, &target, sizeof(target)) != sizeof(target))
        _exit(30);
    r.err = attack(target, &r);
    _exit(write(out_fd, &r, sizeof(r)) == sizeof(r) ? 0 : 31);
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* The good primary of probe-garbage, in a child: two checkpoints with a long idle between. */
static void probe_primary_child(int port_fd)
{
    struct colo_dirty_run all = {.block = 0, .first_page = 0, .page_count = PAGES};
    struct colo_dirty_run some = {.block = 0, .first_page = INJECT_FIRST,
                                  .page_count = INJECT_PAGES};
    struct colo_session *p;
    struct colo_config *cfg;
    uint16_t port;

    if (read(port_fd, &port, sizeof(port)) != sizeof(port))
        _exit(10);
    cfg = config_hb(pri_ram, port, PROBE_PRIMARY_MS);
    fill_checkpoint(pri_ram, 1);
    if (colo_primary_connect(cfg, &p))
        _exit(12);
    if (colo_primary_checkpoint(p, &all, 1, "p1", 2, NULL))
        _exit(13);
    sleep_ms(PROBE_IDLE_MS);
    fill_checkpoint(pri_ram, 2);
    if (colo_primary_checkpoint(p, &some, 1, "p2", 2, NULL))
        _exit(14);
    colo_session_close(&p);
    colo_config_delete(&cfg);
    _exit(0);
}

/* What the secondary's log said about its probe (calls are serialised). */
struct probe_log {
    pthread_mutex_t lock;
    bool have_qpn;
    uint32_t qpn, peer_qpn;
    char summary[512]; /* the last "connection closed" line */
};

static void probe_log_fn(void *opaque, int level, const char *msg)
{
    struct probe_log *pl = opaque;
    const char *p = strstr(msg, "this side's UD QPN ");
    uint32_t mine, peer;

    (void)level;
    pthread_mutex_lock(&pl->lock);
    if (p && sscanf(p, "this side's UD QPN %" SCNu32 ", the peer's %" SCNu32, &mine, &peer) == 2) {
        pl->qpn = mine;
        pl->peer_qpn = peer;
        pl->have_qpn = true;
    }
    if (strstr(msg, "connection closed") && strstr(msg, "liveness probe"))
        snprintf(pl->summary, sizeof(pl->summary), "%s", msg);
    pthread_mutex_unlock(&pl->lock);
    if (strstr(msg, "liveness probe"))
        fprintf(stderr, "probe-garbage: secondary's log: %s\n", msg);
}

static void test_probe_garbage(void **state)
{
    static struct probe_log pl = {.lock = PTHREAD_MUTEX_INITIALIZER};
    static uint8_t want[RAM_LEN];
    struct attack_report r;
    struct colo_listener *l;
    struct colo_session *s;
    struct colo_config *cfg;
    int fds[2], to_attacker[2], from_attacker[2], status, ret;
    uint64_t sent, received, refused, rearms, t1, gap;
    pid_t pid, attacker;
    char probe_state[16];
    const char *sum;
    uint32_t target, peer;
    uint16_t port;

    /* both children before any verbs use in this process */
    pid = fork_with_pipe(fds, probe_primary_child);
    assert_int_equal(pipe(to_attacker), 0);
    assert_int_equal(pipe(from_attacker), 0);
    attacker = fork();
    assert_true(attacker >= 0);
    if (attacker == 0) {
        close(fds[1]);
        close(to_attacker[1]);
        close(from_attacker[0]);
        attacker_child(to_attacker[0], from_attacker[1]);
    }
    close(to_attacker[0]);
    close(from_attacker[1]);
    memset(sec_ram, 0x11, RAM_LEN);
    assert_int_equal(colo_set_log(probe_log_fn, &pl, COLO_LOG_DEBUG), 0);

    cfg = config_hb(sec_ram, 0, PROBE_SECONDARY_MS);
    assert_int_equal(colo_listener_new(cfg, &l), 0);
    port = colo_listener_port(l);
    assert_int_equal(write(fds[1], &port, sizeof(port)), sizeof(port));
    assert_int_equal(colo_listener_accept(l, &s), 0);
    assert_int_equal(colo_secondary_serve(s, NULL), 0);
    t1 = now_ms();
    fill_checkpoint(want, 1);
    assert_memory_equal(sec_ram, want, RAM_LEN);

    pthread_mutex_lock(&pl.lock);
    assert_true(pl.have_qpn && pl.qpn && pl.peer_qpn);
    target = pl.qpn;
    peer = pl.peer_qpn;
    pthread_mutex_unlock(&pl.lock);
    print_message("probe-garbage: the secondary's probe listens on UD QPN %" PRIu32
                  ", the primary's on %" PRIu32 "; the primary's interval %d ms (a probe "
                  "every %d ms, an RC heartbeat after %d ms of silence, %d ms idle before "
                  "checkpoint 2), "
                  "the secondary's %d ms (deadline %d ms)\n",
                  target, peer, PROBE_PRIMARY_MS, PROBE_PERIOD_MS, PROBE_PRIMARY_MS,
                  PROBE_IDLE_MS, PROBE_SECONDARY_MS, PROBE_DEADLINE_MS);

    /* checkpoint 1 is done: the garbage, from a third party */
    assert_int_equal(write(to_attacker[1], &target, sizeof(target)), sizeof(target));
    assert_int_equal(read(from_attacker[0], &r, sizeof(r)), sizeof(r));
    assert_int_equal(waitpid(attacker, &status, 0), attacker);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (r.err)
        fail_msg("probe-garbage: the third party could not send (step %d)", r.err);
    assert_int_not_equal(r.qpn, peer); /* a third party, not the connection's peer */
    for (int g = 0; g < GARBAGE_N; g++) {
        print_message("probe-garbage: the third party (UD QPN %" PRIu32 ", GID index %" PRIu32
                      ") sent %s (%" PRIu32 " bytes, %" PRIu32 " with the GRH, a receive "
                      "slot holds %d): %s\n",
                      r.qpn, r.gid_index, garbage_what[g], r.len[g], r.len[g] + CRDMA_PROBE_GRH,
                      CRDMA_PROBE_SLOT, ibv_wc_status_str((enum ibv_wc_status)r.status[g]));
        assert_int_equal(r.status[g], IBV_WC_SUCCESS);
    }

    /* the probe alone keeps the primary alive until checkpoint 2 */
    ret = colo_secondary_serve(s, NULL);
    gap = now_ms() - t1;
    print_message("probe-garbage: checkpoint 2 %s %" PRIu64 " ms after checkpoint 1%s%s\n",
                  ret ? "failed" : "served", gap, ret ? ": " : "", ret ? colo_errormsg() : "");
    assert_int_equal(ret, 0);
    assert_true(gap >= PROBE_DEADLINE_MS);
    fill_checkpoint(want, 2);
    assert_memory_equal(sec_ram, want, RAM_LEN);
    assert_int_equal(colo_secondary_serve(s, NULL), COLO_E_SHUTDOWN);
    colo_session_close(&s);
    assert_int_equal(colo_set_log(NULL, NULL, COLO_LOG_ERROR), 0);

    /* what the secondary's probe made of it */
    sum = strstr(pl.summary, "liveness probe ");
    assert_non_null(sum);
    assert_int_equal(sscanf(sum, "liveness probe %15[^,], %" SCNu64 " sent, %" SCNu64
                            " received, %" SCNu64 " refused, %" SCNu64 " re-arms",
                            probe_state, &sent, &received, &refused, &rearms), 5);
    print_message("probe-garbage: the secondary's probe, %s: %" PRIu64 " valid probes received, "
                  "%" PRIu64 " refused (%d datagrams to refuse), %" PRIu64 " re-arms, %" PRIu64
                  " sent\n", probe_state, received, refused, GARBAGE_N, rearms, sent);
    assert_string_equal(probe_state, "on");
    assert_true(refused >= GARBAGE_N);
    /* an MTU-sized datagram that does not fit a slot puts the QP in error */
    if (r.len[GARBAGE_MTU] + CRDMA_PROBE_GRH > CRDMA_PROBE_SLOT)
        assert_true(rearms >= 1);
    /* a probe every PROBE_PERIOD_MS over at least the idle gap */
    assert_true(received >= gap / PROBE_PERIOD_MS / 2);

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status))
        fail_msg("probe-garbage: the primary exited %d", WEXITSTATUS(status));
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    close(fds[1]);
    close(to_attacker[1]);
    close(from_attacker[0]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hostile)};
    const struct CMUnitTest silent[] = {cmocka_unit_test(test_preauth_silent)};
    const struct CMUnitTest inject[] = {cmocka_unit_test(test_inject)};
    const struct CMUnitTest probe[] = {cmocka_unit_test(test_probe_garbage)};
    int ret;

    addr = getenv("COLO_RDMA_ADDR");
    if (argc < 2 || !addr) {
        fprintf(stderr, "usage: COLO_RDMA_ADDR=A %s CASE (run it through tests/softroce/vm-run)\n",
                argv[0]);
        return 2;
    }
    which = argv[1];
    if (strlen(which) > 3 && !strcmp(which + strlen(which) - 3, "+bg")) {
        static char name[64];

        snprintf(name, sizeof(name), "%.*s", (int)(strlen(which) - 3), which);
        which = name;
        background = true;
    }
    snprintf(cache_path, sizeof(cache_path), "/tmp/colo-hostile-cache.%ld", (long)getpid());
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(which, "preauth-silent"))
        ret = cmocka_run_group_tests(silent, NULL, NULL);
    else if (!strncmp(which, "inject", 6))
        ret = cmocka_run_group_tests(inject, NULL, NULL);
    else if (!strcmp(which, "probe-garbage"))
        ret = cmocka_run_group_tests(probe, NULL, NULL);
    else
        ret = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(cache_path);
    return ret;
}
