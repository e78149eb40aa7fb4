/* describe.c — `--info`: what a model input holds, for people and scripts. */
#include "formats.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const hp_keys[] = {
    "general.architecture", "general.name", "model.vocab_size", "model.context_length",
    "model.embedding_length", "model.feed_forward_length", "model.block_count", "model.head_count",
    "model.head_count_kv", "model.head_dim", "model.rope_theta", "model.rope_pairing",
    "model.ffn_activation", "model.sub_norms", "model.norm_eps", "model.tied_embeddings", "model.ternary_rule",
    "model.proj_norm", "model.proj_norm_eps", "model.rope_scaling", "model.rope_scaling_factor",
    "model.qk_norm", "model.embedding_scale", "model.post_norms", "model.sliding_window",
    "model.swa_theta", "model.pooling", "tokens.embed_end_id", "tokens.bos_id", "tokens.eos_id",
    "tokens.pad_id", "tokens.add_bos", "chat.format",
    "provenance.converter", "provenance.source_format", "provenance.scale_convention", "provenance.note",
    "provenance.options", "general.source_model_type", "pack.layout", "pack.target", "pack.cpu", "pack.tile",
};

/* One value as text (arrays abbreviated). */
static void value_raw(const bn_kv *kv, char *out, size_t n)
{
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    if (kv->type != BN_V_STR && kv->type != BN_V_BYTES && kv->data && kv->type <= BN_V_BOOL) {
        memcpy(&u, kv->data, 8);
        memcpy(&i, kv->data, 8);
        memcpy(&d, kv->data, 8);
    }
    switch (kv->type) {
    case BN_V_U32: case BN_V_U64: case BN_V_BOOL:
        if (kv->type == BN_V_BOOL)
            snprintf(out, n, "%s", u ? "true" : "false");
        else
            snprintf(out, n, "%" PRIu64, u);
        break;
    case BN_V_I32: case BN_V_I64: snprintf(out, n, "%" PRId64, i); break;
    case BN_V_F32: case BN_V_F64: snprintf(out, n, "%g", d); break;
    case BN_V_STR: snprintf(out, n, "%.*s", (int)(kv->count > 200 ? 200 : kv->count), (char *)kv->data); break;
    case BN_V_BYTES: snprintf(out, n, "<%" PRIu64 " bytes>", kv->count); break;
    case BN_V_ARR:
        if (kv->elem_type == BN_V_I32 && kv->count <= 16) {
            size_t pos = 0;
            for (uint64_t k = 0; k < kv->count && pos < n; k++)
                pos += (size_t)snprintf(out + pos, n - pos, "%s%d", k ? " " : "", ((int32_t *)kv->data)[k]);
            if (!kv->count)
                snprintf(out, n, "(none)");
        } else if (kv->elem_type == BN_V_U64 && kv->count <= 16) {
            size_t pos = 0;
            for (uint64_t k = 0; k < kv->count && pos < n; k++)
                pos += (size_t)snprintf(out + pos, n - pos, "%s%016" PRIx64, k ? " " : "",
                                        ((uint64_t *)kv->data)[k]);
        } else
            snprintf(out, n, "<array of %" PRIu64 ">", kv->count);
        break;
    case BN_V_STRARR: /* (a short list goes through strarr_text) */
        snprintf(out, n, kv->count ? "<%" PRIu64 " strings>" : "", kv->count);
        break;
    case BN_V_SECTION: snprintf(out, n, "<section of %zu entries>", kv->sub->n); break;
    default: snprintf(out, n, "?");
    }
}

/* Values and names read from a file may hold any byte: escaped, control
 * bytes and backslashes alike, none can start a line of its own in the
 * listing that scripts read line by line, nor be mistaken for an escape. */
#define LISTING_ESC (BN_ESC_BACKSLASH | BN_ESC_CONTROLS)

/* Whether a list of strings must quote its elements to be read back: one
 * holds a space or a quote (a provenance step is a command line), or is
 * empty. */
static int strarr_quoted(const bn_kv *kv)
{
    for (uint64_t k = 0; k < kv->count; k++) {
        const char *s = (const char *)kv->data + kv->offsets[k];
        size_t len = (size_t)(kv->offsets[k + 1] - kv->offsets[k]);
        if (!len || memchr(s, ' ', len) || memchr(s, '"', len))
            return 1;
    }
    return 0;
}

/* A short list of strings, space-separated; each element in double quotes
 * when strarr_quoted says so, its own quotes then shown as \x22 (after
 * the escaping, so no backslash of the value can be taken for it). */
static void strarr_text(const bn_kv *kv, char *out, size_t n)
{
    int quoted = strarr_quoted(kv);
    size_t pos = 0;
    for (uint64_t k = 0; k < kv->count; k++) {
        char raw[1024], esc[2048];
        size_t len = (size_t)(kv->offsets[k + 1] - kv->offsets[k]), need = 0;
        snprintf(raw, sizeof raw, "%.*s", (int)(len < sizeof raw ? len : sizeof raw - 1),
                 (const char *)kv->data + kv->offsets[k]);
        bn_escape(raw, LISTING_ESC, esc, sizeof esc);
        for (const char *c = esc; *c; c++)
            need += *c == '"' ? 4 : 1;
        if (pos + 2 + 2 * (size_t)quoted + need >= n) { /* whole elements only; the cut shown */
            if (pos + 4 < n)
                memcpy(out + pos, " ...", 4), pos += 4;
            break;
        }
        if (k)
            out[pos++] = ' ';
        if (quoted)
            out[pos++] = '"';
        for (const char *c = esc; *c; c++) {
            if (*c == '"') {
                memcpy(out + pos, "\\x22", 4);
                pos += 4;
            } else
                out[pos++] = *c;
        }
        if (quoted)
            out[pos++] = '"';
    }
    out[pos] = '\0';
}

/* One value as text (arrays abbreviated), control bytes escaped. */
static void value_text(const bn_kv *kv, char *out, size_t n)
{
    if (kv->type == BN_V_STRARR && kv->count && kv->count <= 8) {
        strarr_text(kv, out, n);
        return;
    }
    char raw[512];
    value_raw(kv, raw, sizeof raw);
    bn_escape(raw, LISTING_ESC, out, n);
}

/* Text as a JSON string: a model file's strings and names may hold any
 * bytes, JSON text only valid UTF-8 (bn_utf8_clean). */
static cJSON *text_json(const char *text, size_t n)
{
    char *clean = bn_utf8_clean(text, n);
    cJSON *j = cJSON_CreateString(clean ? clean : "");
    free(clean);
    return j;
}

static void add_text(cJSON *o, const char *key, const char *text)
{
    char *k = bn_utf8_clean(key, strlen(key));
    cJSON_AddItemToObject(o, k ? k : "", text_json(text, strlen(text)));
    free(k);
}

static cJSON *value_json(const bn_kv *kv)
{
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    if (kv->data && kv->type <= BN_V_BOOL) {
        memcpy(&u, kv->data, 8);
        memcpy(&i, kv->data, 8);
        memcpy(&d, kv->data, 8);
    }
    switch (kv->type) {
    case BN_V_U32: case BN_V_U64: return cJSON_CreateNumber((double)u);
    case BN_V_I32: case BN_V_I64: return cJSON_CreateNumber((double)i);
    case BN_V_F32: case BN_V_F64: return cJSON_CreateNumber(d);
    case BN_V_BOOL: return cJSON_CreateBool(u != 0);
    case BN_V_STR: return text_json(kv->data, (size_t)kv->count);
    case BN_V_ARR: {
        cJSON *a = cJSON_CreateArray();
        for (uint64_t k = 0; k < kv->count && k < 4096; k++) {
            double v = 0;
            char hex[24];
            switch (kv->elem_type) {
            case BN_V_I32: v = ((int32_t *)kv->data)[k]; break;
            case BN_V_U32: v = ((uint32_t *)kv->data)[k]; break;
            case BN_V_F32: v = ((float *)kv->data)[k]; break;
            case BN_V_I64: v = (double)((int64_t *)kv->data)[k]; break;
            case BN_V_F64: v = ((double *)kv->data)[k]; break;
            case BN_V_BOOL: cJSON_AddItemToArray(a, cJSON_CreateBool(((uint8_t *)kv->data)[k] != 0)); continue;
            case BN_V_U64: /* hashes: exact as hex strings */
                snprintf(hex, sizeof hex, "%016" PRIx64, ((uint64_t *)kv->data)[k]);
                cJSON_AddItemToArray(a, cJSON_CreateString(hex));
                continue;
            default: v = ((uint8_t *)kv->data)[k];
            }
            cJSON_AddItemToArray(a, cJSON_CreateNumber(v));
        }
        return a;
    }
    case BN_V_STRARR:
        if (kv->count <= 64) {
            cJSON *a = cJSON_CreateArray();
            for (uint64_t k = 0; k < kv->count; k++) {
                size_t len = (size_t)(kv->offsets[k + 1] - kv->offsets[k]);
                cJSON_AddItemToArray(a, text_json((char *)kv->data + kv->offsets[k], len));
            }
            return a;
        }
        return cJSON_CreateNumber((double)kv->count);
    case BN_V_SECTION: return cJSON_CreateNumber((double)kv->sub->n);
    default: return cJSON_CreateNull();
    }
}

static void shape_text(const bn_tensor *t, char *out, size_t n)
{
    size_t pos = snprintf(out, n, "[");
    for (uint32_t d = 0; d < t->ndim && pos < n; d++)
        pos += (size_t)snprintf(out + pos, n - pos, "%s%" PRIu64, d ? ", " : "", t->shape[d]);
    if (pos < n)
        snprintf(out + pos, n - pos, "]");
}

static const char *checksum_status(const bn_tensor *t, int verified, int ok)
{
    if (!t->has_hash)
        return "none";
    if (!verified)
        return "stored";
    return ok ? "ok" : "MISMATCH";
}

int bn_describe(const char *src, FILE *fp, int json, int verify, const char *tl_config, bn_err *e)
{
    bn_source s;
    if (bn_open_any_tl(&s, src, tl_config, e))
        return -1;
    if (!strcmp(s.format, "bn") && !s.tensors[0].data && s.n_tensors) {
        /* a stream: read through it so the trailer's checksums are checked */
        uint8_t *buf = NULL;
        size_t cap = 0;
        for (size_t i = 0; i < s.n_tensors; i++) {
            buf = bn_scratch(buf, &cap, s.tensors[i].size); /* (a first tensor of 0 bytes too) */
            if (!buf || s.read(&s, i, buf, e)) {
                free(buf);
                bn_source_close(&s);
                return buf ? -1 : bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
            }
        }
        free(buf);
        if (bn_bnfile_finish(&s, e)) {
            bn_source_close(&s);
            return -1;
        }
        verify = 2; /* every checksum was compared while streaming */
    }
    int verified = 0;
    uint8_t *ok = calloc(s.n_tensors + 1, 1);
    if (!ok) {
        bn_source_close(&s);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
    }
    if (verify == 2) {
        verified = 1;
        memset(ok, 1, s.n_tensors);
    }
    if (verify == 1 && !strcmp(s.format, "bn")) {
        verified = 1;
        for (size_t i = 0; i < s.n_tensors; i++)
            ok[i] = bn_hash(s.tensors[i].data, s.tensors[i].size) == s.tensors[i].hash;
    }
    uint64_t total = 0, params = 0;
    for (size_t i = 0; i < s.n_tensors; i++) {
        uint64_t n = 1;
        for (uint32_t d = 0; d < s.tensors[i].ndim; d++)
            n *= s.tensors[i].shape[d];
        total += s.tensors[i].size;
        params += n;
    }
    bn_hparams hp;
    bn_err herr;
    int hp_ok = bn_hparams_from_meta(&s.meta, &hp, src, &herr) == 0;
    const bn_meta *tok = bn_meta_section(&s.meta, "tokenizer");
    const bn_kv *toks = tok ? bn_meta_get(tok, "tokenizer.tokens") : NULL;
    size_t bad = 0;
    for (size_t i = 0; i < s.n_tensors; i++)
        bad += verified && !ok[i];
    if (json) {
        cJSON *root = cJSON_CreateObject();
        add_text(root, "file", src);
        cJSON_AddStringToObject(root, "format", s.format);
        cJSON *md = cJSON_AddObjectToObject(root, "metadata");
        for (size_t i = 0; i < s.meta.n; i++) {
            const bn_kv *kv = &s.meta.kv[i];
            if (kv->type == BN_V_SECTION)
                continue;
            char *key = bn_utf8_clean(kv->key, strlen(kv->key));
            cJSON_AddItemToObject(md, key ? key : "", value_json(kv));
            free(key);
        }
        cJSON_AddBoolToObject(root, "runnable", hp_ok);
        if (!hp_ok)
            add_text(root, "problem", herr.msg);
        cJSON_AddNumberToObject(root, "vocabulary", toks ? (double)toks->count : 0);
        cJSON_AddNumberToObject(root, "parameters", (double)params);
        cJSON_AddNumberToObject(root, "tensor_bytes", (double)total);
        cJSON_AddStringToObject(root, "checksums",
                                !s.n_tensors || !s.tensors[0].has_hash ? "none"
                                : !verified                           ? "stored"
                                : bad                                 ? "mismatch"
                                                                      : "ok");
        cJSON *ta = cJSON_AddArrayToObject(root, "tensors");
        for (size_t i = 0; i < s.n_tensors; i++) {
            const bn_tensor *t = &s.tensors[i];
            cJSON *o = cJSON_CreateObject();
            char hex[24];
            add_text(o, "name", t->name);
            cJSON_AddStringToObject(o, "type", bn_type_name(t->type) ? bn_type_name(t->type) : "unknown");
            cJSON *sh = cJSON_AddArrayToObject(o, "shape");
            for (uint32_t d = 0; d < t->ndim; d++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddNumberToObject(o, "size", (double)t->size);
            if (t->has_hash) {
                snprintf(hex, sizeof hex, "%016" PRIx64, t->hash);
                cJSON_AddStringToObject(o, "xxh3", hex);
            }
            cJSON_AddStringToObject(o, "checksum", checksum_status(t, verified, ok[i]));
            cJSON_AddItemToArray(ta, o);
        }
        char *txt = cJSON_PrintUnformatted(root);
        fprintf(fp, "%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(root);
    } else {
        char v[512];
        fprintf(fp, "%-28s %s\n", "file", src);
        fprintf(fp, "%-28s %s\n", "format", s.format);
        for (size_t k = 0; k < sizeof hp_keys / sizeof *hp_keys; k++) {
            const bn_kv *kv = bn_meta_get(&s.meta, hp_keys[k]);
            if (!kv)
                continue;
            value_text(kv, v, sizeof v);
            fprintf(fp, "%-28s %s\n", hp_keys[k], v);
        }
        const bn_kv *stops = bn_meta_get(&s.meta, "tokens.stop_ids");
        if (stops) {
            value_text(stops, v, sizeof v);
            fprintf(fp, "%-28s %s\n", "tokens.stop_ids", v);
        }
        static const char *const lists[] = {"provenance.sources", "provenance.source_hashes", "provenance.steps"};
        for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
            const bn_kv *kv = bn_meta_get(&s.meta, lists[k]);
            if (kv) {
                value_text(kv, v, sizeof v);
                fprintf(fp, "%-28s %s\n", lists[k], v);
            }
        }
        if (toks)
            fprintf(fp, "%-28s %" PRIu64 " tokens\n", "tokenizer", toks->count);
        else
            fprintf(fp, "%-28s %s\n", "tokenizer", "none");
        if (!hp_ok) /* the message may quote a value of the file */
            fprintf(fp, "%-28s %s\n", "problem", bn_escape(herr.msg, LISTING_ESC, v, sizeof v));
        fprintf(fp, "%-28s %zu tensors, %" PRIu64 " parameters, %" PRIu64 " bytes\n", "tensors", s.n_tensors,
                params, total);
        fprintf(fp, "%-28s %s\n", "checksums",
                !s.n_tensors || !s.tensors[0].has_hash ? "none (format has none)"
                : !verified                           ? "stored (use --verify to check)"
                : bad                                 ? "MISMATCH"
                                                      : "all ok");
        fprintf(fp, "\n%-36s %-6s %-16s %12s  %s\n", "name", "type", "shape", "bytes", "checksum");
        for (size_t i = 0; i < s.n_tensors; i++) {
            const bn_tensor *t = &s.tensors[i];
            char sh[96];
            shape_text(t, sh, sizeof sh);
            const char *tn = bn_type_name(t->type);
            char unk[16];
            if (!tn) {
                snprintf(unk, sizeof unk, "#%u", t->type);
                tn = unk;
            }
            char name[256];
            fprintf(fp, "%-36s %-6s %-16s %12" PRIu64 "  %s\n", bn_escape(t->name, LISTING_ESC, name, sizeof name), tn, sh, t->size,
                    checksum_status(t, verified, ok[i]));
        }
    }
    int rc = 0;
    if (bad) {
        size_t first = 0;
        while (ok[first])
            first++;
        rc = bad == 1 ? bn_fail(e, "%s: tensor '%s' is damaged (checksum mismatch)", src, s.tensors[first].name)
                      : bn_fail(e, "%s: %zu tensors are damaged (checksum mismatch), the first is '%s'", src, bad,
                                s.tensors[first].name);
    }
    free(ok);
    bn_source_close(&s);
    return rc;
}
