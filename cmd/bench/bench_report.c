/* bench_report.c — reports: a markdown table by default (llama-bench's
 * columns first, so results line up with what people already know), CSV
 * with every field, or JSON that bn-bench --compare reads back. Figures
 * that do not apply print as "-" (markdown), an empty field (CSV) or null
 * (JSON). */
#include "bench.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bn_bench_fmt_params(double p, char *buf, size_t n)
{
    if (!isfinite(p))
        snprintf(buf, n, "-");
    else if (p >= 1e9)
        snprintf(buf, n, "%.2f B", p / 1e9);
    else if (p >= 1e6)
        snprintf(buf, n, "%.2f M", p / 1e6);
    else
        snprintf(buf, n, "%.2f K", p / 1e3);
}

static void fmt_rate(const bn_bench_row *r, char *buf, size_t n)
{
    if (!isfinite(r->median))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.2f ± %.2f", r->median, r->stddev);
}

static void fmt_roof(const bn_bench_row *r, char *buf, size_t n)
{
    if (!isfinite(r->roofline))
        snprintf(buf, n, "%s", strcmp(r->bound, "cache") ? "-" : "in cache");
    else if (!strcmp(r->bound, "memory"))
        snprintf(buf, n, "%.1f%% of %.1f GB/s", r->roofline, r->bw_gbps);
    else
        snprintf(buf, n, "%.1f%% of %.0f GOPS", r->roofline, r->peak_gops);
}

static void fmt_num(double v, const char *f, char *buf, size_t n)
{
    if (isfinite(v))
        snprintf(buf, n, f, v);
    else
        snprintf(buf, n, "-");
}

static int has_kind(const bn_bench_rows *rows, int kind)
{
    for (size_t i = 0; i < rows->n; i++)
        if (rows->v[i].kind == kind)
            return 1;
    return 0;
}

static void md_e2e(FILE *fp, const bn_bench_rows *rows)
{
    fprintf(fp, "| model | size | params | layout | kernel | threads | test | t/s | GB/s | roofline | J/tok | peak RSS |\n"
                "| --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |\n");
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        if (r->kind != BN_ROW_E2E || r->n_seq)
            continue;
        char size[32], params[32], rate[64], gbps[32], roof[64], joule[32], rss[32];
        bn_bench_fmt_size(r->size, size, sizeof size);
        bn_bench_fmt_params(r->params, params, sizeof params);
        fmt_rate(r, rate, sizeof rate);
        fmt_num(r->gbps, "%.2f", gbps, sizeof gbps);
        fmt_roof(r, roof, sizeof roof);
        fmt_num(r->joules_per, "%.4f", joule, sizeof joule);
        bn_bench_fmt_size(r->peak_rss, rss, sizeof rss);
        fprintf(fp, "| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", r->model, size, params,
                r->layout, r->kernel, r->threads, r->test, rate, gbps, roof, isfinite(r->joules_per) ? joule : "n/a",
                rss);
    }
}

/* Batched rows (--parallel): N sequences at once, llama-batched-bench's
 * figures (aggregate and per-sequence rates) plus TTFT and KV memory. */
static void md_batched(FILE *fp, const bn_bench_rows *rows)
{
    fprintf(fp, "| model | layout | kernel | threads | N | test | t/s (all) | t/s (each) | TTFT s | KV/seq | GB/s | "
                "roofline | peak RSS |\n"
                "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        if (r->kind != BN_ROW_E2E || !r->n_seq)
            continue;
        char rate[64], each[32], ttft[32], kv[32], gbps[32], roof[64], rss[32];
        fmt_rate(r, rate, sizeof rate);
        fmt_num(r->per_seq, "%.2f", each, sizeof each);
        fmt_num(r->ttft_s, "%.3f", ttft, sizeof ttft);
        bn_bench_fmt_size(r->kv_bytes / r->n_seq, kv, sizeof kv);
        fmt_num(r->gbps, "%.2f", gbps, sizeof gbps);
        fmt_roof(r, roof, sizeof roof);
        bn_bench_fmt_size(r->peak_rss, rss, sizeof rss);
        fprintf(fp, "| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->model, r->layout,
                r->kernel, r->threads, r->n_seq, r->test, rate, each, ttft, kv, gbps, roof, rss);
    }
}

static int has_batched(const bn_bench_rows *rows, int want)
{
    for (size_t i = 0; i < rows->n; i++)
        if (rows->v[i].kind == BN_ROW_E2E && !rows->v[i].n_seq == !want)
            return 1;
    return 0;
}

static void md_kernels(FILE *fp, const bn_bench_rows *rows)
{
    fprintf(fp, "| layout | kernel | threads | test | matrix | GOPS | GB/s | roofline |\n"
                "| --- | --- | ---: | --- | --- | ---: | ---: | --- |\n");
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        if (r->kind != BN_ROW_KERNEL)
            continue;
        char rate[64], gbps[32], roof[64];
        fmt_rate(r, rate, sizeof rate);
        fmt_num(r->gbps, "%.2f", gbps, sizeof gbps);
        fmt_roof(r, roof, sizeof roof);
        fprintf(fp, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", r->layout, r->kernel, r->threads, r->test, r->what,
                rate, gbps, roof);
    }
}

static void md_simple(FILE *fp, const bn_bench_rows *rows, int kind)
{
    fprintf(fp, "| %s | threads | test | what | value | unit |\n| --- | ---: | --- | --- | ---: | --- |\n",
            kind == BN_ROW_TEXT ? "source" : "machine");
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        if (r->kind != kind)
            continue;
        char rate[64], source[160];
        fmt_rate(r, rate, sizeof rate);
        /* a model's rows name its layout and kernel set, as the e2e table's columns do */
        if (r->layout[0])
            snprintf(source, sizeof source, "%s (%s/%s)", r->model, r->layout, r->kernel);
        else
            snprintf(source, sizeof source, "%s", r->model[0] ? r->model : "-");
        fprintf(fp, "| %s | %d | %s | %s | %s | %s |\n", source, r->threads, r->test, r->what, rate, r->unit);
    }
}

static void md_machine_notes(FILE *fp, const bn_bench_machine *mc, const bn_bench_rows *rows)
{
    fprintf(fp, "\nmachine: %s, %d CPUs, %.2f GHz (timed: dependent adds)\n", mc->cpu, mc->n_cpus, mc->ghz);
    fprintf(fp, "int8 peak: %s, %.1f MACs/cycle/thread measured; GOPS = 2 x MACs/s:", mc->isa, mc->macs_per_cycle);
    for (int i = 0; i < mc->n; i++)
        fprintf(fp, "%s %d thread%s %.0f GOPS", i ? "," : "", mc->threads[i], mc->threads[i] == 1 ? "" : "s",
                mc->peak_gops[i]);
    fprintf(fp, "\nread bandwidth (%zu MiB buffer, best pass of %d probes x 4 access patterns x 2 page sizes):",
            mc->bw_bytes >> 20, mc->bw_rounds);
    for (int i = 0; i < mc->n; i++)
        fprintf(fp, "%s %d thread%s %.2f GB/s (%s; slowest pattern %.2f)", i ? "," : "", mc->threads[i],
                mc->threads[i] == 1 ? "" : "s", mc->bw_gbps[i], mc->bw_pattern[i], mc->bw_worst[i]);
    fprintf(fp, "\nenergy: %s\n", mc->energy);
    /* Load time and time to first token, once per loaded model. */
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        const bn_bench_row *p = i ? &rows->v[i - 1] : NULL;
        if (r->kind != BN_ROW_E2E || (p && p->kind == BN_ROW_E2E && !strcmp(p->model, r->model) &&
                                      !strcmp(p->layout, r->layout) && !strcmp(p->kernel, r->kernel)))
            continue;
        if (r->n_seq) /* batched rows carry each test's own TTFT */
            fprintf(fp, "load: %s (%s/%s): %.3f s\n", r->model, r->layout, r->kernel, r->load_s);
        else
            fprintf(fp, "load: %s (%s/%s): %.3f s, time to first token %.3f s\n", r->model, r->layout, r->kernel,
                    r->load_s, r->ttft_s);
    }
}

static int report_md(FILE *fp, const bn_bench_machine *mc, const bn_bench_rows *rows)
{
    int first = 1;
    if (has_batched(rows, 0))
        md_e2e(fp, rows), first = 0;
    if (has_batched(rows, 1)) {
        if (!first)
            fputc('\n', fp);
        md_batched(fp, rows), first = 0;
    }
    if (has_kind(rows, BN_ROW_KERNEL)) {
        if (!first)
            fputc('\n', fp);
        md_kernels(fp, rows), first = 0;
    }
    if (has_kind(rows, BN_ROW_MACHINE)) {
        if (!first)
            fputc('\n', fp);
        md_simple(fp, rows, BN_ROW_MACHINE), first = 0;
    }
    if (has_kind(rows, BN_ROW_TEXT)) {
        if (!first)
            fputc('\n', fp);
        md_simple(fp, rows, BN_ROW_TEXT);
    }
    if (mc && mc->n)
        md_machine_notes(fp, mc, rows);
    return 0;
}

static const char *kind_name(int kind)
{
    static const char *const names[] = {"e2e", "kernel", "machine", "text"};
    return kind >= 0 && kind < 4 ? names[kind] : "unknown";
}

void bn_bench_csv_str(FILE *fp, const char *s)
{
    /* RFC 4180: quote when needed, double the quotes. */
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

void bn_bench_csv_num(FILE *fp, double v)
{
    if (!isfinite(v))
        fputc(',', fp);
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53: exact */
        fprintf(fp, ",%.0f", v);
    else
        fprintf(fp, ",%.9g", v);
}

static int report_csv(FILE *fp, const bn_bench_rows *rows)
{
    fprintf(fp, "kind,model,size,params,layout,kernel,threads,test,what,unit,n,median,mean,stddev,min,max,"
                "bytes_per,ops_per,gbps,gops,bw_gbps,peak_gops,roofline_pct,bound,joules_per,load_s,ttft_s,"
                "peak_rss,parallel,per_seq,kv_bytes,samples\n");
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        fprintf(fp, "%s,", kind_name(r->kind));
        bn_bench_csv_str(fp, r->model);
        bn_bench_csv_num(fp, r->size);
        bn_bench_csv_num(fp, r->params);
        fputc(',', fp);
        bn_bench_csv_str(fp, r->layout);
        fputc(',', fp);
        bn_bench_csv_str(fp, r->kernel);
        fprintf(fp, ",%d,", r->threads);
        bn_bench_csv_str(fp, r->test);
        fputc(',', fp);
        bn_bench_csv_str(fp, r->what);
        fprintf(fp, ",%s,%d", r->unit, r->n);
        const double v[] = {r->median, r->mean,   r->stddev, r->min,       r->max,  r->bytes_per,
                            r->ops_per, r->gbps,  r->gops,   r->bw_gbps,   r->peak_gops, r->roofline};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            bn_bench_csv_num(fp, v[k]);
        fprintf(fp, ",%s", r->bound);
        bn_bench_csv_num(fp, r->joules_per);
        bn_bench_csv_num(fp, r->load_s);
        bn_bench_csv_num(fp, r->ttft_s);
        bn_bench_csv_num(fp, r->peak_rss);
        fprintf(fp, ",%d", r->n_seq);
        bn_bench_csv_num(fp, r->per_seq);
        bn_bench_csv_num(fp, r->kv_bytes);
        fputc(',', fp);
        for (int k = 0; k < r->n; k++)
            fprintf(fp, "%s%.9g", k ? ";" : "", r->samples[k]);
        fputc('\n', fp);
    }
    return 0;
}

static void j_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* A string member from text that may not be UTF-8 (a row names a file
 * as it was given; /proc's CPU name, a --rapl path): invalid bytes become
 * U+FFFD, since JSON text is UTF-8. */
static void j_text(cJSON *o, const char *key, const char *text)
{
    char *clean = bn_utf8_clean(text, strlen(text));
    cJSON_AddItemToObject(o, key, clean ? cJSON_CreateString(clean) : cJSON_CreateNull());
    free(clean);
}

static cJSON *json_machine(const bn_bench_machine *mc)
{
    cJSON *m = cJSON_CreateObject();
    j_text(m, "cpu", mc->cpu);
    cJSON_AddNumberToObject(m, "cpus", mc->n_cpus);
    if (!mc->n) /* --tokenize, --convert: the CPU alone, no limits measured */
        return m;
    j_num(m, "ghz", mc->ghz);
    cJSON_AddStringToObject(m, "int8_instruction", mc->isa);
    j_num(m, "macs_per_cycle", mc->macs_per_cycle);
    j_num(m, "bw_buffer_bytes", (double)mc->bw_bytes);
    cJSON_AddNumberToObject(m, "bw_probes", mc->bw_rounds);
    cJSON *lim = cJSON_AddArrayToObject(m, "limits");
    for (int i = 0; i < mc->n; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "threads", mc->threads[i]);
        j_num(l, "read_gbps", mc->bw_gbps[i]);
        j_num(l, "read_gbps_slowest_pattern", mc->bw_worst[i]);
        cJSON_AddStringToObject(l, "read_pattern", mc->bw_pattern[i]);
        j_num(l, "int8_gops", mc->peak_gops[i]);
        cJSON_AddItemToArray(lim, l);
    }
    j_text(m, "energy", mc->energy);
    return m;
}

static int report_json(FILE *fp, const bn_bench_machine *mc, const bn_bench_rows *rows)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "bn_bench", BN_VERSION);
    if (mc && mc->cpu[0])
        cJSON_AddItemToObject(root, "machine", json_machine(mc));
    cJSON *arr = cJSON_AddArrayToObject(root, "rows");
    for (size_t i = 0; i < rows->n; i++) {
        const bn_bench_row *r = &rows->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", kind_name(r->kind));
        j_text(o, "model", r->model);
        j_num(o, "size", r->size);
        j_num(o, "params", r->params);
        cJSON_AddStringToObject(o, "layout", r->layout);
        cJSON_AddStringToObject(o, "kernel", r->kernel);
        cJSON_AddNumberToObject(o, "threads", r->threads);
        j_text(o, "test", r->test);
        j_text(o, "what", r->what);
        cJSON_AddStringToObject(o, "unit", r->unit);
        cJSON_AddNumberToObject(o, "n", r->n); /* the samples taken, as the CSV's n */
        cJSON *s = cJSON_AddArrayToObject(o, "samples");
        for (int k = 0; k < r->n; k++)
            cJSON_AddItemToArray(s, cJSON_CreateNumber(r->samples[k]));
        j_num(o, "median", r->median);
        j_num(o, "mean", r->mean);
        j_num(o, "stddev", r->stddev);
        j_num(o, "min", r->min);
        j_num(o, "max", r->max);
        j_num(o, "bytes_per", r->bytes_per);
        j_num(o, "ops_per", r->ops_per);
        j_num(o, "gbps", r->gbps);
        j_num(o, "gops", r->gops);
        j_num(o, "bw_gbps", r->bw_gbps);
        j_num(o, "peak_gops", r->peak_gops);
        j_num(o, "roofline_pct", r->roofline);
        if (r->bound[0])
            cJSON_AddStringToObject(o, "bound", r->bound);
        else
            cJSON_AddNullToObject(o, "bound");
        j_num(o, "joules_per", r->joules_per);
        j_num(o, "load_s", r->load_s);
        j_num(o, "ttft_s", r->ttft_s);
        j_num(o, "peak_rss", r->peak_rss);
        if (r->n_seq) {
            cJSON_AddNumberToObject(o, "parallel", r->n_seq);
            j_num(o, "per_seq", r->per_seq);
            j_num(o, "kv_bytes", r->kv_bytes);
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt)
        return -1;
    fprintf(fp, "%s\n", txt);
    free(txt);
    return 0;
}

int bn_bench_report(FILE *fp, int format, const bn_bench_machine *mc, const bn_bench_rows *rows)
{
    if (format == BN_FMT_CSV)
        return report_csv(fp, rows);
    if (format == BN_FMT_JSON)
        return report_json(fp, mc, rows);
    return report_md(fp, mc, rows);
}

int bn_bench_list_shapes(FILE *fp, int format)
{
    cJSON *arr = format == BN_FMT_JSON ? cJSON_CreateArray() : NULL;
    if (format == BN_FMT_MD)
        fprintf(fp, "| shape | hidden | ffn | layers | heads | kv heads | vocab | context | params | t2 file | note |\n"
                    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    else if (format == BN_FMT_CSV)
        fprintf(fp, "shape,hidden,ffn,layers,heads,kv_heads,vocab,context,params,t2_bytes,note\n");
    const bn_shape *s;
    for (size_t i = 0; (s = bn_shape_at(i)); i++) {
        double params = (double)bn_shape_params(s), bytes = (double)bn_synth_bytes(s, BN_T2, NULL);
        if (format == BN_FMT_MD) {
            char p[32], b[32];
            bn_bench_fmt_params(params, p, sizeof p);
            bn_bench_fmt_size(bytes, b, sizeof b);
            fprintf(fp, "| %s | %u | %u | %u | %u | %u | %u | %u | %s | %s | %s |\n", s->name, s->n_embd, s->n_ff,
                    s->n_layer, s->n_head, s->n_head_kv, s->n_vocab, s->n_ctx, p, b, s->note);
        } else if (format == BN_FMT_CSV) {
            fprintf(fp, "%s,%u,%u,%u,%u,%u,%u,%u,%.0f,%.0f,", s->name, s->n_embd, s->n_ff, s->n_layer, s->n_head,
                    s->n_head_kv, s->n_vocab, s->n_ctx, params, bytes);
            bn_bench_csv_str(fp, s->note);
            fputc('\n', fp);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "shape", s->name);
            cJSON_AddNumberToObject(o, "hidden", s->n_embd);
            cJSON_AddNumberToObject(o, "ffn", s->n_ff);
            cJSON_AddNumberToObject(o, "layers", s->n_layer);
            cJSON_AddNumberToObject(o, "heads", s->n_head);
            cJSON_AddNumberToObject(o, "kv_heads", s->n_head_kv);
            cJSON_AddNumberToObject(o, "vocab", s->n_vocab);
            cJSON_AddNumberToObject(o, "context", s->n_ctx);
            cJSON_AddNumberToObject(o, "params", params);
            cJSON_AddNumberToObject(o, "t2_bytes", bytes);
            cJSON_AddStringToObject(o, "note", s->note);
            cJSON_AddItemToArray(arr, o);
        }
    }
    if (arr) {
        char *txt = cJSON_Print(arr);
        cJSON_Delete(arr);
        if (!txt)
            return -1;
        fprintf(fp, "%s\n", txt);
        free(txt);
    }
    return 0;
}
