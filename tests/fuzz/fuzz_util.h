/* fuzz_util.h — libFuzzer harness helpers: the parsers take file names, so
 * each input is handed over as an in-memory file (memfd). */
#ifndef BN_FUZZ_UTIL_H
#define BN_FUZZ_UTIL_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data into a fresh memfd and returns its /proc path in path. */
static int fuzz_memfile(const unsigned char *data, size_t n, char *path, size_t cap)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
