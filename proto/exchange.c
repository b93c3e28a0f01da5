/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>

#include "common/error.h"
#include "proto/exchange.h"

int colo_send_msg(struct colo_fsm *fsm, struct colo_stream *f, uint32_t cmd, uint64_t value)
{
    struct colo_msg msg = {.cmd = cmd, .value = value};
    uint8_t wire[COLO_MSG_WIRE_SIZE];
    int ret = colo_fsm_send(fsm, &msg);

    if (ret)
        return colo_stream_set_error(f, ret, "%s", colo_errormsg());
    colo_stream_set_context(f, "the %s sent %s", COLO_FSM_ROLE_STR(fsm), colo_cmd_str(cmd));
    colo_msg_encode(&msg, wire);
    colo_stream_put_buffer(f, wire, sizeof(wire));
    ret = colo_stream_error(f);
    if (ret)
        colo_fsm_fail(fsm);
    return ret;
}

static int recv_msg(struct colo_fsm *fsm, struct colo_stream *f, struct colo_msg *msg,
                    bool idle)
{
    uint8_t wire[COLO_MSG_WIRE_SIZE];
    char want[96];
    int ret;

    colo_fsm_expected(fsm, want, sizeof(want));
    colo_stream_set_context(f, "the %s waited for %s", COLO_FSM_ROLE_STR(fsm), want);
    ret = idle ? colo_stream_wait_idle(f) : 0;
    if (!ret)
        ret = colo_stream_get_buffer(f, wire, sizeof(wire));

    if (!ret)
        ret = colo_msg_decode(wire, sizeof(wire), msg);
    if (!ret)
        ret = colo_fsm_recv(fsm, msg);
    if (ret) {
        colo_fsm_fail(fsm);
        return colo_stream_set_error(f, ret, "%s", colo_errormsg());
    }
    return 0;
}

int colo_recv_msg(struct colo_fsm *fsm, struct colo_stream *f, struct colo_msg *msg)
{
    return recv_msg(fsm, f, msg, false);
}

int colo_recv_msg_idle(struct colo_fsm *fsm, struct colo_stream *f, struct colo_msg *msg)
{
    return recv_msg(fsm, f, msg, true);
}
