/* bench_compare.c — bn-bench --compare OLD NEW: per-row ratios between two
 * saved runs, for before/after and for peers.
 *
 * OLD and NEW are each either a bn-bench --json report or llama-bench's
 * JSON (`llama-bench -o json`: an array of objects) or JSONL (`-o jsonl`:
 * one object per line); bitnet.cpp's e2e_benchmark.py runs llama-bench, so
 * its runs come in the same way with `-o json` added. A llama-bench object
 * becomes a row named as llama-bench names its tests: n_prompt > 0 gives
 * ppN, n_gen > 0 gives tgN (both: ppN+tgM), n_depth > 0 appends " @ dN";
 * its value is the median of samples_ts (avg_ts when there are none).
 *
 * llama-batched-bench's table (its stdout) is read too, for --parallel
 * runs (add_batched_table).
 *
 * Rows match on test and threads; between two bn-bench runs also on
 * kind, model, layout, kernel and matrix (a speculative decoding row:
 * its text, what_key), so every layout lines up with itself. */
#include "bench.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A count (threads, sequences) read from a file: a value outside int's
 * range (a damaged or foreign file) counts as absent, 0; converting it to
 * int would be undefined. */
static int jint(const cJSON *o, const char *k)
{
    double v = jnum(o, k);
    return v >= INT_MIN && v <= INT_MAX ? (int)v : 0; /* NaN: false */
}

static void jstr(const cJSON *o, const char *k, char *buf, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(buf, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static int kind_of(const char *s)
{
    static const char *const names[] = {"e2e", "kernel", "machine", "text"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return BN_ROW_E2E;
}

static void samples_into(const cJSON *arr, bn_bench_row *r)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        if (cJSON_IsNumber(v) && r->n < BN_BENCH_MAX_REPS)
            r->samples[r->n++] = v->valuedouble;
    }
}

static int add_peer(const cJSON *o, bn_bench_rows *rows)
{
    double np = jnum(o, "n_prompt"), ng = jnum(o, "n_gen"), nd = jnum(o, "n_depth"), avg = jnum(o, "avg_ts");
    if (!isfinite(avg))
        return 0; /* not a result object */
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r)
        return -1;
    r->kind = BN_ROW_E2E;
    jstr(o, "model_type", r->model, sizeof r->model);
    r->size = jnum(o, "model_size");
    r->params = jnum(o, "model_n_params");
    r->threads = jint(o, "n_threads");
    char t[48] = "";
    if (np > 0 && ng > 0)
        snprintf(t, sizeof t, "pp%.0f+tg%.0f", np, ng);
    else if (np > 0)
        snprintf(t, sizeof t, "pp%.0f", np);
    else
        snprintf(t, sizeof t, "tg%.0f", isfinite(ng) ? ng : 0);
    if (nd > 0)
        snprintf(r->test, sizeof r->test, "%s @ d%.0f", t, nd);
    else
        snprintf(r->test, sizeof r->test, "%s", t);
    snprintf(r->unit, sizeof r->unit, "t/s");
    snprintf(r->kernel, sizeof r->kernel, "llama-bench");
    samples_into(cJSON_GetObjectItemCaseSensitive(o, "samples_ts"), r);
    bn_bench_stats(r);
    if (!r->n)
        r->median = avg;
    return 0;
}

/* llama-batched-bench's report (its markdown table on stdout): every
 * line "| PP | TG | B | N_KV | T_PP | S_PP | T_TG | S_TG | T | S |" gives
 * rows "ppPP xB" (S_PP) and "tgTG xB" (S_TG), as bn-bench --parallel
 * names them; the thread count comes from the last "n_threads = N"
 * before it (several runs may be concatenated). One value each: the
 * tool measures once. */
static int add_batched_table(char *txt, bn_bench_rows *rows)
{
    int threads = 0;
    for (char *s = txt, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl)
            *nl = 0;
        const char *t = strstr(s, "n_threads = ");
        if (t)
            threads = atoi(t + strlen("n_threads = "));
        double v[10];
        int used = 0;
        if (sscanf(s, " |%lf |%lf |%lf |%lf |%lf |%lf |%lf |%lf |%lf |%lf |%n", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9], &used) != 10 || !used)
            continue;
        for (int part = 0; part < 2; part++) {
            double len = part ? v[1] : v[0], rate = part ? v[7] : v[5];
            if (!(len > 0) || !isfinite(rate))
                continue;
            bn_bench_row *r = bn_bench_row_add(rows);
            if (!r)
                return -1;
            r->kind = BN_ROW_E2E;
            r->threads = threads;
            r->n_seq = v[2] >= 0 && v[2] <= INT_MAX ? (int)v[2] : 0; /* undefined beyond int */
            snprintf(r->test, sizeof r->test, "%s%.0f x%.0f", part ? "tg" : "pp", len, v[2]);
            snprintf(r->unit, sizeof r->unit, "t/s");
            snprintf(r->kernel, sizeof r->kernel, "llama-batched-bench");
            r->samples[r->n++] = rate;
            bn_bench_stats(r);
        }
    }
    return 0;
}

static int add_ours(const cJSON *o, bn_bench_rows *rows)
{
    if (!cJSON_IsObject(o)) /* not a row: left out ("no benchmark results" if none is) */
        return 0;
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r)
        return -1;
    char k[16];
    jstr(o, "kind", k, sizeof k);
    r->kind = kind_of(k);
    jstr(o, "model", r->model, sizeof r->model);
    jstr(o, "layout", r->layout, sizeof r->layout);
    jstr(o, "kernel", r->kernel, sizeof r->kernel);
    jstr(o, "test", r->test, sizeof r->test);
    jstr(o, "what", r->what, sizeof r->what);
    jstr(o, "unit", r->unit, sizeof r->unit);
    r->threads = jint(o, "threads");
    r->n_seq = jint(o, "parallel");
    r->size = jnum(o, "size");
    r->params = jnum(o, "params");
    samples_into(cJSON_GetObjectItemCaseSensitive(o, "samples"), r);
    bn_bench_stats(r);
    if (!r->n)
        r->median = jnum(o, "median");
    return 0;
}

static int add_doc(const cJSON *doc, bn_bench_rows *rows, int *is_peer)
{
    if (cJSON_IsObject(doc) && cJSON_GetObjectItemCaseSensitive(doc, "bn_bench")) {
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc, "rows"))
        {
            if (add_ours(v, rows))
                return -1;
        }
        return 0;
    }
    *is_peer = 1;
    if (cJSON_IsObject(doc))
        return add_peer(doc, rows);
    const cJSON *v;
    cJSON_ArrayForEach(v, doc)
    {
        if (add_peer(v, rows))
            return -1;
    }
    return 0;
}

int bn_bench_load(const char *path, bn_bench_rows *rows, int *is_peer, bn_err *e)
{
    bn_map m;
    *is_peer = 0;
    if (bn_map_file(path, &m, e))
        return -1;
    char *txt = malloc(m.size + 1);
    if (!txt) {
        bn_unmap(&m);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    size_t len = m.size;
    memcpy(txt, m.data, len);
    txt[len] = 0;
    bn_unmap(&m);
    int rc = 0;
    /* The whole text must be one JSON value; otherwise try JSONL. */
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(txt, &end, 1);
    if (doc) {
        rc = add_doc(doc, rows, is_peer);
        cJSON_Delete(doc);
    } else if (strstr(txt, "S_TG")) {
        *is_peer = 1;
        rc = add_batched_table(txt, rows);
    } else {
        /* where the whole text stopped parsing: told when JSONL fails at
         * once too (a pretty-printed document cut short) */
        const char *at = cJSON_GetErrorPtr();
        size_t whole_at = at && at >= txt && at <= txt + len ? (size_t)(at - txt) : len;
        /* JSONL: one object per line. */
        size_t line = 0;
        for (char *s = txt, *nl; s && *s && !rc; s = nl ? nl + 1 : NULL) {
            nl = strchr(s, '\n');
            if (nl)
                *nl = 0;
            line++;
            if (!s[strspn(s, " \t\r")])
                continue;
            cJSON *o = cJSON_Parse(s);
            if (!o && line == 1 && nl && whole_at > (size_t)(nl - txt)) /* one value over lines, cut or broken */
                rc = bn_fail(e, "%s: not valid JSON (at byte %zu of %zu)", path, whole_at, len);
            else if (!o)
                rc = bn_fail(e, "%s: line %zu: not JSON (expected bn-bench --json, llama-bench -o json/jsonl or "
                             "llama-batched-bench's table)",
                             path, line);
            if (!o)
                break;
            rc = add_doc(o, rows, is_peer);
            cJSON_Delete(o);
        }
    }
    free(txt);
    if (!rc && !rows->n)
        rc = bn_fail(e, "%s: no benchmark results in it", path);
    return rc;
}

/* The part of a row's "what" that names it: all of it, but in a text row
 * only what comes before ": " (speculative decoding's rows name their
 * text there and give what they measured after it: guesses kept, tokens
 * per pass, speed-up, which differ from run to run). */
static size_t what_key(const bn_bench_row *r)
{
    const char *c = r->kind == BN_ROW_TEXT ? strstr(r->what, ": ") : NULL;
    return c ? (size_t)(c - r->what) : strlen(r->what);
}

static int same(const bn_bench_row *a, const bn_bench_row *b, int strict)
{
    if (strcmp(a->test, b->test) || a->threads != b->threads)
        return 0;
    if (!strict)
        return 1;
    size_t ka = what_key(a);
    return a->kind == b->kind && !strcmp(a->model, b->model) && !strcmp(a->layout, b->layout) &&
           !strcmp(a->kernel, b->kernel) && ka == what_key(b) && !strncmp(a->what, b->what, ka);
}

int bn_bench_compare(const char *old_path, const char *new_path, FILE *fp, int format, bn_err *e)
{
    bn_bench_rows a = {0}, b = {0};
    int pa, pb, rc = -1;
    if (bn_bench_load(old_path, &a, &pa, e) || bn_bench_load(new_path, &b, &pb, e))
        goto done;
    int strict = !pa && !pb;
    char *used = calloc(a.n + 1, 1);
    if (!used) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    size_t matched = 0;
    cJSON *arr = format == BN_FMT_JSON ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < b.n; i++) {
        const bn_bench_row *nr = &b.v[i];
        size_t j = 0;
        while (j < a.n && (used[j] || !same(&a.v[j], nr, strict)))
            j++;
        if (j == a.n)
            continue;
        used[j] = 1;
        /* the header with the first row: no rows in common prints nothing */
        if (!matched++ && format == BN_FMT_MD)
            fprintf(fp, "| model | layout | kernel | threads | test | what | old | new | new/old |\n"
                        "| --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: |\n");
        else if (matched == 1 && format == BN_FMT_CSV)
            fprintf(fp, "model,layout,kernel,threads,test,what,unit,old,new,ratio\n");
        const bn_bench_row *orow = &a.v[j];
        /* above 1: NEW is faster, whether the figure is a rate or a time
         * (--verify's ms rows, where less is faster: old/new) */
        int time = !strcmp(nr->unit, "ms");
        double ratio = time ? (nr->median > 0 ? orow->median / nr->median : NAN)
                            : (orow->median > 0 ? nr->median / orow->median : NAN); /* NaN: no figure */
        if (format == BN_FMT_MD) {
            char o[32], n[32], q[32];
            snprintf(o, sizeof o, isfinite(orow->median) ? "%.2f" : "-", orow->median);
            snprintf(n, sizeof n, isfinite(nr->median) ? "%.2f" : "-", nr->median);
            snprintf(q, sizeof q, isfinite(ratio) ? "%.3f" : "n/a", ratio);
            fprintf(fp, "| %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", nr->model, nr->layout, nr->kernel,
                    nr->threads, nr->test, nr->what[0] ? nr->what : "-", o, n, q);
        } else if (format == BN_FMT_CSV) {
            const char *const f[] = {nr->model, nr->layout, nr->kernel};
            for (int k = 0; k < 3; k++) {
                bn_bench_csv_str(fp, f[k]);
                fputc(',', fp);
            }
            fprintf(fp, "%d,", nr->threads);
            bn_bench_csv_str(fp, nr->test);
            fputc(',', fp);
            bn_bench_csv_str(fp, nr->what);
            fputc(',', fp);
            bn_bench_csv_str(fp, nr->unit);
            bn_bench_csv_num(fp, orow->median);
            bn_bench_csv_num(fp, nr->median);
            bn_bench_csv_num(fp, ratio);
            fputc('\n', fp);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", nr->model);
            cJSON_AddStringToObject(o, "old_model", orow->model);
            cJSON_AddStringToObject(o, "layout", nr->layout);
            cJSON_AddStringToObject(o, "kernel", nr->kernel);
            cJSON_AddNumberToObject(o, "threads", nr->threads);
            cJSON_AddStringToObject(o, "test", nr->test);
            cJSON_AddStringToObject(o, "what", nr->what);
            cJSON_AddStringToObject(o, "unit", nr->unit);
            cJSON_AddNumberToObject(o, "old", orow->median);
            cJSON_AddNumberToObject(o, "new", nr->median);
            cJSON_AddNumberToObject(o, "ratio", ratio);
            cJSON_AddItemToArray(arr, o);
        }
    }
    free(used);
    if (arr && matched) {
        char *txt = cJSON_Print(arr);
        cJSON_Delete(arr);
        if (txt)
            fprintf(fp, "%s\n", txt);
        free(txt);
    }
    cJSON_Delete(matched ? NULL : arr);
    if (!matched) {
        bn_fail(e, "%s and %s have no rows in common (rows match on test and threads%s)", old_path, new_path,
                strict ? ", model, layout, kernel and matrix" : "");
        goto done;
    }
    if (format == BN_FMT_MD && matched < b.n)
        fprintf(fp, "\n%zu of %zu rows of %s have no match in %s\n", b.n - matched, b.n, new_path, old_path);
    rc = 0;
done:
    bn_bench_rows_free(&a);
    bn_bench_rows_free(&b);
    return rc;
}
