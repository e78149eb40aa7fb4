/* test_api_spec.c — speculative decoding through the public API (bn.h
 * alone) on the bundled tiny model: a bn_batcher's requests with prompt
 * lookup and with a draft model (a second model handle's context) get
 * exactly the greedy tokens bn_generate gives each alone, the batcher's
 * statistics count the guesses, and bad arguments fail at once with
 * BN_E_INVALID (nothing queued). A caller built before these fields
 * still submits. */
#include "check.h"

#include <bn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define TINY "models/tiny-bitnet"
#define NR 3
#define NPRED 40

static check_ctx C;

static bn_ctx *new_ctx(const bn_model *m, uint32_t n_seq)
{
    bn_ctx_params p;
    bn_ctx_params_init(&p);
    p.n_threads = 2;
    p.n_seq = n_seq;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(m, &p, &e);
    CHECK(&C, c != NULL);
    if (!c)
        fprintf(stderr, "%s\n", e.msg);
    return c;
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

typedef struct answer {
    uint32_t ids[NPRED + 1];
    size_t n;
    int stop;
} answer;

/* Greedy tokens of one prompt alone, plain decoding. */
static void alone(const bn_model *m, const uint32_t *ids, size_t n, answer *a)
{
    bn_ctx *c = new_ctx(m, 1);
    bn_err e = {0};
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.temp = 0; /* greedy */
    bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(m), &e);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.n_predict = NPRED;
    memset(a, 0, sizeof *a);
    bn_generator *g = bn_generator_new(c, s, NULL, &gp, &e);
    CHECK(&C, g && bn_generator_prompt(g, ids, n, &e) == BN_OK);
    uint32_t id;
    while (g && a->n <= NPRED && bn_generate_next(g, &id, NULL, NULL, &e) == 1)
        a->ids[a->n++] = id;
    a->stop = g ? bn_generator_stop_reason(g) : -1;
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);
}

/* Steps b until nothing is pending, gathering tag k's tokens in got[k]. */
static void run_all(bn_batcher *b, answer *got)
{
    bn_err e = {0};
    for (int steps = 0; bn_batcher_pending(b) && steps < 5000; steps++) {
        const bn_batcher_event *ev;
        size_t n;
        CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK);
        for (size_t i = 0; i < n; i++) {
            CHECK(&C, ev[i].tag < NR);
            answer *a = &got[ev[i].tag % NR];
            if (ev[i].token != BN_NO_TOKEN && a->n < NPRED + 1)
                a->ids[a->n++] = ev[i].token;
            if (ev[i].stop)
                a->stop = ev[i].stop;
        }
    }
}

/* NR greedy requests with lookup (draft 0) or the draft model (draft 1)
 * at once: each gets its plain tokens; the statistics count guesses. */
static void test_spec(const bn_model *m, const bn_model *dm, int draft, uint32_t lookup, uint32_t draft_max)
{
    uint32_t ids[NR][64];
    size_t len[NR];
    answer want[NR], got[NR];
    for (unsigned k = 0; k < NR; k++) {
        len[k] = prompt(ids[k], k);
        alone(m, ids[k], len[k], &want[k]);
    }
    bn_ctx *c = new_ctx(m, NR), *dc = draft ? new_ctx(dm, NR) : NULL;
    bn_batcher_params bp;
    bn_batcher_params_init(&bp);
    bp.draft = dc;
    bn_sampler_params greedy;
    bn_sampler_params_init(&greedy);
    greedy.temp = 0;
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
        bn_batcher_request r;
        bn_batcher_request_init(&r);
        r.prompt = ids[k];
        r.n_prompt = len[k];
        r.n_predict = NPRED;
        r.tag = k;
        r.sampler = &greedy;
        r.lookup = draft ? 0 : lookup;
        r.draft = draft;
        r.draft_max = draft_max;
        CHECK(&C, bn_batcher_submit(b, &r, &e) == BN_OK);
    }
    memset(got, 0, sizeof got);
    run_all(b, got);
    for (unsigned k = 0; k < NR; k++)
        if (got[k].n != want[k].n || got[k].stop != want[k].stop)
            fprintf(stderr, "request %u: %zu tokens, stop %d; alone %zu, stop %d\n", k, got[k].n, got[k].stop,
                    want[k].n, want[k].stop);
    for (unsigned k = 0; k < NR; k++)
        CHECK(&C, got[k].n == want[k].n && got[k].stop == want[k].stop &&
                  !memcmp(got[k].ids, want[k].ids, want[k].n * sizeof *want[k].ids));
    bn_batcher_stats st;
    bn_batcher_stats_init(&st);
    CHECK(&C, st.size == sizeof st && st.drafted == 0);
    CHECK(&C, bn_batcher_get_stats(b, &st, &e) == BN_OK && st.size == sizeof st);
    CHECK(&C, st.passes > 0 && st.tokens >= st.passes && st.spec_passes > 0);
    CHECK(&C, st.drafted > 0 && st.accepted > 0 && st.accepted <= st.drafted);
    if (draft) /* the draft is the model itself: it guesses right */
        CHECK(&C, st.accepted * 10 >= st.drafted * 9);
    /* an older caller's stats: only its fields written */
    struct {
        bn_batcher_stats s;
        unsigned char guard[16];
    } old;
    memset(&old, 0xAB, sizeof old);
    bn_batcher_stats_defaults(&old.s, offsetof(bn_batcher_stats, spec_passes));
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
    struct {
        bn_batcher_request r;
        unsigned char guard[16];
    } old;
    memset(&old, 0xAB, sizeof old);
    bn_batcher_request_defaults(&old.r, offsetof(bn_batcher_request, lookup));
    old.r.prompt = ids;
    old.r.n_prompt = n;
    old.r.n_predict = 2;
    old.r.n_stop_ids = 0;
    CHECK(&C, bn_batcher_submit(b, &old.r, &e) == BN_OK && bn_batcher_pending(b) == 1);
    bn_batcher_free(b);
    bn_ctx_free(c);
    bn_ctx_free(small);
}

int main(void)
{
    bn_model_params mp;
    bn_model_params_init(&mp);
    bn_err e = {0};
    bn_model *m = bn_model_open(TINY, &mp, &e);
    bn_model *dm = m ? bn_model_open(TINY, &mp, &e) : NULL; /* a second handle as the draft */
    CHECK(&C, m && dm);
    if (!m || !dm) {
        fprintf(stderr, "%s\n", e.msg);
        bn_model_close(m);
        return check_done(&C, "test_api_spec");
    }
    test_errors(m);
    test_spec(m, dm, 0, 3, 4);
    test_spec(m, dm, 0, 1, 0);
    test_spec(m, dm, 1, 0, 5);
    bn_model_close(dm);
    bn_model_close(m);
    return check_done(&C, "test_api_spec");
}
