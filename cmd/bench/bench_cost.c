/* bench_cost.c — what one token costs a loaded model, counted from its
 * tensors: the bytes the roofline divides by and the int8 work it counts
 * (bench.h, bn_bench_cost). Shared by the one-stream tests (bench_e2e.c)
 * and the batched ones (bench_batch.c). */
#include "bench.h"

#include <string.h>

/* Bytes of one row of d elements of a head/embedding type (f32, f16,
 * bf16, and the quantized i8 / q6, whose rows carry their scales). */
static double row_bytes(uint32_t type, uint64_t d)
{
    uint64_t shape[2] = {1, d};
    return (double)bn_type_size(type, 2, shape);
}

void bn_bench_model_cost(const bn_model *m, int kv_f16, bn_bench_cost *c)
{
    const bn_hparams *hp = &m->hp;
    memset(c, 0, sizeof *c);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        const bn_mat *mats[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < 7; i++) {
            uint64_t shape[2] = {mats[i]->rows, mats[i]->cols};
            c->ternary_bytes += (double)bn_type_size(mats[i]->type, 2, shape);
            c->ternary_macs += (double)mats[i]->rows * (double)mats[i]->cols;
        }
    }
    c->head_bytes = (double)hp->n_vocab * row_bytes(m->head_type, hp->n_embd);
    c->head_macs = (double)hp->n_vocab * hp->n_embd;
    c->embd_row = row_bytes(m->embd_type, hp->n_embd);
    double q = (double)hp->n_head * hp->head_dim;
    c->norm_bytes = 4.0 * (hp->n_layer * (2.0 * hp->n_embd + (hp->sub_norms ? q + hp->n_ff : 0)) + hp->n_embd);
    /* K and V of one position in every layer, as attention reads them. */
    c->kv_per_pos = 2.0 * hp->n_layer * (double)hp->n_head_kv * hp->head_dim * (kv_f16 ? 2 : 4);
}
