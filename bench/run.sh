#!/usr/bin/env bash
# Run rcgc's benchmarks beside their peers and write the results under
# bench/results/ (make bench calls this). One function per benchmark,
# bench_<name>; the BENCHES list (or the arguments) picks which run.
#
#   bench/run.sh                 # every benchmark, quick
#   BENCH=full bench/run.sh      # more threads, more repetitions, longer
#   bench/run.sh alloc           # just alloc_bench
#
# Environment:
#   BENCH      quick | full (default quick)
#   THREADS    comma-separated thread counts (default quick 1,2,4; full 1,2,4,8,16)
#   REPS       repetitions of each measurement (default quick 3, full 5)
#   DURATION   seconds per measurement (default quick 1, full 2)
#   BENCHES    benchmarks to run, space-separated (default: all, i.e. "alloc")
#   ALLOCS     alloc_bench: allocators (default "rcgc glibc jemalloc mimalloc")
#   WORKLOADS  alloc_bench: workloads (default "local remote prodcons")
#   JEMALLOC_SO  libjemalloc.so.2 to LD_PRELOAD (default: found with dpkg / ldconfig)
#   RESULTS    output folder (default bench/results)
#   BAZEL      the bazel command (default bazel)
#
# Method: every process measures one allocator; the allocators take turns
# (round robin, the starting one rotating with each repetition) so that
# drift of the machine spreads over all of them. Reported: the median of
# the repetitions, and their min and max.
set -euo pipefail

cd "$(dirname "$0")/.."

BENCH=${BENCH:-quick}
case "$BENCH" in
    quick) def_threads=1,2,4;        def_reps=3; def_duration=1 ;;
    full)  def_threads=1,2,4,8,16;   def_reps=5; def_duration=2 ;;
    *) echo "run.sh: BENCH must be quick or full, not '$BENCH'" >&2; exit 2 ;;
esac
THREADS=${THREADS:-$def_threads}
REPS=${REPS:-$def_reps}
DURATION=${DURATION:-$def_duration}
ALL_BENCHES="alloc"
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

# ------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------
for b in $BENCHES; do
    declare -F "bench_$b" >/dev/null || die "unknown benchmark '$b' (known: $ALL_BENCHES)"
done
for b in $BENCHES; do
    "bench_$b"
done
