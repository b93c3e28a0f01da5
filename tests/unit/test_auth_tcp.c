/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared-key authentication failures over tcp on loopback, through the
 * public API: a primary with another key (or none) than the secondary's, and
 * a proof cut in half on its way, by a proxy between the two that finds the
 * AUTH challenge in the stream (so it needs to know nothing of the hello
 * before it). Both sides' codes and messages are checked where the outcome
 * is fixed; a side whose outcome depends on how far the other got is only
 * cleaned up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <colo-rdma/colo-rdma.h>

#define RAM_LEN (64u << 10)

static char cache_path[64];

struct side {
    uint8_t *ram;
    struct colo_config *cfg;
};

static void side_init(struct side *sd, uint16_t port, const char *key)
{
    sd->ram = calloc(1, RAM_LEN);
    assert_non_null(sd->ram);
    assert_int_equal(colo_config_new(&sd->cfg), 0);
    assert_int_equal(colo_config_set_address(sd->cfg, "127.0.0.1", port), 0);
    assert_int_equal(colo_config_set_timeout_ms(sd->cfg, 10000), 0);
    assert_int_equal(colo_config_add_ram_block(sd->cfg, "pc.ram", sd->ram, RAM_LEN), 0);
    assert_int_equal(colo_config_set_cache_path(sd->cfg, cache_path), 0);
    if (key)
        assert_int_equal(colo_config_set_auth_key(sd->cfg, key, strlen(key)), 0);
}

static void side_fini(struct side *sd)
{
    colo_config_delete(&sd->cfg);
    free(sd->ram);
}

/* One colo_listener_accept() in a thread, its code and message kept. */
struct acceptor {
    struct colo_listener *l;
    struct colo_session *s;
    int ret;
    char why[512];
    pthread_t tid;
};

static void *accept_once(void *arg)
{
    struct acceptor *a = arg;

    a->ret = colo_listener_accept(a->l, &a->s);
    snprintf(a->why, sizeof(a->why), "%s", colo_errormsg());
    colo_session_close(&a->s); /* a session whose primary is gone: just closed */
    return NULL;
}

static void start_acceptor(struct acceptor *a, struct side *sec)
{
    memset(a, 0, sizeof(*a));
    assert_int_equal(colo_listener_new(sec->cfg, &a->l), 0);
    assert_int_equal(pthread_create(&a->tid, NULL, accept_once, a), 0);
}

static void stop_acceptor(struct acceptor *a)
{
    pthread_join(a->tid, NULL);
    colo_listener_delete(&a->l);
}

static int setup(void **state)
{
    strcpy(cache_path, "/tmp/colo-auth-test.XXXXXX");
    close(mkstemp(cache_path));
    return 0;
}

static int teardown(void **state)
{
    unlink(cache_path);
    return 0;
}

/* Different keys, or a key on one side only: both sides refuse, each
 * saying the other does not hold the key. */
static void test_wrong_key(void **state)
{
    static const struct {
        const char *sec_key, *pri_key;
    } table[] = {
        {"the right key", "a wrong key"},
        {"the right key", NULL},
        {NULL, "a key"},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct side sec, pri;
        struct acceptor a;
        struct colo_session *p = NULL;

        side_init(&sec, 0, table[i].sec_key);
        start_acceptor(&a, &sec);
        side_init(&pri, colo_listener_port(a.l), table[i].pri_key);
        assert_int_equal(colo_primary_connect(pri.cfg, &p), COLO_E_AUTH);
        assert_string_equal(colo_errormsg(),
                            "authentication failed: the secondary does not hold the same key");
        assert_null(p);
        stop_acceptor(&a);
        assert_int_equal(a.ret, COLO_E_AUTH);
        assert_string_equal(a.why,
                            "authentication failed: the primary does not hold the same key");
        assert_null(a.s);
        side_fini(&pri);
        side_fini(&sec);
    }
}

/*
 * A proxy between primary and secondary that forwards both ways until, in
 * direction cut (0: primary to secondary, 1: back), the AUTH challenge has
 * passed with its nonce and half of the proof after it; then that direction
 * ends (FIN after those bytes) and the connection is taken down.
 */
struct proxy {
    int lfd;
    uint16_t port;   /* where the primary connects */
    uint16_t target; /* the secondary's port */
    int cut;
    pthread_t tid;
};

#define AUTH_NONCE 32
#define AUTH_PROOF 32

static int connect_to(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static bool send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static void *proxy_run(void *arg)
{
    struct proxy *px = arg;
    int fd[2];
    uint32_t window = 0;  /* the last 4 bytes of the cut direction */
    long left = -1;       /* bytes still to forward after the magic, -1: not seen */
    uint8_t buf[4096];

    fd[0] = accept(px->lfd, NULL, NULL);
    fd[1] = connect_to(px->target);
    for (;;) {
        struct pollfd p[2] = {{.fd = fd[0], .events = POLLIN}, {.fd = fd[1], .events = POLLIN}};

        if (poll(p, 2, 10000) <= 0)
            break;
        for (int d = 0; d < 2; d++) {
            ssize_t n;
            size_t k = 0;

            if (!p[d].revents)
                continue;
            n = recv(fd[d], buf, sizeof(buf), 0);
            if (n <= 0)
                goto out;
            if (d != px->cut) {
                if (!send_all(fd[1 - d], buf, (size_t)n))
                    goto out;
                continue;
            }
            for (; k < (size_t)n && left != 0; k++) {
                if (left > 0) {
                    left--;
                    continue;
                }
                window = window << 8 | buf[k];
                if (window == 0x41555448u) /* "AUTH" */
                    left = AUTH_NONCE + AUTH_PROOF / 2;
            }
            if (!send_all(fd[1 - d], buf, k))
                goto out;
            if (left == 0) {
                /* The receiver gets the half proof, then the end of the
                 * stream; the sender is cut off. */
                int rx = fd[1 - d];

                shutdown(rx, SHUT_WR);
                close(fd[d]);
                while (recv(rx, buf, sizeof(buf), 0) > 0)
                    ;
                close(rx);
                return NULL;
            }
        }
    }
out:
    close(fd[0]);
    close(fd[1]);
    return NULL;
}

static void start_proxy(struct proxy *px, uint16_t target, int cut)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);

    px->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    px->target = target;
    px->cut = cut;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(px->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(px->lfd, 1), 0);
    assert_int_equal(getsockname(px->lfd, (struct sockaddr *)&a, &alen), 0);
    px->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&px->tid, NULL, proxy_run, px), 0);
}

static void stop_proxy(struct proxy *px)
{
    pthread_join(px->tid, NULL);
    close(px->lfd);
}

/* The primary's proof arrives half: the secondary refuses, saying so. */
static void test_truncated_proof_to_the_secondary(void **state)
{
    struct side sec, pri;
    struct acceptor a;
    struct proxy px;
    struct colo_session *p = NULL;

    side_init(&sec, 0, "key");
    start_acceptor(&a, &sec);
    start_proxy(&px, colo_listener_port(a.l), 0);
    side_init(&pri, px.port, "key");
    /* the primary fails too, at a point that depends on how far it got */
    assert_int_not_equal(colo_primary_connect(pri.cfg, &p), 0);
    assert_null(p);
    stop_acceptor(&a);
    stop_proxy(&px);
    assert_int_equal(a.ret, COLO_E_PEER_LOST);
    assert_string_equal(a.why, "tcp: the peer closed the connection while waiting for the peer "
                               "(16 of 32 bytes arrived)");
    assert_null(a.s);
    side_fini(&pri);
    side_fini(&sec);
}

/* The secondary's proof arrives half: the primary refuses, saying so. */
static void test_truncated_proof_to_the_primary(void **state)
{
    struct side sec, pri;
    struct acceptor a;
    struct proxy px;
    struct colo_session *p = NULL;

    side_init(&sec, 0, "key");
    start_acceptor(&a, &sec);
    start_proxy(&px, colo_listener_port(a.l), 1);
    side_init(&pri, px.port, "key");
    assert_int_equal(colo_primary_connect(pri.cfg, &p), COLO_E_PEER_LOST);
    assert_string_equal(colo_errormsg(), "tcp: the peer closed the connection while waiting "
                                         "for the peer (16 of 32 bytes arrived)");
    assert_null(p);
    stop_proxy(&px);
    stop_acceptor(&a); /* the secondary's outcome depends on how far it got */
    side_fini(&pri);
    side_fini(&sec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_proof_to_the_secondary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_proof_to_the_primary, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
