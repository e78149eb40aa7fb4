/* tok_api.c — the tokenizer's part of the public API (bn.h): encoding into
 * a caller's buffer, chat rendering from {role, content} pairs, and the
 * detokenizer as a handle. The work is done by the internal calls
 * (bn_tokenizer_encode, bn_tokenizer_chat, bn_detok_*). */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((int)BN_DETOK_SKIP_SPECIAL == (int)BN_DEC_SKIP_SPECIAL &&
                   (int)BN_DETOK_TEXT_START == (int)BN_DEC_TEXT_START,
               "the public and internal detokenizer flags agree");

/* Hands ids to a caller's buffer: all of them counted, as many as fit stored. */
static void hand_out(const bn_tokens *v, uint32_t *ids, size_t cap, size_t *n_ids)
{
    if (ids && cap && v->n) /* no ids: v->ids may be NULL, which memcpy may not take */
        memcpy(ids, v->ids, (v->n < cap ? v->n : cap) * sizeof *ids);
    *n_ids = v->n;
}

int bn_tokenize(bn_tokenizer *t, const void *text, size_t len, unsigned flags, uint32_t *ids, size_t cap,
                size_t *n_ids, bn_err *e)
{
    bn_err own;
    e = e ? e : &own; /* the status is e->code, whether the caller wants the message or not */
    if (!t || !n_ids || (len && !text) || (cap && !ids))
        return bn_fail_code(e, BN_E_INVALID, "bn_tokenize: %s is NULL",
                            !t ? "the tokenizer" : !n_ids ? "n_ids" : len && !text ? "text" : "ids");
    if (flags & ~(unsigned)(BN_TOKENIZE_BOS | BN_TOKENIZE_SPECIAL))
        return bn_fail_code(e, BN_E_INVALID, "bn_tokenize: unknown flags 0x%x", flags);
    unsigned enc = ((flags & BN_TOKENIZE_BOS) && bn_tokenizer_add_bos(t) ? BN_ENC_BOS : 0) |
                   (flags & BN_TOKENIZE_SPECIAL ? BN_ENC_SPECIAL : 0);
    bn_tokens v = {0};
    int rc = bn_tokenizer_encode(t, text, len, enc, 0, &v, e);
    if (!rc)
        hand_out(&v, ids, cap, n_ids);
    bn_tokens_free(&v);
    return rc ? e->code : BN_OK;
}

int bn_chat_render(bn_tokenizer *t, const bn_chat_message *msgs, size_t n, int add_assistant, uint32_t *ids,
                   size_t cap, size_t *n_ids, bn_err *e)
{
    static const struct {
        const char *name;
        bn_role role;
    } roles[] = {{"system", BN_ROLE_SYSTEM}, {"user", BN_ROLE_USER}, {"assistant", BN_ROLE_ASSISTANT}};
    bn_err own;
    e = e ? e : &own; /* the status is e->code, whether the caller wants the message or not */
    if (!t || !n_ids || (n && !msgs) || (cap && !ids))
        return bn_fail_code(e, BN_E_INVALID, "bn_chat_render: %s is NULL",
                            !t ? "the tokenizer" : !n_ids ? "n_ids" : n && !msgs ? "msgs" : "ids");
    const char *format = bn_tokenizer_chat_format(t);
    if (!bn_tokenizer_chat_renders(format))
        return bn_fail_code(e, BN_E_UNSUPPORTED, "the model has no chat format (chat.format is '%s')", format);
    bn_chat_msg *m = calloc(n ? n : 1, sizeof *m);
    if (!m)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t r = 0;
        while (r < sizeof roles / sizeof *roles && !(msgs[i].role && !strcmp(msgs[i].role, roles[r].name)))
            r++;
        if (r == sizeof roles / sizeof *roles || !msgs[i].content)
            rc = bn_fail_code(e, BN_E_INVALID, "message %zu: %s", i + 1,
                              !msgs[i].role ? "the role is NULL"
                              : r == sizeof roles / sizeof *roles
                                  ? "the role must be \"system\", \"user\" or \"assistant\""
                                  : "the content is NULL");
        else
            m[i] = (bn_chat_msg){roles[r].role, (const uint8_t *)msgs[i].content, strlen(msgs[i].content), 0};
    }
    bn_tokens v = {0};
    if (!rc && bn_tokenizer_chat(t, m, n, add_assistant != 0, &v, e))
        rc = e->code;
    if (!rc)
        hand_out(&v, ids, cap, n_ids);
    bn_tokens_free(&v);
    free(m);
    return rc;
}

bn_detok *bn_detok_new(const bn_tokenizer *t, unsigned flags, bn_err *e)
{
    if (!t || (flags & ~(unsigned)(BN_DETOK_SKIP_SPECIAL | BN_DETOK_TEXT_START))) {
        bn_fail_code(e, BN_E_INVALID, "bn_detok_new: %s", t ? "unknown flags" : "the tokenizer is NULL");
        return NULL;
    }
    bn_detok *d = malloc(sizeof *d);
    if (!d) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    if (bn_detok_init(d, t, flags, e)) {
        if (e)
            e->code = BN_E_NOMEM;
        free(d);
        return NULL;
    }
    return d;
}

void bn_detok_free(bn_detok *d)
{
    if (!d)
        return;
    bn_detok_release(d);
    free(d);
}
