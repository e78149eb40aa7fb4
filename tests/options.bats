#!/usr/bin/env bats
# options.bats — the GNU option conventions, for every option of every
# program. The options come from each program's own table (the hidden
# `PROG --list-options`: spellings, kind, range, current value, then the
# operands), so an option added to a table is tested without touching this
# file. --list-options parses the whole command line first, so a dump after
# `--x=V` shows what the parser made of it.
load common

PROGS="bn-convert bn-quant bn-pack bn-tokenize bn-infer bn-bench bn-serve"

# A valid value for options whose value a callback of the program checks
# (the table cannot say what such a value looks like).
example_value() { # prog long-spelling
    case "$1 $2" in
    "bn-bench --synthetic") echo tiny ;;
    "bn-bench --n-prompt" | "bn-bench --threads" | "bn-bench --parallel") echo 1,2 ;;
    "bn-bench --verify") echo 2,4 ;;
    "bn-bench --n-gen") echo 3 ;;
    "bn-bench --kernel") echo ref ;;
    "bn-infer --stop") echo xyz ;;
    "bn-infer --logit-bias") echo 5=1.5 ;;
    *) return 1 ;;
    esac
}

# options PROG: the dump's option lines, "spellings<TAB>kind<TAB>range<TAB>value".
options() {
    "$1" --list-options | grep -v '^operand'
}

# each_option PROG: the options a test that starts the program several
# times per option goes through: every one in the normal pass; under the
# sanitizers (the same parser code for all, each start slow there) the
# first of each kind.
each_option() {
    if [ -n "${BN_SANITIZED:-}" ]; then
        options "$1" | awk -F'\t' '!seen[$2]++'
    else
        options "$1"
    fi
}

# The dump after the words, without the options whose value changes from
# run to run (bn-infer's seed comes from the clock and the process id).
stable_dump() { # prog words...
    local p=$1
    shift
    "$p" --list-options "$@" >"$BATS_TEST_TMPDIR/dump" || return 1
    diff <("$p" --list-options) <("$p" --list-options) | sed -n 's/^[<>] //p' | cut -f1 >"$BATS_TEST_TMPDIR/unstable"
    awk -F'\t' 'FILENAME == ARGV[1] { u[$1]; next } !($1 in u)' "$BATS_TEST_TMPDIR/unstable" "$BATS_TEST_TMPDIR/dump"
}

# A valid value for the option, different from its current one.
value_for() { # prog spellings kind range current
    local prog=$1 spell=$2 kind=$3 range=$4 cur=$5 lo hi n
    case $kind in
    int | u32 | u64 | bytes | float)
        lo=${range%%..*} hi=${range##*..}
        if [ "$cur" = "$lo" ]; then echo "$hi"; else echo "$lo"; fi ;;
    enum)
        for n in ${range//|/ }; do
            [ "$n" != "$cur" ] && { echo "$n"; return; }
        done
        return 1 ;;
    string | list) echo opt-test-value ;;
    call) example_value "$prog" "${spell##*,}" ;;
    *) return 1 ;;
    esac
}

# The dump's line for the option whose spellings are $2, after the words.
dump_line() { # prog spellings words...
    local prog=$1 spell=$2
    shift 2
    "$prog" "$@" --list-options | grep -P "^\Q$spell\E\t"
}

# The command exits 2 with exactly "PROG: MSG" and the hint on stderr.
usage_error() { # msg prog words...
    local msg=$1 prog=$2 err status=0
    shift 2
    err=$("$prog" "$@" 2>&1 >/dev/null) || status=$?
    local want
    want=$(printf "%s: %s\nTry '%s --help' for more information." "$prog" "$msg" "$prog")
    [ "$status" -eq 2 ] && [ "$err" = "$want" ] && return 0
    echo "$prog $*: status $status, stderr:"
    echo "$err"
    echo "wanted:"
    echo "$want"
    return 1
}

@test "every program lists its options, and has --help and --version" {
    for p in $PROGS; do
        run "$p" --help
        [ "$status" -eq 0 ] && [[ ${lines[0]} == "$p — "* && $output == *"usage: $p"* ]] ||
            { echo "$p --help: $status"; return 1; }
        [[ $output == *"  -h, --help"* && $output == *"      --version"* ]]
        [ "$("$p" -h)" = "$output" ] || { echo "$p -h is not --help"; return 1; }
        run "$p" --version
        [ "$status" -eq 0 ] && [[ $output == "$p (bn) "* ]] || { echo "$p --version: $output"; return 1; }
        usage_error "option '--help' takes no value" "$p" --help=x
        usage_error "option '--version' takes no value" "$p" --version=1
        [ "$(options "$p" | wc -l)" -ge 5 ] || { echo "$p lists too few options"; return 1; }
    done
}

@test "every option is in the help and in the man page" {
    local p spell kind range cur s help man
    for p in $PROGS; do
        help=$("$p" --help)
        man=$ROOT/man/$p.1
        while IFS=$'\t' read -r spell kind range cur; do
            for s in ${spell//,/ }; do
                [[ $help == *"$s"* ]] || { echo "$p: $s is not in --help"; return 1; }
                # roff writes - as \-; the spelling must end there
                grep -qE "$(printf '%s' "$s" | sed 's/-/\\\\-/g')([^a-zA-Z0-9-]|$)" "$man" ||
                    { echo "$p: $s is not in $man"; return 1; }
            done
        done < <(options "$p")
    done
}

@test "every option's value: --name=V is --name V, -xV is -x V" {
    local p spell kind range cur v s want a b
    for p in $PROGS; do
        while IFS=$'\t' read -r spell kind range cur; do
            [[ $kind == flag || $kind == set ]] && continue
            v=$(value_for "$p" "$spell" "$kind" "$range" "$cur") || { echo "$p $spell: no test value"; return 1; }
            for s in ${spell//,/ }; do
                if [[ $s == --* || ${#s} -gt 2 ]]; then
                    a=$(dump_line "$p" "$spell" "$s=$v") || { echo "$p $s=$v failed"; return 1; }
                else
                    a=$(dump_line "$p" "$spell" "$s$v") || { echo "$p $s$v failed"; return 1; }
                fi
                b=$(dump_line "$p" "$spell" "$s" "$v") || { echo "$p $s $v failed"; return 1; }
                want=$(printf '%s\t%s\t%s\t%s' "$spell" "$kind" "$range" "$v")
                [ "$a" = "$want" ] && [ "$b" = "$want" ] || { printf '%s\n' "$p $s $v:" "$a" "$b"; return 1; }
            done
        done < <(each_option "$p")
    done
}

@test "a value is the next word even when it starts with '-': -x -h is not a help request" {
    local p spell kind range cur s out
    for p in $PROGS; do
        while IFS=$'\t' read -r spell kind range cur; do
            [[ $kind == flag || $kind == set ]] && continue
            for s in ${spell//,/ }; do
                out=$("$p" --list-options "$s" -h 2>&1) || true
                [[ $out != *"usage: "* ]] || { echo "$p $s -h printed the help"; return 1; }
                [[ $out == *"-h"* ]] || { echo "$p $s -h: $out"; return 1; }
            done
        done < <(each_option "$p")
    done
}

@test "an option without its value: one line and the hint, exit 2" {
    local p spell kind range cur s
    for p in $PROGS; do
        while IFS=$'\t' read -r spell kind range cur; do
            [[ $kind == flag || $kind == set ]] && continue
            for s in ${spell//,/ }; do
                usage_error "option '$s' needs a value" "$p" "$s"
            done
        done < <(each_option "$p")
    done
}

@test "a number is written as one: blanks, a sign where none belongs and hex are refused" {
    local p spell kind range cur lo s v
    for p in $PROGS; do
        while IFS=$'\t' read -r spell kind range cur; do
            lo=${range%%..*}
            case $kind in
            u32 | u64 | bytes) set -- " $lo" "+$lo" "-$lo" $'\n'"$lo" "" ;;
            int) set -- " $lo" "" ;;
            float) set -- " $lo" "0x1p-1" "$lo " "" ;;
            *) continue ;;
            esac
            for v; do
                s=${spell##*,}
                run "$p" "$s=$v" --list-options
                [ "$status" -eq 2 ] || { echo "$p $s='$v' was taken: $output"; return 1; }
            done
        done < <(each_option "$p")
    done
    # in lists and pairs too
    run bn-bench -p "8, 4" --list-options
    [ "$status" -eq 2 ]
    run bn-infer --logit-bias "5= 1" --list-options
    [ "$status" -eq 2 ]
    run bn-infer --logit-bias " 5=1" --list-options
    [ "$status" -eq 2 ]
    run bn-infer --logit-bias "5=" --list-options
    [ "$status" -eq 2 ]
}

@test "flags take no value, and set what they set" {
    local p spell kind range cur s line
    for p in $PROGS; do
        while IFS=$'\t' read -r spell kind range cur; do
            [[ $kind == flag || $kind == set ]] || continue
            for s in ${spell//,/ }; do
                [[ $s == --* ]] && usage_error "option '$s' takes no value" "$p" "$s=1"
                line=$(dump_line "$p" "$spell" "$s") || { echo "$p $s failed"; return 1; }
                [ "${line##*$'\t'}" != "$cur" ] || { echo "$p $s did not change $cur"; return 1; }
                [ "$kind" = set ] || [ "${line##*$'\t'}" = 1 ] || { echo "$p $s: $line"; return 1; }
            done
        done < <(each_option "$p")
    done
}

@test "unknown options: one line naming them, and the hint, exit 2" {
    local p letters l
    for p in $PROGS; do
        usage_error "unknown option '--bogus'" "$p" --bogus
        usage_error "unknown option '--bogus'" "$p" --bogus=1
        letters=$(options "$p" | cut -f1 | tr ',' '\n' | grep -E '^-[^-]$' | tr -d '\n-')
        for l in Z Y X W U; do
            [[ $letters == *$l* ]] || break
        done
        usage_error "unknown option '-$l'" "$p" "-$l"
        # long names are not abbreviated
        local first
        first=$(options "$p" | cut -f1 | tr ',' '\n' | grep -E '^--' | head -1)
        usage_error "unknown option '${first%?}'" "$p" "${first%?}"
        # what the line quotes stays on it: control bytes shown escaped
        usage_error "unknown option '--a\\nb\\tc\\x01'" "$p" $'--a\nb\tc\x01'
        # a character that is no letter in a bundle is named with the bundle (it said '--')
        l=$(options "$p" | awk -F'\t' '$2 == "flag" {print $1}' | tr ',' '\n' | grep -E '^-[^-]$' | head -1)
        [ -z "$l" ] || usage_error "unknown option '-' in '$l-'" "$p" "$l-"
    done
}

@test "-- ends the options and - alone is an operand, in every program" {
    local p out status
    for p in $PROGS; do
        for w in -x -; do
            status=0
            out=$("$p" --list-options -- "$w" 2>&1) || status=$?
            if [ "$status" -eq 0 ]; then
                [[ $out == *$'\noperand\t'"$w" ]] || { echo "$p -- $w: $out"; return 1; }
            else
                usage_error "extra operand '$w'" "$p" --list-options -- "$w"
            fi
        done
        # without --, -x is an option (unknown unless the program has it)
        status=0
        out=$("$p" --list-options -x 2>&1) || status=$?
        [[ $out != *"operand"* ]] || { echo "$p -x was an operand: $out"; return 1; }
    done
}

@test "bundled letters are the same as separate ones" {
    local p flags vletter spell kind range cur v s sep=() bundle
    for p in $PROGS; do
        flags="" sep=() vletter="" v=""
        while IFS=$'\t' read -r spell kind range cur; do
            s=${spell%%,*}
            [[ $s == -? ]] || continue
            if [[ $kind == flag || $kind == set ]]; then
                flags+=${s#-}
                sep+=("$s")
            elif [ -z "$vletter" ]; then
                v=$(value_for "$p" "$spell" "$kind" "$range" "$cur") || continue
                vletter=${s#-}
            fi
        done < <(options "$p")
        # bn-serve has no one-letter flags (only -h, which ends the parse)
        [ -n "$flags" ] || { [ "$p" = bn-serve ] && continue; echo "$p has no letter flags"; return 1; }
        bundle=-$flags
        if [ -n "$vletter" ]; then
            bundle+=$vletter$v
            sep+=("-$vletter" "$v")
        fi
        a=$(stable_dump "$p" "$bundle") || { echo "$p $bundle failed"; return 1; }
        b=$(stable_dump "$p" "${sep[@]}") || { echo "$p ${sep[*]} failed"; return 1; }
        [ "$a" = "$b" ] || { echo "$p: $bundle differs from ${sep[*]}"; diff <(echo "$a") <(echo "$b"); return 1; }
        [ "$a" != "$(stable_dump "$p")" ] || { echo "$p: $bundle changed nothing"; return 1; }
    done
}

@test "operands and options in any order" {
    run bn-convert --list-options in.bn --name x -q
    [ "$status" -eq 0 ]
    [[ $output == *$'--name\tstring\t-\tx'* && $output == *$'-q,--quiet\tflag\t-\t1'* ]]
    [[ $output == *$'operand\tin.bn' ]]
    run bn-tokenize --list-options a -l b -- -c
    [ "$status" -eq 0 ]
    [[ $output == *$'operand\ta\noperand\tb\noperand\t-c' ]]
    [[ $output == *$'-l,--lines\tflag\t-\t1'* && $output == *$'-c,--count\tflag\t-\t0'* ]]
}

@test "bn-infer keeps -cnv as one option; -c alone is --ctx" {
    run bn-infer --list-options -cnv -c 64
    [ "$status" -eq 0 ]
    [[ $output == *$'-cnv,--chat\tflag\t-\t1'* && $output == *$'-c,--ctx\tu32\t2..16777216\t64'* ]]
    usage_error "option '-c': 'nvx' is not a whole number in [2, 16777216]" bn-infer -cnvx
    usage_error "option '-cnv' takes no value" bn-infer -cnv=1
    usage_error "option '--ctx': 'abc' is not a whole number in [2, 16777216]" bn-infer --ctx abc
}
