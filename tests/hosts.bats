#!/usr/bin/env bats
# examples/parallel-hosts.sh over a real ssh transport: two sshd instances
# on loopback addresses (127.0.0.2 and 127.0.0.3, their own host keys, a key
# made for the test, run as the current user) answer a prompt file cut into
# chunks; every record is answered once, in input order, byte for byte as
# one bn-infer --parallel run answers it. A host that cannot be reached and
# one whose bn-infer fails mid-chunk get their chunks retried elsewhere.
# The sshd instances listen on 127.0.0.x only and are stopped in
# teardown_file; without Debian's openssh-server the ssh tests are skipped
# and say why.

load common

SSHD=/usr/sbin/sshd

# free_port ADDR: a TCP port nothing listens on at ADDR (for the moment)
free_port() {
    $PY -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

# start_sshd NAME ADDR: an sshd in the foreground (-D) in the background,
# listening on ADDR only, its pid in $D/NAME.pid; its port in $D/NAME.port
start_sshd() {
    local name=$1 addr=$2 port try
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$D/$name.hostkey" || return 1
    for try in 1 2 3 4 5; do
        port=$(free_port "$addr") || return 1
        cat >"$D/$name.config" <<EOF
ListenAddress $addr:$port
HostKey $D/$name.hostkey
PidFile $D/$name.sshd.pid
AuthorizedKeysFile $D/authorized_keys
AllowUsers $(id -un)
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PermitTTY no
AcceptEnv BN_TEST_*
SetEnv PATH=$BIN:/usr/local/bin:/usr/bin:/bin
LogLevel ERROR
EOF
        "$SSHD" -D -f "$D/$name.config" -E "$D/$name.log" </dev/null >/dev/null 2>&1 3>&- &
        echo $! >"$D/$name.pid"
        # ready when the port answers; a port taken meanwhile ends sshd
        if $PY - "$addr" "$port" "$!" <<'EOF'; then
import os, socket, sys, time
addr, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(100):
    try:
        socket.create_connection((addr, port), timeout=1).close()
        sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    time.sleep(0.1)
sys.exit(1)
EOF
            echo "$port" >"$D/$name.port"
            return 0
        fi
        stop_sshd "$name"
    done
    return 1
}

stop_sshd() {
    local f=$D/$1.pid pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
}

# Why the ssh tests cannot run here, or nothing when they can.
ssh_missing() {
    local p
    for p in "$SSHD" "$(command -v ssh)" "$(command -v ssh-keygen)"; do
        [ -x "$p" ] || { echo "openssh-server and openssh-client are needed (tools/install-deps.sh installs them)"; return; }
    done
    parallel --version 2>/dev/null | grep -q 'GNU parallel' || { echo "GNU parallel is needed (tools/install-deps.sh installs it)"; return; }
    # sshd insists on its privilege separation directory, as the package's
    # service would make it
    [ -d /run/sshd ] || mkdir -m 755 /run/sshd 2>/dev/null ||
        echo "sshd cannot start: /run/sshd is missing and cannot be made by $(id -un)"
}

setup_file() {
    D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    BIN=$(cd "$BN_BIN" && pwd)
    # 26 prompts of 1 to 12 words, an empty one among them
    tr -s ' \n' '\n\n' <"$ROOT/tests/data/infer/heldout.txt" | head -n 200 |
        awk '{ w = w (w ? " " : "") $0 } NR % 7 == 0 || NR % 11 == 0 { print w; w = "" }' |
        head -n 26 >"$D/prompts.txt"
    sed -i '9s/.*//' "$D/prompts.txt"
    # The "broken host" runs this bn-infer: it answers two records of its
    # chunk, says so on stderr and fails, as a host dying mid-chunk would.
    mkdir "$D/wrap"
    ln -s "$BIN/bn-tokenize" "$D/wrap/bn-tokenize"
    cat >"$D/wrap/bn-infer" <<EOF
#!/bin/sh
[ -n "\${BN_TEST_BROKEN:-}" ] || exec "$BIN/bn-infer" "\$@"
echo try >>"\$BN_TEST_BROKEN"
"$BIN/bn-infer" "\$@" | head -n 2
echo "broken host fails" >&2
exit 1
EOF
    chmod +x "$D/wrap/bn-infer"

    local why
    why=$(ssh_missing)
    if [ -z "$why" ]; then
        ssh-keygen -q -t ed25519 -N '' -C bn-test -f "$D/id" && cp "$D/id.pub" "$D/authorized_keys"
        if ! start_sshd h1 127.0.0.2 || ! start_sshd h2 127.0.0.3; then
            why="sshd cannot start on 127.0.0.2/127.0.0.3: $(cat "$D"/h*.log 2>/dev/null | tail -n 3 | tr '\n' ' ')"
            stop_sshd h1
            stop_sshd h2
        fi
    fi
    if [ -n "$why" ]; then
        echo "$why" >"$D/no-ssh"
        return 0
    fi
    # "broken" is h1's sshd with a variable that breaks the wrapper above;
    # "dead" is a loopback port nothing listens on.
    cat >"$D/ssh_config" <<EOF
Host h1 broken
  HostName 127.0.0.2
  Port $(cat "$D/h1.port")
Host broken
  SetEnv BN_TEST_BROKEN=$D/broken.log
Host h2
  HostName 127.0.0.3
  Port $(cat "$D/h2.port")
Host dead
  HostName 127.0.0.4
  Port $(free_port 127.0.0.4)
Host *
  User $(id -un)
  IdentityFile $D/id
  IdentitiesOnly yes
  IdentityAgent none
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile $D/known_hosts
  GlobalKnownHostsFile /dev/null
  ConnectTimeout 10
  LogLevel ERROR
EOF
    # the ssh command GNU parallel runs: logs where each chunk goes
    cat >"$D/ssh" <<EOF
#!/bin/sh
echo "\$1" >>"\${HOSTS_SSH_LOG:-/dev/null}"
exec ssh -F "$D/ssh_config" "\$@"
EOF
    chmod +x "$D/ssh"
}

teardown_file() {
    D=$BATS_FILE_TMPDIR
    stop_sshd h1
    stop_sshd h2
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    BIN=$(cd "$BN_BIN" && pwd)
    EX=$ROOT/examples/parallel-hosts.sh
    export HOSTS_SSH_LOG=$T/ssh.log
}

needs_sshd() {
    if [ -f "$D/no-ssh" ]; then
        skip "$(cat "$D/no-ssh")"
    fi
}

# one_machine NAME [bn-infer options]: the answers of one bn-infer --parallel 4
one_machine() {
    local name=$1
    shift
    bn-tokenize -m "$D/tiny.bn" -l <"$D/prompts.txt" |
        bn-infer -m "$D/tiny.bn" --parallel 4 -t 1 "$@" >"$T/$name.out"
}

# hosts NAME HOSTS [script options] -- [bn-infer options]: the script's
# answers in $T/NAME.out, its messages in $T/NAME.err, its status in $status
hosts() {
    local name=$1 list=$2
    shift 2
    status=0
    timeout 120 "$EX" --ssh "$D/ssh" -S "$list" -m "$D/tiny.bn" -np 4 -L 5 "$@" \
        >"$T/$name.out" 2>"$T/$name.err" || status=$?
    cat "$T/$name.err"
}

@test "two hosts over ssh: every record answered once, in input order, as one machine answers it" {
    needs_sshd
    [ "$(wc -l <"$D/prompts.txt")" -eq 26 ]
    one_machine one -n 6 --temp 0
    hosts two h1,h2 -B "$BIN" "$D/prompts.txt" -- -t 1 -n 6 --temp 0
    [ "$status" -eq 0 ]
    [ ! -s "$T/two.err" ]
    [ "$(wc -l <"$T/two.out")" -eq 26 ]
    cmp "$T/one.out" "$T/two.out"
    # six chunks of 5 records went out, both hosts had some
    [ "$(wc -l <"$HOSTS_SSH_LOG")" -eq 6 ]
    grep -qx h1 "$HOSTS_SSH_LOG"
    grep -qx h2 "$HOSTS_SSH_LOG"
}

@test "two hosts over ssh: seeded answers and token records in, the same as one bn-infer --parallel --seed" {
    needs_sshd
    one_machine one -n 6 --temp 1.1 --top-k 0 --seed 9
    bn-tokenize -m "$D/tiny.bn" -l <"$D/prompts.txt" >"$T/prompts.ids"
    # the bn programs found through the hosts' PATH this time (SetEnv)
    hosts two h1,h2 --seed 9 --records "$T/prompts.ids" -- -t 1 -n 6 --temp 1.1 --top-k 0
    [ "$status" -eq 0 ]
    cmp "$T/one.out" "$T/two.out"
    # another seed, other answers
    hosts other h1,h2 -B "$BIN" --seed 10 "$D/prompts.txt" -- -t 1 -n 6 --temp 1.1 --top-k 0
    [ "$status" -eq 0 ]
    ! cmp -s "$T/one.out" "$T/other.out" || false
}

@test "a dead host and one that fails mid-chunk: their chunks are retried on the others, the answers complete and identical" {
    needs_sshd
    one_machine one -n 6 --temp 0
    rm -f "$D/broken.log"
    hosts retried dead,broken,h1,h2 -B "$D/wrap" --retries 3 "$D/prompts.txt" -- -t 1 -n 6 --temp 0
    [ "$status" -eq 0 ]
    [ "$(wc -l <"$T/retried.out")" -eq 26 ]
    cmp "$T/one.out" "$T/retried.out"
    # the broken host took a chunk and failed it; the dead one was tried;
    # neither's output or messages are left
    [ -s "$D/broken.log" ]
    grep -qx dead "$HOSTS_SSH_LOG"
    [ "$(grep -cx -e h1 -e h2 -e broken "$HOSTS_SSH_LOG")" -gt 6 ]
    ! grep -q 'broken host' "$T/retried.err" || false
}

@test "a chunk that fails on every host: exit 1 and a message; a missing bn-tokenize fails its chunk" {
    needs_sshd
    mkdir "$T/half"
    ln -s "$BIN/bn-infer" "$T/half/bn-infer"
    head -n 3 "$D/prompts.txt" >"$T/three.txt"
    hosts half h1,h2 -B "$T/half" --retries 2 "$T/three.txt" -- -t 1 -n 4 --temp 0
    [ "$status" -eq 1 ]
    [ "$(tail -n 1 "$T/half.err")" = "parallel-hosts.sh: 1 chunk(s) failed on every try (their last try's output is above)" ]
    grep -q 'bn-tokenize' "$T/half.err"
    [ "$(wc -l <"$HOSTS_SSH_LOG")" -eq 2 ]
}

@test "parallel-hosts.sh: help and usage errors" {
    run "$EX" -h
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "parallel-hosts.sh — "* ]]
    [[ $output == *"--retries N"* ]]
    for args in "" "-m M P" "-S h P" "-S h -m M" "-S h -m M -np x P" "-S h -m M -L 0 P" \
        "-S h -m M --nope P" "-S h -m M P Q" "-S h -m M P -- --seed 3" "-S h -m M --records=1 P" "-S h -m"; do
        run "$EX" $args
        echo "$args: $status $output"
        [ "$status" -eq 2 ]
        [ "${#lines[@]}" -eq 1 ]
        [[ ${lines[0]} == "parallel-hosts.sh: "* ]]
    done
    run "$EX" -S h -m M "$BATS_TEST_TMPDIR/none.txt"
    [ "$status" -eq 1 ]
    [ "$output" = "parallel-hosts.sh: $BATS_TEST_TMPDIR/none.txt: cannot read the prompts" ]
}
