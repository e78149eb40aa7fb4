/* convert.c — any source → bn model file, one tensor at a time. */
#include "formats.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

int bn_hash_file(const char *path, uint64_t *out, bn_err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    XXH3_state_t *st = XXH3_createState();
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    int rc = 0;
    if (!st || !buf || XXH3_64bits_reset(st) != XXH_OK)
        rc = bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    while (!rc) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = bn_fail_code(e, BN_E_IO, "%s: read error: %s", path, strerror(errno));
        if (r <= 0)
            break;
        XXH3_64bits_update(st, buf, (size_t)r);
    }
    if (!rc)
        *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    free(buf);
    close(fd);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Provenance: who converted, with what, from which files. */
int bn_provenance_add(bn_meta *m, const bn_source *s, const char *program, const char *options, const char *name)
{
    int rc = 0;
    if (!strcmp(s->format, "bn")) {
        /* a bn file rewritten keeps where it came from (its converter,
         * options and sources); this rewrite is one more step, as bn-quant
         * and bn-pack record theirs */
        char step[512];
        snprintf(step, sizeof step, "%s%s%s", program, options && *options ? " " : "", options ? options : "");
        rc |= bn_meta_append_str(m, "provenance.steps", step);
        if (name)
            rc |= bn_meta_set_str(m, "general.name", name);
        return rc ? -1 : 0;
    }
    rc |= bn_meta_set_str(m, "provenance.converter", program);
    rc |= bn_meta_set_str(m, "provenance.options", options ? options : "");
    if (!bn_meta_get(m, "provenance.source_format"))
        rc |= bn_meta_set_str(m, "provenance.source_format", s->format);
    if (name)
        rc |= bn_meta_set_str(m, "general.name", name);
    if (s->n_files) {
        size_t total = 0;
        for (size_t i = 0; i < s->n_files; i++)
            total += strlen(base_name(s->files[i]));
        char *data = malloc(total + 1);
        uint64_t *off = malloc((s->n_files + 1) * sizeof *off);
        if (!data || !off) {
            free(data);
            free(off);
            return -1;
        }
        size_t pos = 0;
        for (size_t i = 0; i < s->n_files; i++) {
            const char *b = base_name(s->files[i]);
            off[i] = pos;
            memcpy(data + pos, b, strlen(b));
            pos += strlen(b);
        }
        off[s->n_files] = pos;
        rc |= bn_meta_set_strarr_owned(m, "provenance.sources", data, off, s->n_files);
    }
    return rc ? -1 : 0;
}

int bn_provenance_late(bn_meta *late, const bn_source *s, const char *src, bn_err *e)
{
    if (!s->n_files) /* a bn input: its own, carried over */
        return bn_late_carry(late, &s->meta) ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src) : 0;
    uint64_t *h = calloc(s->n_files, sizeof *h);
    if (!h)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
    for (size_t i = 0; i < s->n_files; i++)
        if (bn_hash_file(s->files[i], &h[i], e)) {
            free(h);
            return -1;
        }
    int rc = bn_meta_set_arr(late, "provenance.source_hashes", BN_V_U64, h, s->n_files);
    free(h);
    return rc ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src) : 0;
}

/* A tensor the source holds unchanged goes from its file to the output in
 * pieces that stay in the caches: read, written and hashed while hot.
 * Reading a whole tensor into memory first streamed every byte through
 * DRAM three times more (the copy, the write, the checksum); bn-convert of
 * the 4.8 GB f16 2B4T GGUF spent most of its time there. */
enum { SPAN_PIECE = 512 << 10 };

static int copy_span(bn_writer *w, int fd, uint64_t off, uint64_t size, uint8_t *piece, const char *src,
                     bn_err *e)
{
    uint64_t done = 0;
    do { /* an empty tensor is one empty piece */
        size_t n = size - done < SPAN_PIECE ? (size_t)(size - done) : SPAN_PIECE;
        if ((n && bn_pread_full(fd, piece, n, off + done, src, e)) || bn_writer_piece(w, piece, n, e))
            return -1;
        done += n;
    } while (done < size);
    return 0;
}

int bn_convert(const char *src, const char *out, const bn_convert_opts *o, bn_err *e)
{
    bn_source s;
    if (bn_open_any_tl(&s, src, o->tl_config, e))
        return -1;
    bn_meta meta = {0};
    bn_hparams hp;
    int rc = -1;
    uint8_t *buf = NULL;
    size_t cap = 0;
    bn_writer w;
    int writing = 0;
    bn_steps steps = {o->progress, o->progress_user, s.n_tensors, 0};
    if (bn_meta_copy(&meta, &s.meta) ||
        bn_provenance_add(&meta, &s, o->program ? o->program : "bn-convert " BN_VERSION, o->options, o->name)) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
        goto out;
    }
    /* Refuse to write a model bn cannot run: hyper-parameters and shapes. */
    if (bn_hparams_from_meta(&meta, &hp, src, e) || bn_hparams_check_tensors(&hp, &s, e))
        goto out;
    if (o->check && o->check(&meta, e)) {
        bn_err why = *e;
        bn_fail_code(e, why.code, "%s: %s", src, why.msg);
        goto out;
    }
    if (o->warn && !bn_meta_section(&meta, "tokenizer")) {
        /* it converts (token ids in and out work), but text will not */
        const char *note = bn_meta_str(&meta, "provenance.note");
        char msg[sizeof e->msg + 160];
        const char *said = note ? strstr(note, "no tokenizer: ") : NULL;
        snprintf(msg, sizeof msg, "%s: %s", src, said ? said : "no tokenizer found: the model takes and gives token ids only");
        o->warn(o->warn_user, msg);
    }
    /* Source hashes are late metadata (known only after the data): they go
     * to the trailer, ours or, for a bn input, carried over from its own. */
    bn_meta_remove(&meta, "provenance.source_hashes");
    if (bn_writer_begin(&w, out, &o->temps, &meta, s.tensors, s.n_tensors, e))
        goto out;
    writing = 1;
    for (size_t i = 0; i < s.n_tensors; i++) {
        const bn_tensor *t = &s.tensors[i];
        int fd;
        uint64_t off;
        if (bn_steps_at(&steps, i, t->name, src, e))
            goto out;
        if (s.span && s.span(&s, i, &fd, &off)) {
            if (!(buf = bn_scratch(buf, &cap, SPAN_PIECE))) {
                bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", src);
                goto out;
            }
            if (copy_span(&w, fd, off, t->size, buf, src, e))
                goto out;
            continue;
        }
        if (!(buf = bn_scratch(buf, &cap, t->size))) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory for tensor '%s' (%llu bytes)", src, t->name, (unsigned long long)t->size);
            goto out;
        }
        if (s.read(&s, i, buf, e) || bn_writer_tensor(&w, buf, t->size, e))
            goto out;
    }
    bn_steps_end(&steps);
    if (!strcmp(s.format, "bn") && bn_bnfile_finish(&s, e))
        goto out;
    if (bn_provenance_late(&w.late, &s, src, e))
        goto out;
    writing = 0;
    rc = bn_writer_finish(&w, e);
out:
    if (writing)
        bn_writer_abort(&w);
    bn_steps_end(&steps);
    free(buf);
    bn_meta_free(&meta);
    bn_source_close(&s);
    return rc;
}
