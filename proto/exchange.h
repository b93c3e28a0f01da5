/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One COLO message through the state machine and onto (or off) a stream. */
#ifndef COLO_PROTO_EXCHANGE_H
#define COLO_PROTO_EXCHANGE_H

#include "proto/fsm.h"
#include "stream/stream.h"

/* Checks msg against the state machine and buffers it (no flush). */
int colo_send_msg(struct colo_fsm *fsm, struct colo_stream *f, uint32_t cmd, uint64_t value);
/* Reads, decodes and checks one message. On any failure the state machine
 * is failed and the error latched on f. */
int colo_recv_msg(struct colo_fsm *fsm, struct colo_stream *f, struct colo_msg *msg);
/* The same for the first message of a checkpoint, which may be long in
 * coming: no timeout where the backend watches the peer. */
int colo_recv_msg_idle(struct colo_fsm *fsm, struct colo_stream *f, struct colo_msg *msg);

#endif
