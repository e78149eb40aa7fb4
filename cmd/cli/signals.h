/* signals.h — a fatal signal does not leave a program's named temporary
 * output behind. libbn installs no handlers; it tells the program of each
 * named temporary it creates (bn_temp_hook, core.h), and this keeps them. */
#ifndef BN_CLI_SIGNALS_H
#define BN_CLI_SIGNALS_H

/* The hook's function (pass {bn_cli_track_temp, NULL}): remembers path
 * while it exists and, from the first one on, has SIGINT, SIGTERM and
 * SIGHUP remove every remembered name (a file, or then an empty
 * directory: a temporary one the program made) before the process dies of the
 * signal as it would have (same exit status). A signal the program was
 * started with ignored (nohup), or that has a handler, is left alone. */
void bn_cli_track_temp(void *user, const char *path, int exists);

#endif
