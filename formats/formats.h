/* formats.h — the formats floor: every model file format's reader and
 * writer, producing and consuming one in-memory model description
 * (bn_source) whose names, types and metadata are canonical
 * (formats/bn-model.md): nothing above this floor knows which file a model
 * came from. Also the type numbers' names and sizes, the bn metadata codec,
 * the hyper-parameters read from canonical keys, whole-file conversion and
 * description. */
#ifndef BN_FORMATS_H
#define BN_FORMATS_H

#include "core.h"

/* ---------------------------------------------------------- type names */

const char *bn_type_name(uint32_t type); /* NULL if unknown */
int bn_type_from_name(const char *name, uint32_t *type);
/* Bytes a tensor of this type and shape occupies; 0 if the type is unknown
 * or the size overflows. shape[0] is the outermost dimension. */
uint64_t bn_type_size(uint32_t type, uint32_t ndim, const uint64_t *shape);

/* ------------------------------------------------------ metadata codec */

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
    /* Where tensor i's bytes lie unchanged in a file, so that a caller can
     * copy them in pieces that stay in the caches: sets *fd and *off and
     * returns 1; 0 when the reader converts them (use read). NULL: never. */
    int (*span)(struct bn_source *s, size_t i, int *fd, uint64_t *off);
    void (*close)(struct bn_source *s);
    /* The name a tensor (by its bn name) has in the source's own files,
     * written into buf, for messages; NULL: the names are the files' own. */
    void (*own_name)(const struct bn_source *s, const char *name, char *buf, size_t n);
    /* The files the model was read from (for provenance hashes); owned. */
    char **files;
    size_t n_files;
} bn_source;

/* Records a source file path (copied); BN_E_NOMEM (e filled) when out of memory. */
int bn_source_add_file(bn_source *s, const char *path, bn_err *e);

void bn_source_close(bn_source *s);
const bn_tensor *bn_source_find(const bn_source *s, const char *name);
/* A tensor's name as the source's files spell it (an HF checkpoint's
 * "model.layers.0.mlp.down_proj.weight" for "blk.0.ffn_down.weight"), in
 * buf of BN_SHOWN_NAME_MAX bytes; returns buf. */
enum { BN_SHOWN_NAME_MAX = BN_NAME_MAX + 32 };
const char *bn_source_shown_name(const bn_source *s, const char *name, char *buf);
int bn_source_find_index(const bn_source *s, const char *name);

/* Opens any supported input: a .bn file (or stream on "-"), an HF checkpoint
 * directory, a .safetensors file, or a .gguf file. */
int bn_open_any(bn_source *s, const char *path, bn_err *e);
/* As bn_open_any; tl_config: the kernel_config.ini that gives a GGUF's
 * TL1/TL2 tiles (NULL: bitnet.cpp's presets, formats/gguf-import.md §5). */
int bn_open_any_tl(bn_source *s, const char *path, const char *tl_config, bn_err *e);

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
    bn_meta late;        /* metadata known only at the end (e.g. source hashes) */
    void *part_hash;     /* XXH3 state of a tensor written in pieces */
    uint64_t part_bytes; /* of it, written so far */
} bn_writer;

/* Copies the late metadata keys (provenance.source_hashes) from a finished
 * input's metadata into a writer's late list, unless already there. */
int bn_late_carry(bn_meta *late, const bn_meta *input);
/* Writes the head (metadata + directory); tensor sizes must be final.
 * temps (or NULL) is told of a named temporary (core.h). */
int bn_writer_begin(bn_writer *w, const char *path, const bn_temp_hook *temps, const bn_meta *meta,
                    const bn_tensor *tensors, size_t n, bn_err *e);
/* Tensors in directory order. */
int bn_writer_tensor(bn_writer *w, const void *data, size_t size, bn_err *e);
/* The next tensor in pieces: n bytes at a time (any n), in order; the
 * piece that completes the directory's size ends the tensor. */
int bn_writer_piece(bn_writer *w, const void *data, size_t n, bn_err *e);
/* Trailer, then atomic rename. */
int bn_writer_finish(bn_writer *w, bn_err *e);
void bn_writer_abort(bn_writer *w);

/* ---------------------------------------------------------- hyper-parameters */

#define BN_MAX_STOP 16

#define BN_MAX_LAYERS 4096 /* model.block_count's bound */

/* model.pooling: how an embedding model turns a sequence into one vector */
enum { BN_POOL_NONE = 0, BN_POOL_LAST = 1 /* the last token's final-normed state, L2-normalized */ };

/* What the forward pass needs, read from the canonical metadata keys
 * (formats/bn-model.md §3.1). */
typedef struct bn_hparams {
    char arch[32];
    uint32_t n_vocab, n_ctx, n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim;
    float rope_theta, norm_eps;
    int rope_neox;   /* 1: pairs (i, i+head_dim/2); 0: adjacent pairs */
    int act_silu;    /* 1: silu(g)*u; 0: relu(g)^2*u (or gelu, below) */
    int act_gelu;    /* 1: gelu_tanh(g)*u (Gemma's gelu_pytorch_tanh) */
    int sub_norms;   /* attn_sub_norm / ffn_sub_norm present */
    int tied;        /* output head = token_embd */
    int proj_norm;   /* an RMSNorm of its own before each ternary projection's input */
    float proj_norm_eps;
    int ternary_recip; /* model.ternary_rule "reciprocal": float projections ternarized as W * (1/beta) */
    int rope_llama3; /* model.rope_scaling "llama3": frequencies rescaled by band */
    float rope_factor, rope_low_freq, rope_high_freq;
    uint32_t rope_orig_ctx;
    int qk_norm;     /* model.qk_norm: an RMSNorm over each query and key head before RoPE (Qwen3) */
    int pooling;     /* model.pooling: BN_POOL_NONE (a language model) or BN_POOL_LAST (an embedding model) */
    int32_t embed_end_id; /* tokens.embed_end_id: appended to every embedding input; -1 none */
    float embd_scale;     /* model.embedding_scale: embedding rows multiplied by it (Gemma: sqrt(d)); 1 without */
    int post_norms;       /* model.post_norms: attention and FFN outputs RMS-normed before the residual add */
    uint32_t swa;         /* model.sliding_window: positions a sliding layer attends to (itself included); 0 none */
    float swa_theta; /* model.swa_theta: the RoPE base of sliding layers */
    uint64_t swa_layers[BN_MAX_LAYERS / 64]; /* model.sliding_layers: bit l set when layer l slides */
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
/* Layer l attends through a sliding window (model.sliding_layers). */
static inline int bn_hparams_sliding(const bn_hparams *hp, uint32_t l)
{
    return hp->swa && (hp->swa_layers[l / 64] >> (l % 64) & 1);
}

/* Nonzero for the seven ternary projections of a layer (attn_q/k/v/output,
 * ffn_gate/up/down), by canonical name. */
int bn_tensor_is_projection(const char *name);
/* 1 when a projection of s is float (latent weights bn-quant or the
 * loader ternarize): bn-convert then records model.ternary_rule
 * "reciprocal", the rule of every published trainer and converter. */
int bn_source_has_float_projection(const bn_source *s);
/* The projections in layer order (attn_q, attn_k, attn_v, attn_output,
 * ffn_gate, ffn_up, ffn_down) and the suffix of each one's input norm
 * (model.proj_norm): "blk.N." + bn_proj_names[i] + "_in_norm.weight". */
#define BN_N_PROJ 7
extern const char *const bn_proj_names[BN_N_PROJ];

/* ----------------------------------------------------- foreign readers */

/* A Hugging Face checkpoint directory (config.json, *.safetensors,
 * tokenizer files), converted to canonical names and types on the fly. */
int bn_hf_open(bn_source *s, const char *dir, bn_err *e);

/* One raw .safetensors file: tensor names and dtypes as stored (no mapping). */
int bn_safetensors_open(bn_source *s, const char *path, bn_err *e);

/* A GGUF v2/v3 file (bitnet.cpp or llama.cpp), canonical on the fly;
 * tl_config as bn_open_any_tl's. */
int bn_gguf_open(bn_source *s, const char *path, const char *tl_config, bn_err *e);
int bn_gguf_sniff(const uint8_t *head, size_t n);

/* ------------------------------------------------------------ conversion */

typedef struct bn_convert_opts {
    const char *program;  /* "bn-convert 0.1.0" for provenance */
    const char *options;  /* the command line's options, for provenance */
    const char *name;     /* general.name override, or NULL */
    bn_progress_fn progress; /* per tensor (bn.h), or NULL */
    void *progress_user;
    bn_temp_hook temps;   /* told of a named temporary output (core.h) */
    const char *tl_config; /* a GGUF's TL1/TL2 tiles (bn_open_any_tl), or NULL */
    /* told of what the output will lack (no tokenizer: token ids only), or NULL */
    void (*warn)(void *user, const char *msg);
    void *warn_user;
    /* checks the output's metadata before anything is written (a floor
     * above builds its tokenizer from it), or NULL; -1 (e filled): refused */
    int (*check)(const bn_meta *meta, bn_err *e);
} bn_convert_opts;

/* Provenance as bn-convert records it, for whatever program reads a
 * source (bn-quant and bn-pack read checkpoints too): the converter
 * (program), its options, the source's format and files (their hashes
 * into late by bn_provenance_late once the data is through; a bn input's
 * own carried over), name as general.name when not NULL. A bn input keeps
 * its provenance and gets program + options as one more step. */
int bn_provenance_add(bn_meta *m, const bn_source *s, const char *program, const char *options, const char *name);
int bn_provenance_late(bn_meta *late, const bn_source *s, const char *src, bn_err *e);

/* Streams any source into a bn model file at out ("-" = stdout): one tensor
 * in memory at a time, output atomic, provenance recorded. */
int bn_convert(const char *src, const char *out, const bn_convert_opts *o, bn_err *e);

/* Describes any model input (--info): hyper-parameters, tensors, sizes,
 * checksum status; as text or JSON. verify: recompute checksums (bn files). */
int bn_describe(const char *src, FILE *fp, int json, int verify, const char *tl_config, bn_err *e);

#endif
