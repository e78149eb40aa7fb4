/* test_api_spec.c — speculative decoding through the public API (bn.h
 * alone) on the bundled tiny model: a bn_batcher's requests with prompt
 * lookup and with a draft model (a second model handle's context) get
 * exactly the greedy tokens bn_generate gives each alone, the batcher's
 * statistics count the guesses, and bad arguments fail at once with
 * BN_E_INVALID (nothing queued). A caller built before these fields
 * still submits. The same for one answer at a time: a bn_generator with
 * lookup or a draft model gives plain decoding's tokens and text (stop
 * strings, n_predict, a full context), its statistics count passes and
 * guesses, and its parameters are checked; one generator reused for
 * answers repeats itself when reseeded and, under a KV budget smaller
 * than its context, ends where plain decoding ends. */
#include "api_test_util.h"

#define NR 3
#define NPRED 40

static check_ctx C;

static bn_ctx *new_ctx(const bn_model *m, uint32_t n_seq)
{
    return api_new_ctx(&C, m, n_seq, 0);
}

/* A prompt that repeats a phrase of 7 ids (lookup finds its n-grams),
 * different for each k. */
static size_t prompt(uint32_t *ids, unsigned k)
{
    size_t n = 30 + 11 * k;
    for (size_t i = 0; i < n; i++)
        ids[i] = 10 + (uint32_t)(((i % 7) * 37 + k * 101) % 3000);
    return n;
}

static bn_sampler_params greedy_params(void)
{
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.temp = 0;
    return sp;
}

/* A request of NPRED tokens for prompt ids[0..n) with sampler sp. */
static bn_batcher_request request(const uint32_t *ids, size_t n, uint64_t tag, const bn_sampler_params *sp)
{
    bn_batcher_request r;
    bn_batcher_request_init(&r);
    r.prompt = ids;
    r.n_prompt = n;
    r.n_predict = NPRED;
    r.sampler = sp;
    r.tag = tag;
    return r;
}

/* NR greedy requests with lookup (draft 0) or the draft model (draft 1)
 * at once: each gets its plain tokens; the statistics count guesses. */
static void test_spec(const bn_model *m, const bn_model *dm, int draft, uint32_t lookup, uint32_t draft_max)
{
    uint32_t ids[NR][64];
    bn_batcher_request r[NR];
    api_answer want[NR], got[NR];
    bn_sampler_params greedy = greedy_params();
    for (unsigned k = 0; k < NR; k++) {
        r[k] = request(ids[k], prompt(ids[k], k), k, &greedy);
        api_alone(&C, m, &r[k], NULL, &want[k], NULL);
    }
    bn_ctx *c = new_ctx(m, NR), *dc = draft ? new_ctx(dm, NR) : NULL;
    bn_batcher_params bp;
    bn_batcher_params_init(&bp);
    bp.draft = dc;
    bn_err e = {0};
    bn_batcher *b = bn_batcher_new(c, &bp, &e);
    CHECK(&C, b != NULL);
    if (!b) {
        fprintf(stderr, "%s\n", e.msg);
        bn_ctx_free(c);
        bn_ctx_free(dc);
        return;
    }
    for (unsigned k = 0; k < NR; k++) {
        r[k].lookup = draft ? 0 : lookup;
        r[k].draft = draft;
        r[k].draft_max = draft_max;
        CHECK(&C, bn_batcher_submit(b, &r[k], &e) == BN_OK);
    }
    memset(got, 0, sizeof got);
    api_run_all(&C, b, got, NR);
    for (unsigned k = 0; k < NR; k++) {
        if (!api_same(&got[k], &want[k]))
            fprintf(stderr, "request %u: %zu tokens, stop %d; alone %zu, stop %d\n", k, got[k].n, got[k].stop,
                    want[k].n, want[k].stop);
        CHECK(&C, api_same(&got[k], &want[k]));
    }
    bn_batcher_stats st;
    bn_batcher_stats_init(&st);
    CHECK(&C, st.size == sizeof st && st.drafted == 0);
    CHECK(&C, bn_batcher_get_stats(b, &st, &e) == BN_OK && st.size == sizeof st);
    CHECK(&C, st.passes > 0 && st.tokens >= st.passes && st.spec_passes > 0);
    CHECK(&C, st.drafted > 0 && st.accepted > 0 && st.accepted <= st.drafted);
    /* a speculative pass gives its kept guesses and one token more, but
     * for a request's last pass, which may end at a stop token */
    CHECK(&C, st.spec_tokens <= st.spec_passes + st.accepted && st.spec_tokens + NR >= st.spec_passes + st.accepted);
    CHECK(&C, st.spec_tokens > st.spec_passes);
    if (draft) /* the draft is the model itself: it guesses right */
        CHECK(&C, st.accepted * 10 >= st.drafted * 9);
    /* an older caller's stats: only its fields written */
    API_OLD_STRUCT(bn_batcher_stats, old, bn_batcher_stats_defaults, spec_passes);
    CHECK(&C, bn_batcher_get_stats(b, &old.s, &e) == BN_OK && old.s.passes == st.passes);
    CHECK(&C, old.s.spec_passes == 0xABABABABABABABABull);
    bn_batcher_free(b);
    bn_ctx_free(c);
    bn_ctx_free(dc);
}

/* Bad arguments fail at submit (or new) with BN_E_INVALID, nothing queued. */
static void test_errors(const bn_model *m)
{
    uint32_t ids[64];
    size_t n = prompt(ids, 0);
    bn_ctx *c = new_ctx(m, 2), *small = new_ctx(m, 1);
    bn_err e = {0};
    bn_batcher_params bp;
    bn_batcher_params_init(&bp);
    CHECK(&C, bp.draft == NULL);
    bp.draft = small; /* fewer sequences than c */
    CHECK(&C, !bn_batcher_new(c, &bp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "draft"));
    bp.draft = c;
    CHECK(&C, !bn_batcher_new(c, &bp, &e) && e.code == BN_E_INVALID);
    /* a draft whose KV budget cannot hold all its sequences: its guesses
     * could not wait for blocks (a step failed with BN_E_KV_FULL) */
    bn_ctx *tight = api_new_ctx(&C, m, 2, 3 * 98304); /* 3 blocks of the 8 two full sequences take */
    bp.draft = tight;
    CHECK(&C, tight && !bn_batcher_new(c, &bp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "KV budget"));
    bn_ctx_free(tight);
    bn_batcher *b = bn_batcher_new(c, NULL, &e);
    CHECK(&C, b != NULL);
    bn_batcher_request r;
    bn_batcher_request_init(&r);
    CHECK(&C, r.lookup == 0 && r.draft_max == 0 && r.draft == 0);
    r.prompt = ids;
    r.n_prompt = n;
    r.lookup = 65;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "lookup"));
    r.lookup = 2;
    r.draft_max = 128;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "draft_max"));
    r.draft_max = 4;
    r.draft = 1;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "exclude"));
    r.lookup = 0;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "no draft model"));
    CHECK(&C, bn_batcher_pending(b) == 0);
    CHECK(&C, bn_batcher_get_stats(b, NULL, &e) == BN_E_INVALID && bn_batcher_get_stats(NULL, NULL, &e) == BN_E_INVALID);
    bn_batcher_stats st;
    memset(&st, 0, sizeof st); /* size not set */
    CHECK(&C, bn_batcher_get_stats(b, &st, &e) == BN_E_INVALID);
    /* a caller built before lookup/draft_max/draft: its request is read
     * up to its size, the rest off */
    API_OLD_STRUCT(bn_batcher_request, old, bn_batcher_request_defaults, lookup);
    old.s.prompt = ids;
    old.s.n_prompt = n;
    old.s.n_predict = 2;
    old.s.n_stop_ids = 0;
    CHECK(&C, bn_batcher_submit(b, &old.s, &e) == BN_OK && bn_batcher_pending(b) == 1);
    bn_batcher_free(b);
    bn_ctx_free(c);
    bn_ctx_free(small);
}

/* ------------------------------------------------ one answer at a time */

/* A prompt with nothing to copy (no id repeats). */
static size_t prompt_unique(uint32_t *ids)
{
    for (size_t i = 0; i < 40; i++)
        ids[i] = 10 + (uint32_t)((i * 131 + 7) % 3000);
    return 40;
}

/* The generator's statistics after an answer of n tokens that ended with
 * stop: each pass gives its kept guesses and one token more, but the
 * prompt's pass gives the first token and the last token is evaluated
 * only when the answer ended at a stop token after it. */
static void check_stats(const bn_generator_stats *st, size_t n, int stop, int spec)
{
    CHECK(&C, st->size == sizeof *st && st->tokens == n && st->accepted <= st->drafted);
    if (!spec) {
        CHECK(&C, st->drafted == 0 && st->accepted == 0);
        CHECK(&C, st->passes + (stop != BN_STOP_TOKEN) == n || n == 0);
    } else
        CHECK(&C, st->passes + st->accepted <= st->tokens && st->tokens <= st->passes + st->accepted + 1);
}

/* Greedy answers of the generator with lookup or the draft model are
 * plain decoding's tokens, for prompts that copy and one that does not,
 * and for a prompt that fills the context; the statistics add up. Lookup and the draft
 * paced (the default; how much it guesses depends on the times of its
 * passes) and not (it guesses wherever it finds a guess). */
static void test_generator_spec(const bn_model *m, const bn_model *dm)
{
    bn_ctx *dc = new_ctx(dm, 1); /* borrowed by every draft answer in turn */
    const api_spec specs[] = {{3, 4, NULL, 1}, {1, 0, NULL, 1}, {2, 127, NULL, 0}, {3, 4, NULL, 0}, {0, 5, dc, 1},
                              {0, 1, dc, 1},   {0, 4, dc, 0}};
    enum { NS = sizeof specs / sizeof *specs, NP = NR + 2 };
    uint32_t ids[NP][256];
    bn_batcher_request r[NP];
    bn_sampler_params greedy = greedy_params();
    for (unsigned k = 0; k < NR; k++)
        r[k] = request(ids[k], prompt(ids[k], k), k, &greedy);
    r[NR] = request(ids[NR], prompt_unique(ids[NR]), NR, &greedy);
    for (size_t i = 0; i < 240; i++) /* 16 positions left; a phrase that repeats */
        ids[NR + 1][i] = 10 + (uint32_t)(i % 9) * 53;
    r[NR + 1] = request(ids[NR + 1], 240, NR + 1, &greedy);
    r[NR + 1].n_predict = -1;
    uint64_t drafted[NS] = {0}, accepted[NS] = {0}, passes[NS] = {0}, tokens[NS] = {0};
    for (unsigned k = 0; k < NP; k++) {
        api_answer want, got;
        bn_generator_stats st;
        api_alone(&C, m, &r[k], NULL, &want, &st);
        check_stats(&st, want.n, want.stop, 0);
        if (k == NR + 1) /* the last token needs no position */
            CHECK(&C, want.stop == BN_STOP_CONTEXT && want.n == 17);
        for (unsigned i = 0; i < NS; i++) {
            api_alone(&C, m, &r[k], &specs[i], &got, &st);
            if (!api_same(&got, &want))
                fprintf(stderr, "prompt %u, spec %u: %zu tokens, stop %d; plain %zu, stop %d\n", k, i, got.n,
                        got.stop, want.n, want.stop);
            CHECK(&C, api_same(&got, &want));
            check_stats(&st, got.n, got.stop, 1);
            drafted[i] += st.drafted, accepted[i] += st.accepted, passes[i] += st.passes, tokens[i] += st.tokens;
        }
    }
    for (unsigned i = 0; i < NS; i++) {
        if (!specs[i].no_pacing) /* paced: guessing may not pay on this small model */
            continue;
        CHECK(&C, drafted[i] > 0 && accepted[i] > 0 && passes[i] < tokens[i]);
        if (specs[i].draft) /* the draft is the model itself: it guesses right */
            CHECK(&C, accepted[i] * 10 >= drafted[i] * 9);
    }
    bn_ctx_free(dc);
}

/* One answer's text through bn_generate. */
typedef struct text_answer {
    char text[4096];
    size_t len;
    int rc;
} text_answer;

static int on_token(void *user, uint32_t id, const uint8_t *text, size_t len)
{
    text_answer *a = user;
    if (a->len + len <= sizeof a->text) {
        memcpy(a->text + a->len, text, len);
        a->len += len;
    }
    return 0;
}

static void gen_text(const bn_model *m, bn_tokenizer *t, const uint32_t *ids, size_t n, const char *stop,
                     const api_spec *spec, text_answer *a)
{
    memset(a, 0, sizeof *a);
    bn_ctx *c = new_ctx(m, 1);
    bn_sampler_params sp = greedy_params();
    bn_err e = {0};
    bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(m), &e);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.n_predict = NPRED;
    gp.stop = &stop;
    gp.n_stop = stop ? 1 : 0;
    if (spec) {
        gp.lookup = spec->lookup;
        gp.draft_max = spec->draft_max;
        gp.draft = spec->draft;
        gp.spec_no_pacing = spec->no_pacing;
    }
    a->rc = bn_generate(c, s, t, ids, n, &gp, on_token, a, &e);
    if (a->rc < 0)
        fprintf(stderr, "%s\n", e.msg);
    bn_sampler_free(s);
    bn_ctx_free(c);
}

/* The text is plain decoding's, byte for byte, also when a stop string
 * ends the answer in the middle of a pass's kept guesses; a generator
 * answers a second prompt after such an end as a fresh one would; seeded
 * sampling with a draft model repeats itself. */
static void test_generator_text(const bn_model *m, const bn_model *dm)
{
    bn_err e = {0};
    bn_tokenizer *t = bn_tokenizer_from_model(m, &e);
    CHECK(&C, t != NULL);
    if (!t)
        return;
    bn_ctx *dc = new_ctx(dm, 1);
    const api_spec specs[] = {{3, 4, NULL, 1}, {0, 6, dc, 1}};
    uint32_t ids[64];
    size_t n = prompt(ids, 1);
    text_answer want, got;
    gen_text(m, t, ids, n, NULL, NULL, &want);
    CHECK(&C, want.rc == BN_STOP_LENGTH && want.len > 8);
    char stop[4] = {0};
    memcpy(stop, want.text + want.len / 2, 3);
    CHECK(&C, strlen(stop) == 3);
    text_answer want_stop;
    gen_text(m, t, ids, n, stop, NULL, &want_stop);
    CHECK(&C, want_stop.rc == BN_STOP_STRING && want_stop.len < want.len);
    for (unsigned i = 0; i < 2; i++) {
        gen_text(m, t, ids, n, NULL, &specs[i], &got);
        CHECK(&C, got.rc == want.rc && got.len == want.len && !memcmp(got.text, want.text, want.len));
        gen_text(m, t, ids, n, stop, &specs[i], &got);
        CHECK(&C, got.rc == want_stop.rc && got.len == want_stop.len && !memcmp(got.text, want_stop.text, got.len));
    }

    /* the same generator, a second prompt after a stop string: the first
     * answer's guesses are gone from the cache */
    bn_sampler_params sp = greedy_params();
    bn_ctx *c = new_ctx(m, 1);
    bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(m), &e);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.n_predict = NPRED;
    const char *stops[1] = {stop};
    gp.stop = stops;
    gp.n_stop = 1;
    gp.lookup = 2;
    bn_generator *g = bn_generator_new(c, s, t, &gp, &e);
    CHECK(&C, g && bn_generator_prompt(g, ids, n, &e) == BN_OK);
    uint32_t id;
    while (g && bn_generate_next(g, &id, NULL, NULL, &e) == 1)
        ;
    CHECK(&C, g && bn_generator_stop_reason(g) == BN_STOP_STRING);
    uint32_t ids2[64];
    size_t n2 = prompt(ids2, 2);
    bn_sampler_params sp2 = greedy_params();
    bn_batcher_request r2 = request(ids2, n2, 0, &sp2);
    api_answer want2, got2;
    memset(&got2, 0, sizeof got2);
    api_alone(&C, m, &r2, NULL, &want2, NULL);
    CHECK(&C, g && bn_generator_prompt(g, ids2, n2, &e) == BN_OK);
    while (g && got2.n < NPRED + 1 && bn_generate_next(g, &id, NULL, NULL, &e) == 1)
        got2.ids[got2.n++] = id;
    got2.stop = bn_generator_stop_reason(g);
    got2.ends = 1;
    /* greedy text of ids2 may meet the stop string too: then it is shorter */
    CHECK(&C, got2.n <= want2.n && !memcmp(got2.ids, want2.ids, got2.n * sizeof *got2.ids));
    CHECK(&C, got2.stop == (got2.n < want2.n ? BN_STOP_STRING : want2.stop));
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);

    /* seeded sampling with a draft model: the same seed, the same tokens */
    bn_sampler_params seeded;
    bn_sampler_params_init(&seeded);
    seeded.temp = 0.9f;
    seeded.seed = 7;
    bn_batcher_request rs = request(ids, n, 0, &seeded);
    api_answer a1, a2;
    bn_generator_stats st;
    api_alone(&C, m, &rs, &specs[1], &a1, &st);
    api_alone(&C, m, &rs, &specs[1], &a2, NULL);
    CHECK(&C, api_same(&a1, &a2) && a1.n <= NPRED && st.drafted > 0);
    check_stats(&st, a1.n, a1.stop, 1);
    bn_ctx_free(dc);
    bn_tokenizer_free(t);
}

/* bn_generate_params' speculative fields are checked by bn_generator_new;
 * an older caller's params and stats are read and written to their size. */
static void test_generator_errors(const bn_model *m)
{
    bn_ctx *c = new_ctx(m, 1);
    bn_sampler_params sp = greedy_params();
    bn_err e = {0};
    bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(m), &e);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    CHECK(&C, gp.lookup == 0 && gp.draft_max == 0 && gp.draft == NULL);
    gp.lookup = 65;
    CHECK(&C, !bn_generator_new(c, s, NULL, &gp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "lookup"));
    gp.lookup = 2;
    gp.draft_max = 128;
    CHECK(&C, !bn_generator_new(c, s, NULL, &gp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "draft_max"));
    gp.draft_max = 127;
    gp.draft = c;
    CHECK(&C, !bn_generator_new(c, s, NULL, &gp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "exclude"));
    gp.lookup = 0;
    CHECK(&C, !bn_generator_new(c, s, NULL, &gp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "itself"));
    /* a draft whose KV budget cannot hold its positions (one block): it
     * failed with BN_E_KV_FULL mid-answer, which ended the answer */
    bn_ctx *tight = api_new_ctx(&C, m, 1, 98304);
    gp.draft = tight;
    CHECK(&C, tight && bn_ctx_n_ctx(tight) > 64 && !bn_generator_new(c, s, NULL, &gp, &e) &&
                  e.code == BN_E_INVALID && strstr(e.msg, "KV budget"));
    bn_ctx_free(tight);
    gp.draft = c;

    /* a caller built before pacing: spec_no_pacing reads as 0 (paced) */
    API_OLD_STRUCT(bn_generate_params, np, bn_generate_params_defaults, spec_no_pacing);
    CHECK(&C, np.s.size == offsetof(bn_generate_params, spec_no_pacing) && np.s.n_predict == 128 && np.s.lookup == 0);
    np.s.n_predict = 3;
    np.s.lookup = 2;
    np.s.stop = NULL;
    np.s.stop_ids = NULL;
    bn_generator *gnp = bn_generator_new(c, s, NULL, &np.s, &e);
    CHECK(&C, gnp != NULL);
    bn_generator_free(gnp);

    API_OLD_STRUCT(bn_generate_params, old, bn_generate_params_defaults, lookup);
    CHECK(&C, old.s.size == offsetof(bn_generate_params, lookup) && old.s.n_predict == 128);
    old.s.n_predict = 5;
    old.s.stop = NULL;
    old.s.stop_ids = NULL;
    bn_generator *g = bn_generator_new(c, s, NULL, &old.s, &e); /* lookup 0xABABABAB would be refused */
    uint32_t ids[64], id;
    size_t n = prompt(ids, 0), got = 0;
    CHECK(&C, g && bn_generator_prompt(g, ids, n, &e) == BN_OK);
    while (g && bn_generate_next(g, &id, NULL, NULL, &e) == 1)
        got++;
    CHECK(&C, got == 5);
    bn_generator_stats st;
    bn_generator_stats_init(&st);
    CHECK(&C, st.size == sizeof st && st.passes == 0 && st.tokens == 0);
    CHECK(&C, bn_generator_get_stats(g, NULL, &e) == BN_E_INVALID && bn_generator_get_stats(NULL, &st, &e) == BN_E_INVALID);
    memset(&st, 0, sizeof st); /* size not set */
    CHECK(&C, bn_generator_get_stats(g, &st, &e) == BN_E_INVALID);
    API_OLD_STRUCT(bn_generator_stats, ost, bn_generator_stats_defaults, drafted);
    CHECK(&C, bn_generator_get_stats(g, &ost.s, &e) == BN_OK && ost.s.tokens == 5 && ost.s.passes == 4);
    CHECK(&C, ost.s.drafted == 0xABABABABABABABABull && ost.guard[0] == 0xAB);
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);
}

/* Every token of one answer from g (reseeded to seed first) to its end;
 * the end's code in *rc (BN_OK or the error). */
static size_t answer_all(bn_generator *g, bn_sampler *s, uint64_t seed, const uint32_t *ids, size_t n,
                         uint32_t *out, size_t max, int *rc)
{
    bn_err e = {0};
    size_t k = 0;
    uint32_t id;
    bn_sampler_reseed(s, seed);
    if ((*rc = bn_generator_prompt(g, ids, n, &e)))
        return 0;
    while ((*rc = bn_generate_next(g, &id, NULL, NULL, &e)) == 1)
        if (k < max)
            out[k++] = id;
    return k;
}

/* One generator used for several answers: (1) with a KV budget under the
 * context (2 of its 4 blocks), greedy lookup and a draft give plain
 * decoding's tokens up to the same BN_E_KV_FULL (a pass whose guesses do
 * not fit is run without them); (2) reseeded to the same seed, sampling
 * repeats its answer with lookup or a draft as without (the draft's
 * draws and guess count start afresh each answer). */
static void test_generator_reuse(const bn_model *m, const bn_model *dm)
{
    bn_ctx *full = new_ctx(m, 1);
    uint64_t half = full ? bn_ctx_kv_bytes(full) / 2 : 0;
    bn_ctx_free(full);
    uint32_t ids[100];
    for (size_t i = 0; i < 100; i++) /* a phrase that repeats: lookup guesses */
        ids[i] = 10 + (uint32_t)(i % 9) * 53;
    for (int sampled = 0; sampled < 2; sampled++) {
        uint32_t want[2][256] = {{0}}, got[2][256];
        size_t n_want[2] = {0};
        int rc_want = 0;
        for (int mode = 0; mode < 3; mode++) { /* plain, lookup, draft */
            bn_ctx *c = api_new_ctx(&C, m, 1, sampled ? 0 : half), *dc = mode == 2 ? new_ctx(dm, 1) : NULL;
            bn_sampler_params sp;
            bn_sampler_params_init(&sp);
            sp.temp = sampled ? 0.9f : 0;
            bn_err e = {0};
            bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(m), &e);
            bn_generate_params gp;
            bn_generate_params_init(&gp);
            gp.n_predict = sampled ? 40 : -1;
            gp.spec_no_pacing = 1;
            gp.lookup = mode == 1 ? 2 : 0;
            gp.draft = dc;
            bn_generator *g = c && s ? bn_generator_new(c, s, NULL, &gp, &e) : NULL;
            CHECK(&C, g != NULL);
            size_t n[2] = {0};
            int rc[2] = {0};
            for (int run = 0; g && run < 2; run++)
                n[run] = answer_all(g, s, 7, ids, 100, got[run], 256, &rc[run]);
            /* the same seed twice: the same answer (sampled draws differ between modes) */
            CHECK(&C, n[0] == n[1] && !memcmp(got[0], got[1], n[0] * sizeof *got[0]) && rc[0] == rc[1]);
            if (!mode) {
                memcpy(want, got, sizeof want);
                n_want[0] = n[0], n_want[1] = n[1], rc_want = rc[0];
                if (!sampled) /* the budget, not the context, ends it */
                    CHECK(&C, rc_want == BN_E_KV_FULL && n_want[0] > 10);
            } else if (!sampled) { /* greedy: plain decoding's tokens, up to the same end */
                if (n[0] != n_want[0] || memcmp(got[0], want[0], n[0] * sizeof *got[0]) || rc[0] != rc_want)
                    fprintf(stderr, "reuse: mode %d: %zu tokens, rc %d; plain %zu, rc %d\n", mode, n[0], rc[0],
                            n_want[0], rc_want);
                CHECK(&C, n[0] == n_want[0] && !memcmp(got[0], want[0], n[0] * sizeof *got[0]) && rc[0] == rc_want);
            }
            bn_generator_free(g);
            bn_sampler_free(s);
            bn_ctx_free(dc);
            bn_ctx_free(c);
        }
    }
}

int main(void)
{
    bn_model *m = api_open_tiny(&C);
    bn_model *dm = m ? api_open_tiny(&C) : NULL; /* a second handle as the draft */
    if (!m || !dm) {
        bn_model_close(m);
        return check_done(&C, "test_api_spec");
    }
    test_errors(m);
    test_spec(m, dm, 0, 3, 4);
    test_spec(m, dm, 0, 1, 0);
    test_spec(m, dm, 1, 0, 5);
    test_generator_errors(m);
    test_generator_spec(m, dm);
    test_generator_text(m, dm);
    test_generator_reuse(m, dm);
    bn_model_close(dm);
    bn_model_close(m);
    return check_done(&C, "test_api_spec");
}
