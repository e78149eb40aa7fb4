/* fuzz_gguf.c — the GGUF reader: open, then read and convert every tensor. */
#include "formats.h"
#include "quant.h"
#include "formats.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char path[64];
    int fd = fuzz_memfile(data, n, path, sizeof path);
    if (fd < 0)
        return 0;
    bn_err e;
    bn_source s;
    if (bn_gguf_open(&s, path, NULL, &e) == 0) {
        fuzz_read_all(&s);
        bn_source_close(&s);
    }
    close(fd);
    return 0;
}
