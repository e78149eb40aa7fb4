#!/bin/sh
# score-text.sh — perplexity of a text file under a model, as JSON
# (windows of the model's context, each starting with BOS; f32 KV cache so
# the figure is comparable with a reference implementation's).
#   examples/score-text.sh MODEL TEXT [CONTEXT]
set -eu
model=${1:?usage: score-text.sh MODEL TEXT [CONTEXT]}
text=${2:?usage: score-text.sh MODEL TEXT [CONTEXT]}
if [ $# -ge 3 ]; then
    exec bn-infer -m "$model" --perplexity "$text" --kv f32 --json -c "$3"
fi
exec bn-infer -m "$model" --perplexity "$text" --kv f32 --json
