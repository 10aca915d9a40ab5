#!/usr/bin/env bash
# bench/scale/run.sh — resolverd at scale (issue 7, "Serving speed").
#
# Generates a large case (bench/scale/gen.py: 10 000 sites, 1 000 services of 8-32 sites plus two
# of 1 000 sites, 1 000 000 latency prefixes, one token per site) into a temp dir, then measures:
#   - `resolverd check --config` wall time and peak RSS
#   - load time of `resolverd serve` (start until the first `dig` answer for a service name),
#     the server pinned to core SERVER_CPU
#   - RSS (VmRSS/VmHWM) after load and after the load runs
#   - QPS for a service-name mix with ECS from many /24s (and /48s): the scale case's normal
#     services, its 1000-site services, and the shipped small example (api.svc.example. with the
#     same kind of ECS mix) — and the QPS drop of the scale case relative to the small one;
#     each "cold" (every query a new client prefix: a new binding), "warm" (the clients ask
#     again after all the others, as resolvers do once per TTL: binding kept, decided anew) and
#     "hot" (a few thousand clients cycled: asked again within a second; see qps_mixes).
# Load tool: bench/loadgen.c (per-query ECS) on core CLIENT_CPU; dnsperf if loadgen.c is absent.
#
# Usage: bench/scale/run.sh
# Knobs (environment):
#   RESOLVERD_BIN=/tmp/resolverd-scale   (a copy of .build/release/resolverd, made again when the build is newer)
#   DURATION=10 ROUNDS=3 WARMUP=5 WARMUP_MAX=300 OUTSTANDING=200 SERVER_CPU=0 CLIENT_CPU=1
#   LOAD_TIMEOUT=600                     seconds to wait for the scale case's first answer; a
#                                        server still loading then is profiled with perf for
#                                        PROFILE_SECS=10 (hottest frames printed) and stopped, and
#                                        the QPS runs use a reduced case that this binary can load:
#   FALLBACK_GEN_ARGS="--sites 1200 --services 10"   (same 1M prefixes and 1000-site services;
#                                        empty = no fallback)
#   GEN_ARGS="--prefixes 100000 ..."     passed to gen.py (sizes, seed) — for bisecting; see also
#                                        bench/scale/loadcurve.sh
#   SKIP_SMALL=1 / SKIP_QPS=1            leave out the small case / all QPS runs
#   KEEP_TMP=1                           keep the generated case and logs
#   LOCK_FILE=/tmp/resolverd-bench-compare.lock LOCK_WAIT=1800   one benchmark at a time on the
#                                        machine (the lock bench/compare.sh takes)
#   OUT_DIR=bench/scale/out              result.md and raw outputs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=scale
# shellcheck source=bench/scale/lib.sh
. "$ROOT/bench/scale/lib.sh"

RESOLVERD_BIN=${RESOLVERD_BIN:-/tmp/resolverd-scale}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
OUTSTANDING=${OUTSTANDING:-200}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-600}
PROFILE_SECS=${PROFILE_SECS:-10}
WARMUP=${WARMUP:-5}
WARMUP_MAX=${WARMUP_MAX:-300}
FALLBACK_GEN_ARGS=${FALLBACK_GEN_ARGS-"--sites 1200 --services 10"}
GEN_ARGS=${GEN_ARGS:-}
OUT_DIR=${OUT_DIR:-$ROOT/bench/scale/out}

for v in DURATION ROUNDS OUTSTANDING SERVER_CPU CLIENT_CPU LOAD_TIMEOUT PROFILE_SECS WARMUP WARMUP_MAX; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
(( DURATION >= 1 && ROUNDS >= 1 && OUTSTANDING >= 1 )) || die "DURATION, ROUNDS, OUTSTANDING must be >= 1"
refresh_default_binary
[[ -x $RESOLVERD_BIN ]] || die "resolverd binary not found at $RESOLVERD_BIN — build a release (make release) or set RESOLVERD_BIN"
for tool in python3 dig taskset ss timeout awk cc /usr/bin/time; do
    command -v "$tool" >/dev/null || die "'$tool' is missing"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/resolverd-scale.XXXXXX")
install_traps
take_bench_lock
mkdir -p "$OUT_DIR/raw"
rm -f "$OUT_DIR"/raw/*
setup_pinning
build_loadgen

take_port DNS_PORT; take_port HTTP_PORT; take_port SMALL_DNS; take_port SMALL_HTTP
CASE=$TMP/case
RESULTS=$TMP/results.txt; : > "$RESULTS"      # "label qps server_cpu_pct lost_pct"
SUMMARY=()                                     # lines for the report

# ---------------------------------------------------------------- generate
log "generating the case into $CASE (gen.py $GEN_ARGS)"
g0=$(date +%s.%N)
# shellcheck disable=SC2086
python3 "$ROOT/bench/scale/gen.py" "$CASE" --dns-port "$DNS_PORT" --http-port "$HTTP_PORT" $GEN_ARGS > "$TMP/case.txt" \
    || die "gen.py failed"
g1=$(date +%s.%N)
CASE_LINE=$(cat "$TMP/case.txt")
log "case: $CASE_LINE ($(awk -v a="$g0" -v b="$g1" 'BEGIN { printf "%.1f", b - a }') s)"
SIZES="resolverd.yaml $(du -h "$CASE/resolverd.yaml" | cut -f1), latency.csv $(du -h "$CASE/latency.csv" | cut -f1), tokens.yaml $(du -h "$CASE/tokens.yaml" | cut -f1)"

# ---------------------------------------------------------------- check
log "resolverd check --config (scale case)"
set +e
/usr/bin/time -f '%e %M' -o "$TMP/check.time" "$RESOLVERD_BIN" check --config "$CASE/resolverd.yaml" >"$OUT_DIR/raw/check.txt" 2>&1
check_rc=$?
set -e
read -r CHECK_S CHECK_KB < "$TMP/check.time" || true
(( check_rc == 0 )) || { tail -20 "$OUT_DIR/raw/check.txt" >&2; die "resolverd check rejected the generated case (rc $check_rc)"; }
log "check: ${CHECK_S}s, peak RSS $(mib "$CHECK_KB") MiB"

# ---------------------------------------------------------------- QPS helpers
qps_rounds() {              # $1 label, $2 port, $3 query file
    local label=$1 port=$2 qf=$3 r t0 t1 s0 s1 cpu lostpct
    for ((r = 1; r <= ROUNDS; r++)); do
        t0=$(cpu_ticks "$SERVER_PID"); s0=$(date +%s.%N)
        run_load "$port" "$qf" "$DURATION" "$OUT_DIR/raw/$label-$r.txt"
        t1=$(cpu_ticks "$SERVER_PID"); s1=$(date +%s.%N)
        alive "$SERVER_PID" || die "resolverd died during the $label run"
        cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v x="$s0" -v y="$s1" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (y - x) }')
        lostpct=$(awk -v l="${LOAD_LOST:-0}" -v s="${LOAD_SENT:-0}" 'BEGIN { printf "%.2f", (s > 0 ? 100 * l / s : 0) }')
        echo "$label $LOAD_QPS $cpu $lostpct" >> "$RESULTS"
        log "$(printf '%-12s round %d/%d: %8s qps, server core %s%%, lost %s%%  [%s]' "$label" "$r" "$ROUNDS" "$LOAD_QPS" "$cpu" "$lostpct" "$LOAD_LINE")"
    done
}
# qps_mixes LABEL PORT BASE — three runs per mix:
#   cold: 1 × DURATION over BASE.txt from its start: (service, prefix) pairs never seen, so nearly
#         every query makes a new client binding;
#   warm: after one whole pass over BASE.txt (the rest of it run as a warm-up, not counted),
#         ROUNDS × DURATION over it again: every client has its binding and asks again only
#         after all the others (as resolvers do once per TTL), so a decision is made per query;
#   hot:  ROUNDS × DURATION over BASE-hot.txt (a few thousand pairs cycled, after a WARMUP s
#         pass): the same clients again within a second, so the server may reuse decisions.
qps_mixes() {
    local label=$1 port=$2 base=$3 n secs
    n=$(wc -l < "$base.txt")
    log "QPS $label: cold 1 × ${DURATION}s, warm $ROUNDS × ${DURATION}s after a full pass over $n pairs, hot $ROUNDS × ${DURATION}s ($LOADGEN -o $OUTSTANDING on core $CLIENT_CPU)"
    ROUNDS=1 qps_rounds "$label-cold" "$port" "$base.txt"
    # Time for a whole pass at the cold rate (+10 %), at least WARMUP, at most WARMUP_MAX.
    secs=$(awk -v n="$n" -v q="$LOAD_QPS" -v lo="$WARMUP" -v hi="$WARMUP_MAX" \
        'BEGIN { s = (q > 0 ? 1.1 * n / q : hi); s = int(s) + 1; if (s < lo) s = lo; if (s > hi) s = hi; print s }')
    log "$label: warm-up pass over $n pairs (${secs}s)"
    run_load "$port" "$base.txt" "$secs" "$OUT_DIR/raw/$label-warmup.txt"
    qps_rounds "$label-warm" "$port" "$base.txt"
    run_load "$port" "$base-hot.txt" "$WARMUP" "$OUT_DIR/raw/$label-hotup.txt"
    qps_rounds "$label-hot" "$port" "$base-hot.txt"
}
median() {                  # median of column $2 for label $1
    awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$RESULTS" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'
}
per_run() { awk -v n="$1" '$1 == n { printf "%s%s", sep, $2; sep = ", " }' "$RESULTS"; }

# serve_case DIR NAME: starts serve on the case in DIR, measures load time and memory, checks one
# answer, runs the QPS mixes (unless SKIP_QPS) and stops it. Sets <NAME>_LOAD_S, _RSS_LOAD, _HWM_LOAD,
# _PEAK, _RSS_RUN, _HWM_RUN, _LOADED (yes|no), _PROFILE (file with the profile of a stuck load).
serve_case() {
    local dir=$1 name=$2 slog svc ecs big ans loaded=yes
    slog=$OUT_DIR/raw/serve-$name.log
    svc=$(awk 'NR == 1 { print $1 }' "$dir/queries.txt")
    ecs=$(awk 'NR == 1 { sub(/^ecs=/, "", $3); print $3 }' "$dir/queries.txt")
    log "starting resolverd serve ($name) on core $SERVER_CPU, DNS 127.0.0.1:$DNS_PORT; waiting up to ${LOAD_TIMEOUT}s for $svc"
    PEAK_WHILE_LOADING=0
    start_resolverd "$dir/resolverd.yaml" "$slog"
    if wait_answer "$DNS_PORT" "$svc" "$ecs" "$LOAD_TIMEOUT" "$slog" soft; then
        printf -v "${name}_LOAD_S" '%s' "$(awk -v a="$SERVER_T0" -v b="$ANSWER_T" 'BEGIN { printf "%.2f", b - a }')"
        sleep 1
    else
        loaded=no
        printf -v "${name}_LOAD_S" '>%s (no answer yet)' "$LOAD_TIMEOUT"
        log "serve ($name) has not answered after ${LOAD_TIMEOUT}s; profiling it for ${PROFILE_SECS}s (inclusive %):"
        profile "$SERVER_PID" "$PROFILE_SECS" 30 | tee "$OUT_DIR/raw/stuck-$name.txt" >&2
        printf -v "${name}_PROFILE" '%s' "$OUT_DIR/raw/stuck-$name.txt"
    fi
    printf -v "${name}_LOADED" '%s' "$loaded"
    printf -v "${name}_PEAK" '%s' "$PEAK_WHILE_LOADING"
    printf -v "${name}_RSS_LOAD" '%s' "$(proc_kb "$SERVER_PID" VmRSS)"
    printf -v "${name}_HWM_LOAD" '%s' "$(proc_kb "$SERVER_PID" VmHWM)"
    local l=${name}_LOAD_S r=${name}_RSS_LOAD h=${name}_HWM_LOAD
    log "$name: load time ${!l}s; VmRSS $(mib "${!r}") MiB, VmHWM $(mib "${!h}") MiB"
    if [[ $loaded == yes ]]; then
        # Sanity: an answer with ECS carries a site address from 198.18.0.0/15 and the ECS option.
        ans=$(dig @127.0.0.1 -p "$DNS_PORT" "$svc" A +subnet="$ecs" +norec +tries=2 +time=2 2>&1) || true
        grep -Eq "IN[[:space:]]+A[[:space:]]+198\.1[89]\." <<<"$ans" || { echo "$ans" >&2; die "$svc A did not answer with a site address"; }
        grep -q "CLIENT-SUBNET: ${ecs%/*}/${ecs#*/}/" <<<"$ans" || { echo "$ans" >&2; die "$svc A: no ECS option echoed"; }
        big=$(awk 'NR == 1 { print $1 }' "$dir/queries-big.txt")
        dig @127.0.0.1 -p "$DNS_PORT" "$big" A +short +norec +tries=2 +time=2 | grep -Eq '^198\.1[89]\.' \
            || die "$big A did not answer with a site address"
        if [[ -z ${SKIP_QPS:-} ]]; then
            qps_mixes "$name" "$DNS_PORT" "$dir/queries"
            qps_mixes "$name-big" "$DNS_PORT" "$dir/queries-big"
        fi
    fi
    printf -v "${name}_RSS_RUN" '%s' "$(proc_kb "$SERVER_PID" VmRSS)"
    printf -v "${name}_HWM_RUN" '%s' "$(proc_kb "$SERVER_PID" VmHWM)"
    r=${name}_RSS_RUN h=${name}_HWM_RUN
    [[ $loaded == yes && -z ${SKIP_QPS:-} ]] && log "$name after the load runs: VmRSS $(mib "${!r}") MiB, VmHWM $(mib "${!h}") MiB"
    stop_pid "$SERVER_PID"
}

serve_case "$CASE" scale
if [[ $scale_LOADED == no && -n $FALLBACK_GEN_ARGS ]]; then
    # The full case cannot be served (yet): measure the query path on a case this binary loads —
    # the same latency file size and 1000-site services, fewer sites x services.
    CASE2=$TMP/case2
    log "generating a servable reduced case into $CASE2 (gen.py $GEN_ARGS $FALLBACK_GEN_ARGS)"
    # shellcheck disable=SC2086
    python3 "$ROOT/bench/scale/gen.py" "$CASE2" --dns-port "$DNS_PORT" --http-port "$HTTP_PORT" $GEN_ARGS $FALLBACK_GEN_ARGS \
        > "$TMP/case2.txt" || die "gen.py failed"
    CASE2_LINE=$(cat "$TMP/case2.txt")
    /usr/bin/time -f '%e %M' -o "$TMP/check2.time" "$RESOLVERD_BIN" check --config "$CASE2/resolverd.yaml" >"$OUT_DIR/raw/check-reduced.txt" 2>&1 \
        || { tail -20 "$OUT_DIR/raw/check-reduced.txt" >&2; die "resolverd check rejected the reduced case"; }
    read -r CHECK2_S CHECK2_KB < "$TMP/check2.time"
    log "reduced case: $CASE2_LINE; check ${CHECK2_S}s, peak RSS $(mib "$CHECK2_KB") MiB"
    serve_case "$CASE2" reduced
fi

# ---------------------------------------------------------------- the small example
if [[ -z ${SKIP_QPS:-} && -z ${SKIP_SMALL:-} ]]; then
    small_config "$TMP/small.yaml" "$SMALL_DNS" "$SMALL_HTTP"
    s0=$(date +%s.%N)
    "$RESOLVERD_BIN" check --config "$TMP/small.yaml" >"$OUT_DIR/raw/check-small.txt" 2>&1 \
        || { cat "$OUT_DIR/raw/check-small.txt" >&2; die "the relocated example config does not check"; }
    SMALL_CHECK_S=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    start_resolverd "$TMP/small.yaml" "$OUT_DIR/raw/serve-small.log"
    wait_answer "$SMALL_DNS" api.svc.example. 198.51.100.0/24 60 "$OUT_DIR/raw/serve-small.log"
    SMALL_LOAD_S=$(awk -v a="$SERVER_T0" -v b="$ANSWER_T" 'BEGIN { printf "%.2f", b - a }')
    sleep 1
    SMALL_RSS=$(proc_kb "$SERVER_PID" VmRSS)
    log "small example: check ${SMALL_CHECK_S}s, load ${SMALL_LOAD_S}s, VmRSS $(mib "$SMALL_RSS") MiB"
    qps_mixes small "$SMALL_DNS" "$CASE/queries-small"
    SMALL_RSS_RUN=$(proc_kb "$SERVER_PID" VmRSS)
    stop_pid "$SERVER_PID"
fi

# ---------------------------------------------------------------- report
mem_pair() { local r=${1}_RSS_$2 h=${1}_HWM_$2; [[ -n ${!r:-} ]] && echo "$(mib "${!r}") / $(mib "${!h}") MiB" || echo -; }
col() { local v=${1}_$2; echo "${!v:--}"; }
{
    echo "## resolverd at scale — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Scale case: $CASE_LINE"
    echo "Files: $SIZES. Binary: \`$RESOLVERD_BIN\`. Server on core $SERVER_CPU, $LOADGEN on core $CLIENT_CPU."
    [[ -n ${CASE2_LINE:-} ]] && echo "Reduced case (the scale case did not load within ${LOAD_TIMEOUT}s; gen.py $FALLBACK_GEN_ARGS): $CASE2_LINE"
    echo
    echo "| measure | scale case | $([[ -n ${CASE2_LINE:-} ]] && echo 'reduced case |') small example |"
    echo "|---|---:|$([[ -n ${CASE2_LINE:-} ]] && echo '---:|')---:|"
    r2() { [[ -n ${CASE2_LINE:-} ]] && printf ' %s |' "$1"; true; }
    echo "| \`resolverd check\` wall time | ${CHECK_S} s (peak RSS $(mib "$CHECK_KB") MiB) |$(r2 "${CHECK2_S:-} s (peak RSS $(mib "${CHECK2_KB:-0}") MiB)") ${SMALL_CHECK_S:--} s |"
    echo "| load time (start → first answer) | $(col scale LOAD_S) s |$(r2 "$(col reduced LOAD_S) s") ${SMALL_LOAD_S:--} s |"
    echo "| peak RSS while loading (sampled VmHWM) | $(mib "${scale_PEAK:-0}") MiB |$(r2 "$(mib "${reduced_PEAK:-0}") MiB") |"
    echo "| VmRSS / VmHWM after load | $(mem_pair scale LOAD) |$(r2 "$(mem_pair reduced LOAD)") $( [[ -n ${SMALL_RSS:-} ]] && mib "$SMALL_RSS" || echo -) MiB |"
    echo "| VmRSS / VmHWM after the load runs | $( [[ $scale_LOADED == yes ]] && mem_pair scale RUN || echo -) |$(r2 "$(mem_pair reduced RUN)") $( [[ -n ${SMALL_RSS_RUN:-} ]] && mib "$SMALL_RSS_RUN" || echo -) MiB |"
    if [[ -n ${scale_PROFILE:-} ]]; then
        echo
        echo "The scale case's serve had not answered after ${LOAD_TIMEOUT}s. Where it was (perf, ${PROFILE_SECS}s, inclusive %):"
        echo
        echo '```'
        head -20 "$scale_PROFILE"
        echo '```'
    fi
    if [[ -z ${SKIP_QPS:-} ]] && [[ -s $RESULTS ]]; then
        echo
        echo "QPS ($LOADGEN -o $OUTSTANDING; cold: 1 × ${DURATION}s, warm and hot: median of $ROUNDS × ${DURATION}s; service names, 80 % A / 20 % AAAA, ECS from many /24s and /48s):"
        echo
        echo "| mix | median QPS | server core busy | lost | QPS per run |"
        echo "|---|---:|---:|---:|---|"
        for l in small scale scale-big reduced reduced-big; do
            for t in cold warm hot; do
                grep -q "^$l-$t " "$RESULTS" || continue
                echo "| $l-$t | $(median "$l-$t" 2) | $(median "$l-$t" 3)% | $(median "$l-$t" 4)% | $(per_run "$l-$t") |"
            done
        done
        for t in cold warm hot; do
            grep -q "^small-$t " "$RESULTS" || continue
            for l in scale scale-big reduced reduced-big; do
                grep -q "^$l-$t " "$RESULTS" || continue
                echo
                echo "**$l-$t vs small-$t: $(awk -v a="$(median "$l-$t" 2)" -v b="$(median "small-$t" 2)" 'BEGIN { printf "%.1f%% of the small QPS (drop %.1f%%)", 100 * a / b, 100 * (1 - a / b) }')**"
            done
        done
        echo
        echo "small = shipped resolverd.yaml (3 sites, 1 service); scale/reduced = services with 8–32 sites; *-big = the services with 1000 sites."
        echo "cold = first pass over the mix's (service, prefix) pairs (each query a new client: a new binding); warm = later passes (binding kept, decided anew: each client asks again only after all others, as resolvers do once per TTL); hot = $(awk -F'hot_queries=' '{ split($2, a, " "); print a[1] }' <<<"$CASE_LINE") pairs cycled (each asks again within a second: decisions may be reused). Pairs per mix: normal $(awk -F' queries=' '{ split($2, a, " "); print a[1] }' <<<"$CASE_LINE"), big $(awk -F'big_queries=' '{ split($2, a, " "); print a[1] }' <<<"$CASE_LINE"), small $(awk -F'small_queries=' '{ split($2, a, " "); print a[1] }' <<<"$CASE_LINE")."
    fi
} > "$OUT_DIR/result.md"
echo
cat "$OUT_DIR/result.md"
log "written to ${OUT_DIR#"$ROOT"/}/result.md (raw outputs and server logs in ${OUT_DIR#"$ROOT"/}/raw/)"
