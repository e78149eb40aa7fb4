/* bn-quant — ternarize the float projection weights of a bn model
 * (absmean, per tensor), streaming. */
#include "cli.h"
#include "progress.h"
#include "quant.h"
#include "signals.h"

#include <string.h>

static const bn_prog prog = {
    .name = "bn-quant",
    .summary = "ternarize float weights of a bn model (absmean)",
    .usage = "usage: bn-quant [options] [INPUT] [-o OUTPUT]\n"
    "\n"
    "Reads a bn model (a file, or standard input when INPUT is '-' or absent) and\n"
    "writes it with every float projection weight (attn_q/k/v/output, ffn_gate/up/down)\n"
    "ternarized: beta = mean|W| per tensor, T = clamp(round(W/beta), -1, 1).\n"
    "Ternary tensors and everything else pass through untouched, except the output\n"
    "head and the embedding table when --head / --embd ask for another type.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  write to FILE (atomically); default standard output\n"
    "      --head TYPE    store the output head (output.weight, or token_embd.weight\n"
    "                     when tied) as TYPE: f32, f16, bf16, i8 (int8, a scale per\n"
    "                     row), q6 (6.5 bits: 6-bit blocks of 32, f16 scales),\n"
    "                     q5 (5.5 bits: 5-bit blocks) or q4 (4.5 bits: 4-bit blocks)\n"
    "      --embd TYPE    store the embedding table as TYPE (untied models; when\n"
    "                     tied, --head decides)\n"
    "      --report FILE  write a per-tensor report (scale, share of zeros, relative\n"
    "                     error) to FILE ('-' = standard error)\n"
    "      --json         the report as JSON\n"
    "  -f, --force        write binary output even to a terminal\n"
    "  -q, --quiet        no progress display\n"
    "  -h, --help         show this help\n"
    "      --version      show the version\n",
};

int main(int argc, char **argv)
{
    bn_cli_init();
    const char *src = NULL, *out = "-", *report = NULL;
    int head_type = -1, embd_type = -1;
    int json = 0, force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1]) {
            if (bn_cli_common(&prog, a))
                return BN_EXIT_OK;
            if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--report") || !strcmp(a, "--head") ||
                !strcmp(a, "--embd")) {
                if (i + 1 >= argc)
                    return bn_usage_error(&prog, "option '%s' needs a value", a);
                if (!strcmp(a, "--head") || !strcmp(a, "--embd")) {
                    uint32_t ty;
                    const char *v = argv[++i];
                    if (bn_type_from_name(v, &ty) ||
                        !(ty == BN_F32 || ty == BN_F16 || ty == BN_BF16 || ty == BN_I8 || ty == BN_Q6 || ty == BN_Q5 ||
                          ty == BN_Q4))
                        return bn_usage_error(&prog, "%s: unknown type '%s' (f32, f16, bf16, i8, q6, q5, q4)", a, v);
                    *(!strcmp(a, "--head") ? &head_type : &embd_type) = (int)ty;
                } else if (!strcmp(a, "--report"))
                    report = argv[++i];
                else
                    out = argv[++i];
            } else if (!strcmp(a, "--json"))
                json = 1;
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
    bn_quant_opts o = {
        .step = "bn-quant " BN_VERSION,
        .report = rep,
        .report_json = json,
        .progress = !quiet && bn_progress_enabled() ? bn_cli_progress : NULL,
        .temps = {bn_cli_track_temp, NULL},
        .head_type = head_type,
        .embd_type = embd_type,
    };
    bn_err e;
    int rc = bn_quantize(src, out, &o, &e);
    if (rep && rep != stderr)
        fclose(rep);
    if (rc) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
