/* test_api_logprobs.c — the batcher's log probabilities through the public
 * API (bn.h alone) on the bundled tiny model. Each token's value and its
 * row's likeliest tokens are checked against this test's own log-softmax
 * (in double) of the logits row bn_ctx_eval gives for the same tokens
 * one at a time in a context of their own: generated tokens (greedy,
 * seeded, with logit biases and penalties that must not change the
 * values, with prompt lookup) and scored prompts (score_prompt, with and
 * without an answer after them). The values are the same bit for bit at
 * one sequence and at four under a KV budget that sets requests back;
 * tokens are bn_generate's alone; submit's checks, the getter's
 * arguments, and a result struct of an older caller. */
#include "api_test_util.h"

#include <math.h>

static check_ctx C;

#define NR 7
#define MAXT 200
#define TOP 20

/* What one request's events said: each token with its values. */
typedef struct record {
    uint32_t id;
    int is_prompt;
    float logprob;
    size_t n_top;
    bn_token_logprob top[TOP];
} record;

typedef struct answer {
    record rec[MAXT];
    size_t n;      /* records */
    size_t n_none; /* token events without values */
    api_answer toks;
} answer;

typedef struct suite {
    uint32_t ids[NR][120];
    bn_sampler_params sp[NR];
    bn_logit_bias bias[2];
    bn_batcher_request r[NR];
} suite;

static void prompt(uint32_t *ids, size_t n, unsigned k)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = 10 + (uint32_t)((i * 53 + k * 71 + i * k * 3) % 2900);
}

/* 0 greedy, top 5; 1 seeded, top 20, biases and penalties; 2 no logprobs;
 * 3 a scored prompt, nothing answered; 4 a scored prompt, then 12 greedy
 * tokens with prompt lookup, top 3; 5 greedy with prompt lookup over a repeated text, top 1;
 * 6 seeded, no alternatives. */
static void make_suite(suite *u)
{
    static const size_t len[NR] = {9, 40, 17, 100, 55, 96, 2};
    for (unsigned k = 0; k < NR; k++) {
        prompt(u->ids[k], len[k], k);
        bn_sampler_params_init(&u->sp[k]);
        u->sp[k].temp = k == 1 || k == 6 ? 0.9f : 0;
        u->sp[k].seed = 77 + k;
        bn_batcher_request_init(&u->r[k]);
        u->r[k].prompt = u->ids[k];
        u->r[k].n_prompt = len[k];
        u->r[k].sampler = &u->sp[k];
        u->r[k].n_predict = 24;
        u->r[k].tag = k;
        u->r[k].logprobs = k != 2;
    }
    u->r[0].top_logprobs = 5;
    u->r[1].top_logprobs = TOP;
    u->bias[0] = (bn_logit_bias){.id = 300, .bias = 8};
    u->bias[1] = (bn_logit_bias){.id = 301, .bias = -100};
    u->sp[1].logit_bias = u->bias;
    u->sp[1].n_logit_bias = 2;
    u->sp[1].repeat_penalty = 1.3f;
    u->sp[1].presence_penalty = 0.5f;
    u->r[3].score_prompt = 1;
    u->r[3].n_predict = 0;
    u->r[4].score_prompt = 1;
    u->r[4].n_predict = 12;
    u->r[4].top_logprobs = 3;
    u->r[4].lookup = 3; /* scored, then guessing */
    for (size_t i = 24; i < 96; i++) /* copies itself: lookup finds guesses */
        u->ids[5][i] = u->ids[5][i % 24];
    u->r[5].lookup = 2;
    u->r[5].top_logprobs = 1;
}

/* Runs the suite through a batcher over n_seq sequences and kv_budget
 * bytes, gathering every request's records. */
static void run(const bn_model *m, const suite *u, uint32_t n_seq, uint64_t kv_budget, answer *got)
{
    memset(got, 0, NR * sizeof *got);
    bn_ctx *c = api_new_ctx(&C, m, n_seq, kv_budget);
    bn_err e = {0};
    bn_batcher *b = c ? bn_batcher_new(c, NULL, &e) : NULL;
    CHECK(&C, b != NULL);
    for (unsigned k = 0; b && k < NR; k++)
        CHECK(&C, bn_batcher_submit(b, &u->r[k], &e) == BN_OK);
    for (int steps = 0; b && bn_batcher_pending(b) && steps < 5000; steps++) {
        const bn_batcher_event *ev;
        size_t n;
        CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK);
        for (size_t i = 0; i < n; i++) {
            answer *a = &got[ev[i].tag];
            bn_batcher_logprobs l;
            bn_batcher_logprobs_init(&l);
            CHECK(&C, bn_batcher_event_logprobs(b, i, &l, &e) == BN_OK);
            /* values exactly for the events that carry a token of a request that asked */
            CHECK(&C, l.has == (ev[i].token != BN_NO_TOKEN && u->r[ev[i].tag].logprobs));
            if (ev[i].stop) {
                a->toks.stop = ev[i].stop;
                a->toks.ends++;
            }
            if (ev[i].token == BN_NO_TOKEN)
                continue;
            if (!l.has) {
                a->n_none++;
            } else if (a->n < MAXT) {
                record *rc = &a->rec[a->n++];
                rc->id = ev[i].token;
                rc->is_prompt = l.is_prompt;
                rc->logprob = l.logprob;
                rc->n_top = l.n_top;
                CHECK(&C, l.n_top == u->r[ev[i].tag].top_logprobs && (l.top != NULL) == (l.n_top > 0));
                if (l.top && l.n_top <= TOP)
                    memcpy(rc->top, l.top, l.n_top * sizeof *l.top);
            }
            if (!l.is_prompt && a->toks.n < sizeof a->toks.ids / sizeof *a->toks.ids)
                a->toks.ids[a->toks.n++] = ev[i].token;
        }
    }
    CHECK(&C, !b || bn_batcher_pending(b) == 0);
    bn_batcher_free(b);
    bn_ctx_free(c);
}

/* log-softmax of one row, in double, as the reference */
static void log_softmax(const float *row, uint32_t V, double *out)
{
    double mx = row[0];
    for (uint32_t i = 1; i < V; i++)
        mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (uint32_t i = 0; i < V; i++)
        sum += exp((double)row[i] - mx);
    for (uint32_t i = 0; i < V; i++)
        out[i] = (double)row[i] - mx - log(sum);
}

/* The n_top likeliest of ls (ties: the lower id), as ids. */
static void likeliest(const double *ls, uint32_t V, size_t n_top, uint32_t *ids)
{
    for (size_t k = 0; k < n_top; k++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < V; i++) {
            int taken = 0;
            for (size_t j = 0; j < k; j++)
                taken |= ids[j] == i;
            if (!taken && (best == UINT32_MAX || ls[i] > ls[best]))
                best = i;
        }
        ids[k] = best;
    }
}

/* A's records against the reference: its prompt and tokens evaluated one
 * at a time alone; the row before each token gives its values. Returns
 * the largest difference seen. */
static double check_answer(const bn_model *m, const bn_batcher_request *r, const answer *a)
{
    uint32_t V = bn_model_n_vocab(m);
    uint32_t seq[MAXT + 120];
    size_t n = 0, first = r->score_prompt ? 1 : r->n_prompt;
    for (size_t i = 0; i < r->n_prompt; i++)
        seq[n++] = r->prompt[i];
    for (size_t i = 0; i < a->toks.n; i++)
        seq[n++] = a->toks.ids[i];
    CHECK(&C, a->n == n - first); /* one record for each scored or answered token */
    float *row = malloc(V * sizeof *row);
    double *ls = malloc(V * sizeof *ls), worst = 0;
    bn_ctx *c = api_new_ctx(&C, m, 1, 0);
    bn_err e = {0};
    for (size_t p = 0; c && p + 1 < n; p++) {
        CHECK(&C, bn_ctx_eval(c, &seq[p], 1, row, 0, &e) == BN_OK);
        if (p + 1 < first || p + 1 - first >= a->n)
            continue;
        const record *rc = &a->rec[p + 1 - first];
        log_softmax(row, V, ls);
        CHECK(&C, rc->id == seq[p + 1] && rc->is_prompt == (p + 1 < r->n_prompt));
        double d = fabs(rc->logprob - ls[rc->id]);
        uint32_t want[TOP];
        likeliest(ls, V, rc->n_top, want);
        for (size_t k = 0; k < rc->n_top; k++) {
            CHECK(&C, rc->top[k].id == want[k]);
            d = fmax(d, fabs(rc->top[k].logprob - ls[want[k]]));
        }
        worst = fmax(worst, d);
    }
    bn_ctx_free(c);
    free(row);
    free(ls);
    return worst;
}

static void test_values(const bn_model *m, const suite *u)
{
    answer *one = malloc(NR * sizeof *one), *four = malloc(NR * sizeof *four);
    run(m, u, 1, 0, one);
    /* four at once in 5 blocks of 64 positions: requests wait and are set back */
    bn_ctx *probe = api_new_ctx(&C, m, 1, 0);
    bn_err e = {0};
    uint32_t id = 10;
    CHECK(&C, bn_ctx_eval(probe, &id, 1, NULL, 0, &e) == BN_OK);
    uint64_t block = bn_ctx_kv_used_bytes(probe);
    bn_ctx_free(probe);
    run(m, u, 4, 5 * block, four);
    double worst = 0;
    for (unsigned k = 0; k < NR; k++) {
        /* the tokens are bn_generate's alone (the lookup request's too: greedy) */
        api_answer want;
        api_alone(&C, m, &u->r[k], NULL, &want, NULL);
        CHECK(&C, api_same(&one[k].toks, &want) && api_same(&four[k].toks, &want));
        /* batching and set-backs change no value */
        CHECK(&C, one[k].n == four[k].n && !memcmp(one[k].rec, four[k].rec, one[k].n * sizeof *one[k].rec));
        if (!u->r[k].logprobs) {
            CHECK(&C, one[k].n == 0 && one[k].n_none == one[k].toks.n && one[k].toks.n > 0);
            continue;
        }
        CHECK(&C, one[k].n_none == 0);
        double d = check_answer(m, &u->r[k], &one[k]);
        if (d > 1e-5)
            fprintf(stderr, "request %u: a value %.3g from the reference\n", k, d);
        CHECK(&C, d <= 1e-5);
        worst = fmax(worst, d);
    }
    CHECK(&C, one[3].n == u->r[3].n_prompt - 1 && one[3].toks.n == 0 && one[3].toks.stop == BN_STOP_LENGTH);
    CHECK(&C, one[4].n == u->r[4].n_prompt - 1 + 12 && one[4].rec[u->r[4].n_prompt - 2].is_prompt &&
                  !one[4].rec[u->r[4].n_prompt - 1].is_prompt);
    fprintf(stderr, "test_api_logprobs: largest difference from the reference %.3g\n", worst);
    free(one);
    free(four);
}

static void test_errors(const bn_model *m, const suite *u)
{
    bn_ctx *c = api_new_ctx(&C, m, 2, 0);
    bn_err e = {0};
    bn_batcher *b = bn_batcher_new(c, NULL, &e);
    CHECK(&C, b != NULL);
    bn_batcher_request r = u->r[0];
    r.top_logprobs = BN_MAX_TOP_LOGPROBS + 1;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "top_logprobs"));
    r.top_logprobs = 2;
    r.logprobs = 0;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "top_logprobs needs logprobs"));
    r.top_logprobs = 0;
    r.score_prompt = 1;
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_E_INVALID && strstr(e.msg, "score_prompt needs logprobs"));
    CHECK(&C, bn_batcher_pending(b) == 0);

    bn_batcher_logprobs l;
    bn_batcher_logprobs_init(&l);
    CHECK(&C, l.size == sizeof l && !l.has && !l.top);
    /* before any step, and past the last step's events */
    CHECK(&C, bn_batcher_event_logprobs(b, 0, &l, &e) == BN_E_INVALID && strstr(e.msg, "event 0 of 0"));
    r = u->r[0];
    CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_OK);
    const bn_batcher_event *ev;
    size_t n;
    CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK && n == 1);
    CHECK(&C, bn_batcher_event_logprobs(b, 1, &l, &e) == BN_E_INVALID);
    CHECK(&C, bn_batcher_event_logprobs(NULL, 0, &l, &e) == BN_E_INVALID);
    CHECK(&C, bn_batcher_event_logprobs(b, 0, NULL, &e) == BN_E_INVALID);
    bn_batcher_logprobs z;
    memset(&z, 0, sizeof z);
    CHECK(&C, bn_batcher_event_logprobs(b, 0, &z, &e) == BN_E_INVALID && strstr(e.msg, "_init"));
    CHECK(&C, bn_batcher_event_logprobs(b, 0, &l, NULL) == BN_OK && l.has && l.logprob <= 0 && l.n_top == 5);
    /* a caller whose struct ends before is_prompt: only has is written */
    API_OLD_STRUCT(bn_batcher_logprobs, old, bn_batcher_logprobs_defaults, is_prompt);
    CHECK(&C, bn_batcher_event_logprobs(b, 0, &old.s, &e) == BN_OK && old.s.has == 1 &&
                  old.s.size == offsetof(bn_batcher_logprobs, is_prompt));
    unsigned char ab[sizeof old.guard];
    memset(ab, 0xAB, sizeof ab);
    CHECK(&C, old.s.n_top == (size_t)0xABABABABABABABABull && !memcmp(old.guard, ab, sizeof ab));
    bn_batcher_free(b);
    bn_ctx_free(c);
}

int main(void)
{
    bn_model *m = api_open_tiny(&C);
    if (!m)
        return check_done(&C, "test_api_logprobs");
    suite *u = calloc(1, sizeof *u);
    make_suite(u);
    test_errors(m, u);
    test_values(m, u);
    free(u);
    bn_model_close(m);
    return check_done(&C, "test_api_logprobs");
}
