/* cpu.c — run-time CPU feature detection (cpuid + xgetbv on x86-64,
 * the auxiliary vector on AArch64). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Linux keeps the 8 KiB of AMX tile data out of a process until it asks
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, feature 18); a tile
 * instruction before that faults. The permission is the process's, for
 * all its threads, and asking again is harmless. Other systems: no AMX. */
static int amx_permitted(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

void bn_cpu_detect(bn_cpu *c)
{
    memset(c, 0, sizeof *c);
    unsigned a, b, cx, d, max = __get_cpuid_max(0, NULL);
    if (max < 1)
        return;
    __cpuid(1, a, b, cx, d);
    int osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1;
    c->sse42 = (cx >> 20) & 1;
    /* Without OSXSAVE the OS does not manage extended state: no AVX at all. */
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;      /* XMM and YMM state */
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    int amx_ok = (xcr0 & 0x60000) == 0x60000;     /* XTILECFG, XTILEDATA */
    c->fma = ymm_ok && avx && ((cx >> 12) & 1);
    c->f16c = ymm_ok && avx && ((cx >> 29) & 1);
    if (max < 7)
        return;
    __cpuid_count(7, 0, a, b, cx, d);
    c->avx2 = ymm_ok && avx && ((b >> 5) & 1);
    c->avx512f = zmm_ok && ((b >> 16) & 1);
    c->avx512bw = c->avx512f && ((b >> 30) & 1);
    c->avx512vl = c->avx512f && ((b >> 31) & 1);
    c->avx512vbmi = c->avx512f && ((cx >> 1) & 1);
    c->avx512vnni = c->avx512f && ((cx >> 11) & 1);
    c->gfni = ymm_ok && ((cx >> 8) & 1);
    c->amx_tile = amx_ok && ((d >> 24) & 1);
    c->amx_int8 = c->amx_tile && ((d >> 25) & 1);
    if (c->amx_tile && !amx_permitted())
        c->amx_tile = c->amx_int8 = 0;
    unsigned sub = a;
    if (sub >= 1) {
        __cpuid_count(7, 1, a, b, cx, d);
        c->avxvnni = c->avx2 && ((a >> 4) & 1);
        c->avx512bf16 = c->avx512f && ((a >> 5) & 1);
    }
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

void bn_cpu_detect(bn_cpu *c)
{
    memset(c, 0, sizeof *c);
    unsigned long hw = getauxval(AT_HWCAP);
    c->neon = 1; /* Advanced SIMD is mandatory on AArch64 */
    /* HWCAP_ASIMDDP is bit 20; spelled out so old headers still build. */
    c->dotprod = (hw >> 20) & 1;
}

#elif defined(__aarch64__)
void bn_cpu_detect(bn_cpu *c)
{
    memset(c, 0, sizeof *c);
    c->neon = 1;
#if defined(__ARM_FEATURE_DOTPROD)
    c->dotprod = 1;
#endif
}

#else
void bn_cpu_detect(bn_cpu *c)
{
    memset(c, 0, sizeof *c);
}
#endif

char *bn_cpu_describe(const bn_cpu *c, char *buf, size_t n)
{
    static const struct {
        const char *name;
        size_t off;
    } f[] = {
        {"sse4.2", offsetof(bn_cpu, sse42)},         {"avx2", offsetof(bn_cpu, avx2)},
        {"fma", offsetof(bn_cpu, fma)},              {"f16c", offsetof(bn_cpu, f16c)},
        {"avx512f", offsetof(bn_cpu, avx512f)},      {"avx512bw", offsetof(bn_cpu, avx512bw)},
        {"avx512vl", offsetof(bn_cpu, avx512vl)},    {"avx512vnni", offsetof(bn_cpu, avx512vnni)},
        {"avx512vbmi", offsetof(bn_cpu, avx512vbmi)}, {"avx512bf16", offsetof(bn_cpu, avx512bf16)},
        {"avxvnni", offsetof(bn_cpu, avxvnni)},      {"gfni", offsetof(bn_cpu, gfni)},      {"amx-tile", offsetof(bn_cpu, amx_tile)},
        {"amx-int8", offsetof(bn_cpu, amx_int8)},    {"neon", offsetof(bn_cpu, neon)},
        {"dotprod", offsetof(bn_cpu, dotprod)},
    };
    size_t used = 0;
    if (n)
        buf[0] = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!*(const int *)((const char *)c + f[i].off))
            continue;
        int w = snprintf(buf + used, n > used ? n - used : 0, "%s%s", used ? " " : "", f[i].name);
        if (w > 0)
            used += (size_t)w;
    }
    if (!used && n)
        snprintf(buf, n, "none");
    return buf;
}
