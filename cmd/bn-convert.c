/* bn-convert — import a checkpoint (HF directory, safetensors, GGUF, bn)
 * into a bn model file, or describe one with --info. */
#include "cli.h"
#include "formats.h"

#include <string.h>

static const bn_prog prog = {
    "bn-convert",
    "import a model checkpoint into the bn model format",
    "usage: bn-convert [options] SOURCE [-o OUTPUT]\n"
    "       bn-convert --info [--json] [--verify] FILE\n"
    "\n"
    "SOURCE is a Hugging Face checkpoint directory, a .gguf file (bitnet.cpp or\n"
    "llama.cpp), a .safetensors file, or a bn model file ('-' reads a bn stream).\n"
    "The result goes to OUTPUT, or to standard output when it is '-' or absent.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  write the model to FILE (atomically: whole or not at all)\n"
    "      --name NAME    set general.name in the output\n"
    "  -i, --info         describe SOURCE instead of converting it\n"
    "      --json         with --info: print JSON\n"
    "      --verify       with --info: recompute every tensor checksum (bn files)\n"
    "  -f, --force        write binary output even to a terminal\n"
    "  -q, --quiet        no progress display\n"
    "  -h, --help         show this help\n"
    "      --version      show the version\n",
};

typedef struct options {
    const char *src, *out, *name;
    int info, json, verify, force, quiet;
    char cmdline[1024];
} options;

static int parse(int argc, char **argv, options *o, int *exit_now)
{
    memset(o, 0, sizeof *o);
    o->out = "-";
    *exit_now = 0;
    size_t pos = 0;
    int no_more_opts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!no_more_opts && a[0] == '-' && a[1]) {
            if (bn_cli_common(&prog, a)) {
                *exit_now = 1;
                return 0;
            }
            if (!strcmp(a, "--"))
                no_more_opts = 1;
            else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--name")) {
                if (i + 1 >= argc)
                    return bn_usage_error(&prog, "option '%s' needs a value", a);
                if (!strcmp(a, "--name"))
                    o->name = argv[++i];
                else
                    o->out = argv[++i];
            } else if (!strcmp(a, "-i") || !strcmp(a, "--info"))
                o->info = 1;
            else if (!strcmp(a, "--json"))
                o->json = 1;
            else if (!strcmp(a, "--verify"))
                o->verify = 1;
            else if (!strcmp(a, "-f") || !strcmp(a, "--force"))
                o->force = 1;
            else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
                o->quiet = 1;
            else
                return bn_usage_error(&prog, "unknown option '%s'", a);
            if (strcmp(a, "-o") && strcmp(a, "--output") && pos + strlen(a) + 2 < sizeof o->cmdline)
                pos += (size_t)snprintf(o->cmdline + pos, sizeof o->cmdline - pos, "%s%s", pos ? " " : "", a);
            continue;
        }
        if (o->src)
            return bn_usage_error(&prog, "more than one SOURCE given ('%s' and '%s')", o->src, a);
        o->src = a;
    }
    if (!o->src)
        return bn_usage_error(&prog, "no SOURCE given");
    if ((o->json || o->verify) && !o->info)
        return bn_usage_error(&prog, "--json and --verify go with --info");
    return 0;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    options o;
    int exit_now;
    int rc = parse(argc, argv, &o, &exit_now);
    if (rc || exit_now)
        return rc;
    bn_err e;
    if (o.info) {
        if (bn_describe(o.src, stdout, o.json, o.verify, &e)) {
            fflush(stdout);
            bn_report(&prog, "%s", e.msg);
            return BN_EXIT_DATA;
        }
        return fflush(stdout) ? BN_EXIT_DATA : BN_EXIT_OK;
    }
    if (!o.force && bn_out_is_tty(o.out))
        return bn_usage_error(&prog, "refusing to write a binary model to a terminal (use -o FILE or -f)");
    bn_convert_opts co = {
        .program = "bn-convert " BN_VERSION,
        .options = o.cmdline,
        .name = o.name,
        .progress = !o.quiet && bn_progress_enabled(),
    };
    if (bn_convert(o.src, o.out, &co, &e)) {
        bn_report(&prog, "%s", e.msg);
        return BN_EXIT_DATA;
    }
    return BN_EXIT_OK;
}
