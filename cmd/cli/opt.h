/* opt.h — one option parser for every program: a table describes each
 * option once (spellings, kind of value, where it goes, its help), and the
 * parser, the -h text and the --list-options dump all come from it, so the
 * help can never disagree with what is parsed. Program-side: not part of
 * libbn.
 *
 * GNU conventions, in every program:
 *   --name=VALUE and --name VALUE;  -xVALUE and -x VALUE;  -qv (bundled
 *   letters; a letter that takes a value takes the rest of the word or the
 *   next word);  -- ends the options;  - alone is an operand (stdin);
 *   operands and options may come in any order.
 * Long names must be given in full: no abbreviations, so adding an option
 * can never change what an existing command line means.
 * A few single-dash long spellings kept from llama.cpp (bn-infer's -cnv) are
 * table entries of their own (dash_name); such a word is matched whole
 * before it would be read as bundled letters.
 * A value is always the next word when not attached, even if it starts with
 * '-': `-p -h` gives -p the value "-h", and `-n -1` works. */
#ifndef BN_OPT_H
#define BN_OPT_H

#include "cli.h"

#include <stddef.h>

typedef enum bn_opt_kind {
    BN_OPT_END,     /* ends the table */
    BN_OPT_SECTION, /* not an option: a heading in the help ("sampling:") */
    BN_OPT_FLAG,    /* int *: set to 1 */
    BN_OPT_SET,     /* int *: set to .value (--no-bos, --csv) */
    BN_OPT_INT,     /* int *: a whole number in [lo, hi] */
    BN_OPT_U32,     /* uint32_t *: a whole number in [lo, hi] */
    BN_OPT_U64,     /* uint64_t *: any whole number from 0 to 2^64 - 1 */
    BN_OPT_BYTES,   /* uint64_t *: a size, N or N with K, M or G (binary: 2^10, 2^20, 2^30), >= lo */
    BN_OPT_FLOAT,   /* float *: a finite number in [lo, hi] */
    BN_OPT_STRING,  /* const char **: the text (the last one given wins) */
    BN_OPT_ENUM,    /* int *: one of .names; stores .values[i], or i */
    BN_OPT_LIST,    /* const char *[.max]: repeatable, appends; count in *.count */
    BN_OPT_CALL,    /* .call(.dest, value, ...) does the work */
} bn_opt_kind;

/* A callback's value points into argv (it lives as long as the program).
 * On a bad value it writes why into why[why_size] (the parser adds
 * "PROG: option '--x': ") and returns -1. */
typedef int (*bn_opt_fn)(void *dest, const char *value, char *why, size_t why_size);

typedef struct bn_opt {
    bn_opt_kind kind;
    char letter;              /* -x, or 0 */
    const char *name;         /* --name, or NULL */
    void *dest;               /* where the value goes (see the kinds) */
    const char *arg;          /* the value's name in the help ("FILE"); enums: "a|b|c" when NULL */
    const char *help;         /* lines for -h; in an enum's help, %s stands for its names */
    const char *dash_name;    /* a single-dash long spelling ("cnv" for -cnv), or NULL */
    double lo, hi;            /* INT, U32, FLOAT: the allowed range */
    int value;                /* SET: what to store */
    const char *const *names; /* ENUM: the allowed values, NULL-terminated */
    const int *values;        /* ENUM: what each name stores (NULL: its index) */
    size_t *count, max;       /* LIST: items so far, and at most how many */
    bn_opt_fn call;           /* CALL */
    /* Filled by the parser: */
    int given;                /* how many times the option was given */
    const char *last;         /* the last value given (NULL for flags) */
} bn_opt;

/* Table entries, one line each. */
#define OPT_SECTION(heading) {.kind = BN_OPT_SECTION, .help = (heading)}
#define OPT_FLAG(l, n, d, h) {.kind = BN_OPT_FLAG, .letter = (l), .name = (n), .dest = (d), .help = (h)}
#define OPT_SET(l, n, d, v, h) {.kind = BN_OPT_SET, .letter = (l), .name = (n), .dest = (d), .value = (v), .help = (h)}
#define OPT_INT(l, n, d, a, min, max_, h) \
    {.kind = BN_OPT_INT, .letter = (l), .name = (n), .dest = (d), .arg = (a), .lo = (min), .hi = (max_), .help = (h)}
#define OPT_U32(l, n, d, a, min, max_, h) \
    {.kind = BN_OPT_U32, .letter = (l), .name = (n), .dest = (d), .arg = (a), .lo = (min), .hi = (max_), .help = (h)}
#define OPT_U64(l, n, d, a, h) {.kind = BN_OPT_U64, .letter = (l), .name = (n), .dest = (d), .arg = (a), .help = (h)}
#define OPT_BYTES(l, n, d, a, min, h) \
    {.kind = BN_OPT_BYTES, .letter = (l), .name = (n), .dest = (d), .arg = (a), .lo = (min), .help = (h)}
#define OPT_FLOAT(l, n, d, a, min, max_, h) \
    {.kind = BN_OPT_FLOAT, .letter = (l), .name = (n), .dest = (d), .arg = (a), .lo = (min), .hi = (max_), .help = (h)}
#define OPT_STRING(l, n, d, a, h) \
    {.kind = BN_OPT_STRING, .letter = (l), .name = (n), .dest = (d), .arg = (a), .help = (h)}
#define OPT_ENUM(l, n, d, a, nm, vals, h) \
    {.kind = BN_OPT_ENUM, .letter = (l), .name = (n), .dest = (d), .arg = (a), .names = (nm), .values = (vals), \
     .help = (h)}
#define OPT_LIST(l, n, d, cnt, mx, a, h) \
    {.kind = BN_OPT_LIST, .letter = (l), .name = (n), .dest = (d), .count = (cnt), .max = (mx), .arg = (a), \
     .help = (h)}
#define OPT_CALL(l, n, d, fn, a, h) \
    {.kind = BN_OPT_CALL, .letter = (l), .name = (n), .dest = (d), .call = (fn), .arg = (a), .help = (h)}
#define OPT_END {.kind = BN_OPT_END}

/* What bn_opt_parse returns when the program should go on. */
enum { BN_OPT_RUN = -1 };

/* Parses argv[1..argc-1] against opts, in order. -h/--help and --version
 * print to standard output; --list-options (hidden, for the tests) parses
 * everything, then prints every option's spellings, kind, range and current
 * value, and the operands, one per line. A usage error prints one line and
 * the hint to --help on standard error. Returns BN_OPT_RUN when the program
 * should go on, otherwise the status to exit with (0 after help, version
 * or the dump; BN_EXIT_USAGE after an error); it never exits itself.
 * The operands, in order, are moved to argv[1..n] and n is stored in
 * *n_operands; p->operand and p->max_operands say how many are allowed. */
int bn_opt_parse(const bn_prog *p, bn_opt *opts, int argc, char **argv, int *n_operands);

/* Prints the help for p and opts to f (what -h prints). */
void bn_opt_help(const bn_prog *p, const bn_opt *opts, FILE *f);

/* The options given, after bn_opt_parse, as text for a model's provenance:
 * head (the program and its version) then each given option by its long
 * name, with its last value when values is set, except those whose dest
 * is in skip (NULL-terminated: options that change no byte of the output,
 * as where it goes or how many threads). Cut at whole options to fit n. */
void bn_opt_record(const bn_opt *opts, const void *const *skip, int values, const char *head, char *buf, size_t n);

#endif
