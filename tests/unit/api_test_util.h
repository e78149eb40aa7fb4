/* api_test_util.h — what the tests of the public API (bn.h alone) share:
 * the bundled tiny model, contexts, an answer generated alone (plain or
 * speculative), a batcher stepped until every request has ended, and a
 * struct as a caller built against an older header has it; the tiny model
 * made an embedding model. Header-only,
 * like check.h: the Makefile builds every .c file in tests/unit as a
 * test of its own. Every helper counts its checks in the test's
 * check_ctx. */
#ifndef BN_API_TEST_UTIL_H
#define BN_API_TEST_UTIL_H

#include "check.h"

#include <bn.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define API_TINY "models/tiny-bitnet"

/* The bundled tiny model, or NULL (reported, and counted as a failure). */
static inline bn_model *api_open_tiny(check_ctx *ck)
{
    bn_model_params mp;
    bn_model_params_init(&mp);
    bn_err e = {0};
    bn_model *m = bn_model_open(API_TINY, &mp, &e);
    CHECK(ck, m != NULL);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    return m;
}

/* A context of n_seq sequences over kv_budget bytes (0: the default), two
 * threads. */
static inline bn_ctx *api_new_ctx(check_ctx *ck, const bn_model *m, uint32_t n_seq, uint64_t kv_budget)
{
    bn_ctx_params p;
    bn_ctx_params_init(&p);
    p.n_threads = 2;
    p.n_seq = n_seq;
    p.kv_budget = kv_budget;
    bn_err e = {0};
    bn_ctx *c = bn_ctx_new(m, &p, &e);
    CHECK(ck, c != NULL);
    if (!c)
        fprintf(stderr, "%s\n", e.msg);
    return c;
}

/* One request's answer: its tokens, why it ended, how many end events. */
typedef struct api_answer {
    uint32_t ids[256];
    size_t n;
    int stop, ends;
} api_answer;

/* Speculative decoding for api_alone (bn_generate_params' fields). */
typedef struct api_spec {
    uint32_t lookup, draft_max;
    bn_ctx *draft;
    int no_pacing; /* spec_no_pacing: guess whenever a guess is found */
} api_spec;

/* The answer bn_generator gives request r (its prompt, sampler, n_predict
 * and stop ids) alone in a context of its own, plainly or with spec (may
 * be NULL); st (may be NULL) receives the generator's statistics. */
static inline void api_alone(check_ctx *ck, const bn_model *m, const bn_batcher_request *r, const api_spec *spec,
                             api_answer *a, bn_generator_stats *st)
{
    memset(a, 0, sizeof *a);
    bn_ctx *c = api_new_ctx(ck, m, 1, 0);
    bn_err e = {0};
    bn_sampler *s = bn_sampler_new(r->sampler, bn_model_n_vocab(m), &e);
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.n_predict = r->n_predict;
    gp.stop_ids = r->stop_ids;
    gp.n_stop_ids = r->n_stop_ids;
    if (spec) {
        gp.lookup = spec->lookup;
        gp.draft_max = spec->draft_max;
        gp.draft = spec->draft;
        gp.spec_no_pacing = spec->no_pacing;
    }
    bn_generator *g = c && s ? bn_generator_new(c, s, NULL, &gp, &e) : NULL;
    CHECK(ck, g && bn_generator_prompt(g, r->prompt, r->n_prompt, &e) == BN_OK);
    if (!g)
        fprintf(stderr, "%s\n", e.msg);
    uint32_t id;
    while (g && a->n < sizeof a->ids / sizeof *a->ids && bn_generate_next(g, &id, NULL, NULL, &e) == 1)
        a->ids[a->n++] = id;
    a->stop = g ? bn_generator_stop_reason(g) : -1;
    a->ends = 1;
    if (st) {
        bn_generator_stats_init(st);
        CHECK(ck, g && bn_generator_get_stats(g, st, &e) == BN_OK);
    }
    bn_generator_free(g);
    bn_sampler_free(s);
    bn_ctx_free(c);
}

/* Steps b until nothing is pending, gathering each tag's tokens in
 * got[tag] (tags are 0..n_got-1; nothing may follow a request's end).
 * Returns the steps taken. */
static inline int api_run_all(check_ctx *ck, bn_batcher *b, api_answer *got, size_t n_got)
{
    int steps = 0;
    bn_err e = {0};
    while (bn_batcher_pending(b) && steps < 10000) {
        const bn_batcher_event *ev;
        size_t n;
        CHECK(ck, bn_batcher_step(b, &ev, &n, &e) == BN_OK);
        steps++;
        for (size_t i = 0; i < n; i++) {
            CHECK(ck, ev[i].tag < n_got);
            if (ev[i].tag >= n_got)
                continue;
            api_answer *a = &got[ev[i].tag];
            CHECK(ck, !a->ends); /* nothing after its end */
            if (ev[i].token != BN_NO_TOKEN && a->n < sizeof a->ids / sizeof *a->ids)
                a->ids[a->n++] = ev[i].token;
            if (ev[i].stop) {
                a->stop = ev[i].stop;
                a->ends++;
                CHECK(ck, (ev[i].stop == BN_STOP_ERROR) == (ev[i].status != BN_OK && ev[i].error));
            }
        }
    }
    return steps;
}

/* 1 when got is want: the same tokens, stop reason and one end. */
static inline int api_same(const api_answer *got, const api_answer *want)
{
    return got->ends == 1 && got->stop == want->stop && got->n == want->n &&
           !memcmp(got->ids, want->ids, got->n * sizeof *got->ids);
}

/* A parameter struct of type T as a caller built against an older header
 * has it, in name.s: fill (its _defaults function) is given the bytes up
 * to field, and the fields from there on and name.guard right after the
 * struct hold 0xAB bytes, to show that the library reads and writes none
 * of them. Only the fields before field are the caller's to set. */
#define API_OLD_STRUCT(T, name, fill, field)                                                                           \
    struct {                                                                                                           \
        T s;                                                                                                           \
        unsigned char guard[32];                                                                                       \
    } name;                                                                                                            \
    memset(&name, 0xAB, sizeof name);                                                                                  \
    fill(&name.s, offsetof(T, field))

/* A folder (dir: a mkdtemp template) of links to the tiny model's files
 * and a 1_Pooling/config.json that asks for last-token pooling: the tiny
 * model as an embedding model (its end token its eos). */
static inline int api_tiny_as_embedding(char *dir)
{
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"};
    char src[PATH_MAX], from[PATH_MAX + 64], to[PATH_MAX + 64];
    if (!realpath(API_TINY, src) || !mkdtemp(dir))
        return -1;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (symlink(from, to))
            return -1;
    }
    snprintf(to, sizeof to, "%s/1_Pooling", dir);
    if (mkdir(to, 0700))
        return -1;
    snprintf(to, sizeof to, "%s/1_Pooling/config.json", dir);
    FILE *f = fopen(to, "w");
    if (!f)
        return -1;
    fputs("{\"word_embedding_dimension\": 0, \"pooling_mode_lasttoken\": true}\n", f);
    return fclose(f);
}

static inline void api_remove_embedding(const char *dir)
{
    char p[PATH_MAX + 64];
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "generation_config.json", "1_Pooling/config.json",
                                        "1_Pooling"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

#endif
