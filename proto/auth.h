/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mutual authentication with a shared key, run over the stream right after
 * the hello and before any memory key or address crosses:
 *   both: be32 "AUTH" | 32-byte random nonce
 *   both: HMAC-SHA256(key, "colo-rdma-auth-v1" | own role | peer nonce | own nonce)
 * Each side checks the peer's proof; the roles in the proofs stop a peer
 * from reflecting one side's proof back to it. A peer without the key learns
 * nothing it could use and is refused.
 * Version 2 proves the hellos too, so that nobody on the path can change
 * what the two sides agreed on (a capability stripped, say) unnoticed:
 *   HMAC-SHA256(key, "colo-rdma-auth-v2" | own role | peer nonce | own nonce |
 *               primary's hello | secondary's hello)
 * and derives the session's digest key (integrity digests, version 2):
 *   HMAC-SHA256(key, "colo-rdma-digest-v2" | primary nonce | secondary nonce)
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

/* What the proofs cover beyond the nonces: version 1 nothing (hellos NULL),
 * version 2 both hellos. */
struct colo_auth_transcript {
    const uint8_t *primary_hello;   /* COLO_HELLO_WIRE_SIZE bytes, or NULL: version 1 */
    const uint8_t *secondary_hello; /* the same */
};

/* Runs the exchange; with a version-2 transcript, also fills digest_key
 * (may be NULL). */
int colo_auth_run(struct colo_stream *out, struct colo_stream *in, enum colo_role role,
                  const uint8_t *key, size_t key_len, const struct colo_auth_transcript *t,
                  uint8_t digest_key[COLO_AUTH_PROOF]);
/* The proof a side with role sends (exposed for tests); t NULL or without
 * hellos: version 1. */
void colo_auth_proof(const uint8_t *key, size_t key_len, enum colo_role role,
                     const uint8_t peer_nonce[COLO_AUTH_NONCE],
                     const uint8_t own_nonce[COLO_AUTH_NONCE],
                     const struct colo_auth_transcript *t, uint8_t out[COLO_AUTH_PROOF]);
/* The digest key of a version-2 session (exposed for tests). */
void colo_auth_digest_key(const uint8_t *key, size_t key_len,
                          const uint8_t primary_nonce[COLO_AUTH_NONCE],
                          const uint8_t secondary_nonce[COLO_AUTH_NONCE],
                          uint8_t out[COLO_AUTH_PROOF]);

#endif
