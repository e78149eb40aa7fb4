/* test_spec.c — speculative decoding's parts (issue 16): prompt lookup's
 * drafts and adaptive k (lookup.h), the sampler's check of a drafted token
 * (bn_sampler_verify) and of a draft model's sampled token
 * (bn_sampler_verify_dist, rejection sampling), and sampled generation
 * with prompt lookup and with a draft model keeping the main model's
 * distribution on the bundled tiny model.
 *
 * The statistical checks are two-sample chi-square tests at significance
 * 0.001 against plain sampling (bn_sampler_sample, bn_gen_answer without
 * lookup), with fixed seeds: they pass or fail the same way every run.
 * Known wrong rules (on a rejection, draw from p itself instead of p
 * without the draft, or instead of max(0, p - q); keep every draft p
 * allows) are run through the same test and must fail it, so the test
 * can tell. (Bit-identical logits of verify passes and greedy
 * output with lookup are tested over every kernel set in test_batch.c.) */
#include "check.h"
#include "generate.h"
#include "lookup.h"
#include "model.h"
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TINY "models/tiny-bitnet"

static check_ctx C;

/* ------------------------------------------------------------- lookup */

static void test_draft(void)
{
    bn_lookup l;
    bn_lookup_init(&l, 3, 8);
    CHECK(&C, l.k == 4);
    uint32_t out[16];
    /* the longest suffix that occurred before wins over a later shorter one */
    const uint32_t a[] = {1, 2, 3, 4, 5, 6, 9, 3, 7, 2, 3};
    CHECK(&C, bn_lookup_draft(&l, a, 11, 16, out) == 4 && out[0] == 4 && out[3] == 9); /* "2 3" at 1, not "3" at 7 */
    /* the latest occurrence of the suffix; drafts run up to the text's end */
    const uint32_t b[] = {5, 1, 8, 5, 1, 9, 9, 5, 1};
    CHECK(&C, bn_lookup_draft(&l, b, 9, 16, out) == 4 && out[0] == 9 && out[1] == 9 && out[2] == 5 && out[3] == 1);
    /* limit, no match, too short */
    CHECK(&C, bn_lookup_draft(&l, b, 9, 2, out) == 2);
    const uint32_t c[] = {1, 2, 3, 4};
    CHECK(&C, bn_lookup_draft(&l, c, 4, 16, out) == 0);
    CHECK(&C, bn_lookup_draft(&l, c, 1, 16, out) == 0 && bn_lookup_draft(&l, c, 0, 16, out) == 0);
    /* a repeating pattern drafts through its own suffix */
    const uint32_t d[] = {7, 7, 7};
    CHECK(&C, bn_lookup_draft(&l, d, 3, 16, out) == 1 && out[0] == 7);
    /* n-gram of 1 only */
    bn_lookup_init(&l, 1, 2);
    CHECK(&C, l.k == 2 && bn_lookup_draft(&l, a, 11, 16, out) == 2 && out[0] == 7 && out[1] == 2);
    /* adaptive k: doubles on full acceptance up to draft_max, shrinks to
     * accepted + 1 on a rejection, never below 1 */
    bn_lookup_init(&l, 2, 16);
    bn_lookup_update(&l, 4, 4);
    CHECK(&C, l.k == 8);
    bn_lookup_update(&l, 8, 8);
    bn_lookup_update(&l, 16, 16);
    CHECK(&C, l.k == 16);
    bn_lookup_update(&l, 16, 5);
    CHECK(&C, l.k == 6);
    bn_lookup_update(&l, 6, 0);
    CHECK(&C, l.k == 1);
    bn_lookup_update(&l, 0, 0); /* no draft: no change */
    CHECK(&C, l.k == 1);
    bn_lookup_update(&l, 1, 1);
    CHECK(&C, l.k == 2);
}

/* Pacing: passes of n tokens that cost step · (1 + extra · (n − 1)),
 * each guess step · guess (a draft model's step; 0: prompt lookup),
 * guesses kept as 3 of 4, the budget over 64 steps: how many steps
 * guessed, and the largest guess count. */
static void paced_run(double extra, double guess, int *guessing, uint32_t *most)
{
    bn_lookup l;
    bn_lookup_init(&l, 3, 8);
    bn_lookup_pace(&l);
    const double step = 1e-4;
    *guessing = 0;
    *most = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t k = bn_lookup_budget(&l);
        if (k) {
            (*guessing)++;
            *most = k > *most ? k : *most;
            size_t kept = k * 3 / 4; /* 3 of 4 */
            bn_lookup_update(&l, k, kept);
            if (guess > 0)
                bn_lookup_guess_time(&l, k, step * guess * (double)k);
        }
        bn_lookup_time(&l, k + 1, step * (1 + extra * (double)k));
    }
}

static void test_pacing(void)
{
    bn_lookup l;
    bn_lookup_init(&l, 3, 8);
    CHECK(&C, bn_lookup_budget(&l) == 4); /* not paced: k */
    bn_lookup_pace(&l);
    CHECK(&C, bn_lookup_budget(&l) == 0); /* a plain step's time first */
    bn_lookup_time(&l, 1, 1e-4);
    CHECK(&C, bn_lookup_budget(&l) == 4); /* then a pass, to time one */
    /* a time 10x the smoothed one moves it by a quarter of 2x */
    bn_lookup_time(&l, 1, 1e-3);
    CHECK(&C, fabs(l.cost[1] - 1.25e-4) < 1e-12);
    /* a model read from memory (a pass of 4 costs 1.45 steps): guesses
     * that are mostly kept pay, on every step */
    int guessing;
    uint32_t most;
    paced_run(0.15, 0, &guessing, &most);
    CHECK(&C, guessing >= 60 && most >= 2);
    /* the same with a draft model at a twentieth of a step: still; at a
     * whole step (the model as its own draft), no longer */
    paced_run(0.15, 0.05, &guessing, &most);
    CHECK(&C, guessing >= 60 && most >= 2);
    paced_run(0.15, 1.0, &guessing, &most);
    CHECK(&C, guessing >= 2 && guessing <= 4);
    /* one in the caches (a pass of n costs n steps): they do not, and
     * after the timing passes it guesses only to look again, 3 at most,
     * at intervals of 32 steps and more */
    paced_run(1.0, 0, &guessing, &most);
    CHECK(&C, guessing >= 2 && guessing <= 4 && most <= 4);
    /* passes cheaper than steps (n tokens for 1.05 steps) with everything
     * kept: the longest guesses */
    bn_lookup_init(&l, 3, 8);
    bn_lookup_pace(&l);
    uint32_t k = 0;
    for (int i = 0; i < 16; i++) {
        k = bn_lookup_budget(&l);
        bn_lookup_update(&l, k, k);
        bn_lookup_time(&l, k + 1, 1e-4 * (1 + 0.05 * (double)k));
    }
    CHECK(&C, k == 8);
}

/* ----------------------------------------------------- chi-square test */

/* The 0.999 quantile of chi-square with df degrees of freedom
 * (Wilson-Hilferty; within 1% of the tables for df >= 3). */
static double chi2_crit(int df)
{
    static const double small[] = {0, 10.828, 13.816, 16.266};
    if (df < 4)
        return small[df];
    double z = 3.0902, h = 2.0 / (9.0 * df);
    return df * pow(1 - h + z * sqrt(h), 3);
}

/* Two samples of counts over n bins: is it likely they come from one
 * distribution? Bins with fewer than 10 in both together are pooled.
 * Returns statistic / critical value (> 1: rejected at 0.001). */
static double chi2_two(const uint64_t *x, const uint64_t *y, size_t n)
{
    double nx = 0, ny = 0;
    for (size_t i = 0; i < n; i++) {
        nx += (double)x[i];
        ny += (double)y[i];
    }
    double k1 = sqrt(ny / nx), k2 = sqrt(nx / ny), stat = 0, px = 0, py = 0;
    int bins = 0;
    for (size_t i = 0; i <= n; i++) {
        double a = i < n ? (double)x[i] : px, b = i < n ? (double)y[i] : py;
        if (i < n && a + b < 10) {
            px += a;
            py += b;
            continue;
        }
        if (a + b == 0)
            continue;
        stat += (k1 * a - k2 * b) * (k1 * a - k2 * b) / (a + b);
        bins++;
    }
    return bins < 2 ? 0 : stat / chi2_crit(bins - 1);
}

/* ------------------------------------------------------ the sampler */

enum { V = 24, DRAWS = 40000 };

/* Under the sanitizers (make sanitize sets BN_SANITIZED) the same code
 * runs on a twentieth of the draws and answers, for its memory errors
 * only: the statistical verdicts need the full counts, and they are given
 * in the normal pass. */
static int statistics(void)
{
    return getenv("BN_SANITIZED") == NULL;
}

static int draws(void)
{
    return statistics() ? DRAWS : DRAWS / 20;
}

/* One sampler setting of the tests below. */
typedef struct setting {
    float temp, top_p, min_p, rp;
    uint32_t top_k;
} setting;

static bn_sampler_opts setting_opts(const setting *st)
{
    bn_sampler_opts o;
    bn_sampler_defaults(&o);
    o.temp = st->temp;
    o.top_p = st->top_p;
    o.min_p = st->min_p;
    o.top_k = st->top_k;
    o.repeat_penalty = st->rp;
    return o;
}

/* bn_sampler_verify against bn_sampler_sample on fixed logits, for
 * several settings and drafts: the likeliest token, a middling one, one
 * outside what top-k/top-p/min-p keep. */
static void test_verify(void)
{
    float base[V];
    for (int i = 0; i < V; i++)
        base[i] = 2.0f * sinf((float)i * 1.7f) + 0.1f * (float)i;
    uint32_t hist[] = {3, 5, 3, 11};
    setting set[] = {{1.0f, 1.0f, 0.0f, 1.0f, 0}, {0.7f, 0.9f, 0.05f, 1.0f, 10}, {1.5f, 0.95f, 0.0f, 1.3f, 0}};
    int power = 0;
    for (size_t si = 0; si < sizeof set / sizeof *set; si++) {
        uint32_t drafts[3] = {0, 0, 0};
        for (int i = 1; i < V; i++)
            if (base[i] > base[drafts[0]])
                drafts[0] = (uint32_t)i;
        for (int i = 0; i < V; i++) /* the second likeliest */
            if (i != (int)drafts[0] && (drafts[1] == drafts[0] || base[i] > base[drafts[1]]))
                drafts[1] = (uint32_t)i;
        for (int i = 0; i < V; i++)
            if (base[i] < base[drafts[2]])
                drafts[2] = (uint32_t)i;
        for (int di = 0; di < 3; di++) {
            bn_sampler_opts o = setting_opts(&set[si]);
            bn_sampler plain, spec, wrong, wrong2;
            bn_err e;
            o.seed = 11 + si * 3 + (uint64_t)di;
            int ok = !bn_sampler_init(&plain, &o, V, &e);
            o.seed += 1000;
            ok &= !bn_sampler_init(&spec, &o, V, &e);
            ok &= !bn_sampler_init(&wrong, &o, V, &e);
            ok &= !bn_sampler_init(&wrong2, &o, V, &e);
            CHECK(&C, ok);
            uint64_t cp[V] = {0}, cs[V] = {0}, cw[V] = {0};
            uint64_t kept = 0;
            for (int r = 0; r < draws(); r++) {
                float l[V];
                memcpy(l, base, sizeof l);
                cp[bn_sampler_sample(&plain, l, hist, 4)]++;
                memcpy(l, base, sizeof l);
                uint32_t t = bn_sampler_verify(&spec, l, hist, 4, drafts[di]);
                cs[t]++;
                kept += t == drafts[di];
                /* the classic mistake: a rejection draws from p itself */
                memcpy(l, base, sizeof l);
                t = bn_sampler_verify(&wrong, l, hist, 4, drafts[di]);
                if (t != drafts[di]) {
                    memcpy(l, base, sizeof l);
                    t = bn_sampler_sample(&wrong2, l, hist, 4);
                }
                cw[t]++;
            }
            double r_spec = chi2_two(cp, cs, V), r_wrong = chi2_two(cp, cw, V);
            printf("  temp %.1f top-k %u top-p %.2f min-p %.2f penalty %.1f, draft %u: kept %.3f of draws, "
                   "chi2/crit %.2f (wrong rule %.2f)\n",
                   set[si].temp, set[si].top_k, set[si].top_p, set[si].min_p, set[si].rp, drafts[di],
                   (double)kept / draws(), r_spec, r_wrong);
            CHECK(&C, !statistics() || r_spec < 1);
            /* the kept share is p(draft): the plain sampler's frequency */
            CHECK(&C, !statistics() || fabs((double)kept / DRAWS - (double)cp[drafts[di]] / DRAWS) < 0.02);
            power += r_wrong > 1;
            bn_sampler_release(&plain);
            bn_sampler_release(&spec);
            bn_sampler_release(&wrong);
            bn_sampler_release(&wrong2);
        }
    }
    /* the wrong rule is caught wherever the draft is likely and not certain */
    CHECK(&C, !statistics() || power >= 5);
    /* greedy: the argmax whatever the draft */
    bn_sampler_opts o;
    bn_sampler_defaults(&o);
    o.temp = 0;
    bn_sampler s;
    bn_err e;
    CHECK(&C, !bn_sampler_init(&s, &o, V, &e));
    float l[V], l2[V];
    memcpy(l, base, sizeof l);
    memcpy(l2, base, sizeof l);
    CHECK(&C, bn_sampler_verify(&s, l, hist, 4, 5) == bn_sampler_sample(&s, l2, hist, 4));
    bn_sampler_release(&s);
}

/* bn_sampler_verify_dist with a draft drawn from a distribution q that is
 * not p (a draft model's: bn_sampler_sample_dist on other logits, with
 * the same options), against plain sampling from p, for several settings
 * and drafts: the tokens must follow p (chi-square, 0.001), and the share
 * of drafts kept must be sum_x min(p(x), q(x)), the rule's acceptance
 * rate. Two known wrong rules must fail the same test: on a rejection, a
 * draw from p instead of max(0, p - q); and keeping every draft p allows. */
static void test_verify_dist(void)
{
    float base[V], far[V], near[V];
    for (int i = 0; i < V; i++) {
        base[i] = 2.0f * sinf((float)i * 1.7f) + 0.1f * (float)i;
        near[i] = base[i] + 0.6f * cosf((float)i * 0.9f);        /* mostly agrees */
        far[i] = 1.5f * sinf((float)i * 0.45f + 1.0f);           /* another favourite */
    }
    const float *drafts[] = {near, far};
    uint32_t hist[] = {3, 5, 3, 11};
    setting set[] = {{1.0f, 1.0f, 0.0f, 1.0f, 0},
               {0.7f, 0.9f, 0.05f, 1.0f, 10},
               {1.5f, 0.95f, 0.0f, 1.3f, 0},
               {0.4f, 1.0f, 0.0f, 1.0f, 5},
               {2.0f, 0.8f, 0.0f, 1.0f, 100}};
    int power1 = 0, power2 = 0, cases = 0;
    for (size_t si = 0; si < sizeof set / sizeof *set; si++) {
        for (int di = 0; di < 2; di++) {
            bn_sampler_opts o = setting_opts(&set[si]);
            bn_sampler plain, main_s, draft_s, w_main, w_plain, w2_draft, w2_plain;
            bn_sampler_dist q, pq;
            bn_err e;
            o.seed = 31 + si * 2 + (uint64_t)di;
            int ok = !bn_sampler_init(&plain, &o, V, &e);
            o.seed += 1000;
            ok &= !bn_sampler_init(&main_s, &o, V, &e) && !bn_sampler_init(&w_main, &o, V, &e);
            ok &= !bn_sampler_init(&w_plain, &o, V, &e) && !bn_sampler_init(&w2_plain, &o, V, &e);
            o.seed += 1000;
            ok &= !bn_sampler_init(&draft_s, &o, V, &e) && !bn_sampler_init(&w2_draft, &o, V, &e);
            ok &= !bn_sampler_dist_init(&q, V) && !bn_sampler_dist_init(&pq, V);
            CHECK(&C, ok);
            if (!ok)
                return;
            /* p itself, and q's, exactly: the distributions the draws use */
            float l[V];
            memcpy(l, base, sizeof l);
            bn_sampler_sample_dist(&plain, l, hist, 4, &pq);
            double p_of[V], q_of[V], expect = 0;
            memcpy(p_of, pq.q, sizeof p_of);
            memcpy(l, drafts[di], sizeof l);
            bn_sampler_sample_dist(&plain, l, hist, 4, &q);
            memcpy(q_of, q.q, sizeof q_of);
            for (int i = 0; i < V; i++)
                expect += p_of[i] < q_of[i] ? p_of[i] : q_of[i];
            uint64_t cp[V] = {0}, cs[V] = {0}, cw[V] = {0}, cw2[V] = {0};
            uint64_t kept = 0;
            for (int r = 0; r < draws(); r++) {
                memcpy(l, base, sizeof l);
                cp[bn_sampler_sample(&plain, l, hist, 4)]++;
                memcpy(l, drafts[di], sizeof l);
                uint32_t x = bn_sampler_sample_dist(&draft_s, l, hist, 4, &q);
                memcpy(l, base, sizeof l);
                uint32_t t = bn_sampler_verify_dist(&main_s, l, hist, 4, x, &q);
                cs[t]++;
                kept += t == x;
                /* wrong 1: a rejection draws from p itself (the residual
                 * max(0, p - q) is 0 at x: t != x means rejected) */
                memcpy(l, base, sizeof l);
                t = bn_sampler_verify_dist(&w_main, l, hist, 4, x, &q);
                if (t != x) {
                    memcpy(l, base, sizeof l);
                    t = bn_sampler_sample(&w_plain, l, hist, 4);
                }
                cw[t]++;
                /* wrong 2: every draft that p allows is kept */
                memcpy(l, drafts[di], sizeof l);
                x = bn_sampler_sample(&w2_draft, l, hist, 4);
                memcpy(l, base, sizeof l);
                t = bn_sampler_sample(&w2_plain, l, hist, 4);
                cw2[p_of[x] > 0 ? x : t]++;
            }
            double r_spec = chi2_two(cp, cs, V), r_w1 = chi2_two(cp, cw, V), r_w2 = chi2_two(cp, cw2, V);
            printf("  temp %.1f top-k %u top-p %.2f min-p %.2f penalty %.1f, %s draft: kept %.3f (expected %.3f), "
                   "chi2/crit %.2f (wrong rules %.2f, %.2f)\n",
                   set[si].temp, set[si].top_k, set[si].top_p, set[si].min_p, set[si].rp, di ? "far" : "near",
                   (double)kept / draws(), expect, r_spec, r_w1, r_w2);
            CHECK(&C, !statistics() || r_spec < 1);
            CHECK(&C, !statistics() || fabs((double)kept / DRAWS - expect) < 0.015);
            CHECK(&C, expect < 0.98); /* q is not p: the rule had something to correct */
            power1 += r_w1 > 1;
            power2 += r_w2 > 1;
            cases++;
            bn_sampler_release(&plain);
            bn_sampler_release(&main_s);
            bn_sampler_release(&draft_s);
            bn_sampler_release(&w_main);
            bn_sampler_release(&w_plain);
            bn_sampler_release(&w2_draft);
            bn_sampler_release(&w2_plain);
            bn_sampler_dist_release(&q);
            bn_sampler_dist_release(&pq);
        }
    }
    printf("  wrong rules rejected in %d and %d of %d cases\n", power1, power2, cases);
    CHECK(&C, !statistics() || (power1 >= cases - 2 && power2 >= cases - 2));
    /* greedy: the draft's distribution is a point mass on its argmax, and
     * the check gives the main argmax whatever the draft */
    bn_sampler_opts o;
    bn_sampler_defaults(&o);
    o.temp = 0;
    bn_sampler s;
    bn_sampler_dist q;
    bn_err e;
    CHECK(&C, !bn_sampler_init(&s, &o, V, &e) && !bn_sampler_dist_init(&q, V));
    float l[V], l2[V];
    memcpy(l, far, sizeof l);
    uint32_t x = bn_sampler_sample_dist(&s, l, hist, 4, &q);
    CHECK(&C, q.n == 1 && q.id[0] == x && q.q[x] == 1.0);
    memcpy(l, base, sizeof l);
    memcpy(l2, base, sizeof l);
    CHECK(&C, bn_sampler_verify_dist(&s, l, hist, 4, x, &q) == bn_sampler_sample(&s, l2, hist, 4));
    bn_sampler_dist_release(&q);
    bn_sampler_release(&s);
}

/* ------------------------------------------------- generation, sampled */

enum { RUNS = 2000, GEN = 4 };

/* Short answers to a prompt that repeats a passage (the tiny model copies
 * it), RUNS of them with and without prompt lookup, each answer with the
 * next draws of one seeded generator: the frequency of each token at each
 * answer position must agree (chi-square per position). The answers are
 * not the same draws (lookup uses the generator differently), only the
 * same distribution. The same for a draft model's guesses, the draft
 * being the tiny model's first two layers (its embedding, final norm and
 * head kept: a model that agrees with the whole one on some tokens, not
 * all), so that rejection sampling corrects real disagreements. */
static void test_generation(void)
{
    bn_model m;
    bn_err e;
    if (bn_model_load(&m, TINY, "auto", &e)) {
        fprintf(stderr, "test_spec: %s\n", e.msg);
        CHECK(&C, 0);
        return;
    }
    uint32_t Vm = m.hp.n_vocab;
    bn_ctx_opts co = {.n_ctx = 128, .n_threads = 1};
    bn_ctx *c = bn_ctx_new_opts(&m, &co, &e), *dc = NULL;
    bn_model dm;
    if (bn_model_load(&dm, TINY, "auto", &e)) {
        fprintf(stderr, "test_spec: %s\n", e.msg);
        CHECK(&C, 0);
        bn_ctx_free(c);
        bn_model_free(&m);
        return;
    }
    uint32_t n_layer = dm.hp.n_layer;
    dm.hp.n_layer = 2; /* the forward pass runs layers 0 and 1, then the norm and head */
    CHECK(&C, (dc = bn_ctx_new_opts(&dm, &co, &e)) != NULL);
    uint64_t *cnt = calloc((size_t)3 * GEN * Vm, sizeof *cnt);
    CHECK(&C, c && dc && cnt);
    /* "The old lighthouse keeper climbed the stairs every evening to light
     * the lamp." twice, then its first words and the model's own greedy
     * continuation, which falls into a loop the lookup can draft from */
    static const uint32_t prompt[] = {
        4064, 640,  1261, 2221, 1166, 1156, 2951, 1034, 324,  2677, 266, 3323, 510, 1062, 272,  2221,
        266,  310,  2043, 46,   478,  1261, 2221, 1166, 1156, 2951, 1034, 324, 2677, 266, 3323, 510,
        1062, 272,  2221, 266,  310,  2043, 46,   478,  1261, 2221, 1166, 1156, 273,  107, 276,  298,
        292,  266,  747,  44,   282,  266,  694,  1478, 419,  372,  292,  266,  747,  44,  282,  266,
        3675, 281,  266,  747,  44,   282,  266,  3524, 44,   282,  266,  3524, 44,   282};
    size_t n = sizeof prompt / sizeof *prompt;
    bn_gen_stats st[3] = {{0}, {0}, {0}};
    for (int lk = 0; c && dc && cnt && lk < 3; lk++) { /* plain, prompt lookup, the draft model */
        bn_gen_opts go = {.n_predict = GEN, .lookup = lk == 1 ? 3 : 0, .draft_max = 4, .draft = lk == 2 ? dc : NULL};
        bn_sampler_defaults(&go.samp);
        go.samp.temp = 0.5f;
        go.samp.top_k = 0;
        go.samp.top_p = 0.95f;
        go.samp.min_p = 0.0f;
        go.samp.seed = 100 + (uint64_t)lk;
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&buf, &len);
        bn_gen *g = fp ? bn_gen_new(&m, c, NULL, &go, fp, 0, &e) : NULL;
        bn_ctx_truncate(c, 0);
        for (int r = 0; g && r < (statistics() ? RUNS : RUNS / 20); r++) {
            fflush(fp);
            size_t from = len;
            if (bn_gen_answer(g, prompt, n, &e) || fflush(fp)) { /* the prompt's prefix is reused */
                CHECK(&C, 0);
                break;
            }
            char *p = buf + from;
            for (int k = 0; k < GEN; k++) {
                char *end;
                unsigned long id = strtoul(p, &end, 10);
                if (end == p || id >= Vm)
                    break;
                cnt[((size_t)lk * GEN + (size_t)k) * Vm + id]++;
                p = end;
            }
        }
        if (g)
            bn_gen_get_stats(g, &st[lk]);
        bn_gen_free(g);
        if (fp)
            fclose(fp);
        free(buf);
    }
    for (int lk = 1; lk < 3; lk++) {
        int all = 1;
        for (int k = 0; k < GEN; k++) {
            double r = chi2_two(cnt + (size_t)k * Vm, cnt + ((size_t)lk * GEN + (size_t)k) * Vm, Vm);
            printf("  %s, answer position %d: chi2/crit %.2f\n", lk == 1 ? "prompt lookup" : "draft model", k + 1, r);
            all &= r < 1;
        }
        printf("  %s: %d answers of %d tokens: %llu drafted, %llu accepted in %llu passes (plain: %llu passes)\n",
               lk == 1 ? "prompt lookup" : "draft model", statistics() ? RUNS : RUNS / 20, GEN, (unsigned long long)st[lk].n_draft,
               (unsigned long long)st[lk].n_accept, (unsigned long long)st[lk].n_pass,
               (unsigned long long)st[0].n_gen);
        CHECK(&C, !statistics() || all);
        /* the drafts were tested: many offered, many kept, some not */
        CHECK(&C, !statistics() || (st[lk].n_accept > RUNS / 2 && st[lk].n_accept < st[lk].n_draft));
    }
    free(cnt);
    bn_ctx_free(c);
    bn_model_free(&m);
    bn_ctx_free(dc);
    dm.hp.n_layer = n_layer;
    bn_model_free(&dm);
}

int main(void)
{
    test_draft();
    test_pacing();
    test_verify();
    test_verify_dist();
    test_generation();
    return check_done(&C, "test_spec");
}
