/* gguf_vocab.c — GPT-2's byte-to-unicode bijection, and the conversion of a
 * GGUF vocabulary (tokenizer.ggml.tokens / merges / token_type, stored in
 * that unicode form) into our `tokenizer` section of raw bytes.
 *
 * GPT-2 stores byte-level tokens as text by giving each byte a printable
 * code point: bytes that are printable Latin-1 (0x21-0x7E, 0xA1-0xAC,
 * 0xAE-0xFF) stand for themselves, the other 68 take U+0100.. in byte
 * order (so space is U+0120 'Ġ' and LF U+010A 'Ċ'). */
#include "tok_section.h"

#include <stdlib.h>
#include <string.h>

static int printable(uint32_t b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t bn_gpt2_byte_to_cp(uint8_t b)
{
    if (printable(b))
        return b;
    if (b <= 0x20)
        return 0x100 + b;               /* 0x00-0x20: 33 code points */
    if (b >= 0x7F && b <= 0xA0)
        return 0x100 + 33 + (b - 0x7F); /* 0x7F-0xA0: the next 34 */
    return 0x100 + 33 + 34;             /* 0xAD, the last one */
}

int bn_gpt2_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return printable(cp) ? (int)cp : -1;
    if (cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp < 0x100 + 67)
        return (int)(cp - 0x100 - 33 + 0x7F);
    return cp == 0x100 + 67 ? 0xAD : -1;
}

long bn_gpt2_decode(const char *s, size_t len, uint8_t *out)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i++];
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < len && (p[i + 1] & 0xC0) == 0x80) {
            /* every code point of the map is below U+0144: two bytes at most */
            cp = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1;
        }
        int b = bn_gpt2_cp_to_byte(cp);
        if (b < 0)
            return -1;
        out[o++] = (uint8_t)b;
    }
    return (long)o;
}

/* "<0x0A>": a byte token in SentencePiece form. */
static int hex_byte(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static uint32_t type_at(const bn_kv *tt, uint64_t i)
{
    if (!tt)
        return BN_TOKT_NORMAL;
    if (tt->type == BN_V_BYTES)
        return ((const uint8_t *)tt->data)[i];
    if (tt->elem_type == BN_V_U64 || tt->elem_type == BN_V_I64)
        return (uint32_t)((const uint64_t *)tt->data)[i];
    if (tt->elem_type == BN_V_BOOL)
        return ((const uint8_t *)tt->data)[i];
    return ((const uint32_t *)tt->data)[i];
}

int bn_gguf_pre_is_llama3(const char *pre)
{
    /* The official BitNet GGUF has no tokenizer.ggml.pre; its vocabulary is
     * Llama 3's. Falcon3's and Falcon-E's converters name their own
     * (bitnet.cpp detects them by hash) but split with Llama 3's pattern and
     * ignore merges as llama.cpp's LLAMA3 pre-tokenizer does. */
    static const char *const names[] = {"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon_e"};
    for (size_t i = 0; pre && i < sizeof names / sizeof *names; i++)
        if (!strcmp(pre, names[i]))
            return 1;
    return !pre;
}

static const char *regex_for(const char *pre, int *llama3, bn_err *e)
{
    *llama3 = 0;
    if (bn_gguf_pre_is_llama3(pre)) {
        *llama3 = 1;
        return bn_tok_llama3_regex;
    }
    if (!strcmp(pre, "gpt2") || !strcmp(pre, "gpt-2"))
        return bn_tok_gpt2_regex;
    if (!strcmp(pre, "qwen2")) /* BitNet-embedding-0.6B's GGUF (Qwen3's vocabulary) */
        return bn_tok_qwen2_regex;
    bn_fail(e, "tokenizer.ggml.pre '%s' is not supported (known: llama-bpe, falcon3, falcon_e, gpt2, qwen2)", pre);
    return NULL;
}

int bn_tokenizer_section_from_gguf(const bn_kv *tokens, const bn_kv *merges, const bn_kv *token_type,
                                   const char *pre, bn_meta *section, bn_err *e)
{
    if (!tokens || tokens->type != BN_V_STRARR || !tokens->count)
        return bn_fail(e, "tokenizer.ggml.tokens: missing or not a string array");
    if (!merges || merges->type != BN_V_STRARR)
        return bn_fail(e, "tokenizer.ggml.merges: missing (a byte-level BPE needs its merges)");
    if (token_type && !((token_type->type == BN_V_ARR && token_type->count == tokens->count) ||
                        (token_type->type == BN_V_BYTES && token_type->count == tokens->count)))
        return bn_fail(e, "tokenizer.ggml.token_type: not one entry per token");
    int llama3;
    const char *regex = regex_for(pre, &llama3, e);
    if (!regex)
        return -1;
    tok_builder b = {0};
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    int rc = -1;
    for (uint64_t i = 0; i < tokens->count; i++) {
        const char *s = (const char *)tokens->data + tokens->offsets[i];
        size_t n = tokens->offsets[i + 1] - tokens->offsets[i];
        uint32_t ty = type_at(token_type, i);
        if (ty < BN_TOKT_NORMAL || ty > BN_TOKT_BYTE) {
            bn_fail(e, "tokenizer.ggml.token_type: token %llu has type %u", (unsigned long long)i, ty);
            goto out;
        }
        if (n > bufcap) {
            bufcap = n * 2;
            uint8_t *nb = realloc(buf, bufcap);
            if (!nb) {
                bn_fail_code(e, BN_E_NOMEM, "out of memory");
                goto out;
            }
            buf = nb;
        }
        long len;
        int hb;
        if (ty == BN_TOKT_CONTROL || ty == BN_TOKT_USER) {
            /* llama.cpp keeps special tokens' text as is, not byte-mapped */
            memcpy(buf, s, n);
            len = (long)n;
        } else if (ty == BN_TOKT_BYTE && (hb = hex_byte(s, n)) >= 0) {
            buf[0] = (uint8_t)hb;
            len = 1;
        } else if ((len = bn_gpt2_decode(s, n, buf)) < 0) {
            bn_fail(e, "tokenizer.ggml.tokens: token %llu '%.*s' is not in GPT-2 byte-level form",
                    (unsigned long long)i, (int)(n > 40 ? 40 : n), s);
            goto out;
        }
        if (ty == BN_TOKT_BYTE)
            ty = BN_TOKT_NORMAL; /* a byte is an ordinary mergeable token here */
        if (bn_tok_builder_add(&b, (uint32_t)i, buf, (size_t)len, (uint8_t)ty, e))
            goto out;
    }
    for (uint64_t i = 0; i < merges->count; i++) {
        const char *s = (const char *)merges->data + merges->offsets[i];
        size_t n = merges->offsets[i + 1] - merges->offsets[i];
        const char *sp = memchr(s, ' ', n);
        if (n + 1 > bufcap) {
            bufcap = n * 2 + 2;
            uint8_t *nb = realloc(buf, bufcap);
            if (!nb) {
                bn_fail_code(e, BN_E_NOMEM, "out of memory");
                goto out;
            }
            buf = nb;
        }
        long la, lb;
        int64_t a = -1, c = -1;
        if (sp && !memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)) && (la = bn_gpt2_decode(s, (size_t)(sp - s), buf)) > 0 &&
            (a = bn_tok_builder_find(&b, buf, (size_t)la)) >= 0 &&
            (lb = bn_gpt2_decode(sp + 1, (size_t)(s + n - sp - 1), buf)) > 0)
            c = bn_tok_builder_find(&b, buf, (size_t)lb);
        if (a < 0 || c < 0) {
            bn_fail(e, "tokenizer.ggml.merges: merge %llu '%.*s' does not name two tokens", (unsigned long long)i,
                    (int)(n > 40 ? 40 : n), s);
            goto out;
        }
        if (bn_tok_builder_merge(&b, (uint32_t)a, (uint32_t)c, e))
            goto out;
    }
    /* llama.cpp's llama-bpe emits a whole piece that is a token as is. */
    rc = bn_tok_builder_finish(&b, regex, "merges", llama3, section, "GGUF vocabulary", e);
out:
    free(buf);
    bn_tok_builder_free(&b);
    return rc;
}
