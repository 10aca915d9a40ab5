#!/usr/bin/env bash
# bench/run.sh — queries/s of resolverd vs NSD, side by side, on loopback with dnsperf.
#
# Both servers serve the same zones/ directory. The server under test is pinned
# to one core and dnsperf to the other; runs alternate resolverd, NSD, resolverd,
# NSD, ... and the median of each is reported. Every run is checked (lost
# queries, response codes, NXDOMAIN share) and both servers' answers are compared
# query by query before any timing, so a broken server cannot look fast.
#
# Usage: bench/run.sh            (normally through `make bench`)
# Knobs (environment):           see bench/README.md
#   ROUNDS=3 DURATION=10 CLIENTS=4 OUTSTANDING=200 EDNS=1
#   RESOLVERD_BIN=.build/release/resolverd NSD_BIN=nsd QUERIES=bench/queries.txt
#   SERVER_CPU=0 CLIENT_CPU=1 MAX_LOST_PCT=1 STARTUP_TIMEOUT=30
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RESOLVERD_BIN=${RESOLVERD_BIN:-.build/release/resolverd}
NSD_BIN=${NSD_BIN:-$(command -v nsd 2>/dev/null || echo /usr/sbin/nsd)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
EDNS=${EDNS:-1}
QUERIES=${QUERIES:-bench/queries.txt}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
MAX_LOST_PCT=${MAX_LOST_PCT:-1}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-30}
NX_TOLERANCE_PCT=2          # allowed drift of the NXDOMAIN share from the query file's
ZONES_DIR=$ROOT/zones
OUT_DIR=$ROOT/bench/out

log()  { printf '[bench] %s\n' "$*" >&2; }
die()  { printf '\n[bench] FAIL: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- preflight
for v in ROUNDS DURATION CLIENTS OUTSTANDING STARTUP_TIMEOUT SERVER_CPU CLIENT_CPU; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[[ $MAX_LOST_PCT =~ ^[0-9]+([.][0-9]+)?$ ]] || die "MAX_LOST_PCT must be a number (got '$MAX_LOST_PCT')"
(( ROUNDS >= 1 && DURATION >= 1 && CLIENTS >= 1 && OUTSTANDING >= 1 )) || die "ROUNDS, DURATION, CLIENTS, OUTSTANDING must be >= 1"

[[ $RESOLVERD_BIN == /* ]] || RESOLVERD_BIN=$ROOT/$RESOLVERD_BIN
[[ -x $RESOLVERD_BIN ]] || die "resolverd binary not found at $RESOLVERD_BIN — build it first with \`make release\` (or run \`make bench\`, which does), or point RESOLVERD_BIN at a binary"
[[ -x $NSD_BIN ]] || die "NSD not found ($NSD_BIN) — install it with \`make deps-bench\` (apt package nsd)"
for tool in dnsperf dig taskset ss timeout awk; do
    command -v "$tool" >/dev/null || die "'$tool' is missing — install the bench dependencies with \`make deps-bench\` (dnsperf, dnsutils, util-linux, iproute2)"
done
[[ $QUERIES == /* ]] || QUERIES=$ROOT/$QUERIES
[[ -r $QUERIES ]] || die "query file $QUERIES not readable"
compgen -G "$ZONES_DIR/*.zone" >/dev/null || die "no *.zone files in $ZONES_DIR"

NCPU=$(nproc)
if (( NCPU < 2 )) || (( SERVER_CPU >= NCPU || CLIENT_CPU >= NCPU )) || (( SERVER_CPU == CLIENT_CPU )); then
    log "WARNING: cannot pin server to core $SERVER_CPU and dnsperf to core $CLIENT_CPU on $NCPU CPU(s); running unpinned — figures are not comparable with pinned runs"
    PIN_SERVER=() PIN_CLIENT=()
else
    PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_CLIENT=(taskset -c "$CLIENT_CPU")
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/resolverd-bench.XXXXXX")
mkdir -p "$OUT_DIR/raw"
rm -f "$OUT_DIR"/raw/*.txt

# ---------------------------------------------------------------- process bookkeeping
# Only processes this script started are ever signalled, each by its PID.
STARTED=()                  # PIDs of servers currently running (direct children)

descendants() {             # PIDs below $1, depth first
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"; descendants "$c"
    done
}

alive() {                   # running (a zombie awaiting reaping does not count)
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

stop_pid() {                # TERM the server, give its tree 10 s to exit, then KILL what is left
    local pid=$1 kids p i left
    kids=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        left=""
        for p in $pid $kids; do alive "$p" && left="$left $p"; done
        [[ -z $left ]] && break
        sleep 0.1
    done
    for p in $left; do
        log "pid $p did not stop on TERM, sending KILL"
        kill -KILL "$p" 2>/dev/null || true
    done
    wait "$pid" 2>/dev/null || true
    local keep=() s
    for s in "${STARTED[@]}"; do [[ $s == "$pid" ]] || keep+=("$s"); done
    STARTED=("${keep[@]}")
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- ports
port_free() {
    ! ss -Hlnu "sport = :$1" | grep -q . && ! ss -Hlnt "sport = :$1" | grep -q .
}
pick_port() {               # a port free for UDP and TCP on loopback, not in $1 (already taken)
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 30000))
        [[ " $1 " == *" $p "* ]] && continue
        port_free "$p" && { echo "$p"; return 0; }
    done
    die "found no free port"
}
RESOLVERD_PORT=$(pick_port "")
NSD_PORT=$(pick_port "$RESOLVERD_PORT")

# ---------------------------------------------------------------- server configs
FIRST_ZONE=""
cat > "$TMP/resolverd.yaml" <<EOF
# generated by bench/run.sh
dns:
  listen: ["127.0.0.1:$RESOLVERD_PORT"]
zones: $ZONES_DIR
EOF

cat > "$TMP/nsd.conf" <<EOF
# generated by bench/run.sh
server:
  ip-address: 127.0.0.1@$NSD_PORT
  port: $NSD_PORT
  username: ""
  zonesdir: "$ZONES_DIR"
  database: ""
  pidfile: "$TMP/nsd.pid"
  xfrdfile: "$TMP/xfrd.state"
  zonelistfile: "$TMP/zone.list"
  logfile: "$TMP/nsd.log"
  chroot: ""
  server-count: 1
  verbosity: 1
  # Debian builds NSD with response rate limiting, 200 qps per /24 by default:
  # a benchmark from one address would be throttled (dropped/TC answers).
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
EOF
for f in "$ZONES_DIR"/*.zone; do
    z=$(basename "$f" .zone)
    [[ -n $FIRST_ZONE ]] || FIRST_ZONE=$z
    printf 'zone:\n  name: %s.\n  zonefile: %s\n' "$z" "$(basename "$f")" >> "$TMP/nsd.conf"
done
if command -v nsd-checkconf >/dev/null; then
    nsd-checkconf "$TMP/nsd.conf" || die "generated NSD config rejected by nsd-checkconf"
fi

# ---------------------------------------------------------------- start / stop
SERVER_PID=""
start_server() {            # $1 = resolverd|nsd; sets SERVER_PID, waits until it answers SOA
    local name=$1 port logf i
    case $name in
        resolverd)
            port=$RESOLVERD_PORT logf=$TMP/resolverd.log
            "${PIN_SERVER[@]}" "$RESOLVERD_BIN" serve --config "$TMP/resolverd.yaml" --log-level warning >"$logf" 2>&1 &
            ;;
        nsd)
            port=$NSD_PORT logf=$TMP/nsd.log
            rm -f "$TMP/nsd.pid"
            "${PIN_SERVER[@]}" "$NSD_BIN" -d -c "$TMP/nsd.conf" >"$TMP/nsd.stdout" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    STARTED+=("$SERVER_PID")
    for ((i = 0; i < STARTUP_TIMEOUT * 5; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$logf" "$TMP/nsd.stdout" 2>/dev/null | tail -20 >&2 || true
            die "$name exited during startup (port $port)"
        fi
        if [[ -n $(dig @127.0.0.1 -p "$port" "$FIRST_ZONE" SOA +short +norec +tries=1 +time=1 2>/dev/null) ]]; then
            return 0
        fi
        sleep 0.2
    done
    tail -20 "$logf" >&2 2>/dev/null || true
    die "$name did not answer '$FIRST_ZONE SOA' on 127.0.0.1:$port within ${STARTUP_TIMEOUT}s"
}

# ---------------------------------------------------------------- query file
QFILE=$TMP/queries.txt
grep -Ev '^[[:space:]]*(;|$)' "$QUERIES" > "$QFILE" || true
NQ=$(wc -l < "$QFILE")
(( NQ > 0 )) || die "query file $QUERIES has no queries"
awk 'NF != 2 { printf "bad line %d: %s\n", NR, $0; bad = 1 } END { exit bad }' "$QFILE" >&2 \
    || die "each query line must be 'name TYPE'"

DIG_EDNS=(+noedns)
DNSPERF_EDNS=()
if [[ $EDNS == 1 ]]; then DIG_EDNS=(+edns=0 +bufsize=4096); DNSPERF_EDNS=(-e); fi

# One line per answer: rcode, AA/TC flags, then the answer and authority RRs, sorted.
answer_of() {               # $1 port, $2 name, $3 type
    { dig @127.0.0.1 -p "$1" "$2" "$3" +norec +tries=3 +time=3 +ignore +nocookie "${DIG_EDNS[@]}" \
        +noall +comments +answer +authority 2>&1 || true; } |
    awk '
        /->>HEADER<<-/ { match($0, /status: [A-Z0-9]+/); st = substr($0, RSTART + 8, RLENGTH - 8) }
        /^;; flags:/    { f = $0; sub(/.*flags: */, "", f); sub(/;.*/, "", f)
                          n = split(f, a, " "); for (i = 1; i <= n; i++) if (a[i] == "aa" || a[i] == "tc") fl = fl " " a[i] }
        /^;; connection timed out|^;; communications error/ { st = "TIMEOUT" }
        !/^;/ && NF     { gsub(/[ \t]+/, " "); print "rr " $0 }
        END { printf "status=%s flags=%s\n", (st == "" ? "NONE" : st), fl }' | sort
}

# ---------------------------------------------------------------- correctness gate
log "resolverd: $RESOLVERD_BIN on 127.0.0.1:$RESOLVERD_PORT"
NSD_VERSION=$("$NSD_BIN" -v 2>&1 | awk 'NR == 1 { print $NF }')
log "NSD:       $NSD_BIN (NSD $NSD_VERSION) on 127.0.0.1:$NSD_PORT"
log "checking the $NQ queries of $(basename "$QUERIES") against both servers"
start_server resolverd
start_server nsd
NX_EXPECTED=0 mismatches=0
while read -r qname qtype; do
    a=$(answer_of "$RESOLVERD_PORT" "$qname" "$qtype")
    b=$(answer_of "$NSD_PORT" "$qname" "$qtype")
    status=$(grep "^status=" <<<"$b")
    case $status in
        "status=NOERROR "*) ;;
        "status=NXDOMAIN "*) NX_EXPECTED=$((NX_EXPECTED + 1)) ;;
        *) die "NSD answers '$qname $qtype' with $status — only NOERROR/NXDOMAIN queries belong in the mix" ;;
    esac
    [[ $status == *" tc"* ]] && die "'$qname $qtype' is truncated (TC) — large answers do not belong in the UDP mix"
    if [[ $a != "$b" ]]; then
        mismatches=$((mismatches + 1))
        log "MISMATCH on '$qname $qtype' (< resolverd, > NSD):"
        diff <(echo "$a") <(echo "$b") | grep '^[<>]' | sed 's/^/         /' >&2 || true
    fi
done < "$QFILE"
(( mismatches == 0 )) || die "resolverd and NSD disagree on $mismatches of $NQ queries — not benchmarking a server that answers differently"
stop_server_all() { local p; for p in "${STARTED[@]}"; do stop_pid "$p"; done; }
stop_server_all
NX_EXPECTED_PCT=$(awk -v n="$NX_EXPECTED" -v t="$NQ" 'BEGIN { printf "%.2f", 100 * n / t }')
log "answers identical on all $NQ queries (NXDOMAIN share ${NX_EXPECTED_PCT}%)"

# ---------------------------------------------------------------- one timed run
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {               # user+system ticks of $1 and its descendants (threads included)
    local p total=0 t
    for p in "$1" $(descendants "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# Results, one line per run: "name qps latency_ms server_cpu_pct client_cpu_pct"
RESULTS=$TMP/results.txt
: > "$RESULTS"

bench_run() {               # $1 = resolverd|nsd, $2 = round
    local name=$1 round=$2 port raw t0 t1 secs0 secs1 tf
    [[ $name == resolverd ]] && port=$RESOLVERD_PORT || port=$NSD_PORT
    raw=$OUT_DIR/raw/$name-$round.txt
    start_server "$name"
    sleep 0.5
    t0=$(cpu_ticks "$SERVER_PID"); secs0=$(date +%s.%N)
    tf=$TMP/time.txt
    # bash's `time` reports CPU of the whole child tree (timeout + dnsperf) as % of wall time.
    { TIMEFORMAT=%P; time timeout --kill-after=5 $((DURATION + 30)) \
        "${PIN_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$QFILE" \
        -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" "${DNSPERF_EDNS[@]}" >"$raw" 2>&1; } 2>"$tf" \
        || { tail -20 "$raw" >&2; die "dnsperf failed or hung against $name (see $raw)"; }
    t1=$(cpu_ticks "$SERVER_PID"); secs1=$(date +%s.%N)
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name died during the run (see $raw)"
    stop_pid "$SERVER_PID"

    local sent completed lost codes qps lat bad nx srv_cpu cli_cpu
    sent=$(awk '/Queries sent:/ { print $3 }' "$raw")
    completed=$(awk '/Queries completed:/ { print $3 }' "$raw")
    lost=$(awk '/Queries lost:/ { print $3 }' "$raw")
    codes=$(sed -n 's/^ *Response codes: *//p' "$raw")
    qps=$(awk '/Queries per second:/ { print $4 }' "$raw")
    lat=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' "$raw")
    [[ -n $sent && -n $completed && -n $lost && -n $qps && -n $lat ]] \
        || { tail -20 "$raw" >&2; die "could not read dnsperf statistics for $name round $round (see $raw)"; }
    (( completed > 0 )) || die "$name answered no queries in round $round"
    awk -v l="$lost" -v s="$sent" -v m="$MAX_LOST_PCT" 'BEGIN { exit !(100 * l > m * s) }' \
        && die "$name lost $lost of $sent queries in round $round (> ${MAX_LOST_PCT}%) — see $raw"
    # Response codes: "NOERROR 140270 (50.00%), NXDOMAIN 140270 (50.00%)"
    bad=$(tr ',' '\n' <<<"$codes" | awk 'NF >= 2 && $1 != "NOERROR" && $1 != "NXDOMAIN" { printf "%s %s ", $1, $2 }')
    [[ -z $bad ]] || die "$name answered with unexpected response codes in round $round: $bad(all: $codes) — see $raw"
    nx=$(tr ',' '\n' <<<"$codes" | awk '$1 == "NXDOMAIN" { gsub(/[()%]/, "", $3); print $3 }')
    awk -v g="${nx:-0}" -v e="$NX_EXPECTED_PCT" -v t="$NX_TOLERANCE_PCT" 'BEGIN { d = g - e; exit !(d > t || d < -t) }' \
        && die "$name: NXDOMAIN share ${nx:-0}% in round $round, expected ${NX_EXPECTED_PCT}% ± ${NX_TOLERANCE_PCT} — see $raw"
    srv_cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v s0="$secs0" -v s1="$secs1" \
        'BEGIN { printf "%.0f", 100 * (b - a) / hz / (s1 - s0) }')
    cli_cpu=$(awk '{ printf "%.0f", $1 }' "$tf")
    printf '%s %.0f %s %s %s\n' "$name" "$qps" "$lat" "$srv_cpu" "$cli_cpu" >> "$RESULTS"
    log "$(printf '%-9s round %d/%d: %8.0f qps, latency %s ms, server core %s%%, dnsperf core %s%%, lost %s/%s' \
        "$name" "$round" "$ROUNDS" "$qps" "$lat" "$srv_cpu" "$cli_cpu" "$lost" "$sent")"
}

log "timing: $ROUNDS round(s) × ${DURATION}s per server, dnsperf -c $CLIENTS -q $OUTSTANDING$([[ $EDNS == 1 ]] && echo ' -e'), server on core $SERVER_CPU, dnsperf on core $CLIENT_CPU"
for ((r = 1; r <= ROUNDS; r++)); do
    bench_run resolverd "$r"
    bench_run nsd "$r"
done

# ---------------------------------------------------------------- report
median() {                  # median of column $2 for server $1
    awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$RESULTS" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'
}
per_run() { awk -v n="$1" '$1 == n { printf "%s%s", sep, $2; sep = ", " }' "$RESULTS"; }

A_QPS=$(median resolverd 2) B_QPS=$(median nsd 2)
A_LAT=$(median resolverd 3) B_LAT=$(median nsd 3)
A_SCPU=$(median resolverd 4) B_SCPU=$(median nsd 4)
A_CCPU=$(median resolverd 5) B_CCPU=$(median nsd 5)
RATIO=$(awk -v a="$A_QPS" -v b="$B_QPS" 'BEGIN { printf "%.2f", a / b }')

row() { printf '| %s | %.0f | %.3f | %.0f%% | %.0f%% | %s |\n' "$@"; }
{
    echo "## resolverd vs NSD — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION$([[ $EDNS == 1 ]] && echo ' -e'), $NQ-query mix ($(basename "$QUERIES")), $ROUNDS round(s) alternating, server on core $SERVER_CPU, dnsperf on core $CLIENT_CPU; medians over rounds."
    echo
    echo "| server | median QPS | mean latency (ms) | server core busy | dnsperf core busy | QPS per run |"
    echo "|---|---:|---:|---:|---:|---|"
    row "resolverd" "$A_QPS" "$A_LAT" "$A_SCPU" "$A_CCPU" "$(per_run resolverd)"
    row "NSD $NSD_VERSION" "$B_QPS" "$B_LAT" "$B_SCPU" "$B_CCPU" "$(per_run nsd)"
    echo
    echo "**resolverd / NSD = $RATIO** (median QPS)"
    for pair in "resolverd:$A_CCPU" "NSD:$B_CCPU"; do
        if awk -v c="${pair#*:}" 'BEGIN { exit !(c >= 90) }'; then
            echo
            echo "Note: dnsperf's core was ~${pair#*:}% busy during the ${pair%%:*} runs — the load generator, not the server, set that ceiling; the figure is a lower bound (see bench/README.md)."
        fi
    done
    echo
    echo "resolverd binary: \`${RESOLVERD_BIN#"$ROOT"/}\`"
} > "$OUT_DIR/result.md"

echo
cat "$OUT_DIR/result.md"
log "written to ${OUT_DIR#"$ROOT"/}/result.md (raw dnsperf output in ${OUT_DIR#"$ROOT"/}/raw/)"
