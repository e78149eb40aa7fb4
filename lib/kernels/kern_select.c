/* kern_select.c — scalar reference sets for the packed layouts, and the
 * choice of a kernel set for a layout on the running CPU.
 *
 * Selection never offers a set whose instructions the CPU (or its OS)
 * cannot run: every request goes through bn_cpu_detect. "auto" takes the
 * fastest usable set; a named set that cannot run here is refused. */
#include "cpu.h"
#include "kern_2bit.h"
#include "kern_tl.h"

#include <string.h>

/* ------------------------------------------------- scalar, any layout */

static float ref_quantize(const float *x, size_t k, int8_t *q)
{
    return bn_kernels_ref_t2()->quantize(x, k, q);
}

/* Element by element through bn_packed_get (the layout's definition), a
 * block of a row at a time shared by every token, as kern_ref.c's t2. */
static void ref_gemm_layout(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                            const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    enum { BLK = 256 };
    int8_t wv[BLK];
    int32_t acc[BN_KERN_MAX_N];
    for (size_t r = r0; r < r1; r++) {
        memset(acc, 0, n * sizeof acc[0]);
        for (size_t c0 = 0; c0 < k; c0 += BLK) {
            size_t nb = k - c0 < BLK ? k - c0 : BLK;
            for (size_t j = 0; j < nb; j++)
                wv[j] = (int8_t)bn_packed_get(layout, w, k, r, c0 + j);
            for (size_t t = 0; t < n; t++) {
                const int8_t *qt = q + t * ldq + c0;
                for (size_t j = 0; j < nb; j++)
                    acc[t] += wv[j] * qt[j];
            }
        }
        for (size_t t = 0; t < n; t++)
            y[t * ldy + r] = bn_kern_out(acc[t], s[t], beta);
    }
}

static void i2s_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, const float *s,
                     size_t n, size_t ldq, float *y, size_t ldy)
{
    ref_gemm_layout(BN_I2S, w, k, r0, r1, beta, q, s, n, ldq, y, ldy);
}

static void i2s_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s, float *y)
{
    ref_gemm_layout(BN_I2S, w, k, r0, r1, beta, q, &s, 1, k, y, 0);
}

static void i2s_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x, size_t n,
                         size_t ldx, float *y, size_t ldy)
{
    k2_gemm_f32(BN_I2S, w, k, r0, r1, beta, x, n, ldx, y, ldy);
}

static const bn_kernels ref_i2s = {"ref", BN_I2S, ref_quantize, i2s_gemm, i2s_gemv, i2s_gemm_f32};

static void b3_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, const float *s,
                    size_t n, size_t ldq, float *y, size_t ldy)
{
    ref_gemm_layout(BN_B3, w, k, r0, r1, beta, q, s, n, ldq, y, ldy);
}

static void b3_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s, float *y)
{
    ref_gemm_layout(BN_B3, w, k, r0, r1, beta, q, &s, 1, k, y, 0);
}

static void b3_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x, size_t n,
                        size_t ldx, float *y, size_t ldy)
{
    k2_gemm_f32(BN_B3, w, k, r0, r1, beta, x, n, ldx, y, ldy);
}

static const bn_kernels ref_b3 = {"ref", BN_B3, ref_quantize, b3_gemm, b3_gemv, b3_gemm_f32};

const bn_kernels *bn_kernels_ref_packed(uint32_t layout)
{
    if (layout == BN_T2)
        return bn_kernels_ref_t2();
    if (layout == BN_TL1 || layout == BN_TL2)
        return bn_kernels_tl_ref(layout); /* kern_tl_ref.c */
    return layout == BN_I2S ? &ref_i2s : layout == BN_B3 ? &ref_b3 : NULL;
}

/* ------------------------------------------------------------ choice */

/* The sets that may run on cpu for layout, best first; returns how many. */
static size_t usable(uint32_t layout, const bn_cpu *cpu, const bn_kernels **out)
{
    size_t n = 0;
    const bn_kernels *k;
    int tl = layout == BN_TL1 || layout == BN_TL2; /* lookup-table layouts: kern_tl_*.c */
    if (cpu->amx_int8 && cpu->gfni && cpu->avx512vnni && cpu->avx512bw && !tl && (k = bn_kernels_amx(layout)))
        out[n++] = k;
    if (cpu->avx512vnni && cpu->avx512bw && (k = tl ? bn_kernels_tl_avx512(layout) : bn_kernels_avx512(layout)))
        out[n++] = k;
    if (cpu->avx2 && (k = tl ? bn_kernels_tl_avx2(layout) : bn_kernels_avx2(layout)))
        out[n++] = k;
    if (cpu->neon && cpu->dotprod && !tl && (k = bn_kernels_neon(layout, 1)))
        out[n++] = k;
    if (cpu->neon && (k = tl ? bn_kernels_tl_neon(layout) : bn_kernels_neon(layout, 0)))
        out[n++] = k;
    if ((k = bn_kernels_ref_packed(layout)))
        out[n++] = k;
    return n;
}

const bn_kernels *bn_kernels_pick(const char *name, uint32_t layout, const bn_cpu *cpu)
{
    const bn_kernels *sets[8];
    size_t n = usable(layout, cpu, sets);
    if (!n)
        return NULL;
    if (!strcmp(name, "auto"))
        return sets[0];
    for (size_t i = 0; i < n; i++)
        if (!strcmp(sets[i]->name, name))
            return sets[i];
    return NULL;
}

const bn_kernels *bn_kernels_find(const char *name, uint32_t layout)
{
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    return bn_kernels_pick(name, layout, &cpu);
}

const char *const *bn_kernels_names(void)
{
    static const char *const names[] = {"auto", "ref", "avx2", "avx512", "amx", "neon", "dotprod", NULL};
    return names;
}
