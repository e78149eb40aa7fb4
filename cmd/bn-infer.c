/* bn-infer — runs a BitNet b1.58 model: answers prompts (a token stream on
 * stdin, or -p/-f text), chats (-cnv), or scores text (--perplexity).
 * This file only parses options and calls libbn (lib/generate.h). */
#include "cli.h"
#include "formats.h"
#include "generate.h"
#include "pool.h"
#include "progress.h"

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
    "       bn-infer -m MODEL --perplexity FILE      score a text\n"
    "\n"
    "model and runtime:\n"
    "  -m, --model FILE       bn model (also an HF directory, GGUF; '-' streams a bn file)\n"
    "  -c, --ctx N            context positions (default and maximum: the model's)\n"
    "  -t, --threads N        threads (default: all cores)\n"
    "  --kv f32|f16           KV cache precision (default f16; f32 for verification)\n"
    "  --kernel NAME          ternary kernels: auto (default: the fastest this CPU has), ref,\n"
    "                         or a set: avx2, avx512, amx, neon, dotprod\n"
    "  --no-act-quant         float activations into the ternary projections (verification)\n"
    "  --mmap                 decode from the file mapping instead of a copy in memory on huge pages\n"
    "input and output:\n"
    "  -p, --prompt TEXT      prompt text (tokenized with the model's tokenizer, BOS as the model says)\n"
    "  -f, --file FILE        prompt text from a file\n"
    "  --text                 write text (default with -p, -f, -cnv)\n"
    "  --ids                  write token ids (default with a token stream on stdin)\n"
    "  --echo                 write the prompt before the answer\n"
    "  -n, --predict N        tokens to generate per answer (default 128; -1: until a stop or a full context)\n"
    "  --stop STRING          also stop at this text (repeatable, up to 16)\n"
    "sampling:\n"
    "  --temp T               temperature (default 0.8; 0: greedy)\n"
    "  --top-k K              keep the K most likely tokens (default 40; 0: off)\n"
    "  --top-p P              keep the smallest set with probability >= P (default 0.95; 1: off)\n"
    "  --min-p P              drop tokens below P x the best one's probability (default 0.05; 0: off)\n"
    "  --repeat-penalty F     penalize recent tokens (default 1: off)\n"
    "  --presence-penalty F   subtract F from recent tokens' logits (default 0: off)\n"
    "  --repeat-last-n N      recent tokens the penalties look at (default 64; 0: all)\n"
    "  --seed S               seed of the sampler (default: from the clock)\n"
    "chat:\n"
    "  -cnv, --chat           interactive chat with the model's chat format\n"
    "  --system TEXT          system prompt\n"
    "scoring:\n"
    "  --perplexity FILE      perplexity of a text ('-': stdin) over windows of -c tokens\n"
    "  --ppl-stride N         text tokens between windows (default: no overlap)\n"
    "  --logits FILE          write each prompt position's logits (f32, n_tokens x vocab)\n"
    "  --logits-topk K        ... as text instead: the K largest 'id:logit' per line\n"
    "  --json                 perplexity result as JSON\n"
    "  -v, --verbose          timings and sizes on stderr\n"
    "  -h, --help             this help\n"
    "  --version              version\n"
    "\n"
    "Exit status: 0 success, 1 a data or runtime error (also: some prompt records could not be answered),\n"
    "2 usage error. See bn-infer(1).\n",
};

typedef struct opts {
    const char *model, *prompt, *file, *system, *ppl_file, *logits_file, *kernel;
    uint32_t n_ctx, ppl_stride, logits_topk;
    int threads, kv_f16, no_act_quant, mmap_only, text, ids, chat, json, verbose, have_seed;
    bn_gen_opts g;
} opts;

static int need(int argc, char **argv, int *i, const char **val)
{
    if (*i + 1 >= argc)
        return bn_usage_error(&prog, "option '%s' needs a value", argv[*i]);
    *val = argv[++*i];
    return 0;
}

static int num_u(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (bn_parse_u64(v, lo, hi, out))
        return bn_usage_error(&prog, "%s: '%s' is not a whole number in %llu..%llu", opt, v,
                              (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}

static int num_f(const char *opt, const char *v, double lo, double hi, float *out)
{
    double d;
    if (bn_parse_double(v, &d) || d < lo || d > hi)
        return bn_usage_error(&prog, "%s: '%s' is not a number in %g..%g", opt, v, lo, hi);
    *out = (float)d;
    return 0;
}

static int known_kernel(const char *name)
{
    for (const char *const *k = bn_kernels_names(); *k; k++)
        if (!strcmp(*k, name))
            return 1;
    return 0;
}

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->kernel = "auto";
    /* f16 halves the cache; on the tiny model its perplexity differs from
     * f32 by 0.04%, as much as two correct f32 implementations differ. */
    o->kv_f16 = 1;
    o->threads = bn_cpu_count();
    o->g.n_predict = 128;
    bn_sampler_defaults(&o->g.samp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        uint64_t u;
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            rc = need(argc, argv, &i, &o->model);
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt"))
            rc = need(argc, argv, &i, &o->prompt);
        else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
            rc = need(argc, argv, &i, &o->file);
        else if (!strcmp(a, "--system"))
            rc = need(argc, argv, &i, &o->system);
        else if (!strcmp(a, "--perplexity"))
            rc = need(argc, argv, &i, &o->ppl_file);
        else if (!strcmp(a, "--logits"))
            rc = need(argc, argv, &i, &o->logits_file);
        else if (!strcmp(a, "--mmap"))
            o->mmap_only = 1;
        else if (!strcmp(a, "--kernel")) {
            if (!(rc = need(argc, argv, &i, &o->kernel)) && !known_kernel(o->kernel))
                rc = bn_usage_error(&prog, "--kernel: '%s' is not one of ref, auto, avx2, avx512, amx, neon, dotprod",
                                    o->kernel);
        } else if (!strcmp(a, "--kv")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (!strcmp(v, "f32") || !strcmp(v, "f16"))
                    o->kv_f16 = !strcmp(v, "f16");
                else
                    rc = bn_usage_error(&prog, "--kv: '%s' is not one of f32, f16", v);
            }
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 2, 1u << 24, &u)))
                o->n_ctx = (uint32_t)u;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 1, 1024, &u)))
                o->threads = (int)u;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--predict")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (!strcmp(v, "-1"))
                    o->g.n_predict = -1;
                else if (!(rc = num_u(a, v, 0, INT32_MAX, &u)))
                    o->g.n_predict = (int32_t)u;
            }
        } else if (!strcmp(a, "--ppl-stride")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 1, 1u << 24, &u)))
                o->ppl_stride = (uint32_t)u;
        } else if (!strcmp(a, "--logits-topk")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 1, 1u << 22, &u)))
                o->logits_topk = (uint32_t)u;
        } else if (!strcmp(a, "--top-k")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 0, 1u << 22, &u)))
                o->g.samp.top_k = (uint32_t)u;
        } else if (!strcmp(a, "--repeat-last-n")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 0, 1u << 24, &u)))
                o->g.samp.penalty_last_n = (uint32_t)u;
        } else if (!strcmp(a, "--seed")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = num_u(a, v, 0, UINT64_MAX, &u))) {
                o->g.samp.seed = u;
                o->have_seed = 1;
            }
        } else if (!strcmp(a, "--temp")) {
            rc = need(argc, argv, &i, &v) || num_f(a, v, 0, 100, &o->g.samp.temp);
        } else if (!strcmp(a, "--top-p")) {
            rc = need(argc, argv, &i, &v) || num_f(a, v, 0, 1, &o->g.samp.top_p);
        } else if (!strcmp(a, "--min-p")) {
            rc = need(argc, argv, &i, &v) || num_f(a, v, 0, 1, &o->g.samp.min_p);
        } else if (!strcmp(a, "--repeat-penalty")) {
            rc = need(argc, argv, &i, &v) || num_f(a, v, 0.01, 100, &o->g.samp.repeat_penalty);
        } else if (!strcmp(a, "--presence-penalty")) {
            rc = need(argc, argv, &i, &v) || num_f(a, v, -100, 100, &o->g.samp.presence_penalty);
        } else if (!strcmp(a, "--stop")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (!*v)
                    rc = bn_usage_error(&prog, "--stop: the stop string is empty");
                else if (o->g.n_stop == BN_MAX_STOP_STRINGS)
                    rc = bn_usage_error(&prog, "--stop: at most %d stop strings", BN_MAX_STOP_STRINGS);
                else
                    o->g.stop[o->g.n_stop++] = v;
            }
        } else if (!strcmp(a, "--echo"))
            o->g.echo = 1;
        else if (!strcmp(a, "--text"))
            o->text = 1;
        else if (!strcmp(a, "--ids"))
            o->ids = 1;
        else if (!strcmp(a, "-cnv") || !strcmp(a, "--chat"))
            o->chat = 1;
        else if (!strcmp(a, "--no-act-quant"))
            o->no_act_quant = 1;
        else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            o->verbose = 1;
        else if (bn_cli_common(&prog, a))
            exit(BN_EXIT_OK);
        else
            rc = bn_usage_error(&prog, "unknown option '%s'", a);
        if (rc)
            return BN_EXIT_USAGE;
    }
    if (!o->model)
        return bn_usage_error(&prog, "no model given (-m FILE)");
    if ((o->prompt != NULL) + (o->file != NULL) + o->chat + (o->ppl_file != NULL) > 1)
        return bn_usage_error(&prog, "-p, -f, -cnv and --perplexity exclude each other");
    if (o->text && o->ids)
        return bn_usage_error(&prog, "--text and --ids exclude each other");
    if (o->logits_topk && !o->logits_file)
        return bn_usage_error(&prog, "--logits-topk needs --logits FILE");
    if (o->chat && o->ids)
        return bn_usage_error(&prog, "-cnv writes text; --ids cannot be used with it");
    o->g.text = o->ids ? 0 : o->text || o->prompt || o->file || o->chat;
    if (!o->have_seed)
        o->g.samp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 0;
}

static int tokenize_text(bn_tokenizer *tok, const bn_model *m, const uint8_t *text, size_t n, bn_tokens *out,
                         bn_err *e)
{
    return bn_tokenizer_encode(tok, text, n, m->hp.add_bos && m->hp.bos_id >= 0 ? BN_ENC_BOS : 0, 0, out, e);
}

static int run_perplexity(const opts *o, bn_model *m, bn_ctx *c, bn_tokenizer *tok, bn_err *e)
{
    bn_map map;
    if (bn_map_file(o->ppl_file, &map, e))
        return -1;
    bn_tokens ids = {0};
    int rc = bn_tokenizer_encode(tok, map.data, map.size, 0, 0, &ids, e);
    bn_unmap(&map);
    bn_ppl r;
    bn_ppl_opts po = {bn_ctx_n_ctx(c), o->ppl_stride, bn_progress_enabled() ? stderr : NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rc)
        rc = bn_perplexity(c, m, ids.ids, ids.n, &po, &r, e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bn_tokens_free(&ids);
    if (rc) {
        if (!strchr(e->msg, ':') || strncmp(e->msg, o->ppl_file, strlen(o->ppl_file))) {
            bn_err t = *e;
            bn_fail(e, "%s: %s", o->ppl_file, t.msg);
        }
        return -1;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (o->json)
        printf("{\"file\": \"%s\", \"ppl\": %.6f, \"ppl_err\": %.6f, \"nll\": %.8f, \"nll_sd\": %.8f, "
               "\"tokens\": %llu, \"scored\": %llu, \"windows\": %u, \"window\": %u, \"kv\": \"%s\", "
               "\"act_quant\": %s, \"seconds\": %.3f}\n",
               o->ppl_file, r.ppl, r.ppl_err, r.nll, r.nll_sd, (unsigned long long)r.n_tokens,
               (unsigned long long)r.n_scored, r.n_windows, po.window, o->kv_f16 ? "f16" : "f32",
               o->no_act_quant ? "false" : "true", secs);
    else
        printf("PPL = %.4f +/- %.4f (%llu tokens scored in %u windows of %u)\n", r.ppl, r.ppl_err,
               (unsigned long long)r.n_scored, r.n_windows, po.window);
    return 0;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    bn_err e = {0};
    bn_model m;
    if (bn_model_load(&m, o.model, o.kernel, &e)) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    /* The copy on huge pages, rows interleaved for the kernels, decodes
     * faster; the float path (--no-act-quant) reads the mapping's layout. */
    if (!o.mmap_only && !o.no_act_quant && bn_model_to_memory(&m, &e) < 0) {
        bn_report(&prog, "%s", e.msg);
        bn_model_free(&m);
        return BN_EXIT_DATA;
    }
    if (m.n_ternarized)
        bn_report(&prog, "%s: %d float projections ternarized at load (absmean, as HF's online mode); bn-quant "
                         "stores them ternary", m.src.name, m.n_ternarized);
    rc = BN_EXIT_DATA;
    bn_ctx *c = NULL;
    bn_tokenizer *tok = NULL;
    bn_gen *g = NULL;
    FILE *lfp = NULL;
    bn_tokr in;
    int in_open = 0;
    if (o.n_ctx > m.hp.n_ctx) {
        bn_report(&prog, "%s: context %u is larger than the model's (%u)", m.src.name, o.n_ctx, m.hp.n_ctx);
        goto out;
    }
    bn_ctx_opts co = {o.n_ctx ? o.n_ctx : m.hp.n_ctx, o.kv_f16, o.no_act_quant, o.threads};
    if (!(c = bn_ctx_new_opts(&m, &co, &e))) {
        bn_report(&prog, "%s: %s", m.src.name, e.msg);
        goto out;
    }
    if (bn_meta_section(&m.src.meta, "tokenizer") && !(tok = bn_tokenizer_new(&m.src.meta, &e))) {
        bn_report(&prog, "%s: %s", m.src.name, e.msg);
        goto out;
    }
    int needs_tok = o.prompt || o.file || o.chat || o.ppl_file || o.g.text || o.g.n_stop;
    if (needs_tok && !tok) {
        bn_report(&prog, "%s: the model has no tokenizer section; give token ids on stdin", m.src.name);
        goto out;
    }
    if (o.verbose)
        bn_report(&prog, "%s: %s, %u layers, d %u, vocab %u, weights %.1f MiB, KV cache %.1f MiB (%s), %d threads, "
                         "kernels %s", m.src.name, m.hp.arch, m.hp.n_layer, m.hp.n_embd, m.hp.n_vocab,
                  (double)bn_model_weight_bytes(&m) / 1048576.0, (double)bn_ctx_kv_bytes(c) / 1048576.0,
                  o.kv_f16 ? "f16" : "f32", o.threads, m.kern->name);
    if (o.ppl_file) {
        if (run_perplexity(&o, &m, c, tok, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        rc = BN_EXIT_OK;
        goto out;
    }
    if (o.logits_file) {
        if (!o.logits_topk && bn_out_is_tty(o.logits_file)) {
            bn_report(&prog, "%s: refusing to write binary logits to a terminal", o.logits_file);
            goto out;
        }
        lfp = strcmp(o.logits_file, "-") ? fopen(o.logits_file, o.logits_topk ? "w" : "wb") : stdout;
        if (!lfp) {
            bn_report(&prog, "%s: cannot open for writing", o.logits_file);
            goto out;
        }
        o.g.logits = lfp;
        o.g.logits_topk = o.logits_topk;
    }
    int binary_ids = 0;
    if (!o.prompt && !o.file && !o.chat) {
        if (bn_tokr_open(&in, STDIN_FILENO, "<stdin>", &e) ||
            (tok && bn_tokr_check(&in, bn_tokenizer_hash(tok), m.hp.n_vocab, &e))) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        in_open = 1;
        binary_ids = in.binary;
    }
    o.g.log = bn_cli_log; /* records that cannot be answered, chat notes */
    o.g.log_user = (void *)&prog;
    if (!(g = bn_gen_new(&m, c, tok, &o.g, stdout, binary_ids, &e))) {
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
        int r = 0;
        if (o.file)
            r = bn_map_file(o.file, &map, &e);
        if (!r)
            r = tokenize_text(tok, &m, o.file ? map.data : (const uint8_t *)o.prompt,
                              o.file ? map.size : strlen(o.prompt), &ids, &e);
        if (o.file && map.data)
            bn_unmap(&map);
        if (!r)
            r = bn_gen_answer(g, ids.ids, ids.n, &e);
        bn_tokens_free(&ids);
        if (r) {
            bn_report(&prog, "%s: %s", name, e.msg);
            goto out;
        }
    } else {
        uint64_t bad = 0;
        if (bn_gen_stream(g, &in, &bad, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        if (bad)
            goto out;
    }
    rc = BN_EXIT_OK;
out:
    if (g && o.verbose) {
        bn_gen_stats st;
        bn_gen_get_stats(g, &st);
        bn_report(&prog, "prompt: %llu tokens in %.3f s (%.2f tok/s); generation: %llu tokens in %.3f s (%.2f tok/s)",
                  (unsigned long long)st.n_prompt, st.t_prompt, st.t_prompt > 0 ? st.n_prompt / st.t_prompt : 0,
                  (unsigned long long)st.n_gen, st.t_gen, st.t_gen > 0 ? st.n_gen / st.t_gen : 0);
    }
    bn_gen_free(g);
    if (lfp && lfp != stdout && fclose(lfp) && rc == BN_EXIT_OK) {
        bn_report(&prog, "%s: write error", o.logits_file);
        rc = BN_EXIT_DATA;
    }
    if (in_open)
        bn_tokr_close(&in);
    bn_tokenizer_free(tok);
    bn_ctx_free(c);
    bn_model_free(&m);
    return rc;
}
