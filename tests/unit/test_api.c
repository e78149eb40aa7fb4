/* test_api.c — the public inference API (bn.h) on the bundled tiny model
 * (its float weights ternarized at load, as bn-quant would): versions and
 * status codes, parameter structs of older callers, error codes of a
 * missing and a bad file, callbacks, tokenizer round trip, chat rendering,
 * the generator against the plain eval/sample loop, prefix reuse,
 * rollback, stop strings and ids, cancelling, perplexity, and two contexts
 * on one model in two threads against the same work done in turn. */
#include "check.h"
#include "tokenizer.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TINY "models/tiny-bitnet"
#define PROMPT "It was a fine morning, and Elizabeth"
#define N_GEN 24

static check_ctx C;

/* ----------------------------------------------------------- basics */

static void test_version_and_status(void)
{
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", BN_VERSION_MAJOR, BN_VERSION_MINOR, BN_VERSION_PATCH);
    CHECK(&C, !strcmp(v, BN_VERSION) && !strcmp(bn_version_string(), BN_VERSION));
    CHECK(&C, bn_version_number() == BN_VERSION_NUMBER && BN_VERSION_NUMBER == 400);
    static const struct {
        int code;
        const char *name;
    } st[] = {{BN_OK, "BN_OK"},         {BN_ERROR, "BN_ERROR"},   {BN_E_IO, "BN_E_IO"},
              {BN_E_FORMAT, "BN_E_FORMAT"}, {BN_E_UNSUPPORTED, "BN_E_UNSUPPORTED"}, {BN_E_NOMEM, "BN_E_NOMEM"},
              {BN_E_INVALID, "BN_E_INVALID"}, {BN_E_CONTEXT_FULL, "BN_E_CONTEXT_FULL"},
              {BN_E_CANCELLED, "BN_E_CANCELLED"}, {BN_E_KV_FULL, "BN_E_KV_FULL"}, {BN_E_KV_RANGE, "BN_E_KV_RANGE"},
              {BN_STOP_TOKEN, "BN_STOP_TOKEN"}, {BN_STOP_STRING, "BN_STOP_STRING"},
              {BN_STOP_LENGTH, "BN_STOP_LENGTH"}, {BN_STOP_CONTEXT, "BN_STOP_CONTEXT"},
              {BN_STOP_ERROR, "BN_STOP_ERROR"}};
    for (size_t i = 0; i < sizeof st / sizeof *st; i++)
        CHECK(&C, !strncmp(bn_status_string(st[i].code), st[i].name, strlen(st[i].name)) &&
                      bn_status_string(st[i].code)[strlen(st[i].name)] == ':');
    CHECK(&C, !strcmp(bn_status_string(42), "unknown status"));
}

/* A caller built against an older header has a shorter struct: init
 * writes only its bytes, and the library reads only its fields. */
static void test_params_size(void)
{
    struct {
        bn_sampler_params p;
        unsigned char guard[16];
    } buf;
    memset(&buf, 0xAB, sizeof buf);
    size_t old = offsetof(bn_sampler_params, top_k);
    bn_sampler_params_defaults(&buf.p, old);
    CHECK(&C, buf.p.size == old && buf.p.temp == 0.8f);
    unsigned char *after = (unsigned char *)&buf.p + old;
    int untouched = 1;
    for (size_t i = 0; i < sizeof buf - old; i++)
        untouched &= after[i] == 0xAB;
    CHECK(&C, untouched);
    /* garbage past size (a NaN top_p would be refused) is not read */
    buf.p.temp = 0;
    bn_err e = {0};
    bn_sampler *s = bn_sampler_new(&buf.p, 16, &e);
    CHECK(&C, s != NULL);
    bn_sampler_free(s);
    /* a struct never filled by _init is refused */
    bn_sampler_params z;
    memset(&z, 0, sizeof z);
    CHECK(&C, !bn_sampler_new(&z, 16, &e) && e.code == BN_E_INVALID && strstr(e.msg, "_init"));
    bn_sampler_params bad;
    bn_sampler_params_init(&bad);
    CHECK(&C, bad.size == sizeof bad && bad.top_k == 40 && bad.penalty_last_n == 64);
    bad.top_p = 2;
    CHECK(&C, !bn_sampler_new(&bad, 16, &e) && e.code == BN_E_INVALID && strstr(e.msg, "top_p"));
}

/* ------------------------------------------------------------ opening */

typedef struct seen {
    int logs, warns, steps, cancel_at, ends;
} seen;

static void on_log(void *user, int level, const char *msg)
{
    seen *s = user;
    s->logs++;
    s->warns += level == BN_LOG_WARN && strstr(msg, "ternarized") != NULL;
}

static int on_progress(void *user, size_t done, size_t total, const char *what)
{
    seen *s = user;
    (void)what;
    if (done < total)
        s->steps++;
    else
        s->ends++;
    return s->cancel_at && s->steps == s->cancel_at;
}

static void test_open_errors(void)
{
    bn_err e = {0};
    CHECK(&C, !bn_model_open("tests/no/such-model.bn", NULL, &e) && e.code == BN_E_IO &&
                  strstr(e.msg, "tests/no/such-model.bn"));
    char path[] = "/tmp/bn-test-api-XXXXXX";
    int fd = mkstemp(path);
    CHECK(&C, fd >= 0 && write(fd, "this is not a model\n", 20) == 20);
    close(fd);
    CHECK(&C, !bn_model_open(path, NULL, &e) && e.code == BN_E_FORMAT && strstr(e.msg, path));
    unlink(path);
    CHECK(&C, !bn_model_open(NULL, NULL, &e) && e.code == BN_E_INVALID);
    CHECK(&C, !bn_model_open("", NULL, &e) && e.code == BN_E_INVALID && !strcmp(e.msg, "bn_model_open: the path is empty"));
    CHECK(&C, !bn_model_open("tests/no/such-model.bn", NULL, NULL)); /* no bn_err: only the NULL */
    /* damage read through a stream (a device, a FIFO, standard input) with
     * no bn_err: the readers looked at e->code and crashed */
    CHECK(&C, !bn_model_open("/dev/null", NULL, &e) && e.code == BN_E_FORMAT);
    CHECK(&C, !bn_model_open("/dev/null", NULL, NULL));
    /* a directory that is no checkpoint is not a model (it was BN_E_IO, "config.json: No such file") */
    CHECK(&C, !bn_model_open("tests/unit", NULL, &e) && e.code == BN_E_FORMAT &&
                  !strcmp(e.msg, "tests/unit: not a model: a directory without config.json"));
    bn_model_params p;
    bn_model_params_init(&p);
    p.kernels = "fastest";
    CHECK(&C, !bn_model_open(TINY, &p, &e) && e.code == BN_E_INVALID && strstr(e.msg, "fastest"));
    seen s = {.cancel_at = 2};
    bn_model_params_init(&p);
    p.progress = on_progress;
    p.progress_user = &s;
    CHECK(&C, !bn_model_open(TINY, &p, &e) && e.code == BN_E_CANCELLED && s.steps == 2 && s.ends == 0);
}

static bn_model *open_tiny(void)
{
    seen s = {0};
    bn_model_params p;
    bn_model_params_init(&p);
    p.log = on_log;
    p.log_user = &s;
    p.progress = on_progress;
    p.progress_user = &s;
    bn_err e = {0};
    bn_model *m = bn_model_open(TINY, &p, &e);
    CHECK(&C, m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", e.msg);
        return NULL;
    }
    CHECK(&C, s.warns == 1 && s.logs >= 2 && s.steps > 0 && s.ends >= 1); /* HF float weights: tensor by tensor */
    CHECK(&C, bn_model_n_vocab(m) == 4096 && bn_model_n_layer(m) == 6 && bn_model_n_embd(m) == 256 &&
                  bn_model_n_ctx(m) == 256);
    CHECK(&C, bn_model_bos(m) == 4064 && bn_model_eos(m) == 4065 && bn_model_is_stop(m, 4065) &&
                  !bn_model_is_stop(m, 5));
    CHECK(&C, bn_model_arch(m)[0] && bn_model_kernels(m)[0] && bn_model_weight_bytes(m) > 0);
    CHECK(&C, bn_model_meta_str(m, "general.architecture") && !bn_model_meta_str(m, "no.such.key"));
    return m;
}

/* ------------------------------------------------------------- tokens */

static size_t tokenize(bn_tokenizer *t, const char *text, unsigned flags, uint32_t *ids, size_t cap)
{
    size_t n = 0;
    bn_err e = {0};
    CHECK(&C, bn_tokenize(t, text, strlen(text), flags, ids, cap, &n, &e) == BN_OK && n <= cap);
    return n;
}

static void test_tokenizer(const bn_model *m, bn_tokenizer *t)
{
    uint32_t ids[256], few[2];
    size_t n = tokenize(t, PROMPT, 0, ids, 256), nb = tokenize(t, PROMPT, BN_TOKENIZE_BOS, ids, 256);
    CHECK(&C, n > 4 && (nb == n || (nb == n + 1 && ids[0] == (uint32_t)bn_model_bos(m))));
    size_t need = 0;
    bn_err e = {0};
    CHECK(&C, bn_tokenize(t, PROMPT, strlen(PROMPT), BN_TOKENIZE_BOS, few, 2, &need, &e) == BN_OK && need == nb &&
                  few[0] == ids[0] && few[1] == ids[1]);
    CHECK(&C, bn_tokenize(t, PROMPT, strlen(PROMPT), 0x80, ids, 256, &need, &e) == BN_E_INVALID);
    /* any bytes round-trip, a split character included */
    static const char odd[] = "caf\xc3\xa9 \xff\xfe \xe2\x82\xac and \xe2\x82";
    n = tokenize(t, odd, 0, ids, 256);
    bn_detok *d = bn_detok_new(t, 0, &e);
    char back[256];
    size_t nback = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b;
        size_t len;
        CHECK(&C, bn_detok_feed(d, ids[i], &b, &len, &e) == BN_OK);
        memcpy(back + nback, b, len);
        nback += len;
    }
    const uint8_t *b;
    size_t len;
    bn_detok_flush(d, &b, &len);
    memcpy(back + nback, b, len);
    nback += len;
    CHECK(&C, nback == strlen(odd) && !memcmp(back, odd, nback));
    CHECK(&C, bn_detok_feed(d, 99999, &b, &len, &e) == BN_E_INVALID && e.code == BN_E_INVALID);
    bn_detok_free(d);
    CHECK(&C, !bn_detok_new(t, 4, &e) && e.code == BN_E_INVALID);
    /* special-token text becomes its id only when asked */
    int32_t eot = bn_tokenizer_find(t, "<|eot_id|>", 10);
    CHECK(&C, eot >= 0 && tokenize(t, "<|eot_id|>", BN_TOKENIZE_SPECIAL, ids, 256) == 1 && ids[0] == (uint32_t)eot);
    CHECK(&C, tokenize(t, "<|eot_id|>", 0, ids, 256) > 1);
    size_t plen;
    const uint8_t *piece = bn_tokenizer_piece(t, (uint32_t)eot, &plen);
    CHECK(&C, piece && plen == 10 && !memcmp(piece, "<|eot_id|>", 10) && !bn_tokenizer_piece(t, 99999, &plen));
}

static void test_chat(bn_tokenizer *t)
{
    bn_chat_message msgs[] = {{"system", "You are Jane Austen."}, {"user", "Good morning."}};
    uint32_t ids[256];
    size_t n = 0;
    bn_err e = {0};
    CHECK(&C, !strcmp(bn_tokenizer_chat_format(t), "bitnet"));
    CHECK(&C, bn_chat_render(t, msgs, 2, 1, ids, 256, &n, &e) == BN_OK && n > 8);
    /* the same as the internal renderer bn-infer -cnv uses */
    bn_chat_msg im[] = {{BN_ROLE_SYSTEM, (const uint8_t *)msgs[0].content, strlen(msgs[0].content), 0},
                        {BN_ROLE_USER, (const uint8_t *)msgs[1].content, strlen(msgs[1].content), 0}};
    bn_tokens v = {0};
    CHECK(&C, !bn_tokenizer_chat(t, im, 2, 1, &v, &e) && v.n == n && !memcmp(v.ids, ids, n * sizeof *ids));
    bn_tokens_free(&v);
    bn_chat_message bad[] = {{"narrator", "Once."}};
    CHECK(&C, bn_chat_render(t, bad, 1, 1, ids, 256, &n, &e) == BN_E_INVALID && strstr(e.msg, "role"));
    /* BN_CHAT_WHOLE: each message as one text with its header, "User: Good
     * morning." encoded whole; back to split, the first rendering again */
    uint32_t whole[256], text[64];
    size_t n_whole = 0, n_text = 0, n_again = 0;
    CHECK(&C, bn_tokenizer_set_chat_encoding(t, BN_CHAT_WHOLE, &e) == BN_OK);
    CHECK(&C, bn_chat_render(t, msgs + 1, 1, 0, whole, 256, &n_whole, &e) == BN_OK);
    CHECK(&C, bn_tokenize(t, "User: Good morning.", 19, 0, text, 64, &n_text, &e) == BN_OK);
    CHECK(&C, n_whole == n_text + 2 && whole[0] == (uint32_t)bn_tokenizer_bos(t) &&
                  !memcmp(whole + 1, text, n_text * sizeof *text));
    CHECK(&C, bn_tokenizer_set_chat_encoding(t, BN_CHAT_SPLIT, &e) == BN_OK);
    CHECK(&C, bn_chat_render(t, msgs, 2, 1, whole, 256, &n_again, &e) == BN_OK && n_again == n &&
                  !memcmp(whole, ids, n * sizeof *ids));
    CHECK(&C, bn_tokenizer_set_chat_encoding(t, 2, &e) == BN_E_INVALID &&
                  bn_tokenizer_set_chat_encoding(NULL, BN_CHAT_WHOLE, &e) == BN_E_INVALID);
    /* a date: one line of at most 31 bytes; this (bitnet) format has no
     * date, so its rendering stays the first one (tests/families.bats
     * renders the dated formats against their templates) */
    CHECK(&C, bn_tokenizer_set_chat_date(t, "1234567890123456789012345678901", &e) == BN_OK);
    CHECK(&C, bn_tokenizer_set_chat_date(t, "12345678901234567890123456789012", &e) == BN_E_INVALID &&
                  strstr(e.msg, "31 bytes"));
    CHECK(&C, bn_tokenizer_set_chat_date(t, "07 Dec\n2026", &e) == BN_E_INVALID && strstr(e.msg, "one line"));
    CHECK(&C, bn_tokenizer_set_chat_date(NULL, "07 Dec 2026", &e) == BN_E_INVALID);
    CHECK(&C, bn_chat_render(t, msgs, 2, 1, whole, 256, &n_again, &e) == BN_OK && n_again == n &&
                  !memcmp(whole, ids, n * sizeof *ids));
    CHECK(&C, bn_tokenizer_set_chat_date(t, NULL, &e) == BN_OK && bn_tokenizer_set_chat_date(t, "", &e) == BN_OK);
}

/* ------------------------------------------------------------ contexts */

static bn_ctx *new_ctx(const bn_model *m, uint32_t n_ctx, int n_threads)
{
    bn_ctx_params p;
    bn_ctx_params_init(&p);
    p.n_ctx = n_ctx;
    p.n_threads = n_threads;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(m, &p, &e);
    CHECK(&C, c != NULL);
    return c;
}

static bn_sampler *new_sampler(uint32_t n_vocab, float temp, uint64_t seed)
{
    bn_sampler_params p;
    bn_sampler_params_init(&p);
    p.temp = temp;
    p.seed = seed;
    bn_err e = {0};
    bn_sampler *s = bn_sampler_new(&p, n_vocab, &e);
    CHECK(&C, s != NULL);
    return s;
}

static void test_ctx_errors(const bn_model *m)
{
    bn_ctx_params p;
    bn_ctx_params_init(&p);
    bn_err e = {0};
    p.n_ctx = 100000;
    CHECK(&C, !bn_ctx_new(m, &p, &e) && e.code == BN_E_INVALID);
    p.n_ctx = 0;
    p.kv_type = 7;
    CHECK(&C, !bn_ctx_new(m, &p, &e) && e.code == BN_E_INVALID);
    bn_ctx *c = new_ctx(m, 8, 1);
    uint32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, bad = 5000;
    CHECK(&C, bn_ctx_eval(c, &bad, 1, NULL, 0, &e) == BN_E_INVALID && e.code == BN_E_INVALID);
    CHECK(&C, bn_ctx_eval(c, ids, 1, NULL, 0x80, &e) == BN_E_INVALID && bn_ctx_pos(c) == 0); /* unknown flags */
    CHECK(&C, bn_ctx_eval(c, ids, 9, NULL, 0, &e) == BN_E_CONTEXT_FULL && bn_ctx_pos(c) == 0);
    CHECK(&C, bn_ctx_eval(c, ids, 8, NULL, 0, &e) == BN_OK && bn_ctx_pos(c) == 8 && bn_ctx_tokens(c)[7] == 8);
    bn_ctx_free(c);
}

/* Evaluating the same tokens after a rollback gives the same logits. */
static void test_rollback(const bn_model *m, const uint32_t *p, size_t n)
{
    uint32_t V = bn_model_n_vocab(m), x = 100, y = 200;
    float *l1 = malloc(V * sizeof *l1), *l2 = malloc(V * sizeof *l2), *l3 = malloc(V * sizeof *l3);
    bn_ctx *c = new_ctx(m, 0, 2);
    bn_err e = {0};
    CHECK(&C, bn_ctx_eval(c, p, n, NULL, 0, &e) == BN_OK && bn_ctx_eval(c, &x, 1, l1, 0, &e) == BN_OK);
    CHECK(&C, bn_ctx_eval(c, &y, 1, l3, 0, &e) == BN_OK && bn_ctx_pos(c) == n + 2);
    bn_ctx_truncate(c, (uint32_t)n); /* reject x and y */
    CHECK(&C, bn_ctx_pos(c) == n && !memcmp(bn_ctx_tokens(c), p, n * sizeof *p));
    CHECK(&C, bn_ctx_eval(c, &x, 1, l2, 0, &e) == BN_OK && !memcmp(l1, l2, V * sizeof *l1));
    CHECK(&C, bn_ctx_eval(c, &y, 1, l2, 0, &e) == BN_OK && !memcmp(l3, l2, V * sizeof *l3));
    bn_ctx_free(c);
    free(l1);
    free(l2);
    free(l3);
}

/* --------------------------------------------------------- generation */

/* The plain loop of bn.h: eval, sample, stop at a stop token. */
static size_t plain_loop(const bn_model *m, const uint32_t *p, size_t n, uint32_t *out)
{
    uint32_t V = bn_model_n_vocab(m);
    float *logits = malloc(V * sizeof *logits);
    bn_ctx *c = new_ctx(m, 0, 1);
    bn_sampler *s = new_sampler(V, 0, 0);
    bn_err e = {0};
    size_t k = 0;
    CHECK(&C, bn_ctx_eval(c, p, n, logits, 0, &e) == BN_OK);
    while (k < N_GEN) {
        uint32_t id = bn_sampler_sample(s, logits, bn_ctx_tokens(c), bn_ctx_pos(c));
        if (bn_model_is_stop(m, id))
            break;
        out[k++] = id;
        if (k < N_GEN && bn_ctx_eval(c, &id, 1, logits, 0, &e))
            break;
    }
    bn_sampler_free(s);
    bn_ctx_free(c);
    free(logits);
    return k;
}

typedef struct collect {
    uint32_t ids[256];
    size_t n;
    char text[4096];
    size_t n_text;
    size_t cancel_at; /* nonzero: cancel at this many tokens */
} collect;

static int on_token(void *user, uint32_t id, const uint8_t *text, size_t len)
{
    collect *k = user;
    if (id != BN_NO_TOKEN)
        k->ids[k->n++] = id;
    memcpy(k->text + k->n_text, text, len);
    k->n_text += len;
    k->text[k->n_text] = 0;
    return k->cancel_at && k->n == k->cancel_at;
}

static int generate(const bn_model *m, bn_tokenizer *t, const uint32_t *p, size_t n, bn_generate_params *gp,
                    collect *k)
{
    bn_ctx *c = new_ctx(m, 0, 1);
    bn_sampler *s = new_sampler(bn_model_n_vocab(m), 0, 0);
    bn_err e = {0};
    int r = bn_generate(c, s, t, p, n, gp, on_token, k, &e);
    bn_sampler_free(s);
    bn_ctx_free(c);
    return r;
}

static void test_generate(const bn_model *m, bn_tokenizer *t, const uint32_t *p, size_t n)
{
    uint32_t plain[N_GEN];
    size_t np = plain_loop(m, p, n, plain);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    CHECK(&C, gp.n_predict == 128 && gp.detok_flags == BN_DETOK_SKIP_SPECIAL);
    gp.n_predict = N_GEN;
    collect k = {0};
    int r = generate(m, t, p, n, &gp, &k);
    CHECK(&C, np == N_GEN && r == BN_STOP_LENGTH && k.n == np && !memcmp(k.ids, plain, np * sizeof *plain));
    CHECK(&C, k.n_text > 10);

    /* the step API, and a prompt that extends what the context holds */
    bn_ctx *c = new_ctx(m, 0, 1);
    bn_sampler *s = new_sampler(bn_model_n_vocab(m), 0, 0);
    bn_err e = {0};
    bn_generator *g = bn_generator_new(c, s, t, &gp, &e);
    uint32_t id;
    const uint8_t *text;
    size_t len, steps = 0;
    CHECK(&C, g && bn_generate_next(g, &id, &text, &len, &e) == BN_E_INVALID && text && !len); /* no prompt yet */
    CHECK(&C, bn_generator_prompt(g, p, n, &e) == BN_OK && bn_generator_stop_reason(g) == 0);
    int same = 1;
    while ((r = bn_generate_next(g, &id, &text, &len, &e)) == 1)
        same &= steps < N_GEN && id == plain[steps++];
    CHECK(&C, r == 0 && same && steps == N_GEN && bn_generator_stop_reason(g) == BN_STOP_LENGTH);
    /* text is never NULL, even empty: fwrite(text, 1, len, f) is defined */
    text = NULL;
    CHECK(&C, bn_generate_next(g, &id, &text, &len, &e) == 0 && id == BN_NO_TOKEN && len == 0 && text);
    /* the last token was never evaluated: stopping costs no forward pass */
    CHECK(&C, bn_ctx_pos(c) == n + N_GEN - 1);
    uint32_t longer[512];
    memcpy(longer, p, n * sizeof *p);
    memcpy(longer + n, plain, 10 * sizeof *plain);
    CHECK(&C, bn_generator_prompt(g, longer, n + 10, &e) == BN_OK && bn_ctx_pos(c) == n + 10);
    CHECK(&C, bn_generate_next(g, &id, &text, &len, &e) == 1 && id == plain[10]);
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);

    /* a stop string: the text ends just before it */
    char stop[4] = {0};
    memcpy(stop, k.text + k.n_text / 2, 3);
    const char *stops[] = {stop};
    size_t cut = (size_t)(strstr(k.text, stop) - k.text);
    bn_generate_params sp = gp;
    sp.stop = stops;
    sp.n_stop = 1;
    collect ks = {0};
    r = generate(m, t, p, n, &sp, &ks);
    CHECK(&C, r == BN_STOP_STRING && ks.n_text == cut && !memcmp(ks.text, k.text, cut));

    /* a stop id: generation ends before it */
    size_t at = 0;
    while (plain[at] != plain[5])
        at++;
    bn_generate_params ip = gp;
    ip.stop_ids = &plain[5];
    ip.n_stop_ids = 1;
    collect ki = {0};
    r = generate(m, t, p, n, &ip, &ki);
    CHECK(&C, r == BN_STOP_TOKEN && ki.n == at && !memcmp(ki.ids, plain, at * sizeof *plain));

    /* a stop string ending in a byte the decoder holds back (a character's
     * start) is found also when the answer's last token completes it: id
     * 230 is the byte 0xe6, forced by a logit bias; with one token to go
     * it is text */
    bn_sampler_params bp;
    bn_sampler_params_init(&bp);
    bp.temp = 0;
    bn_logit_bias force = {230, 100};
    bp.logit_bias = &force;
    bp.n_logit_bias = 1;
    const char *held_stop[] = {"\xe6\xe6"};
    for (int32_t want = 1; want <= 3; want++) {
        bn_ctx *cb = new_ctx(m, 0, 1);
        bn_sampler *sb = bn_sampler_new(&bp, bn_model_n_vocab(m), &e);
        bn_generate_params hp = gp;
        hp.stop = held_stop;
        hp.n_stop = 1;
        hp.n_predict = want;
        collect kb = {0};
        r = bn_generate(cb, sb, t, p, n, &hp, on_token, &kb, &e);
        CHECK(&C, want == 1 ? r == BN_STOP_LENGTH && kb.n_text == 1 && (uint8_t)kb.text[0] == 0xe6
                            : r == BN_STOP_STRING && kb.n_text == 0);
        bn_sampler_free(sb);
        bn_ctx_free(cb);
    }

    /* the callback cancels */
    collect kc = {.cancel_at = 3};
    CHECK(&C, generate(m, t, p, n, &gp, &kc) == BN_E_CANCELLED && kc.n == 3);
    /* stop strings need a tokenizer */
    bn_ctx *c2 = new_ctx(m, 16, 1);
    bn_sampler *s2 = new_sampler(bn_model_n_vocab(m), 0, 0);
    CHECK(&C, !bn_generator_new(c2, s2, NULL, &sp, &e) && e.code == BN_E_INVALID);
    /* a prompt longer than the context */
    g = bn_generator_new(c2, s2, t, &gp, &e);
    CHECK(&C, g && bn_generator_prompt(g, longer, 17, &e) == BN_E_CONTEXT_FULL);
    /* a prompt that leaves room for a few tokens ends with the context */
    collect kf = {0};
    CHECK(&C, bn_generate(c2, s2, t, p, n, &gp, on_token, &kf, &e) == BN_STOP_CONTEXT && kf.n == 16 - n + 1);
    bn_generator_free(g);
    bn_sampler_free(s2);
    bn_ctx_free(c2);
}

/* ------------------------------------------------------------ threads */

typedef struct job {
    const bn_model *m;
    const uint32_t *p;
    size_t n;
    uint64_t seed;
    uint32_t out[N_GEN];
    size_t n_out;
    int rc;
} job;

/* Sampled, not greedy: the sampler's own generator must not be shared. */
static void *run_job(void *arg)
{
    job *j = arg;
    bn_ctx_params cp;
    bn_ctx_params_init(&cp);
    cp.n_threads = 1;
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.seed = j->seed;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(j->m, &cp, &e);
    bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(j->m), &e);
    bn_generator *g = c && s ? bn_generator_new(c, s, NULL, NULL, &e) : NULL;
    j->rc = g ? bn_generator_prompt(g, j->p, j->n, &e) : -1;
    uint32_t id;
    while (!j->rc && j->n_out < N_GEN && bn_generate_next(g, &id, NULL, NULL, &e) == 1)
        j->out[j->n_out++] = id;
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);
    return NULL;
}

static void test_threads(const bn_model *m, const uint32_t *p, size_t n)
{
    job seq[2] = {{m, p, n, 11, {0}, 0, 0}, {m, p + 1, n - 1, 12, {0}, 0, 0}};
    job par[2] = {seq[0], seq[1]};
    run_job(&seq[0]);
    run_job(&seq[1]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(&C, !pthread_create(&th[i], NULL, run_job, &par[i]));
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        CHECK(&C, !seq[i].rc && !par[i].rc && seq[i].n_out > 4 && par[i].n_out == seq[i].n_out &&
                      !memcmp(par[i].out, seq[i].out, seq[i].n_out * sizeof *seq[i].out));
}

/* ---------------------------------------------------------- perplexity */

static void test_perplexity(const bn_model *m, bn_tokenizer *t)
{
    FILE *f = fopen("tests/data/infer/heldout.txt", "rb");
    static char text[1 << 16];
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[len] = 0;
    uint32_t *ids = malloc(len * sizeof *ids + 4);
    size_t n = tokenize(t, text, 0, ids, len + 1);
    bn_ctx *c = new_ctx(m, 64, 1);
    double ppl = 0, err = 0;
    bn_err e = {0};
    CHECK(&C, n > 100 && bn_ctx_perplexity(c, ids, n, 0, 0, &ppl, &err, &e) == BN_OK);
    CHECK(&C, isfinite(ppl) && ppl > 1 && ppl < 4096 && err > 0 && bn_ctx_pos(c) == 0);
    CHECK(&C, bn_ctx_perplexity(c, ids, n, 100, 0, &ppl, NULL, &e) == BN_E_INVALID);
    bn_ctx_free(c);
    free(ids);
}

/* bn.h: a NULL handle is BN_E_INVALID from a call with a status, 0,
 * NULL or -1 from a getter, nothing from a void call; and a status is
 * the same with e NULL (internal -1s once leaked through without one). */
static void test_null_handles(const bn_model *m, bn_tokenizer *t)
{
    CHECK(&C, bn_model_n_vocab(NULL) == 0 && bn_model_n_ctx(NULL) == 0 && bn_model_n_embd(NULL) == 0 &&
                  bn_model_n_layer(NULL) == 0 && !bn_model_arch(NULL) && !bn_model_kernels(NULL) &&
                  bn_model_bos(NULL) == -1 && bn_model_eos(NULL) == -1 && !bn_model_is_stop(NULL, 1) &&
                  bn_model_weight_bytes(NULL) == 0 && !bn_model_meta_str(NULL, "general.name"));
    CHECK(&C, !bn_ctx_model(NULL) && bn_ctx_n_ctx(NULL) == 0 && bn_ctx_pos(NULL) == 0 && !bn_ctx_tokens(NULL) &&
                  bn_ctx_kv_bytes(NULL) == 0 && bn_ctx_n_seq(NULL) == 0);
    bn_ctx_truncate(NULL, 0);
    CHECK(&C, bn_tokenizer_n_vocab(NULL) == 0 && !bn_tokenizer_chat_format(NULL) &&
                  bn_tokenizer_find(NULL, "a", 1) == -1);
    size_t len = 7;
    CHECK(&C, !bn_tokenizer_piece(NULL, 0, &len) && len == 0 && bn_tokenizer_piece(t, 0, NULL) != NULL);
    const uint8_t *text = (const uint8_t *)"x";
    bn_detok_flush(NULL, &text, &len);
    CHECK(&C, !text && len == 0);
    bn_err e = {0};
    CHECK(&C, bn_detok_feed(NULL, 0, &text, &len, &e) == BN_E_INVALID && bn_detok_feed(NULL, 0, NULL, NULL, NULL) == BN_E_INVALID);
    bn_detok *d = bn_detok_new(t, 0, &e);
    CHECK(&C, d && bn_detok_feed(d, 300, NULL, NULL, &e) == BN_OK); /* text not wanted */
    bn_detok_free(d);
    float lg[4] = {1, 2, 3, 4};
    CHECK(&C, bn_sampler_sample(NULL, lg, NULL, 0) == BN_NO_TOKEN);
    bn_sampler_reseed(NULL, 1);
    /* the same status with and without e */
    bn_ctx *c = new_ctx(m, 64, 1);
    bn_sampler *s = bn_sampler_new(NULL, bn_model_n_vocab(m), &e);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.n_predict = -5;
    uint32_t id = 1, ids[200];
    int with = bn_generate(c, s, NULL, &id, 1, &gp, NULL, NULL, &e);
    CHECK(&C, with == BN_E_INVALID && bn_generate(c, s, NULL, &id, 1, &gp, NULL, NULL, NULL) == with);
    for (int i = 0; i < 200; i++)
        ids[i] = 100 + (uint32_t)i;
    double ppl;
    with = bn_ctx_perplexity(c, ids, 200, 32, 100, &ppl, NULL, &e);
    CHECK(&C, with == BN_E_INVALID && bn_ctx_perplexity(c, ids, 200, 32, 100, &ppl, NULL, NULL) == with);
    size_t n_ids;
    CHECK(&C, bn_tokenize(NULL, "a", 1, 0, ids, 200, &n_ids, NULL) == BN_E_INVALID);
    bn_chat_message msg = {"nobody", "hi"};
    with = bn_chat_render(t, &msg, 1, 1, ids, 200, &n_ids, &e);
    CHECK(&C, with == BN_E_INVALID && bn_chat_render(t, &msg, 1, 1, ids, 200, &n_ids, NULL) == with);
    CHECK(&C, bn_ctx_eval_batch(c, NULL, 0, NULL, &e) == BN_OK && bn_ctx_eval(c, NULL, 0, NULL, 0, &e) == BN_OK);
    /* a prompt with a bad id changes nothing: the cache keeps what it held */
    bn_generate_params_init(&gp);
    bn_generator *g = bn_generator_new(c, s, t, &gp, &e);
    uint32_t good[3] = {4064, 378, 99}, bad[3] = {4064, 378, 99999};
    CHECK(&C, g && bn_generator_prompt(g, good, 3, &e) == BN_OK && bn_ctx_pos(c) == 3);
    CHECK(&C, bn_generator_prompt(g, bad, 3, &e) == BN_E_INVALID && bn_ctx_pos(c) == 3 &&
                  bn_ctx_tokens(c)[2] == 99);
    bn_generator_free(g);
    gp.stop_ids = good;
    gp.n_stop_ids = (size_t)BN_MAX_STOP_IDS + 1;
    CHECK(&C, !bn_generator_new(c, s, t, &gp, &e) && e.code == BN_E_INVALID && strstr(e.msg, "n_stop_ids"));
    bn_sampler_free(s);
    bn_ctx_free(c);
}

int main(void)
{
    test_version_and_status();
    test_params_size();
    test_open_errors();
    bn_model *m = open_tiny();
    if (!m)
        return check_done(&C, "test_api");
    bn_err e = {0};
    bn_tokenizer *t = bn_tokenizer_from_model(m, &e);
    CHECK(&C, t != NULL);
    uint32_t p[64];
    size_t n = tokenize(t, PROMPT, BN_TOKENIZE_BOS, p, 64);
    test_tokenizer(m, t);
    test_chat(t);
    test_ctx_errors(m);
    test_rollback(m, p, n);
    test_generate(m, t, p, n);
    test_threads(m, p, n);
    test_perplexity(m, t);
    test_null_handles(m, t);
    bn_tokenizer_free(t);
    bn_model_close(m);
    return check_done(&C, "test_api");
}
