/* kern_head.h — float-matrix × float-vectors for the output head
 * (kern_head.c). */
#ifndef BN_KERN_HEAD_H
#define BN_KERN_HEAD_H

#include "core.h"

struct bn_cpu;

/* y[t*ldy + r] = Σ_c W[r][c]·h[t*d + c] for r in [r0, r1), t < n; W is
 * the whole [rows, d] tensor in the function's type.
 *
 * f32/f16/bf16 and i8 (int8 rows, an f32 scale per row) are widened to
 * float and multiplied with float h. q6 is an int8 dot product: each
 * token's h is first quantized in blocks of 32 (h ≈ dh·qh, dh = absmax/127,
 * qh = rint(h/dh)), and y = Σ_blocks dw·dh·Σ (u−32)·qh, exact in int32 per
 * block; the float part agrees between implementations to rounding. */
typedef void (*bn_head_fn)(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n,
                           float *y, size_t ldy);

/* Widest row a q6 head may have (its kernels keep one token's quantized
 * row on the stack). */
#define BN_HEAD_MAX_D 16384

/* The fastest implementation cpu can run for a head type (f32, f16, bf16,
 * i8, q6; the portable scalar one for a zeroed bn_cpu); NULL for other
 * types. Choose once (at load), call per token. */
bn_head_fn bn_head_find(uint32_t type, const struct bn_cpu *cpu);

/* A head function for the same type whose rows are interleaved in fours
 * (kern_ilv.h) in units of *unit bytes, bit-identical to bn_head_find's
 * on the row-major tensor; NULL when this CPU has none. r0 must be a
 * multiple of 4, r1 one or the last row. */
bn_head_fn bn_head_find_ilv(uint32_t type, size_t d, const struct bn_cpu *cpu, size_t *unit);

/* Bytes of one row of a [rows, d] head tensor (i8: without its scale,
 * which follows all rows). */
size_t bn_head_row_bytes(uint32_t type, size_t d);

/* Whether a [rows, d] tensor of type can be a head or embedding table
 * here; fills why (static text) when not. */
int bn_head_type_ok(uint32_t type, size_t d, const char **why);

/* Row r of a [rows, d] head/embedding tensor as floats (the embedding
 * lookup). */
void bn_head_row(uint32_t type, const void *w, size_t rows, size_t d, size_t r, float *out);

/* bn-quant's encoders. q6: one row of d (a multiple of 128) floats into
 * d/128·104 bytes; each block's scale is chosen (among a few candidates)
 * for the least squared error. i8: a row into d int8 and its scale
 * (absmax/127, round half to even). */
void bn_q6_encode_row(const float *x, size_t d, uint8_t *out);
/* q4: one row of d (a multiple of 128) floats into d/128·72 bytes, each
 * block's scale chosen like q6's. */
void bn_q4_encode_row(const float *x, size_t d, uint8_t *out);
/* q5: one row of d (a multiple of 128) floats into d/128·88 bytes, each
 * block's scale chosen like q6's. */
void bn_q5_encode_row(const float *x, size_t d, uint8_t *out);
float bn_i8_encode_row(const float *x, size_t d, int8_t *q);

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

/* n floats to IEEE binary16, round to nearest even (bn_f32_to_f16 for
 * every finite input); for the f16 KV cache. Never NULL. */
typedef void (*bn_f16_row_fn)(const float *x, uint16_t *h, size_t n);
bn_f16_row_fn bn_f16_row_find(const struct bn_cpu *cpu);

#endif
