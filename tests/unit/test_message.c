/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control-message codec and the handshake codec: round trips and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "proto/auth.h"
#include "proto/handshake.h"
#include "proto/message.h"

static void test_round_trip_every_command(void **state)
{
    for (uint32_t cmd = 1; cmd <= COLO_CMD__MAX; cmd++) {
        if (cmd == COLO_CMD_HEARTBEAT || cmd == COLO_CMD_FAILOVER)
            continue; /* reserved: test_rejects_invalid_unknown_and_reserved */
        if (cmd == COLO_CMD_DIGEST) {
            /* one value only: test_rejects_out_of_range_values */
            struct colo_msg in = {.cmd = cmd, .value = COLO_DIGEST_SIZE}, out;
            uint8_t wire[COLO_MSG_WIRE_SIZE];

            colo_msg_encode(&in, wire);
            assert_int_equal(colo_msg_decode(wire, sizeof(wire), &out), 0);
            assert_true(out.cmd == cmd && out.value == COLO_DIGEST_SIZE);
            continue;
        }
        uint64_t values[] = {1, 2, 1000, cmd == COLO_CMD_VMSTATE_SIZE ? COLO_VMSTATE_HARD_MAX
                                         : cmd == COLO_CMD_DIRTY_LIST ? COLO_DIRTY_RUNS_HARD_MAX
                                                                      : COLO_SEQ_MAX};
        for (size_t i = 0; i < 4; i++) {
            struct colo_msg in = {.cmd = cmd, .value = values[i]}, out;
            uint8_t wire[COLO_MSG_WIRE_SIZE];

            colo_msg_encode(&in, wire);
            assert_int_equal(colo_msg_decode(wire, sizeof(wire), &out), 0);
            assert_int_equal(out.cmd, cmd);
            assert_true(out.value == values[i]);
        }
    }
}

static void test_wire_layout_is_big_endian(void **state)
{
    struct colo_msg m = {.cmd = COLO_CMD_VMSTATE_SIZE, .value = 0x0102030405060708ull};
    uint8_t wire[COLO_MSG_WIRE_SIZE];
    const uint8_t want[] = {0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8};

    colo_msg_encode(&m, wire);
    assert_memory_equal(wire, want, sizeof(want));
}

static void test_rejects_truncated(void **state)
{
    uint8_t wire[COLO_MSG_WIRE_SIZE] = {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};
    struct colo_msg m;

    for (size_t len = 0; len < COLO_MSG_WIRE_SIZE; len++) {
        assert_int_equal(colo_msg_decode(wire, len, &m), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), "expected 12 bytes"));
    }
}

/* Unknown commands, and the reserved 8 and 10 that no state takes. */
static void test_rejects_invalid_unknown_and_reserved(void **state)
{
    struct {
        uint32_t cmd;
        const char *why;
    } bad[] = {
        {0, "unknown COLO command 0: expected 1..13"},
        {COLO_CMD__MAX + 1, "unknown COLO command 14: expected 1..13"},
        {100, "unknown COLO command 100: expected 1..13"},
        /* a uint32 command is printed unsigned, never as a negative number */
        {UINT32_MAX, "unknown COLO command 4294967295: expected 1..13"},
        {COLO_CMD_HEARTBEAT, "8 (heartbeat) is reserved, never sent in protocol version 1 or 2: "
                             "expected 1..7, 9 or 11..13"},
        {COLO_CMD_FAILOVER, "10 (failover) is reserved"},
    };
    struct colo_msg m;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t wire[COLO_MSG_WIRE_SIZE];

        colo_msg_encode(&(struct colo_msg){.cmd = bad[i].cmd, .value = 1}, wire);
        assert_int_equal(colo_msg_decode(wire, sizeof(wire), &m), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), bad[i].why));
    }
}

static void test_rejects_out_of_range_values(void **state)
{
    struct {
        uint32_t cmd;
        uint64_t value;
    } bad[] = {
        {COLO_CMD_CHECKPOINT_READY, 0},     {COLO_CMD_CHECKPOINT_REQUEST, 0},
        {COLO_CMD_CHECKPOINT_REPLY, 0},     {COLO_CMD_VMSTATE_SEND, COLO_SEQ_MAX + 1},
        {COLO_CMD_VMSTATE_RECEIVED, 0},     {COLO_CMD_VMSTATE_LOADED, UINT64_MAX},
        {COLO_CMD_VMSTATE_SIZE, COLO_VMSTATE_HARD_MAX + 1},
        {COLO_CMD_DIRTY_LIST, COLO_DIRTY_RUNS_HARD_MAX + 1ull},
        {COLO_CMD_GOODBYE, UINT64_MAX},
        {COLO_CMD_BACKGROUND, 0},
        {COLO_CMD_DIGEST, COLO_DIGEST_SIZE - 1},
        {COLO_CMD_DIGEST, COLO_DIGEST_SIZE + 1},
    };
    struct colo_msg m;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t wire[COLO_MSG_WIRE_SIZE];

        colo_msg_encode(&(struct colo_msg){.cmd = bad[i].cmd, .value = bad[i].value}, wire);
        assert_int_equal(colo_msg_decode(wire, sizeof(wire), &m), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), "out of range"));
        assert_non_null(strstr(colo_errormsg(), colo_cmd_str(bad[i].cmd)));
    }
}

static void test_command_names(void **state)
{
    assert_string_equal(colo_cmd_str(COLO_CMD_INVALID), "invalid");
    assert_string_equal(colo_cmd_str(COLO_CMD_CHECKPOINT_READY), "checkpoint-ready");
    assert_string_equal(colo_cmd_str(COLO_CMD_VMSTATE_LOADED), "vmstate-loaded");
    assert_string_equal(colo_cmd_str(COLO_CMD_GOODBYE), "goodbye");
    assert_string_equal(colo_cmd_str(COLO_CMD__MAX + 1), "unknown");
    assert_int_equal(COLO_CMD_CHECKPOINT_REQUEST, 2);
    assert_int_equal(COLO_CMD_VMSTATE_SIZE, 5);
}

static void make_layout(struct colo_ram_layout *l, uint64_t len2)
{
    static uint8_t ram[3][8192];

    assert_int_equal(colo_ram_layout_init(l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(l, "pc.ram", ram[0], 8192), 0);
    assert_int_equal(colo_ram_layout_add(l, "vga.vram", ram[1], len2), 0);
}

static void test_hello_round_trip_and_checks(void **state)
{
    struct colo_ram_layout a, b;
    struct colo_hello pri, sec, got;
    uint8_t wire[COLO_HELLO_WIRE_SIZE];

    make_layout(&a, 8192);
    make_layout(&b, 4096);
    colo_hello_from_layout(&pri, COLO_ROLE_PRIMARY, 0, &a);
    colo_hello_from_layout(&sec, COLO_ROLE_SECONDARY, 0, &a);
    colo_hello_encode(&pri, wire);
    assert_int_equal(colo_hello_decode(wire, sizeof(wire), &got), 0);
    assert_memory_equal(&got, &pri, sizeof(got));
    assert_int_equal(colo_hello_check(&sec, &got), 0);

    /* same role on both ends */
    assert_int_equal(colo_hello_check(&pri, &got), COLO_E_HANDSHAKE);
    /* other layout */
    colo_hello_from_layout(&sec, COLO_ROLE_SECONDARY, 0, &b);
    assert_int_equal(colo_hello_check(&sec, &got), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "RAM layout differs"));
    /* other version */
    colo_hello_from_layout(&sec, COLO_ROLE_SECONDARY, 0, &a);
    got.version = 2;
    assert_int_equal(colo_hello_check(&sec, &got), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "protocol version"));
    /* truncated, bad magic, reserved */
    assert_int_equal(colo_hello_decode(wire, sizeof(wire) - 1, &got), COLO_E_HANDSHAKE);
    wire[0] ^= 0xff;
    assert_int_equal(colo_hello_decode(wire, sizeof(wire), &got), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "not a colo-rdma endpoint"));
    wire[0] ^= 0xff;
    wire[23] = 1;
    assert_int_equal(colo_hello_decode(wire, sizeof(wire), &got), COLO_E_HANDSHAKE);
}

/* A refusal says why, with the refusing side's version and nothing else of
 * its hello (which would tell anyone the hello to send); one from a peer
 * before 0.4 (its hello) is still understood. */
static void test_hello_refusal(void **state)
{
    struct colo_ram_layout a, b;
    struct colo_hello pri, sec, pri_b;
    uint8_t wire[COLO_HELLO_WIRE_SIZE], sec_wire[COLO_HELLO_WIRE_SIZE];
    uint8_t ref[COLO_HELLO_REFUSAL_SIZE];

    make_layout(&a, 8192);
    make_layout(&b, 4096);
    colo_hello_from_layout(&sec, COLO_ROLE_SECONDARY, 0, &a);
    colo_hello_from_layout(&pri_b, COLO_ROLE_PRIMARY, 0, &b);
    colo_hello_encode(&pri_b, wire);
    assert_int_equal(colo_hello_check_wire(&sec, wire, sizeof(wire)), COLO_E_HANDSHAKE);
    colo_hello_refusal_encode(&sec, wire, sizeof(wire), ref);
    /* the check's own message survives the classification */
    assert_non_null(strstr(colo_errormsg(), "RAM layout differs"));
    assert_memory_equal(ref, "CREF\0\1\0\5", sizeof(ref));
    assert_int_equal(colo_hello_refusal_check(&pri_b, ref, sizeof(ref)), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "RAM layout: the peer refused ours"));
    /* version, role, page size, garbage */
    colo_hello_from_layout(&pri, COLO_ROLE_PRIMARY, 0, &a);
    pri.version = 2;
    colo_hello_encode(&pri, wire);
    colo_hello_refusal_encode(&sec, wire, sizeof(wire), ref);
    assert_int_equal(colo_hello_refusal_check(&pri, ref, sizeof(ref)), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "protocol version: the peer speaks 1, we speak 2"));
    colo_hello_encode(&sec, wire); /* our own hello echoed back */
    colo_hello_refusal_encode(&sec, wire, sizeof(wire), ref);
    assert_int_equal(ref[7], COLO_HELLO_REFUSED_ROLE);
    colo_hello_from_layout(&pri, COLO_ROLE_PRIMARY, 0, &a);
    pri.page_size = 8192;
    colo_hello_encode(&pri, wire);
    colo_hello_refusal_encode(&sec, wire, sizeof(wire), ref);
    assert_int_equal(ref[7], COLO_HELLO_REFUSED_PAGE_SIZE);
    colo_hello_refusal_encode(&sec, (const uint8_t *)"noise", 5, ref);
    assert_int_equal(ref[7], COLO_HELLO_REFUSED_MALFORMED);
    assert_int_equal(colo_hello_refusal_check(&pri, ref, sizeof(ref)), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "could not read our hello"));
    /* a secondary before 0.4 rejected with its hello */
    colo_hello_encode(&sec, sec_wire);
    assert_int_equal(colo_hello_refusal_check(&pri_b, sec_wire, sizeof(sec_wire)),
                     COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "RAM layout differs"));
    /* neither: a plain refusal */
    assert_int_equal(colo_hello_refusal_check(&pri_b, (const uint8_t *)"xx", 2), 0);
}

static void test_layout_rejections(void **state)
{
    struct colo_ram_layout l;
    static uint8_t ram[8192];

    assert_int_equal(colo_ram_layout_init(&l, 1000), COLO_E_CONFIG);
    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "", ram, 4096), COLO_E_CONFIG);
    assert_int_equal(colo_ram_layout_add(&l, "a", ram, 0), COLO_E_CONFIG);
    assert_int_equal(colo_ram_layout_add(&l, "a", ram, 4097), COLO_E_CONFIG);
    assert_int_equal(colo_ram_layout_add(&l, "a", NULL, 4096), COLO_E_CONFIG);
    assert_int_equal(colo_ram_layout_add(&l, "a", ram, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "a", ram, 4096), COLO_E_CONFIG);
    assert_non_null(strstr(colo_errormsg(), "name used twice"));
}

/* Version 2 is offered by a capability bit that a version-1 peer ignores:
 * the highest version both offer wins; integrity only when both ask. */
static void test_hello_negotiation(void **state)
{
    struct colo_ram_layout a;
    struct colo_hello pri, sec, old_sec;
    struct colo_features f;
    uint8_t wire[COLO_HELLO_WIRE_SIZE], ref[COLO_HELLO_REFUSAL_SIZE];

    make_layout(&a, 8192);
    assert_int_equal(colo_hello_caps(1, true), 0);
    assert_int_equal(colo_hello_caps(2, false), COLO_HELLO_CAP_V2);
    assert_int_equal(colo_hello_caps(2, true), COLO_HELLO_CAP_V2 | COLO_HELLO_CAP_INTEGRITY);

    colo_hello_from_layout(&pri, COLO_ROLE_PRIMARY, colo_hello_caps(2, false), &a);
    colo_hello_from_layout(&sec, COLO_ROLE_SECONDARY, colo_hello_caps(2, false), &a);
    colo_hello_from_layout(&old_sec, COLO_ROLE_SECONDARY, 0, &a); /* 0.4: caps 0 */
    /* the version field stays 1: a 0.4 peer compares it for equality */
    assert_int_equal(pri.version, 1);
    assert_int_equal(colo_hello_negotiate(&pri, &sec, &f), 0);
    assert_true(f.version == 2 && !f.integrity);
    assert_int_equal(colo_hello_negotiate(&pri, &old_sec, &f), 0);
    assert_true(f.version == 1 && !f.integrity);
    assert_int_equal(colo_hello_negotiate(&old_sec, &pri, &f), 0);
    assert_true(f.version == 1);
    /* unknown capability bits are ignored (for later versions) */
    sec.caps |= 1u << 31;
    assert_int_equal(colo_hello_negotiate(&pri, &sec, &f), 0);
    assert_true(f.version == 2);

    /* integrity: both, or a refusal on either side naming who must change */
    pri.caps = colo_hello_caps(2, true);
    sec.caps = colo_hello_caps(2, true);
    assert_int_equal(colo_hello_negotiate(&pri, &sec, &f), 0);
    assert_true(f.version == 2 && f.integrity);
    sec.caps = colo_hello_caps(2, false);
    assert_int_equal(colo_hello_negotiate(&pri, &sec, &f), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "this side asks for them and the secondary does "
                                            "not (integrity off)"));
    assert_int_equal(colo_hello_negotiate(&sec, &pri, &f), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "the primary asks for them and this side does not"));
    assert_int_equal(colo_hello_negotiate(&pri, &old_sec, &f), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "protocol version 1 only"));
    /* an integrity bit without version 2 means nothing */
    old_sec.caps = COLO_HELLO_CAP_INTEGRITY;
    sec.caps = colo_hello_caps(2, false);
    assert_int_equal(colo_hello_negotiate(&sec, &old_sec, &f), 0);
    assert_true(f.version == 1 && !f.integrity);

    /* over rdma the mismatch is a refusal with its own reason */
    colo_hello_encode(&pri, wire);
    assert_int_equal(colo_hello_check_wire(&sec, wire, sizeof(wire)), COLO_E_HANDSHAKE);
    colo_hello_refusal_encode(&sec, wire, sizeof(wire), ref);
    assert_memory_equal(ref, "CREF\0\1\0\6", sizeof(ref));
    assert_int_equal(colo_hello_refusal_check(&pri, ref, sizeof(ref)), COLO_E_HANDSHAKE);
    assert_non_null(strstr(colo_errormsg(), "integrity digests: the peer refused ours "
                                            "(we ask for them)"));
}

/* The fingerprint is defined over little-endian integers on every host
 * (docs/protocol.md, test vectors): what x86 always computed. */
static void test_fingerprint_vectors(void **state)
{
    static uint8_t ram[4096];
    struct colo_ram_layout l;

    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "pc.ram", ram, 1ull << 30), 0);
    assert_int_equal(colo_ram_layout_add(&l, "vga.vram", ram, 1ull << 24), 0);
    assert_true(colo_ram_layout_fingerprint(&l) == 0x0ed0799260613897ull);
    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "ram", ram, 16384), 0);
    assert_true(colo_ram_layout_fingerprint(&l) == 0x6ede25b1ef92ff89ull);
    assert_int_equal(colo_ram_layout_init(&l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(&l, "ram", ram, 4096), 0);
    assert_true(colo_ram_layout_fingerprint(&l) == 0x6f66fbc297db7679ull);
}

static void hex_equal(const uint8_t *got, const char *want_hex)
{
    char hex[2 * COLO_AUTH_PROOF + 1];

    for (size_t i = 0; i < COLO_AUTH_PROOF; i++)
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    assert_string_equal(hex, want_hex);
}

/* docs/protocol.md section 21: the proofs of both versions and the digest key. */
static void test_auth_vectors(void **state)
{
    static const uint8_t ph[COLO_HELLO_WIRE_SIZE] = {
        0x43, 0x4f, 0x4c, 0x4f, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x10, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x04, 0x10, 0x00, 0x0e, 0xd0, 0x79, 0x92, 0x60, 0x61, 0x38, 0x97};
    uint8_t sh[COLO_HELLO_WIRE_SIZE], pn[COLO_AUTH_NONCE], sn[COLO_AUTH_NONCE];
    uint8_t out[COLO_AUTH_PROOF];
    struct colo_auth_transcript t = {.primary_hello = ph, .secondary_hello = sh};

    memcpy(sh, ph, sizeof(sh));
    sh[7] = 1;
    for (int i = 0; i < COLO_AUTH_NONCE; i++) {
        pn[i] = (uint8_t)i;
        sn[i] = (uint8_t)(0x80 + i);
    }
    colo_auth_proof((const uint8_t *)"secret", 6, COLO_ROLE_PRIMARY, sn, pn, NULL, out);
    hex_equal(out, "dfa7a845303822a26abf95361bffec06d219c124f6c7ee3f328bedb69c6a39e3");
    colo_auth_proof((const uint8_t *)"secret", 6, COLO_ROLE_PRIMARY, sn, pn, &t, out);
    hex_equal(out, "fd56ba87b609843794e94ecc8fc4eb4d6c8fcc5a68ba73c61f7b53d22795a5d1");
    colo_auth_proof((const uint8_t *)"secret", 6, COLO_ROLE_SECONDARY, pn, sn, &t, out);
    hex_equal(out, "cf65a1be8ee0a182f23798f6f2479f223b05b78cc2cfc5b4c39db78d08d1ba59");
    colo_auth_digest_key((const uint8_t *)"secret", 6, pn, sn, out);
    hex_equal(out, "40eb35393391c8b48681584a436694782186affcfdb5f012f18bd4d1c784060a");
    /* a hello changed on the way (a capability stripped) changes the proof */
    sh[11] = 0;
    colo_auth_proof((const uint8_t *)"secret", 6, COLO_ROLE_SECONDARY, pn, sn, &t, out);
    assert_int_not_equal(out[0], 0xcf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_command),
        cmocka_unit_test(test_wire_layout_is_big_endian),
        cmocka_unit_test(test_rejects_truncated),
        cmocka_unit_test(test_rejects_invalid_unknown_and_reserved),
        cmocka_unit_test(test_rejects_out_of_range_values),
        cmocka_unit_test(test_command_names),
        cmocka_unit_test(test_hello_round_trip_and_checks),
        cmocka_unit_test(test_hello_refusal),
        cmocka_unit_test(test_layout_rejections),
        cmocka_unit_test(test_hello_negotiation),
        cmocka_unit_test(test_fingerprint_vectors),
        cmocka_unit_test(test_auth_vectors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
