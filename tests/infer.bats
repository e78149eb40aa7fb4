#!/usr/bin/env bats
# bn-infer: logits against the independent numpy reference (tests/ref/
# ref_forward.py) on synthetic and trained models, perplexity, pipelines,
# sampling, stop strings, chat, and every error path.

load common

REF="$PY $ROOT/tests/ref/ref_forward.py"
DATA=$ROOT/tests/data/infer

setup_file() {
    local D=$BATS_FILE_TMPDIR
    # The trained tiny model, quantized, and synthetic checkpoints: odd sizes
    # (head_dim 12, rows not a multiple of 4), HF-packed weights with both
    # scale conventions, and the real 128256-token vocabulary.
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    $GEN --format hf-bf16 --shape tiny "$D/syn-tiny" >/dev/null
    # a longer context than the shape's, for the 512-token comparison
    $PY -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["max_position_embeddings"]=1024; json.dump(c,open(p,"w"))' \
        "$D/syn-tiny/config.json"
    $GEN --format hf-bf16 --shape odd "$D/syn-odd" >/dev/null
    $GEN --format hf-packed --shape small-odd "$D/syn-packed" >/dev/null
    $GEN --format hf-packed-bitlinear --shape tiny --seed 3 "$D/syn-bitlinear" >/dev/null
    $GEN --format hf-packed --shape tiny --vocab 128256 --layers 1 "$D/syn-vocab" >/dev/null
    for m in syn-tiny syn-odd syn-packed syn-bitlinear syn-vocab; do
        bn-convert "$D/$m" | bn-quant >"$D/$m.bn"
    done
    echo 5 >"$D/p1.ids"
    echo "5 17 29 101 7 250 42" >"$D/p7.ids"
    $PY -c 'import numpy as np; print(" ".join(map(str, np.random.default_rng(7).integers(0, 496, 512))))' >"$D/p512.ids"
    # trained-model prompts: BOS + held-out text
    bn-tokenize -m "$D/tiny.bn" --no-bos "$DATA/heldout.txt" >"$D/held.ids"
    for n in 1 7 20 256; do
        (echo -n "4064 "; cut -d' ' -f1-$((n - 1)) "$D/held.ids") | sed 's/ $//' >"$D/h$n.ids"
    done
    echo 4064 >"$D/h1.ids"
    # one token's K beyond the f16 KV cache's range (common.bash)
    hot_tiny "$D/hot.bn"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

# logits_of MODEL IDS [bn-infer options]: every prompt position's logits in $T/bn.f32
logits_of() {
    local m=$1 ids=$2
    shift 2
    bn-infer -m "$m" --logits "$T/bn.f32" -n 0 "$@" <"$ids" >/dev/null
}

@test "--help, --version, usage errors exit 2" {
    run bn-infer --help
    [ "$status" -eq 0 ]
    [[ $output == *"usage: bn-infer"* ]]
    run bn-infer --version
    [[ $output == "bn-infer (bn) "* ]]
    run bn-infer
    [ "$status" -eq 2 ]
    run bn-infer -m x --temp
    [ "$status" -eq 2 ]
    run bn-infer -m x --kv f8
    [ "$status" -eq 2 ]
    run bn-infer -m x -p a -cnv
    [ "$status" -eq 2 ]
    run bn-infer -m x --bogus
    [ "$status" -eq 2 ]
}

@test "(a) exact int8 path, f32 KV: 1- and 7-token prompts match the reference to 1e-4 (synthetic models)" {
    for m in syn-tiny syn-odd syn-packed syn-bitlinear syn-vocab; do
        for p in p1 p7; do
            logits_of "$D/$m.bn" "$D/$p.ids" --kv f32
            run $REF compare --model "$D/$m" --ids "$D/$p.ids" --bn "$T/bn.f32" --atol 1e-4
            echo "$m $p: $output"
            [ "$status" -eq 0 ]
        done
    done
}

@test "(a) exact int8 path, f32 KV: 1- and 7-token prompts match the reference to 1e-4 (trained tiny model)" {
    for p in h1 h7; do
        logits_of "$D/tiny.bn" "$D/$p.ids" --kv f32
        run $REF compare --model "$TINY" --ids "$D/$p.ids" --bn "$T/bn.f32" --atol 1e-4
        echo "$p: $output"
        [ "$status" -eq 0 ]
    done
}

@test "(b) float activations: every position of 512 tokens within 1e-3 relative (synthetic)" {
    logits_of "$D/syn-tiny.bn" "$D/p512.ids" --no-act-quant --kv f32
    run $REF compare --model "$D/syn-tiny" --ids "$D/p512.ids" --bn "$T/bn.f32" --mode noquant --rtol 1e-3
    echo "$output"
    [ "$status" -eq 0 ]
    for m in syn-odd syn-packed syn-vocab; do
        logits_of "$D/$m.bn" "$D/p7.ids" --no-act-quant --kv f32
        run $REF compare --model "$D/$m" --ids "$D/p7.ids" --bn "$T/bn.f32" --mode noquant --rtol 1e-3
        echo "$m: $output"
        [ "$status" -eq 0 ]
    done
}

@test "(b) float activations: 256 tokens of the trained model within 1e-3 relative" {
    logits_of "$D/tiny.bn" "$D/h256.ids" --no-act-quant --kv f32
    run $REF compare --model "$TINY" --ids "$D/h256.ids" --bn "$T/bn.f32" --mode noquant --rtol 1e-3
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "(b) float activations: greedy continuations of 64 tokens are the reference's" {
    bn-infer -m "$D/tiny.bn" --no-act-quant --kv f32 --temp 0 -n 64 <"$D/h20.ids" >"$T/gen.ids"
    [ "$(wc -w <"$T/gen.ids")" -eq 64 ]
    run $REF greedy-check --model "$TINY" --ids "$D/h20.ids" --gen "$T/gen.ids" --mode noquant
    echo "$output"
    [ "$status" -eq 0 ]
    bn-infer -m "$D/syn-tiny.bn" --no-act-quant --kv f32 --temp 0 -n 64 <"$D/p7.ids" >"$T/gen.ids"
    run $REF greedy-check --model "$D/syn-tiny" --ids "$D/p7.ids" --gen "$T/gen.ids" --mode noquant
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "(c) long exact-path runs are as close to the reference as a 1e-6 input perturbation moves it" {
    logits_of "$D/tiny.bn" "$D/h256.ids" --kv f32
    run $REF spread --model "$TINY" --ids "$D/h256.ids" --bn "$T/bn.f32"
    echo "$output"
    [ "$status" -eq 0 ]
    logits_of "$D/syn-tiny.bn" "$D/p512.ids" --kv f32
    run $REF spread --model "$D/syn-tiny" --ids "$D/p512.ids" --bn "$T/bn.f32"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "perplexity of held-out text agrees with the reference to 0.1%" {
    run bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" --json --kv f32
    [ "$status" -eq 0 ]
    echo "$output" >"$T/bn.json"
    $REF ppl --model "$TINY" --ids "$D/held.ids" --window 256 >"$T/ref.json"
    cat "$T/bn.json" "$T/ref.json"
    $PY - "$T/bn.json" "$T/ref.json" <<'EOF'
import json, sys
bn, ref = (json.load(open(p)) for p in sys.argv[1:])
assert bn["scored"] == ref["scored"], (bn["scored"], ref["scored"])
assert abs(bn["ppl"] / ref["ppl"] - 1) < 1e-3, (bn["ppl"], ref["ppl"])
assert abs(bn["ppl_err"] / ref["ppl_err"] - 1) < 1e-2
EOF
}

@test "perplexity: text output, sliding windows, f16 KV stays close" {
    run bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" -c 128
    [ "$status" -eq 0 ]
    [[ $output == "PPL = "*" +/- "*"windows of 128)" ]]
    run bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" -c 128 --ppl-stride 64 --json
    [ "$status" -eq 0 ]
    [[ $output == *'"scored": 2062'* ]]
    a=$(bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" --json --kv f32 | $PY -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
    b=$(bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" --json --kv f16 | $PY -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
    $PY -c "import sys; a, b = $a, $b; assert abs(a / b - 1) < 3e-3, (a, b)"
}

# The message of a K value beyond f16 in layer 0 at position P of what failed.
hot_error() {
    echo "position $1: layer 0: a K value (*) is beyond the range of the f16 KV cache (65504): use f32 K/V"
}

@test "a K value beyond the f16 KV cache's range is an error that says so, not garbage; --kv f32 holds it" {
    # stored as inf it made every later score NaN: the answer went on, from noise
    run_split "$T/out" bn-infer -m "$D/hot.bn" -p "Her ladyship said" -n 8
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == "bn-infer: -p: "$(hot_error 2) ]]
    [ ! -s "$T/out" ]
    run_split "$T/out" bn-infer -m "$D/hot.bn" -p "Her ladyship said" -n 8 --kv f32
    [ "$status" -eq 0 ]
    [ -z "$err" ]
    [ -s "$T/out" ]
    # the other tokens fit: answered in f16 as ever
    run_split "$T/out" bn-infer -m "$D/hot.bn" -p "It was a fine morning" -n 8
    [ "$status" -eq 0 ]
    [ -z "$err" ]
    [ -s "$T/out" ]
    run_split "$T/out" bn-infer -m "$D/hot.bn" -cnv -n 8 <<<"Her ladyship said"
    [ "$status" -eq 1 ]
    [[ $err == *"bn-infer: "$(hot_error 6) ]]
}

@test "a K value beyond f16: its record is named and answered empty, the others as alone (-np too)" {
    printf 'It was a fine morning\nHer ladyship said\nShe\n' | bn-tokenize -m "$D/hot.bn" -l >"$T/three.ids"
    for np in 1 3; do
        run_split "$T/out" bn-infer -m "$D/hot.bn" --temp 0 -n 8 -np $np <"$T/three.ids"
        expect_one_line_error "$status" "$err" bn-infer
        [[ $err == "bn-infer: -: record 2: "$(hot_error 2) ]]
        [ "$(sed -n 2p "$T/out")" = "" ]
        for i in 1 3; do
            [ "$(sed -n "${i}p" "$T/out")" = "$(sed -n "${i}p" "$T/three.ids" | bn-infer -m "$D/hot.bn" --temp 0 -n 8)" ]
        done
    done
    # --logits: the rows of the records answered, none of the one that failed
    run_split /dev/null bn-infer -m "$D/hot.bn" -n 0 --logits "$T/lg.f32" <"$T/three.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [ "$(stat -c %s "$T/lg.f32")" -eq $(((6 + 2) * 4096 * 4)) ]
}

@test "--perplexity of a text with a K value beyond f16 names the window and position; f32 scores it" {
    printf 'It was a fine morning, and her ladyship said nothing.\n' >"$T/t.txt"
    for np in 1 2; do
        run_split "$T/out" bn-infer -m "$D/hot.bn" --perplexity "$T/t.txt" -np $np
        expect_one_line_error "$status" "$err" bn-infer
        [[ $err == "bn-infer: $T/t.txt: window 1, "$(hot_error 9) ]]
        [ ! -s "$T/out" ]
    done
    run bn-infer -m "$D/hot.bn" --perplexity "$T/t.txt" --kv f32
    [ "$status" -eq 0 ]
    [[ $output == "PPL = "* ]]
}

@test "bn-tokenize | bn-infer | bn-tokenize -d generates text from the trained model" {
    run bash -c "printf 'It was a fine morning, and Elizabeth' | bn-tokenize -m '$D/tiny.bn' | bn-infer -m '$D/tiny.bn' --temp 0 -n 24 | bn-tokenize -m '$D/tiny.bn' -d"
    [ "$status" -eq 0 ]
    echo "$output"
    [[ $output == *" was not in the habit of seeing her"* ]]
}

@test "a binary token stream is answered in the binary form, and a model can be streamed (-m -)" {
    printf 'It was a fine morning, and Elizabeth' | bn-tokenize -m "$D/tiny.bn" -b >"$T/p.bin"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 12 <"$T/p.bin" >"$T/o.bin"
    [ "$(head -c 7 "$T/o.bin")" = BNTOKEN ]
    a=$(bn-tokenize -m "$D/tiny.bn" -d "$T/o.bin")
    b=$(bn-infer -m - -p 'It was a fine morning, and Elizabeth' --temp 0 -n 12 <"$D/tiny.bn")
    [ "$a" = "$b" ]
    [[ $a == " was not in the habit"* ]]
}

@test "a downstream head ends bn-infer quietly" {
    run bash -c "set -o pipefail; echo 'It was' | bn-tokenize -m '$D/tiny.bn' | bn-infer -m '$D/tiny.bn' -n -1 --temp 0 --text 2>'$T/err' | head -c 10"
    [ "${#output}" -eq 10 ]
    [ ! -s "$T/err" ]
    [ "$status" -eq 141 ] || [ "$status" -eq 0 ]
}

@test "a batch of 3 prompts gets 3 answers, in order, each as the prompt alone would" {
    printf 'It was a fine morning\nMr. Darcy said\nThe letter\n' | bn-tokenize -m "$D/tiny.bn" -l >"$T/three.ids"
    [ "$(wc -l <"$T/three.ids")" -eq 3 ]
    bn-infer -m "$D/tiny.bn" --temp 0 -n 8 <"$T/three.ids" >"$T/out.ids"
    [ "$(wc -l <"$T/out.ids")" -eq 3 ]
    for i in 1 2 3; do
        sed -n "${i}p" "$T/three.ids" | bn-infer -m "$D/tiny.bn" --temp 0 -n 8 >"$T/one.ids"
        [ "$(sed -n "${i}p" "$T/out.ids")" = "$(cat "$T/one.ids")" ]
    done
    # as text, one line per answer
    run bash -c "bn-infer -m '$D/tiny.bn' --temp 0 -n 8 --text <'$T/three.ids'"
    [ "${#lines[@]}" -eq 3 ]
}

@test "prefill in batches equals token-by-token decoding (KV cache, exact path)" {
    # greedy from the 20-token prompt, then the prompt + 10 generated tokens as one prompt
    bn-infer -m "$D/tiny.bn" --temp 0 -n 20 --kv f32 <"$D/h20.ids" >"$T/a.ids"
    (cat "$D/h20.ids" | tr '\n' ' '; cut -d' ' -f1-10 "$T/a.ids") | bn-infer -m "$D/tiny.bn" --temp 0 -n 10 --kv f32 >"$T/b.ids"
    [ "$(cut -d' ' -f11-20 "$T/a.ids" | sed 's/ *$//')" = "$(sed 's/ *$//' "$T/b.ids")" ]
}

@test "threads do not change results" {
    # 2 KV heads: 3 and 4 threads split the query groups of attention, and
    # every count claims rows in its own chunks; greedy and sampled runs
    # (a sampled draw moves with any change of a logit's bits, more often)
    a=$(bn-infer -m "$D/tiny.bn" --temp 0 -n 24 -t 1 <"$D/h20.ids")
    s=$(bn-infer -m "$D/tiny.bn" --temp 1.5 --top-k 0 --top-p 1 --min-p 0 --seed 5 -n 48 -t 1 <"$D/h20.ids")
    for t in 2 3 4; do
        [ "$(bn-infer -m "$D/tiny.bn" --temp 0 -n 24 -t $t <"$D/h20.ids")" = "$a" ]
        [ "$(bn-infer -m "$D/tiny.bn" --temp 1.5 --top-k 0 --top-p 1 --min-p 0 --seed 5 -n 48 -t $t <"$D/h20.ids")" = "$s" ]
    done
    # and the logits of a prompt, bit for bit
    bn-infer -m "$D/tiny.bn" -n 0 -t 1 --logits "$T/l1.f32" <"$D/h20.ids" >/dev/null
    bn-infer -m "$D/tiny.bn" -n 0 -t 3 --logits "$T/l3.f32" <"$D/h20.ids" >/dev/null
    cmp "$T/l1.f32" "$T/l3.f32"
}

@test "-p and -f write text; --echo includes the prompt; a float checkpoint is ternarized at load, said once" {
    run bn-infer -m "$D/tiny.bn" -p "It was a fine morning, and Elizabeth" --temp 0 -n 12 --echo
    [ "$status" -eq 0 ]
    [[ $output == "It was a fine morning, and Elizabeth was not in the habit"* ]]
    printf 'It was a fine morning, and Elizabeth' >"$T/prompt.txt"
    run_split "$T/out" bn-infer -m "$TINY" -f "$T/prompt.txt" --temp 0 -n 12
    [ "$status" -eq 0 ]
    [[ $(cat "$T/out") == " was not in the habit"* ]]
    [ "$(printf '%s\n' "$err" | grep -c 'ternarized at load')" -eq 1 ]
}

@test "seeded sampling repeats; different seeds differ; sampling options are accepted" {
    a=$(bn-infer -m "$D/tiny.bn" -p "She said" -n 24 --seed 5 --temp 0.9 --top-k 0 --top-p 0.9 --min-p 0.02)
    b=$(bn-infer -m "$D/tiny.bn" -p "She said" -n 24 --seed 5 --temp 0.9 --top-k 0 --top-p 0.9 --min-p 0.02)
    c=$(bn-infer -m "$D/tiny.bn" -p "She said" -n 24 --seed 6 --temp 0.9 --top-k 0 --top-p 0.9 --min-p 0.02)
    [ "$a" = "$b" ]
    [ "$a" != "$c" ]
    run bn-infer -m "$D/tiny.bn" -p "She said" -n 24 --seed 1 --repeat-penalty 1.3 --presence-penalty 0.5 --repeat-last-n 32
    [ "$status" -eq 0 ]
}

@test "--stop ends the answer before the stop string, as text and as ids" {
    full=$(bn-infer -m "$D/tiny.bn" -p "It was a fine morning, and Elizabeth" --temp 0 -n 20)
    [[ $full == *"habit"* ]]
    run bn-infer -m "$D/tiny.bn" -p "It was a fine morning, and Elizabeth" --temp 0 -n 20 --stop habit
    [ "$status" -eq 0 ]
    [ "$output" = "${full%%habit*}" ]
    # ids: only tokens wholly before the stop string
    bn-infer -m "$D/tiny.bn" -p "It was a fine morning, and Elizabeth" --temp 0 -n 20 --stop habit --ids >"$T/s.ids"
    run bn-tokenize -m "$D/tiny.bn" -d "$T/s.ids"
    [[ "${full%%habit*}" == "$output"* ]]
    [[ $output != *habit* ]]
    # a stop string ending in a byte the decoder holds back (a character's
    # start) is found also when its last token is the answer's last: id 230
    # is the byte e6, forced by the bias; one at a time and in the batch
    stop=$(printf '\xe6\xe6')
    for n in 2 3; do
        bn-infer -m "$D/tiny.bn" -p x --logit-bias 230=100 -n $n --temp 0 --stop "$stop" >"$T/e6"
        [ "$(od -An -tx1 "$T/e6" | tr -d ' ')" = 0a ]
        printf 'x\n' | bn-tokenize -m "$D/tiny.bn" -l |
            bn-infer -m "$D/tiny.bn" --parallel 2 --logit-bias 230=100 -n $n --temp 0 --text --stop "$stop" >"$T/e6"
        [ "$(od -An -tx1 "$T/e6" | tr -d ' ')" = 0a ]
    done
    bn-infer -m "$D/tiny.bn" -p x --logit-bias 230=100 -n 2 --temp 0 >"$T/e6"
    [ "$(od -An -tx1 "$T/e6" | tr -d ' ')" = e6e60a ]
}

@test "--logits-topk writes the K largest logits per position as text" {
    bn-infer -m "$D/tiny.bn" --logits "$T/top.txt" --logits-topk 3 -n 0 <"$D/h7.ids" >/dev/null
    [ "$(grep -c . "$T/top.txt")" -eq 7 ]
    logits_of "$D/tiny.bn" "$D/h7.ids"
    $PY - "$T/top.txt" "$T/bn.f32" <<'EOF'
import sys, numpy as np
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
lg = np.fromfile(sys.argv[2], dtype="<f4").reshape(len(rows), -1)
for r, l in zip(rows, lg):
    ids = [int(x.split(":")[0]) for x in r]
    assert ids == list(np.argsort(-l, kind="stable")[:3]), (ids, np.argsort(-l)[:3])
    assert all(np.float32(float(x.split(":")[1])) == l[i] for x, i in zip(r, ids))
EOF
}

@test "--logits - writes the logits alone to standard output (-n 0); with answers to write there it is refused" {
    bn-infer -m "$D/tiny.bn" -t 1 -n 0 --logits "$T/file.f32" <"$D/h7.ids" >/dev/null
    bn-infer -m "$D/tiny.bn" -t 1 -n 0 --logits - <"$D/h7.ids" >"$T/stdout.f32"
    # 7 positions of 4096 f32 each, no answer record among them
    [ "$(stat -c %s "$T/stdout.f32")" -eq $((7 * 4096 * 4)) ]
    cmp "$T/file.f32" "$T/stdout.f32"
    bn-infer -m "$D/tiny.bn" -t 1 -n 0 --logits - --logits-topk 2 <"$D/h7.ids" >"$T/top.txt"
    [ "$(grep -c . "$T/top.txt")" -eq 7 ]
    for args in "-n 2" "--echo -n 0" "-cnv -n 0"; do
        run_split "$T/out" bn-infer -m "$D/tiny.bn" --logits - $args <"$D/h7.ids"
        [ "$status" -eq 2 ] || { echo "$args: $status"; return 1; }
        [[ $err == "bn-infer: --logits -: standard output then carries the logits alone"* ]]
        [ ! -s "$T/out" ]
    done
}

@test "--logit-bias: greedy takes the largest biased logit (numpy over --logits); -100 bans a token; lookup the same; bad values refused" {
    bn-infer -m "$D/tiny.bn" --logits "$T/l.f32" -n 0 <"$D/h7.ids" >/dev/null
    first=$(bn-infer -m "$D/tiny.bn" --temp 0 -n 1 <"$D/h7.ids")
    # the model's own pick banned, another raised by 1.5: numpy says which wins
    want=$($PY - "$T/l.f32" "$first" <<'EOF'
import sys, numpy as np
l = np.fromfile(sys.argv[1], dtype="<f4").reshape(7, -1)[-1].astype(np.float64)
f = int(sys.argv[2])
assert np.argmax(l) == f
l[f] -= 100
third = int(np.argsort(-l, kind="stable")[1])  # the runner-up's runner-up, raised past it
l[third] += 1.5
print(f, third, int(np.argmax(l)))
EOF
)
    read -r f third pick <<<"$want"
    [ "$(bn-infer -m "$D/tiny.bn" --temp 0 -n 1 --logit-bias "$f=-100" --logit-bias "$third=1.5" <"$D/h7.ids" | xargs)" = "$pick" ]
    # banned at every step; the same with prompt lookup
    out=$(bn-infer -m "$D/tiny.bn" --temp 0 -n 24 --logit-bias "$f=-100" <"$D/h7.ids")
    [[ " $out " != *" $f "* ]]
    [ "$(bn-infer -m "$D/tiny.bn" --temp 0 -n 24 --logit-bias "$f=-100" --lookup 2 <"$D/h7.ids")" = "$out" ]
    # +100 forces a token, sampled too
    [ "$(bn-infer -m "$D/tiny.bn" --temp 0.8 --seed 3 -n 4 --logit-bias 5=100 <"$D/h7.ids" | xargs)" = "5 5 5 5" ]
    run bn-infer -m "$D/tiny.bn" -n 1 --logit-bias 4096=1 <"$D/h7.ids"
    [ "$status" -eq 1 ]
    [[ $output == "bn-infer: "*"--logit-bias 4096=1: the id is past the vocabulary (0..4095)" ]]
    for bad in 5 =1 5=101 5=x x=1 5=nan 5=; do
        run bn-infer -m "$D/tiny.bn" -n 1 --logit-bias "$bad"
        [ "$status" -eq 2 ] || { echo "$bad: $output"; return 1; }
    done
    run bn-infer -m "$D/tiny.bn" --logit-bias 5=1 --perplexity "$ROOT/tests/data/infer/heldout.txt"
    [ "$status" -eq 2 ]
}

@test "--logits naming a file the run reads (the model, by name or on standard input; the prompt file) is a usage error" {
    cp "$D/tiny.bn" "$T/m.bn"
    echo "It was" >"$T/p.txt"
    for words in "-m $T/m.bn --logits $T/m.bn -p x" "-m $T/m.bn --logits $T/./p.txt -f $T/p.txt"; do
        run_split /dev/null bn-infer $words -n 0
        [ "$status" -eq 2 ]
        [[ $err == "bn-infer: --logits '"*"' names a file this run reads"* ]]
    done
    run_split /dev/null sh -c "bn-infer -m - --logits '$T/m.bn' -p x -n 0 <'$T/m.bn'"
    [ "$status" -eq 2 ]
    cmp "$T/m.bn" "$D/tiny.bn"
}

@test "binary logits, vectors or token streams to a terminal: a usage error (before the model loads where the command line says so)" {
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "$BN_BIN/bn-infer -m '$D/tiny.bn' --logits - -n 0 -p x" /dev/null
    [ "$status" -eq 2 ]
    [[ $output == *"bn-infer: refusing to write binary logits to a terminal (use --logits FILE or a pipe)"* ]]
    # a terminal by another name is one too
    run script -qec "$BN_BIN/bn-infer -m '$D/tiny.bn' --logits /dev/stdout -n 0 -p x" /dev/null
    [ "$status" -eq 2 ]
    [[ $output == *"refusing to write binary logits to a terminal"* ]]
    run script -qec "$BN_BIN/bn-quant '$D/tiny.bn' -o /dev/stdout" /dev/null
    [ "$status" -eq 2 ]
    [[ $output == *"refusing to write a binary model to a terminal"* ]]
    # checked before the model is read: a model that does not exist is not named
    run script -qec "$BN_BIN/bn-infer -m '$T/none.bn' --embed --embed-format f32 -p x" /dev/null
    [ "$status" -eq 2 ]
    [[ $output == *"bn-infer: refusing to write binary vectors to a terminal (redirect standard output)"* ]]
    # text to a terminal is fine
    run script -qec "$BN_BIN/bn-infer -m '$D/tiny.bn' --logits - --logits-topk 2 -n 0 -p x" /dev/null
    [ "$status" -eq 0 ]
    # answers to a binary token stream are binary: refused once its header is read; --text is text
    echo "It was" | bn-tokenize -m "$D/tiny.bn" -b -o "$T/in.b"
    run script -qec "$BN_BIN/bn-infer -m '$D/tiny.bn' -n 2 <'$T/in.b'" /dev/null
    [ "$status" -eq 2 ]
    [[ $output == *"bn-infer: refusing to write a binary token stream to a terminal (use --text or a pipe)"* ]]
    [[ $output != *BNTOK* ]]
    run script -qec "$BN_BIN/bn-infer -m '$D/tiny.bn' -n 2 --text <'$T/in.b'" /dev/null
    [ "$status" -eq 0 ]
    # --logits FILE leaves the answers on standard output: refused too
    run script -qec "$BN_BIN/bn-infer -m '$D/tiny.bn' -n 2 --logits '$T/l.f32' <'$T/in.b'" /dev/null
    [ "$status" -eq 2 ]
    [[ $output == *"refusing to write a binary token stream to a terminal"* ]]
}

@test "chat from piped stdin: one answer per line, history reused, the context overflow is handled" {
    run bash -c "printf 'Hello.\nWho are you?\n' | bn-infer -m '$D/tiny.bn' -cnv --system 'You are Emma.' --temp 0 -n 16"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    # a small context: old turns are dropped, with a note, and the chat goes on
    run_split "$T/out" bash -c "printf 'Tell me about the ball at Netherfield.\nAnd then?\nAnd after that?\nWhat did she say?\n' | bn-infer -m '$D/tiny.bn' -cnv -c 64 --temp 0 -n 16"
    [ "$status" -eq 0 ]
    [ "$(wc -l <"$T/out")" -eq 4 ]
    [[ $err == *"dropped the oldest"* ]]
}

@test "-cnv --echo shows each turn once and leaves the conversation as it is without it" {
    printf 'hi\nthere\nyou\n' >"$T/msgs"
    run_split "$T/plain" bn-infer -m "$D/tiny.bn" -cnv --system 'Be brief.' -n 8 --temp 0 -v <"$T/msgs"
    plain_err=$err
    run_split "$T/echo" bn-infer -m "$D/tiny.bn" -cnv --system 'Be brief.' -n 8 --temp 0 -v --echo <"$T/msgs"
    # the same prompts (the echo was taken for the assistant's turns, growing each prompt) and answers
    [ "$(grep -o 'prompt: [0-9]* tokens' <<<"$err")" = "$(grep -o 'prompt: [0-9]* tokens' <<<"$plain_err")" ]
    [ "$(wc -l <"$T/echo")" -eq 3 ]
    while IFS= read -r echoed <&3 && IFS= read -r answer <&4; do
        [[ $echoed == *"Assistant: $answer" ]] || { echo "echo: $echoed / answer: $answer"; return 1; }
    done 3<"$T/echo" 4<"$T/plain"
    # the first turn shows the system prompt; each later one only its own message
    [ "$(grep -c 'System: Be brief.' "$T/echo")" -eq 1 ]
    [ "$(grep -c 'User: ' "$T/echo")" -eq 3 ]
    sed -n 2p "$T/echo" | grep -q '^User: thereAssistant: '
}

@test "-cnv skips lines of only blanks as empty ones; a line's CR LF end is not part of its message; no chat format is said at once, naming the model" {
    printf 'hi\nthere\n' >"$T/plain"
    printf 'hi\r\n   \n\t\n\r\nthere\n\n' >"$T/blanks"
    bn-infer -m "$D/tiny.bn" -cnv -n 6 --temp 0 <"$T/plain" >"$T/a"
    bn-infer -m "$D/tiny.bn" -cnv -n 6 --temp 0 <"$T/blanks" >"$T/b"
    [ "$(wc -l <"$T/a")" -eq 2 ]
    cmp "$T/a" "$T/b"
    # a model whose tokenizer_config has no chat template: chat.format none
    cp -r "$TINY" "$T/nochat"
    $PY -c 'import json, sys
p = sys.argv[1] + "/tokenizer_config.json"; d = json.load(open(p)); d.pop("chat_template", None); json.dump(d, open(p, "w"))' "$T/nochat"
    rm -f "$T/nochat/chat_template.jinja"
    bn-convert "$T/nochat" | bn-quant >"$T/nochat.bn"
    run_split "$T/out" bn-infer -m "$T/nochat.bn" -cnv -n 2 </dev/null
    expect_one_line_error "$status" "$err" bn-infer
    [ "$err" = "bn-infer: $T/nochat.bn: the model has no chat format this build renders (chat.format is 'none'): -cnv needs one" ]
}

@test "-cnv --chat-encoding split and whole answer as bn-tokenize --chat's ids of each do" {
    for enc in split whole; do
        printf 'Good morning, how is your sister?\n' |
            bn-infer -m "$D/tiny.bn" -cnv --system 'You are Emma.' --chat-encoding $enc --temp 0 -n 16 >"$T/cnv.$enc"
        printf 'system: You are Emma.\nuser: Good morning, how is your sister?\n' |
            bn-tokenize -m "$D/tiny.bn" --chat --chat-encoding $enc >"$T/ids.$enc"
        bn-infer -m "$D/tiny.bn" --temp 0 -n 16 --text <"$T/ids.$enc" >"$T/pipe.$enc"
        cmp "$T/cnv.$enc" "$T/pipe.$enc"
    done
    ! cmp -s "$T/ids.split" "$T/ids.whole" || false
    for how in whole split; do
        run bn-infer -m "$D/tiny.bn" -p hi --chat-encoding $how
        [ "$status" -eq 2 ]
        [[ $output == *"--chat-encoding needs -cnv"* ]]
    done
}

@test "chat to a pipe escapes line breaks in an answer; printf %b gives back what a terminal shows" {
    command -v script >/dev/null || skip "script(1) is not installed"
    printf 'Good morning.\nHow is your sister?\n' >"$T/msgs"
    # seed 1 samples an answer with line breaks in it (checked below)
    bn-infer -m "$D/tiny.bn" -cnv -n 12 --seed 1 <"$T/msgs" >"$T/piped"
    [ "$(wc -l <"$T/piped")" -eq 2 ]
    grep -q '\\n' "$T/piped"
    script -qec "bn-infer -m '$D/tiny.bn' -cnv -n 12 --seed 1 <'$T/msgs'" /dev/null | tr -d '\r' >"$T/tty"
    [ "$(wc -l <"$T/tty")" -gt 2 ]
    printf '%b' "$(cat "$T/piped")" >"$T/restored"
    echo >>"$T/restored"
    cmp "$T/restored" "$T/tty"
}

@test "the model's stop tokens end generation" {
    # tiny's stop ids are 4065 and 4073; a prompt ending in a chat header
    # tends to produce <|eot_id|> quickly; whatever happens, no stop id is written
    bn-infer -m "$D/tiny.bn" -n 64 --seed 3 <"$D/h7.ids" >"$T/o.ids"
    ! grep -qwE '4065|4073' "$T/o.ids" || false
}

@test "errors: id outside the vocabulary, prompt longer than the context; the batch goes on" {
    printf '4064 99999\n4064 1430\n' >"$T/bad.ids"
    run_split "$T/out" bn-infer -m "$D/tiny.bn" --temp 0 -n 4 <"$T/bad.ids"
    [ "$status" -eq 1 ]
    [[ $err == "bn-infer: -: record 1: "*"99999 is outside the vocabulary"* ]]
    [ "$(wc -l <"$T/out")" -eq 2 ]
    [ -z "$(sed -n 1p "$T/out")" ]
    [ -n "$(sed -n 2p "$T/out")" ]
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -c 16 -n 4 <"$D/h20.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"does not fit the context of 16"* ]]
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -p "It was" -c 9999
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"larger than the model's (256)"* ]]
}

@test "errors: a model this build cannot run, a missing model" {
    run_split "$T/out" bn-infer -m "$T/none.bn" -p hi
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == "bn-infer: $T/none.bn: "* ]]
    # a projection in a packed layout no kernel here knows (type 16)
    $PY - "$D/tiny.bn" "$T/packed.bn" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
name = b"blk.0.attn_q.weight"
i = b.index(struct.pack("<I", len(name)) + name) + 4 + len(name)
assert struct.unpack_from("<I", b, i)[0] == 4  # t2
struct.pack_into("<I", b, i, 99)  # a reserved, unknown layout
import xxhash  # the head checksum must still match
head = struct.unpack_from("<Q", b, 16)[0]
struct.pack_into("<Q", b, head, xxhash.xxh3_64_intdigest(bytes(b[:head])))
open(sys.argv[2], "wb").write(b)
EOF
    run_split "$T/out" bn-infer -m "$T/packed.bn" -p hi
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"blk.0.attn_q.weight"*"layout 99"*"cannot run"* ]]
    # a checkpoint's safetensors file alone: its directory is what to give
    run_split "$T/out" bn-infer -m "$TINY/model.safetensors" -p hi
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"model.safetensors: a safetensors file holds no model configuration: give its checkpoint directory (with config.json)" ]]
}

@test "errors: options that would be ignored, standard input read twice, a stride past the window, a system prompt that fills the context" {
    # each of these once ran and silently left the option out
    for args in "--perplexity $DATA/heldout.txt --logits $T/lg.bin" "--perplexity $DATA/heldout.txt --echo" \
        "--perplexity $DATA/heldout.txt --lookup 2" "--perplexity $DATA/heldout.txt --stop x" \
        "-p hi --system x" "-p hi --json" "-p hi --ppl-stride 4"; do
        run_split "$T/out" bn-infer -m "$D/tiny.bn" $args
        [ "$status" -eq 2 ] || { echo "$args: $status"; return 1; }
        [[ $err == "bn-infer: "* ]]
    done
    [ ! -e "$T/lg.bin" ]
    # the model from stdin leaves no stdin for the prompts, the text or the records
    for args in "-n 2" "-f - -n 2" "--perplexity -"; do
        run_split "$T/out" bash -c "bn-infer -m - $args <'$D/tiny.bn'"
        [ "$status" -eq 2 ] || { echo "$args: $status"; return 1; }
        [[ $err == "bn-infer: standard input can be read once"* ]]
    done
    run_split "$T/out" bn-infer -m "$D/tiny.bn" --perplexity - - </dev/null
    [ "$status" -eq 2 ]
    run bash -c "bn-infer -m - -p Once -n 2 --temp 0 <'$D/tiny.bn'"
    [ "$status" -eq 0 ]
    # a missing prompt file is named once
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -f "$T/none.txt"
    expect_one_line_error "$status" "$err" bn-infer
    [ "$err" = "bn-infer: $T/none.txt: No such file or directory" ]
    # windows 256 tokens long (255 of text) cannot start 300 apart: tokens would go unscored
    run_split "$T/out" bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" --ppl-stride 300
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"stride of 300 text tokens is longer than the 255 a window scores"* ]]
    run bn-infer -m "$D/tiny.bn" --perplexity "$DATA/heldout.txt" --ppl-stride 255
    [ "$status" -eq 0 ]
    # without a BOS a window scores one token fewer (its first has nothing before it): 63 of 64
    cp -r "$TINY" "$T/nb"
    $PY -c 'import json, sys
d = sys.argv[1]
t = json.load(open(d + "/tokenizer.json")); t["post_processor"] = None; json.dump(t, open(d + "/tokenizer.json", "w"))
c = json.load(open(d + "/config.json")); del c["bos_token_id"]; json.dump(c, open(d + "/config.json", "w"))' "$T/nb"
    bn-convert -q "$T/nb" | bn-quant -q >"$T/nb.bn"
    run_split /dev/null bn-infer -m "$T/nb.bn" --perplexity "$DATA/heldout.txt" -c 64 --ppl-stride 64
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"stride of 64 text tokens is longer than the 63 a window scores"* ]]
    run bn-infer -m "$T/nb.bn" --perplexity "$DATA/heldout.txt" -c 64 --ppl-stride 63
    [ "$status" -eq 0 ]
    [[ $output == *"(2061 tokens scored in 33 windows of 64)"* ]]
    # a system prompt longer than the context is one error, not every message ignored
    $PY -c 'print("word " * 600)' >"$T/sys.txt"
    run_split "$T/out" bash -c "echo hello | bn-infer -m '$D/tiny.bn' -cnv --system \"\$(cat '$T/sys.txt')\""
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"the system prompt ("*"tokens with the chat format) leaves no room in the context of 256 tokens" ]]
}

@test "--kernel ref is selectable and agrees with the default" {
    a=$(bn-infer -m "$D/tiny.bn" --temp 0 -n 8 --kernel ref <"$D/h7.ids")
    b=$(bn-infer -m "$D/tiny.bn" --temp 0 -n 8 <"$D/h7.ids")
    [ "$a" = "$b" ]
}

@test "--kernel names a set; every set this CPU runs gives the default's logits bit for bit" {
    # the ternary sums are exact in every set, and the float parts (head,
    # attention) follow the CPU, not the set: so 256 prompt positions of
    # logits (prefill in batches: the GEMM path, amx where the CPU has it)
    # are the same bytes whichever set computes them
    logits_of "$D/tiny.bn" "$D/h256.ids" --kv f32
    mv "$T/bn.f32" "$T/auto.f32"
    ran=0
    for k in avx2 avx512 amx neon dotprod; do
        if bn-infer -m "$D/tiny.bn" --kernel $k -n 0 --kv f32 --logits "$T/$k.f32" <"$D/h256.ids" >/dev/null 2>"$T/err"; then
            cmp "$T/auto.f32" "$T/$k.f32"
            ran=$((ran + 1))
        else
            # a set this CPU cannot run is refused in one line, naming it
            expect_one_line_error 1 "$(cat "$T/err")" bn-infer
            grep -q "'$k'" "$T/err"
        fi
    done
    [ "$ran" -ge 1 ] || [ "$(uname -m)" != x86_64 ]
    run bn-infer -m "$D/tiny.bn" --kernel sparc -p x
    [ "$status" -eq 2 ]
    # a packed layout the default set runs but the set named does not: the set is named, not the layout blamed
    bn-pack -q -l i2s "$D/tiny.bn" -o "$T/i2s.bn"
    k=$([ "$(uname -m)" = x86_64 ] && echo neon || echo avx2)
    run_split "$T/out" bn-infer -m "$T/i2s.bn" --kernel $k -n 1 -p hi
    expect_one_line_error "$status" "$err" bn-infer
    [ "$err" = "bn-infer: $T/i2s.bn: kernel set '$k' has no form for layout i2s or cannot run on this CPU (auto runs it)" ]
}
