#!/bin/bash
# Runs the fuzz targets side by side at the lowest priority until each has
# had CPU_SECS of CPU time (or WALL_SECS of wall time pass), then prints per
# target: executions, CPU and wall seconds, final coverage, crashes.
# Usage: [RUN_TAG=-2] fuzz/run.sh [CPU_SECS per target] [WALL_SECS] [targets…]
# (RUN_TAG names the logs of a second run beside a first, on the same corpora.)
set -u
cd "$(dirname "$0")"
cpu=${1:-480}
wall=${2:-3600}
shift 2 2>/dev/null
targets=${*:-pcap pcapng builders checkpoint capture_reader}
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p target/logs artifacts
tick=$(getconf CLK_TCK)
declare -A pid start
for t in $targets; do
    mkdir -p corpus/$t artifacts/$t
    nice -n 19 $bin/$t corpus/$t -artifact_prefix=artifacts/$t/ -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >target/logs/$t${RUN_TAG:-}.log 2>&1 &
    pid[$t]=$!
    start[$t]=$(date +%s)
done
cpu_of() { awk -v k="$tick" '{print int(($14 + $15) / k)}' /proc/$1/stat 2>/dev/null || echo -1; }
declare -A used end
t0=$(date +%s)
while :; do
    running=0
    for t in $targets; do
        p=${pid[$t]}
        [ -n "${end[$t]:-}" ] && continue
        if ! kill -0 "$p" 2>/dev/null; then
            end[$t]=$(date +%s); continue
        fi
        c=$(cpu_of "$p"); used[$t]=$c
        if [ "$c" -ge "$cpu" ] || [ $(( $(date +%s) - t0 )) -ge "$wall" ]; then
            kill -INT "$p"; wait "$p" 2>/dev/null; end[$t]=$(date +%s)
        else
            running=1
        fi
    done
    [ $running = 0 ] && break
    sleep 5
done
printf '%-15s %12s %8s %8s %s\n' target execs cpu_s wall_s "final status / crashes"
for t in $targets; do
    execs=$(grep -aoE '^#[0-9]+' target/logs/$t${RUN_TAG:-}.log | tail -1 | tr -d '#')
    st=$(grep -aE '^#[0-9]+' target/logs/$t${RUN_TAG:-}.log | tail -1 | grep -aoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')
    crashes=$(ls artifacts/$t | wc -l)
    printf '%-15s %12s %8s %8s %s; %s artifacts\n' "$t" "${execs:-?}" "${used[$t]:-?}" \
        $(( ${end[$t]} - ${start[$t]} )) "$st" "$crashes"
done
