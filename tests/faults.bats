#!/usr/bin/env bats
# Faults around the programs rather than in their input: a full disk, a
# read-only directory, signals in the middle of a write, a pipe whose
# reader goes away, standard streams closed or cut short. In every case no
# partial output file is left (temporaries included), the exit status and
# one line on stderr say what happened, and a rerun works.
#
# Mounting needs root (and a kernel that lets this container mount tmpfs);
# those tests skip cleanly otherwise. The named-temporary fallback of
# lib/io.c (file systems without O_TMPFILE) is forced with a tiny
# LD_PRELOAD shim that makes open(O_TMPFILE) fail with EOPNOTSUPP.

load common

setup_file() {
    local d=$BATS_FILE_TMPDIR
    cat >"$d/notmpfile.c" <<'C'
/* open(2) without O_TMPFILE, as on a file system that lacks it */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
static int call(const char *sym, const char *path, int flags, mode_t mode)
{
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, sym);
    return real(path, flags, mode);
}
#define WRAP(name) \
    int name(const char *path, int flags, ...) \
    { \
        va_list ap; \
        va_start(ap, flags); \
        mode_t mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0; \
        va_end(ap); \
        return call(#name, path, flags, mode); \
    }
WRAP(open)
WRAP(open64)
C
    cc -shared -fPIC -o "$d/notmpfile.so" "$d/notmpfile.c" -ldl
    bn-convert "$TINY" -o "$d/tiny.bn"      # float (bf16) weights
    bn-quant "$d/tiny.bn" -o "$d/tq.bn"     # ternary: what bn-quant makes of it, bn-pack's input
}

setup() {
    T=$BATS_TEST_TMPDIR
    F=$BATS_FILE_TMPDIR
    MOUNTS=()
}

teardown() {
    local m
    for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
}

# mount_tmpfs DIR OPTIONS: a small tmpfs at DIR, or skip the test.
mount_tmpfs() {
    mkdir -p "$1"
    mount -t tmpfs -o "$2" tmpfs "$1" 2>/dev/null || skip "cannot mount tmpfs here (needs root)"
    MOUNTS+=("$1")
}

# without_tmpfile CMD...: runs CMD with open(O_TMPFILE) failing, so outputs
# take lib/io.c's named-temporary path. ASan wants to be first in the
# library list; the shim only wraps open, so that check is waived.
without_tmpfile() {
    LD_PRELOAD=$F/notmpfile.so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 "$@"
}

@test "the O_TMPFILE shim works (the fallback really runs)" {
    run without_tmpfile bn-convert "$TINY" -o "$T/x.bn"
    [ "$status" -eq 0 ]
    cmp "$T/x.bn" "$F/tiny.bn"
    # strace-free proof: a program stopped mid-write has a dot-file
    mkfifo "$T/fifo"
    without_tmpfile bn-quant "$T/fifo" -o "$T/y.bn" 2>/dev/null &
    pid=$!
    exec 7>"$T/fifo"
    head -c 200000 "$F/tiny.bn" >&7
    sleep 0.5
    ls -A "$T" | grep -q '^\.y\.bn\.'
    kill -TERM $pid
    exec 7>&-
    wait $pid || true
}

@test "full disk: every writer fails with one line, leaves nothing, and a rerun elsewhere works" {
    mount_tmpfs "$T/full" size=1m
    # convert, quant, pack: a 10 MB model into 1 MB; both temporary kinds
    for wrap in "" without_tmpfile; do
        run_split /dev/null $wrap bn-convert "$TINY" -o "$T/full/x.bn"
        expect_one_line_error "$status" "$err" bn-convert
        [[ $err == *"No space left on device"* ]]
        run_split /dev/null $wrap bn-quant "$F/tiny.bn" -o "$T/full/q.bn"
        expect_one_line_error "$status" "$err" bn-quant
        [[ $err == *"No space left on device"* ]]
        run_split /dev/null $wrap bn-pack --layout i2s "$F/tq.bn" -o "$T/full/p.bn"
        expect_one_line_error "$status" "$err" bn-pack
        [[ $err == *"No space left on device"* ]]
        [ -z "$(ls -A "$T/full")" ]
    done
    # bn-tokenize: 3.6 MB of ids
    awk '{ s = s $0 "\n" } END { for (i = 0; i < 4000; i++) printf "%s", s }' "$ROOT/tests/data/tok/prose.txt" >"$T/big.txt"
    run_split /dev/null bn-tokenize -m "$TINY" "$T/big.txt" -o "$T/full/ids"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"No space left on device"* ]]
    [ -z "$(ls -A "$T/full")" ]
    # the same to standard output on /dev/full
    for prog in "bn-convert $TINY" "bn-quant $F/tiny.bn" "bn-pack $F/tq.bn" "bn-tokenize -m $TINY $T/big.txt"; do
        run_split /dev/null sh -c "exec $BN_BIN/$prog >/dev/full"
        expect_one_line_error "$status" "$err" "${prog%% *}"
        [[ $err == *"No space left on device"* ]]
    done
    # a rerun with room works
    bn-convert "$TINY" -o "$T/x.bn"
    cmp "$T/x.bn" "$F/tiny.bn"
}

@test "a file that fits exactly, then a disk that fills at commit, are both handled" {
    mount_tmpfs "$T/small" size=12m
    bn-convert "$TINY" -o "$T/small/a.bn"
    cmp "$T/small/a.bn" "$F/tiny.bn"
    # a second copy no longer fits: the first stays whole
    run_split /dev/null bn-convert "$TINY" -o "$T/small/b.bn"
    expect_one_line_error "$status" "$err" bn-convert
    cmp "$T/small/a.bn" "$F/tiny.bn"
    [ "$(ls -A "$T/small")" = a.bn ]
    # replacing the only file fails too (old and new cannot both exist), and keeps it
    run_split /dev/null bn-convert "$TINY" -o "$T/small/a.bn"
    expect_one_line_error "$status" "$err" bn-convert
    cmp "$T/small/a.bn" "$F/tiny.bn"
    [ "$(ls -A "$T/small")" = a.bn ]
}

@test "read-only output directory: a clear error, nothing written, the old file kept" {
    mkdir -p "$T/ro"
    cp "$F/tiny.bn" "$T/ro/keep.bn"
    mount_tmpfs "$T/ro" size=16m
    cp "$F/tiny.bn" "$T/ro/keep.bn"
    mount -o remount,ro "$T/ro" || skip "cannot remount read-only"
    for wrap in "" without_tmpfile; do
        run_split /dev/null $wrap bn-convert "$TINY" -o "$T/ro/keep.bn"
        expect_one_line_error "$status" "$err" bn-convert
        [[ $err == *"keep.bn: cannot create: Read-only file system"* ]]
        run_split /dev/null $wrap bn-tokenize -m "$TINY" "$ROOT/tests/data/tok/prose.txt" -o "$T/ro/ids"
        expect_one_line_error "$status" "$err" bn-tokenize
        [[ $err == *"Read-only file system"* ]]
    done
    [ "$(ls -A "$T/ro")" = keep.bn ]
    cmp "$T/ro/keep.bn" "$F/tiny.bn"
    # an ordinary directory: the rerun works
    bn-tokenize -m "$TINY" "$ROOT/tests/data/tok/prose.txt" -o "$T/ids"
    [ -s "$T/ids" ]
}

# interrupt SIGNAL [fallback]: bn-quant reading a stalled pipe, with its
# output open, gets SIGNAL; echoes the exit status. The bytes fed are
# enough for the head and some tensors, not the whole model. env execs, so
# $! is bn-quant itself; a background job starts with SIGINT ignored, so
# env gives it the default action back.
interrupt() {
    local sig=$1 pre=()
    [ "${2:-}" = fallback ] &&
        pre=(env LD_PRELOAD="$F/notmpfile.so" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
    rm -f "$T/fifo"
    mkfifo "$T/fifo"
    "${pre[@]}" env --default-signal "$BN_BIN/bn-quant" "$T/fifo" -o "$T/out/q.bn" 2>"$T/err" &
    local pid=$!
    exec 7>"$T/fifo"
    head -c 3000000 "$F/tiny.bn" >&7
    sleep 0.3
    # mid-write: the output is open (named or not)
    ls -l /proc/$pid/fd | grep -q "$T/out/" || { echo "no output open"; return 1; }
    kill -"$sig" $pid
    local st=0
    wait $pid || st=$?
    exec 7>&-
    echo "$st"
}

@test "SIGINT, SIGTERM, SIGHUP, SIGKILL mid-write leave no file (O_TMPFILE), and a rerun works" {
    mkdir -p "$T/out"
    for sig in INT:130 TERM:143 HUP:129 KILL:137; do
        st=$(interrupt "${sig%%:*}")
        [ "$st" = "${sig##*:}" ] || { echo "SIG${sig%%:*}: status $st"; false; }
        [ -z "$(ls -A "$T/out")" ] || { echo "SIG${sig%%:*} left:"; ls -la "$T/out"; false; }
    done
    bn-quant "$F/tiny.bn" -o "$T/out/q.bn"
    cmp "$T/out/q.bn" "$F/tq.bn"
}

@test "SIGINT, SIGTERM, SIGHUP mid-write leave no file on the named-temporary fallback" {
    mkdir -p "$T/out"
    for sig in INT:130 TERM:143 HUP:129; do
        st=$(interrupt "${sig%%:*}" fallback)
        [ "$st" = "${sig##*:}" ] || { echo "SIG${sig%%:*}: status $st"; false; }
        [ -z "$(ls -A "$T/out")" ] || { echo "SIG${sig%%:*} left:"; ls -la "$T/out"; false; }
    done
    # SIGKILL cannot be caught: the dot-file stays (only O_TMPFILE avoids
    # that), but it is hidden, never the output's name, and a rerun works.
    st=$(interrupt KILL fallback)
    [ "$st" = 137 ]
    [ ! -e "$T/out/q.bn" ]
    without_tmpfile bn-quant "$F/tiny.bn" -o "$T/out/q.bn"
    cmp "$T/out/q.bn" "$F/tq.bn"
}

@test "a SIGINT that the caller ignores (nohup-style) is left ignored" {
    mkdir -p "$T/out"
    rm -f "$T/fifo"; mkfifo "$T/fifo"
    ( trap '' INT; exec env LD_PRELOAD=$F/notmpfile.so ASAN_OPTIONS=verify_asan_link_order=0 \
        "$BN_BIN/bn-quant" "$T/fifo" -o "$T/out/q.bn" ) &
    pid=$!
    exec 7>"$T/fifo"
    head -c 3000000 "$F/tiny.bn" >&7
    sleep 0.3
    kill -INT $pid
    sleep 0.3
    kill -0 $pid # still running
    tail -c +3000001 "$F/tiny.bn" >&7
    exec 7>&-
    wait $pid
    cmp "$T/out/q.bn" "$F/tq.bn"
    [ "$(ls -A "$T/out")" = q.bn ]
}

@test "the reader of a pipe going away ends every writer quietly (SIGPIPE status)" {
    # well over a pipe's buffer of output each: the programs widen a pipe
    # they write to up to 1 MiB (io.c), so ~2.9 MB of text
    awk '{ s = s $0 "\n" } END { for (i = 0; i < 4000; i++) printf "%s", s }' "$ROOT/tests/data/tok/prose.txt" >"$T/t.txt"
    bn-tokenize -m "$TINY" "$T/t.txt" >"$T/t.ids"
    for cmd in "bn-convert $TINY" "bn-quant $F/tiny.bn" "bn-pack $F/tq.bn" \
               "bn-tokenize -m $TINY $T/t.txt" "bn-tokenize -m $TINY -d $T/t.ids" \
               "bn-tokenize -m $TINY -b $T/t.txt"; do
        run bash -c "set -o pipefail; $BN_BIN/$cmd 2>'$T/err' | head -c 1 >/dev/null"
        [ "$status" -eq 141 ] || { echo "$cmd: status $status"; false; }
        [ ! -s "$T/err" ] || { echo "$cmd:"; cat "$T/err"; false; }
    done
}

@test "input cut short (a writer dies mid-stream): a clear error, no output, rerun works" {
    mkdir -p "$T/out"
    for cut in 10 5000 3000000; do
        run_split /dev/null sh -c "head -c $cut '$F/tiny.bn' | exec $BN_BIN/bn-quant -o '$T/out/q.bn'"
        expect_one_line_error "$status" "$err" bn-quant
        [[ $err == *"truncated"* ]]
        run_split /dev/null sh -c "head -c $cut '$F/tq.bn' | exec $BN_BIN/bn-pack -o '$T/out/p.bn'"
        expect_one_line_error "$status" "$err" bn-pack
        run_split /dev/null sh -c "head -c $cut '$F/tiny.bn' | exec $BN_BIN/bn-convert - -o '$T/out/c.bn'"
        expect_one_line_error "$status" "$err" bn-convert
        [ -z "$(ls -A "$T/out")" ]
    done
    # a token stream cut inside a binary record
    bn-tokenize -m "$TINY" -b "$ROOT/tests/data/tok/prose.txt" >"$T/p.bin"
    run_split "$T/out/txt" sh -c "head -c 50 '$T/p.bin' | exec $BN_BIN/bn-tokenize -m '$TINY' -d"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"truncated"* ]]
    bn-quant "$F/tiny.bn" -o "$T/out/q.bn"
    cmp "$T/out/q.bn" "$F/tq.bn"
}

@test "closed standard streams: errors, never reading or writing our own files" {
    mkdir -p "$T/out"
    # stdin closed: reading '-' fails loudly; the output file never appears
    run_split /dev/null sh -c "exec $BN_BIN/bn-quant -o '$T/out/q.bn' <&-"
    expect_one_line_error "$status" "$err" bn-quant
    run_split /dev/null sh -c "exec $BN_BIN/bn-tokenize -m '$TINY' -o '$T/out/ids' <&-"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"Bad file descriptor"* ]]
    [ -z "$(ls -A "$T/out")" ]
    # stdout closed: a write error, not silence
    for prog in "bn-convert $TINY" "bn-tokenize -m $TINY $ROOT/tests/data/tok/prose.txt"; do
        run_split /dev/null sh -c "exec $BN_BIN/$prog >&-"
        expect_one_line_error "$status" "$err" "${prog%% *}"
        [[ $err == *"Bad file descriptor"* ]]
    done
    # stdin closed while writing a file by name: the file is whole
    sh -c "exec $BN_BIN/bn-convert '$TINY' -o '$T/out/c.bn' <&-"
    cmp "$T/out/c.bn" "$F/tiny.bn"
}

@test "standard input that cannot be read (a directory): the reason, not 'truncated' or an empty answer" {
    for prog in "bn-pack" "bn-quant" "bn-convert -" "bn-infer -m - -p hi" "bn-infer -m $F/tq.bn -cnv -n 2" \
        "bn-infer -m $F/tq.bn -n 2"; do
        run_split /dev/null $prog <"$T"
        expect_one_line_error "$status" "$err" "${prog%% *}"
        [[ $err == *"-: "*"Is a directory" ]] || { echo "$prog: $err"; false; }
    done
}

@test "a pipe given by name (process substitution, FIFO) is read once, as a bn stream" {
    # sniffing the format used to eat the first bytes of a pipe
    bn-quant <(bn-convert "$TINY") -o "$T/q.bn"
    cmp "$T/q.bn" "$F/tq.bn"
    run_split /dev/null bn-convert --info <(cat "$TINY/model.safetensors")
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"not a bn model file"* ]]
    # a GGUF file is read by seeking: on a stream it is named, with what to do
    $GEN --format gguf-i2_s --shape tiny --no-truth "$T/g.gguf" >/dev/null
    for prog in "bn-convert --info" "bn-infer -p hi -n 1 -m"; do
        run_split /dev/null $prog - <"$T/g.gguf"
        expect_one_line_error "$status" "$err" "${prog%% *}"
        [[ $err == *"-: a GGUF file, which is read from a file, not a stream (give its path)" ]]
    done
}

@test "-o replacing a file keeps its permissions; through a symbolic link it replaces the file the link names" {
    for shim in "" without_tmpfile; do # O_TMPFILE, and the named-temporary fallback
        rm -rf "${T:?}"/*
        # a private file stays private (it became 0644 before)
        echo old >"$T/m.bn"
        chmod 600 "$T/m.bn"
        $shim bn-quant "$F/tiny.bn" -o "$T/m.bn"
        [ "$(stat -c %a "$T/m.bn")" = 600 ] || { echo "$shim: mode $(stat -c %a "$T/m.bn")"; false; }
        cmp "$T/m.bn" "$F/tq.bn"
        # its permission bits, not a set-user-id bit
        chmod 4750 "$T/m.bn"
        $shim bn-quant "$F/tiny.bn" -o "$T/m.bn"
        [ "$(stat -c %a "$T/m.bn")" = 750 ] || { echo "$shim: mode $(stat -c %a "$T/m.bn")"; false; }
        # a link stays a link; its target (relative, through a second link) gets the model
        mkdir -p "$T/d"
        echo old >"$T/d/target.bn"
        chmod 640 "$T/d/target.bn"
        ln -s d/target.bn "$T/link1.bn"
        ln -s link1.bn "$T/link2.bn"
        $shim bn-quant "$F/tiny.bn" -o "$T/link2.bn"
        [ -L "$T/link2.bn" ] && [ -L "$T/link1.bn" ]
        cmp "$T/d/target.bn" "$F/tq.bn"
        [ "$(stat -c %a "$T/d/target.bn")" = 640 ]
        # a dangling link: the file it names is created
        ln -s new.bn "$T/dangling.bn"
        $shim bn-quant "$F/tiny.bn" -o "$T/dangling.bn"
        [ -L "$T/dangling.bn" ]
        cmp "$T/new.bn" "$F/tq.bn"
        # a loop of links is refused as a shell's redirection refuses it (the link was replaced)
        ln -s loop2.bn "$T/loop1.bn"
        ln -s loop1.bn "$T/loop2.bn"
        run_split "$T/out" $shim bn-quant "$F/tiny.bn" -o "$T/loop1.bn"
        expect_one_line_error "$status" "$err" bn-quant
        [[ $err == "bn-quant: $T/loop1.bn: Too many levels of symbolic links" ]]
        [ -L "$T/loop1.bn" ]
        rm "$T/loop1.bn" "$T/loop2.bn" "$T/out"
        # a new file: the umask's mode, as a shell redirection makes it
        (umask 027 && $shim bn-quant "$F/tiny.bn" -o "$T/fresh.bn")
        [ "$(stat -c %a "$T/fresh.bn")" = 640 ]
        [ -z "$(ls -A "$T" | grep '^\.')" ] # no temporary left
    done
}

@test "an output named /dev/stdout, /dev/stderr or /dev/fd/N is written into that open stream, never renamed over the file behind it" {
    # the shell's file behind the descriptor was replaced: what was in it (a log opened with >>) lost
    printf 'line1\n' >"$T/log"
    { echo start; printf Hi | bn-tokenize -m "$F/tiny.bn" -o /dev/stdout; echo; echo end; } >>"$T/log"
    [ "$(cat "$T/log")" = "$(printf 'line1\nstart\n4064 72 105\n\nend')" ]
    printf 'old\n' >"$T/q.log"
    bn-convert "$TINY" | bn-quant -q --report /dev/stderr -o /dev/null 2>>"$T/q.log"
    [ "$(head -1 "$T/q.log")" = old ] && grep -q '^blk.0.ffn_down.weight ' "$T/q.log"
    # through a link of one's own too, and a descriptor by number
    ln -s /dev/stdout "$T/out-link"
    { echo before; bn-quant "$F/tiny.bn" -o "$T/out-link"; echo after; } >"$T/both"
    [ "$(head -c 7 "$T/both")" = before ] && [ "$(tail -c 6 "$T/both")" = after ]
    tail -c +8 "$T/both" | head -c -6 | cmp - "$F/tq.bn"
    # a relative link into /proc (joined, then made canonical)
    mkdir -p "$T/a/b"
    ln -s "$(realpath --relative-to="$T/a/b" /proc)/self/fd/1" "$T/a/b/rel"
    printf 'old\n' >"$T/rel.log"
    printf Hi | bn-tokenize -m "$F/tiny.bn" -o "$T/a/b/rel" >>"$T/rel.log"
    [ "$(cat "$T/rel.log")" = "$(printf 'old\n4064 72 105')" ]
    printf Hi | bn-tokenize -m "$F/tiny.bn" -o /dev/fd/9 9>>"$T/log"
    [ "$(tail -1 "$T/log")" = "4064 72 105" ]
    run_split "$T/out" bn-tokenize -m "$F/tiny.bn" -o /dev/fd/8 </dev/null
    expect_one_line_error "$status" "$err" bn-tokenize
    [ "$err" = "bn-tokenize: /dev/fd/8: cannot open: Bad file descriptor" ]
    run_split "$T/out" bn-tokenize -m "$F/tiny.bn" -o /dev/fd/7 </dev/null 7<"$T/log" # open for reading only
    expect_one_line_error "$status" "$err" bn-tokenize
    [ "$err" = "bn-tokenize: /dev/fd/7: cannot open: Bad file descriptor" ]
    # the copy of the descriptor is closed and nothing leaks
    if command -v valgrind >/dev/null && [ -z "${BN_SANITIZED:-}" ]; then
        printf Hi | valgrind -q --leak-check=full --error-exitcode=99 bn-tokenize -m "$F/tiny.bn" -o /dev/stdout >"$T/v"
        [ "$(cat "$T/v")" = "4064 72 105" ]
    fi
}

@test "-o naming a FIFO or a device writes into it in place, never renames a file over it" {
    # a temporary renamed over /dev/null would replace the device itself
    # (as root); a FIFO is checked here instead, the same path without risk
    mkfifo "$T/fifo"
    for prog in "bn-convert $TINY" "bn-quant $F/tiny.bn" "bn-pack $F/tq.bn"; do
        timeout 30 cat "$T/fifo" >"$T/got" &
        reader=$!
        $prog -o "$T/fifo"
        wait "$reader" || true
        [ -p "$T/fifo" ] || { echo "$prog: the FIFO was replaced"; false; }
        $prog -o - | cmp - "$T/got"
    done
    [ -c /dev/null ] && bn-quant "$F/tiny.bn" -o /dev/null && [ -c /dev/null ]
    ! ls -A /dev | grep -q '^\.null\.' || false
    run_split /dev/null bn-quant "$F/tiny.bn" -o "$T"
    expect_one_line_error "$status" "$err" bn-quant
    [[ $err == *"Is a directory"* ]]
}
