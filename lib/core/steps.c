/* steps.c — telling a caller's progress callback about a long run: the
 * library draws nothing itself. */
#include "core.h"

int bn_steps_at(bn_steps *s, size_t i, const char *what, const char *name, bn_err *e)
{
    if (s->fn && s->fn(s->user, i, s->total, what)) {
        s->ended = 1; /* a cancelled run is not reported finished */
        return bn_fail_code(e, BN_E_CANCELLED, "%s: cancelled", name);
    }
    return 0;
}

void bn_steps_end(bn_steps *s)
{
    if (s->fn && !s->ended)
        s->fn(s->user, s->total, s->total, "");
    s->ended = 1;
}
