/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every harness shares: an invariant check that crashes loudly, so libFuzzer keeps the input.
 */
#ifndef COLO_TESTS_FUZZ_COMMON_H
#define COLO_TESTS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

/* Unlike assert(), never compiled out. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
