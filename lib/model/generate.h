/* generate.h — what bn-infer does with a model: answer prompts (streaming
 * ids or text, stop tokens and stop strings), answer a stream of prompt
 * records one by one, hold a chat, and score text (perplexity). */
#ifndef BN_GENERATE_H
#define BN_GENERATE_H

#include "model.h"
#include "sampler.h"
#include "tokenizer.h"
#include "tokstream.h"

#define BN_MAX_STOP_STRINGS 16

typedef struct bn_gen_opts {
    int32_t n_predict;    /* tokens to generate per answer; -1: until a stop or the context is full */
    int echo;             /* write the prompt before the answer */
    int text;             /* write text (streaming detokenization) rather than ids */
    const char *stop[BN_MAX_STOP_STRINGS]; /* stop strings (NUL-terminated UTF-8) */
    int n_stop;
    bn_sampler_opts samp;
    /* Prompt lookup decoding (lookup.h): drafts found by matching the last
     * lookup..1 tokens against the text so far, checked up to draft_max at
     * a time in one pass. Greedy output is the same bytes as without;
     * sampled output follows the same distribution (bn_sampler_verify),
     * though not the same draws for a seed. 0: off. */
    uint32_t lookup;
    uint32_t draft_max;   /* 1..BN_KERN_MAX_N-1; 0: 8 */
    /* Greedy lookup is paced (bn_lookup_pace): it guesses only where the
     * measured pass times say guessing gains time. 1: guess whenever a
     * guess is found, as sampled lookup always does. */
    int no_pacing;
    /* A draft model's context (draft.h): its model, with the main model's
     * vocabulary, guesses up to draft_max tokens a pass, checked as prompt
     * lookup's are; sampled guesses by rejection sampling, so sampled
     * output follows the main model's distribution. Not with lookup. NULL:
     * none. The caller keeps it; answers change what it holds. */
    bn_ctx *draft;
    FILE *logits;         /* --logits: every prompt position's logits, or NULL */
    uint32_t logits_topk; /* 0: binary f32 rows; K: text, the K largest per position */
    const char *logits_name; /* logits' file in write errors; NULL: "logits" */
    /* Messages (bn.h) about a record that cannot be answered (BN_LOG_ERROR)
     * and a chat outgrowing the context (BN_LOG_WARN); one line each, no
     * program name. NULL: none. */
    bn_log_fn log;
    void *log_user;
} bn_gen_opts;

typedef struct bn_gen bn_gen;

/* tok may be NULL only for id output without stop strings. Output goes to
 * out; ids in the token stream's text form, or binary when binary_ids. */
bn_gen *bn_gen_new(const bn_model *m, bn_ctx *c, bn_tokenizer *tok, const bn_gen_opts *o, FILE *out, int binary_ids,
                   bn_err *e);
void bn_gen_free(bn_gen *g);

/* Answers one prompt: evaluates it (reusing whatever prefix the KV cache
 * already holds) and writes the continuation, flushed token by token, as
 * one output record. */
int bn_gen_answer(bn_gen *g, const uint32_t *prompt, size_t n, bn_err *e);

/* Answers every record of a token stream in order. A record that cannot
 * be answered (an id outside the vocabulary, longer than the context) is
 * logged as "NAME: record N: reason", answered with an empty record, and
 * *bad_records counts it; a broken stream ends the run. */
int bn_gen_stream(bn_gen *g, bn_tokr *in, uint64_t *bad_records, bn_err *e);

/* Counters for -v: tokens evaluated from prompts and generated, and the
 * seconds each took. */
typedef struct bn_gen_stats {
    uint64_t n_prompt, n_gen;
    double t_prompt, t_gen;
    /* prompt lookup or a draft model: answer passes (each reads the main
     * model's weights once), tokens drafted in them, drafts accepted */
    uint64_t n_pass, n_draft, n_accept;
} bn_gen_stats;
void bn_gen_get_stats(const bn_gen *g, bn_gen_stats *st);

/* bn_gen_stream with up to n_par records answered at once (gen_parallel.c:
 * bn_batch over g's context, which must hold n_par sequences), the
 * answers written in input order (the first unfinished one as it grows,
 * later ones held until then). Record k samples with seed + k - 1, so
 * every answer, and the whole output byte for byte, is the same at any
 * n_par. --logits is not supported here. */
int bn_gen_stream_parallel(bn_gen *g, bn_tokr *in, uint32_t n_par, uint64_t *bad_records, bn_err *e);

/* For answering several records at once: a writer of one answer into fp,
 * set up as g (ids or text, echo, stop strings) but with no context, and
 * no stream header (g's output has it). It takes the prompt (written
 * with echo), each generated token (*stopped is set when a stop string
 * completes: the answer is over), then the end of the answer; or the
 * empty answer of a record that cannot be answered. */
bn_gen *bn_gen_writer(const bn_gen *g, FILE *fp, bn_err *e);
int bn_gen_write_prompt(bn_gen *w, const uint32_t *prompt, size_t n, bn_err *e);
int bn_gen_write_token(bn_gen *w, uint32_t id, int *stopped, bn_err *e);
int bn_gen_write_end(bn_gen *w, int stopped, bn_err *e);
int bn_gen_write_empty(bn_gen *w, bn_err *e);
/* Bytes to g's own output, flushed. */
int bn_gen_write_raw(bn_gen *g, const void *b, size_t n, bn_err *e);
bn_ctx *bn_gen_context(const bn_gen *g);
const bn_gen_opts *bn_gen_options(const bn_gen *g);
void bn_gen_add_stats(bn_gen *g, const bn_gen_stats *st);

/* Interactive chat: one user message per line of in (a terminal or a
 * pipe), rendered with the model's chat format after an optional system
 * prompt; the KV cache is reused across turns and the oldest turns are
 * dropped (with a logged warning) when the context fills. */
int bn_chat(bn_gen *g, const char *system, FILE *in, bn_err *e);

/* ---------------------------------------------------------- perplexity */

typedef struct bn_ppl_opts {
    uint32_t window; /* tokens per window, BOS included (<= the context) */
    uint32_t stride; /* text tokens between window starts; 0: window-1 (no overlap) */
    FILE *progress;  /* one line per window, or NULL */
} bn_ppl_opts;

typedef struct bn_ppl {
    double ppl, ppl_err; /* exp(mean NLL), and its standard error */
    double nll, nll_sd;  /* mean NLL (nats/token) and its standard deviation */
    uint64_t n_scored;   /* predicted tokens */
    uint32_t n_windows;
    uint64_t n_tokens;   /* text tokens (BOS not counted) */
} bn_ppl;

/* Scores ids (text tokens, no BOS): each window is BOS + the next
 * window-1 tokens and predicts every token it has not predicted before
 * (with the default stride: all of them). Without a BOS id, a window's
 * first token is context only. */
int bn_perplexity(bn_ctx *c, const bn_model *m, const uint32_t *ids, size_t n, const bn_ppl_opts *o, bn_ppl *r,
                  bn_err *e);

/* One text for bn_perplexity_batch: its tokens (no BOS). */
typedef struct bn_ppl_text {
    const uint32_t *ids;
    size_t n;
} bn_ppl_text;

/* Scores each of texts[0..n_texts) as bn_perplexity would, n_par windows
 * at a time (of one text or several) in shared forward passes, one
 * sequence each (the context needs n_par sequences, n_par <= 128); the KV
 * budget may hold fewer windows, which then wait. r[i] is bit-identical to
 * bn_perplexity of text i alone, at any n_par; total (may be NULL) is the
 * same over every scored token of every text, in order. Progress lines
 * are "[w] ppl" for one text, "[t:w] ppl" for several. On an error that
 * concerns one text (too short, an id, a window larger than the KV
 * budget), *failed (may be NULL) is its index, otherwise n_texts. */
int bn_perplexity_batch(bn_ctx *c, const bn_model *m, const bn_ppl_text *texts, size_t n_texts, const bn_ppl_opts *o,
                        uint32_t n_par, bn_ppl *r, bn_ppl *total, size_t *failed, bn_err *e);

#endif
