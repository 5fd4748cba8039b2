# Soak plot: one panel per program against time: resident memory, the
# rcgc heap's bytes in use and committed, and the overhead (RSS minus the
# harness's records minus bytes in use: the figure soak.sh checks). soak.sh calls it as
#   gnuplot -e "outdir='/tmp/rcgc-soak.X'; programs='gc_stress heap_stress'; \
#               subtitle='2 cores, config default, 100 s each'" stress/plot_soak.gp
# reading outdir/<program>.csv (columns: t, rss_mib, harness_mib,
# inuse_mib, committed_mib, overhead_mib, live) and writing
# outdir/soak.png.

if (!exists("outdir"))   outdir   = "."
if (!exists("programs")) programs = ""
if (!exists("subtitle")) subtitle = ""

n = words(programs)
cols = 2
rows = int((n + cols - 1) / cols)
if (rows < 1) rows = 1

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1200, (300 * rows + 60) enhanced font ",10"
} else {
    set terminal png size 1200, (300 * rows + 60)
}
set output outdir . "/soak.png"

set datafile separator ","
set datafile missing "NA"
set key top left box opaque
set xlabel "seconds"
set ylabel "MiB"
set yrange [0:*]
set grid

set multiplot layout rows, cols title sprintf("rcgc stress soak: resident memory\n{/*0.8 %s}", subtitle)
do for [i = 1:n] {
    p = word(programs, i)
    set title p noenhanced
    plot outdir . "/" . p . ".csv" skip 1 using 1:2 with lines lw 2 title "RSS", \
         ""                        skip 1 using 1:4 with lines lw 1 title "heap in use", \
         ""                        skip 1 using 1:5 with lines lw 1 dt 2 title "heap committed", \
         ""                        skip 1 using 1:6 with lines lw 2 title "overhead (checked)"
}
unset multiplot
