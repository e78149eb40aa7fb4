/* jsonfile.h — small helpers for the JSON files of HF checkpoints. */
#ifndef BN_JSONFILE_H
#define BN_JSONFILE_H

#include "formats.h"
#include <cjson/cJSON.h>

/* Parses a whole JSON file; the error names the file. A key an object
 * holds twice keeps its last value, as Python's json and serde_json do. */
int bn_json_load(const char *path, cJSON **out, bn_err *e);
/* As bn_json_load; no_nul: a \u0000 escape is refused (cJSON's strings
 * end at a NUL, so "silu\u0000x" would read as "silu"). */
int bn_json_load_opts(const char *path, int no_nul, cJSON **out, bn_err *e);
/* Whether an (optional) file is there: any name that is, so that a
 * directory or a device in a file's place is refused by its reader, named,
 * rather than taken for a file that is missing. */
int bn_file_exists(const char *path);

/* What tokenizer.json's post-processor adds around a single text: the id
 * of the special token its template starts with (at_end 0: a BOS) or ends
 * with (at_end 1: what an embedding model pools at), or -1 when it adds
 * none there. TemplateProcessing, alone or in a Sequence. */
int32_t bn_hf_template_special(const cJSON *post_processor, int at_end);

/* The chat format bn renders for a chat template's text (tokenizer_config's
 * chat_template, a GGUF's tokenizer.chat_template): "bitnet", "falcon3",
 * "llama3", "llama3.1" or "llama3.2" (the dated system message of Llama
 * 3.1's and 3.2's templates), or "none" when it is none of these (NULL
 * included). */
const char *bn_chat_format_of_template(const char *tmpl);

/* What a Hugging Face checkpoint directory says about its chat template
 * and its BOS, read as transformers loads a tokenizer: a
 * chat_template.jinja file (where transformers saves the template now)
 * wins over tokenizer_config.json's chat_template, and a config that
 * lists named templates ([{"name", "template"}, ...]) gives the one named
 * "default". Missing files are fine; malformed ones are errors. */
typedef struct bn_hf_tokcfg {
    char *chat_template; /* NULL: none */
    int add_bos;         /* tokenizer_config's add_bos_token: 1, 0, or -1 when it has none */
} bn_hf_tokcfg;
int bn_hf_tokcfg_read(const char *dir, bn_hf_tokcfg *out, bn_err *e);
void bn_hf_tokcfg_free(bn_hf_tokcfg *c);

#endif
