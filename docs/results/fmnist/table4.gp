# table4.gp — written by recur; run 'gnuplot table4.gp' in this directory to redraw table4.png and table4.svg
set encoding utf8
set title "Tied vs untied x loss final vs every (effective depth 16, 3 epochs)"
set xlabel "iteration of the top area (readout)"
set ylabel "test accuracy (%)"
set grid
set key bottom right box opaque
set xtics 1
set mxtics 1
set yrange [28.48836237:91.63449115]
set xrange [0.91:4.3]
set offsets graph 0, graph 0, graph 0, graph 0
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "table4.png"
plot "table4.dat" index 0 using ($1-0.045):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 1 title "tied, loss final (28890 params)", \
     "table4.dat" index 1 using ($1-0.015):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 2 title "tied, loss every (28890 params)", \
     "table4.dat" index 2 using ($1+0.015):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 3 title "untied, loss final (86490 params)", \
     "table4.dat" index 3 using ($1+0.045):2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 4 title "untied, loss every (86490 params)"
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "table4.svg"
replot
unset output
