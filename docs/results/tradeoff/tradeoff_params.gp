# tradeoff_params.gp — written by recur; run 'gnuplot tradeoff_params.gp' in this directory to redraw tradeoff_params.png and tradeoff_params.svg
set encoding utf8
set title "Accuracy vs params at effective depth 6 (labels: K areas x T iterations)"
set xlabel "params (synapses: stored weights, log scale)"
set ylabel "test accuracy (%)"
set grid
set key bottom right box opaque
set logscale x
set format x "%g"
set xrange [2607.223892:15042.96186]
set xtics (5000, 10000)
set yrange [75.14611202:85.02219481]
set offsets graph 0, graph 0, graph 0, graph 0
set terminal pngcairo noenhanced size 900,600 font "sans,11"
set output "tradeoff_params.png"
plot "tradeoff_params.dat" index 0 using 1:2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 1 title "width 16: same FLOPs, params grow with K", \
     "tradeoff_params.dat" index 0 using 1:2:3 with labels offset char 0.7,0.7 left font ",9" tc lt 1 notitle, \
     "tradeoff_params.dat" index 1 using 1:2:4 with yerrorlines lw 2 pt 7 ps 1.1 lc 2 title "widened to 12026 params (K=6 params)", \
     "tradeoff_params.dat" index 1 using 1:2:3 with labels offset char -0.7,0.7 right font ",9" tc lt 2 notitle
set terminal svg noenhanced size 900,600 dynamic font "sans,11"
set output "tradeoff_params.svg"
replot
unset output
