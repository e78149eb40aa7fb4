#!/usr/bin/env bats
# A model larger than the memory the process may take: bn_mem_available
# reads the memory cgroup's limit (v1 or v2), the model is then not copied
# into memory but streamed from its file (each layer read one ahead and
# paged out after use), and decoding gives the same tokens as with room to
# spare. The tests run bn-infer inside a memory cgroup they create under
# /sys/fs/cgroup and remove; they are skipped where cgroups cannot be made
# (no root, a read-only cgroup file system) and under the sanitizers, whose
# shadow memory would not fit the limit.

load common

setup_file() {
    local D=$BATS_FILE_TMPDIR
    # 2B4T's width, 2 layers, a 4096-token f16 head: a 53 MiB model
    $GEN --format gguf-i2_s --shape 2b4t --layers 2 --vocab 4096 --no-truth "$D/m.gguf" >/dev/null
    bn-convert -q "$D/m.gguf" -o "$D/m.bn"
    rm -f "$D/m.gguf"
}

setup() {
    normal_pass_only "memory limits below ASan's shadow memory"
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    CG=
}

teardown() {
    [ -n "$CG" ] && [ -d "$CG" ] && rmdir "$CG" 2>/dev/null || true
}

# make_cgroup BYTES: a memory cgroup with that limit in $CG and its limit
# file's name in $CG_PROCS; skips the test when none can be made.
make_cgroup() {
    local name=bn-stream-$$-$BATS_TEST_NUMBER
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then # v2
        grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
            echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || skip "no memory controller"
        CG=/sys/fs/cgroup/$name
        mkdir "$CG" 2>/dev/null && echo "$1" >"$CG/memory.max" 2>/dev/null || skip "cannot make a memory cgroup"
        echo 0 >"$CG/memory.swap.max" 2>/dev/null || true
    elif [ -d /sys/fs/cgroup/memory ]; then # v1
        CG=/sys/fs/cgroup/memory/$name
        mkdir "$CG" 2>/dev/null && echo "$1" >"$CG/memory.limit_in_bytes" 2>/dev/null ||
            skip "cannot make a memory cgroup"
        echo 0 >"$CG/memory.swappiness" 2>/dev/null || true
    else
        skip "no cgroup file system"
    fi
}

# in_cgroup CMD...: runs CMD inside $CG.
in_cgroup() {
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
}

@test "a model larger than its memory cgroup streams from its file: the same tokens, and a warning" {
    make_cgroup $((40 << 20))
    seq 1 24 | tr '\n' ' ' >"$T/prompt.ids"
    bn-infer -m "$D/m.bn" -t 2 --temp 0 -n 24 <"$T/prompt.ids" >"$T/free.out" 2>"$T/free.err"
    in_cgroup bn-infer -m "$D/m.bn" -t 2 --temp 0 -n 24 <"$T/prompt.ids" >"$T/cg.out" 2>"$T/cg.err"
    cmp "$T/free.out" "$T/cg.out"
    [ "$(wc -w <"$T/cg.out")" -eq 24 ]
    grep -q 'larger than the memory left.*streaming it from the file' "$T/cg.err"
    ! grep -q 'streaming' "$T/free.err" || false
    # --mmap streams the same way and agrees too
    in_cgroup bn-infer -m "$D/m.bn" --mmap -t 1 --temp 0 -n 24 <"$T/prompt.ids" >"$T/mm.out" 2>/dev/null
    cmp "$T/free.out" "$T/mm.out"
}

@test "the memory left is the cgroup's: the default KV budget follows its limit" {
    make_cgroup $((48 << 20))
    budget() { sed -n 's/.*KV budget \([0-9.]*\) MiB.*/\1/p' "$1" | head -1; }
    # 16 sequences of 4096 positions would take 320 MiB: the machine's
    # memory grants them, 48 MiB leaves the floor of one context
    echo 1 2 3 | bn-infer -m "$D/m.bn" -t 1 --temp 0 -n 2 --parallel 16 -v >/dev/null 2>"$T/free.err"
    echo 1 2 3 | in_cgroup bn-infer -m "$D/m.bn" -t 1 --temp 0 -n 2 --parallel 16 -v >/dev/null 2>"$T/cg.err"
    local free cg
    free=$(budget "$T/free.err")
    cg=$(budget "$T/cg.err")
    [ -n "$free" ]
    [ -n "$cg" ]
    awk -v f="$free" -v c="$cg" 'BEGIN { exit !(c <= 20 && f >= 320) }'
}
