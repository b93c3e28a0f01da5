/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/control.h"
#include "bench/verify.h"

static void pair(struct bench_ctl *a, struct bench_ctl *b)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    *a = (struct bench_ctl){.fd = sv[0], .timeout_ms = 2000};
    *b = (struct bench_ctl){.fd = sv[1], .timeout_ms = 2000};
}

static void test_lines(void **state)
{
    struct bench_ctl a, b;
    char line[64];
    uint8_t raw[5] = {1, 2, 3, 4, 5}, got[5];

    pair(&a, &b);
    assert_int_equal(bench_ctl_send(&a, "hello %d", 1), 0);
    assert_int_equal(bench_ctl_send(&a, "run tcp"), 0);
    assert_int_equal(bench_ctl_send_raw(&a, raw, sizeof(raw)), 0);
    assert_int_equal(bench_ctl_send_raw(&a, "tail\r\n", 6), 0);
    assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), 0);
    assert_string_equal(line, "hello 1");
    assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), 0);
    assert_string_equal(line, "run tcp");
    assert_int_equal(bench_ctl_recv_raw(&b, got, sizeof(got)), 0);
    assert_memory_equal(raw, got, sizeof(raw));
    assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), 0);
    assert_string_equal(line, "tail"); /* CR LF accepted */
    /* too long for the caller's buffer */
    assert_int_equal(bench_ctl_send(&a, "%0100d", 0), 0);
    assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), -1);
    assert_non_null(strstr(b.err, "line too long"));
    /* timeout, then end of stream */
    b.timeout_ms = 50;
    b.start = b.end = 0;
    assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), -1);
    assert_non_null(strstr(b.err, "timed out"));
    bench_ctl_close(&a);
    assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), -1);
    assert_non_null(strstr(b.err, "closed by the peer"));
    bench_ctl_close(&b);
}

static void test_connect_refused(void **state)
{
    struct bench_ctl c;
    char err[256];
    uint16_t port;
    int lfd = bench_ctl_listen(0, &port, err, sizeof(err));

    assert_true(lfd >= 0);
    close(lfd); /* nobody listens there now */
    assert_int_equal(bench_ctl_connect("127.0.0.1", port, 2000, &c), -1);
    assert_non_null(strstr(c.err, "cannot reach the secondary at 127.0.0.1"));
    assert_non_null(strstr(c.err, "start 'colo-rdma-bench --listen'"));
    assert_int_equal(bench_ctl_connect("no-such-host.invalid", 1, 2000, &c), -1);
    assert_non_null(strstr(c.err, "cannot resolve 'no-such-host.invalid'"));
}

static void test_params(void **state)
{
    struct bench_params p;
    char err[256];

    bench_params_default(&p);
    assert_int_equal(bench_params_set(&p, "ram", "16777216", err, sizeof(err)), 0);
    assert_int_equal(bench_params_set(&p, "blocks", "2", err, sizeof(err)), 0);
    assert_int_equal(bench_params_set(&p, "verify", "1", err, sizeof(err)), 0);
    assert_int_equal(p.ram_bytes, 16 << 20);
    assert_true(p.verify);
    assert_int_equal(bench_params_check(&p, err, sizeof(err)), 0);

    assert_int_equal(bench_params_set(&p, "colour", "1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown parameter 'colour'"));
    assert_int_equal(bench_params_set(&p, "blocks", "0", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "parameter blocks: '0' is not a number from 1 to 256"));
    assert_int_equal(bench_params_set(&p, "ram", "-5", err, sizeof(err)), -1);
    assert_int_equal(bench_params_set(&p, "ram", "12x", err, sizeof(err)), -1);
    assert_int_equal(bench_params_set(&p, "page-size", "99999999999", err, sizeof(err)), -1);
    assert_int_equal(bench_params_set(&p, "page-size", "12288", err, sizeof(err)), 0);
    assert_int_equal(bench_params_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a power of two"));
    assert_int_equal(bench_params_set(&p, "page-size", "4096", err, sizeof(err)), 0);
    assert_int_equal(bench_params_set(&p, "ram", "4097", err, sizeof(err)), 0);
    assert_int_equal(bench_params_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a multiple"));
}

/* The parameters survive the trip through the wire format. */
static void test_params_roundtrip(void **state)
{
    struct bench_params p, q;
    struct bench_ctl a, b;
    char line[256], key[64], value[64], err[256];

    bench_params_default(&p);
    p.ram_bytes = 1ull << 33;
    p.seed = UINT64_MAX;
    p.hugepages = true;
    p.warmup = 7;
    pair(&a, &b);
    assert_int_equal(bench_params_send(&a, &p), 0);
    bench_params_default(&q);
    for (;;) {
        assert_int_equal(bench_ctl_recv(&b, line, sizeof(line)), 0);
        if (!strcmp(line, "setup"))
            break;
        assert_int_equal(sscanf(line, "set %63s %63s", key, value), 2);
        assert_int_equal(bench_params_set(&q, key, value, err, sizeof(err)), 0);
    }
    assert_int_equal(p.ram_bytes, q.ram_bytes);
    assert_int_equal(p.blocks, q.blocks);
    assert_int_equal(p.page_size, q.page_size);
    assert_int_equal(p.hugepages, q.hugepages);
    assert_int_equal(p.vmstate_bytes, q.vmstate_bytes);
    assert_int_equal(p.seed, q.seed);
    assert_int_equal(p.timeout_ms, q.timeout_ms);
    assert_int_equal(p.verify, q.verify);
    assert_int_equal(p.warmup, q.warmup);
    bench_ctl_close(&a);
    bench_ctl_close(&b);
}

static void test_hashes(void **state)
{
    uint8_t *a = calloc(1, 16 * 4096), *b = calloc(1, 16 * 4096);
    uint64_t pages[16];

    assert_int_equal(bench_hash_block(a, 16 * 4096, 4096), bench_hash_block(b, 16 * 4096, 4096));
    bench_hash_pages(a, 16 * 4096, 4096, pages);
    assert_int_equal(bench_first_diff_page(b, 16 * 4096, 4096, pages), UINT64_MAX);
    b[9 * 4096 + 4095] = 1; /* the last byte of page 9 */
    b[12 * 4096] = 1;
    assert_int_not_equal(bench_hash_block(a, 16 * 4096, 4096),
                         bench_hash_block(b, 16 * 4096, 4096));
    assert_int_equal(bench_first_diff_page(b, 16 * 4096, 4096, pages), 9);
    /* tail bytes count too */
    assert_int_not_equal(bench_hash_page("abcdefghi", 9), bench_hash_page("abcdefghj", 9));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_params_roundtrip),
        cmocka_unit_test(test_hashes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
