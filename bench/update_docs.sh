#!/usr/bin/env bash
# Copy the benchmark report into docs/BENCHMARKS.md: the text of
# bench/results/overview.md replaces what lies between the markers
#   <!-- bench-summary:begin -->  and  <!-- bench-summary:end -->
# in the "## Summary" section (its title dropped, its sections one level
# down), and the plots it shows are copied to docs/bench/, where the
# copied text points. run.sh calls it when UPDATE_DOCS=1; by hand:
#
#   bench/update_docs.sh [RESULTS]      # default bench/results
#
# Only docs/BENCHMARKS.md's marked part and docs/bench/*.png change; the
# rest of the file (the notes written by hand) is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

results=${1:-bench/results}
doc=docs/BENCHMARKS.md
begin='<!-- bench-summary:begin -->'
end='<!-- bench-summary:end -->'
ov=$results/overview.md

[ -f "$ov" ] || { echo "update_docs: no $ov (run bench/run.sh first)" >&2; exit 1; }
grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" ||
    { echo "update_docs: $doc lacks the lines '$begin' and '$end'" >&2; exit 1; }

mkdir -p docs/bench
body=$(mktemp)
trap 'rm -f "$body"' EXIT
{
    echo "$begin"
    echo "<!-- Written by bench/update_docs.sh from $ov; edit the notes outside the markers. -->"
    # drop the title, move every section one level down, point the images
    # at docs/bench/
    sed -e '1{/^# /d}' -e 's/^## /### /' -e 's/^!\[\([^]]*\)\](\([^/)]*\.png\))$/![\1](bench\/\2)/' "$ov"
    echo
    echo "$end"
} > "$body"

# the plots the text shows, and no others
rm -f docs/bench/*.png
for png in $(sed -n 's/^!\[[^]]*\](\([^/)]*\.png\))$/\1/p' "$ov"); do
    cp "$results/$png" docs/bench/
done

awk -v b="$begin" -v e="$end" -v f="$body" '
    $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
echo "update_docs: $doc's Summary section now holds $ov; plots in docs/bench/"
