/* request.c — OpenAI-style request bodies into jobs: the prompt (text,
 * token ids, or chat messages rendered with the model's chat format),
 * sampling parameters checked for type and range, stop strings; and the
 * bodies of /tokenize and /detokenize. Every refusal names the field. */
#include "serve.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int srv_err(srv_error *err, int status, const char *type, const char *code, const char *fmt, ...)
{
    err->status = status;
    err->type = type;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof err->msg) {
        /* Cut short: drop a character the cut split (the request's own
         * text, checked as UTF-8, may be in the message), so the JSON
         * error stays valid UTF-8. */
        size_t n = strlen(err->msg), i = n;
        while (i > 0 && ((unsigned char)err->msg[i - 1] & 0xC0) == 0x80)
            i--;
        if (i > 0) {
            unsigned char lead = (unsigned char)err->msg[i - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (n - (i - 1) < want)
                err->msg[i - 1] = 0;
        }
    }
    /* OpenAI's param: the field a message names first, in quotes */
    const char *end = err->msg[0] == '\'' ? strchr(err->msg + 1, '\'') : NULL;
    size_t plen = end ? (size_t)(end - err->msg - 1) : 0;
    err->param[0] = 0;
    if (plen && plen < sizeof err->param)
        snprintf(err->param, sizeof err->param, "%.*s", (int)plen, err->msg + 1);
    return -1;
}

int srv_err_param(srv_error *err, const char *param)
{
    snprintf(err->param, sizeof err->param, "%s", param);
    return -1;
}

#define BAD(err, code, ...) srv_err((err), 400, "invalid_request_error", (code), __VA_ARGS__)

/* Whether a JSON text escapes a NUL (\u0000) in some string. cJSON keeps
 * strings NUL-terminated, so such a string would end there unseen: a
 * prompt "a\u0000bcd" was answered as "a". In valid JSON a backslash only
 * starts an escape inside a string, so skipping each escaped character
 * is enough to tell "\\u0000" (a backslash, then text) from "\u0000". */
static int escapes_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\\') {
            if (s[i + 1] == 'u' && i + 6 <= n && !memcmp(s + i + 2, "0000", 4))
                return 1;
            i++;
        }
    return 0;
}

/* The value of the \uXXXX escape at s (6 bytes there), or -1. */
static long escape_at(const char *s, size_t n)
{
    if (n < 6 || s[0] != '\\' || s[1] != 'u')
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The first \uD800..\uDFFF escape not in a high-low pair, or -1: JSON's
 * grammar lets one through (Python's json.dumps writes one for a string
 * read with surrogateescape), but it is no character, so cJSON refuses
 * the body; this says why instead of "not valid JSON". */
static long lone_surrogate(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\\') {
            long v = escape_at(s + i, n - i);
            if (v >= 0xdc00 && v <= 0xdfff)
                return v;
            if (v >= 0xd800 && v <= 0xdbff) {
                long lo = escape_at(s + i + 6, n - i - 6);
                if (!(lo >= 0xdc00 && lo <= 0xdfff))
                    return v;
                i += 6; /* the pair's low half */
            }
            i++;
        }
    return -1;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A name that some object of the value holds twice, or NULL (*oom set
 * when there was no memory to look). cJSON finds the first of two, while
 * Python's and JavaScript's parsers, and so OpenAI's API and a proxy in
 * front that checks the body, take the last: {"max_tokens": 10,
 * "max_tokens": 100000} would mean one thing there and another here.
 * Names are sorted, not compared pairwise: a body may hold an object of
 * 100000 names. */
static const char *twice_named(const cJSON *v, int *oom)
{
    size_t n = 0;
    for (const cJSON *it = v->child; it; it = it->next) {
        n++;
        const char *d = cJSON_IsObject(it) || cJSON_IsArray(it) ? twice_named(it, oom) : NULL;
        if (d || *oom)
            return d;
    }
    if (!cJSON_IsObject(v) || n < 2)
        return NULL;
    const char **names = malloc(n * sizeof *names);
    if (!names) {
        *oom = 1;
        return NULL;
    }
    n = 0;
    for (const cJSON *it = v->child; it; it = it->next)
        names[n++] = it->string;
    qsort(names, n, sizeof *names, name_cmp);
    const char *d = NULL;
    for (size_t i = 1; i < n && !d; i++)
        if (!strcmp(names[i - 1], names[i]))
            d = names[i];
    free(names);
    return d;
}

/* The body as a JSON object: valid UTF-8, one value, nothing after it. */
cJSON *srv_parse_body(const char *body, size_t n, srv_error *err)
{
    if (memchr(body, 0, n) || !bn_utf8_valid(body, n)) {
        BAD(err, "invalid_encoding", "the request body is not valid UTF-8 text");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    if (root && end)
        while (end < body + n && strchr(" \t\r\n", *end))
            end++;
    if (!root || end != body + n) {
        cJSON_Delete(root);
        long sur = root ? -1 : lone_surrogate(body, n);
        if (sur >= 0)
            BAD(err, "invalid_encoding", "a string of the request holds \\u%04lX, half of a UTF-16 surrogate pair "
                "without its other half: no character", (unsigned long)sur);
        else
            BAD(err, "invalid_json", "the request body is not valid JSON");
        return NULL;
    }
    if (escapes_nul(body, n)) {
        cJSON_Delete(root);
        BAD(err, "invalid_value", "a string of the request holds \\u0000 (NUL), which bn-serve does not take");
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        BAD(err, "invalid_json", "the request body must be a JSON object");
        return NULL;
    }
    int oom = 0;
    const char *dup = twice_named(root, &oom);
    if (dup || oom) {
        if (oom)
            srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        else {
            BAD(err, "invalid_value", "'%s' appears twice in an object of the request: which one is meant is not for "
                "bn-serve to guess", dup);
            srv_err_param(err, dup); /* the name itself, whatever quotes it holds */
        }
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* A field absent or null: 0. A number in [lo, hi] (whole when integer):
 * 1 with *v. Anything else: -1 with *err. */
static int get_number(const cJSON *o, const char *name, double lo, double hi, int integer, double *v, srv_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it) || (integer && it->valuedouble != floor(it->valuedouble)))
        return BAD(err, "invalid_type", "'%s' must be %s", name, integer ? "an integer" : "a number");
    if (!(it->valuedouble >= lo && it->valuedouble <= hi))
        return integer ? BAD(err, "invalid_value", "'%s' must be between %.0f and %.0f", name, lo, hi)
                       : BAD(err, "invalid_value", "'%s' must be between %g and %g", name, lo, hi);
    *v = it->valuedouble;
    return 1;
}

static int get_bool(const cJSON *o, const char *name, int *v, srv_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsBool(it))
        return BAD(err, "invalid_type", "'%s' must be true or false", name);
    *v = cJSON_IsTrue(it);
    return 1;
}

/* Text into ids with the model's tokenizer (whose scratch is shared). */
int srv_encode(const srv_model_info *mi, const char *text, size_t len, unsigned flags, uint32_t **ids, size_t *n,
               srv_error *err)
{
    bn_err e = {0};
    size_t cap = len + 2, need = 0;
    *ids = NULL;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t *p = realloc(*ids, (cap ? cap : 1) * sizeof *p);
        if (!p)
            return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        *ids = p;
        pthread_mutex_lock(mi->tok_mu);
        int rc = bn_tokenize(mi->tok, text, len, flags, *ids, cap, &need, &e);
        pthread_mutex_unlock(mi->tok_mu);
        if (rc)
            return BAD(err, "invalid_value", "%s", e.msg);
        if (need <= cap)
            break;
        cap = need;
    }
    *n = need;
    return 0;
}

/* One of the answer's length fields: 0 absent, 1 with *v, -1 refused.
 * -1 is llama-server's "no limit" under each name (it reads max_tokens as
 * n_predict); n_predict also takes -2, its older "until the context is
 * full", the same here. 0 is refused (but for a completion's echo: the
 * prompt alone, scored): OpenAI refuses it, and llama-server's meaning
 * (read the prompt into its cache, answer nothing) would do nothing here,
 * where no cache outlives a request. */
static int get_limit(const cJSON *o, const char *name, double lowest, int zero, double *v, srv_error *err)
{
    int r = get_number(o, name, -HUGE_VAL, HUGE_VAL, 1, v, err);
    if (r > 0 && ((*v == 0 && !zero) || *v < lowest || *v > 1e9))
        return zero ? BAD(err, "invalid_value", "'%s' must be -1 (no limit) or between 0 and 1000000000", name)
                    : BAD(err, "invalid_value", "'%s' must be -1 (no limit) or between 1 and 1000000000", name);
    return r;
}

/* The answer's length: max_tokens, max_completion_tokens (OpenAI's newer
 * name; llama-server takes it on both endpoints) or llama-server's
 * n_predict. Two of them must say the same (any negative one: no limit):
 * which one was meant is not for bn-serve to guess. The error names the
 * later one in this order first, so max_tokens beside
 * max_completion_tokens, as OpenAI does. */
static int get_length(const cJSON *o, srv_job *j, srv_error *err)
{
    static const char *const names[] = {"max_completion_tokens", "max_tokens", "n_predict"};
    const char *named = NULL;
    double v, prev = 0;
    j->n_predict = -1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        int r = get_limit(o, names[i], i == 2 ? -2 : -1, j->echo, &v, err); /* echo: 0 gives the prompt alone */
        if (r < 0)
            return -1;
        if (!r)
            continue;
        int32_t n = v < 0 ? -1 : (int32_t)v;
        if (named && n != j->n_predict)
            return BAD(err, "invalid_value", "'%s' (%.0f) and '%s' (%.0f) differ: send one of them", names[i], v,
                       named, prev);
        j->n_predict = n;
        named = names[i];
        prev = v;
    }
    return 0;
}

/* The penalties. repeat_penalty and presence_penalty are bn's sampler's
 * (llama.cpp's). OpenAI's frequency_penalty f subtracts f from a logit for
 * every time its token occurred; bn's sampler has no count, but it does
 * subtract presence_penalty once from each token that occurred, which is
 * OpenAI's formula for a token seen once (and less for one seen more), in
 * the same units and over OpenAI's whole range: f is added to
 * presence_penalty. (1 + f as repeat_penalty, a divisor, has another shape
 * and no meaning below f = -1.) So frequency_penalty and repeat_penalty
 * both apply, as in llama-server. repeat_last_n is llama-server's too:
 * 0 turns the penalties off, -1 looks at the whole context (bn's 0). */
static int get_penalties(const cJSON *o, srv_job *j, srv_error *err)
{
    double v;
    int r;
    if ((r = get_number(o, "presence_penalty", -100, 100, 0, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.presence_penalty = (float)v;
    if ((r = get_number(o, "frequency_penalty", -2, 2, 0, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.presence_penalty += (float)v;
    if ((r = get_number(o, "repeat_penalty", 0.01, 100, 0, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.repeat_penalty = (float)v;
    if ((r = get_number(o, "repeat_last_n", -1, 1 << 24, 1, &v, err)) < 0)
        return -1;
    if (r && v == 0) {
        j->samp.repeat_penalty = 1;
        j->samp.presence_penalty = 0;
    } else if (r) {
        j->samp.penalty_last_n = v < 0 ? 0 : (uint32_t)v;
    }
    return 0;
}

/* seed: OpenAI's is an int64 and llama-server's -1 asks for a random one,
 * so every integer in int64's and uint64's range is taken, -1 keeps the
 * random seed and another negative one is its two's complement (a fixed
 * seed, as OpenAI's -42 is). cJSON holds numbers as doubles: above 2^53 a
 * seed is the nearest double (neighbouring seeds give one answer), and
 * 2^64 - 1, which rounds to 2^64, is taken as 2^64 - 1. */
static int get_seed(const cJSON *o, srv_job *j, srv_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "seed");
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
        return BAD(err, "invalid_type", "'seed' must be an integer");
    double v = it->valuedouble;
    if (!(v >= -0x1p63 && v <= 0x1p64))
        return BAD(err, "invalid_value", "'seed' must be between -9223372036854775808 and 18446744073709551615");
    if (v == -1)
        return 0; /* llama-server's "random" */
    j->samp.seed = v >= 0x1p64 ? UINT64_MAX : v >= 0 ? (uint64_t)v : (uint64_t)(int64_t)v;
    return 0;
}

/* stream_options: {"include_usage": true|false}, only with "stream": true
 * (OpenAI refuses it without: an answer in one piece has no chunks). */
static int get_stream_options(const cJSON *o, srv_job *j, srv_error *err)
{
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(o, "stream_options");
    j->stream_usage = -1;
    if (!so || cJSON_IsNull(so))
        return 0;
    if (!j->stream)
        return BAD(err, "invalid_value", "'stream_options' is only allowed when 'stream' is true");
    if (!cJSON_IsObject(so))
        return BAD(err, "invalid_type", "'stream_options' must be an object");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
    if (u && !cJSON_IsNull(u) && !cJSON_IsBool(u))
        return BAD(err, "invalid_type", "'stream_options.include_usage' must be true or false");
    if (cJSON_IsBool(u))
        j->stream_usage = cJSON_IsTrue(u);
    return 0;
}

/* Whether a field asks for something: present, and not null, false, 0,
 * "", [] or {}. */
static int asks(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return it && !cJSON_IsNull(it) && !cJSON_IsFalse(it) && !(cJSON_IsNumber(it) && it->valuedouble == 0) &&
           !((cJSON_IsArray(it) || cJSON_IsObject(it)) && !it->child) && !(cJSON_IsString(it) && !*it->valuestring);
}

/* tool_choice (function_call, its older name): without tools, which bn
 * does not take, "none" and "auto" are answered with text as they would
 * be (OpenAI refuses even those without tools, which would turn away
 * clients that always send "auto"); "required" or a named function asks
 * for a tool call bn cannot make. */
static int get_tool_choice(const cJSON *o, const char *name, srv_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it || cJSON_IsNull(it) ||
        (cJSON_IsString(it) && (!strcmp(it->valuestring, "none") || !strcmp(it->valuestring, "auto"))))
        return 0;
    return BAD(err, "unsupported_parameter", "'%s' other than \"none\" or \"auto\" asks for a tool call, which "
               "bn-serve does not make", name);
}

/* What bn-serve cannot do is refused with the field's name, not ignored:
 * an answer without it would pass for one with it. Asking for nothing
 * (null, false, 0, empty) is taken. */
static int refuse_unsupported(const cJSON *o, srv_error *err)
{
    double v;
    int r;
    if ((r = get_number(o, "n", 1, 1e9, 1, &v, err)) < 0)
        return -1;
    if (r && v != 1)
        return BAD(err, "unsupported_parameter", "'n' must be 1: one answer per request");
    if ((r = get_number(o, "best_of", 0, 1e9, 1, &v, err)) < 0)
        return -1;
    if (r && v != 1)
        return BAD(err, "unsupported_parameter", "'best_of' must be 1: one answer per request");
    /* llama-server's: n_probs (its logprobs), ignore_eos, grammar */
    const char *unsupported[] = {"tools", "functions", "suffix", "n_probs", "ignore_eos", "grammar"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (asks(o, unsupported[i]))
            return BAD(err, "unsupported_parameter", "'%s' is not supported", unsupported[i]);
    /* llama-server's other samplers, each at the value that leaves the
     * draw as it is (their defaults); any other value changes the answer */
    static const struct {
        const char *name;
        double off;
    } samplers[] = {{"mirostat", 0},       {"typical_p", 1},      {"tfs_z", 1},         {"dry_multiplier", 0},
                    {"xtc_probability", 0}, {"dynatemp_range", 0}, {"top_n_sigma", -1}};
    for (size_t i = 0; i < sizeof samplers / sizeof *samplers; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, samplers[i].name);
        if (it && !cJSON_IsNull(it) && !(cJSON_IsNumber(it) && it->valuedouble == samplers[i].off))
            return BAD(err, "unsupported_parameter", "'%s' is not supported (only %g, which changes nothing)",
                       samplers[i].name, samplers[i].off);
    }
    /* any json_schema, {} too, constrains llama-server's answer to JSON */
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(o, "json_schema");
    if (js && !cJSON_IsNull(js))
        return BAD(err, "unsupported_parameter", "'json_schema' is not supported");
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(o, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (!cJSON_IsObject(rf) || !cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return BAD(err, "unsupported_parameter", "'response_format' other than text is not supported");
    }
    if (get_tool_choice(o, "tool_choice", err) || get_tool_choice(o, "function_call", err))
        return -1;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "modalities");
    if (md && !cJSON_IsNull(md)) {
        if (!cJSON_IsArray(md))
            return BAD(err, "invalid_type", "'modalities' must be an array of strings");
        for (const cJSON *it = md->child; it; it = it->next) {
            if (!cJSON_IsString(it))
                return BAD(err, "invalid_type", "'modalities' must be an array of strings");
            if (strcmp(it->valuestring, "text"))
                return BAD(err, "unsupported_parameter", "'modalities': bn-serve answers with text only");
        }
    }
    return 0;
}

/* Log probabilities, as OpenAI asks for them: chat's "logprobs": true
 * with "top_logprobs": 0..20 alternatives a token; a completion's
 * "logprobs": 0..20 (OpenAI takes up to 5), the sampled token's and that
 * many alternatives. */
static int get_logprobs(const cJSON *o, int chat, srv_job *j, srv_error *err)
{
    double v;
    int r;
    if (chat) {
        if (get_bool(o, "logprobs", &j->logprobs, err) < 0 ||
            (r = get_number(o, "top_logprobs", 0, BN_BATCH_MAX_TOP, 1, &v, err)) < 0)
            return -1;
        if (r && v > 0 && !j->logprobs) /* 0 asks for nothing */
            return BAD(err, "invalid_value", "'top_logprobs' needs 'logprobs': true");
        j->top_logprobs = r ? (uint32_t)v : 0;
        return 0;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "logprobs")))
        return BAD(err, "invalid_type", "'logprobs' of a completion is a number: the alternatives a token (0 to %d)",
                   BN_BATCH_MAX_TOP);
    if (asks(o, "top_logprobs"))
        return BAD(err, "unsupported_parameter", "'top_logprobs' is chat's: a completion's 'logprobs' is the number");
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "logprobs")))
        return 0;
    if ((r = get_number(o, "logprobs", 0, BN_BATCH_MAX_TOP, 1, &v, err)) < 0)
        return -1;
    j->logprobs = r;
    j->top_logprobs = r ? (uint32_t)v : 0;
    return 0;
}

/* One logit_bias entry: a token id (a number, or OpenAI's decimal string
 * key) and its bias, -100..100. */
static int bias_entry(const srv_model_info *mi, const char *key, const cJSON *id, const cJSON *val, bn_logit_bias *b,
                      srv_error *err)
{
    uint32_t V = bn_model_n_vocab(mi->m);
    /* a key is decimal digits only ("1e3" and "0x10" are no token ids) */
    int digits = key && *key && strspn(key, "0123456789") == strlen(key) && strlen(key) <= 10;
    double v = key ? (digits ? strtod(key, NULL) : -1) : cJSON_IsNumber(id) ? id->valuedouble : -1;
    if (!(v >= 0 && v < V) || v != floor(v))
        return BAD(err, "invalid_value", "'logit_bias' keys must be token ids, 0 to %u", V - 1);
    if (!cJSON_IsNumber(val) || !(val->valuedouble >= -100 && val->valuedouble <= 100))
        return BAD(err, "invalid_value", "'logit_bias' values must be numbers from -100 to 100");
    *b = (bn_logit_bias){(uint32_t)v, (float)val->valuedouble};
    return 0;
}

/* logit_bias: OpenAI's object of token ids (as strings) to biases, or
 * llama-server's array of [id, bias] pairs; added to the logits before
 * the sampler's other steps (bn_sampler_params.logit_bias). */
static int get_logit_bias(const srv_model_info *mi, const cJSON *o, srv_job *j, srv_error *err)
{
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(o, "logit_bias");
    if (!lb || cJSON_IsNull(lb))
        return 0;
    if (!cJSON_IsObject(lb) && !cJSON_IsArray(lb))
        return BAD(err, "invalid_type", "'logit_bias' must be an object of token ids to biases");
    int n = cJSON_GetArraySize(lb);
    if (!n)
        return 0;
    if (!(j->bias = malloc((size_t)n * sizeof *j->bias)))
        return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
    size_t k = 0;
    for (const cJSON *it = lb->child; it; it = it->next, k++) {
        int bad = cJSON_IsObject(lb)
                      ? bias_entry(mi, it->string, NULL, it, &j->bias[k], err)
                      : cJSON_GetArraySize(it) != 2 || !cJSON_IsArray(it)
                            ? BAD(err, "invalid_type", "'logit_bias' as an array holds [token id, bias] pairs")
                            : bias_entry(mi, NULL, it->child, it->child->next, &j->bias[k], err);
        if (bad)
            return -1;
    }
    j->samp.logit_bias = j->bias;
    j->samp.n_logit_bias = k;
    return 0;
}

/* Sampling, length and stop strings shared by both endpoints. */
static int get_sampling(const srv_model_info *mi, const cJSON *o, int chat, srv_job *j, srv_error *err)
{
    double v;
    int r;
    bn_sampler_defaults(&j->samp);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    j->samp.seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)j;
    /* a completion's echo: the prompt's text before the answer's (with
     * logprobs, its tokens scored too, as OpenAI's legacy API does) */
    if (!chat && get_bool(o, "echo", &j->echo, err) < 0)
        return -1;
    if (get_length(o, j, err))
        return -1;
    if ((r = get_number(o, "temperature", 0, 100, 0, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.temp = (float)v;
    if ((r = get_number(o, "top_p", 0, 1, 0, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.top_p = (float)v;
    if ((r = get_number(o, "top_k", 0, 1 << 22, 1, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.top_k = (uint32_t)v;
    if ((r = get_number(o, "min_p", 0, 1, 0, &v, err)) < 0)
        return -1;
    if (r)
        j->samp.min_p = (float)v;
    if (get_penalties(o, j, err) || get_seed(o, j, err))
        return -1;
    if (get_bool(o, "stream", &j->stream, err) < 0 || get_stream_options(o, j, err))
        return -1;
    if (refuse_unsupported(o, err) || get_logprobs(o, chat, j, err) || get_logit_bias(mi, o, j, err))
        return -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stop");
    if (st && !cJSON_IsNull(st)) {
        if (!cJSON_IsString(st) && !cJSON_IsArray(st))
            return BAD(err, "invalid_type", "'stop' must be a string or an array of strings");
        const cJSON *it = cJSON_IsString(st) ? st : st->child;
        for (; it; it = cJSON_IsString(st) ? NULL : it->next) {
            if (!cJSON_IsString(it))
                return BAD(err, "invalid_type", "'stop' must be a string or an array of strings");
            if (!*it->valuestring)
                return BAD(err, "invalid_value", "'stop' strings must not be empty");
            if (j->n_stop == BN_MAX_STOP_STRINGS)
                return BAD(err, "invalid_value", "'stop' takes at most %d strings", BN_MAX_STOP_STRINGS);
            if (!(j->stop[j->n_stop] = strdup(it->valuestring)))
                return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
            j->n_stop++;
        }
    }
    /* prompt lookup decoding, per request (bn-infer --lookup, --draft-max) */
    if ((r = get_number(o, "lookup", 0, 64, 1, &v, err)) < 0)
        return -1;
    if (r)
        j->lookup = (uint32_t)v;
    /* the server's draft model (bn-serve --draft) */
    if (get_bool(o, "draft", &j->draft, err) < 0)
        return -1;
    if (j->draft && !mi->draft)
        return BAD(err, "unsupported_parameter", "'draft': this server has no draft model (bn-serve --draft MODEL)");
    if (j->draft && j->lookup)
        return BAD(err, "invalid_value", "'draft' and 'lookup' exclude each other");
    if ((r = get_number(o, "draft_max", 1, BN_KERN_MAX_N - 1, 1, &v, err)) < 0)
        return -1;
    if (r && !j->lookup && !j->draft)
        return BAD(err, "invalid_value", "'draft_max' needs 'lookup' (1 to 64) or 'draft': true");
    if (r)
        j->draft_max = (uint32_t)v;
    return srv_check_model(mi, o, err);
}

int srv_check_model(const srv_model_info *mi, const cJSON *o, srv_error *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    if (m && !cJSON_IsNull(m) && !cJSON_IsString(m))
        return BAD(err, "invalid_type", "'model' must be a string");
    if (cJSON_IsString(m) && *m->valuestring && strcmp(m->valuestring, mi->id))
        return srv_err(err, 404, "invalid_request_error", "model_not_found",
                       "the model '%s' does not exist; this server has '%s'", m->valuestring, mi->id);
    return 0;
}

/* A completion's prompt: text (BOS as the model asks; special tokens'
 * text is text, as bn-infer -p reads it), token ids, or an array holding
 * one of either, as OpenAI's batch of prompts with one prompt. */
static int get_prompt(const srv_model_info *mi, const cJSON *o, srv_job *j, srv_error *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (!p || cJSON_IsNull(p))
        return BAD(err, "missing_field", "'prompt' is required");
    if (cJSON_IsArray(p) && p->child && (cJSON_IsString(p->child) || cJSON_IsArray(p->child))) {
        if (p->child->next)
            return BAD(err, "unsupported_parameter", "'prompt' may hold one prompt only");
        p = p->child;
    }
    if (cJSON_IsString(p))
        return srv_encode(mi, p->valuestring, strlen(p->valuestring), BN_TOKENIZE_BOS, &j->prompt, &j->n_prompt, err);
    if (!cJSON_IsArray(p))
        return BAD(err, "invalid_type", "'prompt' must be a string or an array of token ids");
    int n = cJSON_GetArraySize(p);
    if (!(j->prompt = malloc((n ? (size_t)n : 1) * sizeof *j->prompt)))
        return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
    uint32_t V = bn_model_n_vocab(mi->m);
    char idb[32];
    for (const cJSON *it = p->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
            return BAD(err, "invalid_type", "'prompt' must be a string or an array of token ids");
        if (!(it->valuedouble >= 0 && it->valuedouble < V))
            return BAD(err, "invalid_value", "'prompt': token id %s is outside the vocabulary (0..%u)",
                       srv_id_text(it->valuedouble, idb), V - 1);
        j->prompt[j->n_prompt++] = (uint32_t)it->valuedouble;
    }
    return 0;
}

/* A message's content: a string, or an array of {"type":"text","text":…}
 * parts (joined). *owned is set when the text was allocated. */
static int get_content(const cJSON *msg, size_t k, const char **text, char **owned, srv_error *err)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
    *owned = NULL;
    if (!c || cJSON_IsNull(c)) {
        /* as OpenAI's API: only an assistant's turn may come without text */
        if (!cJSON_IsString(role) || strcmp(role->valuestring, "assistant"))
            return BAD(err, "missing_field", "'messages[%zu].content' is required", k);
        *text = "";
        return 0;
    }
    if (cJSON_IsString(c)) {
        *text = c->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(c))
        return BAD(err, "invalid_type", "'messages[%zu].content' must be a string or an array of text parts", k);
    size_t len = 0;
    for (const cJSON *it = c->child; it; it = it->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type"), *x = cJSON_GetObjectItemCaseSensitive(it, "text");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x))
            return BAD(err, "unsupported_parameter", "'messages[%zu].content': only text parts are supported", k);
        len += strlen(x->valuestring);
    }
    if (!(*owned = malloc(len + 1)))
        return srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
    len = 0;
    for (const cJSON *it = c->child; it; it = it->next) {
        const char *x = cJSON_GetObjectItemCaseSensitive(it, "text")->valuestring;
        memcpy(*owned + len, x, strlen(x));
        len += strlen(x);
    }
    (*owned)[len] = 0;
    *text = *owned;
    return 0;
}

/* Chat messages rendered with the model's chat format, the assistant's
 * header last. */
static int get_messages(const srv_model_info *mi, const cJSON *o, srv_job *j, srv_error *err)
{
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!ms || cJSON_IsNull(ms))
        return BAD(err, "missing_field", "'messages' is required");
    if (!cJSON_IsArray(ms))
        return BAD(err, "invalid_type", "'messages' must be an array");
    size_t n = (size_t)cJSON_GetArraySize(ms);
    if (!n)
        return BAD(err, "invalid_value", "'messages' must not be empty");
    bn_chat_message *msgs = calloc(n, sizeof *msgs);
    char **owned = calloc(n, sizeof *owned);
    int rc = -1;
    if (!msgs || !owned) {
        srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        goto out;
    }
    size_t k = 0;
    for (const cJSON *it = ms->child; it; it = it->next, k++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        if (!cJSON_IsObject(it) || !cJSON_IsString(role)) {
            BAD(err, "invalid_type", "'messages[%zu]' must be an object with a string 'role'", k);
            goto out;
        }
        const char *r = role->valuestring;
        if (!strcmp(r, "developer"))
            r = "system";
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) {
            BAD(err, "invalid_value", "'messages[%zu].role' must be system, developer, user or assistant", k);
            goto out;
        }
        /* an assistant's earlier tool calls: no template here renders them,
         * and leaving them out would answer another conversation */
        if (asks(it, "tool_calls") || asks(it, "function_call")) {
            BAD(err, "unsupported_parameter", "'messages[%zu].%s' is not supported (no tools here)", k,
                asks(it, "tool_calls") ? "tool_calls" : "function_call");
            goto out;
        }
        msgs[k].role = r;
        if (get_content(it, k, &msgs[k].content, &owned[k], err))
            goto out;
    }
    bn_err e = {0};
    size_t cap = 256, need = 0;
    /* Until the ids fit: a second render need not be the first's size (a
     * llama3.2 format writes today's date, which can turn between them). */
    for (;;) {
        uint32_t *p = realloc(j->prompt, cap * sizeof *p);
        if (!p) {
            srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
            goto out;
        }
        j->prompt = p;
        pthread_mutex_lock(mi->tok_mu);
        int r = bn_chat_render(mi->tok, msgs, n, 1, j->prompt, cap, &need, &e);
        pthread_mutex_unlock(mi->tok_mu);
        if (r) {
            BAD(err, e.code == BN_E_UNSUPPORTED ? "unsupported_model" : "invalid_value", "%s", e.msg);
            goto out;
        }
        if (need <= cap)
            break;
        cap = need + 16;
    }
    j->n_prompt = need;
    rc = 0;
out:
    for (size_t i = 0; owned && i < n; i++)
        free(owned[i]);
    free(owned);
    free(msgs);
    return rc;
}

srv_job *srv_parse_generate(const srv_model_info *mi, const char *body, size_t n, int chat, srv_error *err)
{
    cJSON *root = srv_parse_body(body, n, err);
    if (!root)
        return NULL;
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        cJSON_Delete(root);
        srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        return NULL;
    }
    j->refs = 1;
    j->chat = chat;
    int rc = get_sampling(mi, root, chat, j, err);
    if (!rc)
        rc = chat ? get_messages(mi, root, j, err) : get_prompt(mi, root, j, err);
    cJSON_Delete(root);
    /* a prompt that fills the context leaves no room to answer, unless it
     * is only scored (echo, max_tokens 0) */
    if (!rc && (!j->n_prompt || j->n_prompt > mi->n_ctx || (j->n_prompt == mi->n_ctx && j->n_predict != 0))) {
        if (!j->n_prompt)
            BAD(err, "invalid_value", "the prompt is empty");
        else
            BAD(err, "context_length_exceeded",
                "the prompt is %zu tokens; the context holds %u (one more position is needed to answer)",
                j->n_prompt, mi->n_ctx);
        rc = srv_err_param(err, chat ? "messages" : "prompt");
    }
    if (rc) {
        srv_job_free(j);
        return NULL;
    }
    /* max_tokens is capped by the room the context has left */
    uint32_t room = mi->n_ctx - (uint32_t)j->n_prompt;
    if (j->n_predict < 0 || (uint32_t)j->n_predict > room)
        j->n_predict = (int32_t)room;
    return j;
}

/* llama-server's with_pieces form of a token: {"id", "piece"}, the piece
 * a string when its bytes are UTF-8 text, else the array of its bytes (a
 * token may hold part of a character). */
static cJSON *id_with_piece(const srv_model_info *mi, uint32_t id)
{
    size_t len = 0;
    const uint8_t *b = bn_tokenizer_piece(mi->tok, id, &len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", id);
    char *text = b && bn_utf8_valid((const char *)b, len) && !memchr(b, 0, len) ? strndup((const char *)b, len)
                                                                                  : NULL;
    if (text)
        cJSON_AddStringToObject(o, "piece", text);
    else {
        cJSON *bytes = cJSON_AddArrayToObject(o, "piece");
        for (size_t i = 0; bytes && i < len; i++)
            cJSON_AddItemToArray(bytes, cJSON_CreateNumber(b[i]));
    }
    free(text);
    return o;
}

char *srv_tokenize(const srv_model_info *mi, const char *body, size_t n, srv_error *err)
{
    cJSON *root = srv_parse_body(body, n, err);
    if (!root)
        return NULL;
    char *out = NULL;
    uint32_t *ids = NULL;
    size_t n_ids = 0;
    int special = 0, pieces = 0;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!cJSON_IsString(c))
        BAD(err, c ? "invalid_type" : "missing_field", "'content' must be a string");
    else if (get_bool(root, "add_special", &special, err) >= 0 && get_bool(root, "with_pieces", &pieces, err) >= 0 &&
             !srv_encode(mi, c->valuestring, strlen(c->valuestring), special ? BN_TOKENIZE_BOS : 0, &ids, &n_ids, err)) {
        cJSON *r = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(r, "tokens");
        for (size_t i = 0; a && i < n_ids; i++)
            cJSON_AddItemToArray(a, pieces ? id_with_piece(mi, ids[i]) : cJSON_CreateNumber(ids[i]));
        out = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        if (!out)
            srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
    }
    free(ids);
    cJSON_Delete(root);
    return out;
}

char *srv_detokenize(const srv_model_info *mi, const char *body, size_t n, srv_error *err)
{
    cJSON *root = srv_parse_body(body, n, err);
    if (!root)
        return NULL;
    char *out = NULL, *text = NULL;
    size_t len = 0;
    bn_detok *d = NULL;
    FILE *fp = NULL;
    bn_err e = {0};
    uint32_t V = bn_model_n_vocab(mi->m);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!cJSON_IsArray(t)) {
        BAD(err, t ? "invalid_type" : "missing_field", "'tokens' must be an array of token ids");
        goto out;
    }
    if (!(fp = open_memstream(&text, &len)) || !(d = bn_detok_new(mi->tok, 0, &e))) {
        srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        goto out;
    }
    char idb[32];
    for (const cJSON *it = t->child; it; it = it->next) {
        const uint8_t *b;
        size_t nb;
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble)) {
            BAD(err, "invalid_type", "'tokens' must be an array of token ids");
            goto out;
        }
        if (!(it->valuedouble >= 0 && it->valuedouble < V)) {
            BAD(err, "invalid_value", "'tokens': token id %s is outside the vocabulary (0..%u)",
                srv_id_text(it->valuedouble, idb), V - 1);
            goto out;
        }
        if (bn_detok_feed(d, (uint32_t)it->valuedouble, &b, &nb, &e)) {
            BAD(err, "invalid_value", "%s", e.msg);
            goto out;
        }
        fwrite(b, 1, nb, fp);
    }
    const uint8_t *b;
    size_t nb;
    bn_detok_flush(d, &b, &nb);
    fwrite(b, 1, nb, fp);
    if (fclose(fp)) {
        fp = NULL;
        srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
        goto out;
    }
    fp = NULL;
    char *clean = bn_utf8_clean(text, len);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "content", clean ? clean : "");
    out = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    free(clean);
    if (!out)
        srv_err(err, 500, "server_error", "out_of_memory", "out of memory");
out:
    if (fp)
        fclose(fp);
    free(text);
    bn_detok_free(d);
    cJSON_Delete(root);
    return out;
}
