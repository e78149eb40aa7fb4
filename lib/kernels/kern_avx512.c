/* kern_avx512.c — AVX-512 VNNI kernels for t2, i2s and b3, and the amx sets
 * built on them (kern_amx.c).
 *
 * One vpdpbusd multiplies 64 unsigned codes (w+1 ∈ {0,1,2}) by 64 signed
 * int8 activations and adds groups of four into 16 int32 lanes: exact, no
 * int16 intermediate that could saturate. A 64-byte load of a weight row
 * holds 256 weights in four bit planes; activations arrive pre-permuted
 * by this set's quantize() (kern_2bit.h), so a plane is one shift, one
 * and, one vpdpbusd per token.
 *
 * GEMM: tiles of 4 rows × 4 tokens (16 zmm accumulators), and of 4 rows
 * × the 1-3 tokens left over, in assembly; the 4 rows' bytes stay in L1
 * while every token tile passes over them; the int32 sums are converted
 * to floats in a pass of their own (out_pass). GEMV: 4 rows at a time,
 * two accumulators per row so the dependency chains are short.
 * Compiled with target attributes, so the file builds with any x86-64
 * compiler flags; the set is only offered when cpuid/xgetbv say so. */
#include "kern_2bit.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE inline __attribute__((always_inline))

enum { W = 64 };

/* Σ of the first nb bytes (a multiple of 64) of q, as signed. */
static T512 INLINE int32_t qsum(const int8_t *q, size_t nb)
{
    __m512i acc = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
    for (size_t i = 0; i < nb; i += 64)
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512((const void *)(q + i)));
    return _mm512_reduce_add_epi32(acc);
}

/* The sums of 4 vectors at once: out[i] = Σ v[i]. One reduction per
 * vector costs ~10 shuffles and adds; on short rows (the bundled model:
 * one vector per plane) that outweighed the dot products themselves.
 * Pairs are added lane-wise until each 128-bit lane holds a partial sum
 * of every vector, then the lanes are added: 13 operations for 4. */
static T512 INLINE __m512i sum4_lanes(const __m512i v[4])
{
    /* per 128-bit lane: [v0+v0', v1+v1', ...] pairs, then [v0, v1, v2, v3] */
    __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
    __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

static T512 INLINE void sum4(const __m512i v[4], int32_t out[4])
{
    __m512i p = sum4_lanes(v);
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(p), _mm512_extracti64x4_epi64(p, 1));
    _mm_storeu_si128((__m128i *)out, _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

/* out[i] = Σ v[i] for 16 vectors: four sum4_lanes, then 128-bit lanes
 * gathered and added twice (45 operations instead of ~160). */
static T512 INLINE __m512i sum16v(__m512i v[4][4])
{
    __m512i b[4], c[2];
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) b[i] = sum4_lanes(v[i]);
    /* lanes [A0+A1, A2+A3, B0+B1, B2+B3] */
    _Pragma("GCC unroll 2") for (int i = 0; i < 2; i++) c[i] =
        _mm512_add_epi32(_mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* A t2 tail unit's 16 bytes (64 columns) as codes, 128-bit lane p
 * holding plane p: one load, broadcast, shifted by 2p per lane. */
static T512 INLINE __m512i tail_planes(const uint8_t *b)
{
    const __m512i sh = _mm512_set_epi32(0x00060006, 0x00060006, 0x00060006, 0x00060006, 0x00040004, 0x00040004,
                                        0x00040004, 0x00040004, 0x00020002, 0x00020002, 0x00020002, 0x00020002, 0, 0,
                                        0, 0);
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)b));
    return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(3));
}

/* Σ code·q' of U tail units (t2_units) into acc[i][t] for RT rows (row i's
 * units at w + i·rs) and TT tokens (token t's at q + t·ldq). */
static T512 INLINE void tail_tile(const uint8_t *w, size_t rs, size_t U, const int8_t *q, size_t ldq, int RT, int TT,
                                  __m512i acc[4][4])
{
    for (size_t u = 0; u < U; u++)
        for (int i = 0; i < RT; i++) {
            __m512i c = tail_planes(w + i * rs + 16 * u);
            for (int t = 0; t < TT; t++)
                acc[i][t] = _mm512_dpbusd_epi32(acc[i][t], c, _mm512_loadu_si512((const void *)(q + t * ldq + 64 * u)));
        }
}

/* Float row → int8 in this set's order, bit-identical to k2_quantize: the
 * product x·s is one float multiply either way, vcvtps2dq rounds half to
 * even like nearbyintf (default MXCSR), and vpmovsdb saturates exactly as
 * the reference's clamp to [-128, 127]. Whole 4W-column chunks are
 * quantized in natural order into a small buffer and then rearranged. */
static T512 INLINE __m128i q16(const float *x, __m512 s, __mmask16 m)
{
    return _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), s)));
}

/* The t2 tail past the whole vectors, in units of 64 columns (16 bytes),
 * when the set reads it so (units != 0; the amx set's GEMM reads the tail
 * in natural order): a unit's activations go plane-major like a vector's,
 * column 64u + 4b + p at 64u + 16p + b, and the kernels read the unit's 16
 * bytes once into a vector whose 128-bit lane p holds plane p (tail_planes).
 * The bundled model's down projection (704 = 2·256 + 192 columns) spent as
 * long on its 192-column tails, decoded and dotted per row and token, as
 * on its two whole vectors. Columns past the last unit stay natural. */
static inline size_t t2_units(uint32_t layout, int units, size_t k, size_t c0)
{
    return units ? k2_units(layout, k, c0) : 0;
}

static T512 INLINE float quantize_impl(uint32_t layout, int units, const float *x, size_t k, int8_t *q)
{
    __m512 mx = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= k; i += 16)
        mx = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), mx); /* NaN skipped, as in the reference */
    if (i < k)
        mx = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps((__mmask16)((1u << (k - i)) - 1), x + i)), mx);
    float amax = _mm512_reduce_max_ps(mx);
    float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
    __m512 vs = _mm512_set1_ps(s);
    size_t V = k2_nvec(layout, W, k);
    for (size_t v = 0; v < V; v++) {
        const float *xv = x + 4 * W * v;
        int8_t *qv = q + 4 * W * v;
        _Alignas(64) int8_t nat[4 * W];
        for (int j = 0; j < 16; j++)
            _mm_store_si128((__m128i *)(nat + 16 * j), q16(xv + 16 * j, vs, 0xffff));
        if (layout == BN_T2) {
            /* column 4b+p → plane p, byte b: byte p of the 32-bit word b */
            for (int j = 0; j < 4; j++) {
                __m512i wd = _mm512_load_si512((const void *)(nat + 64 * j));
                for (int p = 0; p < 4; p++)
                    _mm_storeu_si128((__m128i *)(qv + W * p + 16 * j),
                                     _mm512_cvtepi32_epi8(_mm512_srli_epi32(wd, 8 * p)));
            }
        } else {
            /* I2_S: column 128h + 32m + i → plane 3-m, byte 32h + i */
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 4; m++)
                    memcpy(qv + W * (3 - m) + 32 * h, nat + 128 * h + 32 * m, 32);
        }
    }
    size_t c0 = 4 * W * V, U = t2_units(layout, units, k, c0);
    for (size_t u = 0; u < U; u++) {
        const float *xu = x + c0 + 64 * u;
        int8_t *qu = q + c0 + 64 * u;
        _Alignas(64) int8_t nat[64];
        for (int j = 0; j < 4; j++)
            _mm_store_si128((__m128i *)(nat + 16 * j), q16(xu + 16 * j, vs, 0xffff));
        __m512i wd = _mm512_load_si512((const void *)nat);
        for (int p = 0; p < 4; p++)
            _mm_storeu_si128((__m128i *)(qu + 16 * p), _mm512_cvtepi32_epi8(_mm512_srli_epi32(wd, 8 * p)));
    }
    for (size_t c = c0 + 64 * U; c < k; c += 16) {
        __mmask16 m = k - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - c)) - 1);
        _mm_mask_storeu_epi8(q + c, m, q16(x + c, vs, m));
    }
    return s;
}

/* RT rows × TT tokens of Σ code·q' over V vectors, left in acc[r][t] as
 * 16 lanes to add (the GEMM's last 1-3 rows, one at a time; whole groups
 * of 4 go through the assembly tiles below); row i's vector v at
 * w + i·rs + v·vs (rs: the bytes between the rows, vs = W); each row's line pf
 * bytes ahead is prefetched, unless pf is 0. */
static T512 INLINE void tile(const uint8_t *w, size_t rs, size_t vs, size_t pf, size_t V, const int8_t *q,
                             size_t ldq, int RT, int TT, __m512i acc[4][4])
{
    const __m512i m3 = _mm512_set1_epi8(3);
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++)
            acc[r][t] = _mm512_setzero_si512();
    for (size_t v = 0; v < V; v++) {
        __m512i raw[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            raw[r] = _mm512_loadu_si512((const void *)(w + r * rs + vs * v));
        if (pf)
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
                _mm_prefetch((const char *)(w + r * rs + vs * v + pf), _MM_HINT_T0);
        const int8_t *qv = q + 4 * W * v;
#define PLANE(p)                                                                                       \
    do {                                                                                               \
        __m512i c[4];                                                                                  \
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                                   \
            c[r] = _mm512_and_si512(_mm512_srli_epi16(raw[r], 2 * (p)), m3);                           \
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {                                                                 \
            __m512i a = _mm512_loadu_si512((const void *)(qv + t * ldq + W * (p)));                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                               \
                acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], c[r], a);                                   \
        }                                                                                              \
    } while (0)
        PLANE(0);
        PLANE(1);
        PLANE(2);
        PLANE(3);
#undef PLANE
    }
}

/* zmm0-15 set to zero: the accumulators of the assembly tiles below */
#define ASM_ZERO_ZMM0_15                                                                                           \
    "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"                                                                            \
    "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"                                                                            \
    "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"                                                                            \
    "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"                                                                            \
    "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"                                                                            \
    "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"                                                                            \
    "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"                                                                            \
    "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"                                                                            \
    "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"                                                                            \
    "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"                                                                            \
    "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"                                                                         \
    "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"                                                                         \
    "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"                                                                         \
    "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"                                                                         \
    "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"                                                                         \
    "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"

/* The tiles of 4 rows × T tokens (T = 4: every multi-token pass's bulk;
 * 1-3: the tokens past its last whole 4, or all of a short pass) in
 * assembly: from intrinsics gcc 12 copied most of the accumulators at
 * every vector and spilled some, and the rows' bytes, to the stack, about
 * twice the cycles of the vpdpbusd themselves (2B4T, 8 tokens: 66 of Zen
 * 5's 128 int8 MACs a cycle; 2560 × 6912, 1 token: 1.5x). Here nothing
 * moves: zmm0-15 the accumulators, zmm16-19 the rows' raw bytes, zmm20-23
 * one plane's codes of the 4 rows, zmm24-27 the tokens' activations of
 * that plane, zmm28 the mask 3. Per plane: 4 shifts, 4 ands, T loads, 4·T
 * vpdpbusd. n vectors; row i's vector v at w + i·rs + v·vs, token t's
 * activations at q + t·ldq; p runs pf bytes ahead of w, prefetching each
 * of the 4 rows' lines there. Then the u tail units (t2_units): a unit's 16 bytes
 * broadcast to the 4 lanes, lane p shifted by 2p (tsh, as tail_planes),
 * one vpdpbusd per row and token. The sums go to o[r][t] as they are; the
 * caller adds their lanes (sum16v, sum4). */
#define T2A_DP(a, c, acc) "vpdpbusd %%zmm" #a ", %%zmm" #c ", %%zmm" #acc "\n\t"
#define T2A_ACT(off, reg, idx) "vmovdqu64 " #off "(%[q]" idx "), %%zmm" #reg "\n\t"
#define T2A_AND                                                                                                    \
    "vpandd %%zmm28, %%zmm20, %%zmm20\n\t"                                                                         \
    "vpandd %%zmm28, %%zmm21, %%zmm21\n\t"                                                                         \
    "vpandd %%zmm28, %%zmm22, %%zmm22\n\t"                                                                         \
    "vpandd %%zmm28, %%zmm23, %%zmm23\n\t"
/* one plane (sh makes its codes in zmm20-23, off: its activations' offset) */
#define T2A_P4(sh, off)                                                                                            \
    sh T2A_ACT(off, 24, "") T2A_ACT(off, 25, ",%[ldq]") T2A_ACT(off, 26, ",%[ldq],2") T2A_ACT(off, 27, ",%[ldq3]") \
        T2A_AND T2A_DP(24, 20, 0) T2A_DP(25, 20, 1) T2A_DP(26, 20, 2) T2A_DP(27, 20, 3) T2A_DP(24, 21, 4)          \
            T2A_DP(25, 21, 5) T2A_DP(26, 21, 6) T2A_DP(27, 21, 7) T2A_DP(24, 22, 8) T2A_DP(25, 22, 9)              \
                T2A_DP(26, 22, 10) T2A_DP(27, 22, 11) T2A_DP(24, 23, 12) T2A_DP(25, 23, 13) T2A_DP(26, 23, 14)     \
                    T2A_DP(27, 23, 15)
#define T2A_P3(sh, off)                                                                                            \
    sh T2A_ACT(off, 24, "") T2A_ACT(off, 25, ",%[ldq]") T2A_ACT(off, 26, ",%[ldq],2") T2A_AND T2A_DP(24, 20, 0)    \
        T2A_DP(25, 20, 1) T2A_DP(26, 20, 2) T2A_DP(24, 21, 3) T2A_DP(25, 21, 4) T2A_DP(26, 21, 5)                  \
            T2A_DP(24, 22, 6) T2A_DP(25, 22, 7) T2A_DP(26, 22, 8) T2A_DP(24, 23, 9) T2A_DP(25, 23, 10)             \
                T2A_DP(26, 23, 11)
#define T2A_P2(sh, off)                                                                                            \
    sh T2A_ACT(off, 24, "") T2A_ACT(off, 25, ",%[ldq]") T2A_AND T2A_DP(24, 20, 0) T2A_DP(25, 20, 1)                \
        T2A_DP(24, 21, 2) T2A_DP(25, 21, 3) T2A_DP(24, 22, 4) T2A_DP(25, 22, 5) T2A_DP(24, 23, 6)                  \
            T2A_DP(25, 23, 7)
/* one token: planes 0 and 2 (and the tail) into zmm0-3, 1 and 3 into
 * zmm4-7, two short dependency chains per row as in the GEMV */
#define T2A_P1A(sh, off) sh T2A_ACT(off, 24, "") T2A_AND T2A_DP(24, 20, 0) T2A_DP(24, 21, 1) T2A_DP(24, 22, 2) T2A_DP(24, 23, 3)
#define T2A_P1B(sh, off) sh T2A_ACT(off, 24, "") T2A_AND T2A_DP(24, 20, 4) T2A_DP(24, 21, 5) T2A_DP(24, 22, 6) T2A_DP(24, 23, 7)
#define T2A_SHIFT(n)                                                                                               \
    "vpsrlw $" #n ", %%zmm16, %%zmm20\n\t"                                                                         \
    "vpsrlw $" #n ", %%zmm17, %%zmm21\n\t"                                                                         \
    "vpsrlw $" #n ", %%zmm18, %%zmm22\n\t"                                                                         \
    "vpsrlw $" #n ", %%zmm19, %%zmm23\n\t"
#define T2A_COPY                                                                                                   \
    "vmovdqa64 %%zmm16, %%zmm20\n\t"                                                                               \
    "vmovdqa64 %%zmm17, %%zmm21\n\t"                                                                               \
    "vmovdqa64 %%zmm18, %%zmm22\n\t"                                                                               \
    "vmovdqa64 %%zmm19, %%zmm23\n\t"
#define T2A_UNIT                                                                                                   \
    "vbroadcasti32x4 (%[w]), %%zmm20\n\t"                                                                          \
    "vbroadcasti32x4 (%[w],%[rs]), %%zmm21\n\t"                                                                    \
    "vbroadcasti32x4 (%[w],%[rs],2), %%zmm22\n\t"                                                                  \
    "vbroadcasti32x4 (%[w],%[rs3]), %%zmm23\n\t"                                                                   \
    "vpsrlvw %[tsh], %%zmm20, %%zmm20\n\t"                                                                         \
    "vpsrlvw %[tsh], %%zmm21, %%zmm21\n\t"                                                                         \
    "vpsrlvw %[tsh], %%zmm22, %%zmm22\n\t"                                                                         \
    "vpsrlvw %[tsh], %%zmm23, %%zmm23\n\t"
#define T2A_ST(acc, r, t) "vmovdqu64 %%zmm" #acc ", 64*(4*" #r "+" #t ")(%[o])\n\t"
#define T2A_FN(name, P0, P1, P2, P3, PT, STORE)                                                                    \
    static T512 INLINE void name(const uint8_t *w, size_t rs, size_t vs, size_t pf, size_t n, size_t u,            \
                                 const int8_t *q, size_t ldq, __m512i o[4][4])                                     \
    {                                                                                                              \
        const uint8_t *p = w + pf;                                                                                 \
        const __m512i tsh = _mm512_set_epi32(0x00060006, 0x00060006, 0x00060006, 0x00060006, 0x00040004,           \
                                             0x00040004, 0x00040004, 0x00040004, 0x00020002, 0x00020002,           \
                                             0x00020002, 0x00020002, 0, 0, 0, 0);                                  \
        __asm__ volatile(ASM_ZERO_ZMM0_15 "mov $0x03030303, %%eax\n\t"                                           \
                                          "vpbroadcastd %%eax, %%zmm28\n\t"                                       \
                                          "test %[n], %[n]\n\t"                                                   \
                                          "jz 2f\n"                                                                \
                                          "1:\n\t"                                                                 \
                                          "vmovdqu64 (%[w]), %%zmm16\n\t"                                         \
                                          "vmovdqu64 (%[w],%[rs]), %%zmm17\n\t"                                   \
                                          "vmovdqu64 (%[w],%[rs],2), %%zmm18\n\t"                                 \
                                          "vmovdqu64 (%[w],%[rs3]), %%zmm19\n\t"                                  \
                                          "prefetcht0 (%[p])\n\t"                                                  \
                                          "prefetcht0 (%[p],%[rs])\n\t"                                            \
                                          "prefetcht0 (%[p],%[rs],2)\n\t"                                          \
                                          "prefetcht0 (%[p],%[rs3])\n\t" P0 P1 P2 P3 "add %[vs], %[w]\n\t"         \
                                          "add %[vs], %[p]\n\t"                                                    \
                                          "add $256, %[q]\n\t"                                                     \
                                          "dec %[n]\n\t"                                                           \
                                          "jnz 1b\n"                                                               \
                                          "2:\n\t"                                                                 \
                                          "test %[u], %[u]\n\t"                                                   \
                                          "jz 4f\n"                                                                \
                                          "3:\n\t" PT "add $16, %[w]\n\t"                                          \
                                          "add $64, %[q]\n\t"                                                      \
                                          "dec %[u]\n\t"                                                           \
                                          "jnz 3b\n"                                                               \
                                          "4:\n\t" STORE                                                           \
                         : [w] "+r"(w), [p] "+r"(p), [q] "+r"(q), [n] "+r"(n), [u] "+r"(u)                        \
                         : [rs] "r"(rs), [rs3] "r"(3 * rs), [vs] "r"(vs), [ldq] "r"(ldq), [ldq3] "r"(3 * ldq),    \
                           [o] "r"(o), [tsh] "v"(tsh)                                                             \
                         : "memory", "cc", "rax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",  \
                           "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16",          \
                           "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",        \
                           "xmm26", "xmm27", "xmm28");                                                             \
    }
#define T2A_TILE(name, P, STORE)                                                                                   \
    T2A_FN(name, P(T2A_COPY, 0), P(T2A_SHIFT(2), 64), P(T2A_SHIFT(4), 128), P(T2A_SHIFT(6), 192), P(T2A_UNIT, 0),  \
           STORE)
#define T2A_STORE4 T2A_ST(0, 0, 0) T2A_ST(1, 0, 1) T2A_ST(2, 0, 2) T2A_ST(3, 0, 3) T2A_ST(4, 1, 0) T2A_ST(5, 1, 1) T2A_ST(6, 1, 2) T2A_ST(7, 1, 3) T2A_ST(8, 2, 0) T2A_ST(9, 2, 1) T2A_ST(10, 2, 2) T2A_ST(11, 2, 3) T2A_ST(12, 3, 0) T2A_ST(13, 3, 1) T2A_ST(14, 3, 2) T2A_ST(15, 3, 3)
#define T2A_STORE3 T2A_ST(0, 0, 0) T2A_ST(1, 0, 1) T2A_ST(2, 0, 2) T2A_ST(3, 1, 0) T2A_ST(4, 1, 1) T2A_ST(5, 1, 2) T2A_ST(6, 2, 0) T2A_ST(7, 2, 1) T2A_ST(8, 2, 2) T2A_ST(9, 3, 0) T2A_ST(10, 3, 1) T2A_ST(11, 3, 2)
#define T2A_STORE2 T2A_ST(0, 0, 0) T2A_ST(1, 0, 1) T2A_ST(2, 1, 0) T2A_ST(3, 1, 1) T2A_ST(4, 2, 0) T2A_ST(5, 2, 1) T2A_ST(6, 3, 0) T2A_ST(7, 3, 1)
#define T2A_STORE1 T2A_ST(0, 0, 0) T2A_ST(1, 1, 0) T2A_ST(2, 2, 0) T2A_ST(3, 3, 0) T2A_ST(4, 0, 1) T2A_ST(5, 1, 1) T2A_ST(6, 2, 1) T2A_ST(7, 3, 1)
T2A_TILE(t2_asm_4x4, T2A_P4, T2A_STORE4)
T2A_TILE(t2_asm_4x3, T2A_P3, T2A_STORE3)
T2A_TILE(t2_asm_4x2, T2A_P2, T2A_STORE2)
T2A_FN(t2_asm_4x1, T2A_P1A(T2A_COPY, 0), T2A_P1B(T2A_SHIFT(2), 64), T2A_P1A(T2A_SHIFT(4), 128),
       T2A_P1B(T2A_SHIFT(6), 192), T2A_P1A(T2A_UNIT, 0), T2A_STORE1)
#undef T2A_DP
#undef T2A_ACT
#undef T2A_AND
#undef T2A_P4
#undef T2A_P3
#undef T2A_P2
#undef T2A_P1A
#undef T2A_P1B
#undef T2A_SHIFT
#undef T2A_COPY
#undef T2A_UNIT
#undef T2A_ST
#undef T2A_FN
#undef T2A_TILE
#undef T2A_STORE1
#undef T2A_STORE2
#undef T2A_STORE3
#undef T2A_STORE4

/* GEMV: rows in fours with the dependency chain split over planes; rs
 * (the bytes between the rows: a row, or a quarter of a range) and vs as
 * in tile(); each row's line pf bytes ahead of the one it reads is
 * prefetched. */
static T512 INLINE void rows4_gemv(const uint8_t *w, size_t rs, size_t vs, size_t pf, size_t V, size_t U,
                                   const int8_t *q, int RT, int32_t out[4])
{
    __m512i a0[4], a1[4];
    const __m512i m3 = _mm512_set1_epi8(3);
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        a0[r] = a1[r] = _mm512_setzero_si512();
    for (size_t v = 0; v < V; v++) {
        const int8_t *qv = q + 4 * W * v;
        __m512i q0 = _mm512_loadu_si512((const void *)qv), q1 = _mm512_loadu_si512((const void *)(qv + W));
        __m512i q2 = _mm512_loadu_si512((const void *)(qv + 2 * W)),
                q3 = _mm512_loadu_si512((const void *)(qv + 3 * W));
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {
            __m512i raw = _mm512_loadu_si512((const void *)(w + r * rs + vs * v));
            _mm_prefetch((const char *)(w + r * rs + vs * v + pf), _MM_HINT_T0);
            a0[r] = _mm512_dpbusd_epi32(a0[r], _mm512_and_si512(raw, m3), q0);
            a1[r] = _mm512_dpbusd_epi32(a1[r], _mm512_and_si512(_mm512_srli_epi16(raw, 2), m3), q1);
            a0[r] = _mm512_dpbusd_epi32(a0[r], _mm512_and_si512(_mm512_srli_epi16(raw, 4), m3), q2);
            a1[r] = _mm512_dpbusd_epi32(a1[r], _mm512_and_si512(_mm512_srli_epi16(raw, 6), m3), q3);
        }
    }
    /* tail units */
    for (size_t u = 0; u < U; u++) {
        __m512i qu = _mm512_loadu_si512((const void *)(q + 4 * W * V + 64 * u));
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            a0[r] = _mm512_dpbusd_epi32(a0[r], tail_planes(w + r * rs + vs * V + 16 * u), qu);
    }
    if (RT == 4) {
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) a0[r] = _mm512_add_epi32(a0[r], a1[r]);
        sum4(a0, out);
        return;
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0[r], a1[r]));
}

/* Rows r + i·d (i < 4: d = 1 for 4 adjacent rows) of one token
 * (activations q, Σq' qs): their sums out minus qs, plus the rows'
 * natural-order tails past c0, stored at y as int32 for out_pass. */
static T512 INLINE void rows4_store(k2_tails *tails, uint32_t layout, const uint8_t *w, size_t k, size_t c0,
                                    size_t r, size_t d, const int8_t *q, const int32_t out[4], int32_t qs, float *y)
{
    __m128i a = _mm_sub_epi32(_mm_loadu_si128((const __m128i *)out), _mm_set1_epi32(qs));
    if (c0 < k)
        a = _mm_add_epi32(a, _mm_setr_epi32(k2_tail_dot(tails, layout, w, k, r, c0, q),
                                            k2_tail_dot(tails, layout, w, k, r + d, c0, q),
                                            k2_tail_dot(tails, layout, w, k, r + 2 * d, c0, q),
                                            k2_tail_dot(tails, layout, w, k, r + 3 * d, c0, q)));
    if (d == 1) {
        _mm_storeu_si128((__m128i *)(y + r), a);
        return;
    }
    _mm_storeu_si32(y + r, a);
    _mm_storeu_si32(y + r + d, _mm_bsrli_si128(a, 4));
    _mm_storeu_si32(y + r + 2 * d, _mm_bsrli_si128(a, 8));
    _mm_storeu_si32(y + r + 3 * d, _mm_bsrli_si128(a, 12));
}

/* The outputs of rows [r0, r1), left there as int32 sums (the kernels
 * store a tile's sums as they come), converted in one pass, 16 at a time:
 * bn_kern_out's conversion, division and product, so the same bits. A
 * division per 4-row tile waited on the divider in every tile; divisions
 * in a row of their own overlap: 5-12% off the bundled model's GEMV and
 * 1-3-token GEMM (Zen 5, both versions alternately in one process). */
static T512 INLINE void out_pass(float *y, size_t r0, size_t r1, float s, float beta)
{
    const __m512 vs = _mm512_set1_ps(s), vb = _mm512_set1_ps(beta);
    for (size_t r = r0; r < r1; r += 16) {
        __mmask16 m = r1 - r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (r1 - r)) - 1);
        __m512 a = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, y + r));
        _mm512_mask_storeu_ps(y + r, m, _mm512_mul_ps(_mm512_div_ps(a, vs), vb));
    }
}

/* The groups of 4 rows of gemv_impl: rows r + i·d of group g at r =
 * r0 + g·(d == 1 ? 4 : 1); d is 1 or a run-time quarter, each its own
 * loop where this is inlined. */
static T512 INLINE void gemv_groups(uint32_t layout, k2_tails *tails, const uint8_t *w, size_t k, size_t rb,
                                    size_t V, size_t U, size_t c0, size_t r0, size_t groups, size_t d,
                                    const int8_t *q, int32_t qs, float *y)
{
    size_t pf = d == 1 ? 4 * rb : K2_AHEAD;
    for (size_t g = 0; g < groups; g++) {
        size_t r = d == 1 ? r0 + 4 * g : r0 + g;
        int32_t out[4];
        rows4_gemv(w + r * rb, d * rb, W, pf, V, U, q, 4, out);
        rows4_store(tails, layout, w, k, c0, r, d, q, out, qs, y);
    }
}

/* Rows 4 at a time (k2_row_step), the last 1-3 one at a time. */
static T512 INLINE void gemv_impl(uint32_t layout, int units, const uint8_t *w, size_t k, size_t r0, size_t r1,
                                  float beta, const int8_t *q, float s, float *y)
{
    size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), U = t2_units(layout, units, k, 4 * W * V);
    size_t c0 = 4 * W * V + 64 * U; /* c0: where natural order starts */
    size_t quarter = (r1 - r0) / 4, d = k2_row_step(rb, r0, r1);
    int32_t qs = qsum(q, c0), out[4];
    k2_tails tails;
    k2_tails_init(&tails);
    if (d == 1)
        gemv_groups(layout, &tails, w, k, rb, V, U, c0, r0, quarter, 1, q, qs, y);
    else
        gemv_groups(layout, &tails, w, k, rb, V, U, c0, r0, quarter, d, q, qs, y);
    out_pass(y, r0, r0 + 4 * quarter, s, beta);
    for (size_t r = r0 + 4 * quarter; r < r1; r++) {
        rows4_gemv(w + r * rb, rb, W, K2_AHEAD, V, U, q, 1, out);
        y[r] = bn_kern_out(out[0] - qs + k2_tail_dot(&tails, layout, w, k, r, c0, q), s, beta);
    }
}

/* The sums of a 4 × 4 tile (o: 16 vectors whose lanes add up) into y as
 * int32 (out_pass converts them), rows r + i·d and tokens t..: lanes
 * added (sum16v) and put token-major (lane 4j + i: token j, row i), minus
 * each token's Σq', plus the rows' tails when the width has one. */
static T512 INLINE void tile_store(uint32_t layout, __m512i o[4][4], const uint8_t *w, size_t k, size_t c0,
                                   size_t r, size_t d, size_t t, const int8_t *q, const int32_t *qs, size_t ldq,
                                   k2_tails *tails, float *y, size_t ldy)
{
    const __m512i by_token = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512i a = _mm512_permutexvar_epi32(by_token, sum16v(o));
    a = _mm512_sub_epi32(a, _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(qs + t)))));
    if (c0 < k) {
        _Alignas(64) int32_t tl[16];
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 4; i++)
                tl[4 * j + i] = k2_tail_dot(tails, layout, w, k, r + (size_t)i * d, c0, q + (t + (size_t)j) * ldq);
        a = _mm512_add_epi32(a, _mm512_load_si512((const void *)tl));
    }
    if (d != 1) {
        _Alignas(64) int32_t v[16];
        _mm512_store_si512((void *)v, a);
        for (size_t j = 0; j < 4; j++)
            for (size_t i = 0; i < 4; i++)
                memcpy(y + (t + j) * ldy + r + i * d, &v[4 * j + i], sizeof v[0]);
        return;
    }
    _mm_storeu_si128((__m128i *)(y + t * ldy + r), _mm512_castsi512_si128(a));
    _mm_storeu_si128((__m128i *)(y + (t + 1) * ldy + r), _mm512_extracti32x4_epi32(a, 1));
    _mm_storeu_si128((__m128i *)(y + (t + 2) * ldy + r), _mm512_extracti32x4_epi32(a, 2));
    _mm_storeu_si128((__m128i *)(y + (t + 3) * ldy + r), _mm512_extracti32x4_epi32(a, 3));
}

/* Rows r + i·d (i < 4) × tokens t..t+TT-1 (TT 1 to 3: the tokens past the last
 * whole 4 × 4 tile, all of a 1-3-token pass) into y as int32 sums, as
 * tile_store leaves them, each token's 4 sums added by sum4: sum16v's 16
 * vectors, most of them zero, through the stack, with the intrinsics
 * tile, had run a 2-token tile over the bundled model's one-vector rows
 * at 3x the GEMV's time for 4 rows, one token at 2.5x. */
static T512 INLINE void small_tile(uint32_t layout, const uint8_t *w, size_t rb, size_t rs, size_t vs, size_t pf,
                                   size_t V, size_t U, size_t k, size_t c0, size_t r, size_t d, size_t t, const int8_t *q,
                                   size_t ldq, const int32_t *qs, k2_tails *tails, float *y, size_t ldy, const int TT)
{
    const uint8_t *wr = w + r * rb;
    const int8_t *qt = q + t * ldq;
    int32_t out[3][4];
    __m512i o[4][4];
    if (TT == 1) {
        t2_asm_4x1(wr, rs, vs, pf, V, U, qt, ldq, o);
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) o[i][0] = _mm512_add_epi32(o[i][0], o[i][1]);
    } else if (TT == 2)
        t2_asm_4x2(wr, rs, vs, pf, V, U, qt, ldq, o);
    else
        t2_asm_4x3(wr, rs, vs, pf, V, U, qt, ldq, o);
    _Pragma("GCC unroll 3") for (int j = 0; j < TT; j++) {
        const __m512i v[4] = {o[0][j], o[1][j], o[2][j], o[3][j]};
        sum4(v, out[j]);
    }
    _Pragma("GCC unroll 3") for (int j = 0; j < TT; j++) {
        size_t tk = t + (size_t)j;
        rows4_store(tails, layout, w, k, c0, r, d, q + tk * ldq, out[j], qs[tk], y + tk * ldy);
    }
}

/* Up to this many tokens a GEMM reads its rows as the GEMV does
 * (k2_row_step): a pass of a few tokens (a batch's decode step, a
 * verify pass) still waits on its weights from memory. Longer passes are
 * bound by arithmetic and take 4 adjacent rows, whose 4 × 4 tiles store
 * whole 16-byte pieces of each token's output. One Zen 5 thread, a 2B4T
 * FFN matrix from memory, against the rows interleaved in fours (bn's
 * layout in memory until 2026-12): quarters 1.0x at 4 tokens, 1.2x at 8,
 * 0.95x at 128, where adjacent rows are 1.0x. */
enum { K2_STREAM_MAX_N = 16 };

/* gemm_impl for n tokens with NR = n mod 4 known at compile time: rows
 * four at a time (k2_row_step when n ≤ K2_STREAM_MAX_N, else adjacent),
 * each group through the whole 4 × 4 token tiles, then the NR tokens left
 * (small_tile), while its bytes are in L1; the sums are converted
 * afterwards (out_pass). The last 1-3 rows one at a time. */
static T512 INLINE void gemm_rows(uint32_t layout, int units, const uint8_t *w, size_t k, size_t r0, size_t r1,
                                  float beta, const int8_t *q, const float *s, size_t n, size_t ldq, float *y,
                                  size_t ldy, const int NR)
{
    size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), U = t2_units(layout, units, k, 4 * W * V);
    size_t quarter = (r1 - r0) / 4, d = n <= K2_STREAM_MAX_N ? k2_row_step(rb, r0, r1) : 1;
    size_t rs = d * rb, pf = d == 1 ? 4 * rb : K2_AHEAD;
    size_t c0 = 4 * W * V + 64 * U, n4 = n - (size_t)NR; /* c0: where natural order starts */
    int32_t qs[BN_KERN_MAX_N];
    for (size_t t = 0; t < n; t++)
        qs[t] = qsum(q + t * ldq, c0);
    k2_tails tails;
    k2_tails_init(&tails);
    for (size_t g = 0; g < quarter; g++) {
        size_t r = d == 1 ? r0 + 4 * g : r0 + g;
        const uint8_t *wr = w + r * rb;
        for (size_t t = 0; t < n4; t += 4) {
            __m512i o[4][4];
            t2_asm_4x4(wr, rs, W, pf, V, U, q + t * ldq, ldq, o);
            tile_store(layout, o, w, k, c0, r, d, t, q, qs, ldq, &tails, y, ldy);
        }
        if (NR)
            small_tile(layout, w, rb, rs, W, pf, V, U, k, c0, r, d, n4, q, ldq, qs, &tails, y, ldy, NR);
    }
    size_t r = r0 + 4 * quarter;
    for (size_t t = 0; t < n; t++)
        out_pass(y + t * ldy, r0, r, s[t], beta);
    /* the last 1-3 rows: one at a time */
    for (; r < r1; r++) {
        const uint8_t *wr = w + r * rb;
        for (size_t t = 0; t < n; t += 4) {
            int tt = n - t >= 4 ? 4 : (int)(n - t);
            const int8_t *qt = q + t * ldq;
            __m512i o[4][4];
            switch (tt) {
            case 4: tile(wr, rb, W, 0, V, qt, ldq, 1, 4, o); break;
            case 3: tile(wr, rb, W, 0, V, qt, ldq, 1, 3, o); break;
            case 2: tile(wr, rb, W, 0, V, qt, ldq, 1, 2, o); break;
            default: tile(wr, rb, W, 0, V, qt, ldq, 1, 1, o); break;
            }
            tail_tile(wr + W * V, rb, U, qt + 4 * W * V, ldq, 1, tt, o);
            for (int j = 0; j < tt; j++) {
                size_t tk = t + (size_t)j;
                int32_t a = _mm512_reduce_add_epi32(o[0][j]) - qs[tk] +
                            k2_tail_dot(&tails, layout, w, k, r, c0, q + tk * ldq);
                y[tk * ldy + r] = bn_kern_out(a, s[tk], beta);
            }
        }
    }
}

static T512 INLINE void gemm_impl(uint32_t layout, int units, const uint8_t *w, size_t k, size_t r0, size_t r1,
                                  float beta, const int8_t *q, const float *s, size_t n, size_t ldq, float *y,
                                  size_t ldy)
{
    switch (n % 4) {
    case 0: gemm_rows(layout, units, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 0); break;
    case 1: gemm_rows(layout, units, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 1); break;
    case 2: gemm_rows(layout, units, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 2); break;
    default: gemm_rows(layout, units, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 3); break;
    }
}

/* One instance per layout, so the layout tests fold away. */
#define SET_FUNCS(L, name)                                                                                        \
    static T512 float name##_quantize(const float *x, size_t k, int8_t *q) { return quantize_impl(L, 1, x, k, q); } \
    K2_F32_FUNC(L, name)                                                                                          \
    static T512 void name##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, \
                                 float s, float *y)                                                              \
    {                                                                                                            \
        gemv_impl(L, 1, w, k, r0, r1, beta, q, s, y);                                                            \
    }                                                                                                            \
    static T512 void name##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, \
                                 const float *s, size_t n, size_t ldq, float *y, size_t ldy)                     \
    {                                                                                                            \
        gemm_impl(L, 1, w, k, r0, r1, beta, q, s, n, ldq, y, ldy);                                               \
    }

SET_FUNCS(BN_T2, t2)
SET_FUNCS(BN_I2S, i2s)

/* The amx set's t2 quantize and GEMV: the tail in natural order, as
 * kern_amx.c's GEMM reads it (t2_units). */
static T512 float t2_quantize_nat(const float *x, size_t k, int8_t *q)
{
    return quantize_impl(BN_T2, 0, x, k, q);
}

static T512 void t2_gemv_nat(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s,
                             float *y)
{
    gemv_impl(BN_T2, 0, w, k, r0, r1, beta, q, s, y);
}

/* ------------------------------------------------------------------ b3
 * Five weights per byte (pack.h, formats/bn-model.md 4.1). A 64-byte load
 * is one block of 320 columns; digit plane j of it is columns 64j..64j+63,
 * so the activations stay in natural order. m_0 is the byte, m_(j+1) =
 * 3·m_j mod 256 (two byte adds, which wrap), and digit j = ⌊3·m_j/256⌋.
 *
 * GEMV avoids extracting digits at all: 3·m_j = 256·d_j + m_(j+1), so
 *   256·Σ_j d_j·a_j = 3·Σ_j m_j·a_j − Σ_j m_(j+1)·a_j,
 * two vpdpbusd per plane on the raw bytes, combined lane by lane (see
 * b3_asm_rows4). Extracting digits instead costs more per plane than the
 * second vpdpbusd: the compares that make them share Zen 5's multiplying
 * pipes, and the byte adds of the chain are needed either way. GEMM
 * extracts digits once per row and plane (two unsigned compares into
 * masks, d = (m > 85) + (m > 170)) and shares them over the tile's
 * tokens. */
enum { B3_BLK = 320 };

static T512 INLINE int64_t sum64(__m512i v)
{
    __m512i w = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)),
                                 _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
    return _mm512_reduce_add_epi64(w);
}

/* One row-major row (the GEMV's last 1-3 rows, and the padded last block
 * of a row): vector v at w + 64·v, each load prefetching the line 4 rows
 * (rs bytes each) ahead, as the hardware prefetchers stop at 4 KiB pages. */
static T512 INLINE int64_t b3_row_gemv(const uint8_t *w, size_t rs, size_t V, const int8_t *q)
{
    __m512i a1 = _mm512_setzero_si512(), a2 = a1;
    for (size_t v = 0; v < V; v++) {
        const int8_t *qv = q + B3_BLK * v;
        __m512i m = _mm512_loadu_si512((const void *)(w + 64 * v));
        _mm_prefetch((const char *)(w + 4 * rs + 64 * v), _MM_HINT_T0);
        _Pragma("GCC unroll 5") for (int j = 0; j < 5; j++) {
            __m512i a = _mm512_loadu_si512((const void *)(qv + 64 * j));
            a1 = _mm512_dpbusd_epi32(a1, m, a);
            m = _mm512_add_epi8(m, _mm512_add_epi8(m, m));
            a2 = _mm512_dpbusd_epi32(a2, m, a);
        }
    }
    return (3 * sum64(a1) - sum64(a2)) / 256;
}

/* The last, partial block of a row (k not a multiple of 320) runs through
 * the same code on a zero-padded copy of its activations: padding weights
 * are 0 and so are their activations, and no scalar tail is needed. */
static inline size_t b3_pad(const int8_t *q, size_t k, size_t c0, int8_t pad[B3_BLK], int32_t *sum)
{
    size_t rem = k - c0;
    memset(pad, 0, B3_BLK);
    if (rem)
        memcpy(pad, q + c0, rem);
    for (size_t i = 0; i < rem; i++)
        *sum += pad[i];
    return rem;
}

/* The 4-row GEMV loop, written in assembly because it is the whole cost
 * of a b3 decode and it is issue-bound: per 64-byte block and row, 10
 * vpdpbusd and 10 byte adds, which Zen 5 runs at best in 5 cycles (its 4
 * vector pipes, 2 of them multiplying), Zen 4 in 10. From the same
 * intrinsics gcc 12 copied accumulators at every iteration and spilled
 * two to the stack (about 7 cycles a block on Zen 5); here each of the 4
 * rows has 4 accumulators (S and T below, for even and odd planes) that
 * never move, so no chain of dependent vpdpbusd is longer than 3 a block.
 *
 * Registers: zmm0-3 / 4-7 S of rows 0-3 for planes 0, 2, 4 / 1, 3;
 * zmm8-11 / 12-15 T likewise; zmm16-19 and zmm20-23 m_j and m_(j+1) of
 * rows 0-3 (their roles swap each plane); zmm24-25 activations. After
 * the blocks, row i's lanes 256·Σ d·a = 3·S − T (exact in each lane: a
 * lane's S and T products share bytes and activations, so the lane holds
 * 256 times its own digit sum) are shifted down by 8 and stored to o[i].
 * n whole blocks from q, then, if pad is not NULL, one more block whose
 * activations are pad; p runs pf bytes ahead of w, prefetching. */
#define B3A_ROW(m, t, a, s, tt)                                                                                    \
    "vpaddb %%zmm" #m ", %%zmm" #m ", %%zmm" #t "\n\t"                                                             \
    "vpdpbusd %%zmm" #a ", %%zmm" #m ", %%zmm" #s "\n\t"                                                           \
    "vpaddb %%zmm" #m ", %%zmm" #t ", %%zmm" #t "\n\t"                                                             \
    "vpdpbusd %%zmm" #a ", %%zmm" #t ", %%zmm" #tt "\n\t"
#define B3A_EVEN(off, m0, m1, m2, m3, t0, t1, t2, t3)                                                              \
    "vmovdqu64 " #off "(%[q]), %%zmm24\n\t" B3A_ROW(m0, t0, 24, 0, 8) B3A_ROW(m1, t1, 24, 1, 9)                  \
        B3A_ROW(m2, t2, 24, 2, 10) B3A_ROW(m3, t3, 24, 3, 11)
#define B3A_ODD(off, m0, m1, m2, m3, t0, t1, t2, t3)                                                               \
    "vmovdqu64 " #off "(%[q]), %%zmm25\n\t" B3A_ROW(m0, t0, 25, 4, 12) B3A_ROW(m1, t1, 25, 5, 13)                \
        B3A_ROW(m2, t2, 25, 6, 14) B3A_ROW(m3, t3, 25, 7, 15)
static T512 INLINE void b3_asm_rows4(const uint8_t *w, size_t rs, size_t vs, size_t pf, size_t n, const int8_t *q,
                                     const int8_t *pad, __m512i o[4])
{
    const uint8_t *p = w + pf;
    __asm__ volatile(
        ASM_ZERO_ZMM0_15
        "test %[n], %[n]\n\t"
        "jz 2f\n"
        "1:\n\t"
        "vmovdqu64 (%[w]), %%zmm16\n\t"
        "vmovdqu64 (%[w],%[rs]), %%zmm17\n\t"
        "vmovdqu64 (%[w],%[rs],2), %%zmm18\n\t"
        "vmovdqu64 (%[w],%[rs3]), %%zmm19\n\t"
        "prefetcht0 (%[p])\n\t"
        "prefetcht0 (%[p],%[rs])\n\t"
        "prefetcht0 (%[p],%[rs],2)\n\t"
        "prefetcht0 (%[p],%[rs3])\n\t"
        B3A_EVEN(0, 16, 17, 18, 19, 20, 21, 22, 23)
        B3A_ODD(64, 20, 21, 22, 23, 16, 17, 18, 19)
        B3A_EVEN(128, 16, 17, 18, 19, 20, 21, 22, 23)
        B3A_ODD(192, 20, 21, 22, 23, 16, 17, 18, 19)
        B3A_EVEN(256, 16, 17, 18, 19, 20, 21, 22, 23)
        "add %[vs], %[w]\n\t"
        "add %[vs], %[p]\n\t"
        "add $320, %[q]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n"
        "2:\n\t"
        "test %[pad], %[pad]\n\t"
        "jz 3f\n\t"
        "mov %[pad], %[q]\n\t"
        "xor %[pad], %[pad]\n\t"
        "mov $1, %[n]\n\t"
        "jmp 1b\n"
        "3:\n\t"
        /* row i: S = zmm(i) + zmm(4+i), T = zmm(8+i) + zmm(12+i), then (3S − T) >> 8 */
        "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t"
        "vpaddd %%zmm5, %%zmm1, %%zmm1\n\t"
        "vpaddd %%zmm6, %%zmm2, %%zmm2\n\t"
        "vpaddd %%zmm7, %%zmm3, %%zmm3\n\t"
        "vpaddd %%zmm12, %%zmm8, %%zmm8\n\t"
        "vpaddd %%zmm13, %%zmm9, %%zmm9\n\t"
        "vpaddd %%zmm14, %%zmm10, %%zmm10\n\t"
        "vpaddd %%zmm15, %%zmm11, %%zmm11\n\t"
        "vpaddd %%zmm0, %%zmm0, %%zmm4\n\t"
        "vpaddd %%zmm1, %%zmm1, %%zmm5\n\t"
        "vpaddd %%zmm2, %%zmm2, %%zmm6\n\t"
        "vpaddd %%zmm3, %%zmm3, %%zmm7\n\t"
        "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t"
        "vpaddd %%zmm5, %%zmm1, %%zmm1\n\t"
        "vpaddd %%zmm6, %%zmm2, %%zmm2\n\t"
        "vpaddd %%zmm7, %%zmm3, %%zmm3\n\t"
        "vpsubd %%zmm8, %%zmm0, %%zmm0\n\t"
        "vpsubd %%zmm9, %%zmm1, %%zmm1\n\t"
        "vpsubd %%zmm10, %%zmm2, %%zmm2\n\t"
        "vpsubd %%zmm11, %%zmm3, %%zmm3\n\t"
        "vpsrad $8, %%zmm0, %%zmm0\n\t"
        "vpsrad $8, %%zmm1, %%zmm1\n\t"
        "vpsrad $8, %%zmm2, %%zmm2\n\t"
        "vpsrad $8, %%zmm3, %%zmm3\n\t"
        "vmovdqu64 %%zmm0, (%[o])\n\t"
        "vmovdqu64 %%zmm1, 64(%[o])\n\t"
        "vmovdqu64 %%zmm2, 128(%[o])\n\t"
        "vmovdqu64 %%zmm3, 192(%[o])\n\t"
        : [w] "+r"(w), [p] "+r"(p), [q] "+r"(q), [n] "+r"(n), [pad] "+r"(pad)
        : [rs] "r"(rs), [rs3] "r"(3 * rs), [vs] "r"(vs), [o] "r"(o)
        : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
          "xmm23", "xmm24", "xmm25");
}
#undef B3A_ROW
#undef B3A_EVEN
#undef B3A_ODD

/* Blocks per b3_asm_rows4 call: a lane of 3·S − T is 256 times the digit
 * sum of its 4 bytes' 5 planes, at most 256·4·5·2·128 ≈ 1.3 M a block
 * (S and T themselves may wrap: the arithmetic is modulo 2^32 and only
 * 3·S − T has to fit), so 1024 blocks (k up to 327680) stay inside int32;
 * longer rows add the calls' shifted lanes, which are small. */
enum { B3_CHUNK = 1024 };

/* Σ d·a for 4 rows (row i's vector v at w + i·rs + v·vs) over V whole
 * blocks of q, then pad's block when pad is not NULL. */
static T512 INLINE void b3_gemv4(const uint8_t *w, size_t rs, size_t vs, size_t pf, size_t V, const int8_t *q,
                                 const int8_t *pad, int32_t out[4])
{
    __m512i d[4], o[4];
    size_t v0 = 0, n = V < B3_CHUNK ? V : B3_CHUNK;
    b3_asm_rows4(w, rs, vs, pf, n, q, n == V ? pad : NULL, d);
    for (v0 = n; v0 < V; v0 += n) {
        n = V - v0 < B3_CHUNK ? V - v0 : B3_CHUNK;
        b3_asm_rows4(w + vs * v0, rs, vs, pf, n, q + B3_BLK * v0, v0 + n == V ? pad : NULL, o);
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) d[i] = _mm512_add_epi32(d[i], o[i]);
    }
    sum4(d, out);
}

/* How far ahead (in vectors of 64 bytes, in each of the 4 streams) the
 * b3 GEMV prefetches: 2 KiB a stream. */
enum { B3_AHEAD = 32 };

/* b3 rows: 4 at a time from the range's quarters, four long streams each
 * prefetched B3_AHEAD vectors ahead. 4 adjacent rows restarted four
 * streams every 4 rows of 1.6 KB (one Zen 5 thread, the 100B shape's
 * 45568 x 8192 FFN matrix, thread CPU time on a shared machine: 20 GB/s,
 * now 35, 4 KiB pages or huge; the loop itself runs 37 from L2). Each
 * row's sum is exact either way. */
static T512 void b3_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s,
                         float *y)
{
    size_t rb = bn_packed_row_bytes(BN_B3, k), V = k / B3_BLK, c0 = B3_BLK * V;
    size_t quarter = (r1 - r0) / 4, rs = quarter * rb, pf = B3_AHEAD * 64;
    _Alignas(64) int8_t pad[B3_BLK];
    int32_t qs = qsum(q, c0); /* c0 is a multiple of 64 */
    size_t rem = b3_pad(q, k, c0, pad, &qs);
    for (size_t r = r0; r < r0 + quarter; r++) {
        int32_t d[4];
        b3_gemv4(w + r * rb, rs, 64, pf, V, q, rem ? pad : NULL, d);
        for (size_t i = 0; i < 4; i++)
            y[r + i * quarter] = bn_kern_out(d[i] - qs, s, beta);
    }
    for (size_t r = r0 + 4 * quarter; r < r1; r++) {
        int64_t d = b3_row_gemv(w + r * rb, rb, V, q) + (rem ? b3_row_gemv(w + r * rb + 64 * V, rb, 1, pad) : 0);
        y[r] = bn_kern_out((int32_t)d - qs, s, beta);
    }
}

static T512 INLINE __m512i b3_digits(__m512i m)
{
    __mmask64 k1 = _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8(85));
    __mmask64 k2 = _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8((char)170));
    return _mm512_mask_blend_epi8(k2, _mm512_maskz_mov_epi8(k1, _mm512_set1_epi8(1)), _mm512_set1_epi8(2));
}

/* RT rows × TT tokens; row i's vector v at w + i·rs + v·vs (row-major
 * rows: rs their bytes, vs 64). */
static T512 INLINE void b3_tile(const uint8_t *w, size_t rs, size_t vs, size_t V, const int8_t *q, size_t ldq, int RT,
                                int TT, int32_t out[4][4])
{
    __m512i acc[4][4];
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) acc[r][t] = _mm512_setzero_si512();
    for (size_t v = 0; v < V; v++) {
        __m512i m[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            m[r] = _mm512_loadu_si512((const void *)(w + (size_t)r * rs + vs * v));
        _Pragma("GCC unroll 5") for (int j = 0; j < 5; j++) {
            __m512i d[4];
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {
                d[r] = b3_digits(m[r]);
                m[r] = _mm512_add_epi8(m[r], _mm512_add_epi8(m[r], m[r]));
            }
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {
                __m512i a = _mm512_loadu_si512((const void *)(q + (size_t)t * ldq + B3_BLK * v + 64 * j));
                _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], d[r], a);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) out[r][t] = _mm512_reduce_add_epi32(acc[r][t]);
}

/* b3_tile with RT ∈ {1, 4} and TT ∈ 1..4 as compile-time constants. */
static T512 INLINE void b3_tile_any(const uint8_t *w, size_t rs, size_t vs, size_t V, const int8_t *q, size_t ldq,
                                    int RT, int TT, int32_t out[4][4])
{
#define B3_TT(R)                                                                                                   \
    switch (TT) {                                                                                                  \
    case 4: b3_tile(w, rs, vs, V, q, ldq, R, 4, out); break;                                                       \
    case 3: b3_tile(w, rs, vs, V, q, ldq, R, 3, out); break;                                                       \
    case 2: b3_tile(w, rs, vs, V, q, ldq, R, 2, out); break;                                                       \
    default: b3_tile(w, rs, vs, V, q, ldq, R, 1, out); break;                                                      \
    }
    if (RT == 4) {
        B3_TT(4)
    } else {
        B3_TT(1)
    }
#undef B3_TT
}

/* Row-major rows, 4 at a time, 4 tokens at a time. */
static T512 void b3_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                     const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    size_t rb = bn_packed_row_bytes(BN_B3, k), V = k / B3_BLK, c0 = B3_BLK * V;
    int32_t qs[BN_KERN_MAX_N];
    _Alignas(64) int8_t pad[BN_KERN_MAX_N][B3_BLK];
    size_t rem = 0;
    for (size_t t = 0; t < n; t++) {
        qs[t] = qsum(q + t * ldq, c0);
        rem = b3_pad(q + t * ldq, k, c0, pad[t], &qs[t]);
    }
    for (size_t r = r0, rt; r < r1; r += rt) {
        rt = r1 - r >= 4 ? 4 : 1; /* the last 1-3 rows one at a time */
        size_t rs = rb, vs = 64;
        const uint8_t *wr = w + r * rb;
        for (size_t t = 0; t < n; t += 4) {
            int tt = n - t >= 4 ? 4 : (int)(n - t);
            int32_t out[4][4], o2[4][4] = {{0}};
            b3_tile_any(wr, rs, vs, V, q + t * ldq, ldq, (int)rt, tt, out);
            if (rem)
                b3_tile_any(wr + vs * V, rs, vs, 1, pad[t], B3_BLK, (int)rt, tt, o2);
            for (size_t i = 0; i < rt; i++)
                for (int j = 0; j < tt; j++) {
                    size_t tk = t + (size_t)j;
                    int32_t a = out[i][j] + o2[i][j] - qs[tk];
                    y[tk * ldy + r + i] = bn_kern_out(a, s[tk], beta);
                }
        }
    }
}

/* Natural order: quantize_impl's whole-vector path, bit-identical to
 * k2_quantize (the scalar loop cost 5% of a 2-thread decode, all of it on
 * the thread that runs between steps). */
static T512 float b3_quantize(const float *x, size_t k, int8_t *q)
{
    return quantize_impl(BN_B3, 0, x, k, q);
}
K2_F32_FUNC(BN_B3, b3)
static const bn_kernels set_b3 = {"avx512", BN_B3, b3_quantize, b3_gemm, b3_gemv, b3_gemm_f32};

static const bn_kernels set_t2 = {"avx512", BN_T2, t2_quantize, t2_gemm, t2_gemv, t2_gemm_f32};
static const bn_kernels set_i2s = {"avx512", BN_I2S, i2s_quantize, i2s_gemm, i2s_gemv, i2s_gemm_f32};

const bn_kernels *bn_kernels_avx512(uint32_t layout)
{
    return k2_by_layout(layout, &set_t2, &set_i2s, &set_b3);
}

/* The amx sets: this file's quantize and GEMV (decode streams weights,
 * where tiles gain nothing), kern_amx.c's GEMM for prefill. */
#define AMX_GEMM(L, name)                                                                                         \
    static void name##_gemm_amx(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,  \
                                const float *s, size_t n, size_t ldq, float *y, size_t ldy)                      \
    {                                                                                                            \
        bn_amx_gemm(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy);                                            \
    }
AMX_GEMM(BN_T2, t2)
AMX_GEMM(BN_I2S, i2s)
AMX_GEMM(BN_B3, b3)

static const bn_kernels amx_t2 = {"amx", BN_T2, t2_quantize_nat, t2_gemm_amx, t2_gemv_nat, t2_gemm_f32};
static const bn_kernels amx_i2s = {"amx", BN_I2S, i2s_quantize, i2s_gemm_amx, i2s_gemv, i2s_gemm_f32};
static const bn_kernels amx_b3 = {"amx", BN_B3, b3_quantize, b3_gemm_amx, b3_gemv, b3_gemm_f32};

const bn_kernels *bn_kernels_amx(uint32_t layout)
{
    return k2_by_layout(layout, &amx_t2, &amx_i2s, &amx_b3);
}

#else
const bn_kernels *bn_kernels_avx512(uint32_t layout)
{
    (void)layout;
    return NULL;
}

const bn_kernels *bn_kernels_amx(uint32_t layout)
{
    (void)layout;
    return NULL;
}

#endif
