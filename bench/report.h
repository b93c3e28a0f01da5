/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results of a bench run and their text, JSON and CSV forms. */
#ifndef COLO_BENCH_REPORT_H
#define COLO_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "bench/ceiling.h"
#include "bench/limit.h"
#include "bench/options.h"
#include "bench/stats.h"

enum bench_run_status {
    BENCH_RUN_OK,
    BENCH_RUN_UNAVAILABLE, /* transport not available here: reported, not a failure */
    BENCH_RUN_FAILED,
};

/* Per checkpoint, one side: its process's context switches (getrusage, every
 * thread) and the library's verbs work (struct colo_checkpoint_stats, rdma). */
struct bench_counts {
    bool known;
    double vcsw, ivcsw;          /* voluntary (sleeps) and involuntary (preempted) */
    double wr_posted, doorbells, completions, cq_wakeups;
};

/* One transport and dirty-set size. Times in ns. */
struct bench_run {
    const char *transport;
    char label[24];  /* transport, "+bgMS" with background push: for reports and plots */
    uint32_t background_ms; /* running guest: this run's push period (0: off) */
    uint64_t dirty; /* requested pages per checkpoint (0 for idle and replay) */
    enum bench_run_status status;
    char error[512];
    struct bench_samples samples; /* timed checkpoints only */
    struct bench_summary phase[BENCH_NPHASES];
    struct bench_summary early;   /* pause - loaded: with early resume, the pause from the
                                     request to vmstate-received, without the wait for the
                                     previous checkpoint's vmstate-loaded */
    uint64_t pages, bytes, nruns; /* sums over the timed checkpoints */
    uint64_t background_pages;    /* of pages: pushed while the guest ran (sum) */
    double push_gbytes;           /* page bytes / page push time, GB/s */
    double cpu_primary_us;        /* CPU time (user + system) per checkpoint */
    double cpu_secondary_us;
    struct bench_counts counts_primary, counts_secondary;
    double connect_ms;            /* colo_primary_connect: handshake + registration */
    uint64_t locked_primary_kib;  /* VmLck + VmPin the session added (registration) */
    uint64_t locked_secondary_kib;
    double sec_persist_us;        /* the secondary's own view, averages */
    double sec_apply_us;
    struct bench_ceiling limit;   /* the page push's ceiling (bench_ceiling_judge) */
    struct bench_latency_ceiling lat; /* the pause against one-way messages */
};

/* The configuration as the header shows it. */
struct bench_env {
    const struct bench_options *o;
    char version[32];
    char kernel[128];
    char cache[600];  /* "PATH (KIND)", from the secondary */
    char rdma[256];   /* device, port, state, MTU, or why there is none */
    bool rdma_soft;   /* rxe/siw: the RDMA device is software on the same CPUs */
    struct bench_dev_limits limits;
    char ram_kind[64];
    char tracking[64];
};

/* r->label from r->transport and r->background_ms. */
void bench_run_label(struct bench_run *r);
/* What reports call a run: its label, or its transport when it has none. */
const char *bench_run_name(const struct bench_run *r);
/* Fills the summaries from the samples; -1 when out of memory. */
int bench_run_summarize(struct bench_run *r);
/* Judges r->limit and r->lat against the run's figures (after the ceilings are measured). */
void bench_run_judge(struct bench_run *r);
void bench_run_free(struct bench_run *r);
void bench_report_header(FILE *out, const struct bench_env *env);
/* The figures that compare across transports, which the output leads with:
 * each page push against its own ceiling, CPU and wakeups per checkpoint. */
void bench_report_comparable(FILE *out, const struct bench_env *env,
                             const struct bench_run *runs, size_t n);
void bench_report_run(FILE *out, const struct bench_env *env, const struct bench_run *r);
/* One line per run, for comparing transports and dirty sizes at a glance. */
void bench_report_table(FILE *out, const struct bench_env *env, const struct bench_run *runs,
                        size_t n);
/* Why absolute times under emulation favour tcp (printed when the device is soft). */
extern const char bench_emulation_sentence[];
/* 0, or -1 with the reason in err. */
int bench_report_json(const char *path, const struct bench_env *env, const struct bench_run *runs,
                      size_t n, char *err, size_t errlen);
int bench_report_csv(const char *path, const struct bench_env *env, const struct bench_run *runs,
                     size_t n, char *err, size_t errlen);

#endif
