#!/bin/sh
# convert-and-pack.sh — turn a Hugging Face checkpoint (or a GGUF file) into
# a bn model ready to run: import, ternarize float projections, and pack for
# this CPU's kernels when this build's bn-pack can. It streams: about one
# tensor is in memory at a time.
#   examples/convert-and-pack.sh SOURCE OUTPUT.bn
set -eu
src=${1:?usage: convert-and-pack.sh SOURCE OUTPUT}
out=${2:?usage: convert-and-pack.sh SOURCE OUTPUT}
if bn-pack --help 2>/dev/null | grep -q 'not implemented'; then
    bn-convert "$src" | bn-quant >"$out"
else
    bn-convert "$src" | bn-quant | bn-pack >"$out"
fi
bn-convert --info "$out" | sed -n '1,3p'
