# Time to safepoint against mutator threads (safepoint_bench), log y: the
# p50 and p99 of rcgc's TTSP with min-max bars over the repetitions; for
# reference the bare handshake (a hand-rolled stop of the same threads) and
# the condvar ping-pong under the same load (the OS floor); the goals. run.sh calls it as
#   gnuplot -e "infile='bench/results/safepoint.csv'; \
#               outfile='bench/results/safepoint.png'; cores=2; \
#               subtitle='AMD EPYC, 2 cores, 2024-01-01'" bench/plot_safepoint.gp
# The CSV's columns (run.sh writes the header): 1 threads, 2 cores,
# 3-5 ttsp_p50 (median, min, max), 6-8 ttsp_p99 (median, min, max),
# 9 ttsp_max, 10-11 rt_p50/p99, 12-13 lib_ttsp_p50/p99, 14-15 hs_p50/p99
# (bare handshake), 16 hs_rt_p50, 17-18 pp_p50/p99, 19 pp_idle_p50,
# 20 pauses, ... (microseconds).

if (!exists("infile"))   infile   = "bench/results/safepoint.csv"
if (!exists("outfile"))  outfile  = "bench/results/safepoint.png"
if (!exists("cores"))    cores    = 2
if (!exists("subtitle")) subtitle = ""

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 900,600 enhanced font ",11"
} else {
    set terminal png size 900,600
}
set output outfile

set datafile separator ","
set datafile missing "NA"
set title sprintf("safepoint\\_bench: time to safepoint\n{/*0.8 %s}", subtitle)
set xlabel "mutator threads"
set ylabel "microseconds (log scale)"
set logscale x 2
set logscale y 10
set xtics 2
set grid
set key outside right top
set offsets graph 0.05, graph 0.05, 0, 0

# Goals: p99 < 50 us while threads <= cores; < 2000 us at 16 threads (on 2 cores).
set arrow 1 from graph 0, first 50 to first cores, first 50 nohead dashtype 2 linecolor rgb "dark-green" linewidth 1.5
set label 1 sprintf("goal p99 < 50 us (threads <= %d)", cores) at first cores, first 50 left offset 0.8,0 textcolor rgb "dark-green" font ",9"
if (cores == 2) {
    set object 1 circle at first 16, first 2000 size char 0.6 fillstyle empty border linecolor rgb "dark-green"
    set label 2 "goal p99 < 2 ms" at first 16, first 2800 center textcolor rgb "dark-green" font ",9"
}

plot infile every ::1 using 1:3:4:5 with yerrorlines linewidth 2 pointsize 1.2 title "TTSP p50", \
     infile every ::1 using 1:6:7:8 with yerrorlines linewidth 2 pointsize 1.2 title "TTSP p99", \
     infile every ::1 using 1:9 with linespoints dashtype 3 title "TTSP max", \
     infile every ::1 using 1:14 with linespoints dashtype 2 title "bare handshake p50", \
     infile every ::1 using 1:15 with linespoints dashtype 2 title "bare handshake p99", \
     infile every ::1 using 1:17 with linespoints dashtype 4 title "ping-pong p50"
