# Throughput against threads for one alloc_bench workload: one line per
# allocator, the median with a min-max bar. run.sh calls it as
#   gnuplot -e "infile='bench/results/alloc_local.csv'; \
#               outfile='bench/results/alloc_local.png'; \
#               workload='local'; allocs='rcgc glibc jemalloc mimalloc'; \
#               subtitle='AMD EPYC, 2 cores, 2024-01-01'" bench/plot_alloc.gp
# The CSV's columns: workload,threads,alloc,median_mops,min_mops,max_mops,reps.

if (!exists("infile"))   infile   = "bench/results/alloc_local.csv"
if (!exists("outfile"))  outfile  = "bench/results/alloc_local.png"
if (!exists("workload")) workload = "local"
if (!exists("allocs"))   allocs   = "rcgc glibc jemalloc mimalloc"
if (!exists("subtitle")) subtitle = ""

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 900,600 enhanced font ",11"
} else {
    set terminal png size 900,600
}
set output outfile

set datafile separator ","
set title sprintf("alloc\\_bench %s: malloc+free pairs per second\n{/*0.8 %s}", workload, subtitle)
set xlabel "threads"
set ylabel "million pairs / s (median, min-max bars)"
set logscale x 2
set xtics 2
set yrange [0:*]
set grid
set key outside right top
set offsets graph 0.05, graph 0.05, 0, 0

# One data stream per allocator: the CSV rows of that allocator (the header
# row never matches). Rows of failed runs hold NA and are skipped.
plot for [a in allocs] sprintf("< grep ',%s,' '%s'", a, infile) \
     using 2:4:5:6 with yerrorlines linewidth 2 pointsize 1.2 title a
