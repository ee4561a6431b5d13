/* ini.h — a strict INI-like config reader: [type] / [type name] sections holding `key = value` lines.
 * Typed getters validate values and mark keys used, so a builder can reject every unknown key; defaults
 * that were applied are recorded (and become part of the effective config that rc_ini_to_text writes).
 * Every error message has the form `FILE:LINE: message`. */
#ifndef RC_INI_H
#define RC_INI_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"

#define RC_INI_MAX_BYTES (1u << 20) /* larger inputs are refused */
#define RC_INI_MAX_LINE 4096        /* characters per line, not counting the line ending */
#define RC_INI_MAX_DIMS 8           /* most sizes in a dims value like 1x28x28 */
#define RC_INI_MAX_DIM (1 << 24)    /* largest single size in a dims value */

typedef struct rc_ini rc_ini;
typedef struct rc_ini_section rc_ini_section;

/* ---- parse, load, free ------------------------------------------------------------------------- */

/* Parse len bytes of text (need not be NUL-terminated; may hold any bytes). display_name is used in
 * error messages (NULL -> "<config>"). On success *out owns a new config; on error *out = NULL. */
rc_status rc_ini_parse(const char *text, size_t len, const char *display_name, rc_ini **out);
/* Read and parse a file; the path is the display name. */
rc_status rc_ini_load(const char *path, rc_ini **out);
void rc_ini_free(rc_ini *ini); /* NULL is fine */
const char *rc_ini_display_name(const rc_ini *ini);

/* ---- sections ---------------------------------------------------------------------------------- */
/* Section pointers stay valid until rc_ini_free. The find functions mark a section as read. */

int rc_ini_section_count(const rc_ini *ini);
rc_ini_section *rc_ini_section_at(rc_ini *ini, int i); /* file order; does not mark it read */
int rc_ini_count(const rc_ini *ini, const char *type); /* sections of this type */
/* First section of the type whose name equals name ("" = unnamed); name NULL matches any. NULL if none. */
rc_ini_section *rc_ini_find(rc_ini *ini, const char *type, const char *name);
/* The k-th (0-based, file order) section of the type, or NULL. */
rc_ini_section *rc_ini_find_nth(rc_ini *ini, const char *type, int k);
/* The first section of the type; appends an empty unnamed one (line 0) when there is none, so an
 * optional section that was left out can still report its defaults and be written by rc_ini_to_text. */
rc_ini_section *rc_ini_ensure(rc_ini *ini, const char *type);

const char *rc_ini_type(const rc_ini_section *s);
const char *rc_ini_name(const rc_ini_section *s);  /* "" when unnamed */
const char *rc_ini_label(const rc_ini_section *s); /* "[area V1]" or "[train]" */
int rc_ini_line(const rc_ini_section *s);          /* line of the header; 0 if added by rc_ini_ensure */

/* Raw access to the keys in order (file order, then keys added by rc_ini_set or defaults).
 * Does not mark keys used. line is 0 for keys that came from rc_ini_set or a default. */
int rc_ini_key_count(const rc_ini_section *s);
void rc_ini_key_at(const rc_ini_section *s, int i, const char **key, const char **value, int *line);
int rc_ini_has(const rc_ini_section *s, const char *key); /* does not mark the key used */

/* ---- typed getters ----------------------------------------------------------------------------- */
/* Each marks the key used and validates its value; on error *out is left unchanged and the message
 * names file, line, key, value and what was expected. The plain form fails when the key is missing;
 * the _or form applies the default, records it (see rc_ini_default_*) and adds it to the section.
 * Ranges are inclusive. Defaults must satisfy the constraints (checked with RC_ASSERT).
 * Strings returned stay valid until rc_ini_free. */

rc_status rc_ini_int(rc_ini_section *s, const char *key, int min, int max, int *out);
rc_status rc_ini_int_or(rc_ini_section *s, const char *key, int def, int min, int max, int *out);
rc_status rc_ini_i64(rc_ini_section *s, const char *key, int64_t min, int64_t max, int64_t *out);
rc_status rc_ini_i64_or(rc_ini_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                        int64_t *out);
/* Decimal numbers only ("0.1", "-3", "1e-4"); nan, inf and hex are refused. */
rc_status rc_ini_double(rc_ini_section *s, const char *key, double min, double max, double *out);
rc_status rc_ini_double_or(rc_ini_section *s, const char *key, double def, double min, double max,
                           double *out);
/* yes/no, true/false, on/off, 1/0 (any case); *out is 1 or 0. */
rc_status rc_ini_bool(rc_ini_section *s, const char *key, int *out);
rc_status rc_ini_bool_or(rc_ini_section *s, const char *key, int def, int *out);
/* words: NULL-terminated list of allowed values; *out is the index of the match (case-sensitive). */
rc_status rc_ini_enum(rc_ini_section *s, const char *key, const char *const *words, int *out);
rc_status rc_ini_enum_or(rc_ini_section *s, const char *key, int def, const char *const *words, int *out);
rc_status rc_ini_str(rc_ini_section *s, const char *key, const char **out);
rc_status rc_ini_str_or(rc_ini_section *s, const char *key, const char *def, const char **out);
/* Sizes like "1x28x28": between min_ndim and max_ndim (<= RC_INI_MAX_DIMS) sizes, each in
 * [1, RC_INI_MAX_DIM]. dims needs room for max_ndim ints; *ndim gets the count. */
rc_status rc_ini_dims(rc_ini_section *s, const char *key, int min_ndim, int max_ndim, int *dims, int *ndim);
rc_status rc_ini_dims_or(rc_ini_section *s, const char *key, const int *def, int def_ndim, int min_ndim,
                         int max_ndim, int *dims, int *ndim);

/* ---- validation after building ----------------------------------------------------------------- */

/* Fails on the first section whose type is not in known_types (NULL-terminated). */
rc_status rc_ini_check_sections(const rc_ini *ini, const char *const *known_types);
/* Fails on the first section never read (found or got from), else the first key never read, in file
 * order: "FILE:LINE: unknown key 'chanels' in [area V1]". */
rc_status rc_ini_check_unused(const rc_ini *ini);

/* ---- defaults report --------------------------------------------------------------------------- */

/* Defaults applied by the _or getters, in the order they were applied (an rc_ini_set of the key
 * removes it from the list). value is the default as text. */
int rc_ini_default_count(const rc_ini *ini);
void rc_ini_default_at(const rc_ini *ini, int i, const rc_ini_section **s, const char **key,
                       const char **value);
/* One line per default: "using default [area V1] channels = 64". */
void rc_ini_print_defaults(const rc_ini *ini, FILE *f);

/* ---- overrides and serialisation --------------------------------------------------------------- */

/* Apply one `--set` assignment: "type.key=value" when exactly one [type] section exists (it may also
 * be named: "type.name.key=value"), "type.name.key=value" to pick a named section. The key is added
 * if absent. Errors: no such section, ambiguous type, bad key, a value that would not read back. */
rc_status rc_ini_set(rc_ini *ini, const char *assignment);

/* Canonical text: headers and `key = value` lines in order, a blank line between sections, no
 * comments; includes applied defaults, so it is the effective config. It parses back to an equal
 * config. *out is NUL-terminated, malloc'ed (free it with free()); *len excludes the NUL. */
rc_status rc_ini_to_text(const rc_ini *ini, char **out, size_t *len);
/* 1 when both have the same sections (type, name) holding the same keys and values in the same
 * order; lines, used marks and default records are ignored. */
int rc_ini_equal(const rc_ini *a, const rc_ini *b);

#endif
