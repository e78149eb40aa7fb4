/* test_batch.c — batching changes no result (issue 14's contract).
 *
 * A small synthetic model (two layers, head_dim 32, four query heads per KV head) in every layout
 * and every kernel set this CPU runs. Continuous batching: sequences join
 * one per pass until 32 run together, then leave, so every batch size
 * from 1 to 32 is met; prompts of mixed lengths prefilled in chunks beside
 * the decoders, sequences that fork a prefix of another (shared KV
 * blocks, copy-on-write), roll back (truncate) and finish early. Every
 * logits row the batch produced is compared with memcmp against the same
 * sequence evaluated alone, one token at a time, in a context of its own.
 * Then the KV budget: running out is BN_E_KV_FULL with nothing changed;
 * and the scheduler (batch.h): requests answered together, greedy and
 * seeded, give the tokens they get alone at any number of sequences, with
 * shared prompt prefixes, cancellations, refusals and a KV budget so small
 * that sequences are set back and evaluated again; the same with prompt
 * lookup and with a draft model per request (greedy: plain decoding's
 * tokens; every answer as in a batch of one); and scored prompts with
 * log probabilities, against the test's own log-softmax of rows alone. */
#include "batch.h"
#include "check.h"
#include "formats.h"
#include "generate.h"
#include "head_encode.h"
#include "kern_head.h"
#include "kernels.h"
#include "kvcache.h"
#include "model.h"
#include "pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { D = 256, FF = 256, LAYERS = 2, HEADS = 8, KV_HEADS = 2, VOCAB = 256, MODEL_CTX = 512, SEQ_CTX = 160 };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static float frnd(void)
{
    return ((float)(rnd() % 2000001) - 1000000.0f) / 1000000.0f;
}

/* ------------------------------------------------------------ the model */

static void add_tensor(bn_tensor *dir, size_t *n, const char *name, uint32_t type, uint64_t r, uint64_t c)
{
    bn_tensor *t = &dir[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->ndim = c ? 2 : 1;
    t->shape[0] = r;
    t->shape[1] = c;
    t->size = type == BN_Q6 ? r * bn_head_row_bytes(BN_Q6, c) : bn_type_size(type, t->ndim, t->shape);
}

/* Contents of a tensor: random ternary t2 rows with a β, norms near 1,
 * an f16 embedding, a q6 head. */
static void fill(const bn_tensor *t, uint8_t *buf)
{
    if (t->type == BN_T2) {
        uint64_t rows = t->shape[0], k = t->shape[1], rb = (k + 3) / 4;
        memset(buf, 0, t->size);
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t c = 0; c < k; c++)
                buf[r * rb + c / 4] |= (uint8_t)((rnd() % 3) << (2 * (c % 4)));
        float beta = 0.5f + (float)(rnd() % 64) / 64.0f;
        memcpy(buf + rows * rb, &beta, 4);
    } else if (t->type == BN_F32) {
        for (uint64_t i = 0; i < t->shape[0]; i++)
            ((float *)buf)[i] = 1.0f + 0.2f * frnd();
    } else if (t->type == BN_F16) {
        for (uint64_t i = 0; i < t->shape[0] * t->shape[1]; i++)
            ((uint16_t *)buf)[i] = bn_f32_to_f16(frnd());
    } else { /* q6 */
        float row[D];
        for (uint64_t r = 0; r < t->shape[0]; r++) {
            for (size_t c = 0; c < D; c++)
                row[c] = frnd();
            bn_q6_encode_row(row, D, buf + r * bn_head_row_bytes(BN_Q6, D));
        }
    }
}

/* A t2 model at path: tied f16 embedding, or an untied q6 head. */
static int write_model(const char *path, int q6_head)
{
    bn_hparams hp;
    memset(&hp, 0, sizeof hp);
    snprintf(hp.arch, sizeof hp.arch, "bitnet-b1.58");
    hp.n_vocab = VOCAB;
    hp.n_ctx = MODEL_CTX;
    hp.n_embd = D;
    hp.n_ff = FF;
    hp.n_layer = LAYERS;
    hp.n_head = HEADS;
    hp.n_head_kv = KV_HEADS;
    hp.head_dim = D / HEADS;
    hp.rope_theta = 10000;
    hp.norm_eps = 1e-5f;
    hp.rope_neox = 1;
    hp.sub_norms = 1;
    hp.tied = !q6_head;
    hp.bos_id = 0;
    hp.eos_id = 1;
    hp.pad_id = -1;
    hp.stop_ids[0] = 1;
    hp.n_stop = 1;
    bn_tensor dir[4 + 11 * LAYERS];
    size_t n = 0;
    uint64_t hd = D / HEADS, q = HEADS * hd, kv = KV_HEADS * hd;
    char nm[BN_NAME_MAX];
    add_tensor(dir, &n, "token_embd.weight", BN_F16, VOCAB, D);
    for (int l = 0; l < LAYERS; l++) {
#define L(suffix, ty, r, c)                                  \
    do {                                                     \
        snprintf(nm, sizeof nm, "blk.%d." suffix, l);        \
        add_tensor(dir, &n, nm, ty, r, c);                   \
    } while (0)
        L("attn_norm.weight", BN_F32, D, 0);
        L("attn_q.weight", BN_T2, q, D);
        L("attn_k.weight", BN_T2, kv, D);
        L("attn_v.weight", BN_T2, kv, D);
        L("attn_sub_norm.weight", BN_F32, q, 0);
        L("attn_output.weight", BN_T2, D, q);
        L("ffn_norm.weight", BN_F32, D, 0);
        L("ffn_gate.weight", BN_T2, FF, D);
        L("ffn_up.weight", BN_T2, FF, D);
        L("ffn_sub_norm.weight", BN_F32, FF, 0);
        L("ffn_down.weight", BN_T2, D, FF);
#undef L
    }
    add_tensor(dir, &n, "output_norm.weight", BN_F32, D, 0);
    if (q6_head)
        add_tensor(dir, &n, "output.weight", BN_Q6, VOCAB, D);
    bn_meta meta = {0};
    bn_err e;
    bn_writer w;
    uint8_t *buf = malloc((size_t)VOCAB * D * 4);
    int rc = !buf || bn_hparams_to_meta(&hp, &meta) || bn_writer_begin(&w, path, NULL, &meta, dir, n, &e);
    for (size_t i = 0; !rc && i < n; i++) {
        fill(&dir[i], buf);
        rc = bn_writer_tensor(&w, buf, dir[i].size, &e);
    }
    if (!rc)
        rc = bn_writer_finish(&w, &e);
    if (rc)
        fprintf(stderr, "test_batch: cannot write %s: %s\n", path, e.msg);
    free(buf);
    bn_meta_free(&meta);
    return rc;
}

/* ----------------------------------------------------- the batch scenario */

enum { MAX_SEQ = 64, LIVE = 32, MAX_OPS = 1024 }; /* LIVE: the largest batch */

typedef struct op {
    int trunc;    /* 0: evaluate tok; 1: truncate to tok */
    uint32_t tok;
    long row;     /* logits row of the batch run to compare, or -1 */
} op;

typedef struct sim {
    int id;            /* context sequence, -1 when not running */
    uint32_t cur[SEQ_CTX];
    uint32_t pos, len; /* positions held; the length it runs to */
    uint32_t prompt;   /* prefill until pos reaches it */
    op ops[MAX_OPS];
    size_t n_ops;
} sim;

static void log_op(sim *s, int trunc, uint32_t tok, long row)
{
    if (s->n_ops < MAX_OPS)
        s->ops[s->n_ops++] = (op){trunc, tok, row};
}

/* One run over a model: the batch context, then each sequence again
 * alone. Returns the number of rows compared; *same is cleared on any
 * difference. */
static size_t scenario(const bn_model *m, int kv_f16, size_t n_live, int *same, int *ok_api)
{
    size_t n_seq_total = n_live * 2;
    bn_err e;
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .kv_f16 = kv_f16, .n_threads = 2, .n_seq = (uint32_t)n_live + 1};
    bn_ctx *c = bn_ctx_new_opts(m, &co, &e);
    bn_ctx_opts c1o = {.n_ctx = SEQ_CTX, .kv_f16 = kv_f16, .n_threads = 1};
    bn_ctx *alone = bn_ctx_new_opts(m, &c1o, &e);
    static sim sims[MAX_SEQ];
    size_t cap_rows = 8192, n_rows = 0;
    float *rows = malloc(cap_rows * VOCAB * sizeof *rows);
    bn_eval_tok *batch = malloc(LIVE * 64 * sizeof *batch);
    float *lg = malloc((size_t)VOCAB * sizeof *lg);
    if (!c || !alone || !rows || !batch || !lg) {
        *same = 0;
        goto done;
    }
    size_t n_sims = 0, live = 0, max_live = 0;
    int batch_sizes[LIVE + 1] = {0}; /* sequences in a pass */
    for (int pass = 0; pass < 400 && (live || n_sims < n_seq_total); pass++) {
        /* one new sequence per pass while fewer than LIVE run: a fresh one
         * or, one time in four, a fork of a running one's prefix */
        if (live < n_live && n_sims < n_seq_total) {
            sim *s = &sims[n_sims++];
            memset(s, 0, sizeof *s);
            /* mostly short, one in four over a KV block (BN_KV_BLOCK) */
            s->len = rnd() % 4 ? 1 + rnd() % 24 : BN_KV_BLOCK + 1 + rnd() % (SEQ_CTX - 1 - BN_KV_BLOCK);
            sim *parent = NULL;
            if (rnd() % 4 == 0)
                for (size_t i = 0; i < n_sims - 1; i++)
                    if (sims[i].id >= 0 && sims[i].pos > 0 && (!parent || rnd() % 2))
                        parent = &sims[i];
            if (parent) {
                uint32_t P = 1 + rnd() % parent->pos;
                s->id = bn_ctx_seq_fork(c, parent->id, P, &e);
                *ok_api &= s->id > 0 && bn_ctx_seq_pos(c, s->id) == P;
                memcpy(s->cur, parent->cur, P * sizeof *s->cur);
                *ok_api &= !memcmp(bn_ctx_seq_tokens(c, s->id), s->cur, P * sizeof *s->cur);
                for (uint32_t p = 0; p < P; p++)
                    log_op(s, 0, s->cur[p], -1);
                s->pos = P;
                if (s->len <= P)
                    s->len = P + 1;
            } else {
                s->id = bn_ctx_seq_new(c, &e);
                *ok_api &= s->id > 0;
            }
            s->prompt = s->pos + rnd() % (s->len - s->pos) + 1;
            live++;
        }
        max_live = live > max_live ? live : max_live;
        /* the pass: a chunk of each prompt, one token of each decoder */
        size_t n = 0, seqs = 0;
        for (size_t i = 0; i < n_sims; i++) {
            sim *s = &sims[i];
            if (s->id < 0)
                continue;
            uint32_t k = 1;
            if (s->pos + 1 < s->prompt) {
                k = 1 + rnd() % 48;
                if (k > s->prompt - s->pos)
                    k = s->prompt - s->pos;
            }
            for (uint32_t j = 0; j < k; j++) {
                uint32_t tok = rnd() % VOCAB, want = j + 1 == k || rnd() % 4 == 0;
                batch[n++] = (bn_eval_tok){tok, (uint32_t)s->id, s->pos + j, want};
                s->cur[s->pos + j] = tok;
            }
            seqs++;
        }
        if (seqs <= LIVE)
            batch_sizes[seqs] = 1;
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += batch[i].logits != 0;
        if (n_rows + want > cap_rows) {
            *same = 0;
            break;
        }
        if (bn_ctx_eval_batch(c, batch, n, rows + n_rows * VOCAB, &e)) {
            fprintf(stderr, "test_batch: pass %d: %s\n", pass, e.msg);
            *same = 0;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            sim *s = NULL;
            for (size_t j = 0; j < n_sims && !s; j++)
                if (sims[j].id == (int)batch[i].seq)
                    s = &sims[j];
            log_op(s, 0, batch[i].id, batch[i].logits ? (long)n_rows++ : -1);
            s->pos = batch[i].pos + 1;
        }
        /* roll-backs and finishes */
        for (size_t i = 0; i < n_sims; i++) {
            sim *s = &sims[i];
            if (s->id < 0)
                continue;
            *ok_api &= bn_ctx_seq_pos(c, s->id) == s->pos;
            /* roll back now and then (and before the context is full) */
            if (s->pos >= s->prompt && s->pos > 1 && (rnd() % 16 == 0 || s->pos + 1 >= SEQ_CTX)) {
                uint32_t back = 1 + rnd() % (s->pos < 20 ? s->pos - 1 : 20);
                s->pos -= back;
                bn_ctx_seq_truncate(c, s->id, s->pos);
                log_op(s, 1, s->pos, -1);
            }
            /* none leaves while the batch grows to LIVE: every size is met */
            if ((size_t)pass >= n_live && (s->pos >= s->len || rnd() % 64 == 0)) {
                bn_ctx_seq_free(c, s->id);
                s->id = -1;
                live--;
            }
        }
    }
    for (size_t i = 0; i < n_sims; i++)
        if (sims[i].id >= 0)
            bn_ctx_seq_free(c, sims[i].id);
    for (size_t k = 1; k <= n_live; k++)
        if (!batch_sizes[k]) {
            fprintf(stderr, "test_batch: no pass of %zu sequences\n", k);
            *ok_api = 0;
        }
    *ok_api &= bn_ctx_kv_used_bytes(c) == 0 && max_live == n_live;
    /* each sequence alone, token by token */
    for (size_t i = 0; i < n_sims; i++) {
        sim *s = &sims[i];
        bn_ctx_truncate(alone, 0);
        for (size_t j = 0; j < s->n_ops; j++) {
            const op *o = &s->ops[j];
            if (o->trunc) {
                bn_ctx_truncate(alone, o->tok);
                continue;
            }
            if (bn_ctx_eval(alone, &o->tok, 1, lg, 0, &e)) {
                *same = 0;
                break;
            }
            if (o->row >= 0 && memcmp(lg, rows + (size_t)o->row * VOCAB, VOCAB * sizeof *lg)) {
                if (*same)
                    fprintf(stderr, "test_batch: sequence %zu, op %zu: logits differ from the sequence alone\n", i,
                            j);
                *same = 0;
            }
        }
    }
done:
    bn_ctx_free(c);
    bn_ctx_free(alone);
    free(rows);
    free(batch);
    free(lg);
    return n_rows;
}

/* ------------------------------------------- speculative verification */

/* Speculative decoding's verify pass (issue 16): the last accepted token
 * and k drafts (k = 1..8) of one sequence evaluated in one pass with a
 * logits row for every position, then the cache cut back to the tokens
 * accepted and the next pass started from a token that is not the
 * rejected draft. Sequence 0 goes through bn_ctx_eval (BN_EVAL_ALL_LOGITS),
 * sequence 1 through bn_ctx_eval_batch beside a decode token of sequence
 * 2. Every row is compared (memcmp) with one-token decode of the same
 * tokens in a context that cuts back the same way, and each accepted
 * position's row again with one-token decode of the final text in a
 * fresh context (no truncation there at all). Returns the rows compared;
 * *same is cleared on any difference. */
enum { VPROMPT = 20 };

static size_t verify_scenario(const bn_model *m, int kv_f16, int *same)
{
    bn_err e;
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .kv_f16 = kv_f16, .n_threads = 2, .n_seq = 3};
    bn_ctx_opts c1o = {.n_ctx = SEQ_CTX, .kv_f16 = kv_f16, .n_threads = 1};
    bn_ctx *c = bn_ctx_new_opts(m, &co, &e), *mirror[2] = {NULL, NULL}, *fresh = NULL;
    static uint32_t text[2][SEQ_CTX];
    static float kept[2][SEQ_CTX][VOCAB]; /* the row of each accepted position */
    float *rows = malloc(10 * VOCAB * sizeof *rows), *lg = malloc(VOCAB * sizeof *lg);
    size_t compared = 0;
    int s1 = c ? bn_ctx_seq_new(c, &e) : -1, s2 = c ? bn_ctx_seq_new(c, &e) : -1;
    for (int v = 0; v < 2; v++)
        mirror[v] = bn_ctx_new_opts(m, &c1o, &e);
    fresh = bn_ctx_new_opts(m, &c1o, &e);
    if (!c || !mirror[0] || !mirror[1] || !fresh || !rows || !lg || s1 != 1 || s2 != 2) {
        *same = 0;
        goto done;
    }
    /* prompts: VPROMPT tokens on sequences 0 and 1, a few on 2 */
    bn_eval_tok pre[2 * VPROMPT];
    for (uint32_t p = 0; p < VPROMPT; p++) {
        text[0][p] = rnd() % VOCAB;
        text[1][p] = rnd() % VOCAB;
        pre[p] = (bn_eval_tok){text[1][p], 1, p, 0};
        pre[VPROMPT + p] = (bn_eval_tok){rnd() % VOCAB, 2, p, 0};
    }
    uint32_t pos[2] = {VPROMPT - 1, VPROMPT - 1}, s2pos = VPROMPT; /* the last prompt token is the first pass's */
    if (bn_ctx_eval(c, text[0], VPROMPT - 1, NULL, 0, &e) || bn_ctx_eval_batch(c, pre, VPROMPT - 1, NULL, &e) ||
        bn_ctx_eval_batch(c, pre + VPROMPT, VPROMPT, NULL, &e) ||
        bn_ctx_eval(mirror[0], text[0], VPROMPT - 1, NULL, 0, &e) ||
        bn_ctx_eval(mirror[1], text[1], VPROMPT - 1, NULL, 0, &e)) {
        *same = 0;
        goto done;
    }
    for (int round = 0; *same; round++) {
        int v = round % 2, k = 1 + (int)(rnd() % 8);
        uint32_t P = pos[v], *t = text[v];
        if (P + (uint32_t)k + 1 >= SEQ_CTX - 1)
            break;
        for (int i = 1; i <= k; i++) /* t[P] is the token that starts the pass */
            t[P + i] = rnd() % VOCAB;
        int rc;
        if (v == 0) {
            rc = bn_ctx_eval(c, t + P, (size_t)k + 1, rows, BN_EVAL_ALL_LOGITS, &e);
        } else {
            bn_eval_tok b[10];
            for (int i = 0; i <= k; i++)
                b[i] = (bn_eval_tok){t[P + (uint32_t)i], 1, P + (uint32_t)i, 1};
            b[k + 1] = (bn_eval_tok){rnd() % VOCAB, 2, s2pos++, 0};
            rc = bn_ctx_eval_batch(c, b, (size_t)k + 2, rows, &e);
        }
        if (rc) {
            fprintf(stderr, "test_batch: verify pass: %s\n", e.msg);
            *same = 0;
            break;
        }
        for (int i = 0; i <= k; i++) {
            if (bn_ctx_eval(mirror[v], &t[P + (uint32_t)i], 1, lg, 0, &e) ||
                memcmp(lg, rows + (size_t)i * VOCAB, VOCAB * sizeof *lg)) {
                fprintf(stderr, "test_batch: verify pass of %d tokens: row %d differs from one-token decode\n", k + 1,
                        i);
                *same = 0;
            }
            compared++;
        }
        /* a drafts accepted: the start token and them stay; the next pass
         * starts with a token other than the first rejected draft */
        int a = (int)(rnd() % (uint32_t)(k + 1));
        for (int i = 0; i <= a; i++)
            memcpy(kept[v][P + (uint32_t)i], rows + (size_t)i * VOCAB, VOCAB * sizeof *lg);
        uint32_t keep = P + (uint32_t)a + 1;
        int seq = v == 0 ? 0 : 1;
        bn_ctx_seq_truncate(c, seq, keep);
        bn_ctx_truncate(mirror[v], keep);
        if (bn_ctx_seq_pos(c, seq) != keep)
            *same = 0;
        uint32_t next = rnd() % VOCAB;
        if (a < k && next == t[keep])
            next = (next + 1) % VOCAB;
        t[keep] = next;
        pos[v] = keep;
    }
    /* the accepted rows against the final texts decoded token by token */
    for (int v = 0; v < 2 && *same; v++) {
        bn_ctx_truncate(fresh, 0);
        for (uint32_t p = 0; p < pos[v]; p++) {
            if (bn_ctx_eval(fresh, &text[v][p], 1, lg, 0, &e)) {
                *same = 0;
                break;
            }
            if (p >= VPROMPT - 1 && memcmp(lg, kept[v][p], VOCAB * sizeof *lg)) {
                fprintf(stderr, "test_batch: accepted position %u differs from one-token decode\n", p);
                *same = 0;
                break;
            }
            compared += p >= VPROMPT - 1;
        }
    }
done:
    bn_ctx_free(c);
    bn_ctx_free(mirror[0]);
    bn_ctx_free(mirror[1]);
    bn_ctx_free(fresh);
    free(rows);
    free(lg);
    return compared;
}

/* bn_gen_answer with prompt lookup (generate.h) against without it,
 * greedy (plain, then with a repeat penalty, which reads the history of
 * every position checked): the same output bytes, for prompts that repeat
 * a passage (drafts accepted) and random ones (drafts rejected). Returns
 * the drafts accepted over all prompts, or -1 on a difference. */
static long gen_lookup_same(const bn_model *m)
{
    bn_err e;
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .n_threads = 2};
    bn_ctx *c = bn_ctx_new_opts(m, &co, &e);
    long accepted = 0;
    if (!c)
        return -1;
    for (int run = 0; run < 6 && accepted >= 0; run++) {
        uint32_t prompt[60];
        size_t n = 20 + rnd() % 40;
        for (size_t i = 0; i < n; i++) /* a passage of 7 repeated, or random */
            prompt[i] = run % 3 != 2 && i >= 7 ? prompt[i % 7] : 2 + rnd() % (VOCAB - 2);
        char *out[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        for (int lk = 0; lk < 2; lk++) {
            /* paced in odd runs (the default: how much it guesses follows
             * the passes' times), guessing wherever it can in even ones */
            bn_gen_opts go = {.n_predict = run == 1 ? -1 : run % 3 == 0 ? 100 : 40, .lookup = lk ? 1 + (uint32_t)run % 3 : 0,
                              .draft_max = 1 + (uint32_t)(rnd() % 12), .no_pacing = run % 2 == 0};
            bn_sampler_defaults(&go.samp);
            go.samp.temp = 0;
            go.samp.repeat_penalty = run >= 3 ? 1.3f : 1.0f;
            FILE *fp = open_memstream(&out[lk], &len[lk]);
            bn_gen *g = fp ? bn_gen_new(m, c, NULL, &go, fp, 0, &e) : NULL;
            bn_ctx_truncate(c, 0);
            int rc = !g || bn_gen_answer(g, prompt, n, &e);
            if (rc)
                fprintf(stderr, "test_batch: generation: %s\n", e.msg);
            bn_gen_stats st = {0};
            if (g)
                bn_gen_get_stats(g, &st);
            if (lk && st.n_accept > st.n_draft)
                rc = 1;
            accepted += lk ? (long)st.n_accept : 0;
            /* the cache ends as plain decoding leaves it */
            if (lk && bn_ctx_pos(c) != (uint32_t)(n + st.n_gen))
                rc = 1;
            bn_gen_free(g);
            if (fp)
                fclose(fp);
            if (rc)
                accepted = -1;
        }
        if (accepted >= 0 && (len[0] != len[1] || memcmp(out[0], out[1], len[0]))) {
            fprintf(stderr, "test_batch: run %d: prompt lookup changed the greedy answer:\n%.*s\n%.*s\n", run,
                    (int)len[0], out[0], (int)len[1], out[1]);
            accepted = -1;
        }
        free(out[0]);
        free(out[1]);
    }
    bn_ctx_free(c);
    return accepted;
}

static void test_sets(check_ctx *cx, const char *dir)
{
    static const char *const layouts[] = {"t2", "i2s", "b3", "tl1", "tl2"};
    char src[600], path[600];
    snprintf(src, sizeof src, "%s/t2.bn", dir);
    if (write_model(src, 0)) {
        CHECK(cx, 0);
        return;
    }
    const char *const *names = bn_kernels_names();
    int runs = 0;
    long accepted = 0;
    for (size_t li = 0; li < sizeof layouts / sizeof *layouts; li++) {
        snprintf(path, sizeof path, "%s/%s.bn", dir, layouts[li]);
        bn_err e;
        bn_pack_opts po = {.step = "test_batch", .layout = layouts[li], .target = "generic"};
        if (li && bn_pack(src, path, &po, &e)) {
            fprintf(stderr, "test_batch: bn_pack %s: %s\n", layouts[li], e.msg);
            CHECK(cx, 0);
            continue;
        }
        for (size_t ni = 1; names[ni]; ni++) { /* every set but "auto" (one of them) */
            bn_model m;
            if (bn_model_load(&m, path, names[ni], &e))
                continue; /* not for this layout, or not on this CPU */
            if (bn_model_to_memory(&m, &e) < 0) {
                CHECK(cx, 0);
                bn_model_free(&m);
                continue;
            }
            /* the scalar references are slow (the packed layouts' decode
             * weight by weight): batches of up to 8 and 4 there */
            int same = 1, ok_api = 1, kv_f16 = runs % 2, ref = !strcmp(names[ni], "ref");
            size_t live = ref ? li ? 4 : 8 : LIVE;
            size_t rows = scenario(&m, kv_f16, live, &same, &ok_api);
            printf("  %-4s %-7s kv %s: %zu logits rows of batches of 1..%zu sequences, %s\n", layouts[li], names[ni],
                   kv_f16 ? "f16" : "f32", rows, live, same ? "bit-identical alone" : "DIFFERENT");
            CHECK(cx, same && rows > 10 * live);
            CHECK(cx, ok_api);
            same = 1;
            rows = verify_scenario(&m, kv_f16, &same);
            long acc = gen_lookup_same(&m);
            printf("  %-4s %-7s kv %s: %zu rows of verify passes of 2..9 tokens, %s; prompt lookup greedy: %s (%ld "
                   "drafts accepted)\n",
                   layouts[li], names[ni], kv_f16 ? "f16" : "f32", rows, same ? "bit-identical to decode" : "DIFFERENT",
                   acc >= 0 ? "same bytes" : "DIFFERENT", acc);
            CHECK(cx, same && rows > 100);
            CHECK(cx, acc >= 0);
            accepted += acc > 0 ? acc : 0;
            runs++;
            bn_model_free(&m);
        }
        if (li)
            unlink(path);
    }
    CHECK(cx, runs >= 5);
    CHECK(cx, accepted > 0); /* the drafts were put to the test */
    /* the quantized head (q6) */
    snprintf(path, sizeof path, "%s/q6.bn", dir);
    CHECK(cx, !write_model(path, 1));
    for (int ref = 0; ref < 2; ref++) {
        bn_model m;
        bn_err e;
        if (bn_model_load(&m, path, ref ? "ref" : "auto", &e) || bn_model_to_memory(&m, &e) < 0) {
            CHECK(cx, 0);
            continue;
        }
        int same = 1, ok_api = 1;
        size_t rows = scenario(&m, 1, ref ? 8 : LIVE, &same, &ok_api);
        printf("  t2   %-7s q6 head: %zu logits rows, %s\n", ref ? "ref" : "auto", rows,
               same ? "bit-identical alone" : "DIFFERENT");
        CHECK(cx, same && ok_api);
        bn_model_free(&m);
    }
    unlink(path);
    unlink(src);
}

/* ------------------------------------------------------------- budget */

/* The t2 test model (write_model), loaded with the default kernels; its
 * file is gone again. 0, or -1. */
static int load_t2_model(const char *dir, bn_model *m)
{
    char path[600];
    bn_err e;
    snprintf(path, sizeof path, "%s/t2.bn", dir);
    int rc = write_model(path, 0) || bn_model_load(m, path, "auto", &e) ? -1 : 0;
    unlink(path);
    return rc;
}

static void test_budget(check_ctx *cx, const char *dir)
{
    bn_model m;
    bn_err e;
    if (load_t2_model(dir, &m)) {
        CHECK(cx, 0);
        return;
    }
    /* three blocks for four sequences */
    size_t block = 2 * LAYERS * KV_HEADS * (D / HEADS) * BN_KV_BLOCK * sizeof(float);
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .n_threads = 1, .n_seq = 4, .kv_budget = 3 * block + block / 2};
    bn_ctx *c = bn_ctx_new_opts(&m, &co, &e);
    CHECK(cx, c && bn_ctx_kv_blocks_left(c) == 3 && bn_ctx_kv_bytes(c) == 3 * block);
    if (!c) {
        bn_model_free(&m);
        return;
    }
    uint32_t ids[SEQ_CTX];
    for (size_t i = 0; i < SEQ_CTX; i++)
        ids[i] = rnd() % VOCAB;
    float *lg = malloc(4 * VOCAB * sizeof *lg), *lg2 = malloc(4 * VOCAB * sizeof *lg2);
    /* sequence 0: 100 positions (2 blocks); a fork at 70 shares both */
    CHECK(cx, !bn_ctx_eval(c, ids, 100, NULL, 0, &e) && bn_ctx_kv_blocks_left(c) == 1);
    int f = bn_ctx_seq_fork(c, 0, 70, &e);
    CHECK(cx, f == 1 && bn_ctx_kv_blocks_left(c) == 1 && bn_ctx_kv_used_bytes(c) == 2 * block);
    /* both write into the shared second block: one copy (the last writer
     * keeps it), so this fits the one block left ... */
    bn_eval_tok two[2] = {{5, 0, 100, 1}, {6, (uint32_t)f, 70, 1}};
    CHECK(cx, !bn_ctx_eval_batch(c, two, 2, lg, &e) && bn_ctx_kv_blocks_left(c) == 0);
    /* ... and the forked sequence computed what it would alone */
    bn_ctx_opts c1o = {.n_ctx = SEQ_CTX, .n_threads = 1};
    bn_ctx *alone = bn_ctx_new_opts(&m, &c1o, &e);
    uint32_t fork_ids[71];
    memcpy(fork_ids, ids, 70 * sizeof *ids);
    fork_ids[70] = 6;
    CHECK(cx, alone && !bn_ctx_eval(alone, fork_ids, 71, lg2, 0, &e) && !memcmp(lg + VOCAB, lg2, VOCAB * sizeof *lg));
    bn_ctx_free(alone);
    /* a new block is beyond the budget: BN_E_KV_FULL, and nothing moved */
    int s2 = bn_ctx_seq_new(c, &e);
    bn_eval_tok more[3] = {{7, 0, 101, 0}, {8, (uint32_t)s2, 0, 1}, {9, (uint32_t)f, 71, 1}};
    e.code = 0;
    int rc = bn_ctx_eval_batch(c, more, 3, lg, &e);
    CHECK(cx, rc == BN_E_KV_FULL && e.code == BN_E_KV_FULL);
    CHECK(cx, bn_ctx_seq_pos(c, 0) == 101 && bn_ctx_seq_pos(c, f) == 71 && bn_ctx_seq_pos(c, s2) == 0);
    CHECK(cx, bn_ctx_eval(c, ids, 30, NULL, 0, &e) == BN_E_KV_FULL && bn_ctx_pos(c) == 101);
    /* freeing the fork gives its block back: the same batch now runs */
    bn_ctx_seq_free(c, f);
    CHECK(cx, bn_ctx_kv_blocks_left(c) == 1);
    bn_eval_tok retry[2] = {{7, 0, 101, 0}, {8, (uint32_t)s2, 0, 1}};
    CHECK(cx, !bn_ctx_eval_batch(c, retry, 2, lg, &e) && bn_ctx_kv_blocks_left(c) == 0);
    /* wrong positions, sequences and ids are refused, changing nothing */
    bn_eval_tok bad_pos = {1, 0, 5, 0}, bad_seq = {1, 3, 0, 0}, bad_id = {VOCAB, 0, 102, 0};
    CHECK(cx, bn_ctx_eval_batch(c, &bad_pos, 1, NULL, &e) == BN_E_INVALID);
    CHECK(cx, bn_ctx_eval_batch(c, &bad_seq, 1, NULL, &e) == BN_E_INVALID);
    CHECK(cx, bn_ctx_eval_batch(c, &bad_id, 1, NULL, &e) == BN_E_INVALID);
    CHECK(cx, bn_ctx_pos(c) == 102 && bn_ctx_seq_pos(c, s2) == 1);
    /* a sequence's context is its own limit */
    bn_ctx_seq_free(c, s2);
    bn_ctx_truncate(c, 0);
    CHECK(cx, bn_ctx_kv_used_bytes(c) == 0 && bn_ctx_kv_blocks_left(c) == 3);
    CHECK(cx, !bn_ctx_eval(c, ids, SEQ_CTX, NULL, 0, &e) && bn_ctx_eval(c, ids, 1, NULL, 0, &e) != 0);
    bn_ctx_free(c);
    free(lg);
    free(lg2);
    bn_model_free(&m);
}

/* ---------------------------------------------------------- scheduler */

enum { N_REQ = 40, MAX_GEN = 48 };

typedef struct answer {
    uint32_t tok[SEQ_CTX + 1];
    size_t n;
    int fin;
} answer;

static void make_requests(bn_request *rq, uint32_t (*prompts)[SEQ_CTX], uint32_t *stops)
{
    uint32_t system[80];
    for (size_t i = 0; i < 80; i++)
        system[i] = 2 + rnd() % (VOCAB - 2);
    stops[0] = 7;
    for (size_t i = 0; i < N_REQ; i++) {
        bn_request *r = &rq[i];
        memset(r, 0, sizeof *r);
        /* a third begin with the same 80 tokens (a system prompt), a few
         * repeat an earlier prompt exactly */
        size_t n = 1 + rnd() % 100, k = 0;
        if (i % 3 == 0) {
            for (; k < 80 && k < n; k++)
                prompts[i][k] = system[k];
        }
        for (; k < n; k++)
            prompts[i][k] = 2 + rnd() % (VOCAB - 2);
        if (i % 7 == 6) {
            n = rq[i - 2].n_prompt;
            memcpy(prompts[i], prompts[i - 2], n * sizeof **prompts);
        }
        r->prompt = prompts[i];
        r->n_prompt = n;
        bn_sampler_defaults(&r->samp);
        if (i % 2) { /* seeded sampling, hot enough to hit the stop ids */
            r->samp.temp = 1.5f;
            r->samp.top_k = 0;
            r->samp.min_p = 0;
            r->samp.seed = 1000 + i;
        } else {
            r->samp.temp = 0;
        }
        r->n_predict = i % 5 == 0 ? -1 : (int32_t)(1 + rnd() % MAX_GEN);
        r->stop_ids = i % 4 == 1 ? stops : NULL;
        r->n_stop_ids = i % 4 == 1;
        r->tag = 100 + i;
    }
}

/* Each request alone, as bn_gen_answer runs it: evaluate the prompt,
 * sample, stop on a stop id, at n_predict, or when the context is full. */
static void answer_alone(const bn_model *m, const bn_request *r, answer *a)
{
    bn_err e;
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .n_threads = 1};
    bn_ctx *c = bn_ctx_new_opts(m, &co, &e);
    bn_sampler s;
    float lg[VOCAB];
    uint32_t hist[SEQ_CTX + 1];
    memcpy(hist, r->prompt, r->n_prompt * sizeof *hist);
    size_t n_hist = r->n_prompt;
    a->n = 0;
    a->fin = BN_FIN_ERROR;
    if (!c || bn_sampler_init(&s, &r->samp, VOCAB, &e)) {
        bn_ctx_free(c);
        return;
    }
    if (!bn_ctx_eval(c, r->prompt, r->n_prompt, lg, 0, &e))
        for (;;) {
            uint32_t id = bn_sampler_sample(&s, lg, hist, n_hist);
            if (id == 1 || (r->n_stop_ids && id == r->stop_ids[0])) {
                a->fin = BN_FIN_STOP;
                break;
            }
            a->tok[a->n++] = id;
            if (r->n_predict >= 0 && a->n >= (size_t)r->n_predict) {
                a->fin = BN_FIN_LENGTH;
                break;
            }
            if (bn_ctx_pos(c) >= SEQ_CTX) {
                a->fin = BN_FIN_CONTEXT;
                break;
            }
            hist[n_hist++] = id;
            if (bn_ctx_eval(c, &id, 1, lg, 0, &e))
                break;
        }
    bn_sampler_release(&s);
    bn_ctx_free(c);
}

/* All requests through bn_batch over n_seq sequences (kv_budget 0: the
 * default); cancel_tag is cancelled after its third token; draft, if not
 * NULL, is the batch's draft model. Returns the steps taken, 0 on failure. */
static size_t answer_batched(const bn_model *m, const bn_request *rq, size_t n_rq, uint32_t n_seq, uint64_t budget,
                             uint64_t cancel_tag, const bn_model *draft, answer *out, bn_batch_stats *st)
{
    bn_err e;
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .n_threads = 2, .n_seq = n_seq, .kv_budget = budget};
    bn_ctx_opts dco = {.n_ctx = SEQ_CTX, .n_threads = 2, .n_seq = n_seq};
    bn_ctx *c = bn_ctx_new_opts(m, &co, &e), *dc = draft ? bn_ctx_new_opts(draft, &dco, &e) : NULL;
    bn_batch_opts bo = {.draft = dc};
    bn_batch *b = c && (dc || !draft) ? bn_batch_new(c, &bo, &e) : NULL;
    size_t steps = 0, submitted = 0;
    for (size_t i = 0; i < n_rq; i++)
        out[i] = (answer){.fin = BN_FIN_NONE};
    while (b) {
        /* requests arrive over time: two per step */
        for (int k = 0; k < 2 && submitted < n_rq; k++)
            if (bn_batch_submit(b, &rq[submitted++], &e))
                goto fail;
        if (!bn_batch_pending(b))
            break;
        const bn_batch_event *ev;
        size_t n_ev;
        if (bn_batch_step(b, &ev, &n_ev, &e))
            goto fail;
        steps++;
        for (size_t i = 0; i < n_ev; i++) {
            answer *a = &out[ev[i].tag - 100];
            if (ev[i].token != BN_BATCH_NO_TOKEN)
                a->tok[a->n++] = ev[i].token;
            a->fin = ev[i].finish;
            if (ev[i].tag == cancel_tag && a->n == 3 && !ev[i].finish) {
                bn_batch_cancel(b, cancel_tag);
                a->fin = -1;
            }
        }
        if (steps > 10000)
            goto fail;
    }
    bn_batch_get_stats(b, st);
    bn_batch_free(b);
    bn_ctx_free(c);
    bn_ctx_free(dc);
    return steps;
fail:
    fprintf(stderr, "test_batch: bn_batch: %s\n", e.msg);
    bn_batch_free(b);
    bn_ctx_free(c);
    bn_ctx_free(dc);
    return 0;
}

static int same_answer(const answer *a, const answer *b)
{
    return a->fin == b->fin && a->n == b->n && !memcmp(a->tok, b->tok, a->n * sizeof *a->tok);
}

static void test_scheduler(check_ctx *cx, const char *dir)
{
    bn_model m;
    bn_err e;
    if (load_t2_model(dir, &m)) {
        CHECK(cx, 0);
        return;
    }
    static bn_request rq[N_REQ];
    static uint32_t prompts[N_REQ][SEQ_CTX], stops[1];
    static answer alone[N_REQ], got[N_REQ];
    make_requests(rq, prompts, stops);
    int fins[6] = {0};
    for (size_t i = 0; i < N_REQ; i++) {
        answer_alone(&m, &rq[i], &alone[i]);
        fins[alone[i].fin]++;
    }
    /* the set is worth testing: every way of ending occurs */
    CHECK(cx, fins[BN_FIN_STOP] && fins[BN_FIN_LENGTH] && fins[BN_FIN_CONTEXT]);
    static const uint32_t ns[] = {1, 2, 5, 16, 32};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        bn_batch_stats st;
        size_t steps = answer_batched(&m, rq, N_REQ, ns[k], 0, 0, NULL, got, &st);
        int ok = steps > 0;
        for (size_t i = 0; i < N_REQ; i++)
            ok &= same_answer(&alone[i], &got[i]);
        printf("  scheduler, %2u sequences: %zu steps, %llu prompt positions shared, %s\n", ns[k], steps,
               (unsigned long long)st.shared, ok ? "every answer as alone" : "DIFFERENT");
        CHECK(cx, ok);
        CHECK(cx, ns[k] == 1 || st.shared > 0); /* the shared system prompt */
    }
    /* a budget of 6 blocks for 8 sequences: set back and evaluated again */
    size_t block = 2 * LAYERS * KV_HEADS * (D / HEADS) * BN_KV_BLOCK * sizeof(float);
    bn_batch_stats st;
    size_t steps = answer_batched(&m, rq, N_REQ, 8, 6 * block, 0, NULL, got, &st);
    int ok = steps > 0;
    for (size_t i = 0; i < N_REQ; i++)
        ok &= same_answer(&alone[i], &got[i]);
    printf("  scheduler, 8 sequences in 6 KV blocks: %zu steps, %llu set back, %s\n", steps,
           (unsigned long long)st.set_back, ok ? "every answer as alone" : "DIFFERENT");
    CHECK(cx, ok && st.set_back > 0);
    /* a cancelled request leaves the others as they were */
    steps = answer_batched(&m, rq, N_REQ, 8, 0, 100 + 3, NULL, got, &st);
    ok = steps > 0 && got[3].fin == -1 && got[3].n == 3;
    for (size_t i = 0; i < N_REQ; i++)
        ok &= i == 3 || same_answer(&alone[i], &got[i]);
    CHECK(cx, ok);
    /* refused: empty, an id outside the vocabulary, longer than the
     * context, and a prompt that cannot fit the KV budget even alone */
    uint32_t bad_id[2] = {5, VOCAB}, longp[SEQ_CTX + 1] = {0}, two[2] = {3, 4};
    bn_request bad[5];
    for (int i = 0; i < 5; i++) {
        memset(&bad[i], 0, sizeof bad[i]);
        bn_sampler_defaults(&bad[i].samp);
        bad[i].n_predict = 4;
        bad[i].tag = 100 + (uint64_t)i;
    }
    bad[1].prompt = bad_id;
    bad[1].n_prompt = 2;
    bad[2].prompt = longp;
    bad[2].n_prompt = SEQ_CTX + 1;
    bad[3].prompt = longp;
    bad[3].n_prompt = SEQ_CTX - 1;
    bad[4].prompt = two;
    bad[4].n_prompt = 2;
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .n_threads = 1, .n_seq = 2, .kv_budget = 2 * block};
    bn_ctx *c = bn_ctx_new_opts(&m, &co, &e);
    bn_batch *b = c ? bn_batch_new(c, NULL, &e) : NULL;
    int refused = 0, answered = 0;
    for (int i = 0; b && i < 5; i++)
        CHECK(cx, !bn_batch_submit(b, &bad[i], &e));
    while (b && bn_batch_pending(b)) {
        const bn_batch_event *ev;
        size_t n_ev;
        if (bn_batch_step(b, &ev, &n_ev, &e))
            break;
        for (size_t i = 0; i < n_ev; i++) {
            if (ev[i].finish == BN_FIN_ERROR) {
                refused |= 1 << (ev[i].tag - 100);
                CHECK(cx, ev[i].error && *ev[i].error);
            }
            answered += ev[i].tag == 104 && ev[i].finish == BN_FIN_LENGTH;
        }
    }
    CHECK(cx, refused == 0xf && answered == 1);
    CHECK(cx, c && bn_ctx_kv_used_bytes(c) == 0);
    bn_batch_free(b);
    bn_ctx_free(c);
    bn_model_free(&m);
}

/* log-softmax of row at id, in double, the plain way: the test's own. */
static double log_softmax_at(const float *row, size_t n, uint32_t id)
{
    double mx = row[0], sum = 0;
    for (size_t i = 1; i < n; i++)
        mx = row[i] > mx ? row[i] : mx;
    for (size_t i = 0; i < n; i++)
        sum += exp(row[i] - mx);
    return row[id] - mx - log(sum);
}

/* Scored prompts (score_prompt, OpenAI's echo with logprobs) and token
 * log probabilities in the batch: prompts longer than a pass (16 tokens),
 * 8 sequences in 3.5 KV blocks so that some are set back mid-prompt and
 * evaluated again. Every prompt token after the first is scored once, in
 * order, with the log-softmax of the row its prefix gives alone (the
 * test's own computation), its 2 likeliest alternatives first among them;
 * every answer token's is its row's; the tokens are those alone. */
static void test_scheduler_scores(check_ctx *cx, const char *dir)
{
    bn_model m;
    bn_err e;
    if (load_t2_model(dir, &m)) {
        CHECK(cx, 0);
        return;
    }
    static bn_request rq[N_REQ];
    static uint32_t prompts[N_REQ][SEQ_CTX], stops[1];
    static answer alone[N_REQ];
    make_requests(rq, prompts, stops);
    for (size_t i = 0; i < N_REQ; i++) {
        rq[i].logprobs = 1;
        rq[i].top_logprobs = 2;
        rq[i].score_prompt = 1;
        rq[i].n_predict = i % 6 == 5 ? 0 : rq[i].n_predict; /* some scored only: no token, ended at once */
        if (rq[i].n_predict)
            answer_alone(&m, &rq[i], &alone[i]);
        else
            alone[i] = (answer){.n = 0, .fin = BN_FIN_LENGTH};
    }
    size_t block = 2 * LAYERS * KV_HEADS * (D / HEADS) * BN_KV_BLOCK * sizeof(float);
    bn_ctx_opts co = {.n_ctx = SEQ_CTX, .n_threads = 2, .n_seq = 8, .kv_budget = 3 * block + block / 2};
    bn_ctx *c = bn_ctx_new_opts(&m, &co, &e);
    bn_batch_opts bo = {.pass_tokens = 16};
    bn_batch *b = c ? bn_batch_new(c, &bo, &e) : NULL;
    static float scores[N_REQ][SEQ_CTX + MAX_GEN + 2];
    static answer got[N_REQ];
    static size_t n_scored[N_REQ];
    int order_ok = 1, top_ok = 1;
    size_t submitted = 0, steps = 0;
    for (size_t i = 0; i < N_REQ; i++)
        got[i] = (answer){.fin = BN_FIN_NONE};
    while (b && steps < 20000) {
        for (int k = 0; k < 2 && submitted < N_REQ; k++)
            CHECK(cx, !bn_batch_submit(b, &rq[submitted++], &e));
        if (!bn_batch_pending(b))
            break;
        const bn_batch_event *ev;
        size_t n_ev;
        if (bn_batch_step(b, &ev, &n_ev, &e))
            break;
        steps++;
        for (size_t i = 0; i < n_ev; i++) {
            size_t r = ev[i].tag - 100;
            if (ev[i].prompt) { /* the next prompt token, before any answer token */
                order_ok &= got[r].n == 0 && n_scored[r] + 1 < rq[r].n_prompt &&
                            ev[i].token == rq[r].prompt[n_scored[r] + 1];
                scores[r][n_scored[r]++] = ev[i].logprob;
            } else if (ev[i].token != BN_BATCH_NO_TOKEN) {
                scores[r][rq[r].n_prompt - 1 + got[r].n] = ev[i].logprob;
                got[r].tok[got[r].n++] = ev[i].token;
            }
            if (ev[i].token != BN_BATCH_NO_TOKEN)
                top_ok &= ev[i].n_top == 2 && ev[i].top[0].logprob >= ev[i].top[1].logprob &&
                          ev[i].logprob <= ev[i].top[0].logprob;
            got[r].fin = ev[i].finish;
        }
    }
    bn_batch_stats st = {0};
    if (b)
        bn_batch_get_stats(b, &st);
    bn_batch_free(b);
    bn_ctx_free(c);
    /* alone: every row of the prompt and the answer in one evaluation */
    int same = 1, all_scored = 1, close = 1;
    double worst = 0;
    bn_ctx_opts ao = {.n_ctx = SEQ_CTX, .n_threads = 1};
    static float rows[(SEQ_CTX + 1) * VOCAB];
    static uint32_t ids[SEQ_CTX + 1];
    for (size_t r = 0; r < N_REQ; r++) {
        same &= same_answer(&alone[r], &got[r]);
        all_scored &= n_scored[r] == rq[r].n_prompt - 1;
        size_t n = rq[r].n_prompt;
        memcpy(ids, rq[r].prompt, n * sizeof *ids);
        for (size_t k = 0; k < got[r].n && n < SEQ_CTX; k++)
            ids[n++] = got[r].tok[k];
        bn_ctx *a = bn_ctx_new_opts(&m, &ao, &e);
        if (!a || bn_ctx_eval(a, ids, n, rows, BN_EVAL_ALL_LOGITS, &e)) {
            close = 0;
            bn_ctx_free(a);
            continue;
        }
        bn_ctx_free(a);
        size_t have = rq[r].n_prompt - 1 + got[r].n; /* scores: prompt tokens 1.., then answer tokens */
        for (size_t k = 0; k < have && k + 1 < n; k++) {
            double want = log_softmax_at(rows + k * VOCAB, VOCAB, ids[k + 1]), d = fabs(want - scores[r][k]);
            worst = d > worst ? d : worst;
            close &= d <= 1e-5 * (1 + fabs(want));
        }
    }
    printf("  scored prompts, passes of 16, 8 sequences in 3.5 KV blocks: %llu set back; prompt tokens scored once, "
           "in order: %s; log probabilities as alone (worst %.1e): %s; tokens as alone: %s\n",
           (unsigned long long)st.set_back, order_ok && all_scored ? "yes" : "NO", worst, close ? "yes" : "NO",
           same ? "yes" : "DIFFERENT");
    CHECK(cx, st.set_back > 0);
    CHECK(cx, order_ok && all_scored);
    CHECK(cx, top_ok);
    CHECK(cx, close);
    CHECK(cx, same);
    bn_model_free(&m);
}

/* Prompt lookup in the batch (bn_request.lookup): prompts whose second
 * half repeats the first, so drafts are found and some kept. Greedy
 * requests give plain decoding's tokens alone; every request gives the
 * same tokens (sampled: the same draws) at any number of sequences and
 * when set back for the KV budget as it gets in a batch of one. */
static void test_scheduler_lookup(check_ctx *cx, const char *dir)
{
    bn_model m;
    if (load_t2_model(dir, &m)) {
        CHECK(cx, 0);
        return;
    }
    static bn_request rq[N_REQ];
    static uint32_t prompts[N_REQ][SEQ_CTX], stops[1];
    static answer plain[N_REQ], one[N_REQ], got[N_REQ];
    make_requests(rq, prompts, stops);
    for (size_t i = 0; i < N_REQ; i++) {
        size_t n = rq[i].n_prompt, half = n / 2;
        if (i % 7 != 6) /* a repeat of an earlier prompt is already a copy of it */
            memcpy(prompts[i] + n - half, prompts[i], half * sizeof **prompts);
        rq[i].lookup = 1 + i % 3;
        rq[i].draft_max = i % 4 == 0 ? 2 : i % 4 == 1 ? 0 : 16;
    }
    bn_batch_stats st;
    size_t steps = answer_batched(&m, rq, N_REQ, 1, 0, 0, NULL, one, &st);
    int ok = steps > 0;
    for (size_t i = 0; ok && i < N_REQ; i += 2) { /* greedy: plain decoding's tokens */
        answer_alone(&m, &rq[i], &plain[i]);
        ok &= same_answer(&plain[i], &one[i]);
    }
    printf("  scheduler with lookup, 1 sequence: %llu drafted, %llu accepted in %llu passes, greedy %s\n",
           (unsigned long long)st.drafted, (unsigned long long)st.accepted, (unsigned long long)st.spec_passes,
           ok ? "as plain decoding" : "DIFFERENT");
    CHECK(cx, ok && st.accepted > 0 && st.drafted > st.accepted);
    size_t block = 2 * LAYERS * KV_HEADS * (D / HEADS) * BN_KV_BLOCK * sizeof(float);
    static const struct {
        uint32_t n_seq, blocks;
    } runs[] = {{3, 0}, {16, 0}, {8, 6}};
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        bn_batch_stats s2;
        steps = answer_batched(&m, rq, N_REQ, runs[k].n_seq, runs[k].blocks * block, 0, NULL, got, &s2);
        ok = steps > 0 && s2.drafted == st.drafted && s2.accepted == st.accepted;
        for (size_t i = 0; i < N_REQ; i++)
            ok &= same_answer(&one[i], &got[i]);
        printf("  scheduler with lookup, %2u sequences%s: %zu steps, %llu set back, %s\n", runs[k].n_seq,
               runs[k].blocks ? " in 6 KV blocks" : "", steps, (unsigned long long)s2.set_back,
               ok ? "every answer as in a batch of one" : "DIFFERENT");
        CHECK(cx, ok && (!runs[k].blocks || s2.set_back > 0));
    }
    /* a draft model (bn_request.draft): another model of the same shape
     * and vocabulary (other weights), and the model as its own draft */
    bn_model dm;
    if (load_t2_model(dir, &dm)) { /* write_model draws new weights */
        CHECK(cx, 0);
        bn_model_free(&m);
        return;
    }
    for (size_t i = 0; i < N_REQ; i++) {
        rq[i].lookup = 0;
        rq[i].draft = 1;
    }
    for (int self = 0; self < 2; self++) {
        const bn_model *d = self ? &m : &dm;
        steps = answer_batched(&m, rq, N_REQ, 1, 0, 0, d, one, &st);
        ok = steps > 0;
        for (size_t i = 0; ok && i < N_REQ; i += 2)
            ok &= same_answer(&plain[i], &one[i]);
        printf("  scheduler with %s as draft, 1 sequence: %llu drafted, %llu accepted, greedy %s\n",
               self ? "the model" : "another model", (unsigned long long)st.drafted, (unsigned long long)st.accepted,
               ok ? "as plain decoding" : "DIFFERENT");
        CHECK(cx, ok && st.drafted > 0 && (!self || st.accepted > st.drafted / 2));
        for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
            bn_batch_stats s2;
            steps = answer_batched(&m, rq, N_REQ, runs[k].n_seq, runs[k].blocks * block, 0, d, got, &s2);
            ok = steps > 0 && s2.drafted == st.drafted && s2.accepted == st.accepted;
            for (size_t i = 0; i < N_REQ; i++)
                ok &= same_answer(&one[i], &got[i]);
            printf("  scheduler with a draft, %2u sequences%s: %zu steps, %llu set back, %s\n", runs[k].n_seq,
                   runs[k].blocks ? " in 6 KV blocks" : "", steps, (unsigned long long)s2.set_back,
                   ok ? "every answer as in a batch of one" : "DIFFERENT");
            /* (the model as its own draft answers in so few passes that 6 blocks hold them) */
            CHECK(cx, ok && (!runs[k].blocks || self || s2.set_back > 0));
        }
    }
    bn_model_free(&dm);
    bn_model_free(&m);
}

int main(void)
{
    check_ctx cx = {0};
    char dir[] = "/tmp/bn-test-batch-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_budget(&cx, dir);
    test_scheduler(&cx, dir);
    test_scheduler_lookup(&cx, dir);
    test_scheduler_scores(&cx, dir);
    test_sets(&cx, dir);
    rmdir(dir);
    return check_done(&cx, "test_batch");
}
