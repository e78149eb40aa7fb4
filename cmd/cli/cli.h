/* cli.h — what every program shares: start-up, messages, exit statuses,
 * number parsing. Program-side: not part of libbn. */
#ifndef BN_CLI_H
#define BN_CLI_H

#include "bn.h"
#include "core.h"

/* Exit statuses shared by every program (documented in each man page). */
enum { BN_EXIT_OK = 0, BN_EXIT_DATA = 1, BN_EXIT_USAGE = 2, BN_EXIT_INTERRUPTED = 130 };

/* --------------------------------------------------------------- start-up */

/* Every program describes itself with one of these; the option parser
 * (opt.h) prints it for -h and --version and checks the operands, and every
 * message starts with the name. */
typedef struct bn_prog {
    const char *name;     /* "bn-convert" */
    const char *summary;  /* one line */
    const char *usage;    /* -h text before the options: usage lines, description */
    const char *epilog;   /* -h text after the options (exit statuses), or NULL */
    const char *operand;  /* what an operand is called in messages ("SOURCE"); NULL: none taken */
    int max_operands;     /* with an operand: at most this many (0: any number) */
} bn_prog;

/* --chat-encoding's names, at the index of their bn.h values
 * (BN_CHAT_SPLIT, BN_CHAT_WHOLE), for bn-tokenize, bn-infer and bn-serve. */
extern const char *const bn_cli_chat_encodings[];
/* --chat-date: NULL when DATE is what bn_tokenizer_set_chat_date takes,
 * else the usage error to print. */
const char *bn_cli_chat_date_problem(const char *date);

/* Prints "NAME: MESSAGE" to stderr. */
void bn_report(const bn_prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flushes standard output: BN_EXIT_OK, or BN_EXIT_DATA after reporting
 * "NAME: -: write error: <reason>" (a full disk, a closed file). */
int bn_stdout_done(const bn_prog *p);

/* A --report FILE: '-' is standard error; a file is written to a
 * temporary and renamed into place only when the run succeeds, so a
 * failed run leaves no report behind and an old one untouched. */
typedef struct bn_cli_report {
    FILE *fp; /* NULL: no report asked */
    bn_out out;
    int is_file;
} bn_cli_report;
int bn_cli_report_open(bn_cli_report *r, const char *path, bn_err *e);
/* 1 when two paths name one file (an existing one, or the same name in
 * the same directory); b "-" names the file behind descriptor b_dash_fd
 * (standard input or output redirected to it); a "-" and NULL name none.
 * A report written over the model it describes would replace it. */
int bn_cli_same_file(const char *a, const char *b, int b_dash_fd);
/* ok: the run succeeded, keep the report (0, or -1 when it could not be
 * written); otherwise drop it (returns 0). */
int bn_cli_report_close(bn_cli_report *r, int ok, bn_err *e);
/* A bn_log_fn (user: the const bn_prog) that shows the library's warnings
 * as the program's own one-line messages and drops its other notes. */
void bn_cli_show_warning(void *prog, int level, const char *msg);
/* Prints the usage error, the hint to --help, and returns BN_EXIT_USAGE. */
int bn_usage_error(const bn_prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A size for people, in buf: "192.0 KiB" below a MiB, "1.5 MiB" below a
 * GiB, then "2.3 GiB" (a KV budget of 12K showed as "0.0 MiB"). */
const char *bn_cli_size(uint64_t bytes, char buf[32]);
/* Restores default SIGPIPE so `| head` ends us quietly, like cat. */
void bn_cli_init(void);
/* Nonzero when stderr is a terminal (progress is drawn only then). */
int bn_progress_enabled(void);
/* Parses an unsigned decimal integer in [lo, hi]; -1 on error with a reason. */
int bn_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* Parses a float; -1 on error. */
int bn_parse_double(const char *s, double *out);

#endif
