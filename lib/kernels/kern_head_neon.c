/* kern_head_neon.c — the f32, f16, bf16, i8, q6, q5 and q4 heads for AArch64 (every
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
 * several tokens take a block of rows each.
 *
 * q6/q5/q4 likewise: block b of a group is one 16-byte register and
 * lanes 4b..4b+3, each lane the exact sum of its 4 bytes' code·qh, by
 * sdot where the CPU has the dot-product extension, else smull/smlal to
 * int16 (a code is at most 63 and |qh| at most 127: two products fit)
 * and pairwise adds; then the AVX-512 head's float steps in the same
 * lanes. */
#include "cpu.h"
#include "head_act.h"
#include "head_layout.h"
#include "kern_head.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define INLINE inline __attribute__((always_inline))
#define TDOT __attribute__((target("arch=armv8.2-a+dotprod")))


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

/* Lanes l = 0..3 of the exact Σ over bytes 4l..4l+3 of ulo·qlo + uhi·qhi. */
static INLINE int32x4_t qdot_plain(uint8x16_t ulo, int8x16_t qlo, uint8x16_t uhi, int8x16_t qhi)
{
    int8x16_t a = vreinterpretq_s8_u8(ulo), b = vreinterpretq_s8_u8(uhi);
    int16x8_t l = vmlal_s8(vmull_s8(vget_low_s8(a), vget_low_s8(qlo)), vget_low_s8(b), vget_low_s8(qhi));
    int16x8_t h = vmlal_high_s8(vmull_high_s8(a, qlo), b, qhi);
    return vpaddq_s32(vpaddlq_s16(l), vpaddlq_s16(h));
}

static TDOT INLINE int32x4_t qdot_dot(uint8x16_t ulo, int8x16_t qlo, uint8x16_t uhi, int8x16_t qhi)
{
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(ulo), qlo), vreinterpretq_s8_u8(uhi), qhi);
}

/* RT rows of a q type with hb high bits (q4 0, q5 1, q6 2) for one token
 * a (row i's group g at w + i·rs + g·gs) into out[i], with QDOT for the
 * int32 lanes: q6's high-plane bytes serve blocks 0 and 1 as they are
 * and 2 and 3 shifted by 4, q5's block b shifted by 2b. A macro body, so
 * that the sdot instance can carry its target attribute. */
#define QROWS_BODY(QDOT)                                                                                         \
    const uint8x16_t m0f = vdupq_n_u8(0x0f), mh = vdupq_n_u8(hb == 2 ? 0x30 : 0x10);                             \
    const size_t dat = QUANT_GB(hb) - 8;                                                                         \
    float32x4_t acc[4][4];                                                                                       \
    for (int i = 0; i < 4; i++)                                                                                  \
        for (int b = 0; b < 4; b++)                                                                              \
            acc[i][b] = vdupq_n_f32(0);                                                                          \
    for (size_t g = 0; g < G; g++) {                                                                             \
        const int8_t *qg = a->q + QUANT_G * g;                                                                   \
        for (int i = 0; i < RT; i++) {                                                                           \
            const uint8_t *gp = w + (size_t)i * rs + gs * g;                                                     \
            float dws[4];                                                                                        \
            vst1q_f32(dws, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(gp + dat))))); \
            uint8x16_t hp0 = vdupq_n_u8(0), hp1 = hp0;                                                           \
            if (hb)                                                                                              \
                hp0 = vld1q_u8(gp + 64);                                                                         \
            if (hb == 2)                                                                                         \
                hp1 = vld1q_u8(gp + 80);                                                                         \
            for (int b = 0; b < 4; b++) {                                                                        \
                uint8x16_t raw = vld1q_u8(gp + 16 * b);                                                          \
                uint8x16_t ulo = vandq_u8(raw, m0f), uhi = vshrq_n_u8(raw, 4);                                   \
                if (hb) {                                                                                        \
                    uint8x16_t hs = hb == 2 ? (b == 0 ? hp0 : b == 1 ? hp1 : b == 2 ? vshrq_n_u8(hp0, 4) : vshrq_n_u8(hp1, 4)) \
                                            : vshlq_u8(hp0, vdupq_n_s8((int8_t)(-2 * b)));               \
                    ulo = vorrq_u8(ulo, vandq_u8(vshlq_n_u8(hs, 4), mh));                                        \
                    uhi = vorrq_u8(uhi, vandq_u8(hb == 2 ? vshlq_n_u8(hs, 2) : vshlq_n_u8(hs, 3), mh));          \
                }                                                                                                \
                int32x4_t sl = vsubq_s32(QDOT(ulo, vld1q_s8(qg + 16 * b), uhi, vld1q_s8(qg + 64 + 16 * b)),       \
                                         vld1q_s32(a->cr + 16 * g + 4 * b));                                     \
                float32x4_t m = vmulq_f32(vdupq_n_f32(dws[b]), vld1q_f32(a->dh + 16 * g + 4 * b));               \
                acc[i][b] = vfmaq_f32(acc[i][b], vcvtq_f32_s32(sl), m);                                          \
            }                                                                                                    \
        }                                                                                                        \
    }                                                                                                            \
    for (int i = 0; i < RT; i++)                                                                                 \
        out[i] = sum16(acc[i]);

static INLINE void qrows_plain(int hb, const uint8_t *w, size_t rs, size_t gs, size_t G, const bn_qact *a,
                               const int RT, float out[4])
{
    QROWS_BODY(qdot_plain)
}

static TDOT INLINE void qrows_dot(int hb, const uint8_t *w, size_t rs, size_t gs, size_t G, const bn_qact *a,
                                  const int RT, float out[4])
{
    QROWS_BODY(qdot_dot)
}
#undef QROWS_BODY

/* bn_qhead_run's block: rows [r0, r1) token by token, 4 rows at a time
 * from the range's quarters (ROWS: qrows_plain or qrows_dot). */
#define QBLOCK_BODY(ROWS)                                                                                        \
    size_t gb = QUANT_GB(hb), G = d / QUANT_G, rb = G * gb, q = (r1 - r0) / 4;                                  \
    float o[4];                                                                                                  \
    for (int t = 0; t < tt; t++) {                                                                               \
        float *yt = y + (size_t)t * ldy;                                                                         \
        for (size_t r = r0; r < r0 + q; r++) {                                                                   \
            ROWS(hb, (const uint8_t *)w + r * rb, q * rb, gb, G, &a[t], 4, o);                                   \
            for (size_t i = 0; i < 4; i++)                                                                       \
                yt[r + i * q] = o[i];                                                                            \
        }                                                                                                        \
        for (size_t r = r0 + 4 * q; r < r1; r++) {                                                               \
            ROWS(hb, (const uint8_t *)w + r * rb, rb, gb, G, &a[t], 1, o);                                       \
            yt[r] = o[0];                                                                                        \
        }                                                                                                        \
    }

static INLINE void qblock_plain(int hb, const void *w, size_t d, size_t r0, size_t r1, const bn_qact *a, int tt,
                                float *y, size_t ldy)
{
    QBLOCK_BODY(qrows_plain)
}

static TDOT INLINE void qblock_dot(int hb, const void *w, size_t d, size_t r0, size_t r1, const bn_qact *a, int tt,
                                   float *y, size_t ldy)
{
    QBLOCK_BODY(qrows_dot)
}
#undef QBLOCK_BODY

BN_QHEAD_FN(vn_q6, , qblock_plain, 2, 1)
BN_QHEAD_FN(vn_q5, , qblock_plain, 1, 1)
BN_QHEAD_FN(vn_q4, , qblock_plain, 0, 1)
BN_QHEAD_FN(vd_q6, TDOT, qblock_dot, 2, 1)
BN_QHEAD_FN(vd_q5, TDOT, qblock_dot, 1, 1)
BN_QHEAD_FN(vd_q4, TDOT, qblock_dot, 0, 1)

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
    /* the q types with sdot where the CPU has the dot-product extension */
    static const bn_head_fns dot = {vn_f32, vn_f16, vn_bf16, vn_i8, vd_q6, vd_q5, vd_q4},
                             plain = {vn_f32, vn_f16, vn_bf16, vn_i8, vn_q6, vn_q5, vn_q4};
    return cpu->neon ? bn_head_fns_pick(cpu->dotprod ? &dot : &plain, type) : NULL;
}

#else

bn_head_fn bn_head_find_neon(uint32_t type, const bn_cpu *cpu)
{
    (void)type, (void)cpu;
    return NULL;
}

#endif
