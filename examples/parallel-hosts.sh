#!/bin/sh
# parallel-hosts.sh — answer a file of prompts on several machines at once.
# GNU parallel cuts the file into chunks of records and sends each chunk
# over ssh to a free host (one chunk per host at a time), where
#   bn-tokenize -m MODEL -l | bn-infer -m MODEL --parallel N [BN-INFER OPTIONS]
# answers it; the answers are written in input order. A chunk whose host
# fails (ssh cannot connect, the host goes down, a program fails) is tried
# again on another host, and only its last try's output is kept. The model
# and the bn programs must already be on every host, at the same paths; the
# hosts need perl (GNU parallel's remote wrapper) and a POSIX login shell.
#
#   examples/parallel-hosts.sh -S HOST[,HOST...] -m MODEL [OPTIONS] PROMPTS [-- BN-INFER OPTIONS]
#
# PROMPTS is a file (- for standard input) of prompts, one per line; with
# --records, of token records as bn-tokenize -l writes them (text form).
# The answers are bn-infer's: token ids, or text with --text after --.
#   -S, --hosts LIST    sshlogins, comma-separated, as parallel's --sshlogin
#                       ("user@host", "ssh -p 2222 host"); default $BN_HOSTS
#   -m, --model PATH    the model, on the hosts; default $BN_MODEL
#   -B, --bin DIR       where the bn programs are on the hosts (default: the
#                       PATH of their ssh sessions); default $BN_REMOTE_BIN
#   -np, --parallel N   records each host answers at once (default 16)
#   -L, --chunk N       records per chunk (default 64)
#   -r, --retries N     tries per chunk, each on a host where it has not yet
#                       failed while there is one (default 3)
#   --seed S            seed of the answers: record k samples with S + k - 1,
#                       the same as one bn-infer --parallel --seed S run
#   --records           PROMPTS holds token records: no bn-tokenize on hosts
#   --ssh CMD           the ssh command (e.g. "ssh -F my_config")
#   -h, --help          this text
# Exit status: 0; 1 when a chunk failed on every try (the others are still
# written; bn-infer's messages number records from the chunk's start), or
# when PROMPTS cannot be read; 2 for a usage error.
# Example:
#   examples/parallel-hosts.sh -S box1,box2 -m /srv/models/2b4t.bn -np 16 \
#       prompts.txt -- -n 64 --temp 0 --text >answers.txt
set -eu
me=parallel-hosts.sh

usage() { sed -n '2,/^set -eu$/{/^#/s/^# \{0,1\}//p}' "$0"; }
die() { echo "$me: $*" >&2; exit 1; }
usage_error() { echo "$me: $*" >&2; exit 2; }
# q WORD: WORD quoted for a POSIX shell (the hosts' shell reads the command)
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
count() { case $2 in '' | *[!0-9]*) usage_error "$1: '$2' is not a whole number" ;; esac; }

hosts=${BN_HOSTS:-}
model=${BN_MODEL:-}
bin=${BN_REMOTE_BIN:-}
np=16
chunk=64
retries=3
seed=
records=0
ssh=
prompts=
while [ $# -gt 0 ]; do
    case $1 in
    --*=*) opt=${1%%=*} val=${1#*=} ;;
    -[SmBLr]?*) opt=$(printf '%.2s' "$1") val=${1#??} ;;
    *) opt=$1 val= ;;
    esac
    case $opt in
    -S | --hosts | -m | --model | -B | --bin | -np | --parallel | -L | --chunk | -r | --retries | --seed | --ssh)
        if [ "$opt" = "$1" ]; then
            [ $# -ge 2 ] || usage_error "$opt needs a value"
            val=$2
            shift
        fi
        case $opt in
        -S | --hosts) hosts=$val ;;
        -m | --model) model=$val ;;
        -B | --bin) bin=$val ;;
        -np | --parallel) count "$opt" "$val" && np=$val ;;
        -L | --chunk) count "$opt" "$val" && chunk=$val ;;
        -r | --retries) count "$opt" "$val" && retries=$val ;;
        --seed) count "$opt" "$val" && seed=$val ;;
        --ssh) ssh=$val ;;
        esac
        ;;
    --records | -h | --help)
        [ "$opt" = "$1" ] || usage_error "$opt takes no value"
        case $opt in --records) records=1 ;; *) usage; exit 0 ;; esac
        ;;
    --) shift; break ;;
    -?*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$prompts" ] || usage_error "one PROMPTS file only ('$prompts' and '$1')"
        prompts=$1
        ;;
    esac
    shift
done
[ -n "$hosts" ] || usage_error "no hosts (-S HOST,HOST or BN_HOSTS)"
[ -n "$model" ] || usage_error "no model (-m PATH or BN_MODEL)"
[ -n "$prompts" ] || usage_error "no PROMPTS file (- reads standard input)"
[ "$np" -ge 1 ] && [ "$chunk" -ge 1 ] && [ "$retries" -ge 1 ] ||
    usage_error "--parallel, --chunk and --retries must be at least 1"
# Every chunk gets its own seed so that the answers do not depend on the cut.
for a in "$@"; do
    case $a in --seed | --seed=*) usage_error "give --seed to $me, not to bn-infer" ;; esac
done
if ! parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
    die "GNU parallel is not installed (Debian: apt-get install parallel)"
fi
if [ "$prompts" != - ]; then
    [ -r "$prompts" ] && [ ! -d "$prompts" ] || die "$prompts: cannot read the prompts"
fi

# The command each host runs on its chunk. Not every sh has pipefail, so
# bn-tokenize's exit status comes back through fd 3: a failed tokenizer
# fails the chunk instead of leaving it short.
[ -z "$bin" ] || bin=${bin%/}/
infer="$(q "${bin}bn-infer") -m $(q "$model") --parallel $np"
[ -z "$seed" ] || infer="$infer --seed \$(($seed + ({#} - 1) * $chunk))"
for a in "$@"; do infer="$infer $(q "$a")"; done
if [ "$records" = 1 ]; then
    job=$infer
else
    tok="$(q "${bin}bn-tokenize") -m $(q "$model") -l"
    job="{ s=\$( { { $tok; echo \$? >&3; } | $infer >&4; } 3>&1 ); } 4>&1 && [ \"\$s\" = 0 ]"
fi

# One chunk per host at a time (-j 1): bn-infer --parallel keeps a host's
# cores busy by itself. --keep-order writes the chunks' output in input order.
status=0
if [ "$prompts" = - ]; then
    parallel --pipe -N "$chunk" -j 1 --sshlogin "$hosts" ${ssh:+--ssh "$ssh"} \
        --keep-order --retries "$retries" "$job" || status=$?
else
    parallel --pipe -N "$chunk" -j 1 --sshlogin "$hosts" ${ssh:+--ssh "$ssh"} \
        --keep-order --retries "$retries" "$job" <"$prompts" || status=$?
fi
case $status in
0) ;;
[1-9] | [1-9][0-9] | 100) die "$status chunk(s) failed on every try (their last try's output is above)" ;;
101) die "more than 100 chunks failed on every try" ;;
*) die "GNU parallel failed (exit status $status)" ;;
esac
