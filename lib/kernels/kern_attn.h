/* kern_attn.h — causal attention of one query token over one KV head
 * (kern_attn.c). */
#ifndef BN_KERN_ATTN_H
#define BN_KERN_ATTN_H

#include "core.h"

struct bn_cpu;

/* Causal attention of one query token over one KV head: the g query heads
 * that share the head (GQA), each of hd floats, against positions
 * 0..n_pos-1 of a sequence's cache (f16 or f32 elements). The cache is a
 * list of blocks of bs positions each (kvcache.h; a contiguous cache is one
 * block of bs >= n_pos): positions [i·bs, (i+1)·bs) lie in blk[i]. Inside a
 * block K is kept transposed, element d of block position p at byte
 * koff + (d·bs + p)·es, so that a score kernel reads consecutive positions
 * into vector lanes and never sums across a vector; V by rows, position
 * p's row at voff + p·ld·es. For each head j:
 *   out_j = Σ_p softmax_p(scale · q_j·k_p) · v_p
 * sc is scratch for g·n_pos floats. K and V elements are read (and
 * converted from f16) once for all g heads; float sums, so
 * implementations agree to rounding, not bit for bit. How the positions
 * are split into blocks does not change a result: a score is one lane's
 * sum, and the weighted sum of V runs over the positions in order. */
typedef struct bn_att_task {
    const float *q; /* g heads, hd apart */
    const uint8_t *const *blk;
    size_t bs;         /* positions per block */
    size_t koff, voff; /* bytes from a block's start to this head's K and V */
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
/* The portable one over positions first..n_pos-1 only: a sliding window
 * (the found ones all start at 0). */
void bn_att_scalar_window(const bn_att_task *a, size_t first);

#endif
