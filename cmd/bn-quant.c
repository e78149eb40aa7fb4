/* bn-quant — ternarize the float projection weights of a bn model
 * (absmean, per tensor), streaming. */
#include "cli.h"
#include "opt.h"
#include "progress.h"
#include "quant.h"
#include "signals.h"

#include <string.h>
#include <unistd.h>

static const bn_prog prog = {
    .name = "bn-quant",
    .summary = "ternarize float weights of a bn model (absmean)",
    .usage = "usage: bn-quant [options] [INPUT] [-o OUTPUT]\n"
             "\n"
             "Reads a bn model (a file, or standard input when INPUT is '-' or absent; an HF\n"
             "directory or a GGUF file is read as bn-convert reads it) and\n"
             "writes it with every float projection weight (attn_q/k/v/output, ffn_gate/up/down)\n"
             "ternarized: beta = mean|W| per tensor, T = clamp(round(W * s), -1, 1) with s = 1/beta\n"
             "in f32 (a file without model.ternary_rule: round(W/beta); see bn-quant(1)).\n"
             "Ternary tensors and everything else pass through untouched, except the output\n"
             "head and the embedding table when --head / --embd ask for another type.\n",
    .operand = "INPUT",
    .max_operands = 1,
};

/* The types --head and --embd take. */
static const char *const head_names[] = {"f32", "f16", "bf16", "i8", "q6", "q5", "q4", NULL};
static const int head_types[] = {BN_F32, BN_F16, BN_BF16, BN_I8, BN_Q6, BN_Q5, BN_Q4};

int main(int argc, char **argv)
{
    bn_cli_init();
    const char *out = "-", *report = NULL;
    int head_type = -1, embd_type = -1;
    int json = 0, force = 0, quiet = 0, threads = 0, n;
    bn_opt table[] = {
        OPT_STRING('o', "output", &out, "FILE", "write to FILE (atomically); default standard output"),
        OPT_ENUM(0, "head", &head_type, "TYPE", head_names, head_types,
                 "store the output head (output.weight, or token_embd.weight\n"
                 "when tied) as TYPE: f32, f16, bf16, i8 (int8, a scale per\n"
                 "row), q6 (6.5 bits: 6-bit blocks of 32, f16 scales),\n"
                 "q5 (5.5 bits: 5-bit blocks) or q4 (4.5 bits: 4-bit blocks)"),
        OPT_ENUM(0, "embd", &embd_type, "TYPE", head_names, head_types,
                 "store the embedding table as TYPE (untied models; when\ntied, --head decides)"),
        OPT_STRING(0, "report", &report, "FILE",
                   "write a per-tensor report (scale, share of zeros, relative\n"
                   "error) to FILE ('-' = standard error)"),
        OPT_FLAG(0, "json", &json, "the report as JSON"),
        OPT_INT('t', "threads", &threads, "N", 1, 1024,
                "threads sharing each tensor's rows (default: all cores);\n"
                "the output is the same bytes for any N"),
        OPT_FLAG('f', "force", &force, "write binary output even to a terminal"),
        OPT_FLAG('q', "quiet", &quiet, "no progress display"),
        OPT_END,
    };
    int rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    if (json && !report)
        return bn_usage_error(&prog, "--json goes with --report (the report as JSON)");
    const char *src = n ? argv[1] : "-";
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
    const void *const neutral[] = {&out, &report, &json, &threads, &force, &quiet, NULL};
    bn_opt_record(table, neutral, 1, "bn-quant " BN_VERSION, step, sizeof step);
    bn_quant_opts o = {
        .step = step,
        .report = rep.fp,
        .report_name = report,
        .report_json = json,
        .progress = !quiet && bn_progress_enabled() ? bn_cli_progress : NULL,
        .temps = {bn_cli_track_temp, NULL},
        .head_type = head_type,
        .embd_type = embd_type,
        .n_threads = threads,
    };
    bn_err e;
    rc = bn_quantize(src, out, &o, &e);
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
