/* fuzz_util.h — libFuzzer harness helpers: the parsers take file names, so
 * each input is handed over as an in-memory file (memfd); the tokenizer
 * targets share an encode/decode round-trip check. */
#ifndef BN_FUZZ_UTIL_H
#define BN_FUZZ_UTIL_H

#include "formats.h"
#include "quant.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A fixture the harness needs is missing: stop loudly. Going on would fuzz
 * nothing (every input failing the same way) while looking like a run. */
static inline void fuzz_missing(const char *what)
{
    fprintf(stderr, "fuzz: %s: not found (run from the project root or set BN_FUZZ_HFDIR)\n", what);
    abort();
}

/* Writes data into a fresh memfd and returns its /proc path in path. */
static inline int fuzz_memfile(const unsigned char *data, size_t n, char *path, size_t cap)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Writes data to path (a regular file); 0 on success. */
static inline int fuzz_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) != 0 || w != n) ? -1 : 0;
}

/* The tokenizer's promise (tokenizer.h): decoding the ids of any bytes,
 * one id at a time through the streaming decoder, gives the bytes back.
 * Aborts (a finding) when it does not. must_encode: an encoding error is a
 * finding too (the fixed, known-good tokenizers); with a fuzzed tokenizer
 * an error (a regex too costly for PCRE2's limits) is a clean refusal. */
static inline void fuzz_roundtrip(bn_tokenizer *t, const uint8_t *text, size_t n, unsigned flags, int must_encode)
{
    bn_err e;
    bn_tokens ids = {0};
    if (bn_tokenizer_encode(t, text, n, flags, 0, &ids, &e)) {
        if (must_encode) {
            fprintf(stderr, "encode failed: %s\n", e.msg);
            abort();
        }
        bn_tokens_free(&ids);
        return;
    }
    bn_detok d;
    if (bn_detok_init(&d, t, 0, &e))
        abort();
    uint8_t *got = malloc(n + 1);
    size_t len = 0;
    if (!got)
        abort();
    for (size_t i = 0; i <= ids.n; i++) {
        const uint8_t *p;
        size_t k;
        if (i < ids.n) {
            if (bn_detok_feed(&d, ids.ids[i], &p, &k, &e)) {
                fprintf(stderr, "decode of id %u failed: %s\n", ids.ids[i], e.msg);
                abort();
            }
        } else {
            bn_detok_flush(&d, &p, &k);
        }
        if (k > n - len) {
            fprintf(stderr, "round trip: decoded more bytes than went in\n");
            abort();
        }
        memcpy(got + len, p, k);
        len += k;
    }
    if (len != n || (n && memcmp(got, text, n))) {
        fprintf(stderr, "round trip: %zu bytes in, %zu out, or different bytes\n", n, len);
        abort();
    }
    free(got);
    bn_detok_release(&d);
    bn_tokens_free(&ids);
}

/* Reads every tensor in order, stopping at the first error. */
static inline void fuzz_read_all(bn_source *s)
{
    bn_err e;
    for (size_t i = 0; i < s->n_tensors; i++) {
        void *buf = malloc(s->tensors[i].size ? s->tensors[i].size : 1);
        int rc = buf ? s->read(s, i, buf, &e) : -1;
        free(buf);
        if (rc)
            break;
    }
}

#endif
