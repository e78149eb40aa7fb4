/* gguf.h — the parts of the GGUF reader (internal to formats/):
 *   gguf.c         opens a file: header, tensor directory, data placement;
 *   gguf_io.c      the bounds-checked buffered reader every part reads with;
 *   gguf_kv.c      metadata entries, widened to bn types (keys as in the file);
 *   gguf_tensor.c  what each GGML tensor type becomes, and the conversion
 *                  done by read();
 *   gguf_blocks.c  decoders of the k-quant and IQ*_BN blocks;
 *   gguf_tl.c      bitnet.cpp's TL1/TL2 tiles (presets, kernel_config.ini)
 *                  and their decoding;
 *   gguf_meta.c    the canonical metadata built from the file's entries. */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include "formats.h"

/* ggml tensor types we read (IQ1_BN/IQ2_BN: ik_llama.cpp's numbers; TL1/TL2:
 * bitnet.cpp's). */
enum {
    GT_F32 = 0, GT_F16 = 1, GT_Q4_0 = 2, GT_Q4_1 = 3, GT_Q5_0 = 6, GT_Q5_1 = 7, GT_Q8_0 = 8, GT_Q4_K = 12,
    GT_Q5_K = 13, GT_Q6_K = 14, GT_IQ4_NL = 20, GT_BF16 = 30,
    GT_TQ1_0 = 34, GT_TQ2_0 = 35, GT_I2_S = 36, GT_TL1 = 38, GT_TL2 = 39, GT_IQ1_BN = 134, GT_IQ2_BN = 135
};

/* What read() does with a tensor. */
enum {
    CV_COPY, CV_Q8_F32, CV_I2S_T2, CV_TQ1_T2, CV_TQ1_F32, CV_TQ2_T2, CV_TQ2_F32,
    CV_Q32_F32, CV_Q4K_F32, CV_Q5K_F32, CV_Q6K_F32, CV_IQ1BN_T2, CV_IQ1BN_F32, CV_IQ2BN_T2, CV_IQ2BN_F32, CV_TL_T2,
    CV_FLOAT_T2 /* an f32/f16/bf16 projection holding ternary·β with one β (the converters' weight_quant) */
};

/* A TL1/TL2 tile for an M × K tensor: a kernel_config.ini section's m, k,
 * bm (BM), bk (BK) and bmm (bm). */
typedef struct gg_tile {
    uint64_t m, k;
    uint32_t BM, BK, bm;
} gg_tile;

/* The tiles of a kernel_config.ini (path NULL: none given, presets apply). */
typedef struct gg_tl_config {
    char *path;
    gg_tile *tiles;
    size_t n;
} gg_tl_config;

/* Bytes of one block of 256 (k-quants) or 64 (IQ*_BN) values, and the
 * per-row scale in front of each IQ*_BN row (f16 for IQ1_BN, f32 for IQ2_BN). */
enum {
    BN_GGUF_Q4K_BYTES = 144, BN_GGUF_Q5K_BYTES = 176, BN_GGUF_Q6K_BYTES = 210,
    BN_GGUF_IQ1BN_BYTES = 13, BN_GGUF_IQ2BN_BYTES = 16, BN_GGUF_IQ1BN_META = 2, BN_GGUF_IQ2BN_META = 4
};

typedef struct gg_tensor {
    uint32_t ggtype;
    int conv;
    uint64_t src_off;  /* absolute file offset */
    uint64_t src_size; /* bytes in the file */
    uint64_t n;        /* elements */
    uint64_t k;        /* innermost dimension (ne0) */
    float beta;        /* t2 scale (I2_S, TL1/TL2: read at open; TQ, IQ*_BN: the common d; F32/F16: |w|) */
    gg_tile tile;      /* TL1/TL2: the tile the file was laid out with */
} gg_tensor;

/* A bn_source's impl for a GGUF file. */
typedef struct gg_impl {
    int fd;
    gg_tensor *gt;
    uint8_t *scratch;
    size_t scratch_cap;
    gg_tl_config tl; /* --tl-config, or none */
    int float_t2;    /* read f32/f16/bf16 projections of ternary·β as t2 (the BitNet architectures) */
    int norm_in;     /* the input norms were spelled <proj>_norm_in (bitnet.cpp's embedding converter) */
} gg_impl;

/* ------------------------------------------------ gguf_io.c: the reader */

/* A sequential reader over the file with a 64 KiB window; every read is
 * checked against the file size and fails naming the file and what was
 * being read. */
typedef struct gg_rdr {
    int fd;
    const char *name;
    uint64_t size; /* file size */
    uint64_t pos;  /* logical position */
    uint8_t *buf;
    uint64_t bstart;
    size_t blen;
} gg_rdr;

#define GG_RBUF (1u << 16)

/* pread exactly n bytes at off; -1 with errno set (EIO at the end of the file). */
int bn_gguf_pread_full(int fd, void *dst, size_t n, uint64_t off);
/* Bytes left after the read position. */
uint64_t bn_gguf_left(const gg_rdr *r);
/* Reads n bytes into dst (NULL: skips them). */
int bn_gguf_get(gg_rdr *r, void *dst, uint64_t n, const char *what, bn_err *e);
int bn_gguf_u32(gg_rdr *r, uint32_t *v, const char *what, bn_err *e);
int bn_gguf_u64(gg_rdr *r, uint64_t *v, const char *what, bn_err *e);
/* A GGUF string (u64 length + bytes) of at most max bytes, as a malloc'd
 * NUL-terminated copy; its length into *len_out unless NULL. */
int bn_gguf_str(gg_rdr *r, char **out, uint64_t *len_out, uint64_t max, const char *what, bn_err *e);

/* ---------------------------------------------------- gguf_kv.c: metadata */

/* Reads one metadata entry into raw: the key as in the file, the value
 * widened to a bn type (nested arrays, which have no bn form, are checked
 * and dropped). */
int bn_gguf_read_kv(gg_rdr *r, bn_meta *raw, bn_err *e);

/* ------------------------------------------------- gguf_tensor.c: tensors */

/* GGML's name for a tensor type ("unknown" for one it does not have). */
const char *bn_gguf_type_name(uint32_t t);
/* Sets what a tensor of gt->ggtype becomes (t->type, gt->conv) and its
 * bytes in the file (gt->src_size), from gt->n and gt->k; fails on a type
 * or a shape that is not read. */
int bn_gguf_tensor_encoding(const char *name, bn_tensor *t, gg_tensor *gt, bn_err *e);
/* 1 when name is one of a block's seven projections (blk.N.attn_q.weight ...). */
int bn_gguf_is_proj(const char *name);
/* Decisions that need the tensor's data, made once it is placed: an I2_S
 * tensor's scale, t2 or exact f32 for a TQ tensor, t2 for an f32/f16
 * projection of ternary·β when g->float_t2 (f32, f16 or bf16); then t->size. */
int bn_gguf_tensor_settle(const char *name, gg_impl *g, bn_tensor *t, gg_tensor *gt, bn_err *e);
/* bn_source's read() and close(). */
int bn_gguf_tensor_read(bn_source *s, size_t i, void *buf, bn_err *e);
void bn_gguf_close(bn_source *s);

/* ------------------------------------------ gguf_blocks.c: block decoders */

/* nblk blocks of 32 values of GGML type (GT_) Q4_0, Q4_1, Q5_0, Q5_1 or
 * IQ4_NL to f32, with ggml's arithmetic; a block's bytes (0: not one of
 * these types). */
void bn_gguf_dequant_q32(unsigned type, const uint8_t *src, uint64_t nblk, float *out);
unsigned bn_gguf_q32_bytes(unsigned type);
/* nblk blocks of 256 values to f32, with ggml's arithmetic. */
void bn_gguf_dequant_q4k(const uint8_t *src, uint64_t nblk, float *out);
void bn_gguf_dequant_q5k(const uint8_t *src, uint64_t nblk, float *out);
void bn_gguf_dequant_q6k(const uint8_t *src, uint64_t nblk, float *out);
/* The 64 codes (w + 1) of one IQ2_BN (0..3) or IQ1_BN (0..2) block. */
void bn_gguf_iq2bn_codes(const uint8_t *blk, uint8_t *codes);
void bn_gguf_iq1bn_codes(const uint8_t *blk, uint8_t *codes);

/* ------------------------------------------------ gguf_tl.c: TL1 and TL2 */

/* Reads a bitnet.cpp kernel_config.ini ([Kernels_N] sections of m, k, bm,
 * bk, bmm) into c; the error names the file and the line. */
int bn_gguf_tl_config_load(gg_tl_config *c, const char *path, bn_err *e);
void bn_gguf_tl_config_free(gg_tl_config *c);
/* An m × k TL1/TL2 tensor's bytes in the file (codes, then β's 32-byte
 * block), which do not depend on the tile; fails on a shape no tile fits. */
int bn_gguf_tl_encoding(const char *name, const char *tensor, uint32_t ggtype, uint64_t m, uint64_t k,
                        uint64_t *src_size, bn_err *e);
/* Where β lies after the tensor's start. */
uint64_t bn_gguf_tl_beta_offset(uint32_t ggtype, uint64_t m, uint64_t k);
/* Sets gt->tile from c or the presets (by M × K), checked against the shape. */
int bn_gguf_tl_settle(const char *name, const gg_tl_config *c, const char *tensor, gg_tensor *gt, bn_err *e);
/* β from its 4 bytes: a positive finite value, else an error. */
int bn_gguf_tl_beta(const char *name, const char *tensor, const gg_tensor *gt, const uint8_t *beta4, float *beta,
                    bn_err *e);
/* The tensor's file bytes (src) to t2 codes and gt->beta, with the checks of
 * codes and padding. */
int bn_gguf_tl_read(const char *name, const char *tensor, const gg_tensor *gt, const uint8_t *src, uint8_t *t2,
                    bn_err *e);

/* ------------------------------------------- gguf_meta.c: canonical keys */

/* 1 when a (general.architecture, may be NULL) names a BitNet
 * architecture: bitnet, bitnet-b1.58 or bitnet-25. */
int bn_gguf_bitnet_arch(const char *a);
/* Fills s->meta with the canonical metadata (formats/bn-model.md §3) from
 * the file's entries: architecture, hyper-parameters, special tokens,
 * chat format and the tokenizer section. has_output: the file has its own
 * output head; embd_rows: rows of token_embd (0: none). */
int bn_gguf_canonical_meta(bn_source *s, const bn_meta *raw, int has_output, uint64_t embd_rows, bn_err *e);

#endif
