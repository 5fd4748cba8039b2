# Collection pause against heap size (gc_bench), log-log, two panels:
# live graphs (nothing to free) and all-garbage graphs. One line per
# implementation and worker count, the median with min-max bars. rcgc's
# line is its pause (world stopped: last.pause_ns); CPython and Boehm stop
# the world for their whole collection, so theirs is the call's time.
# run.sh calls it as
#   gnuplot -e "infile='bench/results/gc.csv'; outfile='bench/results/gc.png'; \
#               series='rcgc:1 rcgc:2 cpython:1 boehm:1 boehm:2'; \
#               subtitle='AMD EPYC, 2 cores, 2024-01-01'" bench/plot_gc.gp
# The CSV's columns: 1 test, 2 n, 3 old, 4 impl, 5 workers, 6-8 ms
# (median, min, max), 9-11 pause_ms (median, min, max), 12 samples, 13 bad.

if (!exists("infile"))   infile   = "bench/results/gc.csv"
if (!exists("outfile"))  outfile  = "bench/results/gc.png"
if (!exists("series"))   series   = "rcgc:1 rcgc:2 cpython:1 boehm:1 boehm:2"
if (!exists("subtitle")) subtitle = ""

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1200,600 enhanced font ",11"
} else {
    set terminal png size 1200,600
}
set output outfile

set datafile separator ","
set datafile missing "NA"
set logscale xy
set format x "10^{%L}"
set xlabel "objects in the graph"
set ylabel "pause, ms (median, min-max bars; log scale)"
set grid
set key left top
set offsets graph 0.05, graph 0.05, 0, 0

impl(s) = s[1:strstrt(s, ":") - 1]
wk(s) = s[strstrt(s, ":") + 1:]
label(s) = sprintf("%s, %s worker%s", impl(s), wk(s), wk(s) eq "1" ? "" : "s")
rows(test, s) = sprintf("< grep '^%s,[0-9]*,0,%s,%s,' '%s'", test, impl(s), wk(s), infile)

set multiplot layout 1,2 title sprintf("gc\\_bench: full-collection pause against heap size\n{/*0.8 %s}", subtitle)
set title "live graph (root held)"
plot for [s in series] rows("live", s) using 2:9:10:11 with yerrorlines linewidth 2 pointsize 1.2 title label(s) noenhanced
set title "all garbage (root dropped)"
plot for [s in series] rows("garbage", s) using 2:9:10:11 with yerrorlines linewidth 2 pointsize 1.2 title label(s) noenhanced
unset multiplot
