/* kern_embd.h — the embedding lookup (kern_embd.c). */
#ifndef BN_KERN_EMBD_H
#define BN_KERN_EMBD_H

#include "core.h"

/* Row r of a [rows, d] head/embedding tensor of type (f32, f16, bf16, i8,
 * q6, q5 or q4; bn_head_type_ok) as floats. */
void bn_head_row(uint32_t type, const void *w, size_t rows, size_t d, size_t r, float *out);

#endif
