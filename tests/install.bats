#!/usr/bin/env bats
# make install: PREFIX and DESTDIR, every program, man page, the library,
# its header and pkg-config file; a program built against the installed
# library links and runs.

load common

@test "make install honours PREFIX and DESTDIR" {
    d=$BATS_TEST_TMPDIR/root
    make -s -C "$ROOT" install DESTDIR="$d" PREFIX=/opt/bn >/dev/null
    for p in bn-convert bn-quant bn-pack bn-tokenize bn-infer bn-bench; do
        [ -x "$d/opt/bn/bin/$p" ]
        [ -f "$d/opt/bn/share/man/man1/$p.1" ]
    done
    [ -f "$d/opt/bn/share/man/man5/bn-model.5" ]
    [ -f "$d/opt/bn/lib/libbn.a" ]
    [ -f "$d/opt/bn/lib/libbn.so" ]
    [ -f "$d/opt/bn/include/bn.h" ]
    grep -q '^prefix=/opt/bn$' "$d/opt/bn/lib/pkgconfig/bn.pc"
    # a user program against the installed header and library
    cat > "$BATS_TEST_TMPDIR/u.c" <<'C'
#include <bn.h>
#include <stdio.h>
int main(void) { bn_err e = {0}; printf("%s %zu\n", BN_VERSION, sizeof e.msg); return 0; }
C
    # (a sanitized build's library needs its compiler and runtime: `make
    # sanitize` names them in BN_USER_CC and BN_USER_LDFLAGS)
    ${BN_USER_CC:-cc} -I"$d/opt/bn/include" "$BATS_TEST_TMPDIR/u.c" -o "$BATS_TEST_TMPDIR/u" "$d/opt/bn/lib/libbn.a" \
        -lxxhash -lz -lpcre2-8 -lcjson -lpthread -lm ${BN_USER_LDFLAGS:-}
    run "$BATS_TEST_TMPDIR/u"
    [ "$status" -eq 0 ]
    [[ $output == *" 1024" ]]
    "$d/opt/bn/bin/bn-convert" --version
}
