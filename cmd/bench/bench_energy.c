/* bench_energy.c — energy from the Linux powercap RAPL counters
 * (ROOT/intel-rapl:N/energy_uj, one per CPU package; AMD's counters appear
 * under the same name). Only package-level domains are summed: their
 * subzones (core, uncore, dram: intel-rapl:N:M) are parts of the package.
 *
 * When no counter is readable (no powercap, a VM, or energy_uj being
 * root-only since CVE-2020-8694) the status says why, and callers print
 * "unavailable": energy is measured or not reported, never estimated from
 * CPU load the way bitnet.cpp's test_power.sh does. */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_u64(const char *path, unsigned long long *v)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%llu", v) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

int bn_rapl_open(bn_rapl *r, const char *root)
{
    memset(r, 0, sizeof *r);
    DIR *d = opendir(root);
    if (!d) {
        snprintf(r->status, sizeof r->status, "unavailable: %.100s: %s", root, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) && r->n < BN_RAPL_MAX) {
        unsigned pkg;
        char rest;
        /* intel-rapl:N exactly; intel-rapl:N:M are subzones. */
        if (sscanf(de->d_name, "intel-rapl:%u%c", &pkg, &rest) != 1)
            continue;
        snprintf(r->path[r->n++], sizeof r->path[0], "%.160s/%.64s", root, de->d_name);
    }
    closedir(d);
    if (!r->n) {
        snprintf(r->status, sizeof r->status, "unavailable: no intel-rapl:N package domain under %s", root);
        return -1;
    }
    qsort(r->path, (size_t)r->n, sizeof r->path[0], cmp_str);
    for (int i = 0; i < r->n; i++) {
        char p[300];
        unsigned long long v;
        snprintf(p, sizeof p, "%s/max_energy_range_uj", r->path[i]);
        r->range_j[i] = read_u64(p, &v) ? 0 : (double)v * 1e-6;
        snprintf(p, sizeof p, "%s/energy_uj", r->path[i]);
        if (read_u64(p, &v)) {
            snprintf(r->status, sizeof r->status, "unavailable: %.90s: %s", p,
                     errno == EACCES ? "permission denied (root-only)" : strerror(errno));
            r->n = 0;
            return -1;
        }
    }
    snprintf(r->status, sizeof r->status, "rapl: %d package domain%s under %.100s", r->n, r->n == 1 ? "" : "s",
             root);
    return 0;
}

int bn_rapl_sample(const bn_rapl *r, double *per_domain)
{
    for (int i = 0; i < r->n; i++) {
        char p[300];
        unsigned long long v;
        snprintf(p, sizeof p, "%s/energy_uj", r->path[i]);
        if (read_u64(p, &v))
            return -1;
        per_domain[i] = (double)v * 1e-6;
    }
    return r->n ? 0 : -1;
}

double bn_rapl_delta(const bn_rapl *r, const double *before, const double *after)
{
    double j = 0;
    for (int i = 0; i < r->n; i++) {
        double d = after[i] - before[i];
        if (d < 0) /* the counter wrapped (at most once between samples) */
            d += r->range_j[i];
        j += d;
    }
    return j;
}
