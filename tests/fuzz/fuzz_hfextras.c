/* fuzz_hfextras.c — the optional JSON files of an HF checkpoint
 * directory: the input up to its first NUL byte is generation_config.json,
 * the rest tokenizer_config.json (a missing NUL: no tokenizer_config.json).
 * config.json and model.safetensors are linked from BN_FUZZ_HFDIR
 * (default models/tiny-bitnet), tokenizer.json from tests/fuzz/data/
 * small-tokenizer.json (a 273-token one: the tiny model's 194 KB file
 * would take most of each run; the model opener reads the optional files
 * before it gets to the tokenizer). Both readers of these files run: the
 * model opener (stop ids, chat template) and the tokenizer's (BOS, chat
 * format). */
#include "formats.h"
#include "quant.h"
#include "formats.h"
#include "fuzz_util.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const linked[] = {"config.json", "model.safetensors", "tokenizer.json"};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char dir[] = "/tmp/bn-fuzz-hfx-XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    const char *src = getenv("BN_FUZZ_HFDIR");
    char real[4096], from[4200], to[4200], gen[4200] = "", tok[4200] = "";
    if (!realpath(src ? src : "models/tiny-bitnet", real))
        fuzz_missing(src ? src : "models/tiny-bitnet");
    for (size_t i = 0; i < sizeof linked / sizeof *linked; i++) {
        if (!strcmp(linked[i], "tokenizer.json")) {
            if (!realpath("tests/fuzz/data/small-tokenizer.json", from))
                fuzz_missing("tests/fuzz/data/small-tokenizer.json");
        } else
            snprintf(from, sizeof from, "%s/%s", real, linked[i]);
        snprintf(to, sizeof to, "%s/%s", dir, linked[i]);
        if (symlink(from, to))
            goto out;
    }
    const unsigned char *nul = memchr(data, 0, n);
    size_t gn = nul ? (size_t)(nul - data) : n;
    snprintf(gen, sizeof gen, "%s/generation_config.json", dir);
    snprintf(tok, sizeof tok, "%s/tokenizer_config.json", dir);
    if (fuzz_write_file(gen, data, gn) || (nul && fuzz_write_file(tok, nul + 1, n - gn - 1)))
        goto out;
    bn_err e;
    bn_source s;
    if (bn_hf_open(&s, dir, &e) == 0) {
        bn_hparams hp;
        if (bn_hparams_from_meta(&s.meta, &hp, dir, &e) == 0)
            bn_hparams_check_tensors(&hp, &s, &e);
        bn_source_close(&s);
    }
    bn_meta m = {0};
    if (bn_tokenizer_meta_from_hf(dir, &m, &e) == 0)
        bn_tokenizer_free(bn_tokenizer_new(&m, &e));
    bn_meta_free(&m);
out:
    unlink(gen);
    unlink(tok);
    for (size_t i = 0; i < sizeof linked / sizeof *linked; i++) {
        snprintf(to, sizeof to, "%s/%s", dir, linked[i]);
        unlink(to);
    }
    rmdir(dir);
    return 0;
}
