# tradeoff_flops.gp — written by recur; run 'gnuplot tradeoff_flops.gp' in this directory to redraw tradeoff_flops.png and tradeoff_flops.svg
set encoding utf8
set title "Accuracy vs compute at effective depth 6 (labels: K areas x T iterations)"
set xlabel "forward MFLOP per image (log scale)"
set ylabel "test accuracy (%)"
set grid
set key bottom right box opaque
set logscale x
set format x "%g"
set xrange [17.07832957:108.7370061]
set xtics (20, 50, 100)
set yrange [82.23103992:88.44691806]
set offsets graph 0, graph 0, graph 0, graph 0
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "tradeoff_flops.png"
plot "tradeoff_flops.dat" index 0 using 1:2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 1 title "width 32: same FLOPs, params grow with K", \
     "tradeoff_flops.dat" index 0 using 1:2:3 with labels offset char 0.7,0.7 left font ",9" tc lt 1 notitle, \
     "tradeoff_flops.dat" index 1 using 1:2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 2 title "widened to 47082 params (K=6 params)", \
     "tradeoff_flops.dat" index 1 using 1:2:3 with labels offset char -0.7,0.7 right font ",9" tc lt 2 notitle
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "tradeoff_flops.svg"
replot
unset output
