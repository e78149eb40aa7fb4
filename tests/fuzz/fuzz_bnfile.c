/* fuzz_bnfile.c — the bn model file reader, mapped and streamed, with
 * verification: any input must give a clean error or a sane model. */
#include "formats.h"
#include "quant.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char path[64];
    int fd = fuzz_memfile(data, n, path, sizeof path);
    if (fd < 0)
        return 0;
    bn_err e;
    bn_source s;
    if (bn_bnfile_open(&s, path, BN_OPEN_MAP, &e) == 0) {
        bn_bnfile_verify(&s, &e);
        bn_hparams hp;
        if (bn_hparams_from_meta(&s.meta, &hp, path, &e) == 0)
            bn_hparams_check_tensors(&hp, &s, &e);
        bn_source_close(&s);
    }
    if (bn_bnfile_open(&s, path, BN_OPEN_STREAM, &e) == 0) {
        fuzz_read_all(&s);
        bn_bnfile_finish(&s, &e);
        bn_source_close(&s);
    }
    close(fd);
    return 0;
}
