/* kern_attn.h — causal attention of one query token over one KV head
 * (kern_attn.c). */
#ifndef BN_KERN_ATTN_H
#define BN_KERN_ATTN_H

#include "core.h"

struct bn_cpu;

/* Causal attention of one query token over one KV head: the g query heads
 * that share the head (GQA), each of hd floats, against positions
 * 0..n_pos-1 of the cache (f16 or f32 elements). K is kept transposed,
 * element d of position p at k[d·ldk + p], so that a score kernel reads
 * consecutive positions into vector lanes and never sums across a vector;
 * V by rows, position p's row at v[p·ld]. For each head j:
 *   out_j = Σ_p softmax_p(scale · q_j·k_p) · v_p
 * sc is scratch for g·n_pos floats. K and V elements are read (and
 * converted from f16) once for all g heads; float sums, so
 * implementations agree to rounding, not bit for bit. */
typedef struct bn_att_task {
    const float *q; /* g heads, hd apart */
    const void *k, *v;
    size_t ld, hd, g, n_pos;
    int f16;
    float scale;
    float *sc;
    float *out; /* g heads, hd apart */
    size_t ldk;  /* K's stride between dimensions */
} bn_att_task;
typedef void (*bn_att_fn)(const bn_att_task *a);

/* The fastest attention cpu can run (the portable scalar one for a zeroed
 * bn_cpu); never NULL. */
bn_att_fn bn_att_find(const struct bn_cpu *cpu);

#endif
