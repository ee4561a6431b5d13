# coarse_fine.gp — written by recur; run 'gnuplot coarse_fine.gp' in this directory to redraw coarse_fine.png and coarse_fine.svg
set encoding utf8
set title "Coarse and fine accuracy by iteration (fashion-mnist, 3 epochs)"
set xlabel "iteration of the top area (readout)"
set ylabel "test accuracy (%)"
set grid
set key bottom right box opaque
set xtics 1
set mxtics 1
set yrange [69.83436007:100]
set xrange [0.91:4.3]
set offsets graph 0, graph 0, graph 0, graph 0
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "coarse_fine.png"
plot "coarse_fine.dat" index 0 using ($1-0.045):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 1 title "fine accuracy, loss every", \
     "coarse_fine.dat" index 1 using ($1-0.015):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 2 title "coarse accuracy, loss every", \
     "coarse_fine.dat" index 2 using ($1+0.015):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 3 title "fine accuracy, loss coarse-to-fine", \
     "coarse_fine.dat" index 3 using ($1+0.045):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 4 title "coarse accuracy, loss coarse-to-fine"
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "coarse_fine.svg"
replot
unset output
