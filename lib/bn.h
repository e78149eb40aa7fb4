/* bn.h — the public interface of libbn, the library behind the bn-* programs.
 *
 * This is the one installed header. The library's floors (lib/core,
 * formats, lib/kernels, lib/tokenizer, lib/model; README.md §Layout) have
 * internal headers of their own; nothing here depends on them.
 *
 * Conventions: functions that can fail return BN_OK (0) or a negative
 * bn_status, and put the same code and a one-line reason ("FILE: reason")
 * in the bn_err they are given (which may be NULL); constructors return NULL
 * instead. No global state; nothing is written to stdout or stderr and no
 * signal handler is installed: messages go to callbacks the caller gives.
 * libbn(3) is the manual.
 *
 * Only declarations marked BN_API are exported by the shared library
 * (tools/check-exports.sh checks it).
 */
#ifndef BN_H
#define BN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define BN_API __attribute__((visibility("default")))
#else
#define BN_API
#endif

/* ---------------------------------------------------------------- version */

/* The header's version; bn_version_number() and bn_version_string() give
 * the library's, which may be newer (the soname, libbn.so.0, changes only
 * with an incompatible ABI). */
#define BN_VERSION_MAJOR 0
#define BN_VERSION_MINOR 2
#define BN_VERSION_PATCH 0
#define BN_VERSION_NUMBER (BN_VERSION_MAJOR * 10000 + BN_VERSION_MINOR * 100 + BN_VERSION_PATCH)
#define BN_VERSION "0.2.0"

BN_API int bn_version_number(void);        /* BN_VERSION_NUMBER of the library */
BN_API const char *bn_version_string(void); /* "0.2.0" */

/* ------------------------------------------------------------------ errors */

/* What went wrong, as a code a program can act on (negative: a failure). */
typedef enum bn_status {
    BN_OK = 0,
    BN_ERROR = -1,          /* a failure without a more specific code */
    BN_E_IO = -2,           /* a file could not be opened, read or written */
    BN_E_FORMAT = -3,       /* the input is damaged or not what it claims to be */
    BN_E_UNSUPPORTED = -4,  /* valid, but this build, CPU or model cannot do it */
    BN_E_NOMEM = -5,        /* out of memory */
    BN_E_INVALID = -6,      /* an invalid argument: a NULL handle, an id outside
                               the vocabulary, a parameter out of range */
    BN_E_CONTEXT_FULL = -7, /* the tokens do not fit the context */
    BN_E_CANCELLED = -8     /* a callback returned nonzero */
} bn_status;

/* msg: one line naming the file or value at fault; code: its bn_status.
 * Both are set only when a call fails. */
typedef struct bn_err {
    char msg[1024];
    int code;
} bn_err;

/* A status's name and meaning ("BN_E_IO: input/output error"); never NULL. */
BN_API const char *bn_status_string(int code);

/* ------------------------------------------------------------- callbacks */

/* Progress of a long step: called before step `done` of `total` (what names
 * it: a tensor, a stage) and once at the end with done == total. A nonzero
 * return cancels the call, which then fails with BN_E_CANCELLED. */
typedef int (*bn_progress_fn)(void *user, size_t done, size_t total, const char *what);

enum { BN_LOG_ERROR = 0, BN_LOG_WARN = 1, BN_LOG_INFO = 2, BN_LOG_DEBUG = 3 };

/* One message (NUL-terminated, no trailing newline) at a BN_LOG_* level. */
typedef void (*bn_log_fn)(void *user, int level, const char *msg);

#endif
