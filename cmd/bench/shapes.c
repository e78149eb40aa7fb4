/* shapes.c — the named shape table (mirrors tests/ref/gen_checkpoint.py). */
#include "shapes.h"

#include <stdio.h>
#include <string.h>

/* name, hidden, ffn, layers, heads, kv heads, vocab, context, rope base.
 * The large Llama-like sizes follow bitnet.cpp's dummy-model generator,
 * which produced its headline 100B figure. */
static const bn_shape shapes[] = {
    {"tiny", 64, 160, 2, 4, 2, 512, 256, 10000.0f, "test model"},
    {"tiny256", 256, 512, 2, 4, 2, 512, 256, 10000.0f, "rows a multiple of 256"},
    {"small-odd", 96, 200, 3, 3, 1, 300, 128, 10000.0f, "K=200, not a multiple of 128"},
    {"odd", 36, 90, 2, 3, 1, 300, 64, 10000.0f, "K%4 != 0 (t2 row padding)"},
    {"2b4t", 2560, 6912, 30, 20, 5, 128256, 4096, 500000.0f, "BitNet b1.58 2B4T"},
    {"7b", 4096, 11008, 32, 32, 32, 32000, 2048, 10000.0f, "Llama-like 7B"},
    {"13b", 5120, 13824, 40, 40, 40, 32000, 2048, 10000.0f, "Llama-like 13B"},
    {"30b", 6656, 17920, 60, 52, 52, 32000, 2048, 10000.0f, "Llama-like 30B"},
    {"70b", 8192, 28672, 80, 64, 8, 32000, 2048, 10000.0f, "Llama-like 70B"},
    {"100b", 8192, 45568, 72, 64, 8, 32000, 2048, 10000.0f, "bitnet.cpp's 100B"},
};

const bn_shape *bn_shape_at(size_t i)
{
    return i < sizeof shapes / sizeof shapes[0] ? &shapes[i] : NULL;
}

const bn_shape *bn_shape_find(const char *name)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name))
            return &shapes[i];
    return NULL;
}

void bn_shape_names(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", shapes[i].name);
}

void bn_shape_hparams(const bn_shape *s, bn_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    snprintf(hp->arch, sizeof hp->arch, "bitnet-b1.58");
    hp->n_vocab = s->n_vocab;
    hp->n_ctx = s->n_ctx;
    hp->n_embd = s->n_embd;
    hp->n_ff = s->n_ff;
    hp->n_layer = s->n_layer;
    hp->n_head = s->n_head;
    hp->n_head_kv = s->n_head_kv;
    hp->head_dim = s->n_embd / s->n_head;
    hp->rope_theta = s->rope_theta;
    hp->norm_eps = 1e-5f;
    hp->rope_neox = 1;
    hp->sub_norms = 1;
    hp->tied = 1;
    hp->bos_id = 0;
    hp->eos_id = 1;
    hp->pad_id = -1;
    hp->stop_ids[0] = 1;
    hp->n_stop = 1;
}

uint64_t bn_shape_ternary_params(const bn_shape *s)
{
    uint64_t d = s->n_embd, hd = s->n_embd / s->n_head;
    uint64_t q = s->n_head * hd, kv = s->n_head_kv * hd, ff = s->n_ff;
    return s->n_layer * (q * d + 2 * kv * d + d * q + 3 * ff * d);
}

uint64_t bn_shape_params(const bn_shape *s)
{
    uint64_t d = s->n_embd, hd = s->n_embd / s->n_head, q = s->n_head * hd;
    uint64_t norms = s->n_layer * (d + q + d + s->n_ff) + d;
    return (uint64_t)s->n_vocab * d + bn_shape_ternary_params(s) + norms;
}
