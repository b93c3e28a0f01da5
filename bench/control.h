/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bench control connection: one TCP connection from the primary to the
 * secondary's control port (default 18516), separate from the library session.
 * Text lines, one request and one reply each:
 *
 *   P: colo-rdma-bench 1                 S: ok colo-rdma-bench 1
 *   P: set KEY VALUE   (repeated)        (no reply; checked at setup)
 *   P: setup                             S: ok cache KIND PATH | error MESSAGE
 *   P: run TRANSPORT                     S: ok port N | unavailable MESSAGE | error MESSAGE
 *      ... library session on port N (ephemeral unless --data-port) ...
 *   P: verify SEQ VMSTATE-HASH H0 .. Hn  S: ok | mismatch BLOCK | error MESSAGE
 *   P: pages BLOCK N + N x 8 bytes (LE)  S: error MESSAGE naming the first page
 *   P: end                               S: done CKPTS USER_US SYS_US PERSIST_NS APPLY_NS
 *                                           | error MESSAGE
 *   P: quit                              S: bye
 *
 * KEYs: ram, blocks, page-size, hugepages, vmstate, seed, timeout, verify,
 * warmup. Hashes are hex; see verify.h.
 */
#ifndef COLO_BENCH_CONTROL_H
#define COLO_BENCH_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_CONTROL_VERSION 1
#define BENCH_CONTROL_LINE_MAX 16384

struct bench_ctl {
    int fd;
    uint32_t timeout_ms; /* for every receive; 0 = wait forever */
    char err[512];       /* why the last call failed */
    char buf[BENCH_CONTROL_LINE_MAX];
    size_t start, end;
    /* Optional: asked every 100 ms while a receive waits; non-zero ends the
     * wait with the reason it wrote (the primary watches its session, so a
     * partition that also stalls this connection is reported in time). */
    int (*watch)(void *arg, char *why, size_t len);
    void *watch_arg;
};

/* A watch for either role: colo_session_check() on the session in arg. */
int bench_ctl_watch_session(void *session, char *why, size_t len);

/* What the primary carries to the secondary. */
struct bench_params {
    uint64_t ram_bytes;
    uint32_t blocks;
    uint32_t page_size;
    bool hugepages;
    uint64_t vmstate_bytes;
    uint64_t seed;
    uint32_t timeout_ms;
    bool verify;
    uint64_t warmup;
    bool busy_poll; /* rdma completions: spin instead of sleeping on events */
    uint32_t heartbeat_ms;
    bool integrity; /* integrity digests (the key is each side's own) */
};

/* Listens on port (0: any) of all addresses; *bound gets the port. fd or -1. */
int bench_ctl_listen(uint16_t port, uint16_t *bound, char *err, size_t errlen);
/* Accepts one connection on lfd (timeout 0: forever). 0 or -1 with c->err. */
int bench_ctl_accept(int lfd, uint32_t timeout_ms, struct bench_ctl *c);
int bench_ctl_connect(const char *host, uint16_t port, uint32_t timeout_ms,
                      struct bench_ctl *c);
void bench_ctl_close(struct bench_ctl *c);
/* Sends one line (the newline is added). 0 or -1 with c->err. */
__attribute__((format(printf, 2, 3))) int bench_ctl_send(struct bench_ctl *c, const char *fmt,
                                                         ...);
/* Receives one line without its newline. 0 or -1 with c->err (EOF, timeout, too long). */
int bench_ctl_recv(struct bench_ctl *c, char *line, size_t len);
int bench_ctl_send_raw(struct bench_ctl *c, const void *p, size_t len);
int bench_ctl_recv_raw(struct bench_ctl *c, void *p, size_t len);

void bench_params_default(struct bench_params *p);
/* Applies "KEY VALUE"; 0 or -1 with a message for the primary in err. */
int bench_params_set(struct bench_params *p, const char *key, const char *value, char *err,
                     size_t errlen);
/* Consistency between the values; 0 or -1 with a message in err. */
int bench_params_check(const struct bench_params *p, char *err, size_t errlen);
/* Sends every parameter and "setup". */
int bench_params_send(struct bench_ctl *c, const struct bench_params *p);

#endif
