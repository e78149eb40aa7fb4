#!/bin/sh
# fuzz-campaign.sh — runs every libFuzzer target side by side for a long
# campaign (the CI's `make fuzz` gives each a few seconds). Each target runs
# from a private copy of its binary (so rebuilding the tree meanwhile changes
# nothing), at the lowest priority, in its own session, with its corpus in
# build-fuzz/corpus-NAME and its log in build-fuzz/NAME.campaign.log.
#
#   tools/fuzz-campaign.sh start SECONDS [TARGET...]   (needs make fuzz-build)
#   tools/fuzz-campaign.sh status                      executions so far
#   tools/fuzz-campaign.sh stop                        ends it early
#
# The timeout is wall-clock in libFuzzer, so it is set well above anything
# an input needs (0.2 s at most seen) to stay clear of starvation by
# higher-priority work on a shared machine; a real hang still trips it.
# Afterwards `make fuzz-merge` folds the new inputs into tests/fuzz/corpus.
set -eu
dir=build-fuzz
camp=$dir/campaign
cmd=${1:-status}

case $cmd in
start)
    secs=${2:?usage: fuzz-campaign.sh start SECONDS [TARGET...]}
    shift 2
    [ $# -gt 0 ] || set -- $(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
    mkdir -p "$camp"
    for n; do
        [ -x "$dir/$n" ] || { echo "fuzz-campaign: $dir/$n: not built (make fuzz-build)" >&2; exit 1; }
        cp "$dir/$n" "$camp/$n"
        mkdir -p "$dir/corpus-$n"
        setsid nice -n 19 "$camp/$n" -max_total_time="$secs" -timeout=60 \
            -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=262144 \
            -artifact_prefix="$dir/$n-" -print_final_stats=1 \
            "$dir/corpus-$n" "tests/fuzz/corpus/$n" \
            >"$dir/$n.campaign.log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$camp/$n.pid"
        # With autogroup scheduling, nice works only inside a session's
        # group: lower the group too, or the fuzzers compete as equals.
        # Only once the child leads its own session: before setsid() runs
        # it is still in ours, and the write would lower this shell's group.
        i=0
        while [ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$pid" ] && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i + 1))
        done
        if [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] && [ -w /proc/$pid/autogroup ]; then
            echo 19 >/proc/$pid/autogroup 2>/dev/null || true
        fi
        echo "fuzz-campaign: $n started (pid $pid, $secs s)"
    done
    date +%s >"$camp/started"
    ;;
status)
    for log in "$dir"/*.campaign.log; do
        n=$(basename "$log" .campaign.log)
        last=$(grep -E '^#[0-9]+' "$log" | tail -1 | awk '{print $1, $5, $6, $NF}')
        st=running
        pidf=$camp/$n.pid
        if [ ! -f "$pidf" ] || ! kill -0 "$(cat "$pidf")" 2>/dev/null; then st=ended; fi
        cpu=-
        [ "$st" = running ] && cpu=$(ps -o cputime= -p "$(cat "$pidf")" | tr -d ' ')
        fin=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
        bad=$(grep -cE '^==[0-9]+==ERROR|runtime error|^SUMMARY|Test unit written' "$log" || true)
        printf '%-18s %-8s cpu %-9s last %-40s final-execs %-10s findings %s\n' \
            "$n" "$st" "$cpu" "$last" "${fin:--}" "$bad"
    done
    ;;
stop)
    for pidf in "$camp"/*.pid; do
        kill -INT "$(cat "$pidf")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: fuzz-campaign.sh start SECONDS [TARGET...] | status | stop" >&2
    exit 2
    ;;
esac
