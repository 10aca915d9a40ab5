# bench/scale/lib.sh — shared by bench/scale/run.sh and bench/reports/run.sh (sourced, not run).
#
# Expects: ROOT (repo root), TMP (scratch directory, removed on exit), TAG (log prefix).
# Gives:   bench/lib.sh (log/die, processes, the lock, take_port, setup_pinning), and
#          start_resolverd/wait_answer, proc_mem, build_loadgen/run_load.

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- resolverd
SERVER_PID=""
start_resolverd() {         # $1 config, $2 log file; sets SERVER_PID, SERVER_T0 (start, epoch s)
    SERVER_T0=$(date +%s.%N)
    "${PIN_SERVER[@]}" "$RESOLVERD_BIN" serve --config "$1" --log-level "${LOG_LEVEL:-info}" >"$2" 2>&1 {LOCK_FD}>&- &
    SERVER_PID=$!
    STARTED+=("$SERVER_PID")
}

# Waits until `dig @127.0.0.1 -p $1 $2 A` (with ECS $3 if given) gets an answer section, for
# at most $4 seconds; while waiting, samples the server's peak memory into PEAK_WHILE_LOADING.
# Sets ANSWER_T (epoch s of the first answer). $5 = log file to show on failure. With $6 = soft,
# a timeout returns 1 instead of failing the script.
PEAK_WHILE_LOADING=0
wait_answer() {
    local port=$1 name=$2 ecs=$3 timeout=$4 logf=$5 soft=${6:-} deadline out hwm
    local ecsopt=()
    [[ -n $ecs ]] && ecsopt=(+subnet="$ecs")
    deadline=$(( $(date +%s) + timeout ))
    while :; do
        alive "$SERVER_PID" || { tail -30 "$logf" >&2; die "resolverd exited during startup (see above)"; }
        out=$(dig @127.0.0.1 -p "$port" "$name" A "${ecsopt[@]}" +short +norec +tries=1 +time=1 2>/dev/null | head -1) || true
        if [[ $out =~ ^[0-9.]+$ ]]; then ANSWER_T=$(date +%s.%N); return 0; fi
        hwm=$(proc_kb "$SERVER_PID" VmHWM)
        (( hwm > PEAK_WHILE_LOADING )) && PEAK_WHILE_LOADING=$hwm
        if (( $(date +%s) >= deadline )); then
            [[ -n $soft ]] && return 1
            tail -30 "$logf" >&2; die "no answer for $name on 127.0.0.1:$port within ${timeout}s"
        fi
        sleep 0.1
    done
}

proc_kb() {                 # $1 pid, $2 field of /proc/PID/status (VmRSS, VmHWM): kB, 0 if gone
    local v
    v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null) || true
    echo "${v:-0}"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {               # user+system ticks of $1 (all threads)
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0
}

# ---------------------------------------------------------------- DNS load generator
# bench/loadgen.c (batching, per-query ECS) when it exists; dnsperf otherwise (one ECS for all).
LOADGEN=""
build_loadgen() {
    if [[ -z ${FORCE_DNSPERF:-} && -f $ROOT/bench/loadgen.c ]]; then
        cc -O2 -o "$TMP/loadgen" "$ROOT/bench/loadgen.c" -lm 2>"$TMP/loadgen.build" \
            || { cat "$TMP/loadgen.build" >&2; die "bench/loadgen.c does not compile"; }
        LOADGEN=loadgen
    else
        command -v dnsperf >/dev/null || die "neither bench/loadgen.c nor dnsperf is available"
        LOADGEN=dnsperf
        log "bench/loadgen.c not found (or FORCE_DNSPERF set): using dnsperf — it sends ONE ECS prefix for every query, so the many-/24 mix is not exercised"
    fi
}

# run_load PORT QUERYFILE SECONDS RAWFILE → sets LOAD_QPS LOAD_SENT LOAD_DONE LOAD_LOST LOAD_RCODES LOAD_LINE
run_load() {
    local port=$1 qfile=$2 secs=$3 raw=$4
    LOAD_QPS="" LOAD_SENT="" LOAD_DONE="" LOAD_LOST="" LOAD_RCODES="" LOAD_LINE=""
    if [[ $LOADGEN == loadgen ]]; then
        local rc=0
        timeout --kill-after=5 $((secs + 30)) "${PIN_CLIENT[@]}" "$TMP/loadgen" -s 127.0.0.1 -p "$port" \
            -f "$qfile" -d "$secs" -o "$OUTSTANDING" -l "${MAX_LOST_PCT:-1}" ${LOADGEN_ARGS:-} >"$raw" 2>&1 || rc=$?
        LOAD_LINE=$(grep '^loadgen-result ' "$raw" | tail -1 | sed 's/^loadgen-result //')
        [[ -n $LOAD_LINE ]] || { tail -20 "$raw" >&2; die "loadgen failed against port $port, no result line (see $raw)"; }
        kv() { tr ' ' '\n' <<<"$LOAD_LINE" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
        LOAD_QPS=$(kv qps); LOAD_SENT=$(kv sent); LOAD_DONE=$(kv received); LOAD_LOST=$(kv lost)
        LOAD_RCODES=$(tr ' ' '\n' <<<"$LOAD_LINE" | grep '^rcode_' | tr '\n' ' ')
        (( rc == 0 )) || { grep -v '^loadgen-result' "$raw" | tail -5 >&2; die "loadgen judged the run against port $port unacceptable (rc $rc): $LOAD_LINE"; }
    else
        local dq=$TMP/dnsperf-$(basename "$qfile") ecs hex
        awk '{ print $1, $2 }' "$qfile" > "$dq"
        ecs=$(awk '$3 ~ /^ecs=[0-9.]+\/24$/ { sub(/^ecs=/, "", $3); print $3; exit }' "$qfile")
        local eopt=()
        if [[ -n $ecs ]]; then
            hex=$(awk -v p="${ecs%/*}" 'BEGIN { split(p, o, "."); printf "00011800%02x%02x%02x", o[1], o[2], o[3] }')
            eopt=(-E "8:$hex")
        fi
        timeout --kill-after=5 $((secs + 30)) "${PIN_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$dq" \
            -l "$secs" -c 4 -q "$OUTSTANDING" -e "${eopt[@]}" >"$raw" 2>&1 \
            || { tail -20 "$raw" >&2; die "dnsperf failed against port $port (see $raw)"; }
        LOAD_QPS=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$raw")
        LOAD_SENT=$(awk '/Queries sent:/ { print $3 }' "$raw")
        LOAD_DONE=$(awk '/Queries completed:/ { print $3 }' "$raw")
        LOAD_LOST=$(awk '/Queries lost:/ { print $3 }' "$raw")
        LOAD_RCODES=$(sed -n 's/^ *Response codes: *//p' "$raw")
        LOAD_LINE="qps=$LOAD_QPS sent=$LOAD_SENT completed=$LOAD_DONE lost=$LOAD_LOST codes=[$LOAD_RCODES]"
    fi
    [[ -n $LOAD_QPS ]] || { tail -20 "$raw" >&2; die "could not read the QPS from $raw"; }
}

# ---------------------------------------------------------------- the shipped example, relocated
# small_config OUTFILE DNS_PORT HTTP_PORT: resolverd.yaml of the repo with DNS/HTTP on the given
# loopback ports and every relative path made absolute, so it can live in $TMP.
small_config() {
    local out=$1 dport=$2 hport=$3
    sed -E \
        -e "s|^  listen: \[.*\]|  listen: [\"127.0.0.1:$dport\"]|" \
        -e "s|^  listen: \"[^\"]*\"|  listen: \"127.0.0.1:$hport\"|" \
        -e "s|^(  tokens: )([^/].*)$|\1$ROOT/\2|" \
        -e "s|^(zones: )([^/].*)$|\1$ROOT/\2|" \
        -e "s|^(  file: )([^/].*)$|\1$ROOT/\2|" \
        -e "s|^(  locations: )([^/].*)$|\1$ROOT/\2|" \
        "$ROOT/resolverd.yaml" > "$out"
    grep -q "127.0.0.1:$dport" "$out" && grep -q "127.0.0.1:$hport" "$out" \
        || die "could not relocate $ROOT/resolverd.yaml (its dns.listen/http.listen lines changed shape?)"
}

# profile PID SECONDS: the hottest frames (inclusive %) of a running process, via perf.
profile() {
    command -v perf >/dev/null || { echo "    (perf not installed: no profile)"; return 0; }
    perf record -q -F 99 -g -p "$1" -o "$TMP/perf.data" -- sleep "$2" >/dev/null 2>&1 || { echo "    (perf record failed)"; return 0; }
    local demangle=cat
    command -v swift >/dev/null && demangle="swift demangle --simplified"
    perf report -i "$TMP/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
        grep '%' | grep -vE 'start_thread|_dispatch_|swift_job_run|runJobInEstablished|\[k\]' | head -"${3:-25}" |
        $demangle | awk '{ $3 = ""; print "    " substr($0, 1, 170) }'
}

# The default binary (/tmp/resolverd-scale) is a copy of .build/release/resolverd, made again
# whenever the build is newer: a copy left from an earlier build would measure old code.
refresh_default_binary() {
    if [[ $RESOLVERD_BIN == /tmp/resolverd-scale && -x $ROOT/.build/release/resolverd
          && ( ! -x $RESOLVERD_BIN || $ROOT/.build/release/resolverd -nt $RESOLVERD_BIN ) ]]; then
        cp "$ROOT/.build/release/resolverd" "$RESOLVERD_BIN"
        log "copied .build/release/resolverd to $RESOLVERD_BIN"
    fi
}
