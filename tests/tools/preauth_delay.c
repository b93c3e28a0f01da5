/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How long peers without the key delay a real primary over tcp on loopback:
 *   preauth_delay silent|drip [PEERS [AFTER_MS [DRIP_MS]]]
 * PEERS hostile connections (default 1) open first: silent ones say
 * nothing, dripping ones send a hello that passes (the secondary's own with
 * the role turned) one byte every DRIP_MS (default 700). AFTER_MS later
 * (default 1000) a primary with the key connects; printed: how long its
 * colo_primary_connect() took. Library defaults otherwise (timeouts 30 s,
 * handshake deadline 5 s since 0.4).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <colo-rdma/colo-rdma.h>

static uint8_t ram_p[1 << 20], ram_s[1 << 20];
static struct colo_listener *listener;
static uint16_t port;
static int drip_ms = 700;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int raw_connect(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static void *drip(void *arg)
{
    int fd = raw_connect();
    uint8_t hello[40];
    size_t got = 0;

    while (got < sizeof(hello)) {
        ssize_t n = recv(fd, hello + got, sizeof(hello) - got, 0);

        if (n <= 0)
            return NULL;
        got += (size_t)n;
    }
    hello[7] = 0;
    for (size_t i = 0; i < sizeof(hello); i++) {
        usleep((useconds_t)drip_ms * 1000);
        if (send(fd, hello + i, 1, MSG_NOSIGNAL) != 1)
            return NULL;
    }
    pause();
    return NULL;
}

static void *serve(void *arg)
{
    for (;;) {
        struct colo_session *s;

        if (colo_listener_accept(listener, &s)) {
            fprintf(stderr, "  secondary: accept: %s\n", colo_errormsg());
            continue;
        }
        while (!colo_secondary_serve(s, NULL))
            ;
        colo_session_close(&s);
    }
    return NULL;
}

static struct colo_config *config(uint8_t *ram)
{
    struct colo_config *cfg;

    colo_config_new(&cfg);
    colo_config_set_address(cfg, "127.0.0.1", port);
    colo_config_add_ram_block(cfg, "ram", ram, sizeof(ram_p));
    colo_config_set_auth_key(cfg, "key", 3);
    colo_config_set_cache_path(cfg, "/tmp/preauth_delay.cache");
    return cfg;
}

int main(int argc, char **argv)
{
    int drip_mode = argc > 1 && !strcmp(argv[1], "drip");
    int peers = argc > 2 ? atoi(argv[2]) : 1;
    int after_ms = argc > 3 ? atoi(argv[3]) : 1000;
    struct colo_config *pri, *sec;
    struct colo_session *p;
    pthread_t tid;
    double t0;

    if (argc < 2 || (!drip_mode && strcmp(argv[1], "silent"))) {
        fprintf(stderr, "usage: %s silent|drip [PEERS [AFTER_MS [DRIP_MS]]]\n", argv[0]);
        return 2;
    }
    if (argc > 4)
        drip_ms = atoi(argv[4]);
    sec = config(ram_s);
    if (colo_listener_new(sec, &listener)) {
        fprintf(stderr, "listen: %s\n", colo_errormsg());
        return 1;
    }
    port = colo_listener_port(listener);
    pthread_create(&tid, NULL, serve, NULL);
    for (int i = 0; i < peers; i++) {
        if (drip_mode)
            pthread_create(&tid, NULL, drip, NULL);
        else
            raw_connect();
    }
    usleep((useconds_t)after_ms * 1000);
    pri = config(ram_p);
    t0 = now_s();
    if (colo_primary_connect(pri, &p)) {
        printf("%s %s peer(s), primary %d ms later: connect failed after %.3f s: %s\n",
               argv[1], argc > 2 ? argv[2] : "1", after_ms, now_s() - t0, colo_errormsg());
        return 1;
    }
    printf("colo-rdma %s, %d %s peer(s), primary %d ms later: connected after %.3f s\n",
           colo_version(), peers, argv[1], after_ms, now_s() - t0);
    colo_session_close(&p);
    return 0;
}
