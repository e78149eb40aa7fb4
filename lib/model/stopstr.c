/* stopstr.c — finding stop strings in generated text (stopstr.h). */
#include "stopstr.h"

#include <string.h>

size_t bn_stop_find(const uint8_t *text, size_t n, const char *const *stop, size_t n_stop)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < n_stop; i++) {
        const uint8_t *p = memmem(text, n, stop[i], strlen(stop[i]));
        if (p && (size_t)(p - text) < best)
            best = (size_t)(p - text);
    }
    return best;
}

size_t bn_stop_hold(const uint8_t *text, size_t n, const char *const *stop, size_t n_stop)
{
    size_t hold = 0;
    for (size_t i = 0; i < n_stop; i++) {
        size_t len = strlen(stop[i]);
        for (size_t k = len - 1 < n ? len - 1 : n; k > hold; k--)
            if (!memcmp(text + n - k, stop[i], k)) {
                hold = k;
                break;
            }
    }
    return hold;
}
