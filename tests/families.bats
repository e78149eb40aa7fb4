#!/usr/bin/env bats
# The model families bitnet.cpp runs besides 2B4T: synthetic Hugging Face
# checkpoints with each family's published config.json (tests/ref/
# gen_checkpoint.py FAMILIES: Falcon3 1B/3B/7B/10B 1.58-bit, Llama3-8B-1.58,
# quantization_config.use_rms_norm as Falcon-E has it, 1bitLLM's
# bitnet_b1_58-large and -3B with f32 latent weights; layers, heads and
# vocabulary scaled down, every other value real) go through
# bn-convert | bn-quant | bn-pack, and their logits meet the reference
# (tests/ref/ref_forward.py) with the verdicts infer.bats gives 2B4T-shaped
# models: (a) exact int8 path, 1- and 7-token prompts within 1e-4; (b) float
# activations within 1e-3 relative, greedy continuations identical; (c) as
# close as a 1e-6 input perturbation moves the reference.

load common

REF="$PY -W ignore $ROOT/tests/ref/ref_forward.py"
FAMS="falcon3-1b falcon3-3b falcon3-7b falcon3-10b llama3-8b-1.58 llama3.2-3b-bitnet falcon-e use-rms-norm-ones
      bitnet-b1.58-large bitnet-b1.58-3b"

setup_file() {
    local D=$BATS_FILE_TMPDIR f
    for f in $FAMS; do
        $GEN --format hf-packed --family "$f" "$D/$f" >/dev/null
        bn-convert "$D/$f" | bn-quant | bn-pack >"$D/$f.bn"
    done
    echo 5 >"$D/p1.ids"
    echo "5 17 29 101 7 250 42" >"$D/p7.ids"
    $PY -c 'import numpy as np; print(" ".join(map(str, np.random.default_rng(7).integers(0, 496, 512))))' >"$D/p512.ids"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

logits_of() {
    local m=$1 ids=$2
    shift 2
    bn-infer -m "$m" --logits "$T/bn.f32" -n 0 "$@" <"$ids" >/dev/null
}

@test "each family's config is read as published (head_dim, GQA, RoPE theta, eps, untied head, ids, packing)" {
    for f in $FAMS; do
        bn-convert --info --json "$D/$f.bn" >"$T/$f.json"
    done
    run $PY - "$ROOT/tests/ref" "$T" "$D" $FAMS <<'EOF'
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from gen_checkpoint import FAMILIES, family_shape


def template_bos(path):
    """The id HF's tokenizer puts before a text: the first piece of its
    post-processor's single template, if a special token (None: none)."""
    pp = json.load(open(path)).get("post_processor") or {}
    for p in pp.get("processors", [pp]):
        if p.get("type") == "TemplateProcessing" and "SpecialToken" in p["single"][0]:
            return p["special_tokens"][p["single"][0]["SpecialToken"]["id"]]["ids"][0]
    return None


bad = []
for f in sys.argv[4:]:
    m = json.load(open("%s/%s.json" % (sys.argv[2], f)))["metadata"]
    fam = FAMILIES[f]
    # the tests' vocabularies are cut to 512: config.json's bos_token_id (the
    # published one) is then not the id their tokenizer.json adds, which HF's
    # tokenizer (and bn) use
    tbos = template_bos("%s/%s/tokenizer.json" % (sys.argv[3], f))
    (d, ff, layers, h, kv, vocab, ctx), hd = family_shape(fam)
    qc = fam["qc"] or {}
    onebit = bool(fam.get("onebit"))  # 1bitLLM: sub-norms, f32 latent weights, W * (1/beta)
    f32 = lambda x: float(np.float32(x))
    want = {"general.architecture": "bitnet" if onebit else "llama", "model.embedding_length": d,
            "model.feed_forward_length": ff,
            "model.block_count": layers, "model.head_count": h, "model.head_count_kv": kv, "model.head_dim": hd,
            "model.vocab_size": vocab, "model.context_length": ctx, "model.rope_theta": f32(fam["rope_theta"]),
            "model.rope_pairing": "neox", "model.ffn_activation": "silu", "model.sub_norms": onebit,
            "model.norm_eps": f32(fam["rms_norm_eps"]), "model.tied_embeddings": fam["tie"],
            "tokens.bos_id": tbos if tbos is not None else -1 if fam["bos"] is None else fam["bos"],
            "tokens.eos_id": fam["eos"] if isinstance(fam["eos"], int) else fam["eos"][0],
            "provenance.scale_convention": None if onebit else
            "divide" if qc.get("linear_class", "bitlinear") == "bitlinear" else "multiply",
            # float projections (1bitLLM's f32, the bf16 masters) are ternarized
            # as every weight_quant does: W * (1/beta)
            "model.ternary_rule": "reciprocal" if onebit or fam["qc"] is None else None}
    if onebit:
        want["tokens.pad_id"] = 32000
    if qc.get("use_rms_norm"):
        want["model.proj_norm"] = True
        want["model.proj_norm_eps"] = f32(qc.get("rms_norm_eps", 1e-6))
    elif "model.proj_norm" in m:
        bad.append((f, "model.proj_norm", m["model.proj_norm"], None))
    rs = fam.get("extra", {}).get("rope_scaling")
    if rs:
        want.update({"model.rope_scaling": rs["rope_type"], "model.rope_scaling_factor": rs["factor"],
                     "model.rope_scaling_low_freq_factor": rs["low_freq_factor"],
                     "model.rope_scaling_high_freq_factor": rs["high_freq_factor"],
                     "model.rope_scaling_original_context": rs["original_max_position_embeddings"],
                     "tokens.stop_ids": fam["eos"]})
    elif "model.rope_scaling" in m:
        bad.append((f, "model.rope_scaling", m["model.rope_scaling"], None))
    for k, v in want.items():
        got = m.get(k)
        if got != v and not (isinstance(v, float) and isinstance(got, float) and abs(got - v) <= 1e-7 * abs(v)):
            bad.append((f, k, got, v))
print(bad)
sys.exit(1 if bad else 0)
EOF
    echo "$output"
    [ "$status" -eq 0 ]
    run bn-convert --info "$D/use-rms-norm-ones.bn"
    [[ $output == *"ones, as transformers initializes them"* ]]
}

@test "(a) exact int8 path, f32 KV: 1- and 7-token prompts match the reference to 1e-4 (every family)" {
    for f in $FAMS; do
        for p in p1 p7; do
            logits_of "$D/$f.bn" "$D/$p.ids" --kv f32
            run $REF compare --model "$D/$f" --ids "$D/$p.ids" --bn "$T/bn.f32" --atol 1e-4
            echo "$f $p: $output"
            if [ "$status" -ne 0 ] && [ $p = p7 ]; then
                # over 7 tokens an int8 rounding boundary can be crossed
                # (numerics.md): accepted only where the reference itself
                # moves as much when its input is nudged by 1e-7
                run $REF spread --model "$D/$f" --ids "$D/$p.ids" --bn "$T/bn.f32" --eps 1e-7 --trials 5
                echo "$f $p spread: $output"
            fi
            [ "$status" -eq 0 ]
        done
    done
}

@test "(b) float activations: 7 tokens within 1e-3 relative; greedy continuations are the reference's" {
    for f in $FAMS; do
        logits_of "$D/$f.bn" "$D/p7.ids" --no-act-quant --kv f32
        run $REF compare --model "$D/$f" --ids "$D/p7.ids" --bn "$T/bn.f32" --mode noquant --rtol 1e-3
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
    for f in falcon3-1b falcon-e bitnet-b1.58-3b; do # decoding, one token at a time through the KV cache
        bn-infer -m "$D/$f.bn" --no-act-quant --kv f32 --temp 0 -n 16 <"$D/p7.ids" >"$T/gen.ids"
        run $REF greedy-check --model "$D/$f" --ids "$D/p7.ids" --gen "$T/gen.ids" --mode noquant
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
}

@test "1bitLLM: the published configs of bitnet_b1_58-large and -3B, as the families keep them" {
    # as bitnet.cpp's GGUF of each reports them (formats/1bitllm.md):
    # d, ff, layers, heads, kv heads, context, vocab, RoPE theta, eps
    run $PY - "$ROOT/tests/ref" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from gen_checkpoint import FAMILIES
pub = {"bitnet-b1.58-large": (1536, 4096, 24, 16, 16, 2048, 32002, 10000.0, 1e-5),
       "bitnet-b1.58-3b": (3200, 8640, 26, 32, 32, 2048, 32002, 10000.0, 1e-5)}
for f, v in pub.items():
    fam = FAMILIES[f]
    r = fam["real"]
    got = (r["hidden_size"], r["intermediate_size"], r["num_hidden_layers"], r["num_attention_heads"],
           r["num_key_value_heads"], r["max_position_embeddings"], r["vocab_size"], fam["rope_theta"],
           fam["rms_norm_eps"])
    assert got == v, (f, got, v)
    assert r["head_dim"] == r["hidden_size"] // r["num_attention_heads"]  # no head_dim key: hidden / heads
    assert (fam["tie"], fam["bos"], fam["eos"], fam["qc"]) == (True, 1, 2, None), f
print("ok")
EOF
    echo "$output"
    [ "$status" -eq 0 ]
    # what the checkpoint says besides: BitnetForCausalLM of model_type llama, SiLU, no head_dim
    run $PY -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["architectures"][0], c["model_type"], c["hidden_act"], c["pad_token_id"], "head_dim" in c)' "$D/bitnet-b1.58-3b/config.json"
    [ "$output" = "BitnetForCausalLM llama silu 32000 False" ]
}

@test "1bitLLM: f32 latent weights ternarized as its weight_quant does (W * (1/beta), scale 1/(1/beta))" {
    for f in bitnet-b1.58-large bitnet-b1.58-3b; do
        bn-convert "$D/$f" | bn-quant --report "$T/report.json" --json >"$T/q.bn"
        $PY "$ROOT/tests/ref/check_quant.py" "$D/$f" "$T/q.bn" "$T/report.json"
        # the generator planted weights that W / beta rounds the other way: they got the model's code
        run $PY - "$ROOT/tests/ref" "$D/$f.truth.json" "$T/q.bn" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import bnread
p = [e for e in json.load(open(sys.argv[2]))["tensors"] if "planted" in e][0]
m = bnread.read(sys.argv[3])
t = m.by_name[p["name"]]
codes, _ = bnread.t2_decode(m.tensor_bytes(t), t.shape)
r, c = p["planted"]["index"]
got = codes[r, c:c + p["planted"]["count"]]
assert (got == p["planted"]["code"]).all() and p["planted"]["code"] != p["planted"]["divide_code"], (got, p["planted"])
print("planted weights: code", int(got[0]), "(W / beta gives", p["planted"]["divide_code"], ")")
EOF
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
    # the loader's own ternarization (float projections, not through bn-quant) follows the same
    # rule (W / beta would move these logits by ~1e-2: the planted weights)
    bn-convert "$D/bitnet-b1.58-large" >"$T/raw.bn"
    logits_of "$T/raw.bn" "$D/p7.ids" --kv f32
    run $REF compare --model "$D/bitnet-b1.58-large" --ids "$D/p7.ids" --bn "$T/bn.f32" --atol 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
    run bn-convert --info "$D/bitnet-b1.58-large.bn"
    [[ $output == *"model.ternary_rule"*"reciprocal"* ]]
}

@test "1bitLLM: text in through Llama 2's tokenizer (dummy prefix): SentencePiece's ids, then greedy tokens as the reference's" {
    # the checkpoint's own tokenizer.json (Llama 2's shape, 32000 pieces and </line>) converts
    run bn-convert --info "$D/bitnet-b1.58-large.bn"
    [[ $output == *"tokenizer"*"32001 tokens"* && $output != *"no tokenizer"* ]]
    run bn-tokenize -m "$D/bitnet-b1.58-large.bn" --info
    [[ $output == *"dummy prefix"* && $output == *"bos: 1"* ]]
    # In its place, one that SentencePiece can check: trained with Llama 2's options (tests/ref/
    # spm_ref.py --llama2; ids unk 0, bos 1, eos 2 as the family's), exported as Hugging Face does
    $PY "$ROOT/tests/ref/spm_ref.py" train --llama2 "$T/spm"
    cp -r "$D/bitnet-b1.58-3b" "$T/m"
    cp "$T/spm/tokenizer.json" "$T/m/tokenizer.json"
    rm -f "$T/m/tokenizer_config.json"
    bn-convert "$T/m" | bn-quant | bn-pack >"$T/m.bn"
    local text=" Hello  world: ünïcödé 3.14 🫩"
    printf '%s\n' "$text" | $PY "$ROOT/tests/ref/spm_ref.py" encode "$T/spm/spm.model" | sed 's/^/1 /' >"$T/want.ids"
    printf '%s' "$text" | bn-tokenize -m "$T/m.bn" >"$T/got.ids"
    diff "$T/want.ids" "$T/got.ids"
    # text -> 16 greedy tokens (head size 100) through the KV cache, as the reference decodes from those ids
    bn-infer -m "$T/m.bn" -p "$text" --ids --no-act-quant --kv f32 --temp 0 -n 16 >"$T/gen.ids"
    run $REF greedy-check --model "$T/m" --ids "$T/want.ids" --gen "$T/gen.ids" --mode noquant
    echo "$output"
    [ "$status" -eq 0 ]
    # with the checkpoint's own tokenizer: --echo writes the prompt as given (the prefix's space
    # dropped), and prompt and answer are the decoding of their ids as one text
    bn-infer -m "$D/bitnet-b1.58-large.bn" -p "$text" --echo --temp 0 -n 8 >"$T/echo.txt"
    bn-infer -m "$D/bitnet-b1.58-large.bn" -p "$text" --ids --temp 0 -n 8 >"$T/ans.ids"
    echo "$(printf '%s' "$text" | bn-tokenize -m "$D/bitnet-b1.58-large.bn") $(cat "$T/ans.ids")" |
        bn-tokenize -m "$D/bitnet-b1.58-large.bn" -d --skip-special >"$T/whole.txt"
    [[ $(cat "$T/echo.txt") == "$text"?* ]]
    cmp <(cat "$T/whole.txt" && echo) "$T/echo.txt"
}

# bitnet.cpp's GGUF of each 1bitLLM model (tests/ref/gen_checkpoint.py --bitnet-gguf: what
# utils/convert-hf-to-gguf-bitnet.py's BitnetModel writes, formats/1bitllm.md): architecture
# bitnet, projections already through weight_quant (ternary·(1/s) in f32, or f16 with
# --outtype f16), the SentencePiece vocabulary of a model trained with Llama 2's options,
# added_tokens.json's </line> and [PADi] up to 32002
bitnet_gguf() {
    local f=$1
    [ -e "$D/spm/spm.model" ] || $PY "$ROOT/tests/ref/spm_ref.py" train --llama2 "$D/spm" >/dev/null
    if [ ! -e "$D/$f.gguf.bn" ]; then
        cp -r "$D/$f" "$D/$f.g"
        echo '{"</line>": 32000}' >"$D/$f.g/added_tokens.json"
        $GEN --bitnet-gguf "$D/$f.g" --spm-model "$D/spm/spm.model" "$D/$f.gguf"
        $GEN --bitnet-gguf "$D/$f.g" --spm-model "$D/spm/spm.model" --outtype f16 "$D/$f.f16.gguf"
        # the converter since bitnet.cpp 3b04140: architecture bitnet-b1.58
        $GEN --bitnet-gguf "$D/$f.g" --spm-model "$D/spm/spm.model" --converter current "$D/$f.cur.gguf"
        bn-convert "$D/$f.gguf" >"$D/$f.gguf.bn"
        bn-convert "$D/$f.cur.gguf" >"$D/$f.cur.bn"
    fi
}

@test "1bitLLM, bitnet.cpp's GGUF: the Hugging Face conversion's metadata, codes and scales (f32, f16, bitnet-b1.58 files)" {
    for f in bitnet-b1.58-large bitnet-b1.58-3b; do
        bitnet_gguf $f
        bn-convert "$D/$f.f16.gguf" >"$T/g16.bn"
        bn-convert "$D/$f" | bn-quant >"$T/h.bn"
        bn-convert --info --json "$D/$f.gguf.bn" >"$T/g.json"
        bn-convert --info --json "$D/$f.cur.bn" >"$T/c.json"
        bn-convert --info --json "$T/h.bn" >"$T/h.json"
        run $PY - "$ROOT/tests/ref" "$T" "$D/$f.gguf.bn" "$D/$f.cur.bn" <<'EOF'
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bnread
h = json.load(open(sys.argv[2] + "/h.json"))["metadata"]
keys = [k for k in h if k.startswith(("model.", "tokens.", "chat.")) and k != "model.ternary_rule"]
bad = []
# the architecture-bitnet-b1.58 file too: the 1bitLLM layer (SiLU), not 2B4T's relu²
for j in ("g", "c"):
    g = json.load(open(sys.argv[2] + "/%s.json" % j))["metadata"]
    bad += [(j, k, g.get(k), h[k]) for k in keys + ["general.architecture"] if g.get(k) != h[k]]
    # the projections arrive ternary: no rule applies to them (the HF route's is reciprocal)
    bad += [(j, "ternary_rule", g.get("model.ternary_rule"))] if "model.ternary_rule" in g else []
ref, n = bnread.read(sys.argv[2] + "/h.bn"), 0
for path, f16 in ((sys.argv[3], False), (sys.argv[2] + "/g16.bn", True), (sys.argv[4], False)):
    m = bnread.read(path)
    for t in ref.tensors:
        if t.type != 4:  # t2
            continue
        u = m.by_name[t.name]
        if u.type != 4:
            bad.append((path, t.name, "type", u.type))
            continue
        cu, bu = bnread.t2_decode(m.tensor_bytes(u), u.shape)
        cr, br = bnread.t2_decode(ref.tensor_bytes(t), t.shape)
        want = np.float32(np.float16(br)) if f16 else br  # weight_quant's 1/s, stored in f16
        if not (cu == cr).all() or bu != want:
            bad.append((path, t.name, int((cu != cr).sum()), float(bu), float(want)))
        n += 1
print(n, "ternary tensors; differences:", bad)
sys.exit(1 if bad or n < 21 else 0)
EOF
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
    run bn-tokenize -m "$D/bitnet-b1.58-large.gguf.bn" --info
    [[ $output == *"model: spm-bpe (SentencePiece-style, byte fallback, dummy prefix)"* && $output == *"vocab: 32002"* ]]
}

@test "1bitLLM, bitnet.cpp's I2_S file (current converter): the same model as its f32 file" {
    # -large only: the cut -3B's 200 x 200 matrices are not whole 128-weight I2_S blocks
    for f in bitnet-b1.58-large; do
        bitnet_gguf $f
        # llama-quantize's I2_S of the f32 file (TL1/TL2 of these models' real M x K:
        # convert-gguf.bats, with bitnet.cpp's presets; the cut test shapes have none)
        $GEN --bitnet-gguf "$D/$f.g" --spm-model "$D/spm/spm.model" --converter current --outtype i2_s "$T/i2s.gguf"
        bn-convert "$T/i2s.gguf" >"$T/i2s.bn"
        bn-convert --info --json "$T/i2s.bn" >"$T/i2s.json"
        bn-convert --info --json "$D/$f.cur.bn" >"$T/cur.json"
        run $PY - "$ROOT/tests/ref" "$T" "$D/$f.cur.bn" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import bnread
T = sys.argv[2]
ref = bnread.read(sys.argv[3])
want = json.load(open(T + "/cur.json"))["metadata"]
bad, n = [], 0
for x in ("i2s",):
    got = json.load(open("%s/%s.json" % (T, x)))["metadata"]
    bad += [(x, k, got.get(k), v) for k, v in want.items() if k.startswith(("model.", "tokens.", "general.arch"))
            and got.get(k) != v]
    m = bnread.read("%s/%s.bn" % (T, x))
    for t in ref.tensors:
        if t.type == 4:  # t2: the same codes and β, byte for byte
            n += 1
            if m.by_name[t.name].type != 4 or m.tensor_bytes(m.by_name[t.name]) != ref.tensor_bytes(t):
                bad.append((x, t.name))
print(n, "ternary tensors; differences:", bad)
sys.exit(1 if bad or n < 7 else 0)
EOF
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
}

@test "1bitLLM, bitnet.cpp's GGUF: logits match the reference (exact int8 path, 1e-4), greedy tokens too" {
    for f in bitnet-b1.58-large bitnet-b1.58-3b; do
        bitnet_gguf $f
        bn-quant <"$D/$f.gguf.bn" | bn-pack >"$T/g.bn"
        # the bitnet-b1.58 file as the same model: the same bytes through bn-pack but its
        # source names and hashes (the reference runs it in the loop below as g.bn)
        bn-quant <"$D/$f.cur.bn" | bn-pack >"$T/c.bn"
        logits_of "$T/c.bn" "$D/p7.ids" --kv f32
        mv "$T/bn.f32" "$T/c.f32"
        logits_of "$T/g.bn" "$D/p7.ids" --kv f32
        cmp "$T/bn.f32" "$T/c.f32"
        for p in p1 p7; do
            logits_of "$T/g.bn" "$D/$p.ids" --kv f32
            run $REF compare --model "$D/$f" --ids "$D/$p.ids" --bn "$T/bn.f32" --atol 1e-4
            echo "$f $p: $output"
            if [ "$status" -ne 0 ] && [ $p = p7 ]; then # as test (a)
                run $REF spread --model "$D/$f" --ids "$D/$p.ids" --bn "$T/bn.f32" --eps 1e-7 --trials 5
                echo "$f $p spread: $output"
            fi
            [ "$status" -eq 0 ]
        done
        logits_of "$T/g.bn" "$D/p7.ids" --no-act-quant --kv f32
        run $REF compare --model "$D/$f" --ids "$D/p7.ids" --bn "$T/bn.f32" --mode noquant --rtol 1e-3
        echo "$f noquant: $output"
        [ "$status" -eq 0 ]
    done
    bn-infer -m "$T/g.bn" --no-act-quant --kv f32 --temp 0 -n 16 <"$D/p7.ids" >"$T/gen.ids"
    run $REF greedy-check --model "$D/bitnet-b1.58-3b" --ids "$D/p7.ids" --gen "$T/gen.ids" --mode noquant
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "1bitLLM, bitnet.cpp's GGUF: its SentencePiece vocabulary gives SentencePiece's ids; </line> is cut out" {
    bitnet_gguf bitnet-b1.58-large
    local m="$D/bitnet-b1.58-large.gguf.bn" text n
    for text in " Hello  world: ünïcödé 3.14 🫩" "The quick brown fox" "  leading spaces" "trailing  " \
        "<start_of_turn>user says hi" "a<end_of_turn>b" "🫩🫩 ñ"; do
        printf '%s\n' "$text" | $PY "$ROOT/tests/ref/spm_ref.py" encode "$D/spm/spm.model" | sed 's/^/1 /' >"$T/want.ids"
        printf '%s' "$text" | bn-tokenize -m "$m" >"$T/got.ids"
        diff "$T/want.ids" "$T/got.ids"
        # and back (bn-tokenize -d drops the dummy prefix's space of a whole text)
        [ "$(bn-tokenize -m "$m" -d --skip-special <"$T/got.ids")" = "$text" ]
    done
    # the added piece follows SentencePiece's (the trained model's piece count), user-defined
    n=$($PY -c 'import sentencepiece as s,sys; print(s.SentencePieceProcessor(model_file=sys.argv[1]).get_piece_size())' \
        "$D/spm/spm.model")
    run bn-tokenize -m "$m" <<<"x</line>y"
    [[ " $output " == *" $n "* ]]
}

@test "llama3 rope_scaling: float activations at every position of 512 tokens within 1e-3 relative" {
    normal_pass_only "the 7-token checks run the scaled RoPE; this one is its numerics far out"
    # far enough that the rescaled long wavelengths move every logit
    # (without the scaling the reference differs by ~1.6 relative)
    logits_of "$D/llama3.2-3b-bitnet.bn" "$D/p512.ids" --no-act-quant --kv f32
    run $REF compare --model "$D/llama3.2-3b-bitnet" --ids "$D/p512.ids" --bn "$T/bn.f32" --mode noquant --rtol 1e-3
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "(c) exact path: as close to the reference as a 1e-6 input perturbation moves it" {
    for f in falcon3-10b falcon-e; do
        logits_of "$D/$f.bn" "$D/p7.ids" --kv f32
        run $REF spread --model "$D/$f" --ids "$D/p7.ids" --bn "$T/bn.f32"
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
}

@test "use_rms_norm: the reference kernels and every thread count give the same logits" {
    logits_of "$D/falcon-e.bn" "$D/p7.ids" --kv f32 -t 1
    mv "$T/bn.f32" "$T/one.f32"
    logits_of "$D/falcon-e.bn" "$D/p7.ids" --kv f32 -t 2
    cmp "$T/one.f32" "$T/bn.f32"
    bn-convert "$D/falcon-e" | bn-quant >"$T/t2.bn"
    logits_of "$T/t2.bn" "$D/p7.ids" --kv f32 --kernel ref
    run $REF compare --model "$D/falcon-e" --ids "$D/p7.ids" --bn "$T/bn.f32" --atol 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "use_rms_norm and rope_scaling set header flags 1 and 2, so readers that do not know them refuse the file" {
    run $PY -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(64), 52)[0])' "$D/falcon-e.bn"
    [ "$output" = 1 ]
    run $PY -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(64), 52)[0])' "$D/llama3.2-3b-bitnet.bn"
    [ "$output" = 2 ]
    run $PY -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(64), 52)[0])' "$D/falcon3-1b.bn"
    [ "$output" = 0 ]
    # a bit this build does not know is refused, as bit 0 is by older builds
    cp "$D/falcon-e.bn" "$T/f2.bn"
    printf '\201' | dd of="$T/f2.bn" bs=1 seek=52 conv=notrunc status=none
    run_split "$T/out" bn-infer -m "$T/f2.bn" -n 0 <"$D/p1.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"unknown header flags 0x81"* ]]
}

@test "use_rms_norm: a checkpoint with only some projection norms is refused" {
    cp -r "$D/falcon-e" "$T/part"
    edit_st_header "$T/part/model.safetensors" \
        'h["model.layers.9.self_attn.q_proj.rms_norm.weight"] = h.pop("model.layers.0.self_attn.q_proj.rms_norm.weight")'
    run_split "$T/x.bn" bn-convert "$T/part"
    echo "$err"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"holds 13 of the 14 projection rms_norm weights use_rms_norm needs"* ]]
}

@test "config.json as transformers reads it: a tied model's stored head unused, an untied one's used; Llama's default is untied" {
    local f=falcon3-1b # untied, its head stored
    logits_of "$D/$f.bn" "$D/p7.ids" --kv f32
    mv "$T/bn.f32" "$T/untied.f32"
    # tie_word_embeddings left out: LlamaConfig's default, untied
    cp -r "$D/$f" "$T/unsaid"
    edit_json "$T/unsaid/config.json" 'del c["tie_word_embeddings"]'
    bn-convert "$T/unsaid" | bn-quant | bn-pack >"$T/unsaid.bn"
    logits_of "$T/unsaid.bn" "$D/p7.ids" --kv f32
    cmp "$T/untied.f32" "$T/bn.f32"
    # tied with a head stored: transformers ties after loading, so the head is not used
    cp -r "$D/$f" "$T/both"
    edit_json "$T/both/config.json" 'c["tie_word_embeddings"] = True'
    bn-convert "$T/both" | bn-quant | bn-pack >"$T/both.bn"
    bn-convert --info "$T/both.bn" | grep -Eq '^model.tied_embeddings +true'
    bn-convert --info "$T/both.bn" | grep -q 'lm_head.weight not read (tie_word_embeddings)'
    logits_of "$T/both.bn" "$D/p7.ids" --kv f32
    mv "$T/bn.f32" "$T/tied.f32"
    ! cmp -s "$T/untied.f32" "$T/tied.f32"
    run $REF compare --model "$T/both" --ids "$D/p7.ids" --bn "$T/tied.f32" --atol 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
    # the same model without the head stored
    cp -r "$T/both" "$T/tied"
    drop_st_tensor "$T/tied/model.safetensors" lm_head.weight
    bn-convert "$T/tied" | bn-quant | bn-pack >"$T/tied.bn"
    logits_of "$T/tied.bn" "$D/p7.ids" --kv f32
    cmp "$T/tied.f32" "$T/bn.f32"
    # left out with no head stored: the embedding serves
    edit_json "$T/tied/config.json" 'del c["tie_word_embeddings"]'
    bn-convert "$T/tied" | bn-quant | bn-pack >"$T/tied2.bn"
    logits_of "$T/tied2.bn" "$D/p7.ids" --kv f32
    cmp "$T/tied.f32" "$T/bn.f32"
}

@test "config.json as transformers reads it: <proj>.rms_norm.weight without use_rms_norm is not applied" {
    cp -r "$D/falcon-e" "$T/nocfg"
    edit_json "$T/nocfg/config.json" 'del c["quantization_config"]["use_rms_norm"]'
    bn-convert "$T/nocfg" | bn-quant >"$T/nocfg.bn"
    run bn-convert --info "$T/nocfg.bn"
    [[ $output != *"model.proj_norm"*"true"* ]]
    [[ $output == *"rms_norm.weight not read (no use_rms_norm)"* ]]
    logits_of "$T/nocfg.bn" "$D/p7.ids" --kv f32
    run $REF compare --model "$T/nocfg" --ids "$D/p7.ids" --bn "$T/bn.f32" --atol 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "config.json as transformers reads it: a key given twice keeps its last value; head_dim null is hidden / heads" {
    cp -r "$D/falcon3-1b" "$T/dup"
    # the same key twice (json.dump cannot write it): Python's json keeps the last
    $PY -c 'import sys; p = sys.argv[1]; t = open(p).read().rstrip().rstrip("}"); open(p, "w").write(t + ", \"rope_theta\": 10000.0}\n")' \
        "$T/dup/config.json"
    grep -c '"rope_theta"' "$T/dup/config.json" | grep -qx 2
    bn-convert -q "$T/dup" -o "$T/dup.bn"
    bn-convert --info "$T/dup.bn" | grep -Eq '^model.rope_theta +10000$'
    cp -r "$D/falcon3-1b" "$T/hd"
    edit_json "$T/hd/config.json" 'c["head_dim"] = None'
    run bn-convert -q "$T/hd" -o "$T/hd.bn"
    [ "$status" -eq 0 ]
    bn-convert --info "$D/falcon3-1b.bn" | grep -E '^model.(head_dim|head_count) ' >"$T/want"
    bn-convert --info "$T/hd.bn" | grep -E '^model.(head_dim|head_count) ' >"$T/got"
    diff "$T/want" "$T/got"
}

@test "config.json as transformers reads it: modules_to_not_convert naming a projection is refused, naming the head is not" {
    cp -r "$D/falcon3-1b" "$T/keep"
    edit_json "$T/keep/config.json" 'c["quantization_config"]["modules_to_not_convert"] = ["lm_head"]'
    bn-convert -q "$T/keep" -o "$T/ok.bn"
    edit_json "$T/keep/config.json" 'c["quantization_config"]["modules_to_not_convert"] = ["lm_head", "layers.1.mlp"]'
    run_split "$T/x.bn" bn-convert "$T/keep"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"modules_to_not_convert keeps 'model.layers.1.mlp.gate_proj' in floating point ('layers.1.mlp'): bn runs ternary projections only"* ]]
    edit_json "$T/keep/config.json" 'c["quantization_config"]["modules_to_not_convert"] = "lm_head"'
    run_split "$T/x.bn" bn-convert "$T/keep"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"modules_to_not_convert must be a list of names"* ]]
}

@test "rope_scaling other than llama3, or without its numbers, is refused" {
    cp -r "$D/falcon3-1b" "$T/rs"
    $PY -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["rope_scaling"]={"type": "linear", "factor": 2.0}; json.dump(c,open(p,"w"))' \
        "$T/rs/config.json"
    run_split "$T/x.bn" bn-convert "$T/rs"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"rope_scaling of type 'linear' is not supported (llama3 is)"* ]]
    $PY -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["rope_scaling"]={"rope_type": "llama3", "factor": 8.0}; json.dump(c,open(p,"w"))' \
        "$T/rs/config.json"
    run_split "$T/x.bn" bn-convert "$T/rs"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"rope_scaling needs factor > 0"* ]]
}

# Falcon3-Instruct's chat template (tests/ref/chat_template.py --falcon3, as
# published) on the falcon3-1b fixture, its eos the tokenizer's eos_token;
# "tags": the role tags are added tokens (three reserved specials renamed),
# "text": the vocabulary lacks them and they are text.
falcon3_chat_dir() {
    local out=$1 tags=$2
    cp -r "$D/falcon3-1b" "$out"
    $PY - "$out" "$tags" "$ROOT/tests/ref" <<'PYEOF'
import json, sys
out, tags = sys.argv[1], sys.argv[2] == "tags"
sys.path.insert(0, sys.argv[3])
from chat_template import FALCON3_TEMPLATE
ren = {"<|reserved_special_token_%d|>" % i: t for i, t in enumerate(["<|system|>", "<|user|>", "<|assistant|>"])}
tj = json.load(open(out + "/tokenizer.json"))
tc = json.load(open(out + "/tokenizer_config.json"))
for a in list(tj["added_tokens"]) + list(tc["added_tokens_decoder"].values()):
    a["content"] = ren.get(a["content"], a["content"]) if tags else a["content"]
eos = next(a["id"] for a in tj["added_tokens"] if a["content"] == "<|end_of_text|>")
tc.update(chat_template=FALCON3_TEMPLATE, eos_token="<|end_of_text|>", bos_token=None)
json.dump(tj, open(out + "/tokenizer.json", "w"))
json.dump(tc, open(out + "/tokenizer_config.json", "w"))
for fn in ("config.json", "generation_config.json"):
    c = json.load(open(out + "/" + fn))
    c["eos_token_id"] = eos
    json.dump(c, open(out + "/" + fn, "w"))
PYEOF
}

# The reference's ids for chat file $2 with the template of HF dir $1 (then
# chat_template.py's options): the text transformers' apply_chat_template
# renders, tokenized with its added tokens and no BOS (bn-tokenize --special
# --no-bos on the same vocabulary).
template_ref_ids() {
    local dir=$1 chat=$2
    shift 2
    $PY "$ROOT/tests/ref/chat_template.py" "$@" "$dir" <"$chat" | bn-tokenize -m "$dir" --special --no-bos
}

@test "Falcon3's chat template: what transformers renders, token for token (HF dir, bn model, GGUF)" {
    printf 'system:  Be brief. \nuser: hi there\nassistant: hello\n\nuser: again  \nand more\r\n' >"$T/c1"
    printf 'user: x\nassistant: y\n' >"$T/c2"
    printf 'user:\n' >"$T/c3"
    printf 'user: a\r\nb\r\n\r\nassistant: c\r\n' >"$T/c4"
    for tags in tags text; do
        falcon3_chat_dir "$T/$tags" $tags
        bn-convert "$T/$tags" | bn-quant | bn-pack >"$T/$tags.bn"
        [ "$(bn-convert --info --json "$T/$tags.bn" | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["chat.format"])')" = falcon3 ]
        for c in c1 c2 c3 c4; do
            template_ref_ids "$T/$tags" "$T/$c" >"$T/ref"
            template_ref_ids "$T/$tags" "$T/$c" --no-generation-prompt >"$T/ref.nogen"
            for m in "$T/$tags" "$T/$tags.bn"; do
                for enc in split whole; do
                    bn-tokenize -m "$m" --chat --chat-encoding $enc <"$T/$c" >"$T/bn"
                    diff "$T/ref" "$T/bn"
                    bn-tokenize -m "$m" --chat --chat-encoding $enc --no-generation-prompt <"$T/$c" >"$T/bn"
                    diff "$T/ref.nogen" "$T/bn"
                done
            done
        done
    done
    # offsets: a token with one spans exactly input bytes of its piece
    for c in c1 c4; do
        bn-tokenize -m "$T/tags" --chat --json <"$T/$c" | $PY -c '
import json, sys
src = open(sys.argv[1], "rb").read()
toks = json.loads(sys.stdin.readline())["tokens"]
placed = [t for t in toks if t["start"] is not None]
assert placed, toks
for t in placed:
    assert src[t["start"]:t["end"]].decode("utf-8", "replace") == t["piece"], t' "$T/$c"
    done
    # a template that differs where the rendering depends on it is not Falcon3's
    $PY - "$T/tags/tokenizer_config.json" <<'PYEOF'
import json, sys
p = sys.argv[1]
tc = json.load(open(p))
tc["chat_template"] = tc["chat_template"].replace("{%- if not loop.last %}", "{%- if true %}")
json.dump(tc, open(p, "w"))
PYEOF
    [ "$(bn-tokenize -m "$T/tags" --info 2>&1 | grep chat_format)" = "chat_format: none" ] ||
        { bn-tokenize -m "$T/tags" --info; return 1; }
    # the tags are single ids in one, text in the other
    [ "$(printf 'user: x\n' | bn-tokenize -m "$T/tags.bn" --chat | wc -w)" -lt \
      "$(printf 'user: x\n' | bn-tokenize -m "$T/text.bn" --chat | wc -w)" ]
    # a GGUF carrying the template (bitnet.cpp copies tokenizer_config's)
    $PY "$ROOT/tests/ref/chat_template.py" --falcon3 >"$T/f3.jinja"
    $GEN --format gguf-i2_s --arch llama --chat-template "$T/f3.jinja" "$T/f3.gguf" >/dev/null
    [ "$(bn-convert --info --json "$T/f3.gguf" | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["chat.format"])')" = falcon3 ]
    printf 'user: hi\n' | bn-tokenize -m "$T/f3.gguf" --chat >"$T/g"
    printf '<|user|>\nhi\n<|assistant|>\n' | bn-tokenize -m "$T/f3.gguf" --no-bos >"$T/gref"
    diff "$T/gref" "$T/g"
}

# chat.format of HF dir $1, read directly and through bn-convert
chat_format_of() {
    bn-tokenize -m "$1" --info 2>&1 | sed -n 's/^chat_format: //p'
    bn-convert "$1" | bn-convert --info --json - | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["chat.format"])'
}

@test "Falcon3's chat template where transformers finds it: chat_template.jinja first, a list's \"default\"" {
    printf 'system: Be brief.\nuser: hi there\nassistant: hello\nuser: again\n' >"$T/c"
    falcon3_chat_dir "$T/j" tags
    # transformers now saves the template beside the config, not in it
    $PY - "$T/j" <<'PYEOF'
import json, sys
d = sys.argv[1]
tc = json.load(open(d + "/tokenizer_config.json"))
open(d + "/chat_template.jinja", "w").write(tc.pop("chat_template"))
json.dump(tc, open(d + "/tokenizer_config.json", "w"))
PYEOF
    [ "$(chat_format_of "$T/j")" = "$(printf 'falcon3\nfalcon3')" ]
    template_ref_ids "$T/j" "$T/c" >"$T/ref"
    bn-tokenize -m "$T/j" --chat <"$T/c" >"$T/bn"
    diff "$T/ref" "$T/bn"
    [ "$(bn-convert "$T/j" | bn-convert --info --json - | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["chat.template"])')" = "$(cat "$T/j/chat_template.jinja")" ]
    # the file wins over the config's template, whichever is Falcon3's
    cp -r "$T/j" "$T/j2"
    $PY - "$T/j2" <<'PYEOF'
import json, sys
d = sys.argv[1]
tc = json.load(open(d + "/tokenizer_config.json"))
tc["chat_template"] = open(d + "/chat_template.jinja").read()
json.dump(tc, open(d + "/tokenizer_config.json", "w"))
open(d + "/chat_template.jinja", "w").write("{% for m in messages %}{{ m['content'] }}{% endfor %}")
PYEOF
    [ "$(chat_format_of "$T/j2")" = "$(printf 'none\nnone')" ]
    # named templates: the one named "default"; without one, none
    falcon3_chat_dir "$T/l" tags
    $PY - "$T/l" <<'PYEOF'
import json, sys
d = sys.argv[1]
tc = json.load(open(d + "/tokenizer_config.json"))
tc["chat_template"] = [{"name": "tool_use", "template": "{{ messages }}"},
                       {"name": "default", "template": tc["chat_template"]}]
json.dump(tc, open(d + "/tokenizer_config.json", "w"))
PYEOF
    [ "$(chat_format_of "$T/l")" = "$(printf 'falcon3\nfalcon3')" ]
    template_ref_ids "$T/l" "$T/c" >"$T/ref"
    bn-tokenize -m "$T/l" --chat <"$T/c" >"$T/bn"
    diff "$T/ref" "$T/bn"
    $PY - "$T/l" <<'PYEOF'
import json, sys
d = sys.argv[1]
tc = json.load(open(d + "/tokenizer_config.json"))
tc["chat_template"][1]["name"] = "chat"
json.dump(tc, open(d + "/tokenizer_config.json", "w"))
PYEOF
    [ "$(chat_format_of "$T/l")" = "$(printf 'none\nnone')" ]
}

@test "Falcon3 chat: -cnv answers as bn-tokenize --chat's ids do" {
    falcon3_chat_dir "$T/f3" tags
    bn-convert "$T/f3" | bn-quant | bn-pack >"$T/f3.bn"
    printf 'Good morning.\nAnd then?\n' | bn-infer -m "$T/f3.bn" -cnv --system 'Be brief.' --temp 0 -n 8 >"$T/cnv"
    [ "$(wc -l <"$T/cnv")" -eq 2 ]
    printf 'system: Be brief.\nuser: Good morning.\n' | bn-tokenize -m "$T/f3.bn" --chat >"$T/ids"
    bn-infer -m "$T/f3.bn" --temp 0 -n 8 --text <"$T/ids" >"$T/pipe"
    [ "$(head -1 "$T/cnv")" = "$(cat "$T/pipe")" ]
}

@test "Llama 3's chat template (llama3-8b-1.58): --chat-encoding whole is what transformers renders" {
    cp -r "$D/llama3-8b-1.58" "$T/l3"
    # Meta-Llama-3-8B-Instruct's template, as its tokenizer_config.json has it
    $PY - "$T/l3/tokenizer_config.json" <<'PYEOF'
import json, sys
p = sys.argv[1]
tc = json.load(open(p))
tc["chat_template"] = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
                       "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
                       "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
                       "{{ content }}{% endfor %}{% if add_generation_prompt %}"
                       "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
json.dump(tc, open(p, "w"))
PYEOF
    printf 'system:  Be brief. \nuser: hi there\nassistant: hello\nuser: again\nand more\n' >"$T/c"
    bn-convert "$T/l3" | bn-quant | bn-pack >"$T/l3.bn"
    [ "$(bn-convert --info --json "$T/l3.bn" | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["chat.format"])')" = llama3 ]
    for gen in "" --no-generation-prompt; do
        $PY "$ROOT/tests/ref/chat_template.py" $gen "$T/l3" <"$T/c" | bn-tokenize -m "$T/l3" --special --no-bos >"$T/ref"
        for m in "$T/l3" "$T/l3.bn"; do
            bn-tokenize -m "$m" --chat --chat-encoding whole $gen <"$T/c" >"$T/bn"
            diff "$T/ref" "$T/bn"
        done
    done
}

# Conversations c1..c5 in $T: a system message with blanks, none, a later
# system message, a system message alone, messages ending in blanks
llama_convs() {
    printf 'system:  Be brief. \nuser: hi there\nassistant: hello\nuser: again\nand more\n' >"$T/c1"
    printf 'user: no system here\nassistant: fine\nuser:   \n' >"$T/c2"
    printf 'user: first\nsystem: a later system message is a message\nuser: ok\n' >"$T/c3"
    printf 'system: only a system message\n' >"$T/c4"
    printf 'user: trailing blanks  \nassistant: a tab\t\nuser: two lines\n\n' >"$T/c5"
}

# The llama3.2-3b-bitnet checkpoint with Llama $2's published template
# (3.2 or 3.1, tests/data/chat) as transformers finds it
llama_dated_dir() {
    cp -r "$D/llama3.2-3b-bitnet" "$1"
    cp "$ROOT/tests/data/chat/llama-${2:-3.2}-instruct.jinja" "$1/chat_template.jinja"
}

@test "Llama 3.2's chat template: the dated system message as transformers renders it, --chat-date, split and whole" {
    llama_dated_dir "$T/l"
    [ "$(chat_format_of "$T/l")" = "$(printf 'llama3.2\nllama3.2')" ]
    bn-convert "$T/l" | bn-quant | bn-pack >"$T/l.bn"
    llama_convs
    for c in c1 c2 c3 c4 c5; do
        for gen in "" --no-generation-prompt; do
            template_ref_ids "$T/l" "$T/$c" $gen --date "05 Mar 2025" >"$T/ref"
            grep -q . "$T/ref"
            for m in "$T/l" "$T/l.bn"; do
                bn-tokenize -m "$m" --chat --chat-encoding whole --chat-date "05 Mar 2025" $gen <"$T/$c" >"$T/bn"
                diff "$T/ref" "$T/bn"
                # split encodes the header's "\n\n" apart: other ids, the same text
                bn-tokenize -m "$m" --chat --chat-date "05 Mar 2025" $gen <"$T/$c" >"$T/split"
                diff <(bn-tokenize -d -m "$m" <"$T/ref") <(bn-tokenize -d -m "$m" <"$T/split")
            done
        done
    done
    bn-tokenize -d -m "$T/l.bn" <"$T/bn" | grep -qx 'Today Date: 05 Mar 2025'
    # by default today's date, as strftime_now gives it (a render on each
    # side of bn's, should the day turn between them)
    template_ref_ids "$T/l" "$T/c1" >"$T/ref1"
    bn-tokenize -m "$T/l.bn" --chat --chat-encoding whole <"$T/c1" >"$T/bn"
    template_ref_ids "$T/l" "$T/c1" >"$T/ref2"
    diff "$T/ref1" "$T/bn" || diff "$T/ref2" "$T/bn"
    bn-tokenize -d -m "$T/l.bn" <"$T/bn" | grep -qx "Today Date: $(LC_ALL=C date +'%d %b %Y')" ||
        bn-tokenize -d -m "$T/l.bn" <"$T/ref2" | grep -q "Today Date: $(LC_ALL=C date +'%d %b %Y')"
    # -cnv renders as bn-tokenize --chat does
    printf 'Good morning.\n' | bn-infer -m "$T/l.bn" -cnv --system 'Be brief.' --chat-date '05 Mar 2025' \
        --temp 0 -n 6 >"$T/cnv"
    printf 'system: Be brief.\nuser: Good morning.\n' | bn-tokenize -m "$T/l.bn" --chat --chat-date '05 Mar 2025' >"$T/ids"
    bn-infer -m "$T/l.bn" --temp 0 -n 6 --text <"$T/ids" >"$T/pipe"
    [ "$(head -1 "$T/cnv")" = "$(cat "$T/pipe")" ]
    # another date, other ids: the option reaches -cnv's rendering
    printf 'system: Be brief.\nuser: Good morning.\n' | bn-tokenize -m "$T/l.bn" --chat --chat-date '06 Mar 2025' >"$T/ids2"
    ! cmp -s "$T/ids" "$T/ids2"
}

@test "Llama 3.1's chat template: the date it fixes by default (Meta's or another copy's), --chat-date's when given; in a GGUF too" {
    llama_dated_dir "$T/l" 3.1
    [ "$(chat_format_of "$T/l")" = "$(printf 'llama3.1\nllama3.1')" ]
    printf 'system: Be brief.\nuser: hi there\n' >"$T/c"
    template_ref_ids "$T/l" "$T/c" >"$T/ref"
    bn-tokenize -m "$T/l" --chat --chat-encoding whole <"$T/c" >"$T/bn"
    diff "$T/ref" "$T/bn"
    bn-tokenize -d -m "$T/l" <"$T/bn" | grep -qx 'Today Date: 26 Jul 2024'
    llama_convs
    for c in c1 c2 c3 c4 c5; do
        for gen in "" --no-generation-prompt; do
            template_ref_ids "$T/l" "$T/$c" $gen >"$T/ref"
            bn-tokenize -m "$T/l" --chat --chat-encoding whole $gen <"$T/$c" >"$T/bn"
            diff "$T/ref" "$T/bn"
        done
    done
    template_ref_ids "$T/l" "$T/c" --date "1 Jan 2030" >"$T/ref"
    bn-tokenize -m "$T/l" --chat --chat-encoding whole --chat-date "1 Jan 2030" <"$T/c" >"$T/bn"
    diff "$T/ref" "$T/bn"
    # a copy that fixes another date (unsloth's writes "26 July 2024"): the template's
    sed -i 's/set date_string = "26 Jul 2024"/set date_string = "26 July 2024"/' "$T/l/chat_template.jinja"
    grep -q '"26 July 2024"' "$T/l/chat_template.jinja"
    bn-convert "$T/l" | bn-quant | bn-pack >"$T/l.bn"
    template_ref_ids "$T/l" "$T/c" >"$T/ref"
    for m in "$T/l" "$T/l.bn"; do
        bn-tokenize -m "$m" --chat --chat-encoding whole <"$T/c" >"$T/bn"
        diff "$T/ref" "$T/bn"
    done
    bn-tokenize -d -m "$T/l.bn" <"$T/bn" | grep -qx 'Today Date: 26 July 2024'
    # copies that strip no message (unsloth's) or only the system one
    # (3.2-Vision's): the contents as the template gives them
    sed -i "s/message\['content'\] | trim/message['content']/" "$T/l/chat_template.jinja"
    for v in vision unsloth; do
        [ $v = vision ] || sed -i "s/messages\[0\]\['content'\]|trim/messages[0]['content']/" "$T/l/chat_template.jinja"
        [ "$(grep -c "message\['content'\] | trim" "$T/l/chat_template.jinja")" = 0 ]
        bn-convert "$T/l" | bn-quant | bn-pack >"$T/l.bn"
        for c in c1 c2 c3 c4 c5; do
            template_ref_ids "$T/l" "$T/$c" >"$T/ref"
            for m in "$T/l" "$T/l.bn"; do
                bn-tokenize -m "$m" --chat --chat-encoding whole <"$T/$c" >"$T/bn"
                diff "$T/ref" "$T/bn"
            done
        done
    done
    grep -q "messages\[0\]\['content'\]|trim" "$T/l/chat_template.jinja" && return 1
    # a GGUF carrying either template (llama.cpp's converter copies it)
    for v in 3.1 3.2; do
        llama_dated_dir "$T/g$v" $v
        $GEN --format gguf-i2_s --arch llama --chat-template "$T/g$v/chat_template.jinja" "$T/$v.gguf" >/dev/null
        [ "$(bn-convert --info --json "$T/$v.gguf" | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["chat.format"])')" = "llama$v" ]
    done
    printf 'user: hi\n' | bn-tokenize -m "$T/3.1.gguf" --chat --chat-encoding whole >"$T/g"
    printf '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' |
        bn-tokenize -m "$T/3.1.gguf" --special --no-bos >"$T/gref"
    diff "$T/gref" "$T/g"
}

@test "--chat-date: usage errors, one line of at most 31 bytes" {
    run bn-tokenize -m "$D/llama3.2-3b-bitnet" --chat-date '05 Mar 2025' </dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"--chat-date goes with --chat"* ]]
    run bn-tokenize -m "$D/llama3.2-3b-bitnet" --chat --chat-date "$(printf 'x%.0s' $(seq 32))" </dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"at most 31 bytes"* ]]
    run bn-tokenize -m "$D/llama3.2-3b-bitnet" --chat --chat-date "$(printf '05 Mar\n2025')" </dev/null
    [ "$status" -eq 2 ]
    run bn-infer -m "$D/llama3.2-3b-bitnet.bn" --chat-date '05 Mar 2025' -n 1 <"$D/p1.ids"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--chat-date needs -cnv"* ]]
    run bn-serve -m "$D/llama3.2-3b-bitnet.bn" --chat-date "$(printf 'x%.0s' $(seq 40))"
    [ "$status" -eq 2 ]
    [[ "$output" == *"at most 31 bytes"* ]]
    # a format without a date takes the option and renders as before
    printf 'user: hi\n' | bn-tokenize -m "$D/llama3.2-3b-bitnet" --chat >"$T/a"
    printf 'user: hi\n' | bn-tokenize -m "$D/llama3.2-3b-bitnet" --chat --chat-date '05 Mar 2025' >"$T/b"
    diff "$T/a" "$T/b"
}
