/* jsonfile.c — loading JSON files with errors that name them. */
#include "jsonfile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bn_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

typedef struct {
    cJSON *item;
    size_t at;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Python's json (transformers reads config.json with it) and serde_json's
 * maps keep a key's last value: so does bn. Every object below j loses its
 * earlier duplicates; sorting the keys keeps a hostile file's 100 000 of
 * them from costing n² comparisons. */
static int last_key_wins(cJSON *j)
{
    size_t n = 0;
    for (cJSON *c = j->child; c; c = c->next)
        n++;
    if (cJSON_IsObject(j) && n > 1) {
        keyed *k = malloc(n * sizeof *k);
        if (!k)
            return -1;
        size_t i = 0;
        for (cJSON *c = j->child; c; c = c->next, i++)
            k[i] = (keyed){c, i};
        qsort(k, n, sizeof *k, keyed_cmp);
        for (i = 0; i + 1 < n; i++)
            if (!strcmp(k[i].item->string, k[i + 1].item->string))
                cJSON_Delete(cJSON_DetachItemViaPointer(j, k[i].item));
        free(k);
    }
    for (cJSON *c = j->child; c; c = c->next)
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && last_key_wins(c))
            return -1;
    return 0;
}

int bn_json_load(const char *path, cJSON **out, bn_err *e)
{
    return bn_json_load_opts(path, 0, out, e);
}

int bn_json_load_opts(const char *path, int no_nul, cJSON **out, bn_err *e)
{
    bn_map m;
    if (bn_map_file(path, &m, e))
        return -1;
    if (no_nul && m.size >= 6 && memmem(m.data, m.size, "\\u0000", 6)) {
        bn_unmap(&m);
        return bn_fail(e, "%s: a string holds a NUL character (\\u0000)", path);
    }
    /* JSON text is UTF-8 (RFC 8259), as Python's and serde's readers of
     * these files insist; cJSON would copy other bytes into the model */
    if (!bn_utf8_valid((const char *)m.data, m.size)) {
        bn_unmap(&m);
        return bn_fail(e, "%s: not UTF-8 text (JSON is UTF-8)", path);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts((const char *)m.data, m.size, &end, 0);
    if (!j) {
        size_t at = end ? (size_t)(end - (const char *)m.data) : 0;
        bn_unmap(&m);
        return bn_fail(e, "%s: invalid JSON near byte %zu", path, at);
    }
    bn_unmap(&m);
    if (last_key_wins(j)) {
        cJSON_Delete(j);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bn_fail(e, "%s: expected a JSON object", path);
    }
    *out = j;
    return 0;
}

/* The "single" template's first or last piece, if it is a special token
 * of one id. */
static int32_t template_piece(const cJSON *pp, int at_end)
{
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    int n = cJSON_IsArray(single) ? cJSON_GetArraySize(single) : 0;
    const cJSON *piece = n ? cJSON_GetArrayItem(single, at_end ? n - 1 : 0) : NULL;
    const cJSON *st = piece ? cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken") : NULL;
    const cJSON *name = st ? cJSON_GetObjectItemCaseSensitive(st, "id") : NULL;
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    const cJSON *sp = cJSON_IsString(name) && specials ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring)
                                                       : NULL;
    const cJSON *ids = sp ? cJSON_GetObjectItemCaseSensitive(sp, "ids") : NULL;
    const cJSON *id = cJSON_IsArray(ids) && cJSON_GetArraySize(ids) == 1 ? cJSON_GetArrayItem(ids, 0) : NULL;
    return cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble <= INT32_MAX ? (int32_t)id->valuedouble
                                                                                         : -1;
}

int32_t bn_hf_template_special(const cJSON *post_processor, int at_end)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(post_processor, "type");
    if (!cJSON_IsString(type))
        return -1;
    if (!strcmp(type->valuestring, "Sequence")) {
        const cJSON *v;
        int32_t id = -1;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(post_processor, "processors"))
        {
            int32_t x = bn_hf_template_special(v, at_end);
            if (x >= 0 && (at_end || id < 0))
                id = x; /* the first processor's start, the last one's end */
        }
        return id;
    }
    return strcmp(type->valuestring, "TemplateProcessing") ? -1 : template_piece(post_processor, at_end);
}

const char *bn_chat_format_of_template(const char *tmpl)
{
    if (!tmpl)
        return "none";
    /* 2B4T's renders "Role: content<|eot_id|>" */
    if (strstr(tmpl, "capitalize") && strstr(tmpl, "<|eot_id|>") && strstr(tmpl, "Assistant: "))
        return "bitnet";
    /* Falcon3-Instruct's (its branch without tools): system and user
     * contents between a tag line and a newline, an assistant's ended by
     * eos_token and, unless last, a newline; the generation prompt after
     * the last message. Each piece that decides the rendering must be there. */
    static const char *const falcon3[] = {
        "'<|system|>\\n' + message['content'] + '\\n'",
        "'<|user|>\\n' + message['content'] + '\\n'",
        ("{%- if not loop.last %}\n{{- '<|assistant|>\\n' + message['content'] + eos_token + '\\n' }}\n"
         "{%- else %}\n{{- '<|assistant|>\\n' + message['content'] + eos_token }}"), /* one piece, two lines */
        "{%- if loop.last and add_generation_prompt %}\n{{- '<|assistant|>\\n' }}",
    };
    size_t found = 0;
    while (found < sizeof falcon3 / sizeof *falcon3 && strstr(tmpl, falcon3[found]))
        found++;
    if (found == sizeof falcon3 / sizeof *falcon3)
        return "falcon3";
    if (!strstr(tmpl, "<|start_header_id|>"))
        return "none";
    /* Llama 3.1's and 3.2's open with a system message that is always
     * there and dated: 3.1's with its fixed date_string, 3.2's with
     * strftime_now's today where the renderer has it (transformers and
     * llama.cpp do) */
    if (strstr(tmpl, "Cutting Knowledge Date: December 2023") && strstr(tmpl, "Today Date: "))
        return strstr(tmpl, "strftime_now") ? "llama3.2" : "llama3.1";
    return "llama3";
}

/* tokenizer_config's chat_template: a string, or named templates of which
 * transformers takes "default" when the caller names none (a list without
 * one is no template here: transformers asks for a name). */
static const char *config_template(const cJSON *tc)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(tc, "chat_template"), *v;
    if (cJSON_IsString(t))
        return t->valuestring;
    if (!cJSON_IsArray(t))
        return NULL;
    const char *found = NULL; /* the last one named so: transformers builds a dict of the list */
    cJSON_ArrayForEach(v, t)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(v, "template");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, "default") && cJSON_IsString(text))
            found = text->valuestring;
    }
    return found;
}

int bn_hf_tokcfg_read(const char *dir, bn_hf_tokcfg *out, bn_err *e)
{
    char path[4200];
    *out = (bn_hf_tokcfg){NULL, -1};
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    if (bn_file_exists(path)) {
        bn_map m;
        if (bn_map_file(path, &m, e))
            return -1;
        if (!bn_utf8_valid((const char *)m.data, m.size)) { /* transformers reads it as UTF-8 */
            bn_unmap(&m);
            return bn_fail(e, "%s: not UTF-8 text", path);
        }
        out->chat_template = strndup((const char *)m.data, m.size);
        bn_unmap(&m);
        if (!out->chat_template)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (!bn_file_exists(path))
        return 0;
    cJSON *tc = NULL;
    if (bn_json_load(path, &tc, e)) {
        bn_hf_tokcfg_free(out);
        return -1;
    }
    const char *t = out->chat_template ? NULL : config_template(tc);
    if (t && !(out->chat_template = strdup(t))) {
        cJSON_Delete(tc);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    const cJSON *addb = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token");
    if (cJSON_IsBool(addb))
        out->add_bos = cJSON_IsTrue(addb);
    cJSON_Delete(tc);
    return 0;
}

void bn_hf_tokcfg_free(bn_hf_tokcfg *c)
{
    free(c->chat_template);
    c->chat_template = NULL;
}
