/* plot.c — gnuplot driver: writes NAME.dat (one block per series, separated by two blank lines so a
 * series is `index i`; columns x, y, label, error bar) and NAME.gp (renders NAME.png with pngcairo, then NAME.svg), and runs gnuplot in
 * the output directory with fork + execv (the program is found on PATH beforehand, in the parent). */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Find an executable on PATH; 1 and the full path in out when found. */
static int find_on_path(const char *prog, char *out, size_t n) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if (len > 0 && len + strlen(prog) + 2 <= n) {
            memcpy(out, path, len);
            out[len] = '/';
            strcpy(out + len + 1, prog);
            if (access(out, X_OK) == 0) return 1;
        }
        if (!colon) break;
        path = colon + 1;
    }
    return 0;
}

/* Run exe with argv in dir (NULL: current), stdin from /dev/null, stdout+stderr to log_path (NULL:
 * /dev/null). Returns the exit status, or -1 when it could not run or was killed. */
static int run_program(const char *exe, char *const argv[], const char *dir, const char *log_path) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* child: async-signal-safe calls only; the log path is opened before changing directory */
        int in = open("/dev/null", O_RDONLY);
        int out = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0) _exit(127);
        if (dir && chdir(dir) != 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execv(exe, argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int gnuplot_state = -1; /* -1 unknown, 0 absent, 1 present */
static char gnuplot_path[1024];

int rc_plot_available(void) {
    if (gnuplot_state >= 0) return gnuplot_state;
    gnuplot_state = 0;
    if (!find_on_path("gnuplot", gnuplot_path, sizeof gnuplot_path)) return 0;
    char a0[] = "gnuplot", a1[] = "-e", a2[] = "set terminal pngcairo; set terminal svg";
    char *argv[] = {a0, a1, a2, NULL};
    gnuplot_state = run_program(gnuplot_path, argv, NULL, NULL) == 0;
    return gnuplot_state;
}

/* A double-quoted gnuplot string: backslashes and quotes escaped, control characters dropped. */
static void put_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) continue;
        if (c == '"' || c == '\\') fputc('\\', f);
        fputc(c, f);
    }
    fputc('"', f);
}

static void put_label(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        char c = *s;
        int okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(" .-_=<>", c);
        fputc(okc ? c : '_', f);
    }
    fputc('"', f);
}

static rc_status check_plot(const rc_plot *p) {
    if (p->nseries < 1 || p->nseries > RC_PLOT_MAX_SERIES)
        return rc_fail("plot '%s': %d series (1..%d allowed)", p->title ? p->title : "", p->nseries,
                       RC_PLOT_MAX_SERIES);
    for (int s = 0; s < p->nseries; s++) {
        const rc_plot_series *se = &p->series[s];
        if (se->n < 0 || (se->n > 0 && (!se->x || !se->y)))
            return rc_fail("plot '%s': series %d has no data", p->title ? p->title : "", s + 1);
        for (int i = 0; i < se->n; i++) {
            if (!isfinite(se->x[i]) || !isfinite(se->y[i]))
                return rc_fail("plot '%s': series '%s' point %d is not finite", p->title ? p->title : "",
                               se->title ? se->title : "", i + 1);
            if (se->yerr && !(isfinite(se->yerr[i]) && se->yerr[i] >= 0))
                return rc_fail("plot '%s': series '%s' point %d has error bar %g", p->title ? p->title : "",
                               se->title ? se->title : "", i + 1, se->yerr[i]);
            if (p->logx && se->x[i] <= 0)
                return rc_fail("plot '%s': series '%s' point %d has x = %g on a logarithmic axis",
                               p->title ? p->title : "", se->title ? se->title : "", i + 1, se->x[i]);
        }
    }
    return RC_OK;
}

/* x as the axis places it: log10 x on a log axis. */
static double axis_x(const rc_plot *p, double x) { return p->logx ? log10(x) : x; }

/* The data's extent: x (log10 x on a log axis) and y including the error bars. 0 when no points. */
static int data_range(const rc_plot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
    int any = 0;
    for (int s = 0; s < p->nseries; s++) {
        const rc_plot_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            double x = axis_x(p, se->x[i]), e = se->yerr ? se->yerr[i] : 0;
            if (!any || x < *xlo) *xlo = x;
            if (!any || x > *xhi) *xhi = x;
            if (!any || se->y[i] - e < *ylo) *ylo = se->y[i] - e;
            if (!any || se->y[i] + e > *yhi) *yhi = se->y[i] + e;
            any = 1;
        }
    }
    return any;
}

/* Which labels are drawn (kept[k] for the k-th point over all series in order): not one whose point lies
 * within a label's box (about 12% of the x span, 5% of the y span) of a point already labelled. */
static void labels_kept(const rc_plot *p, char *kept) {
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    data_range(p, &xlo, &xhi, &ylo, &yhi);
    double sx = xhi > xlo ? xhi - xlo : 1, sy = yhi > ylo ? yhi - ylo : 1;
    int k = 0;
    for (int s = 0; s < p->nseries; s++) {
        const rc_plot_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++, k++) {
            kept[k] = se->labels && se->labels[i] && se->labels[i][0];
            double x = axis_x(p, se->x[i]);
            int k2 = 0;
            for (int s2 = 0; s2 <= s && kept[k]; s2++) {
                const rc_plot_series *o = &p->series[s2];
                for (int j = 0; j < o->n && k2 < k; j++, k2++) {
                    double x2 = axis_x(p, o->x[j]);
                    if (kept[k2] && fabs(x - x2) < 0.12 * sx && fabs(se->y[i] - o->y[j]) < 0.05 * sy) kept[k] = 0;
                }
            }
        }
    }
}

/* The axes' ranges as the script sets them (x as log10 x on a log axis); y as gnuplot draws it: the
 * percent range, else the data's with the 6% offsets. */
static void axes_range(const rc_plot *p, double *x0, double *x1, double *y0, double *y1) {
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    data_range(p, &xlo, &xhi, &ylo, &yhi);
    const double sx = xhi > xlo ? xhi - xlo : 1, sy = yhi > ylo ? yhi - ylo : 1;
    *x0 = xlo - (p->logx ? 0.05 : 0.03) * sx;
    *x1 = xhi + (p->logx ? 0.12 : 0.1) * sx;
    if (!p->logx && xlo >= 0 && *x0 < 0) *x0 = 0; /* counts and sizes: no negative axis */
    if (p->percent_y) {
        const double m = RC_MAX(0.5, 0.06 * (yhi - ylo));
        *y1 = RC_MIN(100.0, yhi + m);
        *y0 = RC_MAX(0.0, ylo - m);
        if (*y1 <= *y0) *y0 = *y1 - 1;
    } else {
        *y0 = ylo - 0.06 * sy;
        *y1 = yhi + 0.06 * sy;
    }
}

/* Adds weight wt to each corner's count whose kw x kh box (graph coordinates) holds the point (gx, gy);
 * corners in key_corner's order. */
static void cover_add(double cover[4], double kw, double kh, double gx, double gy, double wt) {
    const int r = gx >= 1 - kw, l = gx <= kw, t = gy >= 1 - kh, b = gy <= kh;
    cover[0] += (r && b) * wt;
    cover[1] += (r && t) * wt;
    cover[2] += (l && t) * wt;
    cover[3] += (l && b) * wt;
}

/* Where the key goes when the caller does not say: the corner whose key-sized box covers the least of
 * the drawing (points, the lines between them sampled, the far ends of point labels, the marker's
 * label), in graph coordinates; the box is sized from the longest title and the number of series (11 pt
 * text on 900 x 600 pixels). Ties go to the first of bottom right, top right, top left, bottom left, so a
 * rising accuracy curve keeps its key bottom right. */
static const char *key_corner(const rc_plot *p) {
    static const char *const corner[4] = {"bottom right", "top right", "top left", "bottom left"};
    double x0, x1, y0, y1;
    axes_range(p, &x0, &x1, &y0, &y1);
    const double sx = x1 > x0 ? x1 - x0 : 1, sy = y1 > y0 ? y1 - y0 : 1;
    size_t longest = 0;
    int rows = 0;
    for (int s = 0; s < p->nseries; s++)
        if (p->series[s].n > 0) {
            rows++;
            const size_t len = p->series[s].title ? strlen(p->series[s].title) : 0;
            if (len > longest) longest = len;
        }
    const double kw = 0.1 + 0.0095 * (double)longest, kh = 0.03 + 0.045 * rows;
    double cover[4] = {0, 0, 0, 0};
    for (int s = 0; s < p->nseries; s++) {
        const rc_plot_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            const double gx = (axis_x(p, se->x[i]) - x0) / sx, gy = (se->y[i] - y0) / sy;
            cover_add(cover, kw, kh, gx, gy, 4.0); /* a point weighs more than a stretch of line */
            if (se->labels && se->labels[i] && se->labels[i][0]) {
                const double lw = 0.0095 * (double)strlen(se->labels[i]) + 0.01;
                cover_add(cover, kw, kh, gx + (se->labels_left ? -lw : lw), gy + 0.03, 2.0);
            }
            if (i + 1 < se->n && se->style != RC_PLOT_POINTS) {
                const double hx = (axis_x(p, se->x[i + 1]) - x0) / sx, hy = (se->y[i + 1] - y0) / sy;
                for (int k = 1; k < 16; k++)
                    cover_add(cover, kw, kh, gx + (hx - gx) * k / 16.0, gy + (hy - gy) * k / 16.0, 1.0);
            }
        }
    }
    if (p->vline_x > 0 && p->vline_label)
        cover_add(cover, kw, kh, (axis_x(p, p->vline_x) - x0) / sx + 0.01 * strlen(p->vline_label), 0.06, 4.0);
    int best = 0;
    for (int c = 1; c < 4; c++)
        if (cover[c] < cover[best]) best = c;
    return corner[best];
}

static rc_status write_data(const char *path, const rc_plot *p) {
    FILE *f = fopen(path, "w");
    if (!f) return rc_fail("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# x y label (yerr), one block per series (gnuplot index 0..%d)\n", p->nseries - 1);
    int total = 0;
    for (int s = 0; s < p->nseries; s++) total += p->series[s].n;
    char *kept = rc_xcalloc((size_t)total + 1, 1);
    labels_kept(p, kept);
    int k = 0, errs = 0;
    for (int s = 0; s < p->nseries; s++) errs |= p->series[s].yerr != NULL;
    for (int s = 0; s < p->nseries; s++) {
        const rc_plot_series *se = &p->series[s];
        if (s) fprintf(f, "\n\n");
        fprintf(f, "# series %d: %s\n", s, se->title ? se->title : "");
        for (int i = 0; i < se->n; i++) {
            fprintf(f, "%.10g %.10g ", se->x[i], se->y[i]);
            put_label(f, kept[k++] ? se->labels[i] : "");
            if (errs) fprintf(f, " %.10g", se->yerr ? se->yerr[i] : 0.0);
            fputc('\n', f);
        }
        if (se->n == 0) fprintf(f, "# (empty)\n");
    }
    free(kept);
    if (fclose(f) != 0) return rc_fail("cannot write %s: %s", path, strerror(errno));
    return RC_OK;
}

static void write_plot_cmd(FILE *f, const char *name, const rc_plot *p) {
    static const char *styles[] = {"linespoints lw 2 pt 7 ps 1.1", "points pt 7 ps 1.4", "lines lw 2"};
    static const char *err_styles[] = {"yerrorlines lw 2 pt 7 ps 1.1", "yerrorbars pt 7 ps 1.4",
                                       "yerrorlines lw 2 pt 0"};
    int first = 1;
    fprintf(f, "plot ");
    for (int s = 0; s < p->nseries; s++) {
        const rc_plot_series *se = &p->series[s];
        if (se->n == 0) continue;
        if (!first) fprintf(f, ", \\\n     ");
        first = 0;
        /* error bars at integer x: series side by side (+-0.03 apart), so the bars do not hide each other */
        char cols[64];
        if (se->yerr && p->integer_x)
            snprintf(cols, sizeof cols, "($1%+.3f):2:4", 0.03 * (s - (p->nseries - 1) / 2.0));
        else
            snprintf(cols, sizeof cols, "%s", se->yerr ? "1:2:4" : "1:2");
        fprintf(f, "\"%s.dat\" index %d using %s with %s lc %d title ", name, s, cols,
                se->yerr ? err_styles[se->style] : styles[se->style], s + 1);
        put_quoted(f, se->title);
        if (se->labels)
            fprintf(f, ", \\\n     \"%s.dat\" index %d using 1:2:3 with labels offset char %s,0.7 %s "
                       "font \",9\" tc lt %d notitle",
                    name, s, se->labels_left ? "-0.7" : "0.7", se->labels_left ? "right" : "left", s + 1);
    }
    fprintf(f, "\n");
}

rc_status rc_plot_write(const char *dir, const char *name, const rc_plot *p, int *rendered) {
    if (rendered) *rendered = 0;
    if (check_plot(p)) return RC_ERR;
    size_t n = strlen(dir) + strlen(name) + 16;
    char *dat = rc_xmalloc(n), *gp = rc_xmalloc(n), *log = rc_xmalloc(n), *png = rc_xmalloc(n), *svg = rc_xmalloc(n);
    snprintf(dat, n, "%s/%s.dat", dir, name);
    snprintf(gp, n, "%s/%s.gp", dir, name);
    snprintf(log, n, "%s/%s.log", dir, name);
    snprintf(png, n, "%s/%s.png", dir, name);
    snprintf(svg, n, "%s/%s.svg", dir, name);
    rc_status st = RC_ERR;
    FILE *f = NULL;
    if (write_data(dat, p)) goto done;
    f = fopen(gp, "w");
    if (!f) {
        rc_fail("cannot write %s: %s", gp, strerror(errno));
        goto done;
    }
    fprintf(f, "# %s.gp — written by recur; run 'gnuplot %s.gp' in this directory to redraw %s.png and %s.svg\n",
            name, name, name, name);
    fprintf(f, "set encoding utf8\nset title ");
    put_quoted(f, p->title);
    fprintf(f, "\nset xlabel ");
    put_quoted(f, p->xlabel);
    fprintf(f, "\nset ylabel ");
    put_quoted(f, p->ylabel);
    fprintf(f, "\nset grid\nset key %s box opaque\n", p->key_pos ? p->key_pos : key_corner(p));
    if (p->logx) fprintf(f, "set logscale x\nset format x \"%%g\"\n");
    if (p->integer_x) fprintf(f, "set xtics 1\nset mxtics 1\n");
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0, ax0, ax1, ay0, ay1;
    int any = data_range(p, &xlo, &xhi, &ylo, &yhi);
    axes_range(p, &ax0, &ax1, &ay0, &ay1);
    if (any && p->logx) { /* the data's decades only, a little room on the left and more for labels right */
        double lo = pow(10, ax0), hi = pow(10, ax1);
        fprintf(f, "set xrange [%.10g:%.10g]\n", lo, hi);
        if (xhi - xlo < 2) { /* under two decades: tics at 1, 2 and 5 x 10^k when that gives 2 or more */
            double tic[16];
            int nt = 0;
            for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)); e++)
                for (int m = 1; m <= 5 && nt < 16; m += m == 1 ? 1 : 3)
                    if (m * pow(10, e) >= lo && m * pow(10, e) <= hi) tic[nt++] = m * pow(10, e);
            if (nt >= 2) {
                fprintf(f, "set xtics (");
                for (int i = 0; i < nt; i++) fprintf(f, "%s%.10g", i ? ", " : "", tic[i]);
                fprintf(f, ")\n");
            }
        }
    }
    if (any && !p->logx) { /* the data's span, a little room on the left and more for labels and the key right;
                              * gnuplot's autoscale would widen it to whole tic steps (1..48 drawn as -10..60) */
        fprintf(f, "set xrange [%.10g:%.10g]\n", ax0, ax1);
    }
    if (any && p->percent_y) /* a margin below the data; the top at most 100 */
        fprintf(f, "set yrange [%.10g:%.10g]\n", ay0, ay1);
    fprintf(f, "set offsets graph 0, graph 0, graph %s, graph %s\n", p->percent_y ? "0" : "0.06",
            p->percent_y ? "0" : "0.06");
    if (p->vline_x > 0) {
        fprintf(f, "set arrow from %.10g, graph 0 to %.10g, graph 1 nohead dt 2 lw 1.5 lc rgb \"gray40\"\n", p->vline_x,
                p->vline_x);
        if (p->vline_label) {
            fprintf(f, "set label ");
            put_quoted(f, p->vline_label);
            fprintf(f, " at %.10g, graph 0.06 offset char 0.5,0 tc rgb \"gray30\"\n", p->vline_x);
        }
    }
    fprintf(f, "set terminal pngcairo noenhanced size 900,600 font \"sans,11\"\nset output \"%s.png\"\n", name);
    write_plot_cmd(f, name, p);
    fprintf(f, "set terminal svg noenhanced size 900,600 dynamic font \"sans,11\"\nset output \"%s.svg\"\nreplot\n"
               "unset output\n",
            name);
    if (fclose(f) != 0) {
        f = NULL;
        rc_fail("cannot write %s: %s", gp, strerror(errno));
        goto done;
    }
    f = NULL;
    if (!rc_plot_available()) {
        st = RC_OK;
        goto done;
    }
    char script[300];
    snprintf(script, sizeof script, "%s.gp", name);
    char a0[] = "gnuplot";
    char *argv[] = {a0, script, NULL};
    unlink(png);
    unlink(svg);
    int code = run_program(gnuplot_path, argv, dir, log);
    struct stat sb;
    if (code != 0 || stat(png, &sb) != 0 || sb.st_size == 0 || stat(svg, &sb) != 0 || sb.st_size == 0) {
        rc_fail("gnuplot failed on %s (exit status %d); its messages are in %s", gp, code, log);
        goto done;
    }
    unlink(log);
    if (rendered) *rendered = 1;
    st = RC_OK;
done:
    if (f) fclose(f);
    free(dat);
    free(gp);
    free(log);
    free(png);
    free(svg);
    return st;
}
