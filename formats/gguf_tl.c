/* gguf_tl.c — bitnet.cpp's TL1 and TL2 tensors (GGUF types 38, 39) read
 * back to ternary codes (gguf.h; layouts: formats/gguf-import.md §5).
 *
 * bitnet.cpp's converter permutes a tensor's weights in tiles whose sizes
 * (BM, BK and the inner bm) come from the kernel_config.ini its code
 * generator wrote; the GGUF does not record them. They come from that file
 * (bn-convert --tl-config) or from the presets below, the values
 * bitnet.cpp's setup_env.py gives the code generator for each model it
 * knows, chosen by the tensor's M × K. A wrong tile still decodes to ternary
 * values, so everything the layout fixes is checked: the tile divides the
 * shape, codes are in range, no sign bit marks a zero triple (TL2), the
 * bytes after the codes are the writer's zeros, β is positive and finite.
 * bn's own tl1/tl2 layouts (lib/kernels/tl_layout.c) share only the codes'
 * meaning, not the byte order, and sit above formats/, so nothing is shared. */
#include "gguf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* setup_env.py's codegen arguments per model (bitnet.cpp, 2025): M, K, BM,
 * BK, bm. The TL1 Llama3-8B rows differ from preset_kernels/'s .ini, which
 * the code generator overwrites before the model is converted. */
static const gg_tile tl1_presets[] = {
    {1536, 4096, 256, 128, 32},  {1536, 1536, 128, 64, 64},   {4096, 1536, 256, 128, 32},  /* large */
    {3200, 8640, 160, 64, 32},   {3200, 3200, 320, 128, 64},  {8640, 3200, 320, 64, 32},   /* 3B */
    {14336, 4096, 256, 128, 32}, {4096, 14336, 128, 64, 64},  {1024, 4096, 256, 128, 32},  /* Llama3-8B */
    {4096, 4096, 128, 64, 64},
};
static const gg_tile tl2_presets[] = {
    {1536, 4096, 256, 96, 32},  {1536, 1536, 128, 192, 32}, {4096, 1536, 256, 96, 32}, /* large */
    {3200, 8640, 160, 96, 32},  {3200, 3200, 320, 96, 32},  {8640, 3200, 320, 96, 32}, /* 3B */
    {14336, 4096, 256, 96, 32}, {4096, 14336, 128, 96, 32}, {1024, 4096, 256, 96, 32}, /* Llama3-8B */
    {4096, 4096, 128, 96, 32},
};

/* ------------------------------------------------------ kernel_config.ini */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* Section n's five values, each given once and positive. */
static int finish_section(const char *path, int line, const uint64_t *v, unsigned seen, gg_tl_config *c, bn_err *e)
{
    if (seen != 31)
        return bn_fail(e, "%s: line %d: the section before this line lacks one of m, k, bm, bk, bmm", path, line);
    gg_tile *p = realloc(c->tiles, (c->n + 1) * sizeof *p);
    if (!p)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    c->tiles = p;
    p[c->n++] = (gg_tile){v[0], v[1], (uint32_t)v[2], (uint32_t)v[3], (uint32_t)v[4]};
    return 0;
}

int bn_gguf_tl_config_load(gg_tl_config *c, const char *path, bn_err *e)
{
    static const char *const keys[] = {"m", "k", "bm", "bk", "bmm"};
    FILE *f = fopen(path, "r");
    if (!f)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    c->path = strdup(path);
    char buf[512];
    uint64_t v[5] = {0};
    unsigned seen = 0;
    int line = 0, in_section = 0, rc = c->path ? 0 : bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        char *s = trim(buf);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            if (in_section && finish_section(path, line, v, seen, c, e))
                rc = -1;
            in_section = 1;
            seen = 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = bn_fail(e, "%s: line %d: not 'key = value' or '[section]'", path, line);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1), *end;
        unsigned i = 0;
        while (i < 5 && strcasecmp(key, keys[i]))
            i++;
        if (!in_section || i == 5) {
            rc = bn_fail(e, "%s: line %d: unexpected key '%s' (a [Kernels_N] section holds m, k, bm, bk, bmm)",
                         path, line, key);
            break;
        }
        errno = 0;
        unsigned long long x = strtoull(val, &end, 10);
        if (errno || end == val || *end || x == 0 || x > (i < 2 ? 1ull << 32 : 4096)) {
            rc = bn_fail(e, "%s: line %d: %s = '%s' is not a positive size", path, line, keys[i], val);
            break;
        }
        v[i] = x;
        seen |= 1u << i;
    }
    if (!rc && ferror(f)) /* errno says why: a directory reads as EISDIR */
        rc = bn_fail_code(e, BN_E_IO, "%s: read error: %s", path, strerror(errno));
    if (!rc && in_section)
        rc = finish_section(path, line + 1, v, seen, c, e);
    if (!rc && !c->n)
        rc = bn_fail(e, "%s: no [Kernels_N] section (not a bitnet.cpp kernel_config.ini)", path);
    fclose(f);
    return rc;
}

void bn_gguf_tl_config_free(gg_tl_config *c)
{
    free(c->path);
    free(c->tiles);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ geometry */

/* TL2's bytes before β as ggml counts them (ggml_nbytes without its +32). */
static uint64_t tl2_formula(uint64_t m, uint64_t k)
{
    return (k - 256) * m / 3 * 5 / 8 + 256 * m / 2 * 4 / 8;
}

static uint64_t round32(uint64_t x)
{
    return (x + 31) / 32 * 32;
}

uint64_t bn_gguf_tl_beta_offset(uint32_t ggtype, uint64_t m, uint64_t k)
{
    return ggtype == GT_TL1 ? round32(m * k / 4) : round32(tl2_formula(m, k));
}

int bn_gguf_tl_encoding(const char *name, const char *tensor, uint32_t ggtype, uint64_t m, uint64_t k,
                        uint64_t *src_size, bn_err *e)
{
    if (k % 4 || m % 32)
        return bn_fail(e, "%s: tensor '%s' (%s): shape %llu x %llu is not tiled in whole groups", name, tensor,
                       ggtype == GT_TL1 ? "TL1" : "TL2", (unsigned long long)m, (unsigned long long)k);
    if (ggtype == GT_TL2 && k < 256)
        return bn_fail(e, "%s: tensor '%s' (TL2): row length %llu is below 256, which bitnet.cpp's size formula "
                       "does not cover", name, tensor, (unsigned long long)k);
    /* the codes, then β in a block of 32 bytes (bitnet.cpp's hidden
     * `<name>_scale` tensor, where its kernels read it) */
    *src_size = bn_gguf_tl_beta_offset(ggtype, m, k) + 32;
    return 0;
}

/* The tile of an m × k tensor: from the config when one was given, else
 * from the presets; NULL when there is none. */
static const gg_tile *find_tile(const gg_tl_config *c, uint32_t ggtype, uint64_t m, uint64_t k)
{
    const gg_tile *t = c->path ? c->tiles : ggtype == GT_TL1 ? tl1_presets : tl2_presets;
    size_t n = c->path ? c->n
                       : ggtype == GT_TL1 ? sizeof tl1_presets / sizeof *t : sizeof tl2_presets / sizeof *t;
    for (size_t i = 0; i < n; i++)
        if (t[i].m == m && t[i].k == k)
            return &t[i];
    return NULL;
}

/* Why a tile cannot have laid out an m × k tensor (bitnet.cpp's converter
 * would fail on it), or NULL. */
static const char *tile_misfit(uint32_t ggtype, const gg_tile *t, uint64_t m, uint64_t k)
{
    if (m % t->BM || t->BM % t->bm)
        return "BM does not divide M, or bm does not divide BM";
    if (ggtype == GT_TL1) {
        if (t->bm != 32 && t->bm != 64)
            return "TL1's bm is 32 or 64";
        if (k % t->BK || t->BK % (256 / t->bm))
            return "BK does not divide K, or 256/bm does not divide BK";
        return NULL;
    }
    if (t->bm != 32)
        return "TL2's bm is 32";
    if (t->BK % 24)
        return "TL2's BK is a multiple of 24";
    if (k % t->BK % 32)
        return "K mod BK is not a multiple of 32";
    uint64_t k3 = k - k % t->BK;
    if (m * k3 / 6 + m * k3 / 24 + m * (k - k3) / 4 > tl2_formula(m, k))
        return "its codes would not fit bitnet.cpp's size formula";
    return NULL;
}

int bn_gguf_tl_settle(const char *name, const gg_tl_config *c, const char *tensor, gg_tensor *gt, bn_err *e)
{
    const char *tn = gt->ggtype == GT_TL1 ? "TL1" : "TL2";
    uint64_t m = gt->n / gt->k, k = gt->k;
    const gg_tile *t = find_tile(c, gt->ggtype, m, k);
    if (!t && c->path)
        return bn_fail(e, "%s: tensor '%s' (%s, M x K = %llu x %llu): %s has no section with m = %llu, k = %llu",
                       name, tensor, tn, (unsigned long long)m, (unsigned long long)k, c->path,
                       (unsigned long long)m, (unsigned long long)k);
    if (!t)
        return bn_fail(e,
                       "%s: tensor '%s' (%s, M x K = %llu x %llu): no preset tile for this shape; give the "
                       "kernel_config.ini bitnet.cpp's code generator wrote (bn-convert --tl-config FILE)",
                       name, tensor, tn, (unsigned long long)m, (unsigned long long)k);
    const char *why = tile_misfit(gt->ggtype, t, m, k);
    if (why)
        return bn_fail(e, "%s: tensor '%s' (%s, M x K = %llu x %llu): tile BM %u, BK %u, bm %u does not fit: %s",
                       name, tensor, tn, (unsigned long long)m, (unsigned long long)k, t->BM, t->BK, t->bm, why);
    gt->tile = *t;
    return 0;
}

/* ------------------------------------------------------------ decoding */

typedef struct tl_out {
    uint8_t *t2;
    uint64_t rb; /* bytes per t2 row */
} tl_out;

static void put(const tl_out *o, uint64_t r, uint64_t c, unsigned code)
{
    uint8_t *b = &o->t2[r * o->rb + c / 4];
    unsigned sh = 2 * (unsigned)(c % 4);
    *b = (uint8_t)((*b & ~(3u << sh)) | code << sh);
}

/* A byte of two pair indices 3·w0 + w1 + 4 (columns c..c+3 of row r). */
static int put_pairs(const tl_out *o, uint64_t r, uint64_t c, unsigned byte)
{
    unsigned hi = byte >> 4, lo = byte & 15;
    if (hi > 8 || lo > 8)
        return -1;
    put(o, r, c, hi / 3);
    put(o, r, c + 1, hi % 3);
    put(o, r, c + 2, lo / 3);
    put(o, r, c + 3, lo % 3);
    return 0;
}

#define BAD_PAIR(r, c)                                                                                             \
    bn_fail(e, "%s: tensor '%s': pair index above 8 at row %llu, columns %llu-%llu (a tile that does not match "  \
            "the file's, or damaged)", name, tensor, (unsigned long long)(r), (unsigned long long)(c),              \
            (unsigned long long)(c) + 3)

/* TL1: for each BM × BK tile, bm-row strips, then groups of by = 256/bm
 * columns, 16-row slices, 4 columns: byte (row, 4 columns) in that order,
 * the first pair in the high nibble. */
static int tl1_decode(const char *name, const char *tensor, const gg_tile *t, const uint8_t *src, uint64_t m,
                      uint64_t k, const tl_out *o, bn_err *e)
{
    uint64_t by = 256 / t->bm, pos = 0;
    for (uint64_t ib = 0; ib < m / t->BM; ib++)
        for (uint64_t kb = 0; kb < k / t->BK; kb++)
            for (uint64_t rb = 0; rb < t->BM / t->bm; rb++)
                for (uint64_t jb = 0; jb < t->BK / by; jb++)
                    for (uint64_t r16 = 0; r16 < t->bm / 16; r16++)
                        for (uint64_t jq = 0; jq < by / 4; jq++)
                            for (uint64_t rl = 0; rl < 16; rl++) {
                                uint64_t r = ib * t->BM + rb * t->bm + r16 * 16 + rl;
                                uint64_t c = kb * t->BK + jb * by + jq * 4;
                                if (put_pairs(o, r, c, src[pos++]))
                                    return BAD_PAIR(r, c);
                            }
    return 0;
}

/* Row of byte q in a 32-row chunk: its groups of 8 are stored 0, 2, 1, 3. */
static uint64_t chunk_row(unsigned q)
{
    static const unsigned perm[4] = {0, 2, 1, 3};
    return perm[q / 8] * 8 + q % 8;
}

/* TL2: the triples of columns 0..K3−1 (K3 = K − K mod BK) as magnitudes
 * (tile BM × BK, 32-row strips, 6 columns, 32 rows: a byte holds two
 * triples) and then their signs (tile, strip, 24 columns: 16 u16 words, the
 * sign of 32·t + r in word (32·t + r) mod 16 at bit 15 − ⌊(32·t + r)/16⌋),
 * then columns K3..K−1 as TL1 pairs (tile BM × 32, 32-row strips, 4
 * columns, 32 rows). */
static int tl2_decode(const char *name, const char *tensor, const gg_tile *t, const uint8_t *src, uint64_t m,
                      uint64_t k, const tl_out *o, bn_err *e)
{
    uint64_t k3 = k - k % t->BK, nt = k3 / 3, pos = 0;
    int8_t *v = malloc(m * nt + 1);
    if (!v)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s'", name, tensor);
    for (uint64_t ib = 0; ib < m / t->BM; ib++)
        for (uint64_t kb = 0; kb < k3 / t->BK; kb++)
            for (uint64_t rb = 0; rb < t->BM / 32; rb++)
                for (uint64_t jb = 0; jb < t->BK / 6; jb++)
                    for (unsigned q = 0; q < 32; q++) {
                        uint64_t r = ib * t->BM + rb * 32 + chunk_row(q), tr = kb * (t->BK / 3) + jb * 2;
                        unsigned byte = src[pos++];
                        if (byte >> 4 > 13 || (byte & 15) > 13) {
                            free(v);
                            return bn_fail(e, "%s: tensor '%s': triple magnitude above 13 at row %llu, columns "
                                           "%llu-%llu (damaged)", name, tensor, (unsigned long long)r,
                                           (unsigned long long)tr * 3, (unsigned long long)tr * 3 + 5);
                        }
                        v[r * nt + tr] = (int8_t)(byte >> 4);
                        v[r * nt + tr + 1] = (int8_t)(byte & 15);
                    }
    for (uint64_t ib = 0; ib < m / t->BM; ib++)
        for (uint64_t kb = 0; kb < k3 / t->BK; kb++)
            for (uint64_t rb = 0; rb < t->BM / 32; rb++)
                for (uint64_t jb = 0; jb < t->BK / 24; jb++, pos += 32)
                    for (unsigned f = 0; f < 256; f++) {
                        unsigned word = src[pos + 2 * (f % 16)] | (unsigned)src[pos + 2 * (f % 16) + 1] << 8;
                        if (!(word >> (15 - f / 16) & 1))
                            continue;
                        uint64_t r = ib * t->BM + rb * 32 + f % 32, tr = kb * (t->BK / 3) + jb * 8 + f / 32;
                        if (!v[r * nt + tr]) {
                            free(v);
                            return bn_fail(e, "%s: tensor '%s': a sign bit marks the zero triple at row %llu, "
                                           "columns %llu-%llu (a tile that does not match the file's, or damaged)",
                                           name, tensor, (unsigned long long)r, (unsigned long long)tr * 3,
                                           (unsigned long long)tr * 3 + 2);
                        }
                        v[r * nt + tr] = (int8_t)-v[r * nt + tr];
                    }
    for (uint64_t r = 0; r < m; r++)
        for (uint64_t tr = 0; tr < nt; tr++) {
            unsigned u = (unsigned)(v[r * nt + tr] + 13);
            put(o, r, 3 * tr, u / 9);
            put(o, r, 3 * tr + 1, u / 3 % 3);
            put(o, r, 3 * tr + 2, u % 3);
        }
    free(v);
    for (uint64_t ib = 0; ib < m / t->BM; ib++)
        for (uint64_t kb = 0; kb < (k - k3) / 32; kb++)
            for (uint64_t rb = 0; rb < t->BM / 32; rb++)
                for (uint64_t jb = 0; jb < 8; jb++)
                    for (unsigned q = 0; q < 32; q++) {
                        uint64_t r = ib * t->BM + rb * 32 + chunk_row(q), c = k3 + kb * 32 + jb * 4;
                        if (put_pairs(o, r, c, src[pos++]))
                            return BAD_PAIR(r, c);
                    }
    return 0;
}

/* Bytes of codes a tensor has (the rest up to β is the writer's zeros). */
static uint64_t tl_code_bytes(uint32_t ggtype, const gg_tile *t, uint64_t m, uint64_t k)
{
    if (ggtype == GT_TL1)
        return m * k / 4;
    uint64_t k3 = k - k % t->BK;
    return m * k3 / 6 + m * k3 / 24 + m * (k - k3) / 4;
}

int bn_gguf_tl_beta(const char *name, const char *tensor, const gg_tensor *gt, const uint8_t *beta4, float *beta,
                    bn_err *e)
{
    memcpy(beta, beta4, 4);
    if (!isfinite(*beta) || !(*beta > 0))
        return bn_fail(e, "%s: tensor '%s' (%s) has an invalid scale %g (a positive finite value is required)", name,
                       tensor, gt->ggtype == GT_TL1 ? "TL1" : "TL2", (double)*beta);
    return 0;
}

int bn_gguf_tl_read(const char *name, const char *tensor, const gg_tensor *gt, const uint8_t *src, uint8_t *t2,
                    bn_err *e)
{
    uint64_t m = gt->n / gt->k, k = gt->k;
    const gg_tile *t = &gt->tile;
    uint64_t used = tl_code_bytes(gt->ggtype, t, m, k), end = bn_gguf_tl_beta_offset(gt->ggtype, m, k);
    for (uint64_t i = used; i < end; i++)
        if (src[i])
            return bn_fail(e, "%s: tensor '%s': nonzero byte %llu after its %llu bytes of codes (a tile that does "
                           "not match the file's, or damaged)", name, tensor, (unsigned long long)i,
                           (unsigned long long)used);
    tl_out o = {t2, k / 4};
    memset(t2, 0x55, (size_t)(m * o.rb));
    int rc = gt->ggtype == GT_TL1 ? tl1_decode(name, tensor, t, src, m, k, &o, e)
                                  : tl2_decode(name, tensor, t, src, m, k, &o, e);
    if (!rc)
        memcpy(t2 + m * o.rb, &gt->beta, 4);
    return rc;
}
