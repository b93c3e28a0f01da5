/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <glib.h>
#include <string.h>
#include <sys/random.h>

#include "common/error.h"
#include "proto/auth.h"
#include "proto/digest.h"
#include "proto/handshake.h"

#define AUTH_MAGIC 0x41555448u /* "AUTH" */
static const char label_v1[] = "colo-rdma-auth-v1";
static const char label_v2[] = "colo-rdma-auth-v2";
static const char label_digest[] = "colo-rdma-digest-v2";

static bool is_v2(const struct colo_auth_transcript *t)
{
    return t && t->primary_hello && t->secondary_hello;
}

void colo_auth_proof(const uint8_t *key, size_t key_len, enum colo_role role,
                     const uint8_t peer_nonce[COLO_AUTH_NONCE],
                     const uint8_t own_nonce[COLO_AUTH_NONCE],
                     const struct colo_auth_transcript *t, uint8_t out[COLO_AUTH_PROOF])
{
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, key_len ? key : (const uint8_t *)"", key_len);
    uint8_t r = (uint8_t)role;
    gsize len = COLO_AUTH_PROOF;

    if (is_v2(t))
        g_hmac_update(h, (const guchar *)label_v2, sizeof(label_v2));
    else
        g_hmac_update(h, (const guchar *)label_v1, sizeof(label_v1));
    g_hmac_update(h, &r, 1);
    g_hmac_update(h, peer_nonce, COLO_AUTH_NONCE);
    g_hmac_update(h, own_nonce, COLO_AUTH_NONCE);
    if (is_v2(t)) {
        g_hmac_update(h, t->primary_hello, COLO_HELLO_WIRE_SIZE);
        g_hmac_update(h, t->secondary_hello, COLO_HELLO_WIRE_SIZE);
    }
    g_hmac_get_digest(h, out, &len);
    g_hmac_unref(h);
}

void colo_auth_digest_key(const uint8_t *key, size_t key_len,
                          const uint8_t primary_nonce[COLO_AUTH_NONCE],
                          const uint8_t secondary_nonce[COLO_AUTH_NONCE],
                          uint8_t out[COLO_AUTH_PROOF])
{
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, key_len ? key : (const uint8_t *)"", key_len);
    gsize len = COLO_AUTH_PROOF;

    g_hmac_update(h, (const guchar *)label_digest, sizeof(label_digest));
    g_hmac_update(h, primary_nonce, COLO_AUTH_NONCE);
    g_hmac_update(h, secondary_nonce, COLO_AUTH_NONCE);
    g_hmac_get_digest(h, out, &len);
    g_hmac_unref(h);
}

int colo_auth_run(struct colo_stream *out, struct colo_stream *in, enum colo_role role,
                  const uint8_t *key, size_t key_len, const struct colo_auth_transcript *t,
                  uint8_t digest_key[COLO_AUTH_PROOF])
{
    enum colo_role peer_role = role == COLO_ROLE_PRIMARY ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY;
    uint8_t mine[COLO_AUTH_NONCE], theirs[COLO_AUTH_NONCE];
    uint8_t proof[COLO_AUTH_PROOF], want[COLO_AUTH_PROOF];
    uint32_t magic;
    int ret;

    if (getrandom(mine, sizeof(mine), 0) != sizeof(mine))
        return colo_err(-errno, "authentication: no random bytes: %s", strerror(errno));
    colo_stream_put_be32(out, AUTH_MAGIC);
    colo_stream_put_buffer(out, mine, sizeof(mine));
    ret = colo_stream_fflush(out);
    if (ret)
        return ret;
    /* The magic first: a peer that skips authentication is told at once,
     * not after waiting for a challenge that never comes. */
    magic = colo_stream_get_be32(in);
    ret = colo_stream_error(in);
    if (ret)
        return ret;
    if (magic != AUTH_MAGIC)
        return colo_err(COLO_E_AUTH, "authentication: peer sent 0x%08x, expected the AUTH "
                        "challenge", magic);
    ret = colo_stream_get_buffer(in, theirs, sizeof(theirs));
    if (ret)
        return ret;
    if (!memcmp(mine, theirs, sizeof(mine)))
        return colo_err(COLO_E_AUTH, "authentication: the peer echoed our challenge");
    colo_auth_proof(key, key_len, role, theirs, mine, t, proof);
    colo_stream_put_buffer(out, proof, sizeof(proof));
    ret = colo_stream_fflush(out);
    if (!ret)
        ret = colo_stream_get_buffer(in, proof, sizeof(proof));
    if (ret)
        return ret;
    colo_auth_proof(key, key_len, peer_role, mine, theirs, t, want);
    if (!colo_digest_equal(proof, want)) /* constant time */
        return colo_err(COLO_E_AUTH, "authentication failed: the %s does not hold the same key%s",
                        peer_role == COLO_ROLE_PRIMARY ? "primary" : "secondary",
                        is_v2(t) ? " (or the hellos were changed on the way)" : "");
    if (digest_key && is_v2(t)) {
        if (role == COLO_ROLE_PRIMARY)
            colo_auth_digest_key(key, key_len, mine, theirs, digest_key);
        else
            colo_auth_digest_key(key, key_len, theirs, mine, digest_key);
    }
    return 0;
}
