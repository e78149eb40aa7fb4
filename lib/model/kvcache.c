/* kvcache.c — the paged KV cache (kvcache.h): a budget of blocks, handed
 * out by reference, copied on the first write into a shared one. */
#include "kvcache.h"

#include <stdlib.h>
#include <string.h>

int bn_kvpool_init(bn_kvpool *kv, size_t n_layer, size_t kv_dim, size_t es, uint64_t budget, bn_err *e)
{
    memset(kv, 0, sizeof *kv);
    kv->n_layer = n_layer;
    kv->kv_dim = kv_dim;
    kv->es = es;
    kv->v_off = n_layer * kv_dim * BN_KV_BLOCK * es;
    kv->block_bytes = 2 * kv->v_off;
    uint64_t blocks = budget / kv->block_bytes;
    if (blocks < 1)
        return bn_fail_code(e, BN_E_INVALID, "a KV budget of %llu bytes holds no block of %zu bytes",
                            (unsigned long long)budget, kv->block_bytes);
    kv->max_blocks = blocks > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)blocks;
    kv->mem = calloc(kv->max_blocks, sizeof *kv->mem);
    kv->ref = calloc(kv->max_blocks, sizeof *kv->ref);
    kv->free_ids = malloc(kv->max_blocks * sizeof *kv->free_ids);
    kv->pend = calloc(kv->max_blocks, sizeof *kv->pend);
    if (!kv->mem || !kv->ref || !kv->free_ids || !kv->pend) {
        bn_kvpool_release(kv);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory for a KV table of %u blocks", (unsigned)blocks);
    }
    return 0;
}

void bn_kvpool_release(bn_kvpool *kv)
{
    if (kv->mem)
        for (uint32_t i = 0; i < kv->n_made; i++)
            free(kv->mem[i]);
    free(kv->mem);
    free(kv->ref);
    free(kv->free_ids);
    free(kv->pend);
    memset(kv, 0, sizeof *kv);
}

uint32_t bn_kvpool_available(const bn_kvpool *kv)
{
    return kv->n_free + (kv->max_blocks - kv->n_made);
}

int bn_kvseq_init(bn_kvseq *s, uint32_t cap_pos, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->cap = (uint32_t)bn_kv_blocks_for(cap_pos);
    s->blk = malloc((s->cap ? s->cap : 1) * sizeof *s->blk);
    s->ptr = malloc((s->cap ? s->cap : 1) * sizeof *s->ptr);
    if (!s->blk || !s->ptr) {
        free(s->blk);
        free(s->ptr);
        memset(s, 0, sizeof *s);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    return 0;
}

static void unref(bn_kvpool *kv, uint32_t b)
{
    if (--kv->ref[b] == 0)
        kv->free_ids[kv->n_free++] = b;
}

void bn_kvseq_release(bn_kvpool *kv, bn_kvseq *s)
{
    if (s->blk)
        bn_kvseq_truncate(kv, s, 0);
    free(s->blk);
    free(s->ptr);
    memset(s, 0, sizeof *s);
}

uint32_t bn_kvpool_need(bn_kvpool *kv, bn_kvseq *const *seq, const uint32_t *n, size_t count)
{
    uint32_t need = 0;
    for (size_t i = 0; i < count; i++) {
        const bn_kvseq *s = seq[i];
        if (!n[i])
            continue;
        need += (uint32_t)bn_kv_blocks_for(s->n_pos + n[i]) - s->n_blk;
        if (s->n_pos % BN_KV_BLOCK) {
            /* the partial last block: copied unless this writer is its
             * last holder once the earlier writers have copied theirs */
            uint32_t b = s->blk[s->n_blk - 1];
            if (kv->ref[b] - kv->pend[b] > 1)
                need++;
            kv->pend[b]++;
        }
    }
    for (size_t i = 0; i < count; i++)
        if (n[i] && seq[i]->n_pos % BN_KV_BLOCK)
            kv->pend[seq[i]->blk[seq[i]->n_blk - 1]] = 0;
    return need;
}

int bn_kvpool_reserve(bn_kvpool *kv, uint32_t need, bn_err *e)
{
    if (need > bn_kvpool_available(kv))
        return bn_fail_code(e, BN_E_KV_FULL,
                            "the KV cache budget is used up (%u more block%s of %u positions needed, %u left of %u)",
                            need, need == 1 ? "" : "s", BN_KV_BLOCK, bn_kvpool_available(kv), kv->max_blocks);
    while (kv->n_free < need) {
        /* 64-byte aligned: the kernels load whole cache lines */
        uint8_t *p = aligned_alloc(64, (kv->block_bytes + 63) / 64 * 64);
        if (!p)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory for KV blocks (%.1f MiB each)",
                                (double)kv->block_bytes / 1048576.0);
        kv->mem[kv->n_made] = p;
        kv->free_ids[kv->n_free++] = kv->n_made++;
    }
    return 0;
}

static uint32_t take(bn_kvpool *kv)
{
    uint32_t b = kv->free_ids[--kv->n_free];
    kv->ref[b] = 1;
    return b;
}

void bn_kvseq_grow(bn_kvpool *kv, bn_kvseq *s, uint32_t n)
{
    if (!n)
        return;
    if (s->n_pos % BN_KV_BLOCK) {
        uint32_t i = s->n_blk - 1, old = s->blk[i];
        if (kv->ref[old] > 1) {
            uint32_t b = take(kv);
            /* the whole block: positions past n_pos are never read */
            memcpy(kv->mem[b], kv->mem[old], kv->block_bytes);
            unref(kv, old);
            s->blk[i] = b;
            s->ptr[i] = kv->mem[b];
        }
    }
    for (uint32_t want = (uint32_t)bn_kv_blocks_for(s->n_pos + n); s->n_blk < want; s->n_blk++) {
        uint32_t b = take(kv);
        s->blk[s->n_blk] = b;
        s->ptr[s->n_blk] = kv->mem[b];
    }
}

void bn_kvseq_truncate(bn_kvpool *kv, bn_kvseq *s, uint32_t n_pos)
{
    if (n_pos > s->n_pos)
        return;
    for (uint32_t keep = (uint32_t)bn_kv_blocks_for(n_pos); s->n_blk > keep;)
        unref(kv, s->blk[--s->n_blk]);
    s->n_pos = n_pos;
}

void bn_kvseq_share(bn_kvpool *kv, bn_kvseq *dst, const bn_kvseq *src, uint32_t n_pos)
{
    bn_kvseq_truncate(kv, dst, 0);
    if (n_pos > src->n_pos)
        n_pos = src->n_pos;
    dst->n_blk = (uint32_t)bn_kv_blocks_for(n_pos);
    for (uint32_t i = 0; i < dst->n_blk; i++) {
        dst->blk[i] = src->blk[i];
        dst->ptr[i] = src->ptr[i];
        kv->ref[src->blk[i]]++;
    }
    dst->n_pos = n_pos;
}

uint64_t bn_kvpool_used_bytes(const bn_kvpool *kv)
{
    return (uint64_t)(kv->n_made - kv->n_free) * kv->block_bytes;
}
