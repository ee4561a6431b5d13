/* test_plot.c — the gnuplot driver's data and script (io/plot.c): an accuracy axis never past 100, a log
 * x range taken from the data (not whole decades), crowded point labels dropped, error bars as a fourth
 * column drawn with yerrorlines, bad error bars refused, and the key put in the corner the data leave
 * free (unless the caller names one). gnuplot is kept off PATH: only the .dat and
 * .gp files are checked. Files go to a mkdtemp directory. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"
#include "io/plot.h"
#include "test.h"

static char g_root[256];

static char *read_out(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_root, name);
    char *s = rc_read_text_file(path, 1 << 20, NULL);
    return s ? s : calloc(1, 1);
}

/* The two numbers of the script's "set NAME [a:b]" line; 0 when absent. */
static int range_of(const char *gp, const char *name, double *a, double *b) {
    char key[64];
    snprintf(key, sizeof key, "set %s [", name);
    const char *p = strstr(gp, key);
    return p && sscanf(p + strlen(key), "%lf:%lf", a, b) == 2;
}

static void test_percent_axis_and_errors(void) {
    double x[3] = {1, 2, 3}, y[3] = {97.5, 99.6, 100}, e[3] = {0.5, 1.0, 0.2};
    rc_plot p;
    memset(&p, 0, sizeof p);
    p.title = "t";
    p.percent_y = 1;
    p.integer_x = 1;
    p.series[0] = (rc_plot_series){"acc", 3, x, y, NULL, RC_PLOT_LINESPOINTS, 0, e};
    p.nseries = 1;
    CHECK(rc_plot_write(g_root, "pct", &p, NULL) == RC_OK, "write: %s", rc_error());
    char *gp = read_out("pct.gp"), *dat = read_out("pct.dat");
    double a = 0, b = 0;
    CHECK(range_of(gp, "yrange", &a, &b), "no yrange in %s", gp);
    CHECK(b <= 100 && b >= 99.99 && a < 97 && a > 90, "yrange [%g:%g]", a, b);
    CHECK(strstr(gp, "yerrorlines") != NULL, "no yerrorlines in %s", gp);
    CHECK(strstr(dat, "99.6 \"\" 1\n") != NULL, "no error column in %s", dat);
    free(gp);
    free(dat);
    e[1] = -1; /* refused */
    CHECK(rc_plot_write(g_root, "bad", &p, NULL) == RC_ERR && strstr(rc_error(), "error bar"), "negative error bar");
    p.series[0].yerr = NULL; /* no error bars: three columns, plain lines */
    CHECK(rc_plot_write(g_root, "plain", &p, NULL) == RC_OK, "write: %s", rc_error());
    gp = read_out("plain.gp");
    dat = read_out("plain.dat");
    CHECK(!strstr(gp, "yerror") && strstr(dat, "99.6 \"\"\n"), "plain plot: %s / %s", gp, dat);
    free(gp);
    free(dat);
}

static void test_log_range_and_labels(void) {
    double x[4] = {2800, 7400, 12000, 12100}, y[4] = {78, 82, 84.3, 84.35};
    const char *lab[4] = {"1x6", "2x3", "3x2", "6x1"};
    rc_plot p;
    memset(&p, 0, sizeof p);
    p.title = "t";
    p.logx = 1;
    p.series[0] = (rc_plot_series){"s", 4, x, y, lab, RC_PLOT_LINESPOINTS, 0, NULL};
    p.nseries = 1;
    CHECK(rc_plot_write(g_root, "logx", &p, NULL) == RC_OK, "write: %s", rc_error());
    char *gp = read_out("logx.gp"), *dat = read_out("logx.dat");
    double a = 0, b = 0;
    CHECK(range_of(gp, "xrange", &a, &b), "no xrange in %s", gp);
    CHECK(a > 2000 && a < 2800 && b > 12100 && b < 20000, "xrange [%g:%g] for data 2800..12100", a, b);
    CHECK(strstr(dat, "\"1x6\"") && strstr(dat, "\"2x3\"") && strstr(dat, "\"3x2\""), "labels kept: %s", dat);
    CHECK(!strstr(dat, "\"6x1\""), "the crowded label is drawn: %s", dat);
    free(gp);
    free(dat);
}

static void test_linear_range(void) { /* iterations 1..48: the axis spans them, not gnuplot's -10..60 */
    double x[48], y[48];
    for (int i = 0; i < 48; i++) x[i] = i + 1, y[i] = i;
    rc_plot p;
    memset(&p, 0, sizeof p);
    p.title = "t";
    p.series[0] = (rc_plot_series){"s", 48, x, y, NULL, RC_PLOT_LINES, 0, NULL};
    p.nseries = 1;
    CHECK(rc_plot_write(g_root, "lin", &p, NULL) == RC_OK, "write: %s", rc_error());
    char *gp = read_out("lin.gp");
    double a = 0, b = 0;
    CHECK(range_of(gp, "xrange", &a, &b), "no xrange in %s", gp);
    CHECK(a >= 0 && a < 1 && b > 48 && b < 54, "xrange [%g:%g] for data 1..48", a, b);
    free(gp);
}

/* Writes p as NAME and checks the corner its script's "set key CORNER box opaque" line names. */
static void check_key(const rc_plot *p, const char *name, const char *want, const char *what) {
    CHECK(rc_plot_write(g_root, name, p, NULL) == RC_OK, "%s: write: %s", what, rc_error());
    char file[64], key[32] = "";
    snprintf(file, sizeof file, "%s.gp", name);
    char *gp = read_out(file);
    const char *k = strstr(gp, "set key ");
    if (k) sscanf(k + 8, "%31[a-z ]", key);
    char *b = strstr(key, " box");
    if (b) *b = 0;
    CHECK(!strcmp(key, want), "%s: key '%s', expected '%s'", what, key, want);
    free(gp);
}

static void test_key_corner(void) {
    double x[60], up[60], flat[60], down[60];
    for (int i = 0; i < 60; i++) {
        x[i] = i + 1;
        up[i] = i < 12 ? 0.0 : i < 46 ? 13.6 * (i - 11) / 34.0 : 13.6 - 0.05 * (i - 45); /* the mazes' 9x9 shape */
        flat[i] = 0.5;
        down[i] = 90.0 - 1.2 * i;
    }
    rc_plot p;
    memset(&p, 0, sizeof p);
    p.title = "t";
    p.percent_y = 1;
    /* a rising accuracy curve: bottom right, where the key always went */
    double acc[10] = {80, 85, 88, 90, 91, 91.5, 92, 92.2, 92.3, 92.4};
    p.series[0] = (rc_plot_series){"tied", 10, x, acc, NULL, RC_PLOT_LINESPOINTS, 0, NULL};
    p.nseries = 1;
    check_key(&p, "key1", "bottom right", "rising curve");
    /* a curve that ends high on the right over curves flat near 0: only the top left is free */
    p.series[0] = (rc_plot_series){"recall + progressive", 60, x, up, NULL, RC_PLOT_LINESPOINTS, 0, NULL};
    p.series[1] = (rc_plot_series){"feedforward", 60, x, flat, NULL, RC_PLOT_LINESPOINTS, 0, NULL};
    p.nseries = 2;
    p.vline_x = 12;
    p.vline_label = "trained T = 12";
    check_key(&p, "key2", "top left", "mazes-like curves");
    /* a falling curve: not bottom right, which it ends in */
    p.series[0] = (rc_plot_series){"loss", 60, x, down, NULL, RC_PLOT_LINES, 0, NULL};
    p.nseries = 1;
    p.vline_x = 0;
    check_key(&p, "key3", "top right", "falling curve");
    /* a corner the caller names is kept */
    p.key_pos = "bottom right";
    check_key(&p, "key4", "bottom right", "named corner");
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/recur_test_plot_XXXXXX");
    if (!mkdtemp(g_root)) return 1;
    setenv("PATH", "/nonexistent", 1); /* no gnuplot: files only */
    RUN_TEST(test_percent_axis_and_errors);
    RUN_TEST(test_log_range_and_labels);
    RUN_TEST(test_linear_range);
    RUN_TEST(test_key_corner);
    const char *names[] = {"pct", "bad", "plain", "logx", "lin", "key1", "key2", "key3", "key4"}, *ext[] = {"dat", "gp"};
    char path[512];
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 2; j++) {
            snprintf(path, sizeof path, "%s/%s.%s", g_root, names[i], ext[j]);
            unlink(path);
        }
    rmdir(g_root);
    TEST_MAIN_END();
}
