#!/usr/bin/env bash
# bench/scale/loadcurve.sh — how `resolverd check` and `resolverd serve` load times grow with the
# size of the case, to locate what is slow (issue 7). For each size it generates a case with
# bench/scale/gen.py, times `check` (wall, peak RSS) and `serve` (start → first dig answer for a
# service name, VmRSS/VmHWM then), and prints one table row. A serve that has not answered within
# LOAD_TIMEOUT seconds is profiled for PROFILE_SECS with `perf record -g` (when perf is there) and
# the hottest frames are printed, then it is stopped.
#
# Usage: bench/scale/loadcurve.sh "SIZE" ["SIZE" ...]
#   SIZE = gen.py options, e.g. "--sites 1000 --services 100 --prefixes 10000"
# Knobs: RESOLVERD_BIN=/tmp/resolverd-scale LOAD_TIMEOUT=300 PROFILE_SECS=10 SERVER_CPU=0 CLIENT_CPU=1
#        SKIP_CHECK=1 (serve only) SKIP_SERVE=1 (check only) KEEP_TMP=1
#        LOCK_FILE / LOCK_WAIT: the machine-wide benchmark lock, as in bench/compare.sh
#        QPS=1: once loaded, also measure QPS with bench/loadgen.c (DURATION=10 s each, -o
#        OUTSTANDING=200): cold (a first pass over queries.txt: new clients) and hot
#        (queries-hot.txt cycled after a WARMUP=5 s pass) — e.g. to see how the query path grows
#        with the number of sites (see bench/scale/run.sh for the warm mix)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=loadcurve
# shellcheck source=bench/scale/lib.sh
. "$ROOT/bench/scale/lib.sh"

RESOLVERD_BIN=${RESOLVERD_BIN:-/tmp/resolverd-scale}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}
PROFILE_SECS=${PROFILE_SECS:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
(( $# >= 1 )) || die "usage: bench/scale/loadcurve.sh \"--sites N --services M --prefixes P\" [...]"
[[ -x $RESOLVERD_BIN ]] || die "resolverd binary not found at $RESOLVERD_BIN (set RESOLVERD_BIN)"
[[ $LOAD_TIMEOUT =~ ^[0-9]+$ && $PROFILE_SECS =~ ^[0-9]+$ ]] || die "LOAD_TIMEOUT and PROFILE_SECS must be whole numbers"

DURATION=${DURATION:-10} WARMUP=${WARMUP:-5} OUTSTANDING=${OUTSTANDING:-200}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/resolverd-loadcurve.XXXXXX")
install_traps
take_bench_lock
setup_pinning
[[ -n ${QPS:-} ]] && build_loadgen

printf '| case | latency rows | check s | check peak MiB | serve load s | VmRSS MiB | VmHWM MiB | cold QPS | hot QPS |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n' > "$TMP/table"
n=0
for size in "$@"; do
    n=$((n + 1))
    take_port dport; take_port hport
    dir=$TMP/case$n
    # shellcheck disable=SC2086
    python3 "$ROOT/bench/scale/gen.py" "$dir" --dns-port "$dport" --http-port "$hport" \
        --queries "$( [[ -n ${QPS:-} ]] && echo 100000 || echo 10 )" --small-queries 10 $size > "$dir.txt" \
        || die "gen.py $size failed"
    rows=$(tr ' ' '\n' < "$dir.txt" | awk -F= '$1 == "latency_rows" { print $2 }')
    check_s=- check_mib=-
    if [[ -z ${SKIP_CHECK:-} ]]; then
        /usr/bin/time -f '%e %M' -o "$dir.time" "$RESOLVERD_BIN" check --config "$dir/resolverd.yaml" >"$dir.check" 2>&1 \
            || { tail -5 "$dir.check" >&2; die "check failed for $size"; }
        read -r check_s kb < "$dir.time"
        check_mib=$(mib "$kb")
    fi
    load_s=- rss=- hwm=- hot=- cold=-
    if [[ -z ${SKIP_SERVE:-} ]]; then
        svc=$(awk 'NR == 1 { print $1 }' "$dir/queries.txt")
        start_resolverd "$dir/resolverd.yaml" "$dir.serve.log"
        deadline=$(( $(date +%s) + LOAD_TIMEOUT )) answered=""
        while (( $(date +%s) < deadline )); do
            alive "$SERVER_PID" || { tail -5 "$dir.serve.log" >&2; die "serve exited for $size"; }
            if [[ $(dig @127.0.0.1 -p "$dport" "$svc" A +short +norec +tries=1 +time=1 2>/dev/null | head -1) =~ ^[0-9.]+$ ]]; then
                answered=$(date +%s.%N); break
            fi
            sleep 0.1
        done
        rss=$(mib "$(proc_kb "$SERVER_PID" VmRSS)") hwm=$(mib "$(proc_kb "$SERVER_PID" VmHWM)")
        if [[ -n $answered ]]; then
            load_s=$(awk -v a="$SERVER_T0" -v b="$answered" 'BEGIN { printf "%.2f", b - a }')
            if [[ -n ${QPS:-} ]]; then
                run_load "$dport" "$dir/queries.txt" "$DURATION" "$dir.cold"; cold=$LOAD_QPS
                run_load "$dport" "$dir/queries-hot.txt" "$WARMUP" "$dir.warmup"
                run_load "$dport" "$dir/queries-hot.txt" "$DURATION" "$dir.hot"; hot=$LOAD_QPS
            fi
        else
            load_s=">$LOAD_TIMEOUT"
            log "serve ($size) has not answered after ${LOAD_TIMEOUT}s; where it is (perf, ${PROFILE_SECS}s, inclusive %):"
            profile "$SERVER_PID" "$PROFILE_SECS" >&2
        fi
        stop_pid "$SERVER_PID"
    fi
    row="| $size | $rows | $check_s | $check_mib | $load_s | $rss | $hwm | $cold | $hot |"
    echo "$row" >> "$TMP/table"
    log "$row"
    [[ -n ${KEEP_TMP:-} ]] || rm -rf "$dir"
done
echo
cat "$TMP/table"
