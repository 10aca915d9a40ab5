# bench/lib.sh — what every bench script shares (sourced, not run): logging, processes stopped
# by PID on exit, the machine-wide lock (one benchmark at a time: two would share the cores),
# free loopback ports, pinning of the server and the load tools to their cores.
#
# Expects: TMP (scratch directory, removed on exit unless KEEP_TMP), TAG (log prefix; "bench"),
#          SERVER_CPU and CLIENT_CPU (for setup_pinning).

log() { printf '[%s] %s\n' "${TAG:-bench}" "$*" >&2; }
die() { printf '\n[%s] FAIL: %s\n' "${TAG:-bench}" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- processes
STARTED=()                  # PIDs this script started and has not stopped yet

descendants() {             # PIDs below $1, depth first
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"; descendants "$c"
    done
}

cpu_ticks() {               # user+system clock ticks of $1 and its descendants, all threads; $2 = user: user space alone
    local p total=0 t fields='$12 + $13'
    [[ ${2:-} == user ]] && fields='$12'
    for p in "$1" $(descendants "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk "{ print $fields }") || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

alive() {                   # running (a zombie awaiting reaping does not count)
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

stop_pid() {                # TERM $1 and its tree, 10 s grace, then KILL what is left (by PID)
    local pid=$1 kids p i left=""
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

stop_all() { local p; for p in "${STARTED[@]}"; do stop_pid "$p"; done; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}

install_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# ---------------------------------------------------------------- one benchmark at a time
# The machine-wide lock bench/compare.sh takes (flock): two benchmarks would share the cores.
# Long-lived children are started with the lock's descriptor closed (so a server that outlived
# us could not hold it).
exec {LOCK_FD}>>/dev/null      # a placeholder until take_bench_lock, so `{LOCK_FD}>&-` always works
take_bench_lock() {
    local file=${LOCK_FILE:-${TMPDIR:-/tmp}/resolverd-bench-compare.lock} wait=${LOCK_WAIT:-1800}
    [[ $wait =~ ^[0-9]+$ ]] || die "LOCK_WAIT must be a whole number (got '$wait')"
    exec {LOCK_FD}>&-
    exec {LOCK_FD}>>"$file"
    if ! flock -n "$LOCK_FD"; then
        log "another benchmark holds $file: waiting up to ${wait}s for it to finish"
        flock -w "$wait" "$LOCK_FD" || die "the other benchmark did not finish within ${wait}s"
    fi
}

# ---------------------------------------------------------------- ports
port_free() {
    ! ss -Hlnu "sport = :$1" | grep -q . && ! ss -Hlnt "sport = :$1" | grep -q .
}
TAKEN_PORTS=""
take_port() {               # sets the variable named $1 to a loopback port free for UDP and TCP, not taken before
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 30000))
        [[ " $TAKEN_PORTS " == *" $p "* ]] && continue
        if port_free "$p"; then TAKEN_PORTS="$TAKEN_PORTS $p"; printf -v "$1" %s "$p"; return 0; fi
    done
    die "found no free port"
}

# ---------------------------------------------------------------- pinning
setup_pinning() {           # sets PIN_SERVER / PIN_CLIENT arrays
    local ncpu
    ncpu=$(nproc)
    if (( ncpu < 2 )) || (( SERVER_CPU >= ncpu || CLIENT_CPU >= ncpu )) || (( SERVER_CPU == CLIENT_CPU )); then
        log "WARNING: cannot pin server to core $SERVER_CPU and load tools to core $CLIENT_CPU on $ncpu CPU(s); running unpinned"
        PIN_SERVER=() PIN_CLIENT=()
    else
        PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_CLIENT=(taskset -c "$CLIENT_CPU")
    fi
}

# ---------------------------------------------------------------- steal
# Steal time: the time a vCPU had work but the hypervisor ran something else (/proc/stat's
# eighth value per core). On a shared VM it is what moves a max-rate figure by 2× or more
# between two runs of the same binary minutes apart (on the development VM, 270 000 queries/s
# at 0 % steal, 48 000 at 56 %), so each timed run records it and a run with more than
# MAX_STEAL_PCT is repeated: a figure from such a run measures the host, not the server.
MAX_STEAL_PCT=${MAX_STEAL_PCT:-5}
STEAL_RETRIES=${STEAL_RETRIES:-3}
STEAL_WAIT=${STEAL_WAIT:-10}
[[ $MAX_STEAL_PCT =~ ^[0-9]+$ && $STEAL_RETRIES =~ ^[0-9]+$ && $STEAL_WAIT =~ ^[0-9]+$ ]] \
    || die "MAX_STEAL_PCT, STEAL_RETRIES and STEAL_WAIT must be whole numbers"
steal_ticks() {             # "steal total" ticks of each core in $@, one pair after the other
    awk -v want=" $* " '$1 ~ /^cpu[0-9]+$/ && index(want, " " substr($1, 4) " ") {
        t[substr($1, 4)] = $9 " " ($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9) }
        END { n = split(want, c, " "); for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), t[c[i]] }' /proc/stat
}
steal_pct() {               # $1, $2: steal_ticks before and after -> the highest core's steal, % of its time
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); m = 0
        for (i = 1; i < n; i += 2) { t = y[i + 1] - x[i + 1]; if (t > 0 && 100 * (y[i] - x[i]) / t > m) m = 100 * (y[i] - x[i]) / t }
        printf "%.0f", m }'
}
