/* bench.h — bn-bench(1), the measurement instrument: end-to-end prefill and
 * decode speed through the real forward pass (bn_ctx_eval), kernel
 * micro-benchmarks, the machine's limits (memory read bandwidth, peak int8
 * throughput), peak RSS, load time, RAPL energy, tokenizer and conversion
 * throughput, and before/after comparison of saved runs.
 *
 * Every speed is a set of samples (one per repetition, after a warm-up);
 * reports show the median and the standard deviation. Figures that do not
 * apply to a row, or could not be measured, are NAN and print as "-" or
 * "unavailable": nothing is estimated silently. */
#ifndef BN_BENCH_H
#define BN_BENCH_H

#include "cli.h"
#include "kernels.h"
#include "model.h"
#include "shapes.h"

#include <string.h>

#define BN_BENCH_MAX_REPS 100
#define BN_BENCH_MAX_LIST 32
#define BN_BENCH_MAX_SETS 32

/* ------------------------------------------------------------------ rows */

typedef enum { BN_ROW_E2E, BN_ROW_KERNEL, BN_ROW_MACHINE, BN_ROW_TEXT } bn_row_kind;

typedef struct bn_bench_row {
    int kind;
    char model[64];
    double size, params;     /* model bytes and parameters (NAN: none) */
    char layout[24], kernel[24];
    int threads;
    char test[48];           /* pp512, tg128, gemv, gemm128, read, int8, tokenize, convert */
    char what[96];           /* kernels: "ffn_up 6912x2560"; machine: the instruction */
    char unit[8];            /* t/s, GOPS, GB/s, MB/s */
    int n;                   /* samples */
    double samples[BN_BENCH_MAX_REPS];
    double median, mean, stddev, min, max;
    /* The roofline: what one token (or call) costs, what the median rate
     * achieves, and the machine's limit at this thread count. */
    double bytes_per, ops_per; /* bytes streamed, int8 ops (2 per MAC) */
    double gbps, gops;
    double bw_gbps, peak_gops;
    double roofline;         /* percent of the binding limit */
    char bound[8];           /* "memory", "compute" or "cache" (no limit known) */
    double joules_per;       /* per token (or per call, per MB); NAN: unavailable */
    double load_s, ttft_s, peak_rss;
    /* Batched rows (--parallel): sequences decoded together (0: one
     * stream, not a batched row), each sequence's own rate, and the KV
     * bytes all of them held at the end. */
    int n_seq;
    double per_seq, kv_bytes;
} bn_bench_row;

typedef struct bn_bench_rows {
    bn_bench_row *v;
    size_t n, cap;
} bn_bench_rows;

/* A new row with every figure NAN; NULL when out of memory. */
bn_bench_row *bn_bench_row_add(bn_bench_rows *r);
void bn_bench_rows_free(bn_bench_rows *r);
/* Median, mean, standard deviation (n-1), min, max of the samples. */
void bn_bench_stats(bn_bench_row *row);
/* Fills gbps/gops/roofline/bound from bytes_per, ops_per and the limits. */
void bn_bench_roofline(bn_bench_row *row);
/* Only roofline/bound, from gbps and gops and the limits (rows whose
 * samples were since rescaled to another unit keep their gbps/gops). */
void bn_bench_bound(bn_bench_row *row);

/* ------------------------------------------------------------- the machine */

typedef struct bn_bench_machine {
    char cpu[128];
    int n_cpus;
    double ghz;               /* measured: a chain of dependent adds */
    char isa[48];             /* the instruction the int8 peak was timed with */
    double macs_per_cycle;    /* per thread, measured */
    int n;                    /* thread counts measured: 1, then each of -t's (so one more than -t's most) */
    int threads[BN_BENCH_MAX_LIST + 1];
    double bw_gbps[BN_BENCH_MAX_LIST + 1];   /* best read bandwidth, all patterns and passes */
    double bw_worst[BN_BENCH_MAX_LIST + 1];  /* the slowest pattern's best pass: the spread */
    char bw_pattern[BN_BENCH_MAX_LIST + 1][40]; /* the pattern that gave bw_gbps */
    int bw_rounds;                           /* probes taken (before and after the run) */
    double peak_gops[BN_BENCH_MAX_LIST + 1]; /* int8 ops/s, 2 per MAC */
    size_t bw_bytes;
    char energy[160];         /* "rapl: ..." or "unavailable: reason" */
} bn_bench_machine;

/* Seconds on the monotonic clock. */
double bn_bench_now(void);
/* Starts a new peak-RSS window (Linux clear_refs 5); 0 if it worked. */
int bn_bench_rss_reset(void);
/* Peak resident set size in bytes since the last reset (VmHWM). */
double bn_bench_rss_peak(void);
void bn_bench_cpu_name(char *buf, size_t n);

/* Read bandwidth (GB/s, 1e9) over a buffer of `bytes` by `threads` threads:
 * the best pass of every access pattern and page placement tried. */
typedef struct bn_bench_bw {
    double best, worst; /* the best pattern's best pass; the worst pattern's */
    char pattern[40];   /* the best one: "prefetch, huge pages" */
} bn_bench_bw;
int bn_bench_bandwidth(size_t bytes, int threads, bn_bench_bw *bw, bn_err *e);
/* Clock frequency in GHz from a timing loop of dependent adds. */
double bn_bench_ghz(void);
/* Peak int8 multiply-accumulates per second on `threads` threads with the
 * best dot-product instruction this CPU runs (named in isa). */
int bn_bench_peak_macs(int threads, double *macs_per_s, char *isa, size_t isa_n, bn_err *e);
/* Measures bandwidth and peak for each thread count. */
int bn_bench_machine_measure(bn_bench_machine *mc, const int *threads, int n, size_t bw_bytes, bn_err *e);
/* Probes the bandwidth again (after a run) and keeps the better figure per
 * thread count, so a neighbour's burst during either probe cannot set a
 * limit that the run itself exceeds; then rows measured against the limit
 * are measured against the new one. */
int bn_bench_machine_reprobe(bn_bench_machine *mc, bn_bench_rows *rows, bn_err *e);
/* Limits at a thread count (the nearest measured one). */
double bn_bench_bw_at(const bn_bench_machine *mc, int threads);
double bn_bench_peak_at(const bn_bench_machine *mc, int threads);

/* ------------------------------------------------------------------ energy */

#define BN_RAPL_MAX 8
/* The package-level powercap domains under root (/sys/class/powercap). */
typedef struct bn_rapl {
    int n;
    char path[BN_RAPL_MAX][256];
    double range_j[BN_RAPL_MAX];
    char status[160];
} bn_rapl;

/* Returns 0 when every package counter is readable; otherwise -1 with the
 * reason in r->status ("unavailable: ..."). */
int bn_rapl_open(bn_rapl *r, const char *root);
/* Reads every package counter (joules) into per_domain[r->n]; -1 when a
 * read fails. */
int bn_rapl_sample(const bn_rapl *r, double *per_domain);
/* Joules between two samples, summed over packages, allowing for each
 * counter's wrap-around. */
double bn_rapl_delta(const bn_rapl *r, const double *before, const double *after);

/* ---------------------------------------------------------- synthetic models */

/* A model of a named shape with random ternary weights, written with the bn
 * writer into an unlinked file on tmpfs (memory), held open by fd. */
typedef struct bn_synth {
    const bn_shape *shape;
    uint32_t layout;
    int fd;
    char path[64];            /* /proc/self/fd/N, for bn_model_load */
    uint64_t file_bytes;
    double gen_s;
} bn_synth;

/* Bytes of the synthetic file for a shape and layout; 0 if the layout has
 * no size rule. max_tensor receives the largest tensor. */
uint64_t bn_synth_bytes(const bn_shape *s, uint32_t layout, uint64_t *max_tensor);
/* Refuses (with need and MemAvailable named) when file + extra bytes do
 * not fit under limit (0: MemAvailable). */
int bn_synth_new(bn_synth *sy, const bn_shape *s, uint32_t layout, uint64_t extra, uint64_t limit, uint64_t seed,
                 bn_err *e);
void bn_synth_free(bn_synth *sy);
/* Fills buf (bn_bench_layout_bytes) with a random ternary [rows, k]
 * matrix in a layout: made as t2, then packed by pack.h when the layout is
 * a packed one, so it holds exactly what bn-pack would write. */
int bn_synth_weights(uint8_t *buf, uint64_t rows, uint64_t k, uint32_t layout, uint64_t *rng, bn_err *e);
/* Bytes of a [rows, k] ternary matrix in a layout (t2 or packed); 0 if
 * the layout is unknown. */
uint64_t bn_bench_layout_bytes(uint32_t layout, uint64_t rows, uint64_t k);
uint64_t bn_bench_rand(uint64_t *state);

/* ------------------------------------------------------------- kernel sets */

/* Every kernel set this build and CPU offer, deduplicated, t2 first. */
size_t bn_bench_kernel_sets(const bn_kernels **sets, size_t max, const char *const *extra, size_t n_extra);
/* Every NAME[:LAYOUT] of -k names a kernel set of this build and a layout
 * (whether this CPU runs it is found later); 0, or -1 with *e. */
int bn_bench_check_kernel_names(const char *const *names, size_t n_names, bn_err *e);
/* The sets -k names: each NAME (every layout that has it) or NAME:LAYOUT,
 * deduplicated; 0 with a reason naming what is available. */
size_t bn_bench_select_kernels(const char *const *names, size_t n_names, const bn_kernels **sets, size_t max,
                               bn_err *e);
/* "t2" or "type17" for a layout. */
void bn_bench_layout_name(uint32_t layout, char *buf, size_t n);

/* ----------------------------------------------------------------- options */

enum { BN_FMT_MD, BN_FMT_CSV, BN_FMT_JSON };
enum { BN_MODE_E2E, BN_MODE_KERNELS, BN_MODE_MACHINE, BN_MODE_TOKENIZE, BN_MODE_CONVERT };

typedef struct bn_bench_opts {
    int mode;
    const char *models[BN_BENCH_MAX_LIST];
    size_t n_models;
    const bn_shape *synth[BN_BENCH_MAX_LIST];
    size_t n_synth;
    uint32_t pp[BN_BENCH_MAX_LIST], tg[BN_BENCH_MAX_LIST];
    size_t n_pp, n_tg;
    uint32_t par[BN_BENCH_MAX_LIST]; /* --parallel: sequences per batched test (none: one stream) */
    size_t n_par;
    uint32_t verify[BN_BENCH_MAX_LIST]; /* --verify: tokens of one verify pass (speculative decoding) */
    size_t n_verify;
    const char *prompts[BN_BENCH_MAX_LIST]; /* --prompt-file: texts answered plain and with prompt lookup */
    bn_map prompt_text[BN_BENCH_MAX_LIST];  /* their bytes, read once before any test ('-' can be read once) */
    size_t n_prompts;
    uint32_t lookup, draft_max;         /* --lookup N (default 3 with --prompt-file), --draft-max K (0: 8) */
    int no_pacing;                      /* --no-pacing: lookup or the draft guesses whenever it can */
    const char *draft;                  /* --draft MODEL: --prompt-file's texts with a draft model, not lookup */
    /* Models (and the draft) named by what is not a regular file ('-', a
     * pipe such as <(...)): each is copied to a temporary file before any
     * test, since every kernel set loads a model again (bn-bench.c);
     * copy_path[i] holds what copy_given[i] named. */
    const char *copy_given[BN_BENCH_MAX_LIST + 1], *copy_path[BN_BENCH_MAX_LIST + 1];
    size_t n_copies;
    int threads[BN_BENCH_MAX_LIST];
    size_t n_threads;
    const char *kernels[BN_BENCH_MAX_LIST]; /* NAME or NAME:LAYOUT */
    size_t n_kernels;
    int reps;
    double sample_s;          /* --kernels: seconds one sample of a kernel runs (default 0.05) */
    int kv_f16;
    int mmap_only;            /* --mmap: decode from the file mapping (no bn_model_to_memory) */
    uint64_t seed;
    size_t bw_bytes;          /* bandwidth buffer */
    uint64_t mem_limit;       /* 0: MemAvailable */
    const char *rapl_root;
    const char *vocab, *text; /* tokenizer: rank file; text file (NULL: generated) */
    size_t text_bytes;        /* generated text size */
    int format;
    int verbose;
    const char *prog;         /* for progress lines */
} bn_bench_opts;

void bn_bench_opts_default(bn_bench_opts *o);

/* What one token costs, counted from a loaded model: ternary weight bytes
 * and multiply-adds, the head, one embedding row, the norm weights, and
 * K+V of one position in every layer. */
typedef struct bn_bench_cost {
    double ternary_bytes, ternary_macs, head_bytes, head_macs, embd_row, norm_bytes, kv_per_pos;
} bn_bench_cost;
void bn_bench_model_cost(const bn_model *m, int kv_f16, bn_bench_cost *c);

/* The name errors give a model: the path it was named by, or a synthetic
 * shape's label ("synthetic NAME": its file is a temporary one). label:
 * the model's name in the rows (a file's base name). */
static inline const char *bn_bench_shown_name(const bn_model *m, const char *label)
{
    return strncmp(label, "synthetic ", 10) ? m->src.name : label;
}

/* The name the user gave for path: its copy_given when path is one of
 * o's copies (o->copy_path), else path itself. */
const char *bn_bench_given_name(const bn_bench_opts *o, const char *path);

/* A model file's name in the rows, in buf: the base name the user gave
 * (bn_bench_given_name; "-" for standard input) without .bn or .gguf,
 * cut at a whole UTF-8 character. */
const char *bn_bench_model_label(const bn_bench_opts *o, const char *path, char *buf, size_t n);

/* The longest prefix of s, at most max bytes, that ends at a whole UTF-8
 * character (a label cut to fit a column stays valid text). */
size_t bn_bench_utf8_fit(const char *s, size_t max);

/* How many copies of a matrix (stride bytes apart) a --kernels GEMV
 * cycles through: 256 MiB in all, so that each call streams from memory
 * as a decode step does, or --bw-mib's buffer when that is smaller (the
 * tests' quick runs). */
static inline size_t bn_bench_gemv_copies(const bn_bench_opts *o, size_t stride)
{
    size_t span = (size_t)256 << 20;
    if (o->bw_bytes && o->bw_bytes < span)
        span = o->bw_bytes;
    return (span + stride - 1) / stride;
}

/* The batched tests (--parallel) of one loaded model at one thread count:
 * for every N, prompt length and generated length, N sequences prefilled
 * together and then decoded together (bench_batch.c). */
int bn_bench_batched(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_model *m, const char *label,
                     double size, double params, double load_s, int threads, const uint32_t *ids, bn_bench_rows *rows,
                     bn_err *e);
/* Positions the batched tests need in all: the largest N x (pp + tg). */
uint64_t bn_bench_batched_positions(const bn_bench_opts *o);
/* The largest N of --parallel (0: none). */
uint32_t bn_bench_max_par(const bn_bench_opts *o);

/* Speculative decoding's rows of one loaded model at one thread count
 * (bench_spec.c): --verify passes against a decode step, --prompt-file
 * texts answered plain and with prompt lookup (with --parallel: N requests
 * at once, for each N). ids: pp[0] + the largest --verify token ids. */
int bn_bench_spec(const bn_bench_opts *o, const bn_model *m, const char *label, int threads, const uint32_t *ids,
                  bn_bench_rows *rows, bn_err *e);

/* Each fills rows; the machine measurement (mc) is done by the caller. */
int bn_bench_e2e(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_rapl *rapl, bn_bench_rows *rows,
                 bn_err *e);
int bn_bench_kernels(const bn_bench_opts *o, const bn_bench_machine *mc, bn_bench_rows *rows, bn_err *e);
struct bn_pool;
/* GEMV of the output head in every head type this build runs (f16, bf16,
 * f32, i8, q6, q5, q4): set NULL, the implementation the forward pass
 * takes (kernel "head"); else kernel set set's instruction set (avx512,
 * amx, avx2, neon, dotprod; ref: the scalar loop), kernel "head-SET", no
 * rows where this CPU has none. */
int bn_bench_heads(const bn_bench_opts *o, const bn_bench_machine *mc, struct bn_pool *pool, int threads,
                   const char *set, bn_bench_rows *rows, bn_err *e);
int bn_bench_machine_rows(const bn_bench_machine *mc, bn_bench_rows *rows);
int bn_bench_tokenize(const bn_bench_opts *o, bn_bench_rows *rows, bn_err *e);
int bn_bench_convert(const bn_bench_opts *o, bn_bench_rows *rows, bn_err *e);

/* Runs the mode the options ask for and prints the report on fp. */
int bn_bench_run(const bn_bench_opts *o, FILE *fp, bn_err *e);

/* ------------------------------------------------------------------ output */

int bn_bench_report(FILE *fp, int format, const bn_bench_machine *mc, const bn_bench_rows *rows);
/* CSV fields: a string quoted as RFC 4180 wants; a number after a comma,
 * whole numbers (bytes, counts) in full, others to 9 digits, nothing for
 * one unknown (NaN). */
void bn_bench_csv_str(FILE *fp, const char *s);
void bn_bench_csv_num(FILE *fp, double v);
int bn_bench_list_shapes(FILE *fp, int format);
/* Size and count in llama-bench's style: "1.10 GiB", "2.41 B". */
void bn_bench_fmt_size(double bytes, char *buf, size_t n);
void bn_bench_fmt_params(double params, char *buf, size_t n);

/* Reads a bn-bench --json report or llama-bench -o json / jsonl output
 * into rows (test, threads, samples, median). */
int bn_bench_load(const char *path, bn_bench_rows *rows, int *is_peer, bn_err *e);
/* Prints per-row ratios NEW/OLD for rows that match. */
int bn_bench_compare(const char *old_path, const char *new_path, FILE *fp, int format, bn_err *e);

#endif
