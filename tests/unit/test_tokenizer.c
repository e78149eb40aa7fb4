/* test_tokenizer.c — the tokenizer library: GPT-2 byte map, BPE against a
 * naive reference (short and long pieces, both merge modes), the GGUF path
 * against the HF path, the streaming decoder, chat rendering, token
 * streams, and the errors of malformed tokenizers. Exactness against an
 * outside reference is tests/tokenize.bats's job (js-tiktoken). */
#include "formats.h"
#include "jsonfile.h"
#include "quant.h"
#include "check.h"
#include "tokenizer.h"
#include "tokstream.h"
#include "tok_section.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TINY "models/tiny-bitnet"
#define LLAMA3 "../shared/data/llama3-tokenizer.model"

/* A tokenizer.json file's section, parsed as bn-convert does. */
static int section_from_hf_file(const char *path, bn_meta *sec, bn_err *e)
{
    cJSON *root = NULL;
    if (bn_json_load(path, &root, e))
        return -1;
    int rc = bn_tokenizer_section_from_hf(root, path, sec, e);
    cJSON_Delete(root);
    return rc;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static bn_tokenizer *from_section(bn_meta *sec, const char *mode_note, bn_err *e)
{
    (void)mode_note;
    bn_meta m = {0};
    bn_meta *s = calloc(1, sizeof *s);
    bn_meta_copy(s, sec);
    bn_meta_set_section(&m, "tokenizer", s);
    bn_tokenizer_meta_llama3_defaults(&m, 0, e);
    bn_tokenizer *t = bn_tokenizer_new(&m, e);
    bn_meta_free(&m);
    return t;
}

static int same_ids(const bn_tokens *a, const uint32_t *b, size_t n)
{
    return a->n == n && (!n || !memcmp(a->ids, b, n * sizeof *b));
}

/* ------------------------------------------------------------ byte map */

static void test_gpt2_map(check_ctx *c)
{
    int seen[512] = {0}, ok = 1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bn_gpt2_byte_to_cp((uint8_t)b);
        if (cp >= 512 || seen[cp]++ || bn_gpt2_cp_to_byte(cp) != b)
            ok = 0;
    }
    CHECK(c, ok);
    CHECK(c, bn_gpt2_byte_to_cp(' ') == 0x120);  /* Ġ */
    CHECK(c, bn_gpt2_byte_to_cp('\n') == 0x10A); /* Ċ */
    CHECK(c, bn_gpt2_byte_to_cp('A') == 'A');
    CHECK(c, bn_gpt2_cp_to_byte(0x144) == -1);
    uint8_t out[8];
    CHECK(c, bn_gpt2_decode("\xc4\xa0the", 5, out) == 4 && !memcmp(out, " the", 4));
    CHECK(c, bn_gpt2_decode("\xe2\x82\xac", 3, out) == -1); /* € is not in the map */
}

/* --------------------------------------------------- BPE vs naive BPE */

/* tiktoken's rule, written the slow obvious way over a ranks-mode tokenizer:
 * merge the lowest-id pair whose concatenation is a token, leftmost first. */
static size_t naive_bpe(const bn_tokenizer *t, const uint8_t *p, size_t n, uint32_t *out)
{
    size_t cut[1024], m = n + 1;
    for (size_t i = 0; i <= n; i++)
        cut[i] = i;
    for (;;) {
        int32_t best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 2 < m; i++) {
            int32_t id = bn_tokenizer_find(t, p + cut[i], cut[i + 2] - cut[i]);
            if (id >= 0 && bn_tokenizer_type(t, (uint32_t)id) == BN_TOKT_NORMAL && (best < 0 || id < best)) {
                best = id;
                at = i;
            }
        }
        if (best < 0)
            break;
        memmove(&cut[at + 1], &cut[at + 2], (m - at - 2) * sizeof *cut);
        m--;
    }
    for (size_t i = 0; i + 1 < m; i++)
        out[i] = (uint32_t)bn_tokenizer_find(t, p + cut[i], cut[i + 1] - cut[i]);
    return m - 1;
}

static void test_bpe_naive(check_ctx *c, const char *ranks)
{
    bn_err e;
    bn_meta sec = {0};
    if (bn_tokenizer_section_from_tiktoken(ranks, &sec, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        CHECK(c, 0);
        return;
    }
    bn_tokenizer *t = from_section(&sec, "ranks", &e);
    CHECK(c, t != NULL);
    bn_meta_free(&sec);
    if (!t)
        return;
    /* Letters only, so the whole string is one regex piece: lengths on both
     * sides of the short/long switch, from a small alphabet so merges abound. */
    uint8_t s[700];
    uint32_t want[700];
    bn_tokens got = {0};
    int ok = 1;
    for (int round = 0; round < 300 && ok; round++) {
        size_t n = 1 + rnd(round < 200 ? 80 : 600);
        const char *alpha = round % 3 ? "aeinorst" : "ab";
        size_t na = strlen(alpha);
        for (size_t i = 0; i < n; i++)
            s[i] = (uint8_t)alpha[rnd((uint32_t)na)];
        bn_tokens_clear(&got);
        size_t k = naive_bpe(t, s, n, want);
        if (bn_tokenizer_encode(t, s, n, 0, 0, &got, &e) || !same_ids(&got, want, k)) {
            fprintf(stderr, "BPE differs from the naive rule on '%.*s'\n", (int)n, s);
            ok = 0;
        }
    }
    CHECK(c, ok);
    bn_tokens_free(&got);
    bn_tokenizer_free(t);
}

/* --------------------------------------- HF, tiktoken and GGUF agree */

static const char *samples[] = {
    "It was a fine morning, and Elizabeth",
    "DON'T I'M you'RE  \n\n  tabs\t\there 12345 3.14",
    "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 <|eot_id|> \xff\xfe end  ",
    "",
    " ",
};

/* Rebuilds GGUF-style arrays (GPT-2 unicode strings, "a b" merges) from a
 * merges-mode section, converts them back, and expects identical encodings. */
static void test_gguf_path(check_ctx *c, const bn_meta *hf_sec, bn_tokenizer *hf)
{
    bn_err e;
    const bn_kv *tk = bn_meta_get(hf_sec, "tokenizer.tokens"), *ty = bn_meta_get(hf_sec, "tokenizer.token_type");
    const bn_kv *mg = bn_meta_get(hf_sec, "tokenizer.merges");
    CHECK(c, tk && ty && mg);
    if (!tk || !ty || !mg)
        return;
    bn_meta g = {0};
    /* tokens */
    size_t cap = (size_t)(tk->offsets[tk->count] * 2 + 16);
    char *data = malloc(cap), *p = data;
    uint64_t *off = malloc((tk->count + 1) * sizeof *off);
    uint32_t *types = malloc(tk->count * sizeof *types);
    for (uint64_t i = 0; i < tk->count; i++) {
        off[i] = (uint64_t)(p - data);
        const uint8_t *b = (const uint8_t *)tk->data + tk->offsets[i];
        size_t n = tk->offsets[i + 1] - tk->offsets[i];
        types[i] = ((const uint8_t *)ty->data)[i];
        for (size_t k = 0; k < n; k++) {
            if (types[i] == BN_TOKT_CONTROL) {
                *p++ = (char)b[k];
                continue;
            }
            uint32_t cp = bn_gpt2_byte_to_cp(b[k]);
            if (cp < 0x80)
                *p++ = (char)cp;
            else {
                *p++ = (char)(0xC0 | cp >> 6);
                *p++ = (char)(0x80 | (cp & 0x3F));
            }
        }
    }
    off[tk->count] = (uint64_t)(p - data);
    bn_meta_set_strarr_owned(&g, "tokens", data, off, tk->count);
    bn_meta_set_arr(&g, "types", BN_V_I32, types, tk->count);
    free(types);
    /* merges */
    size_t nm = mg->count / 2;
    const uint32_t *pairs = mg->data;
    const bn_kv *gt = bn_meta_get(&g, "tokens");
    size_t mcap = 64;
    for (size_t i = 0; i < nm; i++)
        mcap += (size_t)(gt->offsets[pairs[2 * i] + 1] - gt->offsets[pairs[2 * i]] +
                         gt->offsets[pairs[2 * i + 1] + 1] - gt->offsets[pairs[2 * i + 1]] + 1);
    char *md = malloc(mcap), *q = md;
    uint64_t *moff = malloc((nm + 1) * sizeof *moff);
    for (size_t i = 0; i < nm; i++) {
        moff[i] = (uint64_t)(q - md);
        for (int side = 0; side < 2; side++) {
            uint32_t id = pairs[2 * i + (size_t)side];
            size_t n = (size_t)(gt->offsets[id + 1] - gt->offsets[id]);
            if (side)
                *q++ = ' ';
            memcpy(q, (const char *)gt->data + gt->offsets[id], n);
            q += n;
        }
    }
    moff[nm] = (uint64_t)(q - md);
    bn_meta_set_strarr_owned(&g, "merges", md, moff, nm);
    bn_meta sec = {0};
    int rc = bn_tokenizer_section_from_gguf(bn_meta_get(&g, "tokens"), bn_meta_get(&g, "merges"),
                                            bn_meta_get(&g, "types"), NULL, &sec, &e);
    if (rc)
        fprintf(stderr, "gguf: %s\n", e.msg);
    CHECK(c, rc == 0);
    bn_tokenizer *gg = rc ? NULL : from_section(&sec, "merges", &e);
    CHECK(c, gg != NULL);
    if (gg) {
        CHECK(c, bn_tokenizer_hash(gg) == bn_tokenizer_hash(hf)); /* the very same tokenizer */
        int ok = 1;
        for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
            bn_tokens a = {0}, b = {0};
            bn_tokenizer_encode(hf, samples[i], strlen(samples[i]), BN_ENC_SPECIAL, 0, &a, &e);
            bn_tokenizer_encode(gg, samples[i], strlen(samples[i]), BN_ENC_SPECIAL, 0, &b, &e);
            ok &= same_ids(&a, b.ids, b.n);
            bn_tokens_free(&a);
            bn_tokens_free(&b);
        }
        CHECK(c, ok);
    }
    /* a merge naming no token, and a token not in GPT-2 form */
    bn_meta bad = {0};
    char *bd = strdup("\xc4\xa0zzzz qqq");
    uint64_t *bo = malloc(2 * sizeof *bo);
    bo[0] = 0;
    bo[1] = strlen(bd);
    bn_meta_set_strarr_owned(&bad, "merges", bd, bo, 1);
    CHECK(c, bn_tokenizer_section_from_gguf(bn_meta_get(&g, "tokens"), bn_meta_get(&bad, "merges"),
                                            bn_meta_get(&g, "types"), NULL, &sec, &e) == -1);
    CHECK(c, strstr(e.msg, "merge 0") != NULL);
    CHECK(c, bn_tokenizer_section_from_gguf(bn_meta_get(&g, "tokens"), bn_meta_get(&g, "merges"),
                                            bn_meta_get(&g, "types"), "some-other-pre", &sec, &e) == -1);
    CHECK(c, strstr(e.msg, "some-other-pre") != NULL);
    bn_meta_free(&bad);
    bn_meta_free(&sec);
    bn_meta_free(&g);
    bn_tokenizer_free(gg);
}

static void test_sources_agree(check_ctx *c)
{
    bn_err e;
    bn_meta hf_sec = {0}, tt_sec = {0};
    int rc = section_from_hf_file(TINY "/tokenizer.json", &hf_sec, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CHECK(c, rc == 0);
    CHECK(c, bn_tokenizer_section_from_tiktoken(TINY "/tokenizer.model", &tt_sec, &e) == 0);
    bn_tokenizer *hf = from_section(&hf_sec, "merges", &e), *tt = from_section(&tt_sec, "ranks", &e);
    CHECK(c, hf && tt);
    if (hf && tt) {
        CHECK(c, bn_tokenizer_n_vocab(hf) == 4096);
        CHECK(c, bn_tokenizer_n_vocab(tt) == 4064 + 256);
        int ok = 1;
        for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
            bn_tokens a = {0}, b = {0};
            /* specials differ in number, so compare plain text */
            bn_tokenizer_encode(hf, samples[i], strlen(samples[i]), 0, 0, &a, &e);
            bn_tokenizer_encode(tt, samples[i], strlen(samples[i]), 0, 0, &b, &e);
            ok &= same_ids(&a, b.ids, b.n);
            bn_tokens_free(&a);
            bn_tokens_free(&b);
        }
        CHECK(c, ok);
        test_gguf_path(c, &hf_sec, hf);
    }
    bn_tokenizer_free(hf);
    bn_tokenizer_free(tt);
    bn_meta_free(&hf_sec);
    bn_meta_free(&tt_sec);
}

/* ---------------------------------------------------- Llama 3 facts */

static void test_llama3(check_ctx *c, bn_tokenizer *t)
{
    bn_err e;
    static const struct {
        const char *s;
        uint32_t ids[6];
        size_t n;
    } cases[] = {
        {"Hello, my name is", {9906, 11, 856, 836, 374}, 5},
        {"User: ", {1502, 25, 220}, 3},
        {"Assistant: ", {72803, 25, 220}, 3},
        {"System: ", {2374, 25, 220}, 3},
        {"User: hi", {1502, 25, 15960}, 3},
        {" 12345", {220, 4513, 1774}, 3},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bn_tokens v = {0};
        ok &= !bn_tokenizer_encode(t, cases[i].s, strlen(cases[i].s), 0, 0, &v, &e) &&
              same_ids(&v, cases[i].ids, cases[i].n);
        bn_tokens_free(&v);
    }
    CHECK(c, ok);
    /* special text: plain by default, one id when asked */
    bn_tokens v = {0};
    CHECK(c, !bn_tokenizer_encode(t, "<|eot_id|>", 10, BN_ENC_SPECIAL | BN_ENC_BOS, 0, &v, &e));
    CHECK(c, v.n == 2 && v.ids[0] == 128000 && v.ids[1] == 128009);
    bn_tokens_clear(&v);
    CHECK(c, !bn_tokenizer_encode(t, "<|eot_id|>", 10, 0, 0, &v, &e) && v.n > 1);
    /* offsets */
    bn_tokens o = {.want_offsets = 1};
    CHECK(c, !bn_tokenizer_encode(t, "Hello, my", 9, BN_ENC_BOS, 100, &o, &e));
    CHECK(c, o.n == 4 && o.offs[0] == BN_TOK_NO_OFFSET && o.offs[1] == 100 && o.offs[2] == 105 && o.offs[3] == 106);
    bn_tokens_free(&o);
    bn_tokens_free(&v);

    /* chat, token-exact as formats.md §7.4 */
    const char *conv = "system:  Be brief. \nuser: hi\nthere\x1c\n";
    bn_chat_msg *msgs;
    size_t nm;
    CHECK(c, !bn_chat_parse((const uint8_t *)conv, strlen(conv), &msgs, &nm, &e) && nm == 2);
    CHECK(c, msgs[0].role == BN_ROLE_SYSTEM && msgs[1].role == BN_ROLE_USER);
    bn_tokens ch = {0};
    CHECK(c, !bn_tokenizer_chat(t, msgs, nm, 1, &ch, &e));
    bn_tokens s = {0}, u = {0};
    bn_tokenizer_encode(t, "Be brief.", 9, 0, 0, &s, &e);
    bn_tokenizer_encode(t, "hi\nthere", 8, 0, 0, &u, &e); /* \x1c is stripped like Python's strip() */
    uint32_t want[64];
    size_t k = 0;
    want[k++] = 128000;
    want[k++] = 2374, want[k++] = 25, want[k++] = 220;
    for (size_t i = 0; i < s.n; i++)
        want[k++] = s.ids[i];
    want[k++] = 128009;
    want[k++] = 1502, want[k++] = 25, want[k++] = 220;
    for (size_t i = 0; i < u.n; i++)
        want[k++] = u.ids[i];
    want[k++] = 128009;
    want[k++] = 72803, want[k++] = 25, want[k++] = 220;
    CHECK(c, same_ids(&ch, want, k));
    bn_tokens_clear(&ch);
    CHECK(c, !bn_tokenizer_chat(t, msgs, nm, 0, &ch, &e) && same_ids(&ch, want, k - 3));
    free(msgs);
    CHECK(c, bn_chat_parse((const uint8_t *)"hello\nuser: x", 13, &msgs, &nm, &e) == -1);
    CHECK(c, strstr(e.msg, "line 1") != NULL);
    bn_tokens_free(&ch);
    bn_tokens_free(&s);
    bn_tokens_free(&u);
}

/* ------------------------------------------------------ streaming decode */

static int valid_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t k = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
        if (!k || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

static void test_decode(check_ctx *c, bn_tokenizer *t)
{
    bn_err e;
    const char *texts[] = {
        "emoji \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 \xe4\xb8\xad\xe6\x96\x87 "
        "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5\x80 done",
        "bad \xff\xe2\x82 \xf0\x9f\x98 tail \xe2\x82",
    };
    for (size_t ti = 0; ti < 2; ti++) {
        bn_tokens v = {0};
        size_t n = strlen(texts[ti]);
        CHECK(c, !bn_tokenizer_encode(t, texts[ti], n, 0, 0, &v, &e));
        bn_detok d;
        CHECK(c, !bn_detok_init(&d, t, 0, &e));
        uint8_t out[512];
        size_t on = 0;
        int chunks_ok = 1;
        for (size_t i = 0; i < v.n; i++) {
            const uint8_t *p;
            size_t len;
            CHECK(c, !bn_detok_feed(&d, v.ids[i], &p, &len, &e));
            if (ti == 0 && !valid_utf8(p, len))
                chunks_ok = 0; /* valid input: every chunk is whole characters */
            memcpy(out + on, p, len);
            on += len;
        }
        const uint8_t *p;
        size_t len;
        bn_detok_flush(&d, &p, &len);
        memcpy(out + on, p, len);
        on += len;
        CHECK(c, chunks_ok);
        CHECK(c, on == n && !memcmp(out, texts[ti], n));
        CHECK(c, bn_detok_feed(&d, 200000, &p, &len, &e) == BN_E_INVALID && e.code == BN_E_INVALID &&
                     strstr(e.msg, "200000"));
        bn_detok_release(&d);
        bn_tokens_free(&v);
    }
    /* control tokens can be skipped */
    bn_detok d;
    const uint8_t *p;
    size_t len;
    bn_detok_init(&d, t, BN_DEC_SKIP_SPECIAL, &e);
    CHECK(c, !bn_detok_feed(&d, 128009, &p, &len, &e) && len == 0);
    bn_detok_release(&d);
}

/* ---------------------------------------------------------- token streams */

static void test_streams(check_ctx *c)
{
    bn_err e;
    for (int binary = 0; binary < 2; binary++) {
        FILE *f = tmpfile();
        bn_tokw w;
        CHECK(c, !bn_tokw_open(&w, f, binary, 0x1234567890abcdefull, 4096, &e));
        uint32_t a[] = {1, 22, 4294967295u}, b[] = {7};
        bn_tokw_put(&w, a, 3, &e);
        bn_tokw_flush(&w, &e); /* mid-record */
        bn_tokw_put(&w, b, 1, &e);
        bn_tokw_end(&w, &e);
        bn_tokw_end(&w, &e); /* an empty record */
        bn_tokw_put(&w, b, 1, &e);
        bn_tokw_end(&w, &e);
        bn_tokw_close(&w);
        fflush(f);
        rewind(f);
        bn_tokr r;
        CHECK(c, !bn_tokr_open(&r, fileno(f), "t", &e));
        CHECK(c, r.binary == binary);
        uint32_t *ids = NULL;
        size_t n = 0, cap = 0;
        CHECK(c, bn_tokr_record(&r, &ids, &n, &cap, &e) == 1 && n == 4 && ids[0] == 1 && ids[2] == 4294967295u &&
                     ids[3] == 7);
        n = 0;
        CHECK(c, bn_tokr_record(&r, &ids, &n, &cap, &e) == 1 && n == 0);
        CHECK(c, bn_tokr_record(&r, &ids, &n, &cap, &e) == 1 && n == 1);
        n = 0;
        CHECK(c, bn_tokr_record(&r, &ids, &n, &cap, &e) == 0);
        if (binary) {
            CHECK(c, bn_tokr_check(&r, 0x1234567890abcdefull, 4096, &e) == 0);
            CHECK(c, bn_tokr_check(&r, 0x1111, 4096, &e) == -1 && strstr(e.msg, "1234567890abcdef"));
            CHECK(c, bn_tokr_check(&r, 0, 0, &e) == 0);
        }
        free(ids);
        bn_tokr_close(&r);
        fclose(f);
    }
    /* malformed input */
    static const struct {
        const char *data;
        size_t n;
        const char *msg;
    } bad[] = {
        {"1 2 x\n", 6, "column 5"},
        {"1 2\n3 99999999999\n", 18, "larger than"},
        {"1\r2\n", 4, "line 1"},
        {"BNTOKEN\0\2\0\0\0 \0\0\0", 16, "cut short in its header (16 of 32 bytes)"},
        {"BNTOKEX\0\1\0\0\0 \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32, "not a token stream"},
        {"BNTOKEN\0\2\0\0\0 \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32, "version 2"},
        {"BNTOKEN\0\1\0\0\0 \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\3\0\0\0\1\0\0\0", 40, "truncated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = tmpfile();
        fwrite(bad[i].data, 1, bad[i].n, f);
        fflush(f);
        rewind(f);
        bn_tokr r;
        uint32_t *ids = NULL;
        size_t n = 0, cap = 0;
        int rc = bn_tokr_open(&r, fileno(f), "s", &e);
        while (rc == 0 && (rc = bn_tokr_record(&r, &ids, &n, &cap, &e)) == 1)
            rc = 0;
        CHECK(c, rc == -1 && strstr(e.msg, bad[i].msg));
        if (!(rc == -1 && strstr(e.msg, bad[i].msg)))
            fprintf(stderr, "case %zu: %s\n", i, e.msg);
        free(ids);
        bn_tokr_close(&r);
        fclose(f);
    }
}

/* ------------------------------------------------- malformed tokenizers */

/* A section of the 256 bytes plus "ab" (id 256), with a regex, a mode and
 * optional merges. */
static bn_meta *byte_section(const char *pre, const char *mode, const uint32_t *merges, size_t n_merges)
{
    bn_meta *s = calloc(1, sizeof *s);
    char *d = malloc(258);
    uint64_t *o = malloc(258 * sizeof *o);
    for (int i = 0; i < 256; i++)
        d[i] = (char)i, o[i] = (uint64_t)i;
    memcpy(d + 256, "ab", 2);
    o[256] = 256;
    o[257] = 258;
    bn_meta_set_strarr_owned(s, "tokenizer.tokens", d, o, 257);
    bn_meta_set_str(s, "tokenizer.pre", pre);
    bn_meta_set_str(s, "tokenizer.merge_mode", mode);
    if (merges)
        bn_meta_set_arr(s, "tokenizer.merges", BN_V_U32, merges, n_merges * 2);
    return s;
}

static const char *new_error(bn_meta *sec, bn_err *e)
{
    bn_meta m = {0};
    bn_meta_set_section(&m, "tokenizer", sec);
    bn_tokenizer *t = bn_tokenizer_new(&m, e);
    bn_meta_free(&m);
    if (t) {
        bn_tokenizer_free(t);
        return "";
    }
    return e->msg;
}

static void test_bad_sections(check_ctx *c)
{
    bn_err e;
    bn_meta m = {0};
    CHECK(c, bn_tokenizer_new(&m, &e) == NULL && strstr(e.msg, "no tokenizer section"));
    /* two tokens only: most bytes have none */
    bn_meta *s = calloc(1, sizeof *s);
    char *d = malloc(2);
    memcpy(d, "ab", 2);
    uint64_t *o = malloc(3 * sizeof *o);
    o[0] = 0, o[1] = 1, o[2] = 2;
    bn_meta_set_strarr_owned(s, "tokenizer.tokens", d, o, 2);
    bn_meta_set_str(s, "tokenizer.pre", "\\s+");
    bn_meta_set_str(s, "tokenizer.merge_mode", "ranks");
    CHECK(c, strstr(new_error(s, &e), "byte 0x00 has no token") != NULL);
    CHECK(c, strstr(new_error(byte_section("\\s+", "wordpiece", NULL, 0), &e), "merge_mode") != NULL);
    CHECK(c, strstr(new_error(byte_section("(unclosed", "ranks", NULL, 0), &e), "does not compile") != NULL);
    uint32_t past[2] = {'a', 999};
    CHECK(c, strstr(new_error(byte_section("\\S+", "merges", past, 1), &e), "past the vocabulary") != NULL);
    uint32_t nomerge[2] = {'a', 'c'};
    CHECK(c, strstr(new_error(byte_section("\\S+", "merges", nomerge, 1), &e), "no token") != NULL);
    CHECK(c, strstr(new_error(byte_section("\\S+", "merges", NULL, 0), &e), "tokenizer.merges") != NULL);
    /* a good one: "ab" merges, ranks and merges mode agree */
    uint32_t ab[2] = {'a', 'b'};
    const char *modes[2] = {"ranks", "merges"};
    for (int k = 0; k < 2; k++) {
        bn_meta mm = {0};
        bn_meta_set_section(&mm, "tokenizer", byte_section("\\S+|\\s+", modes[k], k ? ab : NULL, k));
        bn_tokenizer *t = bn_tokenizer_new(&mm, &e);
        CHECK(c, t != NULL);
        if (t) {
            bn_tokens v = {0};
            CHECK(c, !bn_tokenizer_encode(t, "xabab a\0b", 9, 0, 0, &v, &e));
            uint32_t want[] = {'x', 256, 256, ' ', 'a', 0, 'b'};
            CHECK(c, same_ids(&v, want, 7));
            bn_tokens_clear(&v);
            CHECK(c, bn_tokenizer_encode(t, "x", 1, BN_ENC_BOS, 0, &v, &e) == -1 && strstr(e.msg, "no BOS"));
            bn_tokens_free(&v);
            bn_tokenizer_free(t);
        }
        bn_meta_free(&mm);
    }
    /* the HF loader refuses what it cannot reproduce */
    const char *jsons[][2] = {
        {"{\"model\":{\"type\":\"Unigram\"}}", "Unigram"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Metaspace\"}}",
         "Metaspace"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"byte_fallback\":true}}", "byte_fallback"},
        {"{\"normalizer\":{\"type\":\"NFC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "NFC"},
        {"not json", "tok.json"},
    };
    char path[] = "/tmp/bn-tok-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    for (size_t i = 0; i < sizeof jsons / sizeof *jsons; i++) {
        FILE *f = fopen(path, "w");
        fputs(jsons[i][0], f);
        fclose(f);
        bn_meta sec = {0};
        int rc = section_from_hf_file(path, &sec, &e);
        CHECK(c, rc == -1 && (strstr(e.msg, jsons[i][1]) || (i == 4 && strstr(e.msg, path))));
        if (rc == 0 || !(strstr(e.msg, jsons[i][1]) || (i == 4 && strstr(e.msg, path))))
            fprintf(stderr, "hf case %zu: %s\n", i, rc ? e.msg : "accepted");
        bn_meta_free(&sec);
    }
    /* a rank file with a gap, and one with garbage */
    const char *ranks[][2] = {{"YQ== 0\nYg== 2\n", "rank 1 is missing"}, {"YQ== 0\n!!!\n", "line 2"}};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(path, "w");
        fputs(ranks[i][0], f);
        fclose(f);
        bn_meta sec = {0};
        CHECK(c, bn_tokenizer_section_from_tiktoken(path, &sec, &e) == -1 && strstr(e.msg, ranks[i][1]));
        bn_meta_free(&sec);
    }
    unlink(path);
}

int main(void)
{
    check_ctx c = {0};
    test_gpt2_map(&c);
    test_bpe_naive(&c, TINY "/tokenizer.model");
    test_sources_agree(&c);
    test_streams(&c);
    test_bad_sections(&c);
    if (access(LLAMA3, R_OK) == 0) {
        bn_err e;
        bn_tokenizer_src src = {.vocab = LLAMA3};
        bn_tokenizer *t = bn_tokenizer_load(&src, &e);
        CHECK(&c, t != NULL);
        if (t) {
            test_llama3(&c, t);
            test_decode(&c, t);
            bn_tokenizer_free(t);
        }
        test_bpe_naive(&c, LLAMA3);
    } else {
        printf("test_tokenizer: %s not found, Llama 3 checks skipped\n", LLAMA3);
    }
    return check_done(&c, "test_tokenizer");
}
