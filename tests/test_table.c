/* test_table.c — tests for the CSV/Markdown table (src/io/table.c): the exact text of both formats with
 * columns in one format only, CSV quoting and Markdown escaping, the atomic writers, reading a CSV back
 * (quoted cells, CRLF, the row-length and no-rows errors), and the error for a row given too many cells. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/table.h"
#include "test.h"

static char dir[] = "/tmp/rc_test_table_XXXXXX";

static void build(rc_table *t) {
    rc_table_col(t, "run", "run", NULL, RC_ALIGN_LEFT);
    rc_table_col(t, "params", "params", "%.0f", RC_ALIGN_RIGHT);
    rc_table_col(t, "accuracy", NULL, "%.4f", RC_ALIGN_RIGHT);      /* CSV only */
    rc_table_col(t, NULL, "accuracy %", "%.2f", RC_ALIGN_RIGHT);    /* Markdown only */
    rc_table_row(t);
    rc_table_text(t, "tied-%s", "every");
    rc_table_num(t, 28890);
    rc_table_num(t, 0.85123);
    rc_table_num(t, 85.123);
    rc_table_row(t);
    rc_table_text(t, "a,b \"c\" | d");
    rc_table_skip(t);
    rc_table_num(t, 0.5);
    rc_table_text(t, "50.00 ± 1.00");
}

static void test_formats(void) {
    rc_table t = {0};
    build(&t);
    rc_strbuf csv = {0}, md = {0};
    CHECK(rc_table_csv(&t, &csv) == RC_OK && rc_table_md(&t, &md) == RC_OK, "write: %s", rc_error());
    const char *want_csv = "run,params,accuracy\ntied-every,28890,0.8512\n\"a,b \"\"c\"\" | d\",,0.5000\n";
    const char *want_md = "| run | params | accuracy % |\n| --- | ---: | ---: |\n| tied-every | 28890 | 85.12 |\n"
                          "| a,b \"c\" \\| d |  | 50.00 ± 1.00 |\n";
    CHECK(csv.buf && !strcmp(csv.buf, want_csv), "csv:\n%s", csv.buf);
    CHECK(md.buf && !strcmp(md.buf, want_md), "md:\n%s", md.buf);
    CHECK(rc_table_find(&t, "accuracy") == 2 && rc_table_find(&t, "accuracy %") == -1, "find");
    CHECK(!strcmp(rc_table_get(&t, 1, 1), ""), "an empty cell reads as \"\"");
    free(csv.buf);
    free(md.buf);
    /* one cell too many: the writers fail naming the row, nothing is written */
    rc_table_row(&t);
    for (int c = 0; c < 5; c++) rc_table_text(&t, "x");
    rc_strbuf s = {0};
    CHECK(rc_table_csv(&t, &s) == RC_ERR && strstr(rc_error(), "row 3"), "too many cells: %s", rc_error());
    free(s.buf);
    rc_table_free(&t);
}

static void test_files(void) {
    rc_table t = {0};
    build(&t);
    char csvp[128], mdp[128];
    snprintf(csvp, sizeof csvp, "%s/t.csv", dir);
    snprintf(mdp, sizeof mdp, "%s/t.md", dir);
    CHECK(rc_table_write_csv(&t, csvp) == RC_OK, "write csv: %s", rc_error());
    CHECK(rc_table_write_md(&t, "# title\n\n", mdp) == RC_OK, "write md: %s", rc_error());
    char *md = rc_read_text_file(mdp, 1 << 20, NULL);
    const char *head = "# title\n\n| run | params | accuracy % |\n";
    CHECK(md && !strncmp(md, head, strlen(head)), "md file: %s", md);
    free(md);
    /* read back: the quoted cell comes back whole, the empty cell empty */
    rc_table r;
    CHECK(rc_table_read_csv(csvp, &r) == RC_OK, "read: %s", rc_error());
    CHECK(r.ncols == 3 && r.nrows == 2, "shape %d x %d", r.nrows, r.ncols);
    if (r.ncols == 3 && r.nrows == 2) {
        CHECK(!strcmp(rc_table_get(&r, 1, 0), "a,b \"c\" | d"), "quoted cell: [%s]", rc_table_get(&r, 1, 0));
        CHECK(!strcmp(rc_table_get(&r, 1, 1), "") && !strcmp(rc_table_get(&r, 0, 2), "0.8512"), "cells");
        CHECK(rc_table_find(&r, "params") == 1, "header");
    }
    rc_table_free(&r);
    rc_table_free(&t);
    /* CRLF line ends; an empty line ends the table */
    FILE *f = fopen(csvp, "w");
    fputs("a,b\r\n1,\"x\"\r\n2,3\r\n\r\nignored\n", f);
    fclose(f);
    CHECK(rc_table_read_csv(csvp, &r) == RC_OK && r.nrows == 2 && !strcmp(rc_table_get(&r, 0, 1), "x") &&
              !strcmp(rc_table_get(&r, 1, 1), "3"),
          "crlf: %s", rc_error());
    rc_table_free(&r);
    /* errors name the file and the row */
    f = fopen(csvp, "w");
    fputs("a,b\n1,2\n3\n", f);
    fclose(f);
    CHECK(rc_table_read_csv(csvp, &r) == RC_ERR && strstr(rc_error(), "row 3 has 1 cells, the header 2"),
          "short row: %s", rc_error());
    f = fopen(csvp, "w");
    fputs("a,b\n", f);
    fclose(f);
    CHECK(rc_table_read_csv(csvp, &r) == RC_ERR && strstr(rc_error(), "has no rows"), "no rows: %s", rc_error());
    f = fopen(csvp, "w");
    fputs("a,b\n\"1,2\n", f);
    fclose(f);
    CHECK(rc_table_read_csv(csvp, &r) == RC_ERR && strstr(rc_error(), "row 2") && strstr(rc_error(), "quote"),
          "open quote: %s", rc_error());
    CHECK(rc_table_read_csv("/nonexistent/x.csv", &r) == RC_ERR && strstr(rc_error(), "cannot read /nonexistent/x.csv"),
          "missing file: %s", rc_error());
    unlink(csvp);
    unlink(mdp);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    RUN_TEST(test_formats);
    RUN_TEST(test_files);
    rmdir(dir);
    TEST_MAIN_END();
}
