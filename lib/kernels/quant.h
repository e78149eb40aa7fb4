/* quant.h — absmean ternarization (ternary.c) and bn-quant's streaming
 * pass over a model (quantize.c). */
#ifndef BN_QUANT_H
#define BN_QUANT_H

#include "formats.h"

typedef struct bn_quant_stats {
    float scale;       /* beta = mean|W| (clamped at 1e-5) */
    double zero_share; /* fraction of weights that became 0 */
    double rel_error;  /* ||W - beta*T|| / ||W|| */
} bn_quant_stats;

/* Absmean ternarization (formats.md §1.4): beta = mean|W| over the whole
 * tensor, T = clamp(rint(W/beta), -1, 1), scale beta; writes a `t2`
 * tensor. recip (model.ternary_rule "reciprocal", 1bitLLM's weight_quant):
 * T = clamp(rint(W * s), -1, 1) with s = 1/beta rounded to f32, and the
 * scale 1/s, the values that code multiplies and divides by. -1 (nothing
 * written) when a weight is inf or NaN: mean|W| has no meaning then, and
 * every code would be wrong. */
int bn_ternarize_absmean(const float *w, uint64_t rows, uint64_t k, int recip, uint8_t *t2, bn_quant_stats *st);
/* Whether row sums of |W| (bn_ternary_row_abssum) are all finite: a
 * tensor with an inf or NaN weight cannot be ternarized. */
int bn_ternary_sums_finite(const double *row_sums, uint64_t rows);
/* The scale a tensor of absmean beta stores under the rule recip. */
float bn_ternary_scale(float beta, int recip);
/* Absmean in rows, for callers that share rows among threads (quantize.c);
 * bn_ternarize_absmean is these in turn. Every result is the same bit for
 * bit whoever runs which rows; the *_ref functions are the scalar
 * definitions, the others may use SIMD (AVX2) and equal them exactly. */
typedef struct bn_ternary_row_stats {
    uint64_t zeros;
    double err2, norm2; /* sum (w - beta*t)^2 and sum w^2 over the row */
} bn_ternary_row_stats;
/* Sum of |w| over one row (in double, in the order ternary.c defines). */
double bn_ternary_row_abssum(const float *x, uint64_t k);
double bn_ternary_row_abssum_ref(const float *x, uint64_t k);
/* beta from the row sums, added in row order, clamped at 1e-5. */
float bn_ternary_beta(const double *row_sums, uint64_t rows, uint64_t k);
/* The eight lanes of a row's double sums (lane c % 8) as one fixed tree. */
double bn_ternary_lanes_total(const double l[8]);
/* One weight's t2 code (0, 1, 2 for -1, 0, +1): clamp(rint(x / beta)),
 * or x * inv with recip (inv = 1.0f / beta). */
unsigned bn_ternary_code(float x, float beta, float inv, int recip);
/* f16 rows straight from their bits, no f32 copy (bn-quant's common case):
 * bn_ternary_row_abssum's and, without the statistics, the codes of
 * bn_ternary_row_encode, bit for bit (the _ref forms convert each value
 * with bn_f16_to_f32 and go one at a time). */
double bn_ternary_row_abssum_f16(const uint16_t *x, uint64_t k);
double bn_ternary_row_abssum_f16_ref(const uint16_t *x, uint64_t k);
void bn_ternary_row_codes_f16(const uint16_t *x, uint64_t k, float beta, int recip, uint8_t *out);
void bn_ternary_row_codes_f16_ref(const uint16_t *x, uint64_t k, float beta, int recip, uint8_t *out);
/* One row into its (k + 3) / 4 `t2` bytes under the rule recip, with the
 * row's statistics (the error against bn_ternary_scale(beta, recip)). */
void bn_ternary_row_encode(const float *x, uint64_t k, float beta, int recip, uint8_t *out, bn_ternary_row_stats *st);
void bn_ternary_row_encode_ref(const float *x, uint64_t k, float beta, int recip, uint8_t *out,
                               bn_ternary_row_stats *st);
/* The tensor's statistics from its rows' (added in row order); beta: the
 * stored scale. */
void bn_ternary_stats_sum(const bn_ternary_row_stats *rows_st, uint64_t rows, uint64_t k, float beta,
                          bn_quant_stats *st);
/* Reads ternary value (row r, column c) of a `t2` tensor: -1, 0 or 1. */
int bn_t2_get(const uint8_t *t2, uint64_t k, uint64_t r, uint64_t c);
float bn_t2_scale(const uint8_t *t2, uint64_t rows, uint64_t k);

/* Before a model is committed, its report is flushed: a report that
 * cannot be written fails the run (named), and no model is written.
 * 0 when report is NULL or flushed. */
int bn_report_flushed(FILE *report, const char *name, bn_err *e);

typedef struct bn_quant_opts {
    const char *step;   /* provenance line, e.g. "bn-quant 0.1.0" */
    FILE *report;       /* per-tensor report, or NULL */
    const char *report_name; /* its name in a write error ("-": standard error) */
    int report_json;
    bn_progress_fn progress; /* per tensor (bn.h), or NULL */
    void *progress_user;
    bn_temp_hook temps; /* told of a named temporary output (core.h) */
    /* Re-encode the output head / the embedding table (float tensors
     * only) as this type (f32, f16, bf16, i8, q6); -1 keeps it. When the
     * embeddings are tied the one tensor is both, and head_type wins. */
    int head_type, embd_type;
    int n_threads; /* rows shared among this many threads; 0 = every core */
} bn_quant_opts;

/* Streams a bn model, ternarizing float projection weights; everything else
 * (and ternary input) passes through untouched. */
int bn_quantize(const char *src, const char *out, const bn_quant_opts *o, bn_err *e);

#endif
