/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The public session API: picks the backend, runs the handshake and hands
 * the streams to the protocol drivers in proto/.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "cache/ram_cache.h"
#include "common/error.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/timeutil.h"
#include "lib/backend.h"
#include "lib/config.h"
#include "proto/auth.h"
#include "proto/handshake.h"
#include "proto/primary.h"
#include "proto/secondary.h"

struct colo_listener {
    struct colo_config *cfg;
    struct colo_ram_layout layout;
    const struct colo_backend *be;
    void *be_listener;
    struct colo_ram_cache *cache;
};

struct colo_session {
    enum colo_role role;
    struct colo_ram_layout layout;
    struct colo_stream *fwd; /* primary -> secondary */
    struct colo_stream *rp;  /* secondary -> primary (return path) */
    struct colo_ram_cache *cache; /* borrowed from the listener */
    struct colo_primary pri;
    struct colo_secondary sec;
    const char *transport; /* the backend's name, for messages */
    const struct colo_backend *be; /* for its verbs counts (work_counts) */
    bool failed;
    int end_err;       /* why it ended (once failed): later calls return it */
    char end_msg[512];
    struct colo_hello_pair hellos;
    struct colo_features features;       /* agreed in the handshake */
    uint8_t digest_key[COLO_AUTH_PROOF]; /* version 2 */
};

/* This side's hello, from the layout and what the config offers. */
static void hello_prepare(struct colo_session *s, const struct colo_config *cfg)
{
    struct colo_hello mine;

    colo_hello_from_layout(&mine, s->role, colo_hello_caps(cfg->max_version, cfg->integrity),
                           &s->layout);
    colo_hello_encode(&mine, s->hellos.mine);
    s->hellos.have_peer = false;
}

/* Integrity digests are keyed: without a key they would prove nothing. */
static int check_features_config(const struct colo_config *cfg, const char *who)
{
    if (cfg->integrity && !cfg->auth_key_len)
        return colo_err(COLO_E_CONFIG, "%s: integrity digests need an authentication key: "
                        "set one with colo_config_set_auth_key()", who);
    if (cfg->integrity && cfg->max_version < 2)
        return colo_err(COLO_E_CONFIG, "%s: integrity digests need protocol version 2, but "
                        "colo_config_set_protocol_version() allows only %u", who,
                        (unsigned)cfg->max_version);
    return 0;
}

/* The process's verbs counts now (all zero without rdma). */
struct verbs_mark {
    uint64_t v[4];
};

static void verbs_mark(const struct colo_session *s, struct verbs_mark *m)
{
    memset(m, 0, sizeof(*m));
    if (s->be->work_counts)
        s->be->work_counts(m->v);
}

/* The verbs work since m, into stats (which may be NULL). */
static void verbs_since(const struct colo_session *s, const struct verbs_mark *m,
                        struct colo_checkpoint_stats *stats)
{
    struct verbs_mark now;

    if (!stats)
        return;
    verbs_mark(s, &now);
    stats->wr_posted = now.v[0] - m->v[0];
    stats->doorbells = now.v[1] - m->v[1];
    stats->completions = now.v[2] - m->v[2];
    stats->cq_wakeups = now.v[3] - m->v[3];
}

/* Both sides send their hello first, then read the peer's: 40 bytes each
 * way never block on socket buffers. */
static int exchange_hello(struct colo_session *s)
{
    struct colo_stream *out = s->role == COLO_ROLE_PRIMARY ? s->fwd : s->rp;
    struct colo_stream *in = s->role == COLO_ROLE_PRIMARY ? s->rp : s->fwd;
    struct colo_hello mine;
    int ret;

    colo_stream_put_buffer(out, s->hellos.mine, sizeof(s->hellos.mine));
    ret = colo_stream_fflush(out);
    if (!ret)
        ret = colo_stream_get_buffer(in, s->hellos.peer, sizeof(s->hellos.peer));
    if (!ret)
        ret = colo_hello_decode(s->hellos.mine, sizeof(s->hellos.mine), &mine);
    if (!ret)
        ret = colo_hello_check_wire(&mine, s->hellos.peer, sizeof(s->hellos.peer));
    s->hellos.have_peer = !ret;
    return ret;
}

/* The features of two checked hellos (both passed colo_hello_check_wire). */
static int negotiate(struct colo_session *s)
{
    struct colo_hello mine, peer;
    int ret;

    if (!s->hellos.have_peer)
        return colo_err(COLO_E_HANDSHAKE, "%s: no hello from the peer", s->transport);
    ret = colo_hello_decode(s->hellos.mine, sizeof(s->hellos.mine), &mine);
    if (!ret)
        ret = colo_hello_decode(s->hellos.peer, sizeof(s->hellos.peer), &peer);
    if (!ret)
        ret = colo_hello_negotiate(&mine, &peer, &s->features);
    return ret;
}

static void session_free(struct colo_session *s)
{
    memset(s->digest_key, 0, sizeof(s->digest_key));
    if (s->role == COLO_ROLE_PRIMARY)
        colo_primary_fini(&s->pri);
    else
        colo_secondary_fini(&s->sec);
    /* The return path shares the connection: both references are dropped. */
    colo_stream_delete(&s->rp);
    colo_stream_delete(&s->fwd);
    free(s);
}

/*
 * Takes over fwd: opens the return path, checks the hello (unless the
 * backend did at connect time) and authenticates, all by deadline_ns (the
 * handshake deadline: whatever the peer sends meanwhile, bytes one at a time
 * or heartbeats, no wait outlives it). Nothing is registered yet.
 */
static int session_handshake(struct colo_session *s, struct colo_stream *fwd,
                             const struct colo_config *cfg, bool hello_done,
                             uint64_t deadline_ns)
{
    struct colo_stream *out, *in;
    int ret;

    s->fwd = fwd;
    colo_stream_set_ram(s->fwd, &s->layout, s->cache);
    colo_stream_set_deadline(s->fwd, deadline_ns, cfg->handshake_timeout_ms);
    ret = colo_stream_open_return_path(s->fwd, &s->rp);
    if (!ret && !hello_done)
        ret = exchange_hello(s);
    if (!ret)
        ret = negotiate(s);
    out = s->role == COLO_ROLE_PRIMARY ? s->fwd : s->rp;
    in = s->role == COLO_ROLE_PRIMARY ? s->rp : s->fwd;
    if (!ret) {
        bool primary = s->role == COLO_ROLE_PRIMARY;
        struct colo_auth_transcript t = {
            .primary_hello = primary ? s->hellos.mine : s->hellos.peer,
            .secondary_hello = primary ? s->hellos.peer : s->hellos.mine,
        };

        ret = colo_auth_run(out, in, s->role, cfg->auth_key, cfg->auth_key_len,
                            s->features.version >= 2 ? &t : NULL, s->digest_key);
    }
    if (ret == -ETIMEDOUT && colo_now_ns() >= deadline_ns)
        return colo_err(-ETIMEDOUT, "%s: the %s was not authenticated within the %" PRIu32
                        " ms handshake deadline (colo_config_set_handshake_timeout_ms)",
                        s->transport, s->role == COLO_ROLE_PRIMARY ? "secondary" : "primary",
                        cfg->handshake_timeout_ms);
    if (ret)
        return ret;
    colo_stream_set_deadline(s->fwd, 0, 0);
    colo_stream_set_deadline(s->rp, 0, 0);
    return 0;
}

/* Only between authenticated peers: for rdma, memory keys cross here. The
 * cache layout travels secondary -> primary, on the return path. */
static int session_register(struct colo_session *s)
{
    return colo_stream_register_ram(s->rp);
}

int colo_primary_connect(const struct colo_config *cfg, struct colo_session **out)
{
    const struct colo_backend *be;
    struct colo_stream *fwd;
    struct colo_session *s;
    uint64_t deadline;
    int ret;

    if (!cfg || !out)
        return colo_err(-EINVAL, "primary: no config");
    ret = colo_backend_check(cfg->transport);
    if (ret)
        return ret;
    be = colo_backend_get(cfg->transport);
    s = calloc(1, sizeof(*s));
    if (!s)
        return colo_err(-ENOMEM, "primary: out of memory");
    s->role = COLO_ROLE_PRIMARY;
    ret = colo_config_layout(cfg, &s->layout);
    if (!ret && !s->layout.nblocks)
        ret = colo_err(COLO_E_CONFIG, "primary: no RAM block: add one with "
                       "colo_config_add_ram_block()");
    if (!ret)
        ret = check_features_config(cfg, "primary");
    if (ret)
        goto out_free;
    s->transport = be->name;
    hello_prepare(s, cfg);
    s->be = be;
    deadline = colo_deadline_after_ms(cfg->handshake_timeout_ms);
    ret = be->connect(cfg, &s->layout, &s->hellos, &fwd);
    if (ret)
        goto out_free;
    ret = session_handshake(s, fwd, cfg, be->checks_hello, deadline);
    if (!ret)
        ret = session_register(s);
    if (ret)
        goto out_free;
    colo_primary_init(&s->pri, s->fwd, s->rp, &s->layout);
    colo_fsm_set_features(&s->pri.fsm, s->features.version, s->features.integrity);
    s->pri.digest_key = s->digest_key;
    s->pri.early_resume = cfg->early_resume;
    s->pri.pipelined = cfg->pipelined;
    ret = colo_primary_wait_ready(&s->pri);
    if (ret)
        goto out_free;
    colo_log(COLO_LOG_INFO, "primary: connected to %s port %u over %s, protocol version %u%s "
             "(epoch %" PRIu64 ")", cfg->host ? cfg->host : "localhost", (unsigned)cfg->port,
             be->name, (unsigned)s->features.version,
             s->features.integrity ? " with integrity digests" : "", s->pri.epoch);
    COLO_TRACE(session_primary_connect, cfg->port, s->pri.epoch);
    *out = s;
    return 0;

out_free:
    colo_log(COLO_LOG_ERROR, "primary: connecting to %s port %u over %s failed: %s",
             cfg->host ? cfg->host : "localhost", (unsigned)cfg->port, be->name,
             colo_errormsg());
    session_free(s);
    return ret;
}

static const char *role_str(const struct colo_session *s)
{
    return s->role == COLO_ROLE_PRIMARY ? "primary" : "secondary";
}

/* The session is over, for err (colo_errormsg() says why): every later
 * call returns the same code, so a caller tells an orderly end or a refused
 * message from a lost peer however late it asks. */
static void session_end(struct colo_session *s, int err)
{
    if (s->failed)
        return;
    s->failed = true;
    s->end_err = err;
    snprintf(s->end_msg, sizeof(s->end_msg), "%s", colo_errormsg());
}

/* The error a call on an ended session returns. */
static int session_ended(const struct colo_session *s, const char *what)
{
    return colo_err(s->end_err ? s->end_err : COLO_E_PEER_LOST,
                    "%s: the session has ended (%s): close it", what, s->end_msg);
}

/* Ends a session after an error, keeping the error's own message. */
static int session_fail(struct colo_session *s, int err, uint64_t seq)
{
    char why[512];

    snprintf(why, sizeof(why), "%s", colo_errormsg());
    colo_stream_shutdown(s->fwd);
    colo_err(err, "checkpoint %" PRIu64 " failed: %s", seq, why);
    session_end(s, err);
    COLO_TRACE(session_fail, err, seq);
    if (err == COLO_E_PEER_LOST)
        colo_log(COLO_LOG_WARNING, "%s: peer lost over %s, session ended: %s", role_str(s),
                 s->transport, colo_errormsg());
    else
        colo_log(COLO_LOG_ERROR, "%s: session over %s ended (%s): %s", role_str(s),
                 s->transport, colo_strerror(err), colo_errormsg());
    return err;
}

/* The primary session a begin/commit call may use, or the error why not. */
static int primary_usable(struct colo_session *s, const char *what)
{
    if (!s || s->role != COLO_ROLE_PRIMARY)
        return colo_err(-EINVAL, "%s: not a primary session", what);
    if (s->failed)
        return session_ended(s, what);
    return 0;
}

/*
 * A primary call's result: errors that sent nothing (a call out of order, a
 * bad list or state) leave the session usable; anything else leaves the
 * protocol in an unknown place and ends it.
 */
static int primary_result(struct colo_session *s, int ret)
{
    if (!ret || ret == -EINVAL || ret == COLO_E_DIRTY_LIST || ret == COLO_E_CONFIG)
        return ret;
    return session_fail(s, ret, colo_fsm_current_seq(&s->pri.fsm));
}

int colo_primary_checkpoint(struct colo_session *s, const struct colo_dirty_run *runs,
                            size_t nruns, const void *vmstate, uint64_t vmstate_len,
                            struct colo_checkpoint_stats *stats)
{
    int ret = primary_usable(s, "checkpoint");
    struct verbs_mark m;

    if (ret)
        return ret;
    verbs_mark(s, &m);
    ret = colo_primary_run(&s->pri, runs, nruns, vmstate, vmstate_len, stats);
    verbs_since(s, &m, stats);
    return primary_result(s, ret);
}

int colo_primary_push_background(struct colo_session *s, const struct colo_dirty_run *runs,
                                 size_t nruns)
{
    int ret = primary_usable(s, "background push");

    if (ret)
        return ret;
    return primary_result(s, colo_primary_background(&s->pri, runs, nruns));
}

int colo_primary_checkpoint_begin(struct colo_session *s, struct colo_checkpoint_stats *stats)
{
    int ret = primary_usable(s, "checkpoint begin");
    struct verbs_mark m;

    if (ret)
        return ret;
    verbs_mark(s, &m);
    ret = colo_primary_begin(&s->pri, stats);
    verbs_since(s, &m, stats);
    return primary_result(s, ret);
}

int colo_primary_checkpoint_commit(struct colo_session *s, const struct colo_dirty_run *runs,
                                   size_t nruns, const void *vmstate, uint64_t vmstate_len,
                                   struct colo_checkpoint_stats *stats)
{
    int ret = primary_usable(s, "checkpoint commit");
    struct verbs_mark m;

    if (ret)
        return ret;
    verbs_mark(s, &m);
    ret = colo_primary_commit(&s->pri, runs, nruns, vmstate, vmstate_len, stats);
    verbs_since(s, &m, stats);
    return primary_result(s, ret);
}

int colo_listener_new(const struct colo_config *cfg, struct colo_listener **out)
{
    struct colo_listener *l;
    int ret;

    if (!cfg || !out)
        return colo_err(-EINVAL, "listener: no config");
    ret = colo_backend_check(cfg->transport);
    if (ret)
        return ret;
    l = calloc(1, sizeof(*l));
    if (!l)
        return colo_err(-ENOMEM, "listener: out of memory");
    l->be = colo_backend_get(cfg->transport);
    ret = colo_config_copy(cfg, &l->cfg);
    if (!ret)
        ret = colo_config_layout(l->cfg, &l->layout);
    if (!ret && !l->layout.nblocks)
        ret = colo_err(COLO_E_CONFIG, "secondary: no RAM block: add one with "
                       "colo_config_add_ram_block()");
    if (!ret)
        ret = check_features_config(l->cfg, "secondary");
    /* The cache is checked before anyone connects: a bad path fails here. */
    if (!ret)
        ret = colo_ram_cache_open(l->cfg->cache_path, &l->layout,
                                  l->cfg->cache_overwrite ? COLO_CACHE_OVERWRITE : 0, &l->cache);
    if (!ret)
        ret = l->be->listen(l->cfg, &l->be_listener);
    if (ret) {
        colo_listener_delete(&l);
        return ret;
    }
    *out = l;
    return 0;
}

void colo_listener_delete(struct colo_listener **lp)
{
    struct colo_listener *l = lp ? *lp : NULL;

    if (!l)
        return;
    l->be->listener_delete(&l->be_listener);
    colo_ram_cache_close(&l->cache);
    colo_config_delete(&l->cfg);
    free(l);
    *lp = NULL;
}

uint16_t colo_listener_port(const struct colo_listener *l)
{
    if (!l || !l->be_listener)
        return 0;
    return l->be->port(l->be_listener);
}

static uint64_t new_epoch(void)
{
    uint64_t e = 0;

    if (getrandom(&e, sizeof(e), 0) != sizeof(e))
        e = colo_now_ns();
    e &= COLO_SEQ_MAX; /* the codec bounds every value to 63 bits */
    return e ? e : 1;
}

/*
 * The pre-authentication phase of the secondary. colo_listener_accept() runs
 * the handshakes of up to ACCEPT_PENDING_MAX connections at once, one thread
 * each with the same blocking code as before (establish, hello, auth), every
 * one under its own absolute deadline (cfg->handshake_timeout_ms from the
 * moment the connection was taken). The calling thread polls the listener
 * and an eventfd the handshakes write when they end: the first to
 * authenticate wins and the others are cancelled. So a peer without the key
 * (silent, dripping, echoing, or several of them) delays a real primary's
 * handshake not at all while a slot is free; when all slots are taken and
 * another connection waits, the oldest unauthenticated handshake is
 * cancelled for it, so the connections cannot be starved by peers that just
 * hold theirs open either.
 */
#define ACCEPT_PENDING_MAX 8

struct handshake {
    struct colo_listener *l;
    struct colo_session *s;
    void *pending; /* the backend's, until establish takes it */
    uint64_t deadline_ns;
    int cancel_fd;
    int done_fd; /* the accept's, written once at the end */
    pthread_t tid;
    bool threaded;
    pthread_mutex_t lock; /* over cancelled and s->fwd while it runs */
    bool cancelled;
    bool done;
    int ret;
    char why[512];
};

static void handshake_free(struct handshake *h)
{
    if (h->s)
        session_free(h->s);
    if (h->cancel_fd >= 0)
        close(h->cancel_fd);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Cancels from the accepting thread; the handshake then fails at once. */
static void handshake_cancel(struct handshake *h)
{
    pthread_mutex_lock(&h->lock);
    if (!h->cancelled) {
        h->cancelled = true;
        if (h->s->fwd)
            colo_stream_wake_shutdown(h->s->fwd);
        else if (eventfd_write(h->cancel_fd, 1))
            colo_log(COLO_LOG_ERROR, "secondary: cannot cancel a handshake: %s",
                     strerror(errno));
    }
    pthread_mutex_unlock(&h->lock);
}

static void *handshake_run(void *arg)
{
    struct handshake *h = arg;
    struct colo_listener *l = h->l;
    struct colo_stream *fwd = h->s->fwd;
    int ret = 0;

    if (h->pending) {
        void *pending = h->pending;

        h->pending = NULL;
        ret = l->be->establish(pending, l->cfg, &h->s->layout, &h->s->hellos, h->deadline_ns,
                               h->cancel_fd, &fwd);
        if (!ret) {
            pthread_mutex_lock(&h->lock);
            h->s->fwd = fwd; /* a cancel from now on shuts it down */
            if (h->cancelled)
                ret = colo_err(-ECANCELED, "%s: handshake cancelled", l->be->name);
            pthread_mutex_unlock(&h->lock);
        } else if (ret == -ETIMEDOUT && colo_now_ns() >= h->deadline_ns) {
            ret = colo_err(-ETIMEDOUT, "%s: the primary was not authenticated within the %" PRIu32
                           " ms handshake deadline (colo_config_set_handshake_timeout_ms)",
                           l->be->name, l->cfg->handshake_timeout_ms);
        }
    }
    if (!ret)
        ret = session_handshake(h->s, fwd, l->cfg, l->be->checks_hello, h->deadline_ns);
    h->ret = ret;
    if (ret)
        snprintf(h->why, sizeof(h->why), "%s", colo_errormsg());
    __atomic_store_n(&h->done, true, __ATOMIC_RELEASE);
    if (eventfd_write(h->done_fd, 1))
        colo_log(COLO_LOG_ERROR, "secondary: handshake: eventfd: %s", strerror(errno));
    return NULL;
}

/* Takes one connection from the listener and starts its handshake. */
static int handshake_start(struct colo_listener *l, int done_fd, struct handshake **out)
{
    struct colo_stream *fwd = NULL;
    struct handshake *h = calloc(1, sizeof(*h));
    void *pending = NULL;
    int ret;

    if (!h)
        return colo_err(-ENOMEM, "accept: out of memory");
    pthread_mutex_init(&h->lock, NULL);
    h->l = l;
    h->done_fd = done_fd;
    h->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    h->s = calloc(1, sizeof(*h->s));
    if (h->cancel_fd < 0 || !h->s) {
        ret = colo_err(-ENOMEM, "accept: out of memory");
        goto out_free;
    }
    h->s->role = COLO_ROLE_SECONDARY;
    h->s->layout = l->layout;
    h->s->cache = l->cache;
    h->s->transport = l->be->name;
    hello_prepare(h->s, l->cfg);
    h->s->be = l->be;
    /* The listener's fd was readable: this returns at once. */
    ret = l->be->accept(l->be_listener, l->cfg, &h->s->layout, &h->s->hellos, 1, &fwd, &pending);
    if (ret)
        goto out_free;
    h->deadline_ns = colo_deadline_after_ms(l->cfg->handshake_timeout_ms);
    h->s->fwd = fwd;
    h->pending = pending;
    h->threaded = pthread_create(&h->tid, NULL, handshake_run, h) == 0;
    if (!h->threaded)
        handshake_run(h); /* no thread to spare: this one, still bounded by the deadline */
    *out = h;
    return 0;

out_free:
    if (h->s && !h->s->fwd) {
        free(h->s);
        h->s = NULL;
    }
    handshake_free(h);
    return ret;
}

static void handshake_join(struct handshake *h)
{
    if (h->threaded)
        pthread_join(h->tid, NULL);
    h->threaded = false;
}

/* The unauthenticated connection that has had the longest, not cancelled yet. */
static struct handshake *handshake_oldest(struct handshake **hs, int n)
{
    struct handshake *oldest = NULL;

    for (int i = 0; i < n; i++)
        if (!hs[i]->cancelled && (!oldest || hs[i]->deadline_ns < oldest->deadline_ns))
            oldest = hs[i];
    return oldest;
}

/* Waits until one handshake authenticated (its session in *out) or, with
 * none running, until one failed (its error) or nobody connected in time. */
static int accept_authenticated(struct colo_listener *l, struct colo_session **out)
{
    uint64_t wait_deadline = colo_deadline_after_ms(l->cfg->timeout_ms);
    struct handshake *hs[ACCEPT_PENDING_MAX], *winner = NULL;
    int done_fd, n = 0, err = 0;
    char why[512] = "";

    done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (done_fd < 0)
        return colo_err(-errno, "accept: eventfd: %s", strerror(errno));
    for (;;) {
        struct pollfd p[2] = {{.fd = done_fd, .events = POLLIN},
                              {.fd = l->be->accept_fd(l->be_listener), .events = POLLIN}};
        struct handshake *h = NULL;
        uint64_t now;
        int timeout = -1, ret;
        eventfd_t v;

        for (int i = 0; i < n;) {
            h = hs[i];
            if (!__atomic_load_n(&h->done, __ATOMIC_ACQUIRE)) {
                i++;
                continue;
            }
            handshake_join(h);
            hs[i] = hs[--n];
            if (!h->ret && !winner && !h->cancelled) {
                winner = h;
                continue;
            }
            if (h->ret == -ECONNABORTED) {
                /* The peer gave up before its connection was set up: nobody
                 * to report to, so keep waiting for a primary. */
                colo_log(COLO_LOG_WARNING, "secondary: over %s: %s", l->be->name, h->why);
            } else if (!h->cancelled) {
                colo_log(COLO_LOG_ERROR, "secondary: setting up a session over %s failed: %s",
                         l->be->name, h->why);
                err = h->ret;
                snprintf(why, sizeof(why), "%s", h->why);
            }
            handshake_free(h);
        }
        if (winner || (!n && err))
            break;
        now = colo_now_ns();
        if (!n && wait_deadline) {
            if (now >= wait_deadline) {
                err = colo_err(-ETIMEDOUT, "%s: timed out after %" PRIu32
                               " ms while waiting for a primary to connect",
                               l->be->name, l->cfg->timeout_ms);
                snprintf(why, sizeof(why), "%s", colo_errormsg());
                break;
            }
            timeout = colo_ms_until(wait_deadline, now);
        }
        /* Full, with every slot cancelled already: wait for one to end. */
        if (n == ACCEPT_PENDING_MAX && !handshake_oldest(hs, n))
            p[1].fd = -1;
        ret = poll(p, 2, timeout);
        if (ret < 0 && errno != EINTR) {
            err = colo_err(-errno, "accept: poll: %s", strerror(errno));
            snprintf(why, sizeof(why), "%s", colo_errormsg());
            break;
        }
        if (p[0].revents)
            (void)eventfd_read(done_fd, &v);
        if (!(p[1].revents & POLLIN))
            continue;
        if (n == ACCEPT_PENDING_MAX) {
            handshake_cancel(handshake_oldest(hs, n));
            continue;
        }
        ret = handshake_start(l, done_fd, &h);
        if (!ret) {
            hs[n++] = h;
        } else if (ret != -EAGAIN) {
            /* Refused before a handshake began (rdma: a wrong hello). */
            colo_log(COLO_LOG_ERROR, "secondary: accepting over %s failed: %s", l->be->name,
                     colo_errormsg());
            err = ret;
            snprintf(why, sizeof(why), "%s", colo_errormsg());
        }
    }
    for (int i = 0; i < n; i++)
        handshake_cancel(hs[i]);
    for (int i = 0; i < n; i++) {
        handshake_join(hs[i]);
        handshake_free(hs[i]);
    }
    close(done_fd);
    if (!winner)
        return colo_err(err, "%s", why);
    *out = winner->s;
    winner->s = NULL;
    handshake_free(winner);
    return 0;
}

int colo_listener_accept(struct colo_listener *l, struct colo_session **out)
{
    struct colo_session *s;
    uint64_t epoch;
    int ret;

    if (!l || !out)
        return colo_err(-EINVAL, "accept: no listener");
    ret = accept_authenticated(l, &s);
    if (ret)
        return ret;
    ret = session_register(s);
    if (ret)
        goto out_free;
    colo_secondary_init(&s->sec, s->fwd, s->rp, &s->layout, s->cache, l->cfg->max_vmstate,
                        COLO_DIRTY_RUNS_HARD_MAX, &l->cfg->ops, l->cfg->opaque);
    colo_fsm_set_features(&s->sec.fsm, s->features.version, s->features.integrity);
    s->sec.digest_key = s->digest_key;
    epoch = new_epoch();
    ret = colo_secondary_send_ready(&s->sec, epoch);
    if (ret)
        goto out_free;
    colo_log(COLO_LOG_INFO, "secondary: accepted a primary over %s on port %u, protocol version "
             "%u%s (epoch %" PRIu64 ")", l->be->name, (unsigned)colo_listener_port(l),
             (unsigned)s->features.version,
             s->features.integrity ? " with integrity digests" : "", epoch);
    COLO_TRACE(session_secondary_accept, colo_listener_port(l), epoch);
    *out = s;
    return 0;

out_free:
    colo_log(COLO_LOG_ERROR, "secondary: setting up a session over %s failed: %s",
             l->be->name, colo_errormsg());
    session_free(s);
    return ret;
}

int colo_secondary_serve(struct colo_session *s, struct colo_checkpoint_stats *stats)
{
    struct verbs_mark m;
    int ret;

    if (!s || s->role != COLO_ROLE_SECONDARY)
        return colo_err(-EINVAL, "serve: not a secondary session");
    if (s->sec.ack_err) {
        /* The last call returned 0: its checkpoint was applied. Now its end. */
        colo_stream_error(s->rp);
        return colo_err(s->sec.ack_err, "checkpoint %" PRIu64 " was applied, but its "
                        "vmstate-loaded could not be sent: %s; the session is over: close it",
                        s->sec.fsm.completed, colo_errormsg());
    }
    if (s->failed)
        return session_ended(s, "serve");
    verbs_mark(s, &m);
    ret = colo_secondary_serve_one(&s->sec, stats);
    verbs_since(s, &m, stats);
    if (ret == COLO_E_SHUTDOWN) {
        session_end(s, ret);
        colo_log(COLO_LOG_INFO, "secondary: %s", colo_errormsg());
    } else if (ret) {
        return session_fail(s, ret, colo_fsm_current_seq(&s->sec.fsm));
    } else if (s->sec.ack_err) {
        session_end(s, s->sec.ack_err);
        colo_stream_shutdown(s->fwd);
        COLO_TRACE(session_fail, s->sec.ack_err, s->sec.fsm.completed);
    }
    return ret;
}

int colo_session_cache_block(const struct colo_session *s, uint32_t block, const void **addr,
                             uint64_t *len)
{
    if (!s || !s->cache || block >= s->layout.nblocks)
        return colo_err(-EINVAL, "cache block %" PRIu32 ": expected a secondary session and a "
                        "block below %" PRIu32, block, s ? s->layout.nblocks : 0);
    *addr = colo_ram_cache_block(s->cache, block);
    *len = s->layout.blocks[block].length;
    return 0;
}

int colo_session_vmstate(const struct colo_session *s, const void **state, uint64_t *len)
{
    if (!s || s->role != COLO_ROLE_SECONDARY)
        return colo_err(-EINVAL, "vmstate: expected a secondary session");
    colo_secondary_vmstate(&s->sec, state, len);
    return 0;
}

uint32_t colo_session_protocol_version(const struct colo_session *s)
{
    return s ? s->features.version : 0;
}

uint64_t colo_session_seq(const struct colo_session *s)
{
    if (!s)
        return 0;
    return s->role == COLO_ROLE_PRIMARY ? s->pri.fsm.completed : s->sec.fsm.completed;
}

int colo_session_check(struct colo_session *s)
{
    int ret;

    if (!s)
        return colo_err(-EINVAL, "colo_session_check: no session");
    ret = colo_stream_check(s->fwd);
    if (!ret && s->rp)
        ret = colo_stream_check(s->rp);
    if (ret && !s->failed) {
        session_end(s, ret);
        COLO_TRACE(session_check_lost, ret);
        colo_log(ret == COLO_E_PEER_LOST ? COLO_LOG_WARNING : COLO_LOG_ERROR,
                 "%s: %s over %s: %s", role_str(s),
                 ret == COLO_E_PEER_LOST ? "peer lost" : "session failed", s->transport,
                 colo_errormsg());
    }
    return ret;
}

void colo_session_shutdown(struct colo_session *s)
{
    if (!s)
        return;
    COLO_TRACE(session_shutdown, s->role);
    colo_log(COLO_LOG_INFO, "%s: session over %s shut down by the caller", role_str(s),
             s->transport);
    colo_stream_wake_shutdown(s->fwd);
}

void colo_session_close(struct colo_session **sp)
{
    struct colo_session *s = sp ? *sp : NULL;

    if (!s)
        return;
    if (s->role == COLO_ROLE_PRIMARY && !s->failed)
        colo_primary_goodbye(&s->pri);
    COLO_TRACE(session_close, s->role, colo_session_seq(s));
    colo_log(COLO_LOG_INFO, "%s: session over %s closed after checkpoint %" PRIu64, role_str(s),
             s->transport, colo_session_seq(s));
    session_free(s);
    *sp = NULL;
}
