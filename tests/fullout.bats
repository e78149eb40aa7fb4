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
    full bn-pack --list
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
    # one large write (the JSON document), or output after the last flush
    # checked: the failure is in stdio's error flag, not in the final fflush
    full bn-convert --info --json "$M"
    printf 'It was the best of times, it was the worst of times.\n' >"$BATS_TEST_TMPDIR/p.txt"
    full bn-infer -m "$M" --perplexity "$BATS_TEST_TMPDIR/p.txt" -c 8
    full bn-infer -m "$M" --perplexity "$BATS_TEST_TMPDIR/p.txt" -c 8 --json
}

@test "a named output on a full disk is named: -o /dev/full, --report /dev/full" {
    M=$BATS_FILE_TMPDIR/tiny.bn
    named() { # PROG ARGS...: fails naming /dev/full
        run_split /dev/null "$@"
        expect_one_line_error "$status" "$err" "$1"
        [ "$err" = "$1: /dev/full: write error: No space left on device" ] || { echo "got: $err"; return 1; }
    }
    named bn-tokenize -m "$M" -o /dev/full < <(echo hi)
    named bn-convert "$M" -o /dev/full
    named bn-quant "$M" -o /dev/full
    named bn-pack "$M" -o /dev/full
    bn-convert -q "$TINY" >"$BATS_FILE_TMPDIR/f.bn"
    named bn-quant -q "$BATS_FILE_TMPDIR/f.bn" -o "$BATS_TEST_TMPDIR/q.bn" --report /dev/full
    named bn-pack -q "$M" -l b3 -o "$BATS_TEST_TMPDIR/p.bn" --report /dev/full
    # the report is flushed before the model is committed: a run that fails no longer leaves the model written
    [ ! -e "$BATS_TEST_TMPDIR/q.bn" ] && [ ! -e "$BATS_TEST_TMPDIR/p.bn" ]
    # --logits: the text form is flushed after each prompt, which once
    # dropped the error (exit 0, nothing written)
    named bn-infer -m "$M" -p "It was" -n 2 --logits /dev/full
    named bn-infer -m "$M" -p "It was" -n 2 --logits /dev/full --logits-topk 3
    # in a token stream the failure ends the run: it once passed for a bad
    # record, one message for each record that followed
    named bn-infer -m "$M" -n 2 --logits /dev/full < <(printf '4064 378\n4064 99\n4064 5\n')
}

@test "--logits FILE is whole or absent: a run that fails leaves none, and an old one as it was" {
    M=$BATS_FILE_TMPDIR/tiny.bn T=$BATS_TEST_TMPDIR
    # the first record's logits are written before the second fails to parse
    run bn-infer -m "$M" -n 1 --temp 0 --logits "$T/l.f32" < <(printf '4064 378\n4064 abc\n')
    [ "$status" -eq 1 ]
    [ ! -e "$T/l.f32" ]
    echo old >"$T/l.f32"
    run bn-infer -m "$M" -n 1 --temp 0 --logits "$T/l.f32" < <(printf '4064 378\n4064 abc\n')
    [ "$status" -eq 1 ]
    [ "$(cat "$T/l.f32")" = old ]
    no_files_like "$T" '^\.'
    # a record that cannot be answered ends the run with 1, but the others'
    # logits are whole: kept
    run bn-infer -m "$M" -n 1 --temp 0 --logits "$T/l.f32" < <(printf '4064 378\n4064 99999\n')
    [ "$status" -eq 1 ]
    [ "$(stat -c %s "$T/l.f32")" -eq $((2 * 4096 * 4)) ]
    bn-infer -m "$M" -n 1 --temp 0 --logits "$T/l.f32" < <(echo "4064 378") >/dev/null
    [ "$(stat -c %s "$T/l.f32")" -eq $((2 * 4096 * 4)) ]
}

@test "--report FILE is whole or absent: a failed run leaves none, and an old one as it was" {
    T=$BATS_TEST_TMPDIR
    head -c 1000 "$BATS_FILE_TMPDIR/tiny.bn" >"$T/cut.bn"
    for prog in bn-quant bn-pack; do
        run $prog "$T/cut.bn" -o "$T/x.bn" --report "$T/new.txt"
        [ "$status" -eq 1 ]
        [ ! -e "$T/new.txt" ]
        [ ! -e "$T/x.bn" ]
        echo old >"$T/old.txt"
        run $prog "$T/cut.bn" -o "$T/x.bn" --report "$T/old.txt"
        [ "$status" -eq 1 ]
        [ "$(cat "$T/old.txt")" = old ]
        [ -z "$(ls -A "$T" | grep '^\.' || true)" ] # no temporary left
    done
    bn-quant -q "$BATS_FILE_TMPDIR/f.bn" -o "$T/q.bn" --report "$T/r.json" --json
    $PY -c 'import json, sys; r = json.load(open(sys.argv[1])); assert len(r) == 42, len(r)' "$T/r.json"
    run bn-quant -q "$BATS_FILE_TMPDIR/f.bn" -o "$T/q2.bn" --json
    [ "$status" -eq 2 ]
    [[ $output == *"--json goes with --report"* ]]
}
