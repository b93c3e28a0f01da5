/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The secondary's RAM cache on a temporary file: layout, persist, apply, refusals. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "cache/ram_cache.h"

static uint8_t guest0[8 * 4096], guest1[3 * 4096];
static char dir[64];

static int setup(void **state)
{
    strcpy(dir, "/tmp/colo-cache-test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void layout(struct colo_ram_layout *l)
{
    assert_int_equal(colo_ram_layout_init(l, 4096), 0);
    assert_int_equal(colo_ram_layout_add(l, "pc.ram", guest0, sizeof(guest0)), 0);
    assert_int_equal(colo_ram_layout_add(l, "rom", guest1, sizeof(guest1)), 0);
}

static void path_in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void test_file_cache_persist_and_apply(void **state)
{
    struct colo_ram_layout l;
    struct colo_ram_cache *c = NULL;
    struct colo_dirty_run runs[] = {{.block = 0, .first_page = 2, .page_count = 3},
                                    {.block = 1, .first_page = 2, .page_count = 1}};
    char path[128];
    struct stat st;
    FILE *f;
    uint8_t page[4096];

    layout(&l);
    path_in_dir(path, sizeof(path), "cache");
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), 0);
    assert_string_equal(colo_ram_cache_kind(c), "file");
    assert_false(colo_ram_cache_is_fsdax(c));
    assert_int_equal(stat(path, &st), 0);
    assert_true((size_t)st.st_size >= colo_ram_cache_size(c));
    assert_true(colo_ram_cache_size(c) >= sizeof(guest0) + sizeof(guest1));
    assert_int_equal((uintptr_t)colo_ram_cache_block(c, 1) % 4096, 0);

    memset(colo_ram_cache_block(c, 0), 0xaa, sizeof(guest0));
    memset(colo_ram_cache_block(c, 1), 0xbb, sizeof(guest1));
    memset(guest0, 0, sizeof(guest0));
    memset(guest1, 0, sizeof(guest1));
    assert_int_equal(colo_ram_cache_persist(c, runs, 2), 0);
    colo_ram_cache_apply(c, runs, 2);
    /* exactly the listed pages reach the guest RAM */
    for (size_t p = 0; p < 8; p++)
        assert_int_equal(guest0[p * 4096 + 17], p >= 2 && p < 5 ? 0xaa : 0);
    for (size_t p = 0; p < 3; p++)
        assert_int_equal(guest1[p * 4096], p == 2 ? 0xbb : 0);
    colo_ram_cache_close(&c);
    assert_null(c);
    colo_ram_cache_close(&c);

    /* what was persisted is in the file */
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 2 * 4096, SEEK_SET), 0);
    assert_int_equal(fread(page, 1, sizeof(page), f), sizeof(page));
    assert_int_equal(page[100], 0xaa);
    fclose(f);

    /* an existing, larger file is reused */
    assert_int_equal(truncate(path, 1 << 20), 0);
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), 0);
    colo_ram_cache_close(&c);
}

static void test_refuses_bad_paths(void **state)
{
    struct colo_ram_layout l;
    struct colo_ram_cache *c = NULL;
    char path[128];

    layout(&l);
    assert_int_equal(colo_ram_cache_open(NULL, &l, 0, &c), COLO_E_CONFIG);
    assert_int_equal(colo_ram_cache_open(dir, &l, 0, &c), COLO_E_CACHE); /* a directory */
    assert_non_null(strstr(colo_errormsg(), "cannot open for writing"));
    path_in_dir(path, sizeof(path), "missing/cache");
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), COLO_E_CACHE);
    assert_int_equal(colo_ram_cache_open("/dev/null", &l, 0, &c), COLO_E_CACHE);
    assert_null(c);
}

static void test_no_room_leaves_nothing_behind(void **state)
{
    struct colo_ram_layout l;
    struct colo_ram_cache *c = NULL;
    struct rlimit old, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    char path[128];

    layout(&l);
    path_in_dir(path, sizeof(path), "full");
    /* A file-size limit stands in for a full file system. */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), COLO_E_CACHE);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_non_null(strstr(colo_errormsg(), "no room"));
    assert_int_equal(access(path, F_OK), -1); /* the file it created is gone */
    assert_null(c);
}

/*
 * An existing file with data in it that this process did not make is not
 * taken over without a word: refused with the path and the option to name,
 * its bytes untouched.
 */
static void test_refuses_a_foreign_file(void **state)
{
    struct colo_ram_layout l;
    struct colo_ram_cache *c = NULL;
    char path[128], buf[16] = {0};
    struct stat st;
    FILE *f;

    layout(&l);
    path_in_dir(path, sizeof(path), "someone-elses");
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("precious data", 1, 13, f), 13);
    fclose(f);
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), COLO_E_CACHE);
    print_message("%s\n", colo_errormsg());
    assert_non_null(strstr(colo_errormsg(), path));
    assert_non_null(strstr(colo_errormsg(), "colo_config_set_cache_overwrite"));
    assert_null(c);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 13);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, 13, f), 13);
    fclose(f);
    assert_string_equal(buf, "precious data");
    /* allowed explicitly, it is taken over */
    assert_int_equal(colo_ram_cache_open(path, &l, COLO_CACHE_OVERWRITE, &c), 0);
    assert_true((size_t)colo_ram_cache_size(c) >= sizeof(guest0) + sizeof(guest1));
    colo_ram_cache_close(&c);
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), 0); /* now this process's */
    colo_ram_cache_close(&c);

    /* an existing empty file (mkstemp's) holds nothing to lose: taken */
    path_in_dir(path, sizeof(path), "empty");
    f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), 0);
    colo_ram_cache_close(&c);
    /* and once this process made it its cache, a later listener may reopen it */
    assert_int_equal(colo_ram_cache_open(path, &l, 0, &c), 0);
    colo_ram_cache_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_cache_persist_and_apply),
        cmocka_unit_test(test_refuses_a_foreign_file),
        cmocka_unit_test(test_refuses_bad_paths),
        cmocka_unit_test(test_no_room_leaves_nothing_behind),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
