/* embed.h — what an embedding model (model.pooling, formats/embedding.md)
 * makes of its inputs: one vector per record, the last token's
 * final-normed hidden state, L2-normalized. Records go through the batch
 * engine several at a time (each its own sequence, bn_ctx_eval_batch),
 * which gives every record the same vector, bit for bit, whatever else
 * is in its pass. */
#ifndef BN_EMBED_H
#define BN_EMBED_H

#include "model.h"
#include "tokenizer.h"
#include "tokstream.h"

#include <stdio.h>

enum { BN_EMBED_TEXT = 0, BN_EMBED_F32 = 1, BN_EMBED_JSON = 2 };

typedef struct bn_embed_opts {
    int format;        /* BN_EMBED_*: a line of floats, raw f32, or a JSON object per record */
    uint32_t parallel; /* records per pass (<= the context's sequences); 0: 1 */
    bn_log_fn log;     /* a record that cannot be embedded (BN_LOG_ERROR), one line; NULL: none */
    void *log_user;
    const char *input; /* the records' file ("-": standard input) for those lines, or NULL */
    /* whether the source's next record can be read without waiting (the
     * src's ctx), or NULL: always. A pass takes the records that are
     * ready, so a co-process that writes one and waits is answered. */
    int (*ready)(void *src_ctx);
} bn_embed_opts;

/* Where records come from: 1 and *out filled (ids, cleared first), 0 at
 * the end, -1 on an error (e set). */
typedef int (*bn_embed_src)(void *ctx, bn_tokens *out, bn_err *e);

/* The k records' vectors into out (k x n_embd): records 0..k-1 in
 * sequences 0..k-1 of c, which must be empty and k <= bn_ctx_n_seq(c);
 * they are empty again after. c must be made with embeddings set. Each
 * record already ends with the model's end token (bn_embed_input). */
int bn_embed_run(bn_ctx *c, const bn_tokens *recs, size_t k, float *out, bn_err *e);

/* Makes every sequence of c live (bn_embed_run takes sequences 0..k-1,
 * empty): 0, or BN_E_NOMEM when a sequence's tables cannot be made. */
int bn_embed_seqs_live(bn_ctx *c, bn_err *e);

/* Whether a vector of d floats is all finite (JSON and callers have no
 * spelling for inf or NaN: bn_embed_stream and bn-serve refuse it). */
int bn_embed_finite(const float *v, size_t d);

/* Makes a record an embedding input: the model's end token
 * (tokens.embed_end_id) appended unless it already ends with it. */
int bn_embed_input(const bn_hparams *hp, bn_tokens *rec, bn_err *e);

/* Every record of src embedded and written to out in input order. A
 * record that cannot be embedded (longer than the context) is named
 * through o->log, counted in *bad and holds its place in the output: an
 * empty line (text), an object with "error" (JSON), n_embd NaNs (f32).
 * Returns -1 only when reading or writing fails. */
int bn_embed_stream(bn_ctx *c, bn_embed_src src, void *src_ctx, const bn_embed_opts *o, FILE *out, uint64_t *bad,
                    bn_err *e);

/* Sources: the records of a token stream; the lines of a text file (one
 * text per line, without its newline), tokenized; one text. */
typedef struct bn_embed_tokr {
    bn_tokr *in;
    uint32_t max; /* ids kept per record (the rest are counted in total) */
    uint64_t total;
} bn_embed_tokr;
int bn_embed_src_tokr(void *ctx, bn_tokens *out, bn_err *e);
/* bn_embed_opts.ready for it (bn_tokr_ready). */
int bn_embed_src_tokr_ready(void *ctx);

typedef struct bn_embed_text {
    bn_tokenizer *tok;
    const bn_hparams *hp;
    FILE *lines;      /* one text per line, or NULL: */
    const char *text; /* one text, taken once */
    size_t len;
    char *buf;        /* getline's */
    size_t cap;
} bn_embed_text;
int bn_embed_src_text(void *ctx, bn_tokens *out, bn_err *e);
/* bn_embed_opts.ready for it: whether its file's descriptor is readable
 * (a regular file always is; lines already in the FILE's buffer but not
 * yet seen make a pass shorter, never wait). */
int bn_embed_src_text_ready(void *ctx);

#endif
