/* table.c — see table.h: cells kept as text, written as CSV (RFC 4180 quoting where needed) or Markdown,
 * atomically through rc_write_file_atomic; and the CSV reader the experiments merge seeds with. */
#define _POSIX_C_SOURCE 200809L
#include "table.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = rc_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

int rc_table_col(rc_table *t, const char *csv, const char *md, const char *fmt, rc_table_align align) {
    RC_ASSERT(t->nrows == 0);
    t->cols = rc_xrealloc(t->cols, (size_t)(t->ncols + 1) * sizeof *t->cols);
    t->cols[t->ncols] = (rc_table_column){dup_or_null(csv), dup_or_null(md), dup_or_null(fmt), align};
    return t->ncols++;
}

void rc_table_row(rc_table *t) {
    int need = (t->nrows + 1) * t->ncols;
    if (need > t->cap) {
        int cap = RC_MAX(need, 2 * t->cap);
        t->cells = rc_xrealloc(t->cells, (size_t)cap * sizeof *t->cells);
        t->cap = cap;
    }
    memset(t->cells + (size_t)t->nrows * t->ncols, 0, (size_t)t->ncols * sizeof *t->cells);
    t->nrows++;
    t->next = 0;
}

/* Take ownership of text as the next cell of the last row. */
static void put(rc_table *t, char *text) {
    RC_ASSERT(t->nrows > 0);
    if (t->next >= t->ncols) {
        if (!t->bad_row) t->bad_row = t->nrows;
        free(text);
        return;
    }
    t->cells[(size_t)(t->nrows - 1) * t->ncols + t->next++] = text;
}

static char *vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    RC_ASSERT(n >= 0);
    char *s = rc_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

void rc_table_num(rc_table *t, double v) {
    const char *fmt = t->next < t->ncols ? t->cols[t->next].fmt : NULL;
    RC_ASSERT(fmt || t->next >= t->ncols); /* a number in a text column: give it with rc_table_text */
    put(t, fmt ? format(fmt, v) : NULL);
}

void rc_table_text(rc_table *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    put(t, s);
}

void rc_table_skip(rc_table *t) { put(t, NULL); }

const char *rc_table_get(const rc_table *t, int r, int c) {
    RC_ASSERT(r >= 0 && r < t->nrows && c >= 0 && c < t->ncols);
    const char *s = t->cells[(size_t)r * t->ncols + c];
    return s ? s : "";
}

int rc_table_find(const rc_table *t, const char *name) {
    for (int c = 0; c < t->ncols; c++)
        if (t->cols[c].csv && !strcmp(t->cols[c].csv, name)) return c;
    return -1;
}

static rc_status check(const rc_table *t) {
    if (t->bad_row) return rc_fail("table row %d was given more than its %d cells", t->bad_row, t->ncols);
    return RC_OK;
}

static void csv_cell(rc_strbuf *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        rc_sb_printf(out, "%s", s);
        return;
    }
    rc_sb_printf(out, "\"");
    for (; *s; s++) rc_sb_printf(out, *s == '"' ? "\"\"" : "%c", *s);
    rc_sb_printf(out, "\"");
}

rc_status rc_table_csv(const rc_table *t, rc_strbuf *out) {
    if (check(t)) return RC_ERR;
    for (int r = -1; r < t->nrows; r++) {
        int first = 1;
        for (int c = 0; c < t->ncols; c++) {
            if (!t->cols[c].csv) continue;
            if (!first) rc_sb_printf(out, ",");
            first = 0;
            csv_cell(out, r < 0 ? t->cols[c].csv : rc_table_get(t, r, c));
        }
        rc_sb_printf(out, "\n");
    }
    return RC_OK;
}

static void md_cell(rc_strbuf *out, const char *s) {
    rc_sb_printf(out, " ");
    for (; *s; s++) {
        if (*s == '|')
            rc_sb_printf(out, "\\|");
        else if (*s == '\n' || *s == '\r') /* a line break would end the row */
            rc_sb_printf(out, " ");
        else
            rc_sb_printf(out, "%c", *s);
    }
    rc_sb_printf(out, " |");
}

rc_status rc_table_md(const rc_table *t, rc_strbuf *out) {
    if (check(t)) return RC_ERR;
    for (int r = -2; r < t->nrows; r++) {
        rc_sb_printf(out, "|");
        for (int c = 0; c < t->ncols; c++) {
            const rc_table_column *col = &t->cols[c];
            if (!col->md) continue;
            if (r == -1)
                rc_sb_printf(out, col->align == RC_ALIGN_RIGHT ? " ---: |" : " --- |");
            else
                md_cell(out, r < 0 ? col->md : rc_table_get(t, r, c));
        }
        rc_sb_printf(out, "\n");
    }
    return RC_OK;
}

rc_status rc_table_write_csv(const rc_table *t, const char *path) {
    rc_strbuf s = {0};
    rc_status st = rc_table_csv(t, &s);
    if (!st) st = rc_write_file_atomic(path, s.buf ? s.buf : "", s.len);
    free(s.buf);
    return st;
}

rc_status rc_table_write_md(const rc_table *t, const char *before, const char *path) {
    rc_strbuf s = {0};
    if (before) rc_sb_printf(&s, "%s", before);
    rc_status st = rc_table_md(t, &s);
    if (!st) st = rc_write_file_atomic(path, s.buf ? s.buf : "", s.len);
    free(s.buf);
    return st;
}

/* Split the CSV record at *p into cells, unquoting quoted ones in place; *p moves past its line break.
 * *cell (capacity *cap) grows as needed; returns the number of cells, or -1 for a stray quote. */
static int csv_record(char **p, char ***cell, int *cap) {
    char *s = *p, *w = s;
    int n = 0, bad = 0;
    for (;;) {
        char *start = w;
        if (*s == '"') {
            for (s++;;) {
                if (!*s) {
                    bad = 1;
                    break;
                }
                if (*s == '"' && s[1] == '"') {
                    *w++ = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    *w++ = *s++;
                }
            }
            if (*s == '\r' && s[1] == '\n') s++;
            if (*s && *s != ',' && *s != '\n') bad = 1;
            while (*s && *s != ',' && *s != '\n') s++;
        } else {
            while (*s && *s != ',' && *s != '\n') *w++ = *s++;
            if (w > start && w[-1] == '\r') w--;
        }
        char end = *s;
        *w++ = 0; /* w <= s + 1: the terminator never overwrites what is still to be read */
        if (n >= *cap) {
            *cap = 2 * *cap + 8;
            *cell = rc_xrealloc(*cell, (size_t)*cap * sizeof **cell);
        }
        (*cell)[n++] = start;
        if (end == ',') {
            s++;
            continue;
        }
        *p = end ? s + 1 : s;
        return bad ? -1 : n;
    }
}

rc_status rc_table_read_csv(const char *path, rc_table *t) {
    memset(t, 0, sizeof *t);
    errno = 0;
    char *text = rc_read_text_file(path, (size_t)1 << 30, NULL);
    if (!text) return rc_fail("cannot read %s: %s", path, strerror(errno ? errno : EIO));
    rc_status st = RC_OK;
    char **cell = NULL;
    int cap = 0, line = 0;
    for (char *p = text; *p && *p != '\n' && *p != '\r';) { /* an empty line ends the table */
        line++;
        int n = csv_record(&p, &cell, &cap);
        if (n < 0) {
            st = rc_fail("%s: row %d has an unterminated or misplaced quote", path, line);
            break;
        }
        if (line == 1) {
            for (int c = 0; c < n; c++) rc_table_col(t, cell[c], NULL, NULL, RC_ALIGN_LEFT);
            continue;
        }
        if (n != t->ncols) {
            st = rc_fail("%s: row %d has %d cells, the header %d", path, line, n, t->ncols);
            break;
        }
        rc_table_row(t);
        for (int c = 0; c < n; c++) rc_table_text(t, "%s", cell[c]);
    }
    if (!st && t->nrows < 1) st = rc_fail("%s has no rows", path);
    free(cell);
    free(text);
    if (st) rc_table_free(t);
    return st;
}

void rc_table_free(rc_table *t) {
    for (int c = 0; c < t->ncols; c++) {
        free(t->cols[c].csv);
        free(t->cols[c].md);
        free(t->cols[c].fmt);
    }
    for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cols);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
