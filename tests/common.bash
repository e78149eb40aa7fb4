# common.bash — shared by the bats suites: where the binaries are, the
# independent Python references, and small assertions about outputs.
BN_BIN=${BN_BIN:-$BATS_TEST_DIRNAME/../build/bin}
PATH=$BN_BIN:$PATH
ROOT=$BATS_TEST_DIRNAME/..
PY=/usr/bin/python3
GEN="$PY $ROOT/tests/ref/gen_checkpoint.py"
TINY=$ROOT/models/tiny-bitnet

# run_fails CMD...: the command exits with status 1 and prints exactly one
# line on stderr, "PROG: ...". stdout is ignored.
expect_one_line_error() {
    local status=$1 err=$2 prog=$3
    [ "$status" -eq 1 ] || { echo "status $status, expected 1"; return 1; }
    [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] || { echo "stderr is not one line: $err"; return 1; }
    [[ $err == "$prog: "* ]] || { echo "stderr does not start with '$prog: ': $err"; return 1; }
}

# Runs a command with stdout to a file and stderr captured in $err.
run_split() {
    local out=$1; shift
    status=0
    err=$("$@" 2>&1 >"$out") || status=$?
}

no_files_like() { # dir glob: nothing matching is left (temp files included)
    [ -z "$(ls -A "$1" | grep -E "$2" || true)" ]
}

# no_orphans_like DIR REGEX: nothing matching in a directory that other
# processes share (/dev/shm) is left behind: an entry still there must be
# held open by a live process (another test's run, a helper's) — one that
# no process holds, after 2 s of second chances, is a leak.
no_orphans_like() {
    local try e held orphans
    for try in $(seq 20); do
        orphans=
        held=$(find /proc/[0-9]*/fd -maxdepth 1 -type l -printf '%l\n' 2>/dev/null;
               cat /proc/[0-9]*/maps 2>/dev/null | awk '{ print $6 }')
        for e in $(ls -A "$1" | grep -E "$2" || true); do
            grep -qF "$1/$e" <<<"$held" || orphans="$orphans $e"
        done
        [ -n "$orphans" ] || return 0
        sleep 0.1
    done
    echo "left in $1 and held by no process:$orphans"
    return 1
}

# normal_pass_only WHY: skips the test in the sanitizer pass (`make
# sanitize` sets BN_SANITIZED). For tests whose C paths smaller tests run
# there already: what they add is size (real-vocabulary tensors, hundreds
# of positions) or numerics against a reference, checked in the normal
# pass, while ASan would multiply their minutes.
normal_pass_only() {
    [ -z "${BN_SANITIZED:-}" ] || skip "normal pass only: $1"
}

# checked_sets SET...: the kernel sets a bit-identity test loops over. The
# normal pass checks every one named (the caller skips those this CPU
# lacks); the sanitizer pass looks for memory errors, not for bits, which
# the default set's run finds as well, so it runs "auto" alone.
# enough_sets N: N sets ran, at least 2 in the normal pass.
checked_sets() {
    if [ -n "${BN_SANITIZED:-}" ]; then echo auto; else echo "$@"; fi
}
enough_sets() {
    [ "$1" -ge 2 ] || { [ -n "${BN_SANITIZED:-}" ] && [ "$1" -ge 1 ]; }
}

# edit_st_header FILE CODE: runs the Python CODE on h, the JSON header of
# the safetensors FILE, and d, its data bytes, and writes the file back with
# them (data unchanged unless CODE sets d)
edit_st_header() {
    $PY - "$1" "$2" <<'PYEOF'
import json, struct, sys
p, code = sys.argv[1], sys.argv[2]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
d = b[8 + n:]
exec(code)
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(p, "wb").write(struct.pack("<Q", len(j)) + j + d)
PYEOF
}

# edit_json FILE CODE: runs the Python CODE on c, the parsed JSON FILE (a
# config.json, a tokenizer_config.json), and writes the file back with it
edit_json() {
    $PY -c 'import json, sys
p = sys.argv[1]; c = json.load(open(p)); exec(sys.argv[2]); json.dump(c, open(p, "w"), indent=1)' "$1" "$2"
}

# drop_st_tensor FILE NAME: the safetensors FILE without tensor NAME (the
# others' bytes moved up to close the gap)
drop_st_tensor() {
    edit_st_header "$1" "h.pop('$2')
parts, at = [], 0
for k, v in sorted(((k, v) for k, v in h.items() if k != '__metadata__'), key=lambda kv: kv[1]['data_offsets']):
    s, e = v['data_offsets']
    parts.append(d[s:e])
    v['data_offsets'] = [at, at + e - s]
    at += e - s
d = b''.join(parts)"
}

# hot_tiny OUT.bn [ROW]: the bundled tiny model, quantized into OUT.bn,
# whose layer-0 K is beyond the f16 KV cache's range (65504) for one token
# alone, " ladyship" (3000), at every position: every k_proj weight of
# layer 0 is 512 (one ternary row of ones, β 512: each K value 512 x the
# sum of the token's normed input) and that token's embedding row is 0.01
# throughout (equal normed values, the largest sum): its K is ~1.2e5, every
# other token's below 3.5e4 (RoPE's rotations included). With ROW, token
# 3000's embedding row is instead twice token ROW's, layer 0 as trained: a
# model (a draft) that proposes " ladyship" where the tiny model says ROW.
hot_tiny() {
    local dir
    dir=$(mktemp -d "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/hot.XXXXXX")
    cp "$TINY"/* "$dir"/
    edit_st_header "$dir/model.safetensors" "
import array
d = bytearray(d)
e = h['model.embed_tokens.weight']; w = e['shape'][1]; at = e['data_offsets'][0]
if '${2:-}':
    r = array.array('H', d[at + ${2:-0} * w * 2:at + (${2:-0} + 1) * w * 2])
    d[at + 3000 * w * 2:at + 3001 * w * 2] = array.array('H', [x + 0x80 if x & 0x7f80 else x for x in r]).tobytes()
else:
    s, t = h['model.layers.0.self_attn.k_proj.weight']['data_offsets']
    d[s:t] = b'\x00\x44' * ((t - s) // 2)
    d[at + 3000 * w * 2:at + 3001 * w * 2] = b'\x24\x3c' * w
d = bytes(d)"
    bn-convert "$dir" | bn-quant >"$1"
    rm -r "$dir"
}

# hot_guess_tiny OUT.bn: hot_tiny's model (" ladyship"'s K beyond f16) with
# a head of its own, the embedding but for " ladyship"'s row, twice ","'s
# (44): a draft that guesses " ladyship" where it would guess "," and
# cannot hold its own guess.
hot_guess_tiny() {
    local dir
    dir=$(mktemp -d "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}/hot.XXXXXX")
    cp "$TINY"/* "$dir"/
    edit_st_header "$dir/model.safetensors" "
import array
d = bytearray(d)
e = h['model.embed_tokens.weight']; w = e['shape'][1]; at = e['data_offsets'][0]
head = bytearray(d[at:e['data_offsets'][1]])
r = array.array('H', head[44 * w * 2:45 * w * 2])
head[3000 * w * 2:3001 * w * 2] = array.array('H', [x + 0x80 if x & 0x7f80 else x for x in r]).tobytes()
s, t = h['model.layers.0.self_attn.k_proj.weight']['data_offsets']
d[s:t] = b'\x00\x44' * ((t - s) // 2)
d[at + 3000 * w * 2:at + 3001 * w * 2] = b'\x24\x3c' * w
h['lm_head.weight'] = {'dtype': e['dtype'], 'shape': e['shape'], 'data_offsets': [len(d), len(d) + len(head)]}
d = bytes(d) + bytes(head)"
    edit_json "$dir/config.json" "c['tie_word_embeddings'] = False"
    bn-convert "$dir" | bn-quant >"$1"
    rm -r "$dir"
}
