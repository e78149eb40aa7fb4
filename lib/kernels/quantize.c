/* quantize.c — bn-quant's loop: a bn model in, the same model with float
 * projection weights ternarized out, one tensor at a time. */
#include "quant.h"
#include "head_encode.h"
#include "kern_head.h"
#include "pool.h"

#include <stdlib.h>
#include <string.h>

static int wants_ternary(const bn_tensor *t)
{
    return bn_tensor_is_projection(t->name) && t->ndim == 2 &&
           (t->type == BN_F32 || t->type == BN_F16 || t->type == BN_BF16);
}

/* The type the head/embedding tensor t becomes, or -1 to pass it through.
 * A tied model's token_embd.weight is also its head. */
static int head_target(const bn_tensor *t, const bn_hparams *hp, const bn_quant_opts *o)
{
    if (t->ndim != 2 || !(t->type == BN_F32 || t->type == BN_F16 || t->type == BN_BF16))
        return -1;
    if (!strcmp(t->name, "output.weight"))
        return o->head_type;
    if (!strcmp(t->name, "token_embd.weight")) /* tied: it is the head, --head decides (--embd does not) */
        return hp->tied ? o->head_type : o->embd_type;
    return -1;
}

/* One float row into the head type ty; i8 scales go to scales[r]. */
static void encode_row(int ty, const float *x, size_t d, uint8_t *out, float *scale)
{
    if (ty == BN_I8)
        *scale = bn_i8_encode_row(x, d, (int8_t *)out);
    else if (ty == BN_Q6)
        bn_q6_encode_row(x, d, out);
    else if (ty == BN_Q4)
        bn_q4_encode_row(x, d, out);
    else if (ty == BN_Q5)
        bn_q5_encode_row(x, d, out);
    else if (ty == BN_F32)
        memcpy(out, x, d * 4);
    else
        for (size_t c = 0; c < d; c++) {
            uint16_t v = ty == BN_F16 ? bn_f32_to_f16(x[c]) : bn_f32_to_bf16(x[c]);
            memcpy(out + 2 * c, &v, 2);
        }
}

static uint64_t encoded_row_bytes(int ty, uint64_t d)
{
    return bn_head_row_bytes((uint32_t)ty, d);
}

/* One tensor's rows shared among the pool's threads: each thread takes a
 * contiguous run of rows and writes only their bytes, and every result
 * that spans rows (beta, the report) is added up afterwards in row order,
 * so the output is the same bytes for any number of threads. Rows are
 * converted to f32 one at a time into the thread's own buffer: no f32
 * copy of the whole tensor (which was twice an f16 tensor's size). */
typedef struct quant_job {
    uint32_t type;     /* the input's: f32, f16 or bf16 */
    uint64_t rows, k;
    const uint8_t *in; /* the input tensor */
    uint8_t *out;      /* the output tensor */
    int head;          /* the head type, or -1: ternarize */
    int pass;          /* ternarize: 0 sums rows, 1 encodes them */
    int recip;         /* model.ternary_rule "reciprocal" */
    float beta;
    double *sums;                /* per row (pass 0) */
    bn_ternary_row_stats *stats; /* per row (pass 1), or NULL: not reported */
    float *rowbuf;               /* k floats per thread */
} quant_job;

static const float *row_f32(const quant_job *j, uint64_t r, float *buf)
{
    if (j->type == BN_F32)
        return (const float *)(const void *)(j->in + r * j->k * 4);
    bn_to_f32(j->type, j->in + r * j->k * 2, buf, j->k);
    return buf;
}

static void quant_rows(void *arg, int ith, int nth)
{
    quant_job *j = arg;
    uint64_t r0 = j->rows * (uint64_t)ith / (uint64_t)nth, r1 = j->rows * (uint64_t)(ith + 1) / (uint64_t)nth;
    float *buf = j->rowbuf + (size_t)ith * j->k;
    uint64_t rbytes = j->head >= 0 ? encoded_row_bytes(j->head, j->k) : (j->k + 3) / 4;
    for (uint64_t r = r0; r < r1; r++) {
        if (j->head < 0 && j->type == BN_F16 && (j->pass == 0 || !j->stats)) { /* no f32 copy */
            const uint16_t *h = (const uint16_t *)(const void *)(j->in + r * j->k * 2);
            if (j->pass == 0)
                j->sums[r] = bn_ternary_row_abssum_f16(h, j->k);
            else
                bn_ternary_row_codes_f16(h, j->k, j->beta, j->recip, j->out + r * rbytes);
            continue;
        }
        const float *x = row_f32(j, r, buf);
        if (j->head >= 0) {
            /* rows, then (i8) one f32 scale per row after all of them;
             * an integer code has no inf or NaN: such a row is found by
             * its sum and refused (the float types keep them) */
            if (j->sums)
                j->sums[r] = bn_ternary_row_abssum(x, j->k);
            float sc = 0;
            encode_row(j->head, x, j->k, j->out + r * rbytes, &sc);
            if (j->head == BN_I8)
                memcpy(j->out + j->rows * j->k + 4 * r, &sc, 4);
        } else if (j->pass == 0)
            j->sums[r] = bn_ternary_row_abssum(x, j->k);
        else if (j->stats)
            bn_ternary_row_encode(x, j->k, j->beta, j->recip, j->out + r * rbytes, &j->stats[r]);
        else {
            bn_ternary_row_stats unused;
            bn_ternary_row_encode(x, j->k, j->beta, j->recip, j->out + r * rbytes, &unused);
        }
    }
}

int bn_report_flushed(FILE *report, const char *name, bn_err *e)
{
    if (report && (fflush(report) || ferror(report)))
        return bn_fail_write(e, name ? name : "-");
    return 0;
}

int bn_quantize(const char *src, const char *out, const bn_quant_opts *o, bn_err *e)
{
    bn_source s;
    if (bn_open_any(&s, src, e))
        return -1;
    int rc = -1, writing = 0;
    bn_meta meta = {0};
    bn_steps steps = {o->progress, o->progress_user, s.n_tensors, 0};
    bn_tensor *dir = NULL;
    uint8_t *in = NULL, *outb = NULL;
    float *rowbuf = NULL;
    double *sums = NULL;
    bn_ternary_row_stats *rstats = NULL;
    size_t in_cap = 0, out_cap = 0, rowbuf_cap = 0, sums_cap = 0, rstats_cap = 0;
    bn_writer w;
    bn_hparams hp;
    bn_pool *pool = bn_pool_new(o->n_threads > 0 ? o->n_threads : bn_cpu_count(), e);
    if (!pool) {
        bn_source_close(&s);
        return -1;
    }
    int nth = bn_pool_size(pool);
    const char *step = o->step ? o->step : "bn-quant " BN_VERSION; /* this program, in the provenance */
    if (bn_meta_copy(&meta, &s.meta) ||
        /* a checkpoint read here directly: recorded as bn-convert records it */
        (strcmp(s.format, "bn") && bn_provenance_add(&meta, &s, step, "", NULL)) ||
        bn_meta_append_str(&meta, "provenance.steps", step)) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
        goto out;
    }
    if (bn_hparams_from_meta(&meta, &hp, src, e))
        goto out;
    bn_meta_remove(&meta, "provenance.source_hashes"); /* late: carried at the end */
    dir = calloc(s.n_tensors + 1, sizeof *dir);
    if (!dir) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
        goto out;
    }
    memcpy(dir, s.tensors, s.n_tensors * sizeof *dir);
    for (size_t i = 0; i < s.n_tensors; i++) {
        int ht = head_target(&dir[i], &hp, o);
        if (wants_ternary(&dir[i])) {
            dir[i].type = BN_T2;
            dir[i].size = bn_type_size(BN_T2, 2, dir[i].shape);
        } else if (ht >= 0) {
            const char *why;
            if (!bn_head_type_ok((uint32_t)ht, dir[i].shape[1], &why)) {
                bn_fail(e, "%s: cannot store '%s' as %s: %s", src, dir[i].name, bn_type_name((uint32_t)ht), why);
                goto out;
            }
            dir[i].type = (uint32_t)ht;
            dir[i].size = bn_type_size((uint32_t)ht, 2, dir[i].shape);
        }
    }
    /* Both buffers at their largest at once: growing them tensor by
     * tensor had the kernel zero fresh pages at every step up. */
    uint64_t in_max = 0, out_max = 0;
    for (size_t i = 0; i < s.n_tensors; i++) {
        in_max = s.tensors[i].size > in_max ? s.tensors[i].size : in_max;
        if (dir[i].type != s.tensors[i].type)
            out_max = dir[i].size > out_max ? dir[i].size : out_max;
    }
    if (!(in = bn_scratch(in, &in_cap, in_max)) || !(outb = bn_scratch(outb, &out_cap, out_max))) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory (%llu bytes for the largest tensor)", src, (unsigned long long)in_max);
        goto out;
    }
    if (bn_writer_begin(&w, out, &o->temps, &meta, dir, s.n_tensors, e))
        goto out;
    writing = 1;
    if (o->report && o->report_json)
        fprintf(o->report, "[");
    size_t reported = 0;
    for (size_t i = 0; i < s.n_tensors; i++) {
        const bn_tensor *t = &s.tensors[i];
        if (bn_steps_at(&steps, i, t->name, src, e))
            goto out;
        if (!(in = bn_scratch(in, &in_cap, t->size))) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for '%s'", src, t->name);
            goto out;
        }
        if (s.read(&s, i, in, e))
            goto out;
        int ht = head_target(t, &hp, o);
        if (!wants_ternary(t) && ht < 0) {
            if (bn_writer_tensor(&w, in, t->size, e))
                goto out;
            continue;
        }
        uint64_t rows = t->shape[0], k = t->shape[1];
        if (!(rowbuf = bn_scratch(rowbuf, &rowbuf_cap, (size_t)nth * k * sizeof *rowbuf)) ||
            !(outb = bn_scratch(outb, &out_cap, dir[i].size))) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for '%s'", src, t->name);
            goto out;
        }
        quant_job job = {.type = t->type, .rows = rows, .k = k, .in = in, .out = outb, .head = ht, .rowbuf = rowbuf};
        if (!(sums = bn_scratch(sums, &sums_cap, rows * sizeof *sums)) ||
            !(rstats = bn_scratch(rstats, &rstats_cap, rows * sizeof *rstats))) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for '%s'", src, t->name);
            goto out;
        }
        int coded = ht >= 0 && ht != BN_F32 && ht != BN_F16 && ht != BN_BF16;
        job.sums = ht < 0 || coded ? sums : NULL;
        if (ht >= 0) {
            bn_pool_run(pool, quant_rows, &job);
            if (coded && !bn_ternary_sums_finite(sums, rows)) {
                char shown[BN_SHOWN_NAME_MAX];
                bn_fail(e, "%s: tensor '%s' holds weights that are inf or NaN, which %s cannot store", src,
                        bn_source_shown_name(&s, t->name, shown), bn_type_name((uint32_t)ht));
                goto out;
            }
            if (bn_writer_tensor(&w, outb, dir[i].size, e))
                goto out;
            continue;
        }
        job.stats = o->report ? rstats : NULL; /* the error sums cost more than the codes */
        bn_pool_run(pool, quant_rows, &job);
        if (!bn_ternary_sums_finite(sums, rows)) {
            char shown[BN_SHOWN_NAME_MAX];
            bn_fail(e, "%s: tensor '%s' holds weights that are inf or NaN", src, bn_source_shown_name(&s, t->name, shown));
            goto out;
        }
        job.beta = bn_ternary_beta(sums, rows, k);
        job.recip = hp.ternary_recip;
        job.pass = 1;
        bn_pool_run(pool, quant_rows, &job);
        float scale = bn_ternary_scale(job.beta, job.recip);
        memcpy(outb + rows * ((k + 3) / 4), &scale, 4);
        if (bn_writer_tensor(&w, outb, dir[i].size, e))
            goto out;
        if (o->report) {
            bn_quant_stats st;
            bn_ternary_stats_sum(rstats, rows, k, scale, &st);
            if (o->report_json)
                fprintf(o->report, "%s\n{\"tensor\":\"%s\",\"scale\":%.9g,\"zero_share\":%.6f,\"rel_error\":%.6f}",
                        reported ? "," : "", t->name, st.scale, st.zero_share, st.rel_error);
            else
                fprintf(o->report, "%-32s scale %-12.6g zeros %6.2f%%  rel.error %.4f\n", t->name, st.scale,
                        100 * st.zero_share, st.rel_error);
            reported++;
        }
    }
    if (o->report && o->report_json)
        fprintf(o->report, "\n]\n");
    bn_steps_end(&steps);
    if (!strcmp(s.format, "bn") && bn_bnfile_finish(&s, e))
        goto out;
    if (bn_provenance_late(&w.late, &s, src, e))
        goto out;
    if (bn_report_flushed(o->report, o->report_name, e))
        goto out;
    writing = 0;
    rc = bn_writer_finish(&w, e);
out:
    if (writing)
        bn_writer_abort(&w);
    bn_steps_end(&steps);
    free(in);
    free(outb);
    free(rowbuf);
    free(sums);
    free(rstats);
    free(dir);
    bn_pool_free(pool);
    bn_meta_free(&meta);
    bn_source_close(&s);
    return rc;
}
