/* table.h — a table of text cells written as CSV and as GitHub Markdown (the experiments' results), and a
 * CSV file read back into one. Columns have a CSV name and a Markdown title (either may be absent: the
 * column then appears in one format only), a printf format for numbers and a Markdown alignment. */
#ifndef RC_IO_TABLE_H
#define RC_IO_TABLE_H

#include "files.h"

typedef enum { RC_ALIGN_LEFT, RC_ALIGN_RIGHT } rc_table_align;

typedef struct {
    char *csv;   /* CSV header name; NULL: not in the CSV */
    char *md;    /* Markdown title; NULL: not in the Markdown */
    char *fmt;   /* printf format of one double for rc_table_num ("%.4f"); NULL: text only */
    rc_table_align align;
} rc_table_column;

/* Zero-initialise (rc_table t = {0}), add every column, then the rows; free with rc_table_free. */
typedef struct {
    int ncols, nrows;
    rc_table_column *cols;
    char **cells;  /* [row * ncols + col], malloc'd text; NULL: empty */
    int cap;       /* cells allocated */
    int next;      /* the next cell of the last row */
    int bad_row;   /* 1 + the first row given more cells than columns (0: none) */
} rc_table;

/* Add a column (before the first row); returns its index. */
int rc_table_col(rc_table *t, const char *csv, const char *md, const char *fmt, rc_table_align align);

/* Start a new row; its cells are then given left to right. */
void rc_table_row(rc_table *t);
/* The next cell: a number in the column's format, printf-style text, or nothing (an empty cell). */
void rc_table_num(rc_table *t, double v);
void rc_table_text(rc_table *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void rc_table_skip(rc_table *t);

/* The cell at data row r (0 = the first after the header), column c: "" when empty. */
const char *rc_table_get(const rc_table *t, int r, int c);
/* The column whose CSV name is name, or -1. */
int rc_table_find(const rc_table *t, const char *name);

/* Append the table: CSV (header line, one line a row; a cell with a comma, quote or line break is
 * quoted) or Markdown (header, alignment row, rows; '|' in a cell escaped). Fails, naming the row, when
 * a row was given more cells than there are columns. */
rc_status rc_table_csv(const rc_table *t, rc_strbuf *out);
rc_status rc_table_md(const rc_table *t, rc_strbuf *out);

/* Write the CSV to path, or the Markdown after the text before (may be NULL) to path; atomically. */
rc_status rc_table_write_csv(const rc_table *t, const char *path);
rc_status rc_table_write_md(const rc_table *t, const char *before, const char *path);

/* Read a CSV file written by rc_table_write_csv (or any with a header and equal-length rows): every column
 * text, named by the header. Fails naming the file and the row. */
rc_status rc_table_read_csv(const char *path, rc_table *t);

void rc_table_free(rc_table *t);

#endif
