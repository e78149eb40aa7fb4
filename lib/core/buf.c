/* buf.c — the growable byte buffer of buf.h. */
#include "buf.h"
#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void bn_buf_put(bn_buf *b, const void *v, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

/* Scratch of 2 MiB and more is 2 MiB-aligned and advised to use huge
 * pages: a tensor-sized buffer of 4 KiB pages took a fault per page on
 * first touch, and on the virtual machines we measured on a fault costs
 * ~20 us (bn-quant of the 2B4T master: a fifth of its time). free() takes
 * it back either way. */

void *bn_scratch(void *p, size_t *cap, size_t need)
{
    if (p && need <= *cap)
        return p;
    free(p);
    if (need < BN_HUGE_PAGE)
        p = malloc(need ? need : 1);
    else if (posix_memalign(&p, BN_HUGE_PAGE, need))
        p = NULL;
#ifdef MADV_HUGEPAGE
    else
        madvise(p, need, MADV_HUGEPAGE); /* advice only: without THP the pages stay small */
#endif
    *cap = p ? need : 0;
    return p;
}

void bn_buf_put32(bn_buf *b, uint32_t v)
{
    bn_buf_put(b, &v, 4);
}

void bn_buf_put64(bn_buf *b, uint64_t v)
{
    bn_buf_put(b, &v, 8);
}
