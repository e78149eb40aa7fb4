/* kern_f16row.c — float rows to IEEE binary16 for the f16 KV cache
 * (kern_f16row.h): vcvtps2ph where the CPU has AVX-512, bn_f32_to_f16
 * otherwise; both round to nearest even (the same bits for every finite
 * input). */
#include "cpu.h"
#include "kern_f16row.h"

static void f16_row_scalar(const float *x, uint16_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h[i] = bn_f32_to_f16(x[i]);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

static T512 void f16_row512(const float *x, uint16_t *h, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256i v = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(h + i, m, v);
    }
}
#endif

bn_f16_row_fn bn_f16_row_find(const bn_cpu *cpu)
{
#if defined(__x86_64__)
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->f16c)
        return f16_row512;
#endif
    (void)cpu;
    return f16_row_scalar;
}
