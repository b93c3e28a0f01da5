/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primary: checks the machine, carries the parameters to the secondary,
 * then for every transport and dirty-set size runs warm-up and timed
 * checkpoints of the same seeded workload, and reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/control.h"
#include "bench/limit.h"
#include "bench/plot.h"
#include "bench/pump.h"
#include "bench/ram.h"
#include "bench/replay.h"
#include "bench/report.h"
#include "bench/roles.h"
#include "bench/softdirty.h"
#include "bench/sysinfo.h"
#include "bench/verify.h"
#include "bench/workload.h"

struct primary {
    const struct bench_options *o;
    struct bench_ctl ctl;
    struct bench_env env;
    struct bench_replay replay;
    struct bench_softdirty sd;
    bool use_softdirty;
    struct bench_rdma_dev dev;
    uint8_t *ram;
    uint8_t *vmstate;
    uint64_t *page_hashes;   /* verify: one block's page hashes */
    char rdma_unavailable[512]; /* set when rdma cannot run here (memlock) */
    struct bench_run *runs;
    size_t nruns;
    const char *host;        /* the secondary's address: the path the pumps take */
    double rdma_lat_us;      /* ib_send_lat one-way: 0 unknown, <0 failed */
    double tcp_lat_us;       /* tcp ping-pong one-way: 0 unknown, <0 failed */
    uint64_t *paired;        /* this run: pump time / page push time, ppm, per checkpoint */
    size_t npaired;
    char line[BENCH_CONTROL_LINE_MAX];
    char err[1024];
    bool progress;           /* stderr is a terminal */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_us(void)
{
    struct rusage r;

    getrusage(RUSAGE_SELF, &r);
    return (uint64_t)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000 +
           (uint64_t)(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

/* Context switches of this process so far: voluntary, involuntary. */
static void csw(uint64_t *v, uint64_t *iv)
{
    struct rusage r;

    getrusage(RUSAGE_SELF, &r);
    *v = (uint64_t)r.ru_nvcsw;
    *iv = (uint64_t)r.ru_nivcsw;
}

static void fail(struct primary *pr, const char *msg)
{
    fprintf(stderr, "colo-rdma-bench: %s\n", msg);
    (void)pr;
}

/* Machine checks before anything big is allocated. */
static int check_machine(struct primary *pr)
{
    const struct bench_options *o = pr->o;
    struct bench_meminfo m;
    uint64_t need = o->ram_bytes;
    bool rdma = false;

    for (unsigned i = 0; i < o->ntransports; i++)
        rdma |= !strcmp(o->transports[i], "rdma");
    bench_meminfo_read(&m);
    if (o->loopback) /* the secondary's guest RAM and, in /dev/shm, its cache */
        need += o->ram_bytes * (!o->cache_path || !strncmp(o->cache_path, "/dev/shm/", 9) ? 2 : 1);
    if (bench_check_memory(&m, need, o->ram_bytes, false, pr->err, sizeof(pr->err)))
        return -1;
    if (rdma && bench_check_memory(&m, 0, o->ram_bytes, true, pr->err, sizeof(pr->err))) {
        if (!o->transport_all)
            return -1;
        snprintf(pr->rdma_unavailable, sizeof(pr->rdma_unavailable), "%.500s", pr->err);
    }
    if (o->plot_path && bench_plot_check(o->plot_path, pr->err, sizeof(pr->err)))
        return -1;
    if (o->workload == BENCH_WL_REPLAY &&
        bench_replay_load(&pr->replay, o->replay_path, o->ram_bytes / o->page_size, stderr)) {
        snprintf(pr->err, sizeof(pr->err), "--replay: see the message above");
        return -1;
    }
    if (o->tracking == BENCH_TRACK_SOFTDIRTY) {
        if (bench_softdirty_open(&pr->sd, o->ram_bytes, pr->err, sizeof(pr->err)))
            return -1;
        pr->use_softdirty = true;
    }
    return 0;
}

static int expect_ok(struct primary *pr, const char *what)
{
    if (bench_ctl_recv(&pr->ctl, pr->line, sizeof(pr->line))) {
        snprintf(pr->err, sizeof(pr->err), "%s: %s", what, pr->ctl.err);
        return -1;
    }
    if (strncmp(pr->line, "ok", 2)) {
        snprintf(pr->err, sizeof(pr->err), "%s: %.900s", what,
                 !strncmp(pr->line, "error ", 6) ? pr->line + 6 : pr->line);
        return -1;
    }
    return 0;
}

static int connect_secondary(struct primary *pr, const char *host, uint16_t port)
{
    const struct bench_options *o = pr->o;
    struct bench_params p;

    if (bench_ctl_connect(host, port, o->timeout_ms, &pr->ctl)) {
        snprintf(pr->err, sizeof(pr->err), "%s", pr->ctl.err);
        return -1;
    }
    /* a run can make the secondary wait for the library's timeout, then answer */
    pr->ctl.timeout_ms = o->timeout_ms * 2 + 5000;
    bench_params_default(&p);
    p.ram_bytes = o->ram_bytes;
    p.blocks = o->blocks;
    p.page_size = o->page_size;
    p.hugepages = o->hugepages;
    p.vmstate_bytes = o->vmstate_bytes;
    p.seed = o->seed;
    p.timeout_ms = o->timeout_ms;
    p.verify = o->verify;
    p.warmup = o->warmup;
    p.busy_poll = o->busy_poll;
    p.heartbeat_ms = o->heartbeat_ms;
    p.integrity = o->integrity;
    if (bench_ctl_send(&pr->ctl, "colo-rdma-bench %d", BENCH_CONTROL_VERSION) ||
        expect_ok(pr, "secondary") || bench_params_send(&pr->ctl, &p) ||
        expect_ok(pr, "secondary setup"))
        return -1;
    snprintf(pr->env.cache, sizeof(pr->env.cache), "%s",
             !strncmp(pr->line, "ok cache ", 9) ? pr->line + 9 : "?");
    return 0;
}

static struct colo_config *make_config(struct primary *pr, const char *transport,
                                       const char *host, uint16_t port)
{
    const struct bench_options *o = pr->o;
    uint64_t block_len = o->ram_bytes / o->blocks;
    struct colo_config *cfg = NULL;
    int ret = colo_config_new(&cfg);

    if (!ret)
        ret = colo_config_set_transport(cfg, transport);
    if (!ret)
        ret = colo_config_set_address(cfg, host, port);
    if (!ret)
        ret = colo_config_set_timeout_ms(cfg, o->timeout_ms);
    /* The whole handshake under the same bound as every wait (as the QEMU
     * glue does): the library's 5 s default is for a deployment, and a
     * loaded emulated rdma device can take longer to set up a connection. */
    if (!ret)
        ret = colo_config_set_handshake_timeout_ms(
            cfg, o->timeout_ms < 10 ? 10 : o->timeout_ms > 600000 ? 600000 : o->timeout_ms);
    if (!ret)
        ret = colo_config_set_page_size(cfg, o->page_size);
    if (!ret)
        ret = colo_config_set_early_resume(cfg, o->early_resume);
    if (!ret)
        ret = colo_config_set_pipelined(cfg, o->pipelined);
    if (!ret)
        ret = colo_config_set_protocol_version(cfg, o->protocol_version);
    if (!ret)
        ret = colo_config_set_busy_poll(cfg, o->busy_poll);
    if (!ret)
        ret = colo_config_set_heartbeat_ms(cfg, o->heartbeat_ms);
    if (!ret && o->auth_key_len)
        ret = colo_config_set_auth_key(cfg, o->auth_key, o->auth_key_len);
    if (!ret)
        ret = colo_config_set_integrity(cfg, o->integrity);
    for (uint32_t i = 0; !ret && i < o->blocks; i++) {
        char name[32];

        snprintf(name, sizeof(name), "ram%" PRIu32, i);
        ret = colo_config_add_ram_block(cfg, name, pr->ram + i * block_len, block_len);
    }
    if (ret) {
        snprintf(pr->err, sizeof(pr->err), "configuration: %s", colo_errormsg());
        colo_config_delete(&cfg);
    }
    return cfg;
}

static void encode_le(uint8_t *out, const uint64_t *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            out[i * 8 + (uint64_t)k] = (uint8_t)(v[i] >> (8 * k));
}

/* Hashes of every block (and the state) to the secondary; the first difference fails. */
static int verify(struct primary *pr, uint64_t seq)
{
    const struct bench_options *o = pr->o;
    uint64_t block_len = o->ram_bytes / o->blocks, npages = block_len / o->page_size, block;
    size_t len;
    uint8_t *raw;
    int n;

    n = snprintf(pr->line, sizeof(pr->line), "verify %" PRIu64 " %" PRIx64, seq,
                 bench_hash_page(pr->vmstate, o->vmstate_bytes));
    for (uint32_t b = 0; b < o->blocks; b++)
        n += snprintf(pr->line + n, sizeof(pr->line) - (size_t)n, " %" PRIx64,
                      bench_hash_block(pr->ram + b * block_len, block_len, o->page_size));
    if (bench_ctl_send(&pr->ctl, "%s", pr->line) ||
        bench_ctl_recv(&pr->ctl, pr->line, sizeof(pr->line))) {
        snprintf(pr->err, sizeof(pr->err), "verify: %s", pr->ctl.err);
        return -1;
    }
    if (!strcmp(pr->line, "ok"))
        return 0;
    if (sscanf(pr->line, "mismatch %" SCNu64, &block) != 1 || block >= o->blocks) {
        snprintf(pr->err, sizeof(pr->err), "%.1000s",
                 !strncmp(pr->line, "error ", 6) ? pr->line + 6 : pr->line);
        return -1;
    }
    len = (size_t)npages * 8;
    raw = malloc(len);
    if (!raw) {
        snprintf(pr->err, sizeof(pr->err), "verify: out of memory");
        return -1;
    }
    bench_hash_pages(pr->ram + block * block_len, block_len, o->page_size, pr->page_hashes);
    encode_le(raw, pr->page_hashes, npages);
    if (bench_ctl_send(&pr->ctl, "pages %" PRIu64 " %" PRIu64, block, npages) ||
        bench_ctl_send_raw(&pr->ctl, raw, len) ||
        bench_ctl_recv(&pr->ctl, pr->line, sizeof(pr->line)))
        snprintf(pr->err, sizeof(pr->err), "verify: %s", pr->ctl.err);
    else
        snprintf(pr->err, sizeof(pr->err), "%.1000s",
                 !strncmp(pr->line, "error ", 6) ? pr->line + 6 : pr->line);
    free(raw);
    return -1;
}

/* The next epoch: the workload writes, the tracker lists the pages. */
static int dirty(struct primary *pr, struct bench_workload *w, bool full)
{
    if (pr->use_softdirty && bench_softdirty_clear(&pr->sd)) {
        snprintf(pr->err, sizeof(pr->err), "soft-dirty: cannot clear: %s", strerror(errno));
        return -1;
    }
    if (full)
        bench_workload_pick_all(w);
    else
        bench_workload_pick(w);
    bench_workload_touch(w);
    if (pr->use_softdirty && !full && bench_softdirty_collect(&pr->sd, w)) {
        snprintf(pr->err, sizeof(pr->err), "soft-dirty: cannot read /proc/self/pagemap");
        return -1;
    }
    bench_workload_runs(w);
    return 0;
}

static void progress(struct primary *pr, const struct bench_run *r, uint64_t i, uint64_t total,
                     uint64_t start, uint64_t *last)
{
    uint64_t now = now_ns();

    /* only for runs longer than a few seconds, twice a second */
    if (!pr->progress || now - start < 3000000000ull || now - *last < 500000000ull)
        return;
    *last = now;
    fprintf(stderr, "\r\033[Kcolo-rdma-bench: %s, dirty %" PRIu64 ": checkpoint %" PRIu64
            " of %" PRIu64, bench_run_name(r), r->dirty, i, total);
}

static void print_checkpoint(const struct colo_checkpoint_stats *st, size_t nruns)
{
    printf("  ckpt %6" PRIu64 " %8" PRIu64 " pages %7zu runs %10.1f us: request %.1f pages %.1f "
           "state %.1f received %.1f loaded %.1f\n", st->seq, st->pages, nruns,
           st->total_ns / 1e3, st->request_ns / 1e3, st->pages_ns / 1e3, st->state_ns / 1e3,
           st->received_ns / 1e3, st->loaded_ns / 1e3);
}

static void sleep_until(uint64_t t_ns)
{
    uint64_t now = now_ns();

    if (t_ns > now) {
        struct timespec ts = {.tv_sec = (time_t)((t_ns - now) / 1000000000ull),
                              .tv_nsec = (long)((t_ns - now) % 1000000000ull)};

        nanosleep(&ts, NULL);
    }
}

/* A running guest's slices: the background push period, or this. */
#define BENCH_SLICE_MS 10

/*
 * Running guest: the epoch's pages are written in slices spread over the
 * interval, each page in one slice drawn at random; with background push,
 * what is dirty is pushed at the end of every slice but the last. Leaves
 * the residual (written since the last push) in w->runs for the checkpoint.
 */
static int running_epoch(struct primary *pr, struct colo_session *s, struct bench_workload *w,
                         uint32_t background_ms, uint64_t *epoch_pages, uint32_t *slice_of,
                         uint64_t *push_cpu_us)
{
    const struct bench_options *o = pr->o;
    /* The same slices with and without the push: the guest writes alike. */
    uint32_t slice_ms = o->background_ms ? o->background_ms : BENCH_SLICE_MS;
    uint32_t nslices = o->interval_ms / slice_ms ? o->interval_ms / slice_ms : 1;
    uint64_t start = now_ns(), interval_ns = (uint64_t)o->interval_ms * 1000000ull;
    uint64_t seed = o->seed ^ (w->epoch + 1) * 0x9e3779b97f4a7c15ull;
    size_t n = bench_workload_pick(w);

    memcpy(epoch_pages, w->list, n * sizeof(*epoch_pages));
    for (size_t i = 0; i < n; i++)
        slice_of[i] = (uint32_t)(bench_rand(&seed) % nslices);
    for (uint32_t k = 0; k < nslices; k++) {
        sleep_until(start + (k + 1) * interval_ns / nslices);
        w->nlist = 0;
        for (size_t i = 0; i < n; i++)
            if (slice_of[i] == k)
                w->list[w->nlist++] = epoch_pages[i];
        bench_workload_touch(w);
        for (size_t i = 0; i < w->nlist; i++)
            w->bitmap[w->list[i] / 64] |= 1ull << (w->list[i] % 64);
        if (!background_ms || k + 1 == nslices)
            continue;
        bench_workload_list_from_bitmap(w);
        if (bench_workload_runs(w)) {
            uint64_t c0 = cpu_us();
            int ret = colo_primary_push_background(s, w->runs, w->nruns);

            *push_cpu_us += cpu_us() - c0;
            if (ret) {
                snprintf(pr->err, sizeof(pr->err), "background push: %s", colo_errormsg());
                fprintf(stderr, "colo-rdma-bench: %s\n", pr->err);
                return -1;
            }
        }
    }
    bench_workload_list_from_bitmap(w);
    bench_workload_runs(w);
    return 0;
}

/* Warm-up and timed checkpoints of one session. */
static int checkpoints(struct primary *pr, struct colo_session *s, struct bench_run *r,
                       uint64_t dirty_pages, uint64_t *cpu_total, struct bench_pump **pump)
{
    const struct bench_options *o = pr->o;
    struct bench_workload_params wp = {
        .kind = o->workload, .ram = pr->ram, .ram_bytes = o->ram_bytes, .blocks = o->blocks,
        .page_size = o->page_size, .dirty = dirty_pages, .seed = o->seed,
        .replay = &pr->replay,
    };
    uint64_t total = o->warmup + o->checkpoints, start = now_ns(), last = 0, next = start;
    uint64_t *epoch_pages = NULL;
    uint32_t *slice_of = NULL;
    struct bench_workload w;
    int ret = 0;

    if (bench_workload_init(&w, &wp)) {
        snprintf(pr->err, sizeof(pr->err), "out of memory for the workload");
        return -1;
    }
    if (o->running_guest) {
        epoch_pages = calloc(w.pages, sizeof(*epoch_pages));
        slice_of = calloc(w.pages, sizeof(*slice_of));
        if (!epoch_pages || !slice_of) {
            snprintf(pr->err, sizeof(pr->err), "out of memory for the running guest");
            ret = -1;
        }
    }
    for (uint64_t i = 0; i < total && !ret; i++) {
        struct colo_checkpoint_stats st;
        uint64_t c0, t0, push_cpu = 0, v0, iv0, v1, iv1;

        if (o->running_guest && i > 0) {
            /* the epoch itself takes the interval */
            ret = running_epoch(pr, s, &w, r->background_ms, epoch_pages, slice_of,
                                &push_cpu);
            if (ret)
                break;
        } else {
            ret = dirty(pr, &w, i == 0);
            if (ret)
                break;
            if (o->interval_ms) {
                sleep_until(next);
                next += (uint64_t)o->interval_ms * 1000000ull;
            }
        }
        memset(pr->vmstate, (int)(i & 0xff), o->vmstate_bytes);
        if (o->vmstate_bytes >= 8)
            memcpy(pr->vmstate, &i, sizeof(i));
        csw(&v0, &iv0);
        c0 = cpu_us();
        t0 = now_ns();
        ret = colo_primary_checkpoint(s, w.runs, w.nruns, o->vmstate_bytes ? pr->vmstate : NULL,
                                      o->vmstate_bytes, &st);
        csw(&v1, &iv1);
        if (ret) {
            snprintf(pr->err, sizeof(pr->err), "checkpoint: %s", colo_errormsg());
            /* Said at once: the report comes only after the control connection. */
            fprintf(stderr, "colo-rdma-bench: checkpoint %" PRIu64 " failed after %" PRIu64
                    " ms: %s\n", i + 1, (now_ns() - t0) / 1000000, colo_errormsg());
            break;
        }
        /* With early resume the call first waits for the previous
         * checkpoint's vmstate-loaded (loaded_ns), which the library's
         * total_ns leaves out; this loop is stopped for the whole call, so
         * the bench's pause holds it (total - loaded is then pause@recv). */
        if (o->early_resume)
            st.total_ns += st.loaded_ns;
        if (i >= o->warmup) {
            /* the background pushes are this checkpoint's cost too */
            *cpu_total += cpu_us() - c0 + push_cpu;
            r->counts_primary.vcsw += (double)(v1 - v0);
            r->counts_primary.ivcsw += (double)(iv1 - iv0);
            r->counts_primary.wr_posted += (double)st.wr_posted;
            r->counts_primary.doorbells += (double)st.doorbells;
            r->counts_primary.completions += (double)st.completions;
            r->counts_primary.cq_wakeups += (double)st.cq_wakeups;
            r->nruns += w.nruns;
            if (bench_samples_add(&r->samples, &st)) {
                snprintf(pr->err, sizeof(pr->err), "out of memory for the samples");
                ret = -1;
                break;
            }
            if (o->per_checkpoint)
                print_checkpoint(&st, w.nruns);
        }
        /* the ceiling: the same runs again through the raw pump, outside the timing */
        if (*pump) {
            uint64_t pns = 0;

            if (bench_pump_push(*pump, w.runs, w.nruns, i >= o->warmup, &pns,
                                r->limit.pump_note, sizeof(r->limit.pump_note)))
                bench_pump_close(pump);
            else if (i >= o->warmup && st.pages_ns && pr->npaired < o->checkpoints)
                pr->paired[pr->npaired++] = pns * 1000000 / st.pages_ns;
        }
        if (o->verify) {
            /* The secondary answers over the control connection; a fault of
             * the link stalls it too, so the session is watched meanwhile. */
            pr->ctl.watch = bench_ctl_watch_session;
            pr->ctl.watch_arg = s;
            ret = verify(pr, st.seq);
            pr->ctl.watch = NULL;
            if (ret)
                fprintf(stderr, "colo-rdma-bench: checkpoint %" PRIu64 " %s\n", i + 1, pr->err);
        }
        progress(pr, r, i + 1, total, start, &last);
    }
    if (pr->progress && now_ns() - start >= 3000000000ull)
        fprintf(stderr, "\r\033[K");
    free(epoch_pages);
    free(slice_of);
    bench_workload_free(&w);
    return ret;
}

/* Marks r unavailable (for --transport all) or failed with msg. */
static void not_run(struct primary *pr, struct bench_run *r, bool unavailable, const char *msg)
{
    /* the next dirty sizes of this transport are unavailable for the same reason */
    if (unavailable && !strcmp(r->transport, "rdma") && msg != pr->rdma_unavailable)
        snprintf(pr->rdma_unavailable, sizeof(pr->rdma_unavailable), "%s", msg);
    r->status = unavailable && pr->o->transport_all ? BENCH_RUN_UNAVAILABLE : BENCH_RUN_FAILED;
    if (unavailable && !pr->o->transport_all)
        snprintf(r->error, sizeof(r->error), "%s: use --transport tcp, or --transport all to "
                 "report it as unavailable", msg);
    else
        snprintf(r->error, sizeof(r->error), "%s", msg);
}

/* "done N USER SYS PERSIST APPLY" or an error, after the session ended. */
static int end_run(struct primary *pr, struct bench_run *r, bool failed)
{
    uint64_t n, user, sys, persist, apply, c[7];
    int got;

    if (bench_ctl_send(&pr->ctl, "end") || bench_ctl_recv(&pr->ctl, pr->line, sizeof(pr->line))) {
        if (!failed)
            not_run(pr, r, false, pr->ctl.err);
        return -1; /* the control connection is gone: no more runs */
    }
    if (failed)
        return 0;
    got = sscanf(pr->line, "done %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                 " %" SCNu64, &n, &user, &sys, &persist, &apply, &c[0], &c[1], &c[2], &c[3],
                 &c[4], &c[5], &c[6]);
    if (got != 5 && got != 11 && got != 12) {
        not_run(pr, r, false, !strncmp(pr->line, "error ", 6) ? pr->line + 6 : pr->line);
        return 0;
    }
    if (n) {
        r->cpu_secondary_us = (double)(user + sys) / (double)n;
        r->sec_persist_us = (double)persist / (double)n / 1e3;
        r->sec_apply_us = (double)apply / (double)n / 1e3;
        if (got == 12)
            r->locked_secondary_kib = c[6];
        if (got >= 11) {
            struct bench_counts *k = &r->counts_secondary;

            k->known = true;
            k->vcsw = (double)c[0] / (double)n;
            k->ivcsw = (double)c[1] / (double)n;
            k->wr_posted = (double)c[2] / (double)n;
            k->doorbells = (double)c[3] / (double)n;
            k->completions = (double)c[4] / (double)n;
            k->cq_wakeups = (double)c[5] / (double)n;
        }
    }
    return 0;
}

/* One latency figure per transport, measured once; 0 none. */
static double latency_for(struct primary *pr, bool rdma)
{
    double *l = rdma ? &pr->rdma_lat_us : &pr->tcp_lat_us;
    char note[256];

    if (*l == 0) {
        if (rdma && !pr->dev.present)
            *l = -1;
        else if (rdma ? bench_latency_measure(&pr->dev, !pr->o->busy_poll, l, note, sizeof(note))
                      : bench_tcp_pingpong(pr->host, pr->o->timeout_ms, l, note, sizeof(note)))
            *l = -1;
    }
    return *l > 0 ? *l : 0;
}

/*
 * The row's ceilings (see ceiling.h): the raw pump's figure, taken between
 * the run's checkpoints, and for rdma ib_write_bw shaped like the bench's
 * posts, right after the run; then the judgement.
 */
static void ceilings_for(struct primary *pr, struct bench_run *r, const struct bench_pump *pump)
{
    const struct bench_options *o = pr->o;
    struct bench_ceiling *c = &r->limit;
    bool rdma = !strcmp(r->transport, "rdma");
    struct bench_pump_result res;

    if (o->no_ceilings) {
        snprintf(c->pump_note, sizeof(c->pump_note), "not measured (--no-ceilings)");
        snprintf(c->perftest_note, sizeof(c->perftest_note), "not measured (--no-ceilings)");
        bench_run_judge(r);
        return;
    }
    if (pr->npaired) {
        struct bench_summary sum;

        bench_summarize(pr->paired, pr->npaired, &sum);
        c->pump_paired = sum.median / 1e6;
    }
    if (pump) {
        bench_pump_result(pump, &res);
        if (res.checkpoints && res.gbytes > 0) {
            c->pump_gbytes = res.gbytes;
            bench_pump_describe(pump, c->pump_note, sizeof(c->pump_note));
        } else {
            snprintf(c->pump_note, sizeof(c->pump_note), "%s: no pages pushed",
                     rdma ? "verbs pump" : "socket pump");
        }
    }
    if (rdma && !pr->dev.present) {
        snprintf(c->perftest_note, sizeof(c->perftest_note), "no RDMA device");
    } else if (rdma && r->nruns) {
        struct bench_write_bw_shape sh;
        double gb = 0;

        /* the runs are split at the chunk size, as the library splits them */
        bench_write_bw_shape(r->bytes / r->nruns, o->page_size, o->ceiling_duration, &sh);
        if (!bench_limit_measure(&pr->dev, &sh, &gb, c->perftest_note,
                                 sizeof(c->perftest_note))) {
            c->perftest_gbytes = gb;
            snprintf(c->perftest_note, sizeof(c->perftest_note), "ib_write_bw ");
            bench_write_bw_shape_str(&sh, c->perftest_note + strlen(c->perftest_note),
                                     sizeof(c->perftest_note) - strlen(c->perftest_note));
        }
    }
    r->lat.one_way_us = latency_for(pr, rdma);
    r->lat.source = rdma ? (o->busy_poll ? "ib_send_lat" : "ib_send_lat -e") : "tcp ping-pong";
    bench_run_judge(r);
}

/* The row's raw pump (pump.h), or NULL with the reason in the row's pump note. */
static struct bench_pump *open_pump(struct primary *pr, struct bench_run *r)
{
    const struct bench_options *o = pr->o;
    struct bench_ceiling *c = &r->limit;
    bool rdma = !strcmp(r->transport, "rdma");
    struct bench_pump_params pp = {.ram = pr->ram, .ram_bytes = o->ram_bytes,
                                   .blocks = o->blocks, .page_size = o->page_size,
                                   .busy_poll = o->busy_poll, .timeout_ms = o->timeout_ms};
    struct bench_pump *pump = NULL;
    struct bench_meminfo m;

    if (o->no_ceilings)
        return NULL;
    bench_meminfo_read(&m);
    if (m.available && m.available < o->ram_bytes + o->ram_bytes / 8)
        snprintf(c->pump_note, sizeof(c->pump_note), "pump: not run, it needs a cache-sized "
                 "buffer (%" PRIu64 " MiB) and MemAvailable is %" PRIu64 " MiB",
                 o->ram_bytes >> 20, m.available >> 20);
    else if (!rdma && !o->loopback)
        snprintf(c->pump_note, sizeof(c->pump_note), "socket pump: only with --loopback "
                 "(it needs both ends on the path)");
    else
        bench_pump_open(&pump, r->transport, &pr->dev, pr->host, &pp, c->pump_note,
                        sizeof(c->pump_note));
    return pump;
}

/* One transport and dirty size; -1 only when the control connection is lost. */
static int run_one(struct primary *pr, struct bench_run *r, const char *host, unsigned di)
{
    const struct bench_options *o = pr->o;
    struct colo_session *s = NULL;
    struct bench_pump *pump = NULL;
    struct colo_config *cfg;
    uint64_t cpu = 0, t0, lck0, pin0, lck1, pin1;
    unsigned port;
    int ret;

    if (!strcmp(r->transport, "rdma") && pr->rdma_unavailable[0]) {
        not_run(pr, r, true, pr->rdma_unavailable);
        return 0;
    }
    if (bench_samples_init(&r->samples, (size_t)o->checkpoints)) {
        not_run(pr, r, false, "out of memory for the samples");
        return 0;
    }
    if (bench_ctl_send(&pr->ctl, "run %s", r->transport) ||
        bench_ctl_recv(&pr->ctl, pr->line, sizeof(pr->line))) {
        not_run(pr, r, false, pr->ctl.err);
        return -1;
    }
    if (!strncmp(pr->line, "unavailable ", 12) || !strncmp(pr->line, "error ", 6)) {
        bool unavailable = pr->line[0] == 'u';

        not_run(pr, r, unavailable, pr->line + (unavailable ? 12 : 6));
        return 0;
    }
    if (sscanf(pr->line, "ok port %u", &port) != 1 || !port || port > 65535) {
        not_run(pr, r, false, "the secondary's answer to 'run' is malformed");
        return -1;
    }
    /* the pump is built (and its memory registered) before the session exists, so that
     * its setup never stalls a session whose heartbeat already runs */
    pump = open_pump(pr, r);
    pr->npaired = 0;
    cfg = make_config(pr, r->transport, host, (uint16_t)port);
    bench_locked_kib(&lck0, &pin0);
    t0 = now_ns();
    ret = cfg ? colo_primary_connect(cfg, &s) : -1;
    r->connect_ms = (double)(now_ns() - t0) / 1e6;
    bench_locked_kib(&lck1, &pin1);
    r->locked_primary_kib = (lck1 - lck0) + (pin1 - pin0);
    if (ret) {
        if (cfg)
            snprintf(pr->err, sizeof(pr->err), "connect to the secondary's %s session on port "
                     "%u: %s", r->transport, port, colo_errormsg());
        not_run(pr, r, bench_transport_unavailable(ret), pr->err);
        colo_config_delete(&cfg);
        bench_pump_close(&pump);
        return end_run(pr, r, true);
    }
    ret = checkpoints(pr, s, r, o->dirty[di], &cpu, &pump);
    colo_session_close(&s);
    colo_config_delete(&cfg);
    if (ret)
        not_run(pr, r, false, pr->err);
    if (end_run(pr, r, ret != 0)) {
        bench_pump_close(&pump);
        return -1;
    }
    if (r->status != BENCH_RUN_OK) {
        bench_pump_close(&pump);
        return 0;
    }
    r->cpu_primary_us = r->samples.n ? (double)cpu / (double)r->samples.n : 0;
    if (r->samples.n) {
        struct bench_counts *k = &r->counts_primary;
        double n = (double)r->samples.n;

        k->known = true;
        k->vcsw /= n;
        k->ivcsw /= n;
        k->wr_posted /= n;
        k->doorbells /= n;
        k->completions /= n;
        k->cq_wakeups /= n;
    }
    if (bench_run_summarize(r)) {
        not_run(pr, r, false, "out of memory for the summary");
        bench_pump_close(&pump);
        return 0;
    }
    ceilings_for(pr, r, pump);
    bench_pump_close(&pump);
    return 0;
}

static int prepare(struct primary *pr)
{
    const struct bench_options *o = pr->o;

    if (check_machine(pr))
        return -1;
    if (bench_ram_alloc(o->ram_bytes, o->hugepages, &pr->ram, pr->err, sizeof(pr->err)))
        return -1;
    pr->vmstate = malloc(o->vmstate_bytes ? o->vmstate_bytes : 1);
    pr->page_hashes = malloc((o->ram_bytes / o->blocks / o->page_size) * sizeof(uint64_t));
    pr->paired = malloc((size_t)o->checkpoints * sizeof(*pr->paired));
    pr->nruns = (size_t)o->ntransports * o->nbackground * o->ndirty;
    pr->runs = calloc(pr->nruns, sizeof(*pr->runs));
    if (!pr->vmstate || !pr->page_hashes || !pr->runs || !pr->paired) {
        snprintf(pr->err, sizeof(pr->err), "out of memory");
        return -1;
    }
    snprintf(pr->env.version, sizeof(pr->env.version), "%s", colo_version());
    bench_kernel(pr->env.kernel, sizeof(pr->env.kernel));
    bench_rdma_dev_detect(&pr->dev);
    snprintf(pr->env.rdma, sizeof(pr->env.rdma), "%s", pr->dev.info);
    pr->env.rdma_soft = pr->dev.soft;
    pr->env.limits = pr->dev.limits;
    snprintf(pr->env.ram_kind, sizeof(pr->env.ram_kind), "%s",
             o->hugepages ? "huge pages (MAP_HUGETLB)" : "anonymous memory");
    snprintf(pr->env.tracking, sizeof(pr->env.tracking), "%s",
             pr->use_softdirty ? "softdirty (kernel)" : "workload");
    return 0;
}

typedef int (*output_fn)(const char *path, const struct bench_env *env,
                         const struct bench_run *runs, size_t n, char *err, size_t len);

/* Writes one output file when asked for, and names it. */
static int output(struct primary *pr, const char *path, output_fn write_it)
{
    if (!path)
        return 0;
    if (write_it(path, &pr->env, pr->runs, pr->nruns, pr->err, sizeof(pr->err))) {
        fail(pr, pr->err);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}

static int outputs(struct primary *pr)
{
    const struct bench_options *o = pr->o;
    int ret = output(pr, o->json_path, bench_report_json);

    ret |= output(pr, o->csv_path, bench_report_csv);
    ret |= output(pr, o->plot_path, bench_plot);
    return ret;
}

int bench_primary_main(const struct bench_options *o, const char *host, uint16_t port)
{
    struct primary pr = {.o = o, .host = host, .ctl = {.fd = -1}, .env = {.o = o},
                         .sd = {.pagemap_fd = -1, .clear_fd = -1}};
    bool failed = false;
    int ret;

    pr.progress = isatty(2);
    ret = prepare(&pr);
    if (!ret)
        ret = connect_secondary(&pr, host, port);
    if (!ret) {
        /* The report leads with the comparable figures, so the rows' details
         * wait in memory until every row has run; stderr says how far it got. */
        char *details = NULL;
        size_t details_len = 0;
        FILE *det = open_memstream(&details, &details_len);

        fprintf(stderr, "colo-rdma-bench: %zu rows; the report follows once all have run\n",
                pr.nruns);
        for (unsigned t = 0, k = 0; t < o->ntransports && !ret; t++) {
            for (unsigned b = 0; b < o->nbackground && !ret; b++) {
                for (unsigned d = 0; d < o->ndirty && !ret; d++, k++) {
                    struct bench_run *r = &pr.runs[k];

                    r->transport = o->transports[t];
                    /* two variants: without the push first, then with it */
                    r->background_ms = o->nbackground == 2 && !b ? 0 : o->background_ms;
                    bench_run_label(r);
                    r->dirty = o->dirty[d];
                    ret = run_one(&pr, r, host, d);
                    bench_report_run(det ? det : stdout, &pr.env, r);
                    fprintf(stderr, "colo-rdma-bench: row %u of %zu (%s, dirty %" PRIu64 ") %s\n",
                            k + 1, pr.nruns, bench_run_name(r), r->dirty,
                            r->status == BENCH_RUN_OK ? "done" :
                            r->status == BENCH_RUN_UNAVAILABLE ? "unavailable" : "FAILED");
                    failed |= r->status == BENCH_RUN_FAILED;
                }
            }
        }
        if (!ret && (bench_ctl_send(&pr.ctl, "quit") ||
                     bench_ctl_recv(&pr.ctl, pr.line, sizeof(pr.line))))
            ret = -1;
        bench_report_comparable(stdout, &pr.env, pr.runs, pr.nruns);
        bench_report_header(stdout, &pr.env);
        if (det) {
            fclose(det);
            fwrite(details, 1, details_len, stdout);
            free(details);
        }
        bench_report_table(stdout, &pr.env, pr.runs, pr.nruns);
        fflush(stdout);
        if (outputs(&pr))
            failed = true;
        for (size_t i = 0; i < pr.nruns; i++)
            if (pr.runs[i].status == BENCH_RUN_FAILED)
                fprintf(stderr, "colo-rdma-bench: %s, dirty %" PRIu64 ": %s\n",
                        pr.runs[i].transport, pr.runs[i].dirty, pr.runs[i].error);
        if (ret)
            fail(&pr, pr.ctl.err[0] ? pr.ctl.err : "the control connection failed");
    } else {
        fail(&pr, pr.err);
    }
    bench_ctl_close(&pr.ctl);
    for (size_t i = 0; i < pr.nruns && pr.runs; i++)
        bench_run_free(&pr.runs[i]);
    free(pr.runs);
    free(pr.vmstate);
    free(pr.paired);
    free(pr.page_hashes);
    bench_ram_free(&pr.ram, o->ram_bytes);
    bench_replay_free(&pr.replay);
    if (pr.use_softdirty)
        bench_softdirty_close(&pr.sd);
    return ret || failed ? 1 : 0;
}
