/* kern_2bit.h — what every SIMD kernel for the 2-bit layouts (t2, i2s)
 * shares. Internal to the kernel files.
 *
 * The idea: a SIMD kernel reads a weight row as vectors of W bytes
 * (W = 16 NEON, 32 AVX2, 64 AVX-512). Shifting a vector right by 2p and
 * masking with 3 gives W codes (w+1) of "plane" p. Which columns those
 * codes belong to depends on the layout (t2 interleaves 4 columns per
 * byte, I2_S puts 32-column groups in bit planes) — but the set's own
 * quantize() writes the activations in exactly that order, so the inner
 * loop is the same multiply-add for every layout and needs no shuffles:
 *
 *   q'[4W·v + W·p + b] = q[element(byte W·v + b, plane p)]
 *
 * for the first V vectors of a row (those that hold only whole groups of
 * real columns); columns after them keep their natural position and are
 * done by a scalar tail (but in the avx512 set's t2, whose tail goes
 * plane-major in 64-column units first: k2_units). The
 * integer dot product is then
 *
 *   Σ_c w·q = Σ_{SIMD part} code·q' − Σ_{SIMD part} q' + Σ_{tail} w·q
 *
 * which is exact in int32 (|Σ| ≤ 2·128·K). */
#ifndef BN_KERN_2BIT_H
#define BN_KERN_2BIT_H

#include "core.h"
#include "kernels.h"
#include "pack.h"

#include <math.h>
#include <string.h>

/* Vectors of W bytes at the start of a row that hold only real columns
 * and whole layout groups. */
static inline size_t k2_nvec(uint32_t layout, size_t W, size_t k)
{
    if (layout == BN_B3)
        return 0; /* b3 kernels keep activations in natural order */
    if (layout == BN_I2S) {
        size_t blocks = k / 128; /* whole 32-byte blocks */
        return W <= 32 ? blocks * (32 / W) : blocks / (W / 32);
    }
    return k / (4 * W); /* t2: a byte is 4 consecutive columns */
}

/* Whole 64-column units of a t2 row's tail past its whole vectors
 * (columns c0..k): the AVX2 and AVX-512 sets read them plane-major, column
 * 64u + 4b + p of the tail at 64u + 16p + b, a unit's 16 weight bytes
 * broadcast to 128-bit lanes and shifted 2p in the lane of plane p (one
 * vector on AVX-512, planes 0|1 and 2|3 in two on AVX2). The bundled
 * model's 704-column rows end in three such units on AVX-512 and one on
 * AVX2. I2_S and b3 have none. */
static inline size_t k2_units(uint32_t layout, size_t k, size_t c0)
{
    return layout == BN_T2 ? (k - c0) / 64 : 0;
}

/* Where column c goes in the set's activation order (the avx512 set's
 * t2 tail units aside: kern_avx512.c). */
static inline size_t k2_pos(uint32_t layout, size_t W, size_t V, size_t c)
{
    if (c >= 4 * W * V)
        return c;
    size_t g, p; /* byte of the row, plane */
    if (layout == BN_I2S) {
        g = c / 128 * 32 + c % 32;
        p = 3 - c % 128 / 32;
    } else {
        g = c / 4;
        p = c % 4;
    }
    return 4 * W * (g / W) + W * p + g % W;
}

/* The reference quantization (kern_ref.c's formula, bit for bit) writing
 * q in the set's order. */
static inline float k2_quantize(uint32_t layout, size_t W, const float *x, size_t k, int8_t *q)
{
    float amax = 0;
    for (size_t i = 0; i < k; i++) {
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
    size_t V = k2_nvec(layout, W, k);
    for (size_t i = 0; i < k; i++) {
        float v = nearbyintf(x[i] * s);
        if (v > 127)
            v = 127;
        if (v < -128)
            v = -128;
        q[k2_pos(layout, W, V, i)] = (int8_t)v;
    }
    return s;
}

/* Σ w·q over the tail columns [4WV, k) of row r (natural order). */
static inline int32_t k2_tail(uint32_t layout, const uint8_t *w, size_t k, size_t r, size_t c0, const int8_t *q)
{
    int32_t a = 0;
    for (size_t c = c0; c < k; c++)
        a += bn_packed_get(layout, w, k, r, c) * q[c];
    return a;
}

/* How the GEMV and the GEMM of a few tokens read a range of rows. From
 * K2_STREAM_MIN bytes on: 4 rows at a time from the range's quarters,
 * four long streams each prefetched K2_AHEAD bytes ahead, as the avx512
 * b3 GEMV reads. On Zen 5 (one thread, 2B4T FFN matrices from memory, 1 GiB of
 * copies, each way in turn in one process) four adjacent rows read 15-16
 * GB/s, the same rows interleaved in fours as one stream 21-23 (bn's
 * layout in memory until 2026-12), the quarters 31-37. A shorter range
 * (the bundled model's matrices are 4-45 KB) takes 4 adjacent rows, the
 * next 4 prefetched: from the caches the quarters ran 15-25% slower.
 * Every row's sum is the same either way. The avx512 GEMV and GEMM of a
 * few tokens read so, and the avx2 GEMV (its GEMM takes adjacent rows). */
enum { K2_AHEAD = 2048, K2_STREAM_MIN = 64 << 10 };

/* The row step of a range's groups of 4 rows: its quarter when it
 * streams, else 1 (adjacent rows). */
static inline size_t k2_row_step(size_t rb, size_t r0, size_t r1)
{
    return (r1 - r0) * rb >= K2_STREAM_MIN ? (r1 - r0) / 4 : 1;
}

/* The tails of the rows a kernel is working on, decoded once to weights
 * −1/0/+1 in natural order. k2_tail (a call per element) cost a small
 * model whose widths are not whole vectors (the bundled one: 704 = 2·256
 * + 192) about half its decode time, and a GEMM paid it once per token;
 * decoded once per row, each token's share is a plain int8 dot product.
 * Four slots hold the last four rows decoded (a kernel works on at most
 * 4 rows at a time: adjacent, or a quarter of a range apart). */
enum { K2_TAIL_MAX = 512 }; /* columns; tails are < 4W (t2) or < 4W + 128 (i2s) */
/* The rows are kept as codes w + 1 (0, 1, 2: unsigned bytes, so that the
 * dot product is a uint8 × int8 one, which -O2 turns into vpdpbusd in the
 * VNNI kernels, 3x the int8 × int8 one on Zen 5); Σ w·q is then
 * Σ (w+1)·q − Σ q, and the Σ q of the tail of up to 4 token rows q
 * (slots by pointer, as a kernel call walks up to 4 tokens at a time)
 * are kept too. Both live for one kernel call, while q does not change. */
typedef struct k2_tails {
    size_t row[4];
    uint8_t w[4][K2_TAIL_MAX];
    const int8_t *q[4];
    int32_t qsum[4];
    unsigned next, next_row;
} k2_tails;

static inline void k2_tails_init(k2_tails *t)
{
    for (int i = 0; i < 4; i++) {
        t->row[i] = SIZE_MAX;
        t->q[i] = NULL;
    }
    t->next = t->next_row = 0;
}

/* k2_tail_dot, k2_tail_unpack and k2_dot_u8i8 are always inlined: called
 * from a kernel compiled for AVX-512 or AVX2 (a target attribute), their
 * loops are then vectorized for that ISA. GCC had split k2_tail_dot into
 * a plain-SSE2 copy called per row, 15% of the tiny model's decode (its
 * 704-wide down projection leaves a 192-column tail per row). Integer
 * sums: the same results in any order. */
#define K2_INLINE inline __attribute__((always_inline))

static K2_INLINE void k2_tail_unpack(uint32_t layout, const uint8_t *w, size_t k, size_t r, size_t c0, uint8_t *wt)
{
    const uint8_t *row = w + r * bn_packed_row_bytes(layout, k);
    size_t n = k - c0, i = 0;
    if (layout == BN_T2 && c0 % 4 == 0) {
        /* a byte's four codes spread to four bytes, first column in the
         * low byte: no dependent table load per byte, and -O2 vectorizes it */
        const uint8_t *b = row + c0 / 4;
        for (; i + 64 <= n; i += 64) /* a fixed count: vectorized */
            for (size_t j = 0; j < 16; j++) {
                uint32_t v = b[i / 4 + j], x = (v | v << 6 | v << 12 | v << 18) & 0x03030303u;
                memcpy(wt + i + 4 * j, &x, 4);
            }
        for (; i + 4 <= n; i += 4) {
            uint32_t v = b[i / 4], x = (v | v << 6 | v << 12 | v << 18) & 0x03030303u;
            memcpy(wt + i, &x, 4);
        }
    } else if (layout == BN_I2S && c0 % 128 == 0) {
        /* column c0 + i: block (c0 + i)/128, byte j%32, plane j/32 (j = i%128);
         * a whole plane of a block is 32 columns in a row, a fixed-count loop */
        const uint8_t *b = row + c0 / 128 * 32;
        for (; i + 32 <= n; i += 32) {
            const uint8_t *blk = b + i / 128 * 32;
            unsigned sh = 6 - 2 * (unsigned)(i % 128 / 32);
            for (size_t j = 0; j < 32; j++)
                wt[i + j] = (uint8_t)((blk[j] >> sh) & 3);
        }
    }
    for (; i < n; i++)
        wt[i] = (uint8_t)(bn_packed_get(layout, w, k, r, c0 + i) + 1);
}

/* Σ a·b over n uint8 a and int8 b: whole 64-element chunks first, a loop
 * of fixed trip count that -O2 vectorizes. */
static K2_INLINE int32_t k2_dot_u8i8(const uint8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        int32_t c = 0;
        for (size_t j = 0; j < 64; j++)
            c += a[i + j] * b[i + j];
        s += c;
    }
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Σ w·q over the tail columns [c0, k) of row r, as k2_tail, its decoding
 * shared through t. */
static K2_INLINE int32_t k2_tail_dot(k2_tails *t, uint32_t layout, const uint8_t *w, size_t k, size_t r, size_t c0,
                                     const int8_t *q)
{
    if (c0 >= k)
        return 0;
    if (k - c0 > K2_TAIL_MAX)
        return k2_tail(layout, w, k, r, c0, q);
    int at = -1;
    for (int i = 0; i < 4; i++)
        if (t->row[i] == r)
            at = i;
    if (at < 0) { /* this row's tail decoded, in the oldest slot */
        at = (int)(t->next_row++ % 4);
        k2_tail_unpack(layout, w, k, r, c0, t->w[at]);
        t->row[at] = r;
    }
    uint8_t *wt = t->w[at];
    int slot = -1;
    for (int i = 0; i < 4; i++)
        if (t->q[i] == q)
            slot = i;
    if (slot < 0) { /* this token's Σ q over the tail, once per call */
        slot = (int)(t->next++ % 4);
        int32_t qs = 0;
        size_t i = c0;
        for (; i + 64 <= k; i += 64) {
            int32_t c = 0;
            for (size_t j = 0; j < 64; j++)
                c += q[i + j];
            qs += c;
        }
        for (; i < k; i++)
            qs += q[i];
        t->q[slot] = q;
        t->qsum[slot] = qs;
    }
    return k2_dot_u8i8(wt, q + c0, k - c0) - t->qsum[slot];
}

/* Float activations (verification only, natural order): unpacks a block
 * of a row at a time, like the t2 reference. */
static inline void k2_gemm_f32(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                               const float *x, size_t n, size_t ldx, float *y, size_t ldy)
{
    enum { BLK = 256 };
    float wv[BLK], acc[BN_KERN_MAX_N];
    for (size_t r = r0; r < r1; r++) {
        memset(acc, 0, n * sizeof acc[0]);
        for (size_t c0 = 0; c0 < k; c0 += BLK) {
            size_t nb = k - c0 < BLK ? k - c0 : BLK;
            for (size_t j = 0; j < nb; j++)
                wv[j] = (float)bn_packed_get(layout, w, k, r, c0 + j);
            for (size_t t = 0; t < n; t++) {
                const float *xt = x + t * ldx + c0;
                float a = 0;
                for (size_t j = 0; j < nb; j++)
                    a += wv[j] * xt[j];
                acc[t] += a;
            }
        }
        for (size_t t = 0; t < n; t++)
            y[t * ldy + r] = acc[t] * beta;
    }
}

/* Defines name##_gemm_f32 for layout L (the float path every set shares);
 * K2_COMMON_FUNCS adds the reference name##_quantize at width W. */
#define K2_F32_FUNC(L, name)                                                                                  \
    static void name##_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x, \
                                size_t n, size_t ldx, float *y, size_t ldy)                                   \
    {                                                                                                         \
        k2_gemm_f32(L, w, k, r0, r1, beta, x, n, ldx, y, ldy);                                                \
    }
#define K2_COMMON_FUNCS(L, Wd, name)                                                                          \
    static float name##_quantize(const float *x, size_t k, int8_t *q) { return k2_quantize(L, Wd, x, k, q); } \
    K2_F32_FUNC(L, name)

/* The set of a file's three (t2, i2s, b3) for layout; NULL for others. */
static inline const bn_kernels *k2_by_layout(uint32_t layout, const bn_kernels *t2, const bn_kernels *i2s,
                                             const bn_kernels *b3)
{
    return layout == BN_T2 ? t2 : layout == BN_I2S ? i2s : layout == BN_B3 ? b3 : NULL;
}

/* The per-ISA set constructors (kern_avx2.c, kern_avx512.c, kern_neon.c);
 * each returns NULL for layouts it lacks or when not built for this
 * architecture. They do not check the CPU: kern_select.c does. */
const bn_kernels *bn_kernels_avx2(uint32_t layout);
const bn_kernels *bn_kernels_avx512(uint32_t layout);
const bn_kernels *bn_kernels_neon(uint32_t layout, int dotprod);
/* avx512's quantize and GEMV with the AMX-INT8 GEMM (t2, i2s, b3). */
const bn_kernels *bn_kernels_amx(uint32_t layout);
/* kern_amx.c: the gemm contract for layout (t2, i2s, b3) on activations in
 * the avx512 set's order. Only for CPUs that bn_cpu_detect finds
 * amx_int8 on. */
void bn_amx_gemm(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                 const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy);
const bn_kernels *bn_kernels_ref_packed(uint32_t layout);

#endif
