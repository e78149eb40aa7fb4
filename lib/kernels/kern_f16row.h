/* kern_f16row.h — float rows to IEEE binary16 (kern_f16row.c). */
#ifndef BN_KERN_F16ROW_H
#define BN_KERN_F16ROW_H

#include "core.h"

struct bn_cpu;

/* n floats to IEEE binary16, round to nearest even (bn_f32_to_f16 for
 * every finite input); for the f16 KV cache. Never NULL. */
typedef void (*bn_f16_row_fn)(const float *x, uint16_t *h, size_t n);
bn_f16_row_fn bn_f16_row_find(const struct bn_cpu *cpu);

#endif
