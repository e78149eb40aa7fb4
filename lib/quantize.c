/* quantize.c — bn-quant's loop: a bn model in, the same model with float
 * projection weights ternarized out, one tensor at a time. */
#include "bn.h"

#include <stdlib.h>
#include <string.h>

static int wants_ternary(const bn_tensor *t)
{
    return bn_tensor_is_projection(t->name) && t->ndim == 2 &&
           (t->type == BN_F32 || t->type == BN_F16 || t->type == BN_BF16);
}

int bn_quantize(const char *src, const char *out, const bn_quant_opts *o, bn_err *e)
{
    bn_source s;
    if (bn_open_any(&s, src, e))
        return -1;
    int rc = -1, writing = 0;
    bn_meta meta = {0};
    bn_tensor *dir = NULL;
    uint8_t *in = NULL, *outb = NULL;
    float *f = NULL;
    size_t in_cap = 0, out_cap = 0, f_cap = 0;
    bn_writer w;
    bn_hparams hp;
    if (bn_meta_copy(&meta, &s.meta) ||
        bn_meta_append_str(&meta, "provenance.steps", o->step ? o->step : "bn-quant " BN_VERSION)) {
        bn_fail(e, "%s: out of memory", src);
        goto out;
    }
    if (bn_hparams_from_meta(&meta, &hp, src, e))
        goto out;
    bn_meta_remove(&meta, "provenance.source_hashes"); /* late: carried at the end */
    dir = calloc(s.n_tensors + 1, sizeof *dir);
    if (!dir) {
        bn_fail(e, "%s: out of memory", src);
        goto out;
    }
    memcpy(dir, s.tensors, s.n_tensors * sizeof *dir);
    for (size_t i = 0; i < s.n_tensors; i++)
        if (wants_ternary(&dir[i])) {
            dir[i].type = BN_T2;
            dir[i].size = bn_type_size(BN_T2, 2, dir[i].shape);
        }
    if (bn_writer_begin(&w, out, &meta, dir, s.n_tensors, e))
        goto out;
    writing = 1;
    if (o->report && o->report_json)
        fprintf(o->report, "[");
    size_t reported = 0;
    for (size_t i = 0; i < s.n_tensors; i++) {
        const bn_tensor *t = &s.tensors[i];
        if (o->progress)
            fprintf(stderr, "\r\033[K[%zu/%zu] %s", i + 1, s.n_tensors, t->name);
        if (t->size > in_cap) {
            free(in);
            in_cap = t->size;
            if (!(in = malloc(in_cap))) {
                bn_fail(e, "%s: out of memory for '%s'", src, t->name);
                goto out;
            }
        }
        if (s.read(&s, i, in, e))
            goto out;
        if (!wants_ternary(t)) {
            if (bn_writer_tensor(&w, in, t->size, e))
                goto out;
            continue;
        }
        uint64_t rows = t->shape[0], k = t->shape[1], n = rows * k;
        if (n > f_cap) {
            free(f);
            f_cap = n;
            if (!(f = malloc(f_cap * sizeof *f))) {
                bn_fail(e, "%s: out of memory for '%s'", src, t->name);
                goto out;
            }
        }
        if (dir[i].size > out_cap) {
            free(outb);
            out_cap = dir[i].size;
            if (!(outb = malloc(out_cap))) {
                bn_fail(e, "%s: out of memory for '%s'", src, t->name);
                goto out;
            }
        }
        bn_to_f32(t->type, in, f, n);
        bn_quant_stats st;
        bn_ternarize_absmean(f, rows, k, outb, &st);
        if (bn_writer_tensor(&w, outb, dir[i].size, e))
            goto out;
        if (o->report) {
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
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    if (!strcmp(s.format, "bn") && bn_bnfile_finish(&s, e))
        goto out;
    if (bn_late_carry(&w.late, &s.meta)) {
        bn_fail(e, "%s: out of memory", src);
        goto out;
    }
    writing = 0;
    rc = bn_writer_finish(&w, e);
out:
    if (writing)
        bn_writer_abort(&w);
    free(in);
    free(outb);
    free(f);
    free(dir);
    bn_meta_free(&meta);
    bn_source_close(&s);
    return rc;
}
