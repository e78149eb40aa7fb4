/* fuzz_tiktoken.c — a tiktoken rank file (`BASE64 RANK` lines): a clean
 * refusal, or a tokenizer (ranks mode, Llama 3 specials added) that
 * round-trips a fixed text and the input's own bytes. */
#include "formats.h"
#include "quant.h"
#include "fuzz_util.h"
#include "tokenizer.h"

static const char sample[] = "the thing, THE\tthing:  123456 \xe2\x80\x94 \xf0\x9f\x98\x80\r\n\n<|eot_id|>\xff\x80 x";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    char path[64];
    int fd = fuzz_memfile(data, n, path, sizeof path);
    if (fd < 0)
        return 0;
    bn_err e;
    bn_meta *sec = calloc(1, sizeof *sec), meta = {0};
    if (sec && bn_tokenizer_section_from_tiktoken(path, sec, &e) == 0 &&
        bn_meta_set_section(&meta, "tokenizer", sec) == 0) {
        sec = NULL; /* owned by meta now */
        bn_tokenizer *t = bn_tokenizer_meta_llama3_defaults(&meta, 1, &e) ? NULL : bn_tokenizer_new(&meta, &e);
        if (t) {
            fuzz_roundtrip(t, (const uint8_t *)sample, sizeof sample - 1, 0, 0);
            fuzz_roundtrip(t, (const uint8_t *)sample, sizeof sample - 1, BN_ENC_SPECIAL, 0);
            fuzz_roundtrip(t, data, n < 4096 ? n : 4096, 0, 0);
            bn_tokenizer_free(t);
        }
    }
    if (sec) {
        bn_meta_free(sec);
        free(sec);
    }
    bn_meta_free(&meta);
    close(fd);
    return 0;
}
