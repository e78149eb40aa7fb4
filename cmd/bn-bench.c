/* bn-bench — the measurement instrument: end-to-end prefill/decode speed,
 * kernel micro-benchmarks, the machine's limits (bandwidth, int8 peak),
 * energy, tokenizer and conversion throughput, and comparisons of saved
 * runs. This file only parses options and calls libbn (lib/bench.h). */
#include "bench.h"
#include "pool.h"

#include <stdlib.h>
#include <string.h>

static const bn_prog prog = {
    .name = "bn-bench",
    .summary = "measure bn's speed and memory against the machine's limits",
    .usage = "usage: bn-bench -m MODEL | --synthetic SHAPE [options]     prefill and decode speed (pp, tg)\n"
    "       bn-bench --kernels [--synthetic SHAPE] [-k SETS]   GEMV/GEMM of every kernel set\n"
    "       bn-bench --bandwidth [-t LIST]                     memory read bandwidth and int8 peak\n"
    "       bn-bench --tokenize (-m MODEL | --vocab FILE) [--text FILE]\n"
    "       bn-bench --convert (-m MODEL | --synthetic SHAPE)\n"
    "       bn-bench --compare OLD.json NEW.json\n"
    "       bn-bench --list-shapes\n"
    "\n"
    "Lists are comma-separated; every combination is run.\n"
    "  -m, --model FILE       a model (bn, GGUF, HF directory); repeatable\n"
    "  --synthetic LIST       named shapes with random ternary weights, made in memory\n"
    "                         (tiny, tiny256, small-odd, odd, 2b4t, 7b, 13b, 30b, 70b, 100b)\n"
    "  -p, --n-prompt LIST    prompt lengths: prefill tests ppN (default 512; 0: none)\n"
    "  -n, --n-gen LIST       generated tokens: decode tests tgN (default 128; 0: none)\n"
    "  -t, --threads LIST     thread counts (default: all cores)\n"
    "  -k, --kernel LIST      kernel sets, NAME or NAME:LAYOUT (default auto: the best per layout)\n"
    "  -r, --repetitions N    measured repetitions after one warm-up (default 5, at most 100)\n"
    "  --kv f32|f16           KV cache precision (default f16, as bn-infer)\n"
    "  --mmap                 run from the file mapping, not a copy in memory (as bn-infer --mmap)\n"
    "  --seed N               seed of the random weights and token ids (default 1234)\n"
    "  --bw-mib N             bandwidth buffer in MiB (default 1024)\n"
    "  --mem-limit N[K|M|G]   refuse synthetic shapes needing more (default: MemAvailable)\n"
    "  --rapl DIR             powercap directory (default /sys/class/powercap)\n"
    "  --vocab FILE           tokenizer rank file for --tokenize\n"
    "  --text FILE            text for --tokenize (default: 4 MiB generated, see --text-mib)\n"
    "  --text-mib N           size of the generated text\n"
    "output:\n"
    "  -o, --output md|csv|json   report format (default md)\n"
    "  --csv, --json          the same as -o csv, -o json\n"
    "  -v, --verbose          progress on stderr\n"
    "  -h, --help             this help\n"
    "  --version              version\n"
    "\n"
    "Exit status: 0 success, 1 a data or runtime error (also: a shape that does not fit in memory),\n"
    "2 usage error. See bn-bench(1).\n",
};

typedef struct cmdline {
    bn_bench_opts b;
    int list_shapes;
    const char *cmp_old, *cmp_new;
} cmdline;

static int need(int argc, char **argv, int *i, const char **val)
{
    if (*i + 1 >= argc)
        return bn_usage_error(&prog, "option '%s' needs a value", argv[*i]);
    *val = argv[++*i];
    return 0;
}

/* Splits a comma list into uints in [lo, hi]. */
static int list_u(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out, size_t *n)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == BN_BENCH_MAX_LIST)
            return bn_usage_error(&prog, "%s: at most %d values", opt, BN_BENCH_MAX_LIST);
        if (bn_parse_u64(tok, lo, hi, &out[(*n)++]))
            return bn_usage_error(&prog, "%s: '%s' is not a whole number in %llu..%llu", opt, tok,
                                  (unsigned long long)lo, (unsigned long long)hi);
    }
    if (!*n)
        return bn_usage_error(&prog, "%s: empty list", opt);
    return 0;
}

/* Splits a comma list of names; the pieces point into argv (modified). */
static int list_s(const char *opt, char *v, const char **out, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == BN_BENCH_MAX_LIST)
            return bn_usage_error(&prog, "%s: at most %d values", opt, BN_BENCH_MAX_LIST);
        out[(*n)++] = tok;
    }
    if (!*n)
        return bn_usage_error(&prog, "%s: empty list", opt);
    return 0;
}

static int parse_bytes(const char *opt, const char *v, uint64_t *out)
{
    char num[64];
    size_t len = strlen(v);
    uint64_t mul = 1, u;
    snprintf(num, sizeof num, "%s", v);
    if (len && strchr("KkMmGg", v[len - 1])) {
        char c = (char)(v[len - 1] | 0x20);
        mul = c == 'k' ? 1ull << 10 : c == 'm' ? 1ull << 20 : 1ull << 30;
        num[len - 1 < sizeof num ? len - 1 : sizeof num - 1] = 0;
    }
    if (bn_parse_u64(num, 1, UINT64_MAX / (1ull << 30), &u))
        return bn_usage_error(&prog, "%s: '%s' is not a size (a whole number, optionally K, M or G)", opt, v);
    *out = u * mul;
    return 0;
}

static int parse(int argc, char **argv, cmdline *c)
{
    bn_bench_opts *o = &c->b;
    memset(c, 0, sizeof *c);
    bn_bench_opts_default(o);
    int modes = 0;
    uint64_t vals[BN_BENCH_MAX_LIST], u;
    size_t n;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (o->n_models == BN_BENCH_MAX_LIST)
                    rc = bn_usage_error(&prog, "-m: at most %d models", BN_BENCH_MAX_LIST);
                else
                    o->models[o->n_models++] = v;
            }
        } else if (!strcmp(a, "--synthetic")) {
            const char *names[BN_BENCH_MAX_LIST];
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = list_s(a, argv[i], names, &n)))
                for (size_t k = 0; k < n && !rc; k++) {
                    const bn_shape *s = bn_shape_find(names[k]);
                    if (!s) {
                        char all[256];
                        bn_shape_names(all, sizeof all);
                        rc = bn_usage_error(&prog, "--synthetic: unknown shape '%s' (known: %s)", names[k], all);
                    } else if (o->n_synth < BN_BENCH_MAX_LIST)
                        o->synth[o->n_synth++] = s;
                }
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = list_u(a, v, 0, 1u << 20, vals, &n)))
                for (o->n_pp = 0; o->n_pp < n; o->n_pp++)
                    o->pp[o->n_pp] = (uint32_t)vals[o->n_pp];
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = list_u(a, v, 0, 1u << 20, vals, &n)))
                for (o->n_tg = 0; o->n_tg < n; o->n_tg++)
                    o->tg[o->n_tg] = (uint32_t)vals[o->n_tg];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(rc = need(argc, argv, &i, &v)) && !(rc = list_u(a, v, 1, 1024, vals, &n)))
                for (o->n_threads = 0; o->n_threads < n; o->n_threads++)
                    o->threads[o->n_threads] = (int)vals[o->n_threads];
        } else if (!strcmp(a, "-k") || !strcmp(a, "--kernel")) {
            if (!(rc = need(argc, argv, &i, &v)))
                rc = list_s(a, argv[i], o->kernels, &o->n_kernels);
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (bn_parse_u64(v, 1, BN_BENCH_MAX_REPS, &u))
                    rc = bn_usage_error(&prog, "%s: '%s' is not a whole number in 1..%d", a, v, BN_BENCH_MAX_REPS);
                else
                    o->reps = (int)u;
            }
        } else if (!strcmp(a, "--kv")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (!strcmp(v, "f16") || !strcmp(v, "f32"))
                    o->kv_f16 = !strcmp(v, "f16");
                else
                    rc = bn_usage_error(&prog, "--kv: '%s' is not one of f32, f16", v);
            }
        } else if (!strcmp(a, "--mmap")) {
            o->mmap_only = 1;
        } else if (!strcmp(a, "--seed")) {
            if (!(rc = need(argc, argv, &i, &v)) && bn_parse_u64(v, 0, UINT64_MAX, &o->seed))
                rc = bn_usage_error(&prog, "--seed: '%s' is not a whole number", v);
        } else if (!strcmp(a, "--bw-mib")) {
            if (!(rc = need(argc, argv, &i, &v)) && bn_parse_u64(v, 1, 1u << 20, &u))
                rc = bn_usage_error(&prog, "%s: '%s' is not a whole number of MiB in 1..1048576", a, v);
            else if (!rc)
                o->bw_bytes = (size_t)u << 20;
        } else if (!strcmp(a, "--text-mib")) {
            if (!(rc = need(argc, argv, &i, &v)) && bn_parse_u64(v, 1, 4096, &u))
                rc = bn_usage_error(&prog, "%s: '%s' is not a whole number of MiB in 1..4096", a, v);
            else if (!rc)
                o->text_bytes = (size_t)u << 20;
        } else if (!strcmp(a, "--mem-limit")) {
            if (!(rc = need(argc, argv, &i, &v)))
                rc = parse_bytes(a, v, &o->mem_limit);
        } else if (!strcmp(a, "--rapl"))
            rc = need(argc, argv, &i, &o->rapl_root);
        else if (!strcmp(a, "--vocab"))
            rc = need(argc, argv, &i, &o->vocab);
        else if (!strcmp(a, "--text"))
            rc = need(argc, argv, &i, &o->text);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(rc = need(argc, argv, &i, &v))) {
                if (!strcmp(v, "md"))
                    o->format = BN_FMT_MD;
                else if (!strcmp(v, "csv"))
                    o->format = BN_FMT_CSV;
                else if (!strcmp(v, "json"))
                    o->format = BN_FMT_JSON;
                else
                    rc = bn_usage_error(&prog, "%s: '%s' is not one of md, csv, json", a, v);
            }
        } else if (!strcmp(a, "--csv"))
            o->format = BN_FMT_CSV;
        else if (!strcmp(a, "--json"))
            o->format = BN_FMT_JSON;
        else if (!strcmp(a, "--kernels"))
            o->mode = BN_MODE_KERNELS, modes++;
        else if (!strcmp(a, "--bandwidth"))
            o->mode = BN_MODE_MACHINE, modes++;
        else if (!strcmp(a, "--tokenize"))
            o->mode = BN_MODE_TOKENIZE, modes++;
        else if (!strcmp(a, "--convert"))
            o->mode = BN_MODE_CONVERT, modes++;
        else if (!strcmp(a, "--list-shapes"))
            c->list_shapes = 1, modes++;
        else if (!strcmp(a, "--compare")) {
            if (i + 2 >= argc)
                rc = bn_usage_error(&prog, "--compare needs two files: OLD.json NEW.json");
            else
                c->cmp_old = argv[++i], c->cmp_new = argv[++i], modes++;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            o->verbose = 1;
        else
            rc = bn_usage_error(&prog, "unknown option '%s'", a);
        if (rc)
            return rc;
    }
    if (modes > 1)
        return bn_usage_error(&prog, "--kernels, --bandwidth, --tokenize, --convert, --compare and --list-shapes "
                                     "are exclusive");
    if (!modes && !o->n_models && !o->n_synth)
        return bn_usage_error(&prog, "nothing to measure: give -m MODEL or --synthetic SHAPE (or a mode)");
    if (!o->n_pp)
        o->pp[0] = 512, o->n_pp = 1;
    if (!o->n_tg)
        o->tg[0] = 128, o->n_tg = 1;
    if (!o->n_threads)
        o->threads[0] = bn_cpu_count(), o->n_threads = 1;
    return 0;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    for (int i = 1; i < argc; i++)
        if (bn_cli_common(&prog, argv[i]))
            return BN_EXIT_OK;
    cmdline c;
    int rc = parse(argc, argv, &c);
    if (rc)
        return rc;
    bn_err e = {0};
    if (c.list_shapes)
        rc = bn_bench_list_shapes(stdout, c.b.format);
    else if (c.cmp_old)
        rc = bn_bench_compare(c.cmp_old, c.cmp_new, stdout, c.b.format, &e);
    else
        rc = bn_bench_run(&c.b, stdout, &e);
    if (fflush(stdout) && !rc)
        rc = bn_fail(&e, "write error on standard output");
    if (rc) {
        bn_report(&prog, "%s", e.msg[0] ? e.msg : "failed");
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
