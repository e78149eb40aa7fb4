/* fuzz_hfconfig.c — an HF checkpoint directory whose config.json is the
 * input (the weights are the bundled tiny model's, linked in the directory
 * given by BN_FUZZ_HFDIR, default models/tiny-bitnet). */
#include "formats.h"
#include "quant.h"
#include "formats.h"
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char dir[] = "/tmp/bn-fuzz-hf-XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    const char *src = getenv("BN_FUZZ_HFDIR");
    char real[4096], link_path[4200], cfg[4200];
    if (!realpath(src ? src : "models/tiny-bitnet", real))
        fuzz_missing(src ? src : "models/tiny-bitnet");
    snprintf(link_path, sizeof link_path, "%s/model.safetensors", dir);
    snprintf(real + strlen(real), sizeof real - strlen(real), "/model.safetensors");
    if (symlink(real, link_path))
        goto out;
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "wb");
    if (!f)
        goto out;
    fwrite(data, 1, n, f);
    fclose(f);
    bn_err e;
    bn_source s;
    if (bn_hf_open(&s, dir, &e) == 0)
        bn_source_close(&s);
out:
    unlink(cfg);
    unlink(link_path);
    rmdir(dir);
    return 0;
}
