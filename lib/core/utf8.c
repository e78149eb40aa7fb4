/* utf8.c — the UTF-8 rule shared by the tokenizer's splitting and by
 * every program that writes text into JSON (which must be valid UTF-8
 * whatever bytes a model, a file name or a model file's metadata holds). */
#include "core.h"

#include <stdlib.h>
#include <string.h>

size_t bn_utf8_char(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (p[2] & 0xC0) != 0x80)
            return 0;
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (n < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
        return 0;
    uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return p[1] >= lo && p[1] <= hi ? 4 : 0;
}

int bn_utf8_valid(const char *text, size_t n)
{
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = bn_utf8_char(s + i, n - i)))
            return 0;
    return 1;
}

char *bn_utf8_clean(const char *text, size_t n)
{
    const uint8_t *s = (const uint8_t *)text;
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = s[i] ? bn_utf8_char(s + i, n - i) : 0;
        if (k) {
            memcpy(o, s + i, k);
            o += k;
            i += k;
        } else { /* U+FFFD for a byte that starts no character (NUL too: strings end there) */
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    *o = 0;
    return out;
}
