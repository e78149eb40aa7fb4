/* test_api_kvrange.c — a K value beyond the f16 KV cache's range through
 * the public API (bn.h alone). The model is the bundled tiny one with one
 * token made "hot" (as tests/common.bash's hot_tiny): every k_proj weight
 * of layer 0 is 512 and the embedding row of " ladyship" (3000) is 0.01
 * throughout, so that token's layer-0 K is ~1.2e5 at every position and
 * every other token's below 3.5e4. Stored as f16 it was inf, and every
 * later attention score of its sequence NaN, silently. Checked: the status
 * and its message (position, layer, value), the context as it was (its
 * position, its KV bytes, and the same logits after, bit for bit, as a
 * context that never saw the call), also when the failing token is in a
 * later pass of 128 than others already evaluated; an f32 context holds
 * it; bn_ctx_eval_batch names the token and leaves every sequence as it
 * was; the batcher ends that request with BN_STOP_ERROR / BN_E_KV_RANGE
 * and answers the one beside it as alone; a generator's prompt fails
 * with it; as a draft model's, the hot token is no error: the answers are
 * the model's. */
#include "api_test_util.h"

static check_ctx C;

#define HOT 3000u

/* The first element of tensor name in the safetensors header hdr
 * (data_offsets are relative to the data after it), or -1. */
static long long tensor_at(const char *hdr, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *p = strstr(hdr, key);
    p = p ? strstr(p, "\"data_offsets\"") : NULL;
    p = p ? strchr(p, '[') : NULL;
    return p ? strtoll(p + 1, NULL, 10) : -1;
}

/* dir (a mkdtemp template): links to the tiny model's files, but its own
 * model.safetensors with the hot token (above). 0, or -1. */
static int make_hot(char *dir)
{
    static const char *const files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "generation_config.json"};
    char src[PATH_MAX], from[PATH_MAX + 64], to[PATH_MAX + 64];
    if (!realpath(API_TINY, src) || !mkdtemp(dir))
        return -1;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (symlink(from, to))
            return -1;
    }
    snprintf(from, sizeof from, "%s/model.safetensors", src);
    FILE *f = fopen(from, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)size + 1);
    int ok = b && fread(b, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    uint64_t n = 0;
    for (int i = 7; ok && i >= 0; i--)
        n = n << 8 | b[i];
    ok = ok && n + 8 < (uint64_t)size;
    char *hdr = ok ? malloc(n + 1) : NULL;
    if (hdr) {
        memcpy(hdr, b + 8, n);
        hdr[n] = 0;
    }
    long long k = hdr ? tensor_at(hdr, "model.layers.0.self_attn.k_proj.weight") : -1;
    long long v = hdr ? tensor_at(hdr, "model.layers.0.self_attn.v_proj.weight") : -1; /* the tensor after it */
    long long emb = hdr ? tensor_at(hdr, "model.embed_tokens.weight") : -1;
    ok = ok && k >= 0 && v > k && emb >= 0;
    unsigned char *d = b + 8 + n;
    size_t w = 256; /* the tiny model's n_embd; bf16 little-endian */
    for (long long i = k; ok && i < v; i += 2)
        d[i] = 0x00, d[i + 1] = 0x44; /* 512 */
    for (size_t i = 0; ok && i < w; i++)
        d[emb + (HOT * w + i) * 2] = 0x24, d[emb + (HOT * w + i) * 2 + 1] = 0x3c; /* 0.01 */
    snprintf(to, sizeof to, "%s/model.safetensors", dir);
    f = ok ? fopen(to, "wb") : NULL;
    ok = f && fwrite(b, 1, (size_t)size, f) == (size_t)size;
    if (f && fclose(f))
        ok = 0;
    free(hdr);
    free(b);
    return ok ? 0 : -1;
}

static void remove_hot(const char *dir)
{
    static const char *const files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "generation_config.json", "model.safetensors"};
    char p[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

static bn_ctx *new_ctx(const bn_model *m, int kv_type, uint32_t n_seq)
{
    bn_ctx_params p;
    bn_ctx_params_init(&p);
    p.n_threads = 2;
    p.kv_type = kv_type;
    p.n_seq = n_seq;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(m, &p, &e);
    CHECK(&C, c != NULL);
    return c;
}

/* "position P: layer 0: a K value (...) is beyond the range of the f16 KV
 * cache (65504): use f32 K/V", P given. */
static int says_hot(const char *msg, const char *prefix)
{
    size_t n = strlen(prefix);
    return !strncmp(msg, prefix, n) && !strncmp(msg + n, "layer 0: a K value (", 20) &&
           strstr(msg, ") is beyond the range of the f16 KV cache (65504): use f32 K/V") != NULL;
}

/* prompt ids: "It was a fine morning" (cold), then 130 more, the hot
 * token at [hot_at] when hot_at < n. */
static size_t ids_with(uint32_t *ids, size_t n, size_t hot_at)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = i == hot_at ? HOT : 10 + (uint32_t)((i * 37) % 2900);
    return n;
}

static void test_eval(const bn_model *m)
{
    bn_ctx *c = new_ctx(m, BN_KV_F16, 1), *fresh = new_ctx(m, BN_KV_F16, 1), *f32 = new_ctx(m, BN_KV_F32, 1);
    if (!c || !fresh || !f32)
        goto out;
    size_t V = bn_model_n_vocab(m);
    float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b);
    uint32_t ids[300], hot[3] = {20, HOT, 30};
    bn_err e = {0};
    ids_with(ids, 300, 300);
    CHECK(&C, bn_ctx_eval(c, ids, 10, NULL, 0, &e) == BN_OK);
    uint64_t used = bn_ctx_kv_used_bytes(c);
    CHECK(&C, bn_ctx_eval(c, hot, 3, a, 0, &e) == BN_E_KV_RANGE && e.code == BN_E_KV_RANGE);
    CHECK(&C, says_hot(e.msg, "position 11: "));
    CHECK(&C, bn_ctx_pos(c) == 10 && bn_ctx_kv_used_bytes(c) == used);
    /* the hot token in the second pass of 128: the first's positions go too */
    ids_with(ids, 200, 150);
    CHECK(&C, bn_ctx_eval(c, ids, 200, NULL, 0, &e) == BN_E_KV_RANGE && says_hot(e.msg, "position 160: "));
    CHECK(&C, bn_ctx_pos(c) == 10 && bn_ctx_kv_used_bytes(c) == used);
    /* what follows is what it would have been */
    ids_with(ids, 300, 300);
    CHECK(&C, bn_ctx_eval(c, ids + 10, 100, a, 0, &e) == BN_OK);
    CHECK(&C, bn_ctx_eval(fresh, ids, 110, b, 0, &e) == BN_OK);
    CHECK(&C, a && b && !memcmp(a, b, V * sizeof *a));
    /* f32 holds it */
    CHECK(&C, bn_ctx_eval(f32, hot, 3, a, 0, &e) == BN_OK && bn_ctx_pos(f32) == 3);
    CHECK(&C, !strncmp(bn_status_string(BN_E_KV_RANGE), "BN_E_KV_RANGE: ", 15));
    free(a);
    free(b);
out:
    bn_ctx_free(c);
    bn_ctx_free(fresh);
    bn_ctx_free(f32);
}

static void test_eval_batch(const bn_model *m)
{
    bn_ctx *c = new_ctx(m, BN_KV_F16, 2), *alone = new_ctx(m, BN_KV_F16, 1);
    bn_err e = {0};
    int s1 = c ? bn_ctx_seq_new(c, &e) : -1;
    CHECK(&C, s1 == 1);
    if (!c || !alone || s1 != 1)
        goto out;
    size_t V = bn_model_n_vocab(m);
    float *rows = malloc(2 * V * sizeof *rows), *want = malloc(V * sizeof *want);
    uint32_t ids[8];
    ids_with(ids, 8, 8);
    CHECK(&C, bn_ctx_eval(c, ids, 4, NULL, 0, &e) == BN_OK);
    bn_eval_tok t[6] = {{ids[4], 0, 4, 0}, {ids[5], 0, 5, 1}, {40, 1, 0, 0}, {50, 1, 1, 0}, {HOT, 1, 2, 1}};
    CHECK(&C, bn_ctx_eval_batch(c, t, 5, rows, &e) == BN_E_KV_RANGE && e.code == BN_E_KV_RANGE);
    CHECK(&C, says_hot(e.msg, "token 4 (sequence 1, position 2): "));
    CHECK(&C, bn_ctx_seq_pos(c, 0) == 4 && bn_ctx_seq_pos(c, 1) == 0);
    /* without the other sequence's tokens: sequence 0's row as alone */
    CHECK(&C, bn_ctx_eval_batch(c, t, 2, rows, &e) == BN_OK && bn_ctx_seq_pos(c, 0) == 6);
    CHECK(&C, bn_ctx_eval(alone, ids, 6, want, 0, &e) == BN_OK);
    CHECK(&C, rows && want && !memcmp(rows, want, V * sizeof *want));
    free(rows);
    free(want);
out:
    bn_ctx_free(c);
    bn_ctx_free(alone);
}

/* Side by side in one batcher: the hot request ends with BN_STOP_ERROR
 * (BN_E_KV_RANGE), the other gets its answer alone; a generator's prompt
 * with the hot token fails with the status, the context left holding
 * nothing of it. */
static void test_batcher(const bn_model *m)
{
    bn_ctx *c = new_ctx(m, BN_KV_F16, 2);
    bn_err e = {0};
    bn_batcher *b = c ? bn_batcher_new(c, NULL, &e) : NULL;
    CHECK(&C, b != NULL);
    if (!b) {
        bn_ctx_free(c);
        return;
    }
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.temp = 0;
    uint32_t cold[6], hot[4] = {4064, 2300, HOT, 471};
    ids_with(cold, 6, 6);
    bn_batcher_request r[2];
    for (int k = 0; k < 2; k++) {
        bn_batcher_request_init(&r[k]);
        r[k].prompt = k ? cold : hot;
        r[k].n_prompt = k ? 6 : 4;
        r[k].sampler = &sp;
        r[k].n_predict = 12;
        r[k].tag = (uint64_t)k;
        CHECK(&C, bn_batcher_submit(b, &r[k], &e) == BN_OK);
    }
    api_answer got[2];
    memset(got, 0, sizeof got);
    int hot_refused = 0, first = 1;
    while (bn_batcher_pending(b)) {
        const bn_batcher_event *ev;
        size_t n = 0;
        CHECK(&C, bn_batcher_step(b, &ev, &n, &e) == BN_OK);
        for (size_t i = 0; i < n; i++) {
            api_answer *a = &got[ev[i].tag];
            if (ev[i].token != BN_NO_TOKEN)
                a->ids[a->n++] = ev[i].token;
            if (!ev[i].stop)
                continue;
            a->stop = ev[i].stop;
            a->ends++;
            /* both prompts in the first pass: refused there, not later */
            hot_refused += first && ev[i].tag == 0 && ev[i].stop == BN_STOP_ERROR &&
                           ev[i].status == BN_E_KV_RANGE && says_hot(ev[i].error, "position 2: ");
        }
        first = 0;
    }
    CHECK(&C, hot_refused == 1 && got[0].n == 0 && got[0].ends == 1);
    api_answer want;
    api_alone(&C, m, &r[1], NULL, &want, NULL);
    CHECK(&C, api_same(&got[1], &want) && want.n == 12);
    bn_batcher_free(b);

    bn_sampler *s = bn_sampler_new(&sp, bn_model_n_vocab(m), &e);
    bn_generator *g = s ? bn_generator_new(c, s, NULL, NULL, &e) : NULL;
    CHECK(&C, g != NULL);
    CHECK(&C, g && bn_generator_prompt(g, cold, 6, &e) == BN_OK && bn_ctx_pos(c) == 6);
    uint32_t more[8];
    memcpy(more, cold, sizeof cold);
    more[6] = HOT;
    more[7] = 40;
    CHECK(&C, g && bn_generator_prompt(g, more, 8, &e) == BN_E_KV_RANGE && says_hot(e.msg, "position 6: "));
    CHECK(&C, bn_ctx_pos(c) == 6); /* the prefix it shares with the last prompt, nothing of the new part */
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);
}

/* The hot model as the plain tiny model's draft: its cache cannot hold
 * " ladyship", which one prompt holds. That is no error: the draft guesses
 * nothing more for that answer, which is whole, in a batcher as alone;
 * greedy, every answer is plain decoding's. */
static void test_draft(const bn_model *m, const bn_model *hot)
{
    enum { NR = 2 };
    uint32_t cold[6], warm[4] = {4064, 2300, HOT, 471};
    ids_with(cold, 6, 6);
    for (int sampled = 0; sampled < 2; sampled++) {
        bn_sampler_params sp;
        bn_sampler_params_init(&sp);
        sp.temp = sampled ? 0.8f : 0;
        sp.seed = 11;
        bn_batcher_request r[NR];
        api_answer want[NR], got[NR], plain;
        bn_ctx *c = new_ctx(m, BN_KV_F16, NR), *dc = new_ctx(hot, BN_KV_F16, NR), *alone = new_ctx(hot, BN_KV_F16, 1);
        for (int k = 0; k < NR; k++) {
            bn_batcher_request_init(&r[k]);
            r[k].prompt = k ? cold : warm;
            r[k].n_prompt = k ? 6 : 4;
            r[k].sampler = &sp;
            r[k].n_predict = 12;
            r[k].tag = (uint64_t)k;
            r[k].draft = 1;
            api_spec spec = {.draft_max = 4, .draft = alone, .no_pacing = 1};
            api_alone(&C, m, &r[k], alone ? &spec : NULL, &want[k], NULL);
            CHECK(&C, want[k].n == 12 && want[k].stop == BN_STOP_LENGTH);
            if (!sampled) {
                api_alone(&C, m, &r[k], NULL, &plain, NULL);
                CHECK(&C, api_same(&want[k], &plain));
            }
        }
        bn_batcher_params bp;
        bn_batcher_params_init(&bp);
        bp.draft = dc;
        bn_err e = {0};
        bn_batcher *b = c && dc ? bn_batcher_new(c, &bp, &e) : NULL;
        CHECK(&C, b != NULL);
        for (int k = 0; b && k < NR; k++) {
            r[k].draft_max = 4;
            CHECK(&C, bn_batcher_submit(b, &r[k], &e) == BN_OK);
        }
        memset(got, 0, sizeof got);
        if (b)
            api_run_all(&C, b, got, NR);
        for (int k = 0; b && k < NR; k++) {
            /* sampled, a batcher's draws are bn_gen_answer's, not a
             * generator's (batch.h): the answer is whole, not an error */
            int same = sampled ? got[k].ends == 1 && got[k].n == 12 && got[k].stop == BN_STOP_LENGTH
                               : api_same(&got[k], &want[k]);
            if (!same)
                fprintf(stderr, "test_draft: %s, request %d: %zu tokens, stop %d; alone %zu, stop %d\n",
                        sampled ? "sampled" : "greedy", k, got[k].n, got[k].stop, want[k].n, want[k].stop);
            CHECK(&C, same);
        }
        bn_batcher_free(b);
        bn_ctx_free(c);
        bn_ctx_free(dc);
        bn_ctx_free(alone);
    }
}

int main(void)
{
    char dir[] = "/tmp/bn-test-kvrange-XXXXXX";
    int made = make_hot(dir) == 0;
    CHECK(&C, made);
    bn_model_params mp;
    bn_model_params_init(&mp);
    bn_err e = {0};
    bn_model *m = made ? bn_model_open(dir, &mp, &e) : NULL;
    CHECK(&C, m != NULL);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    if (m) {
        test_eval(m);
        test_eval_batch(m);
        test_batcher(m);
        bn_model *tiny = api_open_tiny(&C);
        if (tiny)
            test_draft(tiny, m);
        bn_model_close(tiny);
    }
    bn_model_close(m);
    remove_hot(dir);
    return check_done(&C, "test_api_kvrange");
}
