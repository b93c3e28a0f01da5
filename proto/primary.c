/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
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
#include "proto/primary.h"

void colo_primary_init(struct colo_primary *p, struct colo_stream *out, struct colo_stream *in,
                       const struct colo_ram_layout *layout)
{
    memset(p, 0, sizeof(*p));
    /* The primary sends the sizes: its own limits are the hard ones. */
    colo_fsm_init(&p->fsm, COLO_ROLE_PRIMARY, COLO_VMSTATE_HARD_MAX, COLO_DIRTY_RUNS_HARD_MAX);
    p->out = out;
    p->in = in;
    p->layout = layout;
    /* Nothing held back is ever waited for (see send_request). */
    if (in && out)
        colo_stream_flush_before_wait(in, out);
}

void colo_primary_fini(struct colo_primary *p)
{
    colo_dirty_list_free(&p->list);
    colo_dirty_list_free(&p->background);
    colo_dirty_list_free(&p->pushing);
    colo_dirty_list_free(&p->scratch);
    free(p->wire);
    p->wire = NULL;
}

int colo_primary_wait_ready(struct colo_primary *p)
{
    struct colo_msg msg;
    int ret = colo_recv_msg(&p->fsm, p->in, &msg);

    if (!ret)
        p->epoch = msg.value;
    return ret;
}

/* A checkpoint was begun (its reply received) and is not committed yet. */
static bool begun(const struct colo_primary *p)
{
    return p->fsm.state == COLO_ST_REPLIED && p->cur.seq;
}

/* Between checkpoints (none begun, at most a vmstate-loaded to collect): 0, or
 * why `what` cannot start now. */
static int check_between(const struct colo_primary *p, const char *what)
{
    if (begun(p))
        return colo_err(-EINVAL, "%s: checkpoint %" PRIu64 " was begun: "
                        "expected colo_primary_checkpoint_commit()", what, p->cur.seq);
    if (p->fsm.state != COLO_ST_IDLE && !p->loaded_pending)
        return colo_err(COLO_E_PROTOCOL, "%s: session is %s, expected idle", what,
                        colo_fsm_state_str(p->fsm.state));
    return 0;
}

/* Pushes every run of list through the RAM hooks; returns when they are placed. */
static int push_list(struct colo_primary *p, const struct colo_dirty_list *list, uint64_t seq)
{
    int ret;

    colo_stream_set_context(p->out, "the primary pushed the pages of checkpoint %" PRIu64, seq);
    ret = colo_stream_before_ram_iterate(p->out, seq);

    for (size_t i = 0; !ret && i < list->count; i++)
        ret = colo_stream_save_page(p->out, &list->runs[i]);
    if (!ret)
        ret = colo_stream_after_ram_iterate(p->out, seq);
    if (!ret)
        ret = colo_stream_flush_ram(p->out);
    return ret;
}

/* into := into + add, canonical (both are canonical lists of the layout). */
static int merge_runs(struct colo_primary *p, struct colo_dirty_list *into,
                      const struct colo_dirty_list *add)
{
    return colo_dirty_list_merge(into, add, &p->scratch, p->layout, COLO_DIRTY_RUNS_HARD_MAX);
}

/* Background pushes move pages before their checkpoint: always where the
 * transport places them directly (rdma), in the stream (tcp) from version 2
 * on (announced by background-pages). */
static bool pushes_ahead(const struct colo_primary *p)
{
    return !colo_stream_places_pages(p->out) || p->fsm.version >= 2;
}

/*
 * The checkpoint's pages: where the background pushes moved theirs already,
 * only its own runs; otherwise (tcp, version 1) the frames must match the
 * list, so those runs join first. Either way the list sent then names both.
 */
static int push_pages(struct colo_primary *p, uint64_t seq)
{
    bool ahead = pushes_ahead(p);
    int ret = 0;

    if (!ahead && p->background.count)
        ret = merge_runs(p, &p->list, &p->background);
    if (!ret)
        ret = push_list(p, &p->list, seq);
    if (!ret && ahead && p->background.count)
        ret = merge_runs(p, &p->list, &p->background);
    return ret ? colo_stream_set_error(p->out, ret, "%s", colo_errormsg()) : 0;
}

/* Version 2 over a stream: background-pages, then the frames (ending with
 * the coming checkpoint's number), flushed so they move while the guest runs. */
static int push_announced(struct colo_primary *p, uint64_t seq)
{
    int ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_BACKGROUND, seq);

    if (!ret)
        ret = push_list(p, &p->pushing, seq);
    if (!ret)
        ret = colo_stream_fflush(p->out);
    return ret;
}

int colo_primary_background(struct colo_primary *p, const struct colo_dirty_run *runs,
                            size_t nruns)
{
    uint64_t seq;
    int ret = check_between(p, "background push");

    if (ret)
        return ret;
    /* Bad runs are refused before anything moves: the session stays usable. */
    ret = colo_dirty_list_normalize(&p->pushing, p->layout, runs, nruns,
                                    COLO_DIRTY_RUNS_HARD_MAX);
    if (ret || !p->pushing.count)
        return ret;
    ret = colo_primary_collect_loaded(p);
    if (ret)
        return ret;
    /* the coming checkpoint: only now, with early resume, is the last one completed */
    seq = p->fsm.completed + 1;
    /* v1 tcp carries pages only inside a checkpoint: there they wait for it. */
    if (pushes_ahead(p)) {
        COLO_TRACE(primary_push_background, seq, p->pushing.count, p->pushing.pages);
        ret = colo_stream_places_pages(p->out) ? push_announced(p, seq)
                                               : push_list(p, &p->pushing, seq);
    }
    if (!ret)
        ret = merge_runs(p, &p->background, &p->pushing);
    if (ret)
        colo_fsm_fail(&p->fsm);
    return ret;
}

static const uint8_t *guest_block(const void *opaque, uint32_t block)
{
    const struct colo_ram_layout *layout = opaque;

    return layout->blocks[block].host;
}

/*
 * Integrity on: checkpoint-digest and the digest, after the state. The guest
 * is stopped and its RAM holds exactly what was pushed for the whole list:
 * a page pushed in the background and written again since is in the list of
 * runs pushed now.
 */
static int send_digest(struct colo_primary *p, uint64_t seq, const void *vmstate, uint64_t len)
{
    uint8_t digest[COLO_DIGEST_SIZE];
    struct colo_digest_input in = {
        .key = p->digest_key, .seq = seq, .runs = p->list.runs, .nruns = p->list.count,
        .layout = p->layout, .block = guest_block, .opaque = p->layout,
        .vmstate = vmstate, .vmstate_len = len,
    };
    int ret;

    if (!p->fsm.integrity)
        return 0;
    colo_digest_checkpoint(&in, digest);
    ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_DIGEST, COLO_DIGEST_SIZE);
    if (!ret)
        colo_stream_put_buffer(p->out, digest, sizeof(digest));
    return ret;
}

static int send_state(struct colo_primary *p, uint64_t seq, const void *vmstate, uint64_t len)
{
    size_t wire_len = p->list.count * COLO_DIRTY_RUN_WIRE_SIZE;
    int ret = colo_grow_array(&p->wire, &p->wire_cap, wire_len, 1, "primary: dirty list");

    if (ret)
        return colo_stream_set_error(p->out, ret, "%s", colo_errormsg());
    colo_dirty_list_encode(p->list.runs, p->list.count, p->wire);
    ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_VMSTATE_SEND, seq);
    if (!ret)
        ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_DIRTY_LIST, p->list.count);
    if (!ret) {
        colo_stream_put_buffer(p->out, p->wire, wire_len);
        ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_VMSTATE_SIZE, len);
    }
    if (!ret) {
        colo_stream_set_context(p->out, "the primary sent the %" PRIu64 " bytes of device "
                                "state of checkpoint %" PRIu64, len, seq);
        colo_stream_put_buffer(p->out, vmstate, len);
        ret = send_digest(p, seq, vmstate, len);
    }
    if (!ret)
        ret = colo_stream_fflush(p->out);
    return ret;
}

/* Waits for one secondary message that the state machine expects next. */
static int expect(struct colo_primary *p)
{
    struct colo_msg msg;

    return colo_recv_msg(&p->fsm, p->in, &msg);
}

int colo_primary_collect_loaded(struct colo_primary *p)
{
    int ret;

    if (!p->loaded_pending)
        return 0;
    ret = expect(p); /* vmstate-loaded of the previous checkpoint */
    if (ret)
        colo_fsm_fail(&p->fsm);
    else
        COLO_TRACE(primary_collect_loaded, p->fsm.completed);
    p->loaded_pending = false;
    return ret;
}

/* The caller's device state, checked before anything is sent. */
static int check_vmstate(const void *vmstate, uint64_t vmstate_len)
{
    if (vmstate_len > COLO_VMSTATE_HARD_MAX || (vmstate_len && !vmstate))
        return colo_err(COLO_E_CONFIG,
                        "checkpoint: device state of %" PRIu64
                        " bytes: expected a buffer of at most %" PRIu64 " bytes",
                        vmstate_len, (uint64_t)COLO_VMSTATE_HARD_MAX);
    return 0;
}

/* The caller's list and state, into p->list; refused before anything is sent. */
static int take_list(struct colo_primary *p, const struct colo_dirty_run *runs, size_t nruns,
                     const void *vmstate, uint64_t vmstate_len)
{
    int ret = check_vmstate(vmstate, vmstate_len);

    return ret ? ret
               : colo_dirty_list_normalize(&p->list, p->layout, runs, nruns,
                                           COLO_DIRTY_RUNS_HARD_MAX);
}

/*
 * The start of every checkpoint: the previous vmstate-loaded collected (early
 * resume; its wait is this checkpoint's loaded_ns until it has its own), then
 * checkpoint-request sent (a failure to send fails the session): flushed, or
 * with flush false left to go with what follows. *seq its number, *t0 when
 * it went.
 */
static int send_request(struct colo_primary *p, uint64_t *seq, uint64_t *t0, bool flush)
{
    uint64_t t = colo_now_ns();
    int ret;

    memset(&p->cur, 0, sizeof(p->cur));
    ret = colo_primary_collect_loaded(p);
    if (ret)
        return ret;
    *t0 = colo_now_ns();
    p->cur.loaded_ns = *t0 - t;
    if (p->fsm.state != COLO_ST_IDLE)
        return colo_err(COLO_E_PROTOCOL, "checkpoint: session is %s, expected idle",
                        colo_fsm_state_str(p->fsm.state));
    *seq = p->fsm.completed + 1;
    COLO_TRACE(primary_begin, *seq);
    ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_CHECKPOINT_REQUEST, *seq);
    if (!ret && flush)
        ret = colo_stream_fflush(p->out);
    if (ret)
        colo_fsm_fail(&p->fsm);
    else
        COLO_TRACE(primary_begin_request_sent, *seq);
    return ret;
}

int colo_primary_begin(struct colo_primary *p, struct colo_checkpoint_stats *st)
{
    uint64_t t0, seq;
    int ret;

    if (begun(p))
        return colo_err(-EINVAL, "checkpoint begin: checkpoint %" PRIu64 " was begun and "
                        "is not committed: session is %s, expected idle", p->cur.seq,
                        colo_fsm_state_str(p->fsm.state));
    ret = send_request(p, &seq, &t0, true);
    if (ret)
        return ret;
    ret = expect(p); /* checkpoint-reply: the secondary stopped */
    if (ret) {
        colo_fsm_fail(&p->fsm);
        return ret;
    }
    p->cur.request_ns = colo_now_ns() - t0;
    COLO_TRACE(primary_begin_reply, seq, p->cur.request_ns);
    colo_log(COLO_LOG_DEBUG, "primary: checkpoint %" PRIu64 ": request sent, reply after %" PRIu64
             " us", seq, p->cur.request_ns / 1000);
    p->cur.seq = seq;
    if (st)
        *st = p->cur;
    return 0;
}

/*
 * Pushes p->list and the state, waits received (and loaded). After the
 * reply (begin), or pipelined: the request was sent at t0 and its reply is
 * read only once the whole checkpoint is on its way.
 */
static int commit_list(struct colo_primary *p, const void *vmstate, uint64_t vmstate_len,
                       bool reply_pending, uint64_t t0, struct colo_checkpoint_stats *st)
{
    struct colo_checkpoint_stats s = p->cur;
    uint64_t t1 = colo_now_ns(), now, seq = p->cur.seq;
    int ret;

    if (!reply_pending)
        t0 = t1;
    ret = push_pages(p, seq);
    if (ret)
        goto out_fail;
    /* one clock read per phase boundary: it may be a system call */
    now = colo_now_ns();
    s.pages_ns = now - t1;
    t1 = now;
    COLO_TRACE(primary_commit_pages_pushed, seq, p->list.count, p->list.pages, s.pages_ns);
    colo_log(COLO_LOG_DEBUG, "primary: checkpoint %" PRIu64 ": %" PRIu64 " pages in %zu runs "
             "pushed in %" PRIu64 " us", seq, p->list.pages, p->list.count, s.pages_ns / 1000);

    ret = send_state(p, seq, vmstate, vmstate_len);
    if (ret)
        goto out_fail;
    now = colo_now_ns();
    s.state_ns = now - t1;
    /* the list named them: they are this one's (over tcp v1 they moved only now) */
    s.background_pages = pushes_ahead(p) ? p->background.pages : 0;
    colo_dirty_list_reset(&p->background);
    COLO_TRACE(primary_commit_state_sent, seq, vmstate_len, s.state_ns);
    colo_log(COLO_LOG_DEBUG, "primary: checkpoint %" PRIu64 ": %" PRIu64 " bytes of device "
             "state sent in %" PRIu64 " us", seq, vmstate_len, s.state_ns / 1000);
    t1 = now;
    if (reply_pending) {
        ret = expect(p); /* checkpoint-reply, long on its way by now */
        if (ret)
            goto out_fail;
        now = colo_now_ns();
        s.request_ns = now - t1;
        COLO_TRACE(primary_begin_reply, seq, s.request_ns);
        colo_log(COLO_LOG_DEBUG, "primary: checkpoint %" PRIu64 ": request sent ahead of the "
                 "push, then %" PRIu64 " us waited for the reply", seq, s.request_ns / 1000);
        t1 = now;
    }

    ret = expect(p); /* vmstate-received: state durable at the secondary */
    if (ret)
        goto out_fail;
    now = colo_now_ns();
    s.received_ns = now - t1;
    COLO_TRACE(primary_commit_received, seq, s.received_ns);
    colo_log(COLO_LOG_DEBUG, "primary: checkpoint %" PRIu64 ": vmstate-received after %" PRIu64
             " us", seq, s.received_ns / 1000);
    t1 = now;

    if (p->early_resume) {
        /* The guest may run: the checkpoint is durable at the secondary. */
        p->loaded_pending = true;
    } else {
        ret = expect(p); /* vmstate-loaded */
        if (ret)
            goto out_fail;
        now = colo_now_ns();
        s.loaded_ns = now - t1;
        COLO_TRACE(primary_commit_loaded, seq, s.loaded_ns);
        colo_log(COLO_LOG_DEBUG, "primary: checkpoint %" PRIu64 ": vmstate-loaded after %" PRIu64
                 " us", seq, s.loaded_ns / 1000);
    }
    s.total_ns = now - t0;
    s.pages = p->list.pages;
    s.page_bytes = p->list.pages * p->layout->page_size;
    s.vmstate_bytes = vmstate_len;
    p->cur.seq = 0;
    if (st)
        *st = s;
    return 0;

out_fail:
    colo_fsm_fail(&p->fsm);
    return ret;
}

int colo_primary_commit(struct colo_primary *p, const struct colo_dirty_run *runs, size_t nruns,
                        const void *vmstate, uint64_t vmstate_len,
                        struct colo_checkpoint_stats *st)
{
    int ret;

    if (!begun(p))
        return colo_err(-EINVAL, "checkpoint commit: session is %s, expected a "
                        "begun checkpoint (colo_primary_checkpoint_begin first)",
                        colo_fsm_state_str(p->fsm.state));
    /* A bad list or state is refused before anything is sent: commit may be
     * called again. */
    ret = take_list(p, runs, nruns, vmstate, vmstate_len);
    return ret ? ret : commit_list(p, vmstate, vmstate_len, false, 0, st);
}

/*
 * The pipelined exchange: checkpoint-request, then at once the pages, the
 * list and the state, and only then the reply. The secondary reads the same
 * order as without and checks everything before it trusts the cache; with
 * early resume the previous checkpoint's vmstate-loaded is collected first,
 * so no page lands in the cache while the secondary still applies from it.
 */
static int run_pipelined(struct colo_primary *p, const void *vmstate, uint64_t vmstate_len,
                         struct colo_checkpoint_stats *st)
{
    uint64_t t0, seq;
    int ret;

    /* On its way at once, so that the secondary stops its guest while the
     * pages move; with no pages to move it leaves with the state, in one
     * message (rdma: one SEND) for an empty checkpoint. */
    ret = send_request(p, &seq, &t0, p->list.count > 0);
    if (ret)
        return ret;
    p->cur.seq = seq;
    return commit_list(p, vmstate, vmstate_len, true, t0, st);
}

int colo_primary_run(struct colo_primary *p, const struct colo_dirty_run *runs, size_t nruns,
                     const void *vmstate, uint64_t vmstate_len, struct colo_checkpoint_stats *st)
{
    struct colo_checkpoint_stats s;
    int ret;

    /* In one call, a bad list or state leaves the session idle and usable. */
    ret = check_between(p, "checkpoint");
    if (!ret)
        ret = take_list(p, runs, nruns, vmstate, vmstate_len);
    if (ret)
        return ret;
    if (p->pipelined)
        return run_pipelined(p, vmstate, vmstate_len, st);
    ret = colo_primary_begin(p, NULL);
    if (!ret)
        ret = commit_list(p, vmstate, vmstate_len, false, 0, &s);
    if (ret)
        return ret;
    /* In one call the request's round trip is part of the pause. */
    s.total_ns += s.request_ns;
    if (st)
        *st = s;
    return 0;
}

int colo_primary_goodbye(struct colo_primary *p)
{
    int ret = colo_primary_collect_loaded(p);

    if (ret || p->fsm.state != COLO_ST_IDLE)
        return 0;
    ret = colo_send_msg(&p->fsm, p->out, COLO_CMD_GOODBYE, p->fsm.completed);
    return ret ? ret : colo_stream_fflush(p->out);
}
