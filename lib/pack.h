/* pack.h — kernel-packed ternary layouts (bn types 16..127) and bn-pack.
 *
 * Every packed layout holds exactly the ternary values of a `t2` tensor and
 * its f32 β, rearranged for a kernel family; packing and unpacking are
 * lossless, and the last 4 bytes of every packed tensor are β (the model
 * loader reads it there). Byte layouts and size rules are specified in
 * formats/bn-model.md §4.1. */
#ifndef BN_PACK_H
#define BN_PACK_H

#include "bn.h"
#include "tl_layout.h" /* BN_TL1 = 18, BN_TL2 = 19: the lookup-table layouts */

enum {
    /* bitnet.cpp's canonical I2_S: 128-weight blocks of 32 bytes, element
     * 32m+i of a block in byte i at bits 7-2m:6-2m; rows padded to whole
     * blocks; then β and 28 bytes holding seven more copies of β. */
    BN_I2S = 16,
    /* base 3, five weights per byte (1.6 bits): rows of 64-byte blocks of
     * 320 columns; byte b of a block holds columns 64j + b (j = 0..4) as
     * the digits of v = Σ 3^(4-j)·(w+1), stored as q = ⌈256·v/243⌉ so
     * that digit j is ⌊3·m_j/256⌋ with m_0 = q, m_(j+1) = 3·m_j mod 256;
     * padding digits are 1 (w = 0); then β. */
    BN_B3 = 17,
};

/* Name of a packed layout ("i2s", "b3"), NULL if unknown. */
const char *bn_packed_name(uint32_t type);
int bn_packed_from_name(const char *name, uint32_t *type);
/* Bytes of one row of k columns, and of a whole [rows, k] tensor; 0 if
 * the type is not a packed ternary layout (or on overflow). */
uint64_t bn_packed_row_bytes(uint32_t type, uint64_t k);
uint64_t bn_packed_size(uint32_t type, uint64_t rows, uint64_t k);
/* Ternary value (-1, 0, 1) at (r, c) of a tensor in layout type (BN_T2 or
 * a packed layout). */
int bn_packed_get(uint32_t type, const uint8_t *data, uint64_t k, uint64_t r, uint64_t c);
/* Checks what a packed tensor says about itself against its shape (the tl
 * layouts' header: rows, K, tile); 0 when consistent or nothing to check.
 * Kernels trust the header's row count, so a loader should call this
 * before handing mapped tl data to a kernel. */
int bn_packed_check(uint32_t type, const uint8_t *data, uint64_t rows, uint64_t k);
/* Converts a t2 tensor (with β) into layout type, and back. out must hold
 * bn_packed_size / bn_type_size bytes. Lossless both ways. */
int bn_pack_t2(uint32_t type, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out);
int bn_unpack_t2(uint32_t type, const uint8_t *packed, uint64_t rows, uint64_t k, uint8_t *t2);

/* ----------------------------------------------------------- bn-pack */

typedef struct bn_pack_opts {
    const char *step;   /* provenance line */
    const char *layout; /* "auto" or a layout name ("t2", "i2s") */
    const char *target; /* "auto", "generic", "avx2", "avx512", "amx", "neon" */
    const char *tile;   /* tl1/tl2 tile "BMxBK", or NULL for the layout's default */
    FILE *report;       /* one line per packed tensor, or NULL */
    int progress;
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
