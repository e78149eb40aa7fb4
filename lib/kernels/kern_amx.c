/* kern_amx.c — AMX-INT8 GEMM (the prefill kernel) for t2, i2s and b3.
 *
 * One TDPBSUD multiplies a 16×64 tile of signed int8 by a 64×16 one into
 * 16×16 int32 sums: 16384 multiply-adds, against 1024 for an AVX-512
 * vpdpbusd. Sums stay exact in int32, so results are bit-identical to the
 * scalar reference (as every kernel's must be).
 *
 * Operands: A is 16 tokens × 64 activations, read straight from q as the
 * amx set's quantize() wrote it (the avx512 one's order, the layout's
 * plane order of kern_2bit.h, but with t2's tail past the whole vectors
 * in natural order as the avx512 set alone does not keep it; b3 keeps
 * natural order), so activations are never copied.
 * B holds the weights of 16 rows as codes w+1 ∈ {0, 1, 2} (TDPBSUD
 * multiplies signed A by unsigned B; Σ q is subtracted at the end) in
 * the tile's "four consecutive k per 32-bit word" order: B[i][4j+u] =
 * code(row j, k = 4i+u). A 64-byte weight vector of a row is exactly one
 * such chunk per plane (t2/i2s: 4 planes of 2 bits, b3: 5 base-3 digits)
 * with k in the activations' order — so B for 16 rows is the 16×16
 * transpose of their vectors' 32-bit words, then one plane extracted per
 * tile. The transpose is done on the raw bytes, once for all planes.
 *
 * Blocking: 32 rows (two B tiles) × 32 tokens (two A tiles) into four C
 * tiles, the eight tile registers. A unit of work is one row block over
 * up to a buffer's worth of vectors (longer rows take several units that
 * keep the C sums in memory between them); its B tiles are made once and
 * reused by every token block. Two buffers on the stack alternate: the
 * vector units make the next unit's tiles between the tile instructions
 * of this one, so the transposes overlap the tile unit's work.
 *
 * Linux hands out AMX state only after arch_prctl(ARCH_REQ_XCOMP_PERM),
 * which bn_cpu_detect asks for: a CPU that reports amx_int8 is usable.
 * Each call loads its tile configuration and releases the tiles at the
 * end, so no thread keeps AMX state between kernels. */
#include "kern_2bit.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TAMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,gfni,amx-tile,amx-int8")))
#define INLINE inline __attribute__((always_inline))

enum {
    TILE = 1024,      /* bytes of a full int8 tile: 16 rows × 64 */
    BUF_TILES = 128,  /* one B buffer: 128 KiB of stack (two alternate) */
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

/* Σ of n signed bytes: vpdpbusd against ones, 64 at a time. */
static TAMX INLINE int32_t qsum(const int8_t *q, size_t n)
{
    __m512i acc = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512((const void *)(q + i)));
    if (i < n)
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(~0ull >> (64 - (n - i)), q + i));
    return _mm512_reduce_add_epi32(acc);
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

/* One step of B-making: the tiles of 16 rows [r, r + nr) (nr ≤ 16,
 * missing rows zero) for vector v, plane p at out + p·2·TILE (a row
 * block's two groups sit side by side, TILE apart). */
static TAMX INLINE void make_b(uint32_t layout, const uint8_t *w, size_t rb, size_t r, size_t nr, size_t v,
                               uint8_t *out)
{
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    /* GF(2) affine maps that move bits 2p, 2p+1 of each byte to bits 0, 1
     * (row 7-i of the matrix makes output bit i): one instruction for a
     * shift and a mask */
    const __m512i planes[4] = {_mm512_set1_epi64(0), _mm512_set1_epi64((long long)0x0408000000000000ull),
                               _mm512_set1_epi64((long long)0x1020000000000000ull),
                               _mm512_set1_epi64((long long)0x4080000000000000ull)};
    __m512i x[16];
    for (size_t j = 0; j < 16; j++)
        x[j] = j < nr ? _mm512_loadu_si512((const void *)(w + (r + j) * rb + 64 * v)) : _mm512_setzero_si512();
    transpose16(x);
    if (layout == BN_B3) {
        /* digit j = (m_j > 85) + (m_j > 170), m_(j+1) = 3·m_j mod 256 */
        for (int i = 0; i < 16; i++) {
            __m512i m = x[i];
            for (int p = 0; p < 5; p++) {
                __mmask64 k1 = _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8(85));
                __mmask64 k2 = _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8((char)170));
                __m512i d = _mm512_mask_blend_epi8(k2, _mm512_maskz_mov_epi8(k1, one), _mm512_set1_epi8(2));
                _mm512_store_si512((void *)(out + (size_t)p * 2 * TILE + 64 * i), d);
                m = _mm512_add_epi8(m, _mm512_add_epi8(m, m));
            }
        }
    } else {
        for (int i = 0; i < 16; i++) {
            _mm512_store_si512((void *)(out + 64 * i), _mm512_and_si512(x[i], m3));
            for (int p = 1; p < 4; p++)
                _mm512_store_si512((void *)(out + (size_t)p * 2 * TILE + 64 * i),
                                   _mm512_gf2p8affine_epi64_epi8(x[i], planes[p], 0));
        }
    }
}

/* A unit of work: rows [r, r + nr) of one row block, vectors [v0, v1)
 * (b3's padded block when tail). */
typedef struct unit {
    size_t r, nr, v0, v1;
    int tail;
} unit;

/* What every unit of one call shares. */
typedef struct plan {
    uint32_t layout;
    const uint8_t *w;
    size_t rb, r1, V, P, kbv;
    int tail;
} plan;

/* The unit after u (the first when u is NULL); 0 when none is left. */
static int unit_next(const plan *pl, size_t r0, const unit *u, unit *out)
{
    unit n;
    if (!u) {
        n.r = r0;
        n.v0 = 0;
    } else if (u->tail || (u->v1 == pl->V && !pl->tail)) {
        n.r = u->r + RB;
        n.v0 = 0;
    } else {
        n.r = u->r;
        n.v0 = u->v1;
    }
    if (n.r >= pl->r1 || (pl->V == 0 && !pl->tail))
        return 0;
    n.nr = pl->r1 - n.r < RB ? pl->r1 - n.r : RB;
    n.tail = n.v0 == pl->V;
    n.v1 = n.tail ? pl->V + 1 : n.v0 + pl->kbv < pl->V ? n.v0 + pl->kbv : pl->V;
    *out = n;
    return 1;
}

static int unit_last_of_block(const plan *pl, const unit *u)
{
    return u->tail || (u->v1 == pl->V && !pl->tail);
}

/* B-making for a unit in steps of one group × one vector, so that it can
 * be spread over the previous unit's tile work: the tile unit runs on
 * while the vector units transpose. */
typedef struct maker {
    const plan *pl;
    unit u;
    uint8_t *buf;
    size_t done, total; /* steps */
} maker;

static void maker_init(maker *mk, const plan *pl, const unit *u, uint8_t *buf)
{
    mk->pl = pl;
    mk->buf = buf;
    mk->done = 0;
    mk->total = 0;
    if (u) {
        mk->u = *u;
        mk->total = (u->nr > 16 ? 2 : 1) * (u->v1 - u->v0);
    }
}

static TAMX INLINE void maker_step(maker *mk)
{
    const plan *pl = mk->pl;
    size_t groups = mk->u.nr > 16 ? 2 : 1, v = mk->u.v0 + mk->done / groups, g = mk->done % groups;
    size_t rows = g ? mk->u.nr - 16 : mk->u.nr < 16 ? mk->u.nr : 16;
    make_b(pl->layout, pl->w, pl->rb, mk->u.r + 16 * g, rows, v,
           mk->buf + (v - mk->u.v0) * pl->P * 2 * TILE + g * TILE);
    mk->done++;
}

/* Σ over the chunks [0, nc) of one unit into the C tiles of tokens
 * [t, t + ta + tb) × the block's rows; A chunk c at qa + 64·c, rows ldq
 * apart. first: start from zero, else from the sums in cbuf (tokens ×
 * RB int32). The sums go back to cbuf. Between chunks, mk makes the next
 * unit's B: after iteration it (of iters in the unit) it has done
 * (it+1)/iters of its steps. */
static TAMX INLINE void run_pass(const int8_t *qa, size_t ldq, const uint8_t *bt, size_t nc, int two_groups, int ta,
                                 int tb, int first, int32_t *cbuf, maker *mk, size_t it0, size_t iters)
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
        _tile_dpbsud(0, 4, 6);
        if (tb) {
            _tile_loadd(5, qb + 64 * c, ldq);
            _tile_dpbsud(2, 5, 6);
        }
        if (two_groups) {
            _tile_loadd(7, b + TILE, 64);
            _tile_dpbsud(1, 4, 7);
            if (tb)
                _tile_dpbsud(3, 5, 7);
        }
        size_t due = (it0 + c + 1) * mk->total / iters;
        while (mk->done < due)
            maker_step(mk);
    }
    _tile_stored(0, ca, RB * 4);
    _tile_stored(1, ca + 16, RB * 4);
    if (tb) {
        _tile_stored(2, cb, RB * 4);
        _tile_stored(3, cb + 16, RB * 4);
    }
}

/* y[t·ldy + i] = bn_kern_out(cbuf[t·RB + i] − qs[t], s[t], beta) for i <
 * nr, 16 rows at a time: vcvtdq2ps, vdivps and vmulps round exactly as
 * the scalar conversion, division and multiply do. */
static TAMX INLINE void store_out(const int32_t *cbuf, const int32_t *qs, size_t nr, size_t n, const float *s,
                                  float beta, float *y, size_t ldy)
{
    __m512 vb = _mm512_set1_ps(beta);
    for (size_t t = 0; t < n; t++) {
        __m512 vs = _mm512_set1_ps(s[t]);
        __m512i vq = _mm512_set1_epi32(qs[t]);
        for (size_t i = 0; i < nr; i += 16) {
            __mmask16 m = nr - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nr - i)) - 1);
            __m512i acc = _mm512_sub_epi32(_mm512_load_si512((const void *)(cbuf + t * RB + i)), vq);
            __m512 a = _mm512_cvtepi32_ps(acc);
            _mm512_mask_storeu_ps(y + t * ldy + i, m, _mm512_mul_ps(_mm512_div_ps(a, vs), vb));
        }
    }
}

TAMX void bn_amx_gemm(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                      const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    const int b3 = layout == BN_B3;
    plan pl = {.layout = layout, .w = w, .rb = bn_packed_row_bytes(layout, k), .r1 = r1};
    pl.P = b3 ? 5 : 4;
    pl.V = b3 ? k / 320 : k2_nvec(layout, 64, k);
    size_t c0 = (b3 ? 320 : 256) * pl.V;
    /* b3's partial last block: one more unit on zero-padded activations
     * (kern_avx512.c's b3_pad); the 2-bit layouts' tail columns go scalar */
    size_t rem = b3 ? k - c0 : 0;
    pl.tail = rem > 0;
    /* units of at most a buffer each, of even length */
    size_t most = BUF_TILES / (2 * pl.P), passes = pl.V ? (pl.V + most - 1) / most : 0;
    pl.kbv = passes ? (pl.V + passes - 1) / passes : 1;
    _Alignas(64) uint8_t bbuf[2][BUF_TILES * TILE];
    _Alignas(64) int32_t cbuf[BN_KERN_MAX_N * RB];
    _Alignas(64) int8_t pad[rem ? BN_KERN_MAX_N : 1][320];
    /* B holds codes w+1 ∈ {0,1,2} (TDPBSUD: signed activations × unsigned
     * codes), so Σ w·q = Σ code·q − Σ q over the columns the tiles cover */
    int32_t qs[BN_KERN_MAX_N];
    k2_tails tails;
    k2_tails_init(&tails);
    for (size_t t = 0; t < n; t++) {
        const int8_t *qt = q + t * ldq;
        qs[t] = qsum(qt, c0 + rem);
        if (rem) {
            memset(pad[t], 0, 320);
            memcpy(pad[t], qt + c0, rem);
        }
    }
    if (pl.V == 0 && !rem) {
        /* rows shorter than a vector: all scalar */
        for (size_t r = r0; r < r1; r += RB) {
            size_t nr = r1 - r < RB ? r1 - r : RB;
            for (size_t i = 0; i < nr; i++)
                for (size_t t = 0; t < n; t++)
                    cbuf[t * RB + i] = k2_tail_dot(&tails, layout, w, k, r + i, 0, q + t * ldq);
            store_out(cbuf, qs, nr, n, s, beta, y + r, ldy);
        }
        return;
    }
    unit cur, nxt;
    maker mk;
    int have = unit_next(&pl, r0, NULL, &cur), b = 0;
    maker_init(&mk, &pl, &cur, bbuf[0]);
    while (mk.done < mk.total)
        maker_step(&mk);
    int cfg_a = -1, cfg_b = -1;
    while (have) {
        int more = unit_next(&pl, r0, &cur, &nxt);
        maker_init(&mk, &pl, more ? &nxt : NULL, bbuf[b ^ 1]);
        size_t nc = (cur.v1 - cur.v0) * pl.P, pairs = (n + 31) / 32;
        for (size_t t = 0, it = 0; t < n; t += 32, it += nc) {
            int ta = n - t >= 16 ? 16 : (int)(n - t);
            int tb = n - t >= 32 ? 16 : n - t > 16 ? (int)(n - t - 16) : 0;
            if (ta != cfg_a || tb != cfg_b) {
                tiles_config(ta, tb);
                cfg_a = ta;
                cfg_b = tb;
            }
            const int8_t *qa = cur.tail ? pad[t] : q + t * ldq + 64 * pl.P * cur.v0;
            run_pass(qa, cur.tail ? 320 : ldq, bbuf[b], nc, cur.nr > 16, ta, tb, cur.v0 == 0, cbuf + t * RB, &mk, it,
                     pairs * nc);
        }
        while (mk.done < mk.total)
            maker_step(&mk);
        if (unit_last_of_block(&pl, &cur)) {
            if (!b3 && c0 < k)
                for (size_t i = 0; i < cur.nr; i++)
                    for (size_t t = 0; t < n; t++)
                        cbuf[t * RB + i] += k2_tail_dot(&tails, layout, w, k, cur.r + i, c0, q + t * ldq);
            store_out(cbuf, qs, cur.nr, n, s, beta, y + cur.r, ldy);
        }
        cur = nxt;
        have = more;
        b ^= 1;
    }
    _tile_release();
}

#else
void bn_amx_gemm(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                 const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    (void)layout, (void)w, (void)k, (void)r0, (void)r1, (void)beta, (void)q, (void)s, (void)n;
    (void)ldq, (void)y, (void)ldy;
}
#endif
