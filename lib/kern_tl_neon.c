/* kern_tl_neon.c — placeholder */
#include "kern_tl.h"
const bn_kernels *bn_kernels_tl_neon(uint32_t layout)
{
    (void)layout;
    return NULL;
}
