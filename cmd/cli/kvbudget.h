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

struct bn_prog;
/* A budget that holds fewer positions than *n_ctx cuts the context to
 * what it holds (one sequence must always fit: longer prompts are then
 * refused), with a note on stderr naming flag (the option that set the
 * budget). Returns 0, or -1 after reporting when it holds not one block
 * (model names the model in that message). */
int bn_cli_kv_fit(const struct bn_prog *prog, const char *model, uint64_t budget, uint64_t block_bytes,
                  uint32_t *n_ctx);

#endif
