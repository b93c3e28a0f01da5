/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mutual authentication with a shared key, run over the stream right after
 * the hello and before any memory key or address crosses:
 *   both: be32 "AUTH" | 32-byte random nonce
 *   both: HMAC-SHA256(key, "colo-rdma-auth-v1" | own role | peer nonce | own nonce)
 * Each side checks the peer's proof; the roles in the proofs stop a peer
 * from reflecting one side's proof back to it. A peer without the key learns
 * nothing it could use and is refused.
 */
#ifndef COLO_PROTO_AUTH_H
#define COLO_PROTO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "proto/fsm.h"
#include "stream/stream.h"

#define COLO_AUTH_NONCE 32
#define COLO_AUTH_PROOF 32
#define COLO_AUTH_KEY_MAX 1024

int colo_auth_run(struct colo_stream *out, struct colo_stream *in, enum colo_role role,
                  const uint8_t *key, size_t key_len);
/* The proof a side with role sends (exposed for tests). */
void colo_auth_proof(const uint8_t *key, size_t key_len, enum colo_role role,
                     const uint8_t peer_nonce[COLO_AUTH_NONCE],
                     const uint8_t own_nonce[COLO_AUTH_NONCE], uint8_t out[COLO_AUTH_PROOF]);

#endif
