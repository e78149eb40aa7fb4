/* fuzz_tokstream.c — the token stream reader (formats/bn-tokens.md), both
 * forms (the first byte decides). Any input gives events or one clean
 * error; a stream that reads cleanly is written back in both forms by the
 * writer and must read back as the same records and ids. */
#include "fuzz_util.h"
#include "tokstream.h"

#include <stdint.h>

#define MAX_EVENTS (1u << 18) /* ids + record ends kept for the comparison */
#define END_MARK UINT64_MAX

typedef struct evs {
    uint64_t *v;
    size_t n;
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
            if (ev->n == MAX_EVENTS)
                break; /* too long to compare: reading it was the test */
            ev->v[ev->n++] = k == BN_TOKR_ID ? id : END_MARK;
        }
    }
    if (rc && (!strncmp(e.msg, "fuzz", 4) ? 0 : strcmp(e.msg, "out of memory")) && ev->n < MAX_EVENTS) {
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
    evs a = {malloc(MAX_EVENTS * sizeof(uint64_t)), 0}, b = {malloc(MAX_EVENTS * sizeof(uint64_t)), 0};
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
