/* progress.c — libbn's progress and messages, shown the programs' way. */
#include "progress.h"

#include "cli.h"

#include <stdio.h>

int bn_cli_progress(void *user, size_t done, size_t total, const char *what)
{
    (void)user;
    if (done < total)
        fprintf(stderr, "\r\033[K[%zu/%zu] %s", done + 1, total, what);
    else
        fprintf(stderr, "\r\033[K");
    fflush(stderr);
    return 0;
}

void bn_cli_log(void *user, int level, const char *msg)
{
    (void)level;
    bn_report((const bn_prog *)user, "%s", msg);
}
