/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/spawn.h"

bool bench_have_program(const char *name)
{
    const char *path = getenv("PATH");
    char *dirs, *save = NULL;
    bool found = false;

    if (strchr(name, '/'))
        return access(name, X_OK) == 0;
    dirs = strdup(path ? path : "/usr/bin:/bin");
    if (!dirs)
        return false;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char full[4096];

        snprintf(full, sizeof(full), "%s/%s", d, name);
        found = access(full, X_OK) == 0;
    }
    free(dirs);
    return found;
}

static pid_t spawn(char *const argv[], int out_fd)
{
    pid_t pid = fork();

    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        dup2(null, 0);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        dup2(out_fd >= 0 ? out_fd : null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int bench_stop(pid_t pid, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
}

pid_t bench_start(char *const argv[])
{
    return spawn(argv, -1);
}

int bench_run(char *const argv[], uint32_t timeout_ms, char **output)
{
    uint64_t deadline = now_ms() + timeout_ms;
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    int fds[2];
    pid_t pid;

    if (!output) {
        pid = spawn(argv, -1);
        return pid < 0 ? -1 : bench_stop(pid, timeout_ms);
    }
    *output = NULL;
    if (pipe2(fds, O_CLOEXEC))
        return -1;
    pid = spawn(argv, fds[1]);
    close(fds[1]);
    buf = malloc(cap);
    if (pid < 0 || !buf) {
        close(fds[0]);
        free(buf);
        return pid < 0 ? -1 : bench_stop(pid, 0);
    }
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        uint64_t now = now_ms();
        ssize_t n;

        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            break;
        if (len + 1024 > cap) {
            char *nb = realloc(buf, cap * 2);

            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        n = read(fds[0], buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    buf[len] = '\0';
    *output = buf;
    return bench_stop(pid, deadline > now_ms() ? (uint32_t)(deadline - now_ms()) : 0);
}
