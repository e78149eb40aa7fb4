/* open.c — opening any supported model input: the one place that knows
 * every reader (a bn file or stream, an HF directory, GGUF, safetensors). */
#include "formats.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bn_open_any(bn_source *s, const char *path, bn_err *e)
{
    return bn_open_any_tl(s, path, NULL, e);
}

static int open_any(bn_source *s, const char *path, const char *tl_config, bn_err *e)
{
    memset(s, 0, sizeof *s);
    if (!strcmp(path, "-"))
        return bn_bnfile_open(s, path, BN_OPEN_STREAM, e);
    struct stat st;
    if (stat(path, &st) != 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return bn_hf_open(s, path, e);
    /* A pipe or FIFO (`<(bn-convert ...)`, mkfifo) can be read only once:
     * sniffing its head would eat bytes the reader needs. Only bn files
     * stream, so it is read as one. */
    if (!S_ISREG(st.st_mode))
        return bn_bnfile_open(s, path, BN_OPEN_STREAM, e);
    uint8_t head[8] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n < 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    if (bn_bnfile_sniff(head, (size_t)n))
        return bn_bnfile_open(s, path, S_ISREG(st.st_mode) ? BN_OPEN_MAP : BN_OPEN_STREAM, e);
    if (bn_gguf_sniff(head, (size_t)n))
        return bn_gguf_open(s, path, tl_config, e);
    size_t len = strlen(path);
    if (len > 12 && !strcmp(path + len - 12, ".safetensors"))
        return bn_safetensors_open(s, path, e);
    if (n < 8)
        return bn_fail(e, "%s: too short to be a model file", path);
    return bn_fail(e, "%s: unrecognized format (expected a bn model, GGUF, .safetensors or an HF directory)",
                   path);
}

int bn_open_any_tl(bn_source *s, const char *path, const char *tl_config, bn_err *e)
{
    if (open_any(s, path, tl_config, e))
        return -1;
    /* A TL1/TL2 configuration describes a GGUF file's tiles: with any
     * other input it would go unread without a word. */
    if (tl_config && strcmp(s->format, "gguf")) {
        bn_fail(e, "%s: not a GGUF file, so the TL1/TL2 configuration %s does not apply", path, tl_config);
        bn_source_close(s);
        return -1;
    }
    return 0;
}
