/* bn-tokenize — text to token ids and back, with a model's tokenizer
 * (exactly as tiktoken / HF tokenizers / llama.cpp encode). The stream
 * formats are bn-tokens(5). This file only parses options. */
#include "cli.h"
#include "formats.h"
#include "opt.h"
#include "signals.h"
#include "tokenizer.h"

#include <string.h>
#include <unistd.h>

static const bn_prog prog = {
    .name = "bn-tokenize",
    .summary = "turn text into token ids and token ids back into text",
    .usage = "usage: bn-tokenize (-m MODEL | --vocab FILE | --tokenizer-json FILE) [options] [FILE...]\n"
             "       bn-tokenize ... -d [FILE...]\n"
             "       bn-tokenize ... --info [--json]\n"
             "\n"
             "Encodes each FILE (default: standard input) as one document and writes one\n"
             "record of decimal token ids per document (bn-tokens(5)). With -d, reads\n"
             "token records and writes their text as the ids arrive.\n",
    .epilog = "Exit status: 0 success, 1 a data error, 2 a usage error.\n",
    .operand = "FILE",
};

static int parse(int argc, char **argv, bn_tokenize_opts *o)
{
    int force = 0, n;
    memset(o, 0, sizeof *o);
    o->bos = o->eos = -1;
    o->chat_whole = -1; /* not given: split */
    bn_opt table[] = {
        OPT_SECTION("tokenizer:"),
        OPT_STRING('m', "model", &o->src.model, "PATH", "a bn model, a GGUF file, or an HF checkpoint directory"),
        OPT_STRING(0, "vocab", &o->src.vocab, "FILE", "a tiktoken rank file (Llama 3 specials added)"),
        OPT_STRING(0, "tokenizer-json", &o->src.tokenizer_json, "FILE", "a Hugging Face tokenizer.json (byte-level BPE, or\n"
                   "SentencePiece-style BPE with byte fallback: Gemma's)"),
        OPT_SECTION("encoding:"),
        OPT_FLAG('l', "lines", &o->lines,
                 "each input line is a document (its LF is not encoded);\nwith -d: end each record's text with a LF"),
        OPT_FLAG('s', "special", &o->special, "recognise special-token text such as <|eot_id|>"),
        OPT_SET(0, "bos", &o->bos, 1, "add the BOS id (default: as the model says)"),
        OPT_SET(0, "no-bos", &o->bos, 0, "do not add the BOS id"),
        OPT_FLAG(0, "eos", &o->eos, "append the EOS id to each document"),
        OPT_FLAG(0, "chat", &o->chat,
                 "render 'system: ...', 'user: ...', 'assistant: ...'\nlines with the model's chat format"),
        OPT_FLAG(0, "no-generation-prompt", &o->no_gen_prompt, "with --chat: do not end with the assistant header"),
        OPT_ENUM(0, "chat-encoding", &o->chat_whole, "HOW", bn_cli_chat_encodings, NULL,
                 "with --chat: split (header and text apart, as the\nmodel was trained; default) or whole (as one\n"
                 "text, as Hugging Face's template and bitnet.cpp)"),
        OPT_STRING(0, "chat-date", &o->chat_date, "DATE",
                   "with --chat: the date a Llama 3.1 or 3.2 format's\nsystem message gives (default: the one 3.1's\n"
                   "template fixes, today for 3.2)"),
        OPT_FLAG('c', "count", &o->count, "print the number of tokens of each document"),
        OPT_FLAG('j', "json", &o->json, "print each document as JSON (ids, offsets, pieces)"),
        OPT_FLAG('b', "binary", &o->binary, "write the binary token stream"),
        OPT_FLAG('f', "force", &force, "with -b: write the binary stream even to a terminal"),
        OPT_SECTION("decoding:"),
        OPT_FLAG('d', "decode", &o->decode, "token records in (text or binary), text out"),
        OPT_FLAG(0, "skip-special", &o->skip_special, "special tokens produce no text"),
        OPT_FLAG('e', "escape", &o->escape,
                 "line breaks and backslashes as \\n, \\r, \\\\ (with -l: one line\n"
                 "per record; printf '%b' restores the text)"),
        OPT_SECTION("other:"),
        OPT_STRING('o', "output", &o->output, "FILE", "write to FILE instead of standard output"),
        OPT_FLAG(0, "info", &o->info, "describe the tokenizer (with --json: as JSON)"),
        OPT_END,
    };
    int rc = bn_opt_parse(&prog, table, argc, argv, &n);
    if (rc != BN_OPT_RUN)
        return rc;
    o->inputs = (const char *const *)argv + 1;
    o->n_inputs = (size_t)n;
    int nsrc = !!o->src.model + !!o->src.vocab + !!o->src.tokenizer_json;
    if (nsrc == 0)
        return bn_usage_error(&prog, "no tokenizer given (use -m MODEL, --vocab FILE or --tokenizer-json FILE)");
    if (nsrc > 1)
        return bn_usage_error(&prog, "give only one of -m, --vocab and --tokenizer-json");
    /* the tokenizer from standard input: then the text comes from files */
    const char *src = o->src.model ? o->src.model : o->src.vocab ? o->src.vocab : o->src.tokenizer_json;
    int text_from_stdin = !o->info && !o->n_inputs;
    for (size_t i = 0; i < o->n_inputs; i++)
        text_from_stdin |= !strcmp(o->inputs[i], "-");
    if (!strcmp(src, "-") && text_from_stdin)
        return bn_usage_error(&prog, "the tokenizer and the text cannot both come from standard input (give the text as FILE)");
    if (o->decode && (o->count || o->json || o->binary || o->chat || o->special || o->bos >= 0 || o->eos >= 0))
        return bn_usage_error(&prog, "-d takes no encoding options (-c, -j, -b, --chat, -s, --bos, --eos)");
    if (!o->decode && o->skip_special)
        return bn_usage_error(&prog, "--skip-special goes with -d");
    if (!o->decode && o->escape)
        return bn_usage_error(&prog, "--escape goes with -d");
    /* the chat format decides where BOS goes; message text is never special */
    if (o->chat && (o->bos >= 0 || o->special))
        return bn_usage_error(&prog, "--chat renders the model's chat format (BOS included, special-token text as "
                                     "text): not with --bos, --no-bos or -s");
    if (o->chat && o->lines)
        return bn_usage_error(&prog, "--chat reads a whole conversation per file; it does not go with -l");
    if (o->no_gen_prompt && !o->chat)
        return bn_usage_error(&prog, "--no-generation-prompt goes with --chat");
    if (o->chat_whole >= 0 && !o->chat)
        return bn_usage_error(&prog, "--chat-encoding goes with --chat");
    if (o->chat_date && !o->chat)
        return bn_usage_error(&prog, "--chat-date goes with --chat");
    const char *bad_date = bn_cli_chat_date_problem(o->chat_date);
    if (bad_date)
        return bn_usage_error(&prog, "%s", bad_date);
    o->chat_whole = o->chat_whole > 0;
    if (force && !o->binary) /* the only binary output */
        return bn_usage_error(&prog, "-f writes the binary stream to a terminal: it goes with -b");
    if (o->binary && (o->count || o->json))
        return bn_usage_error(&prog, "-b does not go with -c or -j");
    if (o->info && (o->decode || o->count || o->binary || o->chat || o->n_inputs))
        return bn_usage_error(&prog, "--info takes no input and no other mode");
    /* the output would replace the tokenizer it is made with (the text
     * inputs may be rewritten in place, as sort -o allows: the output is
     * renamed into place after the input is read) */
    if (bn_cli_same_file(o->output, src, STDIN_FILENO))
        return bn_usage_error(&prog, "-o %s is the tokenizer's file: the output would replace it", o->output);
    if (o->binary && !force && bn_out_is_tty(o->output))
        return bn_usage_error(&prog, "refusing to write a binary token stream to a terminal (use -o FILE or -f)");
    return BN_OPT_RUN;
}

int main(int argc, char **argv)
{
    bn_cli_init();
    bn_tokenize_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != BN_OPT_RUN)
        return rc;
    bn_err e;
    rc = BN_EXIT_OK;
    o.temps = (bn_temp_hook){bn_cli_track_temp, NULL};
    if (bn_tokenize_run(&o, &e)) {
        fflush(stdout);
        bn_report(&prog, "%s", e.msg);
        rc = BN_EXIT_DATA;
    }
    return rc;
}
