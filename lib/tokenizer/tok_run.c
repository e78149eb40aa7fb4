/* tok_run.c — what bn-tokenize does, as a library call: find the tokenizer
 * (bn model, HF directory or tokenizer.json, tiktoken rank file, GGUF),
 * then stream documents to token records (text, binary, counts or JSON),
 * or token records back to text. The program only parses options. */
#include "tok_impl.h"
#include "tokstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- finding one */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bn_tokenizer *bn_tokenizer_load(const bn_tokenizer_src *src, bn_err *e)
{
    bn_meta meta = {0};
    bn_tokenizer *t = NULL;
    int n = !!src->model + !!src->vocab + !!src->tokenizer_json;
    if (n != 1) {
        bn_fail(e, n ? "give only one of -m, --vocab and --tokenizer-json"
                     : "no tokenizer given (use -m MODEL, --vocab FILE or --tokenizer-json FILE)");
        return NULL;
    }
    char msg[sizeof e->msg];
    const char *name = src->model ? src->model : src->vocab ? src->vocab : src->tokenizer_json;
    int model_file = src->model && !is_dir(src->model); /* a bn or GGUF file: its own metadata */
    if (src->vocab) {
        bn_meta *sec = calloc(1, sizeof *sec);
        if (!sec || bn_tokenizer_section_from_tiktoken(src->vocab, sec, e)) {
            if (sec)
                bn_meta_free(sec);
            free(sec);
            return NULL;
        }
        if (bn_meta_set_section(&meta, "tokenizer", sec) || bn_tokenizer_meta_llama3_defaults(&meta, 0, e))
            goto out;
    } else if (!model_file) {
        /* An HF checkpoint: only its tokenizer files are read. */
        if (bn_tokenizer_meta_from_hf(name, &meta, e))
            goto out;
    } else {
        bn_source s;
        if (bn_open_any(&s, src->model, e))
            goto out;
        t = bn_tokenizer_new(&s.meta, e);
        bn_source_close(&s);
    }
    if (!model_file) /* a section built above */
        t = bn_tokenizer_new(&meta, e);
    if (!t && strncmp(e->msg, name, strlen(name))) { /* "tokenizer.pre: ..." says which file too */
        snprintf(msg, sizeof msg, "%s", e->msg);
        bn_fail(e, "%s: %s", name, msg);
    }
out:
    bn_meta_free(&meta);
    return t;
}

/* ------------------------------------------------------------- output */

typedef struct run {
    const bn_tokenize_opts *o;
    bn_tokenizer *t;
    FILE *out;
    bn_tokw w;
    bn_tokens toks;
    uint64_t doc; /* documents done */
    int flush_each; /* input is a pipe or terminal: make each record visible at once */
} run;

/* The output could not be written (its name, or "-"). */
static int write_failed(const run *r, bn_err *e)
{
    return bn_fail_write(e, r->o->output ? r->o->output : "-");
}

static void json_str(FILE *f, const uint8_t *p, size_t n)
{
    putc('"', f);
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k = bn_utf8_char(p + i, n - i);
        if (!k) { /* not UTF-8 on its own: show U+FFFD, the bytes go in "bytes" */
            fputs("\xEF\xBF\xBD", f);
            i++;
        } else if (c == '"' || c == '\\') {
            putc('\\', f);
            putc(c, f);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (esc)
                fputs(esc, f);
            else
                fprintf(f, "\\u%04x", c);
            i++;
        } else {
            fwrite(p + i, 1, k, f);
            i += k;
        }
    }
    putc('"', f);
}

static int utf8_ok(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = bn_utf8_char(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static void json_record(run *r)
{
    FILE *f = r->out;
    const bn_tokens *v = &r->toks;
    fprintf(f, "{\"doc\":%llu,\"count\":%zu", (unsigned long long)r->doc, v->n);
    if (!r->o->count) {
        fputs(",\"ids\":[", f);
        for (size_t i = 0; i < v->n; i++)
            fprintf(f, "%s%u", i ? "," : "", v->ids[i]);
        fputs("],\"tokens\":[", f);
        for (size_t i = 0; i < v->n; i++) {
            size_t len;
            const uint8_t *p = bn_tokenizer_piece(r->t, v->ids[i], &len);
            fprintf(f, "%s{\"id\":%u,", i ? "," : "", v->ids[i]);
            if (v->offs[i] == BN_TOK_NO_OFFSET)
                fputs("\"start\":null,\"end\":null", f);
            else
                fprintf(f, "\"start\":%llu,\"end\":%llu", (unsigned long long)v->offs[i],
                        (unsigned long long)(v->offs[i] + len));
            fputs(",\"piece\":", f);
            json_str(f, p, len);
            if (!utf8_ok(p, len)) {
                fputs(",\"bytes\":\"", f);
                for (size_t k = 0; k < len; k++)
                    fprintf(f, "%02x", p[k]);
                putc('"', f);
            }
            if (bn_tokenizer_type(r->t, v->ids[i]) == BN_TOKT_CONTROL)
                fputs(",\"special\":true", f);
            putc('}', f);
        }
        putc(']', f);
    }
    fputs("}\n", f);
}

static int emit(run *r, bn_err *e)
{
    const bn_tokenize_opts *o = r->o;
    if (o->json)
        json_record(r);
    else if (o->count)
        fprintf(r->out, "%zu\n", r->toks.n);
    else if (bn_tokw_put(&r->w, r->toks.ids, r->toks.n, e) || bn_tokw_end(&r->w, e))
        return -1;
    r->doc++;
    if (ferror(r->out))
        return write_failed(r, e);
    if (r->flush_each && fflush(r->out))
        return write_failed(r, e);
    return 0;
}

/* ------------------------------------------------------------- encode */

static int encode_doc(run *r, const uint8_t *p, size_t n, const char *name, bn_err *e)
{
    const bn_tokenize_opts *o = r->o;
    bn_tokens_clear(&r->toks);
    int rc;
    if (o->chat) {
        bn_chat_msg *msgs = NULL;
        size_t nm;
        rc = bn_chat_parse(p, n, &msgs, &nm, e) ||
             bn_tokenizer_chat(r->t, msgs, nm, !o->no_gen_prompt, &r->toks, e);
        free(msgs);
        if (!rc && o->eos > 0 && bn_tokenizer_eos(r->t) >= 0)
            rc = bn_tokens_push(&r->toks, (uint32_t)bn_tokenizer_eos(r->t), BN_TOK_NO_OFFSET);
    } else {
        unsigned flags = (o->special ? BN_ENC_SPECIAL : 0) | (o->eos > 0 ? BN_ENC_EOS : 0);
        if (o->bos > 0 || (o->bos < 0 && bn_tokenizer_add_bos(r->t)))
            flags |= BN_ENC_BOS;
        rc = bn_tokenizer_encode(r->t, p, n, flags, 0, &r->toks, e);
    }
    if (rc) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        return bn_fail(e, "%s: %s", name, msg);
    }
    return emit(r, e);
}

static int stream_input(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && !S_ISREG(st.st_mode);
}

static int encode_lines(run *r, const char *path, bn_err *e)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    r->flush_each = stream_input(fileno(f));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n && line[n - 1] == '\n')
            n--;
        if ((rc = encode_doc(r, (const uint8_t *)line, (size_t)n, path, e)))
            break;
    }
    if (!rc && ferror(f))
        rc = bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

static int encode_file(run *r, const char *path, bn_err *e)
{
    if (r->o->lines)
        return encode_lines(r, path, e);
    bn_map m;
    if (bn_map_file(path, &m, e))
        return -1;
    int rc = encode_doc(r, m.data, m.size, path, e);
    bn_unmap(&m);
    return rc;
}

/* ------------------------------------------------------------- decode */

static int put(run *r, const uint8_t *p, size_t n, bn_err *e)
{
    if (n && fwrite(p, 1, n, r->out) != n)
        return write_failed(r, e);
    return 0;
}

/* Decoded text; with --escape its line breaks and backslashes as C
 * escapes (\n, \r, \\), so a record's text stays on one line and
 * printf '%b' restores it, as bn-infer -cnv writes its answers. */
static int put_text(run *r, const uint8_t *p, size_t n, bn_err *e)
{
    if (!r->o->escape)
        return put(r, p, n, e);
    return bn_fput_escaped(p, n, BN_ESC_BACKSLASH, r->out) ? write_failed(r, e) : 0;
}

/* Before the reader waits for input, what was decoded so far goes out. */
static int flush_out(void *ctx, bn_err *e)
{
    run *r = ctx;
    if (fflush(r->out))
        return write_failed(r, e);
    return 0;
}

static int decode_file(run *r, const char *path, bn_err *e)
{
    int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    bn_tokr rd;
    bn_detok d;
    int rc = -1, have_d = 0;
    int opened = !bn_tokr_open(&rd, fd, path, e);
    bn_tokr_before_read(&rd, flush_out, r);
    if (!opened ||
        bn_tokr_check(&rd, bn_tokenizer_hash(r->t), bn_tokenizer_n_vocab(r->t), e))
        goto out;
    if (bn_detok_init(&d, r->t, BN_DEC_TEXT_START | (r->o->skip_special ? BN_DEC_SKIP_SPECIAL : 0), e))
        goto out;
    have_d = 1;
    for (;;) {
        uint32_t id;
        const uint8_t *p;
        size_t n;
        int ev = bn_tokr_next(&rd, &id, e);
        if (ev < 0)
            goto out;
        if (ev == BN_TOKR_EOF)
            break;
        if (ev == BN_TOKR_ID) {
            if (bn_detok_feed(&d, id, &p, &n, e)) {
                char msg[sizeof e->msg];
                snprintf(msg, sizeof msg, "%s", e->msg);
                bn_fail(e, "%s: record %llu, token %llu: %s", path, (unsigned long long)rd.record + 1,
                        (unsigned long long)rd.index, msg);
                goto out;
            }
        } else {
            bn_detok_flush(&d, &p, &n);
        }
        if (put_text(r, p, n, e))
            goto out;
        if (ev == BN_TOKR_END && r->o->lines && put(r, (const uint8_t *)"\n", 1, e))
            goto out;
    }
    rc = 0;
out:
    if (have_d)
        bn_detok_release(&d);
    bn_tokr_close(&rd);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* --------------------------------------------------------------- info */

static void info(run *r)
{
    const bn_tokenizer *t = r->t;
    FILE *f = r->out;
    size_t nspecial = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        nspecial += t->type[i] == BN_TOKT_CONTROL || t->type[i] == BN_TOKT_USER;
    if (r->o->json) {
        fprintf(f,
                "{\"vocab\":%u,\"special\":%zu,\"hash\":\"%016llx\",\"bos\":%d,\"eos\":%d,\"add_bos\":%s,"
                "\"merge_mode\":\"%s\",\"model\":\"%s\",\"space_prefix\":%s,\"chat_format\":",
                t->n_vocab, nspecial, (unsigned long long)t->hash, t->bos, t->eos, t->add_bos ? "true" : "false",
                t->ranks ? "ranks" : "merges", t->spm ? "spm-bpe" : "bpe", t->space_prefix ? "true" : "false");
        json_str(f, (const uint8_t *)t->chat_format, strlen(t->chat_format));
        fputs("}\n", f);
        return;
    }
    fprintf(f,
            "vocab: %u\nspecial: %zu\nhash: %016llx\nbos: %d\neos: %d\nadd_bos: %s\nmerge_mode: %s\nmodel: %s\n"
            "chat_format: %s\n",
            t->n_vocab, nspecial, (unsigned long long)t->hash, t->bos, t->eos, t->add_bos ? "yes" : "no",
            t->ranks ? "ranks" : "merges",
            !t->spm            ? "bpe (byte-level)"
            : t->space_prefix ? "spm-bpe (SentencePiece-style, byte fallback, dummy prefix)"
                              : "spm-bpe (SentencePiece-style, byte fallback)",
            t->chat_format);
}

/* ---------------------------------------------------------------- run */

int bn_tokenize_run(const bn_tokenize_opts *o, bn_err *e)
{
    run r = {.o = o};
    bn_out out;
    int rc = -1, out_open = 0, w_open = 0;
    r.t = bn_tokenizer_load(&o->src, e);
    if (!r.t)
        return -1;
    r.t->chat_whole = o->chat_whole;
    /* asked of the tokenizer, not of an input: said once, naming it */
    const char *src = o->src.model ? o->src.model : o->src.vocab ? o->src.vocab : o->src.tokenizer_json;
    const char *format = bn_tokenizer_chat_format(r.t), *lacks = NULL;
    if (o->bos > 0 && bn_tokenizer_bos(r.t) < 0)
        lacks = "the tokenizer has no BOS token (--bos)";
    else if (o->eos > 0 && bn_tokenizer_eos(r.t) < 0)
        lacks = "the tokenizer has no EOS token (--eos)";
    else if (o->chat && !bn_tokenizer_chat_renders(format))
        lacks = "the tokenizer has no chat format (--chat)";
    if (lacks) {
        bn_fail_code(e, BN_E_UNSUPPORTED, "%s: %s", src, lacks);
        bn_tokenizer_free(r.t);
        return -1;
    }
    if (bn_tokenizer_set_chat_date(r.t, o->chat_date, e)) {
        bn_tokenizer_free(r.t);
        return -1;
    }
    if (bn_out_open(&out, o->output ? o->output : "-", &o->temps, e))
        goto done;
    out_open = 1;
    r.out = out.fp;
    r.toks.want_offsets = o->json;
    if (o->info) {
        info(&r);
    } else {
        if (!o->decode && !o->count && !o->json &&
            bn_tokw_open(&r.w, r.out, o->binary, bn_tokenizer_hash(r.t), bn_tokenizer_n_vocab(r.t), e))
            goto done;
        r.w.name = o->output; /* its write errors name it */
        w_open = 1;
        static const char *const stdin_only[] = {"-"};
        const char *const *in = o->n_inputs ? o->inputs : stdin_only;
        size_t nin = o->n_inputs ? o->n_inputs : 1;
        for (size_t i = 0; i < nin; i++) {
            if (o->decode ? decode_file(&r, in[i], e) : encode_file(&r, in[i], e))
                goto done;
        }
    }
    if (fflush(r.out)) {
        write_failed(&r, e);
        goto done;
    }
    rc = bn_out_commit(&out, e);
    out_open = 0;
done:
    if (out_open)
        bn_out_abort(&out);
    if (w_open)
        bn_tokw_close(&r.w);
    bn_tokens_free(&r.toks);
    bn_tokenizer_free(r.t);
    return rc;
}
