/* bn.h — the public interface of libbn, the library behind the bn-* programs.
 *
 * This is the one installed header. The library's floors (lib/core,
 * formats, lib/kernels, lib/tokenizer, lib/model; README.md §Layout) have
 * internal headers of their own; nothing here depends on them.
 *
 * Conventions: functions that can fail return 0 on success and -1 on failure,
 * with a one-line reason in a bn_err ("FILE: reason"); the program prefixes
 * its own name when it prints it. No global state.
 */
#ifndef BN_H
#define BN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BN_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef struct bn_err {
    char msg[1024];
} bn_err;

#endif
