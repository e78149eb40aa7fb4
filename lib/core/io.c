/* io.c — reading whole files (mapped in place), sequential input, and
 * output that appears whole or not at all. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

int bn_fd_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

uint64_t bn_hash(const void *data, size_t n)
{
    return XXH3_64bits(data, n);
}

static int slurp_fd(int fd, const char *name, bn_map *m, bn_err *e)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    for (;;) {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return bn_fail_code(e, BN_E_IO, "%s: %s", name, strerror(errno));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    m->data = buf;
    m->size = len;
    m->mapped = 0;
    return 0;
}

int bn_map_file(const char *path, bn_map *m, bn_err *e)
{
    memset(m, 0, sizeof *m);
    if (!strcmp(path, "-"))
        return slurp_fd(STDIN_FILENO, "-", m, e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return bn_fail(e, "%s: is a directory", path);
    }
    if (!S_ISREG(st.st_mode)) {
        int rc = slurp_fd(fd, path, m, e);
        close(fd);
        return rc;
    }
    if (st.st_size == 0) {
        close(fd);
        m->data = (const uint8_t *)"";
        m->size = 0;
        m->mapped = 2; /* nothing to release */
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return bn_fail_code(e, BN_E_IO, "%s: cannot map: %s", path, strerror(errno));
#ifdef MADV_HUGEPAGE
    /* Pages that must come from the disk are read in 2 MiB folios and
     * mapped as huge pages (what is already cached keeps its folios): a
     * 17.8 GiB model mapped in 4 KiB pages decoded at a third of the speed
     * of its copy, the page tables (36 MB) outgrowing the caches. Advice. */
    (void)madvise(p, (size_t)st.st_size, MADV_HUGEPAGE);
#endif
    m->data = p;
    m->size = (size_t)st.st_size;
    m->mapped = 1;
    return 0;
}

void bn_unmap(bn_map *m)
{
    if (!m->data)
        return;
    if (m->mapped == 1)
        munmap((void *)m->data, m->size);
    else if (m->mapped == 0)
        free((void *)m->data);
    memset(m, 0, sizeof *m);
}

/* A pipe between two stages (bn-convert | bn-quant | bn-pack) holds 64 KiB
 * by default: every tensor then crosses it in thousands of small reads and
 * writes, each a wake-up of the other side. Asking for the largest size an
 * unprivileged process may set cuts those by 16x; a file, a terminal or a
 * refusal leaves things as they were. */
static void widen_pipe(int fd)
{
#ifdef F_SETPIPE_SZ
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
        (void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#else
    (void)fd;
#endif
}

int bn_in_open(bn_in *in, const char *path, bn_err *e)
{
    memset(in, 0, sizeof *in);
    in->name = path;
    if (!strcmp(path, "-")) {
        in->fp = stdin;
        widen_pipe(fileno(stdin));
        return 0;
    }
    in->fp = fopen(path, "rb");
    if (!in->fp)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(errno));
    in->own = 1;
    return 0;
}

int bn_in_read(bn_in *in, void *buf, size_t n, bn_err *e)
{
    size_t got = n ? fread(buf, 1, n, in->fp) : 0;
    in->pos += got;
    if (got != n) {
        if (ferror(in->fp))
            return bn_fail_code(e, BN_E_IO, "%s: read error: %s", in->name, strerror(errno));
        return bn_fail(e, "%s: truncated: ends at byte %llu, %zu more byte%s expected", in->name,
                       (unsigned long long)in->pos, n - got, n - got == 1 ? "" : "s");
    }
    return 0;
}

int bn_in_skip(bn_in *in, uint64_t n, bn_err *e)
{
    uint8_t buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (bn_in_read(in, buf, k, e))
            return -1;
        n -= k;
    }
    return 0;
}

void bn_in_close(bn_in *in)
{
    if (in->own && in->fp)
        fclose(in->fp);
    in->fp = NULL;
}

int bn_out_is_tty(const char *path)
{
    if (!path || !strcmp(path, "-"))
        return isatty(STDOUT_FILENO); /* quiet-ok: only asks */
    /* a name for one (/dev/stdout, /dev/tty, /dev/pts/N): only a
     * character device can be one, and opening it changes nothing */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode))
        return 0;
    int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    int tty = fd >= 0 && isatty(fd);
    if (fd >= 0)
        close(fd);
    return tty;
}

/* ------------------------------------------------------ named temporaries
 *
 * Where O_TMPFILE works, an output has no name until commit, so any death
 * leaves nothing. Where it does not (some file systems), the output is a
 * named dot-file until commit; abort removes it, and the caller's hook is
 * told of it so that a program can remove it on a fatal signal too (core.h,
 * bn_temp_hook). SIGKILL cannot be caught: only O_TMPFILE protects against
 * it. */
static void tell_temp(const bn_out *o, const char *path, int exists)
{
    if (o->temps.fn)
        o->temps.fn(o->temps.user, path, exists);
}

static char *dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    char *d = strdup(dirname(copy));
    free(copy);
    return d;
}

/* What the link p points to, as a path from here (a relative target
 * joined to p's directory), malloc'ed; NULL when out of memory, or with
 * *unreadable set when the link cannot be read. */
static char *link_target(const char *p, int *unreadable)
{
    char target[PATH_MAX];
    ssize_t n = readlink(p, target, sizeof target - 1);
    *unreadable = n <= 0;
    if (n <= 0)
        return NULL;
    target[n] = 0;
    if (target[0] == '/')
        return strdup(target);
    char *dir = dir_of(p), *next = NULL;
    if (dir && asprintf(&next, "%s/%s", dir, target) < 0)
        next = NULL;
    free(dir);
    return next;
}

/* The file a path names, through any symbolic links (at most 40, as the
 * kernel follows): an output replaces the file a link points to and
 * leaves the link, as writing through it would. malloc'ed; NULL with
 * errno ENOMEM, or ELOOP for a loop (a longer chain), which open would
 * have refused. An unreadable link is left for open to report. */
char *bn_path_follow_links(const char *path)
{
    char *p = strdup(path);
    struct stat st;
    for (int hops = 0; p && lstat(p, &st) == 0 && S_ISLNK(st.st_mode); hops++) {
        if (hops == 40) {
            free(p);
            errno = ELOOP;
            return NULL;
        }
        int unreadable;
        char *next = link_target(p, &unreadable);
        if (unreadable)
            break;
        free(p);
        p = next;
    }
    if (!p)
        errno = ENOMEM;
    return p;
}

/* The descriptor N when path names one of this process's open descriptors
 * (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N or /proc/PID/fd/N
 * for this PID, directly or through links), else -1. Such a name is the
 * stream itself: a program that renamed a file over what it resolves to
 * replaced the file the shell had opened (a log appended to with >>). */
int bn_path_descriptor(const char *path)
{
    char hop[PATH_MAX], pid_fd[64];
    snprintf(hop, sizeof hop, "%s", path);
    snprintf(pid_fd, sizeof pid_fd, "/proc/%ld/fd/", (long)getpid());
    for (int hops = 0; hops <= 40; hops++) {
        static const char *const std[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
        for (int i = 0; i < 3; i++)
            if (!strcmp(hop, std[i]))
                return i;
        static const char *const dirs[] = {"/dev/fd/", "/proc/self/fd/", NULL};
        for (int i = 0; i < 3; i++) {
            const char *d = i < 2 ? dirs[i] : pid_fd;
            size_t n = strlen(d);
            char *end;
            if (!strncmp(hop, d, n) && hop[n] >= '0' && hop[n] <= '9') {
                long fd = strtol(hop + n, &end, 10);
                if (!*end && fd <= INT_MAX)
                    return (int)fd;
            }
        }
        /* one link further, unless it is /proc's own link to the file */
        struct stat st;
        int unreadable;
        char *joined = lstat(hop, &st) || !S_ISLNK(st.st_mode) ? NULL : link_target(hop, &unreadable);
        if (!joined)
            return -1;
        /* its directory made canonical, so that a relative link (into
         * ../../proc/self/fd) and /proc/self itself meet the names above */
        char *slash = strrchr(joined, '/'), real[PATH_MAX];
        *slash = 0;
        int fits = realpath(*joined ? joined : "/", real)
                       ? snprintf(hop, sizeof hop, "%s/%s", strcmp(real, "/") ? real : "", slash + 1) < (int)sizeof hop
                       : (*slash = '/', snprintf(hop, sizeof hop, "%s", joined) < (int)sizeof hop);
        free(joined);
        if (!fits)
            return -1;
    }
    return -1;
}

/* The process's umask, read without changing it (umask(2) would, for a
 * moment, under any other thread); 022 where /proc does not say. */
static mode_t current_umask(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned mask = 022;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Umask: %o", &mask) == 1)
            break;
    if (f)
        fclose(f);
    return (mode_t)(mask & 0777);
}

/* An output to be written in place (a descriptor, a device) could not be
 * opened: o back to nothing, the reason said. */
static int in_place_failed(bn_out *o, const char *path, int err, bn_err *e)
{
    free(o->path);
    memset(o, 0, sizeof *o);
    o->fd = -1;
    return bn_fail_code(e, BN_E_IO, "%s: cannot open: %s", path, strerror(err));
}

int bn_out_open(bn_out *o, const char *path, const bn_temp_hook *temps, bn_err *e)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    if (temps)
        o->temps = *temps;
    if (!path || !strcmp(path, "-")) {
        o->fp = stdout; /* quiet-ok: the caller asked for "-" */
        widen_pipe(fileno(o->fp));
        return 0;
    }
    int named_fd = bn_path_descriptor(path);
    if (named_fd >= 0) { /* written into, in place, as "-" is (a copy of it, closed on commit) */
        if (!(o->path = strdup(path)))
            return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
        int fl = fcntl(named_fd, F_GETFL);
        o->fd = fl < 0 || (fl & O_ACCMODE) == O_RDONLY ? -1 : fcntl(named_fd, F_DUPFD_CLOEXEC, 3);
        if (o->fd < 0 || !(o->fp = fdopen(o->fd, "wb"))) {
            int err = fl >= 0 && (fl & O_ACCMODE) == O_RDONLY ? EBADF : errno; /* open for reading only */
            if (o->fd >= 0)
                close(o->fd);
            return in_place_failed(o, path, err, e);
        }
        o->direct = 1;
        return 0;
    }
    o->path = bn_path_follow_links(path);
    if (!o->path && errno == ELOOP)
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(ELOOP));
    if (!o->path)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    /* A device, FIFO or socket is written in place: renaming a file over
     * it would replace /dev/null itself (as root) or leave the reader of a
     * FIFO waiting. Only regular files get the temporary and the rename. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int err = S_ISDIR(st.st_mode) ? EISDIR : 0;
        if (!err && (o->fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
            err = errno;
        if (!err && !(o->fp = fdopen(o->fd, "wb"))) {
            err = errno;
            close(o->fd);
        }
        if (err)
            return in_place_failed(o, path, err, e);
        o->direct = 1;
        return 0;
    }
    /* a file replaced keeps its permission bits (and, where we may, owner) */
    int replaces = stat(o->path, &st) == 0;
    char *dir = dir_of(o->path);
    if (!o->path || !dir) {
        free(dir);
        free(o->path);
        o->path = NULL;
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
    }
    /* An unnamed file vanishes by itself if we die before commit. */
    o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666); /* less the umask, as a new file */
    if (o->fd < 0) {
        size_t n = strlen(o->path) + 32;
        o->tmp_path = malloc(n);
        if (!o->tmp_path) {
            free(dir);
            return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
        }
        char *base_copy = strdup(o->path);
        snprintf(o->tmp_path, n, "%s/.%s.XXXXXX", dir, base_copy ? basename(base_copy) : "bn");
        free(base_copy);
        o->fd = mkstemp(o->tmp_path);
        if (o->fd >= 0)
            tell_temp(o, o->tmp_path, 1);
        if (o->fd < 0) {
            int err = errno;
            free(dir);
            free(o->tmp_path);
            free(o->path);
            memset(o, 0, sizeof *o);
            return bn_fail_code(e, BN_E_IO, "%s: cannot create: %s", path, strerror(err));
        }
        fchmod(o->fd, 0666 & ~current_umask()); /* mkstemp made it 0600; as a new file */
    }
    if (replaces) {
        if (fchown(o->fd, st.st_uid, st.st_gid) != 0) {
            /* not ours to give away: the owner stays who writes it */
        }
        fchmod(o->fd, st.st_mode & 0777); /* its permissions, not a set-id bit */
    }
    free(dir);
    o->fp = fdopen(o->fd, "wb");
    if (!o->fp) {
        int err = errno;
        bn_out_abort(o);
        return bn_fail_code(e, BN_E_IO, "%s: %s", path, strerror(err));
    }
    /* Whole 2 MiB writes at 2 MiB offsets leave the file in the page
     * cache as 2 MiB folios, which a later mapping (bn-infer --mmap) gets
     * as huge pages; the default 4 KiB writes left 4 KiB pages, and a 17.8
     * GiB b3 model mapped so decoded at 0.41-0.58 t/s against 1.07 with
     * most of it in huge pages (1 Zen 5 thread; TLB reach). glibc takes
     * the size only with a buffer given; without memory for it the output
     * is the same, in smaller writes. */
    if ((o->iobuf = malloc(BN_HUGE_PAGE)) && setvbuf(o->fp, o->iobuf, _IOFBF, BN_HUGE_PAGE) != 0) {
        free(o->iobuf);
        o->iobuf = NULL;
    }
    return 0;
}

int bn_out_write(bn_out *o, const void *buf, size_t n, bn_err *e)
{
    if (n && fwrite(buf, 1, n, o->fp) != n) {
        o->failed = 1;
        return bn_fail_write(e, o->path ? o->path : "-");
    }
    o->pos += n;
    return 0;
}

int bn_out_pad(bn_out *o, size_t alignment, bn_err *e)
{
    static const uint8_t zeros[256];
    size_t pad = (size_t)((alignment - o->pos % alignment) % alignment);
    while (pad) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        if (bn_out_write(o, zeros, k, e))
            return -1;
        pad -= k;
    }
    return 0;
}

int bn_out_commit(bn_out *o, bn_err *e)
{
    const char *name = o->path ? o->path : "-";
    if (fflush(o->fp) != 0) { /* the message before the abort frees name */
        int rc = bn_fail_write(e, name);
        bn_out_abort(o);
        return rc;
    }
    /* A caller writing o->fp directly (a --report, --logits) may have had a
     * write fail earlier, which fflush no longer sees: renaming that file
     * into place would keep a truncated output. (errno may be stale by
     * now, so no reason is given.) */
    if (ferror(o->fp)) {
        int rc = bn_fail_code(e, BN_E_IO, "%s: write error", name);
        bn_out_abort(o);
        return rc;
    }
    if (!o->path)
        return 0;
    if (o->direct) {
        fclose(o->fp);
        free(o->path);
        memset(o, 0, sizeof *o);
        o->fd = -1;
        return 0;
    }
    if (fsync(o->fd) != 0 && errno != EINVAL) {
        int rc = bn_fail_write(e, name);
        bn_out_abort(o);
        return rc;
    }
    int rc = 0;
    if (o->tmp_path) {
        if (rename(o->tmp_path, o->path) != 0)
            rc = bn_fail_code(e, BN_E_IO, "%s: cannot rename into place: %s", name, strerror(errno));
        else
            tell_temp(o, o->tmp_path, 0);
    } else {
        /* Give the unnamed file a temporary name, then rename over the target
         * (linkat cannot replace an existing file). */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->fd);
        size_t n = strlen(o->path) + 32;
        char *tmp = malloc(n);
        if (!tmp)
            rc = bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
        else {
            char *dir = dir_of(o->path);
            char *base_copy = strdup(o->path);
            snprintf(tmp, n, "%s/.%s.%ld", dir ? dir : ".", base_copy ? basename(base_copy) : "bn",
                     (long)getpid());
            free(dir);
            free(base_copy);
            /* For the instant the file has a name but not its own; told
             * before the name exists, so no signal finds it untold. */
            tell_temp(o, tmp, 1);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0)
                rc = bn_fail_code(e, BN_E_IO, "%s: cannot create: %s", name, strerror(errno));
            else if (rename(tmp, o->path) != 0) {
                rc = bn_fail_code(e, BN_E_IO, "%s: cannot rename into place: %s", name, strerror(errno));
                unlink(tmp);
            }
            tell_temp(o, tmp, 0);
            free(tmp);
        }
    }
    fclose(o->fp);
    o->fp = NULL;
    free(o->iobuf);
    o->iobuf = NULL;
    if (rc && o->tmp_path) {
        unlink(o->tmp_path);
        tell_temp(o, o->tmp_path, 0);
    }
    free(o->tmp_path);
    free(o->path);
    o->tmp_path = o->path = NULL;
    return rc;
}

void bn_out_abort(bn_out *o)
{
    if (!o->path) {
        if (o->fp)
            fflush(o->fp);
        o->fp = NULL;
        return;
    }
    if (o->fp)
        fclose(o->fp);
    else if (o->fd >= 0)
        close(o->fd);
    free(o->iobuf);
    if (o->tmp_path) {
        unlink(o->tmp_path);
        tell_temp(o, o->tmp_path, 0);
    }
    free(o->tmp_path);
    free(o->path);
    memset(o, 0, sizeof *o);
    o->fd = -1;
}
