/* source.c — the bn_source basics: closing, recorded files, lookups. */
#include "formats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void bn_source_close(bn_source *s)
{
    if (s->close)
        s->close(s);
    bn_meta_free(&s->meta);
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    free(s->tensors);
    free(s->name);
    free(s->format);
    memset(s, 0, sizeof *s);
}

int bn_source_add_file(bn_source *s, const char *path, bn_err *e)
{
    char **nf = realloc(s->files, (s->n_files + 1) * sizeof *nf);
    if (!nf)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    s->files = nf;
    if (!(nf[s->n_files] = strdup(path)))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    s->n_files++;
    return 0;
}

int bn_source_find_index(const bn_source *s, const char *name)
{
    for (size_t i = 0; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i].name, name))
            return (int)i;
    return -1;
}

const bn_tensor *bn_source_find(const bn_source *s, const char *name)
{
    int i = bn_source_find_index(s, name);
    return i < 0 ? NULL : &s->tensors[i];
}

const char *bn_source_shown_name(const bn_source *s, const char *name, char *buf)
{
    if (s->own_name)
        s->own_name(s, name, buf, BN_SHOWN_NAME_MAX);
    else
        snprintf(buf, BN_SHOWN_NAME_MAX, "%s", name);
    return buf;
}

