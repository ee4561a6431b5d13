# early_exit.gp — written by recur; run 'gnuplot early_exit.gp' in this directory to redraw early_exit.png and early_exit.svg
set encoding utf8
set title "Early exit: accuracy vs mean compute (3 seeds)"
set xlabel "mean forward MFLOP per image (mean over seeds)"
set ylabel "test accuracy (%)"
set grid
set key bottom right box opaque
set yrange [80.44269189:85.46540631]
set xrange [7.80583:14.0197]
set offsets graph 0, graph 0, graph 0, graph 0
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "early_exit.png"
plot "early_exit.dat" index 0 using 1:2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 1 title "fixed depth: always readout t", \
     "early_exit.dat" index 0 using 1:2:3 with labels offset char 0.7,0.7 left font ",9" tc lt 1 notitle, \
     "early_exit.dat" index 1 using 1:2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 2 title "early exit at confidence >= P (labels: P)", \
     "early_exit.dat" index 1 using 1:2:3 with labels offset char 0.7,0.7 left font ",9" tc lt 2 notitle
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "early_exit.svg"
replot
unset output
