/* model.h — a BitNet b1.58 model ready to run (model.c) and the forward
 * pass over it with its KV cache (forward.c), formats.md §1.
 *
 * Loading maps a bn file and points every ternary matrix and the embedding
 * into the mapping; only the small norm vectors are copied (to f32). Other
 * inputs (an HF directory, GGUF) are read into memory tensor by tensor.
 * Float projections (not yet through bn-quant) are ternarized at load with
 * absmean, as HF's "online" mode does. */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "formats.h"
#include "kernels.h"
#include "kvcache.h" /* BN_KV_BLOCK, BN_E_KV_FULL */

/* One ternary projection. */
typedef struct bn_mat {
    const uint8_t *data; /* in the kernel set's layout (t2 by default) */
    uint32_t type;
    uint64_t rows, cols;
    uint64_t bytes; /* of data, trailer (beta) included */
    float beta;
} bn_mat;

typedef struct bn_layer {
    const float *attn_norm, *attn_sub_norm, *ffn_norm, *ffn_sub_norm; /* sub norms NULL without */
    /* model.proj_norm: each projection's own input norm, in bn_proj_names
     * order (q, k, v, o, gate, up, down); all NULL without */
    const float *in_norm[BN_N_PROJ];
    const float *q_norm, *k_norm; /* model.qk_norm: [head_dim] each, else NULL */
    const float *attn_post_norm, *ffn_post_norm; /* model.post_norms, else NULL */
    bn_mat q, k, v, o, gate, up, down;
} bn_layer;

/* The public bn_model handle (bn.h) is this struct. */
struct bn_model {
    bn_hparams hp;
    bn_source src;       /* metadata, directory, the mapping */
    bn_layer *layers;
    const void *embd;    /* [n_vocab, n_embd], type embd_type, converted row by row on use */
    uint32_t embd_type;
    const void *head;    /* the output head (= embd when tied) */
    uint32_t head_type;
    uint64_t head_bytes;
    const float *out_norm;
    void *arena;         /* bn_model_to_memory's copy of the weights */
    size_t arena_size;
    void **owned;        /* buffers the model allocated */
    size_t n_owned, cap_owned;
    int n_ternarized;    /* projections that were float in the file */
    int mapped;          /* every tensor lies in a file mapping */
    int streams;         /* mapped, and larger than the memory left at load:
                          * each layer is read one layer ahead and let go
                          * once used (bn_model_readahead, _release), but
                          * for the layers from keep_from on and the head
                          * when keep_head, which stay */
    uint32_t keep_from;
    int keep_head;
    const bn_kernels *kern;
    bn_progress_fn progress; /* told of the steps of loading, or NULL */
    void *progress_user;
};

/* Opens path ("-" streams a bn file from stdin) and checks that this build
 * can run it with the named kernel set ("auto", "ref", or one of
 * bn_kernels_names that this CPU runs). Errors name the file: "FILE:
 * reason". */
int bn_model_load(bn_model *m, const char *path, const char *kernel, bn_err *e);
/* The same, telling progress of the slow steps (tensors read into memory,
 * here and in bn_model_to_memory the layers copied) and cancelling with
 * BN_E_CANCELLED when it asks. Errors carry bn_status codes where the
 * loader knows better than BN_ERROR (out of memory, unsupported). */
int bn_model_load_progress(bn_model *m, const char *path, const char *kernel, bn_progress_fn fn, void *user,
                           bn_err *e);
void bn_model_free(bn_model *m);
/* Copies the weights every decoded token streams (the ternary matrices
 * and the output head) out of the file mapping into one anonymous region
 * on transparent huge pages, as stored: a mapping on 4 KiB pages costs a
 * page walk every 4 KiB of every stream, and the page cache may not hold
 * a file in huge folios. Returns 1 when copied, 0 when it left the
 * model as it was (not enough free memory, no mapping granted, or the
 * reference kernels, which decode from the mapping), a negative status on
 * error (BN_E_CANCELLED when the progress callback asked). */
int bn_model_to_memory(bn_model *m, bn_err *e);
/* For a model that streams from its file (m->streams and no copy in
 * memory; nothing otherwise): readahead asks the kernel to read layer l's
 * weights (l = n_layer: the head) in the background, so the disk works
 * through a layer while the one before is computed instead of waiting on
 * one page fault at a time; release pages out layer l once used (but the
 * head and last layers that fit in the memory left, which stay), as
 * the cache would before their next use anyway, so that reclaim need not
 * search for room while the next layer faults in.
 * Measured on the 2-core Zen 5 under load, the 753 MiB 2B4T-shaped t2
 * model in a 400 MiB memory cgroup, 2 threads: 0.7-1.0 t/s as plain page
 * faults, 1.4 with readahead, 1.5-1.8 with both, 2.8-3.2 (the disk's read
 * speed) when the head stayed as well (3.4 quiet; keep_what_fits). */
void bn_model_readahead(const bn_model *m, uint32_t l);
void bn_model_release(const bn_model *m, uint32_t l);

/* ------------------------------------------------------------- forward */

typedef struct bn_ctx_opts {
    uint32_t n_ctx;   /* positions a sequence may hold (<= the model's context) */
    int kv_f16;       /* store K/V as f16 (default f32) */
    int no_act_quant; /* ternary weights, float activations (verification) */
    int n_threads;
    uint32_t n_seq;     /* sequences the context can hold at once; 0: 1 */
    uint64_t kv_budget; /* bytes of KV blocks (kvcache.h) for all of them; 0:
                           n_seq × n_ctx positions (allocated as they are used) */
    int embeddings;     /* each output row a token's final-normed hidden state
                           (n_embd floats) instead of its logits: embed.c pools them */
} bn_ctx_opts;

/* A context with every option, the verification ones included (the
 * public bn_ctx_new, bn.h, takes bn_ctx_params). The rest of the context's
 * calls are public: bn_ctx_free, bn_ctx_eval (prefill in batches of up to
 * BN_KERN_MAX_N, decode when n = 1), bn_ctx_pos, bn_ctx_tokens,
 * bn_ctx_truncate, bn_ctx_n_ctx, bn_ctx_kv_bytes, bn_ctx_model. */
bn_ctx *bn_ctx_new_opts(const bn_model *m, const bn_ctx_opts *o, bn_err *e);
/* KV bytes allocated so far: blocks are kept once made (for the next
 * sequence), so this is the cache's peak, what it takes of memory. */
uint64_t bn_ctx_kv_peak_bytes(const bn_ctx *c);
/* Whether the KV budget holds every sequence at its whole context (a
 * draft context must: its evaluations have no way to wait for blocks). */
int bn_ctx_kv_holds_all(const bn_ctx *c);
/* A batcher takes its context (and a draft context) over until it is
 * freed: bn_ctx_take fails (-1) when another one holds it. */
int bn_ctx_take(bn_ctx *c);
void bn_ctx_give_back(bn_ctx *c);
/* Whether a batcher holds c now. */
int bn_ctx_taken(const bn_ctx *c);
/* After bn_ctx_eval or bn_ctx_eval_batch failed with BN_E_KV_RANGE: the
 * index among the call's tokens of the one whose K or V the f16 cache
 * could not hold, and *why without naming the token ("layer 3: a K value
 * (70000) is ..."), valid until the next evaluation: a batcher ends that
 * token's request alone, a guess is retried without the guesses. */
size_t bn_ctx_range_token(const bn_ctx *c, const char **why);
/* Whether c's output rows are hidden states (bn_ctx_opts.embeddings), not
 * logits: what samples or scores refuses such a context. */
int bn_ctx_gives_states(const bn_ctx *c);
/* Whether seq is a live sequence id of c. */
int bn_ctx_seq_live(const bn_ctx *c, int seq);
/* Live generators over c (or with c as their draft): counted up and down
 * by bn_generator_new / _free; a batcher refuses such a context. */
void bn_ctx_generators_add(bn_ctx *c, int d);
int bn_ctx_generators(const bn_ctx *c);
/* KV blocks of the whole budget (what bn_ctx_kv_bytes holds). */
uint32_t bn_ctx_kv_blocks_max(const bn_ctx *c);
/* The sequence calls (bn_ctx_seq_new, _fork, _copy, _truncate, _free,
 * _pos, _tokens, bn_ctx_n_seq), bn_ctx_kv_used_bytes,
 * bn_ctx_kv_blocks_left and the batch evaluation (bn_eval_tok,
 * bn_ctx_eval_batch) are public too: bn.h documents them. */

#endif
