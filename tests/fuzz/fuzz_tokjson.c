/* fuzz_tokjson.c — a Hugging Face tokenizer.json: the loader must refuse
 * it cleanly or produce a section that builds a tokenizer, and any
 * tokenizer it builds must round-trip text (with and without special-token
 * recognition) — including the input's own bytes. */
#include "formats.h"
#include "jsonfile.h"
#include "quant.h"
#include "fuzz_util.h"
#include "tokenizer.h"

static const char sample[] = "The thing, the THEATRE: 'll 123456 \xe2\x80\x94 caf\xc3\xa9 \xf0\x9f\x98\x80\n\n"
                             "<|begin_of_text|>x<|eot_id|> <user> \xff\xfe\x80 end";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char path[64];
    int fd = fuzz_memfile(data, n, path, sizeof path);
    if (fd < 0)
        return 0;
    bn_err e;
    bn_meta *sec = calloc(1, sizeof *sec), meta = {0};
    cJSON *root = NULL; /* parsed as bn-convert parses it, once */
    if (sec && bn_json_load(path, &root, &e) == 0 && bn_tokenizer_section_from_hf(root, path, sec, &e) == 0 &&
        bn_meta_set_section(&meta, "tokenizer", sec) == 0) {
        sec = NULL; /* owned by meta now */
        bn_tokenizer *t = bn_tokenizer_new(&meta, &e);
        if (t) {
            fuzz_roundtrip(t, (const uint8_t *)sample, sizeof sample - 1, 0, 0);
            fuzz_roundtrip(t, (const uint8_t *)sample, sizeof sample - 1, BN_ENC_SPECIAL, 0);
            fuzz_roundtrip(t, data, n < 4096 ? n : 4096, BN_ENC_SPECIAL, 0);
            bn_tokenizer_free(t);
        }
    }
    cJSON_Delete(root);
    if (sec) {
        bn_meta_free(sec);
        free(sec);
    }
    bn_meta_free(&meta);
    /* The model-level keys (post-processor BOS) come from the same file. */
    bn_meta m2 = {0};
    bn_tokenizer_meta_from_hf(path, &m2, &e);
    bn_meta_free(&m2);
    close(fd);
    return 0;
}
