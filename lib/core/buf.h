/* buf.h — a growable byte buffer for building encodings in memory (the bn
 * file's head and trailer, metadata). An allocation failure is remembered
 * and reported once at the end, so writers need not check every put. */
#ifndef BN_BUF_H
#define BN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} bn_buf;

void bn_buf_put(bn_buf *b, const void *v, size_t n);
void bn_buf_put32(bn_buf *b, uint32_t v);
void bn_buf_put64(bn_buf *b, uint64_t v);

#endif
