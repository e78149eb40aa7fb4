#!/bin/sh
# check-lib-quiet.sh [BUILD] — libbn is embeddable: it writes nothing to
# stdout or stderr, installs no signal handlers, never ends the process,
# and keeps no mutable global state (bn.h). Progress, messages and named
# temporaries go to callbacks the caller supplies; the programs' side of
# that (cmd/cli) is not checked.
#
# 1. Library sources (lib/, formats/): code, with comments and string
#    literals removed, must not name the standard streams or descriptors,
#    printing to them, signals, or ending the process. A line that must (a
#    caller who asked for stdout with "-") says why with "quiet-ok:".
# 2. With BUILD, $BUILD/libbn.a must define no writable data (.data, .bss,
#    thread-local): constants only.
set -u
cd "$(dirname "$0")/.." || exit 2
status=0

files=$(find lib formats -name '*.[ch]' | sort)
# shellcheck disable=SC2086
awk '
FNR == 1 { in_comment = 0 }
{
    line = $0; code = ""; n = length(line); i = 1
    while (i <= n) {
        c = substr(line, i, 1); c2 = substr(line, i, 2)
        if (in_comment) {
            if (c2 == "*/") { in_comment = 0; i += 2 } else i++
            continue
        }
        if (c2 == "/*") { in_comment = 1; i += 2; continue }
        if (c2 == "//") break
        if (c == "\"" || c == "'\''") {
            q = c; i++
            while (i <= n && substr(line, i, 1) != q) { if (substr(line, i, 1) == "\\") i++; i++ }
            i++; code = code q q
            continue
        }
        code = code c; i++
    }
    if ((code ~ /(^|[^A-Za-z0-9_])(stdout|stderr|STDOUT_FILENO|STDERR_FILENO|SIG[A-Z]+)([^A-Za-z0-9_]|$)/ ||
         code ~ /(^|[^A-Za-z0-9_])(printf|vprintf|puts|putchar|perror|signal|sigaction|sigprocmask|pthread_sigmask|raise|kill|exit|_exit|_Exit|quick_exit|atexit|abort)[ \t]*\(/) &&
        $0 !~ /quiet-ok:/) {
        print "check-lib-quiet: " FILENAME ":" FNR ": " $0
        bad = 1
    }
}
END { exit bad }
' $files || status=1

if [ $# -ge 1 ]; then
    lib=$1/libbn.a
    if [ ! -f "$lib" ]; then
        echo "check-lib-quiet: $lib: not built" >&2
        exit 2
    fi
    # objdump -t: "ADDR l O SECTION SIZE NAME"; .data.rel.ro is read-only.
    # A sanitizer build adds writable objects of its own (UBSan's source
    # locations and type descriptors, __unnamed_N; ASan's and SanCov's
    # tables), which are the instrumentation's, not libbn's.
    writable=$(objdump -t "$lib" | awk '
        / O / && $NF !~ /^(__unnamed_[0-9]+|_*asan|_*ubsan|_*sancov)/ { for (i = 1; i <= NF; i++)
                    if ($i ~ /^\.(data|bss|tdata|tbss)/ && $i !~ /^\.data\.rel\.ro/) { print "  " $NF " (" $i ")"; break } }')
    if [ -n "$writable" ]; then
        echo "check-lib-quiet: $lib holds mutable global state:"
        echo "$writable"
        status=1
    fi
fi

[ $status -eq 0 ] && echo "check-lib-quiet: libbn prints nothing, handles no signals, keeps no mutable globals"
exit $status
