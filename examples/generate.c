/* generate.c — continue a prompt with a bn model, token by token, using
 * only the installed libbn (bn.h, libbn(3)).
 *
 *   cc generate.c $(pkg-config --cflags --libs bn) -o generate
 *   ./generate [-i] [-l N] MODEL PROMPT [TOKENS [TEMP]]
 *
 * Writes the continuation to stdout as it is generated (-i: the token ids
 * instead of the text). TEMP 0, the default here, is greedy decoding:
 * the same tokens as `bn-infer -m MODEL -p PROMPT -n TOKENS --temp 0`.
 * -l N: prompt lookup decoding (each pass also checks tokens guessed by
 * matching the last N..1 tokens against the prompt and text so far): the
 * same text, often in fewer passes; the guesses kept and the tokens per
 * pass go to standard error. */
#include <bn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const bn_err *e)
{
    fprintf(stderr, "generate: %s (%s)\n", e->msg, bn_status_string(e->code));
    return 1;
}

/* The prompt's ids in a buffer of the right size: the first call counts
 * them, the second fills it. NULL on failure, with e filled. */
static uint32_t *tokenize(bn_tokenizer *t, const char *text, size_t *n, bn_err *e)
{
    if (bn_tokenize(t, text, strlen(text), BN_TOKENIZE_BOS, NULL, 0, n, e))
        return NULL;
    uint32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    if (!ids) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        e->code = BN_E_NOMEM;
    } else if (bn_tokenize(t, text, strlen(text), BN_TOKENIZE_BOS, ids, *n, n, e)) {
        free(ids);
        ids = NULL;
    }
    return ids;
}

int main(int argc, char **argv)
{
    int ids_out = 0;
    unsigned lookup = 0;
    for (;;) {
        if (argc > 1 && !strcmp(argv[1], "-i")) {
            ids_out = 1;
            argv++, argc--;
        } else if (argc > 2 && !strcmp(argv[1], "-l")) {
            lookup = (unsigned)atoi(argv[2]);
            argv += 2, argc -= 2;
        } else {
            break;
        }
    }
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: generate [-i] [-l N] MODEL PROMPT [TOKENS [TEMP]]\n");
        return 2;
    }
    bn_err e;
    bn_model *m = bn_model_open(argv[1], NULL, &e);
    if (!m)
        return fail(&e);
    bn_ctx *c = bn_ctx_new(m, NULL, &e); /* the model's context, f16 cache, every CPU */
    bn_tokenizer *t = c ? bn_tokenizer_from_model(m, &e) : NULL;
    if (!t) {
        bn_ctx_free(c);
        bn_model_close(m);
        return fail(&e);
    }

    size_t n = 0;
    uint32_t *ids = tokenize(t, argv[2], &n, &e);
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.temp = argc > 4 ? strtof(argv[4], NULL) : 0.0f;
    sp.seed = 1;
    bn_generate_params gp;
    bn_generate_params_init(&gp);
    gp.n_predict = argc > 3 ? atoi(argv[3]) : 64;
    gp.lookup = lookup; /* 0: off; out of range: BN_E_INVALID */
    bn_sampler *s = ids ? bn_sampler_new(&sp, bn_model_n_vocab(m), &e) : NULL;
    bn_generator *g = s ? bn_generator_new(c, s, t, &gp, &e) : NULL;
    int rc = g ? bn_generator_prompt(g, ids, n, &e) : -1;

    /* One token per step; the text of a step is what is final now (a
     * character split across tokens comes whole with the later one). */
    const char *sep = "";
    for (int r = rc ? -1 : 1; r == 1;) {
        uint32_t id;
        const uint8_t *text;
        size_t len;
        r = bn_generate_next(g, &id, &text, &len, &e);
        if (r < 0) {
            rc = r;
        } else if (ids_out && r == 1) {
            printf("%s%u", sep, id);
            sep = " ";
        } else if (!ids_out) {
            fwrite(text, 1, len, stdout);
        }
        fflush(stdout);
    }
    if (!rc)
        putchar('\n');

    bn_generator_stats st;
    bn_generator_stats_init(&st);
    if (!rc && lookup && !bn_generator_get_stats(g, &st, &e))
        fprintf(stderr, "generate: %llu guesses, %llu kept; %llu tokens in %llu passes\n",
                (unsigned long long)st.drafted, (unsigned long long)st.accepted, (unsigned long long)st.tokens,
                (unsigned long long)st.passes);

    bn_generator_free(g);
    bn_sampler_free(s);
    free(ids);
    bn_tokenizer_free(t);
    bn_ctx_free(c);
    bn_model_close(m);
    return rc ? fail(&e) : 0;
}
