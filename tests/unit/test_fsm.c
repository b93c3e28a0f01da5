/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checkpoint state machine, driven message by message from both sides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "proto/fsm.h"

#define MAX_STATE 1000
#define MAX_RUNS 64

struct step {
    enum colo_role sender;
    uint32_t cmd;
    uint64_t value; /* 0 here means: the checkpoint's sequence number */
    enum colo_fsm_state after;
};

/* One whole session prefix: ready, then a checkpoint numbered seq. */
static const struct step happy[] = {
    {COLO_ROLE_SECONDARY, COLO_CMD_CHECKPOINT_READY, 77, COLO_ST_IDLE},
    {COLO_ROLE_PRIMARY, COLO_CMD_CHECKPOINT_REQUEST, 0, COLO_ST_REQUESTED},
    {COLO_ROLE_SECONDARY, COLO_CMD_CHECKPOINT_REPLY, 0, COLO_ST_REPLIED},
    {COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SEND, 0, COLO_ST_ANNOUNCED},
    {COLO_ROLE_PRIMARY, COLO_CMD_DIRTY_LIST, 3, COLO_ST_LISTED},
    {COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SIZE, 500, COLO_ST_SIZED},
    {COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_RECEIVED, 0, COLO_ST_RECEIVED},
    {COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_LOADED, 0, COLO_ST_IDLE},
};
#define NHAPPY (sizeof(happy) / sizeof(happy[0]))

/* Feeds one step to fsm, as sender or receiver depending on its role. */
static int feed(struct colo_fsm *fsm, enum colo_role sender, uint32_t cmd, uint64_t value)
{
    struct colo_msg m = {.cmd = cmd, .value = value};

    return sender == fsm->role ? colo_fsm_send(fsm, &m) : colo_fsm_recv(fsm, &m);
}

static uint64_t value_of(const struct step *s, uint64_t seq)
{
    return s->value ? s->value : seq;
}

static void run_checkpoints(enum colo_role role)
{
    struct colo_fsm fsm;

    colo_fsm_init(&fsm, role, MAX_STATE, MAX_RUNS);
    assert_int_equal(fsm.state, COLO_ST_WAIT_READY);
    assert_int_equal(feed(&fsm, happy[0].sender, happy[0].cmd, happy[0].value), 0);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        for (size_t i = 1; i < NHAPPY; i++) {
            assert_int_equal(feed(&fsm, happy[i].sender, happy[i].cmd, value_of(&happy[i], seq)),
                             0);
            assert_int_equal(fsm.state, happy[i].after);
        }
        assert_true(fsm.completed == seq);
    }
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_GOODBYE, 5), 0);
    assert_int_equal(fsm.state, COLO_ST_CLOSED);
}

static void test_primary_happy_path(void **state)
{
    run_checkpoints(COLO_ROLE_PRIMARY);
}

static void test_secondary_happy_path(void **state)
{
    run_checkpoints(COLO_ROLE_SECONDARY);
}

/* Brings a fresh fsm to the state after `steps` happy steps of checkpoint 1. */
static void drive(struct colo_fsm *fsm, enum colo_role role, size_t steps)
{
    colo_fsm_init(fsm, role, MAX_STATE, MAX_RUNS);
    for (size_t i = 0; i < steps; i++)
        assert_int_equal(feed(fsm, happy[i].sender, happy[i].cmd, value_of(&happy[i], 1)), 0);
}

/*
 * In every state, from both roles' point of view, every command from either
 * sender other than the one the protocol expects is refused, and the
 * session is failed afterwards.
 */
static void test_every_wrong_order_is_refused(void **state)
{
    for (int r = 0; r < 2; r++) {
        enum colo_role role = r ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY;

        for (size_t at = 0; at < NHAPPY; at++) {
            for (uint32_t cmd = 1; cmd <= COLO_CMD__MAX; cmd++) {
                for (int s = 0; s < 2; s++) {
                    enum colo_role sender = s ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY;
                    struct colo_fsm fsm;
                    bool legal = happy[at].cmd == cmd && happy[at].sender == sender;

                    /* goodbye is also legal in idle (after ready) */
                    if (at == 1 && cmd == COLO_CMD_GOODBYE && sender == COLO_ROLE_PRIMARY)
                        legal = true;
                    /* the primary may push ahead of the reply (pipelined) */
                    if (at == 2 && cmd == COLO_CMD_VMSTATE_SEND && sender == COLO_ROLE_PRIMARY &&
                        role == COLO_ROLE_PRIMARY)
                        legal = true;
                    if (legal)
                        continue;
                    drive(&fsm, role, at);
                    assert_int_equal(feed(&fsm, sender, cmd, 1), COLO_E_PROTOCOL);
                    assert_int_equal(fsm.state, COLO_ST_FAILED);
                    assert_non_null(strstr(colo_errormsg(), "unexpected"));
                    assert_non_null(strstr(colo_errormsg(), "expected"));
                    /* nothing is accepted after a failure */
                    assert_int_equal(feed(&fsm, happy[at].sender, happy[at].cmd, 1),
                                     COLO_E_PROTOCOL);
                }
            }
        }
    }
}

/* The pipelined primary: its whole checkpoint, then the reply. */
static const struct step pipelined[] = {
    {COLO_ROLE_PRIMARY, COLO_CMD_CHECKPOINT_REQUEST, 0, COLO_ST_REQUESTED},
    {COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SEND, 0, COLO_ST_AHEAD_ANNOUNCED},
    {COLO_ROLE_PRIMARY, COLO_CMD_DIRTY_LIST, 3, COLO_ST_AHEAD_LISTED},
    {COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SIZE, 500, COLO_ST_AHEAD_SIZED},
    {COLO_ROLE_SECONDARY, COLO_CMD_CHECKPOINT_REPLY, 0, COLO_ST_SIZED},
    {COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_RECEIVED, 0, COLO_ST_RECEIVED},
    {COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_LOADED, 0, COLO_ST_IDLE},
};

static void test_pipelined_primary(void **state)
{
    struct colo_fsm fsm;

    drive(&fsm, COLO_ROLE_PRIMARY, 1);
    for (uint64_t seq = 1; seq <= 3; seq++)
        for (size_t i = 0; i < sizeof(pipelined) / sizeof(pipelined[0]); i++) {
            assert_int_equal(feed(&fsm, pipelined[i].sender, pipelined[i].cmd,
                                  value_of(&pipelined[i], seq)), 0);
            assert_int_equal(fsm.state, pipelined[i].after);
        }
    assert_int_equal(fsm.completed, 3);
    /* ahead of the reply, the reply's number is still checked */
    drive(&fsm, COLO_ROLE_PRIMARY, 1);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(feed(&fsm, pipelined[i].sender, pipelined[i].cmd,
                              value_of(&pipelined[i], 1)), 0);
    assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_CHECKPOINT_REPLY, 2),
                     COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "expected sequence number 1"));
    /* and vmstate-received cannot overtake the reply */
    drive(&fsm, COLO_ROLE_PRIMARY, 1);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(feed(&fsm, pipelined[i].sender, pipelined[i].cmd,
                              value_of(&pipelined[i], 1)), 0);
    assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_RECEIVED, 1),
                     COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "sized ahead of the reply"));
}

/* The steps ahead of the reply are the primary's own view: the secondary
 * never accepts state before it replied. */
static void test_secondary_refuses_state_before_its_reply(void **state)
{
    struct colo_fsm fsm;

    drive(&fsm, COLO_ROLE_SECONDARY, 2); /* request received, no reply yet */
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SEND, 1), COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "expected checkpoint-reply from the secondary"));
    assert_int_equal(fsm.state, COLO_ST_FAILED);
}

static void test_wrong_sequence_numbers(void **state)
{
    for (size_t at = 1; at < NHAPPY; at++) {
        struct colo_fsm fsm;

        if (happy[at].value)
            continue; /* not a sequence-numbered step */
        for (int r = 0; r < 2; r++) {
            uint64_t wrong[] = {0, 2, 3, UINT64_MAX};

            for (size_t w = 0; w < 4; w++) {
                drive(&fsm, r ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY, at);
                assert_int_equal(feed(&fsm, happy[at].sender, happy[at].cmd, wrong[w]),
                                 COLO_E_PROTOCOL);
                assert_non_null(strstr(colo_errormsg(), "expected sequence number 1"));
                assert_int_equal(fsm.state, COLO_ST_FAILED);
            }
        }
    }
}

static void test_repeated_and_skipped_checkpoints(void **state)
{
    struct colo_fsm fsm;

    drive(&fsm, COLO_ROLE_SECONDARY, NHAPPY); /* checkpoint 1 done */
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_CHECKPOINT_REQUEST, 1),
                     COLO_E_PROTOCOL); /* repeated */
    assert_non_null(strstr(colo_errormsg(), "expected sequence number 2, received 1"));
    drive(&fsm, COLO_ROLE_SECONDARY, NHAPPY);
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_CHECKPOINT_REQUEST, 3),
                     COLO_E_PROTOCOL); /* skipped */
    drive(&fsm, COLO_ROLE_SECONDARY, NHAPPY);
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_GOODBYE, 0), COLO_E_PROTOCOL);
}

static void test_bounds(void **state)
{
    struct colo_fsm fsm;

    drive(&fsm, COLO_ROLE_SECONDARY, 4);
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_DIRTY_LIST, MAX_RUNS + 1),
                     COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "expected at most 64"));
    drive(&fsm, COLO_ROLE_SECONDARY, 5);
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SIZE, MAX_STATE + 1),
                     COLO_E_PROTOCOL);
    assert_non_null(strstr(colo_errormsg(), "device state exceed"));
    drive(&fsm, COLO_ROLE_SECONDARY, 5);
    assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_VMSTATE_SIZE, MAX_STATE), 0);
    drive(&fsm, COLO_ROLE_PRIMARY, 0);
    assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_CHECKPOINT_READY, 0),
                     COLO_E_PROTOCOL);
}

/* Version 2: background-pages between checkpoints only, numbered for the
 * coming one; a version-1 session refuses it (test_every_wrong_order_is_refused). */
static void test_version_2_background(void **state)
{
    for (int r = 0; r < 2; r++) {
        enum colo_role role = r ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY;
        struct colo_fsm fsm;

        drive(&fsm, role, 1);
        colo_fsm_set_features(&fsm, 2, false);
        assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_BACKGROUND, 1), 0);
        assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_BACKGROUND, 1), 0);
        assert_int_equal(fsm.state, COLO_ST_IDLE);
        assert_true(fsm.seq == 0 && fsm.completed == 0); /* nothing began */
        for (size_t i = 1; i < NHAPPY; i++)
            assert_int_equal(feed(&fsm, happy[i].sender, happy[i].cmd, value_of(&happy[i], 1)),
                             0);
        assert_true(fsm.completed == 1);
        /* for the coming checkpoint (2) only */
        assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_BACKGROUND, 1), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), "expected sequence number 2, received 1"));

        /* never inside a checkpoint, never from the secondary */
        drive(&fsm, role, 2);
        colo_fsm_set_features(&fsm, 2, false);
        assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_BACKGROUND, 1), COLO_E_PROTOCOL);
        assert_non_null(strstr(colo_errormsg(), "unexpected background-pages"));
        drive(&fsm, role, 1);
        colo_fsm_set_features(&fsm, 2, false);
        assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_BACKGROUND, 1),
                         COLO_E_PROTOCOL);
    }
}

/* Version 2 with integrity: checkpoint-digest between the state and
 * vmstate-received, on both paths of the primary; none without. */
static void test_version_2_digest(void **state)
{
    for (int r = 0; r < 2; r++) {
        enum colo_role role = r ? COLO_ROLE_SECONDARY : COLO_ROLE_PRIMARY;
        struct colo_fsm fsm;

        drive(&fsm, role, 1);
        colo_fsm_set_features(&fsm, 2, true);
        for (size_t i = 1; i < NHAPPY; i++) {
            if (happy[i].cmd == COLO_CMD_VMSTATE_RECEIVED) {
                assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_DIGEST, 31),
                                 COLO_E_PROTOCOL);
                assert_non_null(strstr(colo_errormsg(), "a digest of 31 bytes: expected 32"));
                drive(&fsm, role, i);
                colo_fsm_set_features(&fsm, 2, true);
                /* vmstate-received before the digest is refused */
                assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_RECEIVED, 1),
                                 COLO_E_PROTOCOL);
                assert_non_null(strstr(colo_errormsg(), "expected checkpoint-digest"));
                drive(&fsm, role, i);
                colo_fsm_set_features(&fsm, 2, true);
                assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_DIGEST, COLO_DIGEST_SIZE),
                                 0);
                assert_int_equal(fsm.state, COLO_ST_DIGESTED);
            }
            assert_int_equal(feed(&fsm, happy[i].sender, happy[i].cmd, value_of(&happy[i], 1)),
                             0);
        }
        assert_true(fsm.completed == 1);
    }
    /* the pipelined primary sends the digest ahead of the reply too */
    {
        struct colo_fsm fsm;

        drive(&fsm, COLO_ROLE_PRIMARY, 1);
        colo_fsm_set_features(&fsm, 2, true);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(feed(&fsm, pipelined[i].sender, pipelined[i].cmd,
                                  value_of(&pipelined[i], 1)), 0);
        assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_DIGEST, COLO_DIGEST_SIZE), 0);
        assert_int_equal(fsm.state, COLO_ST_AHEAD_DIGESTED);
        assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_CHECKPOINT_REPLY, 1), 0);
        assert_int_equal(fsm.state, COLO_ST_DIGESTED);
        assert_int_equal(feed(&fsm, COLO_ROLE_SECONDARY, COLO_CMD_VMSTATE_RECEIVED, 1), 0);
    }
    /* without integrity a digest is refused */
    {
        struct colo_fsm fsm;

        drive(&fsm, COLO_ROLE_SECONDARY, 6);
        colo_fsm_set_features(&fsm, 2, false);
        assert_int_equal(fsm.state, COLO_ST_SIZED);
        assert_int_equal(feed(&fsm, COLO_ROLE_PRIMARY, COLO_CMD_DIGEST, COLO_DIGEST_SIZE),
                         COLO_E_PROTOCOL);
    }
}

static void test_state_names(void **state)
{
    assert_string_equal(colo_fsm_state_str(COLO_ST_IDLE), "idle");
    assert_string_equal(colo_fsm_state_str(COLO_ST_FAILED), "failed");
    assert_string_equal(colo_fsm_state_str((enum colo_fsm_state)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primary_happy_path),
        cmocka_unit_test(test_secondary_happy_path),
        cmocka_unit_test(test_every_wrong_order_is_refused),
        cmocka_unit_test(test_pipelined_primary),
        cmocka_unit_test(test_secondary_refuses_state_before_its_reply),
        cmocka_unit_test(test_wrong_sequence_numbers),
        cmocka_unit_test(test_repeated_and_skipped_checkpoints),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_version_2_background),
        cmocka_unit_test(test_version_2_digest),
        cmocka_unit_test(test_state_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
