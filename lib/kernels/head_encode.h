/* head_encode.h — bn-quant's encoders of head and embedding rows
 * (head_encode.c); the layouts are formats/bn-model.md §4.1's. */
#ifndef BN_HEAD_ENCODE_H
#define BN_HEAD_ENCODE_H

#include "core.h"

/* q6: one row of d (a multiple of 128) floats into d/128·104 bytes; each
 * block's scale is chosen (among a few candidates) for the least squared
 * error. */
void bn_q6_encode_row(const float *x, size_t d, uint8_t *out);
/* q5: one row of d (a multiple of 128) floats into d/128·88 bytes, each
 * block's scale chosen like q6's. */
void bn_q5_encode_row(const float *x, size_t d, uint8_t *out);
/* q4: one row of d (a multiple of 128) floats into d/128·72 bytes, each
 * block's scale chosen like q6's. */
void bn_q4_encode_row(const float *x, size_t d, uint8_t *out);
/* q6, q5 or q4 (type BN_Q6/BN_Q5/BN_Q4) as above, the search done one way:
 * BN_HEAD_ENC_BEST as the encoders above (AVX-512 or else AVX2 where the
 * CPU has it), BN_HEAD_ENC_AVX512 / _AVX2 that set where the CPU has it (else
 * plain C), BN_HEAD_ENC_PORTABLE every candidate together in plain C,
 * BN_HEAD_ENC_REF the candidates one at a time, the plain form the others
 * must match byte for byte (tests/unit/test_q4.c). */
enum { BN_HEAD_ENC_BEST, BN_HEAD_ENC_AVX512, BN_HEAD_ENC_AVX2, BN_HEAD_ENC_PORTABLE, BN_HEAD_ENC_REF };
void bn_head_encode_row_how(uint32_t type, int how, const float *x, size_t d, uint8_t *out);
/* The search's inner step, for tests: the squared errors err[0..nc) of the
 * block x[0..32) coded with each step dd[c] (finite, not 0) and codes
 * clamped to [lo, hi], computed the way `how` names (BN_HEAD_ENC_BEST as
 * BN_HEAD_ENC_REF); every way gives the same bits (the plain-C
 * PORTABLE needs |x/dd| < 2^21). */
void bn_head_block_errs_how(int how, const float *x, const float *dd, size_t nc, float lo, float hi, double *err);
/* i8: a row into d int8 and its scale (absmax/127, round half to even),
 * which is returned. */
float bn_i8_encode_row(const float *x, size_t d, int8_t *q);

#endif
