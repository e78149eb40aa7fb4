#!/bin/sh
# batch-prompts.sh — answer a file of prompts, one per line, in one run:
# the model is loaded once, each line becomes one token record, PARALLEL
# of them (default 4) are decoded together, and the answers come back in
# order, one line each (line breaks and backslashes inside an answer
# written as \n, \r, \\: printf '%b' restores them).
#   examples/batch-prompts.sh MODEL PROMPTS.txt [TOKENS [PARALLEL]]
set -eu
usage='usage: batch-prompts.sh MODEL PROMPTS [TOKENS [PARALLEL]]'
model=${1:?$usage}
prompts=${2:?$usage}
n=${3:-64}
np=${4:-4}
# A pipeline's status is its last program's and not every sh has pipefail:
# a stage that fails says so in $failed, and the script then exits 1.
failed=$(mktemp)
trap 'rm -f "$failed"' EXIT
{ bn-tokenize -m "$model" -l "$prompts" || echo bn-tokenize >>"$failed"; } |
    { bn-infer -m "$model" -n "$n" --temp 0 --ids --parallel "$np" || echo bn-infer >>"$failed"; } |
    bn-tokenize -m "$model" -d -l --escape
[ ! -s "$failed" ]
