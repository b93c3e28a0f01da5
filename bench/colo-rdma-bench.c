/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * colo-rdma-bench: drives a primary and a secondary through checkpoints of
 * synthetic guest RAM and reports the pause of each checkpoint and its
 * phases, per transport and dirty-set size. The roles live in primary.c and
 * secondary.c; this file picks them (and forks both for --loopback).
 */
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/options.h"
#include "bench/roles.h"

static int run_loopback(const struct bench_options *o)
{
    const char *host;
    int fds[2], status, ret;
    uint16_t port;
    pid_t pid;

    if (pipe(fds)) {
        fprintf(stderr, "colo-rdma-bench: loopback: pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "colo-rdma-bench: loopback: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        _exit(bench_secondary_main(o, fds[1]));
    }
    close(fds[1]);
    if (read(fds[0], &port, sizeof(port)) != sizeof(port)) {
        close(fds[0]);
        waitpid(pid, &status, 0);
        fprintf(stderr, "colo-rdma-bench: loopback: the secondary did not start\n");
        return 1;
    }
    close(fds[0]);
    /* rdma needs the address of an RDMA device: COLO_RDMA_ADDR (vm-run sets it). */
    host = getenv("COLO_RDMA_ADDR");
    ret = bench_primary_main(o, host && *host ? host : "127.0.0.1", port);
    if (ret && waitpid(pid, &status, WNOHANG) == 0) {
        /* it may still wait for a connection that will not come: give it a moment */
        for (int i = 0; i < 20 && waitpid(pid, &status, WNOHANG) == 0; i++)
            usleep(50000);
        kill(pid, SIGTERM);
    }
    if (waitpid(pid, &status, 0) == pid && (!WIFEXITED(status) || WEXITSTATUS(status)) && !ret) {
        fprintf(stderr, "colo-rdma-bench: loopback: the secondary failed\n");
        ret = 1;
    }
    return ret;
}

int main(int argc, char **argv)
{
    struct bench_options o;
    int ret = bench_options_parse(&o, argc, argv, stdout, stderr);

    signal(SIGPIPE, SIG_IGN); /* a lost peer is an error return, not a signal */
    if (ret) {
        bench_options_free(&o);
        return ret > 0 ? 0 : 2; /* > 0: --help was printed */
    }
    if (o.loopback)
        ret = run_loopback(&o);
    else if (o.listen)
        ret = bench_secondary_main(&o, -1);
    else
        ret = bench_primary_main(&o, o.host, o.port);
    bench_options_free(&o);
    return ret;
}
