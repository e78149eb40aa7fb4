#!/bin/sh
# generate.sh — continue a text, streaming, with the model's own tokenizer
# at both ends of the pipe (ids flow between the programs).
#   examples/generate.sh MODEL "prompt text" [TOKENS]
# It samples (bn-infer's default temperature) with seed $BN_SEED (default 1):
# the same seed, the same text.
set -eu
model=${1:?usage: generate.sh MODEL PROMPT [TOKENS]}
prompt=${2:?usage: generate.sh MODEL PROMPT [TOKENS]}
# A pipeline's status is its last program's and not every sh has pipefail:
# a stage that fails says so in $failed, and the script then exits 1.
failed=$(mktemp)
trap 'rm -f "$failed"' EXIT
{ printf '%s' "$prompt" | bn-tokenize -m "$model" || echo bn-tokenize >>"$failed"; } |
    { bn-infer -m "$model" -n "${3:-64}" --seed "${BN_SEED:-1}" || echo bn-infer >>"$failed"; } |
    bn-tokenize -m "$model" -d
echo
[ ! -s "$failed" ]
