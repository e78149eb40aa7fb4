/* bn-convert — import a checkpoint (HF directory, safetensors, GGUF, bn)
 * into a bn model file, or describe one with --info. */
#include "cli.h"
#include "formats.h"
#include "opt.h"
#include "progress.h"
#include "signals.h"
#include "tokenizer.h"

#include <string.h>

static const bn_prog prog = {
    .name = "bn-convert",
    .summary = "import a model checkpoint into the bn model format",
    .usage = "usage: bn-convert [options] SOURCE [-o OUTPUT]\n"
             "       bn-convert --info [--json] [--verify] [--tl-config INI] FILE\n"
             "\n"
             "SOURCE is a Hugging Face checkpoint directory, a .gguf file (bitnet.cpp or\n"
             "llama.cpp) or a bn model file ('-' reads a bn stream); --info also reads a\n"
             ".safetensors file on its own. The result goes to OUTPUT, or to standard\n"
             "output when it is '-' or absent.\n",
    .operand = "SOURCE",
    .max_operands = 1,
};

typedef struct options {
    const char *src, *out, *name, *tl_config;
    int info, json, verify, force, quiet;
    char cmdline[1024];
} options;

static int parse(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->out = "-";
    bn_opt table[] = {
        OPT_STRING('o', "output", &o->out, "FILE", "write the model to FILE (atomically: whole or not at all)"),
        OPT_STRING(0, "name", &o->name, "NAME", "set general.name in the output"),
        OPT_STRING(0, "tl-config", &o->tl_config, "FILE",
                   "the kernel_config.ini bitnet.cpp's code generator wrote, for a GGUF's TL1/TL2 tiles"),
        OPT_FLAG('i', "info", &o->info, "describe SOURCE instead of converting it"),
        OPT_FLAG(0, "json", &o->json, "with --info: print JSON"),
        OPT_FLAG(0, "verify", &o->verify, "with --info: recompute every tensor checksum (bn files)"),
        OPT_FLAG('f', "force", &o->force, "write binary output even to a terminal"),
        OPT_FLAG('q', "quiet", &o->quiet, "no progress display, no warnings"),
        OPT_END,
    };
    int n, rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    if (!n)
        return bn_usage_error(&prog, "no SOURCE given");
    o->src = argv[1];
    if ((o->json || o->verify) && !o->info)
        return bn_usage_error(&prog, "--json and --verify go with --info");
    if (o->info && (table[0].given || o->name || o->force))
        return bn_usage_error(&prog, "--info writes no model: not with -o, --name or -f");
    if (o->name && !bn_utf8_valid(o->name, strlen(o->name)))
        return bn_usage_error(&prog, "--name: not UTF-8 text (general.name is a UTF-8 string)");
    /* provenance.options: the options given, by their long names, but
     * those that change no byte of the model (where it was written, -q,
     * -f): the same conversion scripted or by hand is the same file */
    const void *const neutral[] = {&o->out, &o->quiet, &o->force, NULL};
    bn_opt_record(table, neutral, 0, NULL, o->cmdline, sizeof o->cmdline);
    return BN_OPT_RUN;
}

static void warn(void *program, const char *msg)
{
    bn_report(program, "%s", msg);
}

/* A tokenizer section that does not build (a pattern that does not
 * compile, a byte without a token) would make every program refuse the
 * model, token ids in and out too: refused here, before writing. */
static int tokenizer_builds(const bn_meta *meta, bn_err *e)
{
    if (!bn_meta_section(meta, "tokenizer"))
        return 0;
    bn_tokenizer *t = bn_tokenizer_new(meta, e);
    bn_tokenizer_free(t);
    return t ? 0 : -1;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    options o;
    int rc = parse(argc, argv, &o);
    if (rc != BN_OPT_RUN)
        return rc;
    bn_err e;
    if (o.info) {
        if (bn_describe(o.src, stdout, o.json, o.verify, o.tl_config, &e)) {
            fflush(stdout);
            bn_report(&prog, "%s", e.msg);
            return BN_EXIT_DATA;
        }
        return bn_stdout_done(&prog);
    }
    if (!o.force && bn_out_is_tty(o.out))
        return bn_usage_error(&prog, "refusing to write a binary model to a terminal (use -o FILE or -f)");
    bn_convert_opts co = {
        .check = tokenizer_builds,
        .program = "bn-convert " BN_VERSION,
        .options = o.cmdline,
        .name = o.name,
        .progress = !o.quiet && bn_progress_enabled() ? bn_cli_progress : NULL,
        .temps = {bn_cli_track_temp, NULL},
        .tl_config = o.tl_config,
        .warn = o.quiet ? NULL : warn,
        .warn_user = (void *)&prog,
    };
    if (bn_convert(o.src, o.out, &co, &e)) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
