/* gguf_kv.c — GGUF metadata entries (gguf.h): each key as in the file, each
 * value widened to the bn type that holds it (u8/u16 to u32, i8/i16 to
 * i32), string arrays kept whole; nested arrays, which have no bn form,
 * are checked and dropped. */
#include "gguf.h"

#include <stdlib.h>
#include <string.h>

/* GGUF value types (ggml docs/gguf.md). */
enum {
    GV_U8 = 0, GV_I8 = 1, GV_U16 = 2, GV_I16 = 3, GV_U32 = 4, GV_I32 = 5, GV_F32 = 6, GV_BOOL = 7,
    GV_STR = 8, GV_ARR = 9, GV_U64 = 10, GV_I64 = 11, GV_F64 = 12
};

#define MAX_DEPTH 8
#define MAX_KEY 65535

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

/* Fails unless n items of at least each bytes fit in what is left. */
static int claim_fits(gg_rdr *r, const char *key, uint64_t n, uint64_t each, const char *items, bn_err *e)
{
    if (n > bn_gguf_left(r) / each)
        return bn_fail(e, "%s: truncated or damaged: metadata '%s' claims %llu %s, more than the file holds",
                       r->name, key, (unsigned long long)n, items);
    return 0;
}

/* The width *w of a numeric array's elements of type et; fails on an
 * unknown type or when n of them do not fit. */
static int elems_fit(gg_rdr *r, const char *key, uint32_t et, uint64_t n, size_t *w, bn_err *e)
{
    *w = gv_width(et);
    if (!*w)
        return bn_fail(e, "%s: metadata '%s' has unknown array element type %u", r->name, key, et);
    return claim_fits(r, key, n, *w, "elements", e);
}

/* Skips an array's elements (used for nested arrays, which have no bn form). */
static int skip_array(gg_rdr *r, const char *key, int depth, bn_err *e)
{
    uint32_t et;
    uint64_t n;
    size_t w;
    if (depth > MAX_DEPTH)
        return bn_fail(e, "%s: metadata '%s': arrays nested too deeply", r->name, key);
    if (bn_gguf_u32(r, &et, "an array type", e) || bn_gguf_u64(r, &n, "an array count", e))
        return -1;
    if (et == GV_STR) {
        if (claim_fits(r, key, n, 8, "strings", e))
            return -1;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l;
            if (bn_gguf_u64(r, &l, "a string length", e) || bn_gguf_get(r, NULL, l, "a string", e))
                return -1;
        }
        return 0;
    }
    if (et == GV_ARR) {
        if (claim_fits(r, key, n, 12, "nested arrays", e))
            return -1;
        for (uint64_t i = 0; i < n; i++)
            if (skip_array(r, key, depth + 1, e))
                return -1;
        return 0;
    }
    if (elems_fit(r, key, et, n, &w, e))
        return -1;
    return bn_gguf_get(r, NULL, n * w, "array elements", e);
}

/* Doubles *cap until need fits, keeping the data. */
static int grow(char **data, size_t *cap, size_t need)
{
    size_t nc = *cap;
    while (nc < need)
        nc *= 2;
    char *nd = realloc(*data, nc);
    if (!nd)
        return -1;
    *data = nd;
    *cap = nc;
    return 0;
}

/* An array of n strings, kept as one buffer and n + 1 offsets. */
static int read_strarr(gg_rdr *r, bn_meta *raw, const char *key, uint64_t n, bn_err *e)
{
    if (claim_fits(r, key, n, 8, "strings", e))
        return -1;
    uint64_t *off = malloc((size_t)(n + 1) * sizeof *off);
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    if (!off || !data)
        goto oom;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l;
        off[i] = len;
        if (bn_gguf_u64(r, &l, "a string length", e))
            goto fail;
        if (l > bn_gguf_left(r)) {
            bn_fail(e, "%s: metadata '%s' element %llu claims %llu bytes, past the end of the file", r->name, key,
                    (unsigned long long)i, (unsigned long long)l);
            goto fail;
        }
        if (len + l + 1 > cap && grow(&data, &cap, len + l + 1))
            goto oom;
        if (bn_gguf_get(r, data + len, l, "a string", e))
            goto fail;
        len += (size_t)l;
    }
    off[n] = len;
    data[len] = 0;
    /* (takes data and off, freeing them on failure) */
    return bn_meta_set_strarr_owned(raw, key, data, off, n) ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name) : 0;
oom:
    bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name);
fail:
    free(off);
    free(data);
    return -1;
}

/* An array of n numbers or booleans of GGUF type et, each widened. */
static int read_numarr(gg_rdr *r, bn_meta *raw, const char *key, uint32_t et, uint64_t n, bn_err *e)
{
    size_t w;
    if (elems_fit(r, key, et, n, &w, e))
        return -1;
    uint32_t bt = gv_to_bn(et);
    size_t bw = bn_width(bt);
    uint8_t *src = malloc((size_t)(n * w) + 1);
    uint8_t *dst = malloc((size_t)(n * bw) + 1);
    int rc = -1;
    if (!src || !dst)
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name);
    else if (!bn_gguf_get(r, src, n * w, "array elements", e)) {
        for (uint64_t i = 0; i < n; i++)
            gv_widen(et, src + i * w, dst + i * bw);
        rc = bn_meta_set_arr(raw, key, bt, dst, n) ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name) : 0;
    }
    free(src);
    free(dst);
    return rc;
}

static int read_array(gg_rdr *r, bn_meta *raw, const char *key, bn_err *e)
{
    uint32_t et;
    uint64_t n, at = r->pos;
    if (bn_gguf_u32(r, &et, "an array type", e) || bn_gguf_u64(r, &n, "an array count", e))
        return -1;
    if (et == GV_ARR) {
        r->pos = at;
        return skip_array(r, key, 0, e);
    }
    if (et == GV_STR)
        return read_strarr(r, raw, key, n, e);
    return read_numarr(r, raw, key, et, n, e);
}

static int read_string(gg_rdr *r, bn_meta *raw, const char *key, bn_err *e)
{
    char *v;
    uint64_t vl;
    if (bn_gguf_str(r, &v, &vl, UINT64_MAX, "a metadata string", e))
        return -1;
    if (memchr(v, 0, (size_t)vl)) { /* compared as the part before it; and bn's strings hold none */
        free(v);
        return bn_fail(e, "%s: metadata '%s' holds a NUL byte", r->name, key);
    }
    int rc = bn_meta_set_strn(raw, key, v, (size_t)vl) ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name) : 0;
    free(v);
    return rc;
}

/* Stores a widened scalar (bn form, 8 bytes) of bn type bt. */
static int set_widened(bn_meta *raw, const char *key, uint32_t bt, const uint8_t *wide)
{
    switch (bt) {
    case BN_V_U32: { uint32_t x; memcpy(&x, wide, 4); return bn_meta_set_u32(raw, key, x); }
    case BN_V_I32: { int32_t x; memcpy(&x, wide, 4); return bn_meta_set_i32(raw, key, x); }
    case BN_V_F32: { float x; memcpy(&x, wide, 4); return bn_meta_set_f32(raw, key, x); }
    case BN_V_BOOL: return bn_meta_set_bool(raw, key, wide[0]);
    case BN_V_U64: { uint64_t x; memcpy(&x, wide, 8); return bn_meta_set_u64(raw, key, x); }
    case BN_V_I64: {
        /* bn_meta has no i64 setter; store through a u64 slot of the right type. */
        int64_t x;
        memcpy(&x, wide, 8);
        if (bn_meta_set_u64(raw, key, (uint64_t)x))
            return -1;
        ((bn_kv *)bn_meta_get(raw, key))->type = BN_V_I64;
        return 0;
    }
    case BN_V_F64: {
        double x;
        memcpy(&x, wide, 8);
        if (bn_meta_set_u64(raw, key, 0))
            return -1;
        bn_kv *kv = (bn_kv *)bn_meta_get(raw, key);
        kv->type = BN_V_F64;
        memcpy(kv->data, &x, 8);
        return 0;
    }
    default: return -1;
    }
}

static int read_scalar(gg_rdr *r, bn_meta *raw, const char *key, uint32_t vt, bn_err *e)
{
    size_t w = gv_width(vt);
    if (!w)
        return bn_fail(e, "%s: metadata '%s' has unknown value type %u", r->name, key, vt);
    uint8_t v[8], wide[8] = {0};
    if (bn_gguf_get(r, v, w, "a metadata value", e))
        return -1;
    gv_widen(vt, v, wide);
    if (set_widened(raw, key, gv_to_bn(vt), wide))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name);
    return 0;
}

/* The key (a malloc'd copy into *key): not empty, no NUL, not seen before. */
static int read_key(gg_rdr *r, const bn_meta *raw, char **key, bn_err *e)
{
    uint64_t kl;
    if (bn_gguf_str(r, key, &kl, MAX_KEY, "a metadata key", e))
        return -1;
    if (kl == 0 || memchr(*key, 0, (size_t)kl))
        bn_fail(e, "%s: a metadata key is empty or contains a NUL byte", r->name);
    else if (bn_meta_get(raw, *key))
        bn_fail(e, "%s: metadata key '%s' appears twice", r->name, *key);
    else
        return 0;
    free(*key);
    return -1;
}

int bn_gguf_read_kv(gg_rdr *r, bn_meta *raw, bn_err *e)
{
    char *key;
    uint32_t vt;
    if (read_key(r, raw, &key, e))
        return -1;
    int rc = -1;
    if (!bn_gguf_u32(r, &vt, "a metadata value type", e))
        rc = vt == GV_STR   ? read_string(r, raw, key, e)
             : vt == GV_ARR ? read_array(r, raw, key, e)
                            : read_scalar(r, raw, key, vt, e);
    free(key);
    return rc;
}
