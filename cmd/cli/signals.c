/* signals.c — removing named temporary outputs when SIGINT, SIGTERM or
 * SIGHUP ends a program (only where the file system lacks O_TMPFILE do
 * outputs have names before commit; SIGKILL cannot be caught at all).
 *
 * A handler gets no context, so the names live in this table: the programs'
 * one piece of mutable process state, inherent to signals, and kept out of
 * libbn. A slot is filled before it is marked used, and the handler calls
 * only unlink, rmdir, signal and raise (all async-signal-safe). Outputs are opened
 * from one thread. */
#include "signals.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_HELD 16
static char held_name[MAX_HELD][PATH_MAX];
static volatile sig_atomic_t held[MAX_HELD];

static void unlink_held(int sig)
{
    for (int i = 0; i < MAX_HELD; i++)
        if (held[i])
            unlink(held_name[i]);
    /* then the directories (a temporary one that held a file): empty now */
    for (int i = 0; i < MAX_HELD; i++)
        if (held[i])
            rmdir(held_name[i]);
    /* die of the signal itself, so the exit status still says what happened */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Arms the handler for the signals still at their default action (a
 * program's own handler, or SIG_IGN under nohup, is left alone). */
static void arm(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = unlink_held;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

void bn_cli_track_temp(void *user, const char *path, int exists)
{
    (void)user;
    size_t n = strlen(path);
    if (!exists) {
        for (int i = 0; i < MAX_HELD; i++)
            if (held[i] && !strcmp(held_name[i], path))
                held[i] = 0;
        return;
    }
    /* a name too long or a full table only loses this protection */
    if (n >= PATH_MAX)
        return;
    for (int i = 0; i < MAX_HELD; i++)
        if (!held[i]) {
            memcpy(held_name[i], path, n + 1);
            held[i] = 1;
            arm();
            return;
        }
}
