#!/usr/bin/env bats
# bn-bench --parallel N,... with --prompt-file (issue 16's rows for
# speculative decoding in the batch): per N a plain row and a lookup (or
# draft model) row of the same texts, the acceptance, tokens per pass and
# speed-up in the lookup row's "what", in md, csv and json, and --compare
# of two runs. The greedy answers being the same both ways is checked by
# bn-bench itself (it fails otherwise). tests/data/lookup/ holds the texts.

load common

L=$ROOT/tests/data/lookup
FAST="-t 1 -r 1 --bw-mib 4"

@test "bn-bench --parallel --prompt-file: plain and lookup rows per N, guesses kept on texts that copy" {
    bn-bench -m "$TINY" -n 32 $FAST --parallel 1,3 --prompt-file "$L/repeat.txt" --prompt-file "$L/rewrite.txt" \
        --lookup 2 --draft-max 4 >"$T/out"
    grep -q "| tg32 x1 plain | repeat.txt | [0-9.]* ± " "$T/out"
    grep -q "| tg32 x3 plain | repeat.txt,rewrite.txt | [0-9.]* ± " "$T/out"
    grep -q "| tg32 x1 lookup 2/4 | repeat.txt: [0-9]*% kept, " "$T/out"
    line=$(grep "| tg32 x3 lookup 2/4 | " "$T/out")
    [[ $line =~ repeat.txt,rewrite.txt:\ ([0-9]+)%\ kept,\ ([0-9.]+)\ tok/pass,\ ([0-9.]+)x\ \|\ ([0-9.]+) ]]
    [ "${BASH_REMATCH[1]}" -gt 0 ]
    [[ ${BASH_REMATCH[2]} > "1.00" ]]
    [ "$(grep -c '| tg32 x' "$T/out")" -eq 4 ]
}

@test "bn-bench --parallel --prompt-file: json and csv carry N, --compare lines the runs up" {
    bn-bench -m "$TINY" -n 16 $FAST --parallel 2 --prompt-file "$L/chat.txt" --json >"$T/a.json"
    bn-bench -m "$TINY" -n 16 $FAST --parallel 2 --prompt-file "$L/chat.txt" --json >"$T/b.json"
    $PY -c '
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r.get("parallel") == 2]
tests = sorted(r["test"] for r in rows)
assert tests == ["tg16 x2 lookup 3/8", "tg16 x2 plain"], tests
assert all(r["median"] > 0 and r["per_seq"] > 0 for r in rows), rows' "$T/a.json"
    bn-bench -m "$TINY" -n 16 $FAST --parallel 2 --prompt-file "$L/chat.txt" --csv >"$T/c.csv"
    grep -q ',tg16 x2 plain,.*,2,' "$T/c.csv"
    run bn-bench --compare "$T/a.json" "$T/b.json"
    [ "$status" -eq 0 ]
    [[ $output == *"| tg16 x2 plain |"* && $output == *"| tg16 x2 lookup 3/8 |"* ]]
}

@test "bn-bench --parallel --prompt-file --draft: the model as its own draft keeps nearly every guess" {
    normal_pass_only "the draft model's batch path runs under the sanitizers in spec-parallel.bats"
    bn-bench -m "$TINY" -n 16 $FAST --parallel 2 --prompt-file "$L/fresh.txt" --draft "$TINY" --draft-max 4 >"$T/out"
    grep -q "| tg16 x2 plain | fresh.txt | " "$T/out"
    line=$(grep "| tg16 x2 draft 4 | " "$T/out")
    [[ $line =~ fresh.txt:\ ([0-9]+)%\ kept ]]
    [ "${BASH_REMATCH[1]}" -ge 90 ]
}
