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

/* Causal attention of one query token over one KV head: the g query heads
 * that share the head (GQA), each of hd floats, against positions
 * 0..n_pos-1 of the cache (position p's K and V rows start at element
 * p·ld of k and v; f16 or f32 elements). For each head j:
 *   out_j = Σ_p softmax_p(scale · q_j·k_p) · v_p
 * sc is scratch for g·n_pos floats. One K/V row is read (and converted
 * from f16) once for all g heads; float sums, so implementations agree
 * to rounding, not bit for bit. */
typedef struct bn_att_task {
    const float *q; /* g heads, hd apart */
    const void *k, *v;
    size_t ld, hd, g, n_pos;
    int f16;
    float scale;
    float *sc;
    float *out; /* g heads, hd apart */
} bn_att_task;
typedef void (*bn_att_fn)(const bn_att_task *a);

/* The fastest attention cpu can run (the portable scalar one for a zeroed
 * bn_cpu); never NULL. */
bn_att_fn bn_att_find(const struct bn_cpu *cpu);

/* n floats to IEEE binary16, round to nearest even (bn_f32_to_f16 for
 * every finite input); for the f16 KV cache. Never NULL. */
typedef void (*bn_f16_row_fn)(const float *x, uint16_t *h, size_t n);
bn_f16_row_fn bn_f16_row_find(const struct bn_cpu *cpu);

#endif
