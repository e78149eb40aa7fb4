/* bn.h — the public interface of libbn, the library behind the bn-* programs.
 *
 * Floors (each uses only those below it): platform (errors, files, start-up),
 * formats (readers/writers of every file format, producing one model
 * description), numerics (types, quantization, layouts, kernels), model
 * (forward pass, tokenizer, sampler). Programs in cmd/ only parse options and
 * call in here.
 *
 * Conventions: functions that can fail return 0 on success and -1 on failure,
 * with a one-line reason in a bn_err ("FILE: reason"); the program prefixes
 * its own name when it prints it. No global state.
 */
#ifndef BN_H
#define BN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BN_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef struct bn_err {
    char msg[1024];
} bn_err;

/* Sets e->msg from the format and returns -1, so callers can
 * `return bn_fail(e, "%s: truncated", name);`. e may be NULL. */
int bn_fail(bn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exit statuses shared by every program (documented in each man page). */
enum { BN_EXIT_OK = 0, BN_EXIT_DATA = 1, BN_EXIT_USAGE = 2, BN_EXIT_INTERRUPTED = 130 };

/* --------------------------------------------------------------- start-up */

/* Every program describes itself with one of these; bn_cli_common handles
 * -h/--help, --version and the SIGPIPE policy. */
typedef struct bn_prog {
    const char *name;     /* "bn-convert" */
    const char *summary;  /* one line */
    const char *usage;    /* full -h text, options included */
} bn_prog;

/* Returns 1 if argv[i] was a common option that has been fully handled and the
 * program should exit 0 (help, version), 0 otherwise. */
int bn_cli_common(const bn_prog *p, const char *arg);
/* Prints "NAME: MESSAGE" to stderr. */
void bn_report(const bn_prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the usage error, the hint to --help, and returns BN_EXIT_USAGE. */
int bn_usage_error(const bn_prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Restores default SIGPIPE so `| head` ends us quietly, like cat. */
void bn_cli_init(void);
/* Nonzero when stderr is a terminal (progress is drawn only then). */
int bn_progress_enabled(void);
/* Parses an unsigned decimal integer in [lo, hi]; -1 on error with a reason. */
int bn_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* Parses a float; -1 on error. */
int bn_parse_double(const char *s, double *out);

/* ------------------------------------------------------------------ files */

/* A read-only view of a whole file: mapped when it is a regular file,
 * otherwise (pipe, stdin) read into memory. */
typedef struct bn_map {
    const uint8_t *data;
    size_t size;
    int mapped; /* 1: munmap on close; 0: free */
} bn_map;

int bn_map_file(const char *path, bn_map *m, bn_err *e);
void bn_unmap(bn_map *m);

/* A sequential input: a file or "-" (stdin). */
typedef struct bn_in {
    FILE *fp;
    const char *name; /* for messages */
    uint64_t pos;
    int own;
} bn_in;

int bn_in_open(bn_in *in, const char *path, bn_err *e);
/* Reads exactly n bytes; a short read is an error naming the file. */
int bn_in_read(bn_in *in, void *buf, size_t n, bn_err *e);
int bn_in_skip(bn_in *in, uint64_t n, bn_err *e);
void bn_in_close(bn_in *in);

/* An output that appears whole or not at all. For a path, data goes to an
 * unnamed temporary file in the target's directory (O_TMPFILE where the
 * file system has it, so even SIGKILL leaves nothing behind; otherwise a
 * dot-file that abort removes) and is renamed into place on commit.
 * "-" writes to stdout. */
typedef struct bn_out {
    FILE *fp;
    int fd;
    char *path;     /* target, NULL for stdout */
    char *tmp_path; /* named temporary, NULL with O_TMPFILE or stdout */
    uint64_t pos;
    int failed;
} bn_out;

int bn_out_open(bn_out *o, const char *path, bn_err *e);
int bn_out_write(bn_out *o, const void *buf, size_t n, bn_err *e);
int bn_out_pad(bn_out *o, size_t alignment, bn_err *e);
int bn_out_commit(bn_out *o, bn_err *e);
void bn_out_abort(bn_out *o);
/* Nonzero if the path names a terminal (binary output is refused there). */
int bn_out_is_tty(const char *path);

/* A scratch buffer of at least need bytes: p itself while *cap suffices,
 * else a fresh allocation (contents not kept; p is freed). NULL when out of
 * memory, with p freed and *cap reset, so the caller just reports it. */
void *bn_scratch(void *p, size_t *cap, size_t need);

/* XXH3-64 of a buffer (the bn format's checksum). */
uint64_t bn_hash(const void *data, size_t n);

/* ---------------------------------------------------------- tensor types */

/* Element/storage types of the bn model format. Numbers are part of the file
 * format (formats/bn-model.md); gaps are reserved. Types from 16 on are
 * kernel-packed layouts added by bn-pack. */
typedef enum bn_type {
    BN_F32 = 0,
    BN_F16 = 1,
    BN_BF16 = 2,
    BN_I8 = 3,  /* int8 rows, then one f32 scale per row: x = q * scale[row] */
    BN_T2 = 4,  /* ternary: 2-bit codes (w+1), 4 per byte, low bits first,
                   rows padded to whole bytes, then the f32 tensor scale */
    BN_I32 = 5,
    BN_U8 = 6,
    BN_Q6 = 7,  /* 6-bit blocks of 32 with f16 scales, in groups of 128
                   columns (104 bytes): heads and embeddings (kern_head.h) */
    BN_Q4 = 8,  /* 4-bit blocks of 32 with f16 scales, in groups of 128
                   columns (72 bytes): heads and embeddings (kern_head.h) */
    BN_Q5 = 9,  /* 5-bit blocks of 32 with f16 scales, in groups of 128
                   columns (88 bytes): heads and embeddings (kern_head.h) */
    BN_TYPE_COUNT_BASE
} bn_type;

const char *bn_type_name(uint32_t type); /* NULL if unknown */
int bn_type_from_name(const char *name, uint32_t *type);
/* Bytes a tensor of this type and shape occupies; 0 if the type is unknown
 * or the size overflows. shape[0] is the outermost dimension. */
uint64_t bn_type_size(uint32_t type, uint32_t ndim, const uint64_t *shape);

/* Scalar conversions. */
float bn_f16_to_f32(uint16_t h);
uint16_t bn_f32_to_f16(float f);
float bn_bf16_to_f32(uint16_t h);
uint16_t bn_f32_to_bf16(float f); /* round to nearest even */

/* Converts n elements of a float type (F32/F16/BF16) to f32. */
int bn_to_f32(uint32_t type, const void *src, float *dst, size_t n);

/* -------------------------------------------------------------- metadata */

/* Typed key/value metadata (the bn format's, also used in memory for every
 * source format). Value types are file-format numbers. */
typedef enum bn_vtype {
    BN_V_U32 = 1,
    BN_V_I32 = 2,
    BN_V_U64 = 3,
    BN_V_I64 = 4,
    BN_V_F32 = 5,
    BN_V_F64 = 6,
    BN_V_BOOL = 7,
    BN_V_STR = 8,   /* UTF-8 text */
    BN_V_BYTES = 9, /* raw bytes */
    BN_V_ARR = 10,  /* array of one fixed-size scalar type */
    BN_V_STRARR = 11, /* array of byte strings (e.g. token pieces) */
    BN_V_SECTION = 12 /* a nested metadata list, zlib-compressed on disk */
} bn_vtype;

struct bn_meta;

typedef struct bn_kv {
    char *key;
    uint32_t type;
    uint32_t elem_type;   /* BN_V_ARR: the element's scalar type */
    uint64_t count;       /* ARR/STRARR: elements; STR/BYTES: bytes */
    void *data;           /* scalar: 8 bytes (u64/i64/f64 widened); STR/BYTES/ARR: payload */
    uint64_t *offsets;    /* STRARR: count+1 offsets into data */
    struct bn_meta *sub;  /* SECTION */
} bn_kv;

typedef struct bn_meta {
    bn_kv *kv;
    size_t n, cap;
} bn_meta;

void bn_meta_free(bn_meta *m);
const bn_kv *bn_meta_get(const bn_meta *m, const char *key);
int bn_meta_set_u32(bn_meta *m, const char *key, uint32_t v);
int bn_meta_set_i32(bn_meta *m, const char *key, int32_t v);
int bn_meta_set_u64(bn_meta *m, const char *key, uint64_t v);
int bn_meta_set_f32(bn_meta *m, const char *key, float v);
int bn_meta_set_bool(bn_meta *m, const char *key, int v);
int bn_meta_set_str(bn_meta *m, const char *key, const char *v);
int bn_meta_set_strn(bn_meta *m, const char *key, const char *v, size_t n);
int bn_meta_set_bytes(bn_meta *m, const char *key, const void *v, size_t n);
int bn_meta_set_arr(bn_meta *m, const char *key, uint32_t elem_type, const void *v, uint64_t count);
/* Takes ownership of data (count strings, offsets[count+1]). */
int bn_meta_set_strarr_owned(bn_meta *m, const char *key, char *data, uint64_t *offsets, uint64_t count);
/* Takes ownership of sub. */
int bn_meta_set_section(bn_meta *m, const char *key, bn_meta *sub);
int bn_meta_copy(bn_meta *dst, const bn_meta *src); /* appends deep copies */
int bn_meta_remove(bn_meta *m, const char *key);
/* Appends one string to the string array at key (created if absent). */
int bn_meta_append_str(bn_meta *m, const char *key, const char *str);

/* Typed getters: -1 if missing or of the wrong type (integers convert between
 * widths when the value fits). */
int bn_meta_u64(const bn_meta *m, const char *key, uint64_t *out);
int bn_meta_u32(const bn_meta *m, const char *key, uint32_t *out);
int bn_meta_i64(const bn_meta *m, const char *key, int64_t *out);
int bn_meta_f64(const bn_meta *m, const char *key, double *out);
int bn_meta_bool(const bn_meta *m, const char *key, int *out);
const char *bn_meta_str(const bn_meta *m, const char *key); /* NUL-terminated copy kept in kv */
const bn_meta *bn_meta_section(const bn_meta *m, const char *key);

/* Serialization (formats/bn-model.md §Metadata). */
int bn_meta_encode(const bn_meta *m, uint8_t **out, size_t *out_len, bn_err *e);
/* Decodes count entries from buf; *used returns the bytes consumed. */
int bn_meta_decode(bn_meta *m, const uint8_t *buf, size_t len, uint64_t count, size_t *used,
                   const char *name, bn_err *e);

/* ------------------------------------------------------ model description */

#define BN_MAX_DIMS 4
#define BN_NAME_MAX 128

typedef struct bn_tensor {
    char name[BN_NAME_MAX];
    uint32_t type;
    uint32_t ndim;
    uint64_t shape[BN_MAX_DIMS]; /* shape[0] outermost: [rows, cols] for matrices */
    uint64_t offset;             /* within the data region (bn files) or source file */
    uint64_t size;               /* bytes */
    uint64_t hash;               /* XXH3-64 of the bytes; valid when has_hash */
    int has_hash;
    const void *data;            /* in place when the file is mapped, else NULL */
    uint32_t src_index;          /* reader-private: where the bytes come from */
} bn_tensor;

/* A model as every reader produces it: metadata + tensor directory, and a
 * way to get each tensor's bytes (in directory order for pipes). */
typedef struct bn_source {
    char *name;            /* file or directory, for messages */
    char *format;          /* "bn", "hf", "gguf", "safetensors" */
    bn_meta meta;
    bn_tensor *tensors;
    size_t n_tensors;
    void *impl;
    /* Copies tensor i's bytes into buf (tensors[i].size bytes). Streaming
     * sources require increasing i. */
    int (*read)(struct bn_source *s, size_t i, void *buf, bn_err *e);
    void (*close)(struct bn_source *s);
    /* The files the model was read from (for provenance hashes); owned. */
    char **files;
    size_t n_files;
} bn_source;

/* Records a source file path (copied). */
int bn_source_add_file(bn_source *s, const char *path);

void bn_source_close(bn_source *s);
const bn_tensor *bn_source_find(const bn_source *s, const char *name);
int bn_source_find_index(const bn_source *s, const char *name);

/* Opens any supported input: a .bn file (or stream on "-"), an HF checkpoint
 * directory, a .safetensors file, or a .gguf file. */
int bn_open_any(bn_source *s, const char *path, bn_err *e);

/* --- the bn model file (formats/bn-model.md) --- */
#define BN_FILE_VERSION 1
#define BN_ALIGN 64

typedef enum { BN_OPEN_MAP = 0, BN_OPEN_STREAM = 1 } bn_open_mode;
/* Mapped: every tensors[i].data points into the file; the trailer's checksums
 * are read. Stream: tensors come in order through read(); checksums are
 * checked as each tensor passes and the trailer is read at the end (see
 * bn_bnfile_finish). "-" always streams. */
int bn_bnfile_open(bn_source *s, const char *path, bn_open_mode mode, bn_err *e);
/* For streams: reads the rest of the input and its trailer (late metadata is
 * merged into s->meta). No-op for mapped files. */
int bn_bnfile_finish(bn_source *s, bn_err *e);
/* Recomputes every tensor checksum; names the first damaged tensor. */
int bn_bnfile_verify(bn_source *s, bn_err *e);
int bn_bnfile_sniff(const uint8_t *head, size_t n);

typedef struct bn_writer {
    bn_out out;
    const bn_tensor *tensors; /* directory as written (offsets filled in) */
    bn_tensor *dir;
    size_t n_tensors;
    size_t next;
    uint64_t data_start;
    uint64_t *hashes;
    bn_meta late; /* metadata known only at the end (e.g. source hashes) */
} bn_writer;

/* Copies the late metadata keys (provenance.source_hashes) from a finished
 * input's metadata into a writer's late list, unless already there. */
int bn_late_carry(bn_meta *late, const bn_meta *input);
/* Writes the head (metadata + directory); tensor sizes must be final. */
int bn_writer_begin(bn_writer *w, const char *path, const bn_meta *meta, const bn_tensor *tensors,
                    size_t n, bn_err *e);
/* Tensors in directory order. */
int bn_writer_tensor(bn_writer *w, const void *data, size_t size, bn_err *e);
/* Trailer, then atomic rename. */
int bn_writer_finish(bn_writer *w, bn_err *e);
void bn_writer_abort(bn_writer *w);

/* ---------------------------------------------------------- hyper-parameters */

#define BN_MAX_STOP 16

/* What the forward pass needs, read from the canonical metadata keys
 * (formats/bn-model.md §3.1). */
typedef struct bn_hparams {
    char arch[32];
    uint32_t n_vocab, n_ctx, n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim;
    float rope_theta, norm_eps;
    int rope_neox;   /* 1: pairs (i, i+head_dim/2); 0: adjacent pairs */
    int act_silu;    /* 1: silu(g)*u; 0: relu(g)^2*u */
    int sub_norms;   /* attn_sub_norm / ffn_sub_norm present */
    int tied;        /* output head = token_embd */
    int32_t bos_id, eos_id, pad_id;
    int add_bos;
    int32_t stop_ids[BN_MAX_STOP];
    int n_stop;
} bn_hparams;

/* Validates ranges and consistency; the error names the key and the value. */
int bn_hparams_from_meta(const bn_meta *m, bn_hparams *hp, const char *name, bn_err *e);
int bn_hparams_to_meta(const bn_hparams *hp, bn_meta *m);
/* Checks every tensor the architecture needs exists with the right shape. */
int bn_hparams_check_tensors(const bn_hparams *hp, const bn_source *s, bn_err *e);

/* ------------------------------------------------------------ conversion */

typedef struct bn_convert_opts {
    const char *program;  /* "bn-convert 0.1.0" for provenance */
    const char *options;  /* the command line's options, for provenance */
    const char *name;     /* general.name override, or NULL */
    int progress;         /* draw progress on stderr */
} bn_convert_opts;

/* Streams any source into a bn model file at out ("-" = stdout): one tensor
 * in memory at a time, output atomic, provenance recorded. */
int bn_convert(const char *src, const char *out, const bn_convert_opts *o, bn_err *e);

/* Describes any model input (--info): hyper-parameters, tensors, sizes,
 * checksum status; as text or JSON. verify: recompute checksums (bn files). */
int bn_describe(const char *src, FILE *fp, int json, int verify, bn_err *e);

/* XXH3-64 of a whole file, read in bounded chunks. */
int bn_hash_file(const char *path, uint64_t *out, bn_err *e);

/* ------------------------------------------------------------ quantization */

/* Nonzero for the seven ternary projections of a layer (attn_q/k/v/output,
 * ffn_gate/up/down), by canonical name. */
int bn_tensor_is_projection(const char *name);

typedef struct bn_quant_stats {
    float scale;       /* beta = mean|W| (clamped at 1e-5) */
    double zero_share; /* fraction of weights that became 0 */
    double rel_error;  /* ||W - beta*T|| / ||W|| */
} bn_quant_stats;

/* Absmean ternarization (formats.md §1.4): beta = mean|W| over the whole
 * tensor, T = clamp(rint(W/beta), -1, 1); writes a `t2` tensor. */
void bn_ternarize_absmean(const float *w, uint64_t rows, uint64_t k, uint8_t *t2, bn_quant_stats *st);
/* Reads ternary value (row r, column c) of a `t2` tensor: -1, 0 or 1. */
int bn_t2_get(const uint8_t *t2, uint64_t k, uint64_t r, uint64_t c);
float bn_t2_scale(const uint8_t *t2, uint64_t rows, uint64_t k);

typedef struct bn_quant_opts {
    const char *step;   /* provenance line, e.g. "bn-quant 0.1.0" */
    FILE *report;       /* per-tensor report, or NULL */
    int report_json;
    int progress;
    /* Re-encode the output head / the embedding table (float tensors
     * only) as this type (f32, f16, bf16, i8, q6); -1 keeps it. When the
     * embeddings are tied the one tensor is both, and head_type wins. */
    int head_type, embd_type;
} bn_quant_opts;

/* Streams a bn model, ternarizing float projection weights; everything else
 * (and ternary input) passes through untouched. */
int bn_quantize(const char *src, const char *out, const bn_quant_opts *o, bn_err *e);

#endif
