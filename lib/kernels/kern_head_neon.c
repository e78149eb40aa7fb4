/* kern_head_neon.c — the f32, f16, bf16 and i8 heads for AArch64 (every
 * AArch64 CPU has Advanced SIMD with fused multiply-add and the f16
 * conversions): without them those CPUs ran the scalar loop, one float
 * chain a row, far below the memory's speed.
 *
 * Bit for bit the AVX-512 and AVX2 heads' results (kern_head.c,
 * kern_head_avx2.c), so a model's logits are the same on x86 and ARM: a
 * row's sum is 16 lanes, lane j adding columns j, j+16, ... by fused
 * multiply-adds, the last partial group through zeroed lanes, then added
 * in sum16_ps's order; here four 4-lane accumulators hold lanes 0-3, 4-7,
 * 8-11 and 12-15. Rows 4 at a time from the range's quarters, as there;
 * several tokens take a block of rows each. */
#include "cpu.h"
#include "head_layout.h"
#include "kern_head.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define INLINE inline __attribute__((always_inline))


/* The 16 lanes a[0..3] added as sum16_ps adds them: halves (lanes 8-15
 * onto 0-7), quarters, then pairs. */
static INLINE float sum16(const float32x4_t a[4])
{
    float32x4_t t0 = vaddq_f32(a[2], a[0]), t1 = vaddq_f32(a[3], a[1]);
    float32x4_t u = vaddq_f32(t1, t0);
    float32x4_t v = vaddq_f32(u, vextq_f32(u, u, 2));
    return vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1);
}


/* 4 elements of a row from p as floats. */
static INLINE float32x4_t load4(uint32_t type, const uint8_t *p)
{
    switch (type) {
    case BN_F32: return vld1q_f32((const float *)(const void *)p);
    case BN_F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)p)));
    case BN_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(const void *)p), 16));
    default: {
        int8_t b[8] = {0};
        memcpy(b, p, 4);
        return vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(b)))));
    }
    }
}

/* 16 columns of one row at p into its four accumulators. */
static INLINE void step16(uint32_t type, const uint8_t *p, size_t es, const float32x4_t x[4], float32x4_t a[4])
{
    for (int j = 0; j < 4; j++)
        a[j] = vfmaq_f32(a[j], load4(type, p + 4 * (size_t)j * es), x[j]);
}

/* Σ row·h for RT rows (rs bytes apart) into out; the last partial 16
 * columns from zero-padded copies. */
static INLINE void rows_dot(uint32_t type, const uint8_t *row, size_t rs, size_t d, const float *h, const int RT,
                            float out[4])
{
    size_t es = head_elem_bytes(type), full = d / 16 * 16;
    float32x4_t a[4][4];
    for (int i = 0; i < RT; i++)
        for (int j = 0; j < 4; j++)
            a[i][j] = vdupq_n_f32(0);
    for (size_t c = 0; c < full; c += 16) {
        const float32x4_t x[4] = {vld1q_f32(h + c), vld1q_f32(h + c + 4), vld1q_f32(h + c + 8), vld1q_f32(h + c + 12)};
        for (int i = 0; i < RT; i++)
            step16(type, row + (size_t)i * rs + c * es, es, x, a[i]);
    }
    if (full < d) {
        float xt[16] = {0};
        memcpy(xt, h + full, (d - full) * sizeof *xt);
        const float32x4_t x[4] = {vld1q_f32(xt), vld1q_f32(xt + 4), vld1q_f32(xt + 8), vld1q_f32(xt + 12)};
        for (int i = 0; i < RT; i++) {
            uint8_t wt[64] = {0};
            memcpy(wt, row + (size_t)i * rs + full * es, (d - full) * es);
            step16(type, wt, es, x, a[i]);
        }
    }
    for (int i = 0; i < RT; i++)
        out[i] = sum16(a[i]);
}

/* Rows [r0, r1) of one token: 4 at a time from the range's quarters, the
 * last 1-3 alone; i8 rows times their scales. */
static INLINE void head_rows(uint32_t type, const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h,
                      float *y)
{
    size_t rb = d * head_elem_bytes(type), q = (r1 - r0) / 4;
    float o[4];
    for (size_t r = r0; r < r0 + q; r++) {
        rows_dot(type, (const uint8_t *)w + r * rb, q * rb, d, h, 4, o);
        for (size_t i = 0; i < 4; i++)
            y[r + i * q] = type == BN_I8 ? o[i] * i8_row_scale(w, rows, d, r + i * q) : o[i];
    }
    for (size_t r = r0 + 4 * q; r < r1; r++) {
        rows_dot(type, (const uint8_t *)w + r * rb, rb, d, h, 1, o);
        y[r] = type == BN_I8 ? o[0] * i8_row_scale(w, rows, d, r) : o[0];
    }
}

static INLINE void head_neon(uint32_t type, const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h,
                      size_t n, float *y, size_t ldy)
{
    size_t step = n == 1 ? r1 - r0 : HEAD_ROWS;
    for (size_t b0 = r0; b0 < r1; b0 += step) {
        size_t b1 = r1 - b0 > step ? b0 + step : r1;
        for (size_t t = 0; t < n; t++)
            head_rows(type, w, rows, d, b0, b1, h + t * d, y + t * ldy);
    }
}

#define HEAD_NEON_FN(name, type)                                                                                 \
    static void name(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n,      \
                     float *y, size_t ldy)                                                                       \
    {                                                                                                            \
        head_neon(type, w, rows, d, r0, r1, h, n, y, ldy);                                                       \
    }
HEAD_NEON_FN(vn_f32, BN_F32)
HEAD_NEON_FN(vn_f16, BN_F16)
HEAD_NEON_FN(vn_bf16, BN_BF16)
HEAD_NEON_FN(vn_i8, BN_I8)
#undef HEAD_NEON_FN

bn_head_fn bn_head_find_neon(uint32_t type, const bn_cpu *cpu)
{
    if (!cpu->neon)
        return NULL;
    switch (type) {
    case BN_F32: return vn_f32;
    case BN_F16: return vn_f16;
    case BN_BF16: return vn_bf16;
    case BN_I8: return vn_i8;
    default: return NULL;
    }
}

#else

bn_head_fn bn_head_find_neon(uint32_t type, const bn_cpu *cpu)
{
    (void)type, (void)cpu;
    return NULL;
}

#endif
