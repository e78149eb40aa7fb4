/* stopstr.h — stop strings in generated text: where the first one
 * starts, and how much of the text's end could still grow into one (held
 * back until it cannot). Shared by bn-infer's writer (generate.c) and the
 * public generator (generator.c). */
#ifndef BN_STOPSTR_H
#define BN_STOPSTR_H

#include <stddef.h>
#include <stdint.h>

/* The offset of the earliest complete stop string in text, or SIZE_MAX. */
size_t bn_stop_find(const uint8_t *text, size_t n, const char *const *stop, size_t n_stop);
/* Bytes at the end of text that are a proper prefix of some stop string. */
size_t bn_stop_hold(const uint8_t *text, size_t n, const char *const *stop, size_t n_stop);

#endif
