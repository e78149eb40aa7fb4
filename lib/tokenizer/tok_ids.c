/* tok_ids.c — growable token id lists (bn_tokens, tokenizer.h). */
#include "tok_impl.h"

#include <stdlib.h>

int bn_tokens_push(bn_tokens *v, uint32_t id, uint64_t off)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        uint32_t *ids = realloc(v->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        v->ids = ids;
        if (v->want_offsets) {
            uint64_t *offs = realloc(v->offs, cap * sizeof *offs);
            if (!offs)
                return -1;
            v->offs = offs;
        }
        v->cap = cap;
    }
    if (v->want_offsets)
        v->offs[v->n] = off;
    v->ids[v->n++] = id;
    return 0;
}

void bn_tokens_clear(bn_tokens *v)
{
    v->n = 0;
}

void bn_tokens_free(bn_tokens *v)
{
    free(v->ids);
    free(v->offs);
    v->ids = NULL;
    v->offs = NULL;
    v->n = v->cap = 0;
}

