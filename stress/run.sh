#!/usr/bin/env bash
# Run every torture program in stress/ (each cc_binary of //stress) under
# ThreadSanitizer, then under AddressSanitizer + UBSan. Any failing run
# makes the script fail; every run goes ahead regardless, so that one
# failure does not hide another.
#
# Environment:
#   DURATION  seconds per run (default 10)
#   THREADS   worker threads per run (default 4)
#   SEED      seed for every run (default: each program picks and prints one)
#   CONFIGS   Bazel configs to use, in order (default "tsan asan")
#   BAZEL     the bazel command (default bazel)
#
# The runtime options match the sanitizer configs' test_env in .bazelrc;
# set TSAN_OPTIONS / ASAN_OPTIONS / UBSAN_OPTIONS to override them.
set -euo pipefail

cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
THREADS=${THREADS:-4}
SEED=${SEED:-}
CONFIGS=${CONFIGS:-tsan asan}
BAZEL=${BAZEL:-bazel}

export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:abort_on_error=0:exitcode=66}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

programs=$("$BAZEL" query --noshow_progress 'kind("cc_binary", //stress:*)' 2>/dev/null |
           sed 's|^//stress:||')
if [ -z "$programs" ]; then
    echo "run.sh: no cc_binary in //stress" >&2
    exit 2
fi

args=(--threads="$THREADS" --seconds="$DURATION")
[ -n "$SEED" ] && args+=(--seed="$SEED")

failed=()
for config in $CONFIGS; do
    targets=()
    for p in $programs; do targets+=("//stress:$p"); done
    echo "=== run.sh: building ${targets[*]} with --config=$config"
    "$BAZEL" build --config="$config" "${targets[@]}"
    bin=$("$BAZEL" info --config="$config" bazel-bin 2>/dev/null)

    for p in $programs; do
        echo "=== run.sh: $p --config=$config ${args[*]}"
        status=0
        "$bin/stress/$p" "${args[@]}" || status=$?
        if [ "$status" -ne 0 ]; then
            echo "=== run.sh: FAILED: $p --config=$config (exit $status)"
            failed+=("$p/$config(exit $status)")
        else
            echo "=== run.sh: ok: $p --config=$config"
        fi
    done
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "=== run.sh: ${#failed[@]} run(s) failed: ${failed[*]}"
    exit 1
fi
echo "=== run.sh: every run passed"
