/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pump object both pumps share: timing and totals. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/pump_priv.h"

uint64_t bench_pump_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_pump_open(struct bench_pump **pp, const char *transport,
                    const struct bench_rdma_dev *d, const char *host,
                    const struct bench_pump_params *p, char *note, size_t len)
{
    struct bench_pump *pm = calloc(1, sizeof(*pm));
    int ret;

    *pp = NULL;
    if (!pm) {
        snprintf(note, len, "pump: out of memory");
        return -1;
    }
    pm->p = *p;
    if (!strcmp(transport, "rdma"))
        ret = bench_pump_rdma_open(&pm->impl, &pm->ops, d, &pm->p, note, len);
    else
        ret = bench_pump_tcp_open(&pm->impl, &pm->ops, host, &pm->p, note, len);
    if (ret) {
        free(pm);
        return -1;
    }
    *pp = pm;
    return 0;
}

int bench_pump_push(struct bench_pump *pm, const struct colo_dirty_run *runs, size_t nruns,
                    bool timed, uint64_t *ns, char *note, size_t len)
{
    uint64_t writes = 0, bytes = 0, t0 = bench_pump_now_ns(), t1;

    if (pm->ops->push(pm->impl, runs, nruns, &writes, note, len))
        return -1;
    t1 = bench_pump_now_ns();
    if (pm->ops->settle && pm->ops->settle(pm->impl, note, len))
        return -1;
    if (ns)
        *ns = t1 - t0;
    if (!timed)
        return 0;
    for (size_t i = 0; i < nruns; i++)
        bytes += runs[i].page_count * pm->p.page_size;
    pm->res.checkpoints++;
    pm->res.bytes += bytes;
    pm->res.writes += writes;
    pm->res.ns += t1 - t0;
    pm->res.gbytes = pm->res.ns ? (double)pm->res.bytes / (double)pm->res.ns : 0;
    return 0;
}

void bench_pump_result(const struct bench_pump *pm, struct bench_pump_result *res)
{
    *res = pm->res;
}

void bench_pump_describe(const struct bench_pump *pm, char *buf, size_t len)
{
    const struct bench_pump_result *r = &pm->res;
    bool rdma = !strcmp(pm->ops->name, "verbs pump");

    snprintf(buf, len, "%s: the run's %" PRIu64 " checkpoints again, each right after the "
             "library's, %" PRIu64 " %s of %" PRIu64 " bytes on average%s", pm->ops->name,
             r->checkpoints, r->writes, rdma ? "WRITEs" : "writes",
             r->writes ? r->bytes / r->writes : 0,
             rdma ? (pm->p.busy_poll ? ", busy poll" : ", events") : "");
}

void bench_pump_close(struct bench_pump **pp)
{
    struct bench_pump *pm = *pp;

    if (!pm)
        return;
    if (pm->ops && pm->impl)
        pm->ops->close(pm->impl);
    free(pm);
    *pp = NULL;
}
