/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * colo_set_log() through the public API: a tcp session on loopback reports
 * connect, accept, each checkpoint's phases (debug), the primary's goodbye
 * and close; a failed connect reports the error; the level filters; a NULL
 * callback turns it all off.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <colo-rdma/colo-rdma.h>

#define RAM_LEN (64u << 10)
#define MAX_MSGS 256

static pthread_mutex_t msgs_lock = PTHREAD_MUTEX_INITIALIZER;
static char msgs[MAX_MSGS][1024];
static int levels[MAX_MSGS];
static int nmsgs;
static char cache_path[64];

static void record(void *opaque, int level, const char *msg)
{
    int *calls = opaque;

    pthread_mutex_lock(&msgs_lock);
    (*calls)++;
    if (nmsgs < MAX_MSGS) {
        snprintf(msgs[nmsgs], sizeof(msgs[nmsgs]), "%s", msg);
        levels[nmsgs++] = level;
    }
    pthread_mutex_unlock(&msgs_lock);
}

static void reset(void)
{
    pthread_mutex_lock(&msgs_lock);
    nmsgs = 0;
    pthread_mutex_unlock(&msgs_lock);
}

/* The level of the first message containing what, or -1. */
static int find(const char *what)
{
    int level = -1;

    pthread_mutex_lock(&msgs_lock);
    for (int i = 0; i < nmsgs && level < 0; i++)
        if (strstr(msgs[i], what))
            level = levels[i];
    pthread_mutex_unlock(&msgs_lock);
    if (level < 0) {
        for (int i = 0; i < nmsgs; i++)
            print_message("  logged: %s\n", msgs[i]);
        print_message("missing: %s\n", what);
    }
    return level;
}

static int count_level(int level)
{
    int n = 0;

    pthread_mutex_lock(&msgs_lock);
    for (int i = 0; i < nmsgs; i++)
        n += levels[i] == level;
    pthread_mutex_unlock(&msgs_lock);
    return n;
}

struct secondary {
    struct colo_config *cfg;
    struct colo_listener *l;
    pthread_t tid;
    uint8_t *ram;
    int last_ret;
};

static void *serve(void *arg)
{
    struct secondary *sec = arg;
    struct colo_session *s;
    int ret = colo_listener_accept(sec->l, &s);

    if (!ret) {
        while (!(ret = colo_secondary_serve(s, NULL)))
            ;
        colo_session_close(&s);
    }
    sec->last_ret = ret;
    return NULL;
}

static struct colo_config *config(uint8_t **ram, uint16_t port)
{
    struct colo_config *cfg;

    *ram = calloc(1, RAM_LEN);
    assert_non_null(*ram);
    assert_int_equal(colo_config_new(&cfg), 0);
    assert_int_equal(colo_config_set_address(cfg, "127.0.0.1", port), 0);
    assert_int_equal(colo_config_set_timeout_ms(cfg, 10000), 0);
    assert_int_equal(colo_config_add_ram_block(cfg, "ram", *ram, RAM_LEN), 0);
    assert_int_equal(colo_config_set_cache_path(cfg, cache_path), 0);
    return cfg;
}

/* Two checkpoints over tcp on loopback, then an orderly close. */
static void run_session(void)
{
    struct colo_dirty_run run = {.block = 0, .first_page = 1, .page_count = 2};
    struct colo_config *pcfg;
    struct colo_session *p;
    struct secondary sec;
    uint8_t *pram;

    memset(&sec, 0, sizeof(sec));
    sec.cfg = config(&sec.ram, 0);
    assert_int_equal(colo_listener_new(sec.cfg, &sec.l), 0);
    assert_int_equal(pthread_create(&sec.tid, NULL, serve, &sec), 0);
    pcfg = config(&pram, colo_listener_port(sec.l));
    assert_int_equal(colo_primary_connect(pcfg, &p), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(colo_primary_checkpoint(p, &run, 1, "state", 5, NULL), 0);
    colo_session_close(&p);
    pthread_join(sec.tid, NULL);
    assert_int_equal(sec.last_ret, COLO_E_SHUTDOWN);
    colo_listener_delete(&sec.l);
    colo_config_delete(&sec.cfg);
    colo_config_delete(&pcfg);
    free(sec.ram);
    free(pram);
}

/* A primary connecting to a port nobody listens on. */
static void failed_connect(void)
{
    struct colo_config *cfg, *lcfg;
    struct colo_listener *l;
    struct colo_session *p = NULL;
    uint8_t *ram, *lram;
    uint16_t port;

    lcfg = config(&lram, 0);
    assert_int_equal(colo_listener_new(lcfg, &l), 0);
    port = colo_listener_port(l);
    colo_listener_delete(&l);
    cfg = config(&ram, port);
    assert_int_not_equal(colo_primary_connect(cfg, &p), 0);
    assert_null(p);
    colo_config_delete(&cfg);
    colo_config_delete(&lcfg);
    free(ram);
    free(lram);
}

static void test_session_messages(void **state)
{
    int calls = 0;

    reset();
    assert_int_equal(colo_set_log(record, &calls, COLO_LOG_DEBUG), 0);
    run_session();
    assert_int_equal(find("primary: connected to 127.0.0.1 port"), COLO_LOG_INFO);
    assert_int_equal(find("over tcp, protocol version 2 (epoch"), COLO_LOG_INFO);
    assert_int_equal(find("tcp: connection from 127.0.0.1 port"), COLO_LOG_INFO);
    assert_int_equal(find("secondary: accepted a primary over tcp"), COLO_LOG_INFO);
    assert_int_equal(find("primary: checkpoint 1: request sent"), COLO_LOG_DEBUG);
    assert_int_equal(find("primary: checkpoint 1: 2 pages in 1 runs pushed"), COLO_LOG_DEBUG);
    assert_int_equal(find("primary: checkpoint 2: 5 bytes of device state sent"),
                     COLO_LOG_DEBUG);
    assert_int_equal(find("primary: checkpoint 2: vmstate-received"), COLO_LOG_DEBUG);
    assert_int_equal(find("primary: checkpoint 2: vmstate-loaded"), COLO_LOG_DEBUG);
    assert_int_equal(find("secondary: checkpoint 1: request received"), COLO_LOG_DEBUG);
    assert_int_equal(find("secondary: checkpoint 1: dirty list of 1 runs (2 pages) validated"),
                     COLO_LOG_DEBUG);
    assert_int_equal(find("secondary: checkpoint 2: persisted"), COLO_LOG_DEBUG);
    assert_int_equal(find("secondary: checkpoint 2: applied and loaded"), COLO_LOG_DEBUG);
    assert_int_equal(find("secondary: primary ended the session after checkpoint 2"),
                     COLO_LOG_INFO);
    assert_int_equal(find("primary: session over tcp closed after checkpoint 2"), COLO_LOG_INFO);
    assert_int_equal(find("secondary: session over tcp closed after checkpoint 2"),
                     COLO_LOG_INFO);
    assert_int_equal(count_level(COLO_LOG_ERROR), 0);
    assert_true(calls > 0);

    /* A failure is an error, with colo_errormsg()'s text. */
    reset();
    failed_connect();
    assert_int_equal(find("primary: connecting to 127.0.0.1 port"), COLO_LOG_ERROR);
    assert_int_equal(find("over tcp failed: tcp:"), COLO_LOG_ERROR);

    /* The level filters: info shows no checkpoint phases. */
    reset();
    assert_int_equal(colo_set_log(record, &calls, COLO_LOG_INFO), 0);
    run_session();
    assert_int_equal(find("primary: connected to"), COLO_LOG_INFO);
    assert_int_equal(count_level(COLO_LOG_DEBUG), 0);

    /* NULL turns it off. */
    assert_int_equal(colo_set_log(NULL, NULL, COLO_LOG_DEBUG), 0);
    reset();
    calls = 0;
    run_session();
    failed_connect();
    assert_int_equal(calls, 0);
    assert_int_equal(nmsgs, 0);
}

static void test_bad_level(void **state)
{
    assert_int_equal(colo_set_log(record, NULL, COLO_LOG_DEBUG + 1), -EINVAL);
    assert_int_equal(colo_set_log(record, NULL, -1), -EINVAL);
}

static int setup(void **state)
{
    int fd;

    strcpy(cache_path, "/tmp/colo-log-test.XXXXXX");
    fd = mkstemp(cache_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    colo_set_log(NULL, NULL, COLO_LOG_ERROR);
    unlink(cache_path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_messages),
        cmocka_unit_test(test_bad_level),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
