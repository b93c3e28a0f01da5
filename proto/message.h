/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * COLO control messages: be32 command + be64 value on the wire.
 * Numbers 1..7 are the COLO-Frame series' commands; 8..11 are extensions
 * of protocol version 1, 12 and 13 of version 2, used only after the
 * handshake agreed on it.
 */
#ifndef COLO_PROTO_MESSAGE_H
#define COLO_PROTO_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/byteorder.h"

enum colo_cmd {
    COLO_CMD_INVALID = 0, /* zeroed memory never parses as a command */
    COLO_CMD_CHECKPOINT_READY = 1,
    COLO_CMD_CHECKPOINT_REQUEST = 2,
    COLO_CMD_CHECKPOINT_REPLY = 3,
    COLO_CMD_VMSTATE_SEND = 4,
    COLO_CMD_VMSTATE_SIZE = 5,
    COLO_CMD_VMSTATE_RECEIVED = 6,
    COLO_CMD_VMSTATE_LOADED = 7,
    /* extensions (protocol version 1); 8 and 10 are reserved: no state of
     * version 1 takes them (the rdma backend's heartbeat is a control-channel
     * type, failover is decided locally), so the codec refuses them */
    COLO_CMD_HEARTBEAT = 8,
    COLO_CMD_DIRTY_LIST = 9, /* value: run count; the runs follow */
    COLO_CMD_FAILOVER = 10,
    COLO_CMD_GOODBYE = 11,   /* value: last completed sequence number */
    /* version 2 only (the state machine refuses them in a version-1 session) */
    COLO_CMD_BACKGROUND = 12, /* value: the coming checkpoint's number; page frames follow */
    COLO_CMD_DIGEST = 13,     /* value: COLO_DIGEST_SIZE; the checkpoint's digest follows */
    COLO_CMD__MAX = COLO_CMD_DIGEST,
};

/* An integrity digest: HMAC-SHA256 (proto/digest.h). */
#define COLO_DIGEST_SIZE 32

#define COLO_MSG_WIRE_SIZE 12

/* Bounds that any decoded value must respect. */
#define COLO_SEQ_MAX (UINT64_MAX >> 1)
#define COLO_VMSTATE_HARD_MAX (1ull << 32)   /* 4 GiB; sessions configure less */
#define COLO_DIRTY_RUNS_HARD_MAX (1u << 24)  /* runs in one checkpoint */

struct colo_msg {
    uint32_t cmd;
    uint64_t value;
};

/* "checkpoint-request" etc.; "unknown" for numbers outside the enum. */
const char *colo_cmd_str(uint32_t cmd);

void colo_msg_encode(const struct colo_msg *msg, uint8_t out[COLO_MSG_WIRE_SIZE]);
/*
 * Decodes one message from len bytes. Rejects truncated input, command 0,
 * unknown and reserved commands and values outside the command's range, with a message
 * naming expected and received values. Returns 0 or COLO_E_PROTOCOL.
 */
int colo_msg_decode(const uint8_t *buf, size_t len, struct colo_msg *msg);

#endif
