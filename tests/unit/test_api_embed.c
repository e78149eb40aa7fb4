/* test_api_embed.c — the public embedding calls (bn.h alone): the bundled
 * tiny model made an embedding model (its files, plus the
 * sentence-transformers pooling module that says last-token pooling, in a
 * folder of this test's), so the vectors can be checked against this
 * test's own pooling of the states bn_ctx_eval gives one input alone: the
 * last token's (the end token appended), divided by its L2 norm summed in
 * double. Then: batches of any size, order, KV f16 asked or not, and a KV
 * budget that holds one input at a time give the same bits (and leaves
 * the caller's bn_err as it was: the refused pass is no failure); a budget
 * below one input's blocks is BN_E_KV_FULL naming it; the end token
 * is appended once; the sequences are left as found; every refusal
 * (arguments, a language model, a sequence in use, ids, length) leaves the
 * output untouched; and what samples or scores refuses an embedding
 * context. The vectors' agreement with an independent reference is
 * tests/embed.bats' (bn-infer --embed, examples/embed.c's bytes). */
#include "api_test_util.h"

#include <math.h>

static check_ctx C;

#define D_MAX 1024
#define N_IN 5

static const char *const texts[N_IN] = {
    "It was a fine morning",
    "a",
    "",
    "Mr. Darcy said nothing, and the letter lay on the table between them for a long while.",
    "She",
};

typedef struct inputs {
    uint32_t ids[N_IN][256];
    size_t n[N_IN];
    const uint32_t *ptr[N_IN];
} inputs;

static void tokenize_all(const bn_model *m, inputs *in)
{
    bn_err e = {0};
    bn_tokenizer *t = bn_tokenizer_from_model(m, &e);
    CHECK(&C, t != NULL);
    for (int i = 0; t && i < N_IN; i++) {
        CHECK(&C, bn_tokenize(t, texts[i], strlen(texts[i]), BN_TOKENIZE_BOS, in->ids[i], 255, &in->n[i], &e) == BN_OK);
        CHECK(&C, in->n[i] < 255);
        in->ptr[i] = in->ids[i];
    }
    bn_tokenizer_free(t);
}

/* This test's pooling: the input (end token appended) alone through
 * bn_ctx_eval, its last row (a state) over its L2 norm. */
static void own_vector(bn_ctx *c, const bn_model *m, const uint32_t *ids, size_t n, float *v)
{
    uint32_t in[260];
    memcpy(in, ids, n * sizeof *ids);
    uint32_t end = (uint32_t)bn_model_eos(m);
    if (!n || in[n - 1] != end)
        in[n++] = end;
    size_t d = bn_model_n_embd(m);
    float *row = malloc(bn_model_n_vocab(m) * sizeof *row);
    bn_err e = {0};
    bn_ctx_truncate(c, 0);
    CHECK(&C, bn_ctx_eval(c, in, n, row, 0, &e) == BN_OK);
    bn_ctx_truncate(c, 0);
    double ss = 0;
    for (size_t i = 0; i < d; i++)
        ss += (double)row[i] * row[i];
    float inv = (float)(1.0 / sqrt(ss));
    for (size_t i = 0; i < d; i++)
        v[i] = row[i] * inv;
    free(row);
}

static bn_ctx *embed_ctx(const bn_model *m, uint32_t n_seq, int kv_type, uint64_t budget, uint32_t n_ctx)
{
    bn_ctx_params p;
    bn_ctx_params_init(&p);
    p.n_threads = 2;
    p.n_seq = n_seq;
    p.kv_type = kv_type;
    p.kv_budget = budget;
    p.n_ctx = n_ctx;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(m, &p, &e);
    CHECK(&C, c != NULL);
    if (!c)
        fprintf(stderr, "%s\n", e.msg);
    return c;
}

static void test_vectors(const bn_model *m, const inputs *in)
{
    size_t d = bn_model_n_embd(m);
    CHECK(&C, d <= D_MAX);
    static float own[N_IN][D_MAX], flat[N_IN * D_MAX], alone[D_MAX];
#define got(i) (flat + (size_t)(i) * d) /* bn_embed_batch's rows: d floats each */
    bn_ctx *c = embed_ctx(m, 3, BN_KV_F16, 0, 0);
    if (!c)
        return;
    for (int i = 0; i < N_IN; i++)
        own_vector(c, m, in->ids[i], in->n[i], own[i]);
    bn_err e = {0};
    /* five inputs through three sequences: two passes */
    CHECK(&C, bn_embed_batch(c, in->ptr, in->n, N_IN, flat, &e) == BN_OK);
    for (int i = 0; i < N_IN; i++) {
        CHECK(&C, !memcmp(got(i), own[i], d * sizeof(float)));
        double ss = 0;
        for (size_t j = 0; j < d; j++)
            ss += (double)got(i)[j] * got(i)[j];
        CHECK(&C, fabs(ss - 1) < 1e-5);
    }
    /* each alone, and in reverse order */
    for (int i = 0; i < N_IN; i++) {
        CHECK(&C, bn_embed(c, in->ids[i], in->n[i], alone, &e) == BN_OK);
        CHECK(&C, !memcmp(alone, own[i], d * sizeof(float)));
    }
    const uint32_t *rev[N_IN];
    size_t nrev[N_IN];
    for (int i = 0; i < N_IN; i++)
        rev[i] = in->ptr[N_IN - 1 - i], nrev[i] = in->n[N_IN - 1 - i];
    CHECK(&C, bn_embed_batch(c, rev, nrev, N_IN, flat, &e) == BN_OK);
    for (int i = 0; i < N_IN; i++)
        CHECK(&C, !memcmp(got(i), own[N_IN - 1 - i], d * sizeof(float)));
    /* the end token already there: not appended again */
    uint32_t with_end[256];
    memcpy(with_end, in->ids[0], in->n[0] * sizeof *with_end);
    with_end[in->n[0]] = (uint32_t)bn_model_eos(m);
    CHECK(&C, bn_embed(c, with_end, in->n[0] + 1, alone, &e) == BN_OK);
    CHECK(&C, !memcmp(alone, own[0], d * sizeof(float)));
    /* only sequence 0 lives after, as before */
    CHECK(&C, bn_ctx_seq_new(c, &e) == 1);
    bn_ctx_seq_free(c, 1);
    bn_ctx_free(c);

    /* KV f32 asked: the same bits (an embedding context is f32 anyway) */
    c = embed_ctx(m, 2, BN_KV_F32, 0, 0);
    CHECK(&C, c && bn_embed_batch(c, in->ptr, in->n, N_IN, flat, &e) == BN_OK);
    for (int i = 0; c && i < N_IN; i++)
        CHECK(&C, !memcmp(got(i), own[i], d * sizeof(float)));
    bn_ctx_free(c);

    /* a KV budget of one block (64 positions) at four sequences: a pass
     * cannot hold them, so they go one at a time, the same vectors */
    c = embed_ctx(m, 4, BN_KV_F32, 0, 0); /* the default budget: every sequence's whole context */
    uint64_t block = c ? bn_ctx_kv_bytes(c) / (4 * ((bn_ctx_n_ctx(c) + 63) / 64)) : 0;
    bn_ctx_free(c);
    c = embed_ctx(m, 4, BN_KV_F32, block, 0);
    CHECK(&C, c && bn_ctx_kv_bytes(c) == block);
    /* the pass refused for its blocks is no failure of the call: e is
     * left as it was (bn.h: set only when a call fails) */
    bn_err kept = {"untouched", 12345};
    CHECK(&C, c && bn_embed_batch(c, in->ptr, in->n, N_IN, flat, &kept) == BN_OK);
    CHECK(&C, kept.code == 12345 && !strcmp(kept.msg, "untouched"));
    for (int i = 0; c && i < N_IN; i++)
        CHECK(&C, !memcmp(got(i), own[i], d * sizeof(float)));
    /* an input of 100 tokens needs two blocks: BN_E_KV_FULL naming it,
     * the sequences as they were (only 0 lives), the next call fine */
    static uint32_t longer[100];
    for (int i = 0; i < 100; i++)
        longer[i] = in->ids[3][i % in->n[3]];
    const uint32_t *three[3] = {in->ptr[0], longer, in->ptr[1]};
    size_t nthree[3] = {in->n[0], 100, in->n[1]};
    CHECK(&C, c && bn_embed_batch(c, three, nthree, 3, flat, &e) == BN_E_KV_FULL && e.code == BN_E_KV_FULL);
    CHECK(&C, strstr(e.msg, "bn_embed: input 1: ") == e.msg);
    CHECK(&C, c && bn_ctx_seq_new(c, &e) == 1);
    bn_ctx_seq_free(c, 1);
    CHECK(&C, c && bn_ctx_kv_used_bytes(c) == 0);
    CHECK(&C, c && bn_embed(c, in->ids[2], in->n[2], flat, &e) == BN_OK && !memcmp(flat, own[2], d * sizeof(float)));
    bn_ctx_free(c);
#undef got
}

static void test_refusals(const bn_model *m, const bn_model *lm, const inputs *in)
{
    size_t d = bn_model_n_embd(m);
    static float out[N_IN][D_MAX], sentinel[N_IN][D_MAX];
    memset(out, 0x7f, sizeof out);
    memcpy(sentinel, out, sizeof out);
    bn_err e = {0};
    CHECK(&C, bn_model_is_embedding(m) == 1);
    CHECK(&C, bn_model_is_embedding(lm) == 0);
    CHECK(&C, bn_model_is_embedding(NULL) == 0);

    /* a language model's context */
    bn_ctx *lc = api_new_ctx(&C, lm, 2, 0);
    CHECK(&C, bn_embed(lc, in->ids[0], in->n[0], out[0], &e) == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "not an embedding model") != NULL);

    bn_ctx *c = embed_ctx(m, 2, BN_KV_F16, 0, 16);
    CHECK(&C, bn_embed_batch(NULL, in->ptr, in->n, 1, out[0], &e) == BN_E_INVALID);
    CHECK(&C, bn_embed_batch(c, NULL, in->n, 1, out[0], &e) == BN_E_INVALID);
    CHECK(&C, bn_embed_batch(c, in->ptr, NULL, 1, out[0], &e) == BN_E_INVALID);
    CHECK(&C, bn_embed_batch(c, in->ptr, in->n, 1, NULL, &e) == BN_E_INVALID);
    CHECK(&C, bn_embed_batch(c, NULL, NULL, 0, NULL, &e) == BN_OK);
    CHECK(&C, bn_embed(c, in->ids[0], in->n[0], out[0], NULL) == BN_OK); /* no bn_err: fine */
    memcpy(out, sentinel, sizeof out);
    /* an id outside the vocabulary in the second input: nothing written */
    uint32_t bad[2] = {1, bn_model_n_vocab(m)};
    const uint32_t *p2[2] = {in->ids[0], bad};
    size_t n2[2] = {in->n[0], 2};
    CHECK(&C, bn_embed_batch(c, p2, n2, 2, &out[0][0], &e) == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "input 1: token 1: id") != NULL);
    CHECK(&C, !memcmp(out, sentinel, sizeof out));
    /* longer than the context of 16 with its end token */
    uint32_t longer[16];
    for (int i = 0; i < 16; i++)
        longer[i] = in->ids[3][i % in->n[3]];
    CHECK(&C, in->n[3] >= 16);
    CHECK(&C, bn_embed(c, longer, 16, out[0], &e) == BN_E_CONTEXT_FULL);
    CHECK(&C, !memcmp(out, sentinel, sizeof out));
    CHECK(&C, bn_embed(c, longer, 15, out[0], &e) == BN_OK); /* 15 + the end token fit */
    memcpy(out, sentinel, sizeof out);
    /* a sequence holding positions */
    CHECK(&C, bn_ctx_eval(c, in->ids[0], in->n[0], NULL, 0, &e) == BN_OK);
    CHECK(&C, bn_embed(c, in->ids[1], in->n[1], out[0], &e) == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "sequence 0 holds") != NULL);
    CHECK(&C, !memcmp(out, sentinel, sizeof out));
    bn_ctx_truncate(c, 0);

    /* what samples or scores refuses an embedding context (or draft) */
    bn_sampler *s = bn_sampler_new(NULL, bn_model_n_vocab(m), &e);
    CHECK(&C, s != NULL);
    CHECK(&C, bn_generator_new(c, s, NULL, NULL, &e) == NULL && e.code == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "embedding model") != NULL);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.draft = c;
    CHECK(&C, bn_generator_new(lc, s, NULL, &gp, &e) == NULL && e.code == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "embedding model") != NULL);
    CHECK(&C, bn_generate(c, s, NULL, in->ids[0], in->n[0], NULL, NULL, NULL, &e) == BN_E_INVALID);
    CHECK(&C, bn_batcher_new(c, NULL, &e) == NULL && e.code == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "embedding model") != NULL);
    bn_batcher_params bp;
    bn_batcher_params_init(&bp);
    bp.draft = c;
    CHECK(&C, bn_batcher_new(lc, &bp, &e) == NULL && e.code == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "embedding model") != NULL);
    double ppl = 0;
    CHECK(&C, bn_ctx_perplexity(c, in->ids[3], in->n[3], 0, 0, &ppl, NULL, &e) == BN_E_INVALID);
    CHECK(&C, strstr(e.msg, "embedding model") != NULL);
    /* and the embedding context still embeds after all that */
    CHECK(&C, bn_embed(c, in->ids[1], in->n[1], out[0], &e) == BN_OK);
    bn_sampler_free(s);
    bn_ctx_free(c);
    bn_ctx_free(lc);
    (void)d;
}

int main(void)
{
    bn_model *lm = api_open_tiny(&C);
    char dir[] = "/tmp/bn-test-embed-XXXXXX";
    int made = api_tiny_as_embedding(dir);
    CHECK(&C, made == 0);
    bn_err e = {0};
    bn_model *m = made ? NULL : bn_model_open(dir, NULL, &e);
    CHECK(&C, m != NULL);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    if (m && lm) {
        inputs *in = calloc(1, sizeof *in);
        tokenize_all(m, in);
        test_vectors(m, in);
        test_refusals(m, lm, in);
        free(in);
    }
    bn_model_close(m);
    bn_model_close(lm);
    api_remove_embedding(dir);
    return check_done(&C, "test_api_embed");
}
