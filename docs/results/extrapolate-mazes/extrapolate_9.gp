# extrapolate_9.gp — written by recur; run 'gnuplot extrapolate_9.gp' in this directory to redraw extrapolate_9.png and extrapolate_9.svg
set encoding utf8
set title "mazes: trained on size 9, tested on size 9"
set xlabel "test-time iterations"
set ylabel "solved (%)"
set grid
set key top left box opaque
set xrange [0:52.7]
set yrange [0:14.416]
set offsets graph 0, graph 0, graph 0, graph 0
set arrow from 12, graph 0 to 12, graph 1 nohead dt 2 lw 1.5 lc rgb "gray40"
set label "trained T = 12" at 12, graph 0.06 offset char 0.5,0 tc rgb "gray30"
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "extrapolate_9.png"
plot "extrapolate_9.dat" index 0 using 1:2 with lines lw 2 lc 1 title "recall-progressive", \
     "extrapolate_9.dat" index 1 using 1:2 with lines lw 2 lc 2 title "no-recall", \
     "extrapolate_9.dat" index 2 using 1:2 with lines lw 2 lc 3 title "recall-final", \
     "extrapolate_9.dat" index 3 using 1:2 with lines lw 2 lc 4 title "feedforward"
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "extrapolate_9.svg"
replot
unset output
