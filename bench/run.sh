#!/usr/bin/env bash
# Run rcgc's benchmarks beside their peers and write the results under
# bench/results/ (make bench calls this). One function per benchmark,
# bench_<name>; the BENCHES list (or the arguments) picks which run.
#
#   bench/run.sh                 # every benchmark, quick
#   BENCH=full bench/run.sh      # more threads, more repetitions, longer
#   bench/run.sh alloc           # just alloc_bench
#   bench/run.sh rc safepoint    # rc_bench, then safepoint_bench
#
# Environment:
#   BENCH      quick | full (default quick)
#   THREADS    comma-separated thread counts (default quick 1,2,4; full 1,2,4,8,16)
#   REPS       repetitions of each measurement (default quick 3, full 5)
#   DURATION   seconds per measurement (default quick 1, full 2)
#   BENCHES    benchmarks to run, space-separated (default: all, "alloc rc safepoint")
#   ALLOCS     alloc_bench: allocators (default "rcgc glibc jemalloc mimalloc")
#   WORKLOADS  alloc_bench: workloads (default "local remote prodcons")
#   JEMALLOC_SO  libjemalloc.so.2 to LD_PRELOAD (default: found with dpkg / ldconfig)
#   RC_ITERS   rc_bench: incref+decref pairs per measurement (default 20000000)
#   SP_THREADS safepoint_bench: mutator thread counts (default quick
#              1,2,4,8,16,32, full 1,2,4,8,16,32,64; else THREADS if given;
#              quick drops counts above 32)
#   SP_SECONDS safepoint_bench: seconds of pauses per run (default quick 2, full 4)
#   RESULTS    output folder (default bench/results)
#   BAZEL      the bazel command (default bazel)
#
# Method: every process measures one allocator; the allocators take turns
# (round robin, the starting one rotating with each repetition) so that
# drift of the machine spreads over all of them. Reported: the median of
# the repetitions, and their min and max. rc_bench does its repetitions in
# one process (its variants take turns); safepoint_bench runs one process
# per thread count and repetition, the thread counts taking turns.
#
# Each benchmark writes <name>_summary.md; summary.md gathers them all.
set -euo pipefail

cd "$(dirname "$0")/.."

BENCH=${BENCH:-quick}
case "$BENCH" in
    quick) def_threads=1,2,4;        def_reps=3; def_duration=1 ;;
    full)  def_threads=1,2,4,8,16;   def_reps=5; def_duration=2 ;;
    *) echo "run.sh: BENCH must be quick or full, not '$BENCH'" >&2; exit 2 ;;
esac
THREADS_GIVEN=${THREADS:-}
THREADS=${THREADS:-$def_threads}
REPS=${REPS:-$def_reps}
DURATION=${DURATION:-$def_duration}
ALL_BENCHES="alloc rc safepoint"
BENCHES=${*:-${BENCHES:-$ALL_BENCHES}}
RESULTS=${RESULTS:-bench/results}
BAZEL=${BAZEL:-bazel}

mkdir -p "$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcgc-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------------------
# Helpers shared by the benchmarks
# ------------------------------------------------------------------------
log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 2; }

# build_bench TARGET: bazel build //bench:TARGET and copy the binary to
# $WORK, so that builds made meanwhile (another config moves bazel-bin)
# cannot change what this run measures. Prints the copy's path.
build_bench() {
    local target=$1 bin
    log "=== building //bench:$target"
    "$BAZEL" build "//bench:$target" >&2 || die "bazel build //bench:$target failed"
    bin=$("$BAZEL" info bazel-bin 2>/dev/null)/bench/$target
    [ -x "$bin" ] || die "no binary at $bin after the build"
    cp "$bin" "$WORK/$target"
    printf '%s\n' "$WORK/$target"
}

# The machine, for summaries: CPU model, cores, kernel, date.
cpu_model() {
    local m
    m=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- |
        sed 's/^ *//')
    printf '%s\n' "${m:-unknown CPU}"
}
ncores() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; }
tree_rev() { git describe --always --dirty 2>/dev/null || echo unknown; }

# stats V...: "median min max" of the numbers given (median of an even
# count: the mean of the middle two).
stats() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "NA NA NA"; exit }
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.3f %.3f %.3f\n", med, v[1], v[NR]
        }'
}

# field KEY LINE: the value of KEY=value in a RESULT line.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }

# ratio A B: A/B formatted as "1.23x", or "-" when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "NA" || b == "NA" || a == "" || b == "" || b + 0 == 0) print "-"
        else printf "%.2fx\n", a / b }'
}

# ------------------------------------------------------------------------
# alloc: alloc_bench, rcgc_malloc/rcgc_free beside glibc, jemalloc, mimalloc
# ------------------------------------------------------------------------
find_jemalloc() {
    local so=${JEMALLOC_SO:-}
    if [ -z "$so" ] && command -v dpkg >/dev/null; then
        so=$(dpkg -L libjemalloc2 2>/dev/null | grep -m1 '/libjemalloc\.so\.2$' || true)
    fi
    if [ -z "$so" ]; then
        so=$(ldconfig -p 2>/dev/null | awk '/libjemalloc\.so\.2 /{print $NF; exit}')
    fi
    [ -z "$so" ] && [ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] &&
        so=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
    printf '%s\n' "$so"
}

bench_alloc() {
    local allocs=${ALLOCS:-rcgc glibc jemalloc mimalloc}
    local workloads=${WORKLOADS:-local remote prodcons}
    local threads_list=${THREADS//,/ }
    local bin jemalloc_so
    bin=$(build_bench alloc_bench)
    jemalloc_so=$(find_jemalloc)

    # Allocators that cannot run here are dropped, with a note.
    local -a A=()
    local a
    for a in $allocs; do
        if [ "$a" = jemalloc ] && [ -z "$jemalloc_so" ]; then
            log "run.sh: libjemalloc.so.2 not found (install libjemalloc2 or set JEMALLOC_SO): skipping jemalloc"
            continue
        fi
        A+=("$a")
    done
    [ ${#A[@]} -gt 0 ] || die "no allocator to measure"
    local na=${#A[@]}

    local -a W=($workloads) T=($threads_list)
    local total=$(( ${#W[@]} * ${#T[@]} * REPS * na )) i=0
    local timeout_s
    timeout_s=$(awk -v d="$DURATION" 'BEGIN { printf "%d\n", d * 10 + 30 }')
    local failures=$RESULTS/alloc_failures.log
    : > "$failures"

    log "=== alloc_bench: ${W[*]} x threads ${T[*]} x ${A[*]}, $REPS reps of ${DURATION}s ($total runs)"
    declare -A vals=() version=()
    local wl t rep k out err status line mops
    for wl in "${W[@]}"; do
        for t in "${T[@]}"; do
            for (( rep = 0; rep < REPS; rep++ )); do
                for (( k = 0; k < na; k++ )); do
                    a=${A[$(( (k + rep) % na ))]}   # round robin, rotating start
                    i=$(( i + 1 ))
                    printf '[%d/%d] %s threads=%s alloc=%s rep=%d/%d ... ' \
                        "$i" "$total" "$wl" "$t" "$a" $(( rep + 1 )) "$REPS" >&2
                    local -a cmd=(env -u LD_PRELOAD)
                    [ "$a" = jemalloc ] && cmd=(env LD_PRELOAD="$jemalloc_so")
                    cmd+=(timeout -k 5 "$timeout_s" "$bin" --alloc="$a" --workload="$wl"
                          --threads="$t" --seconds="$DURATION")
                    status=0
                    "${cmd[@]}" > "$WORK/out" 2> "$WORK/err" || status=$?
                    line=$(grep -m1 '^RESULT ' "$WORK/out" || true)
                    mops=""
                    if [ "$status" -eq 0 ] && [ -n "$line" ]; then
                        mops=$(awk -v v="$(field ops_per_sec "$line")" 'BEGIN { printf "%.3f\n", v / 1e6 }')
                        version[$a]=$(field version "$line")
                        vals["$wl,$t,$a"]+="$mops "
                        log "$mops Mops/s"
                        # Warnings (rcgc's stats self-check) are findings: show them.
                        grep -i 'warning' "$WORK/err" >&2 || true
                    else
                        log "FAILED (exit $status)"
                        sed 's/^/    | /' "$WORK/err" | tail -n 15 >&2
                        {
                            echo "=== ${cmd[*]}"
                            echo "exit status $status"
                            cat "$WORK/out" "$WORK/err"
                        } >> "$failures"
                    fi
                done
            done
        done
    done

    # CSV, plot, terminal table and Markdown summary.
    local machine date_s
    machine="$(cpu_model), $(ncores) cores"
    date_s=$(date '+%Y-%m-%d %H:%M %Z')
    local md=$RESULTS/alloc_summary.md
    {
        echo "# alloc_bench results"
        echo
        echo "- Machine: $machine ($(uname -sr))"
        echo "- Date: $date_s"
        echo "- Tree: rcgc $(tree_rev)"
        echo "- Run: BENCH=$BENCH, $REPS repetitions of ${DURATION} s per point, allocators in rotating round-robin order, one process per measurement"
        local vs=""
        for a in "${A[@]}"; do
            vs+="${vs:+, }$a ${version[$a]:-?}"
        done
        echo "- Allocators: $vs (jemalloc by LD_PRELOAD, mimalloc by dlopen; see bench/alloc_bench.c)"
        echo "- Unit: million malloc+free pairs per second, median (min-max); block sizes 16..128 bytes, batches of 1000"
        echo "- Ratios: rcgc's median over the peer's (above 1.00x: rcgc faster)"
    } > "$md"

    local -a peers=()
    for a in "${A[@]}"; do [ "$a" != rcgc ] && peers+=("$a"); done
    local have_rcgc=0
    for a in "${A[@]}"; do [ "$a" = rcgc ] && have_rcgc=1; done

    local csv s med mn mx n hdr row
    for wl in "${W[@]}"; do
        csv=$RESULTS/alloc_$wl.csv
        echo "workload,threads,alloc,median_mops,min_mops,max_mops,reps" > "$csv"

        hdr=$(printf '%-8s' threads)
        for a in "${A[@]}"; do hdr+=$(printf ' %22s' "$a"); done
        if [ $have_rcgc -eq 1 ]; then
            for a in "${peers[@]}"; do hdr+=$(printf ' %14s' "rcgc/$a"); done
        fi
        printf '\n%s (million pairs/s, median (min-max) of %s)\n%s\n' "$wl" "$REPS" "$hdr"

        {
            echo
            echo "## $wl"
            echo
            printf '| threads |'
            for a in "${A[@]}"; do printf ' %s |' "$a"; done
            if [ $have_rcgc -eq 1 ]; then
                for a in "${peers[@]}"; do printf ' rcgc/%s |' "$a"; done
            fi
            echo
            printf '|---:|'
            for a in "${A[@]}"; do printf -- '---:|'; done
            if [ $have_rcgc -eq 1 ]; then
                for a in "${peers[@]}"; do printf -- '---:|'; done
            fi
            echo
        } >> "$md"

        for t in "${T[@]}"; do
            declare -A medv=()
            row=$(printf '%-8s' "$t")
            local mdrow="| $t |"
            for a in "${A[@]}"; do
                # shellcheck disable=SC2086
                s=$(stats ${vals["$wl,$t,$a"]:-})
                read -r med mn mx <<< "$s"
                n=$(echo ${vals["$wl,$t,$a"]:-} | wc -w)
                medv[$a]=$med
                echo "$wl,$t,$a,$med,$mn,$mx,$n" >> "$csv"
                if [ "$med" = NA ]; then
                    row+=$(printf ' %22s' FAILED)
                    mdrow+=" FAILED |"
                else
                    local cell
                    cell=$(printf '%.1f (%.1f-%.1f)' "$med" "$mn" "$mx")
                    [ "$n" -lt "$REPS" ] && cell+="*"
                    if awk -v lo="$mn" -v hi="$mx" 'BEGIN { exit !(lo > 0 && hi / lo > 1.5) }'; then
                        cell+="!"
                    fi
                    row+=$(printf ' %22s' "$cell")
                    mdrow+=" $cell |"
                fi
            done
            if [ $have_rcgc -eq 1 ]; then
                for a in "${peers[@]}"; do
                    local r
                    r=$(ratio "${medv[rcgc]}" "${medv[$a]}")
                    row+=$(printf ' %14s' "$r")
                    mdrow+=" $r |"
                done
            fi
            echo "$row"
            echo "$mdrow" >> "$md"
            unset medv
        done

        if command -v gnuplot >/dev/null; then
            gnuplot -e "infile='$csv'; outfile='$RESULTS/alloc_$wl.png'; workload='$wl'; allocs='${A[*]}'; subtitle='$machine, $date_s'" \
                bench/plot_alloc.gp || log "run.sh: gnuplot failed for $wl"
        fi
    done

    local nfail
    nfail=$(grep -c '^=== ' "$failures" || true)
    {
        echo
        echo "A figure marked ! varied by more than 1.5x between its repetitions: read it with care."
        if [ "$nfail" -gt 0 ]; then
            echo "$nfail run(s) failed; a figure marked * has fewer than $REPS repetitions."
            echo "Their commands and output are in alloc_failures.log."
        else
            rm -f "$failures"
            echo "Every run succeeded."
        fi
    } >> "$md"
    echo
    echo "Wrote $RESULTS/alloc_{$(IFS=,; echo "${W[*]}")}.csv, alloc_summary.md$(command -v gnuplot >/dev/null && echo ", and the .png plots")."
    [ "$nfail" -gt 0 ] && log "run.sh: $nfail alloc_bench run(s) failed: see $failures"
    return 0
}

# The load average (1, 5, 15 min), for summaries: a loaded machine
# inflates every latency figure.
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }

# ------------------------------------------------------------------------
# rc: rc_bench, rcgc_incref/rcgc_decref beside a plain and an atomic counter
# ------------------------------------------------------------------------
# goal_check VALUE OP LIMIT: "met" or "MISSED" (OP is <= or >=), "-" if no value.
goal_check() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "" || v == "NA") { print "-"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (op == "<") ? (v + 0 < l + 0) : (v + 0 >= l + 0)
        print ok ? "met" : "MISSED" }'
}

bench_rc() {
    local iters=${RC_ITERS:-20000000}
    local csv=$RESULTS/rc.csv md=$RESULTS/rc_summary.md
    local bin status=0 line machine date_s load_s
    bin=$(build_bench rc_bench)
    machine="$(cpu_model), $(ncores) cores"
    date_s=$(date '+%Y-%m-%d %H:%M %Z')
    load_s=$(loadavg)
    log "=== rc_bench: $iters pairs per measurement, $REPS repetitions (load average $load_s)"
    timeout -k 5 600 "$bin" --iters="$iters" --reps="$REPS" --csv="$WORK/rc.csv" \
        > "$WORK/rc.out" 2> "$WORK/rc.err" || status=$?
    line=$(grep -m1 '^RESULT ' "$WORK/rc.out" || true)
    if [ "$status" -ne 0 ] || [ -z "$line" ]; then
        log "rc_bench FAILED (exit $status)"
        sed 's/^/    | /' "$WORK/rc.out" "$WORK/rc.err" | tail -n 20 >&2
        {
            echo "# rc_bench results"
            echo
            echo "- Machine: $machine; date: $date_s"
            echo "- rc_bench failed (exit $status): no figures."
        } > "$md"
        return 0
    fi
    grep -i 'warning' "$WORK/rc.err" >&2 || true
    cp "$WORK/rc.csv" "$csv"

    # Terminal table, from the CSV rc_bench wrote.
    printf '\nrc (ns per incref+decref pair, median (min-max) of %s; %s pairs each)\n' "$REPS" "$iters"
    printf '%-10s %-9s %28s\n' workload variant ns/pair
    awk -F, 'NR > 1 { printf "%-10s %-9s %28s\n", $1, $2, sprintf("%.3f (%.3f-%.3f)", $3, $4, $5) }' "$csv"

    local r_op r_ao r_na r_two
    r_op=$(field owner_over_plain "$line")
    r_ao=$(field atomic_over_owner "$line")
    r_na=$(field nonowner_over_atomic "$line")
    r_two=$(field two_rcgc_over_atomic "$line")
    local g_op g_ao g_two
    g_op=$(goal_check "$r_op" "<=" 1.5)
    g_ao=$(goal_check "$r_ao" ">=" 3)
    g_two=$(goal_check "$r_two" "<=" 1.0)
    printf '\n%-34s %8s %8s  %s\n' ratio value goal verdict
    printf '%-34s %7sx %8s  %s\n' "owner pair / plain pair" "$r_op" "<= 1.5x" "$g_op"
    printf '%-34s %7sx %8s  %s\n' "atomic pair / owner pair" "$r_ao" ">= 3x" "$g_ao"
    printf '%-34s %7sx %8s  %s\n' "two threads: rcgc / atomic" "$r_two" "<= 1.0x" "$g_two"
    printf '%-34s %7sx %8s  %s\n' "non-owner pair / atomic pair" "$r_na" "-" "(no goal)"

    {
        echo "# rc_bench results"
        echo
        echo "- Machine: $machine ($(uname -sr)); load average at start: $load_s"
        echo "- Date: $date_s"
        echo "- Tree: rcgc $(tree_rev)"
        echo "- Run: BENCH=$BENCH, $iters incref+decref pairs per measurement, $REPS repetitions, variants taking turns within each repetition, one process"
        echo "- Unit: nanoseconds per incref+decref pair, median (min-max); lower is better"
        echo "- Variants: plain \`c++; c--\`; atomic \`lock add/sub\` (seq_cst); owner: rcgc_incref/rcgc_decref by the object's owner; nonowner: by an attached thread that does not own it; 2threads: the owner and one other thread counting the same object at once (the slower thread's figure)"
        echo
        echo "| workload | variant | ns/pair |"
        echo "|---|---|---:|"
        awk -F, 'NR > 1 { printf "| %s | %s | %.3f (%.3f-%.3f) |\n", $1, $2, $3, $4, $5 }' "$csv"
        echo
        echo "| ratio | value | goal | verdict |"
        echo "|---|---:|---:|---|"
        echo "| owner pair / plain pair | ${r_op}x | <= 1.5x | $g_op |"
        echo "| atomic pair / owner pair | ${r_ao}x | >= 3x | $g_ao |"
        echo "| two threads: rcgc / atomic | ${r_two}x | <= 1.0x | $g_two |"
        echo "| non-owner pair / atomic pair | ${r_na}x | - | (no goal) |"
    } > "$md"
    echo
    echo "Wrote $csv and $md."
    return 0
}

# ------------------------------------------------------------------------
# safepoint: safepoint_bench, time to safepoint and pause round trip
# ------------------------------------------------------------------------
# The goal for a thread count: "LIMIT_US" or "" when none is stated.
#   p99 TTSP < 50 us while mutator threads <= cores; < 2 ms at 16 threads
#   on 2 cores.
sp_goal_us() {
    local t=$1 cores=$2
    if [ "$t" -le "$cores" ]; then echo 50
    elif [ "$t" -eq 16 ] && [ "$cores" -eq 2 ]; then echo 2000
    else echo ""
    fi
}

bench_safepoint() {
    local list secs cores
    cores=$(ncores)
    if [ -n "${SP_THREADS:-}" ]; then list=$SP_THREADS
    elif [ -n "$THREADS_GIVEN" ]; then list=$THREADS_GIVEN
    elif [ "$BENCH" = quick ]; then list=1,2,4,8,16,32
    else list=1,2,4,8,16,32,64
    fi
    local -a T=() dropped=()
    local t
    for t in ${list//,/ }; do
        if [ "$BENCH" = quick ] && [ "$t" -gt 32 ]; then dropped+=("$t"); else T+=("$t"); fi
    done
    [ ${#dropped[@]} -gt 0 ] && log "run.sh: quick run: safepoint_bench skips ${dropped[*]} threads (above 32)"
    [ ${#T[@]} -gt 0 ] || die "safepoint_bench: no thread count to run"
    if [ "$BENCH" = quick ]; then secs=${SP_SECONDS:-2}; else secs=${SP_SECONDS:-4}; fi

    local bin machine date_s load_s
    bin=$(build_bench safepoint_bench)
    machine="$(cpu_model), $(ncores) cores"
    date_s=$(date '+%Y-%m-%d %H:%M %Z')
    load_s=$(loadavg)
    local nt=${#T[@]} total=$(( ${#T[@]} * REPS )) i=0
    local timeout_s
    timeout_s=$(awk -v d="$secs" 'BEGIN { printf "%d\n", d * 5 + 60 }')
    local failures=$RESULTS/safepoint_failures.log
    : > "$failures"
    log "=== safepoint_bench: threads ${T[*]}, $REPS reps of ${secs}s of pauses (load average $load_s, $total runs)"

    local keys="ttsp_p50_us ttsp_p99_us ttsp_max_us rt_p50_us rt_p99_us lib_ttsp_p50_us lib_ttsp_p99_us hs_p50_us hs_p99_us hs_rt_p50_us pp_p50_us pp_p99_us pp_idle_p50_us pauses mutator_mops watchdog"
    declare -A vals=()
    local rep k status line key
    for (( rep = 0; rep < REPS; rep++ )); do
        for (( k = 0; k < nt; k++ )); do
            t=${T[$(( (k + rep) % nt ))]}     # thread counts take turns, rotating start
            i=$(( i + 1 ))
            printf '[%d/%d] safepoint threads=%s rep=%d/%d ... ' "$i" "$total" "$t" $(( rep + 1 )) "$REPS" >&2
            local -a cmd=(timeout -k 5 "$timeout_s" "$bin" --threads="$t" --seconds="$secs")
            status=0
            "${cmd[@]}" > "$WORK/out" 2> "$WORK/err" || status=$?
            line=$(grep -m1 '^RESULT ' "$WORK/out" || true)
            if [ "$status" -eq 0 ] && [ -n "$line" ]; then
                for key in $keys; do
                    vals["$t,$key"]+="$(field "$key" "$line") "
                done
                log "TTSP p50 $(field ttsp_p50_us "$line") us, p99 $(field ttsp_p99_us "$line") us, $(field pauses "$line") pauses"
                # rcgc's warnings (watchdog, stats mismatch) are findings: show them.
                grep -i 'warning' "$WORK/out" "$WORK/err" | sed 's/^[^:]*://' >&2 || true
            else
                log "FAILED (exit $status)"
                sed 's/^/    | /' "$WORK/err" | tail -n 15 >&2
                {
                    echo "=== ${cmd[*]}"
                    echo "exit status $status"
                    cat "$WORK/out" "$WORK/err"
                } >> "$failures"
            fi
        done
    done

    # CSV: medians over the repetitions (TTSP p50 and p99 with min and max;
    # ttsp_max is the worst of all runs, watchdog the most reports in one).
    local csv=$RESULTS/safepoint.csv md=$RESULTS/safepoint_summary.md
    echo "threads,cores,ttsp_p50_us,ttsp_p50_min,ttsp_p50_max,ttsp_p99_us,ttsp_p99_min,ttsp_p99_max,ttsp_max_us,rt_p50_us,rt_p99_us,lib_ttsp_p50_us,lib_ttsp_p99_us,hs_p50_us,hs_p99_us,hs_rt_p50_us,pp_p50_us,pp_p99_us,pp_idle_p50_us,pauses,mutator_mops,watchdog,reps,goal_p99_us,goal" > "$csv"
    {
        echo "# safepoint_bench results"
        echo
        echo "- Machine: $machine ($(uname -sr)); load average at start: $load_s"
        echo "- Date: $date_s"
        echo "- Tree: rcgc $(tree_rev)"
        echo "- Run: BENCH=$BENCH, $REPS repetitions of ${secs} s of pauses per thread count (one process each, thread counts taking turns); a pause 1 ms after the previous one once every mutator has run again (safepoint_bench.c: settling)"
        echo "- Mutators: N attached threads, each looping rcgc_new (polls) + 32 rounds of arithmetic + rcgc_decref + rcgc_safepoint(); the requester is one more thread"
        echo "- TTSP: rcgc__stop_the_world() call to return; round trip: stop + start. rcgc p50/p99: the library's own TTSP figures (rcgc_stats), a cross-check"
        echo "- References, same process and load: bare handshake = a hand-rolled stop of the same mutators (one flag, one mutex, two condvars: the least a cooperative stop costs here); ping-pong = wake a sleeping thread through a condvar and get its answer (the OS floor)"
        echo "- Unit: microseconds, median over the repetitions of each run's percentile (p99: with min-max); no peer library offers a pause to compare with"
        echo "- Goals: p99 TTSP < 50 us while threads <= cores ($cores); < 2 ms at 16 threads on 2 cores"
        echo
        echo "| threads | TTSP p50 | TTSP p99 | TTSP max | round trip p50 | round trip p99 | rcgc p50 | rcgc p99 | bare stop p50 | bare stop p99 | bare round trip p50 | ping-pong p50 | ping-pong p99 | idle ping-pong p50 | pauses | mutator M it/s | goal (p99) |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    } > "$md"
    printf '\nsafepoint (microseconds, median of %s runs; p99 with min-max; %s cores; load average at start %s)\n' \
        "$REPS" "$cores" "$load_s"
    printf 'RT: pause round trip; rcgc: rcgc_stats own TTSP; bare: hand-rolled stop of the same threads; pp: condvar ping-pong, same load\n' 
    printf '%-7s %9s %26s %9s %9s %9s %9s %9s %9s %9s %9s %6s  %s\n' threads "TTSP p50" "TTSP p99 (min-max)" \
        "TTSP max" "RT p50" "RT p99" "rcgc p99" "bare p50" "bare p99" "pp p50" "pp p99" pauses "goal (p99)"
    declare -A m=() lo=() hi=()
    local n goal verdict gcell p99cell
    for t in "${T[@]}"; do
        for key in $keys; do
            # shellcheck disable=SC2086
            read -r m[$key] lo[$key] hi[$key] <<< "$(stats ${vals["$t,$key"]:-})"
        done
        n=$(echo ${vals["$t,ttsp_p50_us"]:-} | wc -w)
        goal=$(sp_goal_us "$t" "$cores")
        if [ -z "$goal" ]; then verdict=""; gcell="(none)"
        else
            verdict=$(goal_check "${m[ttsp_p99_us]}" "<" "$goal")
            gcell="< $goal us: $verdict"
        fi
        echo "$t,$cores,${m[ttsp_p50_us]},${lo[ttsp_p50_us]},${hi[ttsp_p50_us]},${m[ttsp_p99_us]},${lo[ttsp_p99_us]},${hi[ttsp_p99_us]},${hi[ttsp_max_us]},${m[rt_p50_us]},${m[rt_p99_us]},${m[lib_ttsp_p50_us]},${m[lib_ttsp_p99_us]},${m[hs_p50_us]},${m[hs_p99_us]},${m[hs_rt_p50_us]},${m[pp_p50_us]},${m[pp_p99_us]},${m[pp_idle_p50_us]},${m[pauses]},${m[mutator_mops]},${hi[watchdog]},$n,$goal,$verdict" >> "$csv"
        if [ "${m[ttsp_p50_us]}" = NA ]; then
            printf '%-7s %s\n' "$t" FAILED
            echo "| $t | FAILED |||||||||||||||" >> "$md"
            continue
        fi
        p99cell=$(printf '%.1f (%.1f-%.1f)' "${m[ttsp_p99_us]}" "${lo[ttsp_p99_us]}" "${hi[ttsp_p99_us]}")
        [ "$n" -lt "$REPS" ] && p99cell+="*"
        if awk -v l="${lo[ttsp_p99_us]}" -v h="${hi[ttsp_p99_us]}" 'BEGIN { exit !(l > 0 && h / l > 1.5) }'; then
            p99cell+="!"
        fi
        printf '%-7s %9.1f %26s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %6.0f  %s\n' "$t" \
            "${m[ttsp_p50_us]}" "$p99cell" "${hi[ttsp_max_us]}" "${m[rt_p50_us]}" "${m[rt_p99_us]}" \
            "${m[lib_ttsp_p99_us]}" "${m[hs_p50_us]}" "${m[hs_p99_us]}" "${m[pp_p50_us]}" \
            "${m[pp_p99_us]}" "${m[pauses]}" "$gcell"
        printf '| %s | %.1f | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %.2f | %s |\n' "$t" \
            "${m[ttsp_p50_us]}" "$p99cell" "${hi[ttsp_max_us]}" "${m[rt_p50_us]}" "${m[rt_p99_us]}" \
            "${m[lib_ttsp_p50_us]}" "${m[lib_ttsp_p99_us]}" "${m[hs_p50_us]}" "${m[hs_p99_us]}" \
            "${m[hs_rt_p50_us]}" "${m[pp_p50_us]}" "${m[pp_p99_us]}" "${m[pp_idle_p50_us]}" \
            "${m[pauses]}" "${m[mutator_mops]}" "$gcell" >> "$md"
        [ "${hi[watchdog]}" != NA ] && awk -v w="${hi[watchdog]}" 'BEGIN { exit !(w > 0) }' &&
            log "run.sh: safepoint threads=$t: the pause watchdog reported (up to ${hi[watchdog]} per run)"
    done

    local nfail
    nfail=$(grep -c '^=== ' "$failures" || true)
    {
        echo
        echo "A p99 marked ! varied by more than 1.5x between its repetitions: read it with care."
        if [ "$nfail" -gt 0 ]; then
            echo "$nfail run(s) failed; a figure marked * has fewer than $REPS repetitions."
            echo "Their commands and output are in safepoint_failures.log."
        else
            rm -f "$failures"
            echo "Every run succeeded."
        fi
    } >> "$md"

    if command -v gnuplot >/dev/null; then
        gnuplot -e "infile='$csv'; outfile='$RESULTS/safepoint.png'; cores=$cores; subtitle='$machine, $date_s, load $load_s'" \
            bench/plot_safepoint.gp || log "run.sh: gnuplot failed for safepoint"
    fi
    echo
    echo "Wrote $csv, $md$(command -v gnuplot >/dev/null && echo ", and $RESULTS/safepoint.png")."
    [ "$nfail" -gt 0 ] && log "run.sh: $nfail safepoint_bench run(s) failed: see $failures"
    return 0
}

# summary.md: every <name>_summary.md present in $RESULTS, one section each
# (each names its own machine, date and tree: they may come from different
# runs).
write_summary() {
    local out=$RESULTS/summary.md b f
    {
        echo "# rcgc benchmark results"
        echo
        echo "Gathered $(date '+%Y-%m-%d %H:%M %Z') on $(cpu_model), $(ncores) cores, from the per-benchmark summaries below (each names its own run)."
        for b in $ALL_BENCHES; do
            f=$RESULTS/${b}_summary.md
            [ -f "$f" ] || continue
            echo
            sed 's/^#/##/' "$f"
        done
    } > "$out"
    echo "Wrote $out."
}

# ------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------
for b in $BENCHES; do
    declare -F "bench_$b" >/dev/null || die "unknown benchmark '$b' (known: $ALL_BENCHES)"
done
for b in $BENCHES; do
    "bench_$b"
done
write_summary

