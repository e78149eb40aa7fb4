/* bn-serve — an OpenAI-compatible HTTP server: every request is a
 * sequence of one continuous batch over the model (lib/model/batch.h).
 * This file parses options, opens the model and runs the server's parts
 * (cmd/serve/) until SIGTERM or SIGINT: then it stops accepting, lets
 * what is in flight finish, and exits 0. */
#include "cli.h"
#include "cpu.h"
#include "draftmodel.h"
#include "kvbudget.h"
#include "opt.h"
#include "pool.h"
#include "serve/serve.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const bn_prog prog = {
    .name = "bn-serve",
    .summary = "an OpenAI-compatible HTTP server with continuous batching",
    .usage = "usage: bn-serve -m MODEL [--host ADDR] [--port N] [-np SLOTS] [options]\n"
             "Answers /v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize,\n"
             "/health and /metrics (an embedding model: /v1/embeddings instead of the completions);\n"
             "every request is a sequence of one shared batch.\n",
    .epilog = "Exit status: 0 after SIGTERM or SIGINT (requests in flight are answered first),\n"
              "1 a model or network error, 2 usage error. See bn-serve(1).\n",
};

/* DRAIN_SECONDS: what in-flight requests get after SIGTERM before they are
 * cancelled; FLUSH_MS: what the cancelled ones' error events then get to
 * reach their clients. ALIAS_MAX: an --alias's bytes, so that
 * GET /v1/models/NAME fits the server's path buffer. */
enum { DRAIN_SECONDS = 30, FLUSH_MS = 2000, MAX_ORIGINS = 16, ALIAS_MAX = 96 };

typedef struct opts {
    const char *model, *host, *api_key, *api_key_file, *draft, *alias, *chat_date;
    const char *origins[MAX_ORIGINS];
    size_t n_origins;
    uint32_t port, parallel, queue, n_ctx, timeout;
    uint64_t kv_budget;
    int threads, log_json, log_health, chat_whole, kv_f16;
} opts;

/* An origin as browsers send it: "scheme://host[:port]" (no path, not
 * even "/"), "null" (a page from a file), or "*" for any. */
static int origin_ok(const char *s)
{
    if (!strcmp(s, "*") || !strcmp(s, "null"))
        return 1;
    const char *host = strstr(s, "://");
    if (!host || host == s || !host[3] || strchr(host + 3, '/'))
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* Unicode's blanks beyond ASCII (White_Space), the C1 controls
 * U+0080..U+009F, and the characters Unicode says to show as nothing
 * (Default_Ignorable_Code_Point: soft hyphen, joiners, direction marks
 * and embeddings, variation selectors, fillers, tags; U+FEFF) with the
 * blank-looking Hangul fillers and U+2800: in a name they look like
 * nothing or like a space, so a client could not type it. */
static int unicode_blank(uint32_t c)
{
    static const uint32_t ranges[][2] = {
        {0x80, 0xa0},       {0xad, 0xad},       {0x34f, 0x34f},     {0x61c, 0x61c},     {0x115f, 0x1160},
        {0x1680, 0x1680},   {0x17b4, 0x17b5},   {0x180b, 0x180f},   {0x2000, 0x200f},   {0x2028, 0x202f},
        {0x205f, 0x206f},   {0x2800, 0x2800},   {0x3000, 0x3000},   {0x3164, 0x3164},   {0xfe00, 0xfe0f},
        {0xfeff, 0xfeff},   {0xffa0, 0xffa0},   {0xfff0, 0xfff8},   {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a},
        {0xe0000, 0xe0fff},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (c >= ranges[i][0] && c <= ranges[i][1])
            return 1;
    return 0;
}

/* A path's last name ("dir/" is "dir"), in buf. */
static const char *last_name(const char *path, char *buf, size_t cap)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *start = path + len;
    while (start > path && start[-1] != '/')
        start--;
    snprintf(buf, cap, "%.*s", (int)(path + len - start), start);
    return buf;
}

/* The model's API name without --alias: the path's last name as given (a
 * link keeps its own name: a "current" link to a model is served as
 * "current"); only "." and ".." (or "/") take the directory's own name. */
static const char *model_name(const char *path, char *buf, size_t cap)
{
    char real[PATH_MAX];
    last_name(path, buf, cap);
    if ((!strcmp(buf, ".") || !strcmp(buf, "..") || !strcmp(buf, "/")) && realpath(path, real))
        last_name(real, buf, cap);
    return buf;
}

/* A model name clients can send in JSON and in GET /v1/models/NAME: UTF-8
 * without blanks, control characters or what ends a URL's path (? #) or
 * escapes in it (%), and short enough for the server's path buffer. NULL,
 * or why not (in why): the byte and character, never the name itself,
 * whose controls would break the one-line usage error. */
static const char *alias_problem(const char *s, char *why, size_t cap)
{
    size_t len = strlen(s), k;
    if (!len)
        return "it is empty";
    if (len > ALIAS_MAX)
        return snprintf(why, cap, "it is %zu bytes", len), why;
    for (size_t i = 0; i < len; i += k) {
        uint32_t c = srv_utf8_decode(s + i, len - i, &k);
        if (!k)
            return snprintf(why, cap, "byte %zu (0x%02x) is not UTF-8", i + 1, (unsigned char)s[i]), why;
        if (c <= ' ' || c == 0x7f || unicode_blank(c))
            return snprintf(why, cap, "byte %zu is U+%04X, a blank or control character", i + 1, (unsigned)c), why;
        if (c < 0x80 && strchr("?#%", (int)c)) /* ASCII only: strchr would take U+013F for '?' (0x3f) */
            return snprintf(why, cap, "byte %zu is '%c'", i + 1, (int)c), why;
    }
    return NULL;
}

/* The model's "created" in /v1/models: its file's time, the same from
 * every instance that serves it and across restarts; the start otherwise. */
static long model_time(const char *path)
{
    struct stat st;
    return !stat(path, &st) && st.st_mtime > 0 ? (long)st.st_mtime : (long)time(NULL);
}

/* SIGTERM and SIGINT are blocked (one thread waits for them), so during
 * a long model load they stay pending: the load's progress callback looks
 * for one between steps and cancels the load, and bn-serve stops there. */
static int stop_pending(void *user, size_t done, size_t total, const char *what)
{
    (void)user, (void)done, (void)total, (void)what;
    sigset_t p;
    return !sigpending(&p) && (sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1);
}

static const char *const kv_names[] = {"f32", "f16", NULL};

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->kv_f16 = 1;
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 4;
    o->queue = 64;
    o->timeout = 60;
    o->threads = bn_cpu_count();
    bn_opt table[] = {
        OPT_SECTION("model and runtime:"),
        OPT_STRING('m', "model", &o->model, "FILE", "bn model (also an HF directory, GGUF)"),
        OPT_STRING(0, "alias", &o->alias, "NAME", "the model's name in the API (default: the file's base name)"),
        OPT_ENUM(0, "chat-encoding", &o->chat_whole, "HOW", bn_cli_chat_encodings, NULL,
                 "chat messages: split (each header and text apart, as\nthe model was trained; default) or whole "
                 "(as one\ntext, as Hugging Face's template and llama-server)"),
        OPT_STRING(0, "chat-date", &o->chat_date, "DATE",
                   "the date a Llama 3.1 or 3.2 format's system message\ngives (default: the one 3.1's template "
                   "fixes,\nthe day of each request for 3.2)"),
        OPT_U32('c', "ctx", &o->n_ctx, "N", 2, 1u << 24, "context positions of each sequence (default: the model's)"),
        OPT_INT('t', "threads", &o->threads, "N", 1, 1024, "threads (default: all cores)"),
        {.kind = BN_OPT_U32, .dash_name = "np", .name = "parallel", .dest = &o->parallel, .arg = "SLOTS", .lo = 1,
         .hi = 256, .help = "requests answered at once, each a sequence of the batch (default 4)"},
        OPT_ENUM(0, "kv", &o->kv_f16, NULL, kv_names, NULL,
                 "KV cache precision of the model and the draft (default f16; an embedding\n"
                 "model's is f32)"),
        OPT_BYTES(0, "kv-budget", &o->kv_budget, "N[K|M|G]", 1,
                  "KV cache bytes for all sequences (default: half of the memory the model leaves,\n"
                  "at least one context, at most SLOTS contexts)"),
        OPT_STRING(0, "draft", &o->draft, "MODEL",
                   "a draft model (smaller, the same tokenizer) for requests with \"draft\": true"),
        OPT_U32(0, "queue", &o->queue, "N", 0, 1u << 20,
                "requests that may wait for a sequence (default 64); more get 503"),
        OPT_SECTION("network:"),
        OPT_STRING(0, "host", &o->host, "ADDR", "address to listen on (default 127.0.0.1: this machine only)"),
        OPT_U32(0, "port", &o->port, "N", 0, 65535, "port (default 8080; 0: a free one, printed at start)"),
        OPT_STRING(0, "api-key", &o->api_key, "KEY", "require 'Authorization: Bearer KEY' (not for /health)"),
        OPT_STRING(0, "api-key-file", &o->api_key_file, "FILE", "... the key read from the file's first line"),
        OPT_LIST(0, "allow-origin", o->origins, &o->n_origins, MAX_ORIGINS, "ORIGIN",
                 "let pages from ORIGIN (scheme://host[:port], null, or * for any) call the API: CORS "
                 "(repeatable)"),
        OPT_U32(0, "timeout", &o->timeout, "S", 1, 86400,
                "close a connection idle this many seconds (default 60; waiting\n"
                "for its answer is not idle)"),
        OPT_FLAG(0, "log-json", &o->log_json, "log one JSON object per request instead of a text line"),
        OPT_FLAG(0, "log-health", &o->log_health, "log answered /health checks too (left out by default)"),
        OPT_END,
    };
    int n, rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    if (!o->model)
        return bn_usage_error(&prog, "no model given (-m FILE)");
    /* a server keeps its model for its whole life: a file, not a stream */
    if (!strcmp(o->model, "-") || (o->draft && !strcmp(o->draft, "-")))
        return bn_usage_error(&prog, "%s: a server needs its model as a file, not standard input",
                              !strcmp(o->model, "-") ? "-m" : "--draft");
    if (o->api_key && o->api_key_file)
        return bn_usage_error(&prog, "--api-key and --api-key-file exclude each other");
    const char *bad_date = bn_cli_chat_date_problem(o->chat_date);
    if (bad_date)
        return bn_usage_error(&prog, "%s", bad_date);
    if (o->api_key && !*o->api_key)
        return bn_usage_error(&prog, "the API key is empty");
    char why[64];
    const char *bad = o->alias ? alias_problem(o->alias, why, sizeof why) : NULL;
    if (bad)
        return bn_usage_error(&prog,
                              "--alias: not a name: %s (a name is up to %d bytes of UTF-8 without blanks, control "
                              "characters, ? # or %%)",
                              bad, ALIAS_MAX);
    char name[PATH_MAX];
    if (!o->alias && o->model && strlen(model_name(o->model, name, sizeof name)) > ALIAS_MAX)
        return bn_usage_error(&prog,
                              "the model's file name is %zu bytes, more than a name in the API may have (%d): name "
                              "it with --alias NAME",
                              strlen(name), ALIAS_MAX);
    for (size_t i = 0; i < o->n_origins; i++)
        if (!origin_ok(o->origins[i]))
            return bn_usage_error(&prog, "--allow-origin '%s': not an origin (scheme://host[:port] without a path, "
                                  "null, or *)", o->origins[i]);
    return BN_OPT_RUN;
}

/* The key from the first line of a file (kept out of the process list). */
static char *read_key(const char *path, bn_err *e)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        bn_fail(e, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    if (n <= 0) {
        free(line);
        bn_fail(e, "%s: no key on its first line", path);
        return NULL;
    }
    return line;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc != BN_OPT_RUN)
        return rc;
    /* A client that hangs up is an error of one request, not a signal;
     * SIGTERM and SIGINT are waited for by this thread alone. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    bn_err e = {0};
    char *key = NULL;
    if (o.api_key_file && !(key = read_key(o.api_key_file, &e))) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    /* a model (or draft) that is not there is said before listening, as the one line */
    const char *gone = access(o.model, R_OK) ? o.model : o.draft && access(o.draft, R_OK) ? o.draft : NULL;
    if (gone) {
        bn_report(&prog, "%s: %s", gone, strerror(errno));
        free(key);
        return BN_EXIT_DATA;
    }
    char name[PATH_MAX];
    srv_http_opts ho = {.host = o.host, .port = o.port, .api_key = key ? key : o.api_key, .log_json = o.log_json,
                        .log_health = o.log_health, .timeout_s = o.timeout,
                        .prog = prog.name, .origins = o.origins, .n_origins = o.n_origins};
    unsigned port = 0;
    /* listening first: /health says 503 while the model loads */
    srv_http *h = srv_http_start(&ho, &port, &e);
    if (!h) {
        bn_report(&prog, "%s", e.msg);
        free(key);
        return BN_EXIT_DATA;
    }
    fprintf(stderr, "%s: listening on http://%s%s%s:%u/\n", prog.name, strchr(o.host, ':') ? "[" : "", o.host,
            strchr(o.host, ':') ? "]" : "", port);
    rc = BN_EXIT_DATA;
    bn_model *m = NULL;
    bn_ctx *c = NULL, *dc = NULL;
    bn_model *dm = NULL;
    bn_tokenizer *tok = NULL;
    srv_engine g;
    int engine_on = 0;
    pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;
    uint64_t mem_available = bn_mem_available(); /* before the model takes its share */
    bn_model_params mp;
    bn_model_params_init(&mp);
    mp.log = bn_cli_show_warning; /* loading's warnings, e.g. float projections ternarized */
    mp.log_user = (void *)&prog;
    mp.progress = stop_pending;
    if (!(m = bn_model_open(o.model, &mp, &e))) {
        if (e.code == BN_E_CANCELLED) { /* a stop while loading: as any stop */
            fprintf(stderr, "%s: stopped while loading the model\n", prog.name);
            rc = BN_EXIT_OK;
        } else {
            bn_report(&prog, "%s", e.msg);
        }
        goto out;
    }
    if (o.n_ctx > bn_model_n_ctx(m)) {
        bn_report(&prog, "%s: context %u is larger than the model's (%u)", o.model, o.n_ctx, bn_model_n_ctx(m));
        goto out;
    }
    if (!(tok = bn_tokenizer_from_model(m, &e)) ||
        bn_tokenizer_set_chat_encoding(tok, o.chat_whole ? BN_CHAT_WHOLE : BN_CHAT_SPLIT, &e) ||
        bn_tokenizer_set_chat_date(tok, o.chat_date, &e)) {
        bn_report(&prog, "%s", e.msg);
        goto out;
    }
    /* the KV budget as bn-infer's: half of what memory the model leaves,
     * at least one context, at most one a sequence */
    /* an embedding model's vectors are bn-infer --embed's, bytes and all:
     * its context gives final-normed states, its KV is f32 as there */
    int embed = m->hp.pooling != BN_POOL_NONE;
    bn_ctx_opts co = {.n_ctx = o.n_ctx ? o.n_ctx : bn_model_n_ctx(m), .kv_f16 = o.kv_f16 && !embed,
                      .n_threads = o.threads, .n_seq = o.parallel, .embeddings = embed};
    uint64_t block = bn_cli_kv_block_bytes(m, co.kv_f16);
    co.kv_budget = o.kv_budget ? o.kv_budget
                               : bn_cli_default_kv_budget(mem_available, bn_model_weight_bytes(m), block, co.n_ctx,
                                                          o.parallel);
    if (bn_cli_kv_fit(&prog, o.model, co.kv_budget, block, &co.n_ctx))
        goto out;
    if (!(c = bn_ctx_new_opts(m, &co, &e))) {
        bn_report(&prog, "%s: %s", o.model, e.msg);
        goto out;
    }
    /* --draft: its own context, a sequence for each of the model's, as
     * long as the model's context or its own if shorter (blocks as used) */
    if (o.draft && embed) {
        bn_report(&prog, "%s: an embedding model: --draft is for completions", o.model);
        goto out;
    }
    if (o.draft) {
        if (bn_cli_open_draft(o.draft, &mp, m, tok, &dm, &e)) {
            bn_report(&prog, "%s", e.msg);
            goto out;
        }
        bn_ctx_opts dco = {.n_ctx = co.n_ctx < bn_model_n_ctx(dm) ? co.n_ctx : bn_model_n_ctx(dm), .kv_f16 = o.kv_f16,
                           .n_threads = o.threads, .n_seq = bn_ctx_n_seq(c)};
        if (!(dc = bn_ctx_new_opts(dm, &dco, &e))) {
            bn_report(&prog, "%s: %s", o.draft, e.msg);
            goto out;
        }
    }
    if (srv_engine_start(&g, m, c, dc, tok, o.queue, &e)) {
        bn_report(&prog, "%s", e.msg);
        goto out;
    }
    engine_on = 1;
    srv_model_info mi = {.m = m, .tok = tok, .tok_mu = &tok_mu,
                         .id = o.alias ? o.alias : model_name(o.model, name, sizeof name),
                         .created = model_time(o.model),
                         .n_ctx = bn_ctx_n_ctx(c), .embed = embed, .draft = dc != NULL};
    srv_http_ready(h, &g, &mi);
    char kvb[32];
    fprintf(stderr, "%s: %s ready: %u sequences of %u positions, KV budget %s, %d threads\n", prog.name, mi.id,
            bn_ctx_n_seq(c), mi.n_ctx, bn_cli_size(bn_ctx_kv_bytes(c), kvb), o.threads);
    int sig = 0;
    while (sigwait(&stop, &sig))
        ;
    fprintf(stderr, "%s: %s: no new connections; answering the %zu requests in flight\n", prog.name, strsignal(sig),
            srv_http_active(h));
    srv_http_quiesce(h);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (!srv_http_active(h) || t.tv_sec - t0.tv_sec >= DRAIN_SECONDS)
            break;
        /* a second signal does not wait for the drain */
        if (sigtimedwait(&stop, NULL, &(struct timespec){0, 20000000}) > 0) {
            fprintf(stderr, "%s: stopped again: cancelling the %zu requests in flight\n", prog.name,
                    srv_http_active(h));
            break;
        }
    }
    rc = BN_EXIT_OK;
out:
    /* what is still in flight past the deadline is cancelled (its
     * clients get an error), then the connections end: a moment (at most
     * FLUSH_MS) for the error events to go out, which stopping the daemon
     * at once cut off mid-stream */
    if (engine_on) {
        srv_engine_stop(&g, 1);
        for (int ms = 0; h && ms < FLUSH_MS && srv_http_active(h); ms += 10)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    srv_http_stop(h);
    if (engine_on)
        srv_engine_free(&g);
    bn_ctx_free(c);
    bn_ctx_free(dc);
    bn_tokenizer_free(tok);
    bn_model_close(m);
    bn_model_close(dm);
    free(key);
    return rc;
}
