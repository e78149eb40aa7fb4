/* bn-tokenize — text to token ids and back, with a model's tokenizer
 * (exactly as tiktoken / HF tokenizers / llama.cpp encode). The stream
 * formats are bn-tokens(5). This file only parses options. */
#include "cli.h"
#include "formats.h"
#include "signals.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const bn_prog prog = {
    .name = "bn-tokenize",
    .summary = "turn text into token ids and token ids back into text",
    .usage = "usage: bn-tokenize (-m MODEL | --vocab FILE | --tokenizer-json FILE) [options] [FILE...]\n"
    "       bn-tokenize ... -d [FILE...]\n"
    "\n"
    "Encodes each FILE (default: standard input) as one document and writes one\n"
    "record of decimal token ids per document (bn-tokens(5)). With -d, reads\n"
    "token records and writes their text as the ids arrive.\n"
    "\n"
    "tokenizer:\n"
    "  -m, --model PATH          a bn model, a GGUF file, or an HF checkpoint directory\n"
    "      --vocab FILE          a tiktoken rank file (Llama 3 specials added)\n"
    "      --tokenizer-json FILE a Hugging Face tokenizer.json (byte-level BPE)\n"
    "\n"
    "encoding:\n"
    "  -l, --lines               each input line is a document (its LF is not encoded)\n"
    "  -s, --special             recognise special-token text such as <|eot_id|>\n"
    "      --bos, --no-bos       add the BOS id, or not (default: as the model says)\n"
    "      --eos                 append the EOS id to each document\n"
    "      --chat                render 'system: ...', 'user: ...', 'assistant: ...'\n"
    "                            lines with the model's chat format\n"
    "      --no-generation-prompt  with --chat: do not end with the assistant header\n"
    "  -c, --count               print the number of tokens of each document\n"
    "  -j, --json                print each document as JSON (ids, offsets, pieces)\n"
    "  -b, --binary              write the binary token stream\n"
    "  -f, --force               write binary output even to a terminal\n"
    "\n"
    "decoding:\n"
    "  -d, --decode              token records in (text or binary), text out\n"
    "      --skip-special        special tokens produce no text\n"
    "  -l, --lines               end each record's text with a LF\n"
    "\n"
    "other:\n"
    "  -o, --output FILE         write to FILE instead of standard output\n"
    "      --info                describe the tokenizer (with --json: as JSON)\n"
    "  -h, --help                show this help\n"
    "      --version             show the version\n"
    "\n"
    "Exit status: 0 success, 1 a data error, 2 a usage error.\n",
};

/* Options that take a value: where it goes. */
static const char **value_slot(const char *a, bn_tokenize_opts *o)
{
    if (!strcmp(a, "-m") || !strcmp(a, "--model"))
        return &o->src.model;
    if (!strcmp(a, "--vocab"))
        return &o->src.vocab;
    if (!strcmp(a, "--tokenizer-json"))
        return &o->src.tokenizer_json;
    if (!strcmp(a, "-o") || !strcmp(a, "--output"))
        return &o->output;
    return NULL;
}

/* Flags: where they go. */
static int *flag_slot(const char *a, bn_tokenize_opts *o, int *force)
{
    static const struct {
        const char *s, *l;
        size_t off;
    } flags[] = {
        {"-d", "--decode", offsetof(bn_tokenize_opts, decode)},
        {"-l", "--lines", offsetof(bn_tokenize_opts, lines)},
        {"-s", "--special", offsetof(bn_tokenize_opts, special)},
        {NULL, "--chat", offsetof(bn_tokenize_opts, chat)},
        {NULL, "--no-generation-prompt", offsetof(bn_tokenize_opts, no_gen_prompt)},
        {"-c", "--count", offsetof(bn_tokenize_opts, count)},
        {"-j", "--json", offsetof(bn_tokenize_opts, json)},
        {"-b", "--binary", offsetof(bn_tokenize_opts, binary)},
        {NULL, "--skip-special", offsetof(bn_tokenize_opts, skip_special)},
        {NULL, "--info", offsetof(bn_tokenize_opts, info)},
    };
    if (!strcmp(a, "-f") || !strcmp(a, "--force"))
        return force;
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        if ((flags[i].s && !strcmp(a, flags[i].s)) || !strcmp(a, flags[i].l))
            return (int *)((char *)o + flags[i].off);
    return NULL;
}

static int parse(int argc, char **argv, bn_tokenize_opts *o, const char **files, int *exit_now)
{
    int force = 0, no_more = 0;
    memset(o, 0, sizeof *o);
    o->bos = o->eos = -1;
    o->inputs = files;
    *exit_now = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (no_more || a[0] != '-' || !a[1]) {
            files[o->n_inputs++] = a;
            continue;
        }
        if (bn_cli_common(&prog, a)) {
            *exit_now = 1;
            return 0;
        }
        const char **v;
        int *f;
        if (!strcmp(a, "--"))
            no_more = 1;
        else if ((v = value_slot(a, o))) {
            if (i + 1 >= argc)
                return bn_usage_error(&prog, "option '%s' needs a value", a);
            *v = argv[++i];
        } else if ((f = flag_slot(a, o, &force)))
            *f = 1;
        else if (!strcmp(a, "--bos") || !strcmp(a, "--no-bos"))
            o->bos = !strcmp(a, "--bos");
        else if (!strcmp(a, "--eos"))
            o->eos = 1;
        else
            return bn_usage_error(&prog, "unknown option '%s'", a);
    }
    int nsrc = !!o->src.model + !!o->src.vocab + !!o->src.tokenizer_json;
    if (nsrc == 0)
        return bn_usage_error(&prog, "no tokenizer given (use -m MODEL, --vocab FILE or --tokenizer-json FILE)");
    if (nsrc > 1)
        return bn_usage_error(&prog, "give only one of -m, --vocab and --tokenizer-json");
    if (o->decode && (o->count || o->json || o->binary || o->chat || o->special || o->bos >= 0 || o->eos >= 0))
        return bn_usage_error(&prog, "-d takes no encoding options (-c, -j, -b, --chat, -s, --bos, --eos)");
    if (!o->decode && o->skip_special)
        return bn_usage_error(&prog, "--skip-special goes with -d");
    if (o->chat && o->lines)
        return bn_usage_error(&prog, "--chat reads a whole conversation per file; it does not go with -l");
    if (o->no_gen_prompt && !o->chat)
        return bn_usage_error(&prog, "--no-generation-prompt goes with --chat");
    if (o->binary && (o->count || o->json))
        return bn_usage_error(&prog, "-b does not go with -c or -j");
    if (o->info && (o->decode || o->count || o->binary || o->chat || o->n_inputs))
        return bn_usage_error(&prog, "--info takes no input and no other mode");
    if (o->binary && !force && bn_out_is_tty(o->output))
        return bn_usage_error(&prog, "refusing to write a binary token stream to a terminal (use -o FILE or -f)");
    return 0;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    if (!files) {
        bn_report(&prog, "out of memory");
        return BN_EXIT_DATA;
    }
    bn_tokenize_opts o;
    int exit_now;
    int rc = parse(argc, argv, &o, files, &exit_now);
    if (rc || exit_now) {
        free(files);
        return rc;
    }
    bn_err e;
    rc = BN_EXIT_OK;
    o.temps = (bn_temp_hook){bn_cli_track_temp, NULL};
    if (bn_tokenize_run(&o, &e)) {
        fflush(stdout);
        bn_report(&prog, "%s", e.msg);
        rc = BN_EXIT_DATA;
    }
    free(files);
    return rc;
}
