/* pack.h — kernel-packed ternary layouts (bn types 16..127) and bn-pack.
 *
 * Every packed layout holds exactly the ternary values of a `t2` tensor and
 * its f32 β, rearranged for a kernel family; packing and unpacking are
 * lossless, and the last 4 bytes of every packed tensor are β (the model
 * loader reads it there). Byte layouts and size rules are specified in
 * formats/bn-model.md §4.1. */
#ifndef BN_PACK_H
#define BN_PACK_H

#include "formats.h"
#include "layout.h"


/* Ternary value (-1, 0, 1) at (r, c) of a tensor in layout type (BN_T2 or
 * a packed layout). */
int bn_packed_get(uint32_t type, const uint8_t *data, uint64_t k, uint64_t r, uint64_t c);
/* Converts a t2 tensor (with β) into layout type, and back. out must hold
 * bn_packed_size / bn_type_size bytes. Lossless both ways. */
int bn_pack_t2(uint32_t type, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out);
int bn_unpack_t2(uint32_t type, const uint8_t *packed, uint64_t rows, uint64_t k, uint8_t *t2);
/* bn_pack_t2 in pieces for threads (b3 and i2s, whose rows are apart):
 * rows r0..r1-1 (-1 for another type), then the β tail once. */
int bn_pack_t2_rows(uint32_t type, const uint8_t *t2, uint64_t k, uint64_t r0, uint64_t r1, uint8_t *out);
void bn_pack_t2_tail(uint32_t type, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out);
/* Whether t2 codes (rows × k, without β) are all valid: 0 to 2, and 1
 * (w = 0) in the padding past column k-1. 0 when they are; else 1 with
 * the first bad one's row and column (a column ≥ k: padding). */
int bn_t2_find_bad(const uint8_t *t2, uint64_t rows, uint64_t k, uint64_t *row, uint64_t *col);

/* ----------------------------------------------------------- bn-pack */

typedef struct bn_pack_opts {
    const char *step;   /* provenance line */
    const char *layout; /* "auto" or a layout name ("t2", "i2s") */
    const char *target; /* "auto", "generic", "avx2", "avx512", "amx", "neon" */
    const char *tile;   /* tl1/tl2 tile "BMxBK", or NULL for the layout's default */
    FILE *report;       /* one line per packed tensor, or NULL */
    const char *report_name; /* its name in a write error ("-": standard error) */
    bn_progress_fn progress; /* per tensor (bn.h), or NULL */
    void *progress_user;
    bn_temp_hook temps; /* told of a named temporary output (core.h) */
    int n_threads;      /* rows shared among this many threads (b3, i2s); 0 = every core */
} bn_pack_opts;

/* The layout bn-pack writes for a target ("auto": this CPU's best). */
int bn_pack_choose(const char *layout, const char *target, uint32_t *type, const char **why, bn_err *e);

/* The tile for type: the layout's default, or tile ("BMxBK") checked;
 * bm = bk = 0 for layouts without tiles. */
int bn_pack_tile(uint32_t type, const char *tile, uint32_t *bm, uint32_t *bk, bn_err *e);

/* Streams a bn model, rewriting every ternary projection into the chosen
 * layout; records pack.layout / pack.target (and pack.tile for tl1/tl2) in
 * the metadata. */
int bn_pack(const char *src, const char *out, const bn_pack_opts *o, bn_err *e);

#endif
