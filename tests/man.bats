#!/usr/bin/env bats
# The man pages render cleanly wherever they are installed: plain ASCII
# (characters beyond it as groff's \[uXXXX] escapes, so no preconv or
# locale is needed, and no control characters, which mandoc refuses), and
# neither groff (with tbl, as man(1) runs it) nor mandoc reports an error.

load common

MAN_DIR=${MAN_DIR:-$ROOT/man}

@test "man pages: ASCII only, no control characters" {
    local bad
    bad=$(LC_ALL=C grep -nP '[^\t\x20-\x7e]' "$MAN_DIR"/*.[135] | cut -c1-160 || true)
    [ -z "$bad" ] || { printf '%s\n' "$bad" | head; return 1; }
}

@test "man pages: groff -ww and mandoc -Tlint -Werror report nothing" {
    command -v groff >/dev/null || skip "groff not installed"
    local f out
    for f in "$MAN_DIR"/*.[135]; do
        out=$(groff -t -man -Tutf8 -ww -z "$f" 2>&1)
        [ -z "$out" ] || { printf '%s\n' "$out" | head; return 1; }
        if command -v mandoc >/dev/null; then
            out=$(mandoc -Tlint -Werror "$f" 2>&1)
            [ -z "$out" ] || { printf '%s\n' "$out" | head; return 1; }
        fi
    done
}
