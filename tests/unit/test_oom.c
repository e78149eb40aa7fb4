/* test_oom.c — running out of memory through the public API. The test
 * is linked with --wrap for malloc, calloc and realloc (Makefile), so one
 * allocation of a call can be made to fail: the i-th of the call, for
 * i = 0, 1, 2, ... in turn.
 *
 * Every constructor (model, context, tokenizer, detokenizer, sampler,
 * generator, batcher) fails with BN_E_NOMEM and returns NULL at each of
 * its allocations, until it succeeds: not BN_E_FORMAT or the generic
 * BN_ERROR, which would send a caller looking at its file.
 *
 * bn_embed_batch fails with BN_E_NOMEM at each of its allocations and
 * leaves its context as it found it.
 *
 * A quantized head (q6) of several tokens without memory for their
 * activations works token by token: the same logits, bit for bit.
 *
 * A bn_batcher_step that runs out of memory loses nothing. A failed step returns
 * BN_E_NOMEM with no events; the caller steps again, and in the end every
 * request has ended exactly once with the tokens and stop reason it gets
 * alone (greedy and seeded, prompt lookup, queueing, a request answered
 * with nothing). Before the fix a step could sample a request and then
 * fail to hand over its events. */
#include "api_test_util.h"
#include "cpu.h"
#include "formats.h" /* bn_convert: the bn file it opens */
#include "head_encode.h"
#include "kern_head.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

/* The allocation that fails: the fail_at-th from arming (0 = the first);
 * -1: none. Test state, not library state. */
static long fail_at = -1, made;

static int fails(void)
{
    return fail_at >= 0 && made++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fails() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fails() ? NULL : __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    return fails() ? NULL : __real_aligned_alloc(a, n);
}

static check_ctx C;

/* The q6 head of 3 tokens, its one allocation (their activations) made
 * to fail: the same bits as with it. */
static void test_qhead_fallback(void)
{
    enum { ROWS = 70, D = 256, N = 3 };
    static float x[ROWS * D], h[N * D], y[2][N * ROWS];
    static uint8_t w[ROWS * D / 128 * 104];
    for (size_t i = 0; i < ROWS * D; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < N * D; i++)
        h[i] = (float)((i * 40503u) % 997) / 500.0f - 1.0f;
    for (size_t r = 0; r < ROWS; r++)
        bn_q6_encode_row(x + r * D, D, w + r * D / 128 * 104);
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    bn_head_fn f = bn_head_find(BN_Q6, &cpu);
    made = 0;
    fail_at = LONG_MAX;
    f(w, ROWS, D, 0, ROWS, h, N, y[0], ROWS);
    long allocs = made;
    if (!allocs) { /* the scalar head (no SIMD one here) quantizes token by token */
        printf("  q6 head: the scalar one, no allocation to fail\n");
        return;
    }
    made = 0;
    fail_at = 0;
    f(w, ROWS, D, 0, ROWS, h, N, y[1], ROWS);
    fail_at = -1;
    CHECK(&C, allocs == 1 && made >= 1);
    CHECK(&C, !memcmp(y[0], y[1], sizeof y[0]));
    printf("  q6 head, 3 tokens, without memory for their activations: %s\n",
           memcmp(y[0], y[1], sizeof y[0]) ? "DIFFERS" : "the same logits");
}

/* Runs call once to count its allocations, then again with its i-th
 * allocation failing, for every i (every few, past the first 64, for a
 * call that makes thousands): each run either fails with NULL and
 * BN_E_NOMEM, or gets by without that allocation (a buffer it can do
 * without) and is freed with drop. obj ends up as a last run without
 * failures makes it (the counting run's is dropped before the tries). */
#define EACH_ALLOCATION_FAILS(what, call, obj, drop)                                                                  \
    do {                                                                                                               \
        bn_err e_ = {0};                                                                                               \
        made = 0;                                                                                                      \
        fail_at = LONG_MAX;                                                                                            \
        (obj) = call;                                                                                                  \
        fail_at = -1;                                                                                                  \
        long total_ = made, failed_ = 0, tried_ = 0;                                                                   \
        CHECK(&C, (obj) != NULL);                                                                                      \
        int had_ = (obj) != NULL;                                                                                      \
        if (had_) /* out of the way: a batcher holds its context while it lives */                                     \
            drop(obj);                                                                                                 \
        for (long i_ = 0; had_ && i_ < total_; i_ += i_ < 64 ? 1 : 1 + total_ / 256) {                                \
            made = 0;                                                                                                  \
            memset(&e_, 0, sizeof e_); /* a failure must say so itself, not keep the last one's */                     \
            fail_at = i_;                                                                                              \
            __typeof__(obj) o_ = call;                                                                                 \
            fail_at = -1;                                                                                              \
            tried_++;                                                                                                  \
            if (o_) {                                                                                                  \
                drop(o_);                                                                                              \
                continue;                                                                                              \
            }                                                                                                          \
            failed_++;                                                                                                 \
            if (e_.code != BN_E_NOMEM)                                                                                 \
                fprintf(stderr, "%s, allocation %ld failing: status %d: %s\n", what, i_, e_.code, e_.msg);           \
            CHECK(&C, e_.code == BN_E_NOMEM);                                                                          \
        }                                                                                                              \
        CHECK(&C, failed_ > 0);                                                                                        \
        fprintf(stderr, "  %s: %ld of %ld allocations made to fail, %ld of those failed the call, each BN_E_NOMEM\n",  \
                what, tried_, total_, failed_);                                                                        \
        (obj) = had_ ? call : NULL; /* as a caller gets it */                                                          \
    } while (0)

static void test_constructors(void)
{
    bn_model_params mp;
    bn_model_params_init(&mp);
    bn_model *m;
    EACH_ALLOCATION_FAILS("bn_model_open", bn_model_open(API_TINY, &mp, &e_), m, bn_model_close);
    /* a bn file too (its metadata sections, its tensor table), mapped and streamed */
    char dir[] = "/tmp/test_oom.XXXXXX", bnf[64];
    bn_err ce;
    bn_convert_opts co = {0};
    int made_dir = mkdtemp(dir) != NULL;
    CHECK(&C, made_dir);
    if (made_dir) {
        snprintf(bnf, sizeof bnf, "%s/tiny.bn", dir);
        int converted = bn_convert(API_TINY, bnf, &co, &ce) == 0;
        CHECK(&C, converted);
        if (converted) {
            bn_model *mb;
            EACH_ALLOCATION_FAILS("bn_model_open (a bn file)", bn_model_open(bnf, &mp, &e_), mb, bn_model_close);
            bn_model_close(mb);
            mp.weights = BN_WEIGHTS_MAPPED;
            EACH_ALLOCATION_FAILS("bn_model_open (a bn file, mapped)", bn_model_open(bnf, &mp, &e_), mb,
                                  bn_model_close);
            bn_model_close(mb);
            mp.weights = BN_WEIGHTS_AUTO;
            unlink(bnf);
        }
        rmdir(dir);
    }
    if (!m)
        return;
    bn_ctx_params cp;
    bn_ctx_params_init(&cp);
    cp.n_threads = 2;
    cp.n_seq = 2;
    bn_ctx *c;
    EACH_ALLOCATION_FAILS("bn_ctx_new", bn_ctx_new(m, &cp, &e_), c, bn_ctx_free);
    bn_tokenizer *t;
    EACH_ALLOCATION_FAILS("bn_tokenizer_from_model", bn_tokenizer_from_model(m, &e_), t, bn_tokenizer_free);
    bn_detok *d = NULL;
    if (t)
        EACH_ALLOCATION_FAILS("bn_detok_new", bn_detok_new(t, 0, &e_), d, bn_detok_free);
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.top_k = 0; /* the whole vocabulary's room */
    bn_sampler *s;
    EACH_ALLOCATION_FAILS("bn_sampler_new", bn_sampler_new(&sp, bn_model_n_vocab(m), &e_), s, bn_sampler_free);
    bn_generator *g = NULL;
    if (c && s)
        EACH_ALLOCATION_FAILS("bn_generator_new", bn_generator_new(c, s, t, NULL, &e_), g, bn_generator_free);
    bn_generator_free(g);
    bn_batcher *b = NULL;
    if (c)
        EACH_ALLOCATION_FAILS("bn_batcher_new", bn_batcher_new(c, NULL, &e_), b, bn_batcher_free);
    bn_batcher_free(b);
    bn_sampler_free(s);
    bn_detok_free(d);
    bn_tokenizer_free(t);
    bn_ctx_free(c);
    bn_model_close(m);
}

/* bn_embed_batch with each of its allocations failing in turn: every
 * failure is BN_E_NOMEM and leaves the context's sequences as they were
 * (the next call succeeds), and the vectors in the end are the ones made
 * without failures, bit for bit. */
static void test_embed(void)
{
    char dir[] = "/tmp/test_oom_embed.XXXXXX";
    int made_dir = api_tiny_as_embedding(dir) == 0;
    CHECK(&C, made_dir);
    bn_err e = {0};
    bn_model *m = made_dir ? bn_model_open(dir, NULL, &e) : NULL;
    CHECK(&C, m != NULL);
    bn_ctx *c = m ? api_new_ctx(&C, m, 3, 0) : NULL;
    if (c) {
        enum { K = 4 };
        static const uint32_t a[] = {5, 17, 300, 41}, b[] = {9}, d3[] = {200, 201, 202, 203, 204, 205, 206}, d4[] = {77, 78};
        const uint32_t *ids[K] = {a, b, d3, d4};
        size_t n[K] = {4, 1, 7, 2}, dim = bn_model_n_embd(m);
        float *want = malloc(K * dim * sizeof *want), *got = malloc(K * dim * sizeof *got);
        CHECK(&C, want && got && bn_embed_batch(c, ids, n, K, want, &e) == BN_OK);
        int rc = -1, calls = 0, bad = 0;
        for (long i = 0; want && got && rc != BN_OK && i < 100000; i++) {
            made = 0;
            fail_at = i;
            rc = bn_embed_batch(c, ids, n, K, got, &e);
            fail_at = -1;
            calls++;
            bad += rc != BN_OK && rc != BN_E_NOMEM;
            bad += bn_ctx_seq_new(c, NULL) != 1; /* sequence 0 alone lives, as before */
            bn_ctx_seq_free(c, 1);
        }
        CHECK(&C, rc == BN_OK && calls > 3 && !bad);
        CHECK(&C, want && got && !memcmp(want, got, K * dim * sizeof *got));
        fprintf(stderr, "  bn_embed_batch: %d of its allocations made to fail, each BN_E_NOMEM\n", calls - 1);
        free(want);
        free(got);
    }
    bn_ctx_free(c);
    bn_model_close(m);
    if (made_dir)
        api_remove_embedding(dir);
}

#define NREQ 6

int main(void)
{
    test_qhead_fallback();
    test_constructors();
    test_embed();
    bn_model *m = api_open_tiny(&C);
    if (!m)
        return check_done(&C, "test_oom");
    uint32_t prompts[NREQ][24];
    for (unsigned k = 0; k < NREQ; k++)
        for (size_t i = 0; i < 24; i++) /* repeats, so that lookup finds guesses */
            prompts[k][i] = 10 + (uint32_t)((i % (5 + k)) * 37 + k * 101) % 3000;
    bn_sampler_params greedy, seeded;
    bn_sampler_params_init(&greedy);
    greedy.temp = 0;
    bn_sampler_params_init(&seeded);
    seeded.seed = 7;
    bn_batcher_request r[NREQ];
    api_answer want[NREQ], got[NREQ];
    memset(got, 0, sizeof got);
    for (unsigned k = 0; k < NREQ; k++) {
        bn_batcher_request_init(&r[k]);
        r[k].prompt = prompts[k];
        r[k].n_prompt = 24;
        r[k].sampler = k % 3 == 2 ? &seeded : &greedy;
        r[k].n_predict = k == 3 ? 0 : 20 + 3 * (int32_t)k;
        r[k].lookup = k % 2 ? 2 : 0;
        r[k].draft_max = 4;
        r[k].tag = k;
        api_spec spec = {.lookup = r[k].lookup, .draft_max = r[k].draft_max, .no_pacing = 1};
        api_alone(&C, m, &r[k], r[k].lookup ? &spec : NULL, &want[k], NULL);
    }

    bn_ctx *c = api_new_ctx(&C, m, 3, 0); /* fewer sequences than requests: a queue */
    bn_err e = {0};
    bn_batcher *b = c ? bn_batcher_new(c, NULL, &e) : NULL;
    CHECK(&C, b != NULL);
    for (unsigned k = 0; b && k < NREQ; k++)
        CHECK(&C, bn_batcher_submit(b, &r[k], &e) == BN_OK);

    int steps = 0, failed = 0;
    long next = 0; /* the allocation of the next step made to fail */
    while (b && bn_batcher_pending(b) && steps < 5000) {
        const bn_batcher_event *ev;
        size_t n = 99;
        made = 0;
        fail_at = next;
        int rc = bn_batcher_step(b, &ev, &n, &e);
        fail_at = -1;
        steps++;
        if (rc != BN_OK) {
            CHECK(&C, rc == BN_E_NOMEM && e.code == BN_E_NOMEM && n == 0);
            failed++;
            next++; /* the same step again, failing one allocation later */
            continue;
        }
        next = 0; /* a step that went through: fail the next one from its start */
        for (size_t i = 0; i < n; i++) {
            CHECK(&C, ev[i].tag < NREQ);
            if (ev[i].tag >= NREQ)
                continue;
            api_answer *a = &got[ev[i].tag];
            CHECK(&C, !a->ends);
            if (ev[i].token != BN_NO_TOKEN && a->n < sizeof a->ids / sizeof *a->ids)
                a->ids[a->n++] = ev[i].token;
            if (ev[i].stop) {
                a->stop = ev[i].stop;
                a->ends++;
            }
        }
    }
    CHECK(&C, b && !bn_batcher_pending(b));
    CHECK(&C, failed > 0); /* steps did fail on the way */
    for (unsigned k = 0; k < NREQ; k++) {
        int same = api_same(&got[k], &want[k]);
        CHECK(&C, same);
        if (!same)
            fprintf(stderr, "request %u: %zu tokens, %d ends, stop %d; alone %zu tokens, stop %d\n", k, got[k].n,
                    got[k].ends, got[k].stop, want[k].n, want[k].stop);
    }
    fprintf(stderr, "test_oom: %d steps, %d of them failed\n", steps, failed);
    bn_batcher_free(b);
    bn_ctx_free(c);
    bn_model_close(m);
    return check_done(&C, "test_oom");
}
