/* test_format.c — the bn model format: metadata round trips, writer and both
 * readers, and damage detection (every truncation, flipped bits); the
 * escapes that keep quoted text on one line. */
#include "formats.h"
#include "quant.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_types(check_ctx *c)
{
    CHECK(c, bn_f16_to_f32(0x3c00) == 1.0f);
    CHECK(c, bn_f16_to_f32(0xc000) == -2.0f);
    CHECK(c, bn_f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(c, bn_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(c, isinf(bn_f16_to_f32(0x7c00)));
    CHECK(c, bn_f32_to_f16(1.0f) == 0x3c00);
    CHECK(c, bn_f32_to_f16(65520.0f) == 0x7c00);      /* rounds up to inf */
    CHECK(c, bn_f32_to_f16(ldexpf(1, -25)) == 0x0000); /* half an ulp: to even (0) */
    CHECK(c, bn_f32_to_f16(ldexpf(3, -25)) == 0x0002); /* 1.5 ulp: to even (2) */
    /* every f16 survives a round trip */
    int all = 1;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN payloads need not survive */
        if (bn_f32_to_f16(bn_f16_to_f32((uint16_t)h)) != h)
            all = 0;
    }
    CHECK(c, all);
    /* rows (F16C where the CPU has it) give the scalar conversion's bits
     * for all 65536 values, signalling NaNs included, at every offset and
     * length (groups of eight and the rest) */
    {
        static uint16_t hs[0x10000 + 16];
        static float want[0x10000 + 16], got[0x10000 + 16];
        for (uint32_t h = 0; h < 0x10000 + 16; h++) {
            hs[h] = (uint16_t)(h * 40503u); /* every value once, shuffled so a group mixes kinds */
            want[h] = bn_f16_to_f32(hs[h]);
        }
        int same = 1;
        for (size_t off = 0; off < 3; off++) {
            bn_f16_row_to_f32(hs + off, got, 0x10000 + 13);
            same &= !memcmp(got, want + off, (0x10000 + 13) * sizeof(float));
        }
        CHECK(c, same);
    }
    CHECK(c, bn_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(c, bn_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(c, bn_f32_to_bf16(1.00390625f) == 0x3f80); /* tie to even */
    CHECK(c, bn_f32_to_bf16(1.01171875f) == 0x3f82); /* tie to even, upward */
    uint64_t sh[2] = {3, 5};
    CHECK(c, bn_type_size(BN_T2, 2, sh) == 3 * 2 + 4);
    CHECK(c, bn_type_size(BN_I8, 2, sh) == 15 + 12);
    CHECK(c, bn_type_size(BN_BF16, 2, sh) == 30);
    CHECK(c, bn_type_size(99, 2, sh) == 0);
    uint64_t huge[2] = {UINT64_MAX / 2, 4};
    CHECK(c, bn_type_size(BN_F32, 2, huge) == 0); /* overflow is refused */
}

static void test_meta(check_ctx *c)
{
    bn_meta m = {0};
    bn_meta_set_u32(&m, "a.u32", 7);
    bn_meta_set_i32(&m, "a.i32", -3);
    bn_meta_set_f32(&m, "a.f32", 0.5f);
    bn_meta_set_bool(&m, "a.bool", 1);
    bn_meta_set_str(&m, "a.str", "héllo");
    int32_t arr[3] = {1, -2, 3};
    bn_meta_set_arr(&m, "a.arr", BN_V_I32, arr, 3);
    char *sd = malloc(6);
    uint64_t *so = malloc(3 * sizeof *so);
    memcpy(sd, "ab\0cde", 6);
    so[0] = 0, so[1] = 3, so[2] = 6;
    bn_meta_set_strarr_owned(&m, "a.strs", sd, so, 2);
    bn_meta *sub = calloc(1, sizeof *sub);
    bn_meta_set_str(sub, "inner", "x");
    bn_meta_set_section(&m, "a.sect", sub);
    bn_meta_set_u32(&m, "a.u32", 8); /* replaces */
    uint8_t *enc;
    size_t len;
    bn_err e;
    CHECK(c, bn_meta_encode(&m, &enc, &len, &e) == 0);
    bn_meta d = {0};
    size_t used = 0;
    CHECK(c, bn_meta_decode(&d, enc, len, m.n, &used, "t", &e) == 0);
    CHECK(c, used == len);
    uint32_t u;
    int64_t i;
    double f;
    int b;
    CHECK(c, bn_meta_u32(&d, "a.u32", &u) == 0 && u == 8);
    CHECK(c, bn_meta_i64(&d, "a.i32", &i) == 0 && i == -3);
    CHECK(c, bn_meta_u32(&d, "a.i32", &u) != 0); /* negative is no u32 */
    CHECK(c, bn_meta_f64(&d, "a.f32", &f) == 0 && f == 0.5);
    CHECK(c, bn_meta_bool(&d, "a.bool", &b) == 0 && b == 1);
    CHECK(c, bn_meta_str(&d, "a.str") && !strcmp(bn_meta_str(&d, "a.str"), "héllo"));
    const bn_kv *kv = bn_meta_get(&d, "a.arr");
    CHECK(c, kv && kv->count == 3 && ((int32_t *)kv->data)[1] == -2);
    kv = bn_meta_get(&d, "a.strs");
    CHECK(c, kv && kv->count == 2 && kv->offsets[1] == 3 && !memcmp((char *)kv->data + 3, "cde", 3));
    const bn_meta *s = bn_meta_section(&d, "a.sect");
    CHECK(c, s && bn_meta_str(s, "inner") && !strcmp(bn_meta_str(s, "inner"), "x"));
    /* Every truncation of the encoding fails cleanly. */
    int all_fail = 1;
    for (size_t cut = 0; cut < len; cut++) {
        bn_meta t = {0};
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, enc, cut);
        if (bn_meta_decode(&t, copy, cut, m.n, NULL, "t", &e) == 0)
            all_fail = 0;
        bn_meta_free(&t);
        free(copy);
    }
    CHECK(c, all_fail);
    free(enc);
    bn_meta_free(&m);
    bn_meta_free(&d);
}

/* pieces: the tensors through bn_writer_piece, in uneven pieces (an
 * empty one too), instead of bn_writer_tensor. */
static int write_model_how(const char *path, int pieces, bn_err *e)
{
    bn_meta m = {0};
    bn_meta_set_str(&m, "general.architecture", "bitnet-b1.58");
    bn_meta_set_u32(&m, "model.vocab_size", 10);
    bn_tensor t[2] = {0};
    snprintf(t[0].name, sizeof t[0].name, "first");
    t[0].type = BN_F32;
    t[0].ndim = 2;
    t[0].shape[0] = 2, t[0].shape[1] = 3;
    t[0].size = 24;
    snprintf(t[1].name, sizeof t[1].name, "second");
    t[1].type = BN_T2;
    t[1].ndim = 2;
    t[1].shape[0] = 3, t[1].shape[1] = 5;
    t[1].size = bn_type_size(BN_T2, 2, t[1].shape);
    bn_writer w;
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint8_t tern[10] = {0x55, 0x55, 0x56, 0x55, 0x59, 0x55};
    float beta = 0.75f;
    memcpy(tern + 6, &beta, 4);
    int rc = bn_writer_begin(&w, path, NULL, &m, t, 2, e);
    bn_meta_free(&m);
    if (rc)
        return -1;
    bn_meta_set_str(&w.late, "late.key", "late value");
    if (pieces) {
        const uint8_t *ab = (const uint8_t *)a;
        if (bn_writer_piece(&w, ab, 5, e) || bn_writer_piece(&w, ab + 5, 0, e) || bn_writer_piece(&w, ab + 5, 19, e) ||
            bn_writer_piece(&w, tern, 3, e) || bn_writer_piece(&w, tern + 3, 7, e))
            return -1;
    } else if (bn_writer_tensor(&w, a, sizeof a, e) || bn_writer_tensor(&w, tern, sizeof tern, e))
        return -1;
    return bn_writer_finish(&w, e);
}

static int write_model(const char *path, bn_err *e)
{
    return write_model_how(path, 0, e);
}

/* A file written in pieces is the file written whole, byte for byte; a
 * piece past the tensor's size, or a whole tensor in the middle of one, is
 * refused. */
static void test_pieces(check_ctx *c, const char *dir)
{
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/whole.bn", dir);
    snprintf(p2, sizeof p2, "%s/pieces.bn", dir);
    bn_err e;
    CHECK(c, write_model_how(p1, 0, &e) == 0 && write_model_how(p2, 1, &e) == 0);
    bn_map m1, m2;
    CHECK(c, bn_map_file(p1, &m1, &e) == 0 && bn_map_file(p2, &m2, &e) == 0);
    CHECK(c, m1.size == m2.size && !memcmp(m1.data, m2.data, m1.size));
    bn_unmap(&m1);
    bn_unmap(&m2);
    bn_meta m = {0};
    bn_tensor t = {.type = BN_F32, .ndim = 1, .shape = {4}, .size = 16};
    snprintf(t.name, sizeof t.name, "only");
    float v[5] = {1, 2, 3, 4, 5};
    bn_writer w;
    CHECK(c, bn_writer_begin(&w, p2, NULL, &m, &t, 1, &e) == 0);
    CHECK(c, bn_writer_piece(&w, v, 8, &e) == 0);
    CHECK(c, bn_writer_piece(&w, v + 2, 12, &e) != 0 && strstr(e.msg, "longer than"));
    CHECK(c, bn_writer_tensor(&w, v, 16, &e) != 0 && strstr(e.msg, "in pieces"));
    bn_writer_abort(&w);
    unlink(p1);
    unlink(p2);
}

static void test_file(check_ctx *c, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/t.bn", dir);
    bn_err e;
    CHECK(c, write_model(path, &e) == 0);
    bn_source s;
    CHECK(c, bn_bnfile_open(&s, path, BN_OPEN_MAP, &e) == 0);
    CHECK(c, s.n_tensors == 2);
    CHECK(c, ((uintptr_t)s.tensors[0].data % 64) == 0 && ((uintptr_t)s.tensors[1].data % 64) == 0);
    CHECK(c, ((const float *)s.tensors[0].data)[5] == 6.0f);
    CHECK(c, bn_t2_get(s.tensors[1].data, 5, 1, 0) == 1 && bn_t2_get(s.tensors[1].data, 5, 2, 1) == 1);
    CHECK(c, bn_t2_get(s.tensors[1].data, 5, 0, 4) == 0 && bn_t2_get(s.tensors[1].data, 5, 2, 0) == 0);
    CHECK(c, bn_t2_scale(s.tensors[1].data, 3, 5) == 0.75f);
    CHECK(c, bn_meta_str(&s.meta, "late.key") && !strcmp(bn_meta_str(&s.meta, "late.key"), "late value"));
    CHECK(c, bn_bnfile_verify(&s, &e) == 0);
    bn_source_close(&s);
    /* streaming */
    CHECK(c, bn_bnfile_open(&s, path, BN_OPEN_STREAM, &e) == 0);
    uint8_t buf[64];
    CHECK(c, s.read(&s, 0, buf, &e) == 0 && ((float *)buf)[0] == 1.0f);
    CHECK(c, s.read(&s, 1, buf, &e) == 0);
    CHECK(c, bn_bnfile_finish(&s, &e) == 0);
    CHECK(c, bn_meta_str(&s.meta, "late.key") != NULL);
    bn_source_close(&s);

    /* Damage: every truncation and every flipped bit is caught by open
     * (mapped) or by verification, never a crash. */
    bn_map m;
    CHECK(c, bn_map_file(path, &m, &e) == 0);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.bn", dir);
    int trunc_ok = 1, flip_ok = 1;
    for (size_t cut = 0; cut < m.size; cut += 1) {
        FILE *f = fopen(bad, "wb");
        fwrite(m.data, 1, cut, f);
        fclose(f);
        if (bn_bnfile_open(&s, bad, BN_OPEN_MAP, &e) == 0) {
            trunc_ok = 0;
            bn_source_close(&s);
        }
    }
    uint8_t *copy = malloc(m.size);
    for (size_t byte = 0; byte < m.size; byte++) {
        memcpy(copy, m.data, m.size);
        copy[byte] ^= 0x10;
        FILE *f = fopen(bad, "wb");
        fwrite(copy, 1, m.size, f);
        fclose(f);
        int caught = 0;
        if (bn_bnfile_open(&s, bad, BN_OPEN_MAP, &e) != 0)
            caught = 1;
        else {
            caught = bn_bnfile_verify(&s, &e) != 0;
            bn_source_close(&s);
        }
        /* padding bytes are not covered by any checksum */
        int in_padding = 0;
        if (!caught) {
            bn_source ok;
            bn_bnfile_open(&ok, path, BN_OPEN_MAP, &e);
            const uint8_t *d0 = ok.tensors[0].data;
            size_t off0 = (size_t)(d0 - m.data);
            in_padding = (byte >= off0 + 24 && byte < off0 + 64) || (byte >= off0 + 64 + 10 && byte < off0 + 128) ||
                         byte < off0;
            bn_source_close(&ok);
        }
        if (!caught && !in_padding) {
            flip_ok = 0;
            fprintf(stderr, "flip at byte %zu undetected\n", byte);
        }
    }
    free(copy);
    CHECK(c, trunc_ok);
    CHECK(c, flip_ok);
    bn_unmap(&m);
    unlink(bad);
    unlink(path);
}

/* bn_escape and bn_fput_escaped: one rule, the flags adding to it, and a
 * buffer too small cut before a whole escape, never inside one. */
static void test_escape(check_ctx *c)
{
    const char *s = "a\\b\n\r\t\x01\x7f\xc3\xa9";
    char out[64];
    CHECK(c, !strcmp(bn_escape(s, 0, out, sizeof out), "a\\b\\n\\r\t\x01\x7f\xc3\xa9"));
    CHECK(c, !strcmp(bn_escape(s, BN_ESC_BACKSLASH, out, sizeof out), "a\\\\b\\n\\r\t\x01\x7f\xc3\xa9"));
    CHECK(c, !strcmp(bn_escape(s, BN_ESC_CONTROLS, out, sizeof out), "a\\b\\n\\r\\t\\x01\\x7f\xc3\xa9"));
    CHECK(c, !strcmp(bn_escape(s, BN_ESC_BACKSLASH | BN_ESC_CONTROLS, out, sizeof out),
                     "a\\\\b\\n\\r\\t\\x01\\x7f\xc3\xa9"));
    CHECK(c, !strcmp(bn_escape("ab\x01", BN_ESC_CONTROLS, out, 6), "ab")); /* "\x01" needs 4 + NUL */
    CHECK(c, !strcmp(bn_escape("ab\x01", BN_ESC_CONTROLS, out, 7), "ab\\x01"));
    CHECK(c, !strcmp(bn_escape("abc", 0, out, 3), "ab"));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(c, f && !bn_fput_escaped((const uint8_t *)"x\0\\\n\t", 5, BN_ESC_BACKSLASH, f));
    if (f)
        fclose(f);
    CHECK(c, buf && len == 7 && !memcmp(buf, "x\0\\\\\\n\t", 7)); /* the NUL and tab as they are */
    free(buf);
}

int main(void)
{
    check_ctx c = {0};
    char dir[] = "/tmp/bn-test-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    test_types(&c);
    test_meta(&c);
    test_pieces(&c, dir);
    test_file(&c, dir);
    test_escape(&c);
    rmdir(dir);
    return check_done(&c, "test_format");
}
