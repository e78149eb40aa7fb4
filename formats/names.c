/* names.c — facts about canonical tensor names (formats/bn-model.md §4.2). */
#include "formats.h"

#include <string.h>

const char *const bn_proj_names[BN_N_PROJ] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                               "ffn_gate", "ffn_up", "ffn_down"};

int bn_tensor_is_projection(const char *name)
{
    static const char *const proj[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                                       ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"};
    if (strncmp(name, "blk.", 4))
        return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof proj / sizeof *proj; i++) {
        size_t k = strlen(proj[i]);
        if (n > k && !strcmp(name + n - k, proj[i]))
            return 1;
    }
    return 0;
}

int bn_source_has_float_projection(const bn_source *s)
{
    for (size_t i = 0; i < s->n_tensors; i++) {
        const bn_tensor *t = &s->tensors[i];
        if (bn_tensor_is_projection(t->name) && (t->type == BN_F32 || t->type == BN_F16 || t->type == BN_BF16))
            return 1;
    }
    return 0;
}
