/* kvbudget.h — how much KV cache memory a program takes when --kv-budget
 * does not say: one rule, shared by bn-infer and bn-serve. Program-side:
 * not part of libbn. */
#ifndef BN_KVBUDGET_H
#define BN_KVBUDGET_H

#include "bn.h"

/* Bytes of one KV block (BN_KV_BLOCK positions of every layer, K and V;
 * kv_f16: halves, otherwise floats). */
uint64_t bn_cli_kv_block_bytes(const bn_model *m, int kv_f16);
/* The KV budget without --kv-budget: half of the memory available when
 * the program started (mem_available, read before the model was loaded)
 * less the model's weights, at least one full context (the blocks of
 * block_bytes that n_ctx positions take: one sequence never waits for
 * memory), at most a full context for each of the n_seq sequences (all
 * they can hold). MemAvailable unknown (0): the latter. */
uint64_t bn_cli_default_kv_budget(uint64_t mem_available, uint64_t weights, uint64_t block_bytes, uint32_t n_ctx,
                                  uint32_t n_seq);

#endif
