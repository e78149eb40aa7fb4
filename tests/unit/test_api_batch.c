/* test_api_batch.c — many sequences at once through the public API (bn.h
 * alone) on the bundled tiny model: bn_ctx_params of an older caller,
 * bn_ctx_eval_batch rows memcmp-equal to each sequence evaluated alone,
 * a fork that shares its prefix's KV blocks, a full KV budget that fails
 * with BN_E_KV_FULL and changes nothing, and the bn_batcher: every
 * request's tokens and stop reason are bn_generate's for it alone (greedy
 * and seeded, with queueing, shared prefixes, stop ids, a tight budget),
 * submit's checks, cancel, and the context handed back; requests set
 * back in a tight budget start over only when they fit (the work stays
 * near the tokens answered). */
#include "api_test_util.h"

static check_ctx C;

static bn_ctx *new_ctx(const bn_model *m, uint32_t n_seq, uint64_t kv_budget)
{
    return api_new_ctx(&C, m, n_seq, kv_budget);
}

/* A prompt of n ids, different for each k (ids from 10 on: plain text). */
static void prompt(uint32_t *ids, size_t n, unsigned k)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = 10 + (uint32_t)((i * 37 + k * 101 + i * k) % 3000);
}

/* -------------------------------------------------------- parameters */

/* A caller of 0.2.0 has a bn_ctx_params without n_seq and kv_budget:
 * init writes only its bytes, the library reads only those and gives it
 * one sequence. */
static void test_params(const bn_model *m)
{
    API_OLD_STRUCT(bn_ctx_params, buf, bn_ctx_params_defaults, n_seq);
    CHECK(&C, buf.s.size == offsetof(bn_ctx_params, n_seq) && buf.s.kv_type == BN_KV_F16 && buf.s.n_ctx == 0);
    CHECK(&C, buf.s.n_seq == 0xABABABABu); /* not written: past its size */
    buf.s.n_threads = 1;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(m, &buf.s, &e); /* n_seq 0xABABABAB would be refused */
    CHECK(&C, c && bn_ctx_n_seq(c) == 1);
    CHECK(&C, c && bn_ctx_seq_new(c, &e) == BN_E_INVALID && e.code == BN_E_INVALID);
    bn_ctx_free(c);

    bn_ctx_params p;
    bn_ctx_params_init(&p);
    CHECK(&C, p.size == sizeof p && p.n_seq == 0 && p.kv_budget == 0);
    p.n_seq = 5000;
    CHECK(&C, !bn_ctx_new(m, &p, &e) && e.code == BN_E_INVALID && strstr(e.msg, "n_seq"));
    p.n_seq = 2;
    p.kv_budget = 1000; /* less than one block */
    CHECK(&C, !bn_ctx_new(m, &p, &e) && e.code == BN_E_INVALID && strstr(e.msg, "budget"));
    /* "no limit": what n_seq full contexts take, no tables for blocks never used */
    p.kv_budget = UINT64_MAX;
    p.n_ctx = 128;
    bn_ctx *big = bn_ctx_new(m, &p, &e);
    p.kv_budget = 0;
    bn_ctx *dflt = bn_ctx_new(m, &p, &e);
    CHECK(&C, big && dflt && bn_ctx_kv_bytes(big) == bn_ctx_kv_bytes(dflt) && bn_ctx_kv_bytes(big) < (1u << 30));
    bn_ctx_free(big);
    bn_ctx_free(dflt);

    bn_batcher_request r;
    bn_batcher_request_init(&r);
    CHECK(&C, r.size == sizeof r && r.n_predict == 128 && !r.sampler && !r.tag);
    bn_batcher_params bp;
    bn_batcher_params_init(&bp);
    CHECK(&C, bp.size == sizeof bp && bp.pass_tokens == 0);

    /* a NULL struct to fill: a call that returns nothing does nothing */
    bn_model_params_defaults(NULL, sizeof(bn_model_params));
    bn_ctx_params_defaults(NULL, sizeof(bn_ctx_params));
    bn_sampler_params_defaults(NULL, sizeof(bn_sampler_params));
    bn_generate_params_defaults(NULL, sizeof(bn_generate_params));
    bn_generator_stats_defaults(NULL, sizeof(bn_generator_stats));
    bn_batcher_params_defaults(NULL, sizeof(bn_batcher_params));
    bn_batcher_request_defaults(NULL, sizeof(bn_batcher_request));
    bn_batcher_logprobs_defaults(NULL, sizeof(bn_batcher_logprobs));
    bn_batcher_stats_defaults(NULL, sizeof(bn_batcher_stats));
    CHECK(&C, 1); /* reached */
}

/* ------------------------------------------------ batch evaluation */

#define NS 4
#define MAXP 80

/* Each sequence alone in sequence 0 of its own context, token by token:
 * its logits row at every position. */
static float *alone_rows(const bn_model *m, const uint32_t *ids, size_t n)
{
    uint32_t V = bn_model_n_vocab(m);
    float *rows = malloc(n * V * sizeof *rows);
    bn_ctx *c = new_ctx(m, 1, 0);
    bn_err e = {0};
    for (size_t i = 0; i < n; i++)
        CHECK(&C, bn_ctx_eval(c, ids + i, 1, rows + i * V, 0, &e) == BN_OK);
    bn_ctx_free(c);
    return rows;
}

/* NS sequences of different lengths, evaluated together in passes of
 * uneven chunks (prefill of some beside decode of others): every row is
 * bit-identical to the same sequence alone. */
static void test_eval_batch(const bn_model *m)
{
    uint32_t V = bn_model_n_vocab(m);
    static const size_t len[NS] = {70, 5, 33, 80};
    uint32_t ids[NS][MAXP];
    float *alone[NS];
    for (unsigned s = 0; s < NS; s++) {
        prompt(ids[s], len[s], s);
        alone[s] = alone_rows(m, ids[s], len[s]);
    }
    bn_ctx *c = new_ctx(m, NS, 0);
    bn_err e = {0};
    CHECK(&C, bn_ctx_n_seq(c) == NS);
    int seq[NS] = {0};
    for (unsigned s = 1; s < NS; s++) {
        seq[s] = bn_ctx_seq_new(c, &e);
        CHECK(&C, seq[s] == (int)s);
    }
    CHECK(&C, bn_ctx_seq_new(c, &e) == BN_E_INVALID); /* all in use */
    /* a NULL context is an invalid argument, not a crash */
    bn_eval_tok one = {.id = 1, .seq = 0, .pos = 0, .logits = 0};
    CHECK(&C, bn_ctx_eval_batch(NULL, &one, 1, NULL, &e) == BN_E_INVALID);
    CHECK(&C, bn_ctx_eval_batch(c, NULL, 1, NULL, &e) == BN_E_INVALID);
    /* each names itself, as bn_ctx_eval does ("no context" said less) */
    CHECK(&C, bn_ctx_seq_new(NULL, &e) == BN_E_INVALID && !strcmp(e.msg, "bn_ctx_seq_new: the context is NULL"));
    CHECK(&C, bn_ctx_seq_fork(NULL, 0, 0, &e) == BN_E_INVALID && !strcmp(e.msg, "bn_ctx_seq_fork: the context is NULL"));
    CHECK(&C, bn_ctx_seq_copy(NULL, 1, 0, 0, &e) == BN_E_INVALID &&
                  !strcmp(e.msg, "bn_ctx_seq_copy: the context is NULL"));
    CHECK(&C, bn_ctx_n_seq(NULL) == 0 && bn_ctx_seq_pos(NULL, 0) == 0 && !bn_ctx_seq_tokens(NULL, 0));
    CHECK(&C, bn_ctx_kv_used_bytes(NULL) == 0 && bn_ctx_kv_blocks_left(NULL) == 0);
    bn_ctx_seq_truncate(NULL, 0, 0);
    bn_ctx_seq_free(NULL, 0);
    bn_eval_tok toks[NS * MAXP];
    float *got = malloc((size_t)NS * MAXP * V * sizeof *got);
    size_t done[NS] = {0};
    int same = 1;
    for (unsigned pass = 0;; pass++) {
        size_t n = 0;
        for (unsigned s = 0; s < NS; s++) {
            size_t k = 1 + (pass * 7 + s * 3) % 11; /* 1..11 tokens of each */
            for (size_t j = 0; j < k && done[s] < len[s]; j++, done[s]++)
                toks[n++] = (bn_eval_tok){ids[s][done[s]], (uint32_t)seq[s], (uint32_t)done[s], 1};
        }
        if (!n)
            break;
        CHECK(&C, bn_ctx_eval_batch(c, toks, n, got, &e) == BN_OK);
        for (size_t i = 0; i < n; i++)
            same &= !memcmp(got + i * V, alone[toks[i].seq] + (size_t)toks[i].pos * V, V * sizeof *got);
    }
    CHECK(&C, same);
    for (unsigned s = 0; s < NS; s++)
        CHECK(&C, bn_ctx_seq_pos(c, seq[s]) == len[s] && !memcmp(bn_ctx_seq_tokens(c, seq[s]), ids[s],
                                                                  len[s] * sizeof **ids));
    CHECK(&C, bn_ctx_pos(c) == len[0]); /* sequence 0 is bn_ctx_eval's */

    /* errors, before anything changes */
    uint64_t used = bn_ctx_kv_used_bytes(c);
    bn_eval_tok bad[2] = {{1, 1, (uint32_t)len[1], 1}, {1, 1, (uint32_t)len[1] + 5, 1}};
    CHECK(&C, bn_ctx_eval_batch(c, bad, 2, got, &e) == BN_E_INVALID && strstr(e.msg, "position"));
    bad[1] = (bn_eval_tok){1, 9, 0, 1};
    CHECK(&C, bn_ctx_eval_batch(c, bad, 2, got, &e) == BN_E_INVALID && strstr(e.msg, "sequence"));
    bad[1] = (bn_eval_tok){V, 2, (uint32_t)len[2], 1};
    CHECK(&C, bn_ctx_eval_batch(c, bad, 2, got, &e) == BN_E_INVALID);
    CHECK(&C, bn_ctx_kv_used_bytes(c) == used && bn_ctx_seq_pos(c, 1) == len[1]);

    /* a fork shares the prefix's blocks: nothing new until it writes;
     * evaluating on from it gives the rows of the whole sequence alone */
    bn_ctx_seq_free(c, seq[1]);
    CHECK(&C, bn_ctx_seq_pos(c, seq[1]) == 0 && !bn_ctx_seq_tokens(c, seq[1]));
    used = bn_ctx_kv_used_bytes(c);
    int f = bn_ctx_seq_fork(c, seq[3], 64, &e);
    CHECK(&C, f == seq[1] && bn_ctx_seq_pos(c, f) == 64);
    CHECK(&C, bn_ctx_kv_used_bytes(c) == used);
    size_t n = 0;
    for (uint32_t p = 64; p < len[3]; p++)
        toks[n++] = (bn_eval_tok){ids[3][p], (uint32_t)f, p, 1};
    CHECK(&C, bn_ctx_eval_batch(c, toks, n, got, &e) == BN_OK);
    CHECK(&C, !memcmp(got, alone[3] + 64 * V, n * V * sizeof *got));
    CHECK(&C, bn_ctx_kv_used_bytes(c) > used); /* its own block past the shared one */
    CHECK(&C, bn_ctx_seq_fork(c, seq[3], len[3] + 1, &e) == BN_E_INVALID);
    /* a roll-back of sequence 2, evaluated again: the same rows */
    bn_ctx_seq_truncate(c, seq[2], 10);
    n = 0;
    for (uint32_t p = 10; p < len[2]; p++)
        toks[n++] = (bn_eval_tok){ids[2][p], (uint32_t)seq[2], p, 1};
    CHECK(&C, bn_ctx_eval_batch(c, toks, n, got, &e) == BN_OK);
    CHECK(&C, !memcmp(got, alone[2] + 10 * V, n * V * sizeof *got));
    bn_ctx_free(c);
    free(got);
    for (unsigned s = 0; s < NS; s++)
        free(alone[s]);
}

/* A budget of two blocks: two sequences of 64 positions fill it; one
 * more position fails with BN_E_KV_FULL and changes nothing; freeing a
 * sequence makes room. */
static void test_kv_full(const bn_model *m)
{
    uint32_t V = bn_model_n_vocab(m), ids[65];
    prompt(ids, 65, 9);
    bn_ctx *probe = new_ctx(m, 1, 0);
    bn_err e = {0};
    CHECK(&C, bn_ctx_eval(probe, ids, 1, NULL, 0, &e) == BN_OK);
    uint64_t block = bn_ctx_kv_used_bytes(probe); /* one block */
    bn_ctx_free(probe);
    CHECK(&C, block > 0);

    bn_ctx *c = new_ctx(m, 2, 2 * block);
    CHECK(&C, bn_ctx_kv_bytes(c) == 2 * block && bn_ctx_kv_blocks_left(c) == 2);
    int s1 = bn_ctx_seq_new(c, &e);
    bn_eval_tok t[128];
    for (uint32_t p = 0; p < 64; p++) {
        t[p] = (bn_eval_tok){ids[p], 0, p, 0};
        t[64 + p] = (bn_eval_tok){ids[p], (uint32_t)s1, p, p == 63};
    }
    float *l = malloc(V * sizeof *l), *l2 = malloc(V * sizeof *l2);
    CHECK(&C, bn_ctx_eval_batch(c, t, 128, l, &e) == BN_OK && bn_ctx_kv_blocks_left(c) == 0);
    uint64_t used = bn_ctx_kv_used_bytes(c);
    CHECK(&C, used == 2 * block);
    memset(l2, 0x5A, V * sizeof *l2);
    memcpy(l, l2, V * sizeof *l);
    bn_eval_tok more = {ids[64], 0, 64, 1};
    CHECK(&C, bn_ctx_eval_batch(c, &more, 1, l, &e) == BN_E_KV_FULL && e.code == BN_E_KV_FULL);
    CHECK(&C, bn_ctx_eval(c, &ids[64], 1, l, 0, &e) == BN_E_KV_FULL);
    CHECK(&C, bn_ctx_pos(c) == 64 && bn_ctx_seq_pos(c, s1) == 64 && bn_ctx_kv_used_bytes(c) == used);
    CHECK(&C, !memcmp(l, l2, V * sizeof *l)); /* no logits written */
    bn_ctx_seq_free(c, s1);
    CHECK(&C, bn_ctx_kv_blocks_left(c) == 1);
    CHECK(&C, bn_ctx_eval_batch(c, &more, 1, l, &e) == BN_OK && bn_ctx_pos(c) == 65);
    float *alone = alone_rows(m, ids, 65);
    CHECK(&C, !memcmp(l, alone + 64 * V, V * sizeof *l));
    free(alone);
    free(l);
    free(l2);
    bn_ctx_free(c);
}

/* ------------------------------------------------------------ batcher */

#define NR 12
#define NPRED 20

/* NR requests: prompts of 3..152 tokens, four opening with the same 70
 * tokens, greedy and seeded, one without a limit, one asking for no
 * token, one with a stop id it meets, one that fills the context; and
 * what each gets alone. */
typedef struct suite {
    uint32_t ids[NR][160], sys[70], long_prompt[250], stop_id;
    bn_sampler_params sp[NR];
    bn_batcher_request r[NR];
    api_answer want[NR];
} suite;

static void make_suite(const bn_model *m, suite *u)
{
    prompt(u->sys, 70, 99);
    for (unsigned k = 0; k < NR; k++) {
        size_t len = 3 + (k * 29) % 150;
        if (k % 3 == 1 && len < 75)
            len = 75;
        prompt(u->ids[k], len, k);
        if (k % 3 == 1) /* a shared 70-token "system prompt" */
            memcpy(u->ids[k], u->sys, sizeof u->sys);
        bn_sampler_params_init(&u->sp[k]);
        u->sp[k].temp = k % 2 && k != 3 ? 0.9f : 0; /* greedy and seeded */
        u->sp[k].seed = 1000 + k;
        bn_batcher_request_init(&u->r[k]);
        u->r[k].prompt = u->ids[k];
        u->r[k].n_prompt = len;
        u->r[k].sampler = &u->sp[k];
        u->r[k].n_predict = k == 5 ? -1 : k == 7 ? 0 : NPRED;
        u->r[k].tag = k;
    }
    for (size_t i = 0; i < 250; i++) /* a few positions left: ends with the context */
        u->long_prompt[i] = u->ids[11][i % 20];
    u->r[11].prompt = u->long_prompt;
    u->r[11].n_prompt = 250;
    /* request 3 is request 0 that stops at 0's fourth token */
    api_alone(&C, m, &u->r[0], NULL, &u->want[0], NULL);
    u->stop_id = u->want[0].n > 3 ? u->want[0].ids[3] : 0;
    u->r[3].prompt = u->ids[0];
    u->r[3].n_prompt = u->r[0].n_prompt;
    u->r[3].stop_ids = &u->stop_id;
    u->r[3].n_stop_ids = u->stop_id ? 1 : 0;
    for (unsigned k = 1; k < NR; k++)
        api_alone(&C, m, &u->r[k], NULL, &u->want[k], NULL);
    CHECK(&C, u->want[7].n == 0 && u->want[7].stop == BN_STOP_LENGTH);
    CHECK(&C, u->want[11].stop == BN_STOP_CONTEXT && u->want[11].n >= 6);
    CHECK(&C, u->stop_id && u->want[3].stop == BN_STOP_TOKEN);
}

/* The suite through a batcher over n_seq sequences and kv_budget bytes:
 * every request gets its tokens and stop reason alone. */
static void test_batcher_matches_alone(const bn_model *m, const suite *u, uint32_t n_seq, uint64_t kv_budget)
{
    bn_ctx *c = new_ctx(m, n_seq, kv_budget);
    bn_err e = {0};
    bn_batcher *b = bn_batcher_new(c, NULL, &e);
    CHECK(&C, b != NULL);
    if (!b) {
        bn_ctx_free(c);
        return;
    }
    for (unsigned k = 0; k < NR; k++)
        CHECK(&C, bn_batcher_submit(b, &u->r[k], &e) == BN_OK);
    CHECK(&C, bn_batcher_pending(b) == NR);
    api_answer got[NR];
    memset(got, 0, sizeof got);
    api_run_all(&C, b, got, NR);
    int same = 1;
    for (unsigned k = 0; k < NR; k++) {
        const api_answer *w = &u->want[k];
        int ok = api_same(&got[k], w);
        if (!ok)
            fprintf(stderr, "request %u (n_seq %u): %zu tokens, stop %d; alone %zu, stop %d\n", k, n_seq, got[k].n,
                    got[k].stop, w->n, w->stop);
        same &= ok;
    }
    CHECK(&C, same);
    bn_batcher_free(b);
    /* the context is handed back empty, every sequence free */
    CHECK(&C, bn_ctx_pos(c) == 0 && bn_ctx_kv_used_bytes(c) == 0);
    for (uint32_t i = 1; i < n_seq; i++)
        CHECK(&C, bn_ctx_seq_new(c, &e) == (int)i);
    bn_ctx_free(c);
}

static void test_batcher_errors(const bn_model *m)
{
    uint32_t ids[300], V = bn_model_n_vocab(m);
    prompt(ids, 300, 3);
    bn_ctx *c = new_ctx(m, 2, 0);
    bn_err e = {0};
    /* a context in use is taken over: emptied */
    CHECK(&C, bn_ctx_eval(c, ids, 5, NULL, 0, &e) == BN_OK && bn_ctx_seq_new(c, &e) == 1);
    bn_batcher_params bp;
    bn_batcher_params_init(&bp);
    bp.pass_tokens = 16;
    bn_batcher *b = bn_batcher_new(c, &bp, &e);
    CHECK(&C, b && bn_ctx_pos(c) == 0);
    CHECK(&C, !bn_batcher_new(NULL, NULL, &e) && e.code == BN_E_INVALID);
    /* a step of 2^31 tokens was an "out of memory"; the limit is said */
    bn_batcher_params big;
    bn_batcher_params_init(&big);
    big.pass_tokens = BN_MAX_PASS_TOKENS + 1;
    CHECK(&C, !bn_batcher_new(c, &big, &e) && e.code == BN_E_INVALID && strstr(e.msg, "pass_tokens must be 0 to 65536"));
    /* a second batcher over the context would empty the first's sequences:
     * refused until the first is freed */
    e = (bn_err){0};
    CHECK(&C, !bn_batcher_new(c, NULL, &e) && e.code == BN_E_INVALID && strstr(e.msg, "has a batcher already"));
    /* so would a generator over it, as the context or as its draft */
    bn_sampler *s = bn_sampler_new(NULL, V, &e);
    CHECK(&C, s && !bn_generator_new(c, s, NULL, NULL, &e) && e.code == BN_E_INVALID &&
                  strstr(e.msg, "the context has a batcher"));
    bn_ctx *c3 = new_ctx(m, 1, 0);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.draft = c;
    CHECK(&C, !bn_generator_new(c3, s, NULL, &gp, &e) && e.code == BN_E_INVALID &&
                  strstr(e.msg, "the draft context has a batcher"));
    bn_ctx_free(c3);
    bn_sampler_free(s);
    bn_ctx *c2 = new_ctx(m, 2, 0);
    bn_batcher *b2 = bn_batcher_new(c2, NULL, &e);
    CHECK(&C, b2 != NULL);
    bn_batcher_free(b2);
    b2 = bn_batcher_new(c2, NULL, &e); /* free gave it back */
    CHECK(&C, b2 != NULL);
    bn_batcher_free(b2);
    /* and the other way: no batcher under a live generator (it emptied the
     * context, and the generator went on at position 0 without its prompt),
     * over the context or its draft; freeing the generator allows it */
    bn_sampler *s2 = bn_sampler_new(NULL, V, &e);
    bn_generator *g2 = bn_generator_new(c2, s2, NULL, NULL, &e);
    CHECK(&C, g2 && bn_generator_prompt(g2, ids, 5, &e) == BN_OK);
    e = (bn_err){0};
    CHECK(&C, !bn_batcher_new(c2, NULL, &e) && e.code == BN_E_INVALID &&
                  strstr(e.msg, "the context has a generator") && bn_ctx_pos(c2) == 5);
    bn_ctx *c4 = new_ctx(m, 2, 0);
    bn_batcher_params dp;
    bn_batcher_params_init(&dp);
    dp.draft = c2;
    CHECK(&C, !bn_batcher_new(c4, &dp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "the draft context has a generator"));
    bn_generator_free(g2);
    b2 = bn_batcher_new(c2, NULL, &e);
    CHECK(&C, b2 != NULL);
    bn_batcher_free(b2);
    bn_ctx_free(c4);
    bn_sampler_free(s2);
    bn_ctx_free(c2);
    bn_batcher_request r;
    bn_batcher_request_init(&r);
    r.prompt = ids;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "empty"));
    r.n_prompt = 256; /* the whole context: no room to answer */
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_CONTEXT_FULL);
    r.n_prompt = 300;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_CONTEXT_FULL);
    r.n_prompt = 4;
    ids[2] = V;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "vocabulary"));
    ids[2] = 7;
    r.n_predict = -2;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "n_predict"));
    r.n_predict = 4;
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.top_p = 2;
    r.sampler = &sp;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "bn_batcher_submit: sampler: top_p"));
    CHECK(&C, bn_batcher_submit(b, NULL, &e) == BN_E_INVALID);
    bn_batcher_request z;
    memset(&z, 0, sizeof z);
    CHECK(&C, bn_batcher_submit(b, &z, &e) == BN_E_INVALID && strstr(e.msg, "_init"));
    CHECK(&C, bn_batcher_pending(b) == 0);

    /* an older caller's request (no tag field): the tag defaults to 0 */
    API_OLD_STRUCT(bn_batcher_request, old, bn_batcher_request_defaults, tag);
    old.s.prompt = ids;
    old.s.n_prompt = 4;
    old.s.sampler = NULL;
    old.s.stop_ids = NULL;
    old.s.n_stop_ids = 0;
    CHECK(&C, bn_batcher_submit(b, &old.s, &e) == BN_OK);
    /* cancel: a running one and a queued one; then no more events */
    r.sampler = NULL;
    r.tag = 5;
    r.n_predict = 50;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_OK);
    r.tag = 6;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_OK && bn_batcher_pending(b) == 3);
    const bn_batcher_event *ev;
    size_t n;
    CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK && n == 2); /* tags 0 and 5 run, 6 waits */
    CHECK(&C, n == 2 && ev[0].tag == 0 && ev[1].tag == 5 && ev[0].token != BN_NO_TOKEN && !ev[0].stop &&
                  !ev[0].error);
    CHECK(&C, bn_batcher_cancel(b, 5) == 1 && bn_batcher_cancel(b, 6) == 1 && bn_batcher_cancel(b, 6) == 0);
    CHECK(&C, bn_batcher_pending(b) == 1);
    int others = 0, ends = 0;
    while (bn_batcher_pending(b)) {
        CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK);
        for (size_t i = 0; i < n; i++)
            others += ev[i].tag != 0, ends += ev[i].stop != 0;
    }
    CHECK(&C, !others && ends == 1);
    CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK && n == 0);
    CHECK(&C, bn_batcher_step(NULL, &ev, &n, &e) == BN_E_INVALID);
    bn_batcher_free(b);
    bn_batcher_free(NULL);
    bn_ctx_free(c);

    /* a prompt longer than the whole KV budget (one block) ends with an
     * error event; a short one beside it is answered */
    bn_ctx *probe = new_ctx(m, 1, 0);
    CHECK(&C, bn_ctx_eval(probe, ids, 1, NULL, 0, &e) == BN_OK);
    uint64_t block = bn_ctx_kv_used_bytes(probe);
    bn_ctx_free(probe);
    c = new_ctx(m, 2, block);
    b = bn_batcher_new(c, NULL, &e);
    r.n_prompt = 100;
    r.n_predict = 4;
    r.tag = 1;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_OK);
    api_answer got[2];
    memset(got, 0, sizeof got);
    api_run_all(&C, b, got, 2);
    CHECK(&C, got[1].ends == 1 && got[1].stop == BN_STOP_ERROR && got[1].n == 0);
    bn_batcher_free(b);
    bn_ctx_free(c);
}

/* A batcher over a new context of n_seq sequences and budget bytes, and
 * greedy sampling; NULL (nothing left open) when either fails. */
static bn_batcher *greedy_batcher(const bn_model *m, uint32_t n_seq, uint64_t budget, bn_ctx **c,
                                  bn_sampler_params *sp)
{
    bn_err e = {0};
    *c = new_ctx(m, n_seq, budget);
    bn_batcher *b = *c ? bn_batcher_new(*c, NULL, &e) : NULL;
    CHECK(&C, b != NULL);
    if (!b)
        bn_ctx_free(*c);
    bn_sampler_params_init(sp);
    sp->temp = 0;
    return b;
}

/* Eight requests answered to the end of the context in a budget of 6
 * KV blocks (one request's whole context takes 4): each is set back and
 * starts over once there is room for its tokens so far, not while the
 * others still hold the blocks, so the work stays near the tokens
 * answered (14.8x them when a set-back request started over as soon as
 * two blocks were free, thrown away again a step later). */
static void test_batcher_tight_budget(const bn_model *m, uint64_t block)
{
    bn_ctx *c;
    bn_sampler_params sp;
    bn_batcher *b = greedy_batcher(m, 8, 6 * block, &c, &sp);
    bn_err e = {0};
    if (!b)
        return;
    uint32_t ids[8][6];
    bn_batcher_request r[8];
    size_t prompt_tokens = 0;
    for (unsigned k = 0; k < 8; k++) {
        prompt(ids[k], 2 + k % 5, 40 + k);
        bn_batcher_request_init(&r[k]);
        r[k].prompt = ids[k];
        r[k].n_prompt = 2 + k % 5;
        r[k].sampler = &sp;
        r[k].n_predict = -1;
        r[k].tag = k;
        prompt_tokens += r[k].n_prompt;
        CHECK(&C, bn_batcher_submit(b, &r[k], &e) == BN_OK);
    }
    api_answer got[8];
    memset(got, 0, sizeof got);
    api_run_all(&C, b, got, 8);
    size_t answered = 0;
    int same = 1;
    for (unsigned k = 0; k < 8; k++) {
        api_answer want;
        api_alone(&C, m, &r[k], NULL, &want, NULL);
        same &= api_same(&got[k], &want);
        answered += got[k].n;
    }
    CHECK(&C, same);
    bn_batcher_stats st;
    bn_batcher_stats_init(&st);
    CHECK(&C, bn_batcher_get_stats(b, &st, &e) == BN_OK);
    double work = (double)st.tokens / (double)(prompt_tokens + answered);
    fprintf(stderr, "test_api_batch: 8 requests to the end of the context in 6 KV blocks: %llu tokens evaluated for "
            "%zu (%.2fx)\n", (unsigned long long)st.tokens, prompt_tokens + answered, work);
    CHECK(&C, answered > 8 * 200 && work < 2.0);
    bn_batcher_free(b);
    bn_ctx_free(c);
}

/* A prompt the whole budget cannot hold (200 tokens in 2 blocks of 64)
 * ends in the first step with BN_E_KV_FULL; it waited at the head of the
 * queue until the running request ended (40 steps here), holding up
 * every request behind it, and failed only then, alone. */
static void test_batcher_never_fits(const bn_model *m, uint64_t block)
{
    bn_ctx *c;
    bn_sampler_params sp;
    bn_batcher *b = greedy_batcher(m, 2, 2 * block, &c, &sp);
    bn_err e = {0};
    if (!b)
        return;
    uint32_t busy[4], big[200];
    prompt(busy, 4, 7);
    prompt(big, 200, 8);
    const uint32_t *ps[2] = {busy, big};
    size_t ns[2] = {4, 200};
    for (unsigned k = 0; k < 2; k++) {
        bn_batcher_request r;
        bn_batcher_request_init(&r);
        r.prompt = ps[k];
        r.n_prompt = ns[k];
        r.sampler = &sp;
        r.n_predict = k == 0 ? 40 : 4;
        r.tag = k;
        CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_OK);
    }
    const bn_batcher_event *ev;
    size_t n = 0;
    int big_refused = 0, busy_token = 0;
    CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK);
    for (size_t i = 0; i < n; i++) {
        big_refused |= ev[i].tag == 1 && ev[i].stop == BN_STOP_ERROR && ev[i].status == BN_E_KV_FULL;
        busy_token |= ev[i].tag == 0 && ev[i].token != BN_NO_TOKEN;
    }
    CHECK(&C, big_refused && busy_token);
    bn_batcher_free(b);
    bn_ctx_free(c);
}

int main(void)
{
    bn_err e = {0};
    bn_model *m = api_open_tiny(&C);
    if (!m)
        return check_done(&C, "test_api_batch");
    test_params(m);
    test_eval_batch(m);
    test_kv_full(m);
    test_batcher_errors(m);
    suite *u = calloc(1, sizeof *u);
    make_suite(m, u);
    test_batcher_matches_alone(m, u, 1, 0);
    test_batcher_matches_alone(m, u, 5, 0);
    test_batcher_matches_alone(m, u, 16, 0);
    /* 5 sequences in 6 blocks of 64 positions: requests wait and are set back */
    bn_ctx *probe = new_ctx(m, 1, 0);
    uint32_t one = 10;
    CHECK(&C, bn_ctx_eval(probe, &one, 1, NULL, 0, &e) == BN_OK);
    uint64_t block = bn_ctx_kv_used_bytes(probe);
    bn_ctx_free(probe);
    test_batcher_matches_alone(m, u, 5, 6 * block);
    test_batcher_tight_budget(m, block);
    test_batcher_never_fits(m, block);
    free(u);
    bn_model_close(m);
    return check_done(&C, "test_api_batch");
}
