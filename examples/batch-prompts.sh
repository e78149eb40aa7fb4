#!/bin/sh
# batch-prompts.sh — answer a file of prompts, one per line, in one run:
# the model is loaded once, each line becomes one token record, and the
# answers come back in order, one line each.
#   examples/batch-prompts.sh MODEL PROMPTS.txt [TOKENS]
set -eu
model=${1:?usage: batch-prompts.sh MODEL PROMPTS [TOKENS]}
prompts=${2:?usage: batch-prompts.sh MODEL PROMPTS [TOKENS]}
n=${3:-64}
bn-tokenize -m "$model" -l "$prompts" | bn-infer -m "$model" -n "$n" --temp 0 --ids |
    bn-tokenize -m "$model" -d -l
