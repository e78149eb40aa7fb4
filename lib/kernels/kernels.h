/* kernels.h — the ternary matrix kernels behind one small interface.
 *
 * A kernel set serves one weight layout (BN_T2 for the reference; packed
 * layouts from bn-pack add their own sets) and computes, for rows r0..r1 of
 * a ternary matrix W (values w in {-1,0,1}, one tensor scale beta):
 *
 *   quantized activations:  y[t][r] = bn_kern_out(sum_c w[r][c] * q[t][c], s[t], beta)
 *   float activations:      y[t][r] = (sum_c w[r][c] * x[t][c]) * beta
 *
 * The integer sum is exact (int32), so every implementation of `gemm` must
 * give bit-identical results to the scalar reference: optimized sets are
 * tested against it that way. The float variant is for verification
 * (--no-act-quant) and only has to agree to rounding.
 *
 * Kernels know nothing about models: they see a byte layout, sizes and
 * row ranges (the caller splits rows between threads). */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Most tokens one gemm call takes (the forward pass prefills in batches of
 * at most this many), so kernels can keep per-token accumulators on the
 * stack. 128: the amx set makes its weight tiles once per batch, and 128
 * tokens against 64 made 2B4T pp512 12-15% faster. */
#define BN_KERN_MAX_N 128

/* The one output formula every kernel shares: int32 accumulator, the
 * token's activation scale s = 127/absmax, the tensor's beta. Written once
 * here so no kernel can round differently. */
static inline float bn_kern_out(int32_t acc, float s, float beta)
{
    return (float)acc / s * beta;
}

typedef struct bn_kernels {
    const char *name;   /* "ref", later "avx2", "neon", ... */
    uint32_t layout;    /* bn_type of the weights it reads */
    /* Per-token absmax int8 quantization of one row of k floats:
     * s = 127 / max(max|x|, 1e-5), q = clamp(rint(x*s), -128, 127)
     * (half to even). Returns s. The k bytes of q may be in an order of
     * the set's own (optimized sets permute them to match their weight
     * layout); only this set's gemm/gemv read them. */
    float (*quantize)(const float *x, size_t k, int8_t *q);
    /* n tokens (n <= BN_KERN_MAX_N): q rows ldq apart, scales s[n];
     * y rows ldy apart, column r written for r in [r0, r1). */
    void (*gemm)(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, const float *s,
                 size_t n, size_t ldq, float *y, size_t ldy);
    /* One token: the decode step. Same contract as gemm with n = 1.
     * Any q works; a 64-byte aligned one is read at full speed (rows too
     * long for q to stay in L1 read it from L2, where a split load costs
     * two: bn_ctx keeps q and ldq aligned). */
    void (*gemv)(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s, float *y);
    /* Float activations (verification only). */
    void (*gemm_f32)(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x, size_t n,
                     size_t ldx, float *y, size_t ldy);
} bn_kernels;

/* The scalar reference for `t2`; always present. */
const bn_kernels *bn_kernels_ref_t2(void);

/* The kernel set called name ("ref", or "auto" for the best this build and
 * CPU offer) for a layout, or NULL when there is none. */
const bn_kernels *bn_kernels_find(const char *name, uint32_t layout);

/* Every set name bn_kernels_find accepts, NULL-terminated ("auto", "ref",
 * then the optimized sets, whether or not this CPU runs them). */
const char *const *bn_kernels_names(void);

struct bn_cpu;
/* The set called name ("auto": the best) for layout that cpu can run
 * (bn_kernels_find asks this CPU). */
const bn_kernels *bn_kernels_pick(const char *name, uint32_t layout, const struct bn_cpu *cpu);

#endif
