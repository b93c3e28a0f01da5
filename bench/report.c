/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench/limit.h"
#include "bench/report.h"

const char bench_emulation_sentence[] =
    "absolute times favour tcp here: the RDMA device (rxe) is itself software, run by\n"
    "                   the same emulated CPUs as the bench, so RDMA saves them no work.";

/* Which CPU the cpu figures count, for this kernel's rxe. */
static const char *cpu_sentence(const struct bench_env *env)
{
    unsigned major = 0, minor = 0;

    if (!env->rdma_soft)
        return "cpu: user + system time of each process (getrusage); the NIC's work is not "
               "in it.";
    if (sscanf(env->kernel, "Linux %u.%u", &major, &minor) == 2 && major == 6 && minor < 4)
        return "cpu: user + system time of each process (getrusage). With this kernel (6.1)\n"
               "   rxe does much of its work inline in the posting process's system calls, so\n"
               "   the device's work is partly counted here; rdma and tcp are not like for like.";
    return "cpu: user + system time of each process (getrusage). With this kernel rxe runs\n"
           "   its work in kernel threads (a workqueue), outside both processes, as a real\n"
           "   NIC's would be: the rdma figure leaves the device's work out.";
}

static const char rule[] =
    "---------------------------------------------------------------------------------------\n";

void bench_run_label(struct bench_run *r)
{
    if (r->background_ms)
        snprintf(r->label, sizeof(r->label), "%s+bg%" PRIu32, r->transport, r->background_ms);
    else
        snprintf(r->label, sizeof(r->label), "%s", r->transport);
}

const char *bench_run_name(const struct bench_run *r)
{
    return r->label[0] ? r->label : r->transport;
}

int bench_run_summarize(struct bench_run *r)
{
    uint64_t *v = malloc((r->samples.n ? r->samples.n : 1) * sizeof(*v));
    uint64_t push_ns = 0, pause_bytes = 0;

    if (!v)
        return -1;
    r->pages = r->bytes = r->background_pages = 0;
    for (size_t i = 0; i < r->samples.n; i++) {
        const struct colo_checkpoint_stats *st = &r->samples.v[i];

        r->pages += st->pages;
        r->bytes += st->page_bytes;
        r->background_pages += st->background_pages;
        /* the push rate counts what moved in the pause, not what went ahead */
        if (st->pages)
            pause_bytes += st->page_bytes / st->pages * (st->pages - st->background_pages);
        push_ns += st->pages_ns;
        v[i] = st->total_ns > st->loaded_ns ? st->total_ns - st->loaded_ns : 0;
    }
    bench_summarize(v, r->samples.n, &r->early);
    free(v);
    r->push_gbytes = push_ns ? (double)pause_bytes / (double)push_ns : 0;
    for (int p = 0; p < BENCH_NPHASES; p++)
        if (bench_samples_summary(&r->samples, (enum bench_phase)p, &r->phase[p]))
            return -1;
    return 0;
}

void bench_run_judge(struct bench_run *r)
{
    bench_ceiling_judge(&r->limit, r->transport, r->push_gbytes);
    bench_latency_judge(&r->lat, r->phase[BENCH_PAUSE].median / 1e3, BENCH_CRITICAL_MESSAGES);
}

void bench_run_free(struct bench_run *r)
{
    bench_samples_free(&r->samples);
}

static const char *dirty_label(const struct bench_options *o, uint64_t dirty, char *buf,
                               size_t len)
{
    if (o->workload == BENCH_WL_IDLE || o->workload == BENCH_WL_REPLAY)
        snprintf(buf, len, "%s", bench_workload_name(o->workload));
    else
        snprintf(buf, len, "%" PRIu64, dirty);
    return buf;
}

void bench_report_header(FILE *out, const struct bench_env *env)
{
    const struct bench_options *o = env->o;
    char dirty[256] = "";

    for (unsigned i = 0; i < o->ndirty; i++)
        snprintf(dirty + strlen(dirty), sizeof(dirty) - strlen(dirty), "%s%" PRIu64,
                 i ? "," : "", o->dirty[i]);
    fputs(rule, out);
    fprintf(out, "                       colo-rdma-bench %s\n", env->version);
    fprintf(out, " Roles           : %s\n",
            o->loopback ? "loopback (primary and secondary here, two processes)" : "primary");
    if (!o->loopback)
        fprintf(out, " Secondary       : %s, control port %u\n", o->host, o->port);
    fprintf(out, " Transport(s)    : %s%s\n", o->transports[0],
            o->ntransports > 1 ? " tcp (all)" : "");
    fprintf(out, " Workload        : %s%s%s, seed %" PRIu64 ", dirty pages %s, tracking %s\n",
            bench_workload_name(o->workload), o->replay_path ? " " : "",
            o->replay_path ? o->replay_path : "", o->seed,
            o->workload == BENCH_WL_IDLE || o->workload == BENCH_WL_REPLAY ? "-" : dirty,
            env->tracking);
    fprintf(out, " Guest RAM       : %" PRIu64 " MiB in %" PRIu32 " blocks, page %" PRIu32
                 " bytes, %s\n", o->ram_bytes >> 20, o->blocks, o->page_size, env->ram_kind);
    fprintf(out, " Device state    : %" PRIu64 " bytes per checkpoint\n", o->vmstate_bytes);
    fprintf(out, " Checkpoints     : %" PRIu64 " timed after %" PRIu64 " warm-up, ",
            o->checkpoints, o->warmup);
    if (o->interval_ms)
        fprintf(out, "one every %" PRIu32 " ms\n", o->interval_ms);
    else
        fprintf(out, "back-to-back\n");
    fprintf(out, " Cache           : %s\n", env->cache);
    fprintf(out, " Kernel          : %s\n", env->kernel);
    fprintf(out, " RDMA device     : %s\n", env->rdma);
    if (env->limits.known)
        fprintf(out, " Device limits   : max_mr_size 0x%" PRIx64 ", max_qp_wr %" PRIu32
                     ", max_sge %" PRIu32 ", max_cqe %" PRIu32 ",\n"
                     "                   max_mr %" PRIu32 ", max_qp %" PRIu32
                     ", max_qp_rd_atom %" PRIu32 " (ibv_query_device)\n",
                env->limits.max_mr_size, env->limits.max_qp_wr, env->limits.max_sge,
                env->limits.max_cqe, env->limits.max_mr, env->limits.max_qp,
                env->limits.max_qp_rd_atom);
    fprintf(out, " Early resume    : %s\n",
            o->early_resume ? "on: the primary resumes at vmstate-received; 'pause' is the "
                              "call, with its wait for the previous vmstate-loaded ('loaded'), "
                              "'pause@recv' the pause without that wait"
                            : "off (the primary resumes at vmstate-loaded)");
    if (o->running_guest)
        fprintf(out, " Guest           : running: pages written over each interval; "
                     "background push %s\n", o->background_ms ? "on" : "off");
    fprintf(out, " Pipeline        : %s\n",
            o->pipelined ? "on (pages and state follow the request; the reply is read after)"
                         : "off (the primary waits for checkpoint-reply before the push)");
    fprintf(out, " Protocol        : version %u offered by the primary (a session speaks the "
                 "highest both offer)\n", (unsigned)o->protocol_version);
    fprintf(out, " Poll            : %s\n",
            o->busy_poll ? "busy (rdma completions polled by a spinning core)"
                         : "event");
    fprintf(out, " Integrity       : %s\n",
            o->integrity ? "on (a keyed digest of every checkpoint, checked by the secondary)"
                         : "off");
    fprintf(out, " Verify          : %s\n", o->verify ? "on (guest RAM and cache, every checkpoint)"
                                                      : "off");
    fprintf(out, " Compare         : each transport's page push with its own ceiling (rdma: the\n"
                 "                   lower of ib_write_bw posting like the bench and the raw verbs\n"
                 "                   pump; tcp: the socket pump), and CPU per checkpoint\n");
    if (env->rdma_soft)
        fprintf(out, " Emulation       : %s\n", bench_emulation_sentence);
    fputs(rule, out);
}

/* "12.0+0.3" voluntary + involuntary context switches, "-" when unknown. */
static void csw_text(const struct bench_counts *k, char *buf, size_t len)
{
    if (k->known)
        snprintf(buf, len, "%.1f+%.1f", k->vcsw, k->ivcsw);
    else
        snprintf(buf, len, "-");
}

/* "5.0/3.0/4.0/2.0": WRs posted / doorbells / completions / wakeups. */
static void verbs_text(const struct bench_run *r, const struct bench_counts *k, char *buf,
                       size_t len)
{
    if (k->known && !strcmp(r->transport, "rdma"))
        snprintf(buf, len, "%.1f/%.1f/%.1f/%.1f", k->wr_posted, k->doorbells, k->completions,
                 k->cq_wakeups);
    else
        snprintf(buf, len, "-");
}

/* A table row's start: false (and the row printed) when the run has no
 * figures; else lim says how it compares with its ceiling. */
static bool row_start(FILE *out, const struct bench_run *r, char *lim, size_t len)
{
    if (r->status != BENCH_RUN_OK) {
        fprintf(out, " %-9s %7" PRIu64 "  %s: %.60s\n", bench_run_name(r), r->dirty,
                r->status == BENCH_RUN_UNAVAILABLE ? "unavailable" : "FAILED", r->error);
        return false;
    }
    if (r->limit.gbytes > 0 && r->limit.reliable)
        snprintf(lim, len, "%.0f%%", 100 * r->limit.ratio);
    else
        snprintf(lim, len, "%s", r->limit.gbytes > 0 ? "unreliable" : "-");
    return true;
}

void bench_report_comparable(FILE *out, const struct bench_env *env,
                             const struct bench_run *runs, size_t n)
{
    fputs(rule, out);
    fprintf(out, " Comparable figures: each transport against its own ceiling; work per "
                 "checkpoint\n");
    fprintf(out, " %-9s %7s %10s %-11s %8s %8s %10s %10s %19s %19s\n", "transport", "dirty",
            "vs-ceiling", "ceiling-by", "cpu-pri", "cpu-sec", "csw-pri", "csw-sec",
            "verbs-pri", "verbs-sec");
    for (size_t i = 0; i < n; i++) {
        const struct bench_run *r = &runs[i];
        char lim[16], cp[32], cs[32], vp[64], vs[64];

        if (!row_start(out, r, lim, sizeof(lim)))
            continue;
        csw_text(&r->counts_primary, cp, sizeof(cp));
        csw_text(&r->counts_secondary, cs, sizeof(cs));
        verbs_text(r, &r->counts_primary, vp, sizeof(vp));
        verbs_text(r, &r->counts_secondary, vs, sizeof(vs));
        fprintf(out, " %-9s %7" PRIu64 " %10s %-11s %8.0f %8.0f %10s %10s %19s %19s\n",
                bench_run_name(r), r->dirty, lim, r->limit.source ? r->limit.source : "-",
                r->cpu_primary_us, r->cpu_secondary_us, cp, cs, vp, vs);
    }
    fprintf(out, " vs-ceiling: page push / the transport's own ceiling (rdma: ib_write_bw or "
                 "the verbs pump,\n   tcp: the socket pump), \"unreliable\" when it beat it "
                 "by more than %.0f%%.\n", 100 * (BENCH_LIMIT_SLACK - 1));
    fprintf(out, " %s\n   In us per checkpoint.\n", cpu_sentence(env));
    fprintf(out, " csw: voluntary+involuntary context switches of each process per checkpoint "
                 "(getrusage,\n   every thread; a voluntary one is a sleep, so a wakeup).\n");
    fprintf(out, " verbs: work requests posted / doorbells (post calls) / completions polled /\n"
                 "   completion-channel wakeups per checkpoint, counted by the library (rdma "
                 "only).\n");
    if (env->rdma_soft)
        fprintf(out, " Why absolute times favour tcp here: rxe is software run by the same "
                     "emulated CPUs\n   as the bench, so RDMA saves them no work; only the "
                     "ratios above compare.\n");
    fputs(rule, out);
}

static void phase_line(FILE *out, const char *name, const struct bench_summary *s)
{
    fprintf(out, " %-10s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", name, s->min / 1e3,
            s->median / 1e3, s->avg / 1e3, s->stdev / 1e3, s->p99 / 1e3, s->p999 / 1e3,
            s->max / 1e3);
}

/* The comparable figure: the page push against its ceiling, or why there is none. */
static void limit_text(const struct bench_run *r, char *buf, size_t len)
{
    const struct bench_ceiling *c = &r->limit;

    if (c->gbytes <= 0)
        snprintf(buf, len, "%s", c->reason[0] ? c->reason : "no ceiling");
    else if (!c->reliable)
        snprintf(buf, len, "UNRELIABLE ceiling, no result: %s", c->reason);
    else
        snprintf(buf, len, "%.0f%% of %.4f GB/s (%s, the lower measured ceiling)",
                 100 * c->ratio, c->gbytes, c->source);
}

static void ceiling_lines(FILE *out, const struct bench_run *r)
{
    const struct bench_ceiling *c = &r->limit;
    bool rdma = !strcmp(r->transport, "rdma");

    if (rdma) {
        if (c->perftest_gbytes > 0)
            fprintf(out, " ceiling    ib_write_bw %.4f GB/s (BW average; %s; it polls its CQ)\n",
                    c->perftest_gbytes, c->perftest_note);
        else
            fprintf(out, " ceiling    ib_write_bw: %s\n",
                    c->perftest_note[0] ? c->perftest_note : "not measured");
    }
    if (c->pump_gbytes > 0)
        fprintf(out, " ceiling    %s %.4f GB/s (%s)\n", rdma ? "verbs pump" : "socket pump",
                c->pump_gbytes, c->pump_note);
    if (c->pump_paired > 0)
        fprintf(out, " paired     checkpoint by checkpoint, the page push ran at a median %.2fx "
                     "the pump's rate for the same runs\n", c->pump_paired);
    else
        fprintf(out, " ceiling    %s: %s\n", rdma ? "verbs pump" : "socket pump",
                c->pump_note[0] ? c->pump_note : "not measured");
}

void bench_report_run(FILE *out, const struct bench_env *env, const struct bench_run *r)
{
    double n = (double)(r->samples.n ? r->samples.n : 1);
    char label[32], limit[512];

    dirty_label(env->o, r->dirty, label, sizeof(label));
    if (r->status != BENCH_RUN_OK) {
        fprintf(out, " %s, dirty %s: %s: %s\n", bench_run_name(r), label,
                r->status == BENCH_RUN_UNAVAILABLE ? "unavailable" : "FAILED", r->error);
        return;
    }
    fprintf(out, " %s, dirty %s: %zu checkpoints, %.1f pages (%.2f MiB) in %.1f runs each\n",
            bench_run_name(r), label, r->samples.n, (double)r->pages / n,
            (double)r->bytes / n / 1048576.0, (double)r->nruns / n);
    /* the comparable figures first */
    limit_text(r, limit, sizeof(limit));
    fprintf(out, " vs ceiling %s\n", limit);
    fprintf(out, " cpu/ckpt   primary %.1f us, secondary %.1f us (each process's user + system "
                 "time, getrusage)\n", r->cpu_primary_us, r->cpu_secondary_us);
    if (r->counts_primary.known || r->counts_secondary.known) {
        char cp[32], cs[32];

        csw_text(&r->counts_primary, cp, sizeof(cp));
        csw_text(&r->counts_secondary, cs, sizeof(cs));
        fprintf(out, " csw/ckpt   primary %s, secondary %s (voluntary+involuntary context "
                     "switches, getrusage)\n", cp, cs);
    }
    if (!strcmp(r->transport, "rdma") && r->counts_primary.known) {
        const struct bench_counts *p = &r->counts_primary, *s = &r->counts_secondary;

        fprintf(out, " verbs/ckpt primary %.1f WRs posted, %.1f doorbells, %.1f completions, "
                     "%.1f wakeups\n", p->wr_posted, p->doorbells, p->completions,
                p->cq_wakeups);
        if (s->known)
            fprintf(out, "            secondary %.1f WRs posted, %.1f doorbells, %.1f "
                         "completions, %.1f wakeups\n", s->wr_posted, s->doorbells,
                    s->completions, s->cq_wakeups);
    }
    if (r->lat.one_way_us > 0 && r->lat.reliable)
        fprintf(out, " latency    pause median %.2fx one round trip (%d one-way messages of "
                     "%.1f us, %s)\n",
                r->lat.ratio, BENCH_CRITICAL_MESSAGES, r->lat.one_way_us, r->lat.source);
    else if (r->lat.one_way_us > 0)
        fprintf(out, " latency    UNRELIABLE floor, no result: %s\n", r->lat.reason);
    fprintf(out, " %-10s %10s %10s %10s %10s %10s %10s %10s\n", "phase (us)", "min", "median",
            "avg", "stdev", "p99", "p99.9", "max");
    for (int p = 0; p < BENCH_NPHASES; p++)
        phase_line(out, bench_phase_name((enum bench_phase)p), &r->phase[p]);
    if (env->o->early_resume)
        phase_line(out, "pause@recv", &r->early);
    if (env->o->running_guest)
        fprintf(out, " background %.1f pages per checkpoint pushed while the guest ran "
                     "(every %" PRIu32 " ms), %.1f in the pause\n",
                (double)r->background_pages / n, r->background_ms,
                (double)(r->pages - r->background_pages) / n);
    fprintf(out, " throughput %.4f GB/s, %.3f Gb/s (page push)\n", r->push_gbytes,
            r->push_gbytes * 8);
    ceiling_lines(out, r);
    fprintf(out, " secondary  persist %.1f us, apply + load %.1f us (averages)\n",
            r->sec_persist_us, r->sec_apply_us);
    fprintf(out, " setup      connect %.1f ms (handshake + registration); memory the session "
                 "locked or pinned: primary %" PRIu64 " KiB, secondary %" PRIu64 " KiB "
                 "(VmLck + VmPin)\n\n", r->connect_ms, r->locked_primary_kib,
            r->locked_secondary_kib);
}

/* With --transport all and a background push: each pair's pause, with / without. */
static void background_ratios(FILE *out, const struct bench_run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct bench_run *off = &runs[i];

        if (off->background_ms || off->status != BENCH_RUN_OK)
            continue;
        for (size_t j = 0; j < n; j++) {
            const struct bench_run *on = &runs[j];

            if (!on->background_ms || on->status != BENCH_RUN_OK || on->dirty != off->dirty ||
                strcmp(on->transport, off->transport) || !off->phase[BENCH_PAUSE].median)
                continue;
            fprintf(out, " background push, %s, %" PRIu64 " pages: pause median %.1f -> %.1f us "
                         "(%.2fx) with a push every %" PRIu32 " ms; %.0f of %.0f pages moved "
                         "while the guest ran\n",
                    off->transport, off->dirty, off->phase[BENCH_PAUSE].median / 1e3,
                    on->phase[BENCH_PAUSE].median / 1e3,
                    on->phase[BENCH_PAUSE].median / off->phase[BENCH_PAUSE].median,
                    on->background_ms,
                    (double)on->background_pages / (double)(on->samples.n ? on->samples.n : 1),
                    (double)on->pages / (double)(on->samples.n ? on->samples.n : 1));
        }
    }
}

void bench_report_table(FILE *out, const struct bench_env *env, const struct bench_run *runs,
                        size_t n)
{
    fputs(rule, out);
    fprintf(out, " %-9s %7s %5s %10s %-11s %9s %9s %7s %9s %9s %7s\n", "transport", "dirty",
            "ckpts", "vs-ceiling", "ceiling-by", "cpu-pri", "cpu-sec", "MiB/ck", "pause-med",
            "pause-p99", "GB/s");
    for (size_t i = 0; i < n; i++) {
        const struct bench_run *r = &runs[i];
        double c = (double)(r->samples.n ? r->samples.n : 1);
        char lim[16];

        if (!row_start(out, r, lim, sizeof(lim)))
            continue;
        fprintf(out, " %-9s %7" PRIu64 " %5zu %10s %-11s %9.0f %9.0f %7.2f %9.1f %9.1f %7.4f\n",
                bench_run_name(r), r->dirty, r->samples.n, lim,
                r->limit.source ? r->limit.source : "-", r->cpu_primary_us, r->cpu_secondary_us,
                (double)r->bytes / c / 1048576.0, r->phase[BENCH_PAUSE].median / 1e3,
                r->phase[BENCH_PAUSE].p99 / 1e3, r->push_gbytes);
    }
    background_ratios(out, runs, n);
    fprintf(out, " (vs-ceiling: page push / the transport's own ceiling, \"unreliable\" when it "
                 "beat it by more than %.0f%%;\n  cpu: user + system per checkpoint of each "
                 "process, getrusage; times in us; GB/s: page push)\n",
            100 * (BENCH_LIMIT_SLACK - 1));
    if (env->rdma_soft)
        fprintf(out, " Emulation:        %s\n", bench_emulation_sentence);
    fputs(rule, out);
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity. */
static void json_num(FILE *f, double v)
{
    if (v != v || v > 1e300 || v < -1e300)
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

static void json_summary(FILE *f, const struct bench_summary *s)
{
    fprintf(f, "{\"min_us\": ");
    json_num(f, s->min / 1e3);
    fprintf(f, ", \"median_us\": ");
    json_num(f, s->median / 1e3);
    fprintf(f, ", \"avg_us\": ");
    json_num(f, s->avg / 1e3);
    fprintf(f, ", \"stdev_us\": ");
    json_num(f, s->stdev / 1e3);
    fprintf(f, ", \"p99_us\": ");
    json_num(f, s->p99 / 1e3);
    fprintf(f, ", \"p99_9_us\": ");
    json_num(f, s->p999 / 1e3);
    fprintf(f, ", \"max_us\": ");
    json_num(f, s->max / 1e3);
    fputc('}', f);
}

static void json_num_or_null(FILE *f, bool have, double v)
{
    if (have)
        json_num(f, v);
    else
        fputs("null", f);
}

/* , "name": {...} of one side's counts per checkpoint, or null when unknown. */
static void json_counts(FILE *f, const char *name, const struct bench_counts *k)
{
    fprintf(f, ", \"%s\": ", name);
    if (!k->known) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"voluntary_csw\": ");
    json_num(f, k->vcsw);
    fprintf(f, ", \"involuntary_csw\": ");
    json_num(f, k->ivcsw);
    fprintf(f, ", \"wr_posted\": ");
    json_num(f, k->wr_posted);
    fprintf(f, ", \"doorbells\": ");
    json_num(f, k->doorbells);
    fprintf(f, ", \"completions\": ");
    json_num(f, k->completions);
    fprintf(f, ", \"cq_wakeups\": ");
    json_num(f, k->cq_wakeups);
    fputc('}', f);
}

static void json_str_or_null(FILE *f, const char *s)
{
    if (s && *s)
        json_str(f, s);
    else
        fputs("null", f);
}

/*
 * The ceiling and its judgement: ratio_to_limit only when the ceiling held
 * (limit_reliable), the measured ratio always, and both ceilings with how
 * each was measured.
 */
static void json_limit(FILE *f, const struct bench_run *r)
{
    const struct bench_ceiling *c = &r->limit;
    const struct bench_latency_ceiling *l = &r->lat;
    bool have = c->gbytes > 0, lhave = l->one_way_us > 0;

    fprintf(f, ",\n     \"limit_GBps\": ");
    json_num_or_null(f, have, c->gbytes);
    fprintf(f, ", \"limit_source\": ");
    json_str_or_null(f, c->source);
    fprintf(f, ", \"ratio_to_limit\": ");
    json_num_or_null(f, have && c->reliable, c->ratio);
    fprintf(f, ", \"measured_ratio_to_limit\": ");
    json_num_or_null(f, have, c->ratio);
    fprintf(f, ",\n     \"limit_reliable\": %s, \"limit_reason\": ",
            have && c->reliable ? "true" : "false");
    json_str_or_null(f, c->reason);
    fprintf(f, ",\n     \"ceilings\": {\"ib_write_bw_GBps\": ");
    json_num_or_null(f, c->perftest_gbytes > 0, c->perftest_gbytes);
    fprintf(f, ", \"ib_write_bw\": ");
    json_str_or_null(f, c->perftest_note);
    fprintf(f, ",\n       \"pump_GBps\": ");
    json_num_or_null(f, c->pump_gbytes > 0, c->pump_gbytes);
    fprintf(f, ", \"pump\": ");
    json_str_or_null(f, c->pump_note);
    fprintf(f, ", \"pump_paired_median_ratio\": ");
    json_num_or_null(f, c->pump_paired > 0, c->pump_paired);
    fprintf(f, "},\n     \"latency_one_way_us\": ");
    json_num_or_null(f, lhave, l->one_way_us);
    fprintf(f, ", \"latency_source\": ");
    json_str_or_null(f, lhave ? l->source : NULL);
    fprintf(f, ", \"pause_median_vs_latency_limit\": ");
    json_num_or_null(f, lhave && l->reliable, l->ratio);
    fprintf(f, ",\n     \"latency_limit_reliable\": %s, \"latency_limit_reason\": ",
            lhave && l->reliable ? "true" : "false");
    json_str_or_null(f, l->reason);
}

static void json_run(FILE *f, const struct bench_run *r, bool samples)
{
    static const char *const status[] = {"ok", "unavailable", "failed"};
    double c = (double)(r->samples.n ? r->samples.n : 1);

    fprintf(f, "    {\"transport\": ");
    json_str(f, r->transport);
    fprintf(f, ", \"label\": ");
    json_str(f, bench_run_name(r));
    fprintf(f, ", \"background_push_ms\": %" PRIu32, r->background_ms);
    fprintf(f, ", \"dirty\": %" PRIu64 ", \"status\": \"%s\"", r->dirty, status[r->status]);
    if (r->status != BENCH_RUN_OK) {
        fprintf(f, ", \"error\": ");
        json_str(f, r->error);
        fprintf(f, "}");
        return;
    }
    fprintf(f, ",\n     \"checkpoints\": %zu, \"pages\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"runs\": %" PRIu64 ",\n     \"pages_per_checkpoint\": ",
            r->samples.n, r->pages, r->bytes, r->nruns);
    json_num(f, (double)r->pages / c);
    fprintf(f, ", \"bytes_per_checkpoint\": ");
    json_num(f, (double)r->bytes / c);
    fprintf(f, ",\n     \"phases\": {\n");
    for (int p = 0; p < BENCH_NPHASES; p++) {
        fprintf(f, "       \"%s\": ", bench_phase_name((enum bench_phase)p));
        json_summary(f, &r->phase[p]);
        fprintf(f, ",\n");
    }
    fprintf(f, "       \"pause_to_received\": ");
    json_summary(f, &r->early);
    fprintf(f, "},\n     \"throughput_GBps\": ");
    json_num(f, r->push_gbytes);
    fprintf(f, ", \"throughput_Gbps\": ");
    json_num(f, r->push_gbytes * 8);
    json_limit(f, r);
    fprintf(f, ",\n     \"background_pages_per_checkpoint\": ");
    json_num(f, r->samples.n ? (double)r->background_pages / (double)r->samples.n : 0);
    fprintf(f, ",\n     \"cpu_us_per_checkpoint\": {\"what\": \"user + system of each process "
               "(getrusage RUSAGE_SELF)\", \"primary\": ");
    json_num(f, r->cpu_primary_us);
    fprintf(f, ", \"secondary\": ");
    json_num(f, r->cpu_secondary_us);
    fprintf(f, "},\n     \"per_checkpoint\": {\"what\": \"context switches of each process "
               "(getrusage, every thread: voluntary, involuntary) and the library's verbs work "
               "(colo_checkpoint_stats: work requests posted, doorbells, completions polled, "
               "completion-channel wakeups; rdma only)\"");
    json_counts(f, "primary", &r->counts_primary);
    json_counts(f, "secondary", &r->counts_secondary);
    fprintf(f, "},\n     \"setup\": {\"connect_ms\": ");
    json_num(f, r->connect_ms);
    fprintf(f, ", \"locked_kib_primary\": %" PRIu64 ", \"locked_kib_secondary\": %" PRIu64
               ", \"what\": \"colo_primary_connect (handshake, registration); VmLck + VmPin "
               "each process's session added\"", r->locked_primary_kib,
            r->locked_secondary_kib);
    fprintf(f, "},\n     \"secondary_us\": {\"persist_avg\": ");
    json_num(f, r->sec_persist_us);
    fprintf(f, ", \"apply_avg\": ");
    json_num(f, r->sec_apply_us);
    fprintf(f, "}");
    if (samples) {
        fprintf(f, ",\n     \"samples\": [");
        for (size_t i = 0; i < r->samples.n; i++) {
            const struct colo_checkpoint_stats *s = &r->samples.v[i];

            fprintf(f, "%s\n       {\"seq\": %" PRIu64 ", \"pages\": %" PRIu64
                       ", \"bytes\": %" PRIu64 ", \"pause_ns\": %" PRIu64
                       ", \"request_ns\": %" PRIu64 ", \"pages_ns\": %" PRIu64
                       ", \"state_ns\": %" PRIu64 ", \"received_ns\": %" PRIu64
                       ", \"loaded_ns\": %" PRIu64 "}",
                    i ? "," : "", s->seq, s->pages, s->page_bytes, s->total_ns, s->request_ns,
                    s->pages_ns, s->state_ns, s->received_ns, s->loaded_ns);
        }
        fprintf(f, "]");
    }
    fprintf(f, "}");
}

static int close_file(FILE *f, const char *path, char *err, size_t errlen)
{
    int bad = ferror(f);

    if (fclose(f) || bad) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int bench_report_json(const char *path, const struct bench_env *env, const struct bench_run *runs,
                      size_t n, char *err, size_t errlen)
{
    const struct bench_options *o = env->o;
    FILE *f = fopen(path, "w");

    if (!f) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"bench\": \"colo-rdma-bench\", \"version\": ");
    json_str(f, env->version);
    fprintf(f, ",\n  \"config\": {\"role\": \"%s\", \"transports\": [",
            o->loopback ? "loopback" : "primary");
    for (unsigned i = 0; i < o->ntransports; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_str(f, o->transports[i]);
    }
    fprintf(f, "], \"workload\": ");
    json_str(f, bench_workload_name(o->workload));
    fprintf(f, ", \"replay\": ");
    if (o->replay_path)
        json_str(f, o->replay_path);
    else
        fputs("null", f);
    fprintf(f, ",\n    \"ram_bytes\": %" PRIu64 ", \"blocks\": %" PRIu32 ", \"page_size\": %" PRIu32
               ", \"hugepages\": %s, \"vmstate_bytes\": %" PRIu64 ",\n    \"dirty\": [",
            o->ram_bytes, o->blocks, o->page_size, o->hugepages ? "true" : "false",
            o->vmstate_bytes);
    for (unsigned i = 0; i < o->ndirty; i++)
        fprintf(f, "%s%" PRIu64, i ? ", " : "", o->dirty[i]);
    fprintf(f, "], \"checkpoints\": %" PRIu64 ", \"warmup\": %" PRIu64 ", \"seed\": %" PRIu64
               ", \"interval_ms\": %" PRIu32 ",\n    \"dirty_tracking\": ",
            o->checkpoints, o->warmup, o->seed, o->interval_ms);
    json_str(f, env->tracking);
    fprintf(f, ", \"early_resume\": \"%s\", \"pipeline\": \"%s\", \"protocol_version\": %u, "
               "\"running_guest\": %s, "
               "\"background_push_ms\": %" PRIu32 ", \"poll\": \"%s\", \"integrity\": %s, "
               "\"verify\": %s},\n",
            o->early_resume ? "on" : "off", o->pipelined ? "on" : "off",
            (unsigned)o->protocol_version,
            o->running_guest ? "true" : "false", o->background_ms,
            o->busy_poll ? "busy" : "event", o->integrity ? "true" : "false",
            o->verify ? "true" : "false");
    fprintf(f, "  \"system\": {\"kernel\": ");
    json_str(f, env->kernel);
    fprintf(f, ", \"cache\": ");
    json_str(f, env->cache);
    fprintf(f, ", \"rdma_device\": ");
    json_str(f, env->rdma);
    fprintf(f, ", \"rdma_device_limits\": ");
    if (env->limits.known)
        fprintf(f, "{\"source\": \"ibv_query_device\", \"max_mr_size\": %" PRIu64
                   ", \"max_qp_wr\": %" PRIu32 ", \"max_sge\": %" PRIu32 ", \"max_cqe\": %"
                   PRIu32 ", \"max_mr\": %" PRIu32 ", \"max_qp\": %" PRIu32
                   ", \"max_qp_rd_atom\": %" PRIu32 "}",
                env->limits.max_mr_size, env->limits.max_qp_wr, env->limits.max_sge,
                env->limits.max_cqe, env->limits.max_mr, env->limits.max_qp,
                env->limits.max_qp_rd_atom);
    else
        fputs("null", f);
    fprintf(f, ", \"ram\": ");
    json_str(f, env->ram_kind);
    fprintf(f, "},\n  \"runs\": [\n");
    for (size_t i = 0; i < n; i++) {
        json_run(f, &runs[i], o->samples);
        fprintf(f, "%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return close_file(f, path, err, errlen);
}

/* ---- CSV ---- */

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static int write_samples_csv(const char *path, const struct bench_run *runs, size_t n,
                             char *err, size_t errlen)
{
    size_t len = strlen(path) + 16;
    char *spath = malloc(len);
    const char *dot;
    FILE *f;
    int ret;

    if (!spath) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* out.csv -> out.samples.csv */
    dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        snprintf(spath, len, "%.*s.samples%s", (int)(dot - path), path, dot);
    else
        snprintf(spath, len, "%s.samples.csv", path);
    f = fopen(spath, "w");
    if (!f) {
        snprintf(err, errlen, "cannot create %s: %s", spath, strerror(errno));
        free(spath);
        return -1;
    }
    fprintf(f, "transport,label,background_push_ms,dirty,seq,pages,bytes,pause_ns,request_ns,"
               "pages_ns,state_ns,received_ns,loaded_ns\n");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < runs[i].samples.n; k++) {
            const struct colo_checkpoint_stats *s = &runs[i].samples.v[k];

            fprintf(f, "%s,%s,%" PRIu32 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
                    runs[i].transport, bench_run_name(&runs[i]), runs[i].background_ms,
                    runs[i].dirty, s->seq, s->pages, s->page_bytes,
                    s->total_ns, s->request_ns, s->pages_ns, s->state_ns, s->received_ns,
                    s->loaded_ns);
        }
    ret = close_file(f, spath, err, errlen);
    free(spath);
    return ret;
}

int bench_report_csv(const char *path, const struct bench_env *env, const struct bench_run *runs,
                     size_t n, char *err, size_t errlen)
{
    static const char *const stat_names[] = {"min", "median", "avg", "stdev", "p99", "p99_9",
                                             "max"};
    static const char *const status[] = {"ok", "unavailable", "failed"};
    FILE *f = fopen(path, "w");

    if (!f) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    /* A row is one (label, dirty): --transport all with --background-push
     * gives each transport twice, without ("tcp") and with ("tcp+bg20"). */
    fprintf(f, "transport,label,background_push_ms,dirty,status,workload,ram_bytes,blocks,"
               "page_size,checkpoints,pages,bytes,runs");
    for (int p = 0; p <= BENCH_NPHASES; p++)
        for (size_t k = 0; k < sizeof(stat_names) / sizeof(stat_names[0]); k++)
            fprintf(f, ",%s_%s_us",
                    p < BENCH_NPHASES ? bench_phase_name((enum bench_phase)p)
                                      : "pause_to_received", stat_names[k]);
    fprintf(f, ",throughput_GBps,throughput_Gbps,limit_GBps,limit_source,ratio_to_limit,"
               "measured_ratio_to_limit,limit_reliable,ib_write_bw_GBps,pump_GBps,"
               "cpu_primary_us,cpu_secondary_us,secondary_persist_us,secondary_apply_us,note\n");
    for (size_t i = 0; i < n; i++) {
        const struct bench_run *r = &runs[i];

        fprintf(f, "%s,%s,%" PRIu32 ",%" PRIu64 ",%s,%s,%" PRIu64 ",%" PRIu32 ",%" PRIu32
                   ",%zu,%" PRIu64 ",%" PRIu64 ",%" PRIu64, r->transport, bench_run_name(r),
                r->background_ms, r->dirty, status[r->status],
                bench_workload_name(env->o->workload), env->o->ram_bytes, env->o->blocks,
                env->o->page_size, r->samples.n, r->pages, r->bytes, r->nruns);
        for (int p = 0; p <= BENCH_NPHASES; p++) {
            const struct bench_summary *s = p < BENCH_NPHASES ? &r->phase[p] : &r->early;
            const double v[] = {s->min, s->median, s->avg, s->stdev, s->p99, s->p999, s->max};

            for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
                fprintf(f, ",%.3f", v[k] / 1e3);
        }
        fprintf(f, ",%.6f,%.6f,", r->push_gbytes, r->push_gbytes * 8);
        if (r->limit.gbytes > 0)
            fprintf(f, "%.6f,%s,", r->limit.gbytes, r->limit.source);
        else
            fprintf(f, ",,");
        if (r->limit.gbytes > 0 && r->limit.reliable)
            fprintf(f, "%.4f", r->limit.ratio);
        fprintf(f, ",");
        if (r->limit.gbytes > 0)
            fprintf(f, "%.4f", r->limit.ratio);
        fprintf(f, ",%s,", r->limit.gbytes > 0 && r->limit.reliable ? "true" : "false");
        if (r->limit.perftest_gbytes > 0)
            fprintf(f, "%.6f", r->limit.perftest_gbytes);
        fprintf(f, ",");
        if (r->limit.pump_gbytes > 0)
            fprintf(f, "%.6f", r->limit.pump_gbytes);
        fprintf(f, ",%.3f,%.3f,%.3f,%.3f,", r->cpu_primary_us, r->cpu_secondary_us,
                r->sec_persist_us, r->sec_apply_us);
        csv_str(f, r->status == BENCH_RUN_OK ? r->limit.reason : r->error);
        fputc('\n', f);
    }
    if (close_file(f, path, err, errlen))
        return -1;
    return env->o->samples ? write_samples_csv(path, runs, n, err, errlen) : 0;
}
