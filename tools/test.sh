#!/usr/bin/env bash
# Runs every test (what `make test` runs, after `make deps`):
#   bazel test //...                 default configuration (optimised, -g)
#   bazel test --config=tsan //...   ThreadSanitizer
#   bazel test --config=asan //...   AddressSanitizer + UBSan
#   tools/install_test.sh            make install + pkg-config, shared and static
#   tests/fuzz/run.sh                libFuzzer: the corpus, then 60 s of new runs
# Tests tagged manual (benchmarks, the fuzz target) are left out by Bazel
# itself. Every step runs even when an earlier one fails. The last line of
# output is "N passed, N failed": test targets over the three
# configurations, plus the install test and the fuzz run as one each. Exits
# non-zero if anything failed.
#
# Environment: BAZEL (default bazel), JOBS (build jobs, default nproc),
# TEST_JOBS (tests run at once, default Bazel's: one per core),
# CONFIGS (default "default tsan asan"), FUZZ_SECONDS (new fuzz runs,
# default 60; 0: replay the corpus only; see tests/fuzz/run.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BAZEL=${BAZEL:-bazel}
JOBS=${JOBS:-$(nproc)}
CONFIGS=${CONFIGS:-default tsan asan}

flags=(--color=no --curses=no --keep_going --test_output=errors "--jobs=$JOBS")
if [ -n "${TEST_JOBS:-}" ]; then
    flags+=("--local_test_jobs=$TEST_JOBS")
fi

log=$(mktemp "${TMPDIR:-/tmp}/rcgc-test.XXXXXX")
trap 'rm -f "$log"' EXIT

passed=0
failed=0
summary=()

# Bazel's per-target summary lines look like
#   //tests:heap_test                        (cached) PASSED in 0.4s
#   //tests:gc_test                          FAILED in 2.1s
# and TIMEOUT, FLAKY, INCOMPLETE, NO STATUS or FAILED TO BUILD in the
# place of FAILED. FLAKY counts as a failure: nothing here retries.
target_re='^//[^ ]+ +(\(cached\) )?'

for config in $CONFIGS; do
    cfg=()
    [ "$config" = default ] || cfg=("--config=$config")
    echo "==> $BAZEL test ${cfg[*]:+${cfg[*]} }//..."
    "$BAZEL" test "${cfg[@]}" "${flags[@]}" //... 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(grep -cE "${target_re}PASSED" "$log")
    f=$(grep -cE "${target_re}(FAILED|TIMEOUT|FLAKY|INCOMPLETE|NO STATUS)" "$log")
    note=""
    case $rc in
    0 | 3) ;;   # 3: some tests failed; counted above
    4) note=" (no test targets found)" ;;
    *)  # The build or the analysis failed before tests could report.
        if [ "$f" -eq 0 ]; then
            f=1
        fi
        note=" (bazel exited $rc)" ;;
    esac
    if [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then
        note=" (bazel exited 0)"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    summary+=("$(printf '%-8s %4d passed, %d failed%s' "$config" "$p" "$f" "$note")")
done

echo "==> tools/install_test.sh"
if tools/install_test.sh; then
    passed=$((passed + 1))
    summary+=("$(printf '%-8s %4d passed, %d failed' install 1 0)")
else
    failed=$((failed + 1))
    summary+=("$(printf '%-8s %4d passed, %d failed' install 0 1)")
fi

echo "==> tests/fuzz/run.sh"
if FUZZ_SECONDS=${FUZZ_SECONDS:-60} tests/fuzz/run.sh; then
    passed=$((passed + 1))
    summary+=("$(printf '%-8s %4d passed, %d failed' fuzz 1 0)")
else
    failed=$((failed + 1))
    summary+=("$(printf '%-8s %4d passed, %d failed' fuzz 0 1)")
fi

echo
echo "==> summary"
printf '  %s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
