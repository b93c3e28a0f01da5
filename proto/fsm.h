/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checkpoint protocol as one explicit state machine, seen from either
 * side. Both roles walk the same table of states; a message is legal only if
 * the table lists it for the current state with the right sender and value.
 * The primary and secondary drivers (primary.c, secondary.c) call
 * colo_fsm_send() before every message they write and colo_fsm_recv() on
 * every message they read, so a wrong command, a wrong sequence number or a
 * message in the wrong state ends the session with a clear error.
 */
#ifndef COLO_PROTO_FSM_H
#define COLO_PROTO_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/message.h"

enum colo_role {
    COLO_ROLE_PRIMARY,
    COLO_ROLE_SECONDARY,
};

enum colo_fsm_state {
    COLO_ST_WAIT_READY,   /* connected, before checkpoint-ready */
    COLO_ST_IDLE,         /* between checkpoints */
    COLO_ST_REQUESTED,    /* checkpoint-request passed */
    COLO_ST_REPLIED,      /* checkpoint-reply passed: pages move now */
    COLO_ST_ANNOUNCED,    /* vmstate-send passed */
    COLO_ST_LISTED,       /* dirty-list passed */
    COLO_ST_SIZED,        /* vmstate-size passed, device state follows */
    /* The primary's own view when it pushes ahead of checkpoint-reply (the
     * pipelined exchange): what it sent, with the reply still to come. The
     * secondary never enters these: it replies before it reads on. */
    COLO_ST_AHEAD_ANNOUNCED,
    COLO_ST_AHEAD_LISTED,
    COLO_ST_AHEAD_SIZED,
    COLO_ST_AHEAD_DIGESTED,
    COLO_ST_DIGESTED,     /* checkpoint-digest passed (version 2, integrity on) */
    COLO_ST_RECEIVED,     /* vmstate-received passed */
    COLO_ST_CLOSED,       /* goodbye passed */
    COLO_ST_FAILED,       /* a violation or a transport error */
};

struct colo_fsm {
    enum colo_role role;
    enum colo_fsm_state state;
    uint64_t seq;       /* checkpoint in progress (or last one) */
    uint64_t completed; /* last checkpoint that reached vmstate-loaded */
    uint64_t max_vmstate;
    uint32_t max_runs;
    uint16_t version; /* agreed in the handshake: 1 until told otherwise */
    bool integrity;   /* version 2: every checkpoint carries a digest */
};

void colo_fsm_init(struct colo_fsm *fsm, enum colo_role role, uint64_t max_vmstate,
                   uint32_t max_runs);
/* This side is about to send msg: 0, or COLO_E_PROTOCOL (a bug of ours). */
int colo_fsm_send(struct colo_fsm *fsm, const struct colo_msg *msg);
/* This side received msg: 0, or COLO_E_PROTOCOL naming expected and received. */
int colo_fsm_recv(struct colo_fsm *fsm, const struct colo_msg *msg);
/* What the handshake agreed: the protocol version (1 or 2) and whether
 * checkpoints carry a digest (version 2 only). Before checkpoint-ready. */
void colo_fsm_set_features(struct colo_fsm *fsm, uint16_t version, bool integrity);
/* Marks the session failed: every later step is refused. */
void colo_fsm_fail(struct colo_fsm *fsm);
const char *colo_fsm_state_str(enum colo_fsm_state st);
/* The commands this side may receive next, as "checkpoint-request or goodbye". */
void colo_fsm_expected(const struct colo_fsm *fsm, char *buf, size_t len);
/* The checkpoint being worked on: the one requested, or the next after the
 * last completed (also between checkpoints and after a failure there). */
uint64_t colo_fsm_current_seq(const struct colo_fsm *fsm);
#define COLO_FSM_ROLE_STR(fsm) ((fsm)->role == COLO_ROLE_PRIMARY ? "primary" : "secondary")

#endif
