/* test_hooks.c — libbn reports through the caller's callbacks only: the
 * progress sequence of convert and quantize (and cancelling it), the
 * named-temporary hook, and nothing written to stderr meanwhile. Runs from
 * the repository root (the bundled tiny model). */
#include "formats.h"
#include "quant.h"
#include "check.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY "models/tiny-bitnet"

typedef struct seen {
    size_t calls, total, next; /* next: the step expected */
    int in_order, ends;        /* ends: calls with done == total */
    size_t cancel_at;          /* return nonzero before this step (0: never) */
} seen;

static int on_progress(void *user, size_t done, size_t total, const char *what)
{
    seen *s = user;
    s->calls++;
    s->total = total;
    if (done == total) {
        s->ends++;
        s->in_order &= !strcmp(what, "");
        return 0;
    }
    s->in_order &= done == s->next && what && *what && !s->ends;
    s->next = done + 1;
    return s->cancel_at && done == s->cancel_at;
}

#define MAX_TOLD 8
typedef struct told {
    char path[MAX_TOLD][512];
    int exists[MAX_TOLD];
    int n;
} told;

static void on_temp(void *user, const char *path, int exists)
{
    told *t = user;
    if (t->n < MAX_TOLD) {
        snprintf(t->path[t->n], sizeof t->path[t->n], "%s", path);
        t->exists[t->n++] = exists;
    }
}

/* Every name told as created is told gone later, and is gone. */
static int temps_balanced(const told *t)
{
    for (int i = 0; i < t->n; i++) {
        if (!t->exists[i])
            continue;
        int gone = 0;
        for (int j = i + 1; j < t->n; j++)
            gone |= !t->exists[j] && !strcmp(t->path[j], t->path[i]);
        if (!gone || access(t->path[i], F_OK) == 0)
            return 0;
    }
    return 1;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_convert(check_ctx *c, const char *dir)
{
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/a.bn", dir);
    snprintf(b, sizeof b, "%s/b.bn", dir);
    seen s = {.in_order = 1};
    told t = {0};
    bn_convert_opts o = {.progress = on_progress, .progress_user = &s, .temps = {on_temp, &t}};
    bn_err e;
    CHECK(c, bn_convert(TINY, a, &o, &e) == 0);
    CHECK(c, s.total > 2 && s.calls == s.total + 1 && s.ends == 1 && s.in_order && s.next == s.total);
    /* told of a name (commit's brief link, or the whole dot-file) and its end */
    CHECK(c, t.n >= 2 && temps_balanced(&t));

    /* cancelled at the third tensor: fails, says so, erases, leaves nothing,
     * and is not reported finished (the callback stopped it) */
    s = (seen){.in_order = 1, .cancel_at = 2};
    CHECK(c, bn_convert(TINY, b, &o, &e) != 0);
    CHECK(c, e.code == BN_E_CANCELLED && strstr(e.msg, "cancelled"));
    CHECK(c, s.calls == 3 && s.ends == 0 && s.in_order); /* not reported finished after the cancel */
    CHECK(c, access(b, F_OK) != 0 && entries(dir) == 1);
}

static void test_quantize(check_ctx *c, const char *dir)
{
    char a[256], q[256];
    snprintf(a, sizeof a, "%s/a.bn", dir);
    snprintf(q, sizeof q, "%s/q.bn", dir);
    seen s = {.in_order = 1};
    told t = {0};
    bn_quant_opts o = {.progress = on_progress, .progress_user = &s, .temps = {on_temp, &t},
                       .head_type = -1, .embd_type = -1};
    bn_err e;
    CHECK(c, bn_quantize(a, q, &o, &e) == 0);
    CHECK(c, s.total > 2 && s.calls == s.total + 1 && s.ends == 1 && s.in_order);
    CHECK(c, temps_balanced(&t));
    unlink(q);

    /* a failure before the first tensor still ends the progress once */
    s = (seen){.in_order = 1};
    CHECK(c, bn_quantize(TINY "/config.json", q, &o, &e) != 0);
    CHECK(c, s.ends <= 1 && access(q, F_OK) != 0);
}

/* An output aborted after writing: whatever name it had is gone, and told so. */
static void test_out_abort(check_ctx *c, const char *dir)
{
    char p[256];
    snprintf(p, sizeof p, "%s/o.bin", dir);
    told t = {0};
    bn_temp_hook h = {on_temp, &t};
    bn_out o;
    bn_err e;
    CHECK(c, bn_out_open(&o, p, &h, &e) == 0);
    CHECK(c, bn_out_write(&o, "abc", 3, &e) == 0);
    bn_out_abort(&o);
    CHECK(c, temps_balanced(&t) && access(p, F_OK) != 0);
}

int main(void)
{
    check_ctx c = {0};
    char dir[] = "/tmp/bn-hooks-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    /* everything the library does here, with stderr caught in a file */
    char errpath[300];
    snprintf(errpath, sizeof errpath, "%s.stderr", dir);
    int saved = dup(STDERR_FILENO), fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        return 2;
    close(fd);
    test_convert(&c, dir);
    test_quantize(&c, dir);
    test_out_abort(&c, dir);
    dup2(saved, STDERR_FILENO);
    close(saved);
    struct stat st;
    /* check failures went to the file too: show them, then judge */
    if (stat(errpath, &st) == 0 && st.st_size && c.failed == 0)
        fprintf(stderr, "test_hooks: the library wrote %lld bytes to stderr\n", (long long)st.st_size);
    CHECK(&c, stat(errpath, &st) == 0 && st.st_size == 0);
    if (c.failed) {
        FILE *f = fopen(errpath, "r");
        for (int ch; f && (ch = getc(f)) != EOF;)
            putc(ch, stderr);
        if (f)
            fclose(f);
    }
    unlink(errpath);
    char a[256];
    snprintf(a, sizeof a, "%s/a.bn", dir);
    unlink(a);
    rmdir(dir);
    return check_done(&c, "test_hooks");
}
