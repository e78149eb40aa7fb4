/* test_sampler.c — greedy picks (bn_sampler_sample and bn_sampler_verify
 * at temperature 0) against the plain first-largest loop they must
 * equal: the sampler finds the argmax a block at a time, and a verify
 * pass asks for it at every position, so it must be the same index on
 * every input: ties (the first wins), NaN (never wins, except a NaN at 0,
 * which nothing beats), ±0, ±inf, ascending and descending runs, every
 * length around the block of 16. */
#include "check.h"
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static check_ctx C;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33) % n;
}

static uint32_t plain_argmax(const float *l, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

/* Logits of one kind: 0 few distinct values (ties), 1 NaN among them,
 * 2 zeros of both signs, 3 infinities, 4 NaN at 0, 5 ascending, 6
 * descending, 7 all equal. */
static void fill(float *l, uint32_t n, int kind)
{
    for (uint32_t i = 0; i < n; i++) {
        float v = (float)rnd(2001) / 100.0f - 10.0f;
        if (kind == 0)
            v = (float)rnd(5) - 2.0f;
        else if (kind == 1 && rnd(7) == 0)
            v = NAN;
        else if (kind == 2 && rnd(3) == 0)
            v = rnd(2) ? 0.0f : -0.0f;
        else if (kind == 3 && rnd(5) == 0)
            v = rnd(2) ? INFINITY : -INFINITY;
        else if (kind == 5)
            v = (float)i;
        else if (kind == 6)
            v = -(float)i;
        else if (kind == 7)
            v = 1.0f;
        l[i] = v;
    }
    if (kind == 4)
        l[0] = NAN;
}

int main(void)
{
    static const uint32_t ns[] = {1, 2, 15, 16, 17, 18, 32, 33, 100, 4095, 4096};
    enum { NMAX = 4096 };
    float *l = malloc(NMAX * sizeof *l), *l2 = malloc(NMAX * sizeof *l2);
    int ok_sample = 1, ok_verify = 1;
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        uint32_t n = ns[ni];
        bn_sampler_opts o;
        bn_sampler_defaults(&o);
        o.temp = 0;
        bn_sampler s;
        bn_err e;
        CHECK(&C, !bn_sampler_init(&s, &o, n, &e));
        for (int it = 0; it < 400; it++) {
            fill(l, n, it % 8);
            uint32_t want = plain_argmax(l, n);
            memcpy(l2, l, n * sizeof *l);
            ok_sample &= bn_sampler_sample(&s, l2, NULL, 0) == want;
            memcpy(l2, l, n * sizeof *l);
            ok_verify &= bn_sampler_verify(&s, l2, NULL, 0, (want + 1) % n) == want;
        }
        bn_sampler_release(&s);
    }
    printf("  greedy sample and verify = the first largest logit, 11 widths x 8 kinds: %s\n",
           ok_sample && ok_verify ? "same" : "BAD");
    CHECK(&C, ok_sample);
    CHECK(&C, ok_verify);

    /* Sampling at a positive temperature so small that a logit over it
     * overflows a float (the weights were once all NaN and the draw fell
     * to the last candidate), and logits with no softmax (+inf forcing a
     * token, every one -inf): the largest logit, as greedy would. Top-k
     * off, small (the bounded insertion) and large (the sort). */
    static const float temps[] = {1e-38f, 1e-40f, 1e-45f, 1e-30f};
    static const uint32_t top_ks[] = {0, 40, 100};
    int ok_tiny = 1, ok_inf = 1;
    for (size_t ki = 0; ki < sizeof top_ks / sizeof top_ks[0]; ki++)
        for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
            enum { N = 4096 };
            bn_sampler_opts o;
            bn_sampler_defaults(&o);
            o.temp = temps[ti];
            o.top_k = top_ks[ki];
            o.seed = 7 + ti;
            bn_sampler s;
            bn_err e;
            CHECK(&C, !bn_sampler_init(&s, &o, N, &e));
            for (int it = 0; it < 50; it++) {
                for (uint32_t i = 0; i < N; i++)
                    l[i] = (float)rnd(2001) / 100.0f - 10.0f;
                uint32_t top = rnd(N);
                l[top] = 10.5f; /* one clear largest */
                ok_tiny &= bn_sampler_sample(&s, l, NULL, 0) == top;
                l[top] = INFINITY;
                ok_inf &= bn_sampler_sample(&s, l, NULL, 0) == top;
                for (uint32_t i = 0; i < N; i++)
                    l[i] = -INFINITY;
                ok_inf &= bn_sampler_sample(&s, l, NULL, 0) < N;
            }
            bn_sampler_release(&s);
        }
    printf("  sampling at temperatures 1e-30..1e-45 picks the largest logit: %s; +inf and all -inf logits: %s\n",
           ok_tiny ? "yes" : "BAD", ok_inf ? "yes" : "BAD");
    CHECK(&C, ok_tiny);
    CHECK(&C, ok_inf);
    /* logit_bias: added to the logits before every pick, greedy or drawn,
     * the sampler's own copy (the caller's array may change or go), bad
     * ids and values named by bn_sampler_opts_bad. */
    {
        enum { N = 300 };
        for (uint32_t i = 0; i < N; i++)
            l[i] = (float)(i % 17) * 0.25f; /* largest 4.0 first at id 16 */
        bn_logit_bias bias[2] = {{7, 3.0f}, {250, 2.5f}}; /* 1.75 + 3 = 4.75 wins; 250 % 17 = 12: 3 + 2.5 = 5.5 */
        bn_sampler_opts o;
        bn_sampler_defaults(&o);
        o.temp = 0;
        o.logit_bias = bias;
        o.n_logit_bias = 2;
        bn_sampler s;
        bn_err e;
        CHECK(&C, !bn_sampler_opts_bad(&o, N));
        CHECK(&C, !bn_sampler_init(&s, &o, N, &e));
        bias[1].bias = -100; /* the copy is the sampler's */
        memcpy(l2, l, N * sizeof *l);
        CHECK(&C, bn_sampler_sample(&s, l2, NULL, 0) == 250);
        CHECK(&C, l2[7] == l[7] + 3.0f && l2[250] == l[250] + 2.5f && l2[16] == l[16]);
        memcpy(l2, l, N * sizeof *l);
        CHECK(&C, bn_sampler_verify(&s, l2, NULL, 0, 16) == 250);
        bn_sampler_release(&s);
        /* drawn: a token biased by -100 is never drawn, one by +100 always */
        bias[0] = (bn_logit_bias){16, -100};
        o.temp = 1;
        o.top_k = 0;
        o.n_logit_bias = 1;
        o.seed = 11;
        CHECK(&C, !bn_sampler_init(&s, &o, N, &e));
        int never = 1;
        for (int it = 0; it < 2000; it++) {
            memcpy(l2, l, N * sizeof *l);
            never &= bn_sampler_sample(&s, l2, NULL, 0) != 16;
        }
        bn_sampler_release(&s);
        CHECK(&C, never);
        bias[0] = (bn_logit_bias){3, 100};
        CHECK(&C, !bn_sampler_init(&s, &o, N, &e));
        int always = 1;
        for (int it = 0; it < 200; it++) {
            memcpy(l2, l, N * sizeof *l);
            always &= bn_sampler_sample(&s, l2, NULL, 0) == 3;
        }
        bn_sampler_release(&s);
        CHECK(&C, always);
        bias[0] = (bn_logit_bias){N, 1};
        CHECK(&C, bn_sampler_opts_bad(&o, N) != NULL);
        bias[0] = (bn_logit_bias){1, 100.5f};
        CHECK(&C, bn_sampler_opts_bad(&o, N) != NULL);
        bias[0] = (bn_logit_bias){1, NAN};
        CHECK(&C, bn_sampler_opts_bad(&o, N) != NULL);
        o.logit_bias = NULL;
        CHECK(&C, bn_sampler_opts_bad(&o, N) != NULL);
        printf("  logit_bias: greedy, verify and draws see it; the sampler keeps its own copy; bad ids and values named\n");
    }
    free(l);
    free(l2);
    return check_done(&C, "test_sampler");
}
