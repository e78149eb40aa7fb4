/* kvbudget.c — the default KV budget of bn-infer and bn-serve. */
#include "kvbudget.h"
#include "model.h"

uint64_t bn_cli_kv_block_bytes(const bn_model *m, int kv_f16)
{
    return 2ull * m->hp.n_layer * m->hp.n_head_kv * m->hp.head_dim * BN_KV_BLOCK * (kv_f16 ? 2 : 4);
}

uint64_t bn_cli_default_kv_budget(uint64_t mem_available, uint64_t weights, uint64_t block_bytes, uint32_t n_ctx,
                                  uint32_t n_seq)
{
    uint64_t one_ctx = ((uint64_t)n_ctx + BN_KV_BLOCK - 1) / BN_KV_BLOCK * block_bytes, most = one_ctx * n_seq;
    if (!mem_available)
        return most;
    uint64_t half = mem_available > weights ? (mem_available - weights) / 2 : 0;
    return half < one_ctx ? one_ctx : half > most ? most : half;
}
