/* escape.c — bytes shown as C escapes, by one rule for every place that
 * quotes text on one line: generated text under --escape (printf '%b'
 * restores it), bn-convert --info's listing, error messages. Line breaks
 * are always escaped (\n, \r); the flags add backslashes doubled (so the
 * escapes cannot be confused with the text: a listing scripts parse, text
 * that must come back) and every other control byte (\t, \xNN: a name or
 * value read from a file may hold any). */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* c as its escape in out (NUL-terminated); 0 when it stays as it is. */
static size_t escape_byte(unsigned char c, unsigned flags, char out[5])
{
    if (c == '\n' || c == '\r' || (c == '\\' && (flags & BN_ESC_BACKSLASH)) || (c == '\t' && (flags & BN_ESC_CONTROLS)))
        return (size_t)snprintf(out, 5, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\');
    if ((c < 0x20 || c == 0x7f) && (flags & BN_ESC_CONTROLS))
        return (size_t)snprintf(out, 5, "\\x%02x", c);
    return 0;
}

int bn_fput_escaped(const uint8_t *b, size_t n, unsigned flags, FILE *f)
{
    char esc[5];
    for (size_t i = 0; i < n; i++)
        if (escape_byte(b[i], flags, esc) ? fputs(esc, f) == EOF : putc(b[i], f) == EOF)
            return EOF;
    return 0;
}

const char *bn_escape(const char *s, unsigned flags, char *out, size_t n)
{
    size_t o = 0;
    char esc[5];
    for (; *s; s++) {
        size_t k = escape_byte((unsigned char)*s, flags, esc);
        if (o + (k ? k : 1) >= n) /* whole escapes only: cut before one that does not fit */
            break;
        if (k)
            memcpy(out + o, esc, k);
        else
            out[o] = *s;
        o += k ? k : 1;
    }
    if (n)
        out[o] = 0;
    return out;
}
