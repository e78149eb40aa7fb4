/* tl_layout.h — the lookup-table layouts tl1 and tl2 (their geometry and
 * byte order: formats/layout.h): element access and lossless conversion
 * from and to t2. Internal to the library and the kernel files. */
#ifndef BN_TL_LAYOUT_H
#define BN_TL_LAYOUT_H

#include "layout.h"

/* Byte group gi of row i of a block: its weights into w (up to 6), its
 * first column in *c0; returns how many of them are real columns. */
unsigned bn_tl_decode_group(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i, uint64_t gi,
                            int8_t *w, uint64_t *c0);
/* Row r's K weights (−1, 0, 1) into w. */
void bn_tl_decode_row(const bn_tl_geom *g, const uint8_t *data, uint64_t r, int8_t *w);
int bn_tl_get(uint32_t type, const uint8_t *data, uint64_t k, uint64_t r, uint64_t c);
/* t2 (with β) → layout in the given tile, and back. */
int bn_tl_pack(uint32_t type, uint32_t bm, uint32_t bk, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out);
int bn_tl_unpack(uint32_t type, const uint8_t *packed, uint64_t rows, uint64_t k, uint8_t *t2);

#endif
