/* bn-pack — lay the ternary weights of a bn model out for a kernel family
 * and CPU, streaming; the layout is recorded in the metadata. */
#include "cli.h"
#include "cpu.h"
#include "kernels.h"
#include "pack.h"
#include "progress.h"
#include "signals.h"

#include <string.h>

static const bn_prog prog = {
    .name = "bn-pack",
    .summary = "lay ternary weights out for a kernel family and CPU",
    .usage = "usage: bn-pack [options] [INPUT] [-o OUTPUT]\n"
    "       bn-pack --list\n"
    "\n"
    "Reads a bn model with ternary projections (a file, or standard input when INPUT\n"
    "is '-' or absent) and writes it with every projection in the chosen layout.\n"
    "Repacking is lossless: the ternary values and their scale are unchanged.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     write to FILE (atomically); default standard output\n"
    "  -l, --layout NAME     auto (default: t2), t2, i2s, b3 (1.6 bits: decode reads a fifth less),\n"
    "                        tl1, tl2 (lookup-table layouts; tl2: 1.67 bits)\n"
    "      --tile BMxBK      tl1/tl2 tile: BM rows (a multiple of 32), BK columns (tl1 a multiple\n"
    "                        of 4, tl2 of 6, at most 252); default 64x128 (tl1), 64x192 (tl2)\n"
    "  -t, --target NAME     auto (this CPU), generic, avx2, avx512, amx, neon\n"
    "      --list            print the layouts and the kernel sets this CPU can run\n"
    "      --report FILE     one line per repacked tensor to FILE ('-' = standard error)\n"
    "  -f, --force           write binary output even to a terminal\n"
    "  -q, --quiet           no progress display\n"
    "  -h, --help            show this help\n"
    "      --version         show the version\n",
};

static int list(void)
{
    bn_cpu cpu;
    char buf[256];
    bn_cpu_detect(&cpu);
    printf("cpu features: %s\n", bn_cpu_describe(&cpu, buf, sizeof buf));
    static const uint32_t layouts[] = {BN_T2, BN_I2S, BN_B3, BN_TL1, BN_TL2};
    const char *const *names = bn_kernels_names();
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        printf("layout %-4s kernels:", layouts[i] == BN_T2 ? "t2" : bn_packed_name(layouts[i]));
        for (size_t n = 1; names[n]; n++)
            if (bn_kernels_pick(names[n], layouts[i], &cpu))
                printf(" %s", names[n]);
        printf(" (auto: %s)\n", bn_kernels_pick("auto", layouts[i], &cpu)->name);
    }
    return BN_EXIT_OK;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    const char *src = NULL, *out = "-", *report = NULL, *layout = "auto", *target = "auto", *tile = NULL;
    int force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1]) {
            if (bn_cli_common(&prog, a))
                return BN_EXIT_OK;
            const char **val = !strcmp(a, "-o") || !strcmp(a, "--output")   ? &out
                               : !strcmp(a, "-l") || !strcmp(a, "--layout") ? &layout
                               : !strcmp(a, "-t") || !strcmp(a, "--target") ? &target
                               : !strcmp(a, "--report")                     ? &report
                               : !strcmp(a, "--tile")                       ? &tile
                                                                            : NULL;
            if (val) {
                if (i + 1 >= argc)
                    return bn_usage_error(&prog, "option '%s' needs a value", a);
                *val = argv[++i];
            } else if (!strcmp(a, "--list"))
                return list();
            else if (!strcmp(a, "-f") || !strcmp(a, "--force"))
                force = 1;
            else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
                quiet = 1;
            else
                return bn_usage_error(&prog, "unknown option '%s'", a);
            continue;
        }
        if (src)
            return bn_usage_error(&prog, "more than one INPUT given");
        src = a;
    }
    if (!src)
        src = "-";
    uint32_t type;
    const char *why;
    bn_err e;
    uint32_t bm, bk;
    if (bn_pack_choose(layout, target, &type, &why, &e) || bn_pack_tile(type, tile, &bm, &bk, &e))
        return bn_usage_error(&prog, "%s", e.msg);
    if (!force && bn_out_is_tty(out))
        return bn_usage_error(&prog, "refusing to write a binary model to a terminal (use -o FILE or -f)");
    FILE *rep = NULL;
    if (report) {
        rep = !strcmp(report, "-") ? stderr : fopen(report, "w");
        if (!rep) {
            bn_report(&prog, "%s: cannot open for writing", report);
            return BN_EXIT_DATA;
        }
    }
    bn_pack_opts o = {
        .step = "bn-pack " BN_VERSION,
        .layout = layout,
        .target = target,
        .tile = tile,
        .report = rep,
        .progress = !quiet && bn_progress_enabled() ? bn_cli_progress : NULL,
        .temps = {bn_cli_track_temp, NULL},
    };
    int rc = bn_pack(src, out, &o, &e);
    if (rep && rep != stderr)
        fclose(rep);
    if (rc) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
