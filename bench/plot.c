/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench/plot.h"
#include "bench/spawn.h"

int bench_plot_check(const char *path, char *err, size_t errlen)
{
    if (strpbrk(path, "'\n\\")) {
        snprintf(err, errlen, "--plot %s: quotes, backslashes and newlines are not supported in "
                 "the file name", path);
        return -1;
    }
    if (!bench_have_program("gnuplot")) {
        snprintf(err, errlen, "--plot needs gnuplot, which is not installed: apt-get install "
                 "gnuplot-nox (or drop --plot)");
        return -1;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sorted pauses and their cumulative fraction, one file per run. */
static int write_cdf(const char *file, const struct bench_run *r)
{
    uint64_t *v = malloc((r->samples.n ? r->samples.n : 1) * sizeof(*v));
    FILE *f = fopen(file, "w");

    if (!v || !f) {
        free(v);
        if (f)
            fclose(f);
        return -1;
    }
    for (size_t i = 0; i < r->samples.n; i++)
        v[i] = r->samples.v[i].total_ns;
    qsort(v, r->samples.n, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < r->samples.n; i++)
        fprintf(f, "%.3f %.6f\n", (double)v[i] / 1e3, (double)(i + 1) / (double)r->samples.n);
    free(v);
    return fclose(f);
}

/* Series of the pause-vs-dirty plot: two transports, each with and without push. */
#define PLOT_SERIES 4

struct series {
    const char *label[PLOT_SERIES];
    int points[PLOT_SERIES];
    unsigned n;
};

/* The distinct run labels, in run order. */
static void find_series(struct series *sr, const struct bench_run *runs, size_t n)
{
    memset(sr, 0, sizeof(*sr));
    for (size_t i = 0; i < n && sr->n < PLOT_SERIES; i++) {
        unsigned k = 0;

        while (k < sr->n && strcmp(sr->label[k], bench_run_name(&runs[i])))
            k++;
        if (k == sr->n)
            sr->label[sr->n++] = bench_run_name(&runs[i]);
    }
}

/* dirty, median, p99 of every run of one series (transport, push variant). */
static int write_dirty(const char *file, const char *label, const struct bench_run *runs,
                       size_t n, int *points)
{
    FILE *f = fopen(file, "w");

    *points = 0;
    if (!f)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (runs[i].status != BENCH_RUN_OK || strcmp(bench_run_name(&runs[i]), label))
            continue;
        fprintf(f, "%" PRIu64 " %.3f %.3f\n", runs[i].dirty, runs[i].phase[BENCH_PAUSE].median / 1e3,
                runs[i].phase[BENCH_PAUSE].p99 / 1e3);
        ++*points;
    }
    return fclose(f);
}

static void remove_dir(const char *dir, size_t nfiles)
{
    char file[4200];

    for (size_t i = 0; i < nfiles; i++) {
        snprintf(file, sizeof(file), "%s/cdf-%zu.dat", dir, i);
        unlink(file);
    }
    for (size_t i = 0; i < PLOT_SERIES; i++) {
        snprintf(file, sizeof(file), "%s/dirty-%zu.dat", dir, i);
        unlink(file);
    }
    snprintf(file, sizeof(file), "%s/plot.gp", dir);
    unlink(file);
    rmdir(dir);
}

static int write_script(FILE *gp, const char *dir, const char *path, const struct bench_env *env,
                        const struct bench_run *runs, size_t n, const struct series *sr)
{
    const struct bench_options *o = env->o;
    bool png = strlen(path) > 4 && !strcasecmp(path + strlen(path) - 4, ".png");
    const char *sep = "";

    if (png)
        fprintf(gp, "set terminal pngcairo size 1400,560 noenhanced\n");
    else
        fprintf(gp, "set terminal svg size 1400,560 dynamic noenhanced background rgb 'white'\n");
    fprintf(gp, "set output '%s'\nset grid\n", path);
    fprintf(gp, "set multiplot layout 1,2 title 'colo-rdma-bench %s: %s workload, %" PRIu64
                " MiB RAM, %" PRIu64 " checkpoints per row'\n",
            env->version, bench_workload_name(o->workload), o->ram_bytes >> 20, o->checkpoints);
    fprintf(gp, "set title 'checkpoint pause, CDF'\nset xlabel 'pause (us)'\n"
                "set ylabel 'fraction of checkpoints'\nset logscale x\nset key bottom right\n"
                "plot ");
    for (size_t i = 0; i < n; i++) {
        if (runs[i].status != BENCH_RUN_OK)
            continue;
        fprintf(gp, "%s'%s/cdf-%zu.dat' using 1:2 with steps lw 2 title '%s, %" PRIu64
                    " pages'", sep, dir, i, bench_run_name(&runs[i]), runs[i].dirty);
        sep = ", ";
    }
    fprintf(gp, "\nunset logscale x\nset title 'pause vs dirty-set size'\n"
                "set xlabel 'dirty pages per checkpoint'\nset ylabel 'pause (us)'\n"
                "set key top left\nplot ");
    sep = "";
    for (unsigned t = 0; t < sr->n; t++) {
        if (!sr->points[t])
            continue;
        fprintf(gp, "%s'%s/dirty-%u.dat' using 1:2 with linespoints lw 2 title '%s median', "
                    "'%s/dirty-%u.dat' using 1:3 with linespoints dt 2 title '%s p99'",
                sep, dir, t, sr->label[t], dir, t, sr->label[t]);
        sep = ", ";
    }
    fprintf(gp, "\nunset multiplot\n");
    return ferror(gp) ? -1 : 0;
}

int bench_plot(const char *path, const struct bench_env *env, const struct bench_run *runs,
               size_t n, char *err, size_t errlen)
{
    char dir[] = "/tmp/colo-rdma-bench-plot.XXXXXX", file[4200];
    char *argv[] = {"gnuplot", file, NULL}, *out = NULL;
    struct series sr;
    int ok = 0, ret = -1, status;
    FILE *gp;

    for (size_t i = 0; i < n; i++)
        ok += runs[i].status == BENCH_RUN_OK && runs[i].samples.n;
    if (!ok) {
        snprintf(err, errlen, "--plot: no run has samples to draw");
        return -1;
    }
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "--plot: mkdtemp: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(file, sizeof(file), "%s/cdf-%zu.dat", dir, i);
        if (runs[i].status == BENCH_RUN_OK && write_cdf(file, &runs[i]))
            goto out;
    }
    find_series(&sr, runs, n);
    for (unsigned t = 0; t < sr.n; t++) {
        snprintf(file, sizeof(file), "%s/dirty-%u.dat", dir, t);
        if (write_dirty(file, sr.label[t], runs, n, &sr.points[t]))
            goto out;
    }
    snprintf(file, sizeof(file), "%s/plot.gp", dir);
    gp = fopen(file, "w");
    if (!gp || write_script(gp, dir, path, env, runs, n, &sr) | fclose(gp))
        goto out;
    status = bench_run(argv, 60000, &out);
    if (status) {
        char *nl;

        if (out && (nl = strrchr(out, '\n')) && nl == out + strlen(out) - 1)
            *nl = '\0';
        snprintf(err, errlen, "--plot: gnuplot failed (status %d): %.300s", status,
                 out ? out : "");
        free(out);
        remove_dir(dir, n);
        return -1;
    }
    free(out);
    ret = 0;
out:
    if (ret)
        snprintf(err, errlen, "--plot: cannot write the data in %s: %s", dir, strerror(errno));
    remove_dir(dir, n);
    return ret;
}
