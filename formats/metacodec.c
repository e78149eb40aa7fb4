/* metacodec.c — the bn metadata encoding (formats/bn-model.md §Metadata):
 * a bn_meta list to bytes and back; sections are zlib-compressed. */
#include "buf.h"
#include "formats.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- encoding ---- */

static int encode_list(const bn_meta *m, bn_buf *b, bn_err *e);

static void put_scalar(bn_buf *b, uint32_t type, const void *v8)
{
    uint64_t u;
    double d;
    memcpy(&u, v8, 8);
    memcpy(&d, v8, 8);
    switch (type) {
    case BN_V_U32: case BN_V_I32: bn_buf_put32(b, (uint32_t)u); break;
    case BN_V_U64: case BN_V_I64: bn_buf_put64(b, u); break;
    case BN_V_F32: { float f = (float)d; bn_buf_put(b, &f, 4); break; }
    case BN_V_F64: bn_buf_put(b, &d, 8); break;
    case BN_V_BOOL: { uint8_t c = u ? 1 : 0; bn_buf_put(b, &c, 1); break; }
    }
}

static int encode_kv(const bn_kv *kv, bn_buf *b, bn_err *e)
{
    size_t kl = strlen(kv->key);
    if (kl == 0 || kl > 65535)
        return bn_fail(e, "metadata key '%s' has an invalid length", kv->key);
    bn_buf_put32(b, (uint32_t)kl);
    bn_buf_put(b, kv->key, kl);
    bn_buf_put32(b, kv->type);
    switch (kv->type) {
    case BN_V_STR: case BN_V_BYTES:
        bn_buf_put64(b, kv->count);
        bn_buf_put(b, kv->data, kv->count);
        break;
    case BN_V_ARR:
        bn_buf_put32(b, kv->elem_type);
        bn_buf_put64(b, kv->count);
        bn_buf_put(b, kv->data, kv->count * bn_meta_scalar_width(kv->elem_type));
        break;
    case BN_V_STRARR:
        bn_buf_put64(b, kv->count);
        for (uint64_t i = 0; i < kv->count; i++) {
            uint64_t len = kv->offsets[i + 1] - kv->offsets[i];
            if (len > UINT32_MAX)
                return bn_fail(e, "metadata '%s': element too long", kv->key);
            bn_buf_put32(b, (uint32_t)len);
            bn_buf_put(b, (char *)kv->data + kv->offsets[i], len);
        }
        break;
    case BN_V_SECTION: {
        bn_buf raw = {0};
        if (encode_list(kv->sub, &raw, e)) {
            free(raw.p);
            return -1;
        }
        uLongf clen = compressBound(raw.n);
        uint8_t *z = malloc(clen ? clen : 1);
        int zr = !z || raw.oom ? Z_MEM_ERROR : compress2(z, &clen, raw.p ? raw.p : (const uint8_t *)"", raw.n, 6);
        if (zr != Z_OK) {
            free(z);
            free(raw.p);
            return zr == Z_MEM_ERROR ? bn_fail_code(e, BN_E_NOMEM, "metadata '%s': out of memory", kv->key)
                                     : bn_fail(e, "metadata '%s': cannot compress", kv->key);
        }
        bn_buf_put64(b, raw.n);
        bn_buf_put64(b, clen);
        bn_buf_put64(b, kv->sub->n);
        bn_buf_put(b, z, clen);
        free(z);
        free(raw.p);
        break;
    }
    default:
        put_scalar(b, kv->type, kv->data);
    }
    return 0;
}

static int encode_list(const bn_meta *m, bn_buf *b, bn_err *e)
{
    for (size_t i = 0; i < m->n; i++)
        if (encode_kv(&m->kv[i], b, e))
            return -1;
    return 0;
}

int bn_meta_encode(const bn_meta *m, uint8_t **out, size_t *out_len, bn_err *e)
{
    bn_buf b = {0};
    if (encode_list(m, &b, e)) {
        free(b.p);
        return -1;
    }
    if (b.oom) {
        free(b.p);
        return bn_fail_code(e, BN_E_NOMEM, "metadata: out of memory");
    }
    *out = b.p;
    *out_len = b.n;
    return 0;
}

/* ---- decoding: every length is checked against what is left ---- */

typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd;

static int decode_list(bn_meta *m, rd *r, uint64_t count, int depth, const char *name, bn_err *e);

static int take(rd *r, void *dst, size_t n)
{
    if (n > r->left)
        return -1;
    if (dst)
        memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

/* The next entry's key (into key, 65536 bytes) and type; the key must be
 * new in m. */
static int decode_key(const bn_meta *m, rd *r, char *key, uint32_t *type, const char *name, bn_err *e)
{
    uint32_t kl;
    if (take(r, &kl, 4) || kl == 0 || kl > 65535 || take(r, key, kl))
        return bn_fail(e, "%s: metadata is truncated or has a bad key", name);
    key[kl] = 0;
    if (memchr(key, 0, kl))
        return bn_fail(e, "%s: metadata key contains a NUL byte", name);
    if (take(r, type, 4))
        return bn_fail(e, "%s: metadata '%s' is truncated", name, key);
    if (bn_meta_get(m, key))
        return bn_fail(e, "%s: metadata key '%s' appears twice", name, key);
    return 0;
}

/* A string or bytes: u64 length, then the bytes. */
static int decode_blob(bn_meta *m, rd *r, const char *key, uint32_t type, const char *name, bn_err *e)
{
    uint64_t n = 0;
    if (take(r, &n, 8) || n > r->left)
        return bn_fail(e, "%s: metadata '%s' claims %llu bytes, more than the head holds", name, key,
                       (unsigned long long)n);
    /* a string is text: one with a NUL would compare as its part before it ("silu\0x" as silu) */
    if (type == BN_V_STR && memchr(r->p, 0, (size_t)n))
        return bn_fail(e, "%s: metadata '%s' holds a NUL byte", name, key);
    if (bn_meta_set_blob(m, key, type, r->p, (size_t)n))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    take(r, NULL, (size_t)n);
    return 0;
}

/* An array of scalars: element type, u64 count, the elements. */
static int decode_array(bn_meta *m, rd *r, const char *key, const char *name, bn_err *e)
{
    uint32_t et;
    uint64_t n;
    if (take(r, &et, 4) || take(r, &n, 8))
        return bn_fail(e, "%s: metadata '%s' is truncated", name, key);
    size_t w = bn_meta_scalar_width(et);
    if (!w)
        return bn_fail(e, "%s: metadata '%s' has unknown array element type %u", name, key, et);
    if (n > r->left / w)
        return bn_fail(e, "%s: metadata '%s' claims %llu elements, more than the head holds", name, key,
                       (unsigned long long)n);
    if (bn_meta_set_arr(m, key, et, r->p, n))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    take(r, NULL, (size_t)(n * w));
    return 0;
}

/* An array of strings: u64 count, then each as u32 length + bytes. */
static int decode_strarr(bn_meta *m, rd *r, const char *key, const char *name, bn_err *e)
{
    uint64_t n;
    if (take(r, &n, 8) || n > r->left / 4)
        return bn_fail(e, "%s: metadata '%s' claims more strings than the head holds", name, key);
    uint64_t *off = malloc((n + 1) * sizeof *off);
    char *data = malloc(r->left + 1);
    if (!off || !data) {
        free(off);
        free(data);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    }
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t len;
        off[i] = pos;
        if (take(r, &len, 4) || take(r, data + pos, len)) {
            free(off);
            free(data);
            return bn_fail(e, "%s: metadata '%s' is truncated at element %llu", name, key, (unsigned long long)i);
        }
        pos += len;
    }
    off[n] = pos;
    if (bn_meta_set_strarr_owned(m, key, data, off, n))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    return 0;
}

/* A section inflates to at most this (a 262144-token vocabulary with its
 * merges is a few MiB): a claim beyond it is damage, never an allocation. */
#define SECTION_MAX ((uint64_t)256 << 20)

/* A section's zlib stream inflated into *z (raw bytes, malloc'd) and its
 * entry count into *cnt. */
static int inflate_section(rd *r, const char *key, int depth, uint8_t **z, uint64_t *raw, uint64_t *cnt,
                           const char *name, bn_err *e)
{
    uint64_t clen;
    if (take(r, raw, 8) || take(r, &clen, 8) || take(r, cnt, 8) || clen > r->left)
        return bn_fail(e, "%s: section '%s' is truncated", name, key);
    if (depth > 4)
        return bn_fail(e, "%s: sections nested too deeply", name);
    /* zlib cannot expand more than ~1032:1; a larger claim is damage. */
    if (*raw > clen * 1032 + 64 || *raw > SECTION_MAX)
        return bn_fail(e, "%s: section '%s' claims an impossible size", name, key);
    /* The buffer grows with what the data really inflates to, so that a
     * few bytes claiming a large section cost no large allocation. */
    size_t cap = *raw < (1u << 20) ? (size_t)*raw : (1u << 20), have = 0;
    *z = malloc(cap ? cap : 1);
    if (!*z)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for section '%s'", name, key);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int zr = inflateInit(&zs);
    zs.next_in = (Bytef *)(uintptr_t)r->p;
    zs.avail_in = (uInt)clen; /* clen < 2^34 / 1032 fits */
    while (zr == Z_OK) {
        if (have == cap && have) { /* (an empty section still inflates once, to its end) */
            if (cap == *raw) /* more than the section claims */
                break;
            size_t grown = cap * 2 < *raw ? cap * 2 : (size_t)*raw;
            uint8_t *bigger = realloc(*z, grown);
            if (!bigger) {
                inflateEnd(&zs);
                free(*z);
                return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for section '%s'", name, key);
            }
            *z = bigger;
            cap = grown;
        }
        zs.next_out = *z + have;
        zs.avail_out = (uInt)(cap - have);
        zr = inflate(&zs, Z_NO_FLUSH);
        have = cap - zs.avail_out;
    }
    inflateEnd(&zs);
    if (zr == Z_MEM_ERROR) { /* zlib's own allocations (inflateInit's state, its window) */
        free(*z);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for section '%s'", name, key);
    }
    if (zr != Z_STREAM_END || have != *raw || zs.avail_in) {
        free(*z);
        return bn_fail(e, "%s: section '%s' is corrupt (zlib)", name, key);
    }
    take(r, NULL, (size_t)clen);
    return 0;
}

/* A section: a metadata list of its own, compressed. */
static int decode_section(bn_meta *m, rd *r, const char *key, int depth, const char *name, bn_err *e)
{
    uint8_t *z = NULL;
    uint64_t raw = 0, cnt = 0;
    if (inflate_section(r, key, depth, &z, &raw, &cnt, name, e))
        return -1;
    bn_meta *sub = calloc(1, sizeof *sub);
    rd sr = {z, (size_t)raw};
    if (!sub) {
        free(z);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    }
    if (decode_list(sub, &sr, cnt, depth + 1, name, e)) {
        bn_meta_free(sub);
        free(sub);
        free(z);
        return -1;
    }
    free(z);
    if (bn_meta_set_section(m, key, sub))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    return 0;
}

/* A scalar, widened to the 8 bytes every scalar is held in. */
static int decode_scalar(bn_meta *m, rd *r, const char *key, uint32_t type, const char *name, bn_err *e)
{
    size_t w = bn_meta_scalar_width(type);
    if (!w)
        return bn_fail(e, "%s: metadata '%s' has unknown value type %u", name, key, type);
    uint8_t v[8] = {0};
    if (take(r, v, w))
        return bn_fail(e, "%s: metadata '%s' is truncated", name, key);
    uint64_t x = 0;
    int64_t sx;
    double d;
    float f;
    switch (type) {
    case BN_V_U32: { uint32_t t; memcpy(&t, v, 4); x = t; break; }
    case BN_V_I32: { int32_t t; memcpy(&t, v, 4); sx = t; memcpy(&x, &sx, 8); break; }
    case BN_V_F32: memcpy(&f, v, 4); d = f; memcpy(&x, &d, 8); break;
    case BN_V_BOOL:
        if (v[0] > 1)
            return bn_fail(e, "%s: metadata '%s' is a bool of value %u", name, key, v[0]);
        x = v[0];
        break;
    default: memcpy(&x, v, 8);
    }
    if (bn_meta_set_scalar(m, key, type, &x))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    return 0;
}

static int decode_kv(bn_meta *m, rd *r, int depth, const char *name, bn_err *e)
{
    char key[65536];
    uint32_t type = 0;
    if (decode_key(m, r, key, &type, name, e))
        return -1;
    switch (type) {
    case BN_V_STR: case BN_V_BYTES: return decode_blob(m, r, key, type, name, e);
    case BN_V_ARR: return decode_array(m, r, key, name, e);
    case BN_V_STRARR: return decode_strarr(m, r, key, name, e);
    case BN_V_SECTION: return decode_section(m, r, key, depth, name, e);
    default: return decode_scalar(m, r, key, type, name, e);
    }
}

static int decode_list(bn_meta *m, rd *r, uint64_t count, int depth, const char *name, bn_err *e)
{
    for (uint64_t i = 0; i < count; i++)
        if (decode_kv(m, r, depth, name, e))
            return -1;
    return 0;
}

int bn_meta_decode(bn_meta *m, const uint8_t *b, size_t len, uint64_t count, size_t *used, const char *name,
                   bn_err *e)
{
    rd r = {b, len};
    if (count > len / 9 + 1)
        return bn_fail(e, "%s: metadata claims %llu entries, more than the head holds", name,
                       (unsigned long long)count);
    if (decode_list(m, &r, count, 0, name, e))
        return -1;
    if (used)
        *used = len - r.left;
    return 0;
}
