/* serve.h — bn-serve's parts: the engine thread that owns the context and
 * answers every request through one continuous batch (engine.c), the
 * OpenAI-style request parsing and replies (request.c, reply.c), the
 * counters behind /metrics (metrics.c) and the HTTP side (http.c).
 * Program-side: linked into bn-serve alone. */
#ifndef BN_SERVE_H
#define BN_SERVE_H

#include "batch.h"
#include "embed.h"
#include "generate.h"

#include <pthread.h>

/* Request bodies larger than this are refused (413). */
enum { SRV_BODY_LIMIT = 1 << 20 };

/* ------------------------------------------------------------- a request */

enum { SRV_QUEUED, SRV_RUNNING, SRV_DONE };
enum { SRV_FIN_STOP = 1, SRV_FIN_LENGTH, SRV_FIN_ERROR };

/* One generated token's log probabilities (a request with logprobs). */
typedef struct srv_lp {
    uint32_t id;
    float logprob;
    size_t text_start, text_len; /* its text's place in the answer (text_offset), as the
                                    writer's detokenizer gives it before any is held back */
    int ready;       /* 0: an echoed prompt token not scored yet */
    uint32_t n_top;
    bn_batch_top top[BN_BATCH_MAX_TOP];
} srv_lp;

/* One generation request, shared by the HTTP thread that asked and the
 * engine: the first part is fixed before submission, the rest is the
 * engine's, read by the asker under the engine's mutex. */
typedef struct srv_job {
    uint32_t *prompt;
    size_t n_prompt;
    bn_sampler_opts samp;
    int32_t n_predict;
    char *stop[BN_MAX_STOP_STRINGS];
    int n_stop;
    int stream, chat;
    uint32_t lookup, draft_max; /* prompt lookup decoding (bn_request's); 0: off */
    int draft;                  /* the server's draft model guesses (bn_request's) */
    bn_logit_bias *bias;        /* samp.logit_bias's entries (the job's own) */
    int echo;                   /* a completion's echo: the prompt's text starts the answer's
                                   (with logprobs, its tokens scored: lp[0..n_prompt)) */
    int logprobs;               /* log probabilities (bn_request's), top_logprobs alternatives */
    uint32_t top_logprobs;
    int stream_usage;           /* stream_options.include_usage: 1, 0, or -1 when not
                                   sent (the usage then rides on the last chunk) */
    /* under the engine's mutex */
    char *text;        /* the answer so far (open_memstream's buffer) */
    size_t n_text;     /* its final bytes; while running, all of them */
    size_t *steps;     /* n_text after each decoding step that added text: a
                          stream sends a chunk per step, however late it reads */
    size_t n_steps, cap_steps;
    uint32_t n_gen;    /* tokens generated */
    srv_lp *lp;        /* with logprobs: each generated token's (echo: each prompt token's first) */
    size_t n_lp, cap_lp;
    size_t n_scored;   /* echo: prompt tokens after the first whose log probability came */
    bn_detok *dt;      /* with logprobs: the writer's detokenization again, for text_start */
    size_t text_pos;   /* the bytes it gave so far */
    int state, finish; /* SRV_QUEUED.., SRV_FIN_* once done */
    char error[256];
    int cancel;        /* the asker is gone */
    int refs;
    /* the engine's own */
    uint64_t tag;
    bn_gen *w;         /* detokenization and stop strings, into fp */
    FILE *fp;
    size_t size;       /* open_memstream's size */
    struct srv_job *next;
} srv_job;

void srv_job_free(srv_job *j);

/* One /v1/embeddings request: its inputs (each already an embedding
 * input, bn_embed_input), and the vectors the engine fills, n x n_embd,
 * L2-normalized as bn-infer --embed writes them. */
typedef struct srv_embed_job {
    bn_tokens *inputs;
    size_t n;
    uint64_t n_tokens; /* usage: the ids of all inputs, end tokens included */
    int base64;        /* encoding_format "base64" */
    /* under the engine's mutex */
    float *vec;
    int state, failed; /* SRV_QUEUED.., failed once done with error */
    char error[256];
    int cancel, refs;
    struct srv_embed_job *next;
} srv_embed_job;

void srv_embed_job_free(srv_embed_job *j);

/* --------------------------------------------------------------- engine */

typedef struct srv_engine_stats {
    size_t active, slots;     /* requests in flight (running or waiting), sequences */
    uint64_t kv_used_bytes, kv_budget_bytes;
    uint32_t kv_blocks, kv_blocks_used; /* KV blocks in the budget, and in use */
    uint64_t tokens_generated, tokens_prompt, passes;
    uint64_t lookup_drafted, lookup_accepted; /* prompt lookup's drafts and the ones kept */
    double busy_seconds;      /* time spent in forward passes */
} srv_engine_stats;

typedef struct srv_engine {
    pthread_mutex_t mu;
    pthread_cond_t work;     /* the engine waits for requests */
    pthread_cond_t progress; /* askers wait for their answers to grow */
    const bn_model *m;
    bn_ctx *c;
    bn_tokenizer *tok;
    bn_batch *b;
    srv_job *in_head, *in_tail; /* submitted, not yet handed to the batch */
    int embed;               /* an embedding model: embedding requests only, no batch */
    srv_embed_job *emb_head, *emb_tail; /* submitted embedding requests, in order */
    srv_embed_job *emb_running;
    srv_job **live;          /* handed to the batch, not done */
    size_t n_live, cap_live;
    size_t max_active;       /* sequences + queue: more is 503 */
    uint64_t next_tag;
    int stopping, failed;
    char fail_msg[1024];
    srv_engine_stats st;
    pthread_t th;
} srv_engine;

/* Starts the engine thread over c (n_seq sequences, all empty), which is
 * the engine's until srv_engine_stop. */
int srv_engine_start(srv_engine *g, const bn_model *m, bn_ctx *c, bn_ctx *draft, bn_tokenizer *tok, size_t queue,
                     bn_err *e);
/* Lets every request in flight finish (abandon: cancels them), then ends
 * the thread; later submissions are refused. srv_engine_free frees the
 * rest once no HTTP thread can use the engine (not the context). */
void srv_engine_stop(srv_engine *g, int abandon);
void srv_engine_free(srv_engine *g);
/* Hands a job to the engine (which takes a reference): 0, or -1 when
 * sequences and queue are all taken (the asker answers 503). */
int srv_engine_submit(srv_engine *g, srv_job *j);
/* The asker is done with j: cancels it if it still runs, drops its
 * reference; returns the tokens generated for it, which no later pass
 * adds to. */
unsigned srv_engine_release(srv_engine *g, srv_job *j);
/* The same for an embedding request (an engine over an embedding model,
 * whose context is made with embeddings): its inputs go through the
 * batch engine n_seq at a time, each in a sequence of its own. */
int srv_engine_submit_embed(srv_engine *g, srv_embed_job *j);
void srv_engine_release_embed(srv_engine *g, srv_embed_job *j);
/* Waits (mutex held) for j to end, at most ms milliseconds. */
void srv_engine_wait_embed(srv_engine *g, srv_embed_job *j, int ms);
void srv_engine_get_stats(srv_engine *g, srv_engine_stats *st);
/* Waits (mutex held) for j to grow past `have` bytes or end, at most ms
 * milliseconds. */
void srv_engine_wait(srv_engine *g, srv_job *j, size_t have, int ms);

/* ------------------------------------------------------ requests, replies */

/* What a bad request gets: an HTTP status and OpenAI's error fields;
 * param is the field at fault ("": none, null in the JSON). */
typedef struct srv_error {
    int status;
    const char *type, *code;
    char msg[512];
    char param[64];
} srv_error;

/* Fills *err and returns -1. A message that begins with a quoted field
 * name ("'temperature' must be ...", as every refusal of a field does)
 * gives param that name; srv_err_param sets another. */
int srv_err(srv_error *err, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int srv_err_param(srv_error *err, const char *param);

/* What request parsing needs of the server. */
typedef struct srv_model_info {
    const bn_model *m;
    bn_tokenizer *tok;
    pthread_mutex_t *tok_mu; /* encoding uses the tokenizer's scratch */
    const char *id;          /* the model's name in the API */
    long created;            /* its "created" in /v1/models: the model file's time */
    uint32_t n_ctx;
    int embed;               /* an embedding model (model.pooling): /v1/embeddings only */
    int draft;               /* a draft model (--draft): requests may ask for it */
} srv_model_info;

/* The body as a JSON object (valid UTF-8, one value, nothing after it),
 * or NULL and *err. */
struct cJSON *srv_parse_body(const char *body, size_t n, srv_error *err);
/* Text into ids with the model's tokenizer (flags BN_TOKENIZE_*). */
int srv_encode(const srv_model_info *mi, const char *text, size_t len, unsigned flags, uint32_t **ids, size_t *n,
               srv_error *err);
/* A "model" field that names another model: 404 (-1 and *err). */
int srv_check_model(const srv_model_info *mi, const struct cJSON *o, srv_error *err);

/* A /v1/completions (chat 0) or /v1/chat/completions body into a job
 * ready to submit; NULL and *err on a bad request. */
srv_job *srv_parse_generate(const srv_model_info *mi, const char *body, size_t n, int chat, srv_error *err);
/* /tokenize and /detokenize: the reply body (malloc'ed), or NULL and *err. */
char *srv_tokenize(const srv_model_info *mi, const char *body, size_t n, srv_error *err);
char *srv_detokenize(const srv_model_info *mi, const char *body, size_t n, srv_error *err);

/* OpenAI's error object. */
char *srv_error_json(const srv_error *err);
/* The whole answer of a finished job. */
char *srv_reply_json(const srv_model_info *mi, const srv_job *j, const char *id, long created);
/* One server-sent event of a streamed answer: the text's next piece with
 * the log probabilities of tokens [lp_a, lp_b) when asked for, or (final)
 * the finish reason (and the usage, unless stream_options said
 * otherwise); role: the first chat chunk. */
char *srv_chunk_json(const srv_model_info *mi, const srv_job *j, const char *id, long created, const char *text,
                     size_t n, size_t lp_a, size_t lp_b, int role, int final);
/* The chunk stream_options.include_usage asks for after the last one:
 * no choices, the usage. */
char *srv_usage_chunk_json(const srv_model_info *mi, const srv_job *j, const char *id, long created);
/* The server's model as OpenAI's model object; list: inside a list, as
 * GET /v1/models answers (else alone, as GET /v1/models/{id}). */
char *srv_models_json(const srv_model_info *mi, long created, int list);
/* /v1/embeddings: a body into a job ready to submit (NULL and *err on a
 * bad request), and the answer of a finished one (embed.c). */
srv_embed_job *srv_parse_embed(const srv_model_info *mi, const char *body, size_t n, srv_error *err);
char *srv_embed_json(const srv_model_info *mi, const srv_embed_job *j);
/* The code point of the valid UTF-8 character at text, its length in
 * *len; *len 0 where none starts (invalid, cut short, or n 0). */
uint32_t srv_utf8_decode(const char *text, size_t n, size_t *len);
/* A token id a request gave (a whole number, maybe huge) as text for an
 * error: every digit while it is exact, else the exponent form. */
const char *srv_id_text(double id, char buf[32]);
const char *srv_finish_name(int finish);

/* -------------------------------------------------------------- metrics */

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t by_status[600];
    uint64_t prompt_tokens, completion_tokens, rejected_full;
} srv_metrics;

void srv_metrics_init(srv_metrics *mt);
void srv_metrics_request(srv_metrics *mt, int status, uint32_t n_prompt, uint32_t n_gen);
/* Prometheus text exposition (malloc'ed). */
char *srv_metrics_text(srv_metrics *mt, srv_engine *g);

/* ----------------------------------------------------------------- http */

typedef struct srv_http_opts {
    const char *host;
    unsigned port;
    const char *api_key; /* NULL: none asked */
    int log_json;
    int log_health; /* log answered GET /health too */
    unsigned timeout_s; /* an idle connection is closed after this long */
    const char *prog;    /* the name log lines start with */
    /* --allow-origin: browser pages from these origins ("*": any) may
     * call the API (CORS); none: no CORS headers at all */
    const char *const *origins;
    size_t n_origins;
} srv_http_opts;

typedef struct srv_http srv_http;

/* Listens (host, port; port 0 picks a free one, *port gets it). Until
 * srv_http_ready, everything but /health answers 503. */
srv_http *srv_http_start(const srv_http_opts *o, unsigned *port, bn_err *e);
void srv_http_ready(srv_http *h, srv_engine *g, const srv_model_info *mi);
/* Stops accepting connections; requests already read are answered. */
void srv_http_quiesce(srv_http *h);
/* Requests being answered now. */
size_t srv_http_active(srv_http *h);
void srv_http_stop(srv_http *h);

#endif
