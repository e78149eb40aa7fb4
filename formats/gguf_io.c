/* gguf_io.c — the GGUF reader's bounds-checked buffered reader (gguf.h):
 * every count, size and offset is checked against the file size before
 * it is used to allocate or read. */
#include "gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bn_gguf_pread_full(int fd, void *dst, size_t n, uint64_t off)
{
    uint8_t *p = dst;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

uint64_t bn_gguf_left(const gg_rdr *r)
{
    return r->size - r->pos;
}

/* Reads n bytes (n <= what is left has been checked by the caller or here). */
int bn_gguf_get(gg_rdr *r, void *dst, uint64_t n, const char *what, bn_err *e)
{
    if (n > bn_gguf_left(r))
        return bn_fail(e, "%s: truncated while reading %s (offset %llu, %llu bytes needed, %llu left)", r->name,
                       what, (unsigned long long)r->pos, (unsigned long long)n, (unsigned long long)bn_gguf_left(r));
    uint8_t *d = dst;
    while (n) {
        if (r->pos < r->bstart || r->pos >= r->bstart + r->blen) {
            uint64_t want = r->size - r->pos;
            if (want > GG_RBUF)
                want = GG_RBUF;
            if (bn_gguf_pread_full(r->fd, r->buf, (size_t)want, r->pos))
                return bn_fail_code(e, BN_E_IO, "%s: read error: %s", r->name, strerror(errno));
            r->bstart = r->pos;
            r->blen = (size_t)want;
        }
        uint64_t in = r->bstart + r->blen - r->pos;
        uint64_t take = n < in ? n : in;
        if (d) {
            memcpy(d, r->buf + (r->pos - r->bstart), (size_t)take);
            d += take;
        }
        r->pos += take;
        n -= take;
    }
    return 0;
}

/* GGUF is little-endian, like every CPU bn runs on. */
int bn_gguf_u32(gg_rdr *r, uint32_t *v, const char *what, bn_err *e)
{
    return bn_gguf_get(r, v, 4, what, e);
}

int bn_gguf_u64(gg_rdr *r, uint64_t *v, const char *what, bn_err *e)
{
    return bn_gguf_get(r, v, 8, what, e);
}

/* A GGUF string: u64 length + bytes. Returns a malloc'd NUL-terminated copy. */
int bn_gguf_str(gg_rdr *r, char **out, uint64_t *len_out, uint64_t max, const char *what, bn_err *e)
{
    uint64_t n;
    if (bn_gguf_u64(r, &n, what, e))
        return -1;
    if (n > bn_gguf_left(r))
        return bn_fail(e, "%s: truncated or damaged: %s claims %llu bytes, past the end of the file", r->name, what,
                       (unsigned long long)n);
    if (n > max)
        return bn_fail(e, "%s: %s is %llu bytes long (at most %llu allowed)", r->name, what,
                       (unsigned long long)n, (unsigned long long)max);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", r->name);
    if (bn_gguf_get(r, s, n, what, e)) {
        free(s);
        return -1;
    }
    s[n] = 0;
    *out = s;
    if (len_out)
        *len_out = n;
    return 0;
}
