/* pack.c — bn-pack's loop: a bn model in, the same model with every
 * ternary projection rewritten into a kernel layout out, one tensor in
 * memory at a time (the pattern of quantize.c).
 *
 * Which layout for which target: bn's SIMD kernels read `t2`, `i2s` and `b3`
 * at the same speed on every ISA (the amx set too: it makes its tiles
 * from the packed bytes as it goes), because each kernel set puts the
 * activations (not the weights) into the order its loads need
 * (kern_2bit.h). So "auto" keeps t2 — already the fastest — and i2s is
 * the exchange layout for bitnet.cpp's canonical I2_S bytes. The choice
 * and the target are recorded as pack.layout / pack.target. */
#include "cpu.h"
#include "kernels.h"
#include "pack.h"
#include "pool.h"
#include "quant.h"
#include "tl_layout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const targets[] = {"auto", "generic", "avx2", "avx512", "amx", "neon", NULL};

int bn_pack_choose(const char *layout, const char *target, uint32_t *type, const char **why, bn_err *e)
{
    int known = 0;
    for (size_t i = 0; targets[i]; i++)
        known |= !strcmp(targets[i], target);
    if (!known)
        return bn_fail(e, "unknown target '%s' (one of auto, generic, avx2, avx512, amx, neon)", target);
    if (!strcmp(target, "amx") && (!strcmp(layout, "tl1") || !strcmp(layout, "tl2")))
        return bn_fail(e, "target amx: layout %s has no AMX kernels (t2, i2s and b3 do)", layout);
    if (!strcmp(target, "neon") && !strcmp(layout, "b3"))
        return bn_fail(e, "target neon: layout b3 has no NEON kernels (t2, i2s, tl1 and tl2 do)");
    if (!strcmp(layout, "auto")) {
        *type = BN_T2;
        *why = "t2: every kernel set reads it at full speed";
        return 0;
    }
    if (!strcmp(layout, "t2")) {
        *type = BN_T2;
        *why = "t2 (as asked)";
        return 0;
    }
    /* the report's "layout WHY": static text naming the layout */
    static const char *const asked[][2] = {
        {"i2s", "i2s (as asked)"}, {"b3", "b3 (as asked)"}, {"tl1", "tl1 (as asked)"}, {"tl2", "tl2 (as asked)"}};
    if (!bn_packed_from_name(layout, type)) {
        *why = "as asked";
        for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++)
            if (!strcmp(asked[i][0], layout))
                *why = asked[i][1];
        return 0;
    }
    return bn_fail(e, "unknown layout '%s' (one of auto, t2, i2s, b3, tl1, tl2)", layout);
}

static int is_ternary(uint32_t t)
{
    return t == BN_T2 || bn_packed_name(t);
}

int bn_pack_tile(uint32_t type, const char *tile, uint32_t *bm, uint32_t *bk, bn_err *e)
{
    int tl = type == BN_TL1 || type == BN_TL2;
    if (tl)
        bn_tl_default_tile(type, bm, bk);
    if (!tile)
        return 0;
    if (!tl)
        return bn_fail(e, "--tile applies to the layouts tl1 and tl2 only");
    if (bn_tl_parse_tile(tile, bm, bk))
        return bn_fail(e, "tile '%s' is not BMxBK (e.g. 64x192)", tile);
    bn_tl_geom g;
    const char *why;
    if (bn_tl_geom_make(type, *bm, *bk, 1, 1, &g, &why))
        return bn_fail(e, "tile %s: %s", tile, why);
    return 0;
}

/* A tl tensor already in the asked tile passes through untouched. */
static int same_tile(uint32_t type, const uint8_t *data, uint32_t bm, uint32_t bk)
{
    if (type != BN_TL1 && type != BN_TL2)
        return 1;
    uint32_t h[2];
    memcpy(h, data, 8);
    return h[0] == bm && h[1] == bk;
}

/* Rows of a b3 / i2s tensor shared among the pool's threads: each writes
 * its own rows' bytes, so the output is the same for any thread count. */
typedef struct pack_job {
    uint32_t type;
    const uint8_t *t2;
    uint64_t rows, k;
    uint8_t *out;
    int failed;
} pack_job;

static void pack_rows(void *arg, int ith, int nth)
{
    pack_job *j = arg;
    uint64_t r0 = j->rows * (uint64_t)ith / (uint64_t)nth, r1 = j->rows * (uint64_t)(ith + 1) / (uint64_t)nth;
    if (bn_pack_t2_rows(j->type, j->t2, j->k, r0, r1, j->out))
        j->failed = 1; /* only ever set, and read after the run */
}

/* t2 into type: in rows on the pool where the layout's rows are apart,
 * else whole (the tl tiles span rows). */
static int pack_tensor(bn_pool *pool, uint32_t type, uint32_t bm, uint32_t bk, const uint8_t *t2, uint64_t rows,
                       uint64_t k, uint8_t *out)
{
    if (type != BN_B3 && type != BN_I2S)
        return bm ? bn_tl_pack(type, bm, bk, t2, rows, k, out) : bn_pack_t2(type, t2, rows, k, out);
    pack_job job = {type, t2, rows, k, out, 0};
    bn_pool_run(pool, pack_rows, &job);
    if (job.failed)
        return -1;
    bn_pack_t2_tail(type, t2, rows, k, out);
    return 0;
}

/* A ternary tensor's scale β must be a finite number, not below 0 (0: an
 * all-zero tensor): any other turns every output of the projection into
 * inf or NaN, so the tensor is named (as GGUF import refuses such scales). */
static int bad_scale(float beta, bn_source *s, const char *name, const char *src, bn_err *e)
{
    if (isfinite(beta) && beta >= 0)
        return 0;
    char shown[BN_SHOWN_NAME_MAX];
    return bn_fail(e, "%s: tensor '%s' has the scale %g; a finite scale of 0 or more is required", src,
                   bn_source_shown_name(s, name, shown), (double)beta);
}

int bn_pack(const char *src, const char *out, const bn_pack_opts *o, bn_err *e)
{
    uint32_t type, bm = 0, bk = 0;
    const char *why;
    char tile[32] = "";
    if (bn_pack_choose(o->layout ? o->layout : "auto", o->target ? o->target : "auto", &type, &why, e) ||
        bn_pack_tile(type, o->tile, &bm, &bk, e))
        return -1;
    if (bm)
        snprintf(tile, sizeof tile, "%ux%u", bm, bk);
    bn_source s;
    if (bn_open_any(&s, src, e))
        return -1;
    bn_pool *pool = bn_pool_new(o->n_threads > 0 ? o->n_threads : bn_cpu_count(), e);
    if (!pool) {
        bn_source_close(&s);
        return -1;
    }
    int rc = -1, writing = 0;
    bn_meta meta = {0};
    bn_steps steps = {o->progress, o->progress_user, s.n_tensors, 0};
    bn_tensor *dir = NULL;
    uint8_t *in = NULL, *t2 = NULL, *outb = NULL;
    size_t in_cap = 0, t2_cap = 0, out_cap = 0;
    bn_writer w;
    bn_hparams hp;
    char cpu_desc[256], target[64];
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    snprintf(target, sizeof target, "%s", o->target ? o->target : "auto");
    if (!strcmp(target, "auto")) {
        /* the set this CPU runs the layout with (kern_select.c decides,
         * once for everyone), under its target name */
        const bn_kernels *k = bn_kernels_find("auto", type);
        const char *set = k ? k->name : "ref";
        snprintf(target, sizeof target, "%s",
                 !strcmp(set, "ref") ? "generic" : !strcmp(set, "dotprod") ? "neon" : set);
    }
    const char *step = o->step ? o->step : "bn-pack " BN_VERSION; /* this program, in the provenance */
    if (bn_meta_copy(&meta, &s.meta) ||
        /* a checkpoint read here directly: recorded as bn-convert records it */
        (strcmp(s.format, "bn") && bn_provenance_add(&meta, &s, step, "", NULL)) ||
        bn_meta_append_str(&meta, "provenance.steps", step) ||
        bn_meta_set_str(&meta, "pack.layout", type == BN_T2 ? "t2" : bn_packed_name(type)) ||
        bn_meta_set_str(&meta, "pack.target", target) ||
        bn_meta_set_str(&meta, "pack.cpu", bn_cpu_describe(&cpu, cpu_desc, sizeof cpu_desc)) ||
        (*tile ? bn_meta_set_str(&meta, "pack.tile", tile) : (bn_meta_remove(&meta, "pack.tile"), 0))) {
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
        bn_tensor *t = &dir[i];
        if (!bn_tensor_is_projection(t->name))
            continue;
        if (!is_ternary(t->type) || t->ndim != 2) {
            const char *tn = bn_type_name(t->type);
            char shown[BN_SHOWN_NAME_MAX];
            bn_fail(e, "%s: tensor '%s' has type %s; bn-pack packs ternary weights (run bn-quant first)", src,
                    bn_source_shown_name(&s, t->name, shown), tn ? tn : "unknown");
            goto out;
        }
        t->type = type;
        t->size = type == BN_T2 ? bn_type_size(BN_T2, 2, t->shape) : bn_packed_size(type, t->shape[0], t->shape[1]);
    }
    if (bn_writer_begin(&w, out, &o->temps, &meta, dir, s.n_tensors, e))
        goto out;
    writing = 1;
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
        uint64_t bad_r, bad_c;
        if (bn_tensor_is_projection(t->name) && t->type == BN_T2 &&
            bn_t2_find_bad(in, t->shape[0], t->shape[1], &bad_r, &bad_c)) {
            char shown[BN_SHOWN_NAME_MAX];
            bn_fail(e, "%s: tensor '%s' holds an invalid t2 code at row %llu, column %llu (%s)", src,
                    bn_source_shown_name(&s, t->name, shown), (unsigned long long)bad_r, (unsigned long long)bad_c,
                    bad_c < t->shape[1] ? "3 stands for no weight" : "padding past the last column must be 1, w = 0");
            goto out;
        }
        if (bn_tensor_is_projection(t->name) && t->type == BN_T2 &&
            bad_scale(bn_t2_scale(in, t->shape[0], t->shape[1]), &s, t->name, src, e))
            goto out;
        if (!bn_tensor_is_projection(t->name) || (t->type == dir[i].type && same_tile(t->type, in, bm, bk))) {
            if (bn_writer_tensor(&w, in, t->size, e))
                goto out;
            continue;
        }
        uint64_t rows = t->shape[0], k = t->shape[1];
        uint64_t t2size = bn_type_size(BN_T2, 2, t->shape);
        /* through t2 (every layout converts losslessly both ways); a t2
         * input is packed from where it was read, not copied first */
        int from_t2 = t->type == BN_T2;
        if ((!from_t2 && !(t2 = bn_scratch(t2, &t2_cap, t2size))) ||
            !(outb = bn_scratch(outb, &out_cap, dir[i].size))) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for '%s'", src, t->name);
            goto out;
        }
        if (!from_t2 && bn_unpack_t2(t->type, in, rows, k, t2)) {
            bn_fail(e, "%s: tensor '%s' cannot be repacked", src, t->name);
            goto out;
        }
        if (!from_t2 && bad_scale(bn_t2_scale(t2, rows, k), &s, t->name, src, e))
            goto out;
        if (pack_tensor(pool, dir[i].type, bm, bk, from_t2 ? in : t2, rows, k, outb)) {
            bn_fail(e, "%s: tensor '%s' cannot be repacked", src, t->name);
            goto out;
        }
        if (bn_writer_tensor(&w, outb, dir[i].size, e))
            goto out;
        if (o->report)
            fprintf(o->report, "%-32s %s -> %s  %llu -> %llu bytes\n", t->name, bn_type_name(t->type),
                    bn_type_name(dir[i].type), (unsigned long long)t->size, (unsigned long long)dir[i].size);
    }
    bn_steps_end(&steps);
    if (!strcmp(s.format, "bn") && bn_bnfile_finish(&s, e))
        goto out;
    if (bn_provenance_late(&w.late, &s, src, e))
        goto out;
    if (o->report)
        fprintf(o->report, "layout %s, target %s\n", why, target);
    if (bn_report_flushed(o->report, o->report_name, e))
        goto out;
    writing = 0;
    rc = bn_writer_finish(&w, e);
out:
    if (writing)
        bn_writer_abort(&w);
    bn_steps_end(&steps);
    free(in);
    free(t2);
    free(outb);
    free(dir);
    bn_pool_free(pool);
    bn_meta_free(&meta);
    bn_source_close(&s);
    return rc;
}
