/* bn-bench — the measurement instrument: end-to-end prefill/decode speed,
 * kernel micro-benchmarks, the machine's limits (bandwidth, int8 peak),
 * energy, tokenizer and conversion throughput, and comparisons of saved
 * runs. This file only parses options and calls libbn (lib/bench.h). */
#include "bench.h"
#include "opt.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const bn_prog prog = {
    .name = "bn-bench",
    .summary = "measure bn's speed and memory against the machine's limits",
    .usage = "usage: bn-bench -m MODEL | --synthetic SHAPE [options]     prefill and decode speed (pp, tg)\n"
             "       bn-bench --kernels [--synthetic SHAPE] [-k SETS]   GEMV/GEMM of every kernel set\n"
             "       bn-bench --bandwidth [-t LIST]                     memory read bandwidth and int8 peak\n"
             "       bn-bench --tokenize (-m MODEL | --vocab FILE) [--text FILE]\n"
             "       bn-bench --convert (-m MODEL | --synthetic SHAPE)\n"
             "       bn-bench --compare OLD.json NEW.json\n"
             "       bn-bench --list-shapes\n",
    .epilog = "Exit status: 0 success, 1 a data or runtime error (also: a shape that does not fit in memory),\n"
              "2 usage error. See bn-bench(1).\n",
    .operand = "NEW.json",
    .max_operands = 1,
};

typedef struct cmdline {
    bn_bench_opts b;
    int kernels, bandwidth, tokenize, convert, list_shapes;
    const char *cmp_old, *cmp_new;
    uint32_t bw_mib, text_mib, sample_ms;
    char kernel_names[1024]; /* -k's names, split */
} cmdline;

/* Splits a copy of a comma list into buf; the pieces point into buf. */
static int split(const char *v, char *buf, size_t size, const char **out, size_t *n, char *why, size_t wn)
{
    if (snprintf(buf, size, "%s", v) >= (int)size)
        return snprintf(why, wn, "longer than %zu bytes", size - 1), -1;
    /* strtok_r would skip an empty element ("1,,2") without a word */
    if (*v == ',' || strstr(v, ",,") || (*v && v[strlen(v) - 1] == ','))
        return snprintf(why, wn, "'%s' has an empty element", v), -1;
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == BN_BENCH_MAX_LIST)
            return snprintf(why, wn, "at most %d values", BN_BENCH_MAX_LIST), -1;
        out[(*n)++] = tok;
    }
    if (!*n)
        return snprintf(why, wn, "empty list"), -1;
    return 0;
}

/* A comma list of whole numbers in [lo, hi]. */
static int split_u(const char *v, uint64_t lo, uint64_t hi, uint64_t *vals, size_t *n, char *why, size_t wn)
{
    char buf[1024];
    const char *pieces[BN_BENCH_MAX_LIST];
    if (split(v, buf, sizeof buf, pieces, n, why, wn))
        return -1;
    for (size_t i = 0; i < *n; i++)
        if (bn_parse_u64(pieces[i], lo, hi, &vals[i]))
            return snprintf(why, wn, "'%s' is not a whole number in [%llu, %llu]", pieces[i], (unsigned long long)lo,
                            (unsigned long long)hi), -1;
    return 0;
}

/* A comma list of whole numbers in [lo, hi] into a uint32_t array. */
static int split_u32(const char *v, uint64_t lo, uint64_t hi, uint32_t *out, size_t *n, char *why, size_t wn)
{
    uint64_t vals[BN_BENCH_MAX_LIST];
    if (split_u(v, lo, hi, vals, n, why, wn))
        return -1;
    for (size_t i = 0; i < *n; i++)
        out[i] = (uint32_t)vals[i];
    return 0;
}

static int set_pp(void *dest, const char *v, char *why, size_t wn)
{
    bn_bench_opts *o = dest;
    return split_u32(v, 0, 1u << 20, o->pp, &o->n_pp, why, wn);
}

static int set_tg(void *dest, const char *v, char *why, size_t wn)
{
    bn_bench_opts *o = dest;
    return split_u32(v, 0, 1u << 20, o->tg, &o->n_tg, why, wn);
}

static int set_par(void *dest, const char *v, char *why, size_t wn)
{
    bn_bench_opts *o = dest;
    return split_u32(v, 1, 1024, o->par, &o->n_par, why, wn);
}

static int set_verify(void *dest, const char *v, char *why, size_t wn)
{
    bn_bench_opts *o = dest;
    /* K = 1 is the decode step, measured beside every list */
    return split_u32(v, 2, BN_KERN_MAX_N, o->verify, &o->n_verify, why, wn);
}

static int set_threads(void *dest, const char *v, char *why, size_t wn)
{
    bn_bench_opts *o = dest;
    uint64_t vals[BN_BENCH_MAX_LIST];
    if (split_u(v, 1, 1024, vals, &o->n_threads, why, wn))
        return -1;
    for (size_t i = 0; i < o->n_threads; i++)
        o->threads[i] = (int)vals[i];
    return 0;
}

/* The kernel names stay in the cmdline's buffer. */
static int set_kernels(void *dest, const char *v, char *why, size_t wn)
{
    cmdline *c = dest;
    return split(v, c->kernel_names, sizeof c->kernel_names, c->b.kernels, &c->b.n_kernels, why, wn);
}

static int add_synthetic(void *dest, const char *v, char *why, size_t wn)
{
    bn_bench_opts *o = dest;
    const char *names[BN_BENCH_MAX_LIST];
    char buf[1024], all[256];
    size_t n;
    if (split(v, buf, sizeof buf, names, &n, why, wn))
        return -1;
    for (size_t k = 0; k < n; k++) {
        const bn_shape *s = bn_shape_find(names[k]);
        if (!s) {
            bn_shape_names(all, sizeof all);
            return snprintf(why, wn, "unknown shape '%s' (known: %s)", names[k], all), -1;
        }
        if (o->n_synth == BN_BENCH_MAX_LIST)
            return snprintf(why, wn, "at most %d shapes", BN_BENCH_MAX_LIST), -1;
        o->synth[o->n_synth++] = s;
    }
    return 0;
}

static const char *const kv_names[] = {"f32", "f16", NULL};
static const char *const format_names[] = {"md", "csv", "json", NULL};
static const int formats[] = {BN_FMT_MD, BN_FMT_CSV, BN_FMT_JSON};

/* Whether the option of that long name was given. */
static int given(const bn_opt *t, const char *name)
{
    for (; t->kind != BN_OPT_END; t++)
        if (t->name && !strcmp(t->name, name))
            return t->given;
    return 0;
}

/* --list-shapes and --compare measure nothing: beside the output options
 * and the mode itself, any option given would be ignored, so it is
 * refused.  (The measuring modes take the tuning options -r, --seed,
 * --bw-mib, --sample-ms, --mem-limit and --rapl alike, each used where it
 * applies, so that one set of them serves a script's every run.) */
static const char *const always_read[] = {"output", "csv", "json", "verbose", "compare", "list-shapes", NULL};

static int listed(const char *const *names, const char *name)
{
    for (; *names; names++)
        if (!strcmp(*names, name))
            return 1;
    return 0;
}

/* The first option given that is not an output option, or NULL. */
static const char *measuring_option(const bn_opt *t)
{
    for (; t->kind != BN_OPT_END; t++)
        if (t->name && t->given && !listed(always_read, t->name))
            return t->name;
    return NULL;
}

static int parse(int argc, char **argv, cmdline *c)
{
    bn_bench_opts *o = &c->b;
    memset(c, 0, sizeof *c);
    bn_bench_opts_default(o);
    c->bw_mib = (uint32_t)(o->bw_bytes >> 20);
    c->text_mib = (uint32_t)(o->text_bytes >> 20);
    c->sample_ms = (uint32_t)(o->sample_s * 1000 + 0.5);
    char shapes[256], synthetic_help[512];
    bn_shape_names(shapes, sizeof shapes);
    snprintf(synthetic_help, sizeof synthetic_help,
             "named shapes with random ternary weights, made in memory\n(%s)", shapes);
    bn_opt table[] = {
        OPT_SECTION("Lists are comma-separated; every combination is run."),
        OPT_LIST('m', "model", o->models, &o->n_models, BN_BENCH_MAX_LIST, "FILE",
                 "a model (bn, GGUF, HF directory); repeatable"),
        OPT_CALL(0, "synthetic", o, add_synthetic, "LIST", synthetic_help),
        OPT_CALL('p', "n-prompt", o, set_pp, "LIST", "prompt lengths: prefill tests ppN (default 512; 0: none)"),
        OPT_CALL('n', "n-gen", o, set_tg, "LIST", "generated tokens: decode tests tgN (default 128; 0: none)"),
        OPT_CALL(0, "parallel", o, set_par, "LIST",
                 "batched tests: N sequences prefilled and decoded together\n"
                 "(as llama-batched-bench; -p/-n per sequence, default 128 and 64)"),
        OPT_CALL(0, "verify", o, set_verify, "LIST",
                 "speculative decoding: one pass of K tokens (a verify pass) after the first -p\n"
                 "tokens, timed against one decode step, for each K (e.g. 2,4,8)"),
        OPT_LIST(0, "prompt-file", o->prompts, &o->n_prompts, BN_BENCH_MAX_LIST, "FILE",
                 "a text answered greedily for the first -n tokens, plain and with prompt\n"
                 "lookup: t/s of each, drafts kept, tokens per pass (-m only; repeatable;\n"
                 "with --parallel N: N requests at once over the texts)"),
        OPT_U32(0, "lookup", &o->lookup, "N", 1, 64, "prompt lookup's longest n-gram for --prompt-file (default 3)"),
        OPT_STRING(0, "draft", &o->draft, "MODEL",
                   "--prompt-file's texts with this draft model's guesses instead of prompt lookup"),
        OPT_U32(0, "draft-max", &o->draft_max, "K", 1, BN_KERN_MAX_N - 1,
                "most tokens drafted for one pass with --prompt-file (default 8)"),
        OPT_FLAG(0, "no-pacing", &o->no_pacing,
                 "--prompt-file's lookup or draft guesses whenever it can, as bn-infer --no-pacing"),
        OPT_CALL('t', "threads", o, set_threads, "LIST", "thread counts (default: all cores)"),
        OPT_CALL('k', "kernel", c, set_kernels, "LIST",
                 "kernel sets, NAME or NAME:LAYOUT (default auto: the best per layout)"),
        OPT_INT('r', "repetitions", &o->reps, "N", 1, BN_BENCH_MAX_REPS,
                "measured repetitions after one warm-up (default 5, at most 100)"),
        OPT_ENUM(0, "kv", &o->kv_f16, NULL, kv_names, NULL, "KV cache precision (default f16, as bn-infer)"),
        OPT_FLAG(0, "mmap", &o->mmap_only, "run from the file mapping, not a copy in memory (as bn-infer --mmap)"),
        OPT_U64(0, "seed", &o->seed, "N", "seed of the random weights and token ids (default 1234)"),
        OPT_U32(0, "bw-mib", &c->bw_mib, "N", 1, 1u << 20, "bandwidth buffer in MiB (default 1024)"),
        OPT_U32(0, "sample-ms", &c->sample_ms, "MS", 1, 60000,
                "--kernels: how long one sample of a kernel runs (default 50)"),
        OPT_BYTES(0, "mem-limit", &o->mem_limit, "N[K|M|G]", 1,
                 "refuse synthetic shapes needing more (default: MemAvailable)"),
        OPT_STRING(0, "rapl", &o->rapl_root, "DIR", "powercap directory (default /sys/class/powercap)"),
        OPT_STRING(0, "vocab", &o->vocab, "FILE", "tokenizer rank file for --tokenize"),
        OPT_STRING(0, "text", &o->text, "FILE", "text for --tokenize (default: 4 MiB generated, see --text-mib)"),
        OPT_U32(0, "text-mib", &c->text_mib, "N", 1, 4096, "size of the generated text"),
        OPT_SECTION("modes (at most one; without one: prefill and decode speed):"),
        OPT_FLAG(0, "kernels", &c->kernels, "GEMV/GEMM of every kernel set"),
        OPT_FLAG(0, "bandwidth", &c->bandwidth, "memory read bandwidth and int8 peak"),
        OPT_FLAG(0, "tokenize", &c->tokenize, "tokenizer throughput"),
        OPT_FLAG(0, "convert", &c->convert, "conversion throughput"),
        OPT_STRING(0, "compare", &c->cmp_old, "OLD.json", "compare two saved runs: OLD.json NEW.json"),
        OPT_FLAG(0, "list-shapes", &c->list_shapes, "the synthetic shapes"),
        OPT_SECTION("output:"),
        OPT_ENUM('o', "output", &o->format, NULL, format_names, formats, "report format (default md)"),
        OPT_SET(0, "csv", &o->format, BN_FMT_CSV, "the same as -o csv"),
        OPT_SET(0, "json", &o->format, BN_FMT_JSON, "the same as -o json"),
        OPT_FLAG('v', "verbose", &o->verbose, "progress on stderr"),
        OPT_END,
    };
    int n, rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    if (c->kernels + c->bandwidth + c->tokenize + c->convert + c->list_shapes + !!c->cmp_old > 1)
        return bn_usage_error(&prog, "--kernels, --bandwidth, --tokenize, --convert, --compare and --list-shapes "
                                     "are exclusive");
    if (c->cmp_old && n != 1)
        return bn_usage_error(&prog, "--compare needs two files: OLD.json NEW.json");
    if (n && !c->cmp_old)
        return bn_usage_error(&prog, "extra operand '%s'", argv[1]);
    c->cmp_new = c->cmp_old ? argv[1] : NULL;
    o->mode = c->kernels     ? BN_MODE_KERNELS
              : c->bandwidth ? BN_MODE_MACHINE
              : c->tokenize  ? BN_MODE_TOKENIZE
              : c->convert   ? BN_MODE_CONVERT
                             : BN_MODE_E2E;
    if (o->mode == BN_MODE_E2E && !c->list_shapes && !c->cmp_old && !o->n_models && !o->n_synth)
        return bn_usage_error(&prog, "nothing to measure: give -m MODEL or --synthetic SHAPE (or a mode)");
    /* options that would be ignored without a word */
    if ((c->list_shapes || c->cmp_old) && (o->n_models || o->n_synth || o->n_pp || o->n_tg || o->n_threads ||
                                           o->n_par || o->n_verify || o->n_prompts))
        return bn_usage_error(&prog, "--list-shapes and --compare measure nothing: not with -m, --synthetic, -p, -n, "
                                     "-t, --parallel, --verify or --prompt-file");
    if (o->mode != BN_MODE_E2E && (o->n_pp || o->n_tg))
        return bn_usage_error(&prog, "-p and -n are tests of -m/--synthetic models, not of a mode");
    /* each mode's inputs, and none that another mode reads */
    int engine = given(table, "kernel") || given(table, "kv") || o->mmap_only;
    if (o->mode == BN_MODE_TOKENIZE && (o->n_models + (o->vocab != NULL) != 1 || o->n_synth))
        return bn_usage_error(&prog, "--tokenize measures one tokenizer: -m MODEL or --vocab RANKFILE");
    if (o->mode == BN_MODE_TOKENIZE && (engine || given(table, "threads")))
        return bn_usage_error(&prog, "--tokenize runs the tokenizer on one thread: not with -t, -k, --kv or --mmap");
    if (o->mode != BN_MODE_TOKENIZE && (o->vocab || o->text || given(table, "text-mib")))
        return bn_usage_error(&prog, "--vocab, --text and --text-mib are --tokenize's");
    if (o->mode == BN_MODE_CONVERT && (o->n_models + o->n_synth != 1 || engine || given(table, "threads")))
        return bn_usage_error(&prog, "--convert measures one conversion: -m MODEL or --synthetic SHAPE (not -t, -k, "
                                     "--kv or --mmap)");
    if (o->mode == BN_MODE_MACHINE && (o->n_models || o->n_synth || engine))
        return bn_usage_error(&prog, "--bandwidth measures the machine: not with -m, --synthetic, -k, --kv or --mmap");
    if (o->mode == BN_MODE_KERNELS && (o->n_models || o->n_synth > 1 || given(table, "kv") || o->mmap_only))
        return bn_usage_error(&prog, "--kernels measures the matrices of one synthetic shape (default 2b4t): not with "
                                     "-m, --kv or --mmap, and one --synthetic SHAPE at most");
    int any = o->n_verify || o->n_prompts;
    for (size_t i = 0; i < o->n_pp; i++)
        any |= o->pp[i] != 0;
    for (size_t i = 0; i < o->n_tg; i++)
        any |= o->tg[i] != 0;
    if (o->mode == BN_MODE_E2E && o->n_pp && o->n_tg && !any) /* (one left out has its default) */
        return bn_usage_error(&prog, "nothing to measure: -p 0 and -n 0");
    o->bw_bytes = (size_t)c->bw_mib << 20;
    o->text_bytes = (size_t)c->text_mib << 20;
    o->sample_s = c->sample_ms / 1000.0;
    if (o->n_par && o->mode != BN_MODE_E2E)
        return bn_usage_error(&prog, "--parallel is a test of -m/--synthetic models, not of a mode");
    if ((o->n_verify || o->n_prompts) && o->mode != BN_MODE_E2E)
        return bn_usage_error(&prog, "--verify and --prompt-file are tests of -m/--synthetic models, not of a mode");
    if (o->n_verify && o->n_par)
        return bn_usage_error(&prog, "--verify is a test of one sequence, not of --parallel");
    if ((o->lookup || o->draft_max || o->draft || o->no_pacing) && !o->n_prompts)
        return bn_usage_error(&prog, "--lookup, --draft, --draft-max and --no-pacing need --prompt-file FILE");
    if (o->no_pacing && o->n_par)
        return bn_usage_error(&prog, "--no-pacing is for single-stream speculative decoding: not with --parallel");
    if (o->lookup && o->draft)
        return bn_usage_error(&prog, "--lookup and --draft exclude each other");
    if (o->n_prompts && o->n_synth)
        return bn_usage_error(&prog, "--prompt-file needs models with a tokenizer (-m), not --synthetic");
    /* standard input is read once: one '-' at most */
    int dashes = !strcmp(c->cmp_old ? c->cmp_old : "", "-") + !strcmp(c->cmp_new ? c->cmp_new : "", "-") +
                 !strcmp(o->draft ? o->draft : "", "-") + !strcmp(o->vocab ? o->vocab : "", "-") +
                 !strcmp(o->text ? o->text : "", "-");
    for (size_t i = 0; i < o->n_models; i++)
        dashes += !strcmp(o->models[i], "-");
    for (size_t i = 0; i < o->n_prompts; i++)
        dashes += !strcmp(o->prompts[i], "-");
    if (dashes > 1)
        return bn_usage_error(&prog, "standard input can be read once: '-' may name one input");
    if (o->n_prompts && o->n_par && o->n_pp)
        return bn_usage_error(&prog, "--parallel with --prompt-file answers the texts: -p does not apply");
    if (o->n_prompts && o->n_par && o->n_tg > 1)
        return bn_usage_error(&prog, "--parallel with --prompt-file answers the texts for one -n: give one value");
    if (o->n_prompts && o->n_tg && o->tg[0] < 2)
        return bn_usage_error(&prog, "--prompt-file times an answer's decoding: -n 2 or more");
    const char *unread = c->list_shapes || c->cmp_old ? measuring_option(table) : NULL;
    if (unread)
        return bn_usage_error(&prog, "--%s does nothing with %s", unread,
                              c->list_shapes ? "--list-shapes" : "--compare");
    if (o->n_prompts && !o->lookup && !o->draft)
        o->lookup = 3;
    if (!o->n_pp)
        o->pp[0] = o->n_par ? 128 : 512, o->n_pp = 1;
    if (!o->n_tg)
        o->tg[0] = o->n_par ? 64 : 128, o->n_tg = 1;
    if (!o->n_threads)
        o->threads[0] = bn_cpu_count(), o->n_threads = 1;
    return BN_OPT_RUN;
}

/* A copy of what name gives ('-': standard input; a pipe) in a temporary
 * file ($TMPDIR, else /tmp) unlinked at once, its descriptor left open for
 * the run and its /proc/self/fd name in path: every kernel set loads the
 * model again, --convert reads it once per repetition, and a pipe can be
 * read once; nothing is left behind however the run ends. */
static int spool(const char *name, char *path, size_t n, bn_err *e)
{
    int in = strcmp(name, "-") ? open(name, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (in < 0)
        return bn_fail(e, "%s: %s", name, strerror(errno));
    const char *dir = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/bn-bench-copy-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkostemp(tmp, O_CLOEXEC), rc = -1;
    if (fd < 0) {
        bn_fail(e, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    unlink(tmp);
    snprintf(path, n, "/proc/self/fd/%d", fd);
    char buf[1 << 16];
    for (;;) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            bn_fail(e, "%s: %s", name, strerror(errno));
            break;
        }
        if (got == 0) {
            rc = 0; /* fd stays open for the run */
            break;
        }
        ssize_t at = 0;
        while (at < got) {
            ssize_t put = write(fd, buf + at, (size_t)(got - at));
            if (put < 0 && errno == EINTR)
                continue;
            if (put < 0)
                break;
            at += put;
        }
        if (at < got) {
            bn_fail(e, "%s: %s", tmp, strerror(errno));
            break;
        }
    }
    if (rc)
        close(fd);
done:
    if (in != STDIN_FILENO)
        close(in);
    return rc;
}

/* Whether a model named name is read through a copy (spool): standard
 * input, or a pipe or socket (<(...), /dev/stdin from a pipe). Anything
 * else is the loader's to take or name (a device such as /dev/zero would
 * be copied until the disk is full). */
static int needs_copy(const char *name)
{
    struct stat st;
    return !strcmp(name, "-") || (!stat(name, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)));
}

/* An error naming a copy names what the user gave instead. */
static void report_error(const bn_bench_opts *o, const char *msg)
{
    for (size_t i = 0; i < o->n_copies; i++) {
        size_t k = strlen(o->copy_path[i]);
        if (!strncmp(msg, o->copy_path[i], k) && msg[k] == ':') {
            bn_report(&prog, "%s%s", o->copy_given[i], msg + k);
            return;
        }
    }
    bn_report(&prog, "%s", msg);
}

int main(int argc, char **argv)
{
    bn_cli_init();
    cmdline c;
    int rc = parse(argc, argv, &c);
    if (rc != BN_OPT_RUN)
        return rc;
    bn_err e = {0};
    /* a model that is not there is said now, not after the bandwidth probe */
    for (size_t i = 0; i < c.b.n_models + (c.b.draft != NULL); i++) {
        const char *name = i < c.b.n_models ? c.b.models[i] : c.b.draft;
        if (strcmp(name, "-") && access(name, R_OK)) {
            bn_report(&prog, "%s: %s", name, strerror(errno));
            return BN_EXIT_DATA;
        }
    }
    char copies[BN_BENCH_MAX_LIST + 1][64];
    for (size_t i = 0; i < c.b.n_models + (c.b.draft != NULL); i++) {
        const char **name = i < c.b.n_models ? &c.b.models[i] : &c.b.draft;
        if (!needs_copy(*name))
            continue;
        size_t k = 0; /* a name given twice is read once */
        while (k < c.b.n_copies && strcmp(c.b.copy_given[k], *name))
            k++;
        if (k == c.b.n_copies) {
            if (spool(*name, copies[k], sizeof copies[k], &e)) {
                bn_report(&prog, "%s", e.msg);
                return BN_EXIT_DATA;
            }
            c.b.copy_given[k] = *name;
            c.b.copy_path[k] = copies[k];
            c.b.n_copies++;
        }
        *name = c.b.copy_path[k];
    }
    /* --prompt-file's texts, once ('-' cannot be read again for the next
     * thread count), and before any test: a missing one is said at once */
    for (size_t i = 0; i < c.b.n_prompts; i++) {
        if (bn_map_file(c.b.prompts[i], &c.b.prompt_text[i], &e)) {
            bn_report(&prog, "%s", e.msg);
            rc = BN_EXIT_DATA;
        } else if (!c.b.prompt_text[i].size) {
            bn_report(&prog, "%s: no text", c.b.prompts[i]);
            rc = BN_EXIT_DATA;
        }
        if (rc != BN_OPT_RUN) {
            for (size_t k = 0; k <= i; k++)
                bn_unmap(&c.b.prompt_text[k]);
            return rc;
        }
    }
    if (c.list_shapes)
        rc = bn_bench_list_shapes(stdout, c.b.format);
    else if (c.cmp_old)
        rc = bn_bench_compare(c.cmp_old, c.cmp_new, stdout, c.b.format, &e);
    else
        rc = bn_bench_run(&c.b, stdout, &e);
    for (size_t i = 0; i < c.b.n_prompts; i++)
        bn_unmap(&c.b.prompt_text[i]);
    if (fflush(stdout) && !rc)
        rc = bn_fail_write(&e, "-");
    if (rc) {
        report_error(&c.b, e.msg[0] ? e.msg : "failed");
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
