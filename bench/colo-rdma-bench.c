/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * colo-rdma-bench: drives a primary and a secondary through checkpoints of
 * synthetic guest RAM and reports the pause time of each checkpoint and its
 * phases. This first version runs the uniform workload over tcp; see
 * --help.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <colo-rdma/colo-rdma.h>

#include "bench/options.h"
#include "bench/stats.h"
#include "bench/workload.h"

static void die(const char *what, int err)
{
    fprintf(stderr, "colo-rdma-bench: %s: %s (%s)\n", what, colo_errormsg(),
            colo_strerror(err));
    exit(1);
}

/* The same blocks on both sides: ram split into equal page-aligned blocks. */
static struct colo_config *make_config(const struct bench_options *o, uint8_t **ram)
{
    struct colo_config *cfg;
    uint64_t block_len = o->ram_bytes / o->blocks;
    int ret;

    *ram = mmap(NULL, o->ram_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*ram == MAP_FAILED) {
        fprintf(stderr, "colo-rdma-bench: cannot allocate %" PRIu64 " bytes of guest RAM: %s "
                "(use a smaller --ram)\n", o->ram_bytes, strerror(errno));
        exit(1);
    }
    ret = colo_config_new(&cfg);
    if (!ret)
        ret = colo_config_set_transport(cfg, o->transport);
    if (!ret)
        ret = colo_config_set_address(cfg, o->host, o->port);
    if (!ret)
        ret = colo_config_set_timeout_ms(cfg, o->timeout_ms);
    for (uint32_t i = 0; !ret && i < o->blocks; i++) {
        char name[32];

        snprintf(name, sizeof(name), "ram%" PRIu32, i);
        ret = colo_config_add_ram_block(cfg, name, *ram + i * block_len, block_len);
    }
    if (!ret && o->cache_path)
        ret = colo_config_set_cache_path(cfg, o->cache_path);
    if (ret)
        die("configuration", ret);
    return cfg;
}

static int run_secondary(const struct bench_options *o, int ready_fd)
{
    struct colo_listener *l;
    struct colo_session *s;
    struct colo_config *cfg;
    uint8_t *ram;
    int ret;

    cfg = make_config(o, &ram);
    ret = colo_listener_new(cfg, &l);
    if (ret)
        die("secondary", ret);
    if (ready_fd >= 0) {
        uint16_t port = colo_listener_port(l);

        if (write(ready_fd, &port, sizeof(port)) != sizeof(port))
            die("secondary: signalling the primary", -errno);
        close(ready_fd);
    } else {
        fprintf(stderr, "secondary: listening on port %u, cache %s\n", colo_listener_port(l),
                o->cache_path);
    }
    ret = colo_listener_accept(l, &s);
    if (ret)
        die("secondary: accept", ret);
    do {
        ret = colo_secondary_serve(s, NULL);
    } while (!ret);
    colo_session_close(&s);
    colo_listener_delete(&l);
    colo_config_delete(&cfg);
    munmap(ram, o->ram_bytes);
    if (ret != COLO_E_SHUTDOWN)
        die("secondary", ret);
    return 0;
}

/* Compares the secondary's cache file with the primary's RAM. */
static int verify_cache(const struct bench_options *o, const uint8_t *ram, uint64_t seq)
{
    FILE *f = fopen(o->cache_path, "rb");
    uint8_t buf[65536];
    uint64_t off = 0;
    int ret = 0;

    if (!f) {
        fprintf(stderr, "verify: cannot open the cache %s: %s\n", o->cache_path,
                strerror(errno));
        return -1;
    }
    while (off < o->ram_bytes) {
        size_t n = o->ram_bytes - off < sizeof(buf) ? o->ram_bytes - off : sizeof(buf);

        if (fread(buf, 1, n, f) != n || memcmp(buf, ram + off, n)) {
            fprintf(stderr, "verify: checkpoint %" PRIu64 ": cache differs from the primary's "
                    "RAM near byte %" PRIu64 "\n", seq, off);
            ret = -1;
            break;
        }
        off += n;
    }
    fclose(f);
    return ret;
}

static int run_primary(const struct bench_options *o)
{
    struct colo_checkpoint_stats st;
    struct bench_samples samples;
    struct colo_session *s;
    struct colo_config *cfg;
    struct bench_workload wl;
    uint8_t vmstate[4096];
    uint8_t *ram;
    int ret, failed = 0;

    cfg = make_config(o, &ram);
    ret = colo_primary_connect(cfg, &s);
    if (ret)
        die("primary: connect", ret);
    bench_samples_init(&samples, o->checkpoints);
    bench_workload_init(&wl, o, ram);
    printf("# colo-rdma-bench %s: transport %s, RAM %" PRIu64 " MiB in %" PRIu32
           " blocks, %" PRIu64 " dirty pages per checkpoint, seed %" PRIu64 "\n",
           colo_version(), o->transport, o->ram_bytes >> 20, o->blocks, o->dirty_pages, o->seed);
    if (o->per_checkpoint)
        printf("%6s %8s %10s %10s %10s %10s %10s %10s %10s\n", "#ckpt", "pages", "MiB", "total_us",
               "request", "pages", "state", "received", "loaded");
    for (uint64_t i = 0; i < o->checkpoints + o->warmup; i++) {
        size_t nruns = bench_workload_dirty(&wl, i == 0);

        memset(vmstate, (int)i, sizeof(vmstate));
        ret = colo_primary_checkpoint(s, wl.runs, nruns, vmstate, sizeof(vmstate), &st);
        if (ret)
            die("primary: checkpoint", ret);
        if (o->verify && verify_cache(o, ram, st.seq)) {
            failed = 1;
            break;
        }
        if (i < o->warmup)
            continue;
        bench_samples_add(&samples, &st);
        if (o->per_checkpoint)
            printf("%6" PRIu64 " %8" PRIu64 " %10.2f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n",
                   st.seq, st.pages, st.page_bytes / 1048576.0, st.total_ns / 1e3,
                   st.request_ns / 1e3, st.pages_ns / 1e3, st.state_ns / 1e3,
                   st.received_ns / 1e3, st.loaded_ns / 1e3);
    }
    if (!failed)
        bench_samples_report(&samples, stdout);
    colo_session_close(&s);
    bench_samples_free(&samples);
    bench_workload_free(&wl);
    colo_config_delete(&cfg);
    munmap(ram, o->ram_bytes);
    return failed;
}

static int run_loopback(struct bench_options *o)
{
    int fds[2], status, ret;
    uint16_t port;
    pid_t pid;

    if (pipe(fds))
        die("loopback: pipe", -errno);
    pid = fork();
    if (pid < 0)
        die("loopback: fork", -errno);
    if (pid == 0) {
        close(fds[0]);
        _exit(run_secondary(o, fds[1]));
    }
    close(fds[1]);
    if (read(fds[0], &port, sizeof(port)) != sizeof(port)) {
        waitpid(pid, &status, 0);
        fprintf(stderr, "colo-rdma-bench: the secondary did not start\n");
        return 1;
    }
    close(fds[0]);
    o->port = port;
    ret = run_primary(o);
    if (ret)
        kill(pid, SIGTERM);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "colo-rdma-bench: the secondary failed\n");
        ret = 1;
    }
    return ret;
}

int main(int argc, char **argv)
{
    struct bench_options o;
    int ret = bench_options_parse(&o, argc, argv, stderr);

    if (ret)
        return ret > 0 ? 0 : 2; /* > 0: --help was printed */
    if (o.loopback)
        ret = run_loopback(&o);
    else if (o.listen)
        ret = run_secondary(&o, -1);
    else
        ret = run_primary(&o);
    bench_options_free(&o);
    return ret;
}
