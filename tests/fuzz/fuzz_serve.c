/* fuzz_serve.c — bn-serve's request bodies (cmd/serve/request.c), with no
 * network and no generation: each input goes, as the body, to the parsing
 * behind /v1/completions, /v1/chat/completions, /tokenize and /detokenize,
 * over the bundled tiny model's tokenizer and chat format (BN_FUZZ_HFDIR,
 * default models/tiny-bitnet). Beyond no crash, leak or UB, what the server
 * promises holds: a refusal is a 4xx with an error object; a request taken
 * has a prompt within the context and max_tokens capped by the room left;
 * every reply it would send is UTF-8 JSON (an error object: JSON). The HTTP headers (Authorization,
 * Content-Type) are read by libmicrohttpd and http.c, not by this code. */
#include "../../cmd/serve/serve.h"
#include "fuzz_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* The model and its tokenizer are opened once per process (harness state,
 * not library state; libFuzzer calls the target from one thread). */
static srv_model_info model_info;
static pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *hf = getenv("BN_FUZZ_HFDIR");
    const char *path = hf ? hf : "models/tiny-bitnet";
    if (access(path, R_OK))
        fuzz_missing(path);
    bn_err e = {0};
    bn_model_params mp;
    bn_model_params_init(&mp);
    bn_model *m = bn_model_open(path, &mp, &e);
    bn_tokenizer *tok = m ? bn_tokenizer_from_model(m, &e) : NULL;
    if (!tok) {
        fprintf(stderr, "fuzz_serve: %s: %s\n", path, e.msg);
        abort();
    }
    model_info = (srv_model_info){
        .m = m, .tok = tok, .tok_mu = &tok_mu, .id = "tiny-bitnet", .n_ctx = bn_model_n_ctx(m)};
    return 0;
}

static void finding(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_serve: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* A reply the server would send: present, one JSON value, UTF-8 text
 * (utf8). Freed. */
static void check_json(char *s, const char *what, int utf8)
{
    if (!s)
        finding(what, "no reply");
    if (utf8 && !bn_utf8_valid(s, strlen(s)))
        finding(what, "not UTF-8");
    cJSON *v = cJSON_Parse(s);
    if (!v)
        finding(what, s);
    cJSON_Delete(v);
    free(s);
}

/* A refusal: a client error (a 500 here would be out of memory, which
 * libFuzzer's malloc limit turns into a crash first), as an error object. */
static void check_refusal(const srv_error *err)
{
    if (err->status < 400 || err->status > 499 || !err->type || !err->msg[0])
        finding("a refusal without a 4xx status, type and message", err->msg);
    /* valid UTF-8 too: srv_err cuts a long message at a character's
     * start (corpus: long-model-name) */
    check_json(srv_error_json(err), "error object", 1);
}

static void generate(const uint8_t *data, size_t n, int chat)
{
    srv_error err = {0};
    srv_job *j = srv_parse_generate(&model_info, (const char *)data, n, chat, &err);
    if (!j) {
        check_refusal(&err);
        return;
    }
    uint32_t V = bn_model_n_vocab(model_info.m);
    /* a prompt may fill the context only to be scored (echo, max_tokens 0) */
    if (!j->n_prompt || j->n_prompt > model_info.n_ctx || (j->n_prompt == model_info.n_ctx && j->n_predict))
        finding("a prompt taken that is empty or fills the context", NULL);
    if (j->n_predict < (j->echo ? 0 : 1) || j->n_prompt + (size_t)j->n_predict > model_info.n_ctx)
        finding("max_tokens not capped by the room the context has left", NULL);
    if (j->n_stop < 0 || j->n_stop > BN_MAX_STOP_STRINGS)
        finding("too many stop strings taken", NULL);
    for (size_t i = 0; i < j->n_prompt; i++)
        if (j->prompt[i] >= V)
            finding("a prompt token outside the vocabulary", NULL);
    /* the replies carry no request text, but do go through the same job */
    j->state = SRV_DONE;
    j->finish = SRV_FIN_LENGTH;
    check_json(srv_reply_json(&model_info, j, "cmpl-1", 1), "reply", 1);
    check_json(srv_chunk_json(&model_info, j, "cmpl-1", 1, "", 0, 0, 0, 1, 0), "first chunk", 1);
    check_json(srv_chunk_json(&model_info, j, "cmpl-1", 1, NULL, 0, 0, 0, 0, 1), "last chunk", 1);
    srv_job_free(j);
}

typedef char *srv_tokens_fn(const srv_model_info *, const char *, size_t, srv_error *);

static void tokens(const uint8_t *data, size_t n, srv_tokens_fn *fn, const char *what)
{
    srv_error err = {0};
    char *out = fn(&model_info, (const char *)data, n, &err);
    if (out)
        check_json(out, what, 1);
    else
        check_refusal(&err);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    if (n > SRV_BODY_LIMIT) /* the server answers 413 before parsing */
        return 0;
    generate(data, n, 0);
    generate(data, n, 1);
    tokens(data, n, srv_tokenize, "/tokenize reply");
    tokens(data, n, srv_detokenize, "/detokenize reply");
    return 0;
}
