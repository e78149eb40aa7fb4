/* bench_synth.c — synthetic models: a named shape with random ternary
 * weights, so any size can be benchmarked without a checkpoint (bitnet.cpp
 * measured its headline 100B figure the same way).
 *
 * The model goes through the real writer and loader: it is written with
 * bn_writer_* into a private directory on tmpfs (memory, like memfd), opened,
 * and unlinked at once, so only our descriptor keeps it; bn_model_load maps
 * it through /proc/self/fd/N. What is benchmarked is therefore exactly what
 * bn-infer runs on a real file, and the pages are shared between the file
 * and the mapping (the weights are in memory once). */
#include "bench.h"
#include "cpu.h"
#include "pack.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

uint64_t bn_bench_rand(uint64_t *s)
{
    /* splitmix64: fast, and every seed gives a full-period stream. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t bn_bench_layout_bytes(uint32_t layout, uint64_t rows, uint64_t k)
{
    uint64_t shape[2] = {rows, k};
    return layout == BN_T2 ? bn_type_size(BN_T2, 2, shape) : bn_packed_size(layout, rows, k);
}

/* t2 rows are padded to whole bytes with code 1 (weight 0). */
static void t2_fix_padding(uint8_t *t2, uint64_t rows, uint64_t k)
{
    if (k % 4 == 0)
        return;
    uint64_t rb = (k + 3) / 4;
    for (uint64_t r = 0; r < rows; r++) {
        uint8_t *last = t2 + r * rb + rb - 1;
        for (uint64_t c = k % 4; c < 4; c++)
            *last = (uint8_t)((*last & ~(3u << (2 * c))) | (1u << (2 * c)));
    }
}

static void random_t2(uint8_t *t2, uint64_t rows, uint64_t k, uint64_t *rng)
{
    /* Bytes of four valid t2 codes (0, 1, 2 = -1, 0, +1): 81 of them, so a
     * random byte picks one with each weight close to uniform on {-1,0,1}. */
    uint8_t valid[81];
    for (int i = 0; i < 81; i++)
        valid[i] = (uint8_t)((i % 3) | (i / 3 % 3) << 2 | (i / 9 % 3) << 4 | (i / 27 % 3) << 6);
    uint64_t body = rows * ((k + 3) / 4);
    for (uint64_t i = 0; i < body; i += 8) {
        uint64_t r = bn_bench_rand(rng);
        for (int b = 0; b < 8 && i + (uint64_t)b < body; b++)
            t2[i + (uint64_t)b] = valid[((r >> (8 * b)) & 0xff) % 81];
    }
    t2_fix_padding(t2, rows, k);
    /* beta, the tensor scale, after the rows. */
    float beta = 0.5f + (float)(bn_bench_rand(rng) >> 40) / (float)(1 << 24);
    memcpy(t2 + body, &beta, 4);
}

int bn_synth_weights(uint8_t *buf, uint64_t rows, uint64_t k, uint32_t layout, uint64_t *rng, bn_err *e)
{
    if (layout == BN_T2) {
        random_t2(buf, rows, k, rng);
        return 0;
    }
    uint64_t shape[2] = {rows, k};
    uint8_t *t2 = malloc(bn_type_size(BN_T2, 2, shape));
    if (!t2)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory for a %llux%llu matrix", (unsigned long long)rows, (unsigned long long)k);
    random_t2(t2, rows, k, rng);
    int rc = bn_pack_t2(layout, t2, rows, k, buf);
    free(t2);
    if (rc)
        return bn_fail(e, "cannot pack a %llux%llu matrix into layout %u", (unsigned long long)rows,
                       (unsigned long long)k, layout);
    return 0;
}

/* The directory in file order (the order tests/ref/gen_checkpoint.py uses). */
static size_t synth_dir(const bn_shape *s, uint32_t layout, bn_tensor *dir)
{
    uint64_t d = s->n_embd, hd = s->n_embd / s->n_head, q = s->n_head * hd, kv = s->n_head_kv * hd, ff = s->n_ff;
    size_t n = 0;
#define T(nm, ty, r, c)                                                                      \
    do {                                                                                     \
        if (dir) {                                                                           \
            bn_tensor *t = &dir[n];                                                          \
            memset(t, 0, sizeof *t);                                                         \
            snprintf(t->name, sizeof t->name, "%s", nm);                                     \
            t->type = ty;                                                                    \
            t->ndim = (c) ? 2 : 1;                                                           \
            t->shape[0] = r;                                                                 \
            t->shape[1] = c;                                                                 \
            t->size = t->ndim == 2 && ty != BN_F16 ? bn_bench_layout_bytes(ty, r, c)          \
                                                   : bn_type_size(ty, t->ndim, t->shape);     \
        }                                                                                    \
        n++;                                                                                 \
    } while (0)
    T("token_embd.weight", BN_F16, s->n_vocab, d);
    char nm[BN_NAME_MAX];
    for (uint32_t l = 0; l < s->n_layer; l++) {
#define L(suffix, ty, r, c)                                  \
    do {                                                     \
        snprintf(nm, sizeof nm, "blk.%u." suffix, l);        \
        T(nm, ty, r, c);                                     \
    } while (0)
        L("attn_norm.weight", BN_F32, d, 0);
        L("attn_q.weight", layout, q, d);
        L("attn_k.weight", layout, kv, d);
        L("attn_v.weight", layout, kv, d);
        L("attn_sub_norm.weight", BN_F32, q, 0);
        L("attn_output.weight", layout, d, q);
        L("ffn_norm.weight", BN_F32, d, 0);
        L("ffn_gate.weight", layout, ff, d);
        L("ffn_up.weight", layout, ff, d);
        L("ffn_sub_norm.weight", BN_F32, ff, 0);
        L("ffn_down.weight", layout, d, ff);
#undef L
    }
    T("output_norm.weight", BN_F32, d, 0);
#undef T
    return n;
}

uint64_t bn_synth_bytes(const bn_shape *s, uint32_t layout, uint64_t *max_tensor)
{
    size_t n = synth_dir(s, layout, NULL);
    bn_tensor *dir = calloc(n, sizeof *dir);
    if (!dir)
        return 0;
    synth_dir(s, layout, dir);
    uint64_t total = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (!dir[i].size) {
            free(dir);
            return 0;
        }
        total += (dir[i].size + BN_ALIGN - 1) / BN_ALIGN * BN_ALIGN;
        if (dir[i].size > mx)
            mx = dir[i].size;
    }
    free(dir);
    if (max_tensor)
        *max_tensor = mx;
    return total + ((uint64_t)n * 200 + 4096); /* head, directory, trailer */
}

static int fill(const bn_tensor *t, uint8_t *buf, uint64_t *rng, bn_err *e)
{
    if (t->type == BN_F16) {
        /* Embedding values ~ N(0, 0.02) shapes nothing we measure; a table
         * of 256 f16 values keeps generation fast. */
        uint16_t tab[256];
        for (int i = 0; i < 256; i++)
            tab[i] = bn_f32_to_f16(0.02f * (float)(i - 128) / 64.0f);
        uint16_t *h = (uint16_t *)buf;
        uint64_t n = t->size / 2;
        for (uint64_t i = 0; i < n; i += 8) {
            uint64_t r = bn_bench_rand(rng);
            for (int b = 0; b < 8 && i + (uint64_t)b < n; b++)
                h[i + (uint64_t)b] = tab[(r >> (8 * b)) & 0xff];
        }
    } else if (t->type == BN_F32) {
        float *f = (float *)buf;
        for (uint64_t i = 0; i < t->shape[0]; i++)
            f[i] = 1.0f + 0.1f * ((float)(bn_bench_rand(rng) >> 40) / (float)(1 << 24) - 0.5f);
    } else
        return bn_synth_weights(buf, t->shape[0], t->shape[1], t->type, rng, e);
    return 0;
}

/* tmpfs when it has room for the file and the copy the model makes of it
 * in memory (bn_model_to_memory: huge pages, as bn-infer runs a model that
 * fits); else TMPDIR or /tmp, whose page cache can give way to that copy.
 * The 100B shape's 17.8 GiB in tmpfs left it no room, so it ran from the
 * tmpfs mapping's 4 KiB pages: 70% of the bandwidth on one Zen 5 thread,
 * where the copy reads 89%. */
static const char *pick_dir(uint64_t bytes)
{
    struct statvfs v;
    uint64_t copy = bytes + ((uint64_t)1 << 30);
    if (!statvfs("/dev/shm", &v) && (uint64_t)v.f_bavail * v.f_frsize > bytes + (64u << 20) &&
        bn_mem_available() > bytes + copy)
        return "/dev/shm";
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static int write_model(const bn_shape *s, uint32_t layout, const char *path, uint64_t seed, bn_err *e)
{
    size_t n = synth_dir(s, layout, NULL);
    bn_tensor *dir = calloc(n, sizeof *dir);
    if (!dir)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    synth_dir(s, layout, dir);
    uint64_t mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = dir[i].size > mx ? dir[i].size : mx;
    bn_hparams hp;
    bn_shape_hparams(s, &hp);
    bn_meta meta = {0};
    char name[64];
    snprintf(name, sizeof name, "synthetic %s", s->name);
    uint8_t *buf = malloc(mx);
    bn_writer w;
    int rc = -1;
    if (!buf || bn_hparams_to_meta(&hp, &meta) || bn_meta_set_str(&meta, "general.name", name)) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
        goto done;
    }
    const bn_temp_hook temps = {bn_cli_track_temp, NULL}; /* removed on SIGINT too */
    if (bn_writer_begin(&w, path, &temps, &meta, dir, n, e))
        goto done;
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++) {
        if (fill(&dir[i], buf, &rng, e) || bn_writer_tensor(&w, buf, dir[i].size, e)) {
            bn_writer_abort(&w);
            goto done;
        }
    }
    rc = bn_writer_finish(&w, e);
done:
    free(buf);
    free(dir);
    bn_meta_free(&meta);
    return rc;
}

int bn_synth_new(bn_synth *sy, const bn_shape *s, uint32_t layout, uint64_t extra, uint64_t limit, uint64_t seed,
                 bn_err *e)
{
    memset(sy, 0, sizeof *sy);
    sy->fd = -1;
    sy->shape = s;
    sy->layout = layout;
    uint64_t mx = 0, bytes = bn_synth_bytes(s, layout, &mx);
    char ln[32];
    bn_bench_layout_name(layout, ln, sizeof ln);
    if (!bytes)
        return bn_fail(e, "%s: layout %s has no size rule in this build", s->name, ln);
    uint64_t avail = bn_mem_available(), lim = limit ? limit : avail;
    uint64_t need = bytes + mx + extra;
    if (need > lim) {
        char sz[5][32];
        const uint64_t v[5] = {need, bytes, mx, extra, lim};
        for (int i = 0; i < 5; i++) /* in units that show them, GiB or MiB or KiB */
            bn_bench_fmt_size((double)v[i], sz[i], sizeof sz[i]);
        return bn_fail(e,
                       "%s: needs %s of memory (a %s %s file, %s to write the largest tensor, %s for the "
                       "context), %s is %s",
                       s->name, sz[0], sz[1], ln, sz[2], sz[3], limit ? "--mem-limit" : "MemAvailable", sz[4]);
    }
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%.400s/bn-bench.XXXXXX", pick_dir(bytes));
    if (!mkdtemp(dir))
        return bn_fail(e, "%s: cannot create a temporary directory: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/%s.bn", dir, s->name);
    /* a signal removes both: the file (named once committed, until the
     * unlink below), then the directory */
    bn_cli_track_temp(NULL, dir, 1);
    bn_cli_track_temp(NULL, path, 1);
    double t0 = bn_bench_now();
    int rc = write_model(s, layout, path, seed, e);
    if (!rc) {
        sy->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (sy->fd < 0)
            rc = bn_fail(e, "%s: %s", path, strerror(errno));
        unlink(path);
    }
    rmdir(dir);
    bn_cli_track_temp(NULL, path, 0);
    bn_cli_track_temp(NULL, dir, 0);
    if (rc)
        return -1;
    sy->gen_s = bn_bench_now() - t0;
    sy->file_bytes = bytes;
    snprintf(sy->path, sizeof sy->path, "/proc/self/fd/%d", sy->fd);
    return 0;
}

void bn_synth_free(bn_synth *sy)
{
    if (sy->fd >= 0)
        close(sy->fd);
    sy->fd = -1;
}
