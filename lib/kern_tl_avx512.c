/* kern_tl_avx512.c — placeholder, filled below */
#include "kern_tl.h"
const bn_kernels *bn_kernels_tl_avx512(uint32_t layout)
{
    (void)layout;
    return NULL;
}
