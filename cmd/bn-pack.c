/* bn-pack — lay the ternary weights of a bn model out for a kernel family
 * and CPU, streaming; the layout is recorded in the metadata. */
#include "cli.h"
#include "opt.h"
#include "cpu.h"
#include "kernels.h"
#include "pack.h"
#include "progress.h"
#include "signals.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const bn_prog prog = {
    .name = "bn-pack",
    .summary = "lay ternary weights out for a kernel family and CPU",
    .usage = "usage: bn-pack [options] [INPUT] [-o OUTPUT]\n"
             "       bn-pack --list [--json]\n"
             "\n"
             "Reads a bn model with ternary projections (a file, or standard input when INPUT\n"
             "is '-' or absent; an HF directory or a GGUF file is read as bn-convert reads it)\n"
             "and writes it with every projection in the chosen layout.\n"
             "Repacking is lossless: the ternary values and their scale are unchanged.\n",
    .operand = "INPUT",
    .max_operands = 1,
};

/* --list: the CPU's features and, per layout, the kernel sets it runs,
 * gathered once as {"cpu_features": [...], "layouts": [{"name",
 * "kernels": [...], "auto"}, ...]}; printed as that object (--json) or as
 * lines of text. */
static cJSON *list_json(char *features, size_t n)
{
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    bn_cpu_describe(&cpu, features, n);
    static const uint32_t layouts[] = {BN_T2, BN_I2S, BN_B3, BN_TL1, BN_TL2};
    const char *const *names = bn_kernels_names();
    cJSON *root = cJSON_CreateObject(), *feats = cJSON_AddArrayToObject(root, "cpu_features"),
          *lays = cJSON_AddArrayToObject(root, "layouts");
    if (!feats || !lays) {
        cJSON_Delete(root);
        return NULL;
    }
    /* bn_cpu_describe says "none" for no features: an empty array here */
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", features);
    if (strcmp(copy, "none"))
        for (char *f = strtok_r(copy, " ", &save); f; f = strtok_r(NULL, " ", &save))
            cJSON_AddItemToArray(feats, cJSON_CreateString(f));
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(lays, o);
        cJSON_AddStringToObject(o, "name", layouts[i] == BN_T2 ? "t2" : bn_packed_name(layouts[i]));
        cJSON *ks = cJSON_AddArrayToObject(o, "kernels");
        for (size_t k = 1; names[k]; k++)
            if (bn_kernels_pick(names[k], layouts[i], &cpu))
                cJSON_AddItemToArray(ks, cJSON_CreateString(names[k]));
        cJSON_AddStringToObject(o, "auto", bn_kernels_pick("auto", layouts[i], &cpu)->name);
    }
    return root;
}

static int list(const bn_prog *p, int json)
{
    char features[256];
    cJSON *root = list_json(features, sizeof features);
    char *txt = root && json ? cJSON_PrintUnformatted(root) : NULL;
    if (!root || (json && !txt)) {
        cJSON_Delete(root);
        bn_report(p, "out of memory");
        return BN_EXIT_DATA;
    }
    if (json) {
        printf("%s\n", txt);
        free(txt);
    } else {
        printf("cpu features: %s\n", features);
        const cJSON *o, *k;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(root, "layouts")) {
            printf("layout %-4s kernels:", cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring);
            cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(o, "kernels"))
                printf(" %s", k->valuestring);
            printf(" (auto: %s)\n", cJSON_GetObjectItemCaseSensitive(o, "auto")->valuestring);
        }
    }
    cJSON_Delete(root);
    return bn_stdout_done(p);
}

int main(int argc, char **argv)
{
    bn_cli_init();
    const char *out = "-", *report = NULL, *layout = "auto", *target = "auto", *tile = NULL;
    int force = 0, quiet = 0, list_only = 0, json = 0, threads = 0, n;
    bn_opt table[] = {
        OPT_STRING('o', "output", &out, "FILE", "write to FILE (atomically); default standard output"),
        OPT_STRING('l', "layout", &layout, "NAME",
                   "auto (default: t2), t2, i2s, b3 (1.6 bits: decode reads a fifth less),\n"
                   "tl1, tl2 (lookup-table layouts; tl2: 1.67 bits)"),
        OPT_STRING(0, "tile", &tile, "BMxBK",
                   "tl1/tl2 tile: BM rows (a multiple of 32), BK columns (tl1 a multiple\n"
                   "of 4, tl2 of 6, at most 252); default 64x128 (tl1), 64x192 (tl2)"),
        OPT_STRING('t', "target", &target, "NAME", "auto (this CPU), generic, avx2, avx512, amx, neon"),
        OPT_INT(0, "threads", &threads, "N", 1, 1024,
                "threads sharing each tensor's rows (b3, i2s; default: all\n"
                "cores); the output is the same bytes for any N"),
        OPT_FLAG(0, "list", &list_only, "print the layouts and the kernel sets this CPU can run"),
        OPT_FLAG(0, "json", &json, "with --list: one JSON object"),
        OPT_STRING(0, "report", &report, "FILE", "one line per repacked tensor to FILE ('-' = standard error)"),
        OPT_FLAG('f', "force", &force, "write binary output even to a terminal"),
        OPT_FLAG('q', "quiet", &quiet, "no progress display"),
        OPT_END,
    };
    int rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    if (list_only && (n || strcmp(out, "-") || report || strcmp(layout, "auto") || strcmp(target, "auto") || tile))
        return bn_usage_error(&prog, "--list prints what this CPU runs: no model, output, layout, target or tile");
    if (json && !list_only)
        return bn_usage_error(&prog, "--json is for --list");
    if (list_only)
        return list(&prog, json);
    const char *src = n ? argv[1] : "-";
    uint32_t type;
    const char *why;
    bn_err e;
    uint32_t bm, bk;
    if (bn_pack_choose(layout, target, &type, &why, &e) || bn_pack_tile(type, tile, &bm, &bk, &e))
        return bn_usage_error(&prog, "%s", e.msg);
    if (!force && bn_out_is_tty(out))
        return bn_usage_error(&prog, "refusing to write a binary model to a terminal (use -o FILE or -f)");
    if (bn_cli_same_file(report, out, STDOUT_FILENO) || bn_cli_same_file(report, src, STDIN_FILENO))
        return bn_usage_error(&prog, "--report '%s' names the model it would describe", report);
    bn_cli_report rep;
    bn_err re;
    if (bn_cli_report_open(&rep, report, &re)) {
        bn_report(&prog, "%s", re.msg);
        return BN_EXIT_DATA;
    }
    /* provenance.steps: this program and the options that decide bytes */
    char step[512];
    const void *const neutral[] = {&out, &report, &threads, &force, &quiet, NULL};
    bn_opt_record(table, neutral, 1, "bn-pack " BN_VERSION, step, sizeof step);
    bn_pack_opts o = {
        .step = step,
        .layout = layout,
        .target = target,
        .tile = tile,
        .report = rep.fp,
        .report_name = report,
        .progress = !quiet && bn_progress_enabled() ? bn_cli_progress : NULL,
        .temps = {bn_cli_track_temp, NULL},
        .n_threads = threads,
    };
    rc = bn_pack(src, out, &o, &e);
    if (bn_cli_report_close(&rep, !rc, &re)) {
        bn_report(&prog, "%s", re.msg);
        return BN_EXIT_DATA;
    }
    if (rc) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
