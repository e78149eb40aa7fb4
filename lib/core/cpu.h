/* cpu.h — what the running CPU can execute, found at run time.
 *
 * A kernel set may only be chosen when every instruction it uses is both
 * implemented by the CPU (cpuid) and enabled by the operating system for
 * the registers it touches (xgetbv's XCR0 on x86: an OS that does not save
 * the upper halves of zmm registers makes AVX-512 unusable even when cpuid
 * lists it). The result is a plain value the caller keeps; nothing is
 * cached in a global. */
#ifndef BN_CPU_H
#define BN_CPU_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_cpu {
    /* x86-64 */
    int sse42, avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512vnni, avx512vbmi, avx512bf16;
    int gfni;
    int avxvnni;
    int amx_tile, amx_int8; /* implemented, enabled in XCR0, and granted to this process (Linux's arch_prctl) */
    /* AArch64 */
    int neon, dotprod;
} bn_cpu;

/* Fills c for the CPU this runs on (all zero on unknown architectures). */
void bn_cpu_detect(bn_cpu *c);
/* Memory this process may still take, in bytes (memavail.c): MemAvailable
 * from /proc/meminfo, or less when a memory cgroup of the process (v1 or
 * v2, its own or an ancestor's limit) leaves less; 0 when unknown. */
uint64_t bn_mem_available(void);

/* The feature names c has, space-separated, into buf (for -v output and
 * bn-pack --target auto). Returns buf. */
char *bn_cpu_describe(const bn_cpu *c, char *buf, size_t n);

#endif
