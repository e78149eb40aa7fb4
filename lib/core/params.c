/* params.c — the rule of the public parameter structs (bn.h): each begins
 * with `size`, the size the caller was compiled with, so one libbn serves
 * programs built against older headers, whose structs end earlier. */
#include "core.h"

#include <string.h>

void bn_params_fill(void *p, size_t size, const void *defaults, size_t full)
{
    if (!p) /* a call that returns nothing does nothing (libbn(3)) */
        return;
    size_t n = size < full ? size : full;
    memcpy(p, defaults, n);
    if (n >= sizeof size)
        memcpy(p, &size, sizeof size);
}

int bn_params_read(void *dst, size_t full, const void *src, const char *what, bn_err *e)
{
    size_t n;
    memcpy(&n, src, sizeof n);
    if (n < sizeof n)
        return bn_fail_code(e, BN_E_INVALID, "%s: size is %zu; fill the struct with its _init macro first", what, n);
    memcpy(dst, src, n < full ? n : full);
    memcpy(dst, &full, sizeof full);
    return 0;
}
