/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "common/error.h"
#include "proto/fsm.h"

/* How a transition checks the message's value. */
enum value_rule {
    V_ANY_NONZERO, /* checkpoint-ready: the session epoch */
    V_NEXT_SEQ,    /* checkpoint-request: last completed + 1 */
    V_COMING_SEQ,  /* background-pages: last completed + 1, nothing begins */
    V_THIS_SEQ,    /* the rest of a checkpoint: the number in progress */
    V_COMPLETED,   /* goodbye: the last completed number */
    V_MAX_RUNS,    /* dirty-list: bounded run count */
    V_MAX_VMSTATE, /* vmstate-size: bounded byte count */
    V_DIGEST_SIZE, /* checkpoint-digest: COLO_DIGEST_SIZE */
};

/* Which sessions a transition belongs to (what the handshake agreed). */
enum need {
    ALWAYS,
    V2,           /* version 2 */
    INTEGRITY,    /* version 2 with digests */
    NO_INTEGRITY, /* without digests (every version-1 session) */
};

struct transition {
    enum colo_fsm_state from;
    uint32_t cmd;
    enum colo_role sender;
    enum value_rule rule;
    enum colo_fsm_state to;
    enum { BOTH_SIDES, SENDER_ONLY } view; /* SENDER_ONLY: never accepted from the peer */
    enum need need;
};

static const struct transition table[] = {
    {COLO_ST_WAIT_READY, COLO_CMD_CHECKPOINT_READY, COLO_ROLE_SECONDARY, V_ANY_NONZERO,
     COLO_ST_IDLE, BOTH_SIDES, ALWAYS},
    {COLO_ST_IDLE, COLO_CMD_CHECKPOINT_REQUEST, COLO_ROLE_PRIMARY, V_NEXT_SEQ,
     COLO_ST_REQUESTED, BOTH_SIDES, ALWAYS},
    {COLO_ST_IDLE, COLO_CMD_GOODBYE, COLO_ROLE_PRIMARY, V_COMPLETED, COLO_ST_CLOSED, BOTH_SIDES, ALWAYS},
    {COLO_ST_REQUESTED, COLO_CMD_CHECKPOINT_REPLY, COLO_ROLE_SECONDARY, V_THIS_SEQ,
     COLO_ST_REPLIED, BOTH_SIDES, ALWAYS},
    {COLO_ST_REPLIED, COLO_CMD_VMSTATE_SEND, COLO_ROLE_PRIMARY, V_THIS_SEQ, COLO_ST_ANNOUNCED,
     BOTH_SIDES, ALWAYS},
    {COLO_ST_ANNOUNCED, COLO_CMD_DIRTY_LIST, COLO_ROLE_PRIMARY, V_MAX_RUNS, COLO_ST_LISTED,
     BOTH_SIDES, ALWAYS},
    {COLO_ST_LISTED, COLO_CMD_VMSTATE_SIZE, COLO_ROLE_PRIMARY, V_MAX_VMSTATE, COLO_ST_SIZED,
     BOTH_SIDES, ALWAYS},
    {COLO_ST_SIZED, COLO_CMD_VMSTATE_RECEIVED, COLO_ROLE_SECONDARY, V_THIS_SEQ,
     COLO_ST_RECEIVED, BOTH_SIDES, NO_INTEGRITY},
    {COLO_ST_RECEIVED, COLO_CMD_VMSTATE_LOADED, COLO_ROLE_SECONDARY, V_THIS_SEQ, COLO_ST_IDLE,
     BOTH_SIDES, ALWAYS},
    /* Pipelined: the primary sends the whole checkpoint, then reads the reply.
     * The secondary sees the same order on the wire as without. */
    {COLO_ST_REQUESTED, COLO_CMD_VMSTATE_SEND, COLO_ROLE_PRIMARY, V_THIS_SEQ,
     COLO_ST_AHEAD_ANNOUNCED, SENDER_ONLY, ALWAYS},
    {COLO_ST_AHEAD_ANNOUNCED, COLO_CMD_DIRTY_LIST, COLO_ROLE_PRIMARY, V_MAX_RUNS,
     COLO_ST_AHEAD_LISTED, SENDER_ONLY, ALWAYS},
    {COLO_ST_AHEAD_LISTED, COLO_CMD_VMSTATE_SIZE, COLO_ROLE_PRIMARY, V_MAX_VMSTATE,
     COLO_ST_AHEAD_SIZED, SENDER_ONLY, ALWAYS},
    {COLO_ST_AHEAD_SIZED, COLO_CMD_CHECKPOINT_REPLY, COLO_ROLE_SECONDARY, V_THIS_SEQ,
     COLO_ST_SIZED, BOTH_SIDES, NO_INTEGRITY},
    /* Version 2: pages pushed between checkpoints travel in the stream,
     * announced; they belong to the coming checkpoint. */
    {COLO_ST_IDLE, COLO_CMD_BACKGROUND, COLO_ROLE_PRIMARY, V_COMING_SEQ, COLO_ST_IDLE,
     BOTH_SIDES, V2},
    /* Version 2 with integrity: the digest follows the device state, and the
     * secondary checks it before it persists or applies anything. */
    {COLO_ST_SIZED, COLO_CMD_DIGEST, COLO_ROLE_PRIMARY, V_DIGEST_SIZE, COLO_ST_DIGESTED,
     BOTH_SIDES, INTEGRITY},
    {COLO_ST_DIGESTED, COLO_CMD_VMSTATE_RECEIVED, COLO_ROLE_SECONDARY, V_THIS_SEQ,
     COLO_ST_RECEIVED, BOTH_SIDES, INTEGRITY},
    {COLO_ST_AHEAD_SIZED, COLO_CMD_DIGEST, COLO_ROLE_PRIMARY, V_DIGEST_SIZE,
     COLO_ST_AHEAD_DIGESTED, SENDER_ONLY, INTEGRITY},
    {COLO_ST_AHEAD_DIGESTED, COLO_CMD_CHECKPOINT_REPLY, COLO_ROLE_SECONDARY, V_THIS_SEQ,
     COLO_ST_DIGESTED, BOTH_SIDES, INTEGRITY},
};

static const char *const state_names[] = {
    [COLO_ST_WAIT_READY] = "wait-ready",
    [COLO_ST_IDLE] = "idle",
    [COLO_ST_REQUESTED] = "requested",
    [COLO_ST_REPLIED] = "replied",
    [COLO_ST_ANNOUNCED] = "announced",
    [COLO_ST_LISTED] = "listed",
    [COLO_ST_SIZED] = "sized",
    [COLO_ST_AHEAD_ANNOUNCED] = "announced ahead of the reply",
    [COLO_ST_AHEAD_LISTED] = "listed ahead of the reply",
    [COLO_ST_AHEAD_SIZED] = "sized ahead of the reply",
    [COLO_ST_AHEAD_DIGESTED] = "digested ahead of the reply",
    [COLO_ST_DIGESTED] = "digested",
    [COLO_ST_RECEIVED] = "received",
    [COLO_ST_CLOSED] = "closed",
    [COLO_ST_FAILED] = "failed",
};

const char *colo_fsm_state_str(enum colo_fsm_state st)
{
    if ((size_t)st >= sizeof(state_names) / sizeof(state_names[0]))
        return "unknown";
    return state_names[st];
}

static const char *role_str(enum colo_role r)
{
    return r == COLO_ROLE_PRIMARY ? "primary" : "secondary";
}

void colo_fsm_init(struct colo_fsm *fsm, enum colo_role role, uint64_t max_vmstate,
                   uint32_t max_runs)
{
    *fsm = (struct colo_fsm){
        .role = role,
        .state = COLO_ST_WAIT_READY,
        .max_vmstate = max_vmstate,
        .max_runs = max_runs,
        .version = 1,
    };
}

void colo_fsm_set_features(struct colo_fsm *fsm, uint16_t version, bool integrity)
{
    fsm->version = version;
    fsm->integrity = version >= 2 && integrity;
}

/* The transition belongs to this session's version and features. */
static bool applies(const struct colo_fsm *fsm, const struct transition *t)
{
    switch (t->need) {
    case V2:
        return fsm->version >= 2;
    case INTEGRITY:
        return fsm->integrity;
    case NO_INTEGRITY:
        return !fsm->integrity;
    default:
        return true;
    }
}

void colo_fsm_fail(struct colo_fsm *fsm)
{
    fsm->state = COLO_ST_FAILED;
}

/* Lists what the current state accepts, for error messages. */
static void expected_str(const struct colo_fsm *fsm, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]) && used < len; i++) {
        if (table[i].from != fsm->state || !applies(fsm, &table[i]) ||
            (table[i].view == SENDER_ONLY && table[i].sender != fsm->role))
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s from the %s", used ? " or " : "",
                                 colo_cmd_str(table[i].cmd), role_str(table[i].sender));
    }
    if (!buf[0])
        snprintf(buf, len, "nothing (session %s)", colo_fsm_state_str(fsm->state));
}

void colo_fsm_expected(const struct colo_fsm *fsm, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]) && used < len; i++) {
        if (table[i].from != fsm->state || table[i].sender == fsm->role ||
            !applies(fsm, &table[i]))
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " or " : "",
                                 colo_cmd_str(table[i].cmd));
    }
    if (!buf[0])
        snprintf(buf, len, "nothing (session %s)", colo_fsm_state_str(fsm->state));
}

uint64_t colo_fsm_current_seq(const struct colo_fsm *fsm)
{
    return fsm->seq > fsm->completed ? fsm->seq : fsm->completed + 1;
}

static int check_value(const struct colo_fsm *fsm, const struct transition *t,
                       const struct colo_msg *msg)
{
    uint64_t want;
    const char *name = colo_cmd_str(msg->cmd);

    switch (t->rule) {
    case V_ANY_NONZERO:
        if (msg->value == 0)
            return colo_err(COLO_E_PROTOCOL, "%s: expected a nonzero epoch, received 0", name);
        return 0;
    case V_NEXT_SEQ:
    case V_COMING_SEQ:
        want = fsm->completed + 1;
        break;
    case V_THIS_SEQ:
        want = fsm->seq;
        break;
    case V_COMPLETED:
        want = fsm->completed;
        break;
    case V_MAX_RUNS:
        if (msg->value > fsm->max_runs)
            return colo_err(COLO_E_PROTOCOL,
                            "%s: %" PRIu64 " runs exceed the maximum: expected at most %" PRIu32
                            " runs (a run holds at least one page: never more than the pages "
                            "of the RAM layout, nor %" PRIu32 ")",
                            name, msg->value, fsm->max_runs, (uint32_t)COLO_DIRTY_RUNS_HARD_MAX);
        return 0;
    case V_MAX_VMSTATE:
        if (msg->value > fsm->max_vmstate)
            return colo_err(COLO_E_PROTOCOL,
                            "%s: %" PRIu64 " bytes of device state exceed the maximum: expected "
                            "at most %" PRIu64,
                            name, msg->value, fsm->max_vmstate);
        return 0;
    case V_DIGEST_SIZE:
        if (msg->value != COLO_DIGEST_SIZE)
            return colo_err(COLO_E_PROTOCOL, "%s: a digest of %" PRIu64 " bytes: expected %d",
                            name, msg->value, COLO_DIGEST_SIZE);
        return 0;
    default:
        return colo_err(COLO_E_PROTOCOL, "%s: no value rule", name);
    }
    if (msg->value != want)
        return colo_err(COLO_E_PROTOCOL,
                        "%s: expected sequence number %" PRIu64 ", received %" PRIu64, name,
                        want, msg->value);
    return 0;
}

static int step(struct colo_fsm *fsm, enum colo_role sender, const struct colo_msg *msg)
{
    const struct transition *t = NULL;
    char want[256];
    int ret;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].from == fsm->state && table[i].cmd == msg->cmd &&
            table[i].sender == sender && applies(fsm, &table[i]) &&
            (table[i].view == BOTH_SIDES || sender == fsm->role)) {
            t = &table[i];
            break;
        }
    }
    if (!t) {
        expected_str(fsm, want, sizeof(want));
        ret = colo_err(COLO_E_PROTOCOL,
                       "unexpected %s (%" PRIu64 ") from the %s in state %s: expected %s",
                       colo_cmd_str(msg->cmd), msg->value, role_str(sender),
                       colo_fsm_state_str(fsm->state), want);
        fsm->state = COLO_ST_FAILED;
        return ret;
    }
    ret = check_value(fsm, t, msg);
    if (ret) {
        fsm->state = COLO_ST_FAILED;
        return ret;
    }
    if (t->rule == V_NEXT_SEQ)
        fsm->seq = msg->value;
    if (msg->cmd == COLO_CMD_VMSTATE_LOADED)
        fsm->completed = fsm->seq;
    fsm->state = t->to;
    return 0;
}

int colo_fsm_send(struct colo_fsm *fsm, const struct colo_msg *msg)
{
    return step(fsm, fsm->role, msg);
}

int colo_fsm_recv(struct colo_fsm *fsm, const struct colo_msg *msg)
{
    return step(fsm, fsm->role == COLO_ROLE_PRIMARY ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY,
                msg);
}
