/* layout.h — the kernel-packed ternary layouts as the bn model format
 * defines them (formats/bn-model.md §4.1, types 16..127): their numbers,
 * names, byte sizes and the tl layouts' geometry. Packing, unpacking and
 * the kernels that read them live in lib/kernels (pack.h, tl_layout.h).
 *
 * Every packed layout holds exactly the ternary values of a `t2` tensor and
 * its f32 β, rearranged for a kernel family; the last 4 bytes of every
 * packed tensor are β (the model loader reads it there).
 */
/* the tl1/tl2 part: lookup-table layouts (types 18 and 19).
 *
 * Both follow the encodings of bitnet.cpp's TL1/TL2 (pairs → 3·w0+w1+4 as
 * a nibble, first of two in the high nibble; triples → |9w0+3w1+w2| as a
 * nibble plus a sign bit, 16 signs per u16 at bit 15−i, a K tail that is
 * not a whole number of triple groups in TL1 pairs). The tiling is bn's:
 *
 *   32-byte header: u32 BM, u32 BK, u64 rows, u64 K, u32 type, u32 0
 *   rows in blocks of BM (the last block may be shorter, h rows); block b
 *   starts at 32 + b·BM·(bytes of a row, below), and holds
 *     - byte groups g = 0..G−1, each h bytes: byte g·h + i is row i's
 *       group g (tl1: columns 4g..4g+3 as two pair indices; tl2: for
 *       g < Kt/6 columns 6g..6g+5 as two triple magnitudes, then the tail
 *       columns Kt + 4j.. as tl1 pairs);
 *     - tl2 only: sign words, triple t's ⌈h/16⌉ u16 (little-endian) at
 *       word t·⌈h/16⌉ + i/16, row i at bit 15 − i mod 16;
 *   then the f32 β.
 *
 * Byte g·h + i makes one vector load 32 (or 16, 64) rows of one column
 * group, which is what a table lookup (vpshufb, tbl) wants, and makes
 * every BM × BK tile a contiguous run of bytes. Because of that order the
 * tile changes no sizes: a file's size is a function of its shape alone
 * (BM a multiple of 32), as the model loader expects. BK is the column
 * tile the kernels sum in int16 before widening to int32 — it bounds that
 * sum (BK ≤ 252 keeps |Σ| ≤ 32767 for entries up to 3·128). */
#ifndef BN_LAYOUT_H
#define BN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

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

enum {
    BN_TL1 = 18,
    BN_TL2 = 19,
    BN_TL_HDR = 32,   /* header bytes before the first block */
    BN_TL_BM_STEP = 32, /* BM is a multiple of this */
    BN_TL_BK_MAX = 252, /* int16 bound, see above */
};

typedef struct bn_tl_geom {
    uint32_t type, bm, bk;
    uint64_t rows, k;
    uint64_t kt;    /* tl2: columns held as triples, 6·⌊K/6⌋; tl1: 0 */
    uint64_t nt;    /* tl2: triples per row, Kt/3 */
    uint64_t ng;    /* byte groups per row */
    uint64_t gt;    /* groups holding triples (tl2: Kt/6; tl1: 0) */
    uint64_t block; /* bytes of a full block of BM rows */
} bn_tl_geom;

/* The geometry for a tile; -1 (and a reason) for a tile the layout cannot
 * take. */
int bn_tl_geom_make(uint32_t type, uint32_t bm, uint32_t bk, uint64_t rows, uint64_t k, bn_tl_geom *g,
                    const char **why);
/* The geometry a tensor's header records, checked against k (and rows
 * when rows != 0); -1 if it does not describe a valid tensor. */
int bn_tl_geom_read(uint32_t type, const uint8_t *data, uint64_t rows, uint64_t k, bn_tl_geom *g);
/* The default tile of a layout (BM 64; BK 128 for tl1, 192 for tl2). */
void bn_tl_default_tile(uint32_t type, uint32_t *bm, uint32_t *bk);
/* Parses "BMxBK". */
int bn_tl_parse_tile(const char *s, uint32_t *bm, uint32_t *bk);

/* Total bytes (header, blocks, β); 0 on overflow or a bad shape. Depends
 * on the shape only. */
uint64_t bn_tl_size(uint32_t type, uint64_t rows, uint64_t k);

/* Block of row r: its first byte, its height, and r's index in it. */
static inline const uint8_t *bn_tl_block(const bn_tl_geom *g, const uint8_t *data, uint64_t r, uint64_t *h,
                                         uint64_t *i)
{
    uint64_t b = r / g->bm, left = g->rows - b * g->bm;
    *h = left < g->bm ? left : g->bm;
    *i = r - b * g->bm;
    return data + BN_TL_HDR + b * g->block;
}

/* Name of a packed layout ("i2s", "b3"), NULL if unknown. */
const char *bn_packed_name(uint32_t type);
int bn_packed_from_name(const char *name, uint32_t *type);
/* Bytes of one row of k columns, and of a whole [rows, k] tensor; 0 if
 * the type is not a packed ternary layout (or on overflow). */
uint64_t bn_packed_row_bytes(uint32_t type, uint64_t k);
uint64_t bn_packed_size(uint32_t type, uint64_t rows, uint64_t k);
/* Checks what a packed tensor says about itself against its shape (the tl
 * layouts' header: rows, K, tile); 0 when consistent or nothing to check.
 * Kernels trust the header's row count, so a loader should call this
 * before handing mapped tl data to a kernel. */
int bn_packed_check(uint32_t type, const uint8_t *data, uint64_t rows, uint64_t k);
#endif
