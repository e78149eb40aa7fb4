/* kern_tl_ref.c — the scalar references for the lookup-table layouts tl1
 * and tl2: decode a row (tl_layout.c), sum w·q exactly. The SIMD sets
 * (kern_tl_avx2.c, kern_tl_avx512.c, kern_tl_neon.c) are checked against
 * these bit for bit. */
#include "kern_tl.h"

static float tl_quantize(const float *x, size_t k, int8_t *q)
{
    return bn_kernels_ref_t2()->quantize(x, k, q); /* natural order */
}

#define REF_SET(L, name)                                                                                           \
    static void name##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,        \
                            const float *s, size_t n, size_t ldq, float *y, size_t ldy)                           \
    {                                                                                                              \
        tl_gemm_with(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 1, 1, NULL, NULL);                                    \
    }                                                                                                              \
    static void name##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s, \
                            float *y)                                                                              \
    {                                                                                                              \
        tl_gemm_with(L, w, k, r0, r1, beta, q, &s, 1, k, y, 0, 1, 1, NULL, NULL);                                       \
    }                                                                                                              \
    static void name##_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x,     \
                                size_t n, size_t ldx, float *y, size_t ldy)                                       \
    {                                                                                                              \
        tl_gemm_f32(L, w, k, r0, r1, beta, x, n, ldx, y, ldy);                                                    \
    }                                                                                                              \
    static const bn_kernels name = {"ref", L, tl_quantize, name##_gemm, name##_gemv, name##_gemm_f32};

REF_SET(BN_TL1, ref_tl1)
REF_SET(BN_TL2, ref_tl2)

const bn_kernels *bn_kernels_tl_ref(uint32_t layout)
{
    return layout == BN_TL1 ? &ref_tl1 : layout == BN_TL2 ? &ref_tl2 : NULL;
}
