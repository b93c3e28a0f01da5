/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control-message codec (proto/message.c) and the state machine behind
 * it (proto/fsm.c). The input is a run of 12-byte messages as a peer would
 * send them. Checks: colo_msg_decode agrees with an independent reading of
 * the protocol table (command 1..13, per-command value range), a decoded
 * message re-encodes to the same bytes, and a secondary's state machine fed
 * the decoded messages never leaves a failed state and keeps its sequence
 * numbers consistent.
 */
#include <stdint.h>
#include <string.h>

#include "common/error.h"
#include "fuzz_common.h"
#include "proto/fsm.h"
#include "proto/message.h"

/* The table of DESIGN.md and README.md, written out independently of message.c. */
static int reference_valid(uint32_t cmd, uint64_t value)
{
    switch (cmd) {
    case COLO_CMD_VMSTATE_SIZE:
        return value <= (1ull << 32);
    case COLO_CMD_DIRTY_LIST:
        return value <= (1ull << 24);
    case COLO_CMD_GOODBYE:
        return value <= (UINT64_MAX >> 1);
    case COLO_CMD_DIGEST: /* version 2 */
        return value == 32;
    case COLO_CMD_BACKGROUND: /* version 2 */
    case COLO_CMD_CHECKPOINT_READY:
    case COLO_CMD_CHECKPOINT_REQUEST:
    case COLO_CMD_CHECKPOINT_REPLY:
    case COLO_CMD_VMSTATE_SEND:
    case COLO_CMD_VMSTATE_RECEIVED:
    case COLO_CMD_VMSTATE_LOADED:
        return value >= 1 && value <= (UINT64_MAX >> 1);
    default:
        return 0;
    }
}

/* Commands the secondary sends; everything else comes from the primary. */
static int sent_by_secondary(uint32_t cmd)
{
    return cmd == COLO_CMD_CHECKPOINT_READY || cmd == COLO_CMD_CHECKPOINT_REPLY ||
           cmd == COLO_CMD_VMSTATE_RECEIVED || cmd == COLO_CMD_VMSTATE_LOADED;
}

static void check_one(const uint8_t *buf, size_t len)
{
    struct colo_msg msg;
    uint8_t wire[COLO_MSG_WIRE_SIZE];
    int ret = colo_msg_decode(buf, len, &msg);

    if (len < COLO_MSG_WIRE_SIZE) {
        FUZZ_CHECK(ret == COLO_E_PROTOCOL);
        return;
    }
    FUZZ_CHECK(ret == 0 || ret == COLO_E_PROTOCOL);
    FUZZ_CHECK(colo_cmd_str(colo_get_be32(buf)) != NULL);
    FUZZ_CHECK((ret == 0) == reference_valid(colo_get_be32(buf), colo_get_be64(buf + 4)));
    if (ret) {
        FUZZ_CHECK(colo_errormsg()[0] != '\0');
        return;
    }
    FUZZ_CHECK(strcmp(colo_cmd_str(msg.cmd), "unknown") != 0);
    colo_msg_encode(&msg, wire);
    FUZZ_CHECK(memcmp(wire, buf, sizeof(wire)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct colo_fsm fsm;
    uint64_t last_seq = 0, last_completed = 0;
    int failed = 0;

    colo_err_clear();
    /* The whole input as one message (short inputs must be refused). */
    check_one(data, size);
    colo_fsm_init(&fsm, COLO_ROLE_SECONDARY, 4096, 16);
    for (size_t off = 0; off + COLO_MSG_WIRE_SIZE <= size; off += COLO_MSG_WIRE_SIZE) {
        struct colo_msg msg;
        int ret;

        check_one(data + off, COLO_MSG_WIRE_SIZE);
        if (colo_msg_decode(data + off, COLO_MSG_WIRE_SIZE, &msg))
            continue;
        ret = sent_by_secondary(msg.cmd) ? colo_fsm_send(&fsm, &msg) : colo_fsm_recv(&fsm, &msg);
        FUZZ_CHECK(ret == 0 || ret == COLO_E_PROTOCOL);
        if (failed)
            FUZZ_CHECK(ret != 0); /* a failed session stays failed */
        if (ret) {
            FUZZ_CHECK(fsm.state == COLO_ST_FAILED);
            failed = 1;
            continue;
        }
        FUZZ_CHECK(fsm.state != COLO_ST_FAILED);
        FUZZ_CHECK(fsm.completed <= fsm.seq);
        FUZZ_CHECK(fsm.seq >= last_seq && fsm.completed >= last_completed);
        if (msg.cmd == COLO_CMD_CHECKPOINT_REQUEST)
            FUZZ_CHECK(msg.value == last_completed + 1);
        if (msg.cmd == COLO_CMD_VMSTATE_LOADED)
            FUZZ_CHECK(fsm.completed == msg.value && fsm.state == COLO_ST_IDLE);
        if (msg.cmd == COLO_CMD_DIRTY_LIST)
            FUZZ_CHECK(msg.value <= fsm.max_runs);
        if (msg.cmd == COLO_CMD_VMSTATE_SIZE)
            FUZZ_CHECK(msg.value <= fsm.max_vmstate);
        last_seq = fsm.seq;
        last_completed = fsm.completed;
    }
    return 0;
}
