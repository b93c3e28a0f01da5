/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * RDMA end to end on a real (soft-RoCE) device, through the public API.
 * One scenario per process, so that fork() happens before any verbs use:
 *
 *   verify N        N checkpoints of random dirty sets; the secondary's cache
 *                   and applied RAM equal the primary's RAM after each
 *   wrong-key       a primary with another key is refused on both sides, and
 *                   the listener then serves a good primary
 *   kill-primary P  the primary is SIGKILLed at point P of a checkpoint
 *                   (request|push|received|loaded); the secondary reports
 *                   peer lost within the heartbeat deadline and its applied
 *                   RAM equals the last completed checkpoint byte for byte
 *   kill-secondary  the secondary dies mid-checkpoint; the primary reports
 *                   peer lost within the deadline ("idle": it dies between
 *                   checkpoints and colo_session_check() reports it)
 *   fault CMD       CMD (e.g. "ip link set dummy0 down", "rdma link delete
 *                   rxe0") runs in the background after 5 checkpoints; both
 *                   sides report peer lost within the deadline plus a margin,
 *                   and the secondary's applied RAM is its last completed
 *                   checkpoint
 *   cache-refused 'DIR WHY'  a cache in DIR (a full or read-only file system)
 *                   fails the listener with an error containing WHY before
 *                   anyone connects, and leaves nothing in DIR
 *
 * The address comes from COLO_RDMA_ADDR (set by vm-run); the cache is
 * COLO_RDMA_DAX when set (device-DAX), else a file in /tmp.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <colo-rdma/colo-rdma.h>

#define RAM_LEN (2u << 20) /* 512 pages: small, soft-RoCE under TCG is slow */
#define PAGES (RAM_LEN / 4096)
#define HEARTBEAT_MS 250
#define DEADLINE_MS (4 * HEARTBEAT_MS)

static const char *addr;
static char cache_path[128];
static const char *scenario_arg;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * The primary's workload, a pure function of the checkpoint number, so a
 * secondary can rebuild the RAM of any completed checkpoint to compare.
 */
static size_t dirty(uint8_t *ram, uint64_t seq, struct colo_dirty_run *runs)
{
    uint64_t s = seq * 0x9e3779b97f4a7c15ull + 1;
    size_t n;

    if (seq == 1) {
        for (uint64_t p = 0; p < PAGES; p++)
            memset(ram + p * 4096, (int)(p & 0xff), 4096);
        runs[0] = (struct colo_dirty_run){.block = 0, .first_page = 0, .page_count = PAGES};
        return 1;
    }
    n = 1 + rng(&s) % 32;
    for (size_t i = 0; i < n; i++) {
        uint64_t first = rng(&s) % PAGES, count = 1 + rng(&s) % 16;

        if (count > PAGES - first)
            count = PAGES - first;
        runs[i] = (struct colo_dirty_run){.block = 0, .first_page = first, .page_count = count};
        for (uint64_t p = first; p < first + count; p++)
            for (int k = 0; k < 4096; k += 256)
                ram[p * 4096 + (uint64_t)k] = (uint8_t)rng(&s);
    }
    return n;
}

static struct colo_config *config(uint8_t *ram, uint16_t port, const char *key)
{
    struct colo_config *cfg;

    assert_int_equal(colo_config_new(&cfg), 0);
    assert_int_equal(colo_config_set_transport(cfg, "rdma"), 0);
    assert_int_equal(colo_config_set_address(cfg, addr, port), 0);
    assert_int_equal(colo_config_set_timeout_ms(cfg, 20000), 0);
    assert_int_equal(colo_config_set_heartbeat_ms(cfg, HEARTBEAT_MS), 0);
    assert_int_equal(colo_config_add_ram_block(cfg, "pc.ram", ram, RAM_LEN), 0);
    assert_int_equal(colo_config_set_cache_path(cfg, cache_path), 0);
    if (key)
        assert_int_equal(colo_config_set_auth_key(cfg, key, strlen(key)), 0);
    return cfg;
}

/* ---- verify ---- */

struct server {
    struct colo_listener *l;
    struct colo_session *s;
    int sessions;
    int accept_ret[4];
    int serve_ret;
    uint64_t served;
    uint64_t last_seq;     /* last completed checkpoint when the session ended */
    uint64_t ended_ms;
};

static void *serve(void *arg)
{
    struct server *sv = arg;

    for (int i = 0; i < sv->sessions; i++) {
        int ret = colo_listener_accept(sv->l, &sv->s);

        sv->accept_ret[i] = ret;
        if (ret)
            continue;
        while ((ret = colo_secondary_serve(sv->s, NULL)) == 0)
            sv->served++;
        sv->serve_ret = ret;
        sv->ended_ms = now_ms();
        sv->last_seq = colo_session_seq(sv->s);
        colo_session_close(&sv->s);
    }
    return NULL;
}

static void test_verify(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN];
    struct colo_dirty_run runs[32];
    struct colo_config *scfg = config(sec, 0, "k"), *pcfg;
    struct server sv = {.sessions = 1};
    struct colo_session *p;
    pthread_t tid;
    int n = scenario_arg ? atoi(scenario_arg) : 200;
    uint64_t sum_us = 0;

    assert_int_equal(colo_listener_new(scfg, &sv.l), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, &sv), 0);
    pcfg = config(pri, colo_listener_port(sv.l), "k");
    assert_int_equal(colo_primary_connect(pcfg, &p), 0);
    for (int c = 1; c <= n; c++) {
        size_t nr = dirty(pri, (uint64_t)c, runs);
        struct colo_checkpoint_stats st;
        const void *cache;
        uint64_t len;
        char devstate[64];

        snprintf(devstate, sizeof(devstate), "device state %d", c);
        assert_int_equal(colo_primary_checkpoint(p, runs, nr, devstate, sizeof(devstate), &st), 0);
        if (c > 1)
            sum_us += st.total_ns / 1000;
        /* the secondary is idle until the next request: safe to look */
        assert_int_equal(colo_session_cache_block(sv.s, 0, &cache, &len), 0);
        if (memcmp(cache, pri, RAM_LEN))
            fail_msg("checkpoint %d: the secondary's cache differs from the primary's RAM", c);
        if (memcmp(sec, pri, RAM_LEN))
            fail_msg("checkpoint %d: the secondary's applied RAM differs", c);
    }
    print_message("%d checkpoints verified byte for byte, mean pause %" PRIu64 " us\n", n,
                  n > 1 ? sum_us / (uint64_t)(n - 1) : 0);
    colo_session_close(&p);
    pthread_join(tid, NULL);
    assert_int_equal(sv.serve_ret, COLO_E_SHUTDOWN);
    assert_true(sv.served == (uint64_t)n);
    colo_listener_delete(&sv.l);
    colo_config_delete(&scfg);
    colo_config_delete(&pcfg);
}

/* ---- background push ---- */

/*
 * Half of each checkpoint's runs are pushed while the "guest runs" (with
 * early resume, right after the previous checkpoint returned), then some of
 * those pages are written again and the checkpoint carries the rest. Over
 * rdma the pushed pages are in the secondary's cache before the checkpoint,
 * yet its guest RAM still holds exactly the previous checkpoint; after it,
 * cache and guest match the primary byte for byte.
 */
static void test_background(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN], prev[RAM_LEN];
    struct colo_dirty_run runs[33];
    struct colo_config *scfg = config(sec, 0, "k"), *pcfg;
    struct server sv = {.sessions = 1};
    struct colo_session *p;
    pthread_t tid;
    int n = scenario_arg ? atoi(scenario_arg) : 50;
    uint64_t pushed = 0;

    assert_int_equal(colo_listener_new(scfg, &sv.l), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, &sv), 0);
    pcfg = config(pri, colo_listener_port(sv.l), "k");
    assert_int_equal(colo_config_set_early_resume(pcfg, 1), 0);
    assert_int_equal(colo_primary_connect(pcfg, &p), 0);
    for (int c = 1; c <= n; c++) {
        size_t nr = dirty(pri, (uint64_t)c, runs), half = nr / 2;
        struct colo_checkpoint_stats st;
        const void *cache;
        uint64_t len;

        assert_int_equal(colo_primary_push_background(p, runs, half), 0);
        if (half) {
            const struct colo_dirty_run *r = &runs[0];

            /* the push collected checkpoint c-1's vmstate-loaded first: the
             * guest holds exactly that one, the pushed pages are only cached */
            if (c > 1 && memcmp(sec, prev, RAM_LEN))
                fail_msg("checkpoint %d: the secondary's guest RAM changed before the "
                         "checkpoint completed", c);

            assert_int_equal(colo_session_cache_block(sv.s, 0, &cache, &len), 0);
            if (memcmp((const uint8_t *)cache + r->first_page * 4096,
                       pri + r->first_page * 4096, r->page_count * 4096))
                fail_msg("checkpoint %d: a pushed run is not in the cache", c);
            /* the guest writes the first pushed page again: the checkpoint carries it */
            pri[r->first_page * 4096 + 7] ^= 0x5a;
            runs[nr++] = (struct colo_dirty_run){.block = 0, .first_page = r->first_page,
                                                 .page_count = 1};
        }
        assert_int_equal(colo_primary_checkpoint(p, runs + half, nr - half, "s", 1, &st), 0);
        pushed += st.background_pages;
        memcpy(prev, pri, RAM_LEN); /* checkpoint c, as the secondary must apply it */
    }
    colo_session_close(&p); /* collects the last vmstate-loaded, then goodbye */
    pthread_join(tid, NULL);
    assert_int_equal(sv.serve_ret, COLO_E_SHUTDOWN);
    assert_true(sv.served == (uint64_t)n);
    if (memcmp(sec, pri, RAM_LEN))
        fail_msg("the secondary's guest RAM differs from the primary's at the end");
    print_message("%d checkpoints with background push verified, %" PRIu64
                  " pages pushed ahead\n", n, pushed);
    colo_listener_delete(&sv.l);
    colo_config_delete(&scfg);
    colo_config_delete(&pcfg);
}

/* ---- wrong key ---- */

static void test_wrong_key(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN];
    struct colo_dirty_run runs[32];
    struct colo_config *scfg = config(sec, 0, "the right key"), *bad, *good;
    struct server sv = {.sessions = 2};
    struct colo_session *p = NULL;
    pthread_t tid;

    assert_int_equal(colo_listener_new(scfg, &sv.l), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, &sv), 0);
    bad = config(pri, colo_listener_port(sv.l), "a wrong key");
    assert_int_equal(colo_primary_connect(bad, &p), COLO_E_AUTH);
    assert_non_null(strstr(colo_errormsg(), "does not hold the same key"));
    assert_null(p);
    /* the listener takes the next, good primary */
    good = config(pri, colo_listener_port(sv.l), "the right key");
    assert_int_equal(colo_primary_connect(good, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, runs, dirty(pri, 1, runs), "s", 1, NULL), 0);
    colo_session_close(&p);
    pthread_join(tid, NULL);
    assert_int_equal(sv.accept_ret[0], COLO_E_AUTH);
    assert_int_equal(sv.accept_ret[1], 0);
    assert_true(sv.served == 1);
    assert_int_equal(memcmp(sec, pri, RAM_LEN), 0);
    colo_listener_delete(&sv.l);
    colo_config_delete(&scfg);
    colo_config_delete(&bad);
    colo_config_delete(&good);
}

/* ---- the secondary's cache where it cannot live ---- */

/* cache-refused DIR WHY: a cache in DIR (a full or read-only file system)
 * fails the listener with a message containing WHY, before anyone connects;
 * nothing is left in DIR, and the process still serves with a good path. */
static void test_cache_refused(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN];
    char dir[100], why[64], good_path[sizeof(cache_path)];
    struct colo_dirty_run runs[32];
    struct colo_config *scfg, *pcfg;
    struct server sv = {.sessions = 1};
    struct colo_session *p = NULL;
    pthread_t tid;

    assert_non_null(scenario_arg);
    assert_int_equal(sscanf(scenario_arg, "%99s %63[^\n]", dir, why), 2);
    snprintf(good_path, sizeof(good_path), "%s", cache_path);
    snprintf(cache_path, sizeof(cache_path), "%s/cache", dir);
    scfg = config(sec, 0, "k");
    assert_int_equal(colo_listener_new(scfg, &sv.l), COLO_E_CACHE);
    print_message("cache in %s refused: %s\n", dir, colo_errormsg());
    assert_non_null(strstr(colo_errormsg(), why));
    assert_null(sv.l);
    assert_int_equal(access(cache_path, F_OK), -1);
    colo_config_delete(&scfg);
    /* the same process, with a cache that fits, still serves */
    snprintf(cache_path, sizeof(cache_path), "%s", good_path);
    scfg = config(sec, 0, "k");
    assert_int_equal(colo_listener_new(scfg, &sv.l), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, &sv), 0);
    pcfg = config(pri, colo_listener_port(sv.l), "k");
    assert_int_equal(colo_primary_connect(pcfg, &p), 0);
    assert_int_equal(colo_primary_checkpoint(p, runs, dirty(pri, 1, runs), "s", 1, NULL), 0);
    colo_session_close(&p);
    pthread_join(tid, NULL);
    assert_int_equal(memcmp(sec, pri, RAM_LEN), 0);
    colo_listener_delete(&sv.l);
    colo_config_delete(&scfg);
    colo_config_delete(&pcfg);
}

/* ---- kill either side ---- */

/* random=SEED, or random-bg=SEED: the same with background push on. */
static bool background_push;

static const char *random_seed_arg(void)
{
    if (scenario_arg && !strncmp(scenario_arg, "random=", 7))
        return scenario_arg + 7;
    if (scenario_arg && !strncmp(scenario_arg, "random-bg=", 10)) {
        background_push = true;
        return scenario_arg + 10;
    }
    return NULL;
}

/* Checkpoint c of the workload; with background push, half its runs go ahead. */
static int checkpoint_step(struct colo_session *p, uint8_t *pri, uint64_t c,
                           struct colo_dirty_run *runs)
{
    size_t n = dirty(pri, c, runs), half = background_push ? n / 2 : 0;
    int ret = half ? colo_primary_push_background(p, runs, half) : 0;

    return ret ? ret : colo_primary_checkpoint(p, runs + half, n - half, "s", 1, NULL);
}

/* ---- kill the primary ---- */

enum kill_point { KILL_AT_REQUEST, KILL_AT_PUSH, KILL_AT_RECEIVED, KILL_AT_LOADED, KILL_RANDOM };

struct victim {
    pid_t pid;
    enum kill_point point;
    uint64_t at_seq;
    uint64_t seen; /* checkpoints that reached stop_vm */
    uint64_t delay_us; /* KILL_RANDOM: after stop_vm of at_seq */
    volatile uint64_t killed_ms;
    pthread_t timer;
    bool timer_started;
};

static void kill_now(struct victim *v);

static void *kill_later(void *arg)
{
    struct victim *v = arg;

    usleep((useconds_t)v->delay_us);
    kill_now(v);
    return NULL;
}

static void kill_now(struct victim *v)
{
    if (v->killed_ms)
        return;
    kill(v->pid, SIGKILL);
    v->killed_ms = now_ms();
}

static int on_stop(void *opaque)
{
    struct victim *v = opaque;

    if (++v->seen == v->at_seq && v->point == KILL_AT_REQUEST)
        kill_now(v);
    if (v->seen == v->at_seq && v->point == KILL_RANDOM && !v->timer_started) {
        /* Lands anywhere from here on: in this checkpoint or a later one. */
        v->timer_started = pthread_create(&v->timer, NULL, kill_later, v) == 0;
    }
    return 0;
}

static int on_load(void *opaque, const void *st, uint64_t len)
{
    struct victim *v = opaque;

    if (v->seen == v->at_seq && v->point == KILL_AT_RECEIVED)
        kill_now(v);
    return 0;
}

static int on_resume(void *opaque)
{
    struct victim *v = opaque;

    if (v->seen == v->at_seq && v->point == KILL_AT_LOADED)
        kill_now(v);
    return 0;
}

/* Child: the primary, running checkpoints until it is killed. */
static void primary_child(int port_fd, uint8_t *pri)
{
    struct colo_dirty_run runs[32];
    struct colo_session *p;
    struct colo_config *cfg;
    uint16_t port;

    if (read(port_fd, &port, sizeof(port)) != sizeof(port))
        _exit(3);
    cfg = config(pri, port, "k");
    if (colo_primary_connect(cfg, &p))
        _exit(4);
    for (uint64_t c = 1;; c++)
        if (checkpoint_step(p, pri, c, runs))
            _exit(5);
}

static void test_kill_primary(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN], expect[RAM_LEN];
    static const char *names[] = {"request", "push", "received", "loaded", "random"};
    struct colo_dirty_run runs[32];
    struct victim v = {.at_seq = 3 + (uint64_t)(getpid() % 5)};
    uint64_t seed = 0;
    struct colo_secondary_ops ops = {on_stop, on_load, on_resume};
    struct colo_listener *l;
    struct colo_session *s;
    struct colo_config *cfg;
    uint64_t completed, detect_ms, served_ms = 0;
    int fds[2], ret, status;
    uint16_t port;

    for (int i = 0; i < 4; i++)
        if (scenario_arg && !strcmp(scenario_arg, names[i]))
            v.point = (enum kill_point)i;
    if (random_seed_arg()) {
        /* A seeded point: a checkpoint and a delay into it (up to 30 ms). */
        seed = strtoull(random_seed_arg(), NULL, 10) * 0x9e3779b97f4a7c15ull + 7;
        v.point = KILL_RANDOM;
        v.at_seq = 2 + rng(&seed) % 6;
        v.delay_us = rng(&seed) % 30000;
    }
    assert_int_equal(pipe(fds), 0);
    v.pid = fork();
    assert_true(v.pid >= 0);
    if (v.pid == 0) {
        close(fds[1]);
        primary_child(fds[0], pri);
    }
    close(fds[0]);
    cfg = config(sec, 0, "k");
    assert_int_equal(colo_config_set_secondary_ops(cfg, &ops, &v), 0);
    assert_int_equal(colo_listener_new(cfg, &l), 0);
    port = colo_listener_port(l);
    assert_int_equal(write(fds[1], &port, sizeof(port)), sizeof(port));
    assert_int_equal(colo_listener_accept(l, &s), 0);
    if (v.point == KILL_AT_PUSH) {
        /* The kill lands while the primary pushes pages of at_seq. */
        while ((ret = colo_secondary_serve(s, NULL)) == 0)
            if (colo_session_seq(s) == v.at_seq - 1 && !v.killed_ms) {
                usleep(2000);
                kill_now(&v);
            }
    } else {
        while ((ret = colo_secondary_serve(s, NULL)) == 0)
            served_ms = now_ms();
    }
    detect_ms = now_ms() - v.killed_ms;
    (void)served_ms;
    assert_true(v.killed_ms != 0);
    assert_int_equal(ret, COLO_E_PEER_LOST);
    waitpid(v.pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    completed = colo_session_seq(s);
    if (v.timer_started)
        pthread_join(v.timer, NULL);
    print_message("primary killed at %s of checkpoint %" PRIu64 " (+%" PRIu64
                  " us): peer lost after %" PRIu64 " ms (%s); last completed checkpoint %" PRIu64
                  "\n",
                  names[v.point], v.at_seq, v.delay_us, detect_ms, colo_errormsg(), completed);
    assert_true(detect_ms <= DEADLINE_MS + 2000);
    /* The applied RAM is exactly the last completed checkpoint. */
    for (uint64_t c = 1; c <= completed; c++)
        dirty(expect, c, runs);
    if (memcmp(sec, expect, RAM_LEN))
        fail_msg("applied RAM is not checkpoint %" PRIu64, completed);
    colo_session_close(&s);
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    close(fds[1]);
}

/* ---- kill the secondary ---- */

static uint64_t die_delay_us; /* 0: die at once in stop_vm of checkpoint 4 */

static void *die_later(void *arg)
{
    usleep((useconds_t)die_delay_us);
    raise(SIGKILL);
    return NULL;
}

static int die_at_stop(void *opaque)
{
    uint64_t *n = opaque;
    pthread_t t;

    if (++*n == 4) {
        if (!die_delay_us)
            raise(SIGKILL);
        pthread_create(&t, NULL, die_later, NULL);
    }
    return 0;
}

static void test_kill_secondary(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN];
    struct colo_dirty_run runs[32];
    struct colo_config *cfg;
    struct colo_session *p;
    uint64_t c, t0 = 0, n = 0, fault_ms = 0;
    int fds[2], ret = 0, status;
    uint16_t port;
    pid_t pid;

    if (random_seed_arg()) {
        uint64_t seed = strtoull(random_seed_arg(), NULL, 10) * 0x9e3779b97f4a7c15ull + 11;

        die_delay_us = 1 + rng(&seed) % 30000;
    }

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct colo_secondary_ops ops = {.stop_vm = die_at_stop};
        struct colo_listener *l;
        struct colo_session *s;

        close(fds[0]);
        cfg = config(sec, 0, "k");
        colo_config_set_secondary_ops(cfg, &ops, &n);
        if (colo_listener_new(cfg, &l))
            _exit(3);
        port = colo_listener_port(l);
        if (write(fds[1], &port, sizeof(port)) != sizeof(port) || colo_listener_accept(l, &s))
            _exit(4);
        while (!colo_secondary_serve(s, NULL))
            ;
        _exit(5);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &port, sizeof(port)), sizeof(port));
    cfg = config(pri, port, "k");
    assert_int_equal(colo_primary_connect(cfg, &p), 0);
    if (scenario_arg && !strcmp(scenario_arg, "idle")) {
        /* killed between checkpoints: the primary learns it without one */
        for (c = 1; c <= 3; c++)
            assert_int_equal(colo_primary_checkpoint(p, runs, dirty(pri, c, runs), "s", 1, NULL),
                             0);
        assert_int_equal(colo_session_check(p), 0);
        fault_ms = now_ms();
        kill(pid, SIGKILL);
        while ((ret = colo_session_check(p)) == 0 && now_ms() - fault_ms < DEADLINE_MS + 5000)
            usleep(2000);
        print_message("secondary killed between checkpoints: colo_session_check() reported %s "
                      "after %" PRIu64 " ms: %s\n", colo_strerror(ret), now_ms() - fault_ms,
                      colo_errormsg());
        assert_int_equal(ret, COLO_E_PEER_LOST);
        assert_true(now_ms() - fault_ms <= DEADLINE_MS + 2000);
        assert_int_not_equal(colo_primary_checkpoint(p, runs, dirty(pri, 4, runs), "s", 1, NULL),
                             0);
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        colo_session_close(&p);
        colo_config_delete(&cfg);
        close(fds[0]);
        return;
    }
    for (c = 1; c < 1000; c++) {
        t0 = now_ms();
        if (c == 4)
            fault_ms = t0; /* the secondary dies in this checkpoint or soon after */
        ret = checkpoint_step(p, pri, c, runs);
        if (ret)
            break;
    }
    waitpid(pid, &status, 0);
    print_message("secondary killed (+%" PRIu64 " us into checkpoint 4): the primary reported %s"
                  " in checkpoint %" PRIu64 ", %" PRIu64 " ms after it began: %s\n",
                  die_delay_us, colo_strerror(ret), c, now_ms() - t0, colo_errormsg());
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(c >= 4);
    assert_int_equal(ret, COLO_E_PEER_LOST);
    assert_true(now_ms() - t0 <= DEADLINE_MS + 2000);
    assert_true(now_ms() - fault_ms <= die_delay_us / 1000 + DEADLINE_MS + 2000);
    colo_session_close(&p);
    colo_config_delete(&cfg);
    close(fds[0]);
}

/* ---- faults of the link or the device ---- */

static void test_fault(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN], expect[RAM_LEN];
    struct colo_dirty_run runs[32];
    struct colo_config *scfg = config(sec, 0, "k"), *pcfg;
    struct server sv = {.sessions = 1};
    struct colo_session *p;
    uint64_t fault_ms = 0, c, primary_ms;
    pthread_t tid;
    pid_t pid = -1;
    int ret = 0, status;

    assert_non_null(scenario_arg);
    assert_int_equal(colo_listener_new(scfg, &sv.l), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, &sv), 0);
    pcfg = config(pri, colo_listener_port(sv.l), "k");
    assert_int_equal(colo_primary_connect(pcfg, &p), 0);
    for (c = 1; c < 100000; c++) {
        if (c == 6) {
            /* In the background: removing a device waits until we let go of it. */
            pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                execl("/bin/sh", "sh", "-c", scenario_arg, (char *)NULL);
                _exit(127);
            }
            fault_ms = now_ms();
        }
        ret = colo_primary_checkpoint(p, runs, dirty(pri, c, runs), "s", 1, NULL);
        if (ret)
            break;
        if (fault_ms && now_ms() - fault_ms > 30000)
            break;
    }
    primary_ms = now_ms() - fault_ms;
    print_message("fault '%s' after checkpoint 5: the primary reported %s after %" PRIu64
                  " ms: %s\n", scenario_arg, colo_strerror(ret), primary_ms, colo_errormsg());
    assert_int_equal(ret, COLO_E_PEER_LOST);
    colo_session_close(&p); /* lets go of the device */
    pthread_join(tid, NULL);
    print_message("the secondary reported %s after %" PRIu64 " ms; last completed checkpoint %"
                  PRIu64 "\n", colo_strerror(sv.serve_ret), sv.ended_ms - fault_ms, sv.last_seq);
    assert_int_equal(sv.serve_ret, COLO_E_PEER_LOST);
    assert_true(primary_ms <= DEADLINE_MS + 2000);
    assert_true(sv.ended_ms - fault_ms <= DEADLINE_MS + 2000);
    for (uint64_t k = 1; k <= sv.last_seq; k++)
        dirty(expect, k, runs);
    if (memcmp(sec, expect, RAM_LEN))
        fail_msg("applied RAM is not checkpoint %" PRIu64, sv.last_seq);
    colo_listener_delete(&sv.l);
    /*
     * librdmacm (rdma-core 44) keeps the removed device's context open until
     * the process exits, so "rdma link delete" finishes only after us: the
     * runner waits for it. Any other fault command has finished by now.
     */
    if (!strstr(scenario_arg, "delete")) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    colo_config_delete(&scfg);
    colo_config_delete(&pcfg);
}

/* ---- a primary that checkpoints less often than the timeout ---- */

/*
 * Over rdma the heartbeat shows the primary alive, so the secondary waits
 * for the next checkpoint as long as it takes (it used to fail after its
 * timeout): three pauses of 3x the timeout between checkpoints, every
 * checkpoint verified, then a clean goodbye.
 */
static void test_idle_wait(void **state)
{
    static uint8_t pri[RAM_LEN], sec[RAM_LEN];
    struct colo_dirty_run runs[32];
    struct colo_config *scfg = config(sec, 0, "k"), *pcfg;
    /* Accepts again after a timeout: a slow guest may connect after 1 s. */
    struct server sv = {.sessions = 4}; /* as many as accept_ret holds */
    struct colo_session *p;
    struct timespec pause = {.tv_sec = 3};
    pthread_t tid;

    assert_int_equal(colo_config_set_timeout_ms(scfg, 1000), 0);
    assert_int_equal(colo_listener_new(scfg, &sv.l), 0);
    assert_int_equal(pthread_create(&tid, NULL, serve, &sv), 0);
    pcfg = config(pri, colo_listener_port(sv.l), "k");
    assert_int_equal(colo_primary_connect(pcfg, &p), 0);
    for (uint64_t c = 1; c <= 4; c++) {
        size_t n = dirty(pri, c, runs);

        if (c > 1)
            nanosleep(&pause, NULL);
        assert_int_equal(colo_primary_checkpoint(p, runs, n, "s", 1, NULL), 0);
        if (memcmp(sec, pri, RAM_LEN))
            fail_msg("checkpoint %" PRIu64 ": the secondary's guest RAM differs", c);
    }
    colo_session_close(&p);
    pthread_join(tid, NULL);
    assert_int_equal(sv.serve_ret, COLO_E_SHUTDOWN);
    assert_true(sv.served == 4);
    print_message("4 checkpoints 3 s apart with a 1 s secondary timeout: served\n");
    colo_listener_delete(&sv.l);
    colo_config_delete(&scfg);
    colo_config_delete(&pcfg);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest verify[] = {cmocka_unit_test(test_verify)};
    const struct CMUnitTest background[] = {cmocka_unit_test(test_background)};
    const struct CMUnitTest idle_wait[] = {cmocka_unit_test(test_idle_wait)};
    const struct CMUnitTest wrong_key[] = {cmocka_unit_test(test_wrong_key)};
    const struct CMUnitTest kill_primary[] = {cmocka_unit_test(test_kill_primary)};
    const struct CMUnitTest kill_secondary[] = {cmocka_unit_test(test_kill_secondary)};
    const struct CMUnitTest fault[] = {cmocka_unit_test(test_fault)};
    const struct CMUnitTest cache_refused[] = {cmocka_unit_test(test_cache_refused)};
    const char *dax = getenv("COLO_RDMA_DAX");
    int ret;

    addr = getenv("COLO_RDMA_ADDR");
    if (argc < 2 || !addr) {
        fprintf(stderr, "usage: COLO_RDMA_ADDR=A %s verify [N] | background [N] | idle-wait | wrong-key | "
                "kill-primary request|push|received|loaded|random=SEED|random-bg=SEED | kill-secondary [random=SEED|random-bg=SEED|idle] | fault CMD | cache-refused 'DIR WHY'\n"
                "(run it through tests/softroce/vm-run, which sets COLO_RDMA_ADDR)\n", argv[0]);
        return 2;
    }
    scenario_arg = argc > 2 ? argv[2] : NULL;
    if (dax)
        snprintf(cache_path, sizeof(cache_path), "%s", dax);
    else
        snprintf(cache_path, sizeof(cache_path), "/tmp/colo-rdma-test-cache.%ld", (long)getpid());
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(argv[1], "verify"))
        ret = cmocka_run_group_tests(verify, NULL, NULL);
    else if (!strcmp(argv[1], "background"))
        ret = cmocka_run_group_tests(background, NULL, NULL);
    else if (!strcmp(argv[1], "idle-wait"))
        ret = cmocka_run_group_tests(idle_wait, NULL, NULL);
    else if (!strcmp(argv[1], "wrong-key"))
        ret = cmocka_run_group_tests(wrong_key, NULL, NULL);
    else if (!strcmp(argv[1], "kill-primary"))
        ret = cmocka_run_group_tests(kill_primary, NULL, NULL);
    else if (!strcmp(argv[1], "kill-secondary"))
        ret = cmocka_run_group_tests(kill_secondary, NULL, NULL);
    else if (!strcmp(argv[1], "fault"))
        ret = cmocka_run_group_tests(fault, NULL, NULL);
    else if (!strcmp(argv[1], "cache-refused"))
        ret = cmocka_run_group_tests(cache_refused, NULL, NULL);
    else {
        fprintf(stderr, "unknown scenario %s\n", argv[1]);
        return 2;
    }
    if (!dax)
        unlink(cache_path);
    return ret;
}
