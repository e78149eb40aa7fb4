/* kern_embd.c — one row of a head or embedding table as floats
 * (kern_embd.h): the embedding lookup, for every table type a head may
 * have. */
#include "head_layout.h"
#include "kern_embd.h"

#include <string.h>

void bn_head_row(uint32_t type, const void *w, size_t rows, size_t d, size_t r, float *out)
{
    if (type == BN_I8) {
        const int8_t *q = (const int8_t *)w + r * d;
        float sc = i8_row_scale(w, rows, d, r);
        for (size_t c = 0; c < d; c++)
            out[c] = (float)q[c] * sc;
    } else if (quant_hb(type) >= 0) {
        int hb = quant_hb(type);
        size_t gb = QUANT_GB(hb);
        const uint8_t *row = (const uint8_t *)w + r * (d / QUANT_G * gb);
        for (size_t c = 0; c < d; c++) {
            const uint8_t *g = row + c / QUANT_G * gb;
            out[c] = quant_scale(hb, g, c % QUANT_G / 32) * (float)(quant_code(hb, g, c % QUANT_G) - QUANT_ZERO(hb));
        }
    } else {
        size_t es = type == BN_F32 ? 4 : 2;
        if (type == BN_BF16) { /* the usual embedding: a shift the compiler vectorizes */
            const uint16_t *src = (const uint16_t *)w + r * d;
            for (size_t c = 0; c < d; c++) {
                uint32_t u = (uint32_t)src[c] << 16;
                memcpy(&out[c], &u, 4);
            }
            return;
        }
        bn_to_f32(type, (const uint8_t *)w + r * d * es, out, d);
    }
}
