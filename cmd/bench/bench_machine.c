/* bench_machine.c — the machine's limits at each thread count of a run
 * (read bandwidth, peak int8 throughput, clock), and how they appear as
 * report rows, so every speed can be shown as a fraction of them. */
#include "bench.h"
#include "pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bn_bench_machine_measure(bn_bench_machine *mc, const int *threads, int n, size_t bw_bytes, bn_err *e)
{
    memset(mc, 0, sizeof *mc);
    bn_bench_cpu_name(mc->cpu, sizeof mc->cpu);
    mc->n_cpus = bn_cpu_count();
    mc->bw_bytes = bw_bytes;
    mc->bw_rounds = 1;
    /* 1 thread always, then each distinct count of the run. */
    int want[BN_BENCH_MAX_LIST + 1], nw = 0;
    want[nw++] = 1;
    for (int i = 0; i < n && nw < BN_BENCH_MAX_LIST + 1; i++) {
        int dup = 0;
        for (int k = 0; k < nw; k++)
            dup |= want[k] == threads[i];
        if (!dup)
            want[nw++] = threads[i];
    }
    for (int i = 0; i < nw; i++) {
        double best = 0;
        mc->threads[i] = want[i];
        bn_bench_bw bw;
        if (bn_bench_bandwidth(bw_bytes, want[i], &bw, e))
            return -1;
        mc->bw_gbps[i] = bw.best;
        mc->bw_worst[i] = bw.worst;
        snprintf(mc->bw_pattern[i], sizeof mc->bw_pattern[i], "%s", bw.pattern);
        /* Clock and one-thread peak alternate over three rounds and the
         * best of each is kept: on a shared machine a neighbour can slow
         * either, and MACs/cycle is only right if both saw a quiet core. */
        for (int round = 0; round < (i == 0 ? 3 : 1); round++) {
            double macs;
            if (i == 0) {
                double g = bn_bench_ghz();
                mc->ghz = g > mc->ghz ? g : mc->ghz;
            }
            if (bn_bench_peak_macs(want[i], &macs, mc->isa, sizeof mc->isa, e))
                return -1;
            best = macs > best ? macs : best;
        }
        mc->peak_gops[i] = 2 * best / 1e9;
        if (i == 0)
            mc->macs_per_cycle = mc->ghz > 0 ? best / (mc->ghz * 1e9) : NAN;
        mc->n = i + 1;
    }
    return 0;
}

int bn_bench_machine_reprobe(bn_bench_machine *mc, bn_bench_rows *rows, bn_err *e)
{
    for (int i = 0; i < mc->n; i++) {
        bn_bench_bw bw;
        if (bn_bench_bandwidth(mc->bw_bytes, mc->threads[i], &bw, e))
            return -1;
        if (bw.best > mc->bw_gbps[i]) {
            mc->bw_gbps[i] = bw.best;
            snprintf(mc->bw_pattern[i], sizeof mc->bw_pattern[i], "%s", bw.pattern);
        }
        if (bw.worst < mc->bw_worst[i])
            mc->bw_worst[i] = bw.worst;
    }
    mc->bw_rounds++;
    for (size_t k = 0; k < rows->n; k++) {
        bn_bench_row *r = &rows->v[k];
        if (r->kind == BN_ROW_MACHINE || !isfinite(r->bw_gbps))
            continue;
        r->bw_gbps = bn_bench_bw_at(mc, r->threads);
        bn_bench_bound(r);
    }
    return 0;
}

static int nearest(const bn_bench_machine *mc, int threads)
{
    int best = -1;
    for (int i = 0; i < mc->n; i++)
        if (best < 0 || abs(mc->threads[i] - threads) < abs(mc->threads[best] - threads))
            best = i;
    return best;
}

double bn_bench_bw_at(const bn_bench_machine *mc, int threads)
{
    int i = nearest(mc, threads);
    return i < 0 ? NAN : mc->bw_gbps[i];
}

double bn_bench_peak_at(const bn_bench_machine *mc, int threads)
{
    int i = nearest(mc, threads);
    return i < 0 ? NAN : mc->peak_gops[i];
}

int bn_bench_machine_rows(const bn_bench_machine *mc, bn_bench_rows *rows)
{
    for (int i = 0; i < mc->n; i++) {
        bn_bench_row *r = bn_bench_row_add(rows);
        if (!r)
            return -1;
        r->kind = BN_ROW_MACHINE;
        r->threads = mc->threads[i];
        snprintf(r->test, sizeof r->test, "read");
        snprintf(r->what, sizeof r->what, "%zu MiB buffer", mc->bw_bytes >> 20);
        snprintf(r->unit, sizeof r->unit, "GB/s");
        r->n = 1;
        r->samples[0] = mc->bw_gbps[i];
        bn_bench_stats(r);
        if (!(r = bn_bench_row_add(rows)))
            return -1;
        r->kind = BN_ROW_MACHINE;
        r->threads = mc->threads[i];
        snprintf(r->test, sizeof r->test, "int8");
        snprintf(r->what, sizeof r->what, "%s", mc->isa);
        snprintf(r->unit, sizeof r->unit, "GOPS");
        r->n = 1;
        r->samples[0] = mc->peak_gops[i];
        bn_bench_stats(r);
    }
    return 0;
}
