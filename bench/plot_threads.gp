# A figure against thread count, one line per implementation, the median
# with a min-max bar: for CSVs whose first column names the implementation
# (gcbench.csv, binary_trees.csv). run.sh calls it as
#   gnuplot -e "infile='bench/results/gcbench.csv'; \
#               outfile='bench/results/gcbench.png'; \
#               series='boehm rcgc glibc'; xcol=2; ycol=7; lcol=8; hcol=9; \
#               logy=0; ylab='million nodes / s'; ptitle='gcbench'; \
#               subtitle='AMD EPYC, 2 cores, 2024-01-01'" bench/plot_threads.gp
# xcol: the thread count's column; ycol, lcol, hcol: median, min, max.

if (!exists("infile"))   infile   = "bench/results/gcbench.csv"
if (!exists("outfile"))  outfile  = "bench/results/gcbench.png"
if (!exists("series"))   series   = "rcgc"
if (!exists("xcol"))     xcol     = 2
if (!exists("ycol"))     ycol     = 3
if (!exists("lcol"))     lcol     = 4
if (!exists("hcol"))     hcol     = 5
if (!exists("logy"))     logy     = 0
if (!exists("ylab"))     ylab     = ""
if (!exists("ptitle"))   ptitle   = ""
if (!exists("subtitle")) subtitle = ""

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 900,600 enhanced font ",11"
} else {
    set terminal png size 900,600
}
set output outfile

set datafile separator ","
set datafile missing "NA"
set title sprintf("%s\n{/*0.8 %s}", ptitle, subtitle)
set xlabel "threads"
set ylabel ylab
set logscale x 2
set xtics 2
if (logy) { set logscale y } else { set yrange [0:*] }
set grid
set key outside right top noenhanced
set offsets graph 0.05, graph 0.05, 0, 0

# One data stream per implementation: the CSV rows that start with its name
# and a comma (the header row never matches).
plot for [s in series] sprintf("< grep '^%s,' '%s'", s, infile) \
     using xcol:ycol:lcol:hcol with yerrorlines linewidth 2 pointsize 1.2 title s
