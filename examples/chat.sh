#!/bin/sh
# chat.sh — talk to a model. From a terminal, type one message per line
# (Ctrl-D ends); from a pipe, each input line is one user message and each
# answer one output line (its line breaks escaped as \n; printf '%b' undoes it).
#   BN_PREDICT, BN_TEMP, BN_SEED set the answer length, temperature and seed.
#   examples/chat.sh MODEL ["system prompt"]
set -eu
model=${1:?usage: chat.sh MODEL [SYSTEM]}
system=${2:-You are a helpful assistant.}
exec bn-infer -m "$model" -cnv --system "$system" -n "${BN_PREDICT:-128}" --temp "${BN_TEMP:-0.8}" ${BN_SEED:+--seed "$BN_SEED"}
