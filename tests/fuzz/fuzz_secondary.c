/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary's whole protocol driver (proto/secondary.c) fed a primary's
 * byte stream through an in-memory backend, with the tcp backend's page-frame
 * loader (transport/tcp.c, included to reach its static load_ram hook) or with
 * no load_ram hook at all, as for rdma where pages land in the cache out of
 * band (here: the harness scribbles over the cache before every checkpoint).
 *
 * Input: byte 0 is a configuration, byte 1 the session's features, the rest
 * is the stream from the primary.
 *   bit 0     1: never send checkpoint-ready (every request must be refused)
 *   bit 1     0: tcp page frames (tcp_load_ram); 1: rdma-like, no load_ram hook
 *   bits 2-3  bytes per backend read: unlimited, 1, 13, 4099
 *   bits 4-5  max dirty runs: 16, 1, 4, 0
 *   bits 6-7  max device state bytes: 4096, 0, 65536, 17
 * features: bit 0: protocol version 2 (background-pages between checkpoints)
 * colo_secondary_serve_one runs until it returns non-zero. Checks:
 *  - the guest RAM changes only when serve_one returned 0, and then exactly in
 *    the listed ranges, which equal the cache; a failed checkpoint leaves it
 *    untouched, and the failed session refuses every later call;
 *  - checkpoints complete in order 1, 2, ..., with the stats the list gives,
 *    and each answered with reply, vmstate-received and vmstate-loaded;
 *  - the VM callbacks run in order (stop, load, resume) with in-bounds state;
 *  - with tcp frames, the runs placed (background-pages included) equal the
 *    dirty list;
 *  - ASan/UBSan/LeakSanitizer: no crash, no undefined behaviour, no leak.
 */
#include "../../transport/tcp.c"

#include "fuzz_common.h"
#include "fuzz_ram.h"
#include "fuzz_stream.h"
#include "proto/secondary.h"

#define EPOCH 7

static struct fuzz_ram ram;
static uint8_t *shadow[FUZZ_NBLOCKS]; /* what the guest RAM must hold */
static struct colo_stream_ops ops_tcp, ops_rdma;
static int verbose; /* COLO_FUZZ_VERBOSE=1: say how each input ended */

static const size_t read_sizes[4] = {0, 1, 13, 4099};
static const uint32_t max_runs_opts[4] = {16, 1, 4, 0};
static const uint64_t max_vmstate_opts[4] = {4096, 0, 65536, 17};

struct vm {
    int stopped;
    int stops, loads, resumes;
    uint64_t max_vmstate;
    uint64_t last_len;
};

static int vm_stop(void *opaque)
{
    struct vm *vm = opaque;

    vm->stopped = 1;
    vm->stops++;
    return 0;
}

static int vm_load(void *opaque, const void *state, uint64_t len)
{
    struct vm *vm = opaque;
    const volatile uint8_t *p = state;
    uint8_t sum = 0;

    FUZZ_CHECK(vm->stopped);
    FUZZ_CHECK(len <= vm->max_vmstate);
    FUZZ_CHECK(len == 0 || state != NULL);
    for (uint64_t i = 0; i < len; i++)
        sum ^= p[i]; /* every byte must be readable (ASan) */
    (void)sum;
    vm->loads++;
    vm->last_len = len;
    return 0;
}

static int vm_resume(void *opaque)
{
    struct vm *vm = opaque;

    FUZZ_CHECK(vm->stopped);
    vm->stopped = 0;
    vm->resumes++;
    return 0;
}

static const struct colo_secondary_ops vm_ops = {vm_stop, vm_load, vm_resume};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("COLO_FUZZ_VERBOSE") != NULL;
    fuzz_ram_init(&ram);
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++) {
        shadow[i] = malloc(fuzz_block_len(i));
        FUZZ_CHECK(shadow[i]);
    }
    fuzz_stream_ops_init(&ops_rdma);
    fuzz_stream_ops_init(&ops_tcp);
    ops_tcp.save_page = tcp_save_page;
    ops_tcp.after_ram_iterate = tcp_after_ram_iterate;
    ops_tcp.load_ram = tcp_load_ram;
    return 0;
}

static void check_guest(void)
{
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++)
        FUZZ_CHECK(memcmp(ram.guest[i], shadow[i], fuzz_block_len(i)) == 0);
}

/* Checks the message at *pos of the secondary's output and moves past it. */
static void expect_msg(const struct fuzz_conn *c, size_t *pos, uint32_t cmd, uint64_t value)
{
    struct colo_msg msg;

    FUZZ_CHECK(c->out_len - *pos >= COLO_MSG_WIRE_SIZE);
    FUZZ_CHECK(colo_msg_decode(c->out + *pos, COLO_MSG_WIRE_SIZE, &msg) == 0);
    FUZZ_CHECK(msg.cmd == cmd && msg.value == value);
    *pos += COLO_MSG_WIRE_SIZE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct colo_secondary s;
    struct colo_stream *in, *out = NULL;
    struct fuzz_conn *conn;
    struct vm vm = {0};
    uint8_t flags;
    size_t out_pos = 0;
    uint64_t completed = 0;
    uint32_t max_runs;
    int ready, tcp, ret;

    if (size < 2)
        return 0;
    colo_err_clear();
    flags = data[0];
    ready = !(flags & 1);
    tcp = !(flags & 2);
    max_runs = max_runs_opts[(flags >> 4) & 3];
    vm.max_vmstate = max_vmstate_opts[(flags >> 6) & 3];

    fuzz_ram_fill(&ram, 0x11, 0x22);
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++)
        memcpy(shadow[i], ram.guest[i], fuzz_block_len(i));

    conn = fuzz_conn_new(data + 2, size - 2, read_sizes[(flags >> 2) & 3]);
    FUZZ_CHECK(conn);
    in = fuzz_stream_new(tcp ? &ops_tcp : &ops_rdma, conn);
    FUZZ_CHECK(in);
    colo_stream_set_ram(in, &ram.layout, ram.cache);
    FUZZ_CHECK(colo_stream_register_ram(in) == 0);
    FUZZ_CHECK(colo_stream_open_return_path(in, &out) == 0);
    colo_secondary_init(&s, in, out, &ram.layout, ram.cache, vm.max_vmstate, max_runs, &vm_ops,
                        &vm);
    colo_fsm_set_features(&s.fsm, data[1] & 1 ? 2 : 1, false);
    if (ready) {
        FUZZ_CHECK(colo_secondary_send_ready(&s, EPOCH) == 0);
        expect_msg(conn, &out_pos, COLO_CMD_CHECKPOINT_READY, EPOCH);
    }

    for (unsigned iter = 0;; iter++) {
        struct colo_checkpoint_stats st;
        uint64_t pages = 0;

        if (!tcp) /* rdma: the primary may write anywhere in the cache at any time */
            for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++)
                memset(colo_ram_cache_block(ram.cache, i), 0x40 + (iter & 0x3f), fuzz_block_len(i));
        memset(&st, 0xa5, sizeof(st));
        ret = colo_secondary_serve_one(&s, &st);
        if (ret) {
            check_guest(); /* a failed checkpoint never reaches the guest */
            break;
        }
        FUZZ_CHECK(ready);
        FUZZ_CHECK(colo_dirty_list_validate(&ram.layout, s.list.runs, s.list.count, max_runs) == 0);
        for (size_t i = 0; i < s.list.count; i++) {
            const struct colo_dirty_run *r = &s.list.runs[i];
            size_t off = r->first_page * FUZZ_PAGE, len = r->page_count * FUZZ_PAGE;

            memcpy(shadow[r->block] + off, colo_ram_cache_block(ram.cache, r->block) + off, len);
            pages += r->page_count;
        }
        check_guest(); /* exactly the listed ranges, copied from the cache */
        if (tcp && s.placed.count)
            FUZZ_CHECK(s.placed.count == s.list.count &&
                       !memcmp(s.placed.runs, s.list.runs, s.list.count * sizeof(*s.list.runs)));
        completed++;
        FUZZ_CHECK(st.seq == completed && s.fsm.completed == completed);
        FUZZ_CHECK(st.pages == pages && s.list.pages == pages);
        FUZZ_CHECK(st.page_bytes == pages * FUZZ_PAGE);
        FUZZ_CHECK(st.vmstate_bytes == vm.last_len && st.vmstate_bytes <= vm.max_vmstate);
        FUZZ_CHECK(vm.stops == (int)completed && vm.loads == (int)completed &&
                   vm.resumes == (int)completed && !vm.stopped);
        expect_msg(conn, &out_pos, COLO_CMD_CHECKPOINT_REPLY, completed);
        expect_msg(conn, &out_pos, COLO_CMD_VMSTATE_RECEIVED, completed);
        expect_msg(conn, &out_pos, COLO_CMD_VMSTATE_LOADED, completed);
    }
    if (verbose)
        fprintf(stderr, "fuzz_secondary: %s, %s; %" PRIu64 " checkpoints completed, then %d: %s\n",
                tcp ? "tcp frames" : "rdma-like", ready ? "ready sent" : "no ready", completed, ret,
                colo_errormsg());
    FUZZ_CHECK(ret < 0);
    FUZZ_CHECK(s.fsm.state == COLO_ST_FAILED || ret == COLO_E_SHUTDOWN);
    FUZZ_CHECK(vm.loads == (int)completed && vm.resumes == (int)completed);
    /* The failed (or closed) session refuses everything and touches nothing. */
    FUZZ_CHECK(colo_secondary_serve_one(&s, NULL) != 0);
    check_guest();
    /* At most the failed checkpoint's reply follows the completed ones. */
    if (out_pos < conn->out_len)
        expect_msg(conn, &out_pos, COLO_CMD_CHECKPOINT_REPLY, completed + 1);
    FUZZ_CHECK(out_pos == conn->out_len);

    colo_secondary_fini(&s);
    colo_stream_delete(&out);
    colo_stream_delete(&in);
    fuzz_conn_unref(conn);
    return 0;
}
