/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/options.h"
#include "bench/sysinfo.h"

static char msg[1024];

/* Parses a NULL-terminated list of arguments after argv[0]. */
static int parse(struct bench_options *o, ...)
{
    char *argv[64] = {"colo-rdma-bench"};
    int argc = 1, ret;
    FILE *err = fmemopen(msg, sizeof(msg), "w");
    FILE *out = fopen("/dev/null", "w");
    va_list ap;

    memset(msg, 0, sizeof(msg));
    va_start(ap, o);
    while ((argv[argc] = va_arg(ap, char *)))
        argc++;
    va_end(ap);
    ret = bench_options_parse(o, argc, argv, out, err);
    fclose(err);
    fclose(out);
    return ret;
}

static void test_defaults(void **state)
{
    struct bench_options o;

    assert_int_equal(parse(&o, "--loopback", NULL), 0);
    assert_true(o.loopback && !o.listen && !o.verify && o.pipelined);
    assert_int_equal(o.protocol_version, 2);
    assert_int_equal(o.port, 18516);
    assert_int_equal(o.ntransports, 1);
    assert_string_equal(o.transports[0], "tcp");
    assert_int_equal(o.ram_bytes, 64 << 20);
    assert_int_equal(o.ndirty, 1);
    assert_int_equal(o.dirty[0], 1024);
    assert_int_equal(o.warmup, 2);
    assert_int_equal(o.workload, BENCH_WL_UNIFORM);
    assert_false(o.no_ceilings);
    assert_int_equal(o.ceiling_duration, 4);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--loopback", "--no-ceilings", "--ceiling-duration", "10", NULL),
                     0);
    assert_true(o.no_ceilings);
    assert_int_equal(o.ceiling_duration, 10);
    bench_options_free(&o);
}

/* --integrity: a key from the file, or with --loopback a random one. */
static void test_integrity(void **state)
{
    struct bench_options o;
    char path[] = "/tmp/colo-bench-key.XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "k3y\n", 4), 4);
    close(fd);
    assert_int_equal(parse(&o, "--loopback", NULL), 0);
    assert_false(o.integrity);
    assert_int_equal(o.auth_key_len, 0);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--loopback", "--integrity", NULL), 0);
    assert_true(o.integrity && o.auth_key_len == 32);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "host", "--integrity", "--auth-key-file", path, NULL), 0);
    assert_true(o.integrity && o.auth_key_len == 4);
    assert_memory_equal(o.auth_key, "k3y\n", 4);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--listen", "--auth-key-file", path, NULL), 0);
    assert_true(!o.integrity && o.auth_key_len == 4);
    bench_options_free(&o);
    unlink(path);
}

static void test_everything(void **state)
{
    struct bench_options o;

    assert_int_equal(parse(&o, "-t", "all", "-r", "1G", "-b", "8", "-d", "256,1024,4K",
                           "--workload", "hotset", "-n", "50", "-w", "3", "-s", "42",
                           "--interval", "10", "--early-resume", "--pipeline", "off", "--poll", "busy", "--verify",
                           "--json", "o.json", "--csv", "o.csv", "--samples", "--plot", "o.svg",
                           "--page-size", "8K", "--vmstate", "1M", "--hugepages",
                           "--dirty-tracking", "softdirty", "-p", "2000", "host.example", NULL),
                     0);
    assert_string_equal(o.host, "host.example");
    assert_int_equal(o.ntransports, 2);
    assert_true(o.transport_all);
    assert_string_equal(o.transports[0], "rdma");
    assert_int_equal(o.ram_bytes, 1ull << 30);
    assert_int_equal(o.ndirty, 3);
    assert_int_equal(o.dirty[2], 4096);
    assert_int_equal(o.workload, BENCH_WL_HOTSET);
    assert_true(o.early_resume && o.busy_poll && o.verify && o.samples && o.hugepages);
    assert_false(o.pipelined);
    assert_int_equal(o.tracking, BENCH_TRACK_SOFTDIRTY);
    assert_int_equal(o.page_size, 8192);
    assert_int_equal(o.port, 2000);
    assert_string_equal(o.plot_path, "o.svg");
    bench_options_free(&o);

    assert_int_equal(parse(&o, "--loopback", "--replay", "rec.txt", NULL), 0);
    assert_int_equal(o.workload, BENCH_WL_REPLAY);
    assert_int_equal(o.ndirty, 1);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--loopback", "-W", "replay:rec.txt", NULL), 0);
    assert_string_equal(o.replay_path, "rec.txt");
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--listen", "--cache", "/dev/dax0.0", "-P", "0", NULL), 0);
    assert_false(o.cache_overwrite);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--listen", "--cache", "/tmp/c", "--cache-overwrite", NULL), 0);
    assert_true(o.cache_overwrite);
    bench_options_free(&o);
    assert_int_equal(parse(&o, "--help", NULL), 1);
    bench_options_free(&o);
}

/* Every bad option fails with a message naming it (and the fix). */
static void test_bad(void **state)
{
    static const struct {
        const char *args[6];
        const char *needle;
    } cases[] = {
        {{"--loopback", "--workload", "nope"}, "invalid --workload 'nope': expected idle, uniform"},
        {{"--loopback", "--transport", "ib"}, "invalid --transport 'ib': expected tcp, rdma or all"},
        {{"--loopback", "--ram", "lots"}, "invalid --ram 'lots'"},
        {{"--loopback", "--ram", "0"}, "invalid --ram '0'"},
        {{"--loopback", "--ram", "-1G"}, "invalid --ram '-1G'"},
        {{"--loopback", "--ram", "100000000T"}, "invalid --ram"},
        {{"--loopback", "--ram", "10000"}, "not a multiple of 4 blocks x 4096 bytes"},
        {{"--loopback", "--blocks", "0"}, "invalid --blocks '0': expected 1..256"},
        {{"--loopback", "--blocks", "300"}, "invalid --blocks '300'"},
        {{"--loopback", "--dirty", "1,x"}, "invalid --dirty '1,x'"},
        {{"--loopback", "--dirty", "1,"}, "invalid --dirty '1,'"},
        {{"--loopback", "--dirty", "100000"}, "--dirty 100000 exceeds the 16384 pages of --ram"},
        {{"--loopback", "--checkpoints", "0"}, "invalid --checkpoints '0'"},
        {{"--loopback", "--warmup", "0"}, "the first warm-up checkpoint sends all RAM"},
        {{"--loopback", "--port", "70000"}, "invalid --port '70000'"},
        {{"--loopback", "--port", "0"}, "invalid --port '0'"},
        {{"--loopback", "--timeout", "0"}, "invalid --timeout '0'"},
        {{"--loopback", "--interval", "x"}, "invalid --interval 'x'"},
        {{"--loopback", "--poll", "spin"}, "invalid --poll 'spin': expected event or busy"},
        {{"--loopback", "--pipeline", "yes"}, "invalid --pipeline 'yes': expected on or off"},
        {{"--loopback", "--protocol-version", "3"}, "invalid --protocol-version '3': expected 1 or 2"},
        {{"--loopback", "--ceiling-duration", "2"}, "invalid --ceiling-duration '2': expected "
                                                     "seconds, 3..600"},
        {{"--loopback", "--ceiling-duration", "x"}, "invalid --ceiling-duration 'x'"},
        {{"--loopback", "--dirty-tracking", "uffd"}, "expected workload or softdirty"},
        {{"host", "--integrity"}, "--integrity needs a shared key: give --auth-key-file FILE"},
        {{"--listen", "--integrity"}, "--integrity belongs to the primary"},
        {{"--loopback", "--auth-key-file", "/nonexistent"}, "--auth-key-file /nonexistent: No "
                                                             "such file"},
        {{"--loopback", "--auth-key-file", "/dev/null"}, "expected a file of 1..1024 bytes"},
        {{"--loopback", "--page-size", "3000"}, "invalid --page-size '3000'"},
        {{"--loopback", "--vmstate", "2G"}, "invalid --vmstate '2G'"},
        {{"--loopback", "--plot", "o.pdf"}, "expected a file name ending in .svg or .png"},
        {{"--loopback", "--samples"}, "--samples needs --json FILE or --csv FILE"},
        {{"--loopback", "--workload", "replay"}, "--workload replay needs --replay FILE"},
        {{"--loopback", "--workload", "idle", "--dirty", "5"}, "--dirty does not apply"},
        {{"--loopback", "--replay", "f", "--dirty", "5"}, "--dirty does not apply"},
        {{"--loopback", "--replay", "f", "-W", "stream"}, "--replay FILE conflicts with"},
        {{"--cache", "/tmp/c", "host"}, "--cache belongs to the secondary"},
        {{"--loopback", "--bogus"}, "unknown option --bogus"},
        {{"--loopback", "--ram"}, "option --ram needs a value"},
        {{"--loopback", "host"}, "give exactly one of HOST, --listen or --loopback"},
        {{"host", "extra"}, "unexpected argument 'extra'"},
        {{NULL}, "give exactly one of HOST, --listen or --loopback"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[8] = {"colo-rdma-bench"};
        struct bench_options o;
        FILE *err = fmemopen(msg, sizeof(msg), "w");
        int argc = 1;

        memset(msg, 0, sizeof(msg));
        while (argc < 7 && cases[i].args[argc - 1]) {
            argv[argc] = (char *)cases[i].args[argc - 1];
            argc++;
        }
        assert_int_equal(bench_options_parse(&o, argc, argv, stdout, err), -1);
        fclose(err);
        bench_options_free(&o);
        if (!strstr(msg, cases[i].needle))
            fail_msg("case %zu: expected '%s' in '%s'", i, cases[i].needle, msg);
    }
}

static void test_sizes(void **state)
{
    uint64_t v, list[4];
    unsigned n;

    assert_int_equal(bench_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(bench_parse_size("64M", &v), 0);
    assert_int_equal(v, 64 << 20);
    assert_int_equal(bench_parse_size("1GiB", &v), 0);
    assert_int_equal(v, 1 << 30);
    assert_int_equal(bench_parse_size("2k", &v), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(bench_parse_size("1X", &v), -1);
    assert_int_equal(bench_parse_size("", &v), -1);
    assert_int_equal(bench_parse_size(" 1", &v), -1);
    assert_int_equal(bench_parse_list("1,2,3,4", list, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(bench_parse_list("1,2,3,4,5", list, 4, &n), -1);
    assert_int_equal(bench_parse_list(",1", list, 4, &n), 0); /* empty fields are skipped */
}

/* RAM beyond MemAvailable or, for rdma, beyond RLIMIT_MEMLOCK: refused with the fix. */
static void test_memory(void **state)
{
    struct bench_meminfo m = {.available = 1ull << 30, .memlock = 8 << 20};
    char text[512];

    assert_int_equal(bench_check_memory(&m, 512 << 20, 512 << 20, false, text, sizeof(text)), 0);
    assert_int_equal(bench_check_memory(&m, 2ull << 30, 2ull << 30, false, text, sizeof(text)),
                     -1);
    assert_non_null(strstr(text, "MemAvailable is 1024 MiB: use a smaller --ram"));
    assert_int_equal(bench_check_memory(&m, 0, 64 << 20, true, text, sizeof(text)), -1);
    assert_non_null(strstr(text, "RLIMIT_MEMLOCK is 8192 KiB: raise it (ulimit -l unlimited"));
    m.ipc_lock = true; /* CAP_IPC_LOCK ignores the limit */
    assert_int_equal(bench_check_memory(&m, 0, 64 << 20, true, text, sizeof(text)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_everything),
        cmocka_unit_test(test_integrity),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_memory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
