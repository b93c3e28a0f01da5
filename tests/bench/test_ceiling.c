/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ceilings: ib_write_bw's shape, which ceiling a row takes, the marking
 * of a ceiling the page push beat, the parse of perftest's result line, and
 * the JSON and text that carry the judgement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/ceiling.h"
#include "bench/limit.h"
#include "bench/pump.h"
#include "bench/report.h"

static void test_shape(void **state)
{
    struct bench_write_bw_shape s;
    char buf[128];

    /* one page per WRITE: the 1 MiB window holds 256, one doorbell and CQE per 64 */
    bench_write_bw_shape(4096, 4096, 4, &s);
    assert_int_equal(s.size, 4096);
    assert_int_equal(s.tx_depth, 256);
    assert_int_equal(s.post_list, 64);
    assert_int_equal(s.cq_mod, 64);
    assert_int_equal(s.duration, 4);
    bench_write_bw_shape_str(&s, buf, sizeof(buf));
    assert_string_equal(buf, "-s 4096 -t 256 -Q 64 -l 64 -D 4 -f 1 --use_old_post_send");
    /* small WRITEs: the send queue is the limit */
    bench_write_bw_shape(1024, 4096, 4, &s);
    assert_int_equal(s.tx_depth, 512);
    /* large runs are split at 256 KiB: 4 in flight, all in one chain */
    bench_write_bw_shape(8u << 20, 4096, 4, &s);
    assert_int_equal(s.size, 256u << 10);
    assert_int_equal(s.tx_depth, 4);
    assert_int_equal(s.post_list, 4);
    /* ... each one signaled, as the library signals one per 256 KiB */
    assert_int_equal(s.cq_mod, 1);
    /* 64 KiB WRITEs: a chain of 16, one signaled per 4 */
    bench_write_bw_shape(64u << 10, 4096, 4, &s);
    assert_int_equal(s.tx_depth, 16);
    assert_int_equal(s.post_list, 16);
    assert_int_equal(s.cq_mod, 4);
    /* no runs: one page; perftest wants a duration above twice its 1 s margin */
    bench_write_bw_shape(0, 8192, 1, &s);
    assert_int_equal(s.size, 8192);
    assert_int_equal(s.duration, 3);
}

static void test_judge_rdma(void **state)
{
    struct bench_ceiling c = {.perftest_gbytes = 0.06, .pump_gbytes = 0.05};

    /* the lower of the two */
    bench_ceiling_judge(&c, "rdma", 0.049);
    assert_string_equal(c.source, "verbs pump");
    assert_true(c.gbytes == 0.05);
    assert_true(c.reliable);
    assert_true(c.ratio > 0.97 && c.ratio < 0.99);
    assert_string_equal(c.reason, "");
    c.perftest_gbytes = 0.04;
    bench_ceiling_judge(&c, "rdma", 0.041);
    assert_string_equal(c.source, "ib_write_bw");
    assert_true(c.reliable); /* 1.025: inside the 5 % */
    /* the 122 %: unreliable, with the reason */
    bench_ceiling_judge(&c, "rdma", 0.0488);
    assert_false(c.reliable);
    assert_non_null(strstr(c.reason, "1.220x its ceiling (ib_write_bw 0.0400 GB/s)"));
    assert_non_null(strstr(c.reason, "busy-polls"));
    assert_non_null(strstr(c.reason, "; the other ceiling (verbs pump 0.0500 GB/s) was not "
                                     "beaten"));
    /* only one measured */
    c = (struct bench_ceiling){.pump_gbytes = 0.05};
    snprintf(c.perftest_note, sizeof(c.perftest_note), "ib_write_bw not installed");
    bench_ceiling_judge(&c, "rdma", 0.0525);
    assert_string_equal(c.source, "verbs pump");
    assert_true(c.reliable); /* exactly 1.05 */
    bench_ceiling_judge(&c, "rdma", 0.06);
    assert_false(c.reliable);
    assert_non_null(strstr(c.reason, "disturbed measurement"));
    /* none */
    c = (struct bench_ceiling){0};
    snprintf(c.pump_note, sizeof(c.pump_note), "no RDMA device");
    snprintf(c.perftest_note, sizeof(c.perftest_note), "no RDMA device");
    bench_ceiling_judge(&c, "rdma", 0.05);
    assert_null(c.source);
    assert_false(c.reliable);
    assert_string_equal(c.reason, "no ceiling: no RDMA device; ib_write_bw: no RDMA device");
}

/* A tcp row is never divided by a verbs figure. */
static void test_judge_tcp(void **state)
{
    struct bench_ceiling c = {.perftest_gbytes = 0.02, .pump_gbytes = 0.2};

    bench_ceiling_judge(&c, "tcp", 0.19);
    assert_string_equal(c.source, "socket pump");
    assert_true(c.gbytes == 0.2 && c.reliable);
    c.pump_gbytes = 0;
    snprintf(c.pump_note, sizeof(c.pump_note), "socket pump: only with --loopback");
    bench_ceiling_judge(&c, "tcp", 0.19);
    assert_null(c.source);
    assert_true(c.gbytes == 0);
    assert_string_equal(c.reason, "no ceiling: socket pump: only with --loopback");
}

static void test_latency(void **state)
{
    struct bench_latency_ceiling l = {.one_way_us = 20, .source = "ib_send_lat -e"};

    bench_latency_judge(&l, 200, 5);
    assert_true(l.reliable);
    assert_true(l.ratio == 2.0);
    bench_latency_judge(&l, 96, 5); /* 0.96: inside the 5 % */
    assert_true(l.reliable);
    bench_latency_judge(&l, 50, 5);
    assert_false(l.reliable);
    assert_non_null(strstr(l.reason, "below 5 one-way messages of ib_send_lat -e"));
    l.one_way_us = 0;
    bench_latency_judge(&l, 50, 5);
    assert_false(l.reliable);
}

static void test_parse(void **state)
{
    static const char ok[] =
        " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]\n"
        " 4096       7680             0.00               0.12   \t\t   0.003810\n";
    /* perftest 4.5 with -l in duration mode and its newer post path */
    static const char broken[] =
        " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]\n"
        " 4096       13056           0.000000            0.000000            0.000000\n";
    double g = 0;

    assert_int_equal(bench_parse_write_bw(ok, &g), 0);
    assert_true(g == 0.12); /* the average, never the peak */
    assert_int_equal(bench_parse_write_bw(broken, &g), -1);
    assert_int_equal(bench_parse_write_bw("Couldn't connect", &g), -1);
}

/* The socket pump over host loopback: untimed and timed checkpoints, the counts. */
static void test_socket_pump(void **state)
{
    enum { RAM = 1 << 20, PAGE = 4096 };
    uint8_t *ram = calloc(1, RAM);
    struct bench_pump_params p = {.ram = ram, .ram_bytes = RAM, .blocks = 4, .page_size = PAGE,
                                  .timeout_ms = 5000};
    /* small runs (copied into the buffer) and a large one (written from RAM) */
    struct colo_dirty_run runs[] = {
        {.block = 0, .first_page = 0, .page_count = 1},
        {.block = 1, .first_page = 3, .page_count = 1},
        {.block = 3, .first_page = 10, .page_count = 20},
    };
    struct bench_rdma_dev none = {0};
    struct bench_pump *pm = NULL;
    struct bench_pump_result res;
    char note[192], desc[256];
    uint64_t ns = 0;

    assert_non_null(ram);
    assert_int_equal(bench_pump_open(&pm, "tcp", &none, "127.0.0.1", &p, note, sizeof(note)),
                     0);
    assert_int_equal(bench_pump_push(pm, runs, 3, false, NULL, note, sizeof(note)), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bench_pump_push(pm, runs, 3, true, &ns, note, sizeof(note)), 0);
    assert_true(ns > 0);
    bench_pump_result(pm, &res);
    assert_int_equal(res.checkpoints, 4);
    assert_int_equal(res.bytes, 4 * 22 * PAGE);
    /* per checkpoint: one write for the two small frames and the large one, one for the end */
    assert_int_equal(res.writes, 4 * 2);
    assert_true(res.gbytes > 0);
    bench_pump_describe(pm, desc, sizeof(desc));
    assert_non_null(strstr(desc, "socket pump: the run's 4 checkpoints again"));
    bench_pump_close(&pm);
    assert_null(pm);
    bench_pump_close(&pm); /* NULL is fine */
    /* no device: a reason, no pump */
    assert_int_equal(bench_pump_open(&pm, "rdma", &none, "127.0.0.1", &p, note, sizeof(note)),
                     -1);
    assert_null(pm);
    assert_true(strstr(note, "no RDMA device") || strstr(note, "without the rdma backend"));
    free(ram);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 16);

    assert_non_null(f);
    assert_non_null(buf);
    assert_true(fread(buf, 1, (1 << 16) - 1, f) > 0);
    fclose(f);
    return buf;
}

static void fake_run(struct bench_run *r, const char *transport, double push, double perftest,
                     double pump)
{
    *r = (struct bench_run){.transport = transport, .dirty = 1024, .push_gbytes = push};
    r->limit.perftest_gbytes = perftest;
    r->limit.pump_gbytes = pump;
    snprintf(r->limit.pump_note, sizeof(r->limit.pump_note), "pump note");
    if (perftest > 0)
        snprintf(r->limit.perftest_note, sizeof(r->limit.perftest_note), "ib_write_bw -s 4096");
    r->lat.one_way_us = 10;
    r->lat.source = "tcp ping-pong";
    r->phase[BENCH_PAUSE].median = 100e3; /* 100 us: 5x one round trip of 2 x 10 us */
    bench_run_judge(r);
}

static void test_json_and_text(void **state)
{
    struct bench_options o = {.loopback = true, .ntransports = 2,
                              .transports = {"rdma", "tcp"}, .ndirty = 1, .dirty = {1024},
                              .ram_bytes = 64 << 20, .blocks = 4, .page_size = 4096};
    struct bench_env env = {.o = &o, .rdma_soft = true};
    struct bench_run runs[2];
    char path[] = "/tmp/colo-bench-ceiling-XXXXXX", err[256], *json, *text;
    size_t text_len;
    FILE *out;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    fake_run(&runs[0], "rdma", 0.0488, 0.04, 0.05); /* beats ib_write_bw: unreliable */
    fake_run(&runs[1], "tcp", 0.19, 0.02, 0.2);
    snprintf(env.kernel, sizeof(env.kernel), "Linux 6.12.95+deb12-amd64 x86_64");
    runs[0].counts_primary = (struct bench_counts){.known = true, .vcsw = 3, .ivcsw = 1,
                                                   .wr_posted = 5, .doorbells = 3,
                                                   .completions = 4, .cq_wakeups = 2};
    assert_int_equal(bench_report_json(path, &env, runs, 2, err, sizeof(err)), 0);
    json = slurp(path);
    assert_non_null(strstr(json, "\"limit_GBps\": 0.04, \"limit_source\": \"ib_write_bw\", "
                                 "\"ratio_to_limit\": null, \"measured_ratio_to_limit\": 1.22"));
    assert_non_null(strstr(json, "\"limit_reliable\": false, \"limit_reason\": \"the page push "
                                 "ran at 1.220x"));
    assert_non_null(strstr(json, "\"ib_write_bw_GBps\": 0.04, \"ib_write_bw\": \"ib_write_bw -s "
                                 "4096\""));
    assert_non_null(strstr(json, "\"limit_GBps\": 0.2, \"limit_source\": \"socket pump\", "
                                 "\"ratio_to_limit\": 0.95"));
    assert_non_null(strstr(json, "\"limit_reliable\": true, \"limit_reason\": null"));
    assert_non_null(strstr(json, "\"latency_source\": \"tcp ping-pong\", "
                                 "\"pause_median_vs_latency_limit\": 5"));
    assert_non_null(strstr(json, "getrusage"));
    assert_non_null(strstr(json, "\"primary\": {\"voluntary_csw\": 3, \"involuntary_csw\": 1, "
                                 "\"wr_posted\": 5, \"doorbells\": 3, \"completions\": 4, "
                                 "\"cq_wakeups\": 2}, \"secondary\": null"));
    assert_non_null(strstr(json, "\"rdma_device_limits\": null"));
    assert_non_null(strstr(json, "\"pump\": \"pump note\", \"pump_paired_median_ratio\": null"));
    free(json);
    unlink(path);
    close(fd);

    out = open_memstream(&text, &text_len);
    bench_report_comparable(out, &env, runs, 2);
    bench_report_table(out, &env, runs, 2);
    bench_report_run(out, &env, &runs[0]);
    fclose(out);
    assert_non_null(strstr(text, " unreliable ib_write_bw"));
    assert_non_null(strstr(text, "        95% socket pump"));
    assert_null(strstr(text, "122%"));
    assert_non_null(strstr(text, "vs ceiling UNRELIABLE ceiling, no result:"));
    assert_non_null(strstr(text, "the RDMA device (rxe) is itself software"));
    assert_non_null(strstr(text, "Comparable figures"));
    assert_non_null(strstr(text, "Why absolute times favour tcp here"));
    assert_non_null(strstr(text, "kernel threads (a workqueue), outside both processes"));
    assert_non_null(strstr(text, "3.0+1.0"));
    assert_non_null(strstr(text, "5.0/3.0/4.0/2.0"));
    assert_non_null(strstr(text, "voluntary+involuntary context switches"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_judge_rdma),
        cmocka_unit_test(test_judge_tcp),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_socket_pump),
        cmocka_unit_test(test_json_and_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
