/* bn-bench — not implemented yet: its issue has not landed. */
#include "bn.h"

static const bn_prog prog = {
    "bn-bench",
    "not implemented yet",
    "usage: bn-bench [options]\n\nThis program is not implemented yet; it exits with status 2.\n",
};

int main(int argc, char **argv)
{
    bn_cli_init();
    for (int i = 1; i < argc; i++)
        if (bn_cli_common(&prog, argv[i]))
            return BN_EXIT_OK;
    bn_report(&prog, "not implemented yet");
    return BN_EXIT_USAGE;
}
