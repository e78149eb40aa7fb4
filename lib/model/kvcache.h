/* kvcache.h — the KV cache as a pool of fixed-size blocks that sequences
 * share (kvcache.c).
 *
 * A block holds BN_KV_BLOCK consecutive positions of one sequence, every
 * layer: K transposed per KV head, [layer][kv head][head_dim][block], so
 * the score kernel reads consecutive positions into vector lanes
 * (kern_attn.h), then V by rows, [layer][block][kv_dim]. A sequence is a
 * table of blocks in position order. Blocks are reference-counted: a fork
 * shares the blocks of a prefix instead of copying them, and a write into
 * a shared block copies it first (copy-on-write), so memory grows with the
 * positions actually held, not with n_seq × n_ctx.
 *
 * The pool has a budget (bytes → blocks). Blocks are allocated on first
 * use and kept on a free list after, so memory never exceeds the budget
 * and a block is not faulted in twice. */
#ifndef BN_KVCACHE_H
#define BN_KVCACHE_H

#include "core.h"

/* An evaluation that needs more blocks than the budget has left fails
 * with BN_E_KV_FULL (bn.h) before anything is evaluated or changed, so a
 * caller can wait for other sequences to finish (or free some) and try
 * again. */

/* Positions per block: a multiple of 64, the positions the AVX-512 score
 * kernel takes per pass. 64 against 128 or 256: the same attention speed
 * (measured, design notes), half the memory left unused at the end of
 * each sequence (2B4T, f16: 4.9 MB a block). */
enum { BN_KV_BLOCK = 64 };

/* Blocks a sequence of n_pos positions takes. */
static inline uint64_t bn_kv_blocks_for(uint64_t n_pos)
{
    return (n_pos + BN_KV_BLOCK - 1) / BN_KV_BLOCK;
}

typedef struct bn_kvpool {
    size_t n_layer, kv_dim, es; /* es: bytes per element, 2 (f16) or 4 */
    size_t block_bytes;         /* K part, then V part */
    size_t v_off;               /* bytes from a block's start to its V part */
    uint32_t max_blocks;        /* the budget */
    uint32_t n_made;            /* blocks allocated so far (ids 0..n_made-1) */
    uint8_t **mem;              /* [max_blocks] each block's memory */
    uint32_t *ref;              /* [max_blocks] references (0: on the free list) */
    uint32_t *free_ids;         /* [max_blocks] a stack of released blocks */
    uint32_t n_free;
    uint32_t *pend;             /* [max_blocks] scratch of bn_kvpool_need, all 0 between calls */
} bn_kvpool;

/* One sequence's view: blocks in position order, exactly
 * ceil(n_pos / BN_KV_BLOCK) of them outside bn_kvseq_grow. */
typedef struct bn_kvseq {
    uint32_t *blk;    /* block ids */
    uint8_t **ptr;    /* their memory (the attention kernel walks this list) */
    uint32_t n_blk, cap;
    uint32_t n_pos;   /* positions held */
} bn_kvseq;

/* A pool of budget bytes (at least one block) for a model's layers and
 * kv_dim, elements of es bytes. */
int bn_kvpool_init(bn_kvpool *kv, size_t n_layer, size_t kv_dim, size_t es, uint64_t budget, bn_err *e);
void bn_kvpool_release(bn_kvpool *kv);

/* Blocks that can still be handed out: released ones plus the budget not
 * yet allocated. */
uint32_t bn_kvpool_available(const bn_kvpool *kv);

/* Room for cap_pos positions in a sequence's table, so that bn_kvseq_grow
 * never allocates. */
int bn_kvseq_init(bn_kvseq *s, uint32_t cap_pos, bn_err *e);
/* Drops every block and frees the table. */
void bn_kvseq_release(bn_kvpool *kv, bn_kvseq *s);

/* Blocks that bn_kvseq_grow would take to append n[i] positions to seq[i],
 * in that order (a sequence may appear once): new blocks, and copies of
 * shared partial blocks (when every holder of a block writes into it in
 * the same pass, the last one keeps the original). */
uint32_t bn_kvpool_need(bn_kvpool *kv, bn_kvseq *const *seq, const uint32_t *n, size_t count);
/* Allocates blocks until `need` are available without allocating
 * (BN_E_NOMEM when malloc fails; BN_E_KV_FULL past the budget). */
int bn_kvpool_reserve(bn_kvpool *kv, uint32_t need, bn_err *e);
/* Makes positions [n_pos, n_pos + n) of s writable: copies its partial
 * last block if shared, appends new blocks. n_pos is the caller's to
 * advance once the positions hold data. Needs what bn_kvpool_need counted
 * (bn_kvpool_reserve first): it never fails then. */
void bn_kvseq_grow(bn_kvpool *kv, bn_kvseq *s, uint32_t n);
/* Keeps positions [0, n_pos) (n_pos <= s->n_pos), dropping the blocks
 * after them. */
void bn_kvseq_truncate(bn_kvpool *kv, bn_kvseq *s, uint32_t n_pos);
/* dst (empty) takes src's first n_pos positions (n_pos <= src->n_pos) by
 * sharing its blocks. */
void bn_kvseq_share(bn_kvpool *kv, bn_kvseq *dst, const bn_kvseq *src, uint32_t n_pos);

/* Bytes of blocks held by sequences now (shared blocks counted once). */
uint64_t bn_kvpool_used_bytes(const bn_kvpool *kv);

#endif
