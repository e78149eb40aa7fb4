/* bnfile.c — reader and writer of the bn model file (formats/bn-model.md). */
#include "formats.h"
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

static const uint8_t MAGIC[8] = {'B', 'N', 'M', 'O', 'D', 'E', 'L', 0};
static const uint8_t TAIL_MAGIC[8] = {'B', 'N', 'T', 'A', 'I', 'L', 0, 0};
static const uint8_t END_MAGIC[8] = {'B', 'N', 'E', 'N', 'D', 0, 0, 0};
#define HEADER_SIZE 64
/* The head (metadata + directory) of a sane model is far below this; a
 * larger claim is damage, refused before any allocation. */
#define MAX_HEAD ((uint64_t)1 << 32)

/* Header flag bit 0: the model has per-projection input norms
 * (model.proj_norm), which change the forward pass, so readers that do not
 * know the key refuse the file instead of ignoring it (bn-model.md §2). */
#define BN_FLAG_PROJ_NORM 1u
/* Bit 1: the RoPE frequencies are rescaled (model.rope_scaling), likewise. */
#define BN_FLAG_ROPE_SCALING 2u
/* Bit 2: each query and key head is RMS-normalized before RoPE (model.qk_norm). */
#define BN_FLAG_QK_NORM 4u
/* Bits 3, 4, 5: embedding rows scaled (model.embedding_scale), attention and
 * FFN outputs normed before the residual (model.post_norms), sliding-window
 * layers (model.sliding_window): Gemma 3's layer. */
#define BN_FLAG_EMBD_SCALE 8u
#define BN_FLAG_POST_NORMS 16u
#define BN_FLAG_SLIDING 32u
#define BN_FLAGS_KNOWN 63u

typedef struct header {
    uint32_t version, header_size;
    uint64_t head_size, meta_count, tensor_count, data_offset;
    uint32_t alignment, flags;
    uint64_t data_size;
} header;

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int bn_bnfile_sniff(const uint8_t *head, size_t n)
{
    return n >= 8 && !memcmp(head, MAGIC, 8);
}

static int parse_header(const uint8_t *p, header *h, const char *name, bn_err *e)
{
    if (!memcmp(p, "GGUF", 4)) /* only a bn file streams: a GGUF file is read by seeking */
        return bn_fail(e, "%s: a GGUF file, which is read from a file, not a stream (give its path)", name);
    if (memcmp(p, MAGIC, 8))
        return bn_fail(e, "%s: not a bn model file (wrong magic)", name);
    h->version = rd32(p + 8);
    h->header_size = rd32(p + 12);
    h->head_size = rd64(p + 16);
    h->meta_count = rd64(p + 24);
    h->tensor_count = rd64(p + 32);
    h->data_offset = rd64(p + 40);
    h->alignment = rd32(p + 48);
    h->flags = rd32(p + 52);
    h->data_size = rd64(p + 56);
    if (h->version != BN_FILE_VERSION)
        return bn_fail(e, "%s: unsupported bn format version %u (this build reads %d)", name, h->version,
                       BN_FILE_VERSION);
    if (h->header_size != HEADER_SIZE)
        return bn_fail(e, "%s: bad header size %u", name, h->header_size);
    if (h->flags & ~BN_FLAGS_KNOWN)
        return bn_fail(e, "%s: unknown header flags 0x%x", name, h->flags);
    if (h->alignment < 64 || (h->alignment & (h->alignment - 1)) || h->alignment > (1u << 20))
        return bn_fail(e, "%s: bad alignment %u", name, h->alignment);
    if (h->head_size < HEADER_SIZE || h->head_size > MAX_HEAD)
        return bn_fail(e, "%s: impossible head size %llu", name, (unsigned long long)h->head_size);
    if (h->data_offset != (h->head_size + 8 + h->alignment - 1) / h->alignment * h->alignment)
        return bn_fail(e, "%s: bad data offset %llu", name, (unsigned long long)h->data_offset);
    if (h->tensor_count > (h->head_size - HEADER_SIZE) / 24)
        return bn_fail(e, "%s: header claims %llu tensors, more than the directory can hold", name,
                       (unsigned long long)h->tensor_count);
    if (h->data_size % h->alignment)
        return bn_fail(e, "%s: data size %llu is not a multiple of the alignment", name,
                       (unsigned long long)h->data_size);
    return 0;
}

/* Parses metadata + directory from the head bytes [64, head_size). */
static int parse_head(bn_source *s, const uint8_t *head, const header *h, bn_err *e)
{
    const char *name = s->name;
    uint64_t want = XXH3_64bits(head, h->head_size);
    if (rd64(head + h->head_size) != want)
        return bn_fail(e, "%s: metadata checksum mismatch (the head of the file is damaged)", name);
    size_t used = 0;
    const uint8_t *p = head + HEADER_SIZE;
    size_t left = h->head_size - HEADER_SIZE;
    if (bn_meta_decode(&s->meta, p, left, h->meta_count, &used, name, e))
        return -1;
    p += used;
    left -= used;
    s->tensors = calloc(h->tensor_count ? h->tensor_count : 1, sizeof *s->tensors);
    if (!s->tensors)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    uint64_t next_min = 0;
    for (uint64_t i = 0; i < h->tensor_count; i++) {
        bn_tensor *t = &s->tensors[i];
        uint32_t nl;
        if (left < 4 || (nl = rd32(p)) == 0 || nl >= BN_NAME_MAX || left < 4 + (size_t)nl + 8)
            return bn_fail(e, "%s: tensor directory entry %llu is truncated or has a bad name", name,
                           (unsigned long long)i);
        memcpy(t->name, p + 4, nl);
        t->name[nl] = 0;
        if (memchr(t->name, 0, nl))
            return bn_fail(e, "%s: tensor %llu has a NUL in its name", name, (unsigned long long)i);
        p += 4 + nl;
        left -= 4 + nl;
        t->type = rd32(p);
        t->ndim = rd32(p + 4);
        p += 8;
        left -= 8;
        if (t->ndim < 1 || t->ndim > BN_MAX_DIMS)
            return bn_fail(e, "%s: tensor '%s' has %u dimensions (1..4 allowed)", name, t->name, t->ndim);
        if (left < 8 * (size_t)t->ndim + 16)
            return bn_fail(e, "%s: tensor directory is truncated at '%s'", name, t->name);
        for (uint32_t d = 0; d < t->ndim; d++)
            t->shape[d] = rd64(p + 8 * d);
        p += 8 * t->ndim;
        t->offset = rd64(p);
        t->size = rd64(p + 8);
        p += 16;
        left -= 8 * (size_t)t->ndim + 16;
        if (t->offset % h->alignment || t->offset < next_min)
            return bn_fail(e, "%s: tensor '%s' has a misaligned or overlapping offset %llu", name, t->name,
                           (unsigned long long)t->offset);
        if (t->size > h->data_size || t->offset > h->data_size - t->size)
            return bn_fail(e, "%s: tensor '%s' (%llu bytes at %llu) runs past the data region (%llu bytes)",
                           name, t->name, (unsigned long long)t->size, (unsigned long long)t->offset,
                           (unsigned long long)h->data_size);
        uint64_t expect = bn_type_size(t->type, t->ndim, t->shape);
        if (bn_type_name(t->type) && expect != t->size)
            return bn_fail(e, "%s: tensor '%s' is %llu bytes but its type and shape need %llu", name,
                           t->name, (unsigned long long)t->size, (unsigned long long)expect);
        next_min = t->offset + t->size;
        s->n_tensors++;
    }
    if (left != 0)
        return bn_fail(e, "%s: %zu stray bytes after the tensor directory", name, left);
    return 0;
}

/* Parses the trailer bytes (magic .. end magic); fills hashes and late meta. */
static int parse_trailer(bn_source *s, const uint8_t *t, uint64_t n, bn_err *e)
{
    const char *name = s->name;
    if (n < 48 || memcmp(t, TAIL_MAGIC, 8) || memcmp(t + n - 8, END_MAGIC, 8))
        return bn_fail(e, "%s: trailer is missing or damaged (file truncated?)", name);
    if (rd64(t + n - 16) != n)
        return bn_fail(e, "%s: trailer size mismatch", name);
    if (XXH3_64bits(t, n - 24) != rd64(t + n - 24))
        return bn_fail(e, "%s: trailer checksum mismatch (the end of the file is damaged)", name);
    uint64_t count = rd64(t + 8);
    if (count != s->n_tensors || count > (n - 48) / 8)
        return bn_fail(e, "%s: trailer lists %llu tensors, the directory %zu", name, (unsigned long long)count,
                       s->n_tensors);
    for (uint64_t i = 0; i < count; i++) {
        s->tensors[i].hash = rd64(t + 16 + 8 * i);
        s->tensors[i].has_hash = 1;
    }
    const uint8_t *p = t + 16 + 8 * count;
    uint64_t late = rd64(p);
    size_t body = (size_t)(n - 24 - (uint64_t)(p + 8 - t));
    size_t used = 0;
    if (bn_meta_decode(&s->meta, p + 8, body, late, &used, name, e))
        return -1;
    if (used != body)
        return bn_fail(e, "%s: stray bytes in the trailer", name);
    return 0;
}

/* ---------------------------------------------------------------- mapped */

typedef struct map_impl {
    bn_map map;
} map_impl;

/* A tensor copied out of a mapped file is checked against its trailer
 * checksum on the way (XXH3 costs little next to the copy): bn-quant,
 * bn-pack and bn-convert write new checksums over what they read, so
 * without this a flipped bit would pass into a file that verifies clean. */
static int map_read(bn_source *s, size_t i, void *buf, bn_err *e)
{
    const bn_tensor *t = &s->tensors[i];
    const map_impl *m = s->impl;
    if (m->map.mapped != 1) {
        memcpy(buf, t->data, t->size);
        if (t->has_hash && XXH3_64bits(buf, t->size) != t->hash)
            return bn_fail(e, "%s: tensor '%s' is damaged (checksum mismatch)", s->name, t->name);
        return 0;
    }
    /* The caller keeps the copy: the mapped pages are let go piece by
     * piece as they are copied (the mapping is read-only, so a later access
     * just maps them again). Else streaming a file through read() ends up
     * holding all of it, and each tensor twice: bn-quant of a 181 MB file
     * peaked at 225 MB, 85 MB with the pages let go after the whole tensor,
     * 48 MB like a pipe now. */
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    XXH3_64bits_reset(h);
    const size_t piece = (size_t)8 << 20;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uint8_t *src = t->data;
    for (uint64_t off = 0; off < t->size; off += piece) {
        size_t n = t->size - off < piece ? (size_t)(t->size - off) : piece;
        memcpy((uint8_t *)buf + off, src + off, n);
        XXH3_64bits_update(h, (uint8_t *)buf + off, n);
        uintptr_t a = (uintptr_t)(src + off) & ~(page - 1);
        madvise((void *)a, (uintptr_t)(src + off) + n - a, MADV_DONTNEED);
    }
    uint64_t got = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    if (t->has_hash && got != t->hash)
        return bn_fail(e, "%s: tensor '%s' is damaged (checksum mismatch)", s->name, t->name);
    return 0;
}

static void map_close(bn_source *s)
{
    map_impl *m = s->impl;
    if (m) {
        bn_unmap(&m->map);
        free(m);
    }
}

static int open_mapped(bn_source *s, bn_err *e)
{
    map_impl *mi = calloc(1, sizeof *mi);
    if (!mi)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    s->impl = mi;
    s->close = map_close;
    s->read = map_read;
    if (bn_map_file(s->name, &mi->map, e))
        return -1;
    const uint8_t *d = mi->map.data;
    size_t n = mi->map.size;
    header h;
    if (n < HEADER_SIZE)
        return bn_fail(e, "%s: truncated: %zu bytes, not even a header", s->name, n);
    if (parse_header(d, &h, s->name, e))
        return -1;
    if (h.head_size + 8 > n)
        return bn_fail(e, "%s: truncated: the head needs %llu bytes, the file has %zu", s->name,
                       (unsigned long long)(h.head_size + 8), n);
    if (parse_head(s, d, &h, e))
        return -1;
    if (h.data_offset > n || h.data_size > n - h.data_offset)
        return bn_fail(e, "%s: truncated: the data needs %llu bytes from %llu, the file has %zu", s->name,
                       (unsigned long long)h.data_size, (unsigned long long)h.data_offset, n);
    uint64_t tail = h.data_offset + h.data_size;
    if (n - tail < 48)
        return bn_fail(e, "%s: truncated: the trailer is missing", s->name);
    if (parse_trailer(s, d + tail, n - tail, e))
        return -1;
    for (size_t i = 0; i < s->n_tensors; i++)
        s->tensors[i].data = d + h.data_offset + s->tensors[i].offset;
    return 0;
}

/* -------------------------------------------------------------- streamed */

typedef struct stream_impl {
    bn_in in;
    header h;
    uint64_t pos_in_data; /* bytes of the data region consumed */
    size_t next;
    int finished;
} stream_impl;

static int stream_read(bn_source *s, size_t i, void *buf, bn_err *e)
{
    stream_impl *st = s->impl;
    bn_tensor *t = &s->tensors[i];
    if (i < st->next)
        return bn_fail(e, "%s: a stream is read in order; tensor '%s' has passed", s->name, t->name);
    /* Skip tensors the caller does not want, then padding. */
    if (bn_in_skip(&st->in, t->offset - st->pos_in_data, e))
        return -1;
    /* Hashed piece by piece as it arrives, while each piece is in the
     * caches: hashing the whole tensor after it read it all back from DRAM. */
    XXH3_state_t *h = XXH3_createState();
    if (!h || XXH3_64bits_reset(h) != XXH_OK) {
        XXH3_freeState(h);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    }
    const size_t piece = (size_t)512 << 10;
    for (uint64_t off = 0; off < t->size; off += piece) {
        size_t n = t->size - off < piece ? (size_t)(t->size - off) : piece;
        if (bn_in_read(&st->in, (uint8_t *)buf + off, n, e)) {
            XXH3_freeState(h);
            return -1;
        }
        XXH3_64bits_update(h, (uint8_t *)buf + off, n);
    }
    t->hash = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    st->pos_in_data = t->offset + t->size;
    st->next = i + 1;
    t->has_hash = 2; /* computed, to be checked against the trailer */
    return 0;
}

static void stream_close(bn_source *s)
{
    stream_impl *st = s->impl;
    if (st) {
        bn_in_close(&st->in);
        free(st);
    }
}

/* The whole head (n bytes, the header hb first) from a stream. The buffer
 * grows as bytes arrive, doubling from 1 MiB, so a header that claims a
 * head of gigabytes costs memory only for what the stream really holds
 * before it ends ("truncated"), never an allocation the size of the claim. */
static uint8_t *read_head(bn_in *in, const uint8_t hb[HEADER_SIZE], uint64_t n, const char *name, bn_err *e)
{
    size_t cap = n < ((size_t)1 << 20) ? (size_t)n : (size_t)1 << 20, have = HEADER_SIZE;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for the head", name);
        return NULL;
    }
    memcpy(buf, hb, HEADER_SIZE);
    while (have < n) {
        if (have == cap) {
            size_t grown = n - cap < cap ? (size_t)n : 2 * cap;
            uint8_t *nb = realloc(buf, grown);
            if (!nb) {
                free(buf);
                bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for a %llu-byte head", name, (unsigned long long)n);
                return NULL;
            }
            buf = nb;
            cap = grown;
        }
        if (bn_in_read(in, buf + have, cap - have, e)) {
            free(buf);
            return NULL;
        }
        have = cap;
    }
    return buf;
}

static int open_stream(bn_source *s, bn_err *e)
{
    stream_impl *st = calloc(1, sizeof *st);
    if (!st)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    s->impl = st;
    s->close = stream_close;
    s->read = stream_read;
    if (bn_in_open(&st->in, s->name, e))
        return -1;
    uint8_t hb[HEADER_SIZE];
    if (bn_in_read(&st->in, hb, HEADER_SIZE, e)) /* a read error says so; a short read is this */
        return e->code == BN_E_IO ? -1 : bn_fail(e, "%s: truncated: not even a header", s->name);
    if (parse_header(hb, &st->h, s->name, e))
        return -1;
    uint8_t *head = read_head(&st->in, hb, st->h.head_size + 8, s->name, e);
    if (!head || parse_head(s, head, &st->h, e)) {
        free(head);
        return -1;
    }
    free(head);
    return bn_in_skip(&st->in, st->h.data_offset - st->h.head_size - 8, e);
}

int bn_bnfile_finish(bn_source *s, bn_err *e)
{
    if (s->read != stream_read)
        return 0;
    stream_impl *st = s->impl;
    if (st->finished)
        return 0;
    if (bn_in_skip(&st->in, st->h.data_size - st->pos_in_data, e))
        return -1;
    st->pos_in_data = st->h.data_size;
    /* Fixed part of the trailer, then the rest once its size is known. */
    uint8_t fixed[16];
    if (bn_in_read(&st->in, fixed, 16, e))
        return e->code == BN_E_IO ? -1 : bn_fail(e, "%s: truncated: the trailer is missing", s->name);
    uint64_t count = rd64(fixed + 8);
    if (memcmp(fixed, TAIL_MAGIC, 8) || count != s->n_tensors)
        return bn_fail(e, "%s: trailer is missing or damaged", s->name);
    /* Read everything up to EOF: the trailer is small (hashes + late meta). */
    size_t cap = 16 + 8 * (size_t)count + 4096, len = 16;
    uint8_t *t = malloc(cap);
    if (!t)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    memcpy(t, fixed, 16);
    for (;;) {
        if (len == cap) {
            if (cap > ((size_t)1 << 30)) {
                free(t);
                return bn_fail(e, "%s: trailer too large", s->name);
            }
            uint8_t *nt = realloc(t, cap * 2);
            if (!nt) {
                free(t);
                return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
            }
            t = nt;
            cap *= 2;
        }
        size_t got = fread(t + len, 1, cap - len, st->in.fp);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(st->in.fp)) { /* not the end: what is read is not the whole trailer */
        int err = errno;
        free(t);
        return bn_fail_code(e, BN_E_IO, "%s: read error: %s", s->name, strerror(err));
    }
    /* Keep the hashes we computed while streaming, then compare. */
    uint64_t *seen = malloc((s->n_tensors + 1) * sizeof *seen);
    int *had = malloc((s->n_tensors + 1) * sizeof *had);
    if (!seen || !had) {
        free(seen);
        free(had);
        free(t);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    }
    for (size_t i = 0; i < s->n_tensors; i++) {
        seen[i] = s->tensors[i].hash;
        had[i] = s->tensors[i].has_hash;
    }
    int rc = parse_trailer(s, t, len, e);
    free(t);
    for (size_t i = 0; rc == 0 && i < s->n_tensors; i++)
        if (had[i] == 2 && seen[i] != s->tensors[i].hash)
            rc = bn_fail(e, "%s: tensor '%s' is damaged (checksum mismatch)", s->name, s->tensors[i].name);
    free(seen);
    free(had);
    st->finished = 1;
    return rc;
}

int bn_bnfile_open(bn_source *s, const char *path, bn_open_mode mode, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->name = strdup(path);
    s->format = strdup("bn");
    if (!s->name || !s->format) {
        free(s->name);
        free(s->format);
        memset(s, 0, sizeof *s);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    int rc = (mode == BN_OPEN_STREAM || !strcmp(path, "-")) ? open_stream(s, e) : open_mapped(s, e);
    if (rc)
        bn_source_close(s);
    return rc;
}

int bn_bnfile_verify(bn_source *s, bn_err *e)
{
    size_t bad = 0;
    char first[BN_NAME_MAX] = "";
    for (size_t i = 0; i < s->n_tensors; i++) {
        const bn_tensor *t = &s->tensors[i];
        if (!t->data)
            return bn_fail(e, "%s: verification needs a mapped file", s->name);
        if (XXH3_64bits(t->data, t->size) != t->hash) {
            if (!bad++)
                snprintf(first, sizeof first, "%s", t->name);
        }
    }
    if (bad == 1)
        return bn_fail(e, "%s: tensor '%s' is damaged (checksum mismatch)", s->name, first);
    if (bad)
        return bn_fail(e, "%s: %zu tensors are damaged (checksum mismatch), the first is '%s'", s->name, bad,
                       first);
    return 0;
}

/* ---------------------------------------------------------------- writer */

int bn_late_carry(bn_meta *late, const bn_meta *input)
{
    static const char *const keys[] = {"provenance.source_hashes"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const bn_kv *kv = bn_meta_get(input, keys[i]);
        if (!kv || bn_meta_get(late, keys[i]))
            continue;
        bn_meta one = {.kv = (bn_kv *)kv, .n = 1, .cap = 1};
        if (bn_meta_copy(late, &one))
            return -1;
    }
    return 0;
}

int bn_writer_begin(bn_writer *w, const char *path, const bn_temp_hook *temps, const bn_meta *meta,
                    const bn_tensor *tensors, size_t n, bn_err *e)
{
    memset(w, 0, sizeof *w);
    w->dir = calloc(n ? n : 1, sizeof *w->dir);
    w->hashes = calloc(n ? n : 1, sizeof *w->hashes);
    if (!w->dir || !w->hashes) {
        free(w->dir);
        free(w->hashes);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    w->n_tensors = n;
    memcpy(w->dir, tensors, n * sizeof *tensors);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        bn_tensor *t = &w->dir[i];
        size_t nl = strlen(t->name);
        if (nl == 0 || nl >= BN_NAME_MAX) {
            bn_writer_abort(w);
            return bn_fail(e, "%s: bad tensor name '%s'", path, t->name);
        }
        uint64_t expect = bn_type_size(t->type, t->ndim, t->shape);
        if (bn_type_name(t->type) && expect != t->size) {
            bn_writer_abort(w);
            return bn_fail(e, "%s: tensor '%s': size %llu does not match its type and shape (%llu)", path,
                           t->name, (unsigned long long)t->size, (unsigned long long)expect);
        }
        t->offset = off;
        off += (t->size + BN_ALIGN - 1) / BN_ALIGN * BN_ALIGN;
    }
    uint8_t *mb = NULL;
    size_t ml = 0;
    if (bn_meta_encode(meta, &mb, &ml, e)) {
        bn_writer_abort(w);
        return -1;
    }
    bn_buf b = {0};
    uint8_t zero[HEADER_SIZE] = {0};
    bn_buf_put(&b, zero, HEADER_SIZE);
    bn_buf_put(&b, mb, ml);
    free(mb);
    for (size_t i = 0; i < n; i++) {
        const bn_tensor *t = &w->dir[i];
        size_t nl = strlen(t->name);
        bn_buf_put32(&b, (uint32_t)nl);
        bn_buf_put(&b, t->name, nl);
        bn_buf_put32(&b, t->type);
        bn_buf_put32(&b, t->ndim);
        for (uint32_t d = 0; d < t->ndim; d++)
            bn_buf_put64(&b, t->shape[d]);
        bn_buf_put64(&b, t->offset);
        bn_buf_put64(&b, t->size);
    }
    if (b.oom) {
        free(b.p);
        bn_writer_abort(w);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    uint64_t head_size = b.n;
    uint64_t data_offset = (head_size + 8 + BN_ALIGN - 1) / BN_ALIGN * BN_ALIGN;
    uint8_t *h = b.p;
    memcpy(h, MAGIC, 8);
    uint32_t v32 = BN_FILE_VERSION;
    memcpy(h + 8, &v32, 4);
    v32 = HEADER_SIZE;
    memcpy(h + 12, &v32, 4);
    memcpy(h + 16, &head_size, 8);
    uint64_t v64 = meta->n;
    memcpy(h + 24, &v64, 8);
    v64 = n;
    memcpy(h + 32, &v64, 8);
    memcpy(h + 40, &data_offset, 8);
    v32 = BN_ALIGN;
    memcpy(h + 48, &v32, 4);
    int proj_norm = 0;
    v32 = !bn_meta_bool(meta, "model.proj_norm", &proj_norm) && proj_norm ? BN_FLAG_PROJ_NORM : 0;
    if (bn_meta_get(meta, "model.rope_scaling"))
        v32 |= BN_FLAG_ROPE_SCALING;
    int qk_norm = 0, post = 0;
    if (!bn_meta_bool(meta, "model.qk_norm", &qk_norm) && qk_norm)
        v32 |= BN_FLAG_QK_NORM;
    if (bn_meta_get(meta, "model.embedding_scale"))
        v32 |= BN_FLAG_EMBD_SCALE;
    if (!bn_meta_bool(meta, "model.post_norms", &post) && post)
        v32 |= BN_FLAG_POST_NORMS;
    if (bn_meta_get(meta, "model.sliding_window"))
        v32 |= BN_FLAG_SLIDING;
    memcpy(h + 52, &v32, 4);
    memcpy(h + 56, &off, 8);
    uint64_t hh = XXH3_64bits(h, head_size);
    int rc = bn_out_open(&w->out, path, temps, e);
    if (!rc)
        rc = bn_out_write(&w->out, h, head_size, e);
    free(b.p);
    if (!rc)
        rc = bn_out_write(&w->out, &hh, 8, e);
    if (!rc)
        rc = bn_out_pad(&w->out, BN_ALIGN, e);
    if (rc) {
        bn_writer_abort(w);
        return -1;
    }
    w->data_start = w->out.pos;
    w->tensors = w->dir;
    return 0;
}

int bn_writer_tensor(bn_writer *w, const void *data, size_t size, bn_err *e)
{
    if (w->next >= w->n_tensors)
        return bn_fail(e, "writer: more tensors than the directory lists");
    const bn_tensor *t = &w->dir[w->next];
    if (w->part_bytes)
        return bn_fail(e, "writer: tensor '%s' is still being written in pieces", t->name);
    if (size != t->size)
        return bn_fail(e, "writer: tensor '%s' is %zu bytes, the directory says %llu", t->name, size,
                       (unsigned long long)t->size);
    if (bn_out_write(&w->out, data, size, e) || bn_out_pad(&w->out, BN_ALIGN, e))
        return -1;
    w->hashes[w->next++] = XXH3_64bits(data, size);
    return 0;
}

int bn_writer_piece(bn_writer *w, const void *data, size_t n, bn_err *e)
{
    if (w->next >= w->n_tensors)
        return bn_fail(e, "writer: more tensors than the directory lists");
    const bn_tensor *t = &w->dir[w->next];
    if (n > t->size - w->part_bytes)
        return bn_fail(e, "writer: tensor '%s' is longer than the %llu bytes the directory says", t->name,
                       (unsigned long long)t->size);
    if (!w->part_hash && (!(w->part_hash = XXH3_createState()) || XXH3_64bits_reset(w->part_hash) != XXH_OK))
        return bn_fail_code(e, BN_E_NOMEM, "writer: out of memory");
    if (bn_out_write(&w->out, data, n, e))
        return -1;
    XXH3_64bits_update(w->part_hash, data, n);
    if ((w->part_bytes += n) < t->size)
        return 0;
    if (bn_out_pad(&w->out, BN_ALIGN, e))
        return -1;
    w->hashes[w->next++] = XXH3_64bits_digest(w->part_hash);
    w->part_bytes = 0;
    XXH3_64bits_reset(w->part_hash);
    return 0;
}

int bn_writer_finish(bn_writer *w, bn_err *e)
{
    if (w->next != w->n_tensors) {
        bn_writer_abort(w);
        return bn_fail(e, "writer: %zu of %zu tensors written", w->next, w->n_tensors);
    }
    bn_buf b = {0};
    bn_buf_put(&b, TAIL_MAGIC, 8);
    bn_buf_put64(&b, w->n_tensors);
    bn_buf_put(&b, w->hashes, 8 * w->n_tensors);
    bn_buf_put64(&b, w->late.n);
    uint8_t *mb = NULL;
    size_t ml = 0;
    if (bn_meta_encode(&w->late, &mb, &ml, e)) {
        free(b.p);
        bn_writer_abort(w);
        return -1;
    }
    bn_buf_put(&b, mb, ml);
    free(mb);
    uint64_t th = b.oom ? 0 : XXH3_64bits(b.p, b.n);
    bn_buf_put64(&b, th);
    bn_buf_put64(&b, b.n + 16);
    bn_buf_put(&b, END_MAGIC, 8);
    int rc = b.oom ? bn_fail_code(e, BN_E_NOMEM, "writer: out of memory") : bn_out_write(&w->out, b.p, b.n, e);
    free(b.p);
    if (!rc)
        rc = bn_out_commit(&w->out, e);
    else
        bn_out_abort(&w->out);
    free(w->dir);
    free(w->hashes);
    XXH3_freeState(w->part_hash);
    bn_meta_free(&w->late);
    w->dir = NULL;
    w->hashes = NULL;
    w->part_hash = NULL;
    return rc;
}

void bn_writer_abort(bn_writer *w)
{
    bn_out_abort(&w->out);
    free(w->dir);
    free(w->hashes);
    XXH3_freeState(w->part_hash);
    bn_meta_free(&w->late);
    w->dir = NULL;
    w->hashes = NULL;
    w->part_hash = NULL;
}
