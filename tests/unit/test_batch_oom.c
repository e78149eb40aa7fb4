/* test_batch_oom.c — a bn_batcher_step that runs out of memory loses
 * nothing. The test is linked with --wrap for malloc, calloc and realloc
 * (Makefile), so one allocation of a step can be made to fail: the i-th
 * of the step, for i = 0, 1, 2, ... in turn. A failed step returns
 * BN_E_NOMEM with no events; the caller steps again, and in the end every
 * request has ended exactly once with the tokens and stop reason it gets
 * alone (greedy and seeded, prompt lookup, queueing, a request answered
 * with nothing). Before the fix a step could sample a request and then
 * fail to hand over its events. */
#include "api_test_util.h"

#include <stdint.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);

/* The allocation that fails: the fail_at-th from arming (0 = the first);
 * -1: none. Test state, not library state. */
static long fail_at = -1, made;

static int fails(void)
{
    return fail_at >= 0 && made++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fails() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fails() ? NULL : __real_realloc(p, n);
}

static check_ctx C;

#define NREQ 6

int main(void)
{
    bn_model *m = api_open_tiny(&C);
    if (!m)
        return check_done(&C, "test_batch_oom");
    uint32_t prompts[NREQ][24];
    for (unsigned k = 0; k < NREQ; k++)
        for (size_t i = 0; i < 24; i++) /* repeats, so that lookup finds guesses */
            prompts[k][i] = 10 + (uint32_t)((i % (5 + k)) * 37 + k * 101) % 3000;
    bn_sampler_params greedy, seeded;
    bn_sampler_params_init(&greedy);
    greedy.temp = 0;
    bn_sampler_params_init(&seeded);
    seeded.seed = 7;
    bn_batcher_request r[NREQ];
    api_answer want[NREQ], got[NREQ];
    memset(got, 0, sizeof got);
    for (unsigned k = 0; k < NREQ; k++) {
        bn_batcher_request_init(&r[k]);
        r[k].prompt = prompts[k];
        r[k].n_prompt = 24;
        r[k].sampler = k % 3 == 2 ? &seeded : &greedy;
        r[k].n_predict = k == 3 ? 0 : 20 + 3 * (int32_t)k;
        r[k].lookup = k % 2 ? 2 : 0;
        r[k].draft_max = 4;
        r[k].tag = k;
        api_spec spec = {.lookup = r[k].lookup, .draft_max = r[k].draft_max, .no_pacing = 1};
        api_alone(&C, m, &r[k], r[k].lookup ? &spec : NULL, &want[k], NULL);
    }

    bn_ctx *c = api_new_ctx(&C, m, 3, 0); /* fewer sequences than requests: a queue */
    bn_err e = {0};
    bn_batcher *b = c ? bn_batcher_new(c, NULL, &e) : NULL;
    CHECK(&C, b != NULL);
    for (unsigned k = 0; b && k < NREQ; k++)
        CHECK(&C, bn_batcher_submit(b, &r[k], &e) == BN_OK);

    int steps = 0, failed = 0;
    long next = 0; /* the allocation of the next step made to fail */
    while (b && bn_batcher_pending(b) && steps < 5000) {
        const bn_batcher_event *ev;
        size_t n = 99;
        made = 0;
        fail_at = next;
        int rc = bn_batcher_step(b, &ev, &n, &e);
        fail_at = -1;
        steps++;
        if (rc != BN_OK) {
            CHECK(&C, rc == BN_E_NOMEM && e.code == BN_E_NOMEM && n == 0);
            failed++;
            next++; /* the same step again, failing one allocation later */
            continue;
        }
        next = 0; /* a step that went through: fail the next one from its start */
        for (size_t i = 0; i < n; i++) {
            CHECK(&C, ev[i].tag < NREQ);
            if (ev[i].tag >= NREQ)
                continue;
            api_answer *a = &got[ev[i].tag];
            CHECK(&C, !a->ends);
            if (ev[i].token != BN_NO_TOKEN && a->n < sizeof a->ids / sizeof *a->ids)
                a->ids[a->n++] = ev[i].token;
            if (ev[i].stop) {
                a->stop = ev[i].stop;
                a->ends++;
            }
        }
    }
    CHECK(&C, b && !bn_batcher_pending(b));
    CHECK(&C, failed > 0); /* steps did fail on the way */
    for (unsigned k = 0; k < NREQ; k++) {
        int same = api_same(&got[k], &want[k]);
        CHECK(&C, same);
        if (!same)
            fprintf(stderr, "request %u: %zu tokens, %d ends, stop %d; alone %zu tokens, stop %d\n", k, got[k].n,
                    got[k].ends, got[k].stop, want[k].n, want[k].stop);
    }
    fprintf(stderr, "test_batch_oom: %d steps, %d of them failed\n", steps, failed);
    bn_batcher_free(b);
    bn_ctx_free(c);
    bn_model_close(m);
    return check_done(&C, "test_batch_oom");
}
