/* draftmodel.c — opening a draft model (draftmodel.h). */
#include "draftmodel.h"
#include "model.h"
#include "tokenizer.h"

int bn_cli_open_draft(const char *path, const bn_model_params *mp, const bn_model *m, const bn_tokenizer *tok,
                      bn_model **dm, bn_err *e)
{
    if (!(*dm = bn_model_open(path, mp, e)))
        return -1;
    const char *name = (*dm)->src.name;
    if ((*dm)->hp.pooling != BN_POOL_NONE) /* its head gives no next-token logits: every guess would be noise */
        return bn_fail(e, "%s: an embedding model (model.pooling last): a draft must be a language model", name);
    if ((*dm)->hp.n_vocab != m->hp.n_vocab)
        return bn_fail(e, "%s: a vocabulary of %u tokens, the model's has %u: a draft needs the model's tokenizer", name,
                       (*dm)->hp.n_vocab, m->hp.n_vocab);
    bn_err te = {0};
    bn_tokenizer *dt = bn_tokenizer_from_model(*dm, &te);
    if (!dt && te.code != BN_E_UNSUPPORTED) {
        if (e)
            *e = te;
        return -1;
    }
    int same = dt && tok ? bn_tokenizer_hash(dt) == bn_tokenizer_hash(tok) : !dt && !tok;
    bn_tokenizer_free(dt);
    if (!same)
        return bn_fail(e, "%s: its tokenizer is not the model's: a draft needs the model's tokenizer", name);
    return 0;
}
