/* safetensors.c — reader of the safetensors container (huggingface/safetensors
 * "Format"): u64 header length, JSON header, byte buffer. Tensors are read one
 * at a time with pread, so memory stays one tensor whatever the file size. */
#include "formats.h"
#include "formats.h"
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers of real checkpoints are well below this (the 2B4T one is ~40 KB). */
#define MAX_HEADER ((uint64_t)100 << 20)

typedef struct st_impl {
    int fd;
    uint64_t data_start;
} st_impl;

static int dtype_to_bn(const char *dt, uint32_t *type, size_t *width)
{
    static const struct {
        const char *name;
        uint32_t type;
        size_t width;
    } map[] = {
        {"F32", BN_F32, 4}, {"F16", BN_F16, 2}, {"BF16", BN_BF16, 2},
        {"U8", BN_U8, 1},   {"I32", BN_I32, 4},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(dt, map[i].name)) {
            *type = map[i].type;
            *width = map[i].width;
            return 0;
        }
    return -1;
}

int bn_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *name, bn_err *e)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return bn_fail_code(e, BN_E_IO, "%s: read error: %s", name, strerror(errno));
        }
        if (r == 0)
            return bn_fail(e, "%s: truncated: %zu bytes missing at offset %llu", name, n, (unsigned long long)off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int st_read(bn_source *s, size_t i, void *buf, bn_err *e)
{
    st_impl *st = s->impl;
    const bn_tensor *t = &s->tensors[i];
    return bn_pread_full(st->fd, buf, t->size, st->data_start + t->offset, s->name, e);
}

static int st_span(bn_source *s, size_t i, int *fd, uint64_t *off)
{
    st_impl *st = s->impl;
    *fd = st->fd;
    *off = st->data_start + s->tensors[i].offset;
    return 1;
}

static void st_close(bn_source *s)
{
    st_impl *st = s->impl;
    if (st) {
        if (st->fd >= 0)
            close(st->fd);
        free(st);
    }
}

static int cmp_offset(const void *a, const void *b)
{
    const bn_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse_entry(bn_tensor *t, const cJSON *item, uint64_t buffer_size, const char *name, bn_err *e)
{
    const char *tn = item->string;
    if (strlen(tn) >= BN_NAME_MAX)
        return bn_fail(e, "%s: tensor name too long: '%.40s...'", name, tn);
    snprintf(t->name, sizeof t->name, "%s", tn);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return bn_fail(e, "%s: tensor '%s': header entry lacks dtype, shape or data_offsets", name, tn);
    size_t width;
    if (dtype_to_bn(dt->valuestring, &t->type, &width))
        return bn_fail(e, "%s: tensor '%s': unsupported dtype '%s'", name, tn, dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > BN_MAX_DIMS)
        return bn_fail(e, "%s: tensor '%s' has %d dimensions (at most %d)", name, tn, nd, BN_MAX_DIMS);
    uint64_t elems = 1;
    for (int d = 0; d < nd; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15 ||
            v->valuedouble != (double)(uint64_t)v->valuedouble)
            return bn_fail(e, "%s: tensor '%s' has an invalid shape", name, tn);
        t->shape[d] = (uint64_t)v->valuedouble;
        if (t->shape[d] && elems > UINT64_MAX / 16 / t->shape[d])
            return bn_fail(e, "%s: tensor '%s': element count overflows", name, tn);
        elems *= t->shape[d];
    }
    if (nd == 0) { /* a scalar: one element */
        t->shape[0] = 1;
        nd = 1;
    }
    t->ndim = (uint32_t)nd;
    const cJSON *b0 = cJSON_GetArrayItem(offs, 0), *b1 = cJSON_GetArrayItem(offs, 1);
    if (!cJSON_IsNumber(b0) || !cJSON_IsNumber(b1) || b0->valuedouble != floor(b0->valuedouble) ||
        b1->valuedouble != floor(b1->valuedouble))
        return bn_fail(e, "%s: tensor '%s': data_offsets are not whole numbers", name, tn);
    if (b0->valuedouble < 0 || b1->valuedouble < b0->valuedouble || b1->valuedouble > (double)buffer_size)
        return bn_fail(e, "%s: tensor '%s': data_offsets lie outside the %llu-byte data buffer", name, tn,
                       (unsigned long long)buffer_size);
    t->offset = (uint64_t)b0->valuedouble;
    t->size = (uint64_t)b1->valuedouble - t->offset;
    if (t->size != elems * width)
        return bn_fail(e, "%s: tensor '%s': %llu bytes for %llu elements of %s", name, tn,
                       (unsigned long long)t->size, (unsigned long long)elems, dt->valuestring);
    if (elems == 0)
        return bn_fail(e, "%s: tensor '%s' is empty", name, tn);
    return 0;
}

int bn_safetensors_open(bn_source *s, const char *path, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->name = strdup(path);
    s->format = strdup("safetensors");
    st_impl *st = calloc(1, sizeof *st);
    if (!s->name || !s->format || !st) {
        free(st);
        bn_source_close(s);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    st->fd = -1;
    s->impl = st;
    s->read = st_read;
    s->span = st_span;
    s->close = st_close;
    char *json = NULL;
    cJSON *root = NULL;
    int rc = -1;
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (st->fd < 0 || fstat(st->fd, &sb) < 0) {
        bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    uint64_t fsize = (uint64_t)sb.st_size, hlen;
    if (fsize < 8) {
        bn_fail(e, "%s: truncated: %llu bytes, not even a header length", path, (unsigned long long)fsize);
        goto out;
    }
    if (bn_pread_full(st->fd, &hlen, 8, 0, path, e))
        goto out;
    if (hlen > MAX_HEADER || hlen < 2) {
        bn_fail(e, "%s: not a safetensors file (header length %llu)", path, (unsigned long long)hlen);
        goto out;
    }
    if (hlen > fsize - 8) {
        bn_fail(e, "%s: truncated: header claims %llu bytes, the file has %llu", path, (unsigned long long)hlen,
                (unsigned long long)(fsize - 8));
        goto out;
    }
    json = malloc(hlen + 1);
    if (!json) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (bn_pread_full(st->fd, json, hlen, 8, path, e))
        goto out;
    json[hlen] = 0;
    if (json[0] != '{') {
        bn_fail(e, "%s: not a safetensors file (header is not a JSON object)", path);
        goto out;
    }
    const char *json_end = NULL;
    root = cJSON_ParseWithLengthOpts(json, hlen, &json_end, 0);
    if (!cJSON_IsObject(root)) {
        bn_fail(e, "%s: safetensors header is not valid JSON", path);
        goto out;
    }
    /* the format pads the header with spaces (0x20); the reference reader
     * (serde_json) takes any JSON white space after it, and nothing else */
    for (; json_end && json_end < json + hlen; json_end++)
        if (!strchr(" \t\n\r", *json_end) || !*json_end) {
            bn_fail(e, "%s: safetensors header has byte 0x%02x after its JSON (only white space may pad it)", path,
                    (unsigned char)*json_end);
            goto out;
        }
    st->data_start = 8 + hlen;
    uint64_t buffer_size = fsize - st->data_start;
    int n = cJSON_GetArraySize(root);
    s->tensors = calloc(n ? (size_t)n : 1, sizeof *s->tensors);
    if (!s->tensors) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (!strcmp(item->string, "__metadata__")) {
            /* the format's free-form map of strings to strings */
            const cJSON *kv;
            int strings = cJSON_IsObject(item) || cJSON_IsNull(item); /* null: none (the reader's Option) */
            cJSON_ArrayForEach(kv, item) strings &= cJSON_IsString(kv);
            if (!strings) {
                bn_fail(e, "%s: safetensors __metadata__ is not an object of strings", path);
                goto out;
            }
            cJSON_ArrayForEach(kv, item)
            {
                char key[300];
                if (cJSON_IsString(kv) && strlen(kv->string) < 200) {
                    snprintf(key, sizeof key, "safetensors.%s", kv->string);
                    bn_meta_set_str(&s->meta, key, kv->valuestring);
                }
            }
            continue;
        }
        if (!cJSON_IsObject(item)) {
            bn_fail(e, "%s: header entry '%s' is not an object", path, item->string);
            goto out;
        }
        bn_tensor *t = &s->tensors[s->n_tensors];
        if (parse_entry(t, item, buffer_size, path, e))
            goto out;
        t->src_index = (uint32_t)s->n_tensors;
        s->n_tensors++;
    }
    /* The buffer must be covered exactly: no overlaps (damage) and no holes. */
    bn_tensor *sorted = malloc((s->n_tensors ? s->n_tensors : 1) * sizeof *sorted);
    if (!sorted) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(sorted, s->tensors, s->n_tensors * sizeof *sorted);
    qsort(sorted, s->n_tensors, sizeof *sorted, cmp_offset);
    uint64_t end = 0;
    for (size_t i = 0; i < s->n_tensors; i++) {
        if (sorted[i].offset != end) {
            bn_fail(e, "%s: tensor '%s' %s", path, sorted[i].name,
                    sorted[i].offset < end ? "overlaps the previous tensor" : "leaves a hole before it");
            free(sorted);
            goto out;
        }
        end = sorted[i].offset + sorted[i].size;
    }
    free(sorted);
    if (end != buffer_size) {
        bn_fail(e, "%s: %llu bytes after the last tensor (file damaged or truncated?)", path,
                (unsigned long long)(buffer_size - end));
        goto out;
    }
    if (bn_source_add_file(s, path, e))
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    free(json);
    if (rc)
        bn_source_close(s);
    return rc;
}
