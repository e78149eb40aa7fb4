/* err.c — one-line error messages carried up to the program that prints them. */
#include "core.h"

#include <stdarg.h>

int bn_fail(bn_err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}
