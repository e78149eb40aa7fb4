/* model.c — turns a model description (bn_source) into a runnable bn_model:
 * checks the architecture and every tensor, points matrices into the mapped
 * file, copies norms to f32, ternarizes float projections (HF "online"). */
#include "cpu.h"
#include "kern_head.h"
#include "model.h"
#include "quant.h"
#include "pack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *own(bn_model *m, void *p)
{
    if (!p)
        return NULL;
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **v = realloc(m->owned, cap * sizeof *v);
        if (!v) {
            free(p);
            return NULL;
        }
        m->owned = v;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

static int is_float(uint32_t t)
{
    return t == BN_F32 || t == BN_F16 || t == BN_BF16;
}

/* The bytes of tensor i: in place when mapped, else already read by
 * read_missing(). */
static const void *bytes_of(const bn_model *m, const bn_tensor *t)
{
    return t->data;
}

/* Reads every tensor the mapping does not provide (pipes, HF, GGUF), in
 * directory order so streaming sources work. */
static int read_missing(bn_model *m, bn_err *e)
{
    bn_source *s = &m->src;
    m->mapped = !strcmp(s->format, "bn");
    size_t n = 0, done = 0;
    for (size_t i = 0; i < s->n_tensors; i++)
        n += !s->tensors[i].data;
    bn_steps st = {m->progress, m->progress_user, n, !n};
    int rc = 0;
    for (size_t i = 0; !rc && i < s->n_tensors; i++) {
        bn_tensor *t = &s->tensors[i];
        if (t->data)
            continue;
        m->mapped = 0;
        void *buf;
        if ((rc = bn_steps_at(&st, done++, t->name, s->name, e)))
            break;
        if (!(buf = own(m, malloc(t->size ? t->size : 1))))
            rc = bn_fail_code(e, BN_E_NOMEM, "%s: out of memory reading tensor '%s' (%llu bytes)", s->name,
                              t->name, (unsigned long long)t->size);
        else if (!(rc = s->read(s, i, buf, e)))
            t->data = buf;
    }
    bn_steps_end(&st); /* nothing after a cancel (bn.h) */
    if (rc)
        return rc;
    if (!strcmp(s->format, "bn"))
        return bn_bnfile_finish(s, e);
    return 0;
}

static const bn_tensor *find(const bn_model *m, const char *fmt, uint32_t layer)
{
    char name[BN_NAME_MAX];
    snprintf(name, sizeof name, fmt, layer);
    return bn_source_find(&m->src, name);
}

static const float *norm_f32(bn_model *m, const bn_tensor *t, bn_err *e)
{
    if (!is_float(t->type)) {
        char shown[BN_SHOWN_NAME_MAX];
        const char *type = bn_type_name(t->type);
        bn_fail(e, "%s: tensor '%s' has type %s; a norm must be f32, f16 or bf16", m->src.name,
                bn_source_shown_name(&m->src, t->name, shown), type ? type : "unknown");
        return NULL;
    }
    float *v = own(m, malloc(t->shape[0] * sizeof *v));
    if (!v) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", m->src.name);
        return NULL;
    }
    bn_to_f32(t->type, bytes_of(m, t), v, t->shape[0]);
    for (uint64_t i = 0; i < t->shape[0]; i++)
        if (!isfinite(v[i])) { /* every output would be NaN: say why now */
            char shown[BN_SHOWN_NAME_MAX];
            bn_fail(e, "%s: tensor '%s' holds weights that are inf or NaN", m->src.name,
                    bn_source_shown_name(&m->src, t->name, shown));
            return NULL;
        }
    return v;
}

static int load_mat(bn_model *m, const bn_tensor *t, const char *kernel, bn_mat *out, bn_err *e)
{
    out->rows = t->shape[0];
    out->cols = t->shape[1];
    if (is_float(t->type)) {
        /* Not yet through bn-quant: ternarize as HF does online. */
        uint64_t n = out->rows * out->cols;
        float *w = malloc(n * sizeof *w);
        uint8_t *t2 = own(m, malloc(bn_type_size(BN_T2, 2, t->shape)));
        if (!w || !t2) {
            free(w);
            return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory ternarizing '%s'", m->src.name, t->name);
        }
        bn_to_f32(t->type, bytes_of(m, t), w, n);
        int bad = bn_ternarize_absmean(w, out->rows, out->cols, m->hp.ternary_recip, t2, NULL);
        free(w);
        char shown[BN_SHOWN_NAME_MAX];
        if (bad)
            return bn_fail_code(e, BN_E_FORMAT, "%s: tensor '%s' holds weights that are inf or NaN", m->src.name,
                                bn_source_shown_name(&m->src, t->name, shown));
        out->data = t2;
        out->bytes = bn_type_size(BN_T2, 2, t->shape);
        out->type = BN_T2;
        m->n_ternarized++;
    } else {
        out->data = bytes_of(m, t);
        out->bytes = t->size;
        out->type = t->type;
        /* Kernels of self-describing layouts (tl1/tl2) trust the tensor's
         * own header; a header that disagrees with the shape would have
         * them read past the tensor. */
        if (bn_packed_check(out->type, out->data, out->rows, out->cols))
            return bn_fail(e, "%s: tensor '%s': its %s header does not match its shape %llux%llu", m->src.name,
                           t->name, bn_type_name(out->type) ? bn_type_name(out->type) : "layout",
                           (unsigned long long)out->rows, (unsigned long long)out->cols);
    }
    const bn_kernels *k = bn_kernels_find(kernel, out->type);
    if (!k) {
        const char *tn = bn_type_name(out->type);
        /* a set named that lacks a packed layout another set runs: the set's fault */
        if (out->type >= 16 && tn && strcmp(kernel, "auto") && bn_kernels_find("auto", out->type))
            return bn_fail_code(e, BN_E_UNSUPPORTED,
                                "%s: kernel set '%s' has no form for layout %s or cannot run on this CPU (auto runs it)",
                                m->src.name, kernel, tn);
        if (out->type >= 16 || !tn)
            return bn_fail_code(e, BN_E_UNSUPPORTED,
                                "%s: tensor '%s' uses packed layout %u%s%s%s, which this build or CPU cannot run",
                                m->src.name, t->name, out->type, tn ? " (" : "", tn ? tn : "", tn ? ")" : "");
        if (out->type != BN_T2)
            return bn_fail(e, "%s: tensor '%s' has type %s; projections must be ternary (t2) or float",
                           m->src.name, t->name, tn);
        return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: kernel set '%s' has no form for layout %s or cannot run on this CPU",
                            m->src.name, kernel, tn);
    }
    if (m->kern && m->kern != k)
        return bn_fail_code(e, BN_E_UNSUPPORTED,
                            "%s: tensor '%s' has layout %s, other projections %s; mixed layouts are not supported",
                            m->src.name, t->name, bn_type_name(out->type), bn_type_name(m->kern->layout));
    m->kern = k;
    if (out->type == BN_T2)
        out->beta = bn_t2_scale(out->data, out->rows, out->cols);
    else
        memcpy(&out->beta, (const uint8_t *)out->data + t->size - 4, 4); /* packed layouts keep beta last */
    return 0;
}

static int load_layer(bn_model *m, uint32_t l, const char *kernel, bn_err *e)
{
    bn_layer *L = &m->layers[l];
    static const struct {
        const char *fmt;
        size_t off;
    } mats[] = {
        {"blk.%u.attn_q.weight", offsetof(bn_layer, q)},      {"blk.%u.attn_k.weight", offsetof(bn_layer, k)},
        {"blk.%u.attn_v.weight", offsetof(bn_layer, v)},      {"blk.%u.attn_output.weight", offsetof(bn_layer, o)},
        {"blk.%u.ffn_gate.weight", offsetof(bn_layer, gate)}, {"blk.%u.ffn_up.weight", offsetof(bn_layer, up)},
        {"blk.%u.ffn_down.weight", offsetof(bn_layer, down)},
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        if (load_mat(m, find(m, mats[i].fmt, l), kernel, (bn_mat *)((char *)L + mats[i].off), e))
            return -1;
    if (!(L->attn_norm = norm_f32(m, find(m, "blk.%u.attn_norm.weight", l), e)) ||
        !(L->ffn_norm = norm_f32(m, find(m, "blk.%u.ffn_norm.weight", l), e)))
        return -1;
    if (m->hp.sub_norms && (!(L->attn_sub_norm = norm_f32(m, find(m, "blk.%u.attn_sub_norm.weight", l), e)) ||
                            !(L->ffn_sub_norm = norm_f32(m, find(m, "blk.%u.ffn_sub_norm.weight", l), e))))
        return -1;
    for (int p = 0; m->hp.proj_norm && p < BN_N_PROJ; p++) {
        char n[BN_NAME_MAX];
        snprintf(n, sizeof n, "blk.%%u.%s_in_norm.weight", bn_proj_names[p]);
        if (!(L->in_norm[p] = norm_f32(m, find(m, n, l), e)))
            return -1;
    }
    if (m->hp.post_norms &&
        (!(L->attn_post_norm = norm_f32(m, find(m, "blk.%u.post_attention_norm.weight", l), e)) ||
         !(L->ffn_post_norm = norm_f32(m, find(m, "blk.%u.post_ffw_norm.weight", l), e))))
        return -1;
    if (m->hp.qk_norm && (!(L->q_norm = norm_f32(m, find(m, "blk.%u.attn_q_norm.weight", l), e)) ||
                          !(L->k_norm = norm_f32(m, find(m, "blk.%u.attn_k_norm.weight", l), e))))
        return -1;
    return 0;
}

static int load_head(bn_model *m, const char *name, const void **data, uint32_t *type, uint64_t *bytes,
                     bn_err *e)
{
    const bn_tensor *t = bn_source_find(&m->src, name);
    const char *why;
    if (!bn_head_type_ok(t->type, m->hp.n_embd, &why))
        return bn_fail(e, "%s: tensor '%s' has type %s; %s", m->src.name, name,
                       bn_type_name(t->type) ? bn_type_name(t->type) : "unknown", why);
    *data = bytes_of(m, t);
    *type = t->type;
    *bytes = t->size;
    return 0;
}

int bn_model_load(bn_model *m, const char *path, const char *kernel, bn_err *e)
{
    return bn_model_load_progress(m, path, kernel, NULL, NULL, e);
}

static uint64_t layer_bytes(const bn_model *m, uint32_t l)
{
    if (l >= m->hp.n_layer)
        return m->head_bytes;
    const bn_layer *L = &m->layers[l];
    return L->q.bytes + L->k.bytes + L->v.bytes + L->o.bytes + L->gate.bytes + L->up.bytes + L->down.bytes;
}

/* A model read in a loop through a cache smaller than itself misses on
 * every page when the cache keeps the most recent ones; keeping a fixed
 * part and streaming only the rest reads the least. Kept: the head if it
 * fits in what is left less room for two layers in flight and an eighth
 * (at least 32 MiB) for the KV cache and scratch, then the last layers
 * while they fit. Three quarters instead of the eighth's seven left the
 * 2B4T q6 head (267 MB) out of a 400 MiB cgroup by 1 MB: 2.7-3.1 t/s
 * against 3.4 with it kept (2 Zen 5 threads, quiet); at 250-550 MiB the
 * two rules were equal. */
static void keep_what_fits(bn_model *m, uint64_t avail)
{
    uint64_t big = 0;
    for (uint32_t l = 0; l < m->hp.n_layer; l++)
        big = layer_bytes(m, l) > big ? layer_bytes(m, l) : big;
    uint64_t slack = avail / 8 > (32u << 20) ? avail / 8 : (32u << 20);
    uint64_t budget = avail > 2 * big + slack ? avail - 2 * big - slack : 0;
    m->keep_head = m->head_bytes <= budget;
    budget -= m->keep_head ? m->head_bytes : 0;
    m->keep_from = m->hp.n_layer;
    while (m->keep_from > 0 && layer_bytes(m, m->keep_from - 1) <= budget)
        budget -= layer_bytes(m, --m->keep_from);
}

int bn_model_load_progress(bn_model *m, const char *path, const char *kernel, bn_progress_fn fn, void *user,
                           bn_err *e)
{
    memset(m, 0, sizeof *m);
    m->progress = fn;
    m->progress_user = user;
    if (bn_open_any(&m->src, path, e))
        return -1;
    bn_hparams *hp = &m->hp;
    if (bn_hparams_from_meta(&m->src.meta, hp, m->src.name, e) || bn_hparams_check_tensors(hp, &m->src, e) ||
        read_missing(m, e))
        goto fail;
    if (hp->head_dim * hp->n_head == 0 || hp->n_head % hp->n_head_kv) {
        bn_fail(e, "%s: inconsistent head counts", m->src.name);
        goto fail;
    }
    m->layers = own(m, calloc(hp->n_layer, sizeof *m->layers));
    if (!m->layers) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", m->src.name);
        goto fail;
    }
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if (load_layer(m, l, kernel, e))
            goto fail;
    uint64_t embd_bytes;
    if (load_head(m, "token_embd.weight", &m->embd, &m->embd_type, &embd_bytes, e) ||
        load_head(m, hp->tied ? "token_embd.weight" : "output.weight", &m->head, &m->head_type, &m->head_bytes, e) ||
        !(m->out_norm = norm_f32(m, bn_source_find(&m->src, "output_norm.weight"), e)))
        goto fail;
    /* Larger than the memory left: its pages cannot all stay cached */
    uint64_t avail = bn_mem_available();
    m->streams = m->mapped && avail && bn_model_weight_bytes(m) > avail;
    if (m->streams)
        keep_what_fits(m, avail);
    return 0;
fail:
    bn_model_free(m);
    return -1;
}

void bn_model_free(bn_model *m)
{
    if (m->arena)
        munmap(m->arena, m->arena_size);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    if (m->src.name || m->src.impl)
        bn_source_close(&m->src);
    memset(m, 0, sizeof *m);
}

static void advise(const void *p, uint64_t n, int advice)
{
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095, b = (uintptr_t)p + n;
    if (n)
        madvise((void *)a, b - a, advice);
}

static void advise_layer(const bn_model *m, uint32_t l, int advice)
{
    if (l >= m->hp.n_layer) {
        advise(m->head, m->head_bytes, advice);
        return;
    }
    const bn_layer *L = &m->layers[l];
    const bn_mat *mats[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    for (size_t i = 0; i < 7; i++)
        advise(mats[i]->data, mats[i]->bytes, advice);
}

void bn_model_readahead(const bn_model *m, uint32_t l)
{
    if (m->streams && !m->arena)
        advise_layer(m, l, MADV_WILLNEED);
}

void bn_model_release(const bn_model *m, uint32_t l)
{
#ifdef MADV_PAGEOUT
    if (m->streams && !m->arena && (l < m->hp.n_layer ? l < m->keep_from : !m->keep_head))
        advise_layer(m, l, MADV_PAGEOUT);
#else
    (void)m;
    (void)l;
#endif
}

uint64_t bn_model_weight_bytes(const bn_model *m)
{
    uint64_t n = 0;
    for (size_t i = 0; m && i < m->src.n_tensors; i++)
        n += m->src.tensors[i].size;
    return n;
}

/* ------------------------------------------------- weights in memory */

#define ARENA_ALIGN BN_HUGE_PAGE

static size_t up64(uint64_t n)
{
    return (size_t)((n + 63) & ~(uint64_t)63);
}

/* Releases the pages of a copied source range from this process (the
 * file keeps them in its page cache), so resident memory stays near one
 * copy of the model. Only for ranges inside a file mapping: private and
 * read-only, so a later read faults the same bytes back in. */
static void drop_mapped(const void *p, uint64_t n, int evict)
{
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, b = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (b <= a)
        return;
#ifdef MADV_PAGEOUT
    /* A copy that takes most of the memory: its source's page cache is
     * reclaimed now, not by kswapd during decoding (the 100B shape's 17.8
     * GiB left 0.2 GiB free and 5 GiB of its file cached). */
    if (evict && !madvise((void *)a, b - a, MADV_PAGEOUT))
        return;
#else
    (void)evict;
#endif
    madvise((void *)a, b - a, MADV_DONTNEED);
}

/* A matrix copied as stored: the kernels read rows from the quarters of
 * a range as four streams (kern_avx512.c), which row-major order serves. */
static void copy_mat(bn_mat *w, uint8_t **at, int mapped, int evict)
{
    const uint8_t *src = w->data;
    memcpy(*at, src, w->bytes);
    if (mapped)
        drop_mapped(src, w->bytes, evict);
    w->data = *at;
    *at += up64(w->bytes);
}

int bn_model_to_memory(bn_model *m, bn_err *e)
{
    if (m->arena || !strcmp(m->kern->name, "ref"))
        return 0;
    const bn_hparams *hp = &m->hp;
    size_t total = up64(m->head_bytes);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        const bn_mat *mats[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < 7; i++)
            total += up64(mats[i]->bytes);
    }
    /* Room for the copy and a margin; the file's page cache it came from
     * can be reclaimed, so it does not count against it. */
    uint64_t avail = bn_mem_available();
    if (!avail || (uint64_t)total + ((uint64_t)1 << 30) > avail)
        return 0;
    int evict = (uint64_t)total > avail / 2;
    size_t size = (total + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    void *p = mmap(NULL, size + ARENA_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
    /* Trim to a 2 MiB-aligned region so every huge page is whole. */
    uintptr_t a = ((uintptr_t)p + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
    if (a > (uintptr_t)p)
        munmap(p, a - (uintptr_t)p);
    if ((uintptr_t)p + size + ARENA_ALIGN > a + size)
        munmap((void *)(a + size), (uintptr_t)p + size + ARENA_ALIGN - (a + size));
    m->arena = (void *)a;
    m->arena_size = size;
#ifdef MADV_HUGEPAGE
    madvise(m->arena, size, MADV_HUGEPAGE); /* advice only: without THP it is still one region */
#endif
    int mapped = m->mapped;
    uint8_t *at = m->arena;
    bn_steps st = {m->progress, m->progress_user, hp->n_layer + 1, 0};
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        char what[32];
        snprintf(what, sizeof what, "layer %u", l);
        if (bn_steps_at(&st, l, what, m->src.name, e))
            return BN_E_CANCELLED;
        bn_layer *L = &m->layers[l];
        bn_mat *mats[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < 7; i++)
            copy_mat(mats[i], &at, mapped && !m->n_ternarized, evict);
    }
    if (bn_steps_at(&st, hp->n_layer, "output head", m->src.name, e))
        return BN_E_CANCELLED;
    /* In pieces of 16 MiB, each dropped from the mapping once copied: the
     * head is the largest tensor, and resident memory should not hold it
     * twice. */
    const uint8_t *src = m->head;
    for (uint64_t off = 0; off < m->head_bytes; off += (uint64_t)16 << 20) {
        uint64_t n = m->head_bytes - off < ((uint64_t)16 << 20) ? m->head_bytes - off : (uint64_t)16 << 20;
        memcpy(at + off, src + off, n);
        if (mapped) /* a tied embedding faults back in only the rows it looks up */
            drop_mapped(src + off, n, evict);
    }
    m->head = at;
    bn_steps_end(&st);
    return 1;
}
