/* meta.c — typed key/value metadata: the in-memory list (its byte
 * encoding is formats/metacodec.c). */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static void kv_clear(bn_kv *kv)
{
    free(kv->key);
    free(kv->data);
    free(kv->offsets);
    if (kv->sub) {
        bn_meta_free(kv->sub);
        free(kv->sub);
    }
    memset(kv, 0, sizeof *kv);
}

void bn_meta_free(bn_meta *m)
{
    for (size_t i = 0; i < m->n; i++)
        kv_clear(&m->kv[i]);
    free(m->kv);
    memset(m, 0, sizeof *m);
}

static bn_kv *find(const bn_meta *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->kv[i].key, key))
            return &m->kv[i];
    return NULL;
}

const bn_kv *bn_meta_get(const bn_meta *m, const char *key)
{
    return find(m, key);
}

/* Returns a cleared slot for key (replacing an existing value). */
static bn_kv *slot(bn_meta *m, const char *key)
{
    bn_kv *kv = find(m, key);
    if (kv) {
        char *k = kv->key;
        kv->key = NULL;
        kv_clear(kv);
        kv->key = k;
        return kv;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        bn_kv *nk = realloc(m->kv, cap * sizeof *nk);
        if (!nk)
            return NULL;
        m->kv = nk;
        m->cap = cap;
    }
    kv = &m->kv[m->n];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    if (!kv->key)
        return NULL;
    m->n++;
    return kv;
}

int bn_meta_set_scalar(bn_meta *m, const char *key, uint32_t type, const void *v8)
{
    bn_kv *kv = slot(m, key);
    if (!kv || !(kv->data = malloc(8)))
        return -1;
    kv->type = type;
    kv->count = 1;
    memcpy(kv->data, v8, 8);
    return 0;
}

int bn_meta_set_u32(bn_meta *m, const char *key, uint32_t v)
{
    uint64_t x = v;
    return bn_meta_set_scalar(m, key, BN_V_U32, &x);
}
int bn_meta_set_i32(bn_meta *m, const char *key, int32_t v)
{
    int64_t x = v;
    return bn_meta_set_scalar(m, key, BN_V_I32, &x);
}
int bn_meta_set_u64(bn_meta *m, const char *key, uint64_t v)
{
    return bn_meta_set_scalar(m, key, BN_V_U64, &v);
}
int bn_meta_set_f32(bn_meta *m, const char *key, float v)
{
    double x = v;
    return bn_meta_set_scalar(m, key, BN_V_F32, &x);
}
int bn_meta_set_bool(bn_meta *m, const char *key, int v)
{
    uint64_t x = v ? 1 : 0;
    return bn_meta_set_scalar(m, key, BN_V_BOOL, &x);
}

int bn_meta_set_blob(bn_meta *m, const char *key, uint32_t type, const void *v, size_t n)
{
    bn_kv *kv = slot(m, key);
    if (!kv || !(kv->data = malloc(n + 1)))
        return -1;
    kv->type = type;
    kv->count = n;
    if (n)
        memcpy(kv->data, v, n);
    ((char *)kv->data)[n] = 0; /* strings stay usable as C strings */
    return 0;
}

int bn_meta_set_strn(bn_meta *m, const char *key, const char *v, size_t n)
{
    return bn_meta_set_blob(m, key, BN_V_STR, v, n);
}
int bn_meta_set_str(bn_meta *m, const char *key, const char *v)
{
    return bn_meta_set_blob(m, key, BN_V_STR, v, strlen(v));
}
int bn_meta_set_bytes(bn_meta *m, const char *key, const void *v, size_t n)
{
    return bn_meta_set_blob(m, key, BN_V_BYTES, v, n);
}

size_t bn_meta_scalar_width(uint32_t t)
{
    switch (t) {
    case BN_V_U32: case BN_V_I32: case BN_V_F32: return 4;
    case BN_V_U64: case BN_V_I64: case BN_V_F64: return 8;
    case BN_V_BOOL: return 1;
    default: return 0;
    }
}

int bn_meta_set_arr(bn_meta *m, const char *key, uint32_t elem_type, const void *v, uint64_t count)
{
    size_t w = bn_meta_scalar_width(elem_type);
    if (!w || count > SIZE_MAX / w)
        return -1;
    bn_kv *kv = slot(m, key);
    if (!kv || !(kv->data = malloc(count * w + 1)))
        return -1;
    kv->type = BN_V_ARR;
    kv->elem_type = elem_type;
    kv->count = count;
    if (count)
        memcpy(kv->data, v, count * w);
    return 0;
}

int bn_meta_set_strarr_owned(bn_meta *m, const char *key, char *data, uint64_t *offsets, uint64_t count)
{
    bn_kv *kv = slot(m, key);
    if (!kv) {
        free(data);
        free(offsets);
        return -1;
    }
    kv->type = BN_V_STRARR;
    kv->count = count;
    kv->data = data;
    kv->offsets = offsets;
    return 0;
}

int bn_meta_set_section(bn_meta *m, const char *key, bn_meta *sub)
{
    bn_kv *kv = slot(m, key);
    if (!kv) {
        bn_meta_free(sub);
        free(sub);
        return -1;
    }
    kv->type = BN_V_SECTION;
    kv->sub = sub;
    kv->count = sub->n;
    return 0;
}

static int copy_kv(bn_meta *dst, const bn_kv *s)
{
    switch (s->type) {
    case BN_V_STR: case BN_V_BYTES:
        return bn_meta_set_blob(dst, s->key, s->type, s->data, s->count);
    case BN_V_ARR:
        return bn_meta_set_arr(dst, s->key, s->elem_type, s->data, s->count);
    case BN_V_STRARR: {
        uint64_t bytes = s->offsets[s->count];
        char *d = malloc(bytes + 1);
        uint64_t *o = malloc((s->count + 1) * sizeof *o);
        if (!d || !o) {
            free(d);
            free(o);
            return -1;
        }
        memcpy(d, s->data, bytes);
        memcpy(o, s->offsets, (s->count + 1) * sizeof *o);
        return bn_meta_set_strarr_owned(dst, s->key, d, o, s->count);
    }
    case BN_V_SECTION: {
        bn_meta *sub = calloc(1, sizeof *sub);
        if (!sub || bn_meta_copy(sub, s->sub)) {
            if (sub)
                bn_meta_free(sub);
            free(sub);
            return -1;
        }
        return bn_meta_set_section(dst, s->key, sub);
    }
    default:
        return bn_meta_set_scalar(dst, s->key, s->type, s->data);
    }
}

int bn_meta_copy(bn_meta *dst, const bn_meta *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (copy_kv(dst, &src->kv[i]))
            return -1;
    return 0;
}

int bn_meta_append_str(bn_meta *m, const char *key, const char *str)
{
    const bn_kv *old = bn_meta_get(m, key);
    uint64_t n = old && old->type == BN_V_STRARR ? old->count : 0;
    uint64_t bytes = n ? old->offsets[n] : 0, sl = strlen(str);
    char *data = malloc(bytes + sl + 1);
    uint64_t *off = malloc((n + 2) * sizeof *off);
    if (!data || !off) {
        free(data);
        free(off);
        return -1;
    }
    if (n) {
        memcpy(data, old->data, bytes);
        memcpy(off, old->offsets, (n + 1) * sizeof *off);
    } else
        off[0] = 0;
    memcpy(data + bytes, str, sl);
    off[n + 1] = bytes + sl;
    return bn_meta_set_strarr_owned(m, key, data, off, n + 1);
}

int bn_meta_remove(bn_meta *m, const char *key)
{
    bn_kv *kv = find(m, key);
    if (!kv)
        return -1;
    kv_clear(kv);
    size_t i = (size_t)(kv - m->kv);
    memmove(&m->kv[i], &m->kv[i + 1], (m->n - i - 1) * sizeof *kv);
    m->n--;
    return 0;
}

/* ---- getters ---- */

int bn_meta_i64(const bn_meta *m, const char *key, int64_t *out)
{
    const bn_kv *kv = find(m, key);
    if (!kv)
        return -1;
    switch (kv->type) {
    case BN_V_U32: case BN_V_U64: case BN_V_BOOL: {
        uint64_t u;
        memcpy(&u, kv->data, 8);
        if (u > INT64_MAX)
            return -1;
        *out = (int64_t)u;
        return 0;
    }
    case BN_V_I32: case BN_V_I64:
        memcpy(out, kv->data, 8);
        return 0;
    default:
        return -1;
    }
}

int bn_meta_u64(const bn_meta *m, const char *key, uint64_t *out)
{
    const bn_kv *kv = find(m, key);
    if (kv && kv->type == BN_V_U64) {
        memcpy(out, kv->data, 8);
        return 0;
    }
    int64_t v;
    if (bn_meta_i64(m, key, &v) || v < 0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int bn_meta_u32(const bn_meta *m, const char *key, uint32_t *out)
{
    uint64_t v;
    if (bn_meta_u64(m, key, &v) || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int bn_meta_f64(const bn_meta *m, const char *key, double *out)
{
    const bn_kv *kv = find(m, key);
    if (!kv)
        return -1;
    if (kv->type == BN_V_F32 || kv->type == BN_V_F64) {
        memcpy(out, kv->data, 8);
        return 0;
    }
    int64_t v;
    if (bn_meta_i64(m, key, &v))
        return -1;
    *out = (double)v;
    return 0;
}

int bn_meta_bool(const bn_meta *m, const char *key, int *out)
{
    const bn_kv *kv = find(m, key);
    if (!kv || kv->type != BN_V_BOOL)
        return -1;
    *out = ((uint8_t *)kv->data)[0] != 0;
    return 0;
}

const char *bn_meta_str(const bn_meta *m, const char *key)
{
    const bn_kv *kv = find(m, key);
    if (!kv || kv->type != BN_V_STR)
        return NULL;
    return kv->data;
}

const bn_meta *bn_meta_section(const bn_meta *m, const char *key)
{
    const bn_kv *kv = find(m, key);
    if (!kv || kv->type != BN_V_SECTION)
        return NULL;
    return kv->sub;
}
