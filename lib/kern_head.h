/* kern_head.h — float-matrix × float-vectors for the output head
 * (kern_head.c). */
#ifndef BN_KERN_HEAD_H
#define BN_KERN_HEAD_H

#include "bn.h"

struct bn_cpu;

/* y[t*ldy + r] = Σ_c W[r][c]·h[t*d + c] for r in [r0, r1), t < n; W is
 * [rows, d] row-major in the function's type. */
typedef void (*bn_head_fn)(const void *w, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                           size_t ldy);

/* The fastest implementation cpu can run for a float type (f32, f16,
 * bf16); NULL for other types. Choose once (at load), call per token. */
bn_head_fn bn_head_find(uint32_t type, const struct bn_cpu *cpu);

#endif
