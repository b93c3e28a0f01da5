/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primary and secondary protocol drivers against a scripted peer (an
 * in-memory stream): the bytes they send, and how they end a session on a
 * peer that misbehaves, without touching the guest RAM.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "mock_stream.h"
#include "proto/dirty_wire.h"
#include "proto/primary.h"
#include "proto/secondary.h"

#define PAGES 8

static uint8_t guest[PAGES * 4096];
static uint8_t source[PAGES * 4096];
static char cache_path[64];
static int calls[3];

struct fixture {
    struct colo_ram_layout layout;
    struct colo_ram_cache *cache;
    struct mock_conn *conn;
    struct colo_stream *in, *out;
    struct colo_secondary sec;
};

static int stop_vm(void *opaque)
{
    calls[0]++;
    return 0;
}

static int load_vmstate(void *opaque, const void *state, uint64_t len)
{
    calls[1]++;
    return len == 5 && !memcmp(state, "state", 5) ? 0 : -EINVAL;
}

static int resume_vm(void *opaque)
{
    calls[2]++;
    return 0;
}

static const struct colo_secondary_ops ops = {stop_vm, load_vmstate, resume_vm};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    int fd;

    strcpy(cache_path, "/tmp/colo-drivers-test.XXXXXX");
    fd = mkstemp(cache_path);
    if (!fx || fd < 0)
        return -1;
    close(fd);
    memset(guest, 0, sizeof(guest));
    memset(calls, 0, sizeof(calls));
    if (colo_ram_layout_init(&fx->layout, 4096) ||
        colo_ram_layout_add(&fx->layout, "pc.ram", guest, sizeof(guest)) ||
        colo_ram_cache_open(cache_path, &fx->layout, 0, &fx->cache))
        return -1;
    memset(colo_ram_cache_block(fx->cache, 0), 0x5a, sizeof(guest));
    fx->conn = mock_conn_new();
    fx->in = mock_stream_new(fx->conn);
    colo_stream_set_ram(fx->in, &fx->layout, fx->cache);
    if (colo_stream_open_return_path(fx->in, &fx->out))
        return -1;
    colo_secondary_init(&fx->sec, fx->in, fx->out, &fx->layout, fx->cache, 100, 16, &ops, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    colo_secondary_fini(&fx->sec);
    colo_stream_delete(&fx->out);
    colo_stream_delete(&fx->in);
    mock_conn_unref(fx->conn);
    colo_ram_cache_close(&fx->cache);
    unlink(cache_path);
    free(fx);
    return 0;
}

static void put_runs(struct mock_conn *c, const struct colo_dirty_run *runs, size_t n)
{
    uint8_t wire[16 * COLO_DIRTY_RUN_WIRE_SIZE];

    if (!runs)
        return;
    colo_dirty_list_encode(runs, n, wire);
    mock_conn_put(c, wire, n * COLO_DIRTY_RUN_WIRE_SIZE);
}

/* Asserts the secondary wrote exactly these commands (value = seq except ready). */
static void expect_sent(struct mock_conn *c, const uint32_t *cmds, size_t n)
{
    struct colo_msg m;

    assert_int_equal(c->out_len, n * COLO_MSG_WIRE_SIZE);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(colo_msg_decode(c->out + i * COLO_MSG_WIRE_SIZE, COLO_MSG_WIRE_SIZE, &m),
                         0);
        assert_int_equal(m.cmd, cmds[i]);
    }
}

static void script_checkpoint(struct mock_conn *c, uint64_t seq, const struct colo_dirty_run *runs,
                              size_t n, uint64_t size, const char *state)
{
    mock_conn_put_msg(c, COLO_CMD_CHECKPOINT_REQUEST, seq);
    mock_conn_put_msg(c, COLO_CMD_VMSTATE_SEND, seq);
    mock_conn_put_msg(c, COLO_CMD_DIRTY_LIST, n);
    put_runs(c, runs, n);
    mock_conn_put_msg(c, COLO_CMD_VMSTATE_SIZE, size);
    if (state)
        mock_conn_put(c, state, strlen(state));
}

static void assert_guest_untouched(void)
{
    for (size_t i = 0; i < sizeof(guest); i++)
        if (guest[i])
            fail_msg("guest RAM byte %zu was written", i);
}

static void test_secondary_happy_checkpoint(void **state)
{
    struct fixture *fx = *state;
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 1, .page_count = 2}};
    static const uint32_t sent[] = {COLO_CMD_CHECKPOINT_READY, COLO_CMD_CHECKPOINT_REPLY,
                                    COLO_CMD_VMSTATE_RECEIVED, COLO_CMD_VMSTATE_LOADED};
    struct colo_checkpoint_stats st;

    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    script_checkpoint(fx->conn, 1, runs, 1, 5, "state");
    mock_conn_put_msg(fx->conn, COLO_CMD_GOODBYE, 1);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, &st), 0);
    expect_sent(fx->conn, sent, 4);
    assert_true(st.seq == 1 && st.pages == 2 && st.vmstate_bytes == 5);
    assert_int_equal(calls[0], 1);
    assert_int_equal(calls[1], 1);
    assert_int_equal(calls[2], 1);
    for (size_t p = 0; p < PAGES; p++)
        assert_int_equal(guest[p * 4096 + 9], p == 1 || p == 2 ? 0x5a : 0);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), COLO_E_SHUTDOWN);
}

/*
 * Everything of a checkpoint already here (a pipelined primary): the reply
 * waits and leaves with vmstate-received, in one write; vmstate-loaded
 * follows in its own once applied.
 */
static void test_secondary_reply_leaves_with_received(void **state)
{
    struct fixture *fx = *state;
    static const uint32_t sent[] = {COLO_CMD_CHECKPOINT_READY, COLO_CMD_CHECKPOINT_REPLY,
                                    COLO_CMD_VMSTATE_RECEIVED, COLO_CMD_VMSTATE_LOADED};

    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    assert_int_equal(fx->conn->writev_calls, 1);
    script_checkpoint(fx->conn, 1, NULL, 0, 5, "state");
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), 0);
    expect_sent(fx->conn, sent, 4);
    assert_int_equal(fx->conn->writev_calls, 3);
}

/* Only the request here: the reply is flushed before the secondary waits for more. */
static void test_secondary_reply_flushed_before_wait(void **state)
{
    struct fixture *fx = *state;
    static const uint32_t sent[] = {COLO_CMD_CHECKPOINT_READY, COLO_CMD_CHECKPOINT_REPLY};

    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    mock_conn_put_msg(fx->conn, COLO_CMD_CHECKPOINT_REQUEST, 1);
    fx->conn->read_error = -ETIMEDOUT; /* what a primary waiting for the reply sends next */
    assert_int_not_equal(colo_secondary_serve_one(&fx->sec, NULL), 0);
    expect_sent(fx->conn, sent, 2);
    assert_int_equal(fx->conn->writev_calls, 2);
}

/* Each hostile script ends the session with `err`; nothing reaches the guest. */
static void hostile(struct fixture *fx, int err, const char *why)
{
    static const uint32_t sent[] = {COLO_CMD_CHECKPOINT_READY, COLO_CMD_CHECKPOINT_REPLY};
    int ret;

    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    ret = colo_secondary_serve_one(&fx->sec, NULL);
    assert_int_equal(ret, err);
    assert_non_null(strstr(colo_errormsg(), why));
    assert_int_equal(fx->sec.fsm.state, COLO_ST_FAILED);
    assert_guest_untouched();
    assert_true(fx->conn->out_len <= 2 * COLO_MSG_WIRE_SIZE);
    if (fx->conn->out_len == 2 * COLO_MSG_WIRE_SIZE)
        expect_sent(fx->conn, sent, 2);
    /* the session stays failed */
    assert_int_not_equal(colo_secondary_serve_one(&fx->sec, NULL), 0);
}

static void test_out_of_range_dirty_list(void **state)
{
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 7, .page_count = 2}};

    script_checkpoint(((struct fixture *)*state)->conn, 1, runs, 1, 5, "state");
    hostile(*state, COLO_E_DIRTY_LIST, "outside block pc.ram");
}

static void test_overlapping_dirty_list(void **state)
{
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 1, .page_count = 3},
                                    {.block = 0, .first_page = 2, .page_count = 1}};

    script_checkpoint(((struct fixture *)*state)->conn, 1, runs, 2, 5, "state");
    hostile(*state, COLO_E_DIRTY_LIST, "overlaps");
}

static void test_too_many_runs(void **state)
{
    /* the fixture allows 16 runs, its 8-page layout only 8 */
    script_checkpoint(((struct fixture *)*state)->conn, 1, NULL, 9, 5, "state");
    hostile(*state, COLO_E_PROTOCOL, "expected at most 8");
}

/* Bytes the secondary holds for the dirty list (wire staging and decoded runs). */
static size_t list_bytes(const struct colo_secondary *s)
{
    return s->wire_cap + s->list.cap * sizeof(*s->list.runs);
}

/*
 * A 12-byte header announcing 2^24 runs (the hard maximum) on an 8-page
 * layout: refused at the header, naming the limit the layout sets, before
 * anything is allocated for it (it reserved 2 x 384 MiB before).
 */
static void test_run_count_bounded_by_layout(void **state)
{
    struct fixture *fx = *state;

    colo_secondary_fini(&fx->sec);
    colo_secondary_init(&fx->sec, fx->in, fx->out, &fx->layout, fx->cache, 100,
                        COLO_DIRTY_RUNS_HARD_MAX, &ops, NULL);
    mock_conn_put_msg(fx->conn, COLO_CMD_CHECKPOINT_REQUEST, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SEND, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_DIRTY_LIST, COLO_DIRTY_RUNS_HARD_MAX);
    hostile(fx, COLO_E_PROTOCOL, "expected at most 8 runs");
    assert_non_null(strstr(colo_errormsg(), "pages of the RAM layout"));
    print_message("2^24-run header, 8-page layout: %zu bytes held for the list\n",
                  list_bytes(&fx->sec));
    assert_true(list_bytes(&fx->sec) == 0);
}

/*
 * A legal but large header (2^22 runs on a 16 GiB layout) followed by only
 * three runs: what is held grows with the runs that arrived, not with the
 * count announced (it was 2 x 96 MiB before).
 */
static void test_large_header_costs_what_arrives(void **state)
{
    struct fixture *fx = *state;
    struct colo_ram_layout big;
    const uint64_t pages = 1ull << 22;
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 1, .page_count = 2},
                                    {.block = 0, .first_page = 9, .page_count = 1},
                                    {.block = 0, .first_page = pages - 1, .page_count = 1}};
    size_t held;

    /* The guest RAM pointer is never written: the checkpoint cannot complete. */
    assert_int_equal(colo_ram_layout_init(&big, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&big, "big.ram", guest, pages * 4096), 0);
    colo_stream_set_ram(fx->in, &big, NULL);
    colo_secondary_fini(&fx->sec);
    colo_secondary_init(&fx->sec, fx->in, fx->out, &big, NULL, 100, COLO_DIRTY_RUNS_HARD_MAX,
                        &ops, NULL);
    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    mock_conn_put_msg(fx->conn, COLO_CMD_CHECKPOINT_REQUEST, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SEND, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_DIRTY_LIST, pages);
    put_runs(fx->conn, runs, 3);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), COLO_E_PEER_LOST);
    assert_non_null(strstr(colo_errormsg(), "closed the connection while the secondary read the "
                                            "4194304 runs of the dirty list of checkpoint 1"));
    held = list_bytes(&fx->sec);
    print_message("2^22-run header, 3 runs sent: %zu bytes held for the list\n", held);
    assert_true(held <= (1u << 20));
    assert_guest_untouched();
}

/* A list longer than one read chunk arrives whole; a bad run is named by its index. */
static void test_list_over_several_chunks(void **state)
{
    enum { N = 2 * COLO_DIRTY_WIRE_CHUNK + 100 };
    struct fixture *fx = *state;
    struct colo_ram_layout l;
    struct colo_ram_cache *cache;
    struct colo_dirty_run *runs = calloc(N, sizeof(*runs));
    uint8_t *ram = calloc(N, 4096), *wire = malloc(N * COLO_DIRTY_RUN_WIRE_SIZE);
    char path[64] = "/tmp/colo-drivers-chunks.XXXXXX";
    int fd = mkstemp(path);

    assert_true(runs && ram && wire && fd >= 0);
    close(fd);
    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "pc.ram", ram, (uint64_t)N * 4096), 0);
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &cache), 0);
    memset(colo_ram_cache_block(cache, 0), 0x77, (size_t)N * 4096);
    colo_stream_set_ram(fx->in, &l, cache);
    colo_secondary_fini(&fx->sec);
    colo_secondary_init(&fx->sec, fx->in, fx->out, &l, cache, 100, COLO_DIRTY_RUNS_HARD_MAX,
                        NULL, NULL);
    for (size_t i = 0; i < N; i++)
        runs[i] = (struct colo_dirty_run){.block = 0, .first_page = i, .page_count = 1};
    colo_dirty_list_encode(runs, N, wire);
    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    mock_conn_put_msg(fx->conn, COLO_CMD_CHECKPOINT_REQUEST, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SEND, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_DIRTY_LIST, N);
    mock_conn_put(fx->conn, wire, N * COLO_DIRTY_RUN_WIRE_SIZE);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SIZE, 0);
    /* the second checkpoint's run 2100 has a reserved field set */
    mock_conn_put_msg(fx->conn, COLO_CMD_CHECKPOINT_REQUEST, 2);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SEND, 2);
    mock_conn_put_msg(fx->conn, COLO_CMD_DIRTY_LIST, N);
    colo_put_be32(wire + 2100 * COLO_DIRTY_RUN_WIRE_SIZE + 4, 1);
    mock_conn_put(fx->conn, wire, N * COLO_DIRTY_RUN_WIRE_SIZE);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SIZE, 0);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), 0);
    assert_true(fx->sec.list.count == N && fx->sec.list.pages == N);
    for (size_t i = 0; i < (size_t)N * 4096; i += 4096)
        assert_int_equal(ram[i], 0x77);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), COLO_E_DIRTY_LIST);
    assert_non_null(strstr(colo_errormsg(), "dirty run 2100: reserved field is 1"));
    colo_secondary_fini(&fx->sec);
    colo_ram_cache_close(&cache);
    unlink(path);
    free(wire);
    free(ram);
    free(runs);
}

static void test_vmstate_too_large(void **state)
{
    script_checkpoint(((struct fixture *)*state)->conn, 1, NULL, 0, 101, NULL);
    hostile(*state, COLO_E_PROTOCOL, "expected at most 100");
}

static void test_truncated_state(void **state)
{
    script_checkpoint(((struct fixture *)*state)->conn, 1, NULL, 0, 50, "short");
    hostile(*state, COLO_E_PEER_LOST, "mock: the peer closed the connection while the secondary "
            "read the 50 bytes of device state of checkpoint 1 (5 of 50 bytes arrived)");
}

static void test_wrong_first_sequence(void **state)
{
    mock_conn_put_msg(((struct fixture *)*state)->conn, COLO_CMD_CHECKPOINT_REQUEST, 2);
    hostile(*state, COLO_E_PROTOCOL, "expected sequence number 1, received 2");
}

static void test_out_of_order_command(void **state)
{
    struct fixture *fx = *state;

    mock_conn_put_msg(fx->conn, COLO_CMD_CHECKPOINT_REQUEST, 1);
    mock_conn_put_msg(fx->conn, COLO_CMD_VMSTATE_SIZE, 5);
    hostile(fx, COLO_E_PROTOCOL, "unexpected vmstate-size");
}

static void test_garbage_command(void **state)
{
    mock_conn_put(((struct fixture *)*state)->conn, "\0\0\0\x63\0\0\0\0\0\0\0\x01", 12);
    hostile(*state, COLO_E_PROTOCOL, "unknown COLO command 99");
}

static void test_load_failure_ends_session(void **state)
{
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 0, .page_count = 1}};
    struct fixture *fx = *state;

    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    script_checkpoint(fx->conn, 1, runs, 1, 5, "wrong");
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), -EINVAL);
    assert_non_null(strstr(colo_errormsg(), "loading device state failed"));
}

/*
 * The device state of the last completed checkpoint survives a later
 * checkpoint that fails while its state is read (it was 0 bytes after).
 */
static void test_vmstate_kept_after_failed_checkpoint(void **state)
{
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 0, .page_count = 1}};
    struct fixture *fx = *state;
    const void *vm;
    uint64_t len;

    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    script_checkpoint(fx->conn, 1, runs, 1, 5, "state");
    script_checkpoint(fx->conn, 2, runs, 1, 50, "short"); /* then the stream ends */
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), 0);
    colo_secondary_vmstate(&fx->sec, &vm, &len);
    assert_true(len == 5);
    assert_memory_equal(vm, "state", 5);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), COLO_E_PEER_LOST);
    colo_secondary_vmstate(&fx->sec, &vm, &len);
    print_message("after the failed checkpoint 2: %" PRIu64 " bytes of device state\n", len);
    assert_true(len == 5);
    assert_memory_equal(vm, "state", 5);
    assert_true(fx->sec.fsm.completed == 1);
}

/* A device state bigger than a read chunk arrives whole, into a buffer that grew with it. */
static void test_large_vmstate_grows_as_it_arrives(void **state)
{
    struct fixture *fx = *state;
    static uint8_t big[3 << 20];
    const void *vm;
    uint64_t len;

    colo_secondary_fini(&fx->sec);
    colo_secondary_init(&fx->sec, fx->in, fx->out, &fx->layout, fx->cache, 64 << 20, 16, NULL,
                        NULL);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + i / 4096);
    assert_int_equal(colo_secondary_send_ready(&fx->sec, 42), 0);
    script_checkpoint(fx->conn, 1, NULL, 0, sizeof(big) / 2, NULL);
    mock_conn_put(fx->conn, big, sizeof(big) / 2);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), 0);
    colo_secondary_vmstate(&fx->sec, &vm, &len);
    assert_true(len == sizeof(big) / 2);
    assert_memory_equal(vm, big, sizeof(big) / 2);
    /* a 64 MiB announcement then 1 MiB and the end: far less than 64 MiB held */
    script_checkpoint(fx->conn, 2, NULL, 0, 64 << 20, NULL);
    mock_conn_put(fx->conn, big, 1 << 20);
    assert_int_equal(colo_secondary_serve_one(&fx->sec, NULL), COLO_E_PEER_LOST);
    print_message("64 MiB announced, 1 MiB sent: %zu + %zu bytes held\n", fx->sec.vmstate_cap,
                  fx->sec.staging_cap);
    assert_true(fx->sec.staging_cap <= (4u << 20));
    colo_secondary_vmstate(&fx->sec, &vm, &len);
    assert_true(len == sizeof(big) / 2);
    assert_memory_equal(vm, big, sizeof(big) / 2);
}

static void test_primary_sends_the_protocol(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *out = mock_stream_new(c), *in = NULL;
    struct colo_ram_layout l;
    struct colo_primary p;
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 3, .page_count = 1},
                                    {.block = 0, .first_page = 1, .page_count = 2},
                                    {.block = 0, .first_page = 9, .page_count = 1}};
    struct colo_checkpoint_stats st;
    struct colo_msg m;
    const uint8_t *o;

    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "pc.ram", source, sizeof(source)), 0);
    colo_stream_set_ram(out, &l, NULL);
    assert_int_equal(colo_stream_open_return_path(out, &in), 0);
    colo_primary_init(&p, out, in, &l);
    mock_conn_put_msg(c, COLO_CMD_CHECKPOINT_READY, 9);
    mock_conn_put_msg(c, COLO_CMD_CHECKPOINT_REPLY, 1);
    mock_conn_put_msg(c, COLO_CMD_VMSTATE_RECEIVED, 1);
    mock_conn_put_msg(c, COLO_CMD_VMSTATE_LOADED, 1);
    mock_conn_put_msg(c, COLO_CMD_CHECKPOINT_REPLY, 1); /* wrong: should be 2 */
    assert_int_equal(colo_primary_wait_ready(&p), 0);
    assert_true(p.epoch == 9);

    /* a bad list is refused before anything is sent, the session stays usable */
    assert_int_equal(colo_primary_run(&p, runs, 3, "abc", 3, &st), COLO_E_DIRTY_LIST);
    assert_int_equal(c->out_len, 0);
    assert_int_equal(colo_primary_run(&p, runs, 2, "abc", 3, &st), 0);
    assert_true(st.seq == 1 && st.pages == 3 && st.page_bytes == 3 * 4096);

    o = c->out;
    assert_int_equal(colo_msg_decode(o, 12, &m), 0);
    assert_true(m.cmd == COLO_CMD_CHECKPOINT_REQUEST && m.value == 1);
    assert_int_equal(colo_msg_decode(o + 12, 12, &m), 0);
    assert_true(m.cmd == COLO_CMD_VMSTATE_SEND && m.value == 1);
    assert_int_equal(colo_msg_decode(o + 24, 12, &m), 0);
    assert_true(m.cmd == COLO_CMD_DIRTY_LIST && m.value == 1); /* merged into one run */
    assert_int_equal(colo_msg_decode(o + 36 + 24, 12, &m), 0);
    assert_true(m.cmd == COLO_CMD_VMSTATE_SIZE && m.value == 3);
    assert_memory_equal(o + 72, "abc", 3);
    assert_int_equal(c->out_len, 75);

    /* a wrong reply fails the checkpoint and the session */
    assert_int_equal(colo_primary_run(&p, runs, 2, "abc", 3, &st), COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "expected sequence number 2, received 1"));
    assert_int_equal(colo_primary_run(&p, runs, 2, "abc", 3, &st), COLO_E_PROTOCOL);
    assert_int_equal(colo_primary_goodbye(&p), 0); /* not idle: nothing sent */
    colo_primary_fini(&p);
    colo_stream_delete(&in);
    colo_stream_delete(&out);
    mock_conn_unref(c);
}

/*
 * A pipelined empty checkpoint: the request leaves with the state in one
 * write (one SEND over rdma); with pages to push it goes first, alone.
 */
static void test_primary_empty_checkpoint_is_one_write(void **state)
{
    struct mock_conn *c = mock_conn_new();
    struct colo_stream *out = mock_stream_new(c), *in = NULL;
    struct colo_dirty_run run = {.block = 0, .first_page = 1, .page_count = 1};
    struct colo_ram_layout l;
    struct colo_primary p;
    struct colo_msg m;
    int before;

    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "pc.ram", source, sizeof(source)), 0);
    colo_stream_set_ram(out, &l, NULL);
    assert_int_equal(colo_stream_open_return_path(out, &in), 0);
    colo_primary_init(&p, out, in, &l);
    p.pipelined = true;
    mock_conn_put_msg(c, COLO_CMD_CHECKPOINT_READY, 9);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        mock_conn_put_msg(c, COLO_CMD_CHECKPOINT_REPLY, seq);
        mock_conn_put_msg(c, COLO_CMD_VMSTATE_RECEIVED, seq);
        mock_conn_put_msg(c, COLO_CMD_VMSTATE_LOADED, seq);
    }
    assert_int_equal(colo_primary_wait_ready(&p), 0);
    before = c->writev_calls;
    assert_int_equal(colo_primary_run(&p, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(c->writev_calls - before, 1);
    assert_int_equal(c->out_len, 4 * COLO_MSG_WIRE_SIZE);
    assert_int_equal(colo_msg_decode(c->out, COLO_MSG_WIRE_SIZE, &m), 0);
    assert_true(m.cmd == COLO_CMD_CHECKPOINT_REQUEST && m.value == 1);
    assert_int_equal(colo_msg_decode(c->out + COLO_MSG_WIRE_SIZE, COLO_MSG_WIRE_SIZE, &m), 0);
    assert_true(m.cmd == COLO_CMD_VMSTATE_SEND && m.value == 1);
    /* a page to push: the request is on its way before the pages */
    before = c->writev_calls;
    assert_int_equal(colo_primary_run(&p, &run, 1, NULL, 0, NULL), 0);
    assert_true(c->writev_calls - before >= 2);
    assert_int_equal(colo_msg_decode(c->out + 4 * COLO_MSG_WIRE_SIZE, COLO_MSG_WIRE_SIZE, &m),
                     0);
    assert_true(m.cmd == COLO_CMD_CHECKPOINT_REQUEST && m.value == 2);
    colo_primary_fini(&p);
    colo_stream_delete(&in);
    colo_stream_delete(&out);
    mock_conn_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secondary_happy_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secondary_reply_leaves_with_received, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secondary_reply_flushed_before_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_dirty_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_dirty_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_count_bounded_by_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_header_costs_what_arrives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_over_several_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmstate_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_first_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_failure_ends_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmstate_kept_after_failed_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large_vmstate_grows_as_it_arrives, setup, teardown),
        cmocka_unit_test(test_primary_sends_the_protocol),
        cmocka_unit_test(test_primary_empty_checkpoint_is_one_write),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
