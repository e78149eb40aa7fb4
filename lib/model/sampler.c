/* sampler.c — next-token selection. Order (as llama.cpp's default chain):
 * logit biases and penalties on the raw logits, then top-k, temperature,
 * softmax, top-p, min-p, and a draw from what is left. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bn_sampler_defaults(bn_sampler_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->temp = 0.8f;
    o->top_k = 40;
    o->top_p = 0.95f;
    o->min_p = 0.05f;
    o->repeat_penalty = 1.0f;
    o->presence_penalty = 0.0f;
    o->penalty_last_n = 64;
}

void bn_sampler_params_defaults(bn_sampler_params *p, size_t size)
{
    bn_sampler_params d;
    bn_sampler_defaults(&d);
    bn_params_fill(p, size, &d, sizeof d);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(bn_sampler *s)
{
    uint64_t *r = s->rng;
    uint64_t out = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return out;
}

double bn_sampler_uniform(bn_sampler *s)
{
    return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

/* A candidate token; sorted by logit, then id, so ties are deterministic. */
typedef struct bn_sampler_cand {
    float l;
    uint32_t id;
} cand;

void bn_sampler_reseed(bn_sampler *s, uint64_t seed)
{
    if (!s)
        return;
    s->o.seed = seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&seed);
}

uint64_t bn_sampler_fork_seed(const bn_sampler *s)
{
    uint64_t x = s->rng[0] ^ (s->rng[1] << 1) ^ (s->rng[2] << 2) ^ (s->rng[3] << 3) ^ 0xD1B54A32D192ED03ull;
    return splitmix64(&x);
}

/* How many candidates a dist holds in itself; a draw from more sorts the
 * whole vocabulary in the sampler's own room. */
enum { DIST_INLINE = 64 };

/* Whether draws under o sort the whole vocabulary (sampling, top_k 0 or
 * above DIST_INLINE): bn_sampler_init takes the room, dist_prepare uses it. */
static int draws_whole_vocab(const bn_sampler_opts *o)
{
    return o->temp > 0 && (o->top_k == 0 || o->top_k > DIST_INLINE);
}

int bn_sampler_init(bn_sampler *s, const bn_sampler_opts *o, uint32_t n_vocab, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->o = *o;
    s->n_vocab = n_vocab;
    bn_sampler_reseed(s, o->seed);
    s->seen = calloc(n_vocab, 1);
    /* the biases are the sampler's own: the caller's array may go (a
     * request copied into a queue, a server's parsed body) */
    s->o.logit_bias = NULL;
    if (o->n_logit_bias && (s->bias = malloc(o->n_logit_bias * sizeof *s->bias))) {
        memcpy(s->bias, o->logit_bias, o->n_logit_bias * sizeof *s->bias);
        s->o.logit_bias = s->bias;
    }
    /* the room for whole-vocabulary draws is taken now, so that a draw
     * never allocates (nor, out of memory, falls back to the best token) */
    int whole = draws_whole_vocab(o);
    if (whole) {
        s->cand = malloc(n_vocab * sizeof *s->cand);
        s->weight = malloc(n_vocab * sizeof *s->weight);
    }
    if (!s->seen || (whole && (!s->cand || !s->weight)) || (o->n_logit_bias && !s->bias)) {
        bn_sampler_release(s);
        return bn_fail_code(e, BN_E_NOMEM, "sampler: out of memory");
    }
    return 0;
}

void bn_sampler_release(bn_sampler *s)
{
    free(s->seen);
    free(s->cand);
    free(s->weight);
    free(s->bias);
    memset(s, 0, sizeof *s);
}

/* lo <= v <= hi, and not NaN. */
static int in_range(float v, float lo, float hi)
{
    return v >= lo && v <= hi;
}

static const char *logit_bias_bad(const bn_sampler_opts *o, uint32_t n_vocab)
{
    if (o->n_logit_bias && !o->logit_bias)
        return "logit_bias is NULL but n_logit_bias is not 0";
    for (size_t i = 0; i < o->n_logit_bias; i++) {
        if (o->logit_bias[i].id >= n_vocab)
            return "a logit_bias token id is past the vocabulary";
        if (!in_range(o->logit_bias[i].bias, -100, 100))
            return "a logit_bias value must be -100..100";
    }
    return NULL;
}

const char *bn_sampler_opts_bad(const bn_sampler_opts *o, uint32_t n_vocab)
{
    return !n_vocab                                      ? "n_vocab is 0"
           : !in_range(o->temp, 0, 1e4f)                 ? "temp must be 0..10000"
           : !in_range(o->top_p, 0, 1)                   ? "top_p must be 0..1"
           : !in_range(o->min_p, 0, 1)                   ? "min_p must be 0..1"
           : !in_range(o->repeat_penalty, 1e-4f, 1e4f)   ? "repeat_penalty must be 0.0001..10000"
           : !in_range(o->presence_penalty, -1e4f, 1e4f) ? "presence_penalty must be -10000..10000"
                                                         : logit_bias_bad(o, n_vocab);
}

bn_sampler *bn_sampler_new(const bn_sampler_params *p, uint32_t n_vocab, bn_err *e)
{
    bn_sampler_params o;
    bn_sampler_defaults(&o);
    if (p && bn_params_read(&o, sizeof o, p, "bn_sampler_params", e))
        return NULL;
    const char *bad = bn_sampler_opts_bad(&o, n_vocab);
    if (bad) {
        bn_fail_code(e, BN_E_INVALID, "bn_sampler_new: %s", bad);
        return NULL;
    }
    bn_sampler *s = malloc(sizeof *s);
    if (!s) {
        bn_fail_code(e, BN_E_NOMEM, "sampler: out of memory");
        return NULL;
    }
    if (bn_sampler_init(s, &o, n_vocab, e)) {
        free(s);
        return NULL;
    }
    return s;
}

void bn_sampler_free(bn_sampler *s)
{
    if (!s)
        return;
    bn_sampler_release(s);
    free(s);
}

static void penalize(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist)
{
    const bn_sampler_opts *o = &s->o;
    if (o->repeat_penalty == 1.0f && o->presence_penalty == 0.0f)
        return;
    size_t from = o->penalty_last_n && n_hist > o->penalty_last_n ? n_hist - o->penalty_last_n : 0;
    for (size_t i = from; i < n_hist; i++) {
        uint32_t id = hist[i];
        if (id >= s->n_vocab || s->seen[id])
            continue;
        s->seen[id] = 1; /* each token is penalized once, however often it occurred */
        float *l = &logits[id];
        if (o->repeat_penalty != 1.0f)
            *l = *l > 0 ? *l / o->repeat_penalty : *l * o->repeat_penalty;
        *l -= o->presence_penalty;
    }
    for (size_t i = from; i < n_hist; i++)
        if (hist[i] < s->n_vocab)
            s->seen[hist[i]] = 0;
}

/* The first index of the largest logit (NaN never wins; a NaN at 0 stays
 * the answer, as in the plain loop `if (l[i] > l[best]) best = i`). That
 * loop waited on the load of l[best] every element, 17 us over a vocabulary
 * of 4096 on Zen 5, paid at every position a verify pass checks; here
 * blocks of 16 are first compared in four independent maxima (0.9 us), and
 * only a block holding something larger than the best so far is scanned
 * with the plain rule, so the result is the same index. */
static uint32_t argmax(const float *l, uint32_t n)
{
    uint32_t best = 0, i = 1;
    float bv = l[0];
    for (; i + 16 <= n; i += 16) {
        float m0 = bv, m1 = bv, m2 = bv, m3 = bv;
        for (uint32_t j = 0; j < 16; j += 4) {
            m0 = l[i + j] > m0 ? l[i + j] : m0;
            m1 = l[i + j + 1] > m1 ? l[i + j + 1] : m1;
            m2 = l[i + j + 2] > m2 ? l[i + j + 2] : m2;
            m3 = l[i + j + 3] > m3 ? l[i + j + 3] : m3;
        }
        if (!(m0 > bv || m1 > bv || m2 > bv || m3 > bv))
            continue;
        for (uint32_t j = i; j < i + 16; j++)
            if (l[j] > bv) {
                bv = l[j];
                best = j;
            }
    }
    for (; i < n; i++)
        if (l[i] > bv) {
            bv = l[i];
            best = i;
        }
    return best;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->l != y->l)
        return x->l > y->l ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The distribution a token is taken from at one position, as every pick
 * (sample, verify, a draft's draw) prepares it: penalties on the logits
 * (in place); then, sampling, the candidates c[0..keep) sorted by logit
 * with weights p (not normalized; tot is their sum) after top-k,
 * temperature, top-p and min-p. keep 0: no distribution, take token
 * (greedy: the argmax; an infinite largest logit: that one). c and p
 * point into buf and pbuf (top_k 1..DIST_INLINE) or the sampler's own room: a
 * dist is not copied once prepared, and one at a time is prepared. */
typedef struct dist {
    cand buf[DIST_INLINE];
    double pbuf[DIST_INLINE];
    cand *c;
    double *p, tot;
    size_t keep;
    uint32_t token;
} dist;

static void dist_prepare(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, dist *d)
{
    const bn_sampler_opts *o = &s->o;
    uint32_t V = s->n_vocab;
    d->c = d->buf;
    d->p = d->pbuf;
    d->tot = 0;
    d->keep = 0;
    for (size_t i = 0; i < o->n_logit_bias; i++)
        logits[o->logit_bias[i].id] += o->logit_bias[i].bias;
    penalize(s, logits, hist, n_hist);
    if (o->temp <= 0) {
        d->token = argmax(logits, V);
        return;
    }
    /* Candidates: the top k (by a bounded insertion when k is small),
     * otherwise all of them, sorted by logit. */
    cand *c = d->buf;
    size_t n = 0;
    if (!draws_whole_vocab(o)) { /* 1 <= top_k <= DIST_INLINE: bounded insertion, no sort of V */
        for (uint32_t i = 0; i < V; i++) {
            if (n == o->top_k && logits[i] <= c[n - 1].l)
                continue;
            size_t j = n < o->top_k ? n++ : n - 1;
            while (j > 0 && c[j - 1].l < logits[i]) {
                c[j] = c[j - 1];
                j--;
            }
            c[j].l = logits[i];
            c[j].id = i;
        }
    } else {
        c = s->cand;
        d->p = s->weight;
        for (uint32_t i = 0; i < V; i++)
            c[i] = (cand){logits[i], i};
        qsort(c, V, sizeof *c, cand_cmp);
        n = o->top_k ? (o->top_k < V ? o->top_k : V) : V;
    }
    d->c = c;
    d->token = c[0].id;
    /* An infinite largest logit (a forced token, or every one -inf) has
     * no softmax: the largest is the answer, as at temperature 0. */
    if (!isfinite(c[0].l))
        return;
    /* softmax with temperature, in double: in float, a logit over a tiny
     * temperature (1e-38) overflowed to inf and every weight became NaN */
    double sum = 0, *p = d->p;
    for (size_t i = 0; i < n; i++)
        sum += p[i] = exp(((double)c[i].l - c[0].l) / o->temp);
    size_t keep = n;
    if (o->top_p < 1.0f) {
        double acc = 0;
        for (size_t i = 0; i < n; i++) {
            acc += p[i] / sum;
            if (acc >= o->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (o->min_p > 0) /* p[0] is the largest: relative to it */
        for (size_t i = 1; i < keep; i++)
            if (p[i] < o->min_p * p[0]) {
                keep = i;
                break;
            }
    for (size_t i = 0; i < keep; i++)
        d->tot += p[i];
    d->keep = keep;
}

/* A draw from c[0..keep) by weights p (sum tot), leaving out the
 * candidate at index skip (SIZE_MAX: none; then tot excludes it). Should
 * rounding leave u past the last sum, the last candidate of weight > 0. */
static uint32_t draw(bn_sampler *s, const cand *c, const double *p, size_t keep, double tot, size_t skip)
{
    double u = bn_sampler_uniform(s) * tot, acc = 0;
    size_t last = keep - 1 == skip && keep > 1 ? keep - 2 : keep - 1;
    for (size_t i = 0; i < keep; i++) {
        if (i == skip)
            continue;
        if (p[i] > 0)
            last = i;
        acc += p[i];
        if (u < acc)
            return c[i].id;
    }
    return c[last].id;
}

uint32_t bn_sampler_sample(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist)
{
    if (!s || !logits) /* bn.h: not an id (0 is one) */
        return BN_NO_TOKEN;
    if (!hist)
        n_hist = 0;
    dist d;
    dist_prepare(s, logits, hist, n_hist, &d);
    uint32_t id = d.keep ? draw(s, d.c, d.p, d.keep, d.tot, SIZE_MAX) : d.token;
    return id;
}

int bn_sampler_dist_init(bn_sampler_dist *q, uint32_t n_vocab)
{
    q->n = 0;
    q->id = malloc(n_vocab * sizeof *q->id);
    q->q = calloc(n_vocab, sizeof *q->q);
    if (q->id && q->q)
        return 0;
    bn_sampler_dist_release(q);
    return -1;
}

void bn_sampler_dist_release(bn_sampler_dist *q)
{
    free(q->id);
    free(q->q);
    memset(q, 0, sizeof *q);
}

uint32_t bn_sampler_sample_dist(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, bn_sampler_dist *q)
{
    dist d;
    dist_prepare(s, logits, hist, n_hist, &d);
    uint32_t id = d.keep ? draw(s, d.c, d.p, d.keep, d.tot, SIZE_MAX) : d.token;
    for (size_t i = 0; i < q->n; i++) /* the previous distribution's entries */
        q->q[q->id[i]] = 0;
    q->n = d.keep ? d.keep : 1;
    for (size_t i = 0; i < q->n; i++) {
        q->id[i] = d.keep ? d.c[i].id : id;
        q->q[q->id[i]] = d.keep ? d.p[i] / d.tot : 1.0;
    }
    return id;
}

uint32_t bn_sampler_verify_dist(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, uint32_t draft,
                                const bn_sampler_dist *q)
{
    dist d;
    dist_prepare(s, logits, hist, n_hist, &d);
    uint32_t id = d.token;
    if (d.keep) {
        const cand *c = d.c;
        double *p = d.p, tot = d.tot;
        size_t keep = d.keep, at = SIZE_MAX;
        for (size_t i = 0; i < keep && at == SIZE_MAX; i++)
            if (c[i].id == draft)
                at = i;
        if (!q) {
            /* the draft is a point mass: keep it with probability p(draft),
             * else draw from p without it (renormalized); the result follows p */
            if (at != SIZE_MAX && (keep == 1 || bn_sampler_uniform(s) * tot < p[at]))
                id = draft;
            else
                id = draw(s, c, p, keep, at == SIZE_MAX ? tot : tot - p[at], at);
        } else {
            /* the draft was drawn from q: keep it with probability
             * min(1, p/q), else draw from max(0, p - q), renormalized
             * (Leviathan et al. 2023, Chen et al. 2023); the result follows p */
            double qx = q->q[draft] * tot; /* on p's scale */
            if (at != SIZE_MAX && (p[at] >= qx || bn_sampler_uniform(s) * qx < p[at])) {
                id = draft;
            } else {
                double rest = 0;
                for (size_t i = 0; i < keep; i++) {
                    double r = p[i] - q->q[c[i].id] * tot;
                    rest += p[i] = r > 0 ? r : 0;
                }
                /* p - q is all but 0 only through rounding (a rejection
                 * needs q(draft) > p(draft)): then p's first token */
                id = rest > 0 ? draw(s, c, p, keep, rest, SIZE_MAX) : c[0].id;
            }
        }
    }
    return id;
}

uint32_t bn_sampler_verify(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, uint32_t draft)
{
    return bn_sampler_verify_dist(s, logits, hist, n_hist, draft, NULL);
}
