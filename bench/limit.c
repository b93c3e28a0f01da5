/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "colo-rdma-config.h"
#include "bench/limit.h"
#include "bench/spawn.h"

#if HAVE_RDMA
#include <infiniband/verbs.h>

/* ibv_query_device on the device named d->name, into d->limits. */
static void device_limits(struct bench_rdma_dev *d)
{
    struct ibv_device **list = ibv_get_device_list(NULL);
    struct ibv_context *ctx = NULL;
    struct ibv_device_attr a;

    for (int i = 0; list && list[i] && !ctx; i++)
        if (!strcmp(ibv_get_device_name(list[i]), d->name))
            ctx = ibv_open_device(list[i]);
    if (ctx && !ibv_query_device(ctx, &a)) {
        d->limits = (struct bench_dev_limits){
            .known = true, .max_mr_size = a.max_mr_size, .max_qp_wr = (uint32_t)a.max_qp_wr,
            .max_sge = (uint32_t)a.max_sge, .max_cqe = (uint32_t)a.max_cqe,
            .max_mr = (uint32_t)a.max_mr, .max_qp = (uint32_t)a.max_qp,
            .max_qp_rd_atom = (uint32_t)a.max_qp_rd_atom,
        };
    }
    if (ctx)
        ibv_close_device(ctx);
    if (list)
        ibv_free_device_list(list);
}
#else
static void device_limits(struct bench_rdma_dev *d)
{
    (void)d;
}
#endif

/* Names go on command lines: keep them to what device names look like. */
static bool safe_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.' || *s == ':'))
            return false;
    return true;
}

/* The first device in ibv_devices' table (after the two header lines). */
static void first_device(char *name, size_t len)
{
    char *argv[] = {"ibv_devices", NULL}, *out = NULL, *save = NULL, *line;
    int n = 0;

    name[0] = '\0';
    if (!bench_have_program("ibv_devices") || bench_run(argv, 5000, &out) != 0) {
        free(out);
        return;
    }
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char dev[64];

        if (++n > 2 && sscanf(line, " %63s", dev) == 1 && safe_name(dev)) {
            snprintf(name, len, "%s", dev);
            break;
        }
    }
    free(out);
}

/* "port 1 PORT_ACTIVE, active_mtu 4096" from ibv_devinfo. */
static void device_info(struct bench_rdma_dev *d)
{
    char *argv[] = {"ibv_devinfo", "-d", d->name, NULL}, *out = NULL, *save = NULL, *line;
    char port[16] = "?", state[32] = "?", mtu[32] = "?";

    if (bench_have_program("ibv_devinfo") && bench_run(argv, 5000, &out) == 0) {
        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (!strcmp(port, "?"))
                sscanf(line, " port: %15s", port);
            if (!strcmp(state, "?"))
                sscanf(line, " state: %31s", state);
            if (!strcmp(mtu, "?"))
                sscanf(line, " active_mtu: %31s", mtu);
        }
    }
    free(out);
    snprintf(d->info, sizeof(d->info), "%s port %s %s, active MTU %s", d->name, port, state,
             mtu);
}

void bench_rdma_dev_detect(struct bench_rdma_dev *d)
{
    const char *env = getenv("COLO_RDMA_DEV"), *addr = getenv("COLO_RDMA_ADDR");

    *d = (struct bench_rdma_dev){0};
    if (env && safe_name(env))
        snprintf(d->name, sizeof(d->name), "%s", env);
    else
        first_device(d->name, sizeof(d->name));
    snprintf(d->addr, sizeof(d->addr), "%s", addr && safe_name(addr) ? addr : "127.0.0.1");
    if (!d->name[0]) {
        snprintf(d->info, sizeof(d->info), "none (ibv_devices lists no device; "
                 "COLO_RDMA_DEV unset)");
        return;
    }
    d->present = true;
    /* soft-RoCE and soft-iWARP: the "device" is the kernel, on the bench's own CPUs */
    d->soft = !strncmp(d->name, "rxe", 3) || !strncmp(d->name, "siw", 3);
    device_info(d);
    device_limits(d);
}

/* A port nobody listens on now, for ib_write_bw's out-of-band exchange. */
static uint16_t free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;

    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port ? port : 18517;
}

int bench_parse_write_bw(const char *out, double *gbits)
{
    const char *hdr = strstr(out, "#bytes");
    const char *nl = hdr ? strchr(hdr, '\n') : NULL;
    uint64_t bytes, iters;
    double peak, avg;

    if (!nl || sscanf(nl + 1, " %" SCNu64 " %" SCNu64 " %lf %lf", &bytes, &iters, &peak,
                      &avg) != 4 || !(avg > 0))
        return -1; /* perftest prints 0 when its measurement broke */
    *gbits = avg;
    return 0;
}

/*
 * Runs a perftest server and its client against it on the same device and
 * address, and parses the client's result line. 0, or -1 with the reason.
 */
static int perftest_pair(const struct bench_rdma_dev *d, char **srv, char **cli,
                         int (*parse)(const char *out, double *v), double *v, char *note,
                         size_t len)
{
    const char *prog = srv[0];
    char *out = NULL;
    int ret = -1;
    pid_t server;

    if (!d->present) {
        snprintf(note, len, "no RDMA device");
        return -1;
    }
    if (!bench_have_program(prog)) {
        snprintf(note, len, "%s not installed (apt-get install perftest)", prog);
        return -1;
    }
    server = bench_start(srv);
    if (server < 0) {
        snprintf(note, len, "cannot start %s", prog);
        return -1;
    }
    /* the server needs a moment to listen; the client fails fast until it does */
    for (int attempt = 0; attempt < 20 && ret; attempt++) {
        bool ran;

        usleep(200000);
        free(out);
        out = NULL;
        ran = bench_run(cli, 60000, &out) == 0;
        if (ran && out && !parse(out, v))
            ret = 0;
        else if (ran)
            break; /* it ran but reported nothing usable: the server is gone too */
    }
    bench_stop(server, 5000);
    if (ret)
        snprintf(note, len, "%s on %s failed or reported no figure", prog, d->name);
    free(out);
    return ret;
}

int bench_limit_measure(const struct bench_rdma_dev *d, const struct bench_write_bw_shape *s,
                        double *gbytes_per_s, char *note, size_t len)
{
    char size[24], depth[16], mod[16], list[16], dur[16], port[8];
    /* -F: no cpufreq warning; BW average of the middle duration - 2 s (-f 1) */
#define WRITE_BW_ARGS(...)                                                                  \
    {"ib_write_bw", "-d", (char *)d->name, "-p", port, "-s", size, "-t", depth, "-Q", mod,   \
     "-l", list, "-D", dur, "-f", "1", "--use_old_post_send", "-F", "--report_gbits",        \
     __VA_ARGS__ NULL}
    char *srv[] = WRITE_BW_ARGS();
    char *cli[] = WRITE_BW_ARGS((char *)d->addr, );
#undef WRITE_BW_ARGS
    double gbits = 0;

    snprintf(size, sizeof(size), "%" PRIu64, s->size);
    snprintf(depth, sizeof(depth), "%" PRIu32, s->tx_depth);
    snprintf(mod, sizeof(mod), "%" PRIu32, s->cq_mod);
    snprintf(list, sizeof(list), "%" PRIu32, s->post_list);
    snprintf(dur, sizeof(dur), "%" PRIu32, s->duration);
    snprintf(port, sizeof(port), "%u", free_port());
    if (perftest_pair(d, srv, cli, bench_parse_write_bw, &gbits, note, len))
        return -1;
    *gbytes_per_s = gbits / 8;
    return 0;
}

/* t_typical of the data line after the "#bytes" header (the 5th column). */
static int parse_lat(const char *out, double *us)
{
    const char *hdr = strstr(out, "#bytes");
    const char *nl = hdr ? strchr(hdr, '\n') : NULL;
    uint64_t bytes, iters;
    double tmin, tmax, typical;

    if (!nl || sscanf(nl + 1, " %" SCNu64 " %" SCNu64 " %lf %lf %lf", &bytes, &iters, &tmin,
                      &tmax, &typical) != 5)
        return -1;
    *us = typical;
    return 0;
}

int bench_latency_measure(const struct bench_rdma_dev *d, bool events, double *one_way_us,
                          char *note, size_t len)
{
    char port[8];
    /* without -e the last argument is the end of the list */
    char *srv[] = {"ib_send_lat", "-d", (char *)d->name, "-p", port, "-s", "64", "-n", "1000",
                   "-F", events ? "-e" : NULL, NULL};
    char *cli[] = {"ib_send_lat", "-d", (char *)d->name, "-p", port, "-s", "64", "-n", "1000",
                   "-F", (char *)d->addr, events ? "-e" : NULL, NULL};

    snprintf(port, sizeof(port), "%u", free_port());
    return perftest_pair(d, srv, cli, parse_lat, one_way_us, note, len);
}
