/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/timeutil.h"
#include "proto/digest.h"
#include "proto/dirty_wire.h"
#include "proto/exchange.h"
#include "proto/secondary.h"

static const struct colo_secondary_ops no_ops;

void colo_secondary_init(struct colo_secondary *s, struct colo_stream *in,
                         struct colo_stream *out, const struct colo_ram_layout *layout,
                         struct colo_ram_cache *cache, uint64_t max_vmstate, uint32_t max_runs,
                         const struct colo_secondary_ops *ops, void *opaque)
{
    memset(s, 0, sizeof(*s));
    /* Runs are disjoint and hold a page each: the layout bounds their count. */
    if (layout && layout->total_pages < max_runs)
        max_runs = (uint32_t)layout->total_pages;
    colo_fsm_init(&s->fsm, COLO_ROLE_SECONDARY, max_vmstate, max_runs);
    s->in = in;
    s->out = out;
    /* A reply waits in s->out only while the rest of its checkpoint is
     * here already: it then leaves with vmstate-received (one message for
     * an empty checkpoint), never while the primary waits for it. */
    if (in && out)
        colo_stream_flush_before_wait(in, out);
    s->layout = layout;
    s->cache = cache;
    s->ops = ops ? ops : &no_ops;
    s->opaque = opaque;
}

void colo_secondary_fini(struct colo_secondary *s)
{
    colo_dirty_list_free(&s->list);
    colo_dirty_list_free(&s->placed);
    colo_dirty_list_free(&s->background);
    colo_dirty_list_free(&s->batch);
    colo_dirty_list_free(&s->scratch);
    free(s->wire);
    free(s->vmstate);
    free(s->staging);
    s->wire = s->vmstate = s->staging = NULL;
}

void colo_secondary_vmstate(const struct colo_secondary *s, const void **state, uint64_t *len)
{
    *state = s->vmstate;
    *len = s->vmstate_len;
}

/*
 * Reads len bytes of device state into the staging buffer, which grows as
 * they arrive (by doubling, up to len): an announced size alone reserves
 * at most one chunk. The last completed checkpoint's state stays intact.
 */
static int receive_vmstate(struct colo_secondary *s, uint64_t seq, uint64_t len)
{
    int ret = 0;

    colo_stream_set_context(s->in, "the secondary read the %" PRIu64 " bytes of device "
                            "state of checkpoint %" PRIu64, len, seq);
    s->staging_len = 0;
    for (uint64_t done = 0; !ret && done < len;) {
        size_t n = len - done < COLO_VMSTATE_CHUNK ? (size_t)(len - done) : COLO_VMSTATE_CHUNK;
        size_t want = (size_t)done + n;

        if (want > s->staging_cap) {
            size_t grow = s->staging_cap * 2;

            if (grow < want)
                grow = want;
            if (grow > len)
                grow = (size_t)len;
            ret = colo_grow_array(&s->staging, &s->staging_cap, grow, 1,
                                  "secondary: device state");
            if (ret) {
                colo_stream_set_error(s->in, ret, "%s", colo_errormsg());
                break;
            }
        }
        ret = colo_stream_get_buffer(s->in, s->staging + done, n);
        done += n;
    }
    if (!ret)
        s->staging_len = len;
    return ret;
}

/* The received state becomes the last completed checkpoint's. */
static void vmstate_complete(struct colo_secondary *s)
{
    uint8_t *buf = s->vmstate;
    size_t cap = s->vmstate_cap;

    s->vmstate = s->staging;
    s->vmstate_cap = s->staging_cap;
    s->vmstate_len = s->staging_len;
    s->staging = buf;
    s->staging_cap = cap;
    s->staging_len = 0;
}

int colo_secondary_send_ready(struct colo_secondary *s, uint64_t epoch)
{
    int ret = colo_send_msg(&s->fsm, s->out, COLO_CMD_CHECKPOINT_READY, epoch);

    return ret ? ret : colo_stream_fflush(s->out);
}

static int send_flush(struct colo_secondary *s, uint32_t cmd, uint64_t value)
{
    int ret = colo_send_msg(&s->fsm, s->out, cmd, value);

    return ret ? ret : colo_stream_fflush(s->out);
}

/* Calls an optional VM callback; a failure ends the session. */
static int call_vm(struct colo_secondary *s, int (*fn)(void *), const char *what)
{
    int ret = fn ? fn(s->opaque) : 0;

    if (ret)
        return colo_stream_set_error(s->in, ret, "secondary: %s failed: %s", what,
                                     colo_strerror(ret));
    return 0;
}

/*
 * Reads the dirty list and checks it against the layout and what was placed.
 * The runs are read a chunk at a time and the list grows as they arrive:
 * the announced count (bounded by the layout) never reserves memory by
 * itself.
 */
static int receive_dirty_list(struct colo_secondary *s, uint64_t count)
{
    size_t chunk = COLO_DIRTY_WIRE_CHUNK < count ? COLO_DIRTY_WIRE_CHUNK : (size_t)count;
    int ret;

    colo_dirty_list_reset(&s->list);
    colo_stream_set_context(s->in, "the secondary read the %" PRIu64 " runs of the dirty list "
                            "of checkpoint %" PRIu64, count, s->fsm.seq);
    ret = colo_grow_array(&s->wire, &s->wire_cap, chunk * COLO_DIRTY_RUN_WIRE_SIZE, 1,
                          "secondary: dirty list");
    for (uint64_t done = 0; !ret && done < count; done += chunk) {
        if (chunk > count - done)
            chunk = (size_t)(count - done);
        ret = colo_dirty_list_reserve(&s->list, (size_t)done + chunk);
        if (!ret)
            ret = colo_stream_get_buffer(s->in, s->wire, chunk * COLO_DIRTY_RUN_WIRE_SIZE);
        if (!ret)
            ret = colo_dirty_list_decode_from(s->wire, chunk * COLO_DIRTY_RUN_WIRE_SIZE, chunk,
                                              (size_t)done, s->list.runs + done);
        if (!ret)
            s->list.count = (size_t)done + chunk;
    }
    if (!ret)
        ret = colo_dirty_list_validate(s->layout, s->list.runs, count, s->fsm.max_runs);
    if (ret)
        return colo_stream_set_error(s->in, ret, "%s", colo_errormsg());
    s->list.count = count;
    for (size_t i = 0; i < count; i++)
        s->list.pages += s->list.runs[i].page_count;
    /* A backend that streams pages must have placed exactly the listed runs:
     * a listed page that never came would apply stale cache contents. */
    if (colo_stream_places_pages(s->in) &&
        (s->placed.count != count ||
         (count && memcmp(s->placed.runs, s->list.runs, count * sizeof(*s->list.runs)))))
        return colo_stream_set_error(s->in, COLO_E_DIRTY_LIST,
                                     "secondary: checkpoint %" PRIu64
                                     ": the %zu page runs received differ from the %" PRIu64
                                     " runs of the dirty list",
                                     s->fsm.seq, s->placed.count, count);
    return 0;
}

/*
 * background-pages (version 2, pages in the stream): its frames go into the
 * cache, never the guest, and join the coming checkpoint's placed runs; its
 * dirty list must name them, and only its completion applies them.
 */
static int receive_background(struct colo_secondary *s, uint64_t seq)
{
    int ret;

    colo_dirty_list_reset(&s->batch);
    colo_stream_set_context(s->in, "the secondary received pages pushed ahead of checkpoint %"
                            PRIu64, seq);
    ret = colo_stream_load_ram(s->in, seq, &s->batch);
    if (!ret)
        ret = colo_dirty_list_merge(&s->background, &s->batch, &s->scratch, s->layout,
                                    s->fsm.max_runs);
    if (ret)
        return colo_stream_set_error(s->in, ret, "%s", colo_errormsg());
    COLO_TRACE(secondary_serve_background, seq, s->batch.count, s->batch.pages);
    colo_log(COLO_LOG_DEBUG, "secondary: checkpoint %" PRIu64 ": %" PRIu64 " pages in %zu runs "
             "received ahead of it", seq, s->batch.pages, s->batch.count);
    return 0;
}

/* The runs placed in the stream for this checkpoint: its own frames and
 * what background-pages placed before it, as one canonical list. */
static int placed_with_background(struct colo_secondary *s)
{
    int ret;

    if (!s->background.count)
        return 0;
    ret = colo_dirty_list_merge(&s->placed, &s->background, &s->scratch, s->layout,
                                s->fsm.max_runs);
    return ret ? colo_stream_set_error(s->in, ret, "%s", colo_errormsg()) : 0;
}

static const uint8_t *cache_block(const void *opaque, uint32_t block)
{
    return colo_ram_cache_block(opaque, block);
}

/*
 * Integrity on: reads checkpoint-digest and the digest and checks it against
 * what the cache holds for the validated list and the staged state. A
 * mismatch fails the checkpoint before anything is persisted or applied.
 */
static int check_digest(struct colo_secondary *s, uint64_t seq)
{
    uint8_t theirs[COLO_DIGEST_SIZE], ours[COLO_DIGEST_SIZE];
    struct colo_digest_input in = {
        .key = s->digest_key, .seq = seq, .runs = s->list.runs, .nruns = s->list.count,
        .layout = s->layout, .block = cache_block, .opaque = s->cache,
        .vmstate = s->staging, .vmstate_len = s->staging_len,
    };
    struct colo_msg msg;
    int ret;

    if (!s->fsm.integrity)
        return 0;
    ret = colo_recv_msg(&s->fsm, s->in, &msg); /* checkpoint-digest, its size checked */
    if (!ret) {
        colo_stream_set_context(s->in, "the secondary read the digest of checkpoint %" PRIu64,
                                seq);
        ret = colo_stream_get_buffer(s->in, theirs, sizeof(theirs));
    }
    if (ret)
        return ret;
    colo_digest_checkpoint(&in, ours);
    if (!colo_digest_equal(theirs, ours))
        return colo_stream_set_error(s->in, COLO_E_INTEGRITY,
                                     "secondary: checkpoint %" PRIu64 ": the digest does not "
                                     "match: the cache does not hold what the primary sent "
                                     "(%" PRIu64 " pages in %zu runs, %" PRIu64 " bytes of "
                                     "device state; injected or corrupted on the path); "
                                     "nothing was applied", seq, s->list.pages, s->list.count,
                                     s->staging_len);
    return 0;
}

int colo_secondary_serve_one(struct colo_secondary *s, struct colo_checkpoint_stats *st)
{
    struct colo_checkpoint_stats stats = {0};
    struct colo_msg msg;
    uint64_t t0, t1, now, seq;
    int ret;

    if (s->ack_err)
        return colo_stream_error(s->out);
    /* Between checkpoints the primary may take its time (rdma: as long as
     * its heartbeat shows it alive). */
    ret = colo_recv_msg_idle(&s->fsm, s->in, &msg);
    while (!ret && msg.cmd == COLO_CMD_BACKGROUND) {
        ret = receive_background(s, msg.value);
        if (!ret)
            ret = colo_recv_msg_idle(&s->fsm, s->in, &msg);
    }
    if (ret) {
        colo_fsm_fail(&s->fsm);
        return ret;
    }
    if (msg.cmd == COLO_CMD_GOODBYE) {
        COLO_TRACE(secondary_serve_goodbye, msg.value);
        return colo_err(COLO_E_SHUTDOWN, "primary ended the session after checkpoint %" PRIu64,
                        msg.value);
    }
    seq = msg.value;
    COLO_TRACE(secondary_serve_request, seq);
    colo_log(COLO_LOG_DEBUG, "secondary: checkpoint %" PRIu64 ": request received", seq);
    t0 = colo_now_ns();
    ret = call_vm(s, s->ops->stop_vm, "stopping the VM");
    if (!ret) /* flushed before the next wait (colo_secondary_init) */
        ret = colo_send_msg(&s->fsm, s->out, COLO_CMD_CHECKPOINT_REPLY, seq);
    if (ret)
        goto out_fail;

    t1 = colo_now_ns(); /* one clock read per phase boundary: it may be a system call */
    colo_dirty_list_reset(&s->placed);
    colo_stream_set_context(s->in, "the secondary received the pages of checkpoint %" PRIu64, seq);
    ret = colo_stream_load_ram(s->in, seq, &s->placed);
    if (!ret)
        ret = placed_with_background(s);
    if (ret)
        goto out_fail;
    now = colo_now_ns();
    stats.pages_ns = now - t1;
    stats.background_pages = s->background.pages;

    t1 = now;
    ret = colo_recv_msg(&s->fsm, s->in, &msg); /* vmstate-send */
    if (!ret)
        ret = colo_recv_msg(&s->fsm, s->in, &msg); /* dirty-list */
    if (!ret)
        ret = receive_dirty_list(s, msg.value);
    if (!ret)
        ret = colo_recv_msg(&s->fsm, s->in, &msg); /* vmstate-size, bounded by the fsm */
    if (!ret)
        ret = receive_vmstate(s, seq, msg.value);
    if (!ret)
        ret = check_digest(s, seq);
    if (ret)
        goto out_fail;
    now = colo_now_ns();
    stats.state_ns = now - t1;
    COLO_TRACE(secondary_serve_list_validated, seq, s->list.count, s->list.pages, s->staging_len);
    colo_log(COLO_LOG_DEBUG, "secondary: checkpoint %" PRIu64 ": dirty list of %zu runs (%"
             PRIu64 " pages) validated, %" PRIu64 " bytes of device state", seq, s->list.count,
             s->list.pages, s->staging_len);

    /* Only a complete, validated checkpoint is made durable and applied. */
    t1 = now;
    ret = colo_ram_cache_persist(s->cache, s->list.runs, s->list.count);
    if (ret) {
        colo_stream_set_error(s->in, ret, "%s", colo_errormsg());
        goto out_fail;
    }
    now = colo_now_ns();
    stats.received_ns = now - t1;
    COLO_TRACE(secondary_serve_persisted, seq, stats.received_ns);
    ret = send_flush(s, COLO_CMD_VMSTATE_RECEIVED, seq);
    if (ret)
        goto out_fail;
    colo_log(COLO_LOG_DEBUG, "secondary: checkpoint %" PRIu64 ": persisted in %" PRIu64
             " us, vmstate-received sent", seq, stats.received_ns / 1000);

    t1 = colo_now_ns(); /* received's post took its time */
    colo_ram_cache_apply(s->cache, s->list.runs, s->list.count);
    COLO_TRACE(secondary_serve_applied, seq, s->list.pages);
    ret = s->ops->load_vmstate ? s->ops->load_vmstate(s->opaque, s->staging, s->staging_len)
                               : 0;
    if (ret) {
        colo_stream_set_error(s->in, ret, "secondary: loading device state failed: %s",
                              colo_strerror(ret));
        goto out_fail;
    }
    ret = call_vm(s, s->ops->resume_vm, "resuming the VM");
    if (ret)
        goto out_fail;
    /* Applied: the guest holds this checkpoint, whether or not the
     * acknowledgement gets through (the state machine counts it as
     * completed once vmstate-loaded passed it, before it is written). Its
     * state is the last completed one before the primary can learn it. */
    vmstate_complete(s);
    colo_dirty_list_reset(&s->background);
    ret = send_flush(s, COLO_CMD_VMSTATE_LOADED, seq);
    now = colo_now_ns();
    stats.loaded_ns = now - t1;
    if (ret && s->fsm.completed == seq) {
        s->ack_err = ret;
        colo_fsm_fail(&s->fsm);
        colo_log(COLO_LOG_WARNING, "secondary: checkpoint %" PRIu64 " applied, but its "
                 "vmstate-loaded could not be sent: %s", seq, colo_errormsg());
    } else if (ret) {
        goto out_fail;
    } else {
        COLO_TRACE(secondary_serve_loaded_sent, seq, stats.loaded_ns);
        colo_log(COLO_LOG_DEBUG, "secondary: checkpoint %" PRIu64 ": applied and loaded in %"
                 PRIu64 " us, vmstate-loaded sent", seq, stats.loaded_ns / 1000);
    }
    stats.total_ns = now - t0;
    stats.seq = seq;
    stats.pages = s->list.pages;
    stats.page_bytes = s->list.pages * s->layout->page_size;
    stats.vmstate_bytes = s->vmstate_len;
    if (st)
        *st = stats;
    return 0;

out_fail:
    colo_fsm_fail(&s->fsm);
    return ret;
}
