/* gguf.c — reader of GGUF v2/v3 files (bitnet.cpp and llama.cpp), presented
 * canonically (formats/bn-model.md): canonical metadata keys, GGUF tensor
 * names, shapes outermost-first, and bn tensor types. Ternary encodings
 * (I2_S, and TQ1_0/TQ2_0 with one scale) become `t2`; Q8_0 and non-uniform
 * TQ tensors are dequantized exactly to f32. Conversion happens in read(),
 * one tensor at a time, from pread() into a scratch buffer.
 *
 * Every count, size and offset in the file is checked against the file size
 * before it is used to allocate or read. */
#include "formats.h"
#include "formats.h"

#include "tok_section.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* GGUF value types (ggml docs/gguf.md). */
enum {
    GV_U8 = 0, GV_I8 = 1, GV_U16 = 2, GV_I16 = 3, GV_U32 = 4, GV_I32 = 5, GV_F32 = 6, GV_BOOL = 7,
    GV_STR = 8, GV_ARR = 9, GV_U64 = 10, GV_I64 = 11, GV_F64 = 12
};

/* ggml tensor types we read. */
enum { GT_F32 = 0, GT_F16 = 1, GT_Q8_0 = 8, GT_BF16 = 30, GT_TQ1_0 = 34, GT_TQ2_0 = 35, GT_I2_S = 36 };

/* What read() does with a tensor. */
enum { CV_COPY, CV_Q8_F32, CV_I2S_T2, CV_TQ1_T2, CV_TQ1_F32, CV_TQ2_T2, CV_TQ2_F32 };

#define MAX_KV 65536
#define MAX_TENSORS 65536
#define MAX_DEPTH 8
#define MAX_KEY 65535

typedef struct gg_tensor {
    uint32_t ggtype;
    int conv;
    uint64_t src_off;  /* absolute file offset */
    uint64_t src_size; /* bytes in the file */
    uint64_t n;        /* elements */
    uint64_t k;        /* innermost dimension (ne0) */
    float beta;        /* t2 scale (I2_S: read at open; TQ: the common d) */
} gg_tensor;

typedef struct gg_impl {
    int fd;
    gg_tensor *gt;
    uint8_t *scratch;
    size_t scratch_cap;
} gg_impl;

static const char *ggml_type_name(uint32_t t)
{
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",     [2] = "Q4_0",     [3] = "Q4_1",    [6] = "Q5_0",
        [7] = "Q5_1",     [8] = "Q8_0",    [9] = "Q8_1",     [10] = "Q2_K",   [11] = "Q3_K",
        [12] = "Q4_K",    [13] = "Q5_K",   [14] = "Q6_K",    [15] = "Q8_K",   [16] = "IQ2_XXS",
        [17] = "IQ2_XS",  [18] = "IQ3_XXS", [19] = "IQ1_S",  [20] = "IQ4_NL", [21] = "IQ3_S",
        [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",      [25] = "I16",    [26] = "I32",
        [27] = "I64",     [28] = "F64",    [29] = "IQ1_M",   [30] = "BF16",   [34] = "TQ1_0",
        [35] = "TQ2_0",   [36] = "I2_S",   [37] = "I8_S",    [38] = "TL1",    [39] = "TL2 or MXFP4",
    };
    if (t < sizeof names / sizeof *names && names[t])
        return names[t];
    if (t == 134)
        return "IQ1_BN";
    if (t == 135)
        return "IQ2_BN";
    return "unknown";
}

/* ------------------------------------------------------- buffered reader */

typedef struct rdr {
    int fd;
    const char *name;
    uint64_t size; /* file size */
    uint64_t pos;  /* logical position */
    uint8_t *buf;
    uint64_t bstart;
    size_t blen;
} rdr;

#define RBUF (1u << 16)

static int pread_full(int fd, void *dst, size_t n, uint64_t off)
{
    uint8_t *p = dst;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static uint64_t r_left(const rdr *r)
{
    return r->size - r->pos;
}

/* Reads n bytes (n <= what is left has been checked by the caller or here). */
static int r_get(rdr *r, void *dst, uint64_t n, const char *what, bn_err *e)
{
    if (n > r_left(r))
        return bn_fail(e, "%s: truncated while reading %s (offset %llu, %llu bytes needed, %llu left)", r->name,
                       what, (unsigned long long)r->pos, (unsigned long long)n,
                       (unsigned long long)r_left(r));
    uint8_t *d = dst;
    while (n) {
        if (r->pos < r->bstart || r->pos >= r->bstart + r->blen) {
            uint64_t want = r->size - r->pos;
            if (want > RBUF)
                want = RBUF;
            if (pread_full(r->fd, r->buf, (size_t)want, r->pos))
                return bn_fail(e, "%s: read error: %s", r->name, strerror(errno));
            r->bstart = r->pos;
            r->blen = (size_t)want;
        }
        uint64_t in = r->bstart + r->blen - r->pos;
        uint64_t take = n < in ? n : in;
        if (d) {
            memcpy(d, r->buf + (r->pos - r->bstart), (size_t)take);
            d += take;
        }
        r->pos += take;
        n -= take;
    }
    return 0;
}

static int r_u32(rdr *r, uint32_t *v, const char *what, bn_err *e)
{
    uint8_t b[4];
    if (r_get(r, b, 4, what, e))
        return -1;
    memcpy(v, b, 4);
    return 0;
}

static int r_u64(rdr *r, uint64_t *v, const char *what, bn_err *e)
{
    uint8_t b[8];
    if (r_get(r, b, 8, what, e))
        return -1;
    memcpy(v, b, 8);
    return 0;
}

/* A GGUF string: u64 length + bytes. Returns a malloc'd NUL-terminated copy. */
static int r_str(rdr *r, char **out, uint64_t *len_out, uint64_t max, const char *what, bn_err *e)
{
    uint64_t n;
    if (r_u64(r, &n, what, e))
        return -1;
    if (n > r_left(r))
        return bn_fail(e, "%s: truncated or damaged: %s claims %llu bytes, past the end of the file", r->name, what,
                       (unsigned long long)n);
    if (n > max)
        return bn_fail(e, "%s: %s is %llu bytes long (at most %llu allowed)", r->name, what,
                       (unsigned long long)n, (unsigned long long)max);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return bn_fail(e, "%s: out of memory", r->name);
    if (r_get(r, s, n, what, e)) {
        free(s);
        return -1;
    }
    s[n] = 0;
    *out = s;
    if (len_out)
        *len_out = n;
    return 0;
}

/* ----------------------------------------------------------- KV parsing */

static size_t gv_width(uint32_t t)
{
    switch (t) {
    case GV_U8: case GV_I8: case GV_BOOL: return 1;
    case GV_U16: case GV_I16: return 2;
    case GV_U32: case GV_I32: case GV_F32: return 4;
    case GV_U64: case GV_I64: case GV_F64: return 8;
    default: return 0;
    }
}

/* The bn scalar type a GGUF scalar type widens to. */
static uint32_t gv_to_bn(uint32_t t)
{
    switch (t) {
    case GV_U8: case GV_U16: case GV_U32: return BN_V_U32;
    case GV_I8: case GV_I16: case GV_I32: return BN_V_I32;
    case GV_F32: return BN_V_F32;
    case GV_BOOL: return BN_V_BOOL;
    case GV_U64: return BN_V_U64;
    case GV_I64: return BN_V_I64;
    case GV_F64: return BN_V_F64;
    default: return 0;
    }
}

/* Decodes one little-endian GGUF scalar of type t at p into the bn form
 * (4-byte u32/i32/f32, 8-byte u64/i64/f64, 1-byte bool). */
static void gv_widen(uint32_t t, const uint8_t *p, uint8_t *out)
{
    switch (t) {
    case GV_U8: { uint32_t v = p[0]; memcpy(out, &v, 4); break; }
    case GV_I8: { int32_t v = (int8_t)p[0]; memcpy(out, &v, 4); break; }
    case GV_U16: { uint16_t h; memcpy(&h, p, 2); uint32_t v = h; memcpy(out, &v, 4); break; }
    case GV_I16: { int16_t h; memcpy(&h, p, 2); int32_t v = h; memcpy(out, &v, 4); break; }
    case GV_BOOL: out[0] = p[0] != 0; break;
    case GV_U32: case GV_I32: case GV_F32: memcpy(out, p, 4); break;
    default: memcpy(out, p, 8); break;
    }
}

static size_t bn_width(uint32_t t)
{
    switch (t) {
    case BN_V_U32: case BN_V_I32: case BN_V_F32: return 4;
    case BN_V_BOOL: return 1;
    default: return 8;
    }
}

/* Skips an array's elements (used for nested arrays, which have no bn form). */
static int skip_array(rdr *r, const char *key, int depth, bn_err *e)
{
    uint32_t et;
    uint64_t n;
    if (depth > MAX_DEPTH)
        return bn_fail(e, "%s: metadata '%s': arrays nested too deeply", r->name, key);
    if (r_u32(r, &et, "an array type", e) || r_u64(r, &n, "an array count", e))
        return -1;
    if (et == GV_STR) {
        if (n > r_left(r) / 8)
            return bn_fail(e, "%s: truncated or damaged: metadata '%s' claims %llu strings, "
                           "more than the file holds", r->name, key, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l;
            if (r_u64(r, &l, "a string length", e))
                return -1;
            if (r_get(r, NULL, l, "a string", e))
                return -1;
        }
        return 0;
    }
    if (et == GV_ARR) {
        if (n > r_left(r) / 12)
            return bn_fail(e, "%s: truncated or damaged: metadata '%s' claims %llu nested arrays, "
                           "more than the file holds", r->name, key, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if (skip_array(r, key, depth + 1, e))
                return -1;
        return 0;
    }
    size_t w = gv_width(et);
    if (!w)
        return bn_fail(e, "%s: metadata '%s' has unknown array element type %u", r->name, key, et);
    if (n > r_left(r) / w)
        return bn_fail(e, "%s: truncated or damaged: metadata '%s' claims %llu elements, "
                       "more than the file holds", r->name, key, (unsigned long long)n);
    return r_get(r, NULL, n * w, "array elements", e);
}

/* Reads one KV into raw (keys as in the file, values widened to bn types;
 * nested arrays are parsed and dropped). */
static int read_kv(rdr *r, bn_meta *raw, bn_err *e)
{
    char *key = NULL;
    uint64_t kl;
    uint32_t vt;
    int rc = -1;
    if (r_str(r, &key, &kl, MAX_KEY, "a metadata key", e))
        return -1;
    if (kl == 0 || memchr(key, 0, (size_t)kl)) {
        bn_fail(e, "%s: a metadata key is empty or contains a NUL byte", r->name);
        goto out;
    }
    if (bn_meta_get(raw, key)) {
        bn_fail(e, "%s: metadata key '%s' appears twice", r->name, key);
        goto out;
    }
    if (r_u32(r, &vt, "a metadata value type", e))
        goto out;
    if (vt == GV_STR) {
        char *v;
        uint64_t vl;
        if (r_str(r, &v, &vl, UINT64_MAX, "a metadata string", e))
            goto out;
        rc = bn_meta_set_strn(raw, key, v, (size_t)vl) ? bn_fail(e, "%s: out of memory", r->name) : 0;
        free(v);
        goto out;
    }
    if (vt == GV_ARR) {
        uint32_t et;
        uint64_t n;
        uint64_t at = r->pos;
        if (r_u32(r, &et, "an array type", e) || r_u64(r, &n, "an array count", e))
            goto out;
        if (et == GV_ARR) {
            r->pos = at;
            rc = skip_array(r, key, 0, e);
            goto out;
        }
        if (et == GV_STR) {
            if (n > r_left(r) / 8) {
                bn_fail(e, "%s: truncated or damaged: metadata '%s' claims %llu strings, "
                        "more than the file holds", r->name, key, (unsigned long long)n);
                goto out;
            }
            uint64_t *off = malloc((size_t)(n + 1) * sizeof *off);
            size_t cap = 4096, len = 0;
            char *data = malloc(cap);
            if (!off || !data) {
                free(off);
                free(data);
                bn_fail(e, "%s: out of memory", r->name);
                goto out;
            }
            for (uint64_t i = 0; i < n; i++) {
                uint64_t l;
                off[i] = len;
                if (r_u64(r, &l, "a string length", e))
                    goto strfail;
                if (l > r_left(r)) {
                    bn_fail(e, "%s: metadata '%s' element %llu claims %llu bytes, past the end of the file",
                            r->name, key, (unsigned long long)i, (unsigned long long)l);
                    goto strfail;
                }
                if (len + l + 1 > cap) {
                    size_t nc = cap;
                    while (nc < len + l + 1)
                        nc *= 2;
                    char *nd = realloc(data, nc);
                    if (!nd) {
                        bn_fail(e, "%s: out of memory", r->name);
                        goto strfail;
                    }
                    data = nd;
                    cap = nc;
                }
                if (r_get(r, data + len, l, "a string", e))
                    goto strfail;
                len += (size_t)l;
            }
            off[n] = len;
            data[len] = 0;
            rc = bn_meta_set_strarr_owned(raw, key, data, off, n) ? bn_fail(e, "%s: out of memory", r->name)
                                                                   : 0;
            goto out;
        strfail:
            free(off);
            free(data);
            goto out;
        }
        size_t w = gv_width(et);
        if (!w) {
            bn_fail(e, "%s: metadata '%s' has unknown array element type %u", r->name, key, et);
            goto out;
        }
        if (n > r_left(r) / w) {
            bn_fail(e, "%s: truncated or damaged: metadata '%s' claims %llu elements, "
                    "more than the file holds", r->name, key, (unsigned long long)n);
            goto out;
        }
        uint32_t bt = gv_to_bn(et);
        size_t bw = bn_width(bt);
        uint8_t *src = malloc((size_t)(n * w) + 1);
        uint8_t *dst = malloc((size_t)(n * bw) + 1);
        if (!src || !dst) {
            free(src);
            free(dst);
            bn_fail(e, "%s: out of memory", r->name);
            goto out;
        }
        if (r_get(r, src, n * w, "array elements", e)) {
            free(src);
            free(dst);
            goto out;
        }
        for (uint64_t i = 0; i < n; i++)
            gv_widen(et, src + i * w, dst + i * bw);
        rc = bn_meta_set_arr(raw, key, bt, dst, n) ? bn_fail(e, "%s: out of memory", r->name) : 0;
        free(src);
        free(dst);
        goto out;
    }
    size_t w = gv_width(vt);
    if (!w) {
        bn_fail(e, "%s: metadata '%s' has unknown value type %u", r->name, key, vt);
        goto out;
    }
    uint8_t v[8], wide[8] = {0};
    if (r_get(r, v, w, "a metadata value", e))
        goto out;
    gv_widen(vt, v, wide);
    switch (gv_to_bn(vt)) {
    case BN_V_U32: { uint32_t x; memcpy(&x, wide, 4); rc = bn_meta_set_u32(raw, key, x); break; }
    case BN_V_I32: { int32_t x; memcpy(&x, wide, 4); rc = bn_meta_set_i32(raw, key, x); break; }
    case BN_V_F32: { float x; memcpy(&x, wide, 4); rc = bn_meta_set_f32(raw, key, x); break; }
    case BN_V_BOOL: rc = bn_meta_set_bool(raw, key, wide[0]); break;
    case BN_V_U64: { uint64_t x; memcpy(&x, wide, 8); rc = bn_meta_set_u64(raw, key, x); break; }
    case BN_V_I64: {
        /* bn_meta has no i64 setter; store through a u64 slot of the right type. */
        int64_t x;
        memcpy(&x, wide, 8);
        rc = bn_meta_set_u64(raw, key, (uint64_t)x);
        if (!rc) {
            bn_kv *kv = (bn_kv *)bn_meta_get(raw, key);
            kv->type = BN_V_I64;
        }
        break;
    }
    case BN_V_F64: {
        double x;
        memcpy(&x, wide, 8);
        rc = bn_meta_set_u64(raw, key, 0);
        if (!rc) {
            bn_kv *kv = (bn_kv *)bn_meta_get(raw, key);
            kv->type = BN_V_F64;
            memcpy(kv->data, &x, 8);
        }
        break;
    }
    }
    if (rc)
        bn_fail(e, "%s: out of memory", r->name);
out:
    free(key);
    return rc;
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
        if (tq1)
            tq1_block_codes(blk, codes);
        else
            tq2_block_codes(blk, codes);
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

/* ------------------------------------------------------------- read() */

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

static int gg_read(bn_source *s, size_t i, void *buf, bn_err *e)
{
    gg_impl *g = s->impl;
    const bn_tensor *t = &s->tensors[i];
    const gg_tensor *gt = &g->gt[i];
    if (gt->conv == CV_COPY) {
        if (pread_full(g->fd, buf, (size_t)t->size, gt->src_off))
            return bn_fail(e, "%s: tensor '%s': read error: %s", s->name, t->name, strerror(errno));
        return 0;
    }
    if (ensure_scratch(g, (size_t)gt->src_size))
        return bn_fail(e, "%s: out of memory for tensor '%s' (%llu bytes)", s->name, t->name,
                       (unsigned long long)gt->src_size);
    const uint8_t *src = g->scratch;
    if (pread_full(g->fd, g->scratch, (size_t)gt->src_size, gt->src_off))
        return bn_fail(e, "%s: tensor '%s': read error: %s", s->name, t->name, strerror(errno));
    uint64_t n = gt->n, k = gt->k, rows = n / k, rb = (k + 3) / 4;
    uint8_t *out = buf;
    float *of = buf;
    switch (gt->conv) {
    case CV_Q8_F32:
        for (uint64_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = src + b * 34;
            float d = f16f(blk);
            for (unsigned j = 0; j < 32; j++)
                of[b * 32 + j] = (float)(int8_t)blk[2 + j] * d;
        }
        return 0;
    case CV_I2S_T2: {
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
    case CV_TQ1_T2:
    case CV_TQ2_T2:
    case CV_TQ1_F32:
    case CV_TQ2_F32: {
        int tq1 = gt->conv == CV_TQ1_T2 || gt->conv == CV_TQ1_F32;
        int tot2 = gt->conv == CV_TQ1_T2 || gt->conv == CV_TQ2_T2;
        size_t bs = tq1 ? 54 : 66;
        uint8_t codes[256];
        if (tot2)
            t2_init(out, rows, k);
        for (uint64_t b = 0; b < n / 256; b++) {
            const uint8_t *blk = src + b * bs;
            if (tq1)
                tq1_block_codes(blk, codes);
            else
                tq2_block_codes(blk, codes);
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
        return 0;
    }
    }
    return bn_fail(e, "%s: tensor '%s': internal error (conversion %d)", s->name, t->name, gt->conv);
}

static void gg_close(bn_source *s)
{
    gg_impl *g = s->impl;
    if (!g)
        return;
    if (g->fd >= 0)
        close(g->fd);
    free(g->gt);
    free(g->scratch);
    free(g);
    s->impl = NULL;
}

/* ------------------------------------------------------ canonical metadata */

typedef struct archinfo {
    const char *canon;
    const char *act;
    int sub_norms;
    const char *pairing;
    int bitnet;
} archinfo;

static int map_arch(const char *a, archinfo *ai)
{
    if (!strcmp(a, "bitnet-b1.58") || !strcmp(a, "bitnet-25")) {
        *ai = (archinfo){"bitnet-b1.58", "relu2", 1, "neox", 1};
        return 0;
    }
    if (!strcmp(a, "bitnet")) {
        *ai = (archinfo){"bitnet", "silu", 1, "neox", 1};
        return 0;
    }
    if (!strcmp(a, "llama")) {
        *ai = (archinfo){"llama", "silu", 0, "adjacent", 0};
        return 0;
    }
    return -1;
}

static int strarr_find(const bn_kv *kv, const char *s)
{
    if (!kv || kv->type != BN_V_STRARR)
        return -1;
    size_t n = strlen(s);
    for (uint64_t i = 0; i < kv->count; i++)
        if (kv->offsets[i + 1] - kv->offsets[i] == n && !memcmp((char *)kv->data + kv->offsets[i], s, n))
            return (int)i;
    return -1;
}

static int get_u32(const bn_meta *raw, const char *arch, const char *suffix, uint32_t *v, int required,
                   const char *name, bn_err *e)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const bn_kv *kv = bn_meta_get(raw, key);
    if (!kv) {
        if (required)
            return bn_fail(e, "%s: missing metadata '%s'", name, key);
        return 1;
    }
    if (bn_meta_u32(raw, key, v))
        return bn_fail(e, "%s: metadata '%s' is not an unsigned 32-bit integer", name, key);
    return 0;
}

static int get_f32(const bn_meta *raw, const char *arch, const char *suffix, float *v, int required,
                   const char *name, bn_err *e)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const bn_kv *kv = bn_meta_get(raw, key);
    if (!kv) {
        if (required)
            return bn_fail(e, "%s: missing metadata '%s'", name, key);
        return 1;
    }
    double d;
    if (bn_meta_f64(raw, key, &d) || !isfinite(d))
        return bn_fail(e, "%s: metadata '%s' is not a finite number", name, key);
    *v = (float)d;
    return 0;
}

static int32_t tok_id(const bn_meta *raw, const char *key, const char *name, bn_err *e, int *err)
{
    if (!bn_meta_get(raw, key))
        return -1;
    int64_t v;
    if (bn_meta_i64(raw, key, &v) || v < 0 || v > INT32_MAX) {
        *err = bn_fail(e, "%s: metadata '%s' is not a valid token id", name, key);
        return -1;
    }
    return (int32_t)v;
}

#define SETCHK(x)                                                                                            \
    do {                                                                                                     \
        if (x)                                                                                               \
            return bn_fail(e, "%s: out of memory", name);                                                    \
    } while (0)

static int build_meta(bn_source *s, const bn_meta *raw, int has_output, uint64_t embd_rows, bn_err *e)
{
    const char *name = s->name;
    bn_meta *m = &s->meta;
    const char *arch = bn_meta_str(raw, "general.architecture");
    if (!arch)
        return bn_fail(e, "%s: missing metadata 'general.architecture'", name);
    archinfo ai;
    if (map_arch(arch, &ai))
        return bn_fail(e,
                       "%s: architecture '%s' is not supported (bitnet-b1.58, bitnet-25, bitnet or ternary "
                       "llama expected)",
                       name, arch);
    SETCHK(bn_meta_set_str(m, "general.architecture", ai.canon));
    const char *gname = bn_meta_str(raw, "general.name");
    if (gname)
        SETCHK(bn_meta_set_str(m, "general.name", gname));

    uint32_t ctx, embd, ff, blocks, heads, heads_kv, head_dim, vocab = 0;
    if (get_u32(raw, arch, "context_length", &ctx, 1, name, e) ||
        get_u32(raw, arch, "embedding_length", &embd, 1, name, e) ||
        get_u32(raw, arch, "feed_forward_length", &ff, 1, name, e) ||
        get_u32(raw, arch, "block_count", &blocks, 1, name, e) ||
        get_u32(raw, arch, "attention.head_count", &heads, 1, name, e))
        return -1;
    int rc = get_u32(raw, arch, "attention.head_count_kv", &heads_kv, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc)
        heads_kv = heads;
    if (!heads)
        return bn_fail(e, "%s: metadata '%s.attention.head_count' is 0", name, arch);
    rc = get_u32(raw, arch, "rope.dimension_count", &head_dim, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc) {
        if (embd % heads)
            return bn_fail(e, "%s: embedding length %u is not a multiple of the head count %u", name, embd,
                           heads);
        head_dim = embd / heads;
    }
    const bn_kv *tokens = bn_meta_get(raw, "tokenizer.ggml.tokens");
    if (embd_rows && embd_rows <= UINT32_MAX)
        vocab = (uint32_t)embd_rows;
    else {
        rc = get_u32(raw, arch, "vocab_size", &vocab, 0, name, e);
        if (rc < 0)
            return -1;
        if (rc && tokens && tokens->type == BN_V_STRARR && tokens->count <= UINT32_MAX)
            vocab = (uint32_t)tokens->count;
    }
    float theta = 10000.0f, eps;
    if (get_f32(raw, arch, "rope.freq_base", &theta, 0, name, e) < 0 ||
        get_f32(raw, arch, "attention.layer_norm_rms_epsilon", &eps, 1, name, e))
        return -1;
    SETCHK(bn_meta_set_u32(m, "model.vocab_size", vocab));
    SETCHK(bn_meta_set_u32(m, "model.context_length", ctx));
    SETCHK(bn_meta_set_u32(m, "model.embedding_length", embd));
    SETCHK(bn_meta_set_u32(m, "model.feed_forward_length", ff));
    SETCHK(bn_meta_set_u32(m, "model.block_count", blocks));
    SETCHK(bn_meta_set_u32(m, "model.head_count", heads));
    SETCHK(bn_meta_set_u32(m, "model.head_count_kv", heads_kv));
    SETCHK(bn_meta_set_u32(m, "model.head_dim", head_dim));
    SETCHK(bn_meta_set_f32(m, "model.rope_theta", theta));
    SETCHK(bn_meta_set_str(m, "model.rope_pairing", ai.pairing));
    SETCHK(bn_meta_set_str(m, "model.ffn_activation", ai.act));
    SETCHK(bn_meta_set_bool(m, "model.sub_norms", ai.sub_norms));
    SETCHK(bn_meta_set_f32(m, "model.norm_eps", eps));
    SETCHK(bn_meta_set_bool(m, "model.tied_embeddings", !has_output));

    /* Tokens and chat. */
    int err = 0;
    int32_t bos = tok_id(raw, "tokenizer.ggml.bos_token_id", name, e, &err);
    int32_t eos = tok_id(raw, "tokenizer.ggml.eos_token_id", name, e, &err);
    int32_t pad = tok_id(raw, "tokenizer.ggml.padding_token_id", name, e, &err);
    if (err)
        return -1;
    int add_bos;
    if (bn_meta_bool(raw, "tokenizer.ggml.add_bos_token", &add_bos))
        add_bos = bos >= 0;
    int32_t stops[2];
    int nstop = 0;
    if (eos >= 0)
        stops[nstop++] = eos;
    int eot = strarr_find(tokens, "<|eot_id|>");
    if (eot >= 0 && eot != eos)
        stops[nstop++] = eot;
    SETCHK(bn_meta_set_i32(m, "tokens.bos_id", bos));
    SETCHK(bn_meta_set_i32(m, "tokens.eos_id", eos));
    SETCHK(bn_meta_set_i32(m, "tokens.pad_id", pad));
    SETCHK(bn_meta_set_arr(m, "tokens.stop_ids", BN_V_I32, stops, (uint64_t)nstop));
    SETCHK(bn_meta_set_bool(m, "tokens.add_bos", add_bos));
    int header_ids = strarr_find(tokens, "<|start_header_id|>") >= 0;
    const char *fmt = "none";
    if (ai.bitnet && header_ids && eot >= 0)
        fmt = "bitnet";
    else if (header_ids)
        fmt = "llama3";
    const char *tmpl = bn_meta_str(raw, "tokenizer.chat_template");
    if (tmpl) {
        const bn_kv *tk = bn_meta_get(raw, "tokenizer.chat_template");
        SETCHK(bn_meta_set_strn(m, "chat.template", tmpl, (size_t)tk->count));
    }
    SETCHK(bn_meta_set_str(m, "chat.format", fmt));
    SETCHK(bn_meta_set_str(m, "provenance.source_format", "gguf"));

    /* Tokenizer section. */
    if (!tokens || tokens->type != BN_V_STRARR)
        return bn_fail(e, "%s: no vocabulary (metadata 'tokenizer.ggml.tokens' is missing or not a string array)",
                       name);
    const char *tmodel = bn_meta_str(raw, "tokenizer.ggml.model");
    if (tmodel && strcmp(tmodel, "gpt2"))
        return bn_fail(e, "%s: tokenizer model '%s' is not supported (only byte-level BPE, 'gpt2')", name,
                       tmodel);
    const bn_kv *merges = bn_meta_get(raw, "tokenizer.ggml.merges");
    const bn_kv *ttype = bn_meta_get(raw, "tokenizer.ggml.token_type");
    const char *pre = bn_meta_str(raw, "tokenizer.ggml.pre");
    bn_meta *sec = calloc(1, sizeof *sec);
    if (!sec)
        return bn_fail(e, "%s: out of memory", name);
    if (bn_tokenizer_section_from_gguf(tokens, merges, ttype, pre, sec, e)) {
        bn_meta_free(sec);
        free(sec);
        size_t nl = strlen(name);
        if (strncmp(e->msg, name, nl) || e->msg[nl] != ':') {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            bn_fail(e, "%s: %s", name, msg);
        }
        return -1;
    }
    SETCHK(bn_meta_set_section(m, "tokenizer", sec));
    return 0;
}

/* ------------------------------------------------------------------ open */

int bn_gguf_sniff(const uint8_t *head, size_t n)
{
    return n >= 4 && !memcmp(head, "GGUF", 4);
}

static int name_cmp(const void *a, const void *b)
{
    const bn_tensor *x = *(const bn_tensor *const *)a, *y = *(const bn_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int is_ternary_proj(const char *n)
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

static int open_impl(bn_source *s, const char *path, bn_meta *raw, bn_err *e)
{
    const char *name = path;
    gg_impl *g = calloc(1, sizeof *g);
    if (!g)
        return bn_fail(e, "%s: out of memory", name);
    g->fd = -1;
    s->impl = g;
    s->close = gg_close;
    s->read = gg_read;
    g->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (g->fd < 0)
        return bn_fail(e, "%s: %s", name, strerror(errno));
    struct stat st;
    if (fstat(g->fd, &st))
        return bn_fail(e, "%s: %s", name, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bn_fail(e, "%s: a GGUF input must be a regular file", name);
    rdr r = {.fd = g->fd, .name = name, .size = (uint64_t)st.st_size};
    r.buf = malloc(RBUF);
    if (!r.buf)
        return bn_fail(e, "%s: out of memory", name);
    int rc = -1;
    bn_tensor **sorted = NULL;

    uint8_t magic[4];
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (r.size < 24) {
        bn_fail(e, "%s: truncated: %llu bytes, too short for a GGUF header", name, (unsigned long long)r.size);
        goto out;
    }
    if (r_get(&r, magic, 4, "the magic", e) || r_u32(&r, &version, "the version", e))
        goto out;
    if (memcmp(magic, "GGUF", 4)) {
        bn_fail(e, "%s: not a GGUF file (wrong magic)", name);
        goto out;
    }
    if (version == 0x02000000u || version == 0x03000000u) {
        bn_fail(e, "%s: big-endian GGUF is not supported", name);
        goto out;
    }
    if (version != 2 && version != 3) {
        bn_fail(e, "%s: unsupported GGUF version %u (2 and 3 are read)", name, version);
        goto out;
    }
    if (r_u64(&r, &n_tensors, "the tensor count", e) || r_u64(&r, &n_kv, "the metadata count", e))
        goto out;
    /* Smallest KV: 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes;
     * smallest tensor info: 8 + 1 + 4 + 8 + 4 + 8 bytes. */
    if (n_kv > MAX_KV || n_kv > r_left(&r) / 14) {
        bn_fail(e, "%s: header claims %llu metadata entries, more than the file can hold", name,
                (unsigned long long)n_kv);
        goto out;
    }
    if (n_tensors == 0) {
        bn_fail(e, "%s: the file holds no tensors", name);
        goto out;
    }
    if (n_tensors > MAX_TENSORS || n_tensors > r_left(&r) / 33) {
        bn_fail(e, "%s: header claims %llu tensors, more than the file can hold", name,
                (unsigned long long)n_tensors);
        goto out;
    }
    for (uint64_t i = 0; i < n_kv; i++)
        if (read_kv(&r, raw, e))
            goto out;

    uint64_t alignment = 32;
    if (bn_meta_get(raw, "general.alignment")) {
        const bn_kv *kv = bn_meta_get(raw, "general.alignment");
        uint32_t a;
        if (kv->type != BN_V_U32 || bn_meta_u32(raw, "general.alignment", &a) || a == 0 || a % 8 ||
            a > (1u << 24)) {
            bn_fail(e, "%s: bad general.alignment (a nonzero multiple of 8 is required)", name);
            goto out;
        }
        alignment = a;
    }

    s->tensors = calloc((size_t)n_tensors, sizeof *s->tensors);
    g->gt = calloc((size_t)n_tensors, sizeof *g->gt);
    if (!s->tensors || !g->gt) {
        bn_fail(e, "%s: out of memory", name);
        goto out;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        bn_tensor *t = &s->tensors[i];
        gg_tensor *gt = &g->gt[i];
        char *tn;
        uint64_t tl;
        if (r_str(&r, &tn, &tl, BN_NAME_MAX - 1, "a tensor name", e))
            goto out;
        if (tl == 0 || memchr(tn, 0, (size_t)tl)) {
            free(tn);
            bn_fail(e, "%s: tensor %llu has an empty name or a NUL in it", name, (unsigned long long)i);
            goto out;
        }
        memcpy(t->name, tn, (size_t)tl + 1);
        free(tn);
        uint32_t nd;
        if (r_u32(&r, &nd, "a tensor's dimension count", e))
            goto out;
        if (nd < 1 || nd > BN_MAX_DIMS) {
            bn_fail(e, "%s: tensor '%s' has %u dimensions (1..4 allowed)", name, t->name, nd);
            goto out;
        }
        uint64_t ne[BN_MAX_DIMS], n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (r_u64(&r, &ne[d], "a tensor dimension", e))
                goto out;
            if (ne[d] == 0 || ne[d] > r.size * 8 || (n && ne[d] > UINT64_MAX / n)) {
                bn_fail(e, "%s: tensor '%s' has an impossible dimension %llu", name, t->name,
                        (unsigned long long)ne[d]);
                goto out;
            }
            n *= ne[d];
        }
        if (n > r.size * 8) { /* no supported type packs more than 8 elements per byte */
            bn_fail(e, "%s: tensor '%s' has %llu elements, more than the file can hold", name, t->name,
                    (unsigned long long)n);
            goto out;
        }
        uint64_t off;
        if (r_u32(&r, &gt->ggtype, "a tensor type", e) || r_u64(&r, &off, "a tensor offset", e))
            goto out;
        t->ndim = nd;
        for (uint32_t d = 0; d < nd; d++)
            t->shape[d] = ne[nd - 1 - d];
        gt->n = n;
        gt->k = ne[0];
        gt->src_off = off; /* relative for now */
        t->src_index = (uint32_t)i;
        uint32_t tt = gt->ggtype;
        const char *tname = ggml_type_name(tt);
        switch (tt) {
        case GT_F32: gt->src_size = n * 4; t->type = BN_F32; gt->conv = CV_COPY; break;
        case GT_F16: gt->src_size = n * 2; t->type = BN_F16; gt->conv = CV_COPY; break;
        case GT_BF16: gt->src_size = n * 2; t->type = BN_BF16; gt->conv = CV_COPY; break;
        case GT_Q8_0:
            if (ne[0] % 32) {
                bn_fail(e, "%s: tensor '%s' (Q8_0): row length %llu is not a multiple of 32", name, t->name,
                        (unsigned long long)ne[0]);
                goto out;
            }
            gt->src_size = n / 32 * 34;
            t->type = BN_F32;
            gt->conv = CV_Q8_F32;
            break;
        case GT_TQ1_0:
        case GT_TQ2_0:
            if (ne[0] % 256) {
                bn_fail(e, "%s: tensor '%s' (%s): row length %llu is not a multiple of 256", name, t->name, tname,
                        (unsigned long long)ne[0]);
                goto out;
            }
            gt->src_size = n / 256 * (tt == GT_TQ1_0 ? 54 : 66);
            t->type = BN_T2; /* decided below, once the data can be read */
            gt->conv = tt == GT_TQ1_0 ? CV_TQ1_T2 : CV_TQ2_T2;
            break;
        case GT_I2_S:
            if (n % 128) {
                bn_fail(e, "%s: tensor '%s' (I2_S): %llu elements is not a whole number of 128-weight blocks",
                        name, t->name, (unsigned long long)n);
                goto out;
            }
            gt->src_size = n / 4 + 32;
            t->type = BN_T2;
            gt->conv = CV_I2S_T2;
            break;
        default:
            bn_fail(e, "%s: tensor '%s' has GGML type %u (%s), which is not supported", name, t->name, tt, tname);
            goto out;
        }
        s->n_tensors++;
    }

    /* Unique names (sorted copy of pointers). */
    sorted = malloc((size_t)n_tensors * sizeof *sorted);
    if (!sorted) {
        bn_fail(e, "%s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < s->n_tensors; i++)
        sorted[i] = &s->tensors[i];
    qsort(sorted, s->n_tensors, sizeof *sorted, name_cmp);
    for (size_t i = 1; i < s->n_tensors; i++)
        if (!strcmp(sorted[i - 1]->name, sorted[i]->name)) {
            bn_fail(e, "%s: tensor '%s' appears twice", name, sorted[i]->name);
            goto out;
        }

    uint64_t data_start = r.pos;
    if (data_start % alignment)
        data_start += alignment - data_start % alignment;
    if (data_start > r.size) {
        bn_fail(e, "%s: truncated: the data section would start at %llu, the file has %llu bytes", name,
                (unsigned long long)data_start, (unsigned long long)r.size);
        goto out;
    }
    int has_output = 0, any_ternary = 0;
    uint64_t embd_rows = 0;
    for (size_t i = 0; i < s->n_tensors; i++) {
        bn_tensor *t = &s->tensors[i];
        gg_tensor *gt = &g->gt[i];
        uint64_t off = gt->src_off;
        if (off % alignment) {
            bn_fail(e, "%s: tensor '%s' has offset %llu, not a multiple of the alignment %llu", name, t->name,
                    (unsigned long long)off, (unsigned long long)alignment);
            goto out;
        }
        if (off > r.size - data_start || gt->src_size > r.size - data_start - off) {
            bn_fail(e, "%s: tensor '%s' (%llu bytes at offset %llu) runs past the end of the file", name, t->name,
                    (unsigned long long)gt->src_size, (unsigned long long)off);
            goto out;
        }
        gt->src_off = data_start + off;
        t->offset = gt->src_off;
        if (!strcmp(t->name, "output.weight"))
            has_output = 1;
        if (!strcmp(t->name, "token_embd.weight"))
            embd_rows = t->shape[0];
        if ((gt->ggtype == GT_I2_S || gt->ggtype == GT_TQ1_0 || gt->ggtype == GT_TQ2_0) &&
            is_ternary_proj(t->name))
            any_ternary = 1;
    }

    /* I2_S scales, and the t2/f32 decision for TQ tensors. */
    for (size_t i = 0; i < s->n_tensors; i++) {
        bn_tensor *t = &s->tensors[i];
        gg_tensor *gt = &g->gt[i];
        if (gt->conv == CV_I2S_T2) {
            uint8_t b[4];
            if (pread_full(g->fd, b, 4, gt->src_off + gt->n / 4)) {
                bn_fail(e, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
                goto out;
            }
            memcpy(&gt->beta, b, 4);
            if (!isfinite(gt->beta) || !(gt->beta > 0)) {
                bn_fail(e, "%s: tensor '%s' (I2_S) has an invalid scale %g (a positive finite value is required)",
                        name, t->name, (double)gt->beta);
                goto out;
            }
        } else if (gt->conv == CV_TQ1_T2 || gt->conv == CV_TQ2_T2) {
            if (ensure_scratch(g, (size_t)gt->src_size)) {
                bn_fail(e, "%s: out of memory for tensor '%s'", name, t->name);
                goto out;
            }
            if (pread_full(g->fd, g->scratch, (size_t)gt->src_size, gt->src_off)) {
                bn_fail(e, "%s: tensor '%s': read error: %s", name, t->name, strerror(errno));
                goto out;
            }
            int tq1 = gt->conv == CV_TQ1_T2;
            if (!tq_uniform(g->scratch, gt->n / 256, tq1, &gt->beta)) {
                gt->conv = tq1 ? CV_TQ1_F32 : CV_TQ2_F32;
                t->type = BN_F32;
            }
        }
        t->size = bn_type_size(t->type, t->ndim, t->shape);
        if (!t->size) {
            bn_fail(e, "%s: tensor '%s' is too large", name, t->name);
            goto out;
        }
    }
    /* Keep the scratch buffer small until read() needs it. */
    free(g->scratch);
    g->scratch = NULL;
    g->scratch_cap = 0;

    const char *arch = bn_meta_str(raw, "general.architecture");
    if (arch && !strcmp(arch, "llama") && !any_ternary) {
        bn_fail(e, "%s: architecture 'llama' without ternary (I2_S, TQ1_0, TQ2_0) projection weights is not a "
                   "BitNet model",
                name);
        goto out;
    }
    if (build_meta(s, raw, has_output, embd_rows, e))
        goto out;
    rc = 0;
out:
    free(sorted);
    free(r.buf);
    return rc;
}

int bn_gguf_open(bn_source *s, const char *path, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->name = strdup(path);
    s->format = strdup("gguf");
    if (!s->name || !s->format) {
        bn_source_close(s);
        return bn_fail(e, "%s: out of memory", path);
    }
    bn_meta raw = {0};
    int rc = open_impl(s, path, &raw, e);
    bn_meta_free(&raw);
    if (rc)
        bn_source_close(s);
    return rc;
}
