/* gguf_tensor.c — what each GGML tensor type becomes in bn, and the
 * conversion read() does (gguf.h). Float types are copied; Q8_0 and the
 * k-quants Q4_K, Q5_K, Q6_K are dequantized exactly to f32 (the values
 * ggml computes; bn-quant decides any requantization); the ternary
 * encodings (I2_S, and TQ1_0/TQ2_0, IQ1_BN/IQ2_BN with one scale) become
 * `t2`, and TQ/IQ*_BN tensors with several scales exact f32; bitnet.cpp's
 * TL1/TL2 become `t2` with the tile of a preset or a kernel_config.ini
 * (gguf_tl.c). Conversion happens one tensor at a time, from pread() into
 * a scratch buffer. Layouts: formats/gguf-import.md. */
#include "gguf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *bn_gguf_type_name(uint32_t t)
{
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",     [2] = "Q4_0",     [3] = "Q4_1",    [6] = "Q5_0",
        [7] = "Q5_1",     [8] = "Q8_0",    [9] = "Q8_1",     [10] = "Q2_K",   [11] = "Q3_K",
        [12] = "Q4_K",    [13] = "Q5_K",   [14] = "Q6_K",    [15] = "Q8_K",   [16] = "IQ2_XXS",
        [17] = "IQ2_XS",  [18] = "IQ3_XXS", [19] = "IQ1_S",  [20] = "IQ4_NL", [21] = "IQ3_S",
        [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",      [25] = "I16",    [26] = "I32",
        [27] = "I64",     [28] = "F64",    [29] = "IQ1_M",   [30] = "BF16",   [34] = "TQ1_0",
        [35] = "TQ2_0",   [36] = "I2_S",   [37] = "I8_S",    [38] = "TL1",    [39] = "TL2",
    };
    if (t < sizeof names / sizeof *names && names[t])
        return names[t];
    if (t == 134)
        return "IQ1_BN";
    if (t == 135)
        return "IQ2_BN";
    if (t == 335)
        return "IQ2_BN_R4";
    return "unknown";
}

/* ------------------------------------------------------ ternary decoding */

static float f16f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_f16_to_f32(h);
}

/* I2_S code of flattened element idx (canonical 128-weight / 32-byte blocks,
 * bits 7:6 holding elements 0..31 of a block). */
static inline unsigned i2s_code(const uint8_t *q, uint64_t idx)
{
    uint64_t blk = idx >> 7;
    unsigned j = (unsigned)(idx & 127);
    return (q[blk * 32 + (j & 31)] >> (6 - 2 * (j >> 5))) & 3;
}

/* TQ2_0: 66-byte blocks of 256; element 128c + 32l + m is in byte 32c + m at bits 2l. */
static inline unsigned tq2_code(const uint8_t *blk, unsigned j)
{
    unsigned c = j >> 7, l = (j >> 5) & 3, m = j & 31;
    return (blk[32 * c + m] >> (2 * l)) & 3;
}

/* TQ1_0: 54-byte blocks of 256 (qs[48], qh[4], d); base-3 digits, most
 * significant first, stored as ceil(256 * v / 243). */
static inline unsigned tq1_digit(uint8_t byte, unsigned n)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    uint8_t t = (uint8_t)(byte * pow3[n]);
    return ((unsigned)t * 3) >> 8;
}

static void tq1_block_codes(const uint8_t *blk, uint8_t *codes /* 256 */)
{
    for (unsigned n = 0; n < 5; n++)
        for (unsigned m = 0; m < 32; m++)
            codes[m + 32 * n] = (uint8_t)tq1_digit(blk[m], n);
    for (unsigned n = 0; n < 5; n++)
        for (unsigned m = 0; m < 16; m++)
            codes[160 + m + 16 * n] = (uint8_t)tq1_digit(blk[32 + m], n);
    for (unsigned n = 0; n < 4; n++)
        for (unsigned j = 0; j < 4; j++)
            codes[240 + j + 4 * n] = (uint8_t)tq1_digit(blk[48 + j], n);
}

static void tq2_block_codes(const uint8_t *blk, uint8_t *codes)
{
    for (unsigned j = 0; j < 256; j++)
        codes[j] = (uint8_t)tq2_code(blk, j);
}

/* The 256 codes of a TQ1_0 or TQ2_0 block (code c stands for c − 1). */
static void tq_block_codes(int tq1, const uint8_t *blk, uint8_t *codes)
{
    if (tq1)
        tq1_block_codes(blk, codes);
    else
        tq2_block_codes(blk, codes);
}

/* Decides t2 or f32 for a TQ tensor from its bytes: t2 when every block whose
 * codes are not all "0" has the same fp16 d, that d is a positive finite
 * value, and no code is 3. */
static int tq_uniform(const uint8_t *src, uint64_t nblk, int tq1, float *beta)
{
    size_t bs = tq1 ? 54 : 66;
    uint8_t codes[256];
    int have = 0;
    uint16_t d0 = 0;
    for (uint64_t b = 0; b < nblk; b++) {
        const uint8_t *blk = src + b * bs;
        tq_block_codes(tq1, blk, codes);
        int allzero = 1;
        for (unsigned j = 0; j < 256; j++) {
            if (codes[j] == 3)
                return 0;
            if (codes[j] != 1)
                allzero = 0;
        }
        if (allzero)
            continue;
        uint16_t d;
        memcpy(&d, blk + bs - 2, 2);
        if (!have) {
            d0 = d;
            have = 1;
        } else if (d != d0)
            return 0;
    }
    if (!have) { /* all zero: any scale represents it */
        memcpy(&d0, src + bs - 2, 2);
        float f = bn_f16_to_f32(d0);
        *beta = (isfinite(f) && f > 0) ? f : 1.0f;
        return 1;
    }
    float f = bn_f16_to_f32(d0);
    if (!isfinite(f) || !(f > 0))
        return 0;
    *beta = f;
    return 1;
}

/* IQ1_BN / IQ2_BN (ik_llama.cpp): each row is its scale d (f16 / f32),
 * then K/64 blocks; value = d · (code − 1). */
typedef struct iqbn_rows {
    int iq1;
    uint64_t rows, k, row_bytes;
} iqbn_rows;

static iqbn_rows iqbn_geometry(const gg_tensor *gt)
{
    iqbn_rows g = {.iq1 = gt->ggtype == GT_IQ1_BN, .k = gt->k, .rows = gt->n / gt->k};
    g.row_bytes = g.iq1 ? BN_GGUF_IQ1BN_META + g.k / 64 * BN_GGUF_IQ1BN_BYTES
                        : BN_GGUF_IQ2BN_META + g.k / 64 * BN_GGUF_IQ2BN_BYTES;
    return g;
}

/* Row r's scale: its value, and its bits (to compare scales exactly). */
static float iqbn_scale(const iqbn_rows *g, const uint8_t *src, uint64_t r, uint32_t *bits)
{
    const uint8_t *p = src + r * g->row_bytes;
    if (g->iq1) {
        uint16_t h;
        memcpy(&h, p, 2);
        *bits = h;
        return bn_f16_to_f32(h);
    }
    float f;
    memcpy(bits, p, 4);
    memcpy(&f, p, 4);
    return f;
}

/* The codes of row r (g->k of them). */
static void iqbn_row_codes(const iqbn_rows *g, const uint8_t *src, uint64_t r, uint8_t *codes)
{
    const uint8_t *p = src + r * g->row_bytes + (g->iq1 ? BN_GGUF_IQ1BN_META : BN_GGUF_IQ2BN_META);
    for (uint64_t b = 0; b < g->k / 64; b++) {
        if (g->iq1)
            bn_gguf_iq1bn_codes(p + b * BN_GGUF_IQ1BN_BYTES, codes + b * 64);
        else
            bn_gguf_iq2bn_codes(p + b * BN_GGUF_IQ2BN_BYTES, codes + b * 64);
    }
}

/* t2 when no code is 3 and every row with a nonzero value (d ≠ 0 and a
 * code ≠ 1) has the same d, a positive finite value; rows with d = 0 (ik's
 * quantizer writes an all-zero row as d = 0 with codes 2) are zero rows.
 * codes: scratch for one row. */
static int iqbn_uniform(const iqbn_rows *g, const uint8_t *src, uint8_t *codes, float *beta)
{
    int have = 0;
    uint32_t b0 = 0;
    float d0 = 0;
    for (uint64_t r = 0; r < g->rows; r++) {
        uint32_t bits;
        float d = iqbn_scale(g, src, r, &bits);
        iqbn_row_codes(g, src, r, codes);
        int allzero = 1;
        for (uint64_t c = 0; c < g->k; c++) {
            if (codes[c] == 3)
                return 0;
            if (codes[c] != 1)
                allzero = 0;
        }
        if (!isfinite(d))
            return 0; /* even a zero row is NaN in ggml */
        if (allzero || d == 0)
            continue;
        if (!have) {
            have = 1;
            b0 = bits;
            d0 = d;
        } else if (bits != b0)
            return 0;
    }
    if (!have) { /* all zero: any scale represents it */
        *beta = 1.0f;
        return 1;
    }
    if (!isfinite(d0) || !(d0 > 0))
        return 0;
    *beta = d0;
    return 1;
}

/* The scratch buffer holds one tensor's file bytes while it is decoded. */
static int ensure_scratch(gg_impl *g, size_t n)
{
    if (g->scratch_cap >= n)
        return 0;
    uint8_t *p = realloc(g->scratch, n ? n : 1);
    if (!p)
        return -1;
    g->scratch = p;
    g->scratch_cap = n;
    return 0;
}

/* ------------------------------------------------------------- open() */

int bn_gguf_tensor_encoding(const char *name, bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    uint32_t tt = gt->ggtype;
    uint64_t n = gt->n;
    const char *tname = bn_gguf_type_name(tt);
    switch (tt) {
    case GT_F32: gt->src_size = n * 4; t->type = BN_F32; gt->conv = CV_COPY; return 0;
    case GT_F16: gt->src_size = n * 2; t->type = BN_F16; gt->conv = CV_COPY; return 0;
    case GT_BF16: gt->src_size = n * 2; t->type = BN_BF16; gt->conv = CV_COPY; return 0;
    case GT_Q8_0:
        if (gt->k % 32)
            return bn_fail(e, "%s: tensor '%s' (Q8_0): row length %llu is not a multiple of 32", name, t->name,
                           (unsigned long long)gt->k);
        gt->src_size = n / 32 * 34;
        t->type = BN_F32;
        gt->conv = CV_Q8_F32;
        return 0;
    case GT_Q4_0:
    case GT_Q4_1:
    case GT_Q5_0:
    case GT_Q5_1:
    case GT_IQ4_NL:
        if (gt->k % 32)
            return bn_fail(e, "%s: tensor '%s' (%s): row length %llu is not a multiple of 32", name, t->name, tname,
                           (unsigned long long)gt->k);
        gt->src_size = n / 32 * bn_gguf_q32_bytes(tt);
        t->type = BN_F32;
        gt->conv = CV_Q32_F32;
        return 0;
    case GT_TQ1_0:
    case GT_TQ2_0:
        if (gt->k % 256)
            return bn_fail(e, "%s: tensor '%s' (%s): row length %llu is not a multiple of 256", name, t->name,
                           tname, (unsigned long long)gt->k);
        gt->src_size = n / 256 * (tt == GT_TQ1_0 ? 54 : 66);
        t->type = BN_T2; /* settled once the data can be read */
        gt->conv = tt == GT_TQ1_0 ? CV_TQ1_T2 : CV_TQ2_T2;
        return 0;
    case GT_I2_S:
        if (n % 128)
            return bn_fail(e, "%s: tensor '%s' (I2_S): %llu elements is not a whole number of 128-weight blocks",
                           name, t->name, (unsigned long long)n);
        gt->src_size = n / 4 + 32;
        t->type = BN_T2;
        gt->conv = CV_I2S_T2;
        return 0;
    case GT_Q4_K:
    case GT_Q5_K:
    case GT_Q6_K:
        if (gt->k % 256)
            return bn_fail(e, "%s: tensor '%s' (%s): row length %llu is not a multiple of 256", name, t->name,
                           tname, (unsigned long long)gt->k);
        gt->src_size = n / 256 *
                       (tt == GT_Q4_K ? BN_GGUF_Q4K_BYTES : tt == GT_Q5_K ? BN_GGUF_Q5K_BYTES : BN_GGUF_Q6K_BYTES);
        t->type = BN_F32;
        gt->conv = tt == GT_Q4_K ? CV_Q4K_F32 : tt == GT_Q5_K ? CV_Q5K_F32 : CV_Q6K_F32;
        return 0;
    case GT_IQ1_BN:
    case GT_IQ2_BN:
        if (gt->k % 64)
            return bn_fail(e, "%s: tensor '%s' (%s): row length %llu is not a multiple of 64", name, t->name,
                           tname, (unsigned long long)gt->k);
        gt->src_size = n / gt->k * iqbn_geometry(gt).row_bytes;
        t->type = BN_T2; /* settled once the data can be read */
        gt->conv = tt == GT_IQ1_BN ? CV_IQ1BN_T2 : CV_IQ2BN_T2;
        return 0;
    case GT_TL1:
    case GT_TL2:
        /* type 39 is also llama.cpp's MXFP4, which no BitNet model uses */
        if (t->ndim != 2)
            return bn_fail(e, "%s: tensor '%s' (%s) has %u dimensions; TL1/TL2 are matrices", name, t->name, tname,
                           t->ndim);
        if (bn_gguf_tl_encoding(name, t->name, tt, n / gt->k, gt->k, &gt->src_size, e))
            return -1;
        t->type = BN_T2;
        gt->conv = CV_TL_T2;
        return 0;
    default:
        return bn_fail(e, "%s: tensor '%s' has GGML type %u (%s), which is not supported", name, t->name, tt,
                       tname);
    }
}

/* An I2_S tensor's scale: the f32 after its codes. */
static int read_i2s_scale(const char *name, const gg_impl *g, const bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    uint8_t b[4];
    if (bn_gguf_pread_full(g->fd, b, 4, gt->src_off + gt->n / 4))
        return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
    memcpy(&gt->beta, b, 4);
    if (!isfinite(gt->beta) || !(gt->beta > 0))
        return bn_fail(e, "%s: tensor '%s' (I2_S) has an invalid scale %g (a positive finite value is required)",
                       name, t->name, (double)gt->beta);
    return 0;
}

/* A TL1/TL2 tensor's tile, and its β (where bitnet.cpp's kernels read it). */
static int settle_tl(const char *name, const gg_impl *g, const bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    uint8_t b[4];
    if (bn_gguf_tl_settle(name, &g->tl, t->name, gt, e))
        return -1;
    if (bn_gguf_pread_full(g->fd, b, 4, gt->src_off + bn_gguf_tl_beta_offset(gt->ggtype, gt->n / gt->k, gt->k)))
        return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
    return bn_gguf_tl_beta(name, t->name, gt, b, &gt->beta, e);
}

/* t2 when the TQ tensor has one scale (tq_uniform), else exact f32. */
static int decide_tq(const char *name, gg_impl *g, bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    if (ensure_scratch(g, (size_t)gt->src_size))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s'", name, t->name);
    if (bn_gguf_pread_full(g->fd, g->scratch, (size_t)gt->src_size, gt->src_off))
        return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
    int tq1 = gt->conv == CV_TQ1_T2;
    if (!tq_uniform(g->scratch, gt->n / 256, tq1, &gt->beta)) {
        gt->conv = tq1 ? CV_TQ1_F32 : CV_TQ2_F32;
        t->type = BN_F32;
    }
    return 0;
}

/* t2 when the IQ*_BN tensor has one scale (iqbn_uniform), else exact f32. */
static int decide_iqbn(const char *name, gg_impl *g, bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    if (ensure_scratch(g, (size_t)gt->src_size))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s'", name, t->name);
    if (bn_gguf_pread_full(g->fd, g->scratch, (size_t)gt->src_size, gt->src_off))
        return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
    iqbn_rows geo = iqbn_geometry(gt);
    uint8_t *codes = malloc((size_t)geo.k);
    if (!codes)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s'", name, t->name);
    if (!iqbn_uniform(&geo, g->scratch, codes, &gt->beta)) {
        gt->conv = geo.iq1 ? CV_IQ1BN_F32 : CV_IQ2BN_F32;
        t->type = BN_F32;
    }
    free(codes);
    return 0;
}

int bn_gguf_is_proj(const char *n)
{
    static const char *const sfx[] = {".attn_q.weight",   ".attn_k.weight",   ".attn_v.weight",
                                      ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight",
                                      ".ffn_down.weight"};
    size_t l = strlen(n);
    if (strncmp(n, "blk.", 4))
        return 0;
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        size_t sl = strlen(sfx[i]);
        if (l > sl && !strcmp(n + l - sl, sfx[i]))
            return 1;
    }
    return 0;
}

/* A float element's bits (f32 when wide, else f16/bf16), and the same with
 * the sign cleared. Comparing bits, not values, makes the ternary test one
 * integer compare per element and keeps -0 a zero. */
static inline uint32_t float_bits(const uint8_t *src, int wide, uint64_t i)
{
    if (wide) {
        uint32_t x;
        memcpy(&x, src + 4 * i, 4);
        return x;
    }
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    return h;
}

static uint32_t float_mag(const uint8_t *src, int wide, uint64_t i)
{
    return float_bits(src, wide, i) & (wide ? 0x7fffffffu : 0x7fffu);
}

/* Eight bytes of elements (4 halves or 2 words) as lanes: LOW has every
 * lane's magnitude bits, ~LOW its sign bit. For lanes whose sign is clear,
 * (v + LOW) & ~LOW sets a lane's top bit exactly when the lane is nonzero
 * (no carry crosses lanes: 2·LOW fits), so one add tests 4 (or 2) lanes. */
static uint64_t swar_low(int wide)
{
    return wide ? 0x7fffffff7fffffffull : 0x7fff7fff7fff7fffull;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* 1 when any of elements [i0, i1) is neither ±0 nor ±m (magnitude bits),
 * 8 bytes at a time; the caller goes in chunks to stop early on a tensor
 * that is not ternary. */
static int float_off(const uint8_t *src, int wide, uint64_t i0, uint64_t i1, uint32_t m)
{
    unsigned es = wide ? 4 : 2, per = 8 / es;
    uint64_t low = swar_low(wide), mm = wide ? (uint64_t)m * 0x100000001ull : (uint64_t)m * 0x0001000100010001ull;
    uint64_t bad = 0, i = i0;
    for (; i + per <= i1; i += per) {
        uint64_t x = load64(src + es * i) & low;
        bad |= (x + low) & ((x ^ mm) + low) & ~low;
    }
    for (; i < i1; i++) {
        uint32_t x = float_mag(src, wide, i);
        bad |= x != 0 && x != m;
    }
    return bad != 0;
}

/* 0 when n values of src (f32 when wide, else 16-bit) are each ±0 or ±m,
 * m the magnitude bits of the first nonzero value seen, here or in an
 * earlier part of the tensor (*m, 0 until then); 1 at the first other
 * value. In 4096-value pieces, so a tensor that is not ternary stops early. */
static int float_scan(const uint8_t *src, int wide, uint64_t n, uint32_t *m)
{
    uint64_t i = 0;
    if (!*m) {
        while (i < n && !float_mag(src, wide, i))
            i++;
        if (i == n)
            return 0;
        *m = float_mag(src, wide, i);
    }
    enum { CHUNK = 4096 };
    for (; i < n; i += CHUNK)
        if (float_off(src, wide, i, n - i > CHUNK ? i + CHUNK : n, *m))
            return 1;
    return 0;
}

/* An f32/f16/bf16 projection becomes t2 when every value is ±0 or ±β for
 * one positive finite β (β widened to f32): what the BitNet converters write
 * for a projection (bitnet.cpp's and llama.cpp's weight_quant, the official
 * 2B4T path's preprocessing; formats/gguf-import.md §2), which the peers
 * multiply by as stored. Re-ternarizing such a tensor by absmean would keep
 * the codes but take β = mean|w|, a fraction of the true scale; read as t2
 * it keeps both. The tensor is read a MiB at a time, so a master's latent
 * weights are told apart after the first piece, not after a whole read. */
static int decide_float(const char *name, gg_impl *g, bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    int wide = t->type == BN_F32;
    size_t es = wide ? 4 : 2, piece = ((size_t)1 << 20) / es * es;
    uint64_t size = gt->src_size;
    if (ensure_scratch(g, size < piece ? (size_t)size : piece))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s'", name, t->name);
    uint32_t m = 0;
    for (uint64_t off = 0; off < size; off += piece) {
        size_t len = size - off < piece ? (size_t)(size - off) : piece;
        if (bn_gguf_pread_full(g->fd, g->scratch, len, gt->src_off + off))
            return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
        if (float_scan(g->scratch, wide, len / es, &m))
            return 0; /* not ternary·β: stays float */
    }
    float f;
    if (wide)
        memcpy(&f, &m, 4);
    else
        f = t->type == BN_F16 ? bn_f16_to_f32((uint16_t)m) : bn_bf16_to_f32((uint16_t)m);
    if (m && f > 0 && isfinite(f)) { /* all zero: no β to keep */
        gt->beta = f;
        gt->conv = CV_FLOAT_T2;
        t->type = BN_T2;
    }
    return 0;
}

int bn_gguf_tensor_settle(const char *name, gg_impl *g, bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    if (g->float_t2 && gt->conv == CV_COPY && (t->type == BN_F32 || t->type == BN_F16 || t->type == BN_BF16) && t->ndim == 2 &&
        bn_gguf_is_proj(t->name) && decide_float(name, g, t, gt, e))
        return -1;
    if (gt->conv == CV_I2S_T2 && read_i2s_scale(name, g, t, gt, e))
        return -1;
    if (gt->conv == CV_TL_T2 && settle_tl(name, g, t, gt, e))
        return -1;
    if ((gt->conv == CV_TQ1_T2 || gt->conv == CV_TQ2_T2) && decide_tq(name, g, t, gt, e))
        return -1;
    if ((gt->conv == CV_IQ1BN_T2 || gt->conv == CV_IQ2BN_T2) && decide_iqbn(name, g, t, gt, e))
        return -1;
    t->size = bn_type_size(t->type, t->ndim, t->shape);
    if (!t->size)
        return bn_fail(e, "%s: tensor '%s' is too large", name, t->name);
    return 0;
}

/* ------------------------------------------------------------- read() */

static void t2_put(uint8_t *row, uint64_t c, unsigned code)
{
    unsigned sh = (unsigned)(2 * (c & 3));
    row[c >> 2] = (uint8_t)((row[c >> 2] & ~(3u << sh)) | (code << sh));
}

/* Output rows start with every code = 1 (zero), so padding codes are 1. */
static void t2_init(uint8_t *out, uint64_t rows, uint64_t k)
{
    memset(out, 0x55, (size_t)(rows * ((k + 3) / 4)));
}

static void read_q8(const uint8_t *src, uint64_t n, float *of)
{
    for (uint64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = src + b * 34;
        float d = f16f(blk);
        for (unsigned j = 0; j < 32; j++)
            of[b * 32 + j] = (float)(int8_t)blk[2 + j] * d;
    }
}

/* Whole 128-weight blocks to t2 bytes, 32 in, 32 out: t2 byte i holds
 * columns 4i..4i+3, which I2_S keeps in bytes 4i%32.. at the bit pair of
 * group i/8. 0 when a code 3 occurs (the caller then finds where). */
static int i2s_blocks_to_t2(const uint8_t *src, uint64_t nblk, uint8_t *out)
{
    uint64_t bad = 0;
    for (uint64_t b = 0; b < nblk; b++, src += 32, out += 32) {
        for (unsigned i = 0; i < 32; i++) {
            unsigned sh = 6 - 2 * (i >> 3);
            const uint8_t *q = src + 4 * (i & 7);
            out[i] = (uint8_t)(((q[0] >> sh) & 3) | ((q[1] >> sh) & 3) << 2 | ((q[2] >> sh) & 3) << 4 |
                               ((q[3] >> sh) & 3) << 6);
        }
        for (unsigned i = 0; i < 32; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            bad |= w & (w >> 1) & 0x5555555555555555ull;
        }
    }
    return !bad;
}

static int read_i2s(const bn_source *s, const bn_tensor *t, const gg_tensor *gt, const uint8_t *src, uint8_t *out,
                    bn_err *e)
{
    uint64_t k = gt->k, rows = gt->n / k, rb = (k + 3) / 4;
    /* rows of whole blocks: the same bytes, a block at a time (the 100B
     * shape's pipe was bound here at 67 MB/s going weight by weight) */
    if (k % 128 == 0 && i2s_blocks_to_t2(src, gt->n / 128, out)) {
        memcpy(out + rows * rb, &gt->beta, 4);
        return 0;
    }
    t2_init(out, rows, k);
    for (uint64_t r = 0; r < rows; r++) {
        uint8_t *row = out + r * rb;
        uint64_t base = r * k;
        for (uint64_t c = 0; c < k; c++) {
            unsigned code = i2s_code(src, base + c);
            if (code == 3)
                return bn_fail(e,
                               "%s: tensor '%s': invalid I2_S code 3 at row %llu, column %llu "
                               "(not the canonical I2_S layout, or damaged)",
                               s->name, t->name, (unsigned long long)r, (unsigned long long)c);
            t2_put(row, c, code);
        }
    }
    memcpy(out + rows * rb, &gt->beta, 4);
    return 0;
}

/* TQ1_0 / TQ2_0 blocks to t2 (one scale) or exact f32 (per-block scales). */
static void read_tq(const gg_tensor *gt, const uint8_t *src, void *buf)
{
    int tq1 = gt->conv == CV_TQ1_T2 || gt->conv == CV_TQ1_F32;
    int tot2 = gt->conv == CV_TQ1_T2 || gt->conv == CV_TQ2_T2;
    uint64_t n = gt->n, k = gt->k, rows = n / k, rb = (k + 3) / 4;
    size_t bs = tq1 ? 54 : 66;
    uint8_t *out = buf, codes[256];
    float *of = buf;
    if (tot2)
        t2_init(out, rows, k);
    for (uint64_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = src + b * bs;
        tq_block_codes(tq1, blk, codes);
        if (tot2) {
            /* k is a multiple of 256: a block lies within one row. */
            uint64_t idx = b * 256, r = idx / k, c0 = idx % k;
            uint8_t *row = out + r * rb;
            for (unsigned j = 0; j < 256; j++)
                t2_put(row, c0 + j, codes[j]);
        } else {
            float d = f16f(blk + bs - 2);
            for (unsigned j = 0; j < 256; j++)
                of[b * 256 + j] = (float)((int)codes[j] - 1) * d;
        }
    }
    if (tot2)
        memcpy(out + rows * rb, &gt->beta, 4);
}

/* IQ1_BN / IQ2_BN rows to t2 (one scale: zero rows keep codes 1) or exact f32. */
static int read_iqbn(const bn_source *s, const bn_tensor *t, const gg_tensor *gt, const uint8_t *src, void *buf,
                     bn_err *e)
{
    iqbn_rows geo = iqbn_geometry(gt);
    int tot2 = gt->conv == CV_IQ1BN_T2 || gt->conv == CV_IQ2BN_T2;
    uint64_t rb = (geo.k + 3) / 4;
    uint8_t *out = buf, *codes = malloc((size_t)geo.k);
    float *of = buf;
    if (!codes)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s'", s->name, t->name);
    if (tot2)
        t2_init(out, geo.rows, geo.k);
    for (uint64_t r = 0; r < geo.rows; r++) {
        uint32_t bits;
        float d = iqbn_scale(&geo, src, r, &bits);
        if (tot2 && d == 0)
            continue;
        iqbn_row_codes(&geo, src, r, codes);
        for (uint64_t c = 0; c < geo.k; c++) {
            if (tot2)
                t2_put(out + r * rb, c, codes[c]);
            else
                of[r * geo.k + c] = d * (float)((int)codes[c] - 1);
        }
    }
    if (tot2)
        memcpy(out + geo.rows * rb, &gt->beta, 4);
    free(codes);
    return 0;
}

/* t2 code of a ternary·β element from its bits (sign in bit `top`): 0
 * for -β, 1 for 0, 2 for +β, without a branch. */
static inline unsigned float_code(uint32_t bits, unsigned top)
{
    unsigned nz = (bits & ((1u << top) - 1)) != 0, neg = bits >> top & 1;
    return 1 + nz - 2 * (nz & neg);
}

/* Bit 16j+15 of v (j = 0..3) to bit 2j: after the shift the bits sit at
 * 16j; the product adds copies shifted by 48-14j, which puts bit j at
 * 48+2j and every other copy outside bits 48-55 (none overlap: no carry). */
static unsigned gather4(uint64_t v)
{
    return (unsigned)((((v >> 15) & 0x0001000100010001ull) * 0x0001000400100040ull) >> 48) & 0x55u;
}

/* A ternary·β f32/f16/bf16 tensor (decide_float) to t2 codes and its β. */
static void read_float_t2(const gg_tensor *gt, const uint8_t *src, int wide, uint8_t *out)
{
    uint64_t k = gt->k, rows = gt->n / k, rb = (k + 3) / 4;
    unsigned top = wide ? 31 : 15;
    const uint64_t low = swar_low(0);
    for (uint64_t r = 0; r < rows; r++) {
        uint8_t *row = out + r * rb;
        uint64_t c = 0, e = r * k;
        if (!wide) /* four halves, one byte of codes: 1 + (bit0: zero) + (bit1: positive) */
            for (; c + 4 <= k; c += 4) {
                uint64_t v = load64(src + 2 * (e + c)), nz = ((v & low) + low) & ~low;
                row[c / 4] = (uint8_t)(gather4(~nz & ~low) | gather4(nz & ~v) << 1);
            }
        for (; c < k; c += 4) { /* 4 codes a byte; past k the padding code 1 (zero) */
            unsigned b = 0x55;
            for (unsigned j = 0; j < 4 && c + j < k; j++)
                b = (b & ~(3u << 2 * j)) | float_code(float_bits(src, wide, e + c + j), top) << 2 * j;
            row[c / 4] = (uint8_t)b;
        }
    }
    memcpy(out + rows * rb, &gt->beta, 4);
}

int bn_gguf_tensor_read(bn_source *s, size_t i, void *buf, bn_err *e)
{
    gg_impl *g = s->impl;
    const bn_tensor *t = &s->tensors[i];
    const gg_tensor *gt = &g->gt[i];
    if (gt->conv == CV_COPY) {
        if (bn_gguf_pread_full(g->fd, buf, (size_t)t->size, gt->src_off))
            return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", s->name, t->name, strerror(errno));
        return 0;
    }
    if (ensure_scratch(g, (size_t)gt->src_size))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s' (%llu bytes)", s->name, t->name,
                       (unsigned long long)gt->src_size);
    if (bn_gguf_pread_full(g->fd, g->scratch, (size_t)gt->src_size, gt->src_off))
        return bn_fail_code(e, BN_E_IO, "%s: tensor '%s': read error: %s", s->name, t->name, strerror(errno));
    switch (gt->conv) {
    case CV_Q8_F32:
        read_q8(g->scratch, gt->n, buf);
        return 0;
    case CV_I2S_T2:
        return read_i2s(s, t, gt, g->scratch, buf, e);
    case CV_TQ1_T2:
    case CV_TQ2_T2:
    case CV_TQ1_F32:
    case CV_TQ2_F32:
        read_tq(gt, g->scratch, buf);
        return 0;
    case CV_Q32_F32:
        bn_gguf_dequant_q32(gt->ggtype, g->scratch, gt->n / 32, buf);
        return 0;
    case CV_Q4K_F32:
        bn_gguf_dequant_q4k(g->scratch, gt->n / 256, buf);
        return 0;
    case CV_Q5K_F32:
        bn_gguf_dequant_q5k(g->scratch, gt->n / 256, buf);
        return 0;
    case CV_Q6K_F32:
        bn_gguf_dequant_q6k(g->scratch, gt->n / 256, buf);
        return 0;
    case CV_IQ1BN_T2:
    case CV_IQ2BN_T2:
    case CV_IQ1BN_F32:
    case CV_IQ2BN_F32:
        return read_iqbn(s, t, gt, g->scratch, buf, e);
    case CV_TL_T2:
        return bn_gguf_tl_read(s->name, t->name, gt, g->scratch, buf, e);
    case CV_FLOAT_T2:
        read_float_t2(gt, g->scratch, gt->ggtype == GT_F32, buf);
        return 0;
    }
    return bn_fail(e, "%s: tensor '%s': internal error (conversion %d)", s->name, t->name, gt->conv);
}

void bn_gguf_close(bn_source *s)
{
    gg_impl *g = s->impl;
    if (!g)
        return;
    if (g->fd >= 0)
        close(g->fd);
    free(g->gt);
    free(g->scratch);
    bn_gguf_tl_config_free(&g->tl);
    free(g);
    s->impl = NULL;
}
