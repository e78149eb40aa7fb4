/* opt.c — the option parser every program uses (see opt.h for the
 * conventions): finding the option a word names, converting its value,
 * the generated -h text and the --list-options dump. */
#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Help column: option spellings wider than this push their help text two
 * spaces past them instead of widening every line. */
#define SPEC_MAX 28

static int takes_value(const bn_opt *o)
{
    return o->kind != BN_OPT_FLAG && o->kind != BN_OPT_SET;
}

static int is_option(const bn_opt *o)
{
    return o->kind != BN_OPT_SECTION;
}

/* names joined by sep into buf ("f32, f16" or "f32|f16"). */
static const char *join(const char *const *names, const char *sep, char *buf, size_t n)
{
    size_t pos = 0;
    buf[0] = 0;
    for (size_t i = 0; names[i] && pos < n; i++)
        pos += (size_t)snprintf(buf + pos, n - pos, "%s%s", i ? sep : "", names[i]);
    return buf;
}

/* A whole number with an optional '-' sign, nothing else around it. */
static int parse_int(const char *s, double lo, double hi, int *out)
{
    char *end;
    if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || (double)v < lo || (double)v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* A size in bytes: digits, then optionally K, M or G (either case; 2^10,
 * 2^20, 2^30), at least lo and no more than 2^64 - 1. */
static int parse_bytes(const char *s, double lo, uint64_t *out)
{
    char num[32];
    size_t len = strlen(s);
    uint64_t mul = 1, u;
    if (len && strchr("KkMmGg", s[len - 1])) {
        char c = (char)(s[len - 1] | 0x20);
        mul = c == 'k' ? 1ull << 10 : c == 'm' ? 1ull << 20 : 1ull << 30;
        len--;
    }
    if (!len || len >= sizeof num || s[0] < '0' || s[0] > '9')
        return -1;
    memcpy(num, s, len);
    num[len] = 0;
    if (bn_parse_u64(num, 0, UINT64_MAX / mul, &u) || (double)(u * mul) < lo)
        return -1;
    *out = u * mul;
    return 0;
}

/* Converts v and stores it; on a bad value writes why and returns -1. */
static int store(bn_opt *o, char *v, char *why, size_t n)
{
    char names[512];
    uint64_t u;
    double d;
    switch (o->kind) {
    case BN_OPT_FLAG:
        *(int *)o->dest = 1;
        return 0;
    case BN_OPT_SET:
        *(int *)o->dest = o->value;
        return 0;
    case BN_OPT_INT:
        if (!parse_int(v, o->lo, o->hi, o->dest))
            return 0;
        snprintf(why, n, "'%s' is not a whole number in [%.0f, %.0f]", v, o->lo, o->hi);
        return -1;
    case BN_OPT_U32:
        if (!bn_parse_u64(v, (uint64_t)o->lo, (uint64_t)o->hi, &u)) {
            *(uint32_t *)o->dest = (uint32_t)u;
            return 0;
        }
        snprintf(why, n, "'%s' is not a whole number in [%.0f, %.0f]", v, o->lo, o->hi);
        return -1;
    case BN_OPT_U64:
        if (!bn_parse_u64(v, 0, UINT64_MAX, o->dest))
            return 0;
        snprintf(why, n, "'%s' is not a whole number in [0, %" PRIu64 "]", v, UINT64_MAX);
        return -1;
    case BN_OPT_BYTES:
        if (!parse_bytes(v, o->lo, o->dest))
            return 0;
        snprintf(why, n, "'%s' is not a size of at least %.0f bytes (a whole number, optionally K, M or G)", v,
                 o->lo);
        return -1;
    case BN_OPT_FLOAT:
        if (!bn_parse_double(v, &d) && d >= o->lo && d <= o->hi) {
            *(float *)o->dest = (float)d;
            return 0;
        }
        snprintf(why, n, "'%s' is not a number in [%g, %g]", v, o->lo, o->hi);
        return -1;
    case BN_OPT_STRING:
        /* a name of a file or directory: an empty one can only fail, and
         * failed late (bn-pack -o '' packed everything before refusing) */
        if (!*v && o->arg && (!strcmp(o->arg, "FILE") || !strcmp(o->arg, "MODEL") || !strcmp(o->arg, "DIR") ||
                              !strcmp(o->arg, "PATH"))) {
            snprintf(why, n, "an empty %s name", !strcmp(o->arg, "DIR") ? "directory" : "file");
            return -1;
        }
        *(const char **)o->dest = v;
        return 0;
    case BN_OPT_ENUM:
        for (int i = 0; o->names[i]; i++)
            if (!strcmp(v, o->names[i])) {
                *(int *)o->dest = o->values ? o->values[i] : i;
                return 0;
            }
        snprintf(why, n, "'%s' is not one of %s", v, join(o->names, ", ", names, sizeof names));
        return -1;
    case BN_OPT_LIST:
        if (*o->count < o->max) {
            ((const char **)o->dest)[(*o->count)++] = v;
            return 0;
        }
        snprintf(why, n, "more than %zu given", o->max);
        return -1;
    case BN_OPT_CALL:
        return o->call(o->dest, v, why, n);
    default:
        snprintf(why, n, "not an option");
        return -1;
    }
}

/* One option found under the spelling `spelled`; value is what was attached
 * to it (--x=V, -xV) or NULL, and the next word is taken when it needs one. */
static int apply(const bn_prog *p, bn_opt *o, const char *spelled, char *value, int argc, char **argv, int *i)
{
    if (!takes_value(o) && value)
        return bn_usage_error(p, "option '%s' takes no value", spelled);
    if (takes_value(o) && !value) {
        if (*i + 1 >= argc)
            return bn_usage_error(p, "option '%s' needs a value", spelled);
        value = argv[++*i];
    }
    char why[512];
    if (store(o, value, why, sizeof why))
        return bn_usage_error(p, "option '%s': %s", spelled, why);
    o->given++;
    o->last = value;
    return BN_OPT_RUN;
}

/* The options every program has, in no table; they cannot be shadowed. */
enum { BUILTIN_NONE, BUILTIN_HELP, BUILTIN_VERSION, BUILTIN_LIST };

static int builtin(const bn_prog *p, const bn_opt *opts, int which, const char *spelled, const char *value,
                   int *dump)
{
    if (value)
        return bn_usage_error(p, "option '%s' takes no value", spelled);
    if (which == BUILTIN_HELP)
        bn_opt_help(p, opts, stdout);
    else if (which == BUILTIN_VERSION)
        printf("%s (bn) %s\n", p->name, BN_VERSION);
    else {
        *dump = 1;
        return BN_OPT_RUN;
    }
    return bn_stdout_done(p);
}

/* --name or --name=VALUE (word points past the two dashes), or a
 * single-dash long spelling (word past its one dash, dash set). */
static int long_option(const bn_prog *p, bn_opt *opts, char *word, int dash, int argc, char **argv, int *i, int *dump)
{
    char *eq = strchr(word, '=');
    size_t len = eq ? (size_t)(eq - word) : strlen(word);
    char *value = eq ? eq + 1 : NULL;
    char spelled[128];
    snprintf(spelled, sizeof spelled, "%s%.*s", dash ? "-" : "--", (int)len, word);
    if (!dash) {
        static const char *const builtins[] = {"help", "version", "list-options"};
        for (int b = 0; b < 3; b++)
            if (strlen(builtins[b]) == len && !strncmp(word, builtins[b], len))
                return builtin(p, opts, BUILTIN_HELP + b, spelled, value, dump);
    }
    for (bn_opt *o = opts; o->kind != BN_OPT_END; o++) {
        const char *name = dash ? o->dash_name : o->name;
        if (is_option(o) && name && strlen(name) == len && !strncmp(word, name, len))
            return apply(p, o, spelled, value, argc, argv, i);
    }
    return bn_usage_error(p, "unknown option '%s'", spelled);
}

/* -abc: bundled letters; a letter that takes a value ends the word. */
static int short_options(const bn_prog *p, bn_opt *opts, char *word, int argc, char **argv, int *i, int *dump)
{
    for (bn_opt *o = opts; o->kind != BN_OPT_END; o++) {
        size_t len = o->dash_name ? strlen(o->dash_name) : 0;
        if (len && !strncmp(word, o->dash_name, len) && (word[len] == 0 || word[len] == '='))
            return long_option(p, opts, word, 1, argc, argv, i, dump);
    }
    for (char *c = word; *c; c++) {
        char spelled[3] = {'-', *c, 0};
        if (*c == 'h')
            return builtin(p, opts, BUILTIN_HELP, spelled, NULL, dump);
        bn_opt *o = opts;
        while (o->kind != BN_OPT_END && !(is_option(o) && o->letter == *c))
            o++;
        if (o->kind == BN_OPT_END && (c == word || isalnum((unsigned char)*c)))
            return bn_usage_error(p, "unknown option '%s'", spelled);
        if (o->kind == BN_OPT_END) /* "-q-": not "unknown option '--'" */
            return bn_usage_error(p, "unknown option '%c' in '-%s'", *c, word);
        int rc = apply(p, o, spelled, takes_value(o) && c[1] ? c + 1 : NULL, argc, argv, i);
        if (rc != BN_OPT_RUN || takes_value(o))
            return rc;
    }
    return BN_OPT_RUN;
}

/* ------------------------------------------------------------------ dump */

static void dump_spellings(const bn_opt *o, FILE *f)
{
    const char *sep = "";
    if (o->letter)
        fprintf(f, "-%c", o->letter), sep = ",";
    if (o->dash_name)
        fprintf(f, "%s-%s", sep, o->dash_name), sep = ",";
    if (o->name)
        fprintf(f, "%s--%s", sep, o->name);
}

static void dump_value(const bn_opt *o, FILE *f)
{
    switch (o->kind) {
    case BN_OPT_FLAG:
    case BN_OPT_SET:
    case BN_OPT_INT:
        fprintf(f, "%d", *(const int *)o->dest);
        break;
    case BN_OPT_U32:
        fprintf(f, "%" PRIu32, *(const uint32_t *)o->dest);
        break;
    case BN_OPT_U64:
    case BN_OPT_BYTES:
        fprintf(f, "%" PRIu64, *(const uint64_t *)o->dest);
        break;
    case BN_OPT_FLOAT:
        fprintf(f, "%g", (double)*(const float *)o->dest);
        break;
    case BN_OPT_STRING: {
        const char *s = *(const char *const *)o->dest;
        fputs(s ? s : "(none)", f);
        break;
    }
    case BN_OPT_ENUM: {
        int v = *(const int *)o->dest, i = 0;
        while (o->names[i] && (o->values ? o->values[i] : i) != v)
            i++;
        fputs(o->names[i] ? o->names[i] : "(none)", f);
        break;
    }
    case BN_OPT_LIST:
        for (size_t i = 0; i < *o->count; i++)
            fprintf(f, "%s%s", i ? "," : "", ((const char *const *)o->dest)[i]);
        if (!*o->count)
            fputs("(none)", f);
        break;
    default: /* a callback's effect is its own: show what it was given */
        fputs(o->last ? o->last : "(none)", f);
    }
}

static const char *const kind_names[] = {"end", "section", "flag", "set", "int", "u32", "u64", "bytes", "float",
                                         "string", "enum", "list", "call"};
_Static_assert(sizeof kind_names / sizeof *kind_names == BN_OPT_CALL + 1, "a name for every kind");

/* One line per option: spellings, kind, range (or names), current value,
 * tab-separated; then one line per operand. */
static void dump(const bn_opt *opts, char **operands, int n, FILE *f)
{
    char names[512];
    for (const bn_opt *o = opts; o->kind != BN_OPT_END; o++) {
        if (!is_option(o))
            continue;
        dump_spellings(o, f);
        fprintf(f, "\t%s\t", kind_names[o->kind]);
        if (o->kind == BN_OPT_INT || o->kind == BN_OPT_U32)
            fprintf(f, "%.0f..%.0f", o->lo, o->hi);
        else if (o->kind == BN_OPT_U64)
            fprintf(f, "0..%" PRIu64, UINT64_MAX);
        else if (o->kind == BN_OPT_BYTES)
            fprintf(f, "%.0f..%" PRIu64, o->lo, UINT64_MAX);
        else if (o->kind == BN_OPT_FLOAT)
            fprintf(f, "%g..%g", o->lo, o->hi);
        else if (o->kind == BN_OPT_ENUM)
            fputs(join(o->names, "|", names, sizeof names), f);
        else
            fputs("-", f);
        fputc('\t', f);
        dump_value(o, f);
        fputc('\n', f);
    }
    for (int k = 0; k < n; k++)
        fprintf(f, "operand\t%s\n", operands[k]);
}

/* ----------------------------------------------------------------- parse */

int bn_opt_parse(const bn_prog *p, bn_opt *opts, int argc, char **argv, int *n_operands)
{
    int n = 0, want_dump = 0;
    for (bn_opt *o = opts; o->kind != BN_OPT_END; o++)
        o->given = 0, o->last = NULL;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        int rc = BN_OPT_RUN;
        if (a[0] != '-' || !a[1])
            argv[1 + n++] = a; /* never past i: operands move down over used words */
        else if (!strcmp(a, "--")) {
            while (++i < argc)
                argv[1 + n++] = argv[i];
        } else if (a[1] == '-')
            rc = long_option(p, opts, a + 2, 0, argc, argv, &i, &want_dump);
        else
            rc = short_options(p, opts, a + 1, argc, argv, &i, &want_dump);
        if (rc != BN_OPT_RUN)
            return rc;
    }
    if (n && !p->operand)
        return bn_usage_error(p, "extra operand '%s'", argv[1]);
    if (p->operand && p->max_operands == 1 && n > 1)
        return bn_usage_error(p, "more than one %s given ('%s' and '%s')", p->operand, argv[1], argv[2]);
    if (p->operand && p->max_operands > 1 && n > p->max_operands)
        return bn_usage_error(p, "more than %d %s operands given", p->max_operands, p->operand);
    if (want_dump) {
        dump(opts, argv + 1, n, stdout);
        return bn_stdout_done(p);
    }
    *n_operands = n;
    return BN_OPT_RUN;
}

/* ------------------------------------------------------------------ help */

/* "  -o, --output FILE": the left column of an option's help line. */
static size_t spec(const bn_opt *o, char *buf, size_t n)
{
    char names[512];
    size_t pos = (size_t)snprintf(buf, n, "  %s", o->letter || o->dash_name ? "" : "    ");
    const char *sep = "";
    if (o->letter)
        pos += (size_t)snprintf(buf + pos, n - pos, "-%c", o->letter), sep = ", ";
    if (o->dash_name && pos < n)
        pos += (size_t)snprintf(buf + pos, n - pos, "%s-%s", sep, o->dash_name), sep = ", ";
    if (o->name && pos < n)
        pos += (size_t)snprintf(buf + pos, n - pos, "%s--%s", sep, o->name);
    if (takes_value(o) && pos < n)
        pos += (size_t)snprintf(buf + pos, n - pos, " %s",
                                o->arg ? o->arg : o->kind == BN_OPT_ENUM ? join(o->names, "|", names, sizeof names)
                                                                          : "VALUE");
    return pos < n ? pos : n - 1;
}

/* The help text's lines, the first after the spelling, the others under it;
 * in an enum's text %s stands for its names. */
static void help_text(const bn_opt *o, const char *text, size_t col, FILE *f)
{
    char names[512];
    for (const char *line = text; line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *subst = o && o->kind == BN_OPT_ENUM ? strstr(line, "%s") : NULL;
        if (subst && subst < line + len)
            fprintf(f, "%.*s%s%.*s", (int)(subst - line), line, join(o->names, ", ", names, sizeof names),
                    (int)(len - (size_t)(subst - line) - 2), subst + 2);
        else
            fprintf(f, "%.*s", (int)len, line);
        fputc('\n', f);
        line = nl ? nl + 1 : NULL;
        if (line)
            fprintf(f, "%*s", (int)col, "");
    }
}

static void help_line(const bn_opt *o, const char *left, const char *text, size_t width, FILE *f)
{
    size_t len = (size_t)fprintf(f, "%s", left);
    fprintf(f, "%*s", (int)(len < width ? width - len + 2 : 2), "");
    help_text(o, text, width + 2, f);
}

void bn_opt_help(const bn_prog *p, const bn_opt *opts, FILE *f)
{
    char left[160];
    size_t width = 0;
    for (const bn_opt *o = opts; o->kind != BN_OPT_END; o++) {
        size_t len = is_option(o) ? spec(o, left, sizeof left) : 0;
        if (len > width && len <= SPEC_MAX)
            width = len;
    }
    if (width < strlen("      --version"))
        width = strlen("      --version");
    fprintf(f, "%s — %s\n\n%s", p->name, p->summary, p->usage);
    if (opts->kind != BN_OPT_SECTION)
        fputs("\noptions:\n", f);
    for (const bn_opt *o = opts; o->kind != BN_OPT_END; o++) {
        if (!is_option(o)) {
            fprintf(f, "\n%s\n", o->help);
            continue;
        }
        spec(o, left, sizeof left);
        help_line(o, left, o->help ? o->help : "", width, f);
    }
    help_line(NULL, "  -h, --help", "show this help", width, f);
    help_line(NULL, "      --version", "show the version", width, f);
    if (p->epilog)
        fprintf(f, "\n%s", p->epilog);
}

void bn_opt_record(const bn_opt *opts, const void *const *skip, int values, const char *head, char *buf, size_t n)
{
    int pos = snprintf(buf, n, "%s", head ? head : "");
    if (pos < 0 || (size_t)pos >= n)
        return;
    for (const bn_opt *p = opts; p->kind != BN_OPT_END; p++) {
        int skipped = !p->given || !p->name;
        for (const void *const *s = skip; s && *s && !skipped; s++)
            skipped = *s == p->dest;
        if (skipped)
            continue;
        int k = snprintf(buf + pos, n - (size_t)pos, "%s--%s%s%s", pos ? " " : "", p->name,
                         values && p->last ? " " : "", values && p->last ? p->last : "");
        if (k < 0 || (size_t)k >= n - (size_t)pos) { /* whole options only */
            buf[pos] = 0;
            return;
        }
        pos += k;
    }
}
