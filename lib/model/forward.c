/* forward.c — the BitNet b1.58 forward pass (formats.md §1.2) with a KV
 * cache: embedding, per layer RMSNorm → q/k/v (one shared int8
 * quantization) → RoPE → causal GQA attention → sub-norm → o, RMSNorm →
 * gate/up (one shared quantization) → relu² (or silu) → sub-norm → down;
 * final norm and a full-precision output head.
 *
 * Tokens go through in batches of up to BN_KERN_MAX_N: each layer's weights
 * are read once per batch (prefill is a GEMM), decode is the n = 1 case.
 * A batch may hold tokens of several sequences, each at its own position:
 * the matrix steps take them all, attention takes each over its own
 * sequence's KV blocks (kvcache.h). Every step's arithmetic for a token is
 * the same whatever else is in the batch, so a sequence's logits are
 * bit-identical evaluated alone or with others (tests/unit/test_batch.c).
 * Everything outside the ternary kernels is f32; reductions whose length
 * grows with the model (RMS of a row) are summed in double so they stay as
 * close to the exact value as a reference can be. */
#include "cpu.h"
#include "kern_attn.h"
#include "kern_embd.h"
#include "kern_f16row.h"
#include "kern_head.h"
#include "kvcache.h"
#include "model.h"
#include "pool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB BN_KERN_MAX_N

/* A sequence: its blocks of the KV cache and the ids at its positions. */
typedef struct ctx_seq {
    int live;
    bn_kvseq kv;
    uint32_t *ids; /* n_ctx */
    uint32_t next; /* eval_prepare's scratch: the next position; UINT32_MAX outside */
} ctx_seq;

struct bn_ctx {
    const bn_model *m;
    const bn_kernels *kern;
    bn_ctx_opts o;
    bn_pool *pool;
    uint32_t n_ctx; /* positions per sequence */
    size_t kv_dim, q_dim;
    /* f32 or f16 blocks; K transposed for the score kernels (kern_attn.h) */
    bn_kvpool kv;
    ctx_seq *seq;   /* o.n_seq; sequence 0 always live */
    uint32_t *touched; /* eval_prepare's scratch: sequences in a batch, and their new positions */
    uint32_t *n_new;
    bn_kvseq **touched_kv;
    /* the batch now in the forward pass: each token's sequence and
     * position, where its K/V go (block, position in it), logits or not */
    uint32_t tid[NB], tseq[NB], tpos[NB];
    uint8_t *tblk[NB];
    int twant[NB];
    uint16_t *k16; /* NB rows: each batch token's K in f16, on its way into its block */
    /* f16 K/V: kv_bad[t], token t's K or V row held a value f16 cannot
     * (written by the thread that stores t's row, read after the step);
     * after a pass that stopped on one, the first such token and why */
    int kv_bad[NB];
    size_t bad_t;
    char bad_why[160];
    double *inv_freq; /* head_dim/2 RoPE frequencies (x 2 with sliding layers: theirs after) */
    float *rope_cs;   /* NB x head_dim (x 2 with sliding layers): each token's cos, then sin (one batch) */
    size_t n_rope;    /* sets of frequencies: 1, or 2 with sliding layers (model.swa_theta) */
    /* batch scratch */
    float *x, *xn, *qb, *kb, *vb, *att, *gb, *ub, *tmp;
    float *pn; /* NB x n_embd: a projection's own input norm (model.proj_norm), else NULL */
    int8_t *q8;
    float s8[NB];
    size_t ld8; /* stride of q8 rows and of xn rows */
    float *scores; /* per thread: group x n_ctx attention weights */
    float *rowbuf; /* per thread: n_embd (head rows, embedding rows) */
    int nth;
    bn_head_fn head; /* a SIMD head for this CPU, or NULL: the loop below */
    bn_att_fn att_fn; /* attention of one token over one KV head */
    bn_f16_row_fn f16_row; /* K/V rows into the f16 cache */
    int taken; /* a batcher has taken it over (bn_ctx_take) */
    int generators; /* live bn_generators using it (a batcher would empty it under them) */
};

/* ---------------------------------------------------------- small math */

static void rmsnorm(const float *x, const float *w, size_t n, float eps, float *y)
{
    /* 8 interleaved partial sums in a fixed order: one running sum was a
     * chain of dependent double adds, ~4 cycles an element, and it runs
     * on one thread while the others wait for the next step. Named
     * variables, not an array: GCC kept an array of them in memory, each
     * add waiting on the last one's store (2x slower: 155 against 79 ns
     * at 256 wide, every token of a pass pays it ~25 times). */
    double p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        p0 += (double)x[i] * x[i];
        p1 += (double)x[i + 1] * x[i + 1];
        p2 += (double)x[i + 2] * x[i + 2];
        p3 += (double)x[i + 3] * x[i + 3];
        p4 += (double)x[i + 4] * x[i + 4];
        p5 += (double)x[i + 5] * x[i + 5];
        p6 += (double)x[i + 6] * x[i + 6];
        p7 += (double)x[i + 7] * x[i + 7];
    }
    for (; i < n; i++)
        p0 += (double)x[i] * x[i];
    double ss = ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7));
    float r = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (i = 0; i + 8 <= n; i += 8) {
        /* loads before stores: y may be x (in place), and so it vectorizes */
        float b[8];
        for (size_t l = 0; l < 8; l++)
            b[l] = x[i + l] * r * w[i + l];
        memcpy(y + i, b, sizeof b);
    }
    for (; i < n; i++)
        y[i] = x[i] * r * w[i];
}

/* In 8 interleaved partial sums: a fixed order (results repeat exactly)
 * that compilers can vectorize without -ffast-math. */
static float dot_f32(const float *a, const float *b, size_t n)
{
    float p[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t l = 0; l < 8; l++)
            p[l] += a[i + l] * b[i + l];
    for (; i < n; i++)
        p[0] += a[i] * b[i];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

/* The loops below run on one thread between two parallel steps. Written
 * in blocks of 8 over restrict pointers, -O2 turns them into vector code
 * (plain loops stayed scalar, reloading c->x after every store). */
static void add_rows(float *restrict x, const float *restrict y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t l = 0; l < 8; l++)
            x[i + l] += y[i + l];
    for (; i < n; i++)
        x[i] += y[i];
}

static float relu2(float g)
{
    float r = g > 0 ? g : 0;
    return r * r;
}

/* g = act(g)·u: relu² (BitNet) or silu. */
/* transformers' gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
static float gelu_tanh(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

static void gated_act(float *restrict g, const float *restrict u, size_t n, int silu, int gelu)
{
    if (gelu) {
        for (size_t i = 0; i < n; i++)
            g[i] = gelu_tanh(g[i]) * u[i];
        return;
    }
    if (silu) {
        for (size_t i = 0; i < n; i++)
            g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float r[8];
        for (size_t l = 0; l < 8; l++)
            r[l] = g[i + l] > 0 ? g[i + l] : 0; /* relu2's test, written out so it vectorizes (a call did not) */
        for (size_t l = 0; l < 8; l++)
            g[i + l] = r[l] * r[l] * u[i + l];
    }
    for (; i < n; i++)
        g[i] = relu2(g[i]) * u[i];
}

static size_t elem_size(uint32_t type)
{
    return type == BN_F32 ? 4 : 2;
}

/* One row of the embedding or head to f32. bf16 (the usual case) is done
 * here, a shift per element the compiler vectorizes: the head is read in
 * full for every token, so a call per element would cost more than the
 * dot products. */
static void row_to_f32(uint32_t type, const void *src, float *dst, size_t n)
{
    if (type == BN_BF16) {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)h[i] << 16;
            memcpy(&dst[i], &u, 4);
        }
        return;
    }
    bn_to_f32(type, src, dst, n);
}

/* ------------------------------------------------------ parallel steps */

/* Work claimed in chunks of rows from one counter per step. A static
 * split left a thread idle whenever the other started late (woken from a
 * poll) or ran slower (a busy neighbour on the machine), on each of the
 * ~150 steps of a token; claimed chunks let both finish together. Chunks
 * are whole groups of 4 rows (the kernels take rows 4 at a time, from a
 * chunk's quarters when it is long), and a row's result does not depend
 * on which thread computes it or with which neighbours. */
typedef struct chunks {
    _Atomic size_t next;
    int parts;
    size_t rows[3];  /* by part */
    size_t per[3];   /* rows per chunk, by part */
    size_t first[4]; /* index of each part's first chunk; first[parts] = total */
} chunks;

enum { CHUNKS_PER_THREAD = 4 };

/* Parts of rows[i] rows each: one chunk per part on one thread, else about
 * CHUNKS_PER_THREAD·nth per part (a few per thread, so a thread's kernel
 * calls stay long). */
static void chunks_init(chunks *ch, const size_t *rows, int parts, int nth, size_t min_rows)
{
    atomic_init(&ch->next, 0);
    ch->parts = parts;
    ch->first[0] = 0;
    for (int i = 0; i < parts; i++) {
        size_t per = ch->rows[i] = rows[i];
        if (nth > 1) {
            per = (rows[i] + CHUNKS_PER_THREAD * (size_t)nth - 1) / (CHUNKS_PER_THREAD * (size_t)nth);
            per = per < min_rows ? min_rows : (per + 3) / 4 * 4;
        }
        ch->per[i] = per ? per : 1;
        ch->first[i + 1] = ch->first[i] + (rows[i] + ch->per[i] - 1) / ch->per[i];
    }
}

/* The next chunk: its part and rows [r0, r1) of that part; 0 when none is left. */
static int chunk_next(chunks *ch, int *part, size_t *r0, size_t *r1)
{
    size_t it = atomic_fetch_add_explicit(&ch->next, 1, memory_order_relaxed);
    if (it >= ch->first[ch->parts])
        return 0;
    int i = 0;
    while (it >= ch->first[i + 1])
        i++;
    *part = i;
    *r0 = (it - ch->first[i]) * ch->per[i];
    *r1 = *r0 + ch->per[i] < ch->rows[i] ? *r0 + ch->per[i] : ch->rows[i];
    return 1;
}

/* Up to three projections that share one input (q/k/v, gate/up). */
typedef struct mm_job {
    bn_ctx *c;
    const bn_mat *w[3];
    float *y[3];
    int n_mat;
    size_t n;       /* tokens */
    const float *x; /* float input (no_act_quant) */
    chunks ch;
} mm_job;

static void mm_run(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    const bn_kernels *k = j->c->kern;
    int i;
    size_t r0, r1;
    while (chunk_next(&j->ch, &i, &r0, &r1)) {
        const bn_mat *w = j->w[i];
        if (j->x)
            k->gemm_f32(w->data, w->cols, r0, r1, w->beta, j->x, j->n, j->c->ld8, j->y[i], w->rows);
        else if (j->n == 1)
            k->gemv(w->data, w->cols, r0, r1, w->beta, j->c->q8, j->c->s8[0], j->y[i]);
        else
            k->gemm(w->data, w->cols, r0, r1, w->beta, j->c->q8, j->c->s8, j->n, j->c->ld8, j->y[i], w->rows);
    }
}

/* Token t's row of k floats into the shared projection input: int8 (or
 * a float copy with --no-act-quant). */
static void prepare_input(bn_ctx *c, const float *row, size_t k, size_t t)
{
    if (c->o.no_act_quant)
        memcpy(c->xn + t * c->ld8, row, k * sizeof *row);
    else
        c->s8[t] = c->kern->quantize(row, k, c->q8 + t * c->ld8);
}

/* Runs the projections of the n tokens prepare_input gave. */
static void project(bn_ctx *c, size_t n, const bn_mat *a, float *ya, const bn_mat *b, float *yb, const bn_mat *d,
                    float *yd)
{
    mm_job j = {.c = c, .n = n, .w = {a, b, d}, .y = {ya, yb, yd}, .n_mat = d ? 3 : b ? 2 : 1};
    size_t rows[3];
    for (int i = 0; i < j.n_mat; i++)
        rows[i] = j.w[i]->rows;
    chunks_init(&j.ch, rows, j.n_mat, c->nth, 64);
    if (c->o.no_act_quant)
        j.x = c->xn;
    bn_pool_run(c->pool, mm_run, &j);
}

typedef struct att_job {
    bn_ctx *c;
    uint32_t layer;
    size_t n;
    size_t per; /* query heads per task */
} att_job;

/* Query heads per attention task. A whole KV group per task loads (and
 * widens from f16) each K/V row once for all its query heads; but when
 * the tasks do not divide among the threads (2B4T decode: 5 KV heads on
 * 2 threads, 3 against 2) groups are split until they do, or into single
 * heads. A head's arithmetic does not depend on the others in its task,
 * so results are the same either way. */
static size_t att_heads_per_task(size_t tasks, size_t group, int nth)
{
    if (nth == 1 || tasks % (size_t)nth == 0 || tasks >= 8 * (size_t)nth)
        return group;
    for (size_t parts = 2; parts <= group; parts++)
        if (group % parts == 0 && tasks * parts % (size_t)nth == 0)
            return group / parts;
    return 1;
}

static void att_run(void *arg, int ith, int nth)
{
    att_job *j = arg;
    bn_ctx *c = j->c;
    const bn_hparams *hp = &c->m->hp;
    size_t hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, es = c->o.kv_f16 ? 2 : 4;
    size_t parts = (group + j->per - 1) / j->per, per_tok = hp->n_head_kv * parts;
    for (size_t task = (size_t)ith; task < j->n * per_tok; task += (size_t)nth) {
        size_t t = task / per_tok, g = task % per_tok / parts, h0 = task % parts * j->per;
        size_t heads = group - h0 < j->per ? group - h0 : j->per;
        bn_att_task a = {
            .q = c->qb + t * c->q_dim + (g * group + h0) * hd,
            .blk = (const uint8_t *const *)c->seq[c->tseq[t]].kv.ptr,
            .bs = BN_KV_BLOCK,
            .koff = ((size_t)j->layer * c->kv_dim + g * hd) * BN_KV_BLOCK * es,
            .voff = c->kv.v_off + ((size_t)j->layer * BN_KV_BLOCK * c->kv_dim + g * hd) * es,
            .ld = c->kv_dim,
            .hd = hd,
            .g = heads,
            .n_pos = (size_t)c->tpos[t] + 1, /* causal: its sequence's positions 0..pos */
            .f16 = c->o.kv_f16,
            .scale = 1.0f / sqrtf((float)hd),
            .sc = c->scores + (size_t)ith * group * c->n_ctx,
            .out = c->att + t * c->q_dim + (g * group + h0) * hd,
        };
        /* a sliding layer sees the last swa positions, itself included */
        if (bn_hparams_sliding(hp, j->layer) && a.n_pos > hp->swa)
            bn_att_scalar_window(&a, a.n_pos - hp->swa);
        else
            c->att_fn(&a);
    }
}

typedef struct head_job {
    bn_ctx *c;
    const float *h; /* normed rows, n_embd apart */
    size_t n;
    float *logits;  /* n x n_vocab */
    chunks ch;
} head_job;

static void head_run(void *arg, int ith, int nth)
{
    head_job *j = arg;
    const bn_model *m = j->c->m;
    size_t d = m->hp.n_embd, V = m->hp.n_vocab, es = elem_size(m->head_type), r0, r1;
    float *row = j->c->rowbuf + (size_t)ith * (d > m->hp.head_dim ? d : m->hp.head_dim);
    int part;
    while (chunk_next(&j->ch, &part, &r0, &r1)) {
        if (j->c->head) {
            j->c->head(m->head, V, d, r0, r1, j->h, j->n, j->logits, V);
            continue;
        }
        for (size_t r = r0; r < r1; r++) {
            /* One head row converted at a time: the table is never copied. */
            row_to_f32(m->head_type, (const uint8_t *)m->head + r * d * es, row, d);
            for (size_t t = 0; t < j->n; t++)
                j->logits[t * V + r] = dot_f32(row, j->h + t * d, d);
        }
    }
}

/* --------------------------------------------------------------- RoPE */

/* cos and sin of every frequency at pos into cs[0..half) and cs[half..hd):
 * once per token, shared by its q and k heads. */
static void rope_angles(const bn_ctx *c, uint32_t pos, float *cs)
{
    size_t half = c->m->hp.head_dim / 2;
    for (size_t s = 0; s < c->n_rope; s++, cs += 2 * half)
        for (size_t i = 0; i < half; i++) {
            double ang = (double)pos * c->inv_freq[s * half + i];
            cs[i] = (float)cos(ang);
            cs[half + i] = (float)sin(ang);
        }
}

/* Frequency i of head_dim/2. With llama3 scaling (model.rope_scaling) the
 * long wavelengths (beyond original_context / low_freq_factor) are divided
 * by the factor, the short ones (below original_context / high_freq_factor)
 * kept, and those between interpolated, as Llama 3.1 was trained. */
static double rope_freq(const bn_hparams *hp, size_t i)
{
    double f = pow((double)hp->rope_theta, -2.0 * (double)i / (double)hp->head_dim);
    if (!hp->rope_llama3)
        return f;
    double wavelen = 6.283185307179586 / f, orig = hp->rope_orig_ctx; /* 2π / f */
    if (wavelen < orig / hp->rope_high_freq)
        return f;
    if (wavelen > orig / hp->rope_low_freq)
        return f / hp->rope_factor;
    double smooth = (orig / wavelen - hp->rope_low_freq) / ((double)hp->rope_high_freq - hp->rope_low_freq);
    return (1 - smooth) * f / hp->rope_factor + smooth * f;
}

static void rope(const bn_ctx *c, float *v, size_t n_heads, const float *cs)
{
    const bn_hparams *hp = &c->m->hp;
    size_t hd = hp->head_dim, half = hd / 2;
    for (size_t h = 0; h < n_heads; h++) {
        float *x = v + h * hd;
        for (size_t i = 0; i < half; i++) {
            /* neox: i with i + hd/2 (HF rotate_half); adjacent: 2i with 2i+1 */
            size_t a = hp->rope_neox ? i : 2 * i, b = hp->rope_neox ? i + half : 2 * i + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * cs[i] - x1 * cs[half + i];
            x[b] = x1 * cs[i] + x0 * cs[half + i];
        }
    }
}

/* -------------------------------------------------------------- a batch */

/* 1 when an f16 row holds inf or NaN (exponent all ones): a value at or
 * beyond 65520 in magnitude (65504, f16's largest, rounded up), or one
 * that was not finite already. In blocks of 8 lanes so that -O2 makes it
 * vector code: no branch per element, a few instructions per 8 values
 * beside the conversion's. */
static int f16_row_bad(const uint16_t *h, size_t n)
{
    uint16_t acc[8] = {0}; /* 16-bit lanes, as the values: no widening */
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t l = 0; l < 8; l++)
            acc[l] |= (uint16_t)((h[i + l] & 0x7c00u) == 0x7c00u);
    for (; i < n; i++)
        acc[0] |= (uint16_t)((h[i] & 0x7c00u) == 0x7c00u);
    return (acc[0] | acc[1] | acc[2] | acc[3] | acc[4] | acc[5] | acc[6] | acc[7]) != 0;
}

/* Batch token t's K and V of one layer into its block (kvcache.h): K
 * element i (kv head i / head_dim, dimension i % head_dim) at
 * (layer·kv_dim + i)·BN_KV_BLOCK + p, V as a row; t's row of k16 holds its
 * f16 K on the way. In f16, kv_bad[t] says whether a value overflowed:
 * stored as inf, it would make every later score of the sequence NaN
 * (inf - inf in the dot product or the softmax), silently. */
static void store_kv(bn_ctx *c, uint32_t layer, const float *k, const float *v, size_t t)
{
    size_t p = c->tpos[t] % BN_KV_BLOCK, kt = (size_t)layer * c->kv_dim * BN_KV_BLOCK + p;
    size_t idx = ((size_t)layer * BN_KV_BLOCK + p) * c->kv_dim;
    uint8_t *blk = c->tblk[t];
    if (!c->o.kv_f16) {
        float *kc = (float *)blk;
        for (size_t i = 0; i < c->kv_dim; i++)
            kc[kt + i * BN_KV_BLOCK] = k[i];
        memcpy((float *)(blk + c->kv.v_off) + idx, v, c->kv_dim * sizeof *v);
        return;
    }
    uint16_t *kc = (uint16_t *)blk, *k16 = c->k16 + t * c->kv_dim, *v16 = (uint16_t *)(blk + c->kv.v_off) + idx;
    c->f16_row(k, k16, c->kv_dim);
    for (size_t i = 0; i < c->kv_dim; i++)
        kc[kt + i * BN_KV_BLOCK] = k16[i];
    c->f16_row(v, v16, c->kv_dim);
    c->kv_bad[t] = f16_row_bad(k16, c->kv_dim) || f16_row_bad(v16, c->kv_dim);
}

/* Why token t's K or V did not fit f16 in layer l, from its f32 rows
 * (still in kb and vb): the first value that did not, into bad_why. */
static void describe_kv_bad(bn_ctx *c, uint32_t l, size_t t)
{
    const float *row[2] = {c->kb + t * c->kv_dim, c->vb + t * c->kv_dim};
    c->bad_t = t;
    /* (never left as is: the conversion and the test below agree on every value) */
    snprintf(c->bad_why, sizeof c->bad_why, "layer %u: a K or V value is beyond the range of the f16 KV cache", l);
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < c->kv_dim; i++) {
            float x = row[r][i];
            if (fabsf(x) < 65520.0f)
                continue;
            if (isfinite(x))
                snprintf(c->bad_why, sizeof c->bad_why,
                         "layer %u: a %c value (%g) is beyond the range of the f16 KV cache (65504): use f32 K/V",
                         l, "KV"[r], (double)x);
            else /* the model overflowed before the cache: f32 K/V would hold it as it is */
                snprintf(c->bad_why, sizeof c->bad_why, "layer %u: a %c value is not finite (%g)", l, "KV"[r],
                         (double)x);
            return;
        }
}

/* The per-token work between two parallel matrix steps (norms, the
 * gate, RoPE and the cache, quantization): in a prefill batch tokens are
 * shared among the threads, since on one thread it kept the others
 * waiting (~7% of a 2-thread pp512). Every token's arithmetic is the same
 * whichever thread does it. */
enum tok_step {
    STEP_ATTN_IN, /* x → attn_norm → tmp → q8 */
    STEP_ROPE_KV, /* RoPE of q and k, k and v into the cache */
    STEP_ATT_OUT, /* att → attn_sub_norm (in place) → q8 */
    STEP_FFN_IN,  /* x += tmp, x → ffn_norm → tmp → q8 */
    STEP_FFN_MID, /* gb = act(gb)·ub → ffn_sub_norm (in place) → q8 */
    STEP_PROJ_IN, /* with model.proj_norm: tmp → projection p's input norm → pn → q8 */
};

typedef struct tok_job {
    bn_ctx *c;
    const bn_layer *L;
    uint32_t l;
    size_t n;
    enum tok_step step;
    int proj; /* STEP_PROJ_IN: which projection (bn_proj_names order) */
} tok_job;

/* With model.proj_norm every projection normalizes its own input (HF
 * BitLinear's rms_norm), so q/k/v and gate/up no longer share one int8
 * input: the shared norm's output stays in tmp and STEP_PROJ_IN makes
 * each projection's. o and down have one projection each: in place. */
static void tok_one(bn_ctx *c, const bn_layer *L, uint32_t l, enum tok_step step, int proj, size_t t)
{
    const bn_hparams *hp = &c->m->hp;
    size_t d = hp->n_embd, ff = hp->n_ff, qd = c->q_dim, kvd = c->kv_dim;
    float eps = hp->norm_eps, *x = c->x + t * d, *tmp = c->tmp + t * d;
    switch (step) {
    case STEP_ATTN_IN:
        rmsnorm(x, L->attn_norm, d, eps, tmp);
        if (!L->in_norm[0])
            prepare_input(c, tmp, d, t);
        break;
    case STEP_PROJ_IN:
        rmsnorm(tmp, L->in_norm[proj], d, hp->proj_norm_eps, c->pn + t * d);
        prepare_input(c, c->pn + t * d, d, t);
        break;
    case STEP_ROPE_KV: {
        const float *cs = c->rope_cs + (t * c->n_rope + bn_hparams_sliding(hp, l)) * hp->head_dim;
        if (L->q_norm) { /* model.qk_norm: each head RMS-normalized before RoPE */
            size_t hd = hp->head_dim;
            for (size_t h = 0; h < hp->n_head; h++)
                rmsnorm(c->qb + t * qd + h * hd, L->q_norm, hd, eps, c->qb + t * qd + h * hd);
            for (size_t h = 0; h < hp->n_head_kv; h++)
                rmsnorm(c->kb + t * kvd + h * hd, L->k_norm, hd, eps, c->kb + t * kvd + h * hd);
        }
        rope(c, c->qb + t * qd, hp->n_head, cs);
        rope(c, c->kb + t * kvd, hp->n_head_kv, cs);
        store_kv(c, l, c->kb + t * kvd, c->vb + t * kvd, t);
        break;
    }
    case STEP_ATT_OUT: {
        float *a = c->att + t * qd;
        if (L->attn_sub_norm)
            rmsnorm(a, L->attn_sub_norm, qd, eps, a);
        if (L->in_norm[3])
            rmsnorm(a, L->in_norm[3], qd, hp->proj_norm_eps, a);
        prepare_input(c, a, qd, t);
        break;
    }
    case STEP_FFN_IN:
        if (L->attn_post_norm) /* model.post_norms: the attention output normed before the residual */
            rmsnorm(tmp, L->attn_post_norm, d, eps, tmp);
        add_rows(x, tmp, d);
        rmsnorm(x, L->ffn_norm, d, eps, tmp);
        if (!L->in_norm[4])
            prepare_input(c, tmp, d, t);
        break;
    case STEP_FFN_MID: {
        float *g = c->gb + t * ff;
        gated_act(g, c->ub + t * ff, ff, hp->act_silu, hp->act_gelu);
        if (L->ffn_sub_norm)
            rmsnorm(g, L->ffn_sub_norm, ff, eps, g);
        if (L->in_norm[6])
            rmsnorm(g, L->in_norm[6], ff, hp->proj_norm_eps, g);
        prepare_input(c, g, ff, t);
        break;
    }
    }
}

/* A thread takes a run of consecutive tokens: their K elements share
 * cache lines of the transposed cache, which threads taking every other
 * token would pass back and forth. */
static void tok_run(void *arg, int ith, int nth)
{
    tok_job *j = arg;
    size_t t0 = j->n * (size_t)ith / (size_t)nth, t1 = j->n * (size_t)(ith + 1) / (size_t)nth;
    for (size_t t = t0; t < t1; t++)
        tok_one(j->c, j->L, j->l, j->step, j->proj, t);
}

static void tok_steps_p(bn_ctx *c, const bn_layer *L, uint32_t l, size_t n, enum tok_step step, int proj)
{
    tok_job j = {c, L, l, n, step, proj};
    if (n == 1 || c->nth == 1)
        tok_run(&j, 0, 1); /* decode: not worth waking a thread */
    else
        bn_pool_run(c->pool, tok_run, &j);
}

static void tok_steps(bn_ctx *c, const bn_layer *L, uint32_t l, size_t n, enum tok_step step)
{
    tok_steps_p(c, L, l, n, step, 0);
}

/* Projection p alone, on its own input norm of tmp (model.proj_norm). */
static void project_own(bn_ctx *c, const bn_layer *L, uint32_t l, size_t n, int p, const bn_mat *w, float *y)
{
    tok_steps_p(c, L, l, n, STEP_PROJ_IN, p);
    project(c, n, w, y, NULL, NULL, NULL, NULL);
}

/* 0, or -1 when a token's K or V did not fit the f16 cache (bad_t and
 * bad_why say which and why): the pass stops there. */
static int layer_forward(bn_ctx *c, uint32_t l, size_t n)
{
    const bn_hparams *hp = &c->m->hp;
    const bn_layer *L = &c->m->layers[l];
    size_t d = hp->n_embd;

    tok_steps(c, L, l, n, STEP_ATTN_IN);
    if (L->in_norm[0]) {
        project_own(c, L, l, n, 0, &L->q, c->qb);
        project_own(c, L, l, n, 1, &L->k, c->kb);
        project_own(c, L, l, n, 2, &L->v, c->vb);
    } else
        project(c, n, &L->q, c->qb, &L->k, c->kb, &L->v, c->vb);
    tok_steps(c, L, l, n, STEP_ROPE_KV);
    for (size_t t = 0; c->o.kv_f16 && t < n; t++)
        if (c->kv_bad[t]) {
            describe_kv_bad(c, l, t);
            return -1;
        }
    att_job aj = {c, l, n, 0};
    aj.per = att_heads_per_task(n * hp->n_head_kv, hp->n_head / hp->n_head_kv, c->nth);
    bn_pool_run(c->pool, att_run, &aj);
    tok_steps(c, L, l, n, STEP_ATT_OUT);
    project(c, n, &L->o, c->tmp, NULL, NULL, NULL, NULL);
    tok_steps(c, L, l, n, STEP_FFN_IN);
    if (L->in_norm[4]) {
        project_own(c, L, l, n, 4, &L->gate, c->gb);
        project_own(c, L, l, n, 5, &L->up, c->ub);
    } else
        project(c, n, &L->gate, c->gb, &L->up, c->ub, NULL, NULL);
    tok_steps(c, L, l, n, STEP_FFN_MID);
    project(c, n, &L->down, c->tmp, NULL, NULL, NULL, NULL);
    for (size_t t = 0; L->ffn_post_norm && t < n; t++) /* model.post_norms: the FFN output too */
        rmsnorm(c->tmp + t * d, L->ffn_post_norm, d, hp->norm_eps, c->tmp + t * d);
    add_rows(c->x, c->tmp, n * d);
    return 0;
}

/* The n tokens set_token has described. logits: a row for every token
 * that wants one, in batch order (NULL: none). -1: a K or V value did not
 * fit the f16 cache (layer_forward), the rest of the pass not run. */
static int batch_forward(bn_ctx *c, size_t n, float *logits)
{
    const bn_model *m = c->m;
    size_t d = m->hp.n_embd;
    for (size_t t = 0; t < n; t++) {
        bn_head_row(m->embd_type, m->embd, m->hp.n_vocab, d, c->tid[t], c->x + t * d);
        if (m->hp.embd_scale != 1) /* model.embedding_scale (Gemma: sqrt(d)) */
            for (size_t i = 0; i < d; i++)
                c->x[t * d + i] *= m->hp.embd_scale;
        /* the angles of a position are the same in every layer */
        rope_angles(c, c->tpos[t], c->rope_cs + t * c->n_rope * m->hp.head_dim);
    }
    /* a model larger than memory: the next layer comes from disk meanwhile */
    bn_model_readahead(m, 0);
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        bn_model_readahead(m, l + 1);
        int bad = layer_forward(c, l, n);
        bn_model_release(m, l);
        if (bad) {
            bn_model_readahead(m, 0);
            return -1;
        }
    }
    bn_model_readahead(m, 0); /* the next pass's */
    if (!logits)
        return 0;
    size_t rows = 0;
    /* with embeddings the normed states are the output, no head */
    float *normed = c->o.embeddings ? logits : c->tmp;
    for (size_t t = 0; t < n; t++)
        if (c->twant[t])
            rmsnorm(c->x + t * d, m->out_norm, d, m->hp.norm_eps, normed + rows++ * d);
    if (!rows || c->o.embeddings)
        return 0;
    head_job hj = {c, c->tmp, rows, logits, {0}};
    size_t V = m->hp.n_vocab;
    chunks_init(&hj.ch, &V, 1, c->nth, 256);
    bn_pool_run(c->pool, head_run, &hj);
    bn_model_release(m, m->hp.n_layer);
    return 0;
}

/* Batch token t: id at position pos of sequence seq, whose blocks are in
 * place (bn_kvseq_grow). */
static void set_token(bn_ctx *c, size_t t, uint32_t id, uint32_t seq, uint32_t pos, int want)
{
    c->tid[t] = id;
    c->tseq[t] = seq;
    c->tpos[t] = pos;
    c->tblk[t] = c->seq[seq].kv.ptr[pos / BN_KV_BLOCK];
    c->twant[t] = want;
}

/* KV blocks for n[i] more positions of each of the k sequences in
 * c->touched: all of them or, failing, none. */
static int make_room(bn_ctx *c, size_t k, const uint32_t *n, bn_err *e)
{
    for (size_t i = 0; i < k; i++)
        c->touched_kv[i] = &c->seq[c->touched[i]].kv;
    int rc = bn_kvpool_reserve(&c->kv, bn_kvpool_need(&c->kv, c->touched_kv, n, k), e);
    if (rc)
        return rc;
    for (size_t i = 0; i < k; i++)
        bn_kvseq_grow(&c->kv, c->touched_kv[i], n[i]);
    return 0;
}

/* -------------------------------------------------------------- public */

int bn_ctx_eval(bn_ctx *c, const uint32_t *ids, size_t n, float *logits, unsigned flags, bn_err *e)
{
    if (!c || (n && !ids))
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_eval: %s is NULL", c ? "ids" : "the context");
    if (flags & ~(unsigned)BN_EVAL_ALL_LOGITS) /* as bn_tokenize: a flag of a later libbn is not ignored */
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_eval: unknown flags 0x%x", flags);
    const bn_hparams *hp = &c->m->hp;
    ctx_seq *s = &c->seq[0];
    uint32_t pos = s->kv.n_pos, n32 = (uint32_t)n;
    size_t width = c->o.embeddings ? hp->n_embd : hp->n_vocab; /* of an output row */
    int all = (flags & BN_EVAL_ALL_LOGITS) != 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= hp->n_vocab)
            return bn_fail_code(e, BN_E_INVALID, "token id %u is outside the vocabulary (0..%u)", ids[i],
                                hp->n_vocab - 1);
    if (n > c->n_ctx - pos)
        return bn_fail_code(e, BN_E_CONTEXT_FULL, "%zu more tokens do not fit the context (%u of %u positions used)",
                            n, pos, c->n_ctx);
    if (!n)
        return 0;
    c->touched[0] = 0;
    int rc = make_room(c, 1, &n32, e);
    if (rc)
        return rc;
    memcpy(s->ids + pos, ids, n * sizeof *ids);
    for (size_t off = 0; off < n; off += NB) {
        size_t nb = n - off < NB ? n - off : NB;
        float *lg = NULL;
        if (logits && all)
            lg = logits + off * width;
        else if (logits && off + nb == n)
            lg = logits;
        for (size_t t = 0; t < nb; t++)
            set_token(c, t, ids[off + t], 0, pos + (uint32_t)(off + t), all || off + t == n - 1);
        if (batch_forward(c, nb, lg)) {
            /* none of the call's positions is kept (n_pos has not moved):
             * the blocks taken for them go back */
            bn_kvseq_truncate(&c->kv, &s->kv, pos);
            uint32_t at = c->tpos[c->bad_t];
            c->bad_t += off;
            return bn_fail_code(e, BN_E_KV_RANGE, "position %u: %s", at, c->bad_why);
        }
    }
    s->kv.n_pos = pos + n32;
    return 0;
}

/* A batch's checks, before anything changes: ids, live sequences, each
 * sequence's tokens at its next positions in order, inside the context;
 * then its KV blocks. */
static int eval_prepare(bn_ctx *c, const bn_eval_tok *t, size_t n, size_t *k_out, bn_err *e)
{
    const bn_hparams *hp = &c->m->hp;
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (t[i].id >= hp->n_vocab) {
            rc = bn_fail_code(e, BN_E_INVALID, "token %zu: id %u is outside the vocabulary (0..%u)", i, t[i].id,
                              hp->n_vocab - 1);
            break;
        }
        if (t[i].seq >= c->o.n_seq || !c->seq[t[i].seq].live) {
            rc = bn_fail_code(e, BN_E_INVALID, "token %zu: sequence %u does not exist", i, t[i].seq);
            break;
        }
        ctx_seq *s = &c->seq[t[i].seq];
        if (s->next == UINT32_MAX) {
            s->next = s->kv.n_pos;
            c->touched[k++] = t[i].seq;
        }
        if (t[i].pos != s->next)
            rc = bn_fail_code(e, BN_E_INVALID, "token %zu: position %u, but sequence %u is at %u", i, t[i].pos,
                              t[i].seq, s->next);
        else if (s->next >= c->n_ctx)
            rc = bn_fail_code(e, BN_E_CONTEXT_FULL, "token %zu: sequence %u is full (%u positions)", i, t[i].seq,
                              c->n_ctx);
        s->next++;
    }
    for (size_t i = 0; i < k; i++) {
        ctx_seq *s = &c->seq[c->touched[i]];
        c->n_new[i] = s->next - s->kv.n_pos;
        s->next = UINT32_MAX;
    }
    if (!rc)
        rc = make_room(c, k, c->n_new, e);
    *k_out = k;
    return rc;
}

int bn_ctx_eval_batch(bn_ctx *c, const bn_eval_tok *t, size_t n, float *logits, bn_err *e)
{
    if (!c || (!t && n))
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_eval_batch: %s is NULL", c ? "t" : "the context");
    size_t k, V = c->o.embeddings ? c->m->hp.n_embd : c->m->hp.n_vocab; /* of an output row */
    int rc = eval_prepare(c, t, n, &k, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        c->seq[t[i].seq].ids[t[i].pos] = t[i].id;
    for (size_t off = 0; off < n; off += NB) {
        size_t nb = n - off < NB ? n - off : NB, rows = 0;
        for (size_t i = 0; i < nb; i++) {
            const bn_eval_tok *ti = &t[off + i];
            set_token(c, i, ti->id, ti->seq, ti->pos, ti->logits != 0);
            rows += ti->logits != 0;
        }
        if (batch_forward(c, nb, logits && rows ? logits : NULL)) {
            /* every sequence as it was: no position counted, new blocks back */
            for (size_t i = 0; i < k; i++)
                bn_kvseq_truncate(&c->kv, &c->seq[c->touched[i]].kv, c->seq[c->touched[i]].kv.n_pos);
            c->bad_t += off;
            return bn_fail_code(e, BN_E_KV_RANGE, "token %zu (sequence %u, position %u): %s", c->bad_t,
                                t[c->bad_t].seq, t[c->bad_t].pos, c->bad_why);
        }
        if (logits)
            logits += rows * V;
    }
    for (size_t i = 0; i < k; i++)
        c->seq[c->touched[i]].kv.n_pos += c->n_new[i];
    return 0;
}

bn_ctx *bn_ctx_new_opts(const bn_model *m, const bn_ctx_opts *o, bn_err *e)
{
    const bn_hparams *hp = &m->hp;
    bn_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    c->kern = m->kern;
    c->o = *o;
    c->n_ctx = o->n_ctx ? o->n_ctx : hp->n_ctx;
    c->q_dim = (size_t)hp->n_head * hp->head_dim;
    c->kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    size_t d = hp->n_embd, ff = hp->n_ff, qd = c->q_dim;
    size_t wide = d > ff ? d : ff;
    if (qd > wide)
        wide = qd;
    /* q8's rows 64-byte aligned: a GEMV whose activations outgrow L1
     * (the 100B shape's ffn_down, 44.5 KiB) reads them from L2, and
     * unaligned loads, each touching two lines, halved its speed (18
     * against 35 GB/s, one Zen 5 thread) */
    c->ld8 = (wide + 63) / 64 * 64;
    if (!(c->pool = bn_pool_new(o->n_threads, e)))
        goto fail;
    c->nth = bn_pool_size(c->pool);
    size_t es = o->kv_f16 ? 2 : 4;
    size_t rowlen = d > hp->head_dim ? d : hp->head_dim;
    if (!c->o.n_seq)
        c->o.n_seq = 1;
    /* what a contiguous cache of every sequence would take, allocated as
     * used: the default, and the most a budget can use (each sequence
     * holds at most n_ctx positions, shared blocks counted once), so a
     * budget of "no limit" does not size tables for blocks never used */
    uint64_t full = (uint64_t)c->o.n_seq * bn_kv_blocks_for(c->n_ctx) * 2 * hp->n_layer *
                    c->kv_dim * BN_KV_BLOCK * es;
    uint64_t budget = c->o.kv_budget && c->o.kv_budget < full ? c->o.kv_budget : full;
    if (bn_kvpool_init(&c->kv, hp->n_layer, c->kv_dim, es, budget, e))
        goto fail;
    c->seq = calloc(c->o.n_seq, sizeof *c->seq);
    c->touched = malloc(c->o.n_seq * sizeof *c->touched);
    c->n_new = malloc(c->o.n_seq * sizeof *c->n_new);
    c->touched_kv = malloc(c->o.n_seq * sizeof *c->touched_kv);
    if (!c->seq || !c->touched || !c->n_new || !c->touched_kv) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto fail;
    }
    if (bn_ctx_seq_new(c, e) < 0)
        goto fail;
    c->k16 = malloc(NB * c->kv_dim * sizeof *c->k16);
    c->n_rope = hp->swa ? 2 : 1;
    c->inv_freq = malloc(c->n_rope * hp->head_dim / 2 * sizeof *c->inv_freq);
    c->rope_cs = malloc(NB * c->n_rope * hp->head_dim * sizeof *c->rope_cs);
    c->x = malloc(NB * d * sizeof(float));
    c->tmp = malloc(NB * wide * sizeof(float));
    c->xn = malloc(NB * c->ld8 * sizeof(float));
    c->qb = malloc(NB * qd * sizeof(float));
    c->att = malloc(NB * qd * sizeof(float));
    c->kb = malloc(NB * c->kv_dim * sizeof(float));
    c->vb = malloc(NB * c->kv_dim * sizeof(float));
    c->gb = malloc(NB * ff * sizeof(float));
    c->ub = malloc(NB * ff * sizeof(float));
    c->pn = hp->proj_norm ? malloc(NB * d * sizeof(float)) : NULL;
    c->q8 = aligned_alloc(64, NB * c->ld8);
    c->scores = malloc((size_t)c->nth * (hp->n_head / hp->n_head_kv) * c->n_ctx * sizeof(float));
    c->rowbuf = malloc((size_t)c->nth * rowlen * sizeof(float));
    if (!c->k16 || !c->inv_freq || !c->rope_cs || !c->x || !c->tmp || !c->xn || !c->qb || !c->att || !c->kb ||
        !c->vb || !c->gb || !c->ub || !c->q8 || !c->scores || !c->rowbuf || (hp->proj_norm && !c->pn)) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory for a context of %u positions", c->n_ctx);
        goto fail;
    }
    /* The head reads more bytes per token than all ternary weights: take
     * the CPU's SIMD one, except on the reference path (--kernel ref stays
     * portable scalar code) or where only a scalar one exists. */
    bn_cpu cpu, none;
    memset(&none, 0, sizeof none);
    bn_cpu_detect(&cpu);
    int simd = strcmp(m->kern->name, "ref") != 0;
    int is_float = m->head_type == BN_F32 || m->head_type == BN_F16 || m->head_type == BN_BF16;
    /* Quantized heads (i8, q6) always go through kern_head: its scalar
     * functions are their reference. */
    c->head = bn_head_find(m->head_type, simd ? &cpu : &none);
    if (is_float && c->head == bn_head_find(m->head_type, &none))
        c->head = NULL;
    /* The same rule for attention; f16 rounding is exact either way. */
    c->att_fn = bn_att_find(simd ? &cpu : &none);
    c->f16_row = bn_f16_row_find(&cpu);
    for (size_t i = 0; i < hp->head_dim / 2; i++)
        c->inv_freq[i] = rope_freq(hp, i);
    for (size_t i = 0; hp->swa && i < hp->head_dim / 2; i++) /* sliding layers: their own base, no scaling */
        c->inv_freq[hp->head_dim / 2 + i] = pow((double)hp->swa_theta, -2.0 * (double)i / (double)hp->head_dim);
    return c;
fail:
    bn_ctx_free(c);
    return NULL;
}

void bn_ctx_free(bn_ctx *c)
{
    if (!c)
        return;
    if (c->pool)
        bn_pool_free(c->pool);
    if (c->seq)
        for (uint32_t i = 0; i < c->o.n_seq; i++) {
            bn_kvseq_release(&c->kv, &c->seq[i].kv);
            free(c->seq[i].ids);
        }
    free(c->seq);
    free(c->touched);
    free(c->n_new);
    free(c->touched_kv);
    bn_kvpool_release(&c->kv);
    free(c->k16);
    free(c->inv_freq);
    free(c->rope_cs);
    free(c->x);
    free(c->tmp);
    free(c->xn);
    free(c->qb);
    free(c->att);
    free(c->kb);
    free(c->vb);
    free(c->gb);
    free(c->ub);
    free(c->pn);
    free(c->q8);
    free(c->scores);
    free(c->rowbuf);
    free(c);
}

const bn_model *bn_ctx_model(const bn_ctx *c)
{
    return c ? c->m : NULL;
}

const uint32_t *bn_ctx_tokens(const bn_ctx *c)
{
    return c ? c->seq[0].ids : NULL;
}

uint32_t bn_ctx_n_ctx(const bn_ctx *c)
{
    return c ? c->n_ctx : 0;
}

uint32_t bn_ctx_pos(const bn_ctx *c)
{
    return c ? c->seq[0].kv.n_pos : 0;
}

void bn_ctx_truncate(bn_ctx *c, uint32_t pos)
{
    bn_ctx_seq_truncate(c, 0, pos);
}

uint64_t bn_ctx_kv_bytes(const bn_ctx *c)
{
    return c ? (uint64_t)c->kv.max_blocks * c->kv.block_bytes : 0;
}

uint64_t bn_ctx_kv_used_bytes(const bn_ctx *c)
{
    return c ? bn_kvpool_used_bytes(&c->kv) : 0;
}

uint64_t bn_ctx_kv_peak_bytes(const bn_ctx *c)
{
    return (uint64_t)c->kv.n_made * c->kv.block_bytes;
}

int bn_ctx_kv_holds_all(const bn_ctx *c)
{
    return c && (uint64_t)c->kv.max_blocks >= (uint64_t)c->o.n_seq * bn_kv_blocks_for(c->n_ctx);
}

size_t bn_ctx_range_token(const bn_ctx *c, const char **why)
{
    *why = c->bad_why;
    return c->bad_t;
}

int bn_ctx_take(bn_ctx *c)
{
    if (c->taken)
        return -1;
    c->taken = 1;
    return 0;
}

void bn_ctx_give_back(bn_ctx *c)
{
    c->taken = 0;
}

int bn_ctx_taken(const bn_ctx *c)
{
    return c->taken;
}

int bn_ctx_gives_states(const bn_ctx *c)
{
    return c && c->o.embeddings;
}

void bn_ctx_generators_add(bn_ctx *c, int d)
{
    c->generators += d;
}

int bn_ctx_generators(const bn_ctx *c)
{
    return c->generators;
}

uint32_t bn_ctx_kv_blocks_max(const bn_ctx *c)
{
    return c ? c->kv.max_blocks : 0;
}

uint32_t bn_ctx_kv_blocks_left(const bn_ctx *c)
{
    return c ? bn_kvpool_available(&c->kv) : 0;
}

/* ------------------------------------------------------------ sequences */

static ctx_seq *seq_at(const bn_ctx *c, int seq)
{
    return c && seq >= 0 && (uint32_t)seq < c->o.n_seq && c->seq[seq].live ? &c->seq[seq] : NULL;
}

int bn_ctx_seq_new(bn_ctx *c, bn_err *e)
{
    if (!c)
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_seq_new: the context is NULL");
    uint32_t i = 0;
    while (i < c->o.n_seq && c->seq[i].live)
        i++;
    if (i == c->o.n_seq)
        return bn_fail_code(e, BN_E_INVALID, "all %u sequences of the context are in use", c->o.n_seq);
    ctx_seq *s = &c->seq[i];
    if (!s->ids) { /* a slot's table and ids stay allocated for its next sequence */
        if (bn_kvseq_init(&s->kv, c->n_ctx, e))
            return BN_E_NOMEM;
        if (!(s->ids = malloc((size_t)c->n_ctx * sizeof *s->ids))) {
            bn_kvseq_release(&c->kv, &s->kv);
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        }
    }
    s->live = 1;
    s->next = UINT32_MAX;
    return (int)i;
}

int bn_ctx_seq_copy(bn_ctx *c, int dst, int src, uint32_t n_pos, bn_err *e)
{
    if (!c)
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_seq_copy: the context is NULL");
    const ctx_seq *from = seq_at(c, src);
    ctx_seq *to = seq_at(c, dst);
    if (!from || !to)
        return bn_fail_code(e, BN_E_INVALID, "sequence %d does not exist", from ? dst : src);
    if (n_pos > from->kv.n_pos)
        return bn_fail_code(e, BN_E_INVALID, "sequence %d holds %u positions, not %u", src, from->kv.n_pos, n_pos);
    if (to == from) {
        bn_kvseq_truncate(&c->kv, &to->kv, n_pos);
        return 0;
    }
    bn_kvseq_share(&c->kv, &to->kv, &from->kv, n_pos);
    memcpy(to->ids, from->ids, n_pos * sizeof *to->ids);
    return 0;
}

int bn_ctx_seq_fork(bn_ctx *c, int src, uint32_t n_pos, bn_err *e)
{
    if (!c)
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_seq_fork: the context is NULL");
    const ctx_seq *from = seq_at(c, src);
    if (!from || n_pos > from->kv.n_pos) /* bn_ctx_seq_copy says which */
        return bn_ctx_seq_copy(c, src, src, n_pos, e);
    int id = bn_ctx_seq_new(c, e);
    if (id >= 0)
        bn_ctx_seq_copy(c, id, src, n_pos, e);
    return id;
}

void bn_ctx_seq_truncate(bn_ctx *c, int seq, uint32_t pos)
{
    ctx_seq *s = seq_at(c, seq);
    if (s && pos < s->kv.n_pos)
        bn_kvseq_truncate(&c->kv, &s->kv, pos);
}

void bn_ctx_seq_free(bn_ctx *c, int seq)
{
    ctx_seq *s = seq_at(c, seq);
    if (!s)
        return;
    bn_kvseq_truncate(&c->kv, &s->kv, 0);
    s->live = seq == 0; /* sequence 0 stays, empty */
}

int bn_ctx_seq_live(const bn_ctx *c, int seq)
{
    return seq_at(c, seq) != NULL;
}

uint32_t bn_ctx_seq_pos(const bn_ctx *c, int seq)
{
    const ctx_seq *s = seq_at(c, seq);
    return s ? s->kv.n_pos : 0;
}

const uint32_t *bn_ctx_seq_tokens(const bn_ctx *c, int seq)
{
    const ctx_seq *s = seq_at(c, seq);
    return s ? s->ids : NULL;
}

uint32_t bn_ctx_n_seq(const bn_ctx *c)
{
    return c ? c->o.n_seq : 0;
}
