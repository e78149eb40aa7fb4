#!/usr/bin/env bats
# bn-convert and bn-quant on real and synthetic Hugging Face checkpoints, and
# every kind of malformed input.

load common

setup() {
    T=$BATS_TEST_TMPDIR
}

@test "bn-convert --help and --version" {
    run bn-convert --help
    [ "$status" -eq 0 ]
    [[ $output == *"usage: bn-convert"* ]]
    run bn-convert --version
    [ "$status" -eq 0 ]
    [[ $output == "bn-convert (bn) "* ]]
}

@test "usage errors exit 2" {
    run bn-convert
    [ "$status" -eq 2 ]
    run bn-convert --bogus x
    [ "$status" -eq 2 ]
    run bn-convert a b
    [ "$status" -eq 2 ]
    # --info writes no model: an output, a name or -f with it would be ignored
    for o in "-o $T/x.bn" "--name x" "-f"; do
        run bn-convert --info "$TINY" $o
        [ "$status" -eq 2 ]
        [[ $output == *"--info writes no model"* ]]
    done
    [ ! -e "$T/x.bn" ]
    # a TL1/TL2 configuration applies to GGUF files only: with anything else it would go unread
    run bn-convert "$TINY" --tl-config "$T/none.ini" -o "$T/x.bn"
    [ "$status" -eq 1 ]
    [[ $output == "bn-convert: $TINY: not a GGUF file, so the TL1/TL2 configuration $T/none.ini does not apply" ]]
    [ ! -e "$T/x.bn" ]
}

@test "the tiny trained model converts and describes itself" {
    bn-convert "$TINY" -o "$T/tiny.bn"
    run bn-convert --info "$T/tiny.bn"
    [ "$status" -eq 0 ]
    [[ $output == *"general.architecture         bitnet-b1.58"* ]]
    [[ $output == *"model.embedding_length       256"* ]]
    [[ $output == *"tokens.stop_ids              4065 4073"* ]]
    [[ $output == *"tokenizer                    4096 tokens"* ]]
    [[ $output == *"68 tensors, 5284736 parameters"* ]]
    run bn-convert --info --json "$T/tiny.bn"
    [ "$status" -eq 0 ]
    echo "$output" | $PY -c '
import json, sys
d = json.load(sys.stdin)
m = d["metadata"]
assert m["general.architecture"] == "bitnet-b1.58"
assert m["model.head_count_kv"] == 2 and m["model.rope_pairing"] == "neox"
assert m["chat.format"] == "bitnet"
assert d["parameters"] == 5284736 and len(d["tensors"]) == 68
# every file whose bytes decide the model (stop ids, BOS and the chat template too)
assert m["provenance.sources"] == ["model.safetensors", "config.json", "generation_config.json",
                                   "tokenizer_config.json", "tokenizer.json"], m["provenance.sources"]
assert len(m["provenance.source_hashes"]) == 5
'
}

@test "a checkpoint without a tokenizer converts with a warning (none with -q) and runs on token ids" {
    mkdir "$T/notok"
    cp "$TINY/config.json" "$TINY/model.safetensors" "$T/notok/"
    bn-convert "$T/notok" -o "$T/notok.bn" 2> "$T/err"
    [ "$(cat "$T/err")" = "bn-convert: $T/notok: no tokenizer found: the model takes and gives token ids only" ]
    bn-convert -q "$T/notok" -o "$T/notok2.bn" 2> "$T/err"
    [ ! -s "$T/err" ]
    # with its tokenizer: no warning
    bn-convert "$TINY" -o "$T/tok.bn" 2> "$T/err"
    [ ! -s "$T/err" ]
    run bn-convert --info "$T/notok.bn"
    [[ $output == *"tokenizer                    none"* ]]
    # token ids in and out, the same as with the tokenizer
    bn-infer -m "$T/notok.bn" -n 4 --temp 0 <<< "4064 378" > "$T/ids" 2> /dev/null
    bn-infer -m "$T/tok.bn" -n 4 --temp 0 <<< "4064 378" > "$T/ids-tok" 2> /dev/null
    grep -Eq '^[0-9]+( [0-9]+){3} ?$' "$T/ids"
    cmp "$T/ids" "$T/ids-tok"
}

@test "a BOS starts each text when the HF tokenizer's post-processor adds one, whatever config.json's bos_token_id says" {
    # the bundled tokenizer.json's template starts with <|begin_of_text|> (4064)
    mkdir "$T/nobos"
    cp "$TINY"/* "$T/nobos/"
    $PY - "$T/nobos/tokenizer.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
# the ByteLevel step only: the template (and its BOS) gone, as Qwen3's tokenizers have it
t["post_processor"] = [p for p in t["post_processor"]["processors"] if p["type"] == "ByteLevel"][0]
json.dump(t, open(sys.argv[1], "w"))
PYEOF
    for d in "$TINY" "$T/nobos"; do
        bn-convert -q "$d" -o "$T/m.bn"
        bn-convert --info "$T/m.bn" | grep -E '^tokens.(bos_id|add_bos) ' | tr -s ' ' >"$T/$(basename "$d").bos"
        printf 'Emma\n' | bn-tokenize -m "$T/m.bn" >"$T/$(basename "$d").ids"
    done
    [ "$(cat "$T/tiny-bitnet.bos")" = "$(printf 'tokens.bos_id 4064\ntokens.add_bos true')" ]
    [ "$(cat "$T/nobos.bos")" = "$(printf 'tokens.bos_id 4064\ntokens.add_bos false')" ]
    [ "4064 $(cat "$T/nobos.ids")" = "$(cat "$T/tiny-bitnet.ids")" ]
    # tokenizer_config.json's add_bos_token overrides the template, as transformers' Llama tokenizers do
    $PY -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["add_bos_token"] = True; json.dump(c, open(p, "w"))' \
        "$T/nobos/tokenizer_config.json"
    bn-convert -q "$T/nobos" -o "$T/m.bn"
    bn-convert --info "$T/m.bn" | grep -Eq '^tokens.add_bos +true'
}

@test "config keys left out take transformers' class defaults; transformers 5's rope_parameters is read" {
    # edit NAME PYTHON: a copy of the bundled checkpoint whose config c is changed by PYTHON
    edit() {
        mkdir -p "$T/$1"
        cp "$TINY"/* "$T/$1/"
        edit_json "$T/$1/config.json" "$2"
        bn-convert -q "$T/$1" -o "$T/$1.bn"
        bn-convert --info "$T/$1.bn" | grep -E '^model.(rope|norm_eps)' | tr -s ' ' >"$T/$1.meta"
    }
    edit same 'pass'
    # BitNetConfig: rms_norm_eps 1e-5, rope_theta 500000 (the file states both)
    edit bare 'del c["rope_theta"]; del c["rms_norm_eps"]'
    diff "$T/same.meta" "$T/bare.meta"
    # a Llama layer with the keys left out: LlamaConfig's 1e-6 and 10000
    edit llama 'c["architectures"] = ["LlamaForCausalLM"]; c["hidden_act"] = "silu"; del c["rope_theta"]; del c["rms_norm_eps"]'
    grep -qx 'model.rope_theta 10000' "$T/llama.meta"
    grep -qx 'model.norm_eps 1e-06' "$T/llama.meta"
    # transformers 5 keeps theta (and any scaling) in rope_parameters
    edit v5 'c["rope_parameters"] = {"rope_theta": c.pop("rope_theta"), "rope_type": "default"}'
    diff "$T/same.meta" "$T/v5.meta"
    edit v5s 'c["rope_parameters"] = {"rope_theta": c.pop("rope_theta"), "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}'
    grep -qx 'model.rope_scaling llama3' "$T/v5s.meta"
    grep -qx 'model.rope_theta 500000' "$T/v5s.meta"
    # the reference reads such a config alike: logits of the rope_parameters copy meet it
    printf '4064 378\n' >"$T/p.ids"
    bn-infer -m "$T/v5s.bn" --logits "$T/bn.f32" -n 0 --kv f32 <"$T/p.ids" >/dev/null
    run $PY -W ignore "$ROOT/tests/ref/ref_forward.py" compare --model "$T/v5s" --ids "$T/p.ids" --bn "$T/bn.f32" --atol 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "conversion is exact: the independent reader sees the checkpoint's values" {
    bn-convert "$TINY" -o "$T/tiny.bn"
    $PY "$ROOT/tests/ref/check_convert.py" "$TINY" "$T/tiny.bn"
}

@test "bn-quant ternarizes exactly like the absmean reference" {
    bn-convert "$TINY" | bn-quant --report "$T/report.json" --json > "$T/q.bn"
    $PY "$ROOT/tests/ref/check_quant.py" "$TINY" "$T/q.bn" "$T/report.json"
}

@test "synthetic packed checkpoints (autobitlinear multiplies, bitlinear divides) convert exactly" {
    for fmt in hf-packed hf-packed-bitlinear hf-bf16; do
        $GEN --format $fmt --shape small-odd --shards 2 "$T/$fmt"
        bn-convert "$T/$fmt" -o "$T/$fmt.bn"
        $PY "$ROOT/tests/ref/check_convert.py" "$T/$fmt" "$T/$fmt.bn"
    done
    run bn-convert --info "$T/hf-packed-bitlinear.bn"
    [[ $output == *"scale_convention  divide"* ]]
    run bn-convert --info "$T/hf-packed.bn"
    [[ $output == *"scale_convention  multiply"* ]]
}

@test "a 2B4T-shaped packed checkpoint (2 layers, real vocabulary) converts exactly" {
    normal_pass_only "the small packed checkpoints take the same paths"
    $GEN --format hf-packed --shape 2b4t --layers 2 "$T/big"
    bn-convert "$T/big" -o "$T/big.bn"
    $PY "$ROOT/tests/ref/check_convert.py" "$T/big" "$T/big.bn"
    run bn-convert --info "$T/big.bn"
    [[ $output == *"model.vocab_size             128256"* ]]
    [[ $output == *"blk.1.ffn_down.weight                t2     [2560, 6912]"* ]]
}

@test "a 2B4T-shaped bf16 master-weight checkpoint (1 layer, real vocabulary) converts exactly" {
    normal_pass_only "the small bf16 checkpoints take the same paths"
    $GEN --format hf-bf16 --shape 2b4t --layers 1 "$T/b16"
    bn-convert "$T/b16" -o "$T/b16.bn"
    $PY "$ROOT/tests/ref/check_convert.py" "$T/b16" "$T/b16.bn"
    run bn-convert --info "$T/b16.bn"
    [[ $output == *"blk.0.ffn_up.weight                  bf16   [6912, 2560]"* ]]
}

@test "pipes: convert | quant | convert - streams and keeps provenance" {
    bn-convert "$TINY" | bn-quant | bn-convert - -o "$T/p.bn"
    run bn-convert --info --verify "$T/p.bn"
    [ "$status" -eq 0 ]
    # a step is a command line: the listing quotes each one that holds a space
    [[ $output == *"provenance.steps             \"bn-quant "*"\""$'\n'* ]]
    [[ $output == *"provenance.source_hashes"* ]]
    [[ $output == *"checksums                    all ok"* ]]
    cat "$T/p.bn" | bn-convert --info - | grep -q 'checksums                    all ok'
    # a bn file rewritten keeps its converter, options and sources, the rewrite one more step
    bn-convert "$TINY" --name Orig -o "$T/n1.bn"
    bn-convert "$T/n1.bn" --name Again -o "$T/n2.bn"
    bn-convert --info --json "$T/n2.bn" | $PY -c '
import json, sys
m = json.load(sys.stdin)["metadata"]
assert m["provenance.options"] == "--name" and m["provenance.source_format"] == "hf", m
assert m["provenance.sources"][0] == "model.safetensors" and len(m["provenance.source_hashes"]) == 5, m
assert m["provenance.steps"] == ["bn-convert %s --name" % sys.argv[1]] and m["general.name"] == "Again", m' \
        "$(bn-convert --version | awk '{print $3}')"
    # bn-quant and bn-pack reading a checkpoint themselves record it as bn-convert does
    bn-quant "$TINY" -o "$T/q.bn"
    $GEN --format gguf-i2_s --shape tiny --no-truth "$T/g.gguf" >/dev/null
    bn-pack "$T/g.gguf" -l b3 -o "$T/g.bn"
    # a step records the options that decide the bytes, with their values, not -o, -t, --report
    bn-convert "$TINY" | bn-quant --head q6 -t 2 --report "$T/r.txt" | bn-pack -l b3 --threads 1 -o "$T/s.bn"
    run bn-convert --info "$T/s.bn"
    [[ $output == *"provenance.steps             \"bn-quant "*" --head q6\" \"bn-pack "*" --layout b3\""$'\n'* ]]
    bn-convert --info --json "$T/s.bn" | $PY -c '
import json, sys
v = sys.argv[1]
m = json.load(sys.stdin)["metadata"]
assert m["provenance.steps"] == ["bn-quant %s --head q6" % v, "bn-pack %s --layout b3" % v], m' \
        "$(bn-convert --version | awk '{print $3}')"
    for f in q g; do
        bn-convert --info --json "$T/$f.bn" | $PY -c '
import json, sys
m = json.load(sys.stdin)["metadata"]
prog = {"q": "bn-quant", "g": "bn-pack"}[sys.argv[1]]
files = {"q": ["model.safetensors", "config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json"],
         "g": ["g.gguf"]}[sys.argv[1]]
assert m["provenance.converter"].startswith(prog + " ") and m["provenance.options"] == "", m
assert m["provenance.sources"] == files and len(m["provenance.source_hashes"]) == len(files), m
assert m["provenance.steps"] == [m["provenance.converter"]], m' $f
    done
    # the hashes are those of the files read
    [ "$(bn-convert --info --json "$T/q.bn" | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["provenance.source_hashes"])')" = \
      "$(bn-convert --info --json "$T/n1.bn" | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["provenance.source_hashes"])')" ]
}

@test "binary output to a terminal is refused" {
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "$BN_BIN/bn-convert $TINY" /dev/null
    [ "$status" -ne 0 ]
    [[ $output == *"refusing to write a binary model to a terminal"* ]]
}

@test "a flipped bit in a tensor is found by --verify, naming the tensor" {
    bn-convert "$TINY" -o "$T/t.bn"
    $PY - "$T/t.bn" "$ROOT" <<'PY'
import sys
sys.path.insert(0, sys.argv[2] + '/tests/ref')
import bnread
m = bnread.read(sys.argv[1])
t = [t for t in m.tensors if t.name == 'blk.3.ffn_up.weight'][0]
with open(sys.argv[1], 'r+b') as f:
    pos = m.data_offset + t.offset + 1000
    f.seek(pos); b = f.read(1); f.seek(pos); f.write(bytes([b[0] ^ 4]))
PY
    run bn-convert --info "$T/t.bn"
    [ "$status" -eq 0 ]
    run_split /dev/null bn-convert --info --verify "$T/t.bn"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"tensor 'blk.3.ffn_up.weight' is damaged (checksum mismatch)"* ]]
}

@test "damage to the metadata is found on open, without --verify" {
    bn-convert "$TINY" -o "$T/t.bn"
    printf 'X' | dd of="$T/t.bn" bs=1 seek=200 conv=notrunc 2>/dev/null
    run_split /dev/null bn-convert --info "$T/t.bn"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"metadata checksum mismatch"* ]]
}

@test "truncated bn files are refused at every part" {
    bn-convert "$TINY" -o "$T/t.bn"
    size=$(stat -c %s "$T/t.bn")
    for cut in 0 7 63 100 5000 $((size / 2)) $((size - 30)) $((size - 1)); do
        head -c $cut "$T/t.bn" > "$T/cut.bn"
        run_split /dev/null bn-convert --info "$T/cut.bn"
        expect_one_line_error "$status" "$err" bn-convert
        run_split /dev/null bn-convert "$T/cut.bn" -o "$T/out.bn"
        [ "$status" -eq 1 ]
        [ ! -e "$T/out.bn" ]
    done
}

# Each malformed HF input: one clear line, exit 1, no output file.
malformed() {
    local dir=$1 want=$2
    mkdir -p "$T/o"
    run_split /dev/null bn-convert "$dir" -o "$T/o/out.bn"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"$want"* ]] || { echo "error '$err' lacks '$want'"; return 1; }
    no_files_like "$T/o" .
}

copy_tiny() {
    rm -rf "$T/m"
    cp -r "$TINY" "$T/m"
    chmod -R u+w "$T/m"
}

edit_config() {
    $PY - "$T/m/config.json" "$1" <<'PY'
import json, sys
p, code = sys.argv[1], sys.argv[2]
c = json.load(open(p))
exec(code)
json.dump(c, open(p, 'w'))
PY
}

# edit_header CODE: edit_st_header on the copied checkpoint's weights
edit_header() {
    edit_st_header "$T/m/model.safetensors" "$1"
}

@test "malformed: truncated safetensors" {
    copy_tiny
    head -c 5000000 "$TINY/model.safetensors" > "$T/m/model.safetensors"
    malformed "$T/m" "outside the"
}

@test "malformed: not a safetensors file (wrong magic / absurd header length)" {
    copy_tiny
    printf 'GGUFxxxxxxxxxxxxxxxxxxxxxxx' > "$T/m/model.safetensors"
    malformed "$T/m" "not a safetensors file"
    head -c 3 "$TINY/model.safetensors" > "$T/m/model.safetensors"
    malformed "$T/m" "truncated"
}

@test "malformed: header claims more data than exists" {
    copy_tiny
    $PY - "$T/m/model.safetensors" <<'PY'
import sys, struct
p = sys.argv[1]
b = open(p, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
open(p, 'wb').write(struct.pack('<Q', n + 20000000) + b[8:])
PY
    malformed "$T/m" "header claims"
}

@test "malformed: impossible offsets, unknown dtype, overlapping tensors" {
    for edit in offsets dtype overlap; do
        copy_tiny
        $PY - "$T/m/model.safetensors" "$edit" <<'PY'
import sys, struct, json
p, edit = sys.argv[1], sys.argv[2]
b = open(p, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
k = 'model.layers.0.mlp.up_proj.weight'
if edit == 'offsets':
    h[k]['data_offsets'] = [0, 10 ** 12]
elif edit == 'dtype':
    h[k]['dtype'] = 'C64'
else:
    h[k]['data_offsets'] = [0, h[k]['data_offsets'][1] - h[k]['data_offsets'][0]]
hb = json.dumps(h).encode()
hb += b' ' * (-len(hb) % 8)
open(p, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
PY
        case $edit in
        offsets) malformed "$T/m" "outside the" ;;
        dtype) malformed "$T/m" "unsupported dtype 'C64'" ;;
        overlap) malformed "$T/m" "overlaps" ;;
        esac
    done
}

@test "malformed: a packed weight of the wrong shape is shown in the file's packed shape beside bn's" {
    $GEN --format hf-packed --shape tiny --no-truth "$T/p"
    edit_st_header "$T/p/model.safetensors" 'a, c = "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"
h[a], h[c] = h[c], h[a]'
    malformed "$T/p" "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [8, 64] (packed: [32, 64] weights), the hyper-parameters say [64, 64]"
}

@test "malformed: NaN or zero weight_scale in a packed checkpoint" {
    for bad in nan zero; do
        rm -rf "$T/p"
        $GEN --format hf-packed --shape tiny --no-truth "$T/p"
        $PY - "$T/p/model.safetensors" "$bad" <<'PY'
import sys, struct, json
p, bad = sys.argv[1], sys.argv[2]
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
k = 'model.layers.0.self_attn.k_proj.weight_scale'
s, e = h[k]['data_offsets']
val = float('nan') if bad == 'nan' else 0.0
width = e - s
enc = {4: struct.pack('<f', val), 2: struct.pack('<e', val) if h[k]['dtype'] == 'F16' else struct.pack('<f', val)[2:]}[width]
b[8 + n + s:8 + n + e] = enc
open(p, 'wb').write(bytes(b))
PY
        malformed "$T/p" "k_proj.weight_scale' is"
    done
}

@test "malformed: missing config keys and shapes that disagree with the config" {
    copy_tiny
    edit_config 'del c["hidden_size"]'
    malformed "$T/m" "config.json lacks 'hidden_size'"
    copy_tiny
    edit_config 'c["intermediate_size"] = 512'
    # the tensor named as the checkpoint names it, not by bn's name (blk.0.ffn_gate.weight)
    malformed "$T/m" "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [704, 256], the hyper-parameters say [512, 256]"
    # a tensor the checkpoint lacks, by the name transformers would look for
    copy_tiny
    # (a name conversion skips)
    edit_header "h['model.layers.2.self_attn.rotary_emb.inv_freq'] = h.pop('model.layers.2.mlp.up_proj.weight')"
    malformed "$T/m" "tensor 'model.layers.2.mlp.up_proj.weight' is missing"
    # a tensor of more dimensions: its shape as the file gives it
    copy_tiny
    edit_header "h['model.layers.0.mlp.down_proj.weight']['shape'] = [1, 256, 704]"
    malformed "$T/m" "tensor 'model.layers.0.mlp.down_proj.weight' has shape [1, 256, 704], the hyper-parameters say [256, 704]"
    copy_tiny
    edit_config 'c["num_key_value_heads"] = 3'
    malformed "$T/m" "not a multiple of head_count_kv"
    copy_tiny
    edit_config 'c["architectures"] = ["MistralForCausalLM"]'
    malformed "$T/m" "unsupported architecture 'MistralForCausalLM'"
    copy_tiny
    rm "$T/m/model.safetensors"
    malformed "$T/m" "no model.safetensors"
    copy_tiny
    echo '{ not json' > "$T/m/config.json"
    malformed "$T/m" "invalid JSON"
    # a float setting as a string was read as absent: the default, and wrong logits
    copy_tiny
    edit_config 'c["rope_theta"] = "10000"'
    malformed "$T/m" "rope_theta must be a number"
    copy_tiny
    edit_config 'c["rms_norm_eps"] = "1e-2"'
    malformed "$T/m" "rms_norm_eps must be a number"
    # a string with a NUL read as its part before it ("relu2\u0000x" as relu2)
    copy_tiny
    edit_config 'c["hidden_act"] = "relu2\u0000x"'
    malformed "$T/m" "config.json: a string holds a NUL character"
}

@test "malformed: a tokenizer.json that does not make a tokenizer is refused, nothing written" {
    for edit in regex hole; do
        copy_tiny
        $PY - "$T/m/tokenizer.json" "$edit" <<'PY'
import json, sys
p, edit = sys.argv[1], sys.argv[2]
t = json.load(open(p))
if edit == 'regex':
    def walk(n):
        if isinstance(n, dict):
            if isinstance(n.get('pattern'), dict) and 'Regex' in n['pattern']:
                n['pattern']['Regex'] = '(unclosed'
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)
    walk(t['pre_tokenizer'])
else:
    del t['model']['vocab']['\u0101']  # the byte 0x01 has no token
json.dump(t, open(p, 'w'))
PY
        case $edit in
        regex) malformed "$T/m" "the regex does not compile" ;;
        hole) malformed "$T/m" "has no token" ;;
        esac
    done
}

@test "HF directories as transformers reads them: model.safetensors before an index; linear RoPE scaling by 1 is none" {
    # a directory holding both: transformers loads model.safetensors (bn took the shards)
    $GEN --format hf-packed --shape tiny --shards 3 "$T/d" >/dev/null
    $GEN --format hf-packed --shape tiny --seed 9 "$T/s9" >/dev/null
    cp "$T/s9/model.safetensors" "$T/d/"
    bn-convert "$T/d" -o "$T/d.bn"
    bn-convert "$T/s9" -o "$T/s9.bn"
    bn-infer -m "$T/d.bn" -t 1 -n 0 --logits "$T/d.f32" <<<"5 17 29" >/dev/null
    bn-infer -m "$T/s9.bn" -t 1 -n 0 --logits "$T/s9.f32" <<<"5 17 29" >/dev/null
    cmp "$T/d.f32" "$T/s9.f32"
    # rope_scaling linear by 1: plain RoPE, the same logits as without (it was refused)
    cp -r "$T/s9" "$T/lin"
    $PY -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["rope_scaling"] = {"type": "linear", "factor": 1.0}; json.dump(c, open(p, "w"))' "$T/lin/config.json"
    bn-convert "$T/lin" -o "$T/lin.bn"
    bn-infer -m "$T/lin.bn" -t 1 -n 0 --logits "$T/lin.f32" <<<"5 17 29" >/dev/null
    cmp "$T/lin.f32" "$T/s9.f32"
    $PY -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["rope_scaling"] = {"type": "linear", "factor": 2.0}; json.dump(c, open(p, "w"))' "$T/lin/config.json"
    run bn-convert "$T/lin" -o "$T/lin2.bn"
    [ "$status" -eq 1 ]
    [[ $output == *"rope_scaling of type 'linear' is not supported"* ]]
    # -q and -f change no byte of the output (they were recorded in provenance.options)
    bn-convert "$TINY" >"$T/plain.bn"
    bn-convert -q -f "$TINY" >"$T/quiet.bn"
    cmp "$T/plain.bn" "$T/quiet.bn"
}

@test "output is atomic: a failed conversion keeps the old file, read-only dirs fail cleanly" {
    bn-convert "$TINY" -o "$T/keep.bn"
    before=$(md5sum < "$T/keep.bn")
    copy_tiny
    head -c 4000000 "$TINY/model.safetensors" > "$T/m/model.safetensors"
    run bn-convert "$T/m" -o "$T/keep.bn"
    [ "$status" -eq 1 ]
    [ "$(md5sum < "$T/keep.bn")" = "$before" ]
    [ "$(ls -A "$T" | grep -c '^\.keep')" -eq 0 ]
    if [ "$(id -u)" != 0 ]; then
        mkdir "$T/ro" && chmod 555 "$T/ro"
        run_split /dev/null bn-convert "$TINY" -o "$T/ro/x.bn"
        expect_one_line_error "$status" "$err" bn-convert
    fi
    run_split /dev/null bn-convert "$TINY" -o "$T/no/such/dir/x.bn"
    expect_one_line_error "$status" "$err" bn-convert
}

@test "a closed pipe ends bn-convert quietly" {
    run bash -c "set -o pipefail; '$BN_BIN/bn-convert' '$TINY' 2>'$T/err' | head -c 10 >/dev/null"
    [ ! -s "$T/err" ]
}

@test "a projection holding inf or NaN is refused, naming it: by bn-quant and by bn-infer's load-time ternarization" {
    for bits in 7f80 7fc0; do # bf16 inf, NaN
        rm -rf "$T/bad"
        cp -r "$TINY" "$T/bad"
        $PY - "$T/bad/model.safetensors" "$bits" <<'PYEOF'
import json, struct, sys
path, bits = sys.argv[1], int(sys.argv[2], 16)
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    t = hdr["model.layers.1.mlp.up_proj.weight"]
    assert t["dtype"] == "BF16"
    f.seek(8 + n + t["data_offsets"][0] + 2 * 777)
    f.write(struct.pack("<H", bits))
PYEOF
        bn-convert -q "$T/bad" -o "$T/bad.bn"
        run bn-quant "$T/bad.bn" -o "$T/q.bn" --report "$T/r.json" --json
        expect_one_line_error "$status" "$output" bn-quant
        [ "$output" = "bn-quant: $T/bad.bn: tensor 'blk.1.ffn_up.weight' holds weights that are inf or NaN" ]
        [ ! -e "$T/q.bn" ]
        run bn-infer -m "$T/bad.bn" -p "It was" -n 2
        [ "$status" -eq 1 ]
        [[ $output == *"bn-infer: $T/bad.bn: tensor 'blk.1.ffn_up.weight' holds weights that are inf or NaN"* ]]
        # straight from the checkpoint: the tensor by the checkpoint's name
        run bn-infer -m "$T/bad" -p "It was" -n 2
        [ "$status" -eq 1 ]
        [[ $output == *"bn-infer: $T/bad: tensor 'model.layers.1.mlp.up_proj.weight' holds weights that are inf or NaN"* ]]
        run bn-quant "$T/bad" -o "$T/q.bn"
        [ "$output" = "bn-quant: $T/bad: tensor 'model.layers.1.mlp.up_proj.weight' holds weights that are inf or NaN" ]
    done
}

@test "a model whose norm holds NaN is refused on load, naming the tensor" {
    cp -r "$TINY" "$T/nan"
    $PY - "$T/nan/model.safetensors" <<'PYEOF'
import json, struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    t = json.loads(f.read(n))["model.norm.weight"]
    f.seek(8 + n + t["data_offsets"][0])
    f.write(struct.pack("<H", 0x7fc0))  # bf16 NaN
PYEOF
    bn-convert -q "$T/nan" | bn-quant >"$T/nan.bn"
    for m in "$T/nan.bn" "$T/nan"; do
        run_split /dev/null bn-infer -m "$m" -p "It was" -n 2
        expect_one_line_error "$status" "$err" bn-infer
        [[ $err == *"tensor '"*"norm.weight' holds weights that are inf or NaN" ]]
    done
    [[ $err == *"tensor 'model.norm.weight'"* ]]
}

@test "bn-quant: help, usage, and passing ternary input through untouched" {
    run bn-quant --help
    [ "$status" -eq 0 ]
    run bn-quant --nope
    [ "$status" -eq 2 ]
    bn-convert "$TINY" | bn-quant > "$T/q1.bn"
    bn-quant "$T/q1.bn" > "$T/q2.bn"
    # same tensors, same checksums
    a=$(bn-convert --info --json "$T/q1.bn" | $PY -c 'import json,sys; print([t["xxh3"] for t in json.load(sys.stdin)["tensors"]])')
    b=$(bn-convert --info --json "$T/q2.bn" | $PY -c 'import json,sys; print([t["xxh3"] for t in json.load(sys.stdin)["tensors"]])')
    [ "$a" = "$b" ]
    run_split /dev/null bn-quant "$TINY/config.json"
    expect_one_line_error "$status" "$err" bn-quant
    # a report over the model it describes would replace it: refused, both files kept
    cp "$T/q1.bn" "$T/keep.bn"
    # bn-pack wants ternary weights: a checkpoint's float ones are named as it names them
    run_split /dev/null bn-pack "$TINY" -o "$T/p.bn"
    expect_one_line_error "$status" "$err" bn-pack
    [[ $err == "bn-pack: $TINY: tensor 'model.layers.0."*"' has type bf16; bn-pack packs ternary weights (run bn-quant first)" ]]
    for prog in bn-quant bn-pack; do
        ln -sf q3.bn "$T/q3-link" # dangling until the model is written
        for words in "-o $T/q3.bn --report $T/q3.bn" "-o $T/q3.bn --report $T/./q3.bn" "-o - --report $T/q1.bn" \
            "-o $T/q3.bn --report $T/q3-link"; do
            run_split /dev/null $prog "$T/q1.bn" $words
            [ "$status" -eq 2 ]
            [[ $err == "$prog: --report '"*"' names the model it would describe"* ]]
            [ ! -e "$T/q3.bn" ]
            cmp "$T/q1.bn" "$T/keep.bn"
        done
        # the model's own stream named by a descriptor, a pipe too (the report went into the model)
        run_split /dev/null bash -c "set -o pipefail; $prog '$T/q1.bn' --report /dev/stdout | cat >'$T/q5.bn'"
        [ "$status" -eq 2 ]
        [[ $err == "$prog: --report '/dev/stdout' names the model it would describe"* ]]
        # the same files reached through redirections
        run_split /dev/null sh -c "$prog --report '$T/q1.bn' <'$T/q1.bn' >'$T/q4.bn'"
        [ "$status" -eq 2 ]
        run_split /dev/null sh -c "$prog '$T/q1.bn' --report '$T/q4.bn' >'$T/q4.bn'"
        [ "$status" -eq 2 ]
        cmp "$T/q1.bn" "$T/keep.bn"
    done
}

@test "man pages render, every one without a warning" {
    for p in $(cd "$ROOT/man" && ls -- *.[135]); do
        out=$(man -l "$ROOT/man/$p" 2>&1 >/dev/null)
        [ -z "$out" ] || { echo "$p: $out"; return 1; }
        man -l "$ROOT/man/$p" 2>/dev/null | grep -q .
    done
}
