/* plot.h — line and scatter plots through gnuplot: a plot is written as a data file and a gnuplot
 * script in an output directory, then gnuplot (pngcairo and svg terminals) renders NAME.png and
 * NAME.svg there. Without gnuplot the data and script are still written and the caller is told. */
#ifndef RC_PLOT_H
#define RC_PLOT_H

#include "base/common.h"

#define RC_PLOT_MAX_SERIES 8

typedef enum {
    RC_PLOT_LINESPOINTS = 0, /* points joined in the order given */
    RC_PLOT_POINTS,          /* points only */
    RC_PLOT_LINES            /* a line only */
} rc_plot_style;

/* One series: n points (x[i], y[i]); labels (may be NULL) puts a short text next to each point
 * (letters, digits, space and ".-_=<>" only; other characters are replaced by '_'); a label whose point
 * crowds one already labelled (any series) is dropped. yerr (may be NULL): +- error bar half-lengths
 * (>= 0), drawn with gnuplot's yerrorlines (yerrorbars for RC_PLOT_POINTS). */
typedef struct {
    const char *title;
    int n;
    const double *x, *y;
    const char *const *labels;
    rc_plot_style style;
    int labels_left;           /* put the labels left of the points (default: right) */
    const double *yerr;        /* NULL: no error bars */
} rc_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int logx;                  /* logarithmic x axis (every x must be > 0); its range is the data's with a
                                  small margin, not whole decades */
    int percent_y;             /* y is a percentage: the axis never runs past 100 */
    int integer_x;             /* x tics at integers only */
    double vline_x;            /* > 0: a dashed vertical marker at this x ... */
    const char *vline_label;   /* ... with this text */
    const char *key_pos;       /* gnuplot key position, e.g. "bottom right"; NULL: the corner that hides the
                                  least of the data (bottom right when that is free) */
    int nseries;
    rc_plot_series series[RC_PLOT_MAX_SERIES];
} rc_plot;

/* 1 when a gnuplot with the pngcairo and svg terminals is on PATH (checked once). */
int rc_plot_available(void);

/* Write DIR/NAME.dat and DIR/NAME.gp, and, when gnuplot is available, run it in DIR to make
 * DIR/NAME.png and DIR/NAME.svg. *rendered (may be NULL) is set to 1 when both images were made.
 * Errors: a file that cannot be written, bad input (non-finite values, x <= 0 on a log axis), or
 * gnuplot failing (its message is in DIR/NAME.log). */
rc_status rc_plot_write(const char *dir, const char *name, const rc_plot *p, int *rendered);

#endif
