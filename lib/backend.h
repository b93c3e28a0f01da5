/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The backends a session can run over, one table entry each: a new one
 * (libfabric, UCX, rdma with native flush) is an enum value, an entry and a
 * file, with nothing to change in session.c. What a connection does once it
 * exists (I/O, RAM hooks, check, shutdown) goes through the stream it
 * returns (struct colo_stream_ops); this table holds what comes before.
 */
#ifndef COLO_LIB_BACKEND_H
#define COLO_LIB_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "colo-rdma-config.h"
#include "core/ram_layout.h"
#include "lib/config.h"
#include "proto/handshake.h"
#include "stream/stream.h"

struct colo_backend {
    const char *name;
    /* Why this build cannot run it, or NULL; the operations are NULL then. */
    const char *unavailable;
    /* The hello was checked while connecting (rdma: in the private data),
     * so the session does not exchange it over the stream. Such a backend
     * sends hellos->mine and stores the peer's in hellos->peer once it
     * passed the check; the others leave hellos alone. */
    bool checks_hello;
    int (*connect)(const struct colo_config *cfg, const struct colo_ram_layout *layout,
                   struct colo_hello_pair *hellos, struct colo_stream **out);
    int (*listen)(const struct colo_config *cfg, void **listener);
    /* Readable when accept has a connection to take (the session polls it
     * beside its running handshakes). */
    int (*accept_fd)(const void *listener);
    /*
     * Takes one connection from the listener, waiting at most wait_ms for
     * it: -EAGAIN when there was none after all. It answers at once and
     * never waits on the peer: the session runs the rest of the handshake
     * (establish, then hello and authentication over the stream) in a
     * thread of the connection's own, under the handshake deadline. Either
     * *out is the connection's stream already (tcp), or *pending is what
     * establish turns into one.
     */
    int (*accept)(void *listener, const struct colo_config *cfg,
                  const struct colo_ram_layout *layout, struct colo_hello_pair *hellos,
                  uint32_t wait_ms, struct colo_stream **out, void **pending);
    /*
     * Optional (NULL: accept gives the stream). Runs in the handshake's
     * thread, by deadline_ns, and fails at once when cancel_fd (an eventfd)
     * becomes readable. Always takes over pending, also when it fails.
     */
    int (*establish)(void *pending, const struct colo_config *cfg,
                     const struct colo_ram_layout *layout, struct colo_hello_pair *hellos,
                     uint64_t deadline_ns, int cancel_fd, struct colo_stream **out);
    uint16_t (*port)(const void *listener);
    /* Optional: this process's verbs work so far, as work requests posted,
     * doorbells, completions polled, completion-channel wakeups (the
     * checkpoint stats carry the difference). NULL: the backend has none. */
    void (*work_counts)(uint64_t out[4]);
    /* Accepts NULL; sets *listener to NULL. */
    void (*listener_delete)(void **listener);
};

extern const struct colo_backend colo_backend_tcp;
#if HAVE_RDMA
extern const struct colo_backend colo_backend_rdma;
#endif

/* The entry of t, which may be unavailable in this build. */
const struct colo_backend *colo_backend_get(enum colo_transport t);
/* A transport by name: 0, or COLO_E_CONFIG naming every known one. */
int colo_backend_parse(const char *name, enum colo_transport *t);
/* 0 when t can run here, else COLO_E_NO_BACKEND saying why and what to do. */
int colo_backend_check(enum colo_transport t);

#endif
