#!/bin/sh
# Checks that every library bn builds against is installed, and names the
# Debian package to install when one is missing.
cc=${1:-cc}
missing=""
check() { # header package
    printf '#include <%s>\nint main(void){return 0;}\n' "$1" |
        $cc -x c -o /dev/null - >/dev/null 2>&1 || missing="$missing $2"
}
check zlib.h zlib1g-dev
check xxhash.h libxxhash-dev
check cjson/cJSON.h libcjson-dev
check microhttpd.h libmicrohttpd-dev
# test_oom links zlib statically (its allocations fail too): libz.a, in zlib1g-dev on Debian
printf 'int main(void){return 0;}\n' | $cc -x c -o /dev/null - -Wl,-Bstatic -lz -Wl,-Bdynamic >/dev/null 2>&1 ||
    missing="$missing zlib1g-dev(libz.a)"
printf '#define PCRE2_CODE_UNIT_WIDTH 8\n#include <pcre2.h>\nint main(void){return 0;}\n' |
    $cc -x c -o /dev/null - >/dev/null 2>&1 || missing="$missing libpcre2-dev"
if [ -n "$missing" ]; then
    echo "bn: missing build dependencies; install them with:" >&2
    echo "    apt-get install$missing" >&2
    exit 1
fi
