/* progress.h — how the programs show what libbn reports while it works
 * (the library itself writes nothing: it calls the callbacks it is given):
 * a progress line on the terminal, and messages as the program's own. */
#ifndef BN_CLI_PROGRESS_H
#define BN_CLI_PROGRESS_H

#include <stddef.h>

/* A bn_progress_fn (bn.h): "[i/n] name" on stderr, rewritten in place at
 * every step and erased at the end. Never cancels. Pass it only when
 * bn_progress_enabled() (cli.h): stderr is a terminal. */
int bn_cli_progress(void *user, size_t done, size_t total, const char *what);

/* A bn_log_fn (bn.h) whose user is the program's bn_prog (cli.h): every
 * message, whatever its level, as one "NAME: message" line on stderr. */
void bn_cli_log(void *user, int level, const char *msg);

#endif
