/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * colo-rdma: COLO checkpoints over RDMA (or TCP as the baseline).
 *
 * This is the only header a program includes. A primary session pushes each
 * checkpoint (dirty pages plus device state) to a secondary session, which
 * keeps the pages in a RAM cache (a file or device-DAX mapped through
 * libpmem2) and applies them to its own guest RAM once a checkpoint is
 * complete.
 *
 * Conventions: functions return 0 or a negative error code (a negative errno,
 * or one of COLO_E_*); colo_strerror() names a code and colo_errormsg() gives
 * the detailed message of the last failure in the calling thread.
 * x_new()/x_delete() pairs: delete accepts NULL and sets the pointer to NULL.
 *
 * Observing it (since 0.3): colo_set_log() installs one process-wide log
 * callback (sessions connected and accepted, the failure that ended a
 * session, peer lost, shutdown, and at debug level every checkpoint phase);
 * with COLO_RDMA_DEBUG=1 in the environment and no callback set, the same
 * messages go to stderr. Builds with <sys/sdt.h> also carry static trace
 * points (USDT, provider colo_rdma) at the same places: see the README.
 */
#ifndef COLO_RDMA_H
#define COLO_RDMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's own error codes: a private negative band below any errno. */
enum colo_error_code {
    COLO_E_BASE = -10000,
    COLO_E_PROTOCOL = -10001,    /* peer sent something the protocol forbids */
    COLO_E_DIRTY_LIST = -10002,  /* dirty-page list failed validation */
    COLO_E_HANDSHAKE = -10003,   /* versions, page size or RAM layout differ */
    COLO_E_PEER_LOST = -10004,   /* connection lost, peer gone or silent past the timeout */
    COLO_E_SHUTDOWN = -10005,    /* peer ended the session in order (goodbye) */
    COLO_E_CONFIG = -10006,      /* invalid configuration */
    COLO_E_CACHE = -10007,       /* RAM cache unusable (size, access, space) */
    COLO_E_NO_BACKEND = -10008,  /* transport not built in (an unknown name: COLO_E_CONFIG) */
    COLO_E_AUTH = -10009,        /* peer failed the shared-key authentication */
    COLO_E_INTEGRITY = -10010,   /* a checkpoint's digest did not match (since 0.5) */
};

/* Name of an error code (negative errno or COLO_E_*). Never NULL. */
const char *colo_strerror(int err);
/* Detailed message of the last failure in this thread ("" if none). */
const char *colo_errormsg(void);
/* Library version string, e.g. "0.4.0". */
const char *colo_version(void);

/* ---- logging (since 0.3) ---- */

/* A message passes when its level is at or below the level set. */
enum colo_log_level {
    COLO_LOG_ERROR = 0,   /* a session ended with an error */
    COLO_LOG_WARNING = 1, /* the peer was lost */
    COLO_LOG_INFO = 2,    /* sessions connected, accepted, shut down, closed */
    COLO_LOG_DEBUG = 3,   /* each checkpoint's phases, per-connection statistics */
};

/* Receives one message: no trailing newline, valid only during the call. */
typedef void (*colo_log_fn)(void *opaque, int level, const char *msg);

/*
 * Process-wide: every later message of level <= level goes to fn(opaque, ...),
 * from whichever library thread logs it (the rdma heartbeat thread
 * included). Calls are serialised; once this returns the previous callback
 * is not called again. fn NULL turns logging off (also the COLO_RDMA_DEBUG
 * stderr default). The callback must not block for long; messages it causes
 * by calling into the library are dropped, and calling colo_set_log() from
 * it fails with -EDEADLK. Returns 0 or -EINVAL for an unknown level.
 */
int colo_set_log(colo_log_fn fn, void *opaque, int level);

/* ---- configuration ---- */

struct colo_config;

int colo_config_new(struct colo_config **cfg);
void colo_config_delete(struct colo_config **cfg);

/* "tcp" (default) or "rdma". */
int colo_config_set_transport(struct colo_config *cfg, const char *name);
/* Peer address (primary) or bind address (secondary; NULL = any). Port 0 on
 * the secondary picks a free port: see colo_listener_port(). */
int colo_config_set_address(struct colo_config *cfg, const char *host, uint16_t port);
/*
 * Timeout for connect and for every wait on the peer, in milliseconds. Once
 * connected, a peer silent for that long is lost: COLO_E_PEER_LOST (fail
 * over), with colo_errormsg() naming what was awaited ("tcp: nothing from
 * the peer for 5000 ms while the secondary waited for checkpoint-request or
 * goodbye"). Connect and accept that find no peer in time return -ETIMEDOUT
 * (a tcp connect refused at once, nothing listening: COLO_E_PEER_LOST).
 * A read or write must also keep moving (since 0.5): 64 KiB, or what is
 * left of it, within each timeout, so a peer that trickles bytes is lost
 * too ("the peer sent too little for ... ms"); rdma page WRITEs must keep
 * completing, one at least within each timeout (since 0.5.2: a window on
 * a lossy link may take longer than one). Between checkpoints the
 * secondary over rdma waits for the next one without a timeout (since 0.5):
 * the heartbeat decides whether the primary is alive; over tcp the primary
 * must send within the timeout. Default 30000.
 */
int colo_config_set_timeout_ms(struct colo_config *cfg, uint32_t timeout_ms);
/*
 * Since 0.4: one deadline for the whole unauthenticated phase of a
 * connection, from accept (or connect) until the peer has proved the key:
 * hello and authentication must be done by then, whatever the peer sends
 * meanwhile (bytes one at a time, heartbeats). Default 5000 ms, 10..600000.
 * The secondary runs the handshakes of several connections at once, so a
 * peer without the key delays a real primary by at most this long.
 */
int colo_config_set_handshake_timeout_ms(struct colo_config *cfg, uint32_t timeout_ms);
/*
 * Adds a guest RAM block. Both sides add the same blocks (name and length) in
 * the same order; the handshake checks it. host points to the side's own guest
 * RAM (the primary's source, the secondary's applied guest RAM); length is a
 * multiple of the page size.
 */
int colo_config_add_ram_block(struct colo_config *cfg, const char *name, void *host,
                              uint64_t length);
/* Guest page size, default 4096 (a power of two, 4096..1 GiB). */
int colo_config_set_page_size(struct colo_config *cfg, uint32_t page_size);
/*
 * Secondary: where the RAM cache lives: a plain file (created or extended)
 * or a device-DAX character device /dev/daxX.Y. An existing file that holds
 * data is refused (COLO_E_CACHE, naming the path) unless this process made
 * it its cache before (an earlier listener) or colo_config_set_cache_overwrite()
 * allows it: a mistyped path never destroys somebody's file. An empty file
 * is taken; a device-DAX device always is (its namespace dedicates it).
 */
int colo_config_set_cache_path(struct colo_config *cfg, const char *path);
/* Secondary (since 0.4): take over an existing cache file with data in it
 * (its contents are never trusted: only a validated checkpoint's pages are
 * applied). Off by default. */
int colo_config_set_cache_overwrite(struct colo_config *cfg, int enabled);
/* Secondary: the largest device state it accepts (default 64 MiB). */
int colo_config_set_max_vmstate(struct colo_config *cfg, uint64_t max_bytes);

/*
 * Shared key both sides must hold (1..1024 bytes). The peers prove it to each
 * other before any memory key is exchanged. Without one, both sides use the
 * empty key: only the protocol is checked, not who the peer is.
 */
int colo_config_set_auth_key(struct colo_config *cfg, const void *key, size_t len);
/* rdma: busy-poll completions (lowest latency, one core spinning) instead of
 * sleeping on completion events (the default). */
int colo_config_set_busy_poll(struct colo_config *cfg, int enabled);
/* rdma: heartbeat interval (default 500 ms); the peer is declared lost after
 * four intervals without a message from it. */
int colo_config_set_heartbeat_ms(struct colo_config *cfg, uint32_t interval_ms);

/*
 * Primary: resume at vmstate-received instead of vmstate-loaded. The
 * secondary already holds the checkpoint durably then; its vmstate-loaded is
 * collected at the start of the next checkpoint (or at close), outside the
 * pause. Off by default.
 */
int colo_config_set_early_resume(struct colo_config *cfg, int enabled);

/*
 * Primary: colo_primary_checkpoint() sends the pages, the dirty list and the
 * device state right after checkpoint-request, without waiting for
 * checkpoint-reply, and reads the reply afterwards (on by default; since
 * 0.4). The secondary sees the same messages in the same order either way,
 * so any secondary works with it; off, the call waits for the reply first.
 * begin/commit are not affected: begin always waits for the reply.
 */
int colo_config_set_pipelined(struct colo_config *cfg, int enabled);

/*
 * The highest protocol version this side offers (since 0.5): 2 (the
 * default) or 1. Both sides speak the highest version both offer, so a
 * peer of 0.4 or older (version 1) still works with one of 0.5; version 2
 * adds the background push over tcp and integrity digests (below), and
 * authenticates the hellos. colo_session_protocol_version() tells what a
 * session speaks. Other values: COLO_E_CONFIG.
 */
int colo_config_set_protocol_version(struct colo_config *cfg, uint32_t version);
/*
 * Integrity digests (since 0.5, off by default; needs an authentication
 * key and protocol version 2 on both sides): every checkpoint carries a
 * keyed digest (HMAC-SHA256 with a key derived per session) of its
 * sequence number, dirty list, pages and device state, and the secondary
 * checks it against what its cache holds before it persists or applies
 * anything, so a page injected into the cache on the path, or corrupted
 * there, fails the checkpoint instead of reaching the guest. Both sides must
 * agree: a side that asks refuses a peer that does not (COLO_E_HANDSHAKE).
 * It costs a hash of every pushed page on each side (see the README).
 */
int colo_config_set_integrity(struct colo_config *cfg, int enabled);

/* Secondary callbacks, all optional. Return 0 or a negative error code. */
struct colo_secondary_ops {
    int (*stop_vm)(void *opaque);                                  /* at checkpoint-request */
    int (*load_vmstate)(void *opaque, const void *state, uint64_t len); /* after pages applied */
    int (*resume_vm)(void *opaque);                                /* before vmstate-loaded */
};
int colo_config_set_secondary_ops(struct colo_config *cfg, const struct colo_secondary_ops *ops,
                                  void *opaque);

/* ---- dirty pages ---- */

/* A run of contiguous dirty pages in one RAM block (index in add order). */
struct colo_dirty_run {
    uint32_t block;
    uint32_t reserved; /* 0 */
    uint64_t first_page;
    uint64_t page_count;
};

/* ---- per-checkpoint statistics (nanoseconds, bytes) ---- */

struct colo_checkpoint_stats {
    uint64_t seq;
    uint64_t pages;
    uint64_t page_bytes;
    uint64_t vmstate_bytes;
    uint64_t request_ns;   /* request sent -> reply received (primary; pipelined: the wait
                              for the reply once the whole checkpoint was sent) */
    uint64_t pages_ns;     /* page push, including the RAM flush */
    uint64_t state_ns;     /* vmstate-send, dirty list, device state */
    uint64_t received_ns;  /* state sent -> vmstate-received (primary); persist (secondary) */
    uint64_t loaded_ns;    /* -> vmstate-loaded (primary; with early resume: the wait for
                              the previous checkpoint's, before this request); apply + load
                              (secondary) */
    uint64_t total_ns;     /* whole checkpoint: the primary's pause */
    uint64_t background_pages; /* of pages: moved before it by colo_primary_push_background()
                                  (since 0.4; over tcp since 0.5 in protocol version 2, also
                                  on the secondary; 0 with a version-1 tcp peer, where they
                                  move with the checkpoint) */
    /* Verbs work of this process during the call (rdma, since 0.5; 0 over tcp):
     * counted at the library's verbs calls, by every thread of the library,
     * the heartbeat's too, so a checkpoint overlapping a heartbeat counts it. */
    uint64_t wr_posted;    /* work requests posted: WRITEs, SENDs, RECVs */
    uint64_t doorbells;    /* ibv_post_send and ibv_post_recv calls */
    uint64_t completions;  /* work completions polled from the CQs */
    uint64_t cq_wakeups;   /* completion-channel events taken (sleeps that ended) */
    uint64_t reserved[1];
};

/* ---- sessions ---- */

struct colo_session;
struct colo_listener;

/* Primary: connect to the secondary, handshake, wait for checkpoint-ready. */
int colo_primary_connect(const struct colo_config *cfg, struct colo_session **out);

/*
 * Primary: run one checkpoint: request -> reply -> push the listed pages and
 * the device state -> vmstate-received -> vmstate-loaded. Pipelined (the
 * default since 0.4, colo_config_set_pipelined()), the pages and the state
 * follow the request at once and the reply is read after them, so that an
 * empty checkpoint costs one round trip, not two; since 0.5.1 an empty one
 * is one message each way (the request leaves with the state, the reply
 * with vmstate-received: each side flushes only before it waits for the
 * other). The runs need not be
 * sorted; they are normalised (sorted, merged) before they are sent. stats
 * may be NULL. A bad list or state (COLO_E_DIRTY_LIST, COLO_E_CONFIG) or a
 * call out of order (-EINVAL) is refused before anything is sent and leaves
 * the session usable; any other error ends it, and every later call returns
 * that same code (since 0.5; before, COLO_E_PEER_LOST), with "the session
 * has ended (...)": it can only be closed. With early resume, total_ns
 * leaves out the wait for the previous checkpoint's vmstate-loaded at the
 * start of the call (loaded_ns), and colo_session_seq() counts a checkpoint
 * only once that arrived. Calls on one session come from one thread at a
 * time; colo_session_shutdown() is the one call allowed from any thread.
 */
int colo_primary_checkpoint(struct colo_session *s, const struct colo_dirty_run *runs,
                            size_t nruns, const void *vmstate, uint64_t vmstate_len,
                            struct colo_checkpoint_stats *stats);

/*
 * Primary: the same checkpoint in two calls, so that the request's round
 * trip stays outside the guest's pause, as in QEMU's own COLO (since 0.2).
 * begin sends checkpoint-request and returns at checkpoint-reply (the
 * secondary has stopped its guest) while the primary's guest still runs;
 * with early resume it first collects the previous vmstate-loaded. The
 * caller then stops its guest, collects the dirty pages and the device
 * state, and calls commit, which pushes them and returns at
 * vmstate-received (early resume) or vmstate-loaded. A bad list or state
 * passed to commit is refused before anything is sent (COLO_E_DIRTY_LIST,
 * COLO_E_CONFIG) and commit may be called again; any other error ends the
 * session. stats of begin: seq, request_ns, loaded_ns (early resume); of
 * commit: the whole checkpoint, with total_ns counting commit alone (the
 * pause). colo_primary_checkpoint() is begin + commit, its total_ns
 * includes request_ns.
 */
int colo_primary_checkpoint_begin(struct colo_session *s, struct colo_checkpoint_stats *stats);
int colo_primary_checkpoint_commit(struct colo_session *s, const struct colo_dirty_run *runs,
                                   size_t nruns, const void *vmstate, uint64_t vmstate_len,
                                   struct colo_checkpoint_stats *stats);

/*
 * Primary, between checkpoints, while the guest runs (since 0.4): pushes
 * these runs now, ahead of the next checkpoint, so that its pause carries only
 * what was dirtied since. Pass at that checkpoint the runs dirtied since the
 * last push (a page pushed here and written again must be passed again); the
 * checkpoint's dirty list names the union of everything pushed since the
 * previous checkpoint, and the secondary applies it only once that
 * checkpoint is complete: nothing of an incomplete one reaches its guest.
 * With early resume, the previous checkpoint's vmstate-loaded is collected
 * first, so nothing lands in the cache while the secondary applies from it.
 * Over rdma the pages are written into the secondary's cache before this
 * returns; over tcp in protocol version 2 (since 0.5) they are sent as page
 * frames announced by background-pages, flushed before this returns, and go
 * into the secondary's cache only; with a version-1 peer (which carries
 * pages only inside a checkpoint) they are kept and sent with the next
 * checkpoint. Runs outside
 * the layout are refused (COLO_E_DIRTY_LIST) before anything is sent and the
 * session stays usable; a lost peer is COLO_E_PEER_LOST, from this call or
 * the next, and ends the session. One thread at a time, as for
 * colo_primary_checkpoint(); not between begin and commit (-EINVAL).
 */
int colo_primary_push_background(struct colo_session *s, const struct colo_dirty_run *runs,
                                 size_t nruns);

/* Secondary: bind and listen. Accepts any number of sessions in turn. */
int colo_listener_new(const struct colo_config *cfg, struct colo_listener **out);
void colo_listener_delete(struct colo_listener **l);
/* The port actually bound (useful with port 0). */
uint16_t colo_listener_port(const struct colo_listener *l);
/* Wait for one primary (up to the timeout), handshake, send checkpoint-ready.
 * The session borrows the listener's RAM cache (colo_listener_new() opened
 * it): one session of a listener at a time, and the listener deleted only
 * after its sessions are closed. */
int colo_listener_accept(struct colo_listener *l, struct colo_session **out);

/*
 * Secondary: serve one checkpoint. Returns 0 once the checkpoint is applied
 * (guest RAM written, device state loaded, VM resumed) and vmstate-loaded
 * was sent, COLO_E_SHUTDOWN when the primary closed the session in order, or
 * an error. The guest RAM given in the config is written only once a
 * checkpoint is complete and persisted in the cache.
 * A checkpoint applied whose vmstate-loaded could not be sent still returns
 * 0: the guest holds it and colo_session_seq() counts it (for QEMU, fail
 * over from that state). The session has then failed: the next call returns
 * the error at once (COLO_E_PEER_LOST when the link went down), its message
 * beginning "checkpoint N was applied, but its vmstate-loaded could not be
 * sent". The primary, which never saw the acknowledgement, fails checkpoint N.
 * After the session ended (also by goodbye), every call returns the code it
 * ended with (COLO_E_SHUTDOWN stays COLO_E_SHUTDOWN; since 0.5).
 * A failing load_vmstate or resume_vm callback fails the checkpoint after
 * its pages were applied: the guest RAM then holds checkpoint N's pages
 * while colo_session_seq() and colo_session_vmstate() still give N-1, so
 * such a secondary cannot be failed over to consistently.
 * With integrity digests (colo_config_set_integrity), a checkpoint whose
 * digest does not match what the cache holds (a page injected or corrupted
 * on the path) fails with COLO_E_INTEGRITY before anything is persisted or
 * applied: the guest RAM and colo_session_vmstate() stay at the last
 * completed checkpoint. The session ends with it (the secondary cannot know
 * what else in its cache was touched): close it and fail over, or accept a
 * new connection.
 */
int colo_secondary_serve(struct colo_session *s, struct colo_checkpoint_stats *stats);

/*
 * Secondary: the cache mapping of one RAM block (for verification). After
 * a failed checkpoint the cache may hold pages of it (those that arrived
 * before the failure): they are never applied to the guest RAM, which stays
 * at the last completed checkpoint, but the cache no longer equals it in
 * those pages until the next checkpoint that lists them completes.
 */
int colo_session_cache_block(const struct colo_session *s, uint32_t block, const void **addr,
                             uint64_t *len);
/* The protocol version the session speaks (1 or 2), 0 without a session. */
uint32_t colo_session_protocol_version(const struct colo_session *s);
/*
 * Secondary: the device state of the last completed checkpoint (0 bytes
 * before the first). A checkpoint that fails, also while its state is being
 * received, leaves it as it was. Valid until the next colo_secondary_serve()
 * or colo_session_close().
 */
int colo_session_vmstate(const struct colo_session *s, const void **state, uint64_t *len);
/* Number of the last completed checkpoint (0 before the first). */
uint64_t colo_session_seq(const struct colo_session *s);

/*
 * Fails the session from any thread without blocking: every wait in it
 * (connect excepted) returns at once with an error, and the session can then
 * only be closed. For failover commands and QEMU's yank. The caller keeps the
 * session alive (not closed) until this returns.
 */
void colo_session_shutdown(struct colo_session *s);

/*
 * Without blocking, between checkpoints: 0 while the peer is there as far as
 * the transport knows (rdma: heartbeat, liveness probe, connection and
 * device events; tcp: the peer has not closed its end), else the error that
 * ended the session, with its reason in colo_errormsg(): COLO_E_PEER_LOST
 * once the peer is gone. Lets a primary fail over within the heartbeat
 * deadline instead of at its next checkpoint. Not at the same time as
 * another call on the session (one thread at a time).
 */
int colo_session_check(struct colo_session *s);

/* Ends a session: the primary says goodbye if the session is healthy. */
void colo_session_close(struct colo_session **s);

#ifdef __cplusplus
}
#endif

#endif /* COLO_RDMA_H */
