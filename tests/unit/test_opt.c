/* test_opt.c — the option parser (cmd/cli/opt.c): every spelling of every
 * kind of option, the exact wording of its errors, operands, and the help
 * generated from a table. */
#include "check.h"
#include "opt.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dests {
    int quiet, verbose, fmt, threads, pred, kind, chat, calls;
    uint32_t ctx;
    uint64_t seed;
    float temp;
    const char *out, *items[2], *cb_last;
    size_t n_items;
} dests;

static int even_length(void *dest, const char *value, char *why, size_t n)
{
    dests *d = dest;
    if (strlen(value) % 2) {
        snprintf(why, n, "'%s' has an odd length", value);
        return -1;
    }
    d->calls++;
    d->cb_last = value;
    return 0;
}

static const char *const fmt_names[] = {"md", "csv", "json", NULL};
static const int fmt_values[] = {10, 20, 30};
static const char *const kind_names[] = {"a", "b", NULL};

static const bn_prog prog = {
    .name = "prog",
    .summary = "a test program",
    .usage = "usage: prog [options] [FILE]\n",
    .epilog = "Exit status: 0, 1 or 2.\n",
    .operand = "FILE",
    .max_operands = 1,
};

static const bn_prog no_operands = {.name = "none", .summary = "s", .usage = "u\n"};

#define N_OPTS 17

static void table(bn_opt *t, dests *d)
{
    memset(d, 0, sizeof *d);
    d->out = "-";
    d->ctx = 7;
    d->fmt = 10;
    bn_opt opts[N_OPTS] = {
        OPT_SECTION("general:"),
        {.kind = BN_OPT_FLAG, .dash_name = "cnv", .name = "chat", .dest = &d->chat, .help = "chat"},
        OPT_FLAG('q', "quiet", &d->quiet, "no progress"),
        OPT_FLAG('v', "verbose", &d->verbose, "say more"),
        OPT_STRING('o', "output", &d->out, "FILE", "write to FILE\nnot to stdout"),
        OPT_SET(0, "csv", &d->fmt, 20, "the same as --fmt csv"),
        OPT_ENUM(0, "fmt", &d->fmt, NULL, fmt_names, fmt_values, "report format: %s"),
        OPT_SECTION("numbers:"),
        OPT_INT('t', "threads", &d->threads, "N", 1, 64, "threads"),
        OPT_INT('n', "predict", &d->pred, "N", -1, 2147483647.0, "tokens"),
        OPT_U32('c', "ctx", &d->ctx, "N", 2, 4294967295.0, "context"),
        OPT_U64(0, "seed", &d->seed, "S", "seed"),
        OPT_FLOAT(0, "temp", &d->temp, "T", 0, 2, "temperature"),
        OPT_ENUM('k', NULL, &d->kind, "K", kind_names, NULL, "a kind"),
        OPT_LIST(0, "item", d->items, &d->n_items, 2, "X", "an item (repeatable)"),
        OPT_CALL(0, "even", d, even_length, "TEXT", "text of even length"),
        OPT_END,
    };
    memcpy(t, opts, sizeof opts);
}

typedef struct result {
    int rc, n;
    char *operands[8];
    char out[4096], err[4096];
} result;

/* Reads what fd 1 or 2 received into buf, then restores it. */
static void capture_begin(int fd, int *saved, FILE **tmp)
{
    fflush(fd == 1 ? stdout : stderr);
    *tmp = tmpfile();
    *saved = dup(fd);
    dup2(fileno(*tmp), fd);
}

static void capture_end(int fd, int saved, FILE *tmp, char *buf, size_t n)
{
    fflush(fd == 1 ? stdout : stderr);
    dup2(saved, fd);
    close(saved);
    rewind(tmp);
    size_t got = fread(buf, 1, n - 1, tmp);
    buf[got] = 0;
    fclose(tmp);
}

/* Parses the words (ending with NULL) against t as program p. */
static void run_p(const bn_prog *p, bn_opt *t, result *r, const char *const *words)
{
    static char store[32][256];
    char *argv[32];
    int argc = 0;
    argv[argc++] = "prog";
    for (; words[argc - 1]; argc++) {
        snprintf(store[argc], sizeof store[argc], "%s", words[argc - 1]);
        argv[argc] = store[argc];
    }
    int so, se;
    FILE *to, *te;
    capture_begin(1, &so, &to);
    capture_begin(2, &se, &te);
    r->n = -1;
    r->rc = bn_opt_parse(p, t, argc, argv, &r->n);
    capture_end(1, so, to, r->out, sizeof r->out);
    capture_end(2, se, te, r->err, sizeof r->err);
    for (int i = 0; i < r->n && i < 8; i++)
        r->operands[i] = argv[1 + i];
}

#define RUN(t, r, ...) run_p(&prog, t, r, (const char *const[]){__VA_ARGS__, NULL})

static const char *hint = "Try 'prog --help' for more information.\n";

/* The error is exactly "prog: MSG" and the hint, and the status is 2. */
static int usage_error_is(const result *r, const char *msg)
{
    char want[1024];
    snprintf(want, sizeof want, "prog: %s\n%s", msg, hint);
    if (r->rc == BN_EXIT_USAGE && !strcmp(r->err, want) && !r->out[0])
        return 1;
    fprintf(stderr, "rc %d, stderr: %s", r->rc, r->err);
    return 0;
}

static void test_spellings(check_ctx *c)
{
    bn_opt t[N_OPTS];
    dests d;
    result r;
    table(t, &d);
    RUN(t, &r, "--output=a", "--threads", "3", "-c9", "-n", "-1", "--temp=0.5", "--seed", "18446744073709551615");
    CHECK(c, r.rc == BN_OPT_RUN && r.n == 0 && !r.err[0] && !r.out[0]);
    CHECK(c, !strcmp(d.out, "a") && d.threads == 3 && d.ctx == 9 && d.pred == -1 && d.temp == 0.5f);
    CHECK(c, d.seed == UINT64_MAX);
    CHECK(c, t[4].given == 1 && !strcmp(t[4].last, "a")); /* --output */
    table(t, &d);
    RUN(t, &r, "-o", "b", "--threads=4", "-c", "10", "--predict=12");
    CHECK(c, r.rc == BN_OPT_RUN && !strcmp(d.out, "b") && d.threads == 4 && d.ctx == 10 && d.pred == 12);
    /* a value is the next word even when it looks like an option */
    table(t, &d);
    RUN(t, &r, "-o", "-h", "--output", "--", "-o", "--help");
    CHECK(c, r.rc == BN_OPT_RUN && !strcmp(d.out, "--help") && !r.out[0] && t[4].given == 3);
    /* an empty attached value is a value, not a missing one: for a FILE,
     * an empty name, which is refused as such */
    table(t, &d);
    RUN(t, &r, "--output=");
    CHECK(c, r.rc == BN_EXIT_USAGE && strstr(r.err, "option '--output': an empty file name\n"));
    /* bundled letters, a value letter ending the bundle */
    table(t, &d);
    RUN(t, &r, "-qv");
    CHECK(c, r.rc == BN_OPT_RUN && d.quiet && d.verbose);
    table(t, &d);
    RUN(t, &r, "-vqoFILE");
    CHECK(c, r.rc == BN_OPT_RUN && d.quiet && d.verbose && !strcmp(d.out, "FILE"));
    table(t, &d);
    RUN(t, &r, "-qo", "F2", "-vt2");
    CHECK(c, r.rc == BN_OPT_RUN && d.quiet && d.verbose && !strcmp(d.out, "F2") && d.threads == 2);
    /* the single-dash long spelling is matched whole; -c alone is still --ctx */
    table(t, &d);
    RUN(t, &r, "-cnv", "-c", "5");
    CHECK(c, r.rc == BN_OPT_RUN && d.chat == 1 && d.ctx == 5);
    table(t, &d);
    RUN(t, &r, "--chat");
    CHECK(c, r.rc == BN_OPT_RUN && d.chat == 1);
    table(t, &d);
    RUN(t, &r, "-cnv=1");
    CHECK(c, usage_error_is(&r, "option '-cnv' takes no value"));
    table(t, &d);
    RUN(t, &r, "-cnvx");
    CHECK(c, usage_error_is(&r, "option '-c': 'nvx' is not a whole number in [2, 4294967295]"));
    /* SET and ENUM share a destination: the last one given wins */
    table(t, &d);
    RUN(t, &r, "--csv");
    CHECK(c, r.rc == BN_OPT_RUN && d.fmt == 20);
    table(t, &d);
    RUN(t, &r, "--csv", "--fmt", "json");
    CHECK(c, r.rc == BN_OPT_RUN && d.fmt == 30);
    table(t, &d);
    RUN(t, &r, "-kb");
    CHECK(c, r.rc == BN_OPT_RUN && d.kind == 1);
    /* lists append, callbacks get the value */
    table(t, &d);
    RUN(t, &r, "--item", "x", "--item=y", "--even=ab", "--even", "cdef");
    CHECK(c, r.rc == BN_OPT_RUN && d.n_items == 2 && !strcmp(d.items[0], "x") && !strcmp(d.items[1], "y"));
    CHECK(c, d.calls == 2 && !strcmp(d.cb_last, "cdef"));
}

static void test_operands(check_ctx *c)
{
    bn_opt t[N_OPTS];
    dests d;
    result r;
    table(t, &d);
    RUN(t, &r, "-q", "in.bn", "-v");
    CHECK(c, r.rc == BN_OPT_RUN && r.n == 1 && !strcmp(r.operands[0], "in.bn") && d.quiet && d.verbose);
    table(t, &d);
    RUN(t, &r, "-");
    CHECK(c, r.rc == BN_OPT_RUN && r.n == 1 && !strcmp(r.operands[0], "-"));
    table(t, &d);
    RUN(t, &r, "-q", "--", "-v");
    CHECK(c, r.rc == BN_OPT_RUN && r.n == 1 && !strcmp(r.operands[0], "-v") && !d.verbose);
    table(t, &d);
    RUN(t, &r, "a", "b");
    CHECK(c, usage_error_is(&r, "more than one FILE given ('a' and 'b')"));
    /* any number, in order, options among them */
    bn_prog many = prog;
    many.max_operands = 0;
    table(t, &d);
    run_p(&many, t, &r, (const char *const[]){"a", "-q", "b", "--", "--c", "-", NULL});
    CHECK(c, r.rc == BN_OPT_RUN && r.n == 4 && d.quiet);
    CHECK(c, r.n == 4 && !strcmp(r.operands[0], "a") && !strcmp(r.operands[1], "b") &&
                 !strcmp(r.operands[2], "--c") && !strcmp(r.operands[3], "-"));
    table(t, &d);
    run_p(&no_operands, t, &r, (const char *const[]){"-q", "--", "-x", NULL});
    CHECK(c, r.rc == BN_EXIT_USAGE && !strcmp(r.err, "none: extra operand '-x'\nTry 'none --help' for more information.\n"));
}

static void test_errors(check_ctx *c)
{
    bn_opt t[N_OPTS];
    dests d;
    result r;
    static const struct {
        const char *words[3], *msg;
    } cases[] = {
        {{"--bogus"}, "unknown option '--bogus'"},
        {{"--bogus=3"}, "unknown option '--bogus'"},
        {{"--qui"}, "unknown option '--qui'"}, /* no abbreviations */
        {{"-Z"}, "unknown option '-Z'"},
        {{"-qZ"}, "unknown option '-Z'"},
        {{"-cn"}, "option '-c': 'n' is not a whole number in [2, 4294967295]"},
        {{"--output"}, "option '--output' needs a value"},
        {{"-o"}, "option '-o' needs a value"},
        {{"-qo"}, "option '-o' needs a value"},
        {{"-q", "--ctx"}, "option '--ctx' needs a value"},
        {{"--quiet=1"}, "option '--quiet' takes no value"},
        {{"--help=x"}, "option '--help' takes no value"},
        {{"--version=1"}, "option '--version' takes no value"},
        {{"--ctx", "abc"}, "option '--ctx': 'abc' is not a whole number in [2, 4294967295]"},
        {{"--ctx=1"}, "option '--ctx': '1' is not a whole number in [2, 4294967295]"},
        {{"--ctx=-3"}, "option '--ctx': '-3' is not a whole number in [2, 4294967295]"},
        {{"--ctx=4294967296"}, "option '--ctx': '4294967296' is not a whole number in [2, 4294967295]"},
        {{"-t", "65"}, "option '-t': '65' is not a whole number in [1, 64]"},
        {{"-t", " 5"}, "option '-t': ' 5' is not a whole number in [1, 64]"},
        {{"-t", "5x"}, "option '-t': '5x' is not a whole number in [1, 64]"},
        {{"-n", "-2"}, "option '-n': '-2' is not a whole number in [-1, 2147483647]"},
        {{"-n", "2147483648"}, "option '-n': '2147483648' is not a whole number in [-1, 2147483647]"},
        {{"--seed", "-1"}, "option '--seed': '-1' is not a whole number in [0, 18446744073709551615]"},
        {{"--temp", "2.5"}, "option '--temp': '2.5' is not a number in [0, 2]"},
        {{"--temp", "nan"}, "option '--temp': 'nan' is not a number in [0, 2]"},
        {{"--fmt", "yaml"}, "option '--fmt': 'yaml' is not one of md, csv, json"},
        {{"-k", "c"}, "option '-k': 'c' is not one of a, b"},
        {{"--even", "abc"}, "option '--even': 'abc' has an odd length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        table(t, &d);
        run_p(&prog, t, &r, cases[i].words);
        if (!usage_error_is(&r, cases[i].msg))
            fprintf(stderr, "  case %zu: wanted %s\n", i, cases[i].msg);
        CHECK(c, r.rc == BN_EXIT_USAGE && r.err[0]);
    }
    table(t, &d);
    RUN(t, &r, "--item", "a", "--item", "b", "--item", "c");
    CHECK(c, usage_error_is(&r, "option '--item': more than 2 given"));
    /* the first error wins, and nothing after it is read */
    table(t, &d);
    RUN(t, &r, "--bogus", "--help");
    CHECK(c, usage_error_is(&r, "unknown option '--bogus'"));
}

static const char *const expected_help =
    "prog — a test program\n"
    "\n"
    "usage: prog [options] [FILE]\n"
    "\n"
    "general:\n"
    "  -cnv, --chat           chat\n"
    "  -q, --quiet            no progress\n"
    "  -v, --verbose          say more\n"
    "  -o, --output FILE      write to FILE\n"
    "                         not to stdout\n"
    "      --csv              the same as --fmt csv\n"
    "      --fmt md|csv|json  report format: md, csv, json\n"
    "\n"
    "numbers:\n"
    "  -t, --threads N        threads\n"
    "  -n, --predict N        tokens\n"
    "  -c, --ctx N            context\n"
    "      --seed S           seed\n"
    "      --temp T           temperature\n"
    "  -k K                   a kind\n"
    "      --item X           an item (repeatable)\n"
    "      --even TEXT        text of even length\n"
    "  -h, --help             show this help\n"
    "      --version          show the version\n"
    "\n"
    "Exit status: 0, 1 or 2.\n";

static void test_builtins(check_ctx *c)
{
    bn_opt t[N_OPTS];
    dests d;
    result r;
    table(t, &d);
    RUN(t, &r, "--help");
    CHECK(c, r.rc == 0 && !r.err[0] && !strcmp(r.out, expected_help));
    if (strcmp(r.out, expected_help))
        fprintf(stderr, "help was:\n%s", r.out);
    table(t, &d);
    RUN(t, &r, "-qh", "--bogus");
    CHECK(c, r.rc == 0 && !strcmp(r.out, expected_help));
    table(t, &d);
    RUN(t, &r, "-q", "--version");
    CHECK(c, r.rc == 0 && !strncmp(r.out, "prog (bn) ", 10) && !r.err[0]);
    /* the dump comes after everything else is parsed */
    table(t, &d);
    RUN(t, &r, "--list-options", "--ctx=12", "-k", "b", "--even", "xy", "--item", "i", "--", "-q");
    CHECK(c, r.rc == 0 && !r.err[0]);
    CHECK(c, strstr(r.out, "-cnv,--chat\tflag\t-\t0\n") && strstr(r.out, "-q,--quiet\tflag\t-\t0\n"));
    CHECK(c, strstr(r.out, "-c,--ctx\tu32\t2..4294967295\t12\n"));
    CHECK(c, strstr(r.out, "-n,--predict\tint\t-1..2147483647\t0\n"));
    CHECK(c, strstr(r.out, "--seed\tu64\t0..18446744073709551615\t0\n"));
    CHECK(c, strstr(r.out, "--temp\tfloat\t0..2\t0\n") && strstr(r.out, "-o,--output\tstring\t-\t-\n"));
    CHECK(c, strstr(r.out, "--fmt\tenum\tmd|csv|json\tmd\n") && strstr(r.out, "--csv\tset\t-\t10\n"));
    CHECK(c, strstr(r.out, "-k\tenum\ta|b\tb\n") && strstr(r.out, "--item\tlist\t-\ti\n"));
    CHECK(c, strstr(r.out, "--even\tcall\t-\txy\n") && strstr(r.out, "\noperand\t-q\n"));
    table(t, &d);
    RUN(t, &r, "--list-options", "--ctx");
    CHECK(c, usage_error_is(&r, "option '--ctx' needs a value"));
}

/* Sizes (BN_OPT_BYTES): N, NK, NM, NG in binary multiples, at least lo,
 * nothing that overflows 64 bits. */
static void test_bytes(check_ctx *c)
{
    static const struct {
        const char *v;
        uint64_t want; /* 0: refused */
    } cases[] = {
        {"4096", 4096},       {"1k", 1024},     {"3K", 3072},     {"2m", 2u << 20}, {"5M", 5u << 20},
        {"1G", 1ull << 30},   {"7g", 7ull << 30}, {"100", 0},     {"0K", 0},        {"K", 0},
        {"", 0},              {"1.5M", 0},      {"1T", 0},        {"1KB", 0},       {"-1K", 0},
        {" 1K", 0},           {"17179869184G", 0}, {"18446744073709551615", 18446744073709551615ull},
        {"17179869183G", 17179869183ull << 30},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t size = 0;
        bn_opt t[] = {OPT_BYTES(0, "size", &size, "N[K|M|G]", 128, "a size"), OPT_END};
        char msg[256];
        result r;
        run_p(&prog, t, &r, (const char *const[]){"--size", cases[i].v, NULL});
        snprintf(msg, sizeof msg,
                 "option '--size': '%s' is not a size of at least 128 bytes (a whole number, optionally K, M or G)",
                 cases[i].v);
        int ok = cases[i].want ? r.rc == BN_OPT_RUN && size == cases[i].want : usage_error_is(&r, msg);
        if (!ok)
            fprintf(stderr, "  bytes case '%s': rc %d, size %llu\n", cases[i].v, r.rc, (unsigned long long)size);
        CHECK(c, ok);
    }
    uint64_t size = 5;
    bn_opt t[] = {OPT_BYTES(0, "size", &size, "N[K|M|G]", 1, "a size"), OPT_END};
    result r;
    RUN(t, &r, "--list-options", "--size=2K");
    CHECK(c, r.rc == 0 && strstr(r.out, "--size\tbytes\t1..18446744073709551615\t2048\n"));
}

int main(void)
{
    check_ctx c = {0};
    test_bytes(&c);
    test_spellings(&c);
    test_operands(&c);
    test_errors(&c);
    test_builtins(&c);
    return check_done(&c, "test_opt");
}
