/* pool.h — a persistent thread pool: threads are created once and woken
 * for each parallel step, so decoding a token creates no threads. */
#ifndef BN_POOL_H
#define BN_POOL_H

#include "core.h"

typedef struct bn_pool bn_pool;

/* fn(arg, ith, nth) runs once for every ith in 0..nth-1. */
typedef void (*bn_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (the calling thread counts as one). */
bn_pool *bn_pool_new(int n_threads, bn_err *e);
void bn_pool_free(bn_pool *p);
int bn_pool_size(const bn_pool *p);
/* Runs fn on every thread (the caller is thread 0) and returns when all
 * are done. Not reentrant. */
void bn_pool_run(bn_pool *p, bn_pool_fn fn, void *arg);
/* The number of online CPUs (at least 1): the default for -t. */
int bn_cpu_count(void);

#endif
