/* formats.h — the readers of foreign model formats. Each fills a bn_source
 * whose names, types and metadata are already canonical (formats/bn-model.md):
 * nothing above this floor knows which file a model came from. */
#ifndef BN_FORMATS_H
#define BN_FORMATS_H

#include "bn.h"

/* A Hugging Face checkpoint directory (config.json, *.safetensors,
 * tokenizer files), converted to canonical names and types on the fly. */
int bn_hf_open(bn_source *s, const char *dir, bn_err *e);

/* One raw .safetensors file: tensor names and dtypes as stored (no mapping). */
int bn_safetensors_open(bn_source *s, const char *path, bn_err *e);

/* A GGUF v2/v3 file (bitnet.cpp or llama.cpp), canonical on the fly. */
int bn_gguf_open(bn_source *s, const char *path, bn_err *e);
int bn_gguf_sniff(const uint8_t *head, size_t n);

#endif
