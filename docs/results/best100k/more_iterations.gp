# more_iterations.gp — written by recur; run 'gnuplot more_iterations.gp' in this directory to redraw more_iterations.png and more_iterations.svg
set encoding utf8
set title "Test-time depth: accuracy vs iterations (best100k, trained with T = 3)"
set xlabel "iterations T' unrolled at test time (every tied area)"
set ylabel "test accuracy (%)"
set grid
set key bottom right box opaque
set xtics 1
set mxtics 1
set yrange [4.8438:97.5462]
set xrange [0.76:9.8]
set offsets graph 0, graph 0, graph 0, graph 0
set arrow from 3, graph 0 to 3, graph 1 nohead dt 2 lw 1.5 lc rgb "gray40"
set label "trained T = 3" at 3, graph 0.06 offset char 0.5,0 tc rgb "gray30"
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "more_iterations.png"
plot "more_iterations.dat" index 0 using 1:2 with linespoints lw 2 pt 7 ps 1.1 lc 1 title "last readout"
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "more_iterations.svg"
replot
unset output
