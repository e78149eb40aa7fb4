/* test_kvbudget.c — the default KV budget bn-infer and bn-serve share
 * (cmd/cli/kvbudget.c): half of the memory the weights leave, never under
 * one context in whole blocks, never over one context a sequence. */
#include "check.h"
#include "kvbudget.h"
#include "model.h"

int main(void)
{
    check_ctx c = {0};
    const uint64_t block = 1000, MiB = 1 << 20;
    /* 256 positions: 4 blocks a context; 200 round up to 4 too */
    CHECK(&c, bn_cli_default_kv_budget(0, 0, block, 256, 1) == 4 * block);
    CHECK(&c, bn_cli_default_kv_budget(0, 0, block, 200, 3) == 12 * block);
    CHECK(&c, bn_cli_default_kv_budget(0, 0, block, BN_KV_BLOCK + 1, 1) == 2 * block);
    /* plenty of memory: every sequence gets its whole context */
    CHECK(&c, bn_cli_default_kv_budget(64 * MiB, MiB, block, 256, 8) == 32 * block);
    /* little: half of what the weights leave, bounded by one context */
    CHECK(&c, bn_cli_default_kv_budget(MiB + 20 * block, MiB, block, 256, 8) == 10 * block);
    CHECK(&c, bn_cli_default_kv_budget(MiB + 2 * block, MiB, block, 256, 8) == 4 * block);
    CHECK(&c, bn_cli_default_kv_budget(MiB / 2, MiB, block, 256, 8) == 4 * block);
    /* a large context does not overflow 32 bits */
    CHECK(&c, bn_cli_default_kv_budget(0, 0, 1 << 20, 1u << 24, 4) == 4ull * (1u << 18) * (1 << 20));
    return check_done(&c, "test_kvbudget");
}
