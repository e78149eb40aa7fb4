/* kern_amx.c — AMX-INT8 GEMM (the prefill kernel) for t2, i2s and b3.
 *
 * One TDPBSSD multiplies a 16×64 tile of signed int8 by a 64×16 one into
 * 16×16 int32 sums: 16384 multiply-adds, against 1024 for an AVX-512
 * vpdpbusd. Sums stay exact in int32, so results are bit-identical to the
 * scalar reference (as every kernel's must be).
 *
 * Operands: A is 16 tokens × 64 activations, read straight from q as the
 * avx512 set's quantize() wrote it (its order is the layout's plane order,
 * kern_2bit.h; b3 keeps natural order), so activations are never copied.
 * B holds the weights of 16 rows as signed int8 {-1, 0, 1} in the tile's
 * "four consecutive k per 32-bit word" order: B[i][4j+u] = w(row j,
 * k = 4i+u). A 64-byte weight vector of a row is exactly one such chunk
 * per plane (t2/i2s: 4 planes of 2 bits, b3: 5 base-3 digits) with k in
 * the activations' order — so B for 16 rows is the 16×16 transpose of
 * their vectors' 32-bit words, then one plane extracted per tile. The
 * transpose is done on the raw bytes, once for all planes.
 *
 * Blocking: 32 rows (two B tiles) × 32 tokens (two A tiles) into four C
 * tiles, the eight tile registers. The B tiles of a row block are made
 * once into a buffer on the stack for up to KBV vectors and reused by
 * every token block; longer rows go in several passes that keep the C
 * sums in memory between them.
 *
 * Linux hands out AMX state only after arch_prctl(ARCH_REQ_XCOMP_PERM),
 * which bn_cpu_detect asks for: a CPU that reports amx_int8 is usable.
 * Each call loads its tile configuration and releases the tiles at the
 * end, so no thread keeps AMX state between kernels. */
#include "kern_2bit.h"
#include "kern_ilv.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TAMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")))
#define INLINE inline __attribute__((always_inline))

enum {
    TILE = 1024,      /* bytes of a full int8 tile: 16 rows × 64 */
    BUF_TILES = 128,  /* the B buffer: 128 KiB of stack */
    RB = 32,          /* rows per block: two B tiles */
};

/* The tile configuration LDTILECFG reads (palette 1). */
typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* Tiles: 0-3 C (token block a/b × row group 0/1), 4-5 A (token blocks
 * a, b), 6-7 B (row groups 0, 1). ta, tb: tokens in blocks a and b (tb
 * may be 0: tiles 2, 3, 5 unused). */
static TAMX INLINE void tiles_config(int ta, int tb)
{
    _Alignas(64) tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    int rows[8] = {ta, ta, tb, tb, ta, tb, 16, 16};
    for (int i = 0; i < 8; i++)
        if (rows[i]) {
            c.rows[i] = (uint8_t)rows[i];
            c.colsb[i] = 64;
        }
    _tile_loadconfig(&c);
}

/* r[j] = words of row j → r[i] = word i of every row (16×16 32-bit
 * transpose in four rounds of 16 shuffles). */
static TAMX INLINE void transpose16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + c], lane L: word 4L + c of rows 4g..4g+3 */
    for (int g = 0; g < 4; g++) {
        u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
        __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88),
                w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
        r[4 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
    }
}

/* Row j's 64-byte vector v: interleaved rows (kern_ilv.h) up to the last
 * whole group of four before r1, row-major after it. */
static INLINE const uint8_t *row_vec(const uint8_t *w, size_t rb, int ilv, size_t r1, size_t j, size_t v)
{
    if (ilv && j < r1 / 4 * 4)
        return w + j / 4 * 4 * rb + (4 * v + j % 4) * 64;
    return w + j * rb + 64 * v;
}

/* The B tiles of rows [r, r + nr) (nr ≤ 16, missing rows zero) for
 * vectors [v0, v1): tile (v − v0)·P + p of plane p at out + that·2·TILE
 * (the row block's two groups sit side by side). */
static TAMX INLINE void make_b(uint32_t layout, const uint8_t *w, size_t rb, int ilv, size_t r1, size_t r, size_t nr,
                               size_t v0, size_t v1, uint8_t *out)
{
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    const int P = layout == BN_B3 ? 5 : 4;
    for (size_t v = v0; v < v1; v++) {
        __m512i x[16];
        for (size_t j = 0; j < 16; j++)
            x[j] = j < nr ? _mm512_loadu_si512((const void *)row_vec(w, rb, ilv, r1, r + j, v))
                          : _mm512_setzero_si512();
        transpose16(x);
        uint8_t *o = out + (v - v0) * (size_t)P * 2 * TILE;
        if (layout == BN_B3) {
            /* digit j = (m_j > 85) + (m_j > 170), m_(j+1) = 3·m_j mod 256 */
            for (int i = 0; i < 16; i++) {
                __m512i m = x[i];
                for (int p = 0; p < 5; p++) {
                    __mmask64 k1 = _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8(85));
                    __mmask64 k2 = _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8((char)170));
                    __m512i d = _mm512_mask_blend_epi8(k2, _mm512_maskz_mov_epi8(k1, one), _mm512_set1_epi8(2));
                    _mm512_store_si512((void *)(o + (size_t)p * 2 * TILE + 64 * i), _mm512_sub_epi8(d, one));
                    m = _mm512_add_epi8(m, _mm512_add_epi8(m, m));
                }
            }
        } else {
            for (int i = 0; i < 16; i++)
                for (int p = 0; p < 4; p++) {
                    __m512i c = _mm512_and_si512(_mm512_srli_epi16(x[i], 2 * p), m3);
                    _mm512_store_si512((void *)(o + (size_t)p * 2 * TILE + 64 * i), _mm512_sub_epi8(c, one));
                }
        }
    }
}

/* Σ over the chunks [0, nc) of one pass into the C tiles of tokens
 * [t, t + ta + tb) × the block's rows; A chunk c at qa + 64·c, rows ldq
 * apart. first: start from zero, else from the sums in cbuf (tokens ×
 * RB int32). The sums go back to cbuf. */
static TAMX INLINE void run_pass(const int8_t *qa, size_t ldq, const uint8_t *bt, size_t nc, int two_groups, int ta,
                                 int tb, int first, int32_t *cbuf)
{
    int32_t *ca = cbuf, *cb = cbuf + 16 * RB;
    if (first) {
        _tile_zero(0);
        _tile_zero(1);
        if (tb) {
            _tile_zero(2);
            _tile_zero(3);
        }
    } else {
        _tile_loadd(0, ca, RB * 4);
        _tile_loadd(1, ca + 16, RB * 4);
        if (tb) {
            _tile_loadd(2, cb, RB * 4);
            _tile_loadd(3, cb + 16, RB * 4);
        }
    }
    const int8_t *qb = qa + 16 * ldq;
    for (size_t c = 0; c < nc; c++) {
        const uint8_t *b = bt + c * 2 * TILE;
        _tile_loadd(6, b, 64);
        _tile_loadd(4, qa + 64 * c, ldq);
        _tile_dpbssd(0, 4, 6);
        if (tb) {
            _tile_loadd(5, qb + 64 * c, ldq);
            _tile_dpbssd(2, 5, 6);
        }
        if (two_groups) {
            _tile_loadd(7, b + TILE, 64);
            _tile_dpbssd(1, 4, 7);
            if (tb)
                _tile_dpbssd(3, 5, 7);
        }
    }
    _tile_stored(0, ca, RB * 4);
    _tile_stored(1, ca + 16, RB * 4);
    if (tb) {
        _tile_stored(2, cb, RB * 4);
        _tile_stored(3, cb + 16, RB * 4);
    }
}

/* y[t·ldy + i] = bn_kern_out(cbuf[t·RB + i], s[t], beta) for i < nr, 16
 * rows at a time: vcvtdq2ps, vdivps and vmulps round exactly as the
 * scalar conversion, division and multiply do. */
static TAMX INLINE void store_out(const int32_t *cbuf, size_t nr, size_t n, const float *s, float beta, float *y,
                                  size_t ldy)
{
    __m512 vb = _mm512_set1_ps(beta);
    for (size_t t = 0; t < n; t++) {
        __m512 vs = _mm512_set1_ps(s[t]);
        for (size_t i = 0; i < nr; i += 16) {
            __mmask16 m = nr - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nr - i)) - 1);
            __m512 a = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(cbuf + t * RB + i)));
            _mm512_mask_storeu_ps(y + t * ldy + i, m, _mm512_mul_ps(_mm512_div_ps(a, vs), vb));
        }
    }
}

TAMX void bn_amx_gemm(uint32_t layout, int ilv, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                      const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    const int b3 = layout == BN_B3;
    const size_t P = b3 ? 5 : 4, blk = b3 ? 320 : 256;
    size_t rb = bn_packed_row_bytes(layout, k), V = b3 ? k / 320 : k2_nvec(layout, 64, k), c0 = blk * V;
    /* b3's partial last block: one more vector on zero-padded activations
     * (kern_avx512.c's b3_pad); the 2-bit layouts' tail columns go scalar */
    size_t rem = b3 ? k - c0 : 0, kbv = BUF_TILES / (2 * P);
    _Alignas(64) uint8_t bbuf[BUF_TILES * TILE];
    _Alignas(64) int32_t cbuf[BN_KERN_MAX_N * RB];
    _Alignas(64) int8_t pad[rem ? BN_KERN_MAX_N : 1][320];
    for (size_t t = 0; rem && t < n; t++) {
        memset(pad[t], 0, 320);
        memcpy(pad[t], q + t * ldq + c0, rem);
    }
    size_t passes = V + (rem ? 1 : 0);
    int cfg_a = -1, cfg_b = -1;
    for (size_t r = r0; r < r1; r += RB) {
        size_t nr = r1 - r < RB ? r1 - r : RB;
        int two = nr > 16;
        if (!passes) /* rows shorter than a vector: all scalar tail */
            memset(cbuf, 0, n * RB * sizeof cbuf[0]);
        /* passes of up to kbv vectors, then b3's padded block */
        for (size_t v0 = 0, v1; v0 < passes; v0 = v1) {
            int tailpass = v0 == V;
            v1 = tailpass ? V + 1 : v0 + kbv < V ? v0 + kbv : V;
            make_b(layout, w, rb, ilv, r1, r, nr < 16 ? nr : 16, v0, v1, bbuf);
            if (two)
                make_b(layout, w, rb, ilv, r1, r + 16, nr - 16, v0, v1, bbuf + TILE);
            for (size_t t = 0; t < n; t += 32) {
                int ta = n - t >= 16 ? 16 : (int)(n - t);
                int tb = n - t >= 32 ? 16 : n - t > 16 ? (int)(n - t - 16) : 0;
                if (ta != cfg_a || tb != cfg_b) {
                    tiles_config(ta, tb);
                    cfg_a = ta;
                    cfg_b = tb;
                }
                const int8_t *qa = tailpass ? pad[t] : q + t * ldq + 64 * P * v0;
                run_pass(qa, tailpass ? 320 : ldq, bbuf, (v1 - v0) * P, two, ta, tb, v0 == 0, cbuf + t * RB);
            }
        }
        if (!b3 && c0 < k)
            for (size_t i = 0; i < nr; i++)
                for (size_t t = 0; t < n; t++)
                    cbuf[t * RB + i] += k2_tail(layout, w, k, r + i, c0, q + t * ldq);
        store_out(cbuf, nr, n, s, beta, y + r, ldy);
    }
    _tile_release();
}

#else
void bn_amx_gemm(uint32_t layout, int ilv, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                 const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    (void)layout, (void)ilv, (void)w, (void)k, (void)r0, (void)r1, (void)beta, (void)q, (void)s, (void)n;
    (void)ldq, (void)y, (void)ldy;
}
#endif
