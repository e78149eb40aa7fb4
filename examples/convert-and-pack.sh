#!/bin/sh
# convert-and-pack.sh — turn a Hugging Face checkpoint (or a GGUF file) into
# a bn model ready to run: import, ternarize float projections, and pack for
# this CPU's kernels when this build's bn-pack can. It streams: about one
# tensor is in memory at a time.
#   examples/convert-and-pack.sh SOURCE OUTPUT.bn
set -eu
src=${1:?usage: convert-and-pack.sh SOURCE OUTPUT}
out=${2:?usage: convert-and-pack.sh SOURCE OUTPUT}
# -o, not a redirection: the last program writes OUTPUT whole or not at all,
# so a failure anywhere in the pipe leaves an existing OUTPUT as it was
# (the shell's > emptied it before anything ran)
if bn-pack --help 2>/dev/null | grep -q 'not implemented'; then
    bn-convert "$src" | bn-quant -o "$out"
else
    bn-convert "$src" | bn-quant | bn-pack -o "$out"
fi
bn-convert --info "$out" | sed -n '1,3p'
