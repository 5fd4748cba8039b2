#!/usr/bin/env bash
# Run every torture program in stress/ (each cc_binary of //stress) under
# ThreadSanitizer, then under AddressSanitizer + UBSan. Any failing run
# makes the script fail; every run goes ahead regardless, so that one
# failure does not hide another.
#
# Before the timed runs, with the first config's build, each program runs
# twice with --threads=1 --ops=N and one seed: the two "schedule hash"
# lines must match (same seed, same single-thread schedule).
#
# Environment:
#   DURATION  seconds per run (default 10)
#   THREADS   worker threads per run (default 4)
#   SEED      seed for every run (default: each program picks and prints one)
#   CONFIGS   Bazel configs to use, in order (default "tsan asan")
#   DETERMINISM  1 (default) to run the schedule check, 0 to skip it
#   LOGDIR    where each run's output goes (default: a temporary folder,
#             kept and named at the end)
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
DETERMINISM=${DETERMINISM:-1}
BAZEL=${BAZEL:-bazel}
LOGDIR=${LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/rcgc-stress.XXXXXX")}
mkdir -p "$LOGDIR"

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

# --ops for the schedule check: work units per program (pressure_stress
# counts fill/drain cycles, churn_stress short-lived threads).
det_ops() {
    case $1 in
    pressure_stress) echo 2 ;;
    churn_stress) echo 60 ;;
    gc_stress) echo 20000 ;;
    *) echo 50000 ;;
    esac
}

failed=()
results=()
first=1
for config in $CONFIGS; do
    targets=()
    for p in $programs; do targets+=("//stress:$p"); done
    echo "=== run.sh: building ${targets[*]} with --config=$config"
    "$BAZEL" build --config="$config" "${targets[@]}"
    bin=$("$BAZEL" info --config="$config" bazel-bin 2>/dev/null)

    if [ "$first" = 1 ] && [ "$DETERMINISM" = 1 ]; then
        for p in $programs; do
            ops=$(det_ops "$p")
            hashes=()
            for run in 1 2; do
                log="$LOGDIR/$p.$config.schedule$run.log"
                status=0
                "$bin/stress/$p" --threads=1 --ops="$ops" --seconds=600 --seed=20240601 \
                    >"$log" 2>&1 || status=$?
                h=$(sed -n 's/.*schedule hash \([0-9a-f]*\).*/\1/p' "$log")
                if [ "$status" -ne 0 ] || [ -z "$h" ]; then
                    h="exit-$status"
                fi
                hashes+=("$h")
            done
            if [ "${hashes[0]}" = "${hashes[1]}" ] && [ "${hashes[0]#exit-}" = "${hashes[0]}" ]; then
                echo "=== run.sh: ok: $p schedule hash ${hashes[0]} twice (--threads=1 --ops=$ops)"
                results+=("schedule $p: ${hashes[0]} twice")
            else
                echo "=== run.sh: FAILED: $p schedule hashes ${hashes[*]} (logs in $LOGDIR)"
                failed+=("$p/schedule(${hashes[*]})")
            fi
        done
    fi
    first=0

    for p in $programs; do
        log="$LOGDIR/$p.$config.log"
        echo "=== run.sh: $p --config=$config ${args[*]} (log: $log)"
        status=0
        "$bin/stress/$p" "${args[@]}" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
        last=$(grep -E "^$p: (PASS|FAIL)" "$log" | tail -1 || true)
        if [ "$status" -ne 0 ]; then
            echo "=== run.sh: FAILED: $p --config=$config (exit $status)"
            failed+=("$p/$config(exit $status)")
        else
            echo "=== run.sh: ok: $p --config=$config"
        fi
        results+=("$config $p: exit $status; ${last:-no PASS/FAIL line}")
    done
done

echo "=== run.sh: summary (logs in $LOGDIR)"
printf '    %s\n' "${results[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "=== run.sh: ${#failed[@]} run(s) failed: ${failed[*]}"
    exit 1
fi
echo "=== run.sh: every run passed"
