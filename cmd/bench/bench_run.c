/* bench_run.c — one bn-bench run: measure the machine's limits when the
 * mode needs them, run the mode, print the report. */
#include "bench.h"
#include "pool.h"

#include <stdio.h>
#include <string.h>

int bn_bench_run(const bn_bench_opts *o, FILE *fp, bn_err *e)
{
    bn_bench_machine mc;
    bn_bench_rows rows = {0};
    bn_rapl rapl;
    int rc = -1;
    memset(&mc, 0, sizeof mc);
    if (o->mode == BN_MODE_TOKENIZE || o->mode == BN_MODE_CONVERT) {
        /* no limits to measure (n = 0), but the figures still say their CPU */
        bn_bench_cpu_name(mc.cpu, sizeof mc.cpu);
        mc.n_cpus = bn_cpu_count();
        rc = o->mode == BN_MODE_TOKENIZE ? bn_bench_tokenize(o, &rows, e) : bn_bench_convert(o, &rows, e);
        if (!rc)
            rc = bn_bench_report(fp, o->format, &mc, &rows);
        bn_bench_rows_free(&rows);
        return rc;
    }
    /* a misspelt -k is said before the probe's seconds, not after them */
    const bn_kernels *sets[BN_BENCH_MAX_SETS];
    int synthetic = o->n_synth || o->mode == BN_MODE_KERNELS; /* sets chosen by name and layout */
    if (o->n_kernels && (synthetic ? !bn_bench_select_kernels(o->kernels, o->n_kernels, sets, BN_BENCH_MAX_SETS, e)
                                   : bn_bench_check_kernel_names(o->kernels, o->n_kernels, e)))
        return -1;
    if (o->verbose)
        fprintf(stderr, "%s: measuring memory bandwidth and int8 peak\n", o->prog);
    if (bn_bench_machine_measure(&mc, o->threads, (int)o->n_threads, o->bw_bytes, e))
        return -1;
    bn_rapl_open(&rapl, o->rapl_root);
    snprintf(mc.energy, sizeof mc.energy, "%s", rapl.status);
    if (o->mode == BN_MODE_KERNELS)
        rc = bn_bench_kernels(o, &mc, &rows, e);
    else if (o->mode != BN_MODE_MACHINE)
        rc = bn_bench_e2e(o, &mc, &rapl, &rows, e);
    else
        rc = 0;
    /* The limit is probed again after the run; the better probe counts. */
    if (!rc) {
        if (o->verbose)
            fprintf(stderr, "%s: measuring memory bandwidth again\n", o->prog);
        rc = bn_bench_machine_reprobe(&mc, &rows, e);
    }
    if (!rc && o->mode == BN_MODE_MACHINE)
        rc = bn_bench_machine_rows(&mc, &rows) ? bn_fail_code(e, BN_E_NOMEM, "out of memory") : 0;
    /* What was measured before a failure is still reported. */
    if (!rc || rows.n)
        if (bn_bench_report(fp, o->format, &mc, &rows) && !rc)
            rc = bn_fail(e, "cannot write the report");
    bn_bench_rows_free(&rows);
    return rc;
}
