/* check.h — a tiny assertion harness for the C unit tests. Each test file
 * counts its checks and ends with the line "N passed, N failed". */
#ifndef BN_CHECK_H
#define BN_CHECK_H

#include <stdio.h>

typedef struct check_ctx {
    int passed, failed;
} check_ctx;

#define CHECK(ctx, cond)                                                         \
    do {                                                                         \
        if (cond)                                                                \
            (ctx)->passed++;                                                     \
        else {                                                                   \
            (ctx)->failed++;                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static inline int check_done(const check_ctx *c, const char *name)
{
    printf("%s: %d passed, %d failed\n", name, c->passed, c->failed);
    return c->failed ? 1 : 0;
}

#endif
