/* fuzz_tokstream.c — the token stream reader (formats/bn-tokens.md), both
 * forms (the first byte decides). Any input gives events or one clean
 * error; a stream that reads cleanly is written back in both forms by the
 * writer and must read back as the same records and ids. */
#include "fuzz_util.h"
#include "tokstream.h"

#include <stdint.h>

#define END_MARK UINT64_MAX

/* Every event but the last record's end consumes at least one input byte,
 * so an n-byte stream has at most n + 1: cap = n + 2 always suffices. */
typedef struct evs {
    uint64_t *v;
    size_t n, cap;
} evs;

/* Reads every event of fd into ev; 0 when the whole stream read cleanly
 * (and fit), -1 on an error (which must then be one line naming it). */
static int read_all(int fd, evs *ev)
{
    bn_tokr r;
    bn_err e;
    int rc = -1;
    ev->n = 0;
    if (bn_tokr_open(&r, fd, "fuzz", &e) == 0) {
        bn_tokr_check(&r, 0x1234, 300, &e);
        for (;;) {
            uint32_t id;
            int k = bn_tokr_next(&r, &id, &e);
            if (k < 0)
                break;
            if (k == BN_TOKR_EOF) {
                rc = 0;
                break;
            }
            if (ev->n == ev->cap) {
                fprintf(stderr, "more events than input bytes\n");
                abort();
            }
            ev->v[ev->n++] = k == BN_TOKR_ID ? id : END_MARK;
        }
    }
    if (rc && strncmp(e.msg, "fuzz: ", 6) && strcmp(e.msg, "out of memory")) {
        fprintf(stderr, "error does not name the stream: %s\n", e.msg);
        abort();
    }
    bn_tokr_close(&r);
    return rc;
}

/* Writes the events with the writer (binary or text) into a memfd. */
static int write_all(const evs *ev, int binary)
{
    int fd = memfd_create("fuzz-out", 0);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(dup(fd), "wb");
    bn_tokw w;
    bn_err e;
    if (!f || bn_tokw_open(&w, f, binary, 0x1234, 300, &e))
        abort();
    for (size_t i = 0; i < ev->n; i++) {
        if (ev->v[i] == END_MARK) {
            if (bn_tokw_end(&w, &e))
                abort();
        } else {
            uint32_t id = (uint32_t)ev->v[i];
            if (bn_tokw_put(&w, &id, 1, &e))
                abort();
            if (i % 7 == 3 && bn_tokw_flush(&w, &e)) /* mid-record flushes must not change the records */
                abort();
        }
    }
    bn_tokw_close(&w);
    fclose(f);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char path[64];
    int fd = fuzz_memfile(data, n, path, sizeof path);
    if (fd < 0)
        return 0;
    lseek(fd, 0, SEEK_SET);
    /* the writer's text form may be longer than the input, never with more events */
    evs a = {malloc((n + 2) * sizeof(uint64_t)), 0, n + 2}, b = {malloc((n + 2) * sizeof(uint64_t)), 0, n + 2};
    if (!a.v || !b.v)
        abort();
    if (read_all(fd, &a) == 0) {
        for (int binary = 0; binary < 2; binary++) {
            int wfd = write_all(&a, binary);
            if (wfd < 0)
                break;
            if (read_all(wfd, &b) || b.n != a.n || (a.n && memcmp(a.v, b.v, a.n * sizeof *a.v))) {
                fprintf(stderr, "%s round trip changed the stream (%zu events, %zu back)\n",
                        binary ? "binary" : "text", a.n, b.n);
                abort();
            }
            close(wfd);
        }
    }
    free(a.v);
    free(b.v);
    close(fd);
    return 0;
}
