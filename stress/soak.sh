#!/usr/bin/env bash
# Soak: run the torture programs for a long time, one after the other,
# sampling each one's resident memory every second, and check that nothing
# grows without bound.
#
# For each program (SOAK_SECONDS split evenly between them, at least 10 s
# each) it writes OUT/<program>.csv with one row a second:
#   t         seconds since the program started
#   rss_mib   resident memory (/proc/PID/statm)
#   harness_mib  the program's own bookkeeping inside that RSS, from its
#             last progress line ("harness X"): per-id records that grow by
#             design, a byte or a word per object or weak reference made
#   inuse_mib the rcgc heap's bytes in use (same line: "heap X in use"):
#             the program's live data, which a random workload may grow
#             and shrink at will
#   committed_mib  the rcgc heap's bytes committed (same line)
#   overhead_mib   rss_mib - harness_mib - inuse_mib: what is resident
#             beyond live data and bookkeeping (the runtime's own memory,
#             empty and fragmented pages, stacks, code): the figure that
#             must not grow
#   live      the program's live count from the same line
# and checks, besides the program's own exit status (any violation fails
# it), that the largest overhead_mib of the second half of the run is at
# most GROWTH_PCT percent (plus GROWTH_MIB) above the largest of the first
# half. It also gives the least-squares slope of overhead_mib over the
# second half.
# At the end: OUT/soak_summary.md (a table), OUT/soak.png (gnuplot, one
# panel per program), and exit status 0 only if every program passed both.
#
# Environment:
#   SOAK_SECONDS  total run time (default 3600)
#   PROGRAMS      programs to run (default: every cc_binary of //stress)
#   CONFIG        Bazel config: default (optimised), tsan, asan (default: default)
#   THREADS       --threads for every program (default 4)
#   SEED          --seed for every program (default: each picks one)
#   GROWTH_PCT    allowed growth of the second half's peak, percent (default 10)
#   GROWTH_MIB    allowed growth in MiB on top of that (default 4)
#   OUT           output folder (default: a new temporary folder)
#   BAZEL         the bazel command (default bazel)
set -euo pipefail

cd "$(dirname "$0")/.."

SOAK_SECONDS=${SOAK_SECONDS:-3600}
CONFIG=${CONFIG:-default}
THREADS=${THREADS:-4}
SEED=${SEED:-}
GROWTH_PCT=${GROWTH_PCT:-10}
GROWTH_MIB=${GROWTH_MIB:-4}
BAZEL=${BAZEL:-bazel}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/rcgc-soak.XXXXXX")}
mkdir -p "$OUT"

if [ -z "${PROGRAMS:-}" ]; then
    PROGRAMS=$("$BAZEL" query --noshow_progress 'kind("cc_binary", //stress:*)' 2>/dev/null |
               sed 's|^//stress:||' | tr '\n' ' ')
fi
read -r -a progs <<<"$PROGRAMS"
if [ ${#progs[@]} -eq 0 ]; then
    echo "soak.sh: no programs" >&2
    exit 2
fi
per=$((SOAK_SECONDS / ${#progs[@]}))
[ "$per" -lt 10 ] && per=10

cfg=()
[ "$CONFIG" = default ] || cfg=("--config=$CONFIG")
targets=()
for p in "${progs[@]}"; do targets+=("//stress:$p"); done
echo "=== soak.sh: building ${targets[*]} ${cfg[*]:-}"
"$BAZEL" build "${cfg[@]}" "${targets[@]}"
bin=$("$BAZEL" info "${cfg[@]}" bazel-bin 2>/dev/null)
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:abort_on_error=0:exitcode=66}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

page=$(getconf PAGESIZE)
machine="$(nproc) cores, $(uname -r)"
summary="$OUT/soak_summary.md"
{
    echo "# Soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $machine, config $CONFIG"
    echo
    echo "$per s a program, --threads=$THREADS${SEED:+, --seed=$SEED}; growth allowed:" \
         "second half's peak overhead (RSS - harness records - heap in use) <= first half's" \
         "* (1 + $GROWTH_PCT%) + $GROWTH_MIB MiB."
    echo
    echo "| program | seconds | seed | exit | result | samples | RSS peak 1st / 2nd half (MiB) | harness at end (MiB) | overhead peak 1st / 2nd half (MiB) | overhead slope 2nd half (MiB/min) | growth check |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$summary"

failed=()
for p in "${progs[@]}"; do
    log="$OUT/$p.log"
    csv="$OUT/$p.csv"
    echo "t,rss_mib,harness_mib,inuse_mib,committed_mib,overhead_mib,live" >"$csv"
    args=(--threads="$THREADS" --seconds="$per")
    [ -n "$SEED" ] && args+=(--seed="$SEED")
    echo "=== soak.sh: $p ${args[*]} (log $log, samples $csv)"
    "$bin/stress/$p" "${args[@]}" >"$log" 2>&1 &
    pid=$!
    # One sample a second on the wall clock (bash builtins only, so that a
    # loaded machine does not stretch the period).
    t0=${EPOCHREALTIME/./}
    next=$t0
    while kill -0 "$pid" 2>/dev/null; do
        next=$((next + 1000000))
        now=${EPOCHREALTIME/./}
        if [ $((next - now)) -gt 0 ]; then
            sleep "$(printf '%d.%06d' $(((next - now) / 1000000)) $(((next - now) % 1000000)))"
        fi
        statm=""
        read -r _ rss_pages _ <"/proc/$pid/statm" 2>/dev/null && statm=1 || true
        [ -z "$statm" ] && break
        now=${EPOCHREALTIME/./}
        # The last progress line: "... rss X MiB (harness Y)  heap U in use /
        # C committed ... live N ...". Figures in tenths of MiB.
        line=$(tail -n 20 "$log" | grep -E '^[a-z_]+: +[0-9.]+s +rss' | tail -1 || true)
        harness=0
        inuse=0
        committed=0
        live=NA
        [[ $line =~ \(harness\ *([0-9]+)\.([0-9]) ]] && harness=$((BASH_REMATCH[1] * 10 + BASH_REMATCH[2]))
        [[ $line =~ heap\ *([0-9]+)\.([0-9])\ in\ use\ /\ *([0-9]+)\.([0-9]) ]] &&
            inuse=$((BASH_REMATCH[1] * 10 + BASH_REMATCH[2])) &&
            committed=$((BASH_REMATCH[3] * 10 + BASH_REMATCH[4]))
        [[ $line =~ \ live\ *(-?[0-9]+) ]] && live=${BASH_REMATCH[1]}
        rss=$((rss_pages * page * 10 / 1048576))
        over=$((rss - harness - inuse))
        tenths() { # tenths of MiB as a decimal
            local v=$1 sign=""
            [ "$v" -lt 0 ] && sign=- && v=$((-v))
            printf '%s%d.%d' "$sign" $((v / 10)) $((v % 10))
        }
        printf '%d.%d,%s,%s,%s,%s,%s,%s\n' $(((now - t0) / 1000000)) $(((now - t0) % 1000000 / 100000)) \
            "$(tenths $rss)" "$(tenths $harness)" "$(tenths $inuse)" "$(tenths $committed)" \
            "$(tenths $over)" "$live" >>"$csv"
    done
    status=0
    wait "$pid" || status=$?
    result=$(grep -E "^$p: (PASS|FAIL)" "$log" | tail -1 | sed "s/^$p: //" || true)
    # The seed: from the PASS/FAIL line, else from the first line (a run
    # stopped by a fatal error has no last line).
    seed=$(sed -n 's/.*(seed \([0-9]*\))$/\1/p' <<<"$result")
    [ -z "$seed" ] && seed=$(head -1 "$log" | sed -n 's/.*seed \([0-9][0-9]*\).*/\1/p')
    [ -z "$result" ] && result=$(grep -m1 -E "fatal error|ERROR: [A-Za-z]*Sanitizer" "$log" |
                                 cut -c1-120 | tr '|' '/' || true)
    # Growth: peaks of the two halves, slope of the second half.
    read -r n rss1 rss2 net1 net2 slope hend verdict < <(awk -F, -v pct="$GROWTH_PCT" \
        -v mib="$GROWTH_MIB" 'NR > 1 { t[++n] = $1; r[n] = $2; h[n] = $3; v[n] = $6 }
        END {
            if (n < 4) { print n, 0, 0, 0, 0, 0, 0, "too-few-samples"; exit }
            half = int(n / 2)
            for (i = 1; i <= n; i++) {
                if (i <= half) { if (r[i] > r1) r1 = r[i]; if (v[i] > v1) v1 = v[i] }
                else { if (r[i] > r2) r2 = r[i]; if (v[i] > v2) v2 = v[i]
                       sx += t[i]; sy += v[i]; sxx += t[i] * t[i]; sxy += t[i] * v[i]; m++ }
            }
            d = m * sxx - sx * sx
            s = d > 0 ? (m * sxy - sx * sy) / d * 60 : 0
            ok = v2 <= v1 * (1 + pct / 100) + mib ? "ok" : "GREW"
            printf "%d %.1f %.1f %.1f %.1f %.2f %.1f %s\n", n, r1, r2, v1, v2, s, h[n], ok
        }' "$csv")
    echo "=== soak.sh: $p: exit $status, ${result:-no PASS/FAIL line}; $n samples; overhead" \
         "peak $net1 -> $net2 MiB (slope $slope MiB/min over the second half): $verdict"
    echo "| $p | $per | ${seed:-?} | $status | ${result%% (seed*} | $n | $rss1 / $rss2 | $hend | $net1 / $net2 | $slope | $verdict |" >>"$summary"
    if [ "$status" -ne 0 ] || [ "$verdict" != ok ]; then
        failed+=("$p(exit $status, $verdict)")
    fi
done

if command -v gnuplot >/dev/null; then
    gnuplot -e "outdir='$OUT'; programs='${progs[*]}'; subtitle='$machine, config $CONFIG, $per s each'" \
        stress/plot_soak.gp && echo "=== soak.sh: wrote $OUT/soak.png" ||
        echo "=== soak.sh: gnuplot failed"
fi
echo "=== soak.sh: summary ($summary)"
cat "$summary"
if [ ${#failed[@]} -ne 0 ]; then
    echo "=== soak.sh: ${#failed[@]} program(s) failed: ${failed[*]}"
    exit 1
fi
echo "=== soak.sh: every program passed and no RSS grew"
