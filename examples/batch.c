/* batch.c — answer several prompts at once with a bn model, using only the
 * installed libbn (bn.h, libbn(3)): a bn_batcher runs them together over
 * one context's sequences, reading the weights once per step for all.
 *
 *   cc batch.c $(pkg-config --cflags --libs bn) -o batch
 *   ./batch [-i] [-l N] MODEL TOKENS PROMPT...
 *
 * Writes each prompt's continuation (greedy, at most TOKENS tokens) on a
 * line of its own, in the order of the prompts, each as soon as it and
 * those before it are complete (-i: the token ids instead of the text).
 * Batching changes no result: the lines are what ./generate MODEL PROMPT
 * TOKENS writes for each prompt alone. -l N: prompt lookup decoding (each
 * pass also checks tokens guessed by matching the last N..1 tokens against
 * the prompt and text so far): the same lines, often in fewer passes; the
 * share of guesses kept goes to standard error. */
#include <bn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 8 /* prompts answered at the same time; the others wait */

/* One prompt's answer as it grows: its text (or ids), and the detokenizer
 * that turns its ids into text (one per prompt: a UTF-8 character may be
 * split across two tokens of the same answer). */
typedef struct answer {
    bn_detok *dt;
    char *out;
    size_t len, cap;
    int done;
} answer;

static int fail(const bn_err *e)
{
    fprintf(stderr, "batch: %s (%s)\n", e->msg, bn_status_string(e->code));
    return 1;
}

static int append(answer *a, const void *bytes, size_t n)
{
    if (a->len + n + 1 > a->cap) {
        size_t cap = 2 * (a->len + n + 1);
        char *p = realloc(a->out, cap);
        if (!p)
            return -1;
        a->out = p;
        a->cap = cap;
    }
    memcpy(a->out + a->len, bytes, n);
    a->len += n;
    return 0;
}

/* A prompt's ids, in a buffer of the right size (as in generate.c). */
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

/* What one event adds to its answer: a token's text (or id), and at the
 * end the bytes the detokenizer held back. */
static int take(answer *a, const bn_batcher_event *ev, int ids_out, bn_err *e)
{
    const uint8_t *text;
    size_t len;
    if (ev->token != BN_NO_TOKEN) {
        if (ids_out) {
            char num[16];
            int k = snprintf(num, sizeof num, "%s%u", a->len ? " " : "", (unsigned)ev->token);
            if (append(a, num, (size_t)k))
                goto nomem;
        } else if (bn_detok_feed(a->dt, ev->token, &text, &len, e) || append(a, text, len)) {
            goto nomem;
        }
    }
    if (ev->stop) {
        if (ev->stop == BN_STOP_ERROR) {
            snprintf(e->msg, sizeof e->msg, "%s", ev->error);
            e->code = ev->status;
            return -1;
        }
        bn_detok_flush(a->dt, &text, &len);
        if (append(a, text, len))
            goto nomem;
        a->done = 1;
    }
    return 0;
nomem:
    snprintf(e->msg, sizeof e->msg, "out of memory");
    e->code = BN_E_NOMEM;
    return -1;
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
    if (argc < 4) {
        fprintf(stderr, "usage: batch [-i] [-l N] MODEL TOKENS PROMPT...\n");
        return 2;
    }
    size_t n_prompts = (size_t)argc - 3;
    bn_err e;
    bn_model *m = bn_model_open(argv[1], NULL, &e);
    if (!m)
        return fail(&e);
    bn_ctx_params cp;
    bn_ctx_params_init(&cp);
    cp.n_seq = n_prompts < MAX_SEQ ? (uint32_t)n_prompts : MAX_SEQ; /* KV memory grows as it is used */
    bn_ctx *c = bn_ctx_new(m, &cp, &e);
    bn_tokenizer *t = c ? bn_tokenizer_from_model(m, &e) : NULL;
    bn_batcher *b = t ? bn_batcher_new(c, NULL, &e) : NULL;
    answer *ans = calloc(n_prompts, sizeof *ans);
    int rc = b && ans ? 0 : -1;
    if (b && !ans) {
        snprintf(e.msg, sizeof e.msg, "out of memory");
        e.code = BN_E_NOMEM;
    }

    /* Every prompt is queued at once; its tag is its index. */
    bn_sampler_params sp;
    bn_sampler_params_init(&sp);
    sp.temp = 0; /* greedy */
    for (size_t i = 0; i < n_prompts && !rc; i++) {
        size_t n = 0;
        uint32_t *ids = tokenize(t, argv[3 + i], &n, &e);
        if (!ids || !(ans[i].dt = bn_detok_new(t, BN_DETOK_SKIP_SPECIAL, &e))) {
            rc = -1;
        } else {
            bn_batcher_request r;
            bn_batcher_request_init(&r);
            r.prompt = ids;
            r.n_prompt = n;
            r.sampler = &sp;
            r.n_predict = atoi(argv[2]);
            r.tag = i;
            r.lookup = lookup; /* 0: off; out of range: BN_E_INVALID */
            rc = bn_batcher_submit(b, &r, &e); /* copies the ids */
        }
        free(ids);
    }

    /* One forward pass per step for every running prompt; the answers
     * leave in order, each once those before it are complete. */
    size_t next = 0;
    while (!rc && bn_batcher_pending(b)) {
        const bn_batcher_event *ev;
        size_t n_ev;
        rc = bn_batcher_step(b, &ev, &n_ev, &e);
        for (size_t i = 0; i < n_ev && !rc; i++)
            rc = take(&ans[ev[i].tag], &ev[i], ids_out, &e);
        for (; !rc && next < n_prompts && ans[next].done; next++) {
            if (ans[next].len)
                fwrite(ans[next].out, 1, ans[next].len, stdout);
            putchar('\n');
            fflush(stdout);
        }
    }

    bn_batcher_stats st;
    bn_batcher_stats_init(&st);
    if (!rc && lookup && !bn_batcher_get_stats(b, &st, &e))
        fprintf(stderr, "batch: %llu guesses, %llu kept, in %llu passes\n", (unsigned long long)st.drafted,
                (unsigned long long)st.accepted, (unsigned long long)st.passes);

    for (size_t i = 0; ans && i < n_prompts; i++) {
        bn_detok_free(ans[i].dt);
        free(ans[i].out);
    }
    free(ans);
    bn_batcher_free(b);
    bn_tokenizer_free(t);
    bn_ctx_free(c);
    bn_model_close(m);
    return rc ? fail(&e) : 0;
}
