/* kern_neon.c — AArch64 Advanced SIMD kernels for the 2-bit layouts (t2,
 * i2s), with and without the dot-product extension.
 *
 * A 16-byte load of a weight row holds 64 weights in four bit planes;
 * byte shifts (vshrq_n_u8) and a mask give 16 codes (w+1 ∈ {0,1,2}).
 * Activations arrive in this set's order (kern_2bit.h, W = 16).
 *   dotprod: sdot adds 4 code·q products into each int32 lane — exact.
 *   plain:   smull to int16 (|code·q| ≤ 256), then sadalp into int32.
 * The dotprod functions carry their own target attribute, so one binary
 * holds both and the CPU check picks. */
#include "kern_2bit.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE inline __attribute__((always_inline))
#define TDOT __attribute__((target("arch=armv8.2-a+dotprod")))

enum { W = 16 };

static INLINE int32_t qsum(const int8_t *q, size_t nb)
{
    int32x4_t acc = vdupq_n_s32(0);
    for (size_t i = 0; i < nb; i += 16)
        acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(q + i)));
    return vaddvq_s32(acc);
}

/* Σ code·q' over V vectors for RT rows × TT tokens; dot selects sdot. */
#define TILE_BODY(MAC)                                                                         \
    int32x4_t acc[4][4];                                                                       \
    const uint8x16_t m3 = vdupq_n_u8(3);                                                       \
    /* all 16, not only RT x TT: GCC cannot see that the rest stay unread */                \
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                                                                \
        _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++)                                                            \
            acc[r][t] = vdupq_n_s32(0);                                                        \
    for (size_t v = 0; v < V; v++) {                                                           \
        uint8x16_t raw[4];                                                                     \
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                           \
            raw[r] = vld1q_u8(w + r * rb + W * v);                                             \
        const int8_t *qv = q + 4 * W * v;                                                      \
        for (int p = 0; p < 4; p++) {                                                          \
            int8x16_t c[4];                                                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {                                                     \
                uint8x16_t sh = p == 0   ? raw[r]                                              \
                                : p == 1 ? vshrq_n_u8(raw[r], 2)                               \
                                : p == 2 ? vshrq_n_u8(raw[r], 4)                               \
                                         : vshrq_n_u8(raw[r], 6);                              \
                c[r] = vreinterpretq_s8_u8(vandq_u8(sh, m3));                                  \
            }                                                                                  \
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {                                                     \
                int8x16_t a = vld1q_s8(qv + t * ldq + W * p);                                  \
                _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                   \
                    MAC(acc[r][t], c[r], a);                                                   \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                               \
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)                                                           \
            out[r][t] = vaddvq_s32(acc[r][t]);

#define MAC_PLAIN(acc, c, a)                                                                   \
    do {                                                                                       \
        int16x8_t lo = vmull_s8(vget_low_s8(c), vget_low_s8(a));                               \
        lo = vmlal_high_s8(lo, c, a); /* 2 products per lane: |.| ≤ 512 */                     \
        acc = vpadalq_s16(acc, lo);                                                            \
    } while (0)
#define MAC_DOT(acc, c, a) acc = vdotq_s32(acc, c, a)

static INLINE void tile_plain(const uint8_t *w, size_t rb, size_t V, const int8_t *q, size_t ldq, int RT, int TT,
                              int32_t out[4][4])
{
    TILE_BODY(MAC_PLAIN)
}

static TDOT INLINE void tile_dot(const uint8_t *w, size_t rb, size_t V, const int8_t *q, size_t ldq, int RT, int TT,
                                 int32_t out[4][4])
{
    TILE_BODY(MAC_DOT)
}

/* gemv/gemm over one tile function; TILE is tile_plain or tile_dot. */
#define IMPL(ATTR, TILE, suffix)                                                                                  \
    static ATTR INLINE void gemm_##suffix(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1,      \
                                          float beta, const int8_t *q, const float *s, size_t n, size_t ldq,      \
                                          float *y, size_t ldy)                                                   \
    {                                                                                                             \
        size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), c0 = 4 * W * V;                   \
        int32_t qs[BN_KERN_MAX_N];                                                                                \
        for (size_t t = 0; t < n; t++)                                                                            \
            qs[t] = qsum(q + t * ldq, c0);                                                                        \
        k2_tails tails;                                                                                           \
        k2_tails_init(&tails);                                                                                    \
        for (size_t r = r0, rt; r < r1; r += rt) {                                                                \
            rt = r1 - r >= 4 ? 4 : 1;                                                                             \
            for (size_t t = 0; t < n; t += 4) {                                                                   \
                int tt = n - t >= 4 ? 4 : (int)(n - t);                                                           \
                int32_t out[4][4];                                                                                \
                const uint8_t *wr = w + r * rb;                                                                   \
                const int8_t *qt = q + t * ldq;                                                                   \
                if (rt == 4) {                                                                                    \
                    if (tt == 4)                                                                                  \
                        TILE(wr, rb, V, qt, ldq, 4, 4, out);                                                      \
                    else if (tt == 1)                                                                             \
                        TILE(wr, rb, V, qt, ldq, 4, 1, out);                                                      \
                    else                                                                                          \
                        TILE(wr, rb, V, qt, ldq, 4, tt, out);                                                     \
                } else                                                                                            \
                    TILE(wr, rb, V, qt, ldq, 1, tt, out);                                                         \
                for (size_t i = 0; i < rt; i++)                                                                   \
                    for (int j = 0; j < tt; j++) {                                                                \
                        size_t tk = t + (size_t)j;                                                                \
                        int32_t a = out[i][j] - qs[tk] + k2_tail_dot(&tails, layout, w, k, r + i, c0, q + tk * ldq);         \
                        y[tk * ldy + r + i] = bn_kern_out(a, s[tk], beta);                                        \
                    }                                                                                             \
            }                                                                                                     \
        }                                                                                                         \
    }

IMPL(, tile_plain, plain)
IMPL(TDOT, tile_dot, dot)

#define SET_FUNCS(L, name, ATTR, suffix)                                                                          \
    static ATTR void name##_##suffix##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,        \
                                            const int8_t *q, const float *s, size_t n, size_t ldq, float *y,      \
                                            size_t ldy)                                                           \
    {                                                                                                             \
        gemm_##suffix(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy);                                               \
    }                                                                                                             \
    static ATTR void name##_##suffix##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,        \
                                            const int8_t *q, float s, float *y)                                   \
    {                                                                                                             \
        gemm_##suffix(L, w, k, r0, r1, beta, q, &s, 1, 0, y, 0);                                                  \
    }

K2_COMMON_FUNCS(BN_T2, W, t2)
K2_COMMON_FUNCS(BN_I2S, W, i2s)
SET_FUNCS(BN_T2, t2, , plain)
SET_FUNCS(BN_I2S, i2s, , plain)
SET_FUNCS(BN_T2, t2, TDOT, dot)
SET_FUNCS(BN_I2S, i2s, TDOT, dot)

static const bn_kernels sets[2][2] = {
    {{"neon", BN_T2, t2_quantize, t2_plain_gemm, t2_plain_gemv, t2_gemm_f32},
     {"neon", BN_I2S, i2s_quantize, i2s_plain_gemm, i2s_plain_gemv, i2s_gemm_f32}},
    {{"dotprod", BN_T2, t2_quantize, t2_dot_gemm, t2_dot_gemv, t2_gemm_f32},
     {"dotprod", BN_I2S, i2s_quantize, i2s_dot_gemm, i2s_dot_gemv, i2s_gemm_f32}},
};

const bn_kernels *bn_kernels_neon(uint32_t layout, int dotprod)
{
    int d = dotprod ? 1 : 0;
    return layout == BN_T2 ? &sets[d][0] : layout == BN_I2S ? &sets[d][1] : NULL;
}

#else
const bn_kernels *bn_kernels_neon(uint32_t layout, int dotprod)
{
    (void)layout;
    (void)dotprod;
    return NULL;
}
#endif
