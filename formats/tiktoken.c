/* tiktoken.c — a tiktoken rank file (`base64(token bytes) SP rank LF` per
 * line, Llama 3's tokenizer.model) as our `tokenizer` section, with the 256
 * Llama 3 special tokens after the ranks as BitNet's tokenizer.py adds them
 * (shared/data/README.md). Rank = id = merge priority ("ranks" mode). */
#include "tok_section.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SPECIAL 256

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard padded base64; -1 if malformed. */
static long b64_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    if (n % 4)
        return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if ((v[k] = b64_value(s[i + k])) < 0 || pad) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(w >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)w;
    }
    return o;
}

/* The name of Llama 3 special token k (id = ranks + k). */
static void special_name(int k, char *buf, size_t n)
{
    static const char *const fixed[10] = {
        "<|begin_of_text|>",             "<|end_of_text|>",
        "<|reserved_special_token_0|>",  "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>",  "<|reserved_special_token_3|>",
        "<|start_header_id|>",           "<|end_header_id|>",
        "<|reserved_special_token_4|>",  "<|eot_id|>",
    };
    if (k < 10)
        snprintf(buf, n, "%s", fixed[k]);
    else
        snprintf(buf, n, "<|reserved_special_token_%d|>", k - 5);
}

int bn_tokenizer_section_from_tiktoken(const char *rank_file, bn_meta *section, bn_err *e)
{
    bn_map m;
    if (bn_map_file(rank_file, &m, e))
        return -1;
    tok_builder b = {0};
    uint8_t tok[1024];
    uint8_t *seen = NULL;
    size_t line = 0, nseen = 0;
    uint64_t max_rank = 0;
    int rc = -1;
    /* Ranks are 0..max without gaps, one a line, so none can reach the
     * number of lines. A rank past the id bound for that many lines is
     * refused before `seen` grows to it (a hostile rank of two billion
     * would size it in gigabytes); a smaller one is reported below as the
     * gap it leaves. */
    size_t n_lines = 0;
    for (const uint8_t *q = m.data, *end = m.data + m.size; q < end; n_lines++) {
        const uint8_t *nl = memchr(q, '\n', (size_t)(end - q));
        q = nl ? nl + 1 : end;
    }
    for (size_t i = 0; i < m.size; line++) {
        const uint8_t *p = m.data + i, *nl = memchr(p, '\n', m.size - i);
        size_t len = nl ? (size_t)(nl - p) : m.size - i;
        i += len + (nl != NULL);
        if (len && p[len - 1] == '\r')
            len--;
        if (!len)
            continue;
        const uint8_t *sp = memchr(p, ' ', len);
        long n = -1;
        uint64_t rank = 0;
        if (sp && (size_t)(sp - p) <= 4 * sizeof tok / 3)
            n = b64_decode(p, (size_t)(sp - p), tok);
        if (n > 0 && sp + 1 < p + len) {
            for (const uint8_t *d = sp + 1; d < p + len && n > 0; d++) {
                if (*d < '0' || *d > '9' || rank > INT32_MAX / 10)
                    n = -1;
                else
                    rank = rank * 10 + (uint64_t)(*d - '0');
            }
        } else {
            n = -1;
        }
        if (n <= 0 || rank >= INT32_MAX - N_SPECIAL) {
            bn_fail(e, "%s: line %zu: expected 'BASE64 RANK'", rank_file, line + 1);
            goto out;
        }
        if (rank >= tok_id_limit(n_lines)) {
            bn_fail(e, "%s: line %zu: rank %llu is out of range (a file of %zu lines holds ranks 0..%zu)", rank_file,
                    line + 1, (unsigned long long)rank, n_lines, n_lines - 1);
            goto out;
        }
        if (rank >= nseen) {
            size_t nn = (size_t)rank * 2 + 1024;
            uint8_t *ns = realloc(seen, nn);
            if (!ns) {
                bn_fail_code(e, BN_E_NOMEM, "out of memory");
                goto out;
            }
            memset(ns + nseen, 0, nn - nseen);
            seen = ns;
            nseen = nn;
        }
        if (seen[rank]) {
            bn_fail(e, "%s: line %zu: rank %llu appears twice", rank_file, line + 1, (unsigned long long)rank);
            goto out;
        }
        seen[rank] = 1;
        if (rank > max_rank)
            max_rank = rank;
        if (bn_tok_builder_add(&b, (uint32_t)rank, tok, (size_t)n, BN_TOKT_NORMAL, e))
            goto out;
    }
    if (!b.n) {
        bn_fail(e, "%s: no ranks", rank_file);
        goto out;
    }
    /* Ranks are ids: a gap would leave an id with no token. */
    if (max_rank + 1 != b.n) {
        for (uint64_t r = 0; r <= max_rank; r++)
            if (!seen[r]) {
                bn_fail(e, "%s: rank %llu is missing (ranks must be 0..%llu)", rank_file, (unsigned long long)r,
                        (unsigned long long)max_rank);
                goto out;
            }
    }
    for (int k = 0; k < N_SPECIAL; k++) {
        char name[64];
        special_name(k, name, sizeof name);
        if (bn_tok_builder_add(&b, (uint32_t)(max_rank + 1 + (uint64_t)k), name, strlen(name), BN_TOKT_CONTROL, e))
            goto out;
    }
    rc = bn_tok_builder_finish(&b, bn_tok_llama3_regex, "ranks", 1, section, rank_file, e);
out:
    free(seen);
    bn_tok_builder_free(&b);
    bn_unmap(&m);
    return rc;
}
