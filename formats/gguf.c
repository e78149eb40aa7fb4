/* gguf.c — reader of GGUF v2/v3 files (bitnet.cpp and llama.cpp), presented
 * canonically (formats/bn-model.md): canonical metadata keys, GGUF tensor
 * names, shapes outermost-first, and bn tensor types. Ternary encodings
 * (I2_S, and TQ1_0/TQ2_0, IQ1_BN/IQ2_BN with one scale) become `t2`; Q8_0,
 * the k-quants and the other TQ/IQ*_BN tensors are dequantized exactly to
 * f32. Conversion happens in read(),
 * one tensor at a time, from pread() into a scratch buffer.
 *
 * This file opens: header, metadata, tensor directory, data placement; the
 * other parts are listed in gguf.h. Every count, size and offset in the
 * file is checked against the file size before it is used to allocate or
 * read. */
#include "formats.h"
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KV 65536
#define MAX_TENSORS 65536

int bn_gguf_sniff(const uint8_t *head, size_t n)
{
    return n >= 4 && !memcmp(head, "GGUF", 4);
}

static int name_cmp(const void *a, const void *b)
{
    const bn_tensor *x = *(const bn_tensor *const *)a, *y = *(const bn_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Tensors GGUF stores as bn does are read straight from the file. */
static int gguf_span(bn_source *s, size_t i, int *fd, uint64_t *off)
{
    const gg_impl *g = s->impl;
    *fd = g->fd;
    *off = g->gt[i].src_off;
    return g->gt[i].conv == CV_COPY;
}

/* bn_source's own_name: an input norm under the file's own spelling. */
static void gguf_own_name(const bn_source *s, const char *name, char *buf, size_t n)
{
    const gg_impl *g = s->impl;
    size_t l = strlen(name), sl = strlen("_in_norm.weight");
    if (g->norm_in && l > sl && !strcmp(name + l - sl, "_in_norm.weight"))
        snprintf(buf, n, "%.*s_norm_in.weight", (int)(l - sl), name);
    else
        snprintf(buf, n, "%s", name);
}

/* Opens path (a regular file) into s: its impl, read(), span() and close(). */
static int open_file(bn_source *s, const char *path, uint64_t *size, bn_err *e)
{
    gg_impl *g = calloc(1, sizeof *g);
    if (!g)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    g->fd = -1;
    s->impl = g;
    s->close = bn_gguf_close;
    s->read = bn_gguf_tensor_read;
    s->span = gguf_span;
    s->own_name = gguf_own_name;
    g->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (g->fd < 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(g->fd, &st))
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bn_fail(e, "%s: a GGUF input must be a regular file", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Magic, version and the two counts, each count checked against what the
 * rest of the file can hold. */
static int read_header(gg_rdr *r, uint64_t *n_tensors, uint64_t *n_kv, bn_err *e)
{
    const char *name = r->name;
    uint8_t magic[4];
    uint32_t version;
    if (r->size < 24)
        return bn_fail(e, "%s: truncated: %llu bytes, too short for a GGUF header", name,
                       (unsigned long long)r->size);
    if (bn_gguf_get(r, magic, 4, "the magic", e) || bn_gguf_u32(r, &version, "the version", e))
        return -1;
    if (memcmp(magic, "GGUF", 4))
        return bn_fail(e, "%s: not a GGUF file (wrong magic)", name);
    if (version == 0x02000000u || version == 0x03000000u)
        return bn_fail(e, "%s: big-endian GGUF is not supported", name);
    if (version != 2 && version != 3)
        return bn_fail(e, "%s: unsupported GGUF version %u (2 and 3 are read)", name, version);
    if (bn_gguf_u64(r, n_tensors, "the tensor count", e) || bn_gguf_u64(r, n_kv, "the metadata count", e))
        return -1;
    /* Smallest KV: 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes;
     * smallest tensor info: 8 + 1 + 4 + 8 + 4 + 8 bytes. */
    if (*n_kv > MAX_KV || *n_kv > bn_gguf_left(r) / 14)
        return bn_fail(e, "%s: header claims %llu metadata entries, more than the file can hold", name,
                       (unsigned long long)*n_kv);
    if (*n_tensors == 0)
        return bn_fail(e, "%s: the file holds no tensors", name);
    if (*n_tensors > MAX_TENSORS || *n_tensors > bn_gguf_left(r) / 33)
        return bn_fail(e, "%s: header claims %llu tensors, more than the file can hold", name,
                       (unsigned long long)*n_tensors);
    return 0;
}

/* general.alignment, 32 when absent. */
static int read_alignment(const bn_meta *raw, const char *name, uint64_t *alignment, bn_err *e)
{
    const bn_kv *kv = bn_meta_get(raw, "general.alignment");
    uint32_t a;
    *alignment = 32;
    if (!kv)
        return 0;
    /* ggml's rule (gguf.cpp): a power of two */
    if (kv->type != BN_V_U32 || bn_meta_u32(raw, "general.alignment", &a) || a == 0 || (a & (a - 1)) ||
        a > (1u << 24))
        return bn_fail(e, "%s: bad general.alignment (a power of two up to 2^24 is required)", name);
    *alignment = a;
    return 0;
}

/* Tensor i's directory entry: name, dimensions (innermost first in the
 * file, outermost first in t), type, and offset (relative to the data
 * section until place_tensors). */
static int read_tensor_info(gg_rdr *r, uint64_t i, bn_tensor *t, gg_tensor *gt, bn_err *e)
{
    const char *name = r->name;
    char *tn;
    uint64_t tl;
    if (bn_gguf_str(r, &tn, &tl, BN_NAME_MAX - 1, "a tensor name", e))
        return -1;
    if (tl == 0 || memchr(tn, 0, (size_t)tl)) {
        free(tn);
        return bn_fail(e, "%s: tensor %llu has an empty name or a NUL in it", name, (unsigned long long)i);
    }
    memcpy(t->name, tn, (size_t)tl + 1);
    free(tn);
    uint32_t nd;
    if (bn_gguf_u32(r, &nd, "a tensor's dimension count", e))
        return -1;
    if (nd < 1 || nd > BN_MAX_DIMS)
        return bn_fail(e, "%s: tensor '%s' has %u dimensions (1..4 allowed)", name, t->name, nd);
    uint64_t ne[BN_MAX_DIMS], n = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if (bn_gguf_u64(r, &ne[d], "a tensor dimension", e))
            return -1;
        if (ne[d] == 0 || ne[d] > r->size * 8 || (n && ne[d] > UINT64_MAX / n))
            return bn_fail(e, "%s: tensor '%s' has an impossible dimension %llu", name, t->name,
                           (unsigned long long)ne[d]);
        n *= ne[d];
    }
    if (n > r->size * 8) /* no supported type packs more than 8 elements per byte */
        return bn_fail(e, "%s: tensor '%s' has %llu elements, more than the file can hold", name, t->name,
                       (unsigned long long)n);
    uint64_t off;
    if (bn_gguf_u32(r, &gt->ggtype, "a tensor type", e) || bn_gguf_u64(r, &off, "a tensor offset", e))
        return -1;
    t->ndim = nd;
    for (uint32_t d = 0; d < nd; d++)
        t->shape[d] = ne[nd - 1 - d];
    gt->n = n;
    gt->k = ne[0];
    gt->src_off = off;
    t->src_index = (uint32_t)i;
    return bn_gguf_tensor_encoding(name, t, gt, e);
}

/* Everything before the data: header, metadata (into raw), the tensor
 * directory (into s and g); the alignment, and where the directory ends. */
static int read_head(bn_source *s, gg_impl *g, gg_rdr *r, bn_meta *raw, uint64_t *alignment, uint64_t *head_end,
                     bn_err *e)
{
    uint64_t n_tensors, n_kv;
    if (read_header(r, &n_tensors, &n_kv, e))
        return -1;
    for (uint64_t i = 0; i < n_kv; i++)
        if (bn_gguf_read_kv(r, raw, e))
            return -1;
    if (read_alignment(raw, r->name, alignment, e))
        return -1;
    s->tensors = calloc((size_t)n_tensors, sizeof *s->tensors);
    g->gt = calloc((size_t)n_tensors, sizeof *g->gt);
    if (!s->tensors || !g->gt)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name);
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (read_tensor_info(r, i, &s->tensors[i], &g->gt[i], e))
            return -1;
        s->n_tensors++;
    }
    *head_end = r->pos;
    return 0;
}

/* Tensor names are unique (checked on a sorted copy of pointers). */
static int check_unique_names(const bn_source *s, bn_err *e)
{
    const bn_tensor **sorted = malloc(s->n_tensors * sizeof *sorted);
    if (!sorted)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    for (size_t i = 0; i < s->n_tensors; i++)
        sorted[i] = &s->tensors[i];
    qsort(sorted, s->n_tensors, sizeof *sorted, name_cmp);
    int rc = 0;
    for (size_t i = 1; i < s->n_tensors && !rc; i++)
        if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
            rc = bn_fail(e, "%s: tensor '%s' appears twice", s->name, sorted[i]->name);
    free(sorted);
    return rc;
}

static int by_offset(const void *a, const void *b)
{
    const gg_tensor *x = *(const gg_tensor *const *)a, *y = *(const gg_tensor *const *)b;
    return x->src_off < y->src_off ? -1 : x->src_off > y->src_off;
}

/* No two tensors share bytes: a damaged directory (an offset copied from
 * another tensor) would otherwise convert into weights read twice, where
 * today's ggml refuses the file (each offset must follow the one before).
 * Checked on a copy sorted by offset. */
static int check_no_overlap(const bn_source *s, const gg_impl *g, bn_err *e)
{
    const gg_tensor **at = malloc(s->n_tensors * sizeof *at);
    if (!at)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    for (size_t i = 0; i < s->n_tensors; i++)
        at[i] = &g->gt[i];
    qsort(at, s->n_tensors, sizeof *at, by_offset);
    int rc = 0;
    for (size_t i = 1; i < s->n_tensors && !rc; i++)
        if (at[i]->src_off - at[i - 1]->src_off < at[i - 1]->src_size) /* sizes > 0: read_tensor_info */
            rc = bn_fail(e, "%s: tensors '%s' and '%s' overlap (%llu bytes at %llu, the next at %llu)", s->name,
                         s->tensors[at[i - 1] - g->gt].name, s->tensors[at[i] - g->gt].name,
                         (unsigned long long)at[i - 1]->src_size, (unsigned long long)at[i - 1]->src_off,
                         (unsigned long long)at[i]->src_off);
    free(at);
    return rc;
}

/* Each tensor's bytes lie, aligned, within the data section, which starts
 * at the first multiple of the alignment after the directory. */
static int place_tensors(bn_source *s, gg_impl *g, uint64_t head_end, uint64_t alignment, uint64_t size, bn_err *e)
{
    uint64_t data_start = head_end;
    if (data_start % alignment)
        data_start += alignment - data_start % alignment;
    if (data_start > size)
        return bn_fail(e, "%s: truncated: the data section would start at %llu, the file has %llu bytes", s->name,
                       (unsigned long long)data_start, (unsigned long long)size);
    for (size_t i = 0; i < s->n_tensors; i++) {
        bn_tensor *t = &s->tensors[i];
        gg_tensor *gt = &g->gt[i];
        uint64_t off = gt->src_off;
        if (off % alignment)
            return bn_fail(e, "%s: tensor '%s' has offset %llu, not a multiple of the alignment %llu", s->name,
                           t->name, (unsigned long long)off, (unsigned long long)alignment);
        if (off > size - data_start || gt->src_size > size - data_start - off)
            return bn_fail(e, "%s: tensor '%s' (%llu bytes at offset %llu) runs past the end of the file", s->name,
                           t->name, (unsigned long long)gt->src_size, (unsigned long long)off);
        gt->src_off = data_start + off;
        t->offset = gt->src_off;
    }
    return check_no_overlap(s, g, e);
}

/* Every tensor's final type and size (bn_gguf_tensor_settle); then the
 * scratch buffer that took is freed (read() grows it again). */
static int settle_tensors(bn_source *s, gg_impl *g, bn_err *e)
{
    for (size_t i = 0; i < s->n_tensors; i++)
        if (bn_gguf_tensor_settle(s->name, g, &s->tensors[i], &g->gt[i], e))
            return -1;
    free(g->scratch);
    g->scratch = NULL;
    g->scratch_cap = 0;
    return 0;
}

/* What the canonical metadata needs from the directory: whether the file
 * has its own output head, token_embd's rows (0: none), and whether any
 * projection is ternary (stored so, or float ternary·β read as t2). */
static void scan_roles(const bn_source *s, const gg_impl *g, int *has_output, uint64_t *embd_rows, int *any_ternary)
{
    *has_output = *any_ternary = 0;
    *embd_rows = 0;
    for (size_t i = 0; i < s->n_tensors; i++) {
        const bn_tensor *t = &s->tensors[i];
        uint32_t tt = g->gt[i].ggtype;
        if (!strcmp(t->name, "output.weight"))
            *has_output = 1;
        if (!strcmp(t->name, "token_embd.weight"))
            *embd_rows = t->shape[0];
        if ((tt == GT_I2_S || tt == GT_TQ1_0 || tt == GT_TQ2_0 || tt == GT_IQ1_BN || tt == GT_IQ2_BN ||
             tt == GT_TL1 || tt == GT_TL2 || t->type == BN_T2) &&
            bn_gguf_is_proj(t->name))
            *any_ternary = 1;
    }
}

static int open_impl(bn_source *s, const char *path, const char *tl_config, bn_meta *raw, bn_err *e)
{
    uint64_t size = 0, alignment = 32, head_end = 0;
    if (open_file(s, path, &size, e))
        return -1;
    gg_impl *g = s->impl;
    if (tl_config && bn_gguf_tl_config_load(&g->tl, tl_config, e))
        return -1;
    gg_rdr r = {.fd = g->fd, .name = path, .size = size, .buf = malloc(GG_RBUF)};
    if (!r.buf)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    int rc = read_head(s, g, &r, raw, &alignment, &head_end, e);
    free(r.buf);
    /* The BitNet converters (bitnet.cpp's for BitnetForCausalLM and
     * BitNetForCausalLM, llama.cpp's, the official 2B4T path's
     * preprocessing) pass every projection through weight_quant, so an
     * f32/f16/bf16 one of the BitNet architectures holds ternary·β, which
     * the peers multiply by as stored: read as t2 with that β
     * (formats/gguf-import.md §2). So does bitnet.cpp's LlamaModel, which
     * writes Falcon3's, Falcon-E's and Llama3-8B-1.58's projections as
     * (code − 1) / weight_scale in its f32/f16 files: an architecture
     * 'llama' file is read the same way (one with no ternary projection,
     * a float Llama, is none of bn's). Projections that are not ternary·β
     * stay float for bn-quant. */
    /* bitnet.cpp's embedding converter names the BitLinear input norms
     * blk.N.<proj>_norm_in.weight; bn's are blk.N.<proj>_in_norm.weight
     * (renamed before the names are checked: a file holding both is refused) */
    for (size_t i = 0; !rc && i < s->n_tensors; i++) {
        char *n = s->tensors[i].name;
        size_t l = strlen(n), sl = strlen("_norm_in.weight");
        if (l > sl && !strcmp(n + l - sl, "_norm_in.weight")) {
            memcpy(n + l - sl, "_in_norm.weight", sl);
            g->norm_in = 1;
        }
    }
    const char *a0 = rc ? NULL : bn_meta_str(raw, "general.architecture");
    g->float_t2 = bn_gguf_bitnet_arch(a0) || (a0 && !strcmp(a0, "llama"));
    if (rc || check_unique_names(s, e) || place_tensors(s, g, head_end, alignment, size, e) ||
        settle_tensors(s, g, e))
        return -1;
    int has_output, any_ternary;
    uint64_t embd_rows;
    scan_roles(s, g, &has_output, &embd_rows, &any_ternary);
    const char *arch = bn_meta_str(raw, "general.architecture");
    if (arch && !strcmp(arch, "llama") && !any_ternary)
        return bn_fail(e,
                       "%s: architecture 'llama' without ternary projection weights (I2_S, TQ1_0, TQ2_0, IQ1_BN, "
                       "IQ2_BN, TL1, TL2, or floats of ternary·β with one β) is not a BitNet model",
                       path);
    return bn_gguf_canonical_meta(s, raw, has_output, embd_rows, e);
}

int bn_gguf_open(bn_source *s, const char *path, const char *tl_config, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->name = strdup(path);
    s->format = strdup("gguf");
    if (!s->name || !s->format) {
        bn_source_close(s);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    bn_meta raw = {0};
    /* provenance: the file, and the TL configuration that decides how its
     * TL1/TL2 weights read (when a file: a pipe is spent, and hashing
     * re-reads it once the tensors are written) */
    struct stat tl;
    int rc = open_impl(s, path, tl_config, &raw, e) || bn_source_add_file(s, path, e) ||
             (tl_config && !stat(tl_config, &tl) && S_ISREG(tl.st_mode) && bn_source_add_file(s, tl_config, e));
    bn_meta_free(&raw);
    if (rc)
        bn_source_close(s);
    return rc;
}
