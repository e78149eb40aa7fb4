/* bn-infer — runs a BitNet b1.58 model: answers prompts (a token stream on
 * stdin, or -p/-f text), chats (-cnv), or scores text (--perplexity).
 * This file only parses options and calls libbn (lib/generate.h). */
#include "cli.h"
#include "cpu.h"
#include "draftmodel.h"
#include "formats.h"
#include "kvbudget.h"
#include "opt.h"
#include "embed.h"
#include "generate.h"
#include "pool.h"
#include "progress.h"
#include "signals.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const bn_prog prog = {
    .name = "bn-infer",
    .summary = "exact BitNet b1.58 inference: generate, chat, score",
    .usage = "usage: bn-infer -m MODEL [options] < ids        answer each prompt record of a token stream\n"
             "       bn-infer -m MODEL -p TEXT | -f FILE      answer one text prompt\n"
             "       bn-infer -m MODEL -cnv [--system TEXT]   chat, one user message per line\n"
             "       bn-infer -m MODEL --perplexity FILE...   score texts\n"
             "       bn-infer -m MODEL --embed [-p TEXT | -f FILE | < ids]   embedding vectors\n",
    .operand = "FILE",
    .epilog = "Exit status: 0 success, 1 a data or runtime error (also: some prompt records could not be answered),\n"
              "2 usage error. See bn-infer(1).\n",
};

/* --perplexity files given as the option's values (the operands add more) */
#define MAX_PPL_OPTS 256
#define MAX_LOGIT_BIAS 256

typedef struct opts {
    const char *model, *prompt, *file, *system, *logits_file, *kernel, *draft, *chat_date;
    const char *ppl_opt[MAX_PPL_OPTS];
    size_t n_ppl_opt;
    const char **ppl_files; /* the --perplexity values, then the operands */
    size_t n_ppl;
    uint64_t kv_budget;
    uint32_t n_ctx, ppl_stride, logits_topk, parallel;
    int threads, kv_f16, no_act_quant, mmap_only, text, ids, chat, chat_whole, json, verbose, kernel_set;
    int embed, embed_f32;
    bn_logit_bias bias[MAX_LOGIT_BIAS]; /* --logit-bias, the sampler's logit_bias */
    bn_gen_opts g;
} opts;

static int add_stop(void *dest, const char *v, char *why, size_t n)
{
    bn_gen_opts *g = dest;
    if (!*v)
        return snprintf(why, n, "the stop string is empty"), -1;
    if (g->n_stop == BN_MAX_STOP_STRINGS)
        return snprintf(why, n, "at most %d stop strings", BN_MAX_STOP_STRINGS), -1;
    g->stop[g->n_stop++] = v;
    return 0;
}

/* --logit-bias ID=BIAS: a token's logit raised (or lowered) by BIAS,
 * -100..100, before sampling; the id is checked against the model's
 * vocabulary once it is loaded. */
static int add_logit_bias(void *dest, const char *v, char *why, size_t n)
{
    opts *o = dest;
    char *eq = strchr(v, '=');
    uint64_t id;
    double b;
    if (!eq || eq == v)
        return snprintf(why, n, "'%s' is not ID=BIAS", v), -1;
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%.*s", (int)(eq - v < 23 ? eq - v : 23), v);
    if ((size_t)(eq - v) >= sizeof idtext || bn_parse_u64(idtext, 0, UINT32_MAX, &id))
        return snprintf(why, n, "'%s': the token id is not a whole number", v), -1;
    if (bn_parse_double(eq + 1, &b) || !(b >= -100 && b <= 100))
        return snprintf(why, n, "'%s': the bias must be a number from -100 to 100", v), -1;
    if (o->g.samp.n_logit_bias == MAX_LOGIT_BIAS)
        return snprintf(why, n, "at most %d biases", MAX_LOGIT_BIAS), -1;
    o->bias[o->g.samp.n_logit_bias++] = (bn_logit_bias){(uint32_t)id, (float)b};
    o->g.samp.logit_bias = o->bias;
    return 0;
}

static const char *const kv_names[] = {"f32", "f16", NULL};
/* The first option in table that was given and whose long name is one of
 * names (NULL-terminated), as "-x/--name" or "--name" into buf; NULL if
 * none was. */
static const char *first_given(const bn_opt *table, const char *const *names, char *buf, size_t n)
{
    for (const bn_opt *t = table; t->kind != BN_OPT_END; t++)
        for (size_t i = 0; t->given && t->name && names[i]; i++)
            if (!strcmp(t->name, names[i])) {
                if (t->letter)
                    snprintf(buf, n, "-%c/--%s", t->letter, t->name);
                else
                    snprintf(buf, n, "--%s", t->name);
                return buf;
            }
    return NULL;
}

static const char *const embed_formats[] = {"text", "f32", NULL};

/* The i-th text to score: --perplexity's values, then the operands argv[1..]. */
static const char *ppl_name(const opts *o, char **argv, size_t i)
{
    return i < o->n_ppl_opt ? o->ppl_opt[i] : argv[i - o->n_ppl_opt + 1];
}

static int parse(int argc, char **argv, opts *o)
{
    const char *const *kernels = bn_kernels_names();
    memset(o, 0, sizeof *o);
    while (strcmp(kernels[o->kernel_set], "auto"))
        o->kernel_set++;
    /* f16 halves the cache; on the tiny model its perplexity differs from
     * f32 by 0.04%, as much as two correct f32 implementations differ. */
    o->kv_f16 = -1; /* f16, or f32 with --embed: below */
    o->chat_whole = -1; /* not given: split */
    o->threads = bn_cpu_count();
    o->g.n_predict = 128;
    bn_sampler_defaults(&o->g.samp);
    o->g.samp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    bn_opt table[] = {
        OPT_SECTION("model and runtime:"),
        OPT_STRING('m', "model", &o->model, "FILE", "bn model (also an HF directory, GGUF; '-' streams a bn file)"),
        OPT_U32('c', "ctx", &o->n_ctx, "N", 2, 1u << 24, "context positions (default and maximum: the model's)"),
        OPT_INT('t', "threads", &o->threads, "N", 1, 1024, "threads (default: all cores)"),
        OPT_ENUM(0, "kv", &o->kv_f16, NULL, kv_names, NULL, "KV cache precision (default f16, f32 with --embed; f32 for verification)"),
        OPT_ENUM(0, "kernel", &o->kernel_set, "NAME", kernels, NULL,
                 "ternary kernels: %s\n(auto, the default: the fastest this CPU has; ref: the portable reference)"),
        OPT_FLAG(0, "no-act-quant", &o->no_act_quant, "float activations into the ternary projections (verification)"),
        OPT_FLAG(0, "mmap", &o->mmap_only, "decode from the file mapping instead of a copy in memory on huge pages"),
        OPT_BYTES(0, "kv-budget", &o->kv_budget, "N[K|M|G]", 1,
                  "KV cache bytes for all sequences (default: half the memory available\n"
                  "after the model, at least one full context, at most what --parallel uses)"),
        OPT_SECTION("input and output:"),
        OPT_STRING('p', "prompt", &o->prompt, "TEXT",
                   "prompt text (tokenized with the model's tokenizer, BOS as the model says)"),
        OPT_STRING('f', "file", &o->file, "FILE", "prompt text from a file"),
        OPT_FLAG(0, "text", &o->text, "write text (default with -p, -f, -cnv)"),
        OPT_FLAG(0, "ids", &o->ids, "write token ids (default with a token stream on stdin)"),
        OPT_FLAG(0, "echo", &o->g.echo, "write the prompt before the answer"),
        OPT_INT('n', "predict", &o->g.n_predict, "N", -1, INT32_MAX,
                "tokens to generate per answer (default 128; -1: until a stop or a full context)"),
        OPT_CALL(0, "stop", &o->g, add_stop, "STRING", "also stop at this text (repeatable, up to 16)"),
        {.kind = BN_OPT_U32, .dash_name = "np", .name = "parallel", .dest = &o->parallel, .arg = "N", .lo = 1,
         .hi = 256,
         .help = "answer up to N prompt records at once, in input order (the same output at any N;\n"
                 "record k samples with seed + k - 1); with --perplexity: N windows at once (N <= 128)"},
        OPT_SECTION("sampling:"),
        OPT_FLOAT(0, "temp", &o->g.samp.temp, "T", 0, 100, "temperature (default 0.8; 0: greedy)"),
        OPT_U32(0, "top-k", &o->g.samp.top_k, "K", 0, 1u << 22, "keep the K most likely tokens (default 40; 0: off)"),
        OPT_FLOAT(0, "top-p", &o->g.samp.top_p, "P", 0, 1,
                  "keep the smallest set with probability >= P (default 0.95; 1: off)"),
        OPT_FLOAT(0, "min-p", &o->g.samp.min_p, "P", 0, 1,
                  "drop tokens below P x the best one's probability (default 0.05; 0: off)"),
        OPT_FLOAT(0, "repeat-penalty", &o->g.samp.repeat_penalty, "F", 0.01, 100,
                  "penalize recent tokens (default 1: off)"),
        OPT_FLOAT(0, "presence-penalty", &o->g.samp.presence_penalty, "F", -100, 100,
                  "subtract F from recent tokens' logits (default 0: off)"),
        OPT_U32(0, "repeat-last-n", &o->g.samp.penalty_last_n, "N", 0, 1u << 24,
                "recent tokens the penalties look at (default 64; 0: all)"),
        OPT_U64(0, "seed", &o->g.samp.seed, "S", "seed of the sampler (default: from the clock and the process id)"),
        OPT_CALL(0, "logit-bias", o, add_logit_bias, "ID=BIAS",
                 "add BIAS (-100..100) to token ID's logit before sampling, greedy too (repeatable)"),
        OPT_SECTION("speculative decoding:"),
        OPT_U32(0, "lookup", &o->g.lookup, "N", 1, 64,
                "prompt lookup: draft next tokens where the last N..1 tokens occurred before\n"
                "in the text, check them in one pass (greedy: the same output; sampled: the same distribution)"),
        OPT_STRING(0, "draft", &o->draft, "MODEL",
                   "a draft model (smaller, the same tokenizer) guesses the next tokens, the model checks\n"
                   "them in one pass (greedy: the same output; sampled: the same distribution)"),
        OPT_U32(0, "draft-max", &o->g.draft_max, "K", 1, BN_KERN_MAX_N - 1,
                "most tokens drafted for one pass (default 8; with --lookup or --draft)"),
        OPT_FLAG(0, "no-pacing", &o->g.no_pacing,
                 "greedy --lookup or --draft: guess whenever a guess can be made, also where the\n"
                 "timed passes say guessing loses time (the default leaves those guesses out)"),
        OPT_SECTION("chat:"),
        {.kind = BN_OPT_FLAG, .dash_name = "cnv", .name = "chat", .dest = &o->chat,
         .help = "interactive chat with the model's chat format"},
        OPT_STRING(0, "system", &o->system, "TEXT", "system prompt"),
        OPT_ENUM(0, "chat-encoding", &o->chat_whole, "HOW", bn_cli_chat_encodings, NULL,
                 "split (each header and text apart, as the model was trained; default)\n"
                 "or whole (as one text, as Hugging Face's template and bitnet.cpp)"),
        OPT_STRING(0, "chat-date", &o->chat_date, "DATE",
                   "the date a Llama 3.1 or 3.2 format's system message gives (default: the one\n"
                   "3.1's template fixes, today for 3.2)"),
        OPT_SECTION("embedding:"),
        OPT_FLAG(0, "embed", &o->embed,
                 "an embedding model's vector of each record (stdin), of -p TEXT, or of each line of -f FILE:\n"
                 "its last token's state, L2-normalized; one line of floats each (--json: an object each)"),
        OPT_ENUM(0, "embed-format", &o->embed_f32, "FMT", embed_formats, NULL,
                 "text (default) or f32: raw little-endian floats, n_embd per record"),
        OPT_SECTION("scoring:"),
        OPT_LIST(0, "perplexity", o->ppl_opt, &o->n_ppl_opt, MAX_PPL_OPTS, "FILE",
                 "perplexity of a text ('-': stdin) over windows of -c tokens;\n"
                 "more files: operands or the option again (each scored alone, then a total)"),
        OPT_U32(0, "ppl-stride", &o->ppl_stride, "N", 1, 1u << 24, "text tokens between windows (default: no overlap)"),
        OPT_STRING(0, "logits", &o->logits_file, "FILE", "write each prompt position's logits (f32, n_tokens x vocab)"),
        OPT_U32(0, "logits-topk", &o->logits_topk, "K", 1, 1u << 22, "... as text instead: the K largest 'id:logit' per line"),
        OPT_FLAG(0, "json", &o->json, "perplexity result as JSON; with --embed, a JSON object per record"),
        OPT_FLAG('v', "verbose", &o->verbose, "timings and sizes on stderr"),
        OPT_END,
    };
    int n, rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    /* generating options that scoring and embedding would ignore */
    static const char *const generating[] = {"predict",        "stop",          "temp",          "top-k",
                                             "top-p",          "min-p",         "repeat-penalty", "presence-penalty",
                                             "repeat-last-n",  "seed",          NULL};
    char gen_buf[48];
    const char *gen_opt = first_given(table, generating, gen_buf, sizeof gen_buf);
    if (gen_opt && (o->n_ppl_opt || o->embed))
        return bn_usage_error(&prog, "%s is for generating: not with --perplexity or --embed", gen_opt);
    o->kernel = kernels[o->kernel_set];
    if (n && !o->n_ppl_opt)
        return bn_usage_error(&prog, "extra operand '%s' (files to score follow --perplexity)", argv[1]);
    if (o->embed && (o->chat || o->n_ppl_opt || o->logits_file || o->g.lookup || o->g.echo || o->text || o->ids))
        return bn_usage_error(&prog, "--embed writes vectors: not with -cnv, --perplexity, --logits, --lookup, --echo, "
                                     "--text or --ids");
    if (o->embed_f32 && !o->embed)
        return bn_usage_error(&prog, "--embed-format needs --embed");
    if (o->embed_f32 && o->json)
        return bn_usage_error(&prog, "--embed-format f32 and --json exclude each other");
    if (o->g.draft_max && !o->g.lookup && !o->draft)
        return bn_usage_error(&prog, "--draft-max needs --lookup N or --draft MODEL");
    if (o->g.no_pacing && !o->g.lookup && !o->draft)
        return bn_usage_error(&prog, "--no-pacing needs --lookup N or --draft MODEL");
    if (o->draft && o->g.lookup)
        return bn_usage_error(&prog, "--draft and --lookup exclude each other");
    if (o->draft && (o->n_ppl_opt || o->embed))
        return bn_usage_error(&prog, "--draft generates answers: not with --perplexity or --embed");
    if (o->g.samp.n_logit_bias && (o->n_ppl_opt || o->embed))
        return bn_usage_error(&prog, "--logit-bias changes sampling: not with --perplexity or --embed");
    /* the texts to score: the option's values, then the operands argv[1..n]
     * (listed at the end, after every check: a usage error frees nothing) */
    o->n_ppl = o->n_ppl_opt ? o->n_ppl_opt + (size_t)n : 0;
    if (!o->model)
        return bn_usage_error(&prog, "no model given (-m FILE)");
    if ((o->prompt != NULL) + (o->file != NULL) + o->chat + (o->n_ppl != 0) > 1)
        return bn_usage_error(&prog, "-p, -f, -cnv and --perplexity exclude each other");
    /* options that would otherwise be ignored without a word */
    if (o->n_ppl && (o->logits_file || o->g.lookup || o->g.echo || o->text || o->ids))
        return bn_usage_error(&prog, "--perplexity scores texts: not with --logits, --lookup, --echo, --text or --ids");
    /* standard output carries answer records unless there are none */
    if (o->logits_file && !strcmp(o->logits_file, "-") && (o->g.n_predict != 0 || o->g.echo || o->chat))
        return bn_usage_error(&prog, "--logits -: standard output then carries the logits alone: only with -n 0, "
                                     "without --echo and -cnv (or give --logits a FILE)");
    if (o->ppl_stride && !o->n_ppl)
        return bn_usage_error(&prog, "--ppl-stride needs --perplexity");
    if (o->system && !o->chat)
        return bn_usage_error(&prog, "--system needs -cnv");
    if (o->chat_whole >= 0 && !o->chat)
        return bn_usage_error(&prog, "--chat-encoding needs -cnv");
    if (o->chat_date && !o->chat)
        return bn_usage_error(&prog, "--chat-date needs -cnv");
    const char *bad_date = bn_cli_chat_date_problem(o->chat_date);
    if (bad_date)
        return bn_usage_error(&prog, "%s", bad_date);
    o->chat_whole = o->chat_whole > 0;
    if (o->json && !o->n_ppl && !o->embed)
        return bn_usage_error(&prog, "--json is for --perplexity and --embed results");
    /* standard input can be read once */
    size_t dashes = !strcmp(o->model, "-") + (o->file && !strcmp(o->file, "-")) +
                    (o->draft && !strcmp(o->draft, "-")); /* else the draft eats the records or the model */
    for (size_t i = 0; i < o->n_ppl; i++)
        dashes += !strcmp(ppl_name(o, argv, i), "-");
    if (!o->prompt && !o->file && !o->chat && !o->n_ppl && !o->embed)
        dashes++; /* a token stream on stdin */
    else if (o->embed && !o->prompt && !o->file)
        dashes++; /* records on stdin */
    else if (o->chat)
        dashes++; /* the user's lines */
    if (dashes > 1)
        return bn_usage_error(&prog, "standard input can be read once: the model (-m -), the draft (--draft -), the "
                                     "prompt (-f -), a text to score (--perplexity -) or the input records, only one "
                                     "of them");
    if (o->text && o->ids)
        return bn_usage_error(&prog, "--text and --ids exclude each other");
    if (o->logits_topk && !o->logits_file)
        return bn_usage_error(&prog, "--logits-topk needs --logits FILE");
    if (o->chat && o->ids)
        return bn_usage_error(&prog, "-cnv writes text; --ids cannot be used with it");
    if (o->parallel && !o->embed && (o->prompt || o->file || o->chat))
        return bn_usage_error(&prog, "--parallel answers a token stream on stdin or scores texts: not with -p, -f or -cnv");
    if (o->parallel > BN_KERN_MAX_N && o->n_ppl)
        return bn_usage_error(&prog, "--parallel with --perplexity: at most %d windows at once", BN_KERN_MAX_N);
    if (o->parallel && o->logits_file)
        return bn_usage_error(&prog, "--parallel and --logits exclude each other");
    /* binary output to a terminal: refused before the model loads, as the
     * other programs refuse it (a usage error: the command line asks for it) */
    /* --logits is written atomically: over a file this run reads, it would replace it */
    if (bn_cli_same_file(o->logits_file, o->model, STDIN_FILENO) || bn_cli_same_file(o->logits_file, o->draft, -1) ||
        bn_cli_same_file(o->logits_file, o->file, -1))
        return bn_usage_error(&prog, "--logits '%s' names a file this run reads", o->logits_file);
    if (o->logits_file && !o->logits_topk && bn_out_is_tty(o->logits_file))
        return bn_usage_error(&prog, "refusing to write binary logits to a terminal (use --logits FILE or a pipe)");
    if (o->embed_f32 && isatty(STDOUT_FILENO))
        return bn_usage_error(&prog, "refusing to write binary vectors to a terminal (redirect standard output)");
    o->g.text = o->ids ? 0 : o->text || o->prompt || o->file || o->chat;
    if (o->n_ppl) { /* the operands live as long as the program */
        if (!(o->ppl_files = malloc(o->n_ppl * sizeof *o->ppl_files)))
            return bn_usage_error(&prog, "out of memory");
        for (size_t i = 0; i < o->n_ppl; i++)
            o->ppl_files[i] = ppl_name(o, argv, i);
    }
    /* An embedding is one pass whose KV is dropped after it: f32 by
     * default, which keeps the vectors as close to exact as the reference
     * (f16 moved them by a cosine of ~3e-4 on the synthetic Qwen3 model). */
    if (o->kv_f16 < 0)
        o->kv_f16 = !o->embed;
    return BN_OPT_RUN;
}

static int tokenize_text(bn_tokenizer *tok, const bn_model *m, const uint8_t *text, size_t n, bn_tokens *out,
                         bn_err *e)
{
    return bn_tokenizer_encode(tok, text, n, m->hp.add_bos && m->hp.bos_id >= 0 ? BN_ENC_BOS : 0, 0, out, e);
}

/* s as a JSON string: quotes, backslashes and control bytes escaped. */
static void json_string(const char *text, FILE *f)
{
    char *s = bn_utf8_clean(text, strlen(text)); /* a file name may hold any bytes, JSON only UTF-8 */
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    fputc('"', f);
    free(s);
}

/* One result line: a file's, or with file NULL the total over n_files. */
static void print_ppl(const opts *o, const char *file, const bn_ppl *r, uint32_t window, double secs)
{
    if (o->json) {
        fputc('{', stdout);
        if (file)
            fputs("\"file\": ", stdout), json_string(file, stdout);
        else
            printf("\"files\": %zu", o->n_ppl);
        /* JSON has no inf or NaN (a model holding them scores so): null */
        const char *const keys[] = {"ppl", "ppl_err", "nll", "nll_sd"};
        const double vals[] = {r->ppl, r->ppl_err, r->nll, r->nll_sd};
        for (int i = 0; i < 4; i++)
            printf(isfinite(vals[i]) ? ", \"%s\": %.9g" : ", \"%s\": null", keys[i], vals[i]);
        printf(", \"tokens\": %llu, \"scored\": %llu, \"windows\": %u, \"window\": %u, \"kv\": \"%s\", "
               "\"act_quant\": %s, \"seconds\": %.3f}\n",
               (unsigned long long)r->n_tokens, (unsigned long long)r->n_scored, r->n_windows, window,
               o->kv_f16 ? "f16" : "f32", o->no_act_quant ? "false" : "true", secs);
        return;
    }
    if (o->n_ppl > 1 && file) /* one line a file, whatever its name holds (escaped as in messages) */
        bn_fput_escaped((const uint8_t *)file, strlen(file), BN_ESC_CONTROLS, stdout), fputs(": ", stdout);
    else if (o->n_ppl > 1)
        printf("total (%zu files): ", o->n_ppl);
    printf("PPL = %.4f +/- %.4f (%llu token%s scored in %u window%s of %u)\n", r->ppl, r->ppl_err,
           (unsigned long long)r->n_scored, r->n_scored == 1 ? "" : "s", r->n_windows, r->n_windows == 1 ? "" : "s",
           window);
}

/* e's message as "FILE: reason" (a message naming the file already is kept). */
static void name_file(const char *file, bn_err *e)
{
    if (!strchr(e->msg, ':') || strncmp(e->msg, file, strlen(file))) {
        bn_err t = *e;
        bn_fail(e, "%s: %s", file, t.msg);
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* Scores every file: one alone with bn_perplexity; several, or any with
 * --parallel, in shared passes (bn_perplexity_batch: the same numbers, and
 * a total), where each file's seconds are those of the whole run. */
static int run_perplexity(const opts *o, bn_model *m, bn_ctx *c, bn_tokenizer *tok, bn_err *e)
{
    size_t nf = o->n_ppl;
    bn_tokens *ids = calloc(nf, sizeof *ids);
    bn_ppl_text *texts = calloc(nf, sizeof *texts);
    bn_ppl *r = calloc(nf, sizeof *r);
    int rc = -1;
    if (!ids || !texts || !r) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nf; i++) {
        bn_map map;
        if (bn_map_file(o->ppl_files[i], &map, e))
            goto done;
        int t = bn_tokenizer_encode(tok, map.data, map.size, 0, 0, &ids[i], e);
        bn_unmap(&map);
        if (t) {
            name_file(o->ppl_files[i], e);
            goto done;
        }
        texts[i] = (bn_ppl_text){ids[i].ids, ids[i].n};
    }
    bn_ppl_opts po = {bn_ctx_n_ctx(c), o->ppl_stride, bn_progress_enabled() ? stderr : NULL};
    bn_ppl total;
    size_t failed = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int batch = nf > 1 || o->parallel;
    if (batch ? bn_perplexity_batch(c, m, texts, nf, &po, o->parallel ? o->parallel : 1, r, &total, &failed, e)
              : bn_perplexity(c, m, texts[0].ids, texts[0].n, &po, &r[0], e)) {
        if (failed < nf)
            name_file(o->ppl_files[failed], e);
        goto done;
    }
    double secs = seconds_since(&t0);
    for (size_t i = 0; i < nf; i++)
        print_ppl(o, o->ppl_files[i], &r[i], po.window, secs);
    if (nf > 1)
        print_ppl(o, NULL, &total, po.window, secs);
    rc = 0;
done:
    for (size_t i = 0; ids && i < nf; i++)
        bn_tokens_free(&ids[i]);
    free(ids);
    free(texts);
    free(r);
    return rc;
}

/* --embed: every record's vector (embed.h), records of stdin, the lines
 * of -f FILE or the one -p TEXT. */
/* A failure while answering an input: a write error's message already names
 * the output it failed on; anything else concerns the input, named INPUT. */
static void report_input_failure(const char *input, const bn_err *e)
{
    size_t n = strlen(input);
    /* a token stream's errors name it already ("-: line 1, column 1: ...") */
    if (e->code == BN_E_IO || (!strncmp(e->msg, input, n) && e->msg[n] == ':'))
        bn_report(&prog, "%s", e->msg);
    else
        bn_report(&prog, "%s: %s", input, e->msg);
}

static int run_embed(const opts *o, const bn_model *m, bn_ctx *c, bn_tokenizer *tok, bn_err *e)
{
    int fmt = o->embed_f32 ? BN_EMBED_F32 : o->json ? BN_EMBED_JSON : BN_EMBED_TEXT;
    bn_embed_opts eo = {.format = fmt, .parallel = o->parallel, .log = bn_cli_log, .log_user = (void *)&prog,
                        .input = o->file ? o->file : o->prompt ? "-p" : "-"};
    bn_embed_text text = {.tok = tok, .hp = &m->hp, .text = o->prompt, .len = o->prompt ? strlen(o->prompt) : 0};
    bn_tokr in;
    bn_embed_tokr tr = {.in = &in, .max = bn_ctx_n_ctx(c) + 1};
    int from_stdin = !o->prompt && !o->file, r;
    uint64_t bad = 0;
    int file_stdin = o->file && !strcmp(o->file, "-");
    if (file_stdin)
        text.lines = stdin;
    else if (o->file && !(text.lines = fopen(o->file, "r"))) {
        bn_report(&prog, "%s: %s", o->file, strerror(errno));
        return BN_EXIT_DATA;
    }
    eo.ready = from_stdin ? bn_embed_src_tokr_ready : bn_embed_src_text_ready;
    if (from_stdin && bn_tokr_open(&in, STDIN_FILENO, "-", e)) {
        bn_report(&prog, "%s", e->msg);
        return BN_EXIT_DATA;
    }
    if (from_stdin && tok && bn_tokr_check(&in, bn_tokenizer_hash(tok), m->hp.n_vocab, e)) {
        bn_report(&prog, "%s", e->msg);
        bn_tokr_close(&in);
        return BN_EXIT_DATA;
    }
    r = from_stdin ? bn_embed_stream(c, bn_embed_src_tokr, &tr, &eo, stdout, &bad, e)
                   : bn_embed_stream(c, bn_embed_src_text, &text, &eo, stdout, &bad, e);
    if (r)
        report_input_failure(o->file ? o->file : from_stdin ? "-" : "-p", e);
    if (from_stdin)
        bn_tokr_close(&in);
    if (text.lines && !file_stdin)
        fclose(text.lines);
    return r || bad ? BN_EXIT_DATA : BN_EXIT_OK;
}

/* --draft MODEL: the draft model and a context of its own (as long as
 * the main one, or its model's, if shorter), with the main model's kernels
 * and threads. Its tokenizer must be the main model's: the same ids must
 * mean the same text. */
static int open_draft(opts *o, const bn_model_params *mp, const bn_model *m, const bn_tokenizer *tok,
                      uint32_t n_ctx, bn_model **dm, bn_ctx **dc)
{
    bn_err e = {0};
    if (bn_cli_open_draft(o->draft, mp, m, tok, dm, &e)) {
        bn_report(&prog, "%s", e.msg);
        return -1;
    }
    const char *name = (*dm)->src.name;
    /* --parallel N: a draft sequence for each (blocks allocated as used) */
    bn_ctx_opts co = {.n_ctx = n_ctx < (*dm)->hp.n_ctx ? n_ctx : (*dm)->hp.n_ctx, .kv_f16 = o->kv_f16,
                      .no_act_quant = o->no_act_quant, .n_threads = o->threads,
                      .n_seq = o->parallel ? o->parallel : 1};
    if (!(*dc = bn_ctx_new_opts(*dm, &co, &e))) {
        bn_report(&prog, "%s: %s", name, e.msg);
        return -1;
    }
    if (o->verbose)
        bn_report(&prog, "%s: draft model, %u layers, d %u, weights %.1f MiB, %u positions", name, (*dm)->hp.n_layer,
                  (*dm)->hp.n_embd, (double)bn_model_weight_bytes(*dm) / 1048576.0, co.n_ctx);
    o->g.draft = *dc;
    return 0;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc != BN_OPT_RUN)
        return rc;
    bn_err e = {0};
    char b1[32], b2[32], b3[32];
    uint64_t mem_available = bn_mem_available(); /* before the model takes its share */
    bn_model_params mp;
    bn_model_params_init(&mp);
    mp.kernels = o.kernel;
    /* The copy on huge pages decodes faster. */
    mp.weights = o.mmap_only ? BN_WEIGHTS_MAPPED : BN_WEIGHTS_AUTO;
    mp.log = bn_cli_show_warning; /* loading's warnings, e.g. float projections ternarized */
    mp.log_user = (void *)&prog;
    bn_model *m = bn_model_open(o.model, &mp, &e);
    if (!m) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    rc = BN_EXIT_DATA;
    bn_ctx *c = NULL, *dc = NULL;
    bn_model *dm = NULL;
    bn_tokenizer *tok = NULL;
    bn_gen *g = NULL;
    FILE *nowhere = NULL;
    bn_out lout = {.fd = -1}; /* --logits FILE, whole or not at all */
    int lout_open = 0, finished = 0;
    bn_tokr in;
    int in_open = 0;
    for (size_t i = 0; i < o.g.samp.n_logit_bias; i++) /* ids against this model's vocabulary */
        if (o.bias[i].id >= m->hp.n_vocab) {
            bn_report(&prog, "%s: --logit-bias %u=%g: the id is past the vocabulary (0..%u)", m->src.name,
                      o.bias[i].id, (double)o.bias[i].bias, m->hp.n_vocab - 1);
            goto out;
        }
    if (o.embed && m->hp.pooling == BN_POOL_NONE) {
        bn_report(&prog, "%s: not an embedding model (no model.pooling): --embed needs one, see bn-infer(1)",
                  m->src.name);
        goto out;
    }
    if (!o.embed && m->hp.pooling != BN_POOL_NONE) { /* its head is no language model's: text would be noise */
        bn_report(&prog, "%s: an embedding model (model.pooling last): it gives vectors (--embed), not tokens",
                  m->src.name);
        goto out;
    }
    if (o.n_ctx > m->hp.n_ctx) {
        bn_report(&prog, "%s: context %u is larger than the model's (%u)", m->src.name, o.n_ctx, m->hp.n_ctx);
        goto out;
    }
    /* --parallel N: N sequences, their KV blocks allocated as they fill,
     * up to the budget */
    bn_ctx_opts co = {.n_ctx = o.n_ctx ? o.n_ctx : m->hp.n_ctx, .kv_f16 = o.kv_f16, .no_act_quant = o.no_act_quant,
                      .n_threads = o.threads, .n_seq = o.parallel, .embeddings = o.embed};
    uint64_t block = bn_cli_kv_block_bytes(m, o.kv_f16);
    co.kv_budget = o.kv_budget ? o.kv_budget
                               : bn_cli_default_kv_budget(mem_available, bn_model_weight_bytes(m), block, co.n_ctx,
                                                          o.parallel ? o.parallel : 1);
    uint64_t kv_positions = co.kv_budget / block * BN_KV_BLOCK;
    if (kv_positions && kv_positions < co.n_ctx && o.n_ppl) { /* a window must fit whole */
        bn_report(&prog, "--kv-budget %s holds %llu positions, fewer than a perplexity window of %u (-c)",
                  bn_cli_size(co.kv_budget, b1), (unsigned long long)kv_positions, co.n_ctx);
        goto out;
    }
    if (bn_cli_kv_fit(&prog, m->src.name, co.kv_budget, block, &co.n_ctx))
        goto out;
    if (!(c = bn_ctx_new_opts(m, &co, &e))) {
        bn_report(&prog, "%s: %s", m->src.name, e.msg);
        goto out;
    }
    /* no tokenizer (BN_E_UNSUPPORTED) is fine for ids in and out */
    if (!(tok = bn_tokenizer_from_model(m, &e)) && e.code != BN_E_UNSUPPORTED) {
        bn_report(&prog, "%s", e.msg);
        goto out;
    }
    if (tok && (bn_tokenizer_set_chat_encoding(tok, o.chat_whole ? BN_CHAT_WHOLE : BN_CHAT_SPLIT, &e) ||
                bn_tokenizer_set_chat_date(tok, o.chat_date, &e))) {
        bn_report(&prog, "%s", e.msg);
        goto out;
    }
    int needs_tok = o.prompt || o.file || o.chat || o.n_ppl || (o.g.text && !o.embed) || o.g.n_stop;
    if (needs_tok && !tok) {
        bn_report(&prog, "%s: the model has no tokenizer section; give token ids on stdin", m->src.name);
        goto out;
    }
    if (o.chat && !bn_tokenizer_chat_renders(bn_tokenizer_chat_format(tok))) { /* said now, not at the first message */
        bn_report(&prog, "%s: the model has no chat format this build renders (chat.format is '%s'): -cnv needs one",
                  m->src.name, bn_tokenizer_chat_format(tok));
        goto out;
    }
    if (o.draft && open_draft(&o, &mp, m, tok, co.n_ctx, &dm, &dc))
        goto out;
    char kvb[32];
    if (o.verbose)
        bn_report(&prog, "%s: %s, %u layers, d %u, vocab %u, weights %.1f MiB, KV budget %s (%s, %llu bytes a "
                         "position, %llu positions), %d threads, kernels %s", m->src.name, m->hp.arch, m->hp.n_layer,
                  m->hp.n_embd, m->hp.n_vocab, (double)bn_model_weight_bytes(m) / 1048576.0,
                  bn_cli_size(bn_ctx_kv_bytes(c), kvb), o.kv_f16 ? "f16" : "f32",
                  (unsigned long long)(block / BN_KV_BLOCK), (unsigned long long)kv_positions, o.threads,
                  m->kern->name);
    if (o.embed) {
        rc = run_embed(&o, m, c, tok, &e);
        goto out;
    }
    if (o.n_ppl) {
        if (run_perplexity(&o, m, c, tok, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        rc = bn_stdout_done(&prog); /* a full disk must not pass for a score */
        goto out;
    }
    if (o.logits_file) {
        /* A temporary renamed into place at the end, as the models are: a
         * run that fails (a full disk) leaves no truncated logits behind. */
        bn_temp_hook temps = {bn_cli_track_temp, NULL};
        if (bn_out_open(&lout, o.logits_file, &temps, &e)) {
            bn_report(&prog, "%s", e.msg); /* names the file and the reason */
            goto out;
        }
        lout_open = 1;
        o.g.logits = lout.fp;
        o.g.logits_name = o.logits_file;
        o.g.logits_topk = o.logits_topk;
    }
    int binary_ids = 0;
    if (!o.prompt && !o.file && !o.chat) {
        if (bn_tokr_open(&in, STDIN_FILENO, "-", &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        in_open = 1;
        if (tok && bn_tokr_check(&in, bn_tokenizer_hash(tok), m->hp.n_vocab, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        binary_ids = in.binary;
        /* answers in the input's binary form: known only now, refused as bn-tokenize -b refuses it */
        int answers_nowhere = o.logits_file && !strcmp(o.logits_file, "-"); /* --logits -: to /dev/null */
        if (binary_ids && !o.g.text && !answers_nowhere && isatty(STDOUT_FILENO)) {
            rc = bn_usage_error(&prog, "refusing to write a binary token stream to a terminal (use --text or a pipe)");
            goto out;
        }
    }
    o.g.log = bn_cli_log; /* records that cannot be answered, chat notes */
    o.g.log_user = (void *)&prog;
    /* --logits -: the (empty) answer records go nowhere */
    if (o.logits_file && !strcmp(o.logits_file, "-") && !(nowhere = fopen("/dev/null", "w"))) {
        bn_report(&prog, "/dev/null: %s", strerror(errno));
        goto out;
    }
    if (!(g = bn_gen_new(m, c, tok, &o.g, nowhere ? nowhere : stdout, binary_ids, &e))) {
        bn_report(&prog, "%s", e.msg);
        goto out;
    }
    if (o.chat) {
        if (bn_chat(g, o.system, stdin, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
    } else if (o.prompt || o.file) {
        bn_tokens ids = {0};
        const char *name = o.file ? o.file : "-p";
        bn_map map = {0};
        if (o.file && bn_map_file(o.file, &map, &e)) {
            bn_report(&prog, "%s", e.msg); /* the message names the file */
            goto out;
        }
        int r = tokenize_text(tok, m, o.file ? map.data : (const uint8_t *)o.prompt,
                              o.file ? map.size : strlen(o.prompt), &ids, &e);
        if (o.file && map.data)
            bn_unmap(&map);
        if (!r)
            r = bn_gen_answer(g, ids.ids, ids.n, &e);
        bn_tokens_free(&ids);
        if (r) {
            report_input_failure(name, &e);
            goto out;
        }
    } else {
        uint64_t bad = 0;
        if (o.parallel ? bn_gen_stream_parallel(g, &in, o.parallel, &bad, &e) : bn_gen_stream(g, &in, &bad, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        finished = 1; /* the records that could be answered were: keep their logits */
        if (bad)
            goto out;
    }
    finished = 1;
    rc = BN_EXIT_OK;
out:
    if (g && o.verbose) {
        bn_gen_stats st;
        bn_gen_get_stats(g, &st);
        /* the first answer token comes out of the prompt's pass (as llama.cpp counts) */
        bn_report(&prog,
                  "prompt: %llu tokens in %.3f s (%.2f tok/s); generation: %llu decode steps in %.3f s (%.2f tok/s)",
                  (unsigned long long)st.n_prompt, st.t_prompt, st.t_prompt > 0 ? st.n_prompt / st.t_prompt : 0,
                  (unsigned long long)st.n_gen, st.t_gen, st.t_gen > 0 ? st.n_gen / st.t_gen : 0);
        if (o.g.lookup || o.draft)
            bn_report(&prog, "%s: %llu tokens drafted, %llu accepted (%.1f%%), %.2f tokens a pass",
                      o.draft ? "draft model" : "prompt lookup", (unsigned long long)st.n_draft, (unsigned long long)st.n_accept,
                      st.n_draft ? 100.0 * st.n_accept / st.n_draft : 0.0,
                      st.n_pass ? (double)st.n_gen / st.n_pass : 0.0);
    }
    if (c && o.verbose)
        bn_report(&prog, "KV cache: budget %s, %s allocated (its peak), %s held at the end",
                  bn_cli_size(bn_ctx_kv_bytes(c), b1), bn_cli_size(bn_ctx_kv_peak_bytes(c), b2),
                  bn_cli_size(bn_ctx_kv_used_bytes(c), b3));
    bn_gen_free(g);
    if (nowhere)
        fclose(nowhere);
    if (lout_open && !finished)
        bn_out_abort(&lout);
    else if (lout_open && bn_out_commit(&lout, &e)) {
        bn_report(&prog, "%s", e.msg);
        rc = BN_EXIT_DATA;
    }
    if (in_open)
        bn_tokr_close(&in);
    bn_tokenizer_free(tok);
    bn_ctx_free(c);
    bn_model_close(m);
    bn_ctx_free(dc);
    bn_model_close(dm);
    free(o.ppl_files);
    return rc;
}
