/* fuzz_tokenize.c — the tokenizer's input text. For any bytes,
 * decode(encode(x)) == x must hold exactly (tokenizer.h), with and without
 * special-token recognition, for the bundled tiny model's tokenizer
 * (merges mode, BN_FUZZ_HFDIR, default models/tiny-bitnet) and for the
 * Llama 3 ranks (ranks mode, BN_FUZZ_LLAMA3, default
 * ../shared/data/llama3-tokenizer.model; skipped when absent). The chat
 * parser and renderer get the same input. */
#include "formats.h"
#include "quant.h"
#include "fuzz_util.h"
#include "tokenizer.h"

#include <stdlib.h>

/* The two tokenizers are built once per process: building the Llama 3 one
 * takes longer than thousands of inputs. This is harness state, not
 * library state; libFuzzer calls the target from one thread. */
static bn_tokenizer *toks[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    bn_err e;
    const char *hf = getenv("BN_FUZZ_HFDIR"), *l3 = getenv("BN_FUZZ_LLAMA3");
    bn_tokenizer_src a = {.model = hf ? hf : "models/tiny-bitnet"};
    bn_tokenizer_src b = {.vocab = l3 ? l3 : "../shared/data/llama3-tokenizer.model"};
    if (!(toks[0] = bn_tokenizer_load(&a, &e))) {
        fprintf(stderr, "fuzz_tokenize: %s\n", e.msg);
        abort();
    }
    if (access(b.vocab, R_OK) == 0 && !(toks[1] = bn_tokenizer_load(&b, &e))) {
        fprintf(stderr, "fuzz_tokenize: %s\n", e.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
    for (int k = 0; k < 2; k++) {
        bn_tokenizer *t = toks[k];
        if (!t)
            continue;
        fuzz_roundtrip(t, data, n, 0, 1);
        fuzz_roundtrip(t, data, n, BN_ENC_SPECIAL, 1);
        bn_chat_msg *msgs = NULL;
        size_t nm;
        bn_err e;
        bn_tokens ids = {0};
        if (bn_chat_parse(data, n, &msgs, &nm, &e) == 0)
            bn_tokenizer_chat(t, msgs, nm, 1, &ids, &e);
        free(msgs);
        bn_tokens_free(&ids);
    }
    return 0;
}
