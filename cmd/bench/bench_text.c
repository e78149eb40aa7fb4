/* bench_text.c — throughput of the byte-handling stages: the tokenizer
 * (encode and decode, MB/s of text and tokens/s, through tokenizer.h on a
 * given text or a generated one) and conversion (bn_convert of a model,
 * MB/s of tensor data), so those claims are one bn-bench command away too.
 * Conversion writes to a temporary file on tmpfs, so the disk is not what
 * is measured. */
#include "bench.h"
#include "signals.h"
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Text with the mix a tokenizer meets: words, capitals, numbers,
 * punctuation, accented and CJK words, newlines; the same for a seed. */
static char *gen_text(size_t n, uint64_t seed)
{
    static const char *const words[] = {
        "the", "of", "and", "model", "weights", "are", "ternary", "tokens", "per", "second", "memory",
        "bandwidth", "is", "a", "limit", "we", "measure", "it", "with", "vector", "loads", "prefill", "decode",
        "café", "naïve", "über", "東京", "模型", "данные", "it's", "don't", "x86-64", "CPU", "GPU", "(see", "below)",
        "e.g.", "i.e.", "—", "λ", "🙂", "\"quoted\"", "well-known", "state-of-the-art", "on", "in", "for", "to"};
    char *t = malloc(n + 64);
    if (!t)
        return NULL;
    size_t len = 0;
    uint64_t rng = seed;
    while (len < n) {
        uint64_t r = bn_bench_rand(&rng);
        char w[64];
        if (r % 11 == 0)
            snprintf(w, sizeof w, "%llu", (unsigned long long)(r >> 20) % 100000);
        else
            snprintf(w, sizeof w, "%s", words[(r >> 8) % (sizeof words / sizeof words[0])]);
        if ((r >> 32) % 9 == 0 && w[0] >= 'a' && w[0] <= 'z')
            w[0] = (char)(w[0] - 'a' + 'A');
        const char *sep = (r >> 40) % 13 == 0 ? ".\n" : (r >> 40) % 7 == 0 ? ", " : " ";
        int k = snprintf(t + len, n + 64 - len, "%s%s", w, sep);
        len += (size_t)k;
    }
    /* Cut at n, then back to a UTF-8 boundary. */
    len = n;
    while (len && ((unsigned char)t[len] & 0xc0) == 0x80)
        len--;
    t[len] = 0;
    return t;
}

static bn_bench_row *text_row(bn_bench_rows *rows, const char *src, const char *test, const char *what,
                              const char *unit)
{
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r)
        return NULL;
    r->kind = BN_ROW_TEXT;
    r->threads = 1;
    snprintf(r->model, sizeof r->model, "%s", src);
    snprintf(r->test, sizeof r->test, "%s", test);
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    return r;
}

static const char *base(const char *p)
{
    const char *b = strrchr(p, '/');
    return b && b[1] ? b + 1 : p;
}

int bn_bench_tokenize(const bn_bench_opts *o, bn_bench_rows *rows, bn_err *e)
{
    bn_tokenizer_src src = {0};
    if (o->n_models)
        src.model = o->models[0];
    else if (o->vocab)
        src.vocab = o->vocab;
    else
        return bn_fail(e, "--tokenize needs a tokenizer: -m MODEL or --vocab RANKFILE");
    bn_tokenizer *tok = bn_tokenizer_load(&src, e);
    if (!tok)
        return -1;
    bn_map map = {0};
    char *gen = NULL;
    const uint8_t *text;
    size_t n;
    char what[48];
    if (o->text) {
        if (bn_map_file(o->text, &map, e)) {
            bn_tokenizer_free(tok);
            return -1;
        }
        if (!map.size) { /* no rate can be measured on nothing */
            bn_unmap(&map);
            bn_tokenizer_free(tok);
            return bn_fail(e, "%s: no text", o->text);
        }
        text = map.data;
        n = map.size;
        snprintf(what, sizeof what, "%.*s %.2f MiB", (int)bn_bench_utf8_fit(base(o->text), 30), base(o->text),
                 (double)n / (1 << 20));
    } else {
        if (!(gen = gen_text(o->text_bytes, o->seed))) {
            bn_tokenizer_free(tok);
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        }
        text = (const uint8_t *)gen;
        n = strlen(gen);
        snprintf(what, sizeof what, "generated %.2f MiB", (double)n / (1 << 20));
    }
    char model_label[64];
    const char *label = o->n_models ? bn_bench_model_label(o, o->models[0], model_label, sizeof model_label)
                                    : base(o->vocab);
    bn_tokens ids = {0};
    bn_detok dt;
    int rc = -1;
    bn_bench_row *enc = text_row(rows, label, "encode", what, "MB/s");
    bn_bench_row *enc_t = enc ? text_row(rows, label, "encode", what, "tok/s") : NULL;
    bn_bench_row *dec = enc_t ? text_row(rows, label, "decode", what, "MB/s") : NULL;
    if (!dec) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    /* rows may have moved: take pointers again after the last add. */
    enc = &rows->v[rows->n - 3];
    enc_t = &rows->v[rows->n - 2];
    dec = &rows->v[rows->n - 1];
    for (int rep = -1; rep < o->reps; rep++) {
        bn_tokens_clear(&ids);
        double t0 = bn_bench_now();
        if (bn_tokenizer_encode(tok, text, n, 0, 0, &ids, e))
            goto done;
        double dt_s = bn_bench_now() - t0;
        if (bn_detok_init(&dt, tok, 0, e))
            goto done;
        size_t out = 0;
        int same = 1; /* decoding must give back the text's bytes: checked in the warm-up, which is not timed */
        t0 = bn_bench_now();
        for (size_t i = 0; i < ids.n; i++) {
            const uint8_t *p;
            size_t len;
            if (bn_detok_feed(&dt, ids.ids[i], &p, &len, e)) {
                bn_detok_release(&dt);
                goto done;
            }
            if (rep < 0)
                same &= out + len <= n && !memcmp(text + out, p, len);
            out += len;
        }
        const uint8_t *p;
        size_t len;
        bn_detok_flush(&dt, &p, &len);
        if (rep < 0)
            same &= out + len <= n && !memcmp(text + out, p, len);
        out += len;
        double dd_s = bn_bench_now() - t0;
        bn_detok_release(&dt);
        if (out != n || !same) {
            bn_fail(e, "tokenizer: decoding gave %zu bytes%s for %zu of text", out, same ? "" : ", not the text's",
                    n);
            goto done;
        }
        if (rep < 0)
            continue; /* warm-up */
        enc->samples[enc->n++] = (double)n / dt_s / 1e6;
        enc_t->samples[enc_t->n++] = (double)ids.n / dt_s;
        dec->samples[dec->n++] = (double)n / dd_s / 1e6;
    }
    bn_bench_stats(enc);
    bn_bench_stats(enc_t);
    bn_bench_stats(dec);
    rc = 0;
done:
    bn_tokens_free(&ids);
    free(gen);
    if (map.data)
        bn_unmap(&map);
    bn_tokenizer_free(tok);
    return rc;
}

/* Sum of tensor bytes: what a conversion moves, in every source format. */
static int source_bytes(const char *path, double *bytes, bn_err *e)
{
    bn_source s;
    if (bn_open_any(&s, path, e))
        return -1;
    *bytes = 0;
    for (size_t i = 0; i < s.n_tensors; i++)
        *bytes += (double)s.tensors[i].size;
    bn_source_close(&s);
    return 0;
}

int bn_bench_convert(const bn_bench_opts *o, bn_bench_rows *rows, bn_err *e)
{
    bn_synth sy = {.fd = -1};
    const char *src;
    char label[64];
    if (o->n_models) {
        src = o->models[0];
        bn_bench_model_label(o, src, label, sizeof label);
    } else if (o->n_synth) {
        if (bn_synth_new(&sy, o->synth[0], BN_T2, 0, o->mem_limit, o->seed, e))
            return -1;
        src = sy.path;
        snprintf(label, sizeof label, "synthetic %s", o->synth[0]->name);
    } else
        return bn_fail(e, "--convert needs a model: -m MODEL or --synthetic SHAPE");
    double bytes = 0;
    char dir[512], out[600];
    const char *tmp = access("/dev/shm", W_OK) ? getenv("TMPDIR") : "/dev/shm";
    snprintf(dir, sizeof dir, "%.400s/bn-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int rc = -1;
    if (source_bytes(src, &bytes, e))
        goto done;
    if (!mkdtemp(dir)) {
        bn_fail(e, "%s: cannot create a temporary directory: %s", dir, strerror(errno));
        goto done;
    }
    snprintf(out, sizeof out, "%s/out.bn", dir);
    /* a signal removes both: the output (between a commit and its unlink
     * it has this name), then the directory */
    bn_cli_track_temp(NULL, dir, 1);
    bn_cli_track_temp(NULL, out, 1);
    char what[48];
    snprintf(what, sizeof what, "to bn, %.2f MiB of tensors", bytes / (1 << 20));
    bn_bench_row *r = text_row(rows, label, "convert", what, "MB/s");
    if (!r) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto cleanup;
    }
    bn_convert_opts co = {.program = "bn-bench " BN_VERSION, .options = "--convert", .temps = {bn_cli_track_temp, NULL}};
    for (int rep = -1; rep < o->reps; rep++) {
        double t0 = bn_bench_now();
        if (bn_convert(src, out, &co, e))
            goto cleanup;
        double dt = bn_bench_now() - t0;
        unlink(out);
        if (rep >= 0)
            r->samples[r->n++] = bytes / dt / 1e6;
    }
    bn_bench_stats(r);
    rc = 0;
cleanup:
    unlink(out);
    rmdir(dir);
    bn_cli_track_temp(NULL, out, 0);
    bn_cli_track_temp(NULL, dir, 0);
done:
    bn_synth_free(&sy);
    return rc;
}
