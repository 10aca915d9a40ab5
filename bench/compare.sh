#!/usr/bin/env bash
# bench/compare.sh — resolverd vs gdnsd vs NSD, side by side, on loopback (issue 7).
#
# One run measures three servers on the same zone data and the same query mixes with
# bench/loadgen (a batching UDP load generator built here from bench/loadgen.c):
#   static   the static mix of bench/queries.txt           resolverd, gdnsd, NSD
#   svc      api.svc.example. A, no ECS                     resolverd, gdnsd
#   svc-ecs  api.svc.example. A with ECS from ECS_CLIENTS   resolverd, gdnsd
#            distinct /24s mapped to fra1/ams1/par1 (a latency csv for resolverd,
#            a geoip `nets` map for gdnsd: the same /24 -> same site)
# NSD has no dynamic answers, so it runs the static mix only.
#
# Each server in turn is pinned to SERVER_CPU, loadgen to CLIENT_CPU; runs alternate
# resolverd, NSD, gdnsd, resolverd, ... ROUNDS times and medians are reported:
#   1. max rate (closed loop, OUTSTANDING in flight): queries/s, mean and p99 latency;
#   2. fixed offered rate RATE (open loop): server CPU time per answered query, from
#      /proc/PID/stat utime+stime of the server's process tree before and after, and
#      utime alone (the server's own code; the kernel's share is much the same for all);
#   3. p99 latency at half of resolverd's max rate for that mix (same offered rate for all).
# A correctness gate (dig) runs before any timing; every run is validated as well.
#
# Usage: bench/compare.sh            (normally through `make bench`)
#        QUICK=1 bench/compare.sh    (2-second runs, one round: a smoke test)
# Knobs (environment): see bench/README.md
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then DEF_DURATION=2 DEF_ROUNDS=1; else DEF_DURATION=10 DEF_ROUNDS=3; fi
RESOLVERD_BIN=${RESOLVERD_BIN:-.build/release/resolverd}
NSD_BIN=${NSD_BIN:-$(command -v nsd 2>/dev/null || echo /usr/sbin/nsd)}
GDNSD_BIN=${GDNSD_BIN:-$(command -v gdnsd 2>/dev/null || echo /usr/sbin/gdnsd)}
ROUNDS=${ROUNDS:-$DEF_ROUNDS}
DURATION=${DURATION:-$DEF_DURATION}
OUTSTANDING=${OUTSTANDING:-200}
SOCKETS=${SOCKETS:-2}
BATCH=${BATCH:-32}
RATE=${RATE:-50000}
ECS_CLIENTS=${ECS_CLIENTS:-4096}
QUERIES=${QUERIES:-bench/queries.txt}
POLICY=${POLICY:-response-time}
LOAD_PER_ANSWER=${LOAD_PER_ANSWER:-0}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
MAX_LOST_PCT=${MAX_LOST_PCT:-1}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-30}
CEILING=${CEILING:-1}
QUIET_WAIT=${QUIET_WAIT:-0}   # s to wait, before a run, for other processes to calm down (0: don't)
BUSY_PCT=10                 # other processes using more than this % of a core = machine busy
NX_TOLERANCE_PCT=2          # allowed drift of the NXDOMAIN share from the query file's
ZONE=svc.example
SVC_NAME=api.svc.example.
# Site addresses, as in resolverd.yaml.
declare -A SITE_V4=([fra1]=192.0.2.10 [ams1]=192.0.2.20 [par1]=192.0.2.30)
SITES=(fra1 ams1 par1)
BENCH_ZONES=$ROOT/bench/zones
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
LOCK_FILE=${LOCK_FILE:-${TMPDIR:-/tmp}/resolverd-bench-compare.lock}   # machine-wide: the cores are
LOCK_WAIT=${LOCK_WAIT:-1800}

TAG=bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- preflight
for v in ROUNDS DURATION OUTSTANDING SOCKETS BATCH RATE ECS_CLIENTS STARTUP_TIMEOUT SERVER_CPU CLIENT_CPU LOCK_WAIT QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[[ $MAX_LOST_PCT =~ ^[0-9]+([.][0-9]+)?$ ]] || die "MAX_LOST_PCT must be a number (got '$MAX_LOST_PCT')"
[[ $LOAD_PER_ANSWER =~ ^[0-9]+([.][0-9]+)?$ ]] || die "LOAD_PER_ANSWER must be a number (got '$LOAD_PER_ANSWER')"
(( ROUNDS >= 1 && DURATION >= 1 && DURATION <= 3600 && OUTSTANDING >= 1 && RATE >= 1 )) \
    || die "ROUNDS, OUTSTANDING, RATE must be >= 1 and DURATION 1..3600"
(( SOCKETS >= 1 && SOCKETS <= 64 && BATCH >= 1 && BATCH <= 256 )) || die "SOCKETS must be 1..64, BATCH 1..256"
(( ECS_CLIENTS >= 2 && ECS_CLIENTS <= 65536 )) || die "ECS_CLIENTS must be 2..65536"

# What the bench needs, installed with apt when missing (as `make deps-bench` does).
"$ROOT/scripts/apt-ensure" nsd gdnsd dnsutils util-linux iproute2 gcc libc6-dev

[[ $RESOLVERD_BIN == /* ]] || RESOLVERD_BIN=$ROOT/$RESOLVERD_BIN
[[ -x $RESOLVERD_BIN ]] || die "resolverd binary not found at $RESOLVERD_BIN — build it with \`make release\` (\`make bench\` does), or point RESOLVERD_BIN at a binary"
[[ -x $NSD_BIN ]] || die "NSD not found ($NSD_BIN) — apt package nsd"
[[ -x $GDNSD_BIN ]] || die "gdnsd not found ($GDNSD_BIN) — apt package gdnsd"
for tool in dig taskset ss timeout awk gcc; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (dnsutils, util-linux, iproute2, gcc)"
done
[[ $QUERIES == /* ]] || QUERIES=$ROOT/$QUERIES
[[ -r $QUERIES ]] || die "query file $QUERIES not readable"
[[ -r $BENCH_ZONES/$ZONE.zone ]] || die "bench zone $BENCH_ZONES/$ZONE.zone missing"

setup_pinning
mkdir -p "$OUT_DIR/raw"
take_bench_lock
TMP=$(mktemp -d "${TMPDIR:-/tmp}/resolverd-compare.XXXXXX")
rm -f "$OUT_DIR"/raw/*.txt
install_traps

# ---------------------------------------------------------------- is the machine quiet?
# Share of idle time of the two cores used, over one second, before anything starts.
cpu_idle_pct() {            # $1 = cpu number
    local a b
    a=$(awk -v c="cpu$1" '$1 == c { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    sleep 1
    b=$(awk -v c="cpu$1" '$1 == c { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 100) }'
}
BUSY_NOTE=""
if (( ${#PIN_SERVER[@]} )); then
    idle_s=$(cpu_idle_pct "$SERVER_CPU") idle_c=$(cpu_idle_pct "$CLIENT_CPU")
    if (( idle_s < 90 || idle_c < 90 )); then
        BUSY_NOTE="WARNING: the machine was busy before the bench started (core $SERVER_CPU ${idle_s}% idle, core $CLIENT_CPU ${idle_c}% idle): figures are depressed and noisy — rerun on a quiet machine."
        log "$BUSY_NOTE"
    fi
fi

# ---------------------------------------------------------------- load generator
LOADGEN=$OUT_DIR/loadgen ECHO_BIN=$OUT_DIR/echo
gcc -O2 -Wall -Wextra -o "$LOADGEN" "$ROOT/bench/loadgen.c" || die "could not build bench/loadgen.c"
gcc -O2 -Wall -Wextra -o "$ECHO_BIN" "$ROOT/bench/echo.c" || die "could not build bench/echo.c"

declare -A PORT
for srv in resolverd nsd gdnsd echo; do take_port "PORT[$srv]"; done

# ---------------------------------------------------------------- client map (svc-ecs)
# ECS_CLIENTS distinct /24s spread over the IPv4 unicast space (a multiplicative hash of
# the index, so neighbours in the file are far apart in the address space). Each gets a
# site: the nearest one has a clearly lower RTT, so every policy that weighs latency picks
# it on an idle server. resolverd gets the RTTs as a latency csv, gdnsd the same order as
# a geoip `nets` map.
LATENCY_CSV=$TMP/latency.csv NETS=$TMP/gdnsd/nets EXPECTED=$TMP/expected.txt
mkdir -p "$TMP/gdnsd/zones" "$TMP/gdnsd/run" "$TMP/gdnsd/state"
awk -v n="$ECS_CLIENTS" -v lat="$LATENCY_CSV" -v nets="$NETS" -v expf="$EXPECTED" -v qf="$TMP/q-svc-ecs.txt" '
BEGIN {
    s[0] = "fra1"; s[1] = "ams1"; s[2] = "par1"
    print "prefix,site,rtt_ms" > lat
    print "# generated by bench/compare.sh: " n " client /24s, nearest site 4-10 ms, the others 30-60 ms" > lat
    print "; generated by bench/compare.sh: the same /24 -> site order as the latency csv" > nets
    print "; ECS mix generated by bench/compare.sh: one query per client /24" > qf
    for (i = 0; k < n && i < 16777216; i++) {
        x = (i * 2654435761) % 16777216
        a = int(x / 65536); b = int(x / 256) % 256; c = x % 256
        # Only addresses that say where a client is: resolverd sets aside an ECS subnet in
        # private, loopback, link-local or shared space (RFC 7871 section 10; IPAddress.isNonRoutable)
        # and answers it for the source address with scope 0, which the runs count as an error.
        if (a < 1 || a == 10 || a == 127 || a >= 224 || a == 100 || (a == 192 && b == 168) \
            || (a == 169 && b == 254) || (a == 172 && b >= 16 && b < 32)) continue
        net = a "." b "." c ".0/24"
        best = x % 3; second = (best + 1 + int(x / 3) % 2) % 3; third = 3 - best - second
        printf "%s,%s,%d\n%s,%s,%d\n%s,%s,%d\n", net, s[best], 4 + x % 7, net, s[second], 30 + x % 11, net, s[third], 50 + x % 11 > lat
        printf "%s => [ %s, %s, %s ]\n", net, s[best], s[second], s[third] > nets
        printf "%s %s\n", net, s[best] > expf
        printf "api.svc.example A ecs=%s\n", net > qf
        k++
    }
}'
echo "$SVC_NAME A" > "$TMP/q-svc.txt"
grep -Ev '^[[:space:]]*(;|$)' "$QUERIES" > "$TMP/q-static.txt" || true
NQ=$(wc -l < "$TMP/q-static.txt")
(( NQ > 0 )) || die "query file $QUERIES has no queries"
awk 'NF != 2 { printf "bad line %d: %s\n", NR, $0; bad = 1 } END { exit bad }' "$TMP/q-static.txt" >&2 \
    || die "each line of $QUERIES must be 'name TYPE'"

# ---------------------------------------------------------------- server configs
# resolverd: the bench zone, the three sites of resolverd.yaml, one service, the latency csv.
write_resolverd_config() {  # $1 = extra dns: lines
    cat > "$TMP/resolverd.yaml" <<EOF
# generated by bench/compare.sh
dns:
  listen: ["127.0.0.1:${PORT[resolverd]}"]
$1
zones: $BENCH_ZONES
# Capacities far above what a bench offers: with no load reports, anti-herding estimates a
# site's load from the answers sent to it, and at 200 k queries/s sites of 800 requests/s
# would rightly count as full (the answer is then the same for every client: ECS scope 0).
sites:
  fra1: {addresses: [192.0.2.10, "2001:db8:1::10"], capacity: 10000000, location: [50.11, 8.68]}
  ams1: {addresses: [192.0.2.20, "2001:db8:2::20"], capacity: 10000000, location: [52.37, 4.90]}
  par1: {addresses: [192.0.2.30], capacity: 10000000, location: [48.86, 2.35]}
services:
  $SVC_NAME:
    sites: [fra1, ams1, par1]
    ttl: 20
    answers: 1
    policy: $POLICY
    affinity: {hold: 300, margin: 0.2}
latency:
  file: $LATENCY_CSV
  default-rtt-ms: 80
# A benchmark's query rate is not demand (resolvers cache answers for the TTL): answers are
# not counted as load sent to a site, or at 100k answers/s every modelled site would be
# over capacity within a second and the service answered in its all-down regime.
steering:
  load-per-answer: $LOAD_PER_ANSWER
EOF
}
# The other engineer's dns.udp-threads setting: used when this resolverd knows it.
RESOLVERD_THREADS_NOTE="dns.udp-threads not supported by this binary (left out)"
write_resolverd_config "  udp-threads: 1"
if "$RESOLVERD_BIN" check --config "$TMP/resolverd.yaml" >"$TMP/check.txt" 2>&1; then
    RESOLVERD_THREADS_NOTE="dns.udp-threads: 1"
else
    write_resolverd_config ""
    "$RESOLVERD_BIN" check --config "$TMP/resolverd.yaml" >"$TMP/check.txt" 2>&1 \
        || { cat "$TMP/check.txt" >&2; die "resolverd check rejects the generated config"; }
fi

cat > "$TMP/nsd.conf" <<EOF
# generated by bench/compare.sh
server:
  ip-address: 127.0.0.1@${PORT[nsd]}
  port: ${PORT[nsd]}
  username: ""
  zonesdir: "$BENCH_ZONES"
  database: ""
  pidfile: "$TMP/nsd.pid"
  xfrdfile: "$TMP/xfrd.state"
  xfrdir: "$TMP"
  zonelistfile: "$TMP/zone.list"
  logfile: "$TMP/nsd.log"
  chroot: ""
  server-count: 1
  verbosity: 1
  # Debian builds NSD with response rate limiting (200 qps per /24 by default).
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $ZONE.
  zonefile: $ZONE.zone
EOF
if command -v nsd-checkconf >/dev/null; then
    nsd-checkconf "$TMP/nsd.conf" || die "generated NSD config rejected by nsd-checkconf"
fi

# gdnsd: the same zone file plus the DYNA record, one UDP and one TCP thread, in-zone
# CNAME chains followed like NSD and resolverd do (experimental_no_chain = false), a geoip
# map with no GeoIP database, only the nets file. ECS is on by default (edns_client_subnet).
{ cat "$BENCH_ZONES/$ZONE.zone"; echo; echo "; added by bench/compare.sh for gdnsd"; echo "api 20 DYNA geoip!api"; } \
    > "$TMP/gdnsd/zones/$ZONE"
cat > "$TMP/gdnsd/config" <<EOF
# generated by bench/compare.sh
options => {
  listen => { 127.0.0.1:${PORT[gdnsd]} => { udp_threads => 1, tcp_threads => 1 } }
  run_dir => $TMP/gdnsd/run
  state_dir => $TMP/gdnsd/state
  experimental_no_chain => false
}
plugins => {
  geoip => {
    maps => {
      bench => {
        datacenters => [fra1, ams1, par1]
        nets => $NETS
      }
    }
    resources => {
      api => {
        map => bench
        service_types => up
        dcmap => {
          fra1 => { addrs_v4 => [192.0.2.10], addrs_v6 => ["2001:db8:1::10"] }
          ams1 => { addrs_v4 => [192.0.2.20], addrs_v6 => ["2001:db8:2::20"] }
          par1 => { addrs_v4 => [192.0.2.30] }
        }
      }
    }
  }
}
EOF
"$GDNSD_BIN" -c "$TMP/gdnsd" checkconf >"$TMP/gdnsd-check.txt" 2>&1 \
    || { cat "$TMP/gdnsd-check.txt" >&2; die "gdnsd checkconf rejects the generated config"; }

# ---------------------------------------------------------------- start / stop
SERVER_PID=""
start_server() {            # $1 = resolverd|nsd|gdnsd|echo; sets SERVER_PID, waits until it answers
    local name=$1 port=${PORT[$1]} logf=$TMP/$1.out i
    case $name in
        resolverd) "${PIN_SERVER[@]}" "$RESOLVERD_BIN" serve --config "$TMP/resolverd.yaml" --log-level warning >"$logf" 2>&1 {LOCK_FD}>&- & ;;
        nsd)       rm -f "$TMP/nsd.pid"; "${PIN_SERVER[@]}" "$NSD_BIN" -d -c "$TMP/nsd.conf" >"$logf" 2>&1 {LOCK_FD}>&- & ;;
        gdnsd)     "${PIN_SERVER[@]}" "$GDNSD_BIN" -c "$TMP/gdnsd" start >"$logf" 2>&1 {LOCK_FD}>&- & ;;
        echo)      "${PIN_SERVER[@]}" "$ECHO_BIN" -p "$port" >"$logf" 2>&1 {LOCK_FD}>&- & ;;
    esac
    SERVER_PID=$!
    STARTED+=("$SERVER_PID")
    for ((i = 0; i < STARTUP_TIMEOUT * 5; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -20 "$logf" "$TMP/nsd.log" 2>/dev/null >&2 || true
            die "$name exited during startup (port $port)"
        fi
        if [[ -n $(dig @127.0.0.1 -p "$port" "$ZONE" SOA +norec +tries=1 +time=1 +nocookie 2>/dev/null | grep -E 'status: (NOERROR|NXDOMAIN)') ]]; then
            return 0
        fi
        sleep 0.2
    done
    tail -20 "$logf" >&2 2>/dev/null || true
    die "$name did not answer '$ZONE SOA' on 127.0.0.1:$port within ${STARTUP_TIMEOUT}s"
}

# One line per answer: rcode, AA/TC flags, then the answer and authority RRs, sorted.
answer_of() {               # $1 port, $2 name, $3 type, [$4 extra dig option]
    { dig @127.0.0.1 -p "$1" "$2" "$3" ${4:+"$4"} +norec +tries=3 +time=3 +ignore +nocookie +edns=0 +bufsize=1232 \
        +noall +comments +answer +authority 2>&1 || true; } |
    awk '
        /->>HEADER<<-/ { match($0, /status: [A-Z0-9]+/); st = substr($0, RSTART + 8, RLENGTH - 8) }
        /^;; flags:/    { f = $0; sub(/.*flags: */, "", f); sub(/;.*/, "", f)
                          n = split(f, a, " "); for (i = 1; i <= n; i++) if (a[i] == "aa" || a[i] == "tc") fl = fl " " a[i] }
        /^; CLIENT-SUBNET:/ { ecs = $3 }
        /^;; connection timed out|^;; communications error/ { st = "TIMEOUT" }
        !/^;/ && NF     { gsub(/[ \t]+/, " "); print "rr " $0 }
        END { printf "status=%s flags=%s ecs=%s\n", (st == "" ? "NONE" : st), fl, (ecs == "" ? "-" : ecs) }' | sort
}
# gdnsd answers minimally: no NS RRset of the zone apex in the authority section of a
# positive answer (NSD and resolverd add it). That RRset is dropped before comparing.
strip_apex_ns() { awk -v z="$ZONE." '!($1 == "rr" && $2 == z && $5 == "NS")'; }

# ---------------------------------------------------------------- correctness gate
NSD_VERSION=$("$NSD_BIN" -v 2>&1 | awk 'NR == 1 { print $NF }')
GDNSD_VERSION=$("$GDNSD_BIN" -c "$TMP/gdnsd" checkconf 2>&1 | awk '/gdnsd version/ { print $4; exit }')
log "resolverd: $RESOLVERD_BIN on 127.0.0.1:${PORT[resolverd]} ($RESOLVERD_THREADS_NOTE, policy $POLICY, load-per-answer $LOAD_PER_ANSWER)"
log "NSD $NSD_VERSION on 127.0.0.1:${PORT[nsd]}; gdnsd $GDNSD_VERSION on 127.0.0.1:${PORT[gdnsd]}"
log "gate: $NQ static queries of $(basename "$QUERIES") against all three servers"
start_server resolverd; start_server nsd; start_server gdnsd
NX_EXPECTED=0 mismatches=0
while read -r qname qtype; do
    a=$(answer_of "${PORT[resolverd]}" "$qname" "$qtype")
    b=$(answer_of "${PORT[nsd]}" "$qname" "$qtype")
    c=$(answer_of "${PORT[gdnsd]}" "$qname" "$qtype")
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
    if [[ $(strip_apex_ns <<<"$c") != "$(strip_apex_ns <<<"$b")" ]]; then
        mismatches=$((mismatches + 1))
        log "MISMATCH on '$qname $qtype' (< gdnsd, > NSD; apex NS in authority ignored):"
        diff <(strip_apex_ns <<<"$c") <(strip_apex_ns <<<"$b") | grep '^[<>]' | sed 's/^/         /' >&2 || true
    fi
done < "$TMP/q-static.txt"
(( mismatches == 0 )) || die "the servers disagree on $mismatches answers — not benchmarking servers that answer differently"
NX_EXPECTED_PCT=$(awk -v n="$NX_EXPECTED" -v t="$NQ" 'BEGIN { printf "%.2f", 100 * n / t }')
log "static answers identical on all $NQ queries (NXDOMAIN share ${NX_EXPECTED_PCT}%)"

site_of() {                 # address -> site name, or empty
    local s
    for s in "${SITES[@]}"; do [[ ${SITE_V4[$s]} == "$1" ]] && { echo "$s"; return; }; done
}
# The service name: NOERROR, one A record of one of the three sites, TTL <= 20; no ECS in
# the answer without ECS in the query; ECS scope > 0 with it; answers differ per client.
GATE_NOTES=()
for srv in resolverd gdnsd; do
    r=$(answer_of "${PORT[$srv]}" "$SVC_NAME" A)
    addr=$(awk '$1 == "rr" && $5 == "A" { print $6 }' <<<"$r")
    [[ $r == *"status=NOERROR flags= aa ecs=-"* && $(wc -w <<<"$addr") == 1 && -n $(site_of "$addr") ]] \
        || die "$srv: '$SVC_NAME A' without ECS should be NOERROR, AA, one A of a site, no ECS — got: $(tr '\n' ' ' <<<"$r")"
    log "$srv: '$SVC_NAME A' without ECS -> $(site_of "$addr") ($addr)"
    agree=0 total=0 sites_seen=""
    while read -r net want; do
        r=$(answer_of "${PORT[$srv]}" "$SVC_NAME" A "+subnet=$net")
        addr=$(awk '$1 == "rr" && $5 == "A" { print $6 }' <<<"$r")
        got=$(site_of "$addr")
        ecs=$(sed -n 's/.* ecs=//p' <<<"$r" | grep -v '^-$' || true)
        scope=${ecs##*/}
        [[ $r == *"status=NOERROR flags= aa "* && -n $got && $(wc -w <<<"$addr") == 1 ]] \
            || die "$srv: '$SVC_NAME A' with ECS $net should be NOERROR, AA, one A of a site — got: $(tr '\n' ' ' <<<"$r")"
        [[ -n $ecs && $scope =~ ^[0-9]+$ ]] && (( scope > 0 )) \
            || die "$srv: answer to ECS $net has no ECS option or scope 0 ($ecs)"
        total=$((total + 1))
        [[ $got == "$want" ]] && agree=$((agree + 1))
        [[ " $sites_seen " == *" $got "* ]] || sites_seen="$sites_seen $got"
    done < <(awk -v n="$ECS_CLIENTS" 'NR % int(n / 48 + 1) == 1' "$EXPECTED")
    (( $(wc -w <<<"$sites_seen") >= 2 )) || die "$srv answers every ECS client with the same site ($sites_seen) — the ECS mix would not exercise per-client answers"
    note="$srv: $agree of $total sampled ECS /24s answered with the site of the client map (sites seen:$sites_seen), scope > 0 on all"
    log "$note"
    (( agree == total )) || GATE_NOTES+=("$note")
done
stop_all

# ---------------------------------------------------------------- timed runs
CLK_TCK=$(getconf CLK_TCK)
kv() { awk -v k="$1" '/^loadgen-result / { for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) print substr($i, n + 1) } }' "$2"; }

# One line per run: "phase server mix round key=value ..."
RESULTS=$TMP/results.txt
: > "$RESULTS"

mixes_of() { [[ $1 == nsd ]] && echo static || echo static svc svc-ecs; }
allowed_of() { [[ $1 == static ]] && echo NOERROR,NXDOMAIN || echo NOERROR; }
declare -A MIX_DESC=([static]="static ($NQ names)" [svc]="$SVC_NAME A, no ECS" [svc-ecs]="$SVC_NAME A, ECS from $ECS_CLIENTS /24s")

# Checks on the loadgen result beyond what loadgen itself enforces; prints problems.
validate() {                # $1 server, $2 mix, $3 raw file
    local srv=$1 mix=$2 raw=$3 rec tc nx noa scoped addrs a
    rec=$(kv received "$raw") tc=$(kv tc "$raw")
    (( tc == 0 )) || echo "$tc truncated answers"
    case $mix in
        static)
            [[ $srv == echo ]] && return 0
            nx=$(kv rcode_NXDOMAIN "$raw")
            awk -v n="${nx:-0}" -v t="$rec" -v e="$NX_EXPECTED_PCT" -v tol="$NX_TOLERANCE_PCT" \
                'BEGIN { d = 100 * n / t - e; exit !(d > tol || d < -tol) }' \
                && echo "NXDOMAIN share $(awk -v n="${nx:-0}" -v t="$rec" 'BEGIN { printf "%.2f", 100 * n / t }')%, expected ${NX_EXPECTED_PCT}% ± $NX_TOLERANCE_PCT"
            ;;
        svc | svc-ecs)
            noa=$(kv no_a "$raw")
            (( noa == 0 )) || echo "$noa answers without an A record"
            addrs=$(kv answers_a "$raw")
            for a in ${addrs//,/ }; do
                [[ -n $(site_of "${a%%:*}") ]] || echo "answer address ${a%%:*} is not a site's"
            done
            if [[ $mix == svc-ecs ]]; then
                (( $(kv ecs "$raw") == rec )) || echo "only $(kv ecs "$raw") of $rec answers carry an ECS option"
                # Scope 0 is legitimate when a decision did not depend on the client (e.g. resolverd
                # with every site over capacity): required > 0 only without directed load.
                scoped=$(kv ecs_scoped "$raw")
                [[ $srv == resolverd && $LOAD_PER_ANSWER != 0 ]] || (( scoped == rec )) \
                    || echo "only $scoped of $rec answers carry ECS with scope > 0"
                (( $(tr ',' '\n' <<<"$addrs" | grep -c .) >= 2 )) || echo "every answer names the same site ($addrs)"
            fi
            ;;
    esac
    return 0
}

busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 }' /proc/stat; }   # user+nice+system, all CPUs
# UDP datagrams the kernel dropped because a socket's receive buffer was full (machine-wide).
rcvbuf_drops() { awk '$1 == "Udp:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; n = 1 } else print $c }' /proc/net/snmp; }
# "busy total" ticks of one core: everything but idle and iowait, interrupts included (with
# IRQ time accounting, softirq work — most of the loopback's packet delivery — is charged to
# no process, so a process's utime+stime understates how busy its core is).
core_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
core_pct() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'; }

# With QUIET_WAIT > 0: wait (at most QUIET_WAIT s) until, over one second, everything else
# on the machine uses less than BUSY_PCT % of a core. Between runs the server is idle, so
# the machine's busy time is the others' (plus a little of the server's housekeeping).
wait_quiet() {
    (( QUIET_WAIT > 0 )) || return 0
    local start=$SECONDS a b pct said=0
    while :; do
        a=$(busy_ticks); sleep 1; b=$(busy_ticks)
        pct=$(awk -v a="$a" -v b="$b" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", 100 * (b - a) / hz }')
        (( pct < BUSY_PCT )) && return 0
        if (( SECONDS - start >= QUIET_WAIT )); then
            log "  machine still busy (${pct}% of a core used by others) after ${QUIET_WAIT}s: running anyway"
            return 0
        fi
        (( said )) || { log "  machine busy (${pct}% of a core used by others): waiting up to ${QUIET_WAIT}s"; said=1; }
        sleep 1
    done
}

# The steal a run may have: the p99 of the runs at half rate (`half`) is the figure most
# sensitive to it, as one stall of the vCPU of a few ms queues a few thousand queries behind
# it (on the development VM: p99 250–400 µs at 0 % steal, 28–32 ms at 7–23 %).
LATENCY_MAX_STEAL_PCT=${LATENCY_MAX_STEAL_PCT:-1}
[[ $LATENCY_MAX_STEAL_PCT =~ ^[0-9]+$ ]] || die "LATENCY_MAX_STEAL_PCT must be a whole number"
steal_limit() { [[ $1 == half ]] && echo "$LATENCY_MAX_STEAL_PCT" || echo "$MAX_STEAL_PCT"; }

RETRIED=()
loadgen_run() {             # $1 phase, $2 server, $3 mix, $4 round, $5... loadgen mode options
    local phase=$1 srv=$2 mix=$3 round=$4; shift 4
    local raw=$OUT_DIR/raw/$phase-$srv-$mix-$round.txt qf=$TMP/q-$mix.txt t0 t1 s0 s1 b0 b1 c0 c1 d0 d1 r0 r1 rc problems lost_opt try
    local lost_tried=0 busy_tried=0 steal_tried=0 st0 st1 steal
    [[ $phase == max || $phase == ceiling ]] && lost_opt=$MAX_LOST_PCT || lost_opt=100
    for ((try = 1; ; try++)); do
        rc=0
        wait_quiet
        st0=$(steal_ticks "$SERVER_CPU" "$CLIENT_CPU")
        t0=$(cpu_ticks "$SERVER_PID"); u0=$(cpu_ticks "$SERVER_PID" user); b0=$(busy_ticks); c0=$(core_ticks "$SERVER_CPU"); d0=$(core_ticks "$CLIENT_CPU"); r0=$(rcvbuf_drops); s0=$(date +%s.%N)
        timeout --kill-after=5 $((DURATION + 30)) "${PIN_CLIENT[@]}" "$LOADGEN" -s 127.0.0.1 -p "${PORT[$srv]}" \
            -f "$qf" -d "$DURATION" -n "$SOCKETS" -b "$BATCH" -a "$([[ $srv == echo ]] && echo NOERROR || allowed_of "$mix")" \
            -l "$lost_opt" -L "$phase/$srv/$mix/$round" "$@" >"$raw" 2>&1 || rc=$?
        t1=$(cpu_ticks "$SERVER_PID"); u1=$(cpu_ticks "$SERVER_PID" user); b1=$(busy_ticks); c1=$(core_ticks "$SERVER_CPU"); d1=$(core_ticks "$CLIENT_CPU"); r1=$(rcvbuf_drops); s1=$(date +%s.%N)
        st1=$(steal_ticks "$SERVER_CPU" "$CLIENT_CPU"); steal=$(steal_pct "$st0" "$st1")
        alive "$SERVER_PID" || die "$srv died during the $phase run of $mix (see ${raw#"$ROOT"/})"
        grep -q '^loadgen-result ' "$raw" || { tail -5 "$raw" >&2; die "loadgen failed against $srv ($mix, rc $rc) — see ${raw#"$ROOT"/}"; }
        # A run that failed only by losing too much is repeated once: on a shared machine a
        # stall of another process can cost one batch of in-flight queries. Anything else fails.
        if (( rc != 0 && !lost_tried )) && ! grep '^loadgen: FAIL' "$raw" | grep -qv 'FAIL: lost'; then
            log "  $phase run of $srv on $mix lost $(kv lost_pct "$raw")% (> $MAX_LOST_PCT%): repeating it once"
            cp "$raw" "${raw%.txt}-failed.txt"
            RETRIED+=("$phase $srv $mix round $round: lost $(kv lost_pct "$raw")% on try $try")
            lost_tried=1
            continue
        fi
        # A run with more than MAX_STEAL_PCT % steal on either core measured the host (bench/lib.sh):
        # repeated after STEAL_WAIT s, up to STEAL_RETRIES times.
        if (( rc == 0 && steal > $(steal_limit "$phase") && steal_tried < STEAL_RETRIES )); then
            log "  $phase run of $srv on $mix: the hypervisor took ${steal}% of a core (steal > $(steal_limit "$phase")%): repeating it in ${STEAL_WAIT}s"
            cp "$raw" "${raw%.txt}-steal-$try.txt"
            RETRIED+=("$phase $srv $mix round $round: ${steal}% steal on try $try")
            steal_tried=$((steal_tried + 1))
            sleep "$STEAL_WAIT"
            continue
        fi
        # With QUIET_WAIT, a run disturbed by other processes is repeated once as well.
        local busy
        busy=$(awk -v a="$b0" -v b="$b1" -v hz="$CLK_TCK" -v c="$t1" -v c0="$t0" \
            -v l="$(kv cpu_s "$raw")" -v t0="$s0" -v t1="$s1" 'BEGIN { o = (b - a - (c - c0)) / hz - l; printf "%.0f", 100 * o / (t1 - t0) }')
        if (( rc == 0 && !busy_tried && QUIET_WAIT > 0 && busy > BUSY_PCT )); then
            log "  $phase run of $srv on $mix: other processes used ${busy}% of a core meanwhile: repeating it once"
            cp "$raw" "${raw%.txt}-busy.txt"
            RETRIED+=("$phase $srv $mix round $round: other processes used ${busy}% of a core on try $try")
            busy_tried=1
            continue
        fi
        break
    done
    (( rc == 0 )) || { grep -v '^loadgen-result' "$raw" >&2; die "$phase run of $srv on $mix failed its checks (rc $rc) — see ${raw#"$ROOT"/}"; }
    problems=$(validate "$srv" "$mix" "$raw")
    [[ -z $problems ]] || die "$phase run of $srv on $mix: $(tr '\n' ';' <<<"$problems") — see ${raw#"$ROOT"/}"
    local rec cpu_s srv_pct cpu_us user_us other
    rec=$(kv received "$raw")
    cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", (b - a) / hz }')
    srv_pct=$(awk -v c="$cpu_s" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.0f", 100 * c / (b - a) }')
    cpu_us=$(awk -v c="$cpu_s" -v n="$rec" 'BEGIN { printf "%.3f", (n > 0 ? 1e6 * c / n : 0) }')
    # The server's own code, apart from the kernel's work of receiving and sending, which is
    # most of a UDP answer's CPU and much the same for every server.
    user_us=$(awk -v a="$u0" -v b="$u1" -v hz="$CLK_TCK" -v n="$rec" 'BEGIN { printf "%.3f", (n > 0 ? 1e6 * (b - a) / hz / n : 0) }')
    # CPU (user + system, every core) used meanwhile by anything but the server and loadgen.
    other=$(awk -v a="$b0" -v b="$b1" -v hz="$CLK_TCK" -v c="$cpu_s" -v l="$(kv cpu_s "$raw")" -v t0="$s0" -v t1="$s1" \
        'BEGIN { o = (b - a) / hz - c - l; if (o < 0) o = 0; printf "%.0f", 100 * o / (t1 - t0) }')
    printf '%s %s %s %s qps=%s offered=%s mean=%s p99=%s lost_pct=%s srv_cpu=%s lg_cpu=%s cpu_us=%s user_us=%s other=%s score=%s clcore=%s drops=%s steal=%s\n' \
        "$phase" "$srv" "$mix" "$round" "$(kv qps "$raw")" "$(kv offered_qps "$raw")" "$(kv mean_us "$raw")" \
        "$(kv p99_us "$raw")" "$(kv lost_pct "$raw")" "$srv_pct" "$(kv cpu_pct "$raw")" "$cpu_us" "$user_us" "$other" \
        "$(core_pct "$c0" "$c1")" "$(core_pct "$d0" "$d1")" "$(( ${r1:-0} - ${r0:-0} ))" "$steal" >> "$RESULTS"
    LAST_LINE=$(tail -1 "$RESULTS")
}

# awk: the value of `key=` in a line of $RESULTS ("" when absent).
AWK_GET='function get(key,   i, n) { for (i = 5; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == key) return substr($i, n + 1) }; return "" }'
vals() {                    # $1 phase, $2 server, $3 mix, $4 key -> values, one a line; the runs with
    # steal above MAX_STEAL_PCT (kept after STEAL_RETRIES repeats) are left out unless all had it.
    awk -v p="$1" -v s="$2" -v m="$3" -v k="$4" -v max="$(steal_limit "$1")" "$AWK_GET"'
        $1 == p && $2 == s && $3 == m { v[++n] = get(k); st[n] = get("steal") + 0; if (st[n] <= max) clean++ }
        END { for (i = 1; i <= n; i++) if (!clean || st[i] <= max) print v[i] }' "$RESULTS"
}
median() {                  # same arguments as vals
    vals "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$LAST_LINE"; }

if [[ $CEILING == 1 ]]; then
    log "loadgen ceiling: max rate against bench/echo.c (no DNS work) on core $SERVER_CPU, ${DURATION}s"
    start_server echo
    loadgen_run ceiling echo static 1 -o "$OUTSTANDING"
    stop_pid "$SERVER_PID"
    log "$(printf '  echo: %8.0f qps, mean %s us, p99 %s us, echo CPU %s%% (core %s%%), loadgen core %s%%, other %s%%, steal %s%%' \
        "$(field qps)" "$(field mean)" "$(field p99)" "$(field srv_cpu)" "$(field score)" "$(field clcore)" "$(field other)" "$(field steal)")"
fi

SERVERS=(resolverd nsd gdnsd)
log "max rate: $ROUNDS round(s) × ${DURATION}s per server and mix, loadgen -o $OUTSTANDING -n $SOCKETS -b $BATCH, server on core $SERVER_CPU, loadgen on core $CLIENT_CPU"
for ((r = 1; r <= ROUNDS; r++)); do
    for srv in "${SERVERS[@]}"; do
        start_server "$srv"; sleep 0.5
        for mix in $(mixes_of "$srv"); do
            loadgen_run max "$srv" "$mix" "$r" -o "$OUTSTANDING"
            log "$(printf '  round %d/%d %-9s %-7s %8.0f qps, mean %6s us, p99 %6s us, server CPU %3s%% (core %3s%%), loadgen core %3s%%, other %s%%, steal %s%%' \
                "$r" "$ROUNDS" "$srv" "$mix" "$(field qps)" "$(field mean)" "$(field p99)" "$(field srv_cpu)" "$(field score)" "$(field clcore)" "$(field other)" "$(field steal)")"
        done
        stop_pid "$SERVER_PID"
    done
done

declare -A HALF
for mix in static svc svc-ecs; do
    HALF[$mix]=$(awk -v q="$(median max resolverd "$mix" qps)" 'BEGIN { printf "%.0f", q / 2 }')
done
log "fixed rate: open loop at $RATE/s (CPU per query) and at half of resolverd's max rate (static ${HALF[static]}/s, svc ${HALF[svc]}/s, svc-ecs ${HALF[svc-ecs]}/s), $ROUNDS round(s) × ${DURATION}s each"
for ((r = 1; r <= ROUNDS; r++)); do
    for srv in "${SERVERS[@]}"; do
        start_server "$srv"; sleep 0.5
        for mix in $(mixes_of "$srv"); do
            loadgen_run rate "$srv" "$mix" "$r" -r "$RATE"
            log "$(printf '  round %d/%d %-9s %-7s @%s/s: %7s us CPU/query, server CPU %3s%%, lost %s%% (%s dropped by full socket buffers), p99 %s us, other %s%%, steal %s%%' \
                "$r" "$ROUNDS" "$srv" "$mix" "$RATE" "$(field cpu_us)" "$(field srv_cpu)" "$(field lost_pct)" "$(field drops)" "$(field p99)" "$(field other)" "$(field steal)")"
            loadgen_run half "$srv" "$mix" "$r" -r "${HALF[$mix]}"
            log "$(printf '  round %d/%d %-9s %-7s @%s/s: p99 %6s us, mean %6s us, lost %s%% (%s dropped by full socket buffers), other %s%%, steal %s%%' \
                "$r" "$ROUNDS" "$srv" "$mix" "${HALF[$mix]}" "$(field p99)" "$(field mean)" "$(field lost_pct)" "$(field drops)" "$(field other)" "$(field steal)")"
        done
        stop_pid "$SERVER_PID"
    done
done

# ---------------------------------------------------------------- report
label() { case $1 in resolverd) echo resolverd ;; nsd) echo "NSD $NSD_VERSION" ;; gdnsd) echo "gdnsd $GDNSD_VERSION" ;; esac; }
fmt0() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN { printf "%.0f", v }' || echo "–"; }
fmt2() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN { printf "%.2f", v }' || echo "–"; }
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }' || echo "–"; }
per_run() {                 # every run's value, the ones with steal above MAX_STEAL_PCT marked (and left out of medians)
    awk -v p="$1" -v s="$2" -v m="$3" -v k="$4" -v max="$(steal_limit "$1")" "$AWK_GET"'
        $1 == p && $2 == s && $3 == m { printf "%s%.0f%s", sep, get(k), (get("steal") + 0 > max ? " (steal " get("steal") "%)" : ""); sep = ", " }' "$RESULTS"
}
# A fixed-rate cell, with a warning when the server did not keep up (lost > MAX_LOST_PCT)
# or loadgen could not offer the rate (offered < 98 % of it).
rate_note() {               # $1 phase, $2 server, $3 mix, $4 rate
    local lost off
    lost=$(median "$1" "$2" "$3" lost_pct) off=$(median "$1" "$2" "$3" offered)
    awk -v l="$lost" -v m="$MAX_LOST_PCT" -v o="$off" -v r="$4" 'BEGIN {
        if (l > m) printf " (overloaded: %.1f%% lost)", l; else if (o < 0.98 * r) printf " (offered only %.0f/s)", o }'
}
LG_BUSY=0
{
    echo "## resolverd vs gdnsd vs NSD — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "bench/compare.sh: loadgen, $SOCKETS UDP sockets, batches of $BATCH, EDNS 1232; ${DURATION}s runs, $ROUNDS round(s) alternating resolverd, NSD, gdnsd; medians over rounds. Server pinned to core $SERVER_CPU, loadgen to core $CLIENT_CPU. resolverd: $RESOLVERD_THREADS_NOTE, policy $POLICY, steering.load-per-answer $LOAD_PER_ANSWER; NSD server-count 1; gdnsd udp_threads 1."
    [[ -n $BUSY_NOTE ]] && (( QUIET_WAIT == 0 )) && { echo; echo "**$BUSY_NOTE**"; }
    echo
    echo "Mixes: **static** = $NQ names of $(basename "$QUERIES") (NXDOMAIN share ${NX_EXPECTED_PCT}%); **svc** = \`$SVC_NAME A\` without ECS; **svc-ecs** = \`$SVC_NAME A\` with ECS from $ECS_CLIENTS distinct /24s, each mapped to fra1/ams1/par1."
    echo
    echo "### Maximum rate (closed loop, $OUTSTANDING queries in flight)"
    echo
    echo "| mix | server | queries/s | mean latency (µs) | p99 latency (µs) | server CPU | server core busy | loadgen core busy | other load | steal | queries/s per round |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for mix in static svc svc-ecs; do
        for srv in "${SERVERS[@]}"; do
            [[ " $(mixes_of "$srv") " == *" $mix "* ]] || continue
            lg=$(median max "$srv" "$mix" clcore)
            awk -v c="$lg" 'BEGIN { exit !(c >= 90) }' && LG_BUSY=1
            printf '| %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s%% | %s%% | %s |\n' "$mix" "$(label "$srv")" \
                "$(fmt0 "$(median max "$srv" "$mix" qps)")" "$(fmt0 "$(median max "$srv" "$mix" mean)")" \
                "$(fmt0 "$(median max "$srv" "$mix" p99)")" "$(fmt0 "$(median max "$srv" "$mix" srv_cpu)")" \
                "$(fmt0 "$(median max "$srv" "$mix" score)")" \
                "$(fmt0 "$lg")" "$(fmt0 "$(median max "$srv" "$mix" other)")" "$(fmt0 "$(median max "$srv" "$mix" steal)")" \
                "$(per_run max "$srv" "$mix" qps)"
        done
    done
    echo
    echo "### Fixed offered rate (open loop)"
    echo
    echo "| mix | server | CPU µs per answer @ $RATE/s | of which user space | server CPU @ $RATE/s | steal @ $RATE/s | p99 (µs) @ $RATE/s | lost @ $RATE/s | offered rate = ½ resolverd max | p99 (µs) @ ½ | mean (µs) @ ½ | lost @ ½ |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for mix in static svc svc-ecs; do
        for srv in "${SERVERS[@]}"; do
            [[ " $(mixes_of "$srv") " == *" $mix "* ]] || continue
            printf '| %s | %s | %s%s | %s | %s%% | %s%% | %s | %s%% | %s/s | %s%s | %s | %s%% |\n' "$mix" "$(label "$srv")" \
                "$(fmt2 "$(median rate "$srv" "$mix" cpu_us)")" "$(rate_note rate "$srv" "$mix" "$RATE")" \
                "$(fmt2 "$(median rate "$srv" "$mix" user_us)")" \
                "$(fmt0 "$(median rate "$srv" "$mix" srv_cpu)")" "$(fmt0 "$(median rate "$srv" "$mix" steal)")" \
                "$(fmt0 "$(median rate "$srv" "$mix" p99)")" \
                "$(fmt2 "$(median rate "$srv" "$mix" lost_pct)")" \
                "${HALF[$mix]}" "$(fmt0 "$(median half "$srv" "$mix" p99)")" "$(rate_note half "$srv" "$mix" "${HALF[$mix]}")" \
                "$(fmt0 "$(median half "$srv" "$mix" mean)")" "$(fmt2 "$(median half "$srv" "$mix" lost_pct)")"
        done
    done
    echo
    echo "### Ratios (resolverd ÷ other; queries/s: > 1 = resolverd faster; CPU per answer: < 1 = resolverd cheaper)"
    echo
    echo "| mix | queries/s resolverd/gdnsd | queries/s resolverd/NSD | CPU per answer resolverd/gdnsd | CPU per answer resolverd/NSD | user-space CPU per answer resolverd/gdnsd |"
    echo "|---|---:|---:|---:|---:|---:|"
    for mix in static svc svc-ecs; do
        rq=$(median max resolverd "$mix" qps) rc=$(median rate resolverd "$mix" cpu_us)
        nq="" ncpu=""
        [[ $mix == static ]] && { nq=$(median max nsd "$mix" qps); ncpu=$(median rate nsd "$mix" cpu_us); }
        printf '| %s | **%s** | **%s** | %s | %s | %s |\n' "$mix" \
            "$(ratio "$rq" "$(median max gdnsd "$mix" qps)")" "$(ratio "$rq" "$nq")" \
            "$(ratio "$rc" "$(median rate gdnsd "$mix" cpu_us)")" "$(ratio "$rc" "$ncpu")" \
            "$(ratio "$(median rate resolverd "$mix" user_us)" "$(median rate gdnsd "$mix" user_us)")"
    done
    echo
    if [[ $CEILING == 1 ]]; then
        echo "Load generator ceiling: against bench/echo.c (returns each query, no DNS work) on core $SERVER_CPU, loadgen reached $(fmt0 "$(median ceiling echo static qps)") queries/s (loadgen core $(fmt0 "$(median ceiling echo static clcore)")% busy, echo core $(fmt0 "$(median ceiling echo static score)")% busy)." 
        echo
    fi
    (( LG_BUSY )) && { echo "Note: loadgen's core was ≥ 90% busy in some max-rate runs — there the load generator, not the server, may have set the ceiling; those figures are lower bounds."; echo; }
    worst=$(awk '{ for (i = 5; i <= NF; i++) if ($i ~ /^other=/) { v = substr($i, 7) + 0; if (v > m) { m = v; w = $1 " " $2 " " $3 " round " $4 } } } END { if (m > 10) printf "%d%% of a core (%s)", m, w }' "$RESULTS")
    [[ -n $worst ]] && { echo "**Note: other processes on the machine used CPU during the timed runs — up to $worst; see the *other load* column. Figures from such runs are depressed; rerun on a quiet machine.**"; echo; }
    stolen=$(awk -v max="$MAX_STEAL_PCT" -v lmax="$LATENCY_MAX_STEAL_PCT" '{ for (i = 5; i <= NF; i++) if ($i ~ /^steal=/ && substr($i, 7) + 0 > ($1 == "half" ? lmax : max)) { n++; w = w (w ? "; " : "") $1 " " $2 " " $3 " round " $4 " " substr($i, 7) "%" } }
        END { if (n) printf "%d run(s): %s", n, w }' "$RESULTS")
    if [[ -n $stolen ]]; then
        echo "**Steal (the hypervisor running something else on the bench's cores) stayed above ${MAX_STEAL_PCT}% (${LATENCY_MAX_STEAL_PCT}% in the runs at ½ rate) after $STEAL_RETRIES repeat(s) in $stolen. Those runs are left out of the medians unless every run of their row had it; such a row measures the host more than the server.**"
    else
        echo "Steal (the hypervisor running something else on the bench's cores): at most ${MAX_STEAL_PCT}% in every run kept (${LATENCY_MAX_STEAL_PCT}% in the runs at ½ rate)."
    fi
    echo
    for n in "${RETRIED[@]}"; do echo "Repeated run: $n."; echo; done
    for n in "${GATE_NOTES[@]}"; do echo "Gate note: $n (the servers' own choice; every answer was still one of the three sites with ECS scope > 0)."; echo; done
    echo "resolverd binary: \`${RESOLVERD_BIN#"$ROOT"/}\`; raw loadgen output in bench/out/raw/."
} > "$OUT_DIR/result.md"

echo
cat "$OUT_DIR/result.md"
log "written to ${OUT_DIR#"$ROOT"/}/result.md (raw loadgen output in ${OUT_DIR#"$ROOT"/}/raw/)"
