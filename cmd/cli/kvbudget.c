/* kvbudget.c — the default KV budget of bn-infer and bn-serve. */
#include "kvbudget.h"
#include "cli.h"
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

int bn_cli_kv_fit(const bn_prog *prog, const char *model, uint64_t budget, uint64_t block_bytes, uint32_t *n_ctx)
{
    uint64_t positions = budget / block_bytes * BN_KV_BLOCK;
    if (positions == 0) {
        bn_report(prog, "--kv-budget %llu: less than one KV block of %llu bytes (%d positions of %s)",
                  (unsigned long long)budget, (unsigned long long)block_bytes, BN_KV_BLOCK, model);
        return -1;
    }
    if (positions < *n_ctx) {
        char size[32];
        bn_report(prog, "note: --kv-budget %s holds %llu positions: the context is cut to %llu",
                  bn_cli_size(budget, size), (unsigned long long)positions, (unsigned long long)positions);
        *n_ctx = (uint32_t)positions;
    }
    return 0;
}
