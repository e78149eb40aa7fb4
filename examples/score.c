/* score.c — how likely each line of a text is under a bn model, using only
 * the installed libbn (bn.h, libbn(3)): the lines are scored together by
 * a bn_batcher, each as a request that asks for its prompt's log
 * probabilities and no answer (score_prompt, n_predict 0).
 *
 *   cc score.c $(pkg-config --cflags --libs bn) -o score
 *   ./score [-w] MODEL [FILE]
 *
 * Reads FILE (standard input without one, or -) and writes one line for
 * each of its lines, in order: the sum of the log probabilities (natural
 * log) of the line's tokens, each given the tokens before it (the line is
 * tokenized with BOS first, without its newline), the number of tokens
 * scored, and the perplexity exp(-sum / tokens), separated by tabs; an
 * empty line scores 0 tokens and a perplexity of "-". -w: after each
 * line's figures, one line per token, its id, its log probability and the
 * model's likeliest token there with its own, tab-separated and indented
 * by a tab. For one line, the mean of the log probabilities is minus
 * bn-infer --perplexity's nll for the same text in a file of its own
 * (without a final newline). */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <bn.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 8 /* lines scored at the same time; the others wait */

/* One line's score as it comes in. */
typedef struct score {
    double sum;
    size_t n;
    char *words; /* -w: the tokens' lines */
    size_t len, cap;
    int done;
} score;

static int fail(const char *what, const bn_err *e)
{
    fprintf(stderr, "score: %s%s%s (%s)\n", what ? what : "", what ? ": " : "", e->msg, bn_status_string(e->code));
    return 1;
}

static int add_word(score *s, uint32_t id, const bn_batcher_logprobs *l)
{
    char line[96];
    int k = snprintf(line, sizeof line, "\t%u\t%.6f\t%u\t%.6f\n", (unsigned)id, l->logprob,
                     l->n_top ? (unsigned)l->top[0].id : 0u, l->n_top ? l->top[0].logprob : 0.0f);
    if (s->len + (size_t)k + 1 > s->cap) {
        size_t cap = 2 * (s->len + (size_t)k + 1);
        char *p = realloc(s->words, cap);
        if (!p)
            return -1;
        s->words = p;
        s->cap = cap;
    }
    memcpy(s->words + s->len, line, (size_t)k);
    s->len += (size_t)k;
    return 0;
}

/* Reads every line of f (without its newline) into *lines; -1 when
 * memory runs out. */
static int read_lines(FILE *f, char ***lines, size_t *n)
{
    char *buf = NULL;
    size_t cap = 0, bufcap = 0;
    ssize_t got;
    *lines = NULL;
    *n = 0;
    while ((got = getline(&buf, &bufcap, f)) >= 0) {
        if (got && buf[got - 1] == '\n')
            buf[--got] = 0;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(*lines, cap * sizeof *p);
            if (!p)
                break;
            *lines = p;
        }
        if (!((*lines)[*n] = strdup(buf)))
            break;
        ++*n;
    }
    int full = !feof(f) && !ferror(f); /* stopped early: out of memory */
    free(buf);
    return full ? -1 : 0;
}

int main(int argc, char **argv)
{
    int words = argc > 1 && !strcmp(argv[1], "-w");
    argv += words, argc -= words;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: score [-w] MODEL [FILE]\n");
        return 2;
    }
    const char *path = argc == 3 && strcmp(argv[2], "-") ? argv[2] : NULL;
    FILE *f = path ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "score: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t n_lines;
    char **lines;
    if (read_lines(f, &lines, &n_lines) || ferror(f)) {
        fprintf(stderr, "score: %s: %s\n", path ? path : "standard input",
                ferror(f) ? "read error" : "out of memory");
        return 1;
    }
    if (path)
        fclose(f);

    bn_err e;
    bn_model *m = bn_model_open(argv[1], NULL, &e);
    if (!m)
        return fail(NULL, &e);
    bn_ctx_params cp;
    bn_ctx_params_init(&cp);
    cp.n_seq = MAX_SEQ;
    bn_ctx *c = bn_ctx_new(m, &cp, &e);
    bn_tokenizer *t = c ? bn_tokenizer_from_model(m, &e) : NULL;
    bn_batcher *b = t ? bn_batcher_new(c, NULL, &e) : NULL;
    score *sc = calloc(n_lines ? n_lines : 1, sizeof *sc);
    int rc = b && sc ? 0 : -1;
    char what[64] = "";
    if (b && !sc) {
        snprintf(e.msg, sizeof e.msg, "out of memory");
        e.code = BN_E_NOMEM;
    }

    /* Every line is queued at once; its tag is its index. */
    uint32_t *ids = NULL;
    size_t cap_ids = 0;
    for (size_t i = 0; i < n_lines && !rc; i++) {
        size_t n = 0;
        rc = bn_tokenize(t, lines[i], strlen(lines[i]), BN_TOKENIZE_BOS, NULL, 0, &n, &e);
        if (!rc && n > cap_ids) {
            free(ids);
            ids = malloc(n * sizeof *ids);
            cap_ids = ids ? n : 0;
        }
        if (!rc && !ids) {
            snprintf(e.msg, sizeof e.msg, "out of memory");
            e.code = rc = BN_E_NOMEM;
        }
        if (!rc)
            rc = bn_tokenize(t, lines[i], strlen(lines[i]), BN_TOKENIZE_BOS, ids, n, &n, &e);
        bn_batcher_request r;
        bn_batcher_request_init(&r);
        r.prompt = ids;
        r.n_prompt = n;
        r.n_predict = 0;     /* nothing to answer: the prompt is all */
        r.logprobs = 1;      /* each token's log probability */
        r.score_prompt = 1;  /* for the prompt's tokens */
        r.top_logprobs = words;
        r.tag = i;
        if (!rc)
            rc = bn_batcher_submit(b, &r, &e); /* copies the ids */
        if (rc)
            snprintf(what, sizeof what, "line %zu", i + 1);
    }
    free(ids);

    /* Each step scores chunks of several lines; lines leave in order. */
    size_t next = 0;
    while (!rc && bn_batcher_pending(b)) {
        const bn_batcher_event *ev;
        size_t n_ev;
        rc = bn_batcher_step(b, &ev, &n_ev, &e);
        for (size_t i = 0; i < n_ev && !rc; i++) {
            score *s = &sc[ev[i].tag];
            bn_batcher_logprobs l;
            bn_batcher_logprobs_init(&l);
            rc = bn_batcher_event_logprobs(b, i, &l, &e);
            if (!rc && l.has && l.is_prompt) {
                s->sum += l.logprob;
                s->n++;
                if (words && add_word(s, ev[i].token, &l)) {
                    snprintf(e.msg, sizeof e.msg, "out of memory");
                    e.code = rc = BN_E_NOMEM;
                }
            }
            if (!rc && ev[i].stop == BN_STOP_ERROR) {
                snprintf(e.msg, sizeof e.msg, "%s", ev[i].error);
                e.code = rc = ev[i].status;
                snprintf(what, sizeof what, "line %llu", (unsigned long long)ev[i].tag + 1);
            }
            s->done |= ev[i].stop != 0;
        }
        for (; !rc && next < n_lines && sc[next].done; next++) {
            const score *s = &sc[next];
            if (s->n)
                printf("%.6f\t%zu\t%.6f\n", s->sum, s->n, exp(-s->sum / (double)s->n));
            else
                printf("0\t0\t-\n");
            if (s->len)
                fwrite(s->words, 1, s->len, stdout);
        }
    }
    if (fflush(stdout) && !rc) {
        fprintf(stderr, "score: standard output: %s\n", strerror(errno));
        rc = 1;
        e.code = 0;
    }

    for (size_t i = 0; i < n_lines; i++) {
        free(lines[i]);
        if (sc)
            free(sc[i].words);
    }
    free(lines);
    free(sc);
    bn_batcher_free(b);
    bn_tokenizer_free(t);
    bn_ctx_free(c);
    bn_model_close(m);
    if (rc && e.code)
        return fail(what[0] ? what : NULL, &e);
    return rc ? 1 : 0;
}
