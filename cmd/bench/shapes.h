/* shapes.h — the named model shapes bn benchmarks and tests use: the same
 * table as tests/ref/gen_checkpoint.py (SHAPES), so a synthetic model of a
 * given name has the same hyper-parameters whether Python wrote it as a
 * checkpoint or bn-bench generated it in memory. */
#ifndef BN_SHAPES_H
#define BN_SHAPES_H

#include "cli.h"
#include "formats.h"

typedef struct bn_shape {
    const char *name;
    uint32_t n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_theta;
    const char *note;
} bn_shape;

/* The i-th shape in table order, NULL past the end. */
const bn_shape *bn_shape_at(size_t i);
/* By name (exact), NULL when unknown. */
const bn_shape *bn_shape_find(const char *name);
/* "tiny, tiny256, ..." for messages. */
void bn_shape_names(char *buf, size_t n);

/* The hyper-parameters of a synthetic model of this shape: the BitNet
 * b1.58 2B4T architecture (relu², sub-norms, NeoX RoPE, tied embeddings). */
void bn_shape_hparams(const bn_shape *s, bn_hparams *hp);
/* Parameters (embedding + projections + norms), as the model cards count
 * them: 2,412,820,480 for 2b4t. */
uint64_t bn_shape_params(const bn_shape *s);
/* Ternary projection parameters (the int8 MACs per token of a forward). */
uint64_t bn_shape_ternary_params(const bn_shape *s);

#endif
