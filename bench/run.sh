#!/usr/bin/env bash
# Run rcgc's benchmarks beside their peers and write the report under
# bench/results/ (make bench calls this). One function per benchmark,
# bench_<name>; the BENCHES list (or the arguments) picks which run.
#
#   bench/run.sh                 # every benchmark, quick (a few minutes on 2 cores)
#   BENCH=full bench/run.sh      # more threads, more repetitions, longer
#   THREADS=1,2,4,8,16,32 bench/run.sh   # the thread counts of every threaded workload
#   bench/run.sh alloc           # just alloc_bench
#   bench/run.sh rc safepoint    # rc_bench, then safepoint_bench
#   bench/run.sh gc gcbench binary_trees # the collector
#   UPDATE_DOCS=1 bench/run.sh   # also copy the report into docs/BENCHMARKS.md
#   bench/run.sh report          # only rewrite the report from bench/results/
#
# Benchmarks (in the order they run):
#   alloc         small-object malloc/free, threads x workloads local, remote
#                 (cross-thread frees), prodcons (xmalloc-test's producer/
#                 consumer hand-off): rcgc, glibc, jemalloc, mimalloc; and
#                 object: rcgc_new_var+rcgc_decref of an untracked and a
#                 tracked type beside the peers' malloc/free of the same sizes
#   rc            reference counting: plain, atomic, rcgc's biased counts
#   safepoint     time to safepoint against mutator threads
#   gc            full and young collection pauses against heap size: rcgc,
#                 CPython's gc.collect(), Boehm's GC_gcollect()
#   gcbench       Boehm's GCBench pattern (long-lived tree and array,
#                 short-lived trees top-down and bottom-up) against threads:
#                 rcgc, Boehm GC (and malloc/free as a reference)
#   binary_trees  the Benchmarks Game's binary-trees: glibc, mimalloc,
#                 Boehm GC, rcgc
#   trace         what allocation tracing costs on rcgc_malloc/rcgc_free:
#                 hooks compiled out, tracing off, sampling, full tracing
#
# Environment:
#   BENCH      quick | full (default quick)
#   THREADS    comma-separated thread counts of every threaded workload
#              (default quick 1,2,4; full 1,2,4,8,16); safepoint_bench,
#              binary_trees and the collector's workers have their own
#              defaults below, which THREADS overrides when given
#   REPS       repetitions of each measurement (default quick 3, full 5)
#   DURATION   seconds per measurement (default quick 1, full 2)
#   BENCHES    benchmarks to run, space-separated (default: all of the above)
#   UPDATE_DOCS  1: copy the report (bench/results/overview.md) into
#              docs/BENCHMARKS.md's Summary section and its plots into
#              docs/bench/ (bench/update_docs.sh; default 0)
#   ALLOCS     alloc_bench: allocators (default "rcgc glibc jemalloc mimalloc")
#   WORKLOADS  alloc_bench: workloads (default "local remote prodcons object")
#   OBJ_THREADS alloc_bench object: thread counts (default 1,2, its goal's;
#              THREADS when given)
#   JEMALLOC_SO  libjemalloc.so.2 to LD_PRELOAD (default: found with dpkg / ldconfig)
#   RC_ITERS   rc_bench: incref+decref pairs per measurement (default 20000000)
#   SP_THREADS safepoint_bench: mutator thread counts (default quick
#              1,2,4,8,16,32, full 1,2,4,8,16,32,64; else THREADS if given;
#              quick drops counts above 32)
#   SP_SECONDS safepoint_bench: seconds of pauses per run (default quick 2, full 4)
#   GC_SIZES   gc_bench: objects per graph (default quick "100000 1000000",
#              full adds 10000000)
#   GC_WORKERS gc_bench: collector thread counts, cfg.gc_workers (default:
#              the THREADS counts up to the number of cores, 1 and 2 on 2 cores)
#   GC_IMPLS   gc_bench: default "rcgc rcgc_purge0 cpython boehm" (rcgc_purge0:
#              rcgc with RCGC_PURGE=0)
#   GC_YOUNG_OLD, GC_YOUNG_N, GC_YOUNG_REPS  gc_bench young collections: old
#              objects (default 1000000), young garbage per collection (10000),
#              collections per process (5)
#   PYTHON     python3 for gc_bench.py (default /usr/bin/python3, else PATH's)
#   GCB_THREADS  gcbench: thread counts (default THREADS)
#   GCB_VARIANTS gcbench: default "boehm rcgc rcgc_purge0 glibc" (rcgc_purge0:
#              RCGC_PURGE=0; glibc: malloc/free, a reference, not a peer)
#   GCB_STRETCH  gcbench: stretch tree depth, which sets the work per depth
#              (default 18, GCBench's; the long-lived tree is 16, depths 4..16)
#   BT_DEPTH   binary_trees: depth (default quick 18, full 21, the game's)
#   BT_THREADS binary_trees: thread counts (default quick 2; full THREADS;
#              THREADS when given)
#   BT_VARIANTS binary_trees: default "glibc mimalloc boehm rcgc rcgc_purge0
#              rcgc_purge0_nogc" (RCGC_PURGE=0; and RCGC_GC_THRESHOLD=0)
#   RESULTS    output folder (default bench/results)
#   BAZEL      the bazel command (default bazel)
#
# Method: every process measures one allocator; the allocators take turns
# (round robin, the starting one rotating with each repetition) so that
# drift of the machine spreads over all of them. Reported: the median of
# the repetitions, and their min and max. rc_bench does its repetitions in
# one process (its variants take turns); safepoint_bench runs one process
# per thread count and repetition, the thread counts taking turns.
# gc_bench runs one process per repetition, graph size and implementation
# (rcgc: every worker count inside, re-initialised between; Boehm: one per
# marker count), the implementations taking turns; gcbench and
# binary_trees one per thread count, variant and repetition, the variants
# taking turns.
#
# Output (bench/results/): a CSV per workload (alloc_<workload>.csv,
# rc.csv, safepoint.csv, gc.csv, gcbench.csv and gcbench_depths.csv,
# binary_trees.csv), PNG plots (gnuplot: alloc_<workload>.png, gcbench.png
# and binary_trees.png against threads, gc.png pause against heap size,
# safepoint.png), a Markdown summary per benchmark (<name>_summary.md), the
# rows of the overview (<name>_overview.csv), timing.csv (how long each
# benchmark took), the collectors' figures (<name>_gc.csv: gcbench and
# binary_trees) and the goals each benchmark checked (<name>_goals.csv),
# and the report: overview.md (machine, date, tree, one table of every
# workload with rcgc's ratio against each peer, where rcgc is behind, the
# collectors' table (collections, collections that found nothing, pauses,
# peak RSS per variant), the goals met and missed, the plots) and
# summary.md (overview.md, then every benchmark's summary). The overview
# table (and the collectors' and goals' tables) is printed on the terminal
# at the end too. A peer that cannot run here (library missing, build
# failed) is left out with a note in the report; a benchmark that fails
# does not stop the others (run.sh then exits 1).
#
# Progress: a line per run, "[i/n elapsed, ~time left in this benchmark]",
# a dot every 5 s of a long run, and the time since the start at each
# benchmark.
set -euo pipefail
export LC_ALL=C     # decimal points, not commas, in every figure

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
ALL_BENCHES="alloc rc safepoint gc gcbench binary_trees trace"
BENCHES=${*:-${BENCHES:-$ALL_BENCHES}}
RESULTS=${RESULTS:-bench/results}
BAZEL=${BAZEL:-bazel}

mkdir -p "$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcgc-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Ctrl-C: stop the measured process too (a background job of a script
# ignores SIGINT), then leave.
trap 'kill ${TICK_PID:-} 2>/dev/null; exit 130' INT TERM
# The terminal's stderr, for the progress dots of commands whose stderr
# goes to a file; and a pipe nobody writes, for read -t to sleep on
# without starting a process.
exec {TICK_FD}>&2
exec {NAP_FD}<> <(:)

# ------------------------------------------------------------------------
# Helpers shared by the benchmarks
# ------------------------------------------------------------------------
log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 2; }

# note TEXT: something the report must say (a peer that cannot run here,
# a benchmark that failed): shown now, and listed under "Notes" in
# overview.md. $WORK/notes collects them across the benchmarks' subshells.
note() {
    log "run.sh: note: $*"
    printf '%s\n' "$*" >> "$WORK/notes"
}

# build_bench TARGET: bazel build //bench:TARGET and copy the binary to
# $WORK, so that builds made meanwhile (another config moves bazel-bin)
# cannot change what this run measures. Prints the copy's path; dies (the
# benchmark, not the run: each runs in a subshell) if it cannot be built.
build_bench() {
    try_build "$1" || die "bazel build //bench:$1 failed (a peer's library missing? make deps installs them)"
}

# try_build TARGET: build_bench that returns 1 instead of dying, for a
# peer's binary the benchmark can do without.
try_build() {
    local target=$1 bin
    log "=== building //bench:$target"
    "$BAZEL" build --color=no --curses=no "//bench:$target" >&2 || return 1
    bin=$("$BAZEL" info bazel-bin 2>/dev/null)/bench/$target
    [ -x "$bin" ] || return 1
    cp "$bin" "$WORK/$target"
    printf '%s\n' "$WORK/$target"
}

# Progress with an estimate of the time left in the current benchmark:
# progress_start at its first run, then "$(progress I TOTAL)" in each line
# prints "[I/TOTAL 1:05, ~2:10 left]" (elapsed since progress_start; the
# estimate is the mean time of the runs done so far times the runs left).
progress_start() { PROGRESS_T0=$SECONDS; }
mmss() { printf '%d:%02d' $(( $1 / 60 )) $(( $1 % 60 )); }
progress() {
    local i=$1 total=$2 el=$(( SECONDS - ${PROGRESS_T0:-$SECONDS} )) left="?"
    [ "$i" -gt 1 ] && left=$(mmss $(( el * (total - i + 1) / (i - 1) )))
    printf '[%d/%d %s, ~%s left]' "$i" "$total" "$(mmss "$el")" "$left"
}

# Rows for the overview table (overview.md and the terminal), one file per
# benchmark: $RESULTS/<bench>_overview.csv with the columns
#   workload,case,unit,better,impl,median,min,max
# better: "higher" or "lower" (is a higher figure better?); impl "rcgc" is
# the subject, every other impl of the same workload and case a peer.
# overview_begin BENCH empties the file; overview_row BENCH WORKLOAD CASE
# UNIT BETTER IMPL "MEDIAN MIN MAX" appends a row (nothing if MEDIAN is NA
# or empty).
overview_begin() {
    echo "workload,case,unit,better,impl,median,min,max" > "$RESULTS/$1_overview.csv"
}
overview_row() {
    local m lo hi
    read -r m lo hi <<< "$7"
    [ -z "$m" ] || [ "$m" = NA ] && return 0
    printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "${2//,/;}" "${3//,/;}" "${4//,/;}" "$5" "$6" "$m" "${lo:-$m}" "${hi:-$m}" \
        >> "$RESULTS/$1_overview.csv"
}

# The project's goals that a benchmark checks, for the report's Goals
# table: $RESULTS/<bench>_goals.csv with the columns
#   goal,case,value,limit,verdict
# value: the figure checked, with what it came from; verdict: met, MISSED
# or - (no figure). goals_begin BENCH empties the file; goal_row BENCH
# GOAL CASE VALUE LIMIT VERDICT appends a row.
goals_begin() {
    echo "goal,case,value,limit,verdict" > "$RESULTS/$1_goals.csv"
}
goal_row() {
    printf '%s,%s,%s,%s,%s\n' "${2//,/;}" "${3//,/;}" "${4//,/;}" "${5//,/;}" "$6" >> "$RESULTS/$1_goals.csv"
}

# The collectors' own figures per variant, for the report's collector
# table: $RESULTS/<bench>_gc.csv with the columns
#   workload,case,variant,seconds,collections,empty,pause_total_ms,pause_max_ms,peak_rss_mb
# (medians over the runs; NA where a variant has no such figure: malloc
# has no collections, Boehm does not say which of its found nothing).
# gcfig_begin BENCH empties the file; gcfig_row BENCH WORKLOAD CASE
# VARIANT SECONDS COLLECTIONS EMPTY PAUSE_TOTAL PAUSE_MAX PEAK_RSS appends
# a row.
gcfig_begin() {
    echo "workload,case,variant,seconds,collections,empty,pause_total_ms,pause_max_ms,peak_rss_mb" > "$RESULTS/$1_gc.csv"
}
gcfig_row() {
    local b=$1
    shift
    local IFS=,
    echo "$*" >> "$RESULTS/${b}_gc.csv"
}

# fmt_num X: X with 3 significant figures or so ("-" for NA or nothing).
fmt_num() {
    awk -v x="$1" 'BEGIN {
        if (x == "" || x == "NA") { print "-"; exit }
        x += 0
        if (x >= 100) printf "%.0f\n", x; else if (x >= 10) printf "%.1f\n", x
        else if (x >= 1) printf "%.2f\n", x; else printf "%.3f\n", x }'
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
# count: the mean of the middle two); "NA NA NA" when none is a number.
# One awk (sorting inside): called once per figure.
stats() {
    awk -v s="$*" 'BEGIN {
        m = split(s, w, " ")
        for (i = 1; i <= m; i++) {
            if (w[i] == "NA" || w[i] == "") continue
            x = w[i] + 0; j = ++n
            while (j > 1 && v[j - 1] > x) { v[j] = v[j - 1]; j-- }
            v[j] = x
        }
        if (n == 0) { print "NA NA NA"; exit }
        med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        printf "%.3f %.3f %.3f\n", med, v[1], v[n]
    }'
}

# field KEY LINE: the value of KEY=value in a RESULT line. Pure bash: on a
# busy machine every process spawned costs tens of milliseconds, and the
# benchmarks call this hundreds of times.
field() {
    local w
    for w in $2; do
        if [[ $w == "$1="* ]]; then printf '%s\n' "${w#*=}"; return 0; fi
    done
}

# agg_results FILE [REQUIRE]: for RESULT lines tagged variant=V (and
# carrying threads=T), one line "V T KEY median min max count" per variant,
# thread count and numeric KEY, over the lines that contain the string
# REQUIRE (default: all). One awk for the lot: a shell loop over keys and
# lines spawns thousands of processes (tens of seconds on a busy machine).
agg_results() {
    awk -v req="${2:-}" '
        function sortv(a, n,    i, j, t) {
            for (i = 2; i <= n; i++) {
                t = a[i]; j = i - 1
                while (j >= 1 && a[j] + 0 > t + 0) { a[j + 1] = a[j]; j-- }
                a[j + 1] = t
            }
        }
        /^RESULT / && (req == "" || index($0, req) > 0) {
            v = ""; t = ""
            for (i = 2; i <= NF; i++) {
                e = index($i, "="); if (e == 0) continue
                k = substr($i, 1, e - 1); x = substr($i, e + 1)
                if (k == "variant" && v == "") v = x
                else if (k == "threads" && t == "") t = x
                else if (x ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) { kv[i] = k; xv[i] = x }
            }
            for (i = 2; i <= NF; i++) if (i in kv) {
                g = v SUBSEP t SUBSEP kv[i]
                if (!(g in cnt)) { keys[++ng] = g; cnt[g] = 0 }
                vals[g, ++cnt[g]] = xv[i]
            }
            split("", kv); split("", xv)
        }
        END {
            for (q = 1; q <= ng; q++) {
                g = keys[q]; n = cnt[g]
                for (j = 1; j <= n; j++) a[j] = vals[g, j]
                sortv(a, n)
                med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
                split(g, p, SUBSEP)
                printf "%s %s %s %.4f %.4f %.4f %d\n", p[1], p[2], p[3], med, a[1], a[n], n
            }
        }' "$1"
}

# agg_load AGGFILE: agg_results' lines into the associative arrays AGG
# ("V,T,KEY" -> "median min max") and AGGN ("V,T,KEY" -> count), which the
# caller declares (local -A AGG=() AGGN=()); agg_get V T KEY then prints
# "median min max" (NA NA NA if absent) without starting a process.
agg_load() {
    local v t k m lo hi n
    while read -r v t k m lo hi n; do
        AGG["$v,$t,$k"]="$m $lo $hi"
        AGGN["$v,$t,$k"]=$n
    done < "$1"
}
agg_get() { printf '%s\n' "${AGG["$1,$2,$3"]:-NA NA NA}"; }

# ratio A B: A/B formatted as "1.23x", or "-" when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "NA" || b == "NA" || a == "" || b == "" || b + 0 == 0) print "-"
        else printf "%.2fx\n", a / b }'
}

# sci N: 10^k for a power of ten, else N.
sci() {
    awk -v n="$1" 'BEGIN { k = 0; m = n + 0
        while (m >= 10 && m % 10 == 0) { m /= 10; k++ }
        if (m == 1 && k > 0) printf "10^%d\n", k; else print n }'
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

# alloc_variants WORKLOAD ALLOC...: the variants a workload measures. The
# object workload measures rcgc twice, as rcgc (untracked objects) and
# rcgc_tracked; every other variant is an allocator.
alloc_variants() {
    local wl=$1 a
    shift
    for a in "$@"; do
        if [ "$wl" = object ] && [ "$a" = rcgc ]; then printf '%s\n' rcgc rcgc_tracked
        else printf '%s\n' "$a"
        fi
    done
}

# alloc_label WORKLOAD VARIANT: a variant's column title.
alloc_label() {
    case "$1,$2" in
        object,rcgc) echo "rcgc untracked" ;;
        object,rcgc_tracked) echo "rcgc tracked" ;;
        *) echo "$2" ;;
    esac
}

bench_alloc() {
    local allocs=${ALLOCS:-rcgc glibc jemalloc mimalloc}
    local workloads=${WORKLOADS:-local remote prodcons object}
    local threads_list=${THREADS//,/ }
    # The object workload's thread counts: OBJ_THREADS, else THREADS when
    # given, else 1 and 2 (its goal's).
    local obj_threads
    if [ -n "${OBJ_THREADS:-}" ]; then obj_threads=${OBJ_THREADS//,/ }
    elif [ -n "$THREADS_GIVEN" ]; then obj_threads=$threads_list
    else obj_threads="1 2"
    fi
    local bin jemalloc_so
    bin=$(build_bench alloc_bench)
    jemalloc_so=$(find_jemalloc)

    # Allocators that cannot run here are dropped, with a note.
    local -a A=()
    local a
    for a in $allocs; do
        if [ "$a" = jemalloc ] && [ -z "$jemalloc_so" ]; then
            note "alloc: libjemalloc.so.2 not found (install libjemalloc2 or set JEMALLOC_SO): jemalloc left out"
            continue
        fi
        # A short trial run: a peer whose library is missing (mimalloc is
        # dlopen()ed) is left out with a note instead of failing every run.
        local -a probe=(env -u LD_PRELOAD)
        [ "$a" = jemalloc ] && probe=(env LD_PRELOAD="$jemalloc_so")
        if ! "${probe[@]}" timeout -k 5 30 "$bin" --alloc="$a" --workload=local --threads=1 \
                --seconds=0.01 > "$WORK/out" 2> "$WORK/err"; then
            note "alloc: $a cannot run here ($(tail -n 1 "$WORK/err")): left out"
            continue
        fi
        A+=("$a")
    done
    [ ${#A[@]} -gt 0 ] || die "no allocator to measure"

    local -a W=($workloads)
    # Per workload: its variants (VARS) and thread counts (THRS), as words.
    declare -A VARS=() THRS=()
    local wl total=0 nv nt
    for wl in "${W[@]}"; do
        VARS[$wl]=$(alloc_variants "$wl" "${A[@]}" | tr '\n' ' ')
        if [ "$wl" = object ]; then THRS[$wl]=$obj_threads; else THRS[$wl]=$threads_list; fi
        nv=$(wc -w <<< "${VARS[$wl]}"); nt=$(wc -w <<< "${THRS[$wl]}")
        total=$(( total + nv * nt * REPS ))
    done
    local i=0
    local timeout_s
    timeout_s=$(awk -v d="$DURATION" 'BEGIN { printf "%d\n", d * 10 + 30 }')
    local failures=$RESULTS/alloc_failures.log
    : > "$failures"

    log "=== alloc_bench: ${W[*]} x threads $threads_list (object: $obj_threads) x ${A[*]}, $REPS reps of ${DURATION}s ($total runs)"
    progress_start
    declare -A vals=() version=()
    local t rep k out err status line mops v
    for wl in "${W[@]}"; do
        local -a V=(${VARS[$wl]})
        local na=${#V[@]}
        for t in ${THRS[$wl]}; do
            for (( rep = 0; rep < REPS; rep++ )); do
                for (( k = 0; k < na; k++ )); do
                    v=${V[$(( (k + rep) % na ))]}   # round robin, rotating start
                    a=${v%_tracked}
                    i=$(( i + 1 ))
                    printf '%s alloc %s threads=%s %s rep=%d/%d ... ' \
                        "$(progress "$i" "$total")" "$wl" "$t" "$v" $(( rep + 1 )) "$REPS" >&2
                    local -a cmd=(env -u LD_PRELOAD)
                    [ "$a" = jemalloc ] && cmd=(env LD_PRELOAD="$jemalloc_so")
                    cmd+=(timeout -k 5 "$timeout_s" "$bin" --alloc="$a" --workload="$wl"
                          --threads="$t" --seconds="$DURATION")
                    if [ "$wl" = object ] && [ "$a" = rcgc ]; then
                        [ "$v" = rcgc_tracked ] && cmd+=(--type=tracked) || cmd+=(--type=untracked)
                    fi
                    status=0
                    "${cmd[@]}" > "$WORK/out" 2> "$WORK/err" || status=$?
                    line=$(grep -m1 '^RESULT ' "$WORK/out" || true)
                    mops=""
                    if [ "$status" -eq 0 ] && [ -n "$line" ]; then
                        printf -v mops '%.3f' "$(field ops_per_sec "$line")e-6"
                        version[$a]=$(field version "$line")
                        vals["$wl,$t,$v"]+="$mops "
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
        echo "- Workloads: local: each thread allocates a batch of 1000 blocks and frees it in shuffled order; remote: threads in a ring, each frees the batches the previous one allocated (every free a cross-thread free); prodcons: xmalloc-test's pattern, threads/2 producers allocate batches and hand them through a mutex-protected list to the other threads, which free them (1 thread: alternates); object: local's loop with rcgc's objects, each block an rcgc_new_var(&type, size) dropped by rcgc_decref, of an untracked type (no traverse) and of a tracked one (traverse and clear over two NULL references), beside the peers' malloc(size)/free of the same sizes. bench/alloc_bench.c says more"
        echo "- Unit: million malloc+free pairs per second (object: rcgc_new_var+rcgc_decref pairs for rcgc), median (min-max); block sizes (object: payload sizes) 16..128 bytes, batches of 1000"
        echo "- Ratios: rcgc's median over the peer's (above 1.00x: rcgc faster); object: each rcgc variant's over mimalloc's malloc+free"
    } > "$md"

    local -a peers=()
    for a in "${A[@]}"; do [ "$a" != rcgc ] && peers+=("$a"); done
    local have_rcgc=0 have_mi=0
    for a in "${A[@]}"; do
        [ "$a" = rcgc ] && have_rcgc=1
        [ "$a" = mimalloc ] && have_mi=1
    done

    local csv s med mn mx n hdr row wlabel
    overview_begin alloc
    declare -A ST=()     # "wl,t,variant" -> "median min max"
    for wl in "${W[@]}"; do
        local -a V=(${VARS[$wl]})
        # The ratio columns: subject/reference pairs. Raw workloads: rcgc
        # over every peer; object: each rcgc variant over mimalloc (over
        # every peer if mimalloc is missing).
        local -a RS=() RR=()
        if [ $have_rcgc -eq 1 ]; then
            local -a subj=(rcgc) refs=("${peers[@]}")
            if [ "$wl" = object ]; then
                subj=(rcgc rcgc_tracked)
                [ $have_mi -eq 1 ] && refs=(mimalloc)
            fi
            local x y
            for x in "${subj[@]}"; do
                for y in "${refs[@]}"; do RS+=("$x"); RR+=("$y"); done
            done
        fi
        local nr=${#RS[@]} j
        case "$wl" in
            local) wlabel="alloc local" ;;
            remote) wlabel="alloc remote (cross-thread frees)" ;;
            prodcons) wlabel="alloc prodcons (xmalloc-test)" ;;
            object) wlabel="object new+decref" ;;
            *) wlabel="alloc $wl" ;;
        esac
        csv=$RESULTS/alloc_$wl.csv
        echo "workload,threads,alloc,median_mops,min_mops,max_mops,reps" > "$csv"

        hdr=$(printf '%-8s' threads)
        for v in "${V[@]}"; do hdr+=$(printf ' %22s' "$(alloc_label "$wl" "$v")"); done
        for (( j = 0; j < nr; j++ )); do
            local rl=${RS[$j]}
            [ "$wl" = object ] && rl=$(alloc_label object "$rl") && rl=${rl#rcgc }
            hdr+=$(printf ' %18s' "$rl/${RR[$j]}")
        done
        if [ "$wl" = object ]; then
            printf '\n%s (million pairs/s, median (min-max) of %s; rcgc: rcgc_new_var+rcgc_decref, peers: malloc+free)\n%s\n' "$wl" "$REPS" "$hdr"
        else
            printf '\n%s (million pairs/s, median (min-max) of %s)\n%s\n' "$wl" "$REPS" "$hdr"
        fi

        {
            echo
            echo "## $wl"
            echo
            [ "$wl" = object ] && echo "rcgc: rcgc_new_var + rcgc_decref pairs of an untracked and a tracked type; peers: malloc + free pairs of the same sizes. Ratios: the rcgc variant's median over mimalloc's." && echo
            printf '| threads |'
            for v in "${V[@]}"; do printf ' %s |' "$(alloc_label "$wl" "$v")"; done
            for (( j = 0; j < nr; j++ )); do printf ' %s / %s |' "$(alloc_label "$wl" "${RS[$j]}")" "${RR[$j]}"; done
            echo
            printf '|---:|'
            for v in "${V[@]}"; do printf -- '---:|'; done
            for (( j = 0; j < nr; j++ )); do printf -- '---:|'; done
            echo
        } >> "$md"

        for t in ${THRS[$wl]}; do
            declare -A medv=()
            row=$(printf '%-8s' "$t")
            local mdrow="| $t |"
            for v in "${V[@]}"; do
                # shellcheck disable=SC2086
                s=$(stats ${vals["$wl,$t,$v"]:-})
                read -r med mn mx <<< "$s"
                n=$(echo ${vals["$wl,$t,$v"]:-} | wc -w)
                medv[$v]=$med
                ST["$wl,$t,$v"]=$s
                echo "$wl,$t,$v,$med,$mn,$mx,$n" >> "$csv"
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
            for (( j = 0; j < nr; j++ )); do
                local r
                r=$(ratio "${medv[${RS[$j]}]}" "${medv[${RR[$j]}]}")
                row+=$(printf ' %18s' "$r")
                mdrow+=" $r |"
            done
            echo "$row"
            echo "$mdrow" >> "$md"
            unset medv
        done

        # Overview rows: rcgc beside every peer. object: one row per rcgc
        # variant (untracked, then tracked), each beside the peers' malloc+free.
        local sv
        for sv in rcgc rcgc_tracked; do
            [ "$sv" = rcgc_tracked ] && [ "$wl" != object ] && continue
            local olabel=$wlabel
            if [ "$wl" = object ]; then
                [ "$sv" = rcgc ] && olabel="$wlabel (untracked)" || olabel="$wlabel (tracked)"
            fi
            for t in ${THRS[$wl]}; do
                overview_row alloc "$olabel" "$t thr" "M pairs/s" higher rcgc "${ST["$wl,$t,$sv"]:-}"
                for a in "${peers[@]}"; do
                    overview_row alloc "$olabel" "$t thr" "M pairs/s" higher "$a" "${ST["$wl,$t,$a"]:-}"
                done
            done
        done

        if [ "$wl" != object ] && command -v gnuplot >/dev/null; then
            gnuplot -e "infile='$csv'; outfile='$RESULTS/alloc_$wl.png'; workload='$wl'; allocs='${V[*]}'; subtitle='$machine, $date_s'" \
                bench/plot_alloc.gp || log "run.sh: gnuplot failed for $wl"
        fi
    done

    # Goal (object workload): untracked objects' new+decref at least
    # mimalloc's malloc+free throughput, 16-128 B, at 1 and 2 threads.
    goals_begin alloc
    if [[ " ${W[*]} " == *" object "* ]]; then
        printf '\n%-52s %7s %8s %8s  %s\n' goal threads value limit verdict
        {
            echo
            echo "| goal | threads | value | limit | verdict |"
            echo "|---|---:|---:|---:|---|"
        } >> "$md"
        for t in 1 2; do
            [[ " ${THRS[object]} " == *" $t "* ]] || continue
            local r g m_u m_mi
            read -r m_u _ <<< "${ST["object,$t,rcgc"]:-NA}"
            read -r m_mi _ <<< "${ST["object,$t,mimalloc"]:-NA}"
            r=$(ratio "$m_u" "$m_mi")
            g=$(goal_check "${r%x}" ">=" 1.0); [ "$r" = - ] && g=-
            printf '%-52s %7s %8s %8s  %s\n' "object new+decref untracked / mimalloc malloc+free" "$t" "$r" ">= 1.0x" "$g"
            echo "| untracked object new+decref at least mimalloc's malloc+free: rcgc / mimalloc | $t | $r | >= 1.0x | $g |" >> "$md"
            goal_row alloc "object new+decref (untracked 16-128 B) at least mimalloc's malloc+free" "$t thr" \
                "$r (rcgc $(fmt_num "$m_u") vs mimalloc $(fmt_num "$m_mi") M pairs/s)" ">= 1.0x" "$g"
        done
    fi

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

    # Overview: rcgc's biased counts (owner, non-owner, two threads) beside
    # a plain and an atomic counter.
    rc_cell() { awk -F, -v w="$1" -v v="$2" '$1 == w && $2 == v { print $3, $4, $5 }' "$csv"; }
    overview_begin rc
    # plain (not thread-safe) is the floor the owner's pair aims at; a
    # non-owner's pair is atomic, so only the atomic counter is its peer.
    overview_row rc "refcount: owner thread" "1 thr" "ns/pair" lower rcgc "$(rc_cell 1thread owner)"
    overview_row rc "refcount: owner thread" "1 thr" "ns/pair" lower plain "$(rc_cell 1thread plain)"
    overview_row rc "refcount: owner thread" "1 thr" "ns/pair" lower atomic "$(rc_cell 1thread atomic)"
    overview_row rc "refcount: non-owner thread" "1 thr" "ns/pair" lower rcgc "$(rc_cell 1thread nonowner)"
    overview_row rc "refcount: non-owner thread" "1 thr" "ns/pair" lower atomic "$(rc_cell 1thread atomic)"
    overview_row rc "refcount: one shared object" "2 thr" "ns/pair" lower rcgc "$(rc_cell 2threads rcgc)"
    overview_row rc "refcount: one shared object" "2 thr" "ns/pair" lower atomic "$(rc_cell 2threads atomic)"

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
    goals_begin rc
    goal_row rc "refcount: owner pair at most 1.5x a plain counter's" "1 thr" "${r_op}x" "<= 1.5x" "$g_op"
    goal_row rc "refcount: atomic pair at least 3x the owner pair" "1 thr" "${r_ao}x" ">= 3x" "$g_ao"
    goal_row rc "refcount: one shared object, rcgc at most an atomic counter's time" "2 thr" "${r_two}x" "<= 1.0x" "$g_two"

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
    progress_start

    local keys="ttsp_p50_us ttsp_p99_us ttsp_max_us rt_p50_us rt_p99_us lib_ttsp_p50_us lib_ttsp_p99_us hs_p50_us hs_p99_us hs_rt_p50_us pp_p50_us pp_p99_us pp_idle_p50_us pauses mutator_mops watchdog"
    declare -A vals=()
    local rep k status line key
    for (( rep = 0; rep < REPS; rep++ )); do
        for (( k = 0; k < nt; k++ )); do
            t=${T[$(( (k + rep) % nt ))]}     # thread counts take turns, rotating start
            i=$(( i + 1 ))
            printf '%s safepoint threads=%s rep=%d/%d ... ' "$(progress "$i" "$total")" "$t" $(( rep + 1 )) "$REPS" >&2
            local -a cmd=(timeout -k 5 "$timeout_s" "$bin" --threads="$t" --seconds="$secs")
            status=0
            "${cmd[@]}" > "$WORK/out" 2> "$WORK/err" || status=$?
            line=$(grep -m1 '^RESULT ' "$WORK/out" || true)
            if [ "$status" -eq 0 ] && [ -n "$line" ]; then
                local -A kv=()
                local w
                for w in $line; do kv[${w%%=*}]=${w#*=}; done
                for key in $keys; do
                    vals["$t,$key"]+="${kv[$key]:-NA} "
                done
                log "TTSP p50 ${kv[ttsp_p50_us]:-?} us, p99 ${kv[ttsp_p99_us]:-?} us, ${kv[pauses]:-?} pauses"
                unset kv
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
    overview_begin safepoint
    goals_begin safepoint
    for t in "${T[@]}"; do
        for key in $keys; do
            # shellcheck disable=SC2086
            read -r m[$key] lo[$key] hi[$key] <<< "$(stats ${vals["$t,$key"]:-})"
        done
        # Overview: no library offers a pause to compare with; the bare
        # handshake (the least a cooperative stop of the same threads
        # costs) is the reference. p99 only (the goal's figure); the p50s
        # are in safepoint_summary.md.
        for key in p99; do
            overview_row safepoint "time to safepoint $key" "$t thr" "us" lower rcgc \
                "${m[ttsp_${key}_us]} ${lo[ttsp_${key}_us]} ${hi[ttsp_${key}_us]}"
            overview_row safepoint "time to safepoint $key" "$t thr" "us" lower bare-stop \
                "${m[hs_${key}_us]} ${lo[hs_${key}_us]} ${hi[hs_${key}_us]}"
        done
        n=$(echo ${vals["$t,ttsp_p50_us"]:-} | wc -w)
        goal=$(sp_goal_us "$t" "$cores")
        if [ -z "$goal" ]; then verdict=""; gcell="(none)"
        else
            verdict=$(goal_check "${m[ttsp_p99_us]}" "<" "$goal")
            gcell="< $goal us: $verdict"
            goal_row safepoint "time to safepoint p99" "$t thr" "$(fmt_num "${m[ttsp_p99_us]}") us" "< $goal us" "$verdict"
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

# ------------------------------------------------------------------------
# gc: gc_bench, rcgc's cycle collections beside CPython's gc.collect()
# (bench/gc_bench.py) and Boehm GC's GC_gcollect() (gc_bench_boehm), on
# the same graph (bench/lib/gc_graph.h)
# ------------------------------------------------------------------------
# The python3 for gc_bench.py: $PYTHON, else Debian's (tools/deps.sh
# installs it), else the first on PATH.
find_python() {
    local py=${PYTHON:-}
    if [ -z "$py" ]; then
        if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=$(command -v python3 || true); fi
    fi
    printf '%s\n' "$py"
}

# run_ticking CMD...: run CMD, printing a dot on the terminal every 5
# seconds it takes (a depth-21 binary-trees run takes minutes); CMD's
# status.
run_ticking() {
    "$@" &
    TICK_PID=$!
    local n=0 status=0
    while kill -0 "$TICK_PID" 2>/dev/null; do
        read -r -t 0.1 -u "$NAP_FD" _ || true
        n=$(( n + 1 ))
        (( n % 50 == 0 )) && printf '.' >&"$TICK_FD"
    done
    wait "$TICK_PID" || status=$?
    TICK_PID=""
    return "$status"
}

# run_logged FAILURES OUT TIMEOUT CMD...: run CMD under timeout; its
# RESULT lines are appended to OUT; a failure (exit status, timeout) is
# logged with its output to FAILURES. Returns CMD's status.
run_logged() {
    local failures=$1 outf=$2 timeout_s=$3 status=0
    shift 3
    run_ticking timeout -k 5 "$timeout_s" "$@" > "$WORK/out" 2> "$WORK/err" || status=$?
    grep '^RESULT ' "$WORK/out" >> "$outf" || true
    if [ "$status" -eq 0 ]; then
        log "ok"
    else
        if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            log "FAILED (timed out after ${timeout_s}s: a hang?)"
        else
            log "FAILED (exit $status)"
        fi
        sed 's/^/    | /' "$WORK/err" | tail -n 15 >&2
        {
            echo "=== $*"
            echo "exit status $status"
            cat "$WORK/out" "$WORK/err"
        } >> "$failures"
    fi
    # Warnings (a collection that found or freed the wrong number) are findings.
    grep -i 'warning' "$WORK/err" >&2 || true
    grep -i 'warning' "$WORK/err" >> "$WORK/warnings" || true
    return "$status"
}

# gc_aggregate RESULTFILE: CSV rows, one per (test, n, old, impl, workers):
# median, min, max of ms and of pause_ms over the samples whose checks
# passed (ok=1; over all of them if none did: a collection that found
# nothing is quick, and would drag the median down), the sample count, and
# how many samples had ok=0.
gc_aggregate() {
    awk '
        function kv(line, key,    i, n, f) {
            n = split(line, f, " ")
            for (i = 1; i <= n; i++)
                if (index(f[i], key "=") == 1) return substr(f[i], length(key) + 2)
            return ""
        }
        function sortv(a, n,    i, j, t) {
            for (i = 2; i <= n; i++) {
                t = a[i]; j = i - 1
                while (j >= 1 && a[j] + 0 > t + 0) { a[j + 1] = a[j]; j-- }
                a[j + 1] = t
            }
        }
        function med(a, n) { return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        /^RESULT / {
            k = kv($0, "test") "," kv($0, "n") "," kv($0, "old") "," kv($0, "impl") "," kv($0, "workers")
            if (!(k in cnt)) { keys[++nk] = k; cnt[k] = 0; bad[k] = 0 }
            c = ++cnt[k]
            ms[k, c] = kv($0, "ms"); pz[k, c] = kv($0, "pause_ms")
            good[k, c] = kv($0, "ok") == "1"
            if (!good[k, c]) bad[k]++
        }
        END {
            for (i = 1; i <= nk; i++) {
                k = keys[i]; n = 0
                for (j = 1; j <= cnt[k]; j++)
                    if (good[k, j] || bad[k] == cnt[k]) { n++; a[n] = ms[k, j]; b[n] = pz[k, j] }
                sortv(a, n); sortv(b, n)
                printf "%s,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%d,%d\n", k, med(a, n), a[1], a[n],
                       med(b, n), b[1], b[n], cnt[k], bad[k]
            }
        }' "$1"
}

bench_gc() {
    local sizes workers impls py
    if [ "$BENCH" = quick ]; then sizes=${GC_SIZES:-100000 1000000}
    else sizes=${GC_SIZES:-100000 1000000 10000000}
    fi
    sizes=${sizes//,/ }
    # Collector threads: GC_WORKERS, else the thread counts up to the
    # number of cores (more workers than cores only time-slice).
    if [ -n "${GC_WORKERS:-}" ]; then workers=$GC_WORKERS
    else
        local tw
        workers=""
        for tw in ${THREADS//,/ }; do
            [ "$tw" -le "$(ncores)" ] && workers+="${workers:+,}$tw"
        done
        workers=${workers:-1}
    fi
    impls=${GC_IMPLS:-rcgc rcgc_purge0 cpython boehm}
    local young_old=${GC_YOUNG_OLD:-1000000} young_n=${GC_YOUNG_N:-10000} young_reps=${GC_YOUNG_REPS:-5}
    py=$(find_python)

    local bin bin_boehm machine date_s load_s cores
    bin=$(build_bench gc_bench)
    bin_boehm=$(try_build gc_bench_boehm) || bin_boehm=""
    machine="$(cpu_model), $(ncores) cores"
    cores=$(ncores)
    date_s=$(date '+%Y-%m-%d %H:%M %Z')
    load_s=$(loadavg)

    local -a I=() W=(${workers//,/ }) S=($sizes)
    local impl
    for impl in $impls; do
        case "$impl" in
            rcgc|rcgc_purge0) I+=("$impl") ;;
            boehm)
                if [ -n "$bin_boehm" ]; then I+=("$impl")
                else note "gc: gc_bench_boehm did not build (libgc-dev missing?): Boehm GC left out"
                fi ;;
            cpython)
                if [ -n "$py" ] && "$py" -c 'import gc' 2>/dev/null; then I+=("$impl")
                else note "gc: no python3 (set PYTHON): CPython left out"
                fi ;;
            *) die "GC_IMPLS: unknown implementation '$impl' (rcgc rcgc_purge0 cpython boehm)" ;;
        esac
    done
    [ ${#I[@]} -gt 0 ] || die "gc_bench: nothing to measure"
    local pyver=""
    [ -n "$py" ] && pyver=$("$py" -c 'import platform; print(platform.python_version())' 2>/dev/null || true)

    local failures=$RESULTS/gc_failures.log res=$WORK/gc_results
    : > "$failures"; : > "$res"; : > "$WORK/warnings"
    local ni=${#I[@]} rep k n i=0 total inner timeout_s w
    # processes: per repetition, size and impl (boehm: one per marker count)
    total=0
    for impl in "${I[@]}"; do
        if [ "$impl" = boehm ]; then total=$(( total + ${#W[@]} * ${#S[@]} )); else total=$(( total + ${#S[@]} )); fi
    done
    total=$(( total * REPS ))
    log "=== gc_bench: full collections of ${S[*]} objects, workers ${W[*]}, ${I[*]}, $REPS reps ($total runs; load average $load_s)"
    progress_start
    for (( rep = 0; rep < REPS; rep++ )); do
        for n in "${S[@]}"; do
            # a collection of 10^5 takes milliseconds: 5 samples per process there
            if [ "$n" -le 100000 ]; then inner=5; else inner=1; fi
            timeout_s=$(( 60 + n / 50000 ))
            for (( k = 0; k < ni; k++ )); do
                impl=${I[$(( (k + rep) % ni ))]}    # round robin, rotating start
                case "$impl" in
                    rcgc|rcgc_purge0)
                        i=$(( i + 1 ))
                        printf '%s gc %s n=%s workers=%s rep=%d/%d ... ' "$(progress "$i" "$total")" "$impl" "$n" "$workers" $(( rep + 1 )) "$REPS" >&2
                        local -a env_cmd=(env -u RCGC_PURGE)
                        [ "$impl" = rcgc_purge0 ] && env_cmd=(env RCGC_PURGE=0)
                        run_logged "$failures" "$res" "$timeout_s" "${env_cmd[@]}" "$bin" --test=full --n="$n" \
                            --workers="$workers" --reps="$inner" --rotate="$rep" --label="$impl" || true
                        ;;
                    cpython)
                        i=$(( i + 1 ))
                        printf '%s gc cpython n=%s rep=%d/%d ... ' "$(progress "$i" "$total")" "$n" $(( rep + 1 )) "$REPS" >&2
                        run_logged "$failures" "$res" "$timeout_s" "$py" bench/gc_bench.py --test=full --n="$n" \
                            --reps="$inner" || true
                        ;;
                    boehm)
                        local kw
                        for (( kw = 0; kw < ${#W[@]}; kw++ )); do
                            w=${W[$(( (kw + rep) % ${#W[@]} ))]}
                            i=$(( i + 1 ))
                            printf '%s gc boehm n=%s markers=%s rep=%d/%d ... ' "$(progress "$i" "$total")" "$n" "$w" $(( rep + 1 )) "$REPS" >&2
                            run_logged "$failures" "$res" "$timeout_s" "$bin_boehm" --n="$n" --markers="$w" \
                                --reps="$inner" || true
                        done
                        ;;
                esac
            done
        done
    done

    # Young collections: rcgc (both variants) and CPython's gc.collect(0).
    local -a YI=()
    for impl in "${I[@]}"; do [ "$impl" != boehm ] && YI+=("$impl"); done
    local nyi=${#YI[@]}
    if [ "$nyi" -gt 0 ]; then
        log "=== gc_bench: young collections of $young_n objects beside $young_old old ones or none, ${YI[*]}, $REPS reps"
        progress_start
        timeout_s=$(( 120 + young_old / 20000 ))
        for (( rep = 0; rep < REPS; rep++ )); do
            for (( k = 0; k < nyi; k++ )); do
                impl=${YI[$(( (k + rep) % nyi ))]}
                printf '%s gc young %s rep=%d/%d ... ' "$(progress $(( rep * nyi + k + 1 )) $(( REPS * nyi )))" "$impl" $(( rep + 1 )) "$REPS" >&2
                if [ "$impl" = cpython ]; then
                    run_logged "$failures" "$res" "$timeout_s" "$py" bench/gc_bench.py --test=young \
                        --old="$young_old" --young="$young_n" --young-reps="$young_reps" --rotate="$rep" || true
                else
                    local -a env_cmd=(env -u RCGC_PURGE)
                    [ "$impl" = rcgc_purge0 ] && env_cmd=(env RCGC_PURGE=0)
                    run_logged "$failures" "$res" "$timeout_s" "${env_cmd[@]}" "$bin" --test=young \
                        --old="$young_old" --young="$young_n" --young-reps="$young_reps" \
                        --workers="$workers" --rotate="$rep" --label="$impl" || true
                fi
            done
        done
    fi

    # CSV: test,n,old,impl,workers, ms median/min/max, pause median/min/max, samples, bad
    local csv=$RESULTS/gc.csv md=$RESULTS/gc_summary.md
    echo "test,n,old,impl,workers,median_ms,min_ms,max_ms,pause_ms,pause_min_ms,pause_max_ms,samples,bad" > "$csv"
    gc_aggregate "$res" | sort -t, -k1,1 -k2,2n -k3,3n -k4,4 -k5,5n >> "$csv"
    cp "$res" "$RESULTS/gc_raw.txt"

    # Lookups into the CSV: gc_cell TEST N OLD IMPL W -> "median min max pause samples bad" or empty
    gc_cell() {
        awk -F, -v t="$1" -v n="$2" -v o="$3" -v im="$4" -v w="$5" \
            '$1 == t && $2 == n && $3 == o && $4 == im && $5 == w { print $6, $7, $8, $9, $12, $13; exit }' "$csv"
    }
    # fmt_cell: "median (min-max)" with * when a check failed (bad > 0), "-" when absent
    fmt_cell() {
        [ -z "$1" ] && { echo "-"; return; }
        local m lo hi p s b
        read -r m lo hi p s b <<< "$1"
        local c
        c=$(awk -v m="$m" -v lo="$lo" -v hi="$hi" 'BEGIN {
            f = (m < 10) ? "%.2f (%.2f-%.2f)" : "%.1f (%.1f-%.1f)"; printf f, m, lo, hi }')
        [ "$b" -gt 0 ] && c+=" [${b}/${s} wrong]"
        printf '%s\n' "$c"
    }
    med_of() { [ -z "$1" ] && { echo NA; return; }; echo "${1%% *}"; }
    pause_of() { [ -z "$1" ] && { echo NA; return; }; awk '{ print $4 }' <<< "$1"; }

    local has_rcgc=0 has_p0=0 has_py=0 has_boehm=0
    for impl in "${I[@]}"; do
        case "$impl" in rcgc) has_rcgc=1 ;; rcgc_purge0) has_p0=1 ;; cpython) has_py=1 ;; boehm) has_boehm=1 ;; esac
    done

    {
        echo "# gc_bench results"
        echo
        echo "- Machine: $machine ($(uname -sr)); load average at start: $load_s, at the end: $(loadavg) (the figures are only as good as the machine was quiet)"
        echo "- Date: $date_s"
        echo "- Tree: rcgc $(tree_rev)"
        echo "- Run: BENCH=$BENCH, $REPS processes per point taking turns (implementations round robin, rotating start); at 10^5 objects 5 collections per process; median (min-max) over every sample whose checks passed"
        echo "- Graph (bench/lib/gc_graph.h): N two-pointer objects, a complete binary tree whose leaves point back to the root and across: one cycle of 2N references. live: root held; garbage: root dropped, all N unreachable. One untimed collection first (Boehm: 8, to grow its mark stack; gc_bench_boehm.c)"
        echo "- rcgc: rcgc_collect() wall time (garbage: clearing and freeing included), gc_workers = 1 or 2 (rcgc_init each time); pause: the library's last.pause_ns; rcgc_purge0: the same with RCGC_PURGE=0 (empty pages not returned to the OS at once)"
        echo "- CPython ${pyver:-?} ($py): gc.collect() on objects of a class with __slots__ = ('a', 'b'); one thread, the whole call is the pause"
        echo "- Boehm GC $(dpkg-query -W -f='${Version}' libgc1 2>/dev/null || echo '?'): GC_gcollect(), GC_MALLOC'd nodes, marker threads = workers; conservative stack scan; lazy sweep (partly-empty blocks are swept after the call)"
        echo "- Unit: milliseconds, median (min-max); ratios: the peer's median over rcgc's (above 1.00x: rcgc faster). [k/n wrong]: k of n samples found or freed the wrong number of objects (left out of the median and range)"
        echo
        echo "## Full collections"
        echo
        echo "| test | objects | workers | rcgc | rcgc pause | rcgc_purge0 | CPython | Boehm | CPython/rcgc | Boehm/rcgc |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    } > "$md"

    printf '\ngc full collections (ms, median (min-max); ratios: peer / rcgc, above 1 = rcgc faster)\n'
    printf '%-8s %9s %3s %24s %9s %24s %24s %24s %9s %9s\n' test objects w rcgc "rcgc pse" rcgc_purge0 cpython boehm py/rcgc boehm/rcgc
    local t c_r c_p c_py c_b r_py r_b
    overview_begin gc
    for t in live garbage; do
        for n in "${S[@]}"; do
            for w in "${W[@]}"; do
                c_r=$(gc_cell "$t" "$n" 0 rcgc "$w")
                c_p=$(gc_cell "$t" "$n" 0 rcgc_purge0 "$w")
                c_py=$(gc_cell "$t" "$n" 0 cpython 1)
                c_b=$(gc_cell "$t" "$n" 0 boehm "$w")
                # Overview: the whole call (rcgc: freeing included). Boehm's
                # garbage figure is left out there: it sweeps lazily, after
                # the call.
                local ocase
                ocase="$(sci "$n") obj / $w wkr"
                overview_row gc "full collection: $t heap" "$ocase" ms lower rcgc "$(cut -d' ' -f1-3 <<< "$c_r")"
                overview_row gc "full collection: $t heap" "$ocase" ms lower cpython "$(cut -d' ' -f1-3 <<< "$c_py")"
                [ "$t" = live ] &&
                    overview_row gc "full collection: $t heap" "$ocase" ms lower boehm "$(cut -d' ' -f1-3 <<< "$c_b")"
                r_py=$(ratio "$(med_of "$c_py")" "$(med_of "$c_r")")
                r_b=$(ratio "$(med_of "$c_b")" "$(med_of "$c_r")")
                local pz
                pz=$(pause_of "$c_r")
                [ "$pz" != NA ] && pz=$(printf '%.2f' "$pz")
                printf '%-8s %9s %3s %24s %9s %24s %24s %24s %9s %9s\n' "$t" "$n" "$w" "$(fmt_cell "$c_r")" "$pz" \
                    "$(fmt_cell "$c_p")" "$(fmt_cell "$c_py")" "$(fmt_cell "$c_b")" "$r_py" "$r_b"
                echo "| $t | $n | $w | $(fmt_cell "$c_r") | $pz | $(fmt_cell "$c_p") | $(fmt_cell "$c_py") | $(fmt_cell "$c_b") | $r_py | $r_b |" >> "$md"
            done
        done
    done

    # Goal: a full collection of a million live objects at least 5x faster
    # than both peers. Judged at every worker count; the default on this
    # machine is one worker per CPU.
    local goal_n=1000000
    {
        echo
        echo "| goal | workers | value | verdict |"
        echo "|---|---:|---:|---|"
    } >> "$md"
    printf '\n%-52s %7s %8s  %s\n' goal workers value verdict
    for w in "${W[@]}"; do
        local rr rpy rb
        rr=$(med_of "$(gc_cell live $goal_n 0 rcgc "$w")")
        rpy=$(ratio "$(med_of "$(gc_cell live $goal_n 0 cpython 1)")" "$rr")
        rb=$(ratio "$(med_of "$(gc_cell live $goal_n 0 boehm "$w")")" "$rr")
        local g1 g2
        g1=$(goal_check "${rpy%x}" ">=" 5); [ "$rpy" = - ] && g1=-
        g2=$(goal_check "${rb%x}" ">=" 5); [ "$rb" = - ] && g2=-
        printf '%-52s %7s %8s  %s\n' "10^6 live: CPython time / rcgc time >= 5x" "$w" "$rpy" "$g1"
        printf '%-52s %7s %8s  %s\n' "10^6 live: Boehm time / rcgc time >= 5x" "$w" "$rb" "$g2"
        echo "| 10^6 live objects: CPython / rcgc >= 5x | $w | $rpy | $g1 |" >> "$md"
        echo "| 10^6 live objects: Boehm (same markers) / rcgc >= 5x | $w | $rb | $g2 |" >> "$md"
    done
    local wmax=${W[0]}
    for w in "${W[@]}"; do [ "$w" -gt "$wmax" ] && wmax=$w; done
    if [ "${#W[@]}" -gt 1 ]; then
        local r1 r2
        r1=$(med_of "$(gc_cell live $goal_n 0 rcgc "${W[0]}")")
        r2=$(med_of "$(gc_cell live $goal_n 0 rcgc "$wmax")")
        printf '%-52s %7s %8s  %s\n' "10^6 live: rcgc ${W[0]} worker(s) / $wmax workers" "-" "$(ratio "$r1" "$r2")" "(no goal; above 1: more workers help)"
        echo "| 10^6 live objects: rcgc ${W[0]} worker(s) / $wmax workers (speed-up) | - | $(ratio "$r1" "$r2") | (no goal) |" >> "$md"
    fi

    # Young collections
    if [ "$nyi" -gt 0 ]; then
        {
            echo
            echo "## Young collections"
            echo
            echo "$young_n objects of young cyclic garbage, collected by rcgc_collect_young() (CPython: gc.collect(0)), beside a live old graph of $young_old objects (made old by a full collection) or none; $young_reps collections per process. Goal: with a million old objects, a young collection of ten thousand costs about what it costs with none (read here as: at most 1.25x)."
            echo
            echo "| impl | workers | old = $young_old | old = 0 | pause, old | pause, none | with / without | pause with / without | goal (time) |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        } >> "$md"
        printf '\ngc young collections of %s objects (ms, median (min-max)) beside %s old objects or none\n' "$young_n" "$young_old"
        printf '%-12s %3s %26s %26s %9s %9s %10s %10s  %s\n' impl w "old=$young_old" "old=0" "pse old" "pse none" "with/w.o." "pse w/w.o." "goal (time)"
        local yw c_o c_z r_y g_y
        for impl in "${YI[@]}"; do
            local -a YW=("${W[@]}")
            [ "$impl" = cpython ] && YW=(1)
            for yw in "${YW[@]}"; do
                c_o=$(gc_cell young "$young_n" "$young_old" "$impl" "$yw")
                c_z=$(gc_cell young "$young_n" 0 "$impl" "$yw")
                # Overview: rcgc at each worker count beside CPython's one thread.
                local yimpl
                if [ "$impl" = rcgc ]; then
                    for yimpl in rcgc cpython; do
                        local yc
                        if [ "$yimpl" = rcgc ]; then yc=$c_o
                        else yc=$(gc_cell young "$young_n" "$young_old" cpython 1)
                        fi
                        overview_row gc "young collection beside $(sci "$young_old") old" \
                            "$(sci "$young_n") obj / $yw wkr" ms lower "$yimpl" "$(cut -d' ' -f1-3 <<< "$yc")"
                    done
                fi
                r_y=$(ratio "$(med_of "$c_o")" "$(med_of "$c_z")")
                g_y="(peer)"
                if [ "$impl" != cpython ]; then
                    g_y=$(goal_check "${r_y%x}" "<=" 1.25); [ "$r_y" = - ] && g_y=-
                fi
                local po pn r_p
                po=$(pause_of "$c_o"); pn=$(pause_of "$c_z")
                r_p=$(ratio "$po" "$pn")
                [ "$po" != NA ] && po=$(printf '%.2f' "$po")
                [ "$pn" != NA ] && pn=$(printf '%.2f' "$pn")
                printf '%-12s %3s %26s %26s %9s %9s %10s %10s  %s\n' "$impl" "$yw" "$(fmt_cell "$c_o")" "$(fmt_cell "$c_z")" "$po" "$pn" "$r_y" "$r_p" "$g_y"
                echo "| $impl | $yw | $(fmt_cell "$c_o") | $(fmt_cell "$c_z") | $po | $pn | $r_y | $r_p | $g_y |" >> "$md"
            done
        done
    fi

    local nfail nwarn
    nfail=$(grep -c '^=== ' "$failures" || true)
    nwarn=$(grep -c 'warning' "$WORK/warnings" || true)
    {
        echo
        if [ "$nwarn" -gt 0 ]; then
            echo "Checks that failed ($nwarn warning lines; the first ones):"
            echo
            echo '```'
            sort "$WORK/warnings" | uniq -c | sort -rn | head -n 10
            echo '```'
        else
            echo "Every collection found and freed the number of objects the graph says."
        fi
        if [ "$nfail" -gt 0 ]; then
            echo "$nfail process(es) failed or hung; their commands and output are in gc_failures.log."
        else
            rm -f "$failures"
            echo "Every run succeeded."
        fi
    } >> "$md"

    if command -v gnuplot >/dev/null; then
        local series="" s_impl
        for s_impl in "${I[@]}"; do
            if [ "$s_impl" = cpython ]; then series+="cpython:1 "
            else for w in "${W[@]}"; do series+="$s_impl:$w "; done
            fi
        done
        gnuplot -e "infile='$csv'; outfile='$RESULTS/gc.png'; series='${series% }'; subtitle='$machine, $date_s, load $load_s'" \
            bench/plot_gc.gp || log "run.sh: gnuplot failed for gc"
    fi
    echo
    echo "Wrote $csv, $md$(command -v gnuplot >/dev/null && echo ", and $RESULTS/gc.png")."
    [ "$nfail" -gt 0 ] && log "run.sh: $nfail gc_bench run(s) failed: see $failures"
    [ "$nwarn" -gt 0 ] && log "run.sh: gc_bench: $nwarn collection(s) found or freed the wrong number of objects (see gc_summary.md)"
    return 0
}

# ------------------------------------------------------------------------
# gcbench: Boehm's GCBench pattern on rcgc and Boehm GC (and malloc/free as
# a reference), against threads
# ------------------------------------------------------------------------
bench_gcbench() {
    local tlist=${GCB_THREADS:-$THREADS} variants=${GCB_VARIANTS:-boehm rcgc rcgc_purge0 glibc}
    local stretch=${GCB_STRETCH:-18} lldepth
    # GCBench's long-lived tree and deepest short-lived trees: depth 16, or
    # the stretch depth if that is less
    lldepth=$(( stretch < 16 ? stretch : 16 ))
    local bin machine date_s load_s
    bin=$(build_bench gcbench)
    machine="$(cpu_model), $(ncores) cores"
    date_s=$(date '+%Y-%m-%d %H:%M %Z')
    load_s=$(loadavg)
    local -a V=() T=(${tlist//,/ })
    local v
    for v in $variants; do
        case "$v" in
            boehm|rcgc|rcgc_purge0|glibc) V+=("$v") ;;
            *) die "GCB_VARIANTS: unknown variant '$v' (boehm rcgc rcgc_purge0 glibc)" ;;
        esac
    done
    local nv=${#V[@]} total=$(( ${#V[@]} * ${#T[@]} * REPS )) i=0 rep k t
    # rcgc's runs take ~3 s at stretch depth 18 on 2 cores; 4x per 2 depths
    local timeout_s=$(( 60 + (1 << (stretch > 18 ? (stretch - 18) * 2 : 0)) * 60 ))
    local failures=$RESULTS/gcbench_failures.log res=$WORK/gcb_results
    : > "$failures"; : > "$res"; : > "$WORK/warnings"
    log "=== gcbench: stretch depth $stretch, threads ${T[*]}, ${V[*]}, $REPS reps ($total runs; load average $load_s)"
    progress_start
    for t in "${T[@]}"; do
        for (( rep = 0; rep < REPS; rep++ )); do
            for (( k = 0; k < nv; k++ )); do
                v=${V[$(( (k + rep) % nv ))]}
                i=$(( i + 1 ))
                printf '%s gcbench %s threads=%s rep=%d/%d ... ' "$(progress "$i" "$total")" "$v" "$t" \
                    $(( rep + 1 )) "$REPS" >&2
                local -a cmd=(env -u RCGC_PURGE "$bin" --impl="$v")
                [ "$v" = rcgc_purge0 ] && cmd=(env RCGC_PURGE=0 "$bin" --impl=rcgc)
                cmd+=(--threads="$t" --stretch-depth="$stretch" --long-lived-depth="$lldepth"
                      --max-depth="$lldepth")
                local before
                before=$(wc -l < "$res")
                run_logged "$failures" "$res" "$timeout_s" "${cmd[@]}" || true
                if [ "$(wc -l < "$res")" -gt "$before" ]; then
                    sed -i "\$s/^RESULT /RESULT variant=$v /" "$res"
                fi
            done
        done
    done
    cp "$res" "$RESULTS/gcbench_raw.txt"

    # The phases, from the first RESULT line: td4 bu4 td6 ... (top-down and
    # bottom-up construction at each depth).
    local -a P=()
    local first
    first=$(head -n 1 "$res")
    P=($(tr ' ' '\n' <<< "$first" | sed -n 's/^\(\(td\|bu\)[0-9]*\)_ms=.*/\1/p'))

    local csv=$RESULTS/gcbench.csv dcsv=$RESULTS/gcbench_depths.csv md=$RESULTS/gcbench_summary.md
    echo "variant,threads,median_s,min_s,max_s,runs,median_mnodes_s,min_mnodes_s,max_mnodes_s,peak_rss_mb,gc_collections,gc_pause_total_ms,gc_pause_max_ms,failed_checks,gc_empty" > "$csv"
    echo "variant,threads,phase,median_ms,min_ms,max_ms" > "$dcsv"
    # medians over the runs whose final check passed (ok=1)
    local agg=$WORK/gcb_agg
    local -A AGG=() AGGN=()
    agg_results "$res" " ok=1 " > "$agg"
    agg_load "$agg"
    declare -A med=() cell=() dcell=()
    local m lo hi n mn mnl mnh rss gcc gcp gcm gce bad ph
    overview_begin gcbench
    gcfig_begin gcbench
    for t in "${T[@]}"; do
        for v in "${V[@]}"; do
            read -r m lo hi <<< "$(agg_get "$v" "$t" seconds)"
            read -r mn mnl mnh <<< "$(agg_get "$v" "$t" mnodes_per_s)"
            n=${AGGN["$v,$t,seconds"]:-0}
            bad=$(grep "^RESULT variant=$v " "$res" | grep " threads=$t " | grep -c ' ok=0 ' || true)
            read -r rss _ <<< "$(agg_get "$v" "$t" peak_rss_mb)"
            read -r gcc _ <<< "$(agg_get "$v" "$t" gc_collections)"
            read -r gcp _ <<< "$(agg_get "$v" "$t" gc_pause_total_ms)"
            read -r gcm _ <<< "$(agg_get "$v" "$t" gc_pause_max_ms)"
            read -r gce _ <<< "$(agg_get "$v" "$t" gc_empty)"
            echo "$v,$t,$m,$lo,$hi,$n,$mn,$mnl,$mnh,$rss,$gcc,$gcp,$gcm,$bad,$gce" >> "$csv"
            gcfig_row gcbench "GCBench (Boehm's)" "$t thr" "$v" "$m" "$gcc" "$gce" "$gcp" "$gcm" "$rss"
            case "$v" in
                rcgc|boehm) overview_row gcbench "GCBench (Boehm's)" "$t thr" s lower "$v" "$m $lo $hi" ;;
            esac
            med[$v,$t]=$m
            if [ "$m" = NA ]; then cell[$v,$t]=FAILED
            else
                cell[$v,$t]=$(printf '%.3f (%.3f-%.3f)' "$m" "$lo" "$hi")
                [ "$n" -lt "$REPS" ] && cell[$v,$t]+="*"
            fi
            for ph in "${P[@]}"; do
                local ds
                ds=${AGG["$v,$t,${ph}_ms"]:-NA NA NA}
                echo "$v,$t,$ph,${ds// /,}" >> "$dcsv"
                local dm=${ds%% *}
                if [ "$dm" = NA ]; then dcell[$v,$t,$ph]="-"
                elif [ "${dm%%.*}" -lt 100 ]; then printf -v "dcell[$v,$t,$ph]" '%.1f' "$dm"
                else printf -v "dcell[$v,$t,$ph]" '%.0f' "$dm"
                fi
            done
        done
    done

    {
        echo "# gcbench results"
        echo
        echo "- Machine: $machine ($(uname -sr)); load average at start: $load_s, at the end: $(loadavg) (the figures are only as good as the machine was quiet)"
        echo "- Date: $date_s"
        echo "- Tree: rcgc $(tree_rev)"
        echo "- Run: BENCH=$BENCH, threads ${T[*]}, $REPS runs per variant taking turns (one process each)"
        echo "- Program (bench/gcbench.c): Boehm's GCBench (its sizes are stretch 18, long-lived 16: here stretch tree of depth $stretch; a long-lived tree of depth $lldepth and array of 500,000 doubles kept throughout; for depths 4, 6, ..., $lldepth, NumIters(d) = 2 TreeSize($stretch) / TreeSize(d) trees built top-down (Populate) and as many bottom-up (MakeTree), each dropped at once); nodes of two pointers and two ints; each construction phase shared among the threads, a barrier after each. Time: from the stretch tree to the final check of the long-lived data"
        echo "- Variants: Boehm GC $(dpkg-query -W -f='${Version}' libgc1 2>/dev/null || echo '?') (GC_MALLOC, never freed, default marker threads); rcgc (rcgc_new of a tracked type, trees freed by reference counting, automatic collections on: defaults); rcgc_purge0: RCGC_PURGE=0; glibc: malloc/free, trees freed node by node (a reference for explicit freeing, not a peer)"
        echo "- Unit: seconds, median (min-max); M nodes/s: nodes allocated per second; Boehm/rcgc: Boehm's time over rcgc's (above 1.00x: rcgc faster); peak RSS: getrusage's ru_maxrss; gc collections: rcgc's (rcgc_gc_get_stats) or Boehm's (GC_get_gc_no); found nothing: rcgc's collections that found no unreachable object (an RCGC_GC_STOP callback with unreachable 0); gc pauses: rcgc's own world-stopped time (rcgc_gc_get_stats), Boehm's from its stop-world/start-world events; medians over the runs"
    } > "$md"

    local ph hdr_t="" hdr_m="" sep_m=""
    for ph in "${P[@]}"; do
        hdr_t+=$(printf ' %7s' "$ph")
        hdr_m+=" $ph |"
        sep_m+="---:|"
    done
    for t in "${T[@]}"; do
        printf '\ngcbench, %s thread%s (seconds, median (min-max) of %s runs; Boehm/x: Boehm time over this one, above 1 = faster than Boehm)\n' \
            "$t" "$([ "$t" -eq 1 ] || echo s)" "$REPS"
        printf '%-12s %26s %9s %9s %8s %8s %7s %12s %12s\n' variant seconds "M nodes/s" Boehm/x "peak MB" "gc colls" "empty" "pause tot ms" "pause max ms"
        {
            echo
            echo "## $t thread$([ "$t" -eq 1 ] || echo s)"
            echo
            echo "| variant | seconds | M nodes/s | Boehm / x | peak RSS MB | gc collections | found nothing | gc pause total ms | gc pause max ms |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        } >> "$md"
        for v in "${V[@]}"; do
            local r row
            r=$(ratio "${med[boehm,$t]:-NA}" "${med[$v,$t]}")
            row=$(awk -F, -v v="$v" -v t="$t" 'function f(x, fmt) { return (x == "NA" || x == "") ? "-" : sprintf(fmt, x) }
                $1 == v && $2 == t { print f($7, "%.1f") "," f($10, "%.1f") "," f($11, "%.0f") "," f($12, "%.1f") "," f($13, "%.1f") "," f($15, "%.0f") }' "$csv")
            IFS=, read -r mn rss gcc gcp gcm gce <<< "$row"
            printf '%-12s %26s %9s %9s %8s %8s %7s %12s %12s\n' "$v" "${cell[$v,$t]}" "$mn" "$r" "$rss" "$gcc" "$gce" "$gcp" "$gcm"
            echo "| $v | ${cell[$v,$t]} | $mn | $r | $rss | $gcc | $gce | $gcp | $gcm |" >> "$md"
        done
        printf '\n  per phase, ms (median; td: top-down, bu: bottom-up, then the depth)\n  %-12s%s\n' variant "$hdr_t"
        {
            echo
            echo "Per phase at $t thread$([ "$t" -eq 1 ] || echo s), ms (median; td: top-down, bu: bottom-up, then the depth):"
            echo
            echo "| variant |$hdr_m"
            echo "|---|$sep_m"
        } >> "$md"
        for v in "${V[@]}"; do
            local lt="" lm=""
            for ph in "${P[@]}"; do
                lt+=$(printf ' %7s' "${dcell[$v,$t,$ph]}")
                lm+=" ${dcell[$v,$t,$ph]} |"
            done
            printf '  %-12s%s\n' "$v" "$lt"
            echo "| $v |$lm" >> "$md"
        done
    done

    # Goal: GCBench at 1 and 2 threads at least 1.5x faster than Boehm GC.
    goals_begin gcbench
    printf '\n%-40s %7s %8s %8s  %s\n' goal threads value limit verdict
    {
        echo
        echo "| goal | threads | value | limit | verdict |"
        echo "|---|---:|---:|---:|---|"
    } >> "$md"
    for t in 1 2; do
        [[ " ${T[*]} " == *" $t "* ]] || continue
        local r_bo g_bo
        r_bo=$(ratio "${med[boehm,$t]:-NA}" "${med[rcgc,$t]:-NA}")
        g_bo=$(goal_check "${r_bo%x}" ">=" 1.5); [ "$r_bo" = - ] && g_bo=-
        printf '%-40s %7s %8s %8s  %s\n' "Boehm time / rcgc time" "$t" "$r_bo" ">= 1.5x" "$g_bo"
        echo "| rcgc 1.5x faster than Boehm GC: Boehm / rcgc | $t | $r_bo | >= 1.5x | $g_bo |" >> "$md"
        goal_row gcbench "GCBench: rcgc at least 1.5x faster than Boehm GC (stretch depth $stretch)" "$t thr" \
            "$r_bo (Boehm $(fmt_num "${med[boehm,$t]:-NA}") s vs rcgc $(fmt_num "${med[rcgc,$t]:-NA}") s)" ">= 1.5x" "$g_bo"
    done

    local nfail nbad
    nfail=$(grep -c '^=== ' "$failures" || true)
    nbad=$(grep -c ' ok=0 ' "$res" || true)
    {
        echo
        if [ "$nbad" -gt 0 ]; then
            echo "**$nbad run(s) found the long-lived data damaged** (ok=0 in gcbench_raw.txt); they are left out of the figures."
        else
            echo "Every run's long-lived tree and array were intact at the end."
        fi
        if [ "$nfail" -gt 0 ]; then
            echo "$nfail run(s) failed; a figure marked * has fewer than $REPS runs. Their commands and output are in gcbench_failures.log."
        else
            rm -f "$failures"
            echo "Every run succeeded."
        fi
    } >> "$md"
    local plotted=""
    if command -v gnuplot >/dev/null; then
        gnuplot -e "infile='$csv'; outfile='$RESULTS/gcbench.png'; series='${V[*]}'; xcol=2; ycol=7; lcol=8; hcol=9; logy=0; ylab='million nodes allocated / s (median, min-max bars)'; ptitle='gcbench (Boehm GCBench pattern): throughput against threads (higher is better)'; subtitle='$machine, $date_s, load $load_s'" \
            bench/plot_threads.gp && plotted=", $RESULTS/gcbench.png" || log "run.sh: gnuplot failed for gcbench"
    fi
    echo
    echo "Wrote $csv, $dcsv, $md$plotted."
    [ "$nfail" -gt 0 ] && log "run.sh: $nfail gcbench run(s) failed: see $failures"
    [ "$nbad" -gt 0 ] && log "run.sh: gcbench: $nbad run(s) found the long-lived data damaged"
    return 0
}

# ------------------------------------------------------------------------
# binary_trees: the Benchmarks Game's binary-trees on glibc, mimalloc,
# Boehm GC and rcgc
# ------------------------------------------------------------------------
# bt_lines VARIANT THREADS: the RESULT lines of that variant and thread
# count in $res.
bt_lines() { grep "^RESULT variant=$1 " "$res" | grep " threads=$2 " || true; }

bench_binary_trees() {
    local depth tlist variants
    if [ "$BENCH" = quick ]; then depth=${BT_DEPTH:-18}; else depth=${BT_DEPTH:-21}; fi
    # Thread counts: BT_THREADS, else THREADS when given, else quick: 2 (one
    # point: rcgc's runs take seconds each), full: THREADS.
    if [ -n "${BT_THREADS:-}" ]; then tlist=$BT_THREADS
    elif [ -n "$THREADS_GIVEN" ] || [ "$BENCH" = full ]; then tlist=$THREADS
    else tlist=2
    fi
    variants=${BT_VARIANTS:-glibc mimalloc boehm rcgc rcgc_purge0 rcgc_purge0_nogc}
    local bin bin_mi machine date_s load_s
    bin=$(build_bench binary_trees)
    bin_mi=$(try_build binary_trees_mimalloc) || bin_mi=""
    machine="$(cpu_model), $(ncores) cores"
    date_s=$(date '+%Y-%m-%d %H:%M %Z')
    load_s=$(loadavg)
    local -a V=() T=(${tlist//,/ })
    local v
    for v in $variants; do
        case "$v" in
            glibc|boehm|rcgc|rcgc_purge0|rcgc_purge0_nogc) V+=("$v") ;;
            mimalloc)
                if [ -n "$bin_mi" ]; then V+=("$v")
                else note "binary_trees: binary_trees_mimalloc did not build (libmimalloc-dev missing?): mimalloc left out"
                fi ;;
            *) die "BT_VARIANTS: unknown variant '$v' (glibc mimalloc boehm rcgc rcgc_purge0 rcgc_purge0_nogc)" ;;
        esac
    done
    [ ${#V[@]} -gt 0 ] || die "binary_trees: nothing to measure"
    local nv=${#V[@]} total=$(( ${#V[@]} * ${#T[@]} * REPS )) i=0 rep k t
    local timeout_s=$(( 60 + (1 << (depth > 16 ? depth - 16 : 0)) * 30 ))
    local failures=$RESULTS/binary_trees_failures.log res=$WORK/bt_results
    : > "$failures"; : > "$res"; : > "$WORK/warnings"
    log "=== binary_trees: depth $depth, threads ${T[*]}, ${V[*]}, $REPS reps ($total runs; load average $load_s)"
    progress_start
    for t in "${T[@]}"; do
        for (( rep = 0; rep < REPS; rep++ )); do
            for (( k = 0; k < nv; k++ )); do
                v=${V[$(( (k + rep) % nv ))]}
                i=$(( i + 1 ))
                printf '%s binary_trees %s depth=%s threads=%s rep=%d/%d ... ' "$(progress "$i" "$total")" \
                    "$v" "$depth" "$t" $(( rep + 1 )) "$REPS" >&2
                local -a cmd=(env -u RCGC_PURGE -u RCGC_GC_THRESHOLD)
                case "$v" in
                    glibc|boehm|rcgc) cmd+=("$bin" --alloc="$v") ;;
                    mimalloc) cmd+=("$bin_mi" --alloc=mimalloc) ;;
                    rcgc_purge0) cmd=(env -u RCGC_GC_THRESHOLD RCGC_PURGE=0 "$bin" --alloc=rcgc) ;;
                    rcgc_purge0_nogc) cmd=(env RCGC_PURGE=0 RCGC_GC_THRESHOLD=0 "$bin" --alloc=rcgc) ;;
                esac
                cmd+=(--depth="$depth" --threads="$t")
                local before
                before=$(wc -l < "$res")
                run_logged "$failures" "$res" "$timeout_s" "${cmd[@]}" || true
                # tag the new RESULT line with the variant
                if [ "$(wc -l < "$res")" -gt "$before" ]; then
                    sed -i "\$s/^RESULT /RESULT variant=$v /" "$res"
                fi
            done
        done
    done
    cp "$res" "$RESULTS/binary_trees_raw.txt"

    local csv=$RESULTS/binary_trees.csv md=$RESULTS/binary_trees_summary.md
    echo "variant,depth,threads,median_s,min_s,max_s,runs,checksums,peak_rss_mb,gc_collections,gc_pause_total_ms,gc_pause_max_ms,gc_empty,gc_empty_max" > "$csv"
    declare -A med=() cell=() rssm=() emax=()
    local m lo hi n cks rss gcc gcp gcm gce gcex all_ck="" agg=$WORK/bt_agg
    local -A AGG=() AGGN=()
    agg_results "$res" > "$agg"
    agg_load "$agg"
    overview_begin binary_trees
    gcfig_begin binary_trees
    for t in "${T[@]}"; do
        for v in "${V[@]}"; do
            read -r m lo hi <<< "$(agg_get "$v" "$t" seconds)"
            n=${AGGN["$v,$t,seconds"]:-0}
            cks=$(bt_lines "$v" "$t" | grep -o ' checksum=[0-9a-f]*' | cut -d= -f2 | sort -u | tr '\n' ' ')
            cks=${cks% }
            all_ck+="$cks "
            read -r rss _ <<< "$(agg_get "$v" "$t" peak_rss_mb)"
            read -r gcc _ <<< "$(agg_get "$v" "$t" gc_collections)"
            read -r gcp _ <<< "$(agg_get "$v" "$t" gc_pause_total_ms)"
            read -r gcm _ <<< "$(agg_get "$v" "$t" gc_pause_max_ms)"
            read -r gce _ gcex <<< "$(agg_get "$v" "$t" gc_empty)"
            echo "$v,$depth,$t,$m,$lo,$hi,$n,${cks// /;},$rss,$gcc,$gcp,$gcm,$gce,$gcex" >> "$csv"
            gcfig_row binary_trees "binary-trees depth $depth" "$t thr" "$v" "$m" "$gcc" "$gce" "$gcp" "$gcm" "$rss"
            rssm[$v,$t]=$rss
            emax[$v,$t]=$gcex
            case "$v" in
                rcgc|glibc|mimalloc|boehm)
                    overview_row binary_trees "binary-trees depth $depth" "$t thr" s lower "$v" "$m $lo $hi" ;;
            esac
            med[$v,$t]=$m
            if [ "$m" = NA ]; then cell[$v,$t]=FAILED
            else
                cell[$v,$t]=$(printf '%.3f (%.3f-%.3f)' "$m" "$lo" "$hi")
                [ "$n" -lt "$REPS" ] && cell[$v,$t]+="*"
            fi
        done
    done
    local ncks
    ncks=$(echo $all_ck | tr ' ' '\n' | sort -u | grep -c . || true)

    {
        echo "# binary_trees results"
        echo
        echo "- Machine: $machine ($(uname -sr)); load average at start: $load_s, at the end: $(loadavg) (the figures are only as good as the machine was quiet)"
        echo "- Date: $date_s"
        echo "- Tree: rcgc $(tree_rev)"
        echo "- Run: BENCH=$BENCH, depth $depth, threads ${T[*]} (the depths shared out, as the game's multi-threaded C programs do), $REPS runs per variant taking turns; whole program from main's start (allocator set-up and tear-down included)"
        echo "- Variants: glibc malloc/free; mimalloc mi_malloc/mi_free (libmimalloc $(dpkg-query -W -f='${Version}' libmimalloc2.0 2>/dev/null || echo '?'), own binary); Boehm GC_MALLOC, no frees (default marker threads); rcgc: rcgc_new objects with traverse/clear, freed by rcgc_decref, automatic collections on (defaults); rcgc_purge0: RCGC_PURGE=0; rcgc_purge0_nogc: RCGC_PURGE=0 RCGC_GC_THRESHOLD=0 (no automatic collection)"
        echo "- Unit: seconds, median (min-max); rcgc/x: rcgc's median over the variant's (above 1.00x: rcgc slower); peak RSS: getrusage's ru_maxrss; gc collections: rcgc's (rcgc_gc_get_stats) or Boehm's (GC_get_gc_no), up to the end of the work (rcgc_shutdown's own collection not counted); found nothing: rcgc's collections that found no unreachable object (an RCGC_GC_STOP callback with unreachable 0: wasted on this program, whose trees reference counting frees), median (worst run); gc pauses: rcgc's world-stopped time (rcgc_gc_get_stats), Boehm's from its stop-world/start-world events; medians over the runs"
    } > "$md"
    for t in "${T[@]}"; do
        printf '\nbinary_trees depth %s, %s thread%s (seconds, median (min-max) of %s runs; rcgc/x: rcgc time over this one)\n' \
            "$depth" "$t" "$([ "$t" -eq 1 ] || echo s)" "$REPS"
        printf '%-18s %26s %9s %10s %10s %13s %12s %12s\n' variant seconds rcgc/x "peak MB" "gc colls" "found nothing" "pause tot ms" "pause max ms"
        {
            echo
            echo "## $t thread$([ "$t" -eq 1 ] || echo s)"
            echo
            echo "| variant | seconds | rcgc/x | peak RSS MB | gc collections | found nothing | gc pause total ms | gc pause max ms |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        } >> "$md"
        for v in "${V[@]}"; do
            local r
            r=$(ratio "${med[rcgc,$t]:-NA}" "${med[$v,$t]}")
            # collections as an integer, RSS and pauses to 0.1 (NA: "-");
            # found nothing: median (worst run)
            local row_gc c1 c2 c3 c4
            row_gc=$(awk -F, -v v="$v" -v t="$t" 'function f(x, fmt) { return (x == "NA" || x == "") ? "-" : sprintf(fmt, x) }
                $1 == v && $3 == t { print f($9, "%.1f") "," f($10, "%.0f") "," f($11, "%.1f") "," f($12, "%.1f") "," \
                    (f($13, "%.0f") == "-" ? "-" : f($13, "%.0f") " (" f($14, "%.0f") ")") }' "$csv")
            IFS=, read -r rss c1 c2 c3 c4 <<< "$row_gc"
            printf '%-18s %26s %9s %10s %10s %13s %12s %12s\n' "$v" "${cell[$v,$t]}" "$r" "$rss" "$c1" "$c4" "$c2" "$c3"
            echo "| $v | ${cell[$v,$t]} | $r | $rss | $c1 | $c4 | $c2 | $c3 |" >> "$md"
        done
    done

    local ck_verdict
    if [ "$ncks" -eq 1 ]; then ck_verdict="every run's output has the same checksum ($(echo $all_ck | cut -d' ' -f1))"
    else ck_verdict="CHECKSUMS DIFFER between variants: $(echo $all_ck | tr ' ' '\n' | sort -u | tr '\n' ' ')"
    fi
    # Goals (stated for depth 21 at 2 threads; checked at every depth and
    # thread count run, the depth named): time within 1.5x of mimalloc's
    # and 3x below Boehm's, peak RSS within 1.3x of mimalloc's, at most 3
    # automatic collections that find nothing (the worst run's count).
    local dnote=""
    [ "$depth" -ne 21 ] && dnote=" (the goals' depth is 21)"
    goals_begin binary_trees
    printf '\n%-40s %7s %8s %8s  %s\n' "goal at depth $depth$dnote" threads value limit verdict
    {
        echo
        echo "Goals at depth $depth$dnote:"
        echo
        echo "| goal | threads | value | limit | verdict |"
        echo "|---|---:|---:|---:|---|"
    } >> "$md"
    for t in "${T[@]}"; do
        local r_mi r_bo r_rss g_mi g_bo g_rss g_em e_rc colls
        read -r colls _ <<< "$(agg_get rcgc "$t" gc_collections)"
        r_mi=$(ratio "${med[rcgc,$t]:-NA}" "${med[mimalloc,$t]:-NA}")
        r_bo=$(ratio "${med[boehm,$t]:-NA}" "${med[rcgc,$t]:-NA}")
        r_rss=$(ratio "${rssm[rcgc,$t]:-NA}" "${rssm[mimalloc,$t]:-NA}")
        e_rc=${emax[rcgc,$t]:-NA}
        g_mi=$(goal_check "${r_mi%x}" "<=" 1.5); [ "$r_mi" = - ] && g_mi=-
        g_bo=$(goal_check "${r_bo%x}" ">=" 3); [ "$r_bo" = - ] && g_bo=-
        g_rss=$(goal_check "${r_rss%x}" "<=" 1.3); [ "$r_rss" = - ] && g_rss=-
        g_em=$(goal_check "$e_rc" "<=" 3)
        [ "$e_rc" != NA ] && printf -v e_rc '%.0f' "$e_rc"
        printf '%-40s %7s %8s %8s  %s\n' "rcgc time / mimalloc time" "$t" "$r_mi" "<= 1.5x" "$g_mi"
        printf '%-40s %7s %8s %8s  %s\n' "Boehm time / rcgc time" "$t" "$r_bo" ">= 3x" "$g_bo"
        printf '%-40s %7s %8s %8s  %s\n' "rcgc peak RSS / mimalloc peak RSS" "$t" "$r_rss" "<= 1.3x" "$g_rss"
        printf '%-40s %7s %8s %8s  %s\n' "rcgc collections that found nothing" "$t" "$e_rc" "<= 3" "$g_em"
        {
            echo "| rcgc within 1.5x of mimalloc: rcgc / mimalloc | $t | $r_mi | <= 1.5x | $g_mi |"
            echo "| rcgc 3x faster than Boehm GC: Boehm / rcgc | $t | $r_bo | >= 3x | $g_bo |"
            echo "| peak RSS within 1.3x of mimalloc's: rcgc / mimalloc | $t | $r_rss | <= 1.3x | $g_rss |"
            echo "| automatic collections that found nothing, worst run | $t | $e_rc | <= 3 | $g_em |"
        } >> "$md"
        local bt="binary-trees depth $depth$dnote"
        goal_row binary_trees "$bt: rcgc at most 1.5x mimalloc's time" "$t thr" \
            "$r_mi (rcgc $(fmt_num "${med[rcgc,$t]:-NA}") s vs mimalloc $(fmt_num "${med[mimalloc,$t]:-NA}") s)" "<= 1.5x" "$g_mi"
        goal_row binary_trees "$bt: rcgc at least 3x faster than Boehm GC" "$t thr" \
            "$r_bo (Boehm $(fmt_num "${med[boehm,$t]:-NA}") s)" ">= 3x" "$g_bo"
        goal_row binary_trees "$bt: peak RSS at most 1.3x mimalloc's" "$t thr" \
            "$r_rss (rcgc $(fmt_num "${rssm[rcgc,$t]:-NA}") MB vs mimalloc $(fmt_num "${rssm[mimalloc,$t]:-NA}") MB)" "<= 1.3x" "$g_rss"
        goal_row binary_trees "$bt: at most 3 automatic collections that find nothing" "$t thr" \
            "$e_rc in the worst run (the median run: $(awk -v c="$colls" 'BEGIN { if (c == "NA") print "-"; else printf "%.0f", c }') collections in all)" "<= 3" "$g_em"
    done
    printf 'checksums: %s\n' "$ck_verdict"
    {
        echo
        echo "Checksums: $ck_verdict."
    } >> "$md"

    local nfail
    nfail=$(grep -c '^=== ' "$failures" || true)
    {
        if [ "$nfail" -gt 0 ]; then
            echo "$nfail run(s) failed; a figure marked * has fewer than $REPS runs. Their commands and output are in binary_trees_failures.log."
        else
            rm -f "$failures"
            echo "Every run succeeded."
        fi
    } >> "$md"
    local plotted=""
    if [ "${#T[@]}" -gt 1 ] && command -v gnuplot >/dev/null; then
        gnuplot -e "infile='$csv'; outfile='$RESULTS/binary_trees.png'; series='${V[*]}'; xcol=3; ycol=4; lcol=5; hcol=6; logy=1; ylab='seconds (median, min-max bars; log scale)'; ptitle='binary-trees depth $depth: time against threads (lower is better)'; subtitle='$machine, $date_s, load $load_s'" \
            bench/plot_threads.gp && plotted=", $RESULTS/binary_trees.png" || log "run.sh: gnuplot failed for binary_trees"
    fi
    echo
    echo "Wrote $csv, $md$plotted."
    [ "$nfail" -gt 0 ] && log "run.sh: $nfail binary_trees run(s) failed: see $failures"
    [ "$ncks" -gt 1 ] && log "run.sh: binary_trees: the variants' checksums differ"
    return 0
}

# ------------------------------------------------------------------------
# trace: what allocation tracing costs (docs/PROFILING.md). alloc_bench's
# local workload on one thread (rcgc_malloc + rcgc_free pairs, nothing
# else: the worst case for a hook on those paths), four ways, taking turns:
#   nohooks  a library with the tracing hooks compiled out (the baseline)
#   off      the library as shipped, tracing off
#   sample   RCGC_TRACE=8 RCGC_TRACE_SAMPLE=524288 (one per 512 KiB)
#   full     RCGC_TRACE=8 (every allocation's stack)
# ------------------------------------------------------------------------
bench_trace() {
    local bin nohooks
    bin=$(build_bench alloc_bench)
    nohooks=$(build_bench alloc_bench_nohooks)
    local -a V=(nohooks off sample full)
    local total=$(( ${#V[@]} * REPS )) i=0 rep k v line status
    declare -A vals=()
    log "=== trace: alloc_bench local, 1 thread, ${V[*]}, $REPS reps of ${DURATION}s ($total runs)"
    progress_start
    for (( rep = 0; rep < REPS; rep++ )); do
        for (( k = 0; k < ${#V[@]}; k++ )); do
            v=${V[$(( (k + rep) % ${#V[@]} ))]}
            i=$(( i + 1 ))
            printf '%s trace %s rep=%d/%d ... ' "$(progress "$i" "$total")" "$v" $(( rep + 1 )) "$REPS" >&2
            local -a cmd=(env -u LD_PRELOAD -u RCGC_TRACE -u RCGC_TRACE_SAMPLE)
            case $v in
                sample) cmd+=(RCGC_TRACE=8 RCGC_TRACE_SAMPLE=524288) ;;
                full) cmd+=(RCGC_TRACE=8) ;;
            esac
            [ "$v" = nohooks ] && cmd+=("$nohooks") || cmd+=("$bin")
            cmd+=(--alloc=rcgc --workload=local --threads=1 --seconds="$DURATION")
            status=0
            "${cmd[@]}" > "$WORK/out" 2> "$WORK/err" || status=$?
            line=$(grep -m1 '^RESULT ' "$WORK/out" || true)
            if [ "$status" -eq 0 ] && [ -n "$line" ]; then
                local mops
                printf -v mops '%.3f' "$(field ops_per_sec "$line")e-6"
                vals[$v]+="$mops "
                log "$mops M pairs/s"
            else
                log "FAILED (exit $status)"
                tail -n 5 "$WORK/err" >&2
            fi
        done
    done
    local csv=$RESULTS/trace.csv md=$RESULTS/trace_summary.md
    declare -A st=()
    echo "variant,median_mpairs,min,max" > "$csv"
    for v in "${V[@]}"; do
        st[$v]=$(stats ${vals[$v]:-})
        printf '%s,%s\n' "$v" "$(tr ' ' ',' <<< "${st[$v]}")" >> "$csv"
    done
    local base off
    read -r base _ _ <<< "${st[nohooks]}"
    {
        echo "# Tracing cost (alloc_bench local, 1 thread)"
        echo
        echo "- Machine: $(cpu_model), $(ncores) cores; $(date '+%Y-%m-%d %H:%M %Z'); load $(loadavg); rcgc $(tree_rev)"
        echo "- $REPS repetitions of ${DURATION} s each, variants in rotating order. Unit: million rcgc_malloc+rcgc_free pairs per second, median (min-max); cost: the median's slowdown against the library with the hooks compiled out"
        echo
        echo "| variant | M pairs/s | cost |"
        echo "|---|---:|---:|"
        for v in "${V[@]}"; do
            local m lo hi
            read -r m lo hi <<< "${st[$v]}"
            local cost=NA
            [ "$m" != NA ] && [ "$base" != NA ] && cost=$(awk -v b="$base" -v x="$m" 'BEGIN { printf "%+.1f%%", (b / x - 1) * 100 }')
            echo "| $v | $m ($lo-$hi) | $cost |"
        done
    } > "$md"
    cat "$md"
    overview_begin trace
    overview_row trace "tracing off: hooks vs compiled out" "1 thr" "M pairs/s" higher rcgc "${st[off]}"
    overview_row trace "tracing off: hooks vs compiled out" "1 thr" "M pairs/s" higher "compiled out" "${st[nohooks]}"
    overview_row trace "sampling (512 KiB) vs tracing off" "1 thr" "M pairs/s" higher rcgc "${st[sample]}"
    overview_row trace "sampling (512 KiB) vs tracing off" "1 thr" "M pairs/s" higher "off" "${st[off]}"
    echo "Wrote $csv, $md."
}

# ------------------------------------------------------------------------
# The report: overview.md (and the same table on the terminal), summary.md
# ------------------------------------------------------------------------
# machine_desc: "CPU model, N cores (S sockets, T threads per core, KVM),
# M GiB, Linux x.y", from /proc and lscpu when there.
machine_desc() {
    local extra="" mem
    if command -v lscpu >/dev/null; then
        extra=$(LC_ALL=C lscpu 2>/dev/null | awk -F: '
            function v(s) { sub(/^[ \t]+/, "", s); return s }
            /^Socket\(s\)/ { so = v($2) } /^Thread\(s\) per core/ { tp = v($2) }
            /^Hypervisor vendor/ { hv = v($2) }
            END { if (so != "") printf "%s socket%s, %s thread%s per core%s", so, so == 1 ? "" : "s", tp,
                  tp == 1 ? "" : "s", hv != "" ? ", " hv " guest" : "" }')
    fi
    mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
    printf '%s, %s cores%s%s, %s\n' "$(cpu_model)" "$(ncores)" "${extra:+ ($extra)}" "${mem:+, $mem}" "$(uname -sr)"
}

# peer_versions: the peers' versions, from their Debian packages.
peer_versions() {
    local v out="" p
    for p in "glibc:libc6" "jemalloc:libjemalloc2" "mimalloc:libmimalloc2.0" "Boehm GC:libgc1" \
             "CPython:python3"; do
        v=$(dpkg-query -W -f='${Version}' "${p#*:}" 2>/dev/null || true)
        out+="${out:+, }${p%%:*} ${v:-not installed}"
    done
    printf '%s\n' "$out"
}

# overview_render MDFILE: the overview table from every <bench>_overview.csv
# in $RESULTS, printed on stdout (terminal layout) and written to MDFILE
# (Markdown rows, then a "behind" list after a line "@@behind").
overview_render() {
    local b f
    for b in $ALL_BENCHES; do
        f=$RESULTS/${b}_overview.csv
        if [ -f "$f" ]; then tail -n +2 "$f" | sed "s/^/$b,/"; fi
    done | awk -F, -v md="$1" '
        function fmt(x) {
            x += 0
            if (x >= 100) return sprintf("%.0f", x)
            if (x >= 10) return sprintf("%.1f", x)
            if (x >= 1) return sprintf("%.2f", x)
            return sprintf("%.3f", x)
        }
        {
            key = $2 SUBSEP $3
            if (!(key in seen)) { seen[key] = 1; order[++nk] = key; wl[nk] = $2; cs[nk] = $3; un[nk] = $4; bt[nk] = $5 }
            if ($6 == "rcgc") { rm[key] = $7; rl[key] = $8; rh[key] = $9 }
            else { np[key]++; pn[key, np[key]] = $6; pm[key, np[key]] = $7; pl[key, np[key]] = $8; ph[key, np[key]] = $9 }
        }
        END {
            printf "%-34s %-16s %-9s %-24s %s\n", "workload", "case", "unit", "rcgc median (min-max)", "peers: median, rcgc advantage"
            ahead = behind = noise = 0
            for (i = 1; i <= nk; i++) {
                k = order[i]
                if (!(k in rm)) rcell = "-"
                else rcell = fmt(rm[k]) " (" fmt(rl[k]) "-" fmt(rh[k]) ")"
                line = ""; mdcell = ""; bl = ""
                for (j = 1; j <= np[k]; j++) {
                    adv = "-"
                    if ((k in rm) && rm[k] > 0 && pm[k, j] > 0) {
                        a = (bt[i] == "higher") ? rm[k] / pm[k, j] : pm[k, j] / rm[k]
                        # min-max ranges that overlap: the difference is
                        # within the run-to-run spread
                        ov = !(rl[k] > ph[k, j] || rh[k] < pl[k, j])
                        adv = sprintf("%s%.2fx", ov ? "~" : "", a)
                        if (ov) noise++
                        else if (a >= 1) ahead++
                        else {
                            behind++
                            bl = bl sprintf("%s%s %s (%.2fx)", bl == "" ? "" : ", ", pn[k, j], fmt(pm[k, j]), a)
                        }
                    }
                    line = line sprintf("  %s %s %s", pn[k, j], fmt(pm[k, j]), adv)
                    mdv = (adv ~ /^[0-9]/ && a < 1) ? "**" adv "**" : adv
                    mdcell = mdcell sprintf("%s%s %s (%s)", j > 1 ? ", " : "", pn[k, j], fmt(pm[k, j]), mdv)
                }
                if (bl != "") blist[++nbl] = sprintf("%s, %s: rcgc %s %s; %s", wl[i], cs[i], fmt(rm[k]), un[i], bl)
                printf "%-34s %-16s %-9s %-24s%s\n", wl[i], cs[i], un[i], rcell, line
                printf "| %s | %s | %s | %s | %s |\n", wl[i], cs[i], un[i] (bt[i] == "higher" ? " (higher is better)" : ""), rcell, mdcell > md
            }
            printf "@@behind %d %d %d\n", ahead, behind, noise > md
            for (i = 1; i <= nbl; i++) print blist[i] > md
        }'
}

# goals_render MDFILE: the goals every <bench>_goals.csv in $RESULTS
# checked, on stdout (terminal layout) and as Markdown rows in MDFILE,
# then a line "@@goals MET MISSED NONE".
goals_render() {
    local b f
    for b in $ALL_BENCHES; do
        f=$RESULTS/${b}_goals.csv
        if [ -f "$f" ]; then tail -n +2 "$f"; fi
    done | awk -F, -v md="$1" '
        BEGIN { printf "%-88s %-7s %-9s %s\n", "goal", "case", "limit", "verdict: figure" }
        {
            v = $5
            if (v == "met") met++; else if (v == "MISSED") missed++; else none++
            printf "%-88s %-7s %-9s %s: %s\n", $1, $2, $4, v, $3
            printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, v == "MISSED" ? "**MISSED**" : v > md
        }
        END { printf "@@goals %d %d %d\n", met, missed, none > md }'
}

# gcfig_render MDFILE: the collectors' figures from every <bench>_gc.csv
# in $RESULTS, on stdout (terminal layout) and as Markdown rows in MDFILE.
gcfig_render() {
    local b f
    for b in $ALL_BENCHES; do
        f=$RESULTS/${b}_gc.csv
        if [ -f "$f" ]; then tail -n +2 "$f"; fi
    done | awk -F, -v md="$1" '
        function f(x, fmt) { return (x == "" || x == "NA") ? "-" : sprintf(fmt, x) }
        BEGIN { printf "%-28s %-6s %-17s %9s %7s %7s %12s %12s %9s\n", "workload", "case", "variant", "seconds",
                       "colls", "empty", "pause tot ms", "pause max ms", "peak MB" }
        {
            printf "%-28s %-6s %-17s %9s %7s %7s %12s %12s %9s\n", $1, $2, $3, f($4, "%.3f"), f($5, "%.0f"),
                   f($6, "%.0f"), f($7, "%.1f"), f($8, "%.1f"), f($9, "%.1f")
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, f($4, "%.3f"), f($5, "%.0f"),
                   f($6, "%.0f"), f($7, "%.1f"), f($8, "%.1f"), f($9, "%.1f") > md
        }'
}

# write_report: overview.md and summary.md from whatever the benchmarks
# left in $RESULTS (this run's, or an earlier run's for benchmarks not run
# now: each section names its own date).
write_report() {
    local ov=$RESULTS/overview.md out=$RESULTS/summary.md b f rows=$WORK/overview_rows
    local term
    term=$(overview_render "$rows")
    local -a behind=()
    local counts
    counts=$(grep '^@@behind ' "$rows" | cut -d' ' -f2-)
    mapfile -t behind < <(sed -n '/^@@behind /,$p' "$rows" | tail -n +2)
    local n_ahead n_behind n_noise
    read -r n_ahead n_behind n_noise <<< "${counts:-0 0 0}"
    local grows=$WORK/goal_rows gterm n_met n_missed n_none
    gterm=$(goals_render "$grows")
    read -r n_met n_missed n_none <<< "$(grep '^@@goals ' "$grows" | cut -d' ' -f2-)"
    local crows=$WORK/gc_rows cterm
    cterm=$(gcfig_render "$crows")

    # Terminal
    echo
    echo "================================================================================"
    echo "rcgc against its peers ($(machine_desc); $(date '+%Y-%m-%d %H:%M %Z'))"
    echo "rcgc advantage: the peer's time over rcgc's, or rcgc's throughput over the peer's:"
    echo "above 1.00x rcgc is better, below it is behind; ~: the two min-max ranges overlap."
    echo "================================================================================"
    printf '%s\n' "$term"
    echo
    echo "Comparisons: rcgc ahead in $n_ahead, behind in $n_behind, within the spread (~) in $n_noise."
    if [ -s "$crows" ]; then
        echo
        echo "Collectors (median of the runs; empty: rcgc's collections that found nothing; - : no such figure):"
        printf '%s\n' "$cterm"
    fi
    if [ -s "$grows" ] && [ "$(grep -vc '^@@goals ' "$grows")" -gt 0 ]; then
        echo
        echo "Goals: $n_met met, $n_missed missed, $n_none without a figure."
        printf '%s\n' "$gterm"
    fi

    # overview.md
    {
        echo "# rcgc benchmark report"
        echo
        echo "- Machine: $(machine_desc)"
        echo "- Date: $(date '+%Y-%m-%d %H:%M %Z'); tree: rcgc $(tree_rev) ($(git log -1 --format=%cs 2>/dev/null || echo '?'))"
        if [ -n "$BENCHES" ]; then
            echo "- Run: \`BENCH=$BENCH THREADS=$THREADS REPS=$REPS DURATION=$DURATION\`, benchmarks: $BENCHES; load average at the start $REPORT_LOAD0, at the end $(loadavg) (the figures are only as good as the machine was quiet; each benchmark's section gives its own)"
        else
            echo "- Run: report rewritten from the results of earlier runs (their dates below; each benchmark's section gives its settings and load)"
        fi
        if [ -s "$RESULTS/timing.csv" ]; then
            printf -- '- Time per benchmark:'
            awk -F, 'NR > 1 { printf "%s %s %s (%s, %s)", sep, $1, $3, $4, $2; sep = ";" } END { print "" }' \
                "$RESULTS/timing.csv"
        fi
        echo "- Peers: $(peer_versions)"
        echo
        echo "## rcgc against its peers"
        echo
        echo "Each figure is the median of the repetitions, with min-max for rcgc; every peer ran in the same run, taking turns with rcgc. The ratio after each peer is **rcgc's advantage**: the peer's time over rcgc's, or rcgc's throughput over the peer's, so above 1.00x rcgc is better and below it (in bold) rcgc is behind; ~ marks a ratio whose two min-max ranges overlap (within the run-to-run spread). thr: threads; wkr: collector threads (workers, Boehm's markers); plain: a non-atomic counter (not thread-safe), the floor for the owner thread's pair; bare-stop: a hand-rolled stop of the same threads (no library offers a pause to compare with)."
        echo
        echo "| workload | case | unit | rcgc | peers: median (rcgc advantage) |"
        echo "|---|---|---|---:|---|"
        sed '/^@@behind /,$d' "$rows"
        echo
        echo "rcgc is ahead in $n_ahead comparisons, behind in $n_behind, and within the spread in $n_noise."
        echo
        echo "## Where rcgc is behind in this run"
        echo
        if [ "${#behind[@]}" -eq 0 ]; then
            echo "Nowhere outside the run-to-run spread."
        else
            local l
            for l in "${behind[@]}"; do echo "- $l"; done
        fi
        echo
        if [ -s "$crows" ]; then
            echo
            echo "## Collections, pauses and memory"
            echo
            echo "What each variant's collector did in GCBench and binary-trees (medians of the runs): seconds of the run; collections run (rcgc: rcgc_gc_get_stats, up to the end of the work, not rcgc_shutdown's; Boehm: GC_get_gc_no); found nothing: rcgc's collections that found no unreachable object (an RCGC_GC_STOP callback with unreachable 0), wasted work on these programs, whose garbage reference counting frees; pause: world-stopped time, total and longest (rcgc: rcgc_gc_get_stats; Boehm: its stop-world to start-world events); peak RSS: getrusage's ru_maxrss. -: the variant has no such figure (malloc has no collector; Boehm does not say which of its collections found nothing)."
            echo
            echo "| workload | case | variant | seconds | collections | found nothing | pause total ms | pause max ms | peak RSS MB |"
            echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
            cat "$crows"
        fi
        if [ -s "$grows" ] && [ "$(grep -vc '^@@goals ' "$grows")" -gt 0 ]; then
            echo
            echo "## Goals"
            echo
            echo "The project's goals that this run's benchmarks check: $n_met met, $n_missed missed, $n_none without a figure (a benchmark or peer that did not run). A goal stated at a size or thread count the run did not use (quick mode runs binary-trees at depth 18) is checked at the one it used, and says so."
            echo
            echo "| goal | case | figure | limit | verdict |"
            echo "|---|---|---|---:|---|"
            grep -v '^@@goals ' "$grows"
        fi
        echo
        echo "Each benchmark's section in summary.md has the full tables (min-max of every figure, rcgc's other settings such as \`RCGC_PURGE=0\`, goals)."
        local -a png=()
        for f in alloc_local alloc_remote alloc_prodcons gcbench binary_trees gc safepoint; do
            [ -f "$RESULTS/$f.png" ] && png+=("$f")
        done
        if [ "${#png[@]}" -gt 0 ]; then
            echo
            echo "## Plots"
            echo
            for f in "${png[@]}"; do
                local cap
                case "$f" in
                    alloc_local) cap="malloc+free throughput against threads, thread-local frees" ;;
                    alloc_remote) cap="malloc+free throughput against threads, cross-thread frees" ;;
                    alloc_prodcons) cap="producer/consumer hand-off (xmalloc-test) against threads" ;;
                    gcbench) cap="GCBench throughput against threads" ;;
                    binary_trees) cap="binary-trees time against threads" ;;
                    gc) cap="full-collection pause against heap size" ;;
                    safepoint) cap="time to safepoint against threads" ;;
                esac
                echo "![$cap]($f.png)"
                echo
            done
        fi
        if [ -s "$WORK/notes" ]; then
            echo "## Notes"
            echo
            sed 's/^/- /' "$WORK/notes"
        fi
    } > "$ov"

    # summary.md: the overview, then every benchmark's own summary.
    {
        cat "$ov"
        echo
        echo "# Details"
        for b in $ALL_BENCHES; do
            f=$RESULTS/${b}_summary.md
            [ -f "$f" ] || continue
            echo
            sed 's/^#/##/' "$f"
        done
    } > "$out"
    echo "Wrote $ov and $out."
    if [ "${UPDATE_DOCS:-0}" = 1 ]; then
        bash bench/update_docs.sh "$RESULTS"
    fi
}

# ------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------
# "report" alone: only rewrite overview.md and summary.md from the results
# already in $RESULTS.
[ "$BENCHES" = report ] && BENCHES=""
for b in $BENCHES; do
    declare -F "bench_$b" >/dev/null || die "unknown benchmark '$b' (known: $ALL_BENCHES, or report)"
done
command -v gnuplot >/dev/null || note "gnuplot not found (install gnuplot-nox): no plots"
REPORT_LOAD0=$(loadavg)
# timing.csv: one row per benchmark, the latest run of each.
[ -f "$RESULTS/timing.csv" ] || echo "bench,date,duration,status" > "$RESULTS/timing.csv"
nb=$(wc -w <<< "$BENCHES")
nfailed=0
ib=0
for b in $BENCHES; do
    ib=$(( ib + 1 ))
    log ""
    log "##### benchmark $ib/$nb: $b ($(mmss "$SECONDS") since the start)"
    # A benchmark that fails leaves no overview rows or summary behind
    # (not an earlier run's either); the others go on.
    rm -f "$RESULTS/${b}_overview.csv" "$RESULTS/${b}_summary.md" "$RESULTS/${b}_goals.csv" "$RESULTS/${b}_gc.csv"
    t0=$SECONDS
    set +e
    ( set -e; "bench_$b" )
    status=$?
    set -e
    st=ok
    if [ "$status" -ne 0 ]; then
        st="failed (exit $status)"
        note "$b: the benchmark failed (exit $status): no figures from it in this run"
    fi
    [ "$status" -ne 0 ] && nfailed=$(( nfailed + 1 ))
    sed -i "/^$b,/d" "$RESULTS/timing.csv"
    echo "$b,$(date '+%Y-%m-%d %H:%M'),$(mmss $(( SECONDS - t0 ))),$st" >> "$RESULTS/timing.csv"
    log "##### $b: $(mmss $(( SECONDS - t0 ))), $st"
done
write_report
log "run.sh: done in $(mmss "$SECONDS")"
if [ "$nfailed" -gt 0 ]; then
    log "run.sh: $nfailed benchmark(s) failed (see the notes in $RESULTS/overview.md)"
    exit 1
fi
