#!/usr/bin/env bats
# fullout.bats — an output that cannot be written (a full disk: /dev/full)
# is one line in every program, "PROG: NAME: write error: <reason>", with
# standard output named '-' as it is on the command line, and exit 1.

load common

setup_file() {
    bn-convert -q "$TINY" | bn-quant -q > "$BATS_FILE_TMPDIR/tiny.bn"
}

full() { # PROG ARGS...: its standard output to /dev/full
    run_split /dev/full "$@"
    expect_one_line_error "$status" "$err" "$1"
    [ "$err" = "$1: -: write error: No space left on device" ] || { echo "got: $err"; return 1; }
}

@test "every program's standard output on a full disk: PROG: -: write error: <reason>, exit 1" {
    M=$BATS_FILE_TMPDIR/tiny.bn
    full bn-convert --info "$M"
    full bn-convert "$M" -o -
    full bn-quant "$M"
    full bn-pack "$M"
    full bn-bench --list-shapes
    full bn-infer --help
    full bn-infer -m "$M" -p "It was" -n 4
    full bn-infer -m "$M" -p "It was" -n 4 --ids
    full bn-infer -m "$M" -n 4 --temp 0 < <(echo "4064 378")
    full bn-infer -m "$M" -n 4 --temp 0 --parallel 2 < <(printf '4064 378\n4064 99\n')
    full bn-infer -m "$M" -cnv < <(echo hi)
    full bn-tokenize -m "$M" < <(echo hi)
    full bn-tokenize -m "$M" -b -f < <(echo hi)
    full bn-tokenize -d -m "$M" < <(echo "4064 378")
    full bn-tokenize -m "$M" --info
}

@test "a named output on a full disk is named: bn-tokenize -o /dev/full" {
    run_split /dev/null bn-tokenize -m "$BATS_FILE_TMPDIR/tiny.bn" -o /dev/full < <(echo hi)
    expect_one_line_error "$status" "$err" bn-tokenize
    [ "$err" = "bn-tokenize: /dev/full: write error: No space left on device" ]
}
