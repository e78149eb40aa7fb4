/* bench_sys.c — what every measurement needs: the clock, sample statistics,
 * the roofline arithmetic, and what Linux says about memory (MemAvailable,
 * peak RSS) and the CPU's name; labels cut at whole UTF-8 characters. */
#include "bench.h"
#include "layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bn_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bn_bench_row *bn_bench_row_add(bn_bench_rows *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        bn_bench_row *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return NULL;
        r->v = v;
        r->cap = cap;
    }
    bn_bench_row *row = &r->v[r->n++];
    memset(row, 0, sizeof *row);
    row->size = row->params = NAN;
    row->median = row->mean = row->stddev = row->min = row->max = NAN;
    row->bytes_per = row->ops_per = row->gbps = row->gops = NAN;
    row->bw_gbps = row->peak_gops = row->roofline = NAN;
    row->per_seq = row->kv_bytes = NAN;
    row->joules_per = row->load_s = row->ttft_s = row->peak_rss = NAN;
    return row;
}

void bn_bench_rows_free(bn_bench_rows *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bn_bench_stats(bn_bench_row *row)
{
    int n = row->n;
    if (n <= 0)
        return;
    double s[BN_BENCH_MAX_REPS];
    memcpy(s, row->samples, (size_t)n * sizeof s[0]);
    qsort(s, (size_t)n, sizeof s[0], cmp_double);
    row->min = s[0];
    row->max = s[n - 1];
    row->median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    row->mean = sum / n;
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (s[i] - row->mean) * (s[i] - row->mean);
    row->stddev = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

void bn_bench_roofline(bn_bench_row *row)
{
    /* Rates are per second of whatever bytes_per/ops_per count (tokens or
     * calls); the binding limit is the one the row comes closer to. */
    row->gbps = row->bytes_per * row->median / 1e9;
    row->gops = row->ops_per * row->median / 1e9;
    bn_bench_bound(row);
}

/* The largest CPU cache in bytes (sysfs: cpu0's cache of the highest
 * level), 0 when Linux does not say. */
static double llc_bytes(void)
{
    double best = 0;
    int best_level = 0;
    for (int i = 0; i < 16; i++) {
        char path[80], buf[32];
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        if (fscanf(f, "%d", &level) != 1)
            level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r")))
            continue;
        double v = 0;
        if (fgets(buf, sizeof buf, f)) {
            char *end;
            v = strtod(buf, &end);
            v *= *end == 'K' ? 1024 : *end == 'M' ? 1048576 : 1;
        }
        fclose(f);
        if (level > best_level || (level == best_level && v > best)) {
            best_level = level;
            best = v;
        }
    }
    return best;
}

void bn_bench_bound(bn_bench_row *row)
{
    double mem = row->gbps / row->bw_gbps * 100, cpu = row->gops / row->peak_gops * 100;
    /* A model whose bytes a token fit in the last-level cache is read from
     * the cache, not from memory: the read bandwidth is no limit for it
     * (the bundled tiny model decoded at "100%" of it) and is not shown. */
    if (row->kind == BN_ROW_E2E && row->bytes_per > 0 && row->bytes_per <= llc_bytes()) {
        mem = NAN;
        snprintf(row->bound, sizeof row->bound, "cache");
        row->roofline = NAN;
    }
    if (isfinite(mem) && (!isfinite(cpu) || mem >= cpu)) {
        row->roofline = mem;
        snprintf(row->bound, sizeof row->bound, "memory");
    } else if (isfinite(cpu)) {
        row->roofline = cpu;
        snprintf(row->bound, sizeof row->bound, "compute");
    }
}

int bn_bench_rss_reset(void)
{
    /* "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0). */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int rc = fputs("5", f) < 0;
    rc |= fclose(f) != 0;
    return rc ? -1 : 0;
}

double bn_bench_rss_peak(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return NAN;
    char line[256];
    unsigned long long kb = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "VmHWM: %llu kB", &kb) == 1;
    fclose(f);
    return found ? (double)kb * 1024 : NAN;
}

void bn_bench_cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* x86: "model name"; some ARM kernels: "Hardware" or "CPU part". */
        char *colon = strchr(line, ':');
        if (!colon || (strncmp(line, "model name", 10) && strncmp(line, "Hardware", 8)))
            continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\n")] = 0;
        if (*v) {
            snprintf(buf, n, "%s", v);
            break;
        }
    }
    fclose(f);
}

void bn_bench_opts_default(bn_bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 5;
    o->sample_s = 0.05;
    o->kv_f16 = 1; /* as bn-infer and llama-bench default */
    o->seed = 1234;
    o->bw_bytes = (size_t)1 << 30;
    o->rapl_root = "/sys/class/powercap";
    o->text_bytes = (size_t)4 << 20;
    o->prog = "bn-bench";
}
void bn_bench_layout_name(uint32_t layout, char *buf, size_t n)
{
    const char *nm = layout < 16 ? bn_type_name(layout) : bn_packed_name(layout);
    if (nm)
        snprintf(buf, n, "%s", nm);
    else
        snprintf(buf, n, "type%u", layout);
}

/* Bytes for people: GiB, MiB or KiB, whichever shows them (reports and
 * refusals alike). */
void bn_bench_fmt_size(double b, char *buf, size_t n)
{
    if (!isfinite(b))
        snprintf(buf, n, "-");
    else if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024));
    else
        snprintf(buf, n, "%.2f KiB", b / 1024.0);
}

size_t bn_bench_utf8_fit(const char *s, size_t max)
{
    size_t at = 0, len = strlen(s);
    while (at < len) {
        size_t k = bn_utf8_char((const uint8_t *)s + at, len - at);
        k = k ? k : 1; /* a stray byte alone */
        if (at + k > max)
            break;
        at += k;
    }
    return at;
}
