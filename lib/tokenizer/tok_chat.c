/* tok_chat.c — role-tagged conversations: parsing the documented input form
 * and rendering it with the model's chat format, token for token as the
 * reference code builds it (formats.md §7.4): headers and contents are
 * encoded separately (or, BN_CHAT_WHOLE, as one text, as Hugging Face's
 * template is tokenized), contents are stripped like Python's str.strip(),
 * and special ids are inserted structurally, never parsed out of text.
 * Falcon3's format has no training-code rendering: it is its template's
 * (below), whichever encoding is set. */
#include "buf.h"
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* --------------------------------------------------------------- parse */

static const struct {
    const char *tag;
    size_t len;
    bn_role role;
} roles[] = {
    {"system:", 7, BN_ROLE_SYSTEM},
    {"user:", 5, BN_ROLE_USER},
    {"assistant:", 10, BN_ROLE_ASSISTANT},
};

int bn_chat_parse(const uint8_t *text, size_t n, bn_chat_msg **msgs, size_t *n_msgs, bn_err *e)
{
    bn_chat_msg *v = NULL;
    size_t nv = 0, cap = 0, line = 0;
    for (size_t i = 0; i < n; line++) {
        const uint8_t *nl = memchr(text + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (end > i && text[end - 1] == '\r')
            end--; /* a CRLF line ends before its CR */
        int r = -1;
        for (size_t k = 0; k < sizeof roles / sizeof *roles; k++)
            if (end - i >= roles[k].len && !strncasecmp((const char *)text + i, roles[k].tag, roles[k].len)) {
                r = (int)k;
                break;
            }
        if (r >= 0) {
            if (nv == cap) {
                cap = cap ? cap * 2 : 8;
                bn_chat_msg *nm = realloc(v, cap * sizeof *nm);
                if (!nm) {
                    free(v);
                    return bn_fail_code(e, BN_E_NOMEM, "out of memory");
                }
                v = nm;
            }
            size_t from = i + roles[r].len;
            while (from < end && (text[from] == ' ' || text[from] == '\t'))
                from++; /* "role: text": the blanks after the colon only separate */
            v[nv++] = (bn_chat_msg){.role = roles[r].role, .text = text + from, .len = end - from, .off = from};
        } else if (nv) {
            /* a continuation line: the message runs on to this line's end */
            v[nv - 1].len = end - (size_t)(v[nv - 1].text - text);
        } else {
            size_t k = i;
            while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
                k++;
            if (k < end) {
                free(v);
                return bn_fail(e, "line %zu: expected 'system:', 'user:' or 'assistant:' before any text", line + 1);
            }
        }
        i = nl ? (size_t)(nl - text) + 1 : n;
    }
    *msgs = v;
    *n_msgs = nv;
    return 0;
}

/* -------------------------------------------------------------- strip */

/* Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
 * That is Unicode White_Space plus U+001C..U+001F. */
static int py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static uint32_t decode_at(const uint8_t *p, size_t k)
{
    switch (k) {
    case 1: return p[0];
    case 2: return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    case 3: return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    default: return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    }
}

static void strip(const uint8_t *p, size_t n, size_t *from, size_t *to)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t k = bn_utf8_char(p + a, b - a);
        if (!k || !py_space(decode_at(p + a, k)))
            break;
        a += k;
    }
    while (b > a) {
        size_t s = b - 1; /* find the start of the last character */
        while (s > a && b - s < 4 && (p[s] & 0xC0) == 0x80)
            s--;
        size_t k = bn_utf8_char(p + s, b - s);
        if (k != b - s || !py_space(decode_at(p + s, k)))
            break;
        b = s;
    }
    *from = a;
    *to = b;
}

/* ------------------------------------------------------------- render */

static int push(bn_tokens *out, int32_t id, bn_err *e)
{
    return bn_tokens_push(out, (uint32_t)id, BN_TOK_NO_OFFSET) ? bn_fail_code(e, BN_E_NOMEM, "out of memory") : 0;
}

static int text(bn_tokenizer *t, const char *s, bn_tokens *out, bn_err *e)
{
    /* Header text is not from the input: no offsets. */
    size_t first = out->n;
    if (bn_tokenizer_encode(t, s, strlen(s), 0, 0, out, e))
        return -1;
    if (out->want_offsets)
        for (size_t i = first; i < out->n; i++)
            out->offs[i] = BN_TOK_NO_OFFSET;
    return 0;
}

static int32_t need(bn_tokenizer *t, const char *s, bn_err *e)
{
    int32_t id = bn_tokenizer_find(t, s, strlen(s));
    if (id < 0)
        bn_fail_code(e, BN_E_UNSUPPORTED, "chat format '%s' needs the token %s, which the vocabulary lacks", t->chat_format,
                     s);
    return id;
}

/* BN_CHAT_WHOLE: header and content (at input offset off) as one text, as
 * a rendered template is tokenized; a token that starts in the header has
 * no offset in the input. */
static int whole(bn_tokenizer *t, const char *hdr, const uint8_t *content, size_t len, uint64_t off, bn_tokens *out,
                 bn_err *e)
{
    size_t h = strlen(hdr), first = out->n;
    uint8_t *buf = malloc(h + len + 1);
    if (!buf)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    memcpy(buf, hdr, h);
    memcpy(buf + h, content, len);
    int rc = bn_tokenizer_encode(t, buf, h + len, 0, 0, out, e); /* offsets into buf */
    free(buf);
    if (!rc && out->want_offsets)
        for (size_t i = first; i < out->n; i++)
            out->offs[i] = out->offs[i] < h ? BN_TOK_NO_OFFSET : off + (out->offs[i] - h);
    return rc;
}

/* ------------------------------------------------------------- falcon3 */

/* Falcon3's template (its tokenizer_config.json, without tools) renders
 *   <|system|>\n S \n   <|user|>\n U \n   <|assistant|>\n A <eos>\n
 * (no \n after the last message's <eos>), contents as given (no strip),
 * then <|assistant|>\n after the last message when asked; it writes no BOS,
 * and transformers tokenizes the result without adding one. The rendered
 * text is tokenized as a whole between the tokens the vocabulary holds as
 * added ones (a role tag only when it is one): a run collects that text,
 * and the spans of it that are message contents keep their input offsets. */
typedef struct {
    size_t at, len;
    uint64_t off;
} span;

/* The rendered text since the last added token, and the spans of it that
 * are message contents (span records). */
typedef struct {
    bn_buf text, spans;
} run;

static int run_add(run *r, const void *p, size_t len, int content, uint64_t off, bn_err *e)
{
    if (content)
        bn_buf_put(&r->spans, &(span){r->text.n, len, off}, sizeof(span));
    bn_buf_put(&r->text, p, len);
    return r->text.oom || r->spans.oom ? bn_fail_code(e, BN_E_NOMEM, "out of memory") : 0;
}

/* Encodes the run collected so far; a token keeps an offset when it lies
 * wholly in a content span (one that runs on into template text, as a
 * "\n\n" token can, has none). Tokens and spans are both in order. */
static int run_flush(bn_tokenizer *t, run *r, bn_tokens *out, bn_err *e)
{
    size_t first = out->n, k = 0, n_spans = r->spans.n / sizeof(span);
    const span *sp = (const span *)r->spans.p;
    if (r->text.n && bn_tokenizer_encode(t, r->text.p, r->text.n, 0, 0, out, e))
        return -1;
    if (out->want_offsets)
        for (size_t i = first; i < out->n; i++) {
            uint64_t o = out->offs[i], mapped = BN_TOK_NO_OFFSET;
            size_t len = 0;
            bn_tokenizer_piece(t, out->ids[i], &len);
            while (k < n_spans && sp[k].at + sp[k].len <= o)
                k++;
            if (k < n_spans && o >= sp[k].at && o + len <= sp[k].at + sp[k].len)
                mapped = sp[k].off + (o - sp[k].at);
            out->offs[i] = mapped;
        }
    r->text.n = 0;
    r->spans.n = 0;
    return 0;
}

/* A role tag: its id when the vocabulary has it as an added token (the
 * run so far is encoded first), else its text joins the run. */
static int tag(bn_tokenizer *t, run *r, const char *s, bn_tokens *out, bn_err *e)
{
    int32_t id = bn_tokenizer_find(t, s, strlen(s));
    int ty = id >= 0 ? bn_tokenizer_type(t, (uint32_t)id) : 0;
    if (ty == BN_TOKT_CONTROL || ty == BN_TOKT_USER)
        return run_flush(t, r, out, e) || push(out, id, e) ? -1 : 0;
    return run_add(r, s, strlen(s), 0, 0, e);
}

static int chat_falcon3(bn_tokenizer *t, const bn_chat_msg *msgs, size_t n, int gen_prompt, bn_tokens *out,
                        bn_err *e)
{
    static const char *const role_tag[] = {"<|system|>", "<|user|>", "<|assistant|>"};
    if (t->eos < 0)
        return bn_fail_code(e, BN_E_UNSUPPORTED, "chat format 'falcon3' needs an EOS token; the model has none");
    run r = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int assistant = msgs[i].role == BN_ROLE_ASSISTANT, last = i + 1 == n;
        rc = tag(t, &r, role_tag[msgs[i].role], out, e) || run_add(&r, "\n", 1, 0, 0, e) ||
             run_add(&r, msgs[i].text, msgs[i].len, 1, msgs[i].off, e);
        if (!rc && assistant)
            rc = run_flush(t, &r, out, e) || push(out, t->eos, e) || (!last && run_add(&r, "\n", 1, 0, 0, e));
        else if (!rc)
            rc = run_add(&r, "\n", 1, 0, 0, e);
        if (!rc && last && gen_prompt) /* the template asks inside its loop: none for no message */
            rc = tag(t, &r, role_tag[BN_ROLE_ASSISTANT], out, e) || run_add(&r, "\n", 1, 0, 0, e);
    }
    if (!rc)
        rc = run_flush(t, &r, out, e);
    free(r.text.p);
    free(r.spans.p);
    return rc;
}

/* ------------------------------------------------------ bitnet, llama3 */

/* A message's content as rendered: stripped like str.strip(), or (keep:
 * a Llama 3.1-style template without `|trim`) as given. */
static void content_span(const bn_chat_msg *m, int keep, size_t *a, size_t *b)
{
    if (keep) {
        *a = 0;
        *b = m->len;
    } else {
        strip(m->text, m->len, a, b);
    }
}

/* Llama 3.1's and 3.2's templates open every conversation with a system
 * message, the first message's content (stripped) when that is a system
 * one, after a date block:
 *   Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n
 * 3.1's date is the template's fixed date_string (t->chat_fixed_date);
 * 3.2's is strftime_now("%d %b %Y"), the local date
 * where the renderer has that function (transformers and llama.cpp do).
 * bn_tokenizer_set_chat_date sets another. The month in English whatever
 * the locale, as Python's strftime gives it in the C locale. */
static void date_block(const bn_tokenizer *t, char *out, size_t cap)
{
    static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char today[32];
    snprintf(today, sizeof today, "%s", t->chat_date[0] ? t->chat_date : t->chat_fixed_date);
    if (!t->chat_date[0] && !strcmp(t->chat_format, "llama3.2")) {
        time_t now = time(NULL);
        struct tm tm;
        if (now != (time_t)-1 && localtime_r(&now, &tm))
            snprintf(today, sizeof today, "%02d %s %d", tm.tm_mday, month[tm.tm_mon], tm.tm_year + 1900);
    }
    snprintf(out, cap, "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n", today);
}

int bn_tokenizer_chat_renders(const char *format)
{
    static const char *const known[] = {"bitnet", "llama3", "llama3.1", "llama3.2", "falcon3"};
    for (size_t i = 0; format && i < sizeof known / sizeof *known; i++)
        if (!strcmp(format, known[i]))
            return 1;
    return 0;
}

int bn_tokenizer_chat(bn_tokenizer *t, const bn_chat_msg *msgs, size_t n, int gen_prompt, bn_tokens *out,
                      bn_err *e)
{
    static const char *const bitnet_hdr[] = {"System: ", "User: ", "Assistant: "};
    static const char *const llama3_role[] = {"system", "user", "assistant"};
    if (!bn_tokenizer_chat_renders(t->chat_format))
        return bn_fail_code(e, BN_E_UNSUPPORTED, "the model has no chat format (chat.format is '%s')", t->chat_format);
    if (!strcmp(t->chat_format, "falcon3"))
        return chat_falcon3(t, msgs, n, gen_prompt, out, e);
    int dated = !strcmp(t->chat_format, "llama3.1") || !strcmp(t->chat_format, "llama3.2");
    int llama3 = dated || !strcmp(t->chat_format, "llama3");
    if (t->bos < 0)
        return bn_fail_code(e, BN_E_UNSUPPORTED, "chat format '%s' needs a BOS token; the model has none",
                            t->chat_format);
    int32_t eot = need(t, "<|eot_id|>", e), sh = 0, eh = 0;
    if (eot < 0)
        return -1;
    if (llama3 && ((sh = need(t, "<|start_header_id|>", e)) < 0 || (eh = need(t, "<|end_header_id|>", e)) < 0))
        return -1;
    /* whole: the templates write BOS before their first message (Llama 3.1's
     * and 3.2's before their system block, always there): none for an
     * empty conversation */
    if ((!t->chat_whole || n || dated) && push(out, t->bos, e))
        return -1;
    size_t first = 0;
    if (dated) {
        /* the block is text of the template's, the system content the
         * input's (with its offsets) */
        char block[128];
        date_block(t, block, sizeof block);
        int sys = n && msgs[0].role == BN_ROLE_SYSTEM;
        size_t a = 0, b = 0;
        if (sys)
            content_span(&msgs[0], t->chat_keep_system, &a, &b);
        char hdr[sizeof block + 2];
        snprintf(hdr, sizeof hdr, "%s%s", t->chat_whole ? "\n\n" : "", block);
        if (push(out, sh, e) || text(t, "system", out, e) || push(out, eh, e) ||
            (!t->chat_whole && text(t, "\n\n", out, e)) ||
            whole(t, hdr, sys ? msgs[0].text + a : (const uint8_t *)"", b - a, sys ? msgs[0].off + a : 0, out, e) ||
            push(out, eot, e))
            return -1;
        first = sys;
    }
    for (size_t i = first; i <= n; i++) {
        if (i == n && !gen_prompt)
            break;
        bn_role r = i < n ? msgs[i].role : BN_ROLE_ASSISTANT;
        if (llama3) {
            if (push(out, sh, e) || text(t, llama3_role[r], out, e) || push(out, eh, e) ||
                ((!t->chat_whole || i == n) && text(t, "\n\n", out, e)))
                return -1;
        } else if ((!t->chat_whole || i == n) && text(t, bitnet_hdr[r], out, e)) {
            return -1; /* whole: the header goes with its content (below) */
        }
        if (i == n)
            break;
        size_t a, b;
        content_span(&msgs[i], dated && t->chat_keep_messages, &a, &b);
        if ((t->chat_whole ? whole(t, llama3 ? "\n\n" : bitnet_hdr[r], msgs[i].text + a, b - a, msgs[i].off + a, out, e)
                           : bn_tokenizer_encode(t, msgs[i].text + a, b - a, 0, msgs[i].off + a, out, e)) ||
            push(out, eot, e))
            return -1;
    }
    return 0;
}
