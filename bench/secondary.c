/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary: takes its parameters from the primary over the control
 * connection, opens one library listener per run, serves checkpoints and
 * answers verification requests. Everything the primary sends is checked;
 * a bad request gets an error line back, never a crash.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/control.h"
#include "bench/ram.h"
#include "bench/roles.h"
#include "bench/sysinfo.h"
#include "bench/verify.h"

struct secondary {
    const struct bench_options *o;
    struct bench_ctl ctl;
    struct bench_params p;
    uint8_t *ram;
    char *cache_path;
    bool cache_is_temp;
    char line[BENCH_CONTROL_LINE_MAX];
    char err[1024];
};

/* One run's counters, over the timed checkpoints. */
struct serve_totals {
    uint64_t timed;
    uint64_t cpu_user_us, cpu_sys_us;
    uint64_t persist_ns, apply_ns;
    uint64_t vcsw, ivcsw, wr_posted, doorbells, completions, cq_wakeups;
    uint64_t locked_kib; /* locked + pinned memory the session added (registration) */
};

static void log_err(const char *msg)
{
    fprintf(stderr, "colo-rdma-bench: secondary: %s\n", msg);
}

static uint64_t tv_us(const struct timeval *tv)
{
    return (uint64_t)tv->tv_sec * 1000000 + (uint64_t)tv->tv_usec;
}

static int setup(struct secondary *sec)
{
    struct bench_meminfo m;
    char kind[64];
    uint64_t need;

    if (bench_params_check(&sec->p, sec->err, sizeof(sec->err)))
        return -1;
    bench_meminfo_read(&m);
    need = sec->p.ram_bytes; /* guest RAM, plus the cache when it is in memory */
    if (!sec->o->cache_path || !strncmp(sec->o->cache_path, "/dev/shm/", 9))
        need += sec->p.ram_bytes;
    /* in loopback the primary checked both sides together */
    if (!sec->o->loopback && bench_check_memory(&m, need, sec->p.ram_bytes, false, sec->err,
                                                sizeof(sec->err)))
        return -1;
    if (bench_ram_alloc(sec->p.ram_bytes, sec->p.hugepages, &sec->ram, sec->err,
                        sizeof(sec->err)))
        return -1;
    if (sec->o->cache_path) {
        sec->cache_path = strdup(sec->o->cache_path);
    } else {
        /* tmpfs: the bench measures the transport, not a disk's msync */
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        size_t len = strlen(dir) + 64;

        sec->cache_path = malloc(len);
        if (sec->cache_path)
            snprintf(sec->cache_path, len, "%s/colo-rdma-bench-cache.%ld", dir, (long)getpid());
        sec->cache_is_temp = true;
    }
    if (!sec->cache_path) {
        snprintf(sec->err, sizeof(sec->err), "out of memory");
        return -1;
    }
    /* the library creates the file; name its kind from the directory until then */
    bench_cache_kind(access(sec->cache_path, F_OK) ? (sec->cache_is_temp ? "/dev/shm" : ".")
                                                   : sec->cache_path, kind, sizeof(kind));
    return bench_ctl_send(&sec->ctl, "ok cache %s (%s)", sec->cache_path, kind);
}

static struct colo_config *make_config(struct secondary *sec, const char *transport)
{
    uint64_t block_len = sec->p.ram_bytes / sec->p.blocks;
    struct colo_config *cfg = NULL;
    int ret = colo_config_new(&cfg);

    if (!ret)
        ret = colo_config_set_transport(cfg, transport);
    if (!ret)
        ret = colo_config_set_address(cfg, NULL, sec->o->data_port);
    if (!ret)
        ret = colo_config_set_timeout_ms(cfg, sec->p.timeout_ms);
    /* The whole handshake under the same bound as every wait (as the QEMU
     * glue does): the library's 5 s default is for a deployment, and a
     * loaded emulated rdma device can take longer to set up a connection. */
    if (!ret)
        ret = colo_config_set_handshake_timeout_ms(
            cfg, sec->p.timeout_ms < 10 ? 10 : sec->p.timeout_ms > 600000 ? 600000 : sec->p.timeout_ms);
    if (!ret)
        ret = colo_config_set_page_size(cfg, sec->p.page_size);
    if (!ret)
        ret = colo_config_set_cache_path(cfg, sec->cache_path);
    if (!ret)
        ret = colo_config_set_cache_overwrite(cfg, sec->o->cache_overwrite);
    if (!ret && sec->p.vmstate_bytes > (64ull << 20))
        ret = colo_config_set_max_vmstate(cfg, sec->p.vmstate_bytes);
    if (!ret)
        ret = colo_config_set_busy_poll(cfg, sec->p.busy_poll);
    if (!ret)
        ret = colo_config_set_heartbeat_ms(cfg, sec->p.heartbeat_ms);
    if (!ret && sec->o->auth_key_len)
        ret = colo_config_set_auth_key(cfg, sec->o->auth_key, sec->o->auth_key_len);
    if (!ret)
        ret = colo_config_set_integrity(cfg, sec->p.integrity);
    for (uint32_t i = 0; !ret && i < sec->p.blocks; i++) {
        char name[32];

        snprintf(name, sizeof(name), "ram%" PRIu32, i);
        ret = colo_config_add_ram_block(cfg, name, sec->ram + i * block_len, block_len);
    }
    if (ret) {
        snprintf(sec->err, sizeof(sec->err), "configuration: %s", colo_errormsg());
        colo_config_delete(&cfg);
    }
    return cfg;
}

/* Narrows a differing block to its first page with the primary's page hashes. */
static int find_page(struct secondary *sec, uint64_t seq, uint32_t block, const uint8_t *guest,
                     const uint8_t *cache, uint64_t len)
{
    uint64_t npages = len / sec->p.page_size, b, n, pg, pc;
    uint64_t *hashes;
    uint8_t *raw;

    if (bench_ctl_send(&sec->ctl, "mismatch %" PRIu32, block) ||
        bench_ctl_recv(&sec->ctl, sec->line, sizeof(sec->line)))
        return -1;
    if (sscanf(sec->line, "pages %" SCNu64 " %" SCNu64, &b, &n) != 2 || b != block ||
        n != npages) {
        snprintf(sec->err, sizeof(sec->err), "verify: expected 'pages %" PRIu32 " %" PRIu64
                 "', got '%.100s'", block, npages, sec->line);
        return -1;
    }
    hashes = malloc(npages * sizeof(*hashes));
    raw = malloc(npages * 8);
    if (!hashes || !raw || bench_ctl_recv_raw(&sec->ctl, raw, npages * 8)) {
        free(hashes);
        free(raw);
        snprintf(sec->err, sizeof(sec->err), "verify: cannot read the page hashes");
        return -1;
    }
    for (uint64_t i = 0; i < npages; i++) {
        hashes[i] = 0;
        for (int k = 7; k >= 0; k--)
            hashes[i] = hashes[i] << 8 | raw[i * 8 + (uint64_t)k];
    }
    pg = bench_first_diff_page(guest, len, sec->p.page_size, hashes);
    pc = bench_first_diff_page(cache, len, sec->p.page_size, hashes);
    free(hashes);
    free(raw);
    if (pg == UINT64_MAX && pc == UINT64_MAX)
        snprintf(sec->err, sizeof(sec->err), "verify: checkpoint %" PRIu64 ": block %" PRIu32
                 " differs but no page does (hash collision?)", seq, block);
    else
        snprintf(sec->err, sizeof(sec->err), "verify: checkpoint %" PRIu64 ": block %" PRIu32
                 " page %" PRIu64 " differs between the primary's RAM and the secondary's %s",
                 seq, block, pg <= pc ? pg : pc,
                 pg <= pc && pc != pg ? "guest RAM" : pg == pc ? "guest RAM and cache" : "cache");
    return -1;
}

/* One "verify SEQ VMSTATE H0..Hn" request against guest RAM, cache and state. */
static int verify_one(struct secondary *sec, const struct colo_session *s)
{
    uint64_t block_len = sec->p.ram_bytes / sec->p.blocks, seq, vh, len;
    char *p = sec->line, *end;
    const void *state, *cache;

    if (strncmp(p, "verify ", 7)) {
        snprintf(sec->err, sizeof(sec->err), "expected a verify request, got '%.100s'", p);
        return -1;
    }
    p += 7;
    seq = strtoull(p, &end, 10);
    vh = strtoull(end, &end, 16);
    if (seq != colo_session_seq(s)) {
        snprintf(sec->err, sizeof(sec->err), "verify: checkpoint numbers differ: the primary "
                 "checked %" PRIu64 ", the secondary completed %" PRIu64, seq,
                 colo_session_seq(s));
        return -1;
    }
    if (colo_session_vmstate(s, &state, &len) || bench_hash_page(state, len) != vh) {
        snprintf(sec->err, sizeof(sec->err), "verify: checkpoint %" PRIu64 ": the device state "
                 "differs (%" PRIu64 " bytes here)", seq, len);
        return -1;
    }
    for (uint32_t b = 0; b < sec->p.blocks; b++) {
        const uint8_t *guest = sec->ram + b * block_len;
        uint64_t h = strtoull(end, &end, 16), clen = 0;

        if (end == p || colo_session_cache_block(s, b, &cache, &clen) || clen != block_len) {
            snprintf(sec->err, sizeof(sec->err), "verify: bad request or cache block %" PRIu32,
                     b);
            return -1;
        }
        if (bench_hash_block(guest, block_len, sec->p.page_size) != h ||
            bench_hash_block(cache, block_len, sec->p.page_size) != h)
            return find_page(sec, seq, b, guest, cache, block_len);
    }
    return bench_ctl_send(&sec->ctl, "ok");
}

/* Serves the session until the primary says goodbye; errors land in sec->err. */
static int serve(struct secondary *sec, struct colo_session *s, struct serve_totals *t,
                 bool *got_end)
{
    struct colo_checkpoint_stats st;
    uint64_t served = 0;

    for (;;) {
        struct rusage r0, r1;
        int ret;

        getrusage(RUSAGE_SELF, &r0);
        ret = colo_secondary_serve(s, &st);
        getrusage(RUSAGE_SELF, &r1);
        if (ret == COLO_E_SHUTDOWN)
            return 0;
        if (ret) {
            snprintf(sec->err, sizeof(sec->err), "%s", colo_errormsg());
            return -1;
        }
        if (++served > sec->p.warmup) {
            t->timed++;
            t->cpu_user_us += tv_us(&r1.ru_utime) - tv_us(&r0.ru_utime);
            t->cpu_sys_us += tv_us(&r1.ru_stime) - tv_us(&r0.ru_stime);
            t->vcsw += (uint64_t)(r1.ru_nvcsw - r0.ru_nvcsw);
            t->ivcsw += (uint64_t)(r1.ru_nivcsw - r0.ru_nivcsw);
            t->wr_posted += st.wr_posted;
            t->doorbells += st.doorbells;
            t->completions += st.completions;
            t->cq_wakeups += st.cq_wakeups;
            t->persist_ns += st.received_ns;
            t->apply_ns += st.loaded_ns;
        }
        if (!sec->p.verify)
            continue;
        /* The request comes over the control connection, which a fault of
         * the link stalls too: the session is watched meanwhile. */
        sec->ctl.watch = bench_ctl_watch_session;
        sec->ctl.watch_arg = s;
        ret = bench_ctl_recv(&sec->ctl, sec->line, sizeof(sec->line));
        sec->ctl.watch = NULL;
        if (ret) {
            snprintf(sec->err, sizeof(sec->err), "%s", sec->ctl.err);
            return -1;
        }
        if (!strcmp(sec->line, "end")) {
            *got_end = true; /* the primary gave up on this run */
            snprintf(sec->err, sizeof(sec->err), "the primary ended the run");
            return -1;
        }
        if (verify_one(sec, s)) {
            if (!strncmp(sec->err, "verify", 6))
                bench_ctl_send(&sec->ctl, "error %s", sec->err);
            return -1;
        }
    }
}

/* "run TRANSPORT": listener, announce the port, serve, then answer "end". */
static int run(struct secondary *sec, const char *transport)
{
    struct serve_totals t = {0};
    struct colo_listener *l = NULL;
    struct colo_session *s = NULL;
    struct colo_config *cfg;
    bool got_end = false, failed = false;
    struct bench_meminfo m;
    uint64_t lck0, pin0, lck1, pin1;
    int ret;

    sec->err[0] = '\0';
    if (strcmp(transport, "tcp") && strcmp(transport, "rdma"))
        return bench_ctl_send(&sec->ctl, "error unknown transport '%.40s': expected tcp or rdma",
                              transport);
    bench_locked_kib(&lck0, &pin0);
    bench_meminfo_read(&m);
    if (!strcmp(transport, "rdma") &&
        bench_check_memory(&m, 0, sec->p.ram_bytes, true, sec->err, sizeof(sec->err)))
        return bench_ctl_send(&sec->ctl, "unavailable secondary: %s", sec->err);
    cfg = make_config(sec, transport);
    if (!cfg)
        return bench_ctl_send(&sec->ctl, "error secondary: %s", sec->err);
    ret = colo_listener_new(cfg, &l);
    if (ret) {
        ret = bench_ctl_send(&sec->ctl, "%s secondary: %s",
                             bench_transport_unavailable(ret) ? "unavailable" : "error", colo_errormsg());
        colo_config_delete(&cfg);
        return ret;
    }
    if (bench_ctl_send(&sec->ctl, "ok port %u", colo_listener_port(l))) {
        colo_listener_delete(&l);
        colo_config_delete(&cfg);
        return -1;
    }
    ret = colo_listener_accept(l, &s);
    if (ret) {
        snprintf(sec->err, sizeof(sec->err), "accept: %s", colo_errormsg());
        failed = true;
    } else {
        bench_locked_kib(&lck1, &pin1);
        t.locked_kib = (lck1 - lck0) + (pin1 - pin0);
        failed = serve(sec, s, &t, &got_end) != 0;
    }
    colo_session_close(&s);
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    if (failed)
        log_err(sec->err);
    if (sec->ctl.fd < 0)
        return -1;
    while (!got_end) {
        if (bench_ctl_recv(&sec->ctl, sec->line, sizeof(sec->line)))
            return -1;
        got_end = !strcmp(sec->line, "end");
        /* a verify request after a failure: answer it, then wait for the end */
        if (!got_end && bench_ctl_send(&sec->ctl, "error secondary: %s", sec->err))
            return -1;
    }
    if (failed)
        return bench_ctl_send(&sec->ctl, "error secondary: %s", sec->err);
    return bench_ctl_send(&sec->ctl, "done %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                          " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                          " %" PRIu64 " %" PRIu64 " %" PRIu64, t.timed, t.cpu_user_us,
                          t.cpu_sys_us, t.persist_ns, t.apply_ns, t.vcsw, t.ivcsw, t.wr_posted,
                          t.doorbells, t.completions, t.cq_wakeups, t.locked_kib);
}

/* Hello, parameters, then runs until "quit". */
static int session(struct secondary *sec)
{
    char key[64], value[128];
    int n;

    if (bench_ctl_recv(&sec->ctl, sec->line, sizeof(sec->line)))
        return -1;
    if (strcmp(sec->line, "colo-rdma-bench 1")) {
        snprintf(sec->err, sizeof(sec->err), "expected 'colo-rdma-bench %d' from the primary, "
                 "got '%.60s': use the same colo-rdma-bench version on both sides",
                 BENCH_CONTROL_VERSION, sec->line);
        bench_ctl_send(&sec->ctl, "error %s", sec->err);
        return -1;
    }
    if (bench_ctl_send(&sec->ctl, "ok colo-rdma-bench %d", BENCH_CONTROL_VERSION))
        return -1;
    bench_params_default(&sec->p);
    for (;;) {
        if (bench_ctl_recv(&sec->ctl, sec->line, sizeof(sec->line)))
            return -1;
        if (!strcmp(sec->line, "setup"))
            break;
        n = 0;
        if (sscanf(sec->line, "set %63s %127s%n", key, value, &n) != 2 || sec->line[n]) {
            snprintf(sec->err, sizeof(sec->err), "expected 'set KEY VALUE' or 'setup', got "
                     "'%.60s'", sec->line);
        } else if (!bench_params_set(&sec->p, key, value, sec->err, sizeof(sec->err))) {
            continue;
        }
        bench_ctl_send(&sec->ctl, "error secondary: %s", sec->err);
        return -1;
    }
    if (setup(sec)) {
        bench_ctl_send(&sec->ctl, "error secondary: %s", sec->err);
        return -1;
    }
    /* from here the primary may take long between requests (runs, ib_write_bw) */
    sec->ctl.timeout_ms = 0;
    for (;;) {
        if (bench_ctl_recv(&sec->ctl, sec->line, sizeof(sec->line)))
            return -1;
        if (!strcmp(sec->line, "quit"))
            return bench_ctl_send(&sec->ctl, "bye");
        if (!strncmp(sec->line, "run ", 4)) {
            if (run(sec, sec->line + 4))
                return -1;
            continue;
        }
        if (bench_ctl_send(&sec->ctl, "error secondary: unknown request '%.60s'", sec->line))
            return -1;
    }
}

int bench_secondary_main(const struct bench_options *o, int ready_fd)
{
    struct secondary sec = {.o = o, .ctl = {.fd = -1}};
    uint16_t port = 0;
    int lfd, ret;

    lfd = bench_ctl_listen(ready_fd >= 0 ? 0 : o->port, &port, sec.err, sizeof(sec.err));
    if (lfd < 0) {
        log_err(sec.err);
        return 1;
    }
    if (ready_fd >= 0) {
        ret = write(ready_fd, &port, sizeof(port)) == sizeof(port) ? 0 : -1;
        close(ready_fd);
        if (ret) {
            close(lfd);
            return 1;
        }
    } else {
        fprintf(stderr, "colo-rdma-bench: secondary: waiting for a primary on control port %u\n",
                port);
    }
    ret = bench_ctl_accept(lfd, ready_fd >= 0 ? o->timeout_ms : 0, &sec.ctl);
    close(lfd);
    if (!ret) {
        sec.ctl.timeout_ms = o->timeout_ms;
        ret = session(&sec);
        if (ret && !sec.err[0])
            snprintf(sec.err, sizeof(sec.err), "%s", sec.ctl.err);
    } else {
        snprintf(sec.err, sizeof(sec.err), "%s", sec.ctl.err);
    }
    if (ret)
        log_err(sec.err);
    bench_ctl_close(&sec.ctl);
    bench_ram_free(&sec.ram, sec.p.ram_bytes);
    if (sec.cache_is_temp && sec.cache_path)
        unlink(sec.cache_path);
    free(sec.cache_path);
    return ret ? 1 : 0;
}
