/* safetensors.h — helpers shared by the file readers of formats/. */
#ifndef BN_SAFETENSORS_H
#define BN_SAFETENSORS_H

#include "formats.h"

/* pread exactly n bytes at off, or fail naming the file. */
int bn_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *name, bn_err *e);

#endif
