/* hf_tokenizer.c — a Hugging Face tokenizer.json (byte-level BPE) as our
 * `tokenizer` section, and the model-level token keys of an HF checkpoint
 * directory.
 *
 * Only what encodes exactly is accepted: model BPE without byte fallback
 * (with it: hf_spm.c, Gemma's kind) or subword affixes, no normalizer,
 * and a pre-tokenizer that is a regex Split ("Isolated") followed by
 * ByteLevel without its own regex, or ByteLevel
 * alone (GPT-2's regex). Anything else is refused by name rather than
 * encoded almost right. */
#include "jsonfile.h"
#include "tok_section.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cJSON *item(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *type_of(const cJSON *o)
{
    const cJSON *t = item(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

/* One pre-tokenizer step; *regex is set by a Split or a regex ByteLevel. */
static int pre_step(const cJSON *p, const char **regex, int *bytelevel, const char *path, bn_err *e)
{
    const char *ty = type_of(p);
    if (!strcmp(ty, "Split")) {
        const cJSON *pat = item(p, "pattern"), *re = pat ? item(pat, "Regex") : NULL;
        const cJSON *beh = item(p, "behavior"), *inv = item(p, "invert");
        if (!cJSON_IsString(re))
            return bn_fail(e, "%s: pre_tokenizer Split without a Regex pattern is not supported", path);
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") || cJSON_IsTrue(inv))
            return bn_fail(e, "%s: pre_tokenizer Split must be behavior Isolated, not inverted", path);
        if (*regex)
            return bn_fail(e, "%s: more than one regex pre-tokenizer is not supported", path);
        *regex = re->valuestring;
        return 0;
    }
    if (!strcmp(ty, "ByteLevel")) {
        if (cJSON_IsTrue(item(p, "add_prefix_space")))
            return bn_fail(e, "%s: pre_tokenizer ByteLevel with add_prefix_space is not supported", path);
        const cJSON *ur = item(p, "use_regex");
        if (!cJSON_IsFalse(ur)) { /* the default is true */
            if (*regex)
                return bn_fail(e, "%s: more than one regex pre-tokenizer is not supported", path);
            *regex = bn_tok_gpt2_regex;
        }
        *bytelevel = 1;
        return 0;
    }
    return bn_fail(e, "%s: pre_tokenizer '%s' is not supported (only Split and ByteLevel)", path, ty);
}

static int pre_regex(const cJSON *root, const char **regex, const char *path, bn_err *e)
{
    const cJSON *pt = item(root, "pre_tokenizer");
    int bytelevel = 0;
    *regex = NULL;
    if (!cJSON_IsObject(pt))
        return bn_fail(e, "%s: no pre_tokenizer (not a byte-level BPE)", path);
    if (!strcmp(type_of(pt), "Sequence")) {
        const cJSON *s;
        cJSON_ArrayForEach(s, item(pt, "pretokenizers")) if (pre_step(s, regex, &bytelevel, path, e)) return -1;
    } else if (pre_step(pt, regex, &bytelevel, path, e)) {
        return -1;
    }
    if (!bytelevel)
        return bn_fail(e, "%s: the pre_tokenizer has no ByteLevel step (not a byte-level BPE)", path);
    if (!*regex)
        *regex = bn_tok_llama3_regex; /* the Llama 3 structure with its Split left implicit */
    return 0;
}

/* Model checks: refuse what our BPE would not reproduce. */
static int check_model(const cJSON *root, const cJSON *model, const char *path, bn_err *e)
{
    if (!cJSON_IsObject(model))
        return bn_fail(e, "%s: no model object", path);
    const char *ty = type_of(model);
    if (*ty && strcmp(ty, "BPE"))
        return bn_fail(e, "%s: tokenizer model '%s' is not supported (only byte-level BPE)", path, ty);
    if (!cJSON_IsObject(item(model, "vocab")) || !cJSON_IsArray(item(model, "merges")))
        return bn_fail(e, "%s: model has no vocab object or merges array (not a BPE)", path);
    const cJSON *drop = item(model, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0))
        return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: BPE with dropout (random merges) is not supported", path);
    if (cJSON_IsTrue(item(model, "byte_fallback")))
        return bn_fail(e, "%s: BPE with byte_fallback (SentencePiece style) is not supported", path);
    const cJSON *p = item(model, "continuing_subword_prefix"), *s = item(model, "end_of_word_suffix");
    if ((cJSON_IsString(p) && *p->valuestring) || (cJSON_IsString(s) && *s->valuestring))
        return bn_fail(e, "%s: BPE with subword prefixes/suffixes is not supported", path);
    const cJSON *norm = item(root, "normalizer");
    if (norm && !cJSON_IsNull(norm))
        return bn_fail(e, "%s: normalizer '%s' is not supported", path, type_of(norm));
    return 0;
}

static int added_tokens(const cJSON *root, tok_builder *b, uint8_t **seen, size_t *nseen, uint64_t limit,
                        const char *path, bn_err *e)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, item(root, "added_tokens"))
    {
        const cJSON *id = item(a, "id"), *content = item(a, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX || !cJSON_IsString(content))
            return bn_fail(e, "%s: an added token without a valid id and content", path);
        /* checked before `seen` grows to the id */
        if (id->valuedouble >= (double)limit)
            return bn_fail(e, "%s: added token id %.0f is too large for %llu tokens (ids must stay below %llu)",
                           path, id->valuedouble, (unsigned long long)(limit - 1024) / 2,
                           (unsigned long long)limit);
        uint32_t i = (uint32_t)id->valuedouble;
        if (i >= *nseen) {
            size_t n = (size_t)i * 2 + 64;
            uint8_t *ns = realloc(*seen, n);
            if (!ns)
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
            memset(ns + *nseen, 0, n - *nseen);
            *seen = ns;
            *nseen = n;
        }
        (*seen)[i] = 1;
        /* options that change where an added token matches (around white
         * space, inside words): not modelled, so refused, not ignored */
        static const char *const opts[] = {"lstrip", "rstrip", "single_word"};
        for (size_t k = 0; k < sizeof opts / sizeof *opts; k++)
            if (cJSON_IsTrue(item(a, opts[k])))
                return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: added token %u ('%s') has %s, which is not supported",
                                    path, i, content->valuestring, opts[k]);
        uint8_t ty = cJSON_IsTrue(item(a, "special")) ? BN_TOKT_CONTROL : BN_TOKT_USER;
        if (bn_tok_builder_add(b, i, content->valuestring, strlen(content->valuestring), ty, e))
            return -1;
    }
    return 0;
}

static int64_t merge_side(tok_builder *b, const char *s, size_t n, uint8_t *buf)
{
    long len = bn_gpt2_decode(s, n, buf);
    return len > 0 ? bn_tok_builder_find(b, buf, (size_t)len) : -1;
}

static int merges(const cJSON *model, tok_builder *b, const char *path, bn_err *e)
{
    uint8_t *buf = NULL;
    size_t cap = 0, k = 0;
    const cJSON *m;
    int rc = -1;
    cJSON_ArrayForEach(m, item(model, "merges"))
    {
        const char *l = NULL, *r = NULL;
        size_t ln = 0, rn = 0;
        if (cJSON_IsString(m)) { /* "a b" */
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ')) {
                l = s, ln = (size_t)(sp - s), r = sp + 1, rn = strlen(sp + 1);
            }
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) { /* ["a", "b"] */
            l = m->child->valuestring, ln = strlen(l), r = m->child->next->valuestring, rn = strlen(r);
        }
        if (ln + rn + 1 > cap) {
            cap = (ln + rn + 1) * 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                bn_fail_code(e, BN_E_NOMEM, "out of memory");
                goto out;
            }
            buf = nb;
        }
        int64_t a = l ? merge_side(b, l, ln, buf) : -1, c = a >= 0 ? merge_side(b, r, rn, buf) : -1;
        if (c < 0) {
            char *txt = cJSON_PrintUnformatted(m);
            bn_fail(e, "%s: merge %zu %s does not name two tokens of the vocabulary", path, k, txt ? txt : "");
            free(txt);
            goto out;
        }
        if (bn_tok_builder_merge(b, (uint32_t)a, (uint32_t)c, e))
            goto out;
        k++;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int bn_tokenizer_section_from_hf(const cJSON *root, const char *path, bn_meta *section, bn_err *e)
{
    tok_builder b = {0};
    uint8_t *seen = NULL, *buf = NULL;
    size_t nseen = 0;
    int rc = -1;
    const char *regex;
    const cJSON *model = item(root, "model");
    if (cJSON_IsObject(model) && !strcmp(type_of(model), "BPE") && cJSON_IsTrue(item(model, "byte_fallback")) &&
        cJSON_IsObject(item(model, "vocab")) && cJSON_IsArray(item(model, "merges"))) {
        rc = bn_tokenizer_section_from_hf_spm(root, section, path, e); /* SentencePiece-style (Gemma) */
        goto out;
    }
    if (check_model(root, model, path, e) || pre_regex(root, &regex, path, e))
        goto out;
    /* Every id must stay below the bound for the number of tokens the file
     * declares, so a hostile id cannot size our tables. */
    uint64_t limit = tok_id_limit((uint64_t)cJSON_GetArraySize(item(model, "vocab")) +
                                  (uint64_t)cJSON_GetArraySize(item(root, "added_tokens")));
    if (added_tokens(root, &b, &seen, &nseen, limit, path, e))
        goto out;
    const cJSON *v;
    cJSON_ArrayForEach(v, item(model, "vocab"))
    {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX) {
            bn_fail(e, "%s: vocab entry '%s' has no valid id", path, v->string);
            goto out;
        }
        if (v->valuedouble >= (double)limit) {
            bn_fail(e, "%s: vocab entry '%.40s' has id %.0f, too large for %llu tokens (ids must stay below %llu)",
                    path, v->string, v->valuedouble, (unsigned long long)(limit - 1024) / 2,
                    (unsigned long long)limit);
            goto out;
        }
        uint32_t id = (uint32_t)v->valuedouble;
        if (id < nseen && seen[id])
            continue; /* the added token's own text wins */
        size_t n = strlen(v->string);
        uint8_t *nb = realloc(buf, n + 1);
        if (!nb) {
            bn_fail_code(e, BN_E_NOMEM, "out of memory");
            goto out;
        }
        buf = nb;
        long len = bn_gpt2_decode(v->string, n, buf);
        if (len <= 0) {
            bn_fail(e, "%s: vocab token '%.40s' is not in GPT-2 byte-level form", path, v->string);
            goto out;
        }
        if (bn_tok_builder_add(&b, id, buf, (size_t)len, BN_TOKT_NORMAL, e))
            goto out;
    }
    if (merges(model, &b, path, e))
        goto out;
    rc = bn_tok_builder_finish(&b, regex, "merges", cJSON_IsTrue(item(model, "ignore_merges")), section, path, e);
out:
    free(seen);
    free(buf);
    bn_tok_builder_free(&b);
    return rc;
}

/* ------------------------------------------------------ checkpoint dir */

static int32_t json_id(const cJSON *o, const char *k)
{
    const cJSON *v = item(o, k);
    if (cJSON_IsArray(v))
        v = cJSON_GetArrayItem(v, 0);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= INT32_MAX ? (int32_t)v->valuedouble : -1;
}

int bn_tokenizer_meta_from_hf(const char *hf_path, bn_meta *model_meta, bn_err *e)
{
    char dir[4096], path[4200];
    struct stat st;
    if (stat(hf_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", hf_path);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    } else {
        const char *slash = strrchr(hf_path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - hf_path) : 1, slash ? hf_path : ".");
        snprintf(path, sizeof path, "%s", hf_path);
    }
    cJSON *tj = NULL, *cfg = NULL;
    if (bn_json_load(path, &tj, e))
        return -1;
    bn_meta *sec = calloc(1, sizeof *sec);
    if (!sec) {
        cJSON_Delete(tj);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    if (bn_tokenizer_section_from_hf(tj, path, sec, e)) {
        cJSON_Delete(tj);
        bn_meta_free(sec);
        free(sec);
        return -1;
    }
    int32_t bos = bn_hf_template_special(item(tj, "post_processor"), 0), eos = -1;
    int add_bos = bos >= 0;
    cJSON_Delete(tj);
    if (bn_meta_set_section(model_meta, "tokenizer", sec))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    /* tokenizer.json from standard input has no directory: its neighbours
     * (BOS and EOS ids, chat template) are not the current directory's */
    int alone = !strcmp(hf_path, "-");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!alone && bn_file_exists(path)) {
        if (bn_json_load(path, &cfg, e))
            return -1;
        int32_t cb = json_id(cfg, "bos_token_id");
        if (bos < 0) /* the template's, when it has one, is what is added (hf.c) */
            bos = cb;
        eos = json_id(cfg, "eos_token_id");
        cJSON_Delete(cfg);
    }
    bn_hf_tokcfg tc = {NULL, -1};
    if (!alone && bn_hf_tokcfg_read(dir, &tc, e))
        return -1;
    const char *fmt = bn_chat_format_of_template(tc.chat_template);
    if (tc.add_bos >= 0)
        add_bos = tc.add_bos;
    int oom = tc.chat_template && bn_meta_set_str(model_meta, "chat.template", tc.chat_template);
    bn_hf_tokcfg_free(&tc);
    if (oom)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (bn_meta_set_i32(model_meta, "tokens.bos_id", bos) || bn_meta_set_i32(model_meta, "tokens.eos_id", eos) ||
        bn_meta_set_bool(model_meta, "tokens.add_bos", add_bos && bos >= 0) ||
        bn_meta_set_str(model_meta, "chat.format", fmt))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return 0;
}
