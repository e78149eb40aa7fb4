/* err.c — one-line error messages with a status code, carried up to the
 * program that prints them; the library's version. */
#include "core.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

int bn_fail(bn_err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = BN_ERROR;
    }
    return -1;
}

int bn_fail_code(bn_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int bn_fail_write(bn_err *e, const char *name)
{
    int err = errno;
    return err ? bn_fail_code(e, BN_E_IO, "%s: write error: %s", name, strerror(err))
               : bn_fail_code(e, BN_E_IO, "%s: write error", name);
}

const char *bn_status_string(int code)
{
    switch (code) {
    case BN_OK:
        return "BN_OK: success";
    case BN_ERROR:
        return "BN_ERROR: failure";
    case BN_E_IO:
        return "BN_E_IO: input/output error";
    case BN_E_FORMAT:
        return "BN_E_FORMAT: damaged or unrecognised input";
    case BN_E_UNSUPPORTED:
        return "BN_E_UNSUPPORTED: not supported by this build, CPU or model";
    case BN_E_NOMEM:
        return "BN_E_NOMEM: out of memory";
    case BN_E_INVALID:
        return "BN_E_INVALID: invalid argument";
    case BN_E_CONTEXT_FULL:
        return "BN_E_CONTEXT_FULL: the context is full";
    case BN_E_CANCELLED:
        return "BN_E_CANCELLED: cancelled by a callback";
    case BN_E_KV_FULL:
        return "BN_E_KV_FULL: the KV cache budget is used up";
    case BN_E_KV_RANGE:
        return "BN_E_KV_RANGE: a K or V value is beyond the f16 KV cache's range";
    /* why generation ended: bn_generate's successes, a batch's ends */
    case BN_STOP_TOKEN:
        return "BN_STOP_TOKEN: stopped at a stop token";
    case BN_STOP_STRING:
        return "BN_STOP_STRING: stopped at a stop string";
    case BN_STOP_LENGTH:
        return "BN_STOP_LENGTH: n_predict tokens generated";
    case BN_STOP_CONTEXT:
        return "BN_STOP_CONTEXT: the context is full";
    case BN_STOP_ERROR:
        return "BN_STOP_ERROR: the request could not be answered";
    }
    return "unknown status";
}

int bn_version_number(void)
{
    return BN_VERSION_NUMBER;
}

const char *bn_version_string(void)
{
    return BN_VERSION;
}
