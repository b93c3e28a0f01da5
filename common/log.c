/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process-wide log sink. The level is read without the lock so that a
 * disabled message costs one load; the sink itself is called under the
 * lock, so messages never interleave and once colo_set_log() returns the
 * previous sink is never called again. A message logged from inside the
 * sink (the sink calling into the library) is dropped instead of
 * deadlocking.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define LOG_MSG_MAX 1024

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static colo_log_fn log_fn;
static void *log_opaque;
static int log_level = -1; /* below COLO_LOG_ERROR: nothing passes */
static __thread bool in_sink;

static const char *level_name(int level)
{
    switch (level) {
    case COLO_LOG_ERROR:
        return "error";
    case COLO_LOG_WARNING:
        return "warning";
    case COLO_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* The default sink of COLO_RDMA_DEBUG: one line per message. */
static void stderr_sink(void *opaque, int level, const char *msg)
{
    fprintf(stderr, "colo-rdma: %s: %s\n", level_name(level), msg);
}

/* Before the first message or colo_set_log(): COLO_RDMA_DEBUG=1 (anything
 * but empty or "0") logs everything to stderr until a sink is set. */
static void log_init(void)
{
    const char *v = getenv("COLO_RDMA_DEBUG");

    if (!v || !v[0] || !strcmp(v, "0"))
        return;
    log_fn = stderr_sink;
    log_opaque = NULL;
    __atomic_store_n(&log_level, COLO_LOG_DEBUG, __ATOMIC_RELEASE);
}

int colo_set_log(colo_log_fn fn, void *opaque, int level)
{
    if (level < COLO_LOG_ERROR || level > COLO_LOG_DEBUG)
        return -EINVAL;
    if (in_sink)
        return -EDEADLK;
    pthread_once(&log_once, log_init);
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_opaque = opaque;
    __atomic_store_n(&log_level, fn ? level : -1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

bool colo_log_enabled(int level)
{
    pthread_once(&log_once, log_init);
    return level <= __atomic_load_n(&log_level, __ATOMIC_ACQUIRE) && !in_sink;
}

void colo_log(int level, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX];
    int saved = errno;
    va_list ap;

    if (!colo_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    /* Checked again under the lock: the sink may have changed meanwhile. */
    if (log_fn && level <= log_level) {
        in_sink = true;
        log_fn(log_opaque, level, msg);
        in_sink = false;
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved;
}
