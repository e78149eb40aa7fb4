/* draftmodel.h — the draft model of speculative decoding (--draft MODEL),
 * opened and checked the same way by bn-infer and bn-serve. Program-side:
 * not part of libbn. */
#ifndef BN_DRAFTMODEL_H
#define BN_DRAFTMODEL_H

#include "bn.h"

/* Opens path as a draft for m, whose tokenizer is tok (NULL: m has none):
 * its vocabulary and its tokenizer must be m's (the same ids must mean the
 * same text). *dm gets the model (the caller closes it, also on failure);
 * -1 with e's one-line reason (naming the file) otherwise. */
int bn_cli_open_draft(const char *path, const bn_model_params *mp, const bn_model *m, const bn_tokenizer *tok,
                      bn_model **dm, bn_err *e);

#endif
