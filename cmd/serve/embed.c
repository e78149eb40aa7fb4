/* embed.c — /v1/embeddings in OpenAI's shape: "input" as one text, texts,
 * token ids or arrays of ids, each made an embedding input as bn-infer
 * --embed makes it (BOS as the model asks for texts, the model's end token
 * appended: bn_embed_input); the answer's vectors as JSON numbers that
 * read back to the same f32 (%.9g) or as base64 of little-endian f32. */
#include "serve.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs per request: OpenAI's own limit. */
enum { SRV_EMBED_MAX_INPUTS = 2048 };

#define BAD(err, code, ...) srv_err((err), 400, "invalid_request_error", (code), __VA_ARGS__)

/* An array of token ids into in (1), not an array of numbers (0), or a
 * bad id (-1 and *err). */
static int get_ids(const srv_model_info *mi, const cJSON *a, size_t k, bn_tokens *in, srv_error *err)
{
    uint32_t V = bn_model_n_vocab(mi->m);
    for (const cJSON *it = a->child; it; it = it->next)
        if (!cJSON_IsNumber(it))
            return 0;
    char idb[32];
    for (const cJSON *it = a->child; it; it = it->next) {
        if (it->valuedouble != floor(it->valuedouble))
            return BAD(err, "invalid_type", "'input'[%zu]: token ids must be integers", k);
        if (!(it->valuedouble >= 0 && it->valuedouble < V))
            return BAD(err, "invalid_value", "'input'[%zu]: token id %s is outside the vocabulary (0..%u)", k,
                       srv_id_text(it->valuedouble, idb), V - 1);
        if (bn_tokens_push(in, (uint32_t)it->valuedouble, BN_TOK_NO_OFFSET))
            return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
    }
    return 1;
}

static int get_text(const srv_model_info *mi, const char *text, bn_tokens *in, srv_error *err)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    if (srv_encode(mi, text, strlen(text), BN_TOKENIZE_BOS, &ids, &n, err)) {
        free(ids);
        return -1;
    }
    in->ids = ids;
    in->n = in->cap = n;
    return 0;
}

/* "input": a string, an array of strings, an array of ids, an array of
 * arrays of ids. */
static int get_inputs(const srv_model_info *mi, const cJSON *o, srv_embed_job *j, srv_error *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "input");
    if (!p || cJSON_IsNull(p))
        return BAD(err, "missing_field", "'input' is required");
    static const char kinds[] = "'input' must be a string, an array of strings, an array of token ids or an array of "
                                "arrays of token ids";
    if (!cJSON_IsString(p) && !cJSON_IsArray(p))
        return BAD(err, "invalid_type", "%s", kinds);
    size_t n = cJSON_IsString(p) ? 1 : (size_t)cJSON_GetArraySize(p);
    if (!n)
        return BAD(err, "invalid_value", "'input' is empty");
    /* one array of numbers is one input */
    int one_ids = cJSON_IsArray(p) && cJSON_IsNumber(p->child);
    if (one_ids)
        n = 1;
    if (n > SRV_EMBED_MAX_INPUTS)
        return BAD(err, "invalid_value", "'input' holds %zu inputs; at most %d are taken", n, SRV_EMBED_MAX_INPUTS);
    if (!(j->inputs = calloc(n, sizeof *j->inputs)))
        return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
    j->n = n;
    const cJSON *it = cJSON_IsString(p) || one_ids ? p : p->child;
    for (size_t k = 0; k < n; k++, it = it->next) {
        bn_tokens *in = &j->inputs[k];
        int r = -1;
        if (cJSON_IsString(it))
            r = get_text(mi, it->valuestring, in, err);
        else if (cJSON_IsArray(it))
            r = get_ids(mi, it, k, in, err);
        if (r == 0 && !cJSON_IsString(it))
            r = BAD(err, "invalid_type", "%s", kinds); /* an array holding something but numbers */
        else if (r == -1 && !cJSON_IsString(it) && !cJSON_IsArray(it))
            r = BAD(err, "invalid_type", "%s", kinds);
        if (r < 0)
            return -1;
        bn_err e = {0};
        if (bn_embed_input(&mi->m->hp, in, &e))
            return srv_err(err, 500, "server_error", "out_of_memory", "%s", e.msg);
        if (!in->n)
            return BAD(err, "invalid_value", "'input'[%zu] is empty (and the model appends no end token)", k);
        if (in->n > mi->n_ctx)
            return BAD(err, "context_length_exceeded",
                       "'input'[%zu] is %zu tokens (the end token included); the context holds %u", k, in->n,
                       mi->n_ctx);
        j->n_tokens += in->n;
    }
    return 0;
}

static int get_options(const srv_model_info *mi, const cJSON *o, srv_embed_job *j, srv_error *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "encoding_format");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsString(f) || (strcmp(f->valuestring, "float") && strcmp(f->valuestring, "base64")))
            return BAD(err, "invalid_value", "'encoding_format' must be \"float\" or \"base64\"");
        j->base64 = !strcmp(f->valuestring, "base64");
    }
    /* The models' cards publish full vectors only (no Matryoshka
     * training): a shorter one is not theirs to give. */
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "dimensions");
    uint32_t n_embd = mi->m->hp.n_embd;
    if (d && !cJSON_IsNull(d)) {
        if (!cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble))
            return BAD(err, "invalid_type", "'dimensions' must be an integer");
        if (d->valuedouble != n_embd)
            return BAD(err, "unsupported_parameter",
                       "'dimensions' %g: this model's vectors are not made to be cut (its card publishes full "
                       "vectors only); it gives %u dimensions",
                       d->valuedouble, n_embd);
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "user");
    if (u && !cJSON_IsNull(u) && !cJSON_IsString(u))
        return BAD(err, "invalid_type", "'user' must be a string");
    return srv_check_model(mi, o, err);
}

srv_embed_job *srv_parse_embed(const srv_model_info *mi, const char *body, size_t n, srv_error *err)
{
    cJSON *root = srv_parse_body(body, n, err);
    if (!root)
        return NULL;
    srv_embed_job *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(root);
        srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        return NULL;
    }
    j->refs = 1;
    int rc = get_options(mi, root, j, err);
    if (!rc)
        rc = get_inputs(mi, root, j, err);
    cJSON_Delete(root);
    if (rc) {
        srv_embed_job_free(j);
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------- answer */

static char *base64(const float *v, size_t d)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = d * 4;
    unsigned char *b = malloc(n ? n : 1);
    char *out = malloc(4 * ((n + 2) / 3) + 3), *o = out;
    if (!b || !out) {
        free(b);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < d; i++) { /* little-endian whatever this machine's order */
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++)
            b[4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    *o++ = '"';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        *o++ = abc[w >> 18 & 63];
        *o++ = abc[w >> 12 & 63];
        *o++ = i + 1 < n ? abc[w >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[w & 63] : '=';
    }
    *o++ = '"';
    *o = 0;
    free(b);
    return out;
}

/* %.9g: every f32 reads back exactly (as bn-infer --embed writes them). */
static char *floats(const float *v, size_t d)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f)
        return NULL;
    fputc('[', f);
    for (size_t i = 0; i < d; i++)
        fprintf(f, i ? ",%.9g" : "%.9g", (double)v[i]);
    fputc(']', f);
    if (fclose(f)) {
        free(s);
        return NULL;
    }
    return s;
}

char *srv_embed_json(const srv_model_info *mi, const srv_embed_job *j)
{
    size_t d = mi->m->hp.n_embd;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(r, "data");
    int ok = r && data;
    for (size_t i = 0; ok && i < j->n; i++) {
        cJSON *o = cJSON_CreateObject();
        char *v = j->base64 ? base64(j->vec + i * d, d) : floats(j->vec + i * d, d);
        ok = o && v;
        if (ok) {
            cJSON_AddItemToArray(data, o);
            cJSON_AddStringToObject(o, "object", "embedding");
            cJSON_AddNumberToObject(o, "index", (double)i);
            ok = cJSON_AddRawToObject(o, "embedding", v) != NULL;
        } else
            cJSON_Delete(o);
        free(v);
    }
    cJSON_AddStringToObject(r, "model", mi->id);
    cJSON *u = cJSON_AddObjectToObject(r, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->n_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)j->n_tokens);
    char *s = ok ? cJSON_PrintUnformatted(r) : NULL;
    cJSON_Delete(r);
    return s;
}
