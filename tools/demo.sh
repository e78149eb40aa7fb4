#!/bin/sh
# The main job on the bundled model: convert the Hugging Face checkpoint,
# ternarize it, describe the result, and generate text through the pipeline.
set -eu
cd "$(dirname "$0")/.."
bin=build/bin
out=build/tiny.bn
echo "== bn-convert models/tiny-bitnet | bn-quant > $out"
$bin/bn-convert models/tiny-bitnet | $bin/bn-quant --report - > "$out"
echo
echo "== bn-convert --info --verify $out"
$bin/bn-convert --info --verify "$out" | sed -n '1,/^checksums/p'
if $bin/bn-infer --help >/dev/null 2>&1 && [ "$($bin/bn-infer -m "$out" -p x -n 0 >/dev/null 2>&1; echo $?)" != 2 ]; then
    prompt="It was a fine morning, and Elizabeth"
    echo
    echo "== echo '$prompt' | bn-tokenize -m $out | bn-infer -m $out -n 60 --seed 1 --temp 0.8 | bn-tokenize -d -m $out"
    printf '%s' "$prompt"
    echo "$prompt" | $bin/bn-tokenize -m "$out" | $bin/bn-infer -m "$out" -n 60 --seed 1 --temp 0.8 |
        $bin/bn-tokenize -d -m "$out"
    echo
fi
