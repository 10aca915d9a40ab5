#!/usr/bin/env bash
# bench/allocations.sh — heap allocations per answered query on resolverd's query path, counted
# exactly: uprobes on libc's malloc, calloc, realloc and posix_memalign (perf probe) record a
# call stack for every allocation while bench/loadgen sends a fixed number of queries per mix;
# the allocations whose stack is in a UDP worker (UDPWorkers, which reads, answers and sends
# every UDP query) are divided by the answers. The rest of the process (timers, the once-a-
# second state publisher) is reported beside it, per second. The last two mixes are the ECS one
# while every site reports its load (bench/reports/reportflood.c): `+reports` at 300 reports/s,
# each site's load a 20 s wave (decisions model known loads, the snapshot changes all the
# time); `+churn` at 10 000 reports/s whose loads jump by up to 0.8 from one report to the next
# (clients are moved again and again, so most decisions place their client anew).
#
# Usage: bench/allocations.sh   (root, after `make release`; knobs RESOLVERD_BIN, RATE, DURATION)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RESOLVERD_BIN=${RESOLVERD_BIN:-.build/release/resolverd}
RATE=${RATE:-20000}
DURATION=${DURATION:-3}
OUT=$ROOT/bench/out
LIBC=$(ldd "$RESOLVERD_BIN" | awk '/libc.so.6/ { print $3 }')
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
mkdir -p "$OUT"
gcc -O2 -Wall -o "$OUT/loadgen" bench/loadgen.c
gcc -O2 -Wall -o "$OUT/reportflood" bench/reports/reportflood.c -lm
TMP=$(mktemp -d "${TMPDIR:-/tmp}/resolverd-alloc.XXXXXX")
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    for f in malloc calloc realloc posix_memalign; do perf probe -q -d "probe_libc:$f" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
for f in malloc calloc realloc posix_memalign; do
    perf probe -q -d "probe_libc:$f" 2>/dev/null || true
    perf probe -q -x "$LIBC" "$f" >/dev/null
done

PORT=$(( 20000 + RANDOM % 20000 ))
cat > "$TMP/resolverd.yaml" <<YAML
dns:
  listen: ["127.0.0.1:$PORT"]
  udp-threads: 1
http:
  listen: "127.0.0.1:$(( PORT + 1 ))"
  tokens: $ROOT/tokens.yaml
zones: $ROOT/zones
sites:
  fra1: {addresses: [192.0.2.10, "2001:db8:1::10"], capacity: 800, location: [50.11, 8.68]}
  ams1: {addresses: [192.0.2.20, "2001:db8:2::20"], capacity: 600, location: [52.37, 4.90]}
  par1: {addresses: [192.0.2.30], capacity: 400, location: [48.86, 2.35]}
services:
  api.svc.example.: {sites: [fra1, ams1, par1], ttl: 20, affinity: {hold: 300, margin: 0.2}}
latency: {file: $ROOT/latency.csv, locations: $ROOT/locations.csv, default-rtt-ms: 80}
YAML
# Names the fast path answers (compiled); the whole bench mix (NXDOMAIN, wildcards and
# referrals take the general path); the service name without ECS and with ECS from 4096 /24s.
printf '%s\n' "www.svc.example A" "www.svc.example AAAA" "svc.example MX" "svc.example SOA" "mail.svc.example A" \
    "chain.svc.example A" "mail.svc.example AAAA" > "$TMP/q-compiled.txt"
grep -Ev '^[[:space:]]*(;|$)' bench/queries.txt > "$TMP/q-static.txt"
echo "api.svc.example A" > "$TMP/q-svc.txt"
awk 'BEGIN { for (i = 0; i < 4096; i++) printf "api.svc.example A ecs=%d.%d.7.0/24\n", 11 + int(i / 256), i % 256 }' > "$TMP/q-svc-ecs.txt"
cp "$TMP/q-svc-ecs.txt" "$TMP/q-svc-ecs+reports.txt"
cp "$TMP/q-svc-ecs.txt" "$TMP/q-svc-ecs+churn.txt"

"$RESOLVERD_BIN" serve --config "$TMP/resolverd.yaml" --log-level warning > "$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do dig @127.0.0.1 -p "$PORT" svc.example SOA +tries=1 +time=1 >/dev/null 2>&1 && break; sleep 0.1; done

compiled() { curl -s "http://127.0.0.1:$(( PORT + 1 ))/metrics" | awk '/^resolverd_dns_compiled_answers_total/ { print $2 }'; }
echo "| mix | answered | answered by the fast path (compiled answers and templates) | allocations on the UDP query path | per answer | rest of the process, per second |"
echo "|---|---:|---:|---:|---:|---:|"
for mix in compiled static svc svc-ecs svc-ecs+reports svc-ecs+churn; do
    REPORTER=""
    case $mix in
        *+reports) how=(-r 300 -W 20 -c 2 -P 1) ;;
        *+churn) how=(-r 10000 -W 0 -c 16 -P 4) ;;
        *) how=() ;;
    esac
    if (( ${#how[@]} > 0 )); then
        "$OUT/reportflood" -q -p "$(( PORT + 1 ))" -t example-admin-token -S fra1,ams1,par1 "${how[@]}" \
            -d "$(( DURATION + 3 ))" > "$TMP/reports.txt" 2>&1 &
        REPORTER=$!
    fi
    # A warm-up second: a client's first queries in a state are decided by the general path;
    # the fast path's figure is for the steady state that follows.
    "$OUT/loadgen" -s 127.0.0.1 -p "$PORT" -f "$TMP/q-$mix.txt" -r "$RATE" -d 1 -n 1 >/dev/null || true
    sleep 0.1   # the workers add their counts every 10 ms and when idle (UDPWorkers.flushMilliseconds)
    fast_before=$(compiled)
    perf record -q -g -e 'probe_libc:*' -p "$PID" -o "$TMP/perf.data" -- sleep $(( DURATION + 1 )) >/dev/null 2>&1 &
    RECORDER=$!
    sleep 0.5
    result=$("$OUT/loadgen" -s 127.0.0.1 -p "$PORT" -f "$TMP/q-$mix.txt" -r "$RATE" -d "$DURATION" -n 1 | grep '^loadgen-result' || true)
    wait "$RECORDER" || true
    sleep 0.1
    fast=$(( $(compiled) - ${fast_before:-0} ))
    answered=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<"$result")
    # One record per allocation: a header line, its stack, a blank line.
    perf script -i "$TMP/perf.data" 2>/dev/null | awk -v m="$mix" -v n="${answered:-0}" -v f="$fast" -v secs="$(( DURATION + 1 ))" '
        /^[^ \t]/ { if (seen) { total++; if (udp) worker++ } seen = 1; udp = 0; next }
        /UDPWorkers/ { udp = 1 }
        END { if (seen) { total++; if (udp) worker++ }
              printf "| %s | %d | %.1f%% | %d | %.4f | %.0f |\n", m, n, 100 * f / (n > 0 ? n : 1), worker, worker / (n > 0 ? n : 1), (total - worker) / secs }'
    if [[ -n $REPORTER ]]; then
        wait "$REPORTER" || true
        grep -q ' status_204=' "$TMP/reports.txt" || { cat "$TMP/reports.txt" >&2; echo "the load reports failed" >&2; exit 1; }
        echo "  (load reports during it: $(tail -1 "$TMP/reports.txt" | tr ' ' '\n' | grep -E '^(sent|status_204)=' | tr '\n' ' '))"
    fi
done
