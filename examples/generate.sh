#!/bin/sh
# generate.sh — continue a text, streaming, with the model's own tokenizer
# at both ends of the pipe (ids flow between the programs).
#   examples/generate.sh MODEL "prompt text" [TOKENS]
# It samples (bn-infer's default temperature) with seed $BN_SEED (default 1):
# the same seed, the same text.
set -eu
model=${1:?usage: generate.sh MODEL PROMPT [TOKENS]}
prompt=${2:?usage: generate.sh MODEL PROMPT [TOKENS]}
printf '%s' "$prompt" | bn-tokenize -m "$model" |
    bn-infer -m "$model" -n "${3:-64}" --seed "${BN_SEED:-1}" | bn-tokenize -m "$model" -d
echo
