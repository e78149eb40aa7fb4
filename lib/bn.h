/* bn.h — the public interface of libbn, the library behind the bn-* programs.
 *
 * This is the one installed header. The library's floors (lib/core,
 * formats, lib/kernels, lib/tokenizer, lib/model; README.md §Layout) have
 * internal headers of their own; nothing here depends on them.
 *
 * Conventions: functions that can fail return BN_OK (0) or a negative
 * bn_status, and put the same code and a one-line reason ("FILE: reason")
 * in the bn_err they are given (which may be NULL); constructors return NULL
 * instead. No global state; nothing is written to stdout or stderr and no
 * signal handler is installed: messages go to callbacks the caller gives.
 * libbn(3) is the manual.
 *
 * Only declarations marked BN_API are exported by the shared library
 * (tools/check-exports.sh checks it).
 */
#ifndef BN_H
#define BN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define BN_API __attribute__((visibility("default")))
#else
#define BN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

/* The header's version; bn_version_number() and bn_version_string() give
 * the library's, which may be newer (the soname, libbn.so.0, changes only
 * with an incompatible ABI). */
#define BN_VERSION_MAJOR 0
#define BN_VERSION_MINOR 4
#define BN_VERSION_PATCH 0
#define BN_VERSION_NUMBER (BN_VERSION_MAJOR * 10000 + BN_VERSION_MINOR * 100 + BN_VERSION_PATCH)
#define BN_VERSION "0.4.0"

BN_API int bn_version_number(void);        /* BN_VERSION_NUMBER of the library */
BN_API const char *bn_version_string(void); /* "0.4.0" */

/* ------------------------------------------------------------------ errors */

/* What went wrong, as a code a program can act on (negative: a failure). */
typedef enum bn_status {
    BN_OK = 0,
    BN_ERROR = -1,          /* a failure without a more specific code */
    BN_E_IO = -2,           /* a file could not be opened, read or written */
    BN_E_FORMAT = -3,       /* the input is damaged or not what it claims to be */
    BN_E_UNSUPPORTED = -4,  /* valid, but this build, CPU or model cannot do it */
    BN_E_NOMEM = -5,        /* out of memory */
    BN_E_INVALID = -6,      /* an invalid argument: a NULL handle, an id outside
                               the vocabulary, a parameter out of range */
    BN_E_CONTEXT_FULL = -7, /* the tokens do not fit the context */
    BN_E_CANCELLED = -8,    /* a callback returned nonzero */
    BN_E_KV_FULL = -9,      /* the KV cache budget cannot hold the new positions
                               (it is shared by the sequences, or smaller
                               than n_ctx positions): nothing was evaluated;
                               retry once sequences are freed */
    BN_E_KV_RANGE = -10     /* (since 0.4.0) a K or V value is beyond what an f16 KV cache
                               holds (65504 in magnitude, or not finite):
                               the call kept nothing; a context with
                               kv_type BN_KV_F32 holds it (unless it is
                               not finite) */
} bn_status;

/* msg: one line naming the file or value at fault; code: its bn_status.
 * Both are set only when a call fails. */
typedef struct bn_err {
    char msg[1024];
    int code;
} bn_err;

/* A status's name and meaning ("BN_E_IO: input/output error"), also of
 * the BN_STOP_* reasons ("BN_STOP_LENGTH: ...": bn_generate's returns, a
 * batch's ends); never NULL. */
BN_API const char *bn_status_string(int code);

/* ------------------------------------------------------------- callbacks */

/* Progress of a long step: called before step `done` of `total` (what names
 * it: a tensor, a stage) and once at the end with done == total, also when
 * the step fails, but not after the callback cancelled it. A nonzero
 * return cancels the call, which then fails with BN_E_CANCELLED; the end's
 * return is ignored (the work is done by then). */
typedef int (*bn_progress_fn)(void *user, size_t done, size_t total, const char *what);

enum { BN_LOG_ERROR = 0, BN_LOG_WARN = 1, BN_LOG_INFO = 2, BN_LOG_DEBUG = 3 };

/* One message (NUL-terminated, no trailing newline) at a BN_LOG_* level. */
typedef void (*bn_log_fn)(void *user, int level, const char *msg);

/* =====================================================================
 * Inference: models, contexts, tokenizers, sampling, generation
 *
 * Every object is an opaque handle; the caller frees what it made, and a
 * handle must outlive the ones that borrow it:
 *   bn_model_open            -> bn_model_close
 *   bn_ctx_new               -> bn_ctx_free        (borrows the model)
 *   bn_tokenizer_from_model  -> bn_tokenizer_free  (borrows nothing)
 *   bn_detok_new             -> bn_detok_free      (borrows the tokenizer)
 *   bn_sampler_new           -> bn_sampler_free    (borrows nothing)
 *   bn_generator_new         -> bn_generator_free  (borrows context,
 *                                                   sampler, tokenizer)
 *   bn_batcher_new           -> bn_batcher_free    (borrows the context)
 * Destructors accept NULL. Pointers the library returns belong to the
 * handle they came from.
 *
 * Threads: a model is read-only once bn_model_open has returned, so any
 * number of threads may use one model at the same time (contexts,
 * tokenizers, getters). Every other handle is used by one thread at a
 * time; different handles may be used in different threads at once. A
 * tokenizer keeps scratch space for encoding (bn_tokenize, bn_chat_render
 * need it to themselves); decoding (bn_detok_*, bn_tokenizer_piece) only
 * reads it and may run beside that. A context and every sequence in it
 * belong to one thread at a time (run many sequences through one
 * context rather than one context per sequence: that is what batching
 * pays for), and so does a batcher with its context. A context runs
 * n_threads worker threads of its own inside bn_ctx_eval and
 * bn_ctx_eval_batch. Process-wide: on Linux x86-64
 * CPUs with AMX, opening a model asks for the process's AMX tile-data
 * permission, which enlarges signal frames (libbn(3), THREADS).
 *
 * A context holds n_seq sequences (bn_ctx_params; 1 by default) over one
 * pool of KV memory. The calls without a sequence argument (bn_ctx_eval,
 * bn_ctx_pos, bn_ctx_truncate, bn_ctx_tokens, generation) act on sequence
 * 0; bn_ctx_eval_batch evaluates tokens of several sequences in one pass,
 * and a bn_batcher answers many requests at once over a context's
 * sequences (continuous batching). Batching changes no result: a
 * sequence's logits in a batch are bit-identical to those it gets alone.
 *
 * Parameter structs begin with `size`, which their _init macro sets to the
 * size the caller was compiled with: a later libbn with more fields at the
 * end reads only those the caller has, and defaults the rest. Always fill
 * them with the _init macro (bindings: the _defaults function with sizeof);
 * a size under sizeof(size_t) is refused (BN_E_INVALID), and any other
 * value than the sizeof of a version of the struct is not defined (one
 * that ends inside a pointer field reads half of it).
 * ===================================================================== */

/* ------------------------------------------------------------- models */

typedef struct bn_model bn_model;

enum {
    BN_WEIGHTS_AUTO = 0,  /* copy the weights the decoder streams into memory
                             (huge pages) when it fits: faster decoding */
    BN_WEIGHTS_MAPPED = 1 /* decode from the file mapping as it is */
};

typedef struct bn_model_params {
    size_t size;             /* set by bn_model_params_init */
    const char *kernels;     /* "auto" (default: the fastest this CPU runs),
                                "ref", or a set: "avx2", "avx512", "amx",
                                "neon", "dotprod". Their ternary products
                                are the same integers; ref's scalar float
                                steps (norms, attention, head) round
                                otherwise than the SIMD sets', so its
                                logits differ slightly (libbn(3)) */
    int weights;             /* BN_WEIGHTS_AUTO (default) or BN_WEIGHTS_MAPPED */
    bn_log_fn log;           /* what loading noticed; NULL: nothing */
    void *log_user;
    bn_progress_fn progress; /* loading progress; NULL: none */
    void *progress_user;
} bn_model_params;

#define bn_model_params_init(p) bn_model_params_defaults((p), sizeof *(p))
BN_API void bn_model_params_defaults(bn_model_params *p, size_t size);

/* Opens a bn model file, a Hugging Face checkpoint directory or a GGUF
 * file ("-": a bn file streamed on standard input); p NULL: defaults.
 * BN_E_IO: cannot read; BN_E_FORMAT: damaged or not a model;
 * BN_E_UNSUPPORTED: an architecture, layout or kernel set this build or
 * CPU cannot run; BN_E_INVALID: an unknown kernel set name. */
BN_API bn_model *bn_model_open(const char *path, const bn_model_params *p, bn_err *e);
BN_API void bn_model_close(bn_model *m);

BN_API uint32_t bn_model_n_vocab(const bn_model *m);
BN_API uint32_t bn_model_n_ctx(const bn_model *m);      /* the trained context */
BN_API uint32_t bn_model_n_embd(const bn_model *m);
BN_API uint32_t bn_model_n_layer(const bn_model *m);
BN_API const char *bn_model_arch(const bn_model *m);    /* "bitnet-b1.58", ... */
BN_API const char *bn_model_kernels(const bn_model *m); /* the set in use */
BN_API int32_t bn_model_bos(const bn_model *m);         /* -1: none */
BN_API int32_t bn_model_eos(const bn_model *m);         /* -1: none */
/* 1 when generation ends at this token (EOS, end of turn), else 0. */
BN_API int bn_model_is_stop(const bn_model *m, uint32_t id);
/* Bytes of the weights the forward pass reads. */
BN_API uint64_t bn_model_weight_bytes(const bn_model *m);
/* A metadata string of the model ("general.name", ...), or NULL. */
BN_API const char *bn_model_meta_str(const bn_model *m, const char *key);

/* ----------------------------------------------------------- contexts */

typedef struct bn_ctx bn_ctx;

enum { BN_KV_F16 = 0, BN_KV_F32 = 1 };

typedef struct bn_ctx_params {
    size_t size;    /* set by bn_ctx_params_init */
    uint32_t n_ctx; /* positions (<= the model's); 0 (default): the model's */
    int n_threads;  /* 0 (default): one per online CPU */
    int kv_type;    /* BN_KV_F16 (default) or BN_KV_F32 (an embedding
                       model's context: always f32, below). f16 holds
                       half the bytes and values up to 65504 in
                       magnitude: an evaluation that meets a K or V value
                       beyond that fails with BN_E_KV_RANGE (which f32
                       holds) */
    /* since 0.3.0 (n_seq sits where 0.2.0's struct had padding: a caller
     * built against 0.2.0 is read right when it filled its struct with
     * bn_ctx_params_init, as every caller should) */
    uint32_t n_seq;     /* sequences the context holds at once (1..1024);
                           0 (default): 1 */
    uint64_t kv_budget; /* bytes of KV memory for all sequences together,
                           taken in blocks of 64 positions as they are
                           used (whole blocks: a budget under one block
                           is refused, the rest of one is not used); 0
                           (default), or more than they can use: n_seq x
                           n_ctx positions */
} bn_ctx_params;

#define bn_ctx_params_init(p) bn_ctx_params_defaults((p), sizeof *(p))
BN_API void bn_ctx_params_defaults(bn_ctx_params *p, size_t size);

/* A conversation: KV cache, scratch and worker threads. p NULL: defaults. */
BN_API bn_ctx *bn_ctx_new(const bn_model *m, const bn_ctx_params *p, bn_err *e);
BN_API void bn_ctx_free(bn_ctx *c);
BN_API const bn_model *bn_ctx_model(const bn_ctx *c); /* the model it borrows */
BN_API uint32_t bn_ctx_n_ctx(const bn_ctx *c);        /* its positions (n_ctx) */
/* Positions in the KV cache, and the ids evaluated at them (valid until
 * the next call that changes the context). */
BN_API uint32_t bn_ctx_pos(const bn_ctx *c);
BN_API const uint32_t *bn_ctx_tokens(const bn_ctx *c);
/* Forgets every position from pos on; the next token goes to pos.
 * Evaluating the same tokens again gives the same logits, bit for bit. */
BN_API void bn_ctx_truncate(bn_ctx *c, uint32_t pos);
/* KV cache bytes the context may take (allocated in blocks as positions
 * are used): kv_budget rounded down to whole blocks, or what n_seq
 * sequences of n_ctx positions take in whole blocks if that is less. */
BN_API uint64_t bn_ctx_kv_bytes(const bn_ctx *c);

enum { BN_EVAL_ALL_LOGITS = 1 /* a row of logits per token, not only the last */ };

/* Evaluates n tokens at the next positions. logits (may be NULL) receives
 * bn_model_n_vocab floats for the last token, or n rows with
 * BN_EVAL_ALL_LOGITS (an embedding model's context: rows of
 * bn_model_n_embd floats, its states; "embedding models" below). BN_E_INVALID: an id outside the vocabulary, or
 * unknown flags;
 * BN_E_CONTEXT_FULL: the tokens do not fit; nothing is evaluated then;
 * BN_E_KV_FULL: the KV budget cannot hold them (above);
 * BN_E_KV_RANGE: a token's K or V value is beyond the f16 cache (the
 * message names its position, the layer and the value): the context is as
 * it was before the call (rows of logits may have been written).
 * n = 0 evaluates nothing and succeeds (ids may then be NULL; flags are
 * still checked). */
BN_API int bn_ctx_eval(bn_ctx *c, const uint32_t *ids, size_t n, float *logits, unsigned flags, bn_err *e);

/* Perplexity of ids (text tokens, no BOS) over windows of `window` tokens
 * (0: the context), window starts `stride` text tokens apart (0: no
 * overlap; more than a window scores, its text tokens or, without a BOS,
 * one fewer: BN_E_INVALID, as tokens would go unscored); each window is
 * BOS + text, evaluated from an empty cache, and
 * predicts the tokens no earlier window did. *ppl_err (may be NULL): its
 * standard error. Leaves sequence 0 empty once it has begun evaluating
 * (an argument refused with BN_E_INVALID leaves it as it was; other
 * sequences keep their positions, and share the KV budget with its
 * windows: BN_E_KV_FULL when a window does not fit beside them). */
BN_API int bn_ctx_perplexity(bn_ctx *c, const uint32_t *ids, size_t n, uint32_t window, uint32_t stride,
                             double *ppl, double *ppl_err, bn_err *e);

/* ---------------------------------------------------------- sequences
 *
 * A context holds up to n_seq sequences, each with its own positions, over
 * one pool of KV blocks (64 positions each) under kv_budget bytes.
 * Sequence 0 exists from bn_ctx_new on and is the one bn_ctx_eval,
 * bn_ctx_pos, bn_ctx_tokens and bn_ctx_truncate use; freeing it empties it.
 * Sequence ids are small integers (0..n_seq-1), reused after a free. A
 * call given an id that is not a live sequence does nothing (the getters
 * return 0 or NULL). */

BN_API uint32_t bn_ctx_n_seq(const bn_ctx *c); /* n_seq: the most sequences at once */
/* A new empty sequence: its id (>= 0), or a negative status
 * (BN_E_INVALID when all n_seq are in use). */
BN_API int bn_ctx_seq_new(bn_ctx *c, bn_err *e);
/* A new sequence holding the first n_pos positions of src, sharing its KV
 * blocks (no copy; a shared block is copied when either sequence writes
 * into it): a common prefix (a system prompt) is evaluated once.
 * Evaluating on from there gives what evaluating the prefix again would,
 * bit for bit. Its id, or BN_E_INVALID (src, n_pos, no free sequence). */
BN_API int bn_ctx_seq_fork(bn_ctx *c, int src, uint32_t n_pos, bn_err *e);
/* The same into the existing sequence dst, whose positions it replaces. */
BN_API int bn_ctx_seq_copy(bn_ctx *c, int dst, int src, uint32_t n_pos, bn_err *e);
/* Forgets a sequence's positions from pos on (roll-back). */
BN_API void bn_ctx_seq_truncate(bn_ctx *c, int seq, uint32_t pos);
/* Frees a sequence's KV blocks and its id. */
BN_API void bn_ctx_seq_free(bn_ctx *c, int seq);
BN_API uint32_t bn_ctx_seq_pos(const bn_ctx *c, int seq);
/* The ids at its positions (valid until the sequence changes). */
BN_API const uint32_t *bn_ctx_seq_tokens(const bn_ctx *c, int seq);
/* KV bytes the sequences hold now (a shared block counted once), and the
 * blocks that can still be handed out; bn_ctx_kv_bytes is the budget. */
BN_API uint64_t bn_ctx_kv_used_bytes(const bn_ctx *c);
BN_API uint32_t bn_ctx_kv_blocks_left(const bn_ctx *c);

/* One token of a batch: id at position pos of sequence seq; logits
 * nonzero asks for its row of logits. (Elements of an array: this struct
 * never changes.) */
typedef struct bn_eval_tok {
    uint32_t id, seq, pos;
    uint32_t logits;
} bn_eval_tok;

/* Evaluates n tokens of any live sequences in one forward pass (every
 * weight is read once per pass of up to 128 tokens, whatever sequences
 * they belong to). Each sequence's tokens must be at its next positions,
 * in order; a token attends to its own sequence's positions up to its
 * own. logits (may be NULL) receives bn_model_n_vocab floats for each
 * token that asks, in batch order (bn_model_n_embd, a state, in an
 * embedding model's context). Each row is bit-identical to what
 * evaluating that sequence alone gives. Fails before evaluating
 * anything, changing nothing: BN_E_INVALID (no context, t NULL with n >
 * 0, an id, a sequence, a position), BN_E_CONTEXT_FULL (a
 * sequence past n_ctx), BN_E_KV_FULL (the KV budget cannot hold the new
 * positions: free sequences, or evaluate fewer), BN_E_NOMEM. During the
 * pass: BN_E_KV_RANGE (a token's K or V value beyond the f16 cache; the
 * message names the token, its sequence and position): every sequence is
 * as it was before the call (its positions and their K/V; one that shared
 * its last, partial block with another sequence may hold its own copy of
 * it now, a block of the budget, as its next evaluation would). n = 0
 * evaluates nothing and succeeds, as bn_ctx_eval does. */
BN_API int bn_ctx_eval_batch(bn_ctx *c, const bn_eval_tok *t, size_t n, float *logits, bn_err *e);

/* --------------------------------------------------------- tokenizers */

typedef struct bn_tokenizer bn_tokenizer;

/* The model's byte-level BPE tokenizer (the same ids as tiktoken and
 * Hugging Face tokenizers); BN_E_UNSUPPORTED when the model has none. */
BN_API bn_tokenizer *bn_tokenizer_from_model(const bn_model *m, bn_err *e);
BN_API void bn_tokenizer_free(bn_tokenizer *t);
BN_API uint32_t bn_tokenizer_n_vocab(const bn_tokenizer *t); /* ids 0..n_vocab-1 */
/* The bytes of one token (not NUL-terminated; a token may hold part of a
 * UTF-8 character) and their count in *len (len may be NULL), or NULL and
 * 0 for an id out of range. */
BN_API const uint8_t *bn_tokenizer_piece(const bn_tokenizer *t, uint32_t id, size_t *len);
/* The id of the token whose bytes are exactly these (special ones too), or -1. */
BN_API int32_t bn_tokenizer_find(const bn_tokenizer *t, const void *bytes, size_t len);

enum {
    BN_TOKENIZE_BOS = 1,    /* prepend BOS when the model asks for one */
    BN_TOKENIZE_SPECIAL = 2 /* special-token text ("<|eot_id|>") becomes its id */
};

/* Encodes text[0..len), any bytes (invalid UTF-8 round-trips too).
 * *n_ids receives how many ids the text needs, the first min(cap, *n_ids)
 * go to ids: call again with a larger buffer when *n_ids > cap (ids may be
 * NULL when cap is 0). */
BN_API int bn_tokenize(bn_tokenizer *t, const void *text, size_t len, unsigned flags, uint32_t *ids, size_t cap,
                       size_t *n_ids, bn_err *e);

typedef struct bn_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8, NUL-terminated */
} bn_chat_message;

/* The model's chat format: "bitnet", "llama3", "falcon3" (since 0.3.0),
 * "llama3.1", "llama3.2" (since 0.3.0: Llama 3's with the dated system
 * message its 3.1 and 3.2 templates open with, see
 * bn_tokenizer_set_chat_date) or "none"; a file may name another (one a
 * later bn writes), which bn_chat_render refuses with BN_E_UNSUPPORTED. */
BN_API const char *bn_tokenizer_chat_format(const bn_tokenizer *t);
/* A conversation as ids in the model's chat format, token for token as the
 * reference implementation renders it; add_assistant appends the header
 * that asks the model to answer. Buffer rule as bn_tokenize.
 * BN_E_UNSUPPORTED: the model has no chat format; BN_E_INVALID: a role. */
BN_API int bn_chat_render(bn_tokenizer *t, const bn_chat_message *msgs, size_t n, int add_assistant, uint32_t *ids,
                          size_t cap, size_t *n_ids, bn_err *e);
/* (since 0.3.0) How a message's header and its (stripped) content become
 * ids. BN_CHAT_SPLIT, the default: each encoded alone, as the model's
 * training code (Microsoft's ChatFormat) does. BN_CHAT_WHOLE: header and
 * content encoded as one text, as Hugging Face's chat template and
 * bitnet.cpp's -cnv tokenize the rendered conversation; for 2B4T's
 * "User: Hello" that is "User" ":" " Hello", where split gives "User" ":"
 * " " "Hello". Special-token text in a content stays text either way.
 * "falcon3" has one rendering, its template's (contents as given, not
 * stripped), whichever encoding is set.
 * Sets t for every later bn_chat_render (not while another thread uses
 * t). BN_E_INVALID: t is NULL or how is neither. */
enum { BN_CHAT_SPLIT = 0, BN_CHAT_WHOLE = 1 };
BN_API int bn_tokenizer_set_chat_encoding(bn_tokenizer *t, int how, bn_err *e);
/* (since 0.3.0) The date the "llama3.1" and "llama3.2" formats write in
 * their system message, "Cutting Knowledge Date: December 2023\nToday
 * Date: DATE\n\n" before the first message's content when that is a
 * system one (alone otherwise). By default "llama3.1" writes the date its
 * template fixes (its `set date_string = "..."`; Meta's: "26 Jul 2024")
 * and "llama3.2" today's local date ("07 Dec 2026", as its template's
 * strftime_now("%d %b %Y")), so that a conversation renders differently
 * from day to day, and two renders of one conversation may differ in size
 * (bn_chat_render's buffer rule: call until the ids fit); a date set here
 * (text of one line, at most 31 bytes; special-token text in it stays
 * text) makes it repeatable. NULL or "" restores the default. Sets t for
 * every later bn_chat_render, as bn_tokenizer_set_chat_encoding.
 * BN_E_INVALID: t is NULL, the date too long or more than one line. */
BN_API int bn_tokenizer_set_chat_date(bn_tokenizer *t, const char *date, bn_err *e);

/* ------------------------------------------------------- detokenizers */

typedef struct bn_detok bn_detok;

enum {
    BN_DETOK_SKIP_SPECIAL = 1, /* control tokens (BOS, EOS, ...) give no text */
    BN_DETOK_TEXT_START = 2    /* (since 0.3.0) each sequence is a whole text: the space a
                                  tokenizer with a dummy prefix (Llama 2's SentencePiece)
                                  put before it is dropped; leave it out for a continuation */
};

/* Ids in, text out, one id at a time, never splitting a UTF-8 character:
 * up to 3 bytes are held back while they can still become one; bytes that
 * never can pass through unchanged (decoding inverts encoding exactly). */
BN_API bn_detok *bn_detok_new(const bn_tokenizer *t, unsigned flags, bn_err *e);
BN_API void bn_detok_free(bn_detok *d);
/* *text, *len: the bytes complete now, valid until the next call (either
 * may be NULL: the bytes are consumed all the same). BN_E_INVALID: an id
 * out of range. */
BN_API int bn_detok_feed(bn_detok *d, uint32_t id, const uint8_t **text, size_t *len, bn_err *e);
/* Ends a sequence with whatever is held back; the decoder starts afresh. */
BN_API void bn_detok_flush(bn_detok *d, const uint8_t **text, size_t *len);

/* ----------------------------------------------------------- sampling */

typedef struct bn_sampler bn_sampler;

/* Applied in this order: logit biases, penalties, top-k, temperature,
 * top-p, min-p. */
typedef struct bn_sampler_params {
    size_t size;             /* set by bn_sampler_params_init */
    float temp;              /* 0.8; 0: greedy (largest logit, lowest id on ties) */
    uint32_t top_k;          /* 40; 0: off */
    float top_p;             /* 0.95; 1: off */
    float min_p;             /* 0.05; 0: off */
    float repeat_penalty;    /* 1: off; a recent token's logit: >0 divided, <0 multiplied */
    float presence_penalty;  /* 0: off; subtracted once from each recent token's logit */
    uint32_t penalty_last_n; /* 64: the recent tokens the penalties see; 0: all */
    uint64_t seed;           /* 0; the same seed repeats a run exactly */
    /* (since 0.3.0) n_logit_bias values added to their tokens' logits
     * before anything else (OpenAI's logit_bias; greedy picks see them
     * too): ids below the vocabulary, biases -100..100 (an id listed
     * twice gets both).
     * Copied by bn_sampler_new (and by whatever takes these params). */
    const struct bn_logit_bias *logit_bias;
    size_t n_logit_bias;
} bn_sampler_params;

typedef struct bn_logit_bias {
    uint32_t id;
    float bias;
} bn_logit_bias;

#define bn_sampler_params_init(p) bn_sampler_params_defaults((p), sizeof *(p))
BN_API void bn_sampler_params_defaults(bn_sampler_params *p, size_t size);

/* p NULL: defaults. BN_E_INVALID: a parameter out of range. */
BN_API bn_sampler *bn_sampler_new(const bn_sampler_params *p, uint32_t n_vocab, bn_err *e);
BN_API void bn_sampler_free(bn_sampler *s);
/* Chooses a token from logits (n_vocab floats, changed by the call); hist
 * is the history the penalties look at (usually bn_ctx_tokens).
 * BN_NO_TOKEN (below) when s or logits is NULL. The logits must be finite
 * (bn_ctx_eval's are): with a NaN among them which token comes is not
 * defined. */
BN_API uint32_t bn_sampler_sample(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist);
/* Restarts the random generator as bn_sampler_new would with this seed. */
BN_API void bn_sampler_reseed(bn_sampler *s, uint64_t seed);

/* --------------------------------------------------------- generation */

#define BN_NO_TOKEN UINT32_MAX

/* Why generation ended; positive, so bn_generate can return it. */
enum {
    BN_STOP_TOKEN = 1,  /* a stop token: the model's (EOS, end of turn) or one of stop_ids */
    BN_STOP_STRING = 2, /* a stop string, which is not part of the text */
    BN_STOP_LENGTH = 3, /* n_predict tokens */
    BN_STOP_CONTEXT = 4, /* the context is full */
    BN_STOP_ERROR = 5    /* (bn_batcher) the request cannot be answered */
};

enum { BN_MAX_STOP_IDS = 65536 /* stop_ids a generator or a batcher request takes at most */ };
/* (since 0.3.0) The most tokens bn_batcher_params.pass_tokens may ask of a step. */
enum { BN_MAX_PASS_TOKENS = 65536 };

typedef struct bn_generate_params {
    size_t size;              /* set by bn_generate_params_init */
    int32_t n_predict;        /* at most this many tokens; 128; -1: no limit */
    const char *const *stop;  /* n_stop stop strings (UTF-8, NUL-terminated) */
    size_t n_stop;
    const uint32_t *stop_ids; /* n_stop_ids (at most BN_MAX_STOP_IDS) more stop tokens, beside the model's */
    size_t n_stop_ids;
    int ignore_model_stops;   /* 1: the model's own stop tokens do not stop */
    unsigned detok_flags;     /* BN_DETOK_SKIP_SPECIAL (default) or 0 */
    /* (since 0.3.0) Speculative decoding, as bn_batcher_request's: each
     * decode pass also checks up to draft_max guessed tokens and keeps the
     * longest prefix the model agrees with, so one pass (one read of the
     * weights) may give several tokens, handed out one per
     * bn_generate_next. Greedy, the tokens are exactly those without it;
     * sampled with a draft model, they follow the model's distribution
     * (rejection sampling) but are other draws than without. lookup:
     * prompt lookup, guesses found by matching the last lookup..1 tokens
     * against the prompt and text so far (1..64; 0, default: off). draft:
     * a draft model's context (a second bn_ctx over a smaller model with
     * the same tokenizer; the same vocabulary size is checked) whose model
     * guesses (not with lookup); borrowed, and what it holds changes with
     * every answer; it guesses while the text fits its n_ctx (give it the
     * main context's: past its own, decoding goes on plain, unguessed);
     * NULL (default): none. draft_max: the most guesses a
     * pass checks (1..127; 0, default: 8; it adapts below that to how
     * many are kept). bn_generator_get_stats counts the guesses. */
    uint32_t lookup;
    uint32_t draft_max;
    bn_ctx *draft;
    /* (since 0.3.0, with pacing) Greedy speculative decoding is paced: a
     * pass of n tokens costs little more than one step on a model read
     * from memory but about n steps on one that stays in the caches, so
     * the generator times its passes (and a draft model's guesses) and
     * guesses only as many tokens as the measured times and the share of
     * guesses kept say gain time (none at all, but for a short look now
     * and then, where guessing loses). The tokens are the same either
     * way. 1: guess whenever a guess can be made (as sampled decoding
     * always does, so that a seed repeats its draws). */
    int spec_no_pacing;
} bn_generate_params;

#define bn_generate_params_init(p) bn_generate_params_defaults((p), sizeof *(p))
BN_API void bn_generate_params_defaults(bn_generate_params *p, size_t size);

typedef struct bn_generator bn_generator;

/* Generation in a context with a sampler; t NULL: ids only (no text, no
 * stop strings). The strings and ids in p are copied; p NULL: defaults.
 * BN_E_INVALID: a parameter out of range, lookup with a draft, a draft
 * context that is c, whose vocabulary is not the model's, or whose KV
 * budget cannot hold all its positions; c or the draft context held by a
 * batcher. */
BN_API bn_generator *bn_generator_new(bn_ctx *c, bn_sampler *s, const bn_tokenizer *t, const bn_generate_params *p,
                                      bn_err *e);
BN_API void bn_generator_free(bn_generator *g);
/* Evaluates a prompt (n >= 1), reusing the longest prefix the context
 * holds already: a chat passes its whole history each turn and pays for
 * the new part. BN_E_CONTEXT_FULL when it does not fit, BN_E_INVALID for
 * an id outside the vocabulary; the context is unchanged then.
 * BN_E_KV_FULL when the KV budget cannot hold the new part, BN_E_KV_RANGE
 * when a K or V value of it is beyond the f16 cache: the context then
 * holds the prefix it shared with the prompt, nothing after it. */
BN_API int bn_generator_prompt(bn_generator *g, const uint32_t *ids, size_t n, bn_err *e);
/* One step. Returns 1 with the next token in *id and the text final now
 * (possibly empty: bytes are held back while they may be part of a UTF-8
 * character or a stop string); 0 once generation has ended (*id is
 * BN_NO_TOKEN, *text the bytes held back to the end, and every later call
 * returns 0 with no text); a negative status on error (BN_E_KV_RANGE: a
 * K or V value of the model's beyond its f16 cache; a guess beyond it is
 * not an error, that pass checks no guesses, and neither is a draft
 * model's value beyond the draft's: the draft guesses less, or no more
 * in this answer, and the tokens are the model's). text and len may
 * be NULL; *text is never set to NULL, even when *len is 0. The last
 * token is evaluated only when the next step needs it. */
BN_API int bn_generate_next(bn_generator *g, uint32_t *id, const uint8_t **text, size_t *len, bn_err *e);
/* The BN_STOP_* reason once generation has ended: at the latest when
 * bn_generate_next returns 0 (it may be known with the last token, the
 * call before); 0 while generation goes on. */
BN_API int bn_generator_stop_reason(const bn_generator *g);

/* (since 0.3.0) What a generator has done since bn_generator_new, over
 * all its prompts. tokens / passes is tokens per weight pass: about 1 in
 * plain decoding (the first token of an answer comes from the prompt's
 * pass, the last is never evaluated), more when guesses are kept;
 * accepted / drafted is the share of guesses kept. */
typedef struct bn_generator_stats {
    size_t size;       /* set by bn_generator_stats_init */
    uint64_t passes;   /* decode passes: forward passes over generated tokens
                          (a token and the guesses after it) */
    uint64_t tokens;   /* tokens generated (handed out by bn_generate_next) */
    uint64_t drafted;  /* guesses checked in the passes */
    uint64_t accepted; /* guesses the model agreed with (kept) */
} bn_generator_stats;

#define bn_generator_stats_init(s) bn_generator_stats_defaults((s), sizeof *(s))
BN_API void bn_generator_stats_defaults(bn_generator_stats *s, size_t size);
/* Fills the fields of *s that its size (set by bn_generator_stats_init)
 * covers. BN_E_INVALID: g or s NULL, or s->size not set. */
BN_API int bn_generator_get_stats(const bn_generator *g, bn_generator_stats *s, bn_err *e);

/* Called for each generated token with its text (which may be empty), and
 * once more with BN_NO_TOKEN if text was held back to the end. A nonzero
 * return cancels generation. */
typedef int (*bn_token_fn)(void *user, uint32_t id, const uint8_t *text, size_t len);

/* The whole loop: the prompt, then tokens until a stop (fn may be NULL).
 * Returns the BN_STOP_* reason (> 0) or a negative status (BN_E_CANCELLED
 * when fn asked to stop). */
BN_API int bn_generate(bn_ctx *c, bn_sampler *s, const bn_tokenizer *t, const uint32_t *prompt, size_t n,
                       const bn_generate_params *p, bn_token_fn fn, void *user, bn_err *e);

/* -------------------------------------------------- continuous batching
 *
 * A batcher answers many requests at once over one context's sequences
 * (bn_ctx_params.n_seq of them running, the rest queued): each
 * bn_batcher_step is one forward pass that admits queued requests into
 * free sequences, evaluates one token of every running request and
 * chunks of the joining prompts (the decoders first, so a long prompt
 * never stalls them), samples each request with its own sampler and
 * reports what happened as events. Every weight is read once per pass for
 * all requests, so answering N requests together costs far less than N
 * times one. A finished request frees its sequence and KV blocks at once.
 *
 * Batching changes no result: a request gets the tokens it gets alone
 * (bn_generate with the same sampler parameters), at any n_seq, greedy
 * or seeded. A prompt that begins like a running request's tokens shares
 * that prefix's KV blocks instead of evaluating it again. When the KV
 * budget runs out, new requests wait and the newest running one is set
 * back (its blocks freed, its tokens kept) and evaluated again once the
 * free blocks hold its tokens beside the others (not sooner, where the
 * work would be thrown away again), which changes nothing either; only a
 * request that cannot fit the whole budget alone ends with BN_STOP_ERROR
 * (BN_E_KV_FULL). A request whose K or V value is beyond its context's
 * f16 cache (where bn_generate_next would fail) ends with BN_STOP_ERROR
 * (BN_E_KV_RANGE) and the others go on; one beyond the draft's cache
 * only makes the draft guess less (as bn_generate_next's).
 *
 * Events carry token ids. Text is the caller's: a bn_detok per request
 * turns its ids into text as bn_generate_next does, and a caller that
 * watches for stop strings cancels the request when it sees one.
 *
 * The batcher takes its context over: the context is emptied (every
 * sequence freed) by bn_batcher_new and again by bn_batcher_free, and is
 * not used directly in between; a second bn_batcher_new over it (or over
 * its draft context) fails with BN_E_INVALID until then. A batcher and
 * its context belong to one thread at a time. */

typedef struct bn_batcher bn_batcher;

typedef struct bn_batcher_params {
    size_t size;          /* set by bn_batcher_params_init */
    uint32_t pass_tokens; /* most tokens one step evaluates, at most
                             BN_MAX_PASS_TOKENS; 0 (default): 128, and
                             never fewer than n_seq */
    /* (since 0.3.0) A draft model's context, for requests with .draft: a second
     * bn_ctx over a smaller model with the same tokenizer (the same
     * vocabulary size is checked), with at least as many sequences as
     * the batcher's context and a KV budget that holds them all at its
     * whole context (its default, kv_budget 0: a draft's guesses cannot
     * wait for blocks). Borrowed and emptied like that context, and not
     * used directly in between. NULL (default): no draft model. */
    bn_ctx *draft;
} bn_batcher_params;

#define bn_batcher_params_init(p) bn_batcher_params_defaults((p), sizeof *(p))
BN_API void bn_batcher_params_defaults(bn_batcher_params *p, size_t size);

/* A batcher over c (which it borrows); p NULL: defaults. */
BN_API bn_batcher *bn_batcher_new(bn_ctx *c, const bn_batcher_params *p, bn_err *e);
/* Drops every request, queued or running, and empties the context. */
BN_API void bn_batcher_free(bn_batcher *b);

typedef struct bn_batcher_request {
    size_t size;                      /* set by bn_batcher_request_init */
    const uint32_t *prompt;           /* n_prompt >= 1 ids (copied) */
    size_t n_prompt;
    const bn_sampler_params *sampler; /* its own sampler (copied); NULL:
                                         bn_sampler_params defaults */
    int32_t n_predict;                /* at most this many tokens; 128; -1:
                                         until a stop or the context is full */
    const uint32_t *stop_ids;         /* n_stop_ids more stop tokens, beside
                                         the model's (copied) */
    size_t n_stop_ids;
    uint64_t tag;                     /* the caller's name for it, in its events */
    /* (since 0.3.0) Speculative decoding. Each decode pass of the request also
     * checks up to draft_max guessed tokens and keeps the longest prefix
     * the model agrees with, so one step may give it several tokens
     * (one event each, in order). Greedy, the tokens are exactly those
     * without it; sampled with a draft model, they follow the model's
     * distribution (rejection sampling) but are other draws than without.
     * lookup: prompt lookup, guesses found by matching the last
     * lookup..1 tokens against the prompt and text so far (1..64; 0,
     * default: off). draft: 1, the batcher's draft model guesses
     * (bn_batcher_params.draft; not with lookup). draft_max: the most
     * guesses a pass checks (1..127; 0, default: 8; it adapts below that
     * to how many are kept). */
    uint32_t lookup;
    uint32_t draft_max;
    int draft;
    /* (since 0.3.0) Log probabilities, read with bn_batcher_event_logprobs.
     * logprobs 1: each token of the request comes with its log probability
     * under the model, the log-softmax of the logits row it was drawn
     * from (before logit biases, penalties, temperature and cut-offs: the
     * model's, not the sampler's), and the top_logprobs (0 to
     * BN_MAX_TOP_LOGPROBS) likeliest tokens of that row with theirs. The
     * rows are plain decoding's bit for bit, so the values depend neither
     * on batching nor on guessing. score_prompt 1 (with logprobs): the
     * prompt is scored first, an event for each prompt token after the
     * first with its log probability given the tokens before it, in
     * order (is_prompt set); such a prompt is evaluated whole (no prefix
     * shared), and n_predict 0 then ends the request after its prompt
     * (scoring a text). */
    int logprobs;
    uint32_t top_logprobs;
    int score_prompt;
} bn_batcher_request;

#define bn_batcher_request_init(r) bn_batcher_request_defaults((r), sizeof *(r))
BN_API void bn_batcher_request_defaults(bn_batcher_request *r, size_t size);

/* Queues a request (first come, first admitted); tags should differ
 * among pending requests. Checked at once, nothing queued on failure:
 * BN_E_INVALID (an empty prompt, an id outside the vocabulary, n_predict
 * below -1, a sampler parameter out of range, lookup or draft_max out of
 * range, draft with lookup or without a draft model, top_logprobs out of
 * range or it or score_prompt without logprobs), BN_E_CONTEXT_FULL
 * (the prompt leaves no position to answer in: one that fills the whole
 * context is refused unless n_predict is 0). There the batcher differs
 * from bn_generate, which takes such a prompt and gives the one token its
 * last position predicts, ending with BN_STOP_CONTEXT. */
BN_API int bn_batcher_submit(bn_batcher *b, const bn_batcher_request *r, bn_err *e);
/* Requests queued or running. */
BN_API size_t bn_batcher_pending(const bn_batcher *b);
/* Drops the pending request with this tag, queued or running (its
 * caller found a stop string, or went away): no more events for it, its
 * sequence and KV blocks are free. Returns 1, or 0 when none has it. */
BN_API int bn_batcher_cancel(bn_batcher *b, uint64_t tag);

/* What one step did to one request: a new token, an end, or both (the
 * last token with BN_STOP_LENGTH or BN_STOP_CONTEXT). (Elements of an
 * array: this struct never changes.) */
typedef struct bn_batcher_event {
    uint64_t tag;
    uint32_t token;    /* BN_NO_TOKEN when none */
    int stop;          /* 0: it goes on; else why it ended: BN_STOP_TOKEN
                          (a stop token, which is not reported),
                          BN_STOP_LENGTH, BN_STOP_CONTEXT, BN_STOP_ERROR */
    int status;        /* BN_STOP_ERROR's bn_status, else BN_OK */
    const char *error; /* BN_STOP_ERROR's reason, else NULL */
} bn_batcher_event;

/* One pass. *ev receives *n_ev events, valid until the next call on b:
 * first the requests that ended without a pass (n_predict 0, or refused
 * at admission), then one for each token a request reached in the pass
 * (several for a request whose guesses were kept or whose prompt was
 * scored, in order); a request that met a stop token ends there with an
 * event without a token. Nothing pending: 0 events. A request ends with
 * exactly one event whose stop is nonzero. Fails only on an error of the
 * context itself (BN_E_NOMEM), and then no request has lost a token or
 * its end: stepping again goes on where it stopped. */
BN_API int bn_batcher_step(bn_batcher *b, const bn_batcher_event **ev, size_t *n_ev, bn_err *e);

/* (since 0.3.0) One of a logits row's likeliest tokens. */
typedef struct bn_token_logprob {
    uint32_t id;
    float logprob;
} bn_token_logprob;

#define BN_MAX_TOP_LOGPROBS 20

/* (since 0.3.0) The log probabilities of one event of the last step, for
 * requests with logprobs (bn_batcher_request). */
typedef struct bn_batcher_logprobs {
    size_t size;                  /* set by bn_batcher_logprobs_init */
    int has;                      /* 1: the event is a token with values
                                     below; 0: it has none (no token, or
                                     its request did not ask) */
    int is_prompt;                /* 1: a prompt token, scored (score_prompt);
                                     0: a token the model answered */
    float logprob;                /* the token's log probability */
    size_t n_top;                 /* the request's top_logprobs */
    const bn_token_logprob *top;  /* n_top of the row's likeliest tokens,
                                     likeliest first (ties: the lower id),
                                     valid until the next step */
} bn_batcher_logprobs;

#define bn_batcher_logprobs_init(l) bn_batcher_logprobs_defaults((l), sizeof *(l))
BN_API void bn_batcher_logprobs_defaults(bn_batcher_logprobs *l, size_t size);
/* Fills the fields of *l that its size covers for event i (0 <= i < n_ev)
 * of the last bn_batcher_step. BN_E_INVALID: b or l NULL, l->size not
 * set, or i past the last step's events. */
BN_API int bn_batcher_event_logprobs(const bn_batcher *b, size_t i, bn_batcher_logprobs *l, bn_err *e);

/* (since 0.3.0) What a batcher has done since bn_batcher_new, over all its
 * requests. accepted / drafted is the share of guesses kept;
 * spec_tokens / spec_passes is tokens per weight pass. */
typedef struct bn_batcher_stats {
    size_t size;           /* set by bn_batcher_stats_init */
    uint64_t passes;       /* forward passes (bn_batcher_step calls that ran one) */
    uint64_t tokens;       /* tokens evaluated in them, guesses included */
    uint64_t spec_passes;  /* decode passes of requests with lookup or draft */
    uint64_t drafted;      /* guesses checked in them */
    uint64_t accepted;     /* guesses the model agreed with (kept) */
    uint64_t spec_tokens;  /* tokens the speculative requests got in their
                              decode passes: spec_tokens / spec_passes is
                              tokens per weight pass */
} bn_batcher_stats;

#define bn_batcher_stats_init(s) bn_batcher_stats_defaults((s), sizeof *(s))
BN_API void bn_batcher_stats_defaults(bn_batcher_stats *s, size_t size);
/* Fills the fields of *s that its size (set by bn_batcher_stats_init)
 * covers. BN_E_INVALID: b or s NULL, or s->size not set. */
BN_API int bn_batcher_get_stats(const bn_batcher *b, bn_batcher_stats *s, bn_err *e);

/* ---------------------------------------------------- embedding models
 *
 * (since 0.4.0) An embedding model (its file says model.pooling: the
 * BitNet embedding models, formats/embedding.md) turns a text into one
 * vector. A context made over one (bn_ctx_new) keeps its K/V in f32,
 * whatever kv_type says, so that its vectors are bn-infer --embed's, bit
 * for bit, and gives hidden states, not logits: a row of bn_ctx_eval or
 * bn_ctx_eval_batch is then bn_model_n_embd floats, the token's
 * final-normed state. The calls that sample or score (bn_generate,
 * bn_generator_new, bn_batcher_new, bn_ctx_perplexity) refuse such a
 * context, or one as a draft, with BN_E_INVALID. */

/* 1 when m is an embedding model, 0 otherwise (also for NULL). */
BN_API int bn_model_is_embedding(const bn_model *m);

/* The vectors of k inputs of token ids (a text's: bn_tokenize with
 * BN_TOKENIZE_BOS, as bn-infer --embed tokenizes its lines) into
 * out, k rows of bn_model_n_embd floats: each input's last-token
 * final-normed state divided by its L2 norm (sentence-transformers'
 * last-token pooling and Normalize). The model's end token is appended to
 * an input that does not end with it. Inputs run as the sequences of one
 * batch, up to bn_ctx_n_seq(c) at a time (one at a time when the KV
 * budget holds no more); a vector is the same bits whatever else is in
 * its pass, and in whatever order the inputs come. Every sequence of the
 * context must be empty (no positions); they are empty after, and the
 * ids of sequences that were free are free again.
 * Checked before anything is evaluated, out untouched: BN_E_INVALID (c
 * NULL, or ids, n or out NULL where k > 0, not an embedding model, a
 * sequence holding positions, an empty input of a model without an end
 * token, an id outside the vocabulary), BN_E_CONTEXT_FULL (an input, its
 * end token included, longer than the context). After: BN_E_KV_FULL (the
 * budget is below the blocks of the input the message names: no retry
 * helps, and out may hold earlier inputs' vectors), BN_E_NOMEM, BN_ERROR
 * (a vector is not finite: a value overflowed, or the weights hold inf or
 * NaN; out holds every vector, the message names the first such input).
 * k = 0 evaluates nothing and succeeds once those checks of c pass. */
BN_API int bn_embed_batch(bn_ctx *c, const uint32_t *const *ids, const size_t *n, size_t k, float *out, bn_err *e);
/* One input: bn_embed_batch with k = 1. */
BN_API int bn_embed(bn_ctx *c, const uint32_t *ids, size_t n, float *vec, bn_err *e);

#ifdef __cplusplus
}
#endif

#endif
