/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

int colo_grow_array(void *bufp, size_t *cap, size_t n, size_t elem, const char *what)
{
    void *old, *p;

    if (n <= *cap)
        return 0;
    if (elem && n > SIZE_MAX / elem)
        return colo_err(-ENOMEM, "%s: %zu elements of %zu bytes do not fit in memory", what, n,
                        elem);
    /* Through memcpy: bufp may point to a uint8_t * as well as a struct pointer. */
    memcpy(&old, bufp, sizeof(old));
    p = realloc(old, n * elem);
    if (!p)
        return colo_err(-ENOMEM, "%s: no memory for %zu elements of %zu bytes", what, n, elem);
    memcpy(bufp, &p, sizeof(p));
    *cap = n;
    /* cppcheck-suppress memleak ; cppcheck does not see p stored through bufp */
    return 0;
}
