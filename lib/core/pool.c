/* pool.c — the persistent thread pool.
 *
 * A step is announced by bumping a generation counter; every worker runs
 * it and counts itself out of `pending`. Decoding one token is ~150 short
 * steps (5 per layer and the head) a few microseconds apart, so a worker
 * that slept on a condition variable between them paid a futex wake-up
 * (tens of microseconds on a loaded machine) per step. Now both sides
 * spin first: a worker polls the counter for a bounded while (pause
 * between polls, so the other hardware thread and the memory bus are
 * spared), and only then sleeps on the condition variable; the caller
 * likewise polls `pending` before it sleeps. Between tokens, or when the
 * pool is idle, everyone ends up asleep, so an idle program costs no CPU.
 *
 * Sleeping is race-free because a sleeper registers (sleepers / waiting)
 * and re-checks the counter under the mutex, and the other side takes the
 * mutex after publishing its change before it looks at the registration. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* Polls before sleeping: up to ~0.1-0.5 ms (a pause is 40-140 cycles),
 * longer than the gap between two steps of a token, so on an idle machine
 * a decoded token pays no futex wake-ups (2B4T b3+q6, 2 threads, bn-bench
 * tg64: 29.4 -> 43.3 t/s with 5000 polls against 256). On a machine
 * shared with other work a plain spin holds a CPU the other thread of the
 * step may be waiting for (same test beside a busy process: 22.2 -> 14.8),
 * so every SPIN_YIELD polls the spinner offers its CPU (sched_yield returns
 * at once when nothing else is runnable there). */
enum { SPIN = 5000, SPIN_YIELD = 128 };

static void spin_pause(int i)
{
    CPU_RELAX();
    if (i % SPIN_YIELD == SPIN_YIELD - 1)
        sched_yield();
}

struct bn_pool {
    int n;
    pthread_t *threads;
    _Atomic unsigned long gen; /* incremented for each step */
    _Atomic int pending;       /* workers still running the current step */
    _Atomic int quit;
    bn_pool_fn fn; /* written before gen is bumped (release), read after (acquire) */
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int sleepers; /* workers asleep on wake (under mu) */
    int waiting;  /* the caller asleep on done (under mu) */
};

typedef struct worker_arg {
    bn_pool *p;
    int ith;
} worker_arg;

/* Until gen differs from seen (or quit): spin, then sleep. */
static unsigned long wait_step(bn_pool *p, unsigned long seen)
{
    unsigned long g;
    for (int i = 0; i < SPIN; i++) {
        if ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) != seen || atomic_load(&p->quit))
            return g;
        spin_pause(i);
    }
    pthread_mutex_lock(&p->mu);
    p->sleepers++;
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->quit))
        pthread_cond_wait(&p->wake, &p->mu);
    p->sleepers--;
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *v)
{
    worker_arg wa = *(worker_arg *)v;
    free(v);
    bn_pool *p = wa.p;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_step(p, seen);
        if (atomic_load(&p->quit))
            break;
        p->fn(p->arg, wa.ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->waiting)
                pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

bn_pool *bn_pool_new(int n_threads, bn_err *e)
{
    if (n_threads < 1)
        n_threads = 1;
    bn_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)n_threads, sizeof *p->threads))) {
        free(p);
        bn_fail_code(e, BN_E_NOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = 1;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa)
            break;
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i], NULL, worker, wa)) {
            free(wa);
            break; /* run with the threads we got */
        }
        p->n++;
    }
    return p;
}

void bn_pool_free(bn_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->quit, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int bn_pool_size(const bn_pool *p)
{
    return p->n;
}

void bn_pool_run(bn_pool *p, bn_pool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    for (int i = 0; i < SPIN; i++) {
        if (!atomic_load_explicit(&p->pending, memory_order_acquire))
            return;
        spin_pause(i);
    }
    pthread_mutex_lock(&p->mu);
    p->waiting = 1;
    while (atomic_load_explicit(&p->pending, memory_order_acquire))
        pthread_cond_wait(&p->done, &p->mu);
    p->waiting = 0;
    pthread_mutex_unlock(&p->mu);
}

int bn_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}
