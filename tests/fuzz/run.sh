#!/usr/bin/env bash
# Build rcgc_fuzz (libFuzzer + ASan + UBSan, bazel --config=fuzz), replay the
# corpus, then fuzz for a bounded number of new runs and time. One process
# (libFuzzer's -jobs stays 1). Prints a status line every second and a
# summary; exits non-zero if an input disagrees with the model, crashes,
# leaks or hangs, after printing where the input was saved and how to
# replay it. tools/test.sh runs this as one counted step.
#
#   tests/fuzz/run.sh              replay + fuzz (bounds below)
#   tests/fuzz/run.sh merge DIR... minimise DIR's inputs into the corpus
#                                  (libFuzzer -merge=1: keeps only inputs that
#                                  add coverage edges)
#
# Environment:
#   FUZZ_SECONDS    time bound on new runs (default 60; 0: replay only)
#   FUZZ_RUNS       bound on new runs (default 1000000: the time bound decides)
#   FUZZ_SEED       libFuzzer seed (default: random; printed)
#   FUZZ_MAX_LEN    longest input libFuzzer makes (default 1024 bytes)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (30)
#   FUZZ_NEW        folder for new inputs (default: a temporary one, removed;
#                   the repository's corpus is only read)
#   FUZZ_ARTIFACTS  where a failing input is saved (default /tmp/rcgc-fuzz)
#   BAZEL, JOBS     as for tools/test.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BAZEL=${BAZEL:-bazel}
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RUNS=${FUZZ_RUNS:-1000000}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-1024}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-30}
FUZZ_ARTIFACTS=${FUZZ_ARTIFACTS:-/tmp/rcgc-fuzz}
CORPUS=tests/fuzz/corpus

echo "==> $BAZEL build --config=fuzz //tests/fuzz:rcgc_fuzz"
if ! "$BAZEL" build --config=fuzz --color=no --curses=no "--jobs=$JOBS" //tests/fuzz:rcgc_fuzz; then
    echo "fuzz: FAILED: the fuzz target did not build"
    exit 1
fi
bin="$("$BAZEL" info --config=fuzz bazel-bin 2>/dev/null)/tests/fuzz/rcgc_fuzz"
if [ ! -x "$bin" ]; then
    echo "fuzz: FAILED: $bin not found"
    exit 1
fi
mkdir -p "$FUZZ_ARTIFACTS"

# ASan/UBSan options as the asan config's tests use them; libFuzzer turns
# a report into a saved input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

log=$(mktemp "${TMPDIR:-/tmp}/rcgc-fuzz-log.XXXXXX")
new=""
cleanup() {
    rm -f "$log"
    [ -n "$new" ] && [ -z "${FUZZ_NEW:-}" ] && rm -rf "$new"
}
trap cleanup EXIT

# Run libFuzzer in the background, print its latest status line every
# second; returns its exit status.
run_fuzzer() {
    local start=$SECONDS
    "$bin" "$@" >"$log" 2>&1 &
    local pid=$!
    local last=""
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        local line
        line=$(grep -E '^#[0-9]+' "$log" | tail -1)
        if [ -n "$line" ] && [ "$line" != "$last" ]; then
            echo "fuzz: $((SECONDS - start)) s: $line"
            last=$line
        else
            echo "fuzz: $((SECONDS - start)) s: ..."
        fi
    done
    wait "$pid"
}

report_failure() {
    echo "---- libFuzzer output (last 60 lines) ----"
    tail -60 "$log"
    echo "------------------------------------------"
    local crash
    crash=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //')
    if [ -n "$crash" ]; then
        echo "fuzz: the failing input is $crash"
        echo "fuzz: replay it: $bin $crash"
        echo "fuzz: or without libFuzzer, any config: bazel build //tests/fuzz:rcgc_fuzz &&"
        echo "      RCGC_FUZZ_TRACE=1 bazel-bin/tests/fuzz/rcgc_fuzz $crash"
    fi
}

if [ "${1:-}" = merge ]; then
    shift
    if [ $# -eq 0 ]; then
        echo "usage: $0 merge DIR..." >&2
        exit 2
    fi
    merged=$(mktemp -d "${TMPDIR:-/tmp}/rcgc-fuzz-merge.XXXXXX")
    before=$(ls "$CORPUS" | wc -l)
    echo "==> merging $* into $CORPUS ($before inputs)"
    # -use_counters=0: keep every input that adds an edge, not every one
    # that adds a hit count (159 files instead of 693 for the same 1702
    # edges on the first campaign's output).
    if ! run_fuzzer -merge=1 -use_counters=0 -timeout="$FUZZ_TIMEOUT" \
            -artifact_prefix="$FUZZ_ARTIFACTS/" "$merged" "$CORPUS" "$@"; then
        report_failure
        rm -rf "$merged"
        exit 1
    fi
    # Hand-written seeds stay whatever their coverage, under their names;
    # merged inputs are named by content (libFuzzer's sha1), so a seed's
    # copy is found by its hash.
    for s in "$CORPUS"/seed-*; do
        rm -f "$merged/$(sha1sum "$s" | cut -d' ' -f1)"
        cp "$s" "$merged"/
    done
    rm -f "$CORPUS"/*
    cp "$merged"/* "$CORPUS"/
    rm -rf "$merged"
    grep -E "MERGE-OUTER: [0-9]+ new files" "$log" | tail -1
    echo "fuzz: corpus now $(ls "$CORPUS" | wc -l) inputs, $(cat "$CORPUS"/* | wc -c) bytes"
    exit 0
fi

n=$(ls "$CORPUS" | wc -l)
echo "==> replaying $CORPUS ($n inputs)"
if ! run_fuzzer -runs=0 -timeout="$FUZZ_TIMEOUT" -artifact_prefix="$FUZZ_ARTIFACTS/" "$CORPUS"; then
    echo "fuzz: FAILED: the corpus does not replay cleanly"
    report_failure
    exit 1
fi
# libFuzzer separates the count from the event with a tab.
echo "fuzz: replayed: $(grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | tail -1)"

if [ "$FUZZ_SECONDS" -le 0 ]; then
    echo "fuzz: replay only (FUZZ_SECONDS=0): $n inputs agreed with the model"
    exit 0
fi

new=${FUZZ_NEW:-$(mktemp -d "${TMPDIR:-/tmp}/rcgc-fuzz-new.XXXXXX")}
mkdir -p "$new"
seed=()
[ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
echo "==> fuzzing: at most $FUZZ_RUNS runs or $FUZZ_SECONDS s (new inputs in $new)"
if ! run_fuzzer -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" \
        -timeout="$FUZZ_TIMEOUT" -print_final_stats=1 -artifact_prefix="$FUZZ_ARTIFACTS/" \
        "${seed[@]}" "$new" "$CORPUS"; then
    echo "fuzz: FAILED"
    report_failure
    exit 1
fi
fstat() { grep -E "^stat::$1:" "$log" | awk '{print $2}'; }
last=$(grep -E '^#[0-9]+' "$log" | tail -1)
echo "==> fuzz summary"
echo "  seed:        $(grep -oE 'Seed: [0-9]+' "$log" | head -1 | cut -d' ' -f2)"
echo "  runs:        $(fstat number_of_executed_units) ($(fstat average_exec_per_sec)/s)"
echo "  new inputs:  $(fstat new_units_added) (in $new$([ -z "${FUZZ_NEW:-}" ] && echo ', removed'))"
echo "  coverage:    $(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+')"
echo "  peak RSS:    $(fstat peak_rss_mb) MB"
echo "fuzz: passed: no input disagreed with the model"
