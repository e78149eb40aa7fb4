/* tok_vocab.c — looking a token up by its bytes in the vocabulary map
 * that tokenizer.c builds (tok_vslot, tok_impl.h). */
#include "tok_impl.h"

#include <string.h>

int32_t bn_tok_vocab_find(const bn_tokenizer *t, const uint8_t *p, size_t n)
{
    uint64_t head = head8(p, n), h = hash_key(p, n, head);
    uint32_t meta = slot_meta(n, h);
    for (size_t i = (size_t)h & t->vmask;; i = (i + 1) & t->vmask) {
        const tok_vslot *s = &t->vtab[i];
        if (!s->id1)
            return -1;
        if (s->meta == meta && s->head == head) {
            uint32_t id = s->id1 - 1;
            if (n <= 8 || (t->off[id + 1] - t->off[id] == n && !memcmp(t->blob + t->off[id] + 8, p + 8, n - 8)))
                return (int32_t)id;
        }
    }
}

