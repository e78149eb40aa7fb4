/* cli.c — start-up shared by every program: messages, number parsing,
 * and the pipe policy (the options are opt.c's). */
#include "cli.h"
#include "core.h"
#include "signals.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void bn_cli_init(void)
{
    /* A downstream `head` closing the pipe ends us quietly, like cat. */
    signal(SIGPIPE, SIG_DFL);
    /* Started with 0, 1 or 2 closed (`<&-`), the first file we open would
     * take that number: stdin would read our own output file, or our
     * stdout would write into an input. Fill the gaps with /dev/null opened
     * the wrong way round, so using such a stream still fails loudly
     * ("Bad file descriptor") instead of silently reading nothing or
     * discarding output. */
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* lower numbers are open by now, so this one gets fd */
        if (open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY) < 0)
            break;
    }
}

/* fmt's message on one line after the program's name, whatever it quotes:
 * a name or value read from a file (an architecture, a token, a path) or
 * an argument may hold a newline or other control bytes, shown as \n, \t,
 * \r or \xNN. Backslashes stay as they are: the line is for people, and a
 * path reads as it is typed. */
static void report_line(const bn_prog *p, const char *fmt, va_list ap)
{
    char msg[2048], shown[4 * sizeof msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%s: %s\n", p->name, bn_escape(msg, BN_ESC_CONTROLS, shown, sizeof shown));
}

void bn_report(const bn_prog *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_line(p, fmt, ap);
    va_end(ap);
}

const char *const bn_cli_chat_encodings[] = {"split", "whole", NULL};

const char *bn_cli_chat_date_problem(const char *date)
{
    if (date && (strlen(date) > 31 || strpbrk(date, "\r\n")))
        return "--chat-date takes one line of at most 31 bytes";
    return NULL;
}

int bn_stdout_done(const bn_prog *p)
{
    /* ferror too: a write that failed earlier (one large fputs of a JSON
     * document goes straight to the file) leaves nothing for fflush to
     * fail on, only the error flag. */
    if (!fflush(stdout) && !ferror(stdout))
        return BN_EXIT_OK;
    bn_err e;
    bn_fail_write(&e, "-");
    bn_report(p, "%s", e.msg);
    return BN_EXIT_DATA;
}

int bn_cli_report_open(bn_cli_report *r, const char *path, bn_err *e)
{
    memset(r, 0, sizeof *r);
    if (!path)
        return 0;
    if (!strcmp(path, "-")) {
        r->fp = stderr;
        return 0;
    }
    bn_temp_hook temps = {bn_cli_track_temp, NULL};
    if (bn_out_open(&r->out, path, &temps, e))
        return -1;
    r->fp = r->out.fp;
    r->is_file = 1;
    return 0;
}

/* path's directory, resolved, and its last name: the file it names
 * whether or not it exists yet (0: the directory cannot be resolved). */
static int dir_and_name(const char *path, char dir[PATH_MAX], const char **name)
{
    const char *slash = strrchr(path, '/');
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    *name = slash ? slash + 1 : path;
    return realpath(d, dir) != NULL;
}

static int same_named_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!strcmp(a, b))
        return 1;
    int ea = !stat(a, &sa), eb = !stat(b, &sb);
    if (ea && eb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char da[PATH_MAX], db[PATH_MAX];
    const char *na, *nb;
    return !ea && !eb && dir_and_name(a, da, &na) && dir_and_name(b, db, &nb) && !strcmp(da, db) && !strcmp(na, nb);
}

int bn_cli_same_file(const char *a, const char *b, int b_dash_fd)
{
    if (!a || !b || !strcmp(a, "-"))
        return 0;
    struct stat sa, sb;
    if (!strcmp(b, "-") && b_dash_fd >= 0 && bn_path_descriptor(a) == b_dash_fd)
        return 1; /* a names that very stream (/dev/stdout beside "-"), a pipe too */
    if (!strcmp(b, "-")) /* b is a redirection: the file behind its descriptor */
        return !stat(a, &sa) && !fstat(b_dash_fd, &sb) && S_ISREG(sb.st_mode) && sa.st_dev == sb.st_dev &&
               sa.st_ino == sb.st_ino;
    /* names that do not exist yet are compared as the files their links
     * (a dangling one included) would have written */
    char *fa = bn_path_follow_links(a), *fb = bn_path_follow_links(b);
    int same = same_named_file(fa ? fa : a, fb ? fb : b);
    free(fa);
    free(fb);
    return same;
}

int bn_cli_report_close(bn_cli_report *r, int ok, bn_err *e)
{
    int rc = 0;
    if (r->is_file && ok)
        rc = bn_out_commit(&r->out, e);
    else if (r->is_file)
        bn_out_abort(&r->out);
    else if (r->fp && fflush(r->fp))
        rc = ok ? bn_fail_write(e, "-") : 0;
    memset(r, 0, sizeof *r);
    return rc;
}

void bn_cli_show_warning(void *prog, int level, const char *msg)
{
    if (level <= BN_LOG_WARN)
        bn_report(prog, "%s", msg);
}

const char *bn_cli_size(uint64_t bytes, char buf[32])
{
    double b = (double)bytes;
    snprintf(buf, 32, "%.1f %s", b < 1048576.0 ? b / 1024.0 : b < 1073741824.0 ? b / 1048576.0 : b / 1073741824.0,
             b < 1048576.0 ? "KiB" : b < 1073741824.0 ? "MiB" : "GiB");
    return buf;
}

int bn_usage_error(const bn_prog *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_line(p, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", p->name);
    return BN_EXIT_USAGE;
}

int bn_progress_enabled(void)
{
    return isatty(STDERR_FILENO);
}

int bn_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    /* digits only: strtoull would skip blanks and take a sign (" -1" is 2^64 − 1) */
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int bn_parse_double(const char *s, double *out)
{
    char *end;
    /* a decimal number: strtod would also skip blanks and read hex ("0x1p-1") */
    if (!s || !*s || !(isdigit((unsigned char)*s) || strchr("+-.", *s)) || strpbrk(s, "xX"))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}
