/* api.c — the model's and the context's part of the public API (bn.h):
 * opening a model with its parameters (kernel set, weights copied or
 * mapped, log and progress callbacks), the getters, a context from
 * bn_ctx_params (sequences and KV budget too), perplexity, and the
 * model's tokenizer. The work is done by the internal calls
 * (bn_model_load_progress, bn_model_to_memory,
 * bn_ctx_new_opts, bn_perplexity, bn_tokenizer_new); this file checks
 * arguments, gives every failure a bn_status code, and logs. */
#include "cpu.h"
#include "generate.h"
#include "pool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ models */

static void model_defaults(bn_model_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    p->kernels = "auto";
    p->weights = BN_WEIGHTS_AUTO;
}

void bn_model_params_defaults(bn_model_params *p, size_t size)
{
    bn_model_params d;
    model_defaults(&d);
    bn_params_fill(p, size, &d, sizeof d);
}

static void __attribute__((format(printf, 3, 4))) say(const bn_model_params *p, int level, const char *fmt, ...)
{
    if (!p->log)
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->log(p->log_user, level, msg);
}

static int known_kernels(const char *name)
{
    for (const char *const *k = bn_kernels_names(); *k; k++)
        if (!strcmp(*k, name))
            return 1;
    return 0;
}

/* Codes for what the loader reports without one: a file that cannot be
 * read is caught before loading, so what is left is the input itself. */
static bn_model *open_failed(bn_model *m, bn_err *e)
{
    if (e && e->code == BN_ERROR)
        e->code = BN_E_FORMAT;
    free(m);
    return NULL;
}

bn_model *bn_model_open(const char *path, const bn_model_params *p, bn_err *e)
{
    /* the readers below read back what they were told (e->code, e->msg) */
    bn_err own;
    e = e ? e : &own;
    bn_model_params o;
    model_defaults(&o);
    if (p && bn_params_read(&o, sizeof o, p, "bn_model_params", e))
        return NULL;
    if (!o.kernels)
        o.kernels = "auto";
    if (!path || !*path || !known_kernels(o.kernels) ||
        (o.weights != BN_WEIGHTS_AUTO && o.weights != BN_WEIGHTS_MAPPED)) {
        if (!path || !*path)
            bn_fail_code(e, BN_E_INVALID, "bn_model_open: the path is %s", path ? "empty" : "NULL");
        else if (o.weights != BN_WEIGHTS_AUTO && o.weights != BN_WEIGHTS_MAPPED)
            bn_fail_code(e, BN_E_INVALID, "bn_model_open: weights is %d (BN_WEIGHTS_AUTO or BN_WEIGHTS_MAPPED)",
                         o.weights);
        else
            bn_fail_code(e, BN_E_INVALID,
                         "%s: unknown kernel set '%s' (auto, ref, avx2, avx512, amx, neon or dotprod)", path,
                         o.kernels);
        return NULL;
    }
    if (strcmp(path, "-") && access(path, R_OK)) {
        bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    bn_model *m = malloc(sizeof *m);
    if (!m) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (bn_model_load_progress(m, path, o.kernels, o.progress, o.progress_user, e))
        return open_failed(m, e);
    if (o.weights == BN_WEIGHTS_AUTO) {
        int r = bn_model_to_memory(m, e);
        if (r < 0) {
            bn_model_free(m);
            return open_failed(m, e);
        }
        if (r)
            say(&o, BN_LOG_INFO, "%s: weights copied into memory (%.1f MiB, huge pages)", m->src.name,
                (double)m->arena_size / 1048576.0);
        else if (m->streams) /* a warning: decoding runs at the disk's speed */
            say(&o, BN_LOG_WARN, "%s: larger than the memory left (%.1f MiB): streaming it from the file, each layer "
                                 "read one ahead and let go after use",
                m->src.name, (double)bn_mem_available() / 1048576.0);
        else
            say(&o, BN_LOG_INFO, "%s: decoding from the weights in place (reference kernels, or too little free "
                                 "memory for a copy)", m->src.name);
    }
    if (m->n_ternarized)
        say(&o, BN_LOG_WARN, "%s: %d float projections ternarized at load (absmean, as HF's online mode); "
                             "bn-quant stores them ternary", m->src.name, m->n_ternarized);
    say(&o, BN_LOG_INFO, "%s: %s, %u layers, d %u, vocab %u, context %u, weights %.1f MiB, kernels %s", m->src.name,
        m->hp.arch, m->hp.n_layer, m->hp.n_embd, m->hp.n_vocab, m->hp.n_ctx,
        (double)bn_model_weight_bytes(m) / 1048576.0, m->kern->name);
    return m;
}

void bn_model_close(bn_model *m)
{
    if (!m)
        return;
    bn_model_free(m);
    free(m);
}

uint32_t bn_model_n_vocab(const bn_model *m)
{
    return m ? m->hp.n_vocab : 0;
}

uint32_t bn_model_n_ctx(const bn_model *m)
{
    return m ? m->hp.n_ctx : 0;
}

uint32_t bn_model_n_embd(const bn_model *m)
{
    return m ? m->hp.n_embd : 0;
}

uint32_t bn_model_n_layer(const bn_model *m)
{
    return m ? m->hp.n_layer : 0;
}

const char *bn_model_arch(const bn_model *m)
{
    return m ? m->hp.arch : NULL;
}

const char *bn_model_kernels(const bn_model *m)
{
    return m ? m->kern->name : NULL;
}

int32_t bn_model_bos(const bn_model *m)
{
    return m ? m->hp.bos_id : -1;
}

int32_t bn_model_eos(const bn_model *m)
{
    return m ? m->hp.eos_id : -1;
}

int bn_model_is_stop(const bn_model *m, uint32_t id)
{
    if (!m)
        return 0;
    for (int i = 0; i < m->hp.n_stop; i++)
        if ((uint32_t)m->hp.stop_ids[i] == id)
            return 1;
    return 0;
}

const char *bn_model_meta_str(const bn_model *m, const char *key)
{
    return m && key ? bn_meta_str(&m->src.meta, key) : NULL;
}

/* ---------------------------------------------------------- contexts */

static void ctx_defaults(bn_ctx_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    p->kv_type = BN_KV_F16; /* half the cache; perplexity within 0.04% of f32 (bn-infer(1)) */
}

void bn_ctx_params_defaults(bn_ctx_params *p, size_t size)
{
    bn_ctx_params d;
    ctx_defaults(&d);
    bn_params_fill(p, size, &d, sizeof d);
}

bn_ctx *bn_ctx_new(const bn_model *m, const bn_ctx_params *p, bn_err *e)
{
    bn_ctx_params o;
    ctx_defaults(&o);
    if (p && bn_params_read(&o, sizeof o, p, "bn_ctx_params", e))
        return NULL;
    const char *bad = !m                                             ? "the model is NULL"
                      : o.n_threads < 0 || o.n_threads > 1024        ? "n_threads must be 0..1024"
                      : o.kv_type != BN_KV_F16 && o.kv_type != BN_KV_F32 ? "kv_type must be BN_KV_F16 or BN_KV_F32"
                      : o.n_seq > 1024                               ? "n_seq must be 0..1024"
                                                                     : NULL;
    if (bad) {
        bn_fail_code(e, BN_E_INVALID, "bn_ctx_new: %s", bad);
        return NULL;
    }
    if (o.n_ctx > m->hp.n_ctx) {
        bn_fail_code(e, BN_E_INVALID, "%s: context %u is larger than the model's (%u)", m->src.name, o.n_ctx,
                     m->hp.n_ctx);
        return NULL;
    }
    /* an embedding model's context gives states, its K/V in f32 as
     * bn-infer --embed's (bn.h): the vectors are that program's bytes */
    int embed = m->hp.pooling != BN_POOL_NONE;
    bn_ctx_opts co = {
        .n_ctx = o.n_ctx ? o.n_ctx : m->hp.n_ctx,
        .kv_f16 = o.kv_type == BN_KV_F16 && !embed,
        .embeddings = embed,
        .n_threads = o.n_threads ? o.n_threads : bn_cpu_count(),
        .n_seq = o.n_seq,
        .kv_budget = o.kv_budget,
    };
    bn_ctx *c = bn_ctx_new_opts(m, &co, e);
    if (!c && e && e->code == BN_ERROR)
        e->code = BN_E_NOMEM; /* the thread pool's allocations */
    return c;
}

int bn_ctx_perplexity(bn_ctx *c, const uint32_t *ids, size_t n, uint32_t window, uint32_t stride, double *ppl,
                      double *ppl_err, bn_err *e)
{
    bn_err own;
    e = e ? e : &own; /* the status is e->code, whether the caller wants the message or not */
    if (!c || !ppl || (n && !ids))
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_perplexity: %s is NULL",
                            !c ? "the context" : !ppl ? "ppl" : "ids");
    if (bn_ctx_gives_states(c))
        return bn_fail_code(e, BN_E_INVALID, "bn_ctx_perplexity: %s is an embedding model: it gives vectors (bn_embed), not logits",
                            bn_ctx_model(c)->src.name);
    bn_ppl_opts po = {.window = window ? window : bn_ctx_n_ctx(c), .stride = stride};
    bn_ppl r;
    int rc = bn_perplexity(c, bn_ctx_model(c), ids, n, &po, &r, e);
    if (rc)
        return e->code;
    *ppl = r.ppl;
    if (ppl_err)
        *ppl_err = r.ppl_err;
    return BN_OK;
}

/* -------------------------------------------------------- tokenizers */

bn_tokenizer *bn_tokenizer_from_model(const bn_model *m, bn_err *e)
{
    if (!m) {
        bn_fail_code(e, BN_E_INVALID, "bn_tokenizer_from_model: the model is NULL");
        return NULL;
    }
    if (!bn_meta_section(&m->src.meta, "tokenizer")) {
        bn_fail_code(e, BN_E_UNSUPPORTED, "%s: the model has no tokenizer section", m->src.name);
        return NULL;
    }
    bn_err te = {0};
    bn_tokenizer *t = bn_tokenizer_new(&m->src.meta, &te);
    if (!t) /* the section is there but does not make a tokenizer */
        bn_fail_code(e, te.code == BN_ERROR ? BN_E_FORMAT : te.code, "%s: %s", m->src.name, te.msg);
    return t;
}
