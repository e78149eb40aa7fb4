#!/usr/bin/env bats
# bn-bench: the shape table, every output format, sweeps, the refusal of a
# shape that does not fit, --compare (ours and llama-bench's JSON), kernels,
# bandwidth, tokenizer and conversion throughput, and that every figure is
# finite and positive. No test asserts a speed: the machine is shared.

load common

# Small and quick: tiny shapes, one repetition, a small bandwidth buffer.
FAST="-r 1 --bw-mib 8 --sample-ms 5"

# check_json FILE: every row's samples and median finite and > 0, samples
# = reps, and the machine's limits > 0 when present.
check_json() {
    $PY - "$1" "${2:-1}" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1])); reps = int(sys.argv[2])
assert d["rows"], "no rows"
for r in d["rows"]:
    assert len(r["samples"]) == reps, (r["test"], r["samples"])
    for v in r["samples"] + [r["median"]]:
        assert isinstance(v, (int, float)) and math.isfinite(v) and v > 0, (r["test"], v)
    if r["kind"] == "e2e":
        for k in ("bytes_per", "ops_per", "gbps", "bw_gbps", "peak_gops", "roofline_pct", "peak_rss", "load_s", "ttft_s", "size", "params"):
            assert r[k] is not None and math.isfinite(r[k]) and r[k] > 0, (r["test"], k, r[k])
        assert r["bound"] in ("memory", "compute")
    if r["kind"] in ("e2e", "kernel"):
        # every row's figures agree with each other and with the limits it
        # names (also after the run's second bandwidth probe)
        rate = r["median"] * 1e9 / r["ops_per"] if r["kind"] == "kernel" else r["median"]
        assert math.isclose(r["gbps"], r["bytes_per"] * rate / 1e9, rel_tol=1e-6), r
        mem = r["gbps"] / r["bw_gbps"] * 100
        cpu = r["gops"] / r["peak_gops"] * 100 if r["peak_gops"] else 0
        # the limit the row comes closer to; an end-to-end row whose bytes fit
        # in the last-level cache has only the compute one (test below)
        want = max(mem, cpu) if r["bound"] == "memory" or r["kind"] == "kernel" else cpu
        assert r["bound"] != "memory" or mem >= cpu, r
        assert math.isclose(r["roofline_pct"], want, rel_tol=1e-6), r
m = d.get("machine")
assert m and m["cpu"] and m["cpus"] > 0, m  # every figure says its CPU
if "limits" in m:  # modes that measure no limits (--tokenize, --convert) give the CPU alone
    assert m["ghz"] > 0 and m["macs_per_cycle"] > 0
    for l in m["limits"]:
        assert l["read_gbps"] > 0 and l["int8_gops"] > 0
for r in d["rows"]:
    assert r["n"] == len(r["samples"]), r  # the CSV's n, here too
PY
}

setup() {
    T=$BATS_TEST_TMPDIR
}

@test "bench: --help and --version" {
    run bn-bench --help
    [ "$status" -eq 0 ]
    [[ $output == *"--synthetic"* && $output == *"--compare"* ]]
    run bn-bench --version
    [ "$status" -eq 0 ]
    [[ $output == "bn-bench (bn) "* ]]
}

@test "bench: the shape table mirrors gen_checkpoint.py's" {
    bn-bench --list-shapes --json >"$T/shapes.json"
    $PY - "$T/shapes.json" "$ROOT/tests/ref" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[2])
from gen_checkpoint import SHAPES
ours = {s["shape"]: s for s in json.load(open(sys.argv[1]))}
assert set(ours) == set(SHAPES), (sorted(ours), sorted(SHAPES))
for name, (d, ff, nl, h, kv, vocab, ctx) in SHAPES.items():
    s = ours[name]
    assert (s["hidden"], s["ffn"], s["layers"], s["heads"], s["kv_heads"], s["vocab"], s["context"]) == \
        (d, ff, nl, h, kv, vocab, ctx), name
assert ours["2b4t"]["params"] == 2412820480     # formats.md §1.1
PY
    run bn-bench --list-shapes
    [ "$status" -eq 0 ]
    [[ $output == *"| 2b4t | 2560 | 6912 | 30 | 20 | 5 | 128256 | 4096 | 2.41 B |"* ]]
    [ "$(bn-bench --list-shapes --csv | wc -l)" -eq 11 ]
}

@test "bench: markdown by default, llama-bench's columns first" {
    run bn-bench --synthetic tiny -p 16 -n 8 -t 1 $FAST
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "| model | size | params | layout | kernel | threads | test | t/s |"* ]]
    [[ $output == *"| synthetic tiny |"*"| pp16 |"* ]]
    [[ $output == *"| tg8 |"* ]]
    [[ $output == *"read bandwidth"* && $output == *"int8 peak"* && $output == *"energy: "* ]]
    [[ $output == *"time to first token"* ]]
}

@test "bench: --json results are finite and positive, one sample per repetition" {
    bn-bench --synthetic tiny -p 16 -n 8 -t 1 -r 2 --bw-mib 8 --json >"$T/a.json"
    check_json "$T/a.json" 2
}

@test "bench: a model that fits in the last-level cache is not measured against the memory bandwidth" {
    llc=/sys/devices/system/cpu/cpu0/cache/index3/size
    [ -r "$llc" ] || skip "no L3 cache size in sysfs"
    bn-bench --synthetic tiny -p 0 -n 8 -t 1 $FAST --json >"$T/c.json"
    $PY - "$T/c.json" "$(cat "$llc")" <<'PY'
import json, sys
size = sys.argv[2]
llc = float(size.rstrip("KM")) * {"K": 1024, "M": 1 << 20}.get(size[-1], 1)
for r in json.load(open(sys.argv[1]))["rows"]:
    if r["bytes_per"] <= llc:
        assert r["bound"] == "compute" and r["roofline_pct"] <= 100, r
    else:
        assert r["bound"] == "memory", r
PY
    run bn-bench --synthetic tiny -p 0 -n 8 -t 1 $FAST
    [[ $output == *"tg8"*"GOPS"* ]]
}

@test "bench: --csv has one header and one line per row, every row positive" {
    bn-bench --synthetic tiny -p 16 -n 8 -t 1 $FAST --csv >"$T/a.csv"
    $PY - "$T/a.csv" <<'PY'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows and all(r["kind"] == "e2e" for r in rows)
for r in rows:
    assert math.isfinite(float(r["median"])) and float(r["median"]) > 0
    assert float(r["roofline_pct"]) > 0 and r["bound"] in ("memory", "compute")
    assert r["joules_per"] == "" or float(r["joules_per"]) >= 0
PY
}

@test "bench: comma lists sweep every combination" {
    bn-bench --synthetic tiny,small-odd -p 4,8 -n 2,3 -t 1,2 -k ref $FAST --json >"$T/s.json"
    check_json "$T/s.json"
    $PY - "$T/s.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
layouts = {r["layout"] for r in rows}    # ref runs on every layout that has it
assert "t2" in layouts, layouts
got = [(r["model"], r["layout"], r["threads"], r["test"]) for r in rows]
want = {(m, l, t, x) for m in ("synthetic tiny", "synthetic small-odd") for l in layouts for t in (1, 2)
        for x in ("pp4", "pp8", "tg2", "tg3")}
assert set(got) == want and len(got) == len(want), sorted(set(got) ^ want)
assert {r["kernel"] for r in rows} == {"ref"}
PY
}

@test "bench: every layout with a kernel set, and odd sizes (row padding)" {
    bn-bench --synthetic odd -p 4 -n 2 -t 1 $FAST --json >"$T/l.json"
    check_json "$T/l.json"
    $PY - "$T/l.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert "t2" in {r["layout"] for r in rows}
PY
}

@test "bench: a model file, and a kernel set by NAME:LAYOUT" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    bn-bench -m "$T/tiny.bn" -p 8 -n 4 -t 1 -k ref:t2 $FAST --json >"$T/m.json"
    check_json "$T/m.json"
    grep -q '"model":[[:space:]]*"tiny"' "$T/m.json"
}

@test "bench: a shape that does not fit is refused, naming need and limit" {
    run_split "$T/out" bn-bench --synthetic tiny --mem-limit 1K -p 4 -n 2 $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"tiny: needs "*" MiB of memory"*"--mem-limit is 1.00 KiB" ]]
    [ ! -s "$T/out" ]
    no_orphans_like /dev/shm '^bn-bench\.'
}

@test "bench: 100b is refused with MemAvailable when it does not fit" {
    # Only where its weights alone exceed MemAvailable: elsewhere it would run.
    need=$(bn-bench --list-shapes --csv | awk -F, '$1 == "100b" {printf "%.0f", $10 / 1024}')
    avail=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
    [ "$avail" -lt "$need" ] || skip "MemAvailable ($avail kB) holds the 100b weights ($need kB)"
    run_split "$T/out" bn-bench --synthetic 100b -p 4 -n 2 $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"100b: needs "*"MemAvailable is "*" GiB"* ]]
}

@test "bench: --compare of two runs prints a ratio per row" {
    bn-bench --synthetic tiny -p 8 -n 4 -t 1 $FAST --json >"$T/old.json"
    bn-bench --synthetic tiny -p 8 -n 4 -t 1 $FAST --json >"$T/new.json"
    run bn-bench --compare "$T/old.json" "$T/new.json"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "| model | layout | kernel | threads | test | what | old | new | new/old |" ]]
    n=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$T/new.json")
    [ "$(grep -c '^| synthetic tiny' <<<"$output")" -eq "$n" ]
    bn-bench --compare "$T/old.json" "$T/new.json" --json >"$T/cmp.json"
    $PY -c '
import json, math, sys
c = json.load(open(sys.argv[1]))
assert c and all(math.isfinite(r["ratio"]) and r["ratio"] > 0 for r in c)' "$T/cmp.json"
    bn-bench --compare "$T/old.json" "$T/new.json" --csv | head -1 | grep -q '^model,layout,kernel,threads,test,what,unit,old,new,ratio$'
}

@test "bench: --compare lines up llama-bench -o json and -o jsonl with our rows" {
    bn-bench --synthetic tiny -p 8 -n 4 -t 1,2 $FAST --json >"$T/ours.json"
    cat >"$T/peer.json" <<'EOF_'
[
  {"model_type": "bitnet 2B I2_S - 2 bpw ternary", "model_size": 1187801600, "model_n_params": 2412820480,
   "n_threads": 1, "n_prompt": 8, "n_gen": 0, "avg_ts": 50.0, "stddev_ts": 1.0, "samples_ts": [49.0, 50.0, 51.0]},
  {"model_type": "bitnet 2B I2_S - 2 bpw ternary", "n_threads": 1, "n_prompt": 0, "n_gen": 4, "avg_ts": 10.0,
   "stddev_ts": 0.5},
  {"model_type": "bitnet 2B I2_S - 2 bpw ternary", "n_threads": 4, "n_prompt": 0, "n_gen": 4, "avg_ts": 30.0}
]
EOF_
    run bn-bench --compare "$T/peer.json" "$T/ours.json"
    [ "$status" -eq 0 ]
    [[ $output == *"| 1 | pp8 | - | 50.00 |"* ]]
    [[ $output == *"| 1 | tg4 | - | 10.00 |"* ]]
    $PY -c 'import json,sys; [print(json.dumps(o)) for o in json.load(open(sys.argv[1]))]' "$T/peer.json" >"$T/peer.jsonl"
    run bn-bench --compare "$T/peer.jsonl" "$T/ours.json"
    [ "$status" -eq 0 ]
    [[ $output == *"| 1 | tg4 | - | 10.00 |"* ]]
}

@test "bench: --parallel runs batched tests: aggregate and per-sequence rates, TTFT, paged KV bytes" {
    bn-bench --synthetic tiny -k ref:t2 --parallel 1,3 -p 8 -n 4 -t 1 $FAST --json >"$T/b.json"
    check_json "$T/b.json"
    $PY - "$T/b.json" <<'PY'
import json, math, sys
rows = json.load(open(sys.argv[1]))["rows"]
tests = [(r["test"], r["parallel"]) for r in rows]
assert tests == [("pp8 x1", 1), ("tg4 x1", 1), ("pp8 x3", 3), ("tg4 x3", 3)], tests
for r in rows:
    assert math.isclose(r["per_seq"] * r["parallel"], r["median"], rel_tol=1e-9), r
    assert r["ttft_s"] > 0 and r["kv_bytes"] > 0
# 12 positions a sequence: one 64-position block each, so three sequences hold three blocks
kv = {r["parallel"]: r["kv_bytes"] for r in rows}
assert kv[3] == 3 * kv[1], kv
PY
    run bn-bench --synthetic tiny -k ref:t2 --parallel 2 -p 8 -n 4 -t 1 $FAST
    [ "$status" -eq 0 ]
    [[ $output == *"| model | layout | kernel | threads | N | test | t/s (all) | t/s (each) | TTFT s | KV/seq |"* ]]
    [[ $output == *"| 2 | pp8 x2 |"* && $output == *"| 2 | tg4 x2 |"* ]]
    bn-bench --synthetic tiny -k ref:t2 --parallel 2 -p 8 -n 4 -t 1 $FAST --csv >"$T/b.csv"
    head -1 "$T/b.csv" | grep -q ',parallel,per_seq,kv_bytes,samples$'
    [ "$(wc -l <"$T/b.csv")" -eq 3 ]
    # no prompt, no time to first token (it read 0, the single-stream loop's figure never measured)
    bn-bench --synthetic tiny -k ref:t2 --parallel 2 -p 0 -n 4 -t 1 $FAST --json >"$T/n.json"
    $PY -c 'import json, sys; r = json.load(open(sys.argv[1]))["rows"]; assert [x["ttft_s"] for x in r] == [None], r' "$T/n.json"
}

@test "bench: --compare lines up llama-batched-bench's table with --parallel rows" {
    bn-bench --synthetic tiny -k ref:t2 --parallel 1,2 -p 8 -n 4 -t 1 $FAST --json >"$T/ours.json"
    cat >"$T/peer.txt" <<'EOF_'
main: n_kv_max = 4096, n_batch = 2048, n_ubatch = 512, flash_attn = 0, is_pp_shared = 0, n_gpu_layers = -1, n_threads = 1, n_threads_batch = 1

|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|     8 |      4 |    1 |     12 |    0.100 |    80.00 |    0.200 |    20.00 |    0.300 |    40.00 |
|     8 |      4 |    2 |     24 |    0.100 |   160.00 |    0.250 |    32.00 |    0.350 |    68.57 |
EOF_
    run bn-bench --compare "$T/peer.txt" "$T/ours.json"
    [ "$status" -eq 0 ]
    [[ $output == *"| 1 | pp8 x1 | - | 80.00 |"* ]]
    [[ $output == *"| 1 | tg4 x1 | - | 20.00 |"* ]]
    [[ $output == *"| 1 | pp8 x2 | - | 160.00 |"* ]]
    [[ $output == *"| 1 | tg4 x2 | - | 32.00 |"* ]]
}

@test "bench: --compare errors: no common rows, not JSON, missing file" {
    bn-bench --synthetic tiny -p 8 -n 4 -t 1 $FAST --json >"$T/a.json"
    echo '[{"n_threads": 64, "n_prompt": 0, "n_gen": 999, "avg_ts": 1.0}]' >"$T/none.json"
    for fmt in md csv json; do # no rows in common: the error alone, no table's header
        run_split "$T/out" bn-bench --compare "$T/none.json" "$T/a.json" -o $fmt
        expect_one_line_error "$status" "$err" bn-bench
        [[ $err == *"no rows in common"* ]]
        [ ! -s "$T/out" ]
    done
    echo 'not json' >"$T/bad.json"
    run_split "$T/out" bn-bench --compare "$T/bad.json" "$T/a.json"
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"bad.json: line 1: not JSON"* ]]
    # a saved run cut short is not valid JSON, said with where it stops
    head -c 200 "$T/a.json" >"$T/cut.json"
    run_split "$T/out" bn-bench --compare "$T/cut.json" "$T/a.json"
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err =~ ^bn-bench:\ .*/cut\.json:\ not\ valid\ JSON\ \(at\ byte\ [0-9]+\ of\ 200\)$ ]]
    # rows that are not objects are no results
    echo '{"bn_bench": "x", "rows": ["a", 3]}' >"$T/odd.json"
    run_split "$T/out" bn-bench --compare "$T/odd.json" "$T/a.json"
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"odd.json: no benchmark results in it" ]]
    run_split "$T/out" bn-bench --compare "$T/missing.json" "$T/a.json"
    expect_one_line_error "$status" "$err" bn-bench
}

@test "bench: --compare reads a thread count beyond int (a damaged file) as none, not as INT_MIN" {
    # converting 1e300 to int was undefined (UBSan stopped there; x86 gave -2147483648)
    cat >"$T/huge.json" <<'EOF_'
[{"model_type": "x", "n_threads": 1e300, "n_prompt": 8, "n_gen": 0, "avg_ts": 50.0},
 {"model_type": "x", "n_threads": -1e300, "n_prompt": 0, "n_gen": 4, "avg_ts": 10.0}]
EOF_
    run bn-bench --compare "$T/huge.json" "$T/huge.json"
    [ "$status" -eq 0 ]
    [[ $output == *"| 0 | pp8 | - | 50.00 |"* ]]
    [[ $output == *"| 0 | tg4 | - | 10.00 |"* ]]
    [[ $output != *2147483648* ]]
}

@test "bench: --compare's CSV quotes its text fields; its numbers are whole or 9 digits" {
    bn-bench --synthetic tiny -p 8 -n 4 -t 1 $FAST --json >"$T/a.json"
    # a model named with a comma and a quote
    sed 's/"synthetic tiny"/"my, \\"tiny\\""/' "$T/a.json" >"$T/b.json"
    bn-bench --compare "$T/b.json" "$T/b.json" --csv >"$T/c.csv"
    $PY - "$T/c.csv" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["model", "layout", "kernel", "threads", "test", "what", "unit", "old", "new", "ratio"], rows[0]
assert len(rows) > 1 and all(len(r) == 10 for r in rows), rows
assert all(r[0] == 'my, "tiny"' and float(r[9]) == 1.0 for r in rows[1:]), rows
PYEOF
    # the run's own CSV: byte counts in full
    bn-bench --synthetic tiny -p 8 -n 4 -t 1 $FAST --csv >"$T/r.csv"
    $PY - "$T/r.csv" "$T/a.json" <<'PYEOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows and all("e" not in r["size"] and int(r["size"]) > 0 and int(r["params"]) > 0 for r in rows), rows
PYEOF
}

@test "bench: --kernels runs GEMV and GEMM of every kernel set" {
    bn-bench --kernels --synthetic tiny -t 1 $FAST --json >"$T/k.json"
    check_json "$T/k.json"
    $PY - "$T/k.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
sets = {(r["layout"], r["kernel"]) for r in rows if r["kernel"] != "head"}
assert ("t2", "ref") in sets, sets
heads = {r["layout"] for r in rows if r["kernel"] == "head"}
assert "f16" in heads, heads          # the output head as the forward pass reads it
for s in sets:
    tests = {(r["test"], r["what"].split()[0]) for r in rows if (r["layout"], r["kernel"]) == s}
    for m in ("attn_q", "attn_k", "ffn_up", "ffn_down"):
        # gemmN: N = the forward pass's batch (BN_KERN_MAX_N)
        assert ("gemv", m) in tests and any(t[0].startswith("gemm") and t[0][4:].isdigit() and t[1] == m
                                            for t in tests), (s, m)
    assert ("gemv", "output") in tests
for r in rows:
    assert r["unit"] == "GOPS" and r["gbps"] > 0 and r["roofline_pct"] > 0
PY
    run bn-bench --kernels --synthetic tiny -t 1 -k ref $FAST
    [ "$status" -eq 0 ]
    [[ $output == *"| t2 | ref | 1 | gemv | attn_q 64x64 |"* ]]
}

@test "bench: --bandwidth reports read GB/s and int8 GOPS per thread count" {
    bn-bench --bandwidth -t 1,2 --bw-mib 8 --json >"$T/b.json"
    check_json "$T/b.json"
    $PY - "$T/b.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert {(r["test"], r["threads"]) for r in rows} == {("read", 1), ("read", 2), ("int8", 1), ("int8", 2)}
m = json.load(open(sys.argv[1]))["machine"]
assert m["bw_probes"] == 2, m  # before and after
for l in m["limits"]:
    assert 0 < l["read_gbps_slowest_pattern"] <= l["read_gbps"], l
    assert l["read_pattern"].endswith((", 4 KiB pages", ", huge pages")), l
    row = [r for r in rows if r["test"] == "read" and r["threads"] == l["threads"]][0]
    assert row["median"] == l["read_gbps"], (row, l)
PY
}

@test "bench: energy is unavailable without RAPL, read from a powercap directory when there is one" {
    bn-bench --synthetic tiny -p 4 -n 2 -t 1 $FAST --rapl "$T/none" --json >"$T/e0.json"
    grep -q '"energy":[[:space:]]*"unavailable: ' "$T/e0.json"
    grep -q '"joules_per":[[:space:]]*null' "$T/e0.json"
    mkdir -p "$T/pc/intel-rapl:0/intel-rapl:0:0"
    echo 123456789 >"$T/pc/intel-rapl:0/energy_uj"
    echo 262143328850 >"$T/pc/intel-rapl:0/max_energy_range_uj"
    bn-bench --synthetic tiny -p 4 -n 2 -t 1 $FAST --rapl "$T/pc" --json >"$T/e1.json"
    grep -q '"energy":[[:space:]]*"rapl: 1 package domain' "$T/e1.json"
    $PY -c '
import json, sys
for r in json.load(open(sys.argv[1]))["rows"]:
    assert r["joules_per"] is not None and r["joules_per"] >= 0' "$T/e1.json"
}

@test "bench: --tokenize measures encode and decode of a file or generated text" {
    bn-bench --tokenize --vocab /work/shared/data/llama3-tokenizer.model --text-mib 1 -r 1 --json >"$T/t.json"
    check_json "$T/t.json"
    bn-bench --tokenize -m "$TINY" --text "$ROOT/tests/data/tok/prose.txt" -r 1 --json >"$T/t2.json"
    check_json "$T/t2.json"
    grep -q '"test":[[:space:]]*"decode"' "$T/t2.json"
    run bn-bench --tokenize -r 1 # no tokenizer: a usage error
    [ "$status" -eq 2 ]
    [[ $output == *"--tokenize measures one tokenizer: -m MODEL or --vocab RANKFILE"* ]]
}

@test "bench: --convert measures conversion of a model and of a synthetic shape" {
    bn-bench --convert --synthetic tiny -r 1 --json >"$T/c.json"
    check_json "$T/c.json"
    bn-bench --convert -m "$TINY" -r 1 --csv >"$T/c.csv"
    [ "$(wc -l <"$T/c.csv")" -eq 2 ]
    no_orphans_like /dev/shm '^bn-bench\.'
}

@test "bench: usage errors exit 2" {
    for args in "" "--synthetic nope" "--synthetic tiny -p x" "--synthetic tiny -t 0" "--synthetic tiny -r 0" \
        "--synthetic tiny -o yaml" "--synthetic tiny --kv q8" "--kernels --bandwidth" "--compare one" \
        "--synthetic tiny --bogus" "--synthetic tiny --mem-limit 12Q" "--synthetic tiny --parallel 0" \
        "--kernels --parallel 2" "--synthetic tiny --parallel 2,x" "--synthetic tiny -t 1,,2" "--synthetic tiny -p 4," \
        "--list-shapes -m x.bn" "--list-shapes -t 2" "--compare a.json b.json -p 8" "--kernels -p 16" \
        "--bandwidth -n 4" "--synthetic tiny -p 0 -n 0" \
        `# options a mode would ignore (each ran without a word), a mode without its input` \
        "--tokenize" "--tokenize --synthetic tiny" "--tokenize -m a.bn -m b.bn" "--tokenize -m a.bn --vocab v" \
        "--tokenize --vocab v -t 2" "--tokenize --vocab v -k ref" "--synthetic tiny --vocab v" "--synthetic tiny --text t" \
        "--convert" "--convert -m a.bn -m b.bn" "--convert --synthetic tiny -t 2" "--bandwidth -m a.bn" \
        "--bandwidth --synthetic tiny" "--bandwidth --mmap" "--kernels -m a.bn" "--kernels --synthetic tiny,tiny256" \
        "--kernels --kv f32" \
        `# and any other option the mode does not read` \
        "--list-shapes -r 3" "--compare a.json b.json --seed 2" "--list-shapes --bw-mib 8" \
        "--compare a.json b.json --rapl /x" "--list-shapes --sample-ms 5" "--compare a.json b.json --mem-limit 1G" \
        "--synthetic tiny --verify 1" "--synthetic tiny --verify 2,1"; do
        run bn-bench $args
        [ "$status" -eq 2 ] || { echo "args: $args -> $status"; return 1; }
    done
    run bn-bench --list-shapes --seed 3
    [ "${lines[0]}" = "bn-bench: --seed does nothing with --list-shapes" ]
    run bn-bench --synthetic nope
    [[ $output == *"unknown shape 'nope' (known: tiny, tiny256, small-odd, odd, 2b4t, 7b, 13b, 30b, 70b, 100b)"* ]]
}

@test "bench: an unknown kernel set or a context too short is a data error naming the choices" {
    run_split "$T/out" bn-bench --synthetic tiny -p 4 -n 2 -k nosuch $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"no kernel set 'nosuch'"*"ref:t2"* ]]
    # with a model file too: the sets named; an unknown layout refused, not ignored
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    run_split "$T/out" bn-bench -m "$T/tiny.bn" -p 4 -n 2 -k nosuch $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"no kernel set 'nosuch' (the sets: auto, ref"* ]]
    run_split "$T/out" bn-bench -m "$T/tiny.bn" -p 4 -n 2 -k ref:zz $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"'zz' is not a layout"* ]]
    run_split "$T/out" bn-bench --synthetic tiny -p 512 -n 2 $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"needs 512 positions"*"context is 256"* ]]
    run_split "$T/out" bn-bench -m "$T/tiny.bn" -p 512 -n 2 $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [ "$err" = "bn-bench: $T/tiny.bn: a test needs 512 positions, the model's context is 256" ]
}

@test "bench: tests that would measure nothing or a made-up figure are usage errors; a --parallel --prompt-file run needs no -p context" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    printf 'Once upon a time there was a little girl' >"$T/p.txt"
    run_split "$T/out" bn-bench -m "$T/tiny.bn" -p 0 -n 0 --parallel 2 -t 1 $FAST
    [ "$status" -eq 2 ]
    [[ $err == *"nothing to measure: -p 0 and -n 0"* ]]
    for n in 0 1; do
        run_split "$T/out" bn-bench -m "$T/tiny.bn" -p 0 -n $n -t 1 $FAST --prompt-file "$T/p.txt"
        [ "$status" -eq 2 ]
        [[ $err == *"--prompt-file times an answer's decoding: -n 2 or more"* ]]
    done
    run_split "$T/out" bn-bench -m "$T/tiny.bn" -p 8 -n 8 --parallel 2 -t 1 $FAST --prompt-file "$T/p.txt"
    [ "$status" -eq 2 ]
    [[ $err == *"-p does not apply"* ]]
    # the batched texts are answered for one -n: a second value would go unmeasured
    run_split "$T/out" bn-bench -m "$T/tiny.bn" -n 8,16 --parallel 2 -t 1 $FAST --prompt-file "$T/p.txt"
    [ "$status" -eq 2 ]
    [[ $err == *"for one -n: give one value"* ]]
    # the default -p (128) and -n 200 would not fit the context of 256, but the texts are the prompts here
    bn-bench -m "$T/tiny.bn" -n 200 --parallel 2 -t 1 $FAST --prompt-file "$T/p.txt" --json >"$T/par.json"
    $PY -c 'import json, sys; rows = json.load(open(sys.argv[1]))["rows"]; assert len(rows) == 2, rows' "$T/par.json"
}

@test "bench: a model from standard input ('-') is read once, for every kernel set and repetition; '-' names one input" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    bn-bench -m - -k ref,auto -p 4 -n 2 -t 1 $FAST --json <"$T/tiny.bn" >"$T/e2e.json"
    $PY -c 'import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert len(rows) == 4 and all(r["model"] == "-" for r in rows), rows' "$T/e2e.json"
    bn-bench --convert -m - -r 2 --json <"$T/tiny.bn" >"$T/conv.json"
    $PY -c 'import json, sys; r = json.load(open(sys.argv[1]))["rows"]; assert len(r[0]["samples"]) == 2, r' "$T/conv.json"
    run_split "$T/out" bn-bench --compare - - </dev/null
    [ "$status" -eq 2 ]
    [[ $err == *"standard input can be read once"* ]]
    [ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'bn-bench-copy-*' -newer "$T/tiny.bn" 2>/dev/null)" ]
}

@test "bench: a model from a pipe (<(...)) is copied once too; errors about a copy name what was given" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    # a named pipe: its rows carry the name given, not the copy's descriptor
    mkfifo "$T/piped.bn"
    cat "$T/tiny.bn" >"$T/piped.bn" &
    bn-bench -m "$T/piped.bn" -k ref,auto -p 4 -n 0 -t 1 $FAST --json >"$T/e2e.json"
    wait
    $PY -c 'import json, platform, sys
rows = json.load(open(sys.argv[1]))["rows"]
# loaded twice (ref, then the set auto picks) from what the pipe gave once
assert (len(rows) == 2 or platform.machine() != "x86_64") and rows[0]["kernel"] == "ref", rows
assert all(r["model"] == "piped" for r in rows), rows' "$T/e2e.json"
    bn-bench --convert -m <(cat "$T/tiny.bn") -r 2 --json >"$T/conv.json"
    $PY -c 'import json, sys; r = json.load(open(sys.argv[1]))["rows"]; assert len(r[0]["samples"]) == 2, r' "$T/conv.json"
    run_split "$T/out" bn-bench -m - -p 4 -n 0 -t 1 $FAST </dev/null
    expect_one_line_error "$status" "$err" bn-bench
    [ "$err" = "bn-bench: -: too short to be a model file" ]
    head -c 100 "$T/tiny.bn" >"$T/short.bn"
    run_split "$T/out" bn-bench -m <(cat "$T/short.bn") -p 4 -n 0 -t 1 $FAST
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == "bn-bench: /dev/fd/"*": truncated"* ]]
}

@test "bench: -k naming one set twice (or auto and the set it picks) measures it once; a misspelt set is said before the probe" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    bn-bench -m "$T/tiny.bn" -k auto,ref,ref -p 4 -n 0 -t 1 $FAST --json >"$T/k.json"
    auto=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["rows"][0]["kernel"])' "$T/k.json")
    bn-bench -m "$T/tiny.bn" -k "$auto,auto,ref" -p 4 -n 0 -t 1 $FAST --json >"$T/k2.json"
    for f in k k2; do
        $PY -c 'import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
ks = [r["kernel"] for r in rows]
assert len(ks) == len(set(ks)) == (1 if sys.argv[2] == "ref" else 2), ks' "$T/$f.json" "$auto"
    done
    # the default 1 GiB probe would take seconds: the error comes first
    run_split "$T/out" timeout 2 bn-bench --synthetic tiny -k avx513 -p 4 -n 0
    expect_one_line_error "$status" "$err" bn-bench
    [[ $err == *"no kernel set 'avx513'"* ]]
}

@test "bench: speculative rows name their layout and kernel set: --compare pairs each set with itself" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    bn-bench -m "$T/tiny.bn" -p 8 -n 0 -t 1 $FAST --verify 2 -k ref,auto --json >"$T/v1.json"
    bn-bench -m "$T/tiny.bn" -p 8 -n 0 -t 1 $FAST --verify 2 -k auto,ref --json >"$T/v2.json"
    $PY -c 'import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
text = [r for r in rows if r["kind"] == "text"]
assert len(text) == 4 and all(r["layout"] == "t2" and r["kernel"] for r in text), text' "$T/v1.json"
    bn-bench --compare "$T/v1.json" "$T/v2.json" --json >"$T/cmp.json"
    $PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"] if isinstance(d, dict) else d
keys = [(r.get("kernel"), r.get("test")) for r in rows]
assert len(keys) == 6 and len(set(keys)) == 6, keys' "$T/cmp.json"
    # and the markdown table names them
    bn-bench -m "$T/tiny.bn" -p 8 -n 0 -t 1 $FAST --verify 2 -k ref | grep -q '^| tiny (t2/ref) | 1 | pass 2 @8 |'
}

@test "bench: --json stays UTF-8 with a label cut inside a character or a file name that is not UTF-8" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    n="$T/$(printf 'x%.0s' $(seq 39))é.txt"
    printf 'It was a truth very generally felt in the parish' >"$n"
    bn-bench -m "$T/tiny.bn" -p 0 -n 4 -t 1 $FAST --prompt-file "$n" --json >"$T/a.json"
    $PY -m json.tool "$T/a.json" >/dev/null
    cp "$T/tiny.bn" "$T/bad"$'\xff'"name.bn"
    bn-bench -m "$T/bad"$'\xff'"name.bn" -p 4 -n 0 -t 1 $FAST --json >"$T/b.json"
    $PY -c 'import json, sys; r = json.load(open(sys.argv[1]))["rows"]; assert r[0]["model"] == "bad\ufffdname", r' "$T/b.json"
}

@test "bench: --tokenize of an empty text is an error, not a rate of 0" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    : >"$T/empty.txt"
    run_split "$T/out" bn-bench --tokenize -m "$T/tiny.bn" --text "$T/empty.txt" -r 1
    expect_one_line_error "$status" "$err" bn-bench
    [ "$err" = "bn-bench: $T/empty.txt: no text" ]
    [ ! -s "$T/out" ]
}

@test "bench: --kernels -k measures the output head in each named set's instructions, once a name" {
    avx2=0 sets=ref,auto
    if grep -qw avx2 /proc/cpuinfo && grep -qw f16c /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
        avx2=1 sets=ref,avx2:t2,avx2:b3,auto
    fi
    bn-bench --kernels --synthetic tiny -t 1 $FAST -k $sets --json >"$T/k.json"
    check_json "$T/k.json"
    $PY - "$T/k.json" "$avx2" <<'PY'
import collections, json, sys
rows = json.load(open(sys.argv[1]))["rows"]
heads = collections.Counter((r["layout"], r["kernel"]) for r in rows if r["kernel"].startswith("head"))
kernels = {k for _, k in heads}
want = {"head-ref", "head"} | ({"head-avx2"} if sys.argv[2] == "1" else set())
assert kernels == want, kernels       # ref: the scalar loop; auto: the forward pass's ("head")
assert all(n == 1 for n in heads.values()), heads  # avx2 named twice: measured once
assert {t for t, k in heads if k == "head-ref"} == {"f16", "bf16", "f32", "i8"}, heads  # q types need d % 128 == 0
PY
}

@test "bench: --bw-mib bounds the head rows' copies too" {
    normal_pass_only "the sanitizers' shadow memory is in the peak RSS"
    /usr/bin/time -f %M -o "$T/rss" bn-bench --kernels --synthetic tiny -t 1 $FAST >/dev/null
    [ "$(cat "$T/rss")" -lt 100000 ] # KiB: 256 MiB of copies without the bound
}

@test "bench: 32 thread counts each get a row" {
    bn-bench --bandwidth --bw-mib 1 -t "$(seq -s, 2 33)" --csv >"$T/bw.csv"
    grep -q '^machine,,,,,,33,' "$T/bw.csv"
}

@test "bench: a model or draft that is not there is an error before anything is measured" {
    run_split "$T/out" timeout 5 bn-bench -m "$T/nonexistent.bn" -p 4 -n 2 -t 1
    expect_one_line_error "$status" "$err" bn-bench
    [ "$err" = "bn-bench: $T/nonexistent.bn: No such file or directory" ]
    [ ! -s "$T/out" ]
}
