/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "common/error.h"
#include "proto/message.h"

static const char *const cmd_names[] = {
    [COLO_CMD_INVALID] = "invalid",
    [COLO_CMD_CHECKPOINT_READY] = "checkpoint-ready",
    [COLO_CMD_CHECKPOINT_REQUEST] = "checkpoint-request",
    [COLO_CMD_CHECKPOINT_REPLY] = "checkpoint-reply",
    [COLO_CMD_VMSTATE_SEND] = "vmstate-send",
    [COLO_CMD_VMSTATE_SIZE] = "vmstate-size",
    [COLO_CMD_VMSTATE_RECEIVED] = "vmstate-received",
    [COLO_CMD_VMSTATE_LOADED] = "vmstate-loaded",
    [COLO_CMD_HEARTBEAT] = "heartbeat",
    [COLO_CMD_DIRTY_LIST] = "dirty-list",
    [COLO_CMD_FAILOVER] = "failover",
    [COLO_CMD_GOODBYE] = "goodbye",
    [COLO_CMD_BACKGROUND] = "background-pages",
    [COLO_CMD_DIGEST] = "checkpoint-digest",
};

const char *colo_cmd_str(uint32_t cmd)
{
    if (cmd > COLO_CMD__MAX)
        return "unknown";
    return cmd_names[cmd];
}

void colo_msg_encode(const struct colo_msg *msg, uint8_t out[COLO_MSG_WIRE_SIZE])
{
    colo_put_be32(out, msg->cmd);
    colo_put_be64(out + 4, msg->value);
}

/* The largest value each command may carry; the smallest is 1 for sequence
 * numbers and the epoch, 0 otherwise. */
static void value_range(uint32_t cmd, uint64_t *lo, uint64_t *hi)
{
    switch (cmd) {
    case COLO_CMD_VMSTATE_SIZE:
        *lo = 0;
        *hi = COLO_VMSTATE_HARD_MAX;
        return;
    case COLO_CMD_DIRTY_LIST:
        *lo = 0;
        *hi = COLO_DIRTY_RUNS_HARD_MAX;
        return;
    case COLO_CMD_DIGEST:
        *lo = *hi = COLO_DIGEST_SIZE;
        return;
    case COLO_CMD_GOODBYE:
        *lo = 0; /* 0: no checkpoint completed yet */
        *hi = COLO_SEQ_MAX;
        return;
    default:
        *lo = 1;
        *hi = COLO_SEQ_MAX;
        return;
    }
}

int colo_msg_decode(const uint8_t *buf, size_t len, struct colo_msg *msg)
{
    uint64_t lo, hi;

    if (len < COLO_MSG_WIRE_SIZE)
        return colo_err(COLO_E_PROTOCOL,
                        "truncated COLO message: expected %d bytes, received %zu",
                        COLO_MSG_WIRE_SIZE, len);
    msg->cmd = colo_get_be32(buf);
    msg->value = colo_get_be64(buf + 4);
    if (msg->cmd == COLO_CMD_INVALID || msg->cmd > COLO_CMD__MAX)
        return colo_err(COLO_E_PROTOCOL,
                        "unknown COLO command %" PRIu32 ": expected 1..%d", msg->cmd,
                        COLO_CMD__MAX);
    if (msg->cmd == COLO_CMD_HEARTBEAT || msg->cmd == COLO_CMD_FAILOVER)
        return colo_err(COLO_E_PROTOCOL,
                        "COLO command %" PRIu32 " (%s) is reserved, never sent in protocol "
                        "version 1 or 2: expected 1..7, 9 or 11..13",
                        msg->cmd, colo_cmd_str(msg->cmd));
    value_range(msg->cmd, &lo, &hi);
    if (msg->value < lo || msg->value > hi)
        return colo_err(COLO_E_PROTOCOL,
                        "%s: value %" PRIu64 " out of range: expected %" PRIu64 "..%" PRIu64,
                        colo_cmd_str(msg->cmd), msg->value, lo, hi);
    return 0;
}
