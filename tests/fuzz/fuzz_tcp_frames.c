/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tcp backend's page-frame loader (tcp_load_ram in transport/tcp.c,
 * included here to reach its static hooks) through colo_stream_load_ram on
 * an in-memory stream, against the small layout and RAM cache of fuzz_ram.c.
 *
 * Input: byte 0 is a configuration (bits 0-1: bytes per backend read:
 * unlimited, 1, 13, 4099; bits 2-7: the sequence number expected, 1..64),
 * the rest is the stream: PAGE frames (be32 "PAGE", be32 block, be64 first
 * page, be64 page count, pages) up to a PEND marker (be32 "PEND", be32 0,
 * be64 sequence number, be64 0). Checks, against an independent parser of
 * the same format: load_ram succeeds exactly when the reference does; then
 * the runs placed and the whole cache equal the reference's, and the stream
 * hands out exactly the bytes after the end marker; a failure is latched on
 * the stream.
 */
#include "../../transport/tcp.c"

#include "fuzz_common.h"
#include "fuzz_ram.h"
#include "fuzz_stream.h"

static struct fuzz_ram ram;
static uint8_t *model[FUZZ_NBLOCKS]; /* what the cache must hold after success */
static struct colo_stream_ops ops_tcp;
static int verbose; /* COLO_FUZZ_VERBOSE=1: say how each input ended */
static const size_t read_sizes[4] = {0, 1, 13, 4099};
static uint8_t guest_pattern[16 * FUZZ_PAGE]; /* the largest block, all 0x11 */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("COLO_FUZZ_VERBOSE") != NULL;
    fuzz_ram_init(&ram);
    memset(guest_pattern, 0x11, sizeof(guest_pattern));
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++) {
        model[i] = malloc(fuzz_block_len(i));
        FUZZ_CHECK(model[i]);
    }
    fuzz_stream_ops_init(&ops_tcp);
    ops_tcp.load_ram = tcp_load_ram;
    return 0;
}

/* The frame format, parsed independently. Returns the bytes consumed, or 0 on refusal. */
static size_t reference_load(const uint8_t *p, size_t len, uint64_t seq,
                             struct colo_dirty_list *placed)
{
    size_t pos = 0;

    for (;;) {
        struct colo_dirty_run run;
        uint64_t npages, bytes;

        if (len - pos < FRAME_HDR_SIZE)
            return 0;
        if (colo_get_be32(p + pos) == FRAME_END) /* reserved fields must be 0 */
            return colo_get_be64(p + pos + 8) == seq && !colo_get_be32(p + pos + 4) &&
                           !colo_get_be64(p + pos + 16)
                       ? pos + FRAME_HDR_SIZE
                       : 0;
        if (colo_get_be32(p + pos) != FRAME_PAGE)
            return 0;
        run = (struct colo_dirty_run){.block = colo_get_be32(p + pos + 4),
                                      .first_page = colo_get_be64(p + pos + 8),
                                      .page_count = colo_get_be64(p + pos + 16)};
        pos += FRAME_HDR_SIZE;
        if (run.block >= FUZZ_NBLOCKS || run.page_count == 0)
            return 0;
        npages = fuzz_block_pages[run.block];
        if (run.first_page >= npages || run.page_count > npages - run.first_page)
            return 0;
        if (placed->pages + run.page_count > ram.layout.total_pages)
            return 0;
        bytes = run.page_count * FUZZ_PAGE;
        if (len - pos < bytes)
            return 0;
        memcpy(model[run.block] + run.first_page * FUZZ_PAGE, p + pos, bytes);
        pos += bytes;
        FUZZ_CHECK(colo_dirty_list_append(placed, &run) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct colo_dirty_list placed = {0}, want = {0};
    struct colo_stream *f;
    struct fuzz_conn *conn;
    uint64_t seq;
    size_t used;
    int ret;

    if (size < 1)
        return 0;
    colo_err_clear();
    seq = 1 + (data[0] >> 2);
    fuzz_ram_fill(&ram, 0x11, 0x22);
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++)
        memset(model[i], 0x22, fuzz_block_len(i));

    conn = fuzz_conn_new(data + 1, size - 1, read_sizes[data[0] & 3]);
    FUZZ_CHECK(conn);
    f = fuzz_stream_new(&ops_tcp, conn);
    FUZZ_CHECK(f);
    colo_stream_set_ram(f, &ram.layout, ram.cache);
    FUZZ_CHECK(colo_stream_register_ram(f) == 0);

    ret = colo_stream_load_ram(f, seq, &placed);
    used = reference_load(data + 1, size - 1, seq, &want);
    if (verbose)
        fprintf(stderr, "fuzz_tcp_frames: load_ram %d (%s), %zu runs placed\n", ret,
                ret ? colo_errormsg() : "ok", placed.count);
    FUZZ_CHECK((ret == 0) == (used != 0));
    if (ret) {
        FUZZ_CHECK(ret < 0 && colo_stream_error(f) == ret);
    } else {
        size_t rest = size - 1 - used;
        uint8_t *tail = malloc(rest + 1);

        FUZZ_CHECK(tail);
        FUZZ_CHECK(placed.count == want.count && placed.pages == want.pages);
        FUZZ_CHECK(!placed.count ||
                   !memcmp(placed.runs, want.runs, placed.count * sizeof(*placed.runs)));
        FUZZ_CHECK(placed.pages <= ram.layout.total_pages);
        for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++)
            FUZZ_CHECK(!memcmp(colo_ram_cache_block(ram.cache, i), model[i], fuzz_block_len(i)));
        /* The stream resumes right after the end marker and ends with the input. */
        FUZZ_CHECK(colo_stream_get_buffer(f, tail, rest) == 0);
        FUZZ_CHECK(!rest || !memcmp(tail, data + 1 + used, rest));
        FUZZ_CHECK(colo_stream_get_buffer(f, tail, 1) == COLO_E_PEER_LOST);
        free(tail);
    }
    /* The guest RAM is never the loader's business. */
    for (uint32_t i = 0; i < FUZZ_NBLOCKS; i++)
        FUZZ_CHECK(!memcmp(ram.guest[i], guest_pattern, fuzz_block_len(i)));

    colo_dirty_list_free(&want);
    colo_dirty_list_free(&placed);
    colo_stream_delete(&f);
    fuzz_conn_unref(conn);
    return 0;
}
