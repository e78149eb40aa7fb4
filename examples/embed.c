/* embed.c — one vector for each line of a text with an embedding model
 * (the BitNet embedding models, bn-infer(1) --embed), using only the
 * installed libbn (bn.h, libbn(3)): the lines are tokenized and embedded
 * together by bn_embed_batch, which runs them several at a time.
 *
 *   cc embed.c $(pkg-config --cflags --libs bn) -o embed
 *   ./embed MODEL [FILE]
 *   ./embed -q QUERY MODEL [FILE]
 *
 * Reads FILE (standard input without one, or -). Without -q it writes one
 * line per input line, the vector's floats separated by spaces, as
 * bn-infer --embed writes them (byte for byte). With -q it embeds QUERY
 * too and writes, for each line in order, the cosine similarity of the
 * line's vector with the query's (their dot product: both have length 1),
 * a tab and the line: `./embed -q "..." M notes.txt | sort -rn | head`
 * is a small search. Model-specific instructions go into the text itself
 * (e.g. "Instruct: ...\tQuery: ..."), as the model card says. */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <bn.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SEQ 8 /* lines embedded in one pass; bn_embed_batch runs the rest in more */

static int fail(const char *what, const bn_err *e)
{
    fprintf(stderr, "embed: %s%s%s (%s)\n", what ? what : "", what ? ": " : "", e->msg, bn_status_string(e->code));
    return 1;
}

/* Every line of f without its newline (a final "\r" too), or -1 when
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
        if (got && buf[got - 1] == '\r')
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

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* text's ids (BOS where the model wants one) into a new array. */
static int tokenize(bn_tokenizer *t, const char *text, uint32_t **ids, size_t *n, bn_err *e)
{
    size_t len = strlen(text);
    int rc = bn_tokenize(t, text, len, BN_TOKENIZE_BOS, NULL, 0, n, e);
    if (rc)
        return rc;
    if (!(*ids = malloc((*n ? *n : 1) * sizeof **ids))) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return e->code = BN_E_NOMEM;
    }
    return bn_tokenize(t, text, len, BN_TOKENIZE_BOS, *ids, *n, n, e);
}

int main(int argc, char **argv)
{
    const char *query = NULL;
    if (argc > 2 && !strcmp(argv[1], "-q")) {
        query = argv[2];
        argv += 2, argc -= 2;
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: embed [-q QUERY] MODEL [FILE]\n");
        return 2;
    }
    const char *path = argc == 3 && strcmp(argv[2], "-") ? argv[2] : NULL;
    FILE *f = path ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "embed: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t n_lines;
    char **lines;
    if (read_lines(f, &lines, &n_lines) || ferror(f)) {
        fprintf(stderr, "embed: %s: %s\n", path ? path : "standard input", ferror(f) ? "read error" : "out of memory");
        free_lines(lines, n_lines);
        return 1;
    }
    if (path)
        fclose(f);

    bn_err e;
    /* the early returns free what they hold: a leak checker (make
     * sanitize runs this program) counts what main leaves behind */
    bn_model *m = bn_model_open(argv[1], NULL, &e);
    if (!m) {
        free_lines(lines, n_lines);
        return fail(NULL, &e);
    }
    if (!bn_model_is_embedding(m)) {
        fprintf(stderr, "embed: %s: not an embedding model\n", argv[1]);
        free_lines(lines, n_lines);
        bn_model_close(m);
        return 1;
    }
    bn_ctx_params cp;
    bn_ctx_params_init(&cp);
    cp.n_seq = N_SEQ;
    bn_ctx *c = bn_ctx_new(m, &cp, &e);
    bn_tokenizer *t = c ? bn_tokenizer_from_model(m, &e) : NULL;
    /* the query is input 0, the lines follow */
    size_t k = n_lines + (query != NULL), d = bn_model_n_embd(m);
    uint32_t **ids = calloc(k ? k : 1, sizeof *ids);
    size_t *n = calloc(k ? k : 1, sizeof *n);
    float *vec = malloc((k ? k : 1) * d * sizeof *vec);
    int rc = t ? 0 : -1;
    char what[64] = "";
    if (t && (!ids || !n || !vec)) {
        snprintf(e.msg, sizeof e.msg, "out of memory");
        e.code = rc = BN_E_NOMEM;
    }
    for (size_t i = 0; i < k && !rc; i++) {
        size_t line = i - (query != NULL);
        rc = tokenize(t, query && !i ? query : lines[line], &ids[i], &n[i], &e);
        if (rc)
            snprintf(what, sizeof what, query && !i ? "the query" : "line %zu", line + 1);
    }
    if (!rc)
        rc = bn_embed_batch(c, (const uint32_t *const *)ids, n, k, vec, &e);

    for (size_t i = query != NULL; i < k && !rc; i++) {
        const float *v = vec + i * d;
        if (query) {
            double dot = 0;
            for (size_t j = 0; j < d; j++)
                dot += (double)v[j] * vec[j];
            printf("%.6f\t%s\n", dot, lines[i - 1]);
        } else {
            for (size_t j = 0; j < d; j++) /* %.9g: every float read back exactly */
                printf(j ? " %.9g" : "%.9g", (double)v[j]);
            putchar('\n');
        }
    }
    if (rc)
        fail(*what ? what : NULL, &e);
    else if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "embed: standard output: write error\n");
        rc = -1;
    }
    for (size_t i = 0; i < k && ids; i++)
        free(ids[i]);
    free_lines(lines, n_lines);
    free(ids);
    free(n);
    free(vec);
    bn_tokenizer_free(t);
    bn_ctx_free(c);
    bn_model_close(m);
    return rc ? 1 : 0;
}
