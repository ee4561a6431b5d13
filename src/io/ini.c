/* ini.c — the strict config reader declared in ini.h: line parser, section/key storage with hash
 * indexes (so 1 MiB of garbage parses in linear time), typed getters that mark keys used, defaults
 * record, --set overrides and canonical serialisation. */
#define _POSIX_C_SOURCE 200809L
#include "io/ini.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- storage ----------------------------------------------------------------------------------- */

typedef struct {
    char *key, *value;
    int sec;  /* index of the owning section */
    int line; /* 0 when it came from rc_ini_set or a default */
    uint32_t hash;
    unsigned char used, from_default, from_set;
} rc_ini_kv;

struct rc_ini_section {
    rc_ini *ini;
    int index;
    char *type, *name, *label;
    int line;
    int touched;
    uint32_t hash; /* of (type, name), for the named-section index */
    int *keys;     /* indexes into ini->kvs, in order */
    int nkeys, capkeys;
};

typedef struct {
    uint32_t *slot; /* 0 = empty, else id + 1 */
    size_t cap;     /* power of two, or 0 */
    size_t count;
} rc_ini_map;

struct rc_ini {
    char *display;
    rc_ini_section **secs;
    int nsec, capsec;
    rc_ini_kv *kvs;
    int nkv, capkv;
    rc_ini_map kmap; /* (section, key) -> kv index */
    rc_ini_map smap; /* (type, name) -> section index, named sections only */
    int *defaults;   /* kv indexes, in order applied */
    int ndef, capdef;
    char **garbage; /* values replaced by rc_ini_set, freed with the config */
    int ngarbage, capgarbage;
};

static char *dup_n(const char *p, size_t n) {
    char *s = rc_xmalloc(n + 1);
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static char *dup_s(const char *s) { return dup_n(s, strlen(s)); }

/* Grow a dynamic array so it holds at least need elements. */
static void *grow(void *p, int *cap, int need, size_t elem) {
    if (need <= *cap) return p;
    int c = *cap ? *cap : 8;
    while (c < need) {
        RC_ASSERT(c <= INT32_MAX / 2);
        c *= 2;
    }
    *cap = c;
    return rc_xrealloc(p, (size_t)c * elem);
}

static uint32_t fnv1a(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t mix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

static uint32_t key_hash(int sec, const char *key, size_t n) {
    return mix32(fnv1a(2166136261u ^ ((uint32_t)sec * 0x9e3779b1u), key, n));
}

static uint32_t sec_hash(const char *type, const char *name) {
    uint32_t h = fnv1a(2166136261u, type, strlen(type));
    h = fnv1a(h ^ 0xffu, name, strlen(name));
    return mix32(h);
}

static uint32_t map_id_hash(const rc_ini *ini, const rc_ini_map *m, uint32_t id) {
    return m == &ini->kmap ? ini->kvs[id].hash : ini->secs[id]->hash;
}

static void map_insert_raw(rc_ini_map *m, uint32_t h, uint32_t id) {
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (!m->slot[i]) {
            m->slot[i] = id + 1;
            m->count++;
            return;
        }
    }
}

static void map_insert(rc_ini *ini, rc_ini_map *m, uint32_t h, uint32_t id) {
    if ((m->count + 1) * 2 > m->cap) {
        size_t oldcap = m->cap;
        uint32_t *old = m->slot;
        m->cap = oldcap ? oldcap * 2 : 64;
        m->slot = rc_xcalloc(m->cap, sizeof *m->slot);
        m->count = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i]) map_insert_raw(m, map_id_hash(ini, m, old[i] - 1), old[i] - 1);
        free(old);
    }
    map_insert_raw(m, h, id);
}

/* Index of the kv holding key (n bytes) in section sec, or -1. */
static int find_kv(const rc_ini *ini, int sec, const char *key, size_t n) {
    const rc_ini_map *m = &ini->kmap;
    if (!m->cap) return -1;
    uint32_t h = key_hash(sec, key, n);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask; m->slot[i]; i = (i + 1) & mask) {
        const rc_ini_kv *e = &ini->kvs[m->slot[i] - 1];
        if (e->hash == h && e->sec == sec && strlen(e->key) == n && memcmp(e->key, key, n) == 0)
            return (int)(m->slot[i] - 1);
    }
    return -1;
}

/* Index of the named section [type name], or -1. */
static int find_named(const rc_ini *ini, const char *type, const char *name) {
    const rc_ini_map *m = &ini->smap;
    if (!m->cap) return -1;
    uint32_t h = sec_hash(type, name);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask; m->slot[i]; i = (i + 1) & mask) {
        const rc_ini_section *s = ini->secs[m->slot[i] - 1];
        if (s->hash == h && strcmp(s->type, type) == 0 && strcmp(s->name, name) == 0)
            return (int)(m->slot[i] - 1);
    }
    return -1;
}

static rc_ini_section *add_section(rc_ini *ini, const char *type, size_t tn, const char *name, size_t nn,
                                   int line) {
    ini->secs = grow(ini->secs, &ini->capsec, ini->nsec + 1, sizeof *ini->secs);
    rc_ini_section *s = rc_xcalloc(1, sizeof *s);
    s->ini = ini;
    s->index = ini->nsec;
    s->type = dup_n(type, tn);
    s->name = dup_n(name, nn);
    size_t ln = tn + nn + 4;
    s->label = rc_xmalloc(ln);
    if (nn)
        snprintf(s->label, ln, "[%s %s]", s->type, s->name);
    else
        snprintf(s->label, ln, "[%s]", s->type);
    s->line = line;
    s->hash = sec_hash(s->type, s->name);
    ini->secs[ini->nsec++] = s;
    if (nn) map_insert(ini, &ini->smap, s->hash, (uint32_t)s->index);
    return s;
}

/* Append key = value to s (the key must be absent); returns the kv index. */
static int add_kv(rc_ini_section *s, const char *key, size_t kn, const char *value, size_t vn, int line) {
    rc_ini *ini = s->ini;
    ini->kvs = grow(ini->kvs, &ini->capkv, ini->nkv + 1, sizeof *ini->kvs);
    int id = ini->nkv++;
    rc_ini_kv *e = &ini->kvs[id];
    memset(e, 0, sizeof *e);
    e->key = dup_n(key, kn);
    e->value = dup_n(value, vn);
    e->sec = s->index;
    e->line = line;
    e->hash = key_hash(s->index, key, kn);
    map_insert(ini, &ini->kmap, e->hash, (uint32_t)id);
    s->keys = grow(s->keys, &s->capkeys, s->nkeys + 1, sizeof *s->keys);
    s->keys[s->nkeys++] = id;
    return id;
}

void rc_ini_free(rc_ini *ini) {
    if (!ini) return;
    for (int i = 0; i < ini->nsec; i++) {
        rc_ini_section *s = ini->secs[i];
        free(s->type);
        free(s->name);
        free(s->label);
        free(s->keys);
        free(s);
    }
    for (int i = 0; i < ini->nkv; i++) {
        free(ini->kvs[i].key);
        free(ini->kvs[i].value);
    }
    for (int i = 0; i < ini->ngarbage; i++) free(ini->garbage[i]);
    free(ini->garbage);
    free(ini->secs);
    free(ini->kvs);
    free(ini->kmap.slot);
    free(ini->smap.slot);
    free(ini->defaults);
    free(ini->display);
    free(ini);
}

/* ---- character classes and small helpers -------------------------------------------------------- */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
static int is_lower_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static int is_key_char(char c) { return is_lower_digit(c) || c == '_' || c == '.' || c == '-'; }
static int is_type_char(char c) { return is_lower_digit(c) || c == '_' || c == '-'; }
static int is_name_char(char c) {
    return is_lower_digit(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

static int all_chars(const char *p, size_t n, int (*ok)(char)) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!ok(p[i])) return 0;
    return 1;
}

static int valid_key(const char *k) { return k && all_chars(k, strlen(k), is_key_char); }
static int valid_type(const char *t) { return t && all_chars(t, strlen(t), is_type_char); }

/* A value that reads back unchanged after "key = ": no line breaks, no surrounding whitespace, no '#'
 * at its start or after whitespace (it would start a comment). */
static int valid_value(const char *v, size_t n) {
    if (n && (is_ws(v[0]) || is_ws(v[n - 1]))) return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\n' || v[i] == '\r' || v[i] == '\0') return 0;
        if ((v[i] == '#' || v[i] == ';') && (i == 0 || is_ws(v[i - 1]))) return 0;
    }
    return 1;
}

static void trim(const char **p, size_t *n) {
    while (*n && is_ws((*p)[0])) (*p)++, (*n)--;
    while (*n && is_ws((*p)[*n - 1])) (*n)--;
}

/* A printable excerpt of untrusted bytes for an error message: at most 48 characters, control and
 * non-ASCII bytes shown as '?'. */
static const char *snip(const char *p, size_t n, char buf[64]) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < 48; i++) {
        unsigned char c = (unsigned char)p[i];
        buf[k++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (n > 48) buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = '\0';
    return buf;
}

/* "FILE:LINE" for a key from the file, "FILE (--set)" for an override. */
static const char *kv_where(const rc_ini *ini, const rc_ini_kv *e, char *buf, size_t cap) {
    if (e->line > 0)
        snprintf(buf, cap, "%s:%d", ini->display, e->line);
    else if (e->from_set)
        snprintf(buf, cap, "%s (--set)", ini->display);
    else
        snprintf(buf, cap, "%s", ini->display);
    return buf;
}

static const char *sec_where(const rc_ini_section *s, char *buf, size_t cap) {
    if (s->line > 0)
        snprintf(buf, cap, "%s:%d", s->ini->display, s->line);
    else
        snprintf(buf, cap, "%s", s->ini->display);
    return buf;
}

/* ---- parser ------------------------------------------------------------------------------------ */

static rc_status parse_header(rc_ini *ini, const char *p, size_t n, int line) {
    char sb[64];
    const char *close = memchr(p, ']', n);
    if (!close)
        return rc_fail("%s:%d: section header '%s' has no closing ']'", ini->display, line,
                       snip(p, n, sb));
    /* after ']' only whitespace and an optional # comment */
    const char *rest = close + 1;
    size_t rn = n - (size_t)(rest - p);
    trim(&rest, &rn);
    if (rn && rest[0] != '#' && rest[0] != ';')
        return rc_fail("%s:%d: unexpected text '%s' after section header", ini->display, line,
                       snip(rest, rn, sb));
    const char *in = p + 1;
    size_t inn = (size_t)(close - in);
    trim(&in, &inn);
    size_t tn = 0;
    while (tn < inn && !is_ws(in[tn])) tn++;
    const char *name = in + tn;
    size_t nn = inn - tn;
    trim(&name, &nn);
    int bad_name = 0;
    for (size_t i = 0; i < nn; i++)
        if (!is_name_char(name[i])) bad_name = 1;
    if (!all_chars(in, tn, is_type_char) || bad_name)
        return rc_fail("%s:%d: bad section header '%s': expected [type] or [type name] (type: a-z 0-9 _ -; "
                       "name: letters, digits, _ -)",
                       ini->display, line, snip(p, (size_t)(close - p) + 1, sb));
    char tb[RC_INI_MAX_LINE + 1], nb[RC_INI_MAX_LINE + 1];
    memcpy(tb, in, tn);
    tb[tn] = '\0';
    memcpy(nb, name, nn);
    nb[nn] = '\0';
    if (nn) {
        int other = find_named(ini, tb, nb);
        if (other >= 0)
            return rc_fail("%s:%d: duplicate section [%s %s] (first at line %d)", ini->display, line,
                           snip(tb, tn, sb), nb, ini->secs[other]->line);
    }
    add_section(ini, in, tn, name, nn, line);
    return RC_OK;
}

static rc_status parse_assignment(rc_ini *ini, const char *p, size_t n, int line) {
    char sb[64];
    const char *eq = memchr(p, '=', n);
    if (!eq)
        return rc_fail("%s:%d: expected 'key = value', '[section]' or a comment, got '%s'", ini->display,
                       line, snip(p, n, sb));
    const char *key = p;
    size_t kn = (size_t)(eq - p);
    trim(&key, &kn);
    if (kn == 0) return rc_fail("%s:%d: missing key before '='", ini->display, line);
    if (!all_chars(key, kn, is_key_char))
        return rc_fail("%s:%d: bad key '%s' (keys use a-z, 0-9, '_', '.', '-')", ini->display, line,
                       snip(key, kn, sb));
    const char *val = eq + 1;
    size_t vn = n - (size_t)(val - p);
    trim(&val, &vn);
    for (size_t i = 0; i < vn; i++)
        if ((val[i] == '#' || val[i] == ';') && (i == 0 || is_ws(val[i - 1]))) {
            vn = i;
            break;
        }
    trim(&val, &vn);
    if (ini->nsec == 0)
        return rc_fail("%s:%d: key '%s' before any [section]", ini->display, line, snip(key, kn, sb));
    rc_ini_section *s = ini->secs[ini->nsec - 1];
    int other = find_kv(ini, s->index, key, kn);
    if (other >= 0)
        return rc_fail("%s:%d: duplicate key '%s' in %s (first at line %d)", ini->display, line,
                       snip(key, kn, sb), s->label, ini->kvs[other].line);
    add_kv(s, key, kn, val, vn, line);
    return RC_OK;
}

static rc_status parse_all(rc_ini *ini, const char *text, size_t len) {
    if (len > RC_INI_MAX_BYTES)
        return rc_fail("%s: config is %zu bytes; the limit is %u bytes (1 MiB)", ini->display, len,
                       RC_INI_MAX_BYTES);
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n && p[n - 1] == '\r') n--;
        if (n > RC_INI_MAX_LINE)
            return rc_fail("%s:%d: line is %zu characters; the limit is %d", ini->display, line, n,
                           RC_INI_MAX_LINE);
        if (memchr(p, '\0', n)) return rc_fail("%s:%d: NUL byte in config", ini->display, line);
        trim(&p, &n);
        if (n == 0 || p[0] == '#' || p[0] == ';') continue;
        rc_status st = p[0] == '[' ? parse_header(ini, p, n, line) : parse_assignment(ini, p, n, line);
        if (st != RC_OK) return st;
    }
    return RC_OK;
}

rc_status rc_ini_parse(const char *text, size_t len, const char *display_name, rc_ini **out) {
    RC_ASSERT(out && (text || len == 0));
    *out = NULL;
    rc_ini *ini = rc_xcalloc(1, sizeof *ini);
    ini->display = dup_s(display_name ? display_name : "<config>");
    if (parse_all(ini, text, len) != RC_OK) {
        rc_ini_free(ini);
        return RC_ERR;
    }
    *out = ini;
    return RC_OK;
}

rc_status rc_ini_load(const char *path, rc_ini **out) {
    RC_ASSERT(path && out);
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return rc_fail("%s: cannot open config: %s", path, strerror(errno));
    size_t cap = (size_t)RC_INI_MAX_BYTES + 1;
    char *buf = rc_xmalloc(cap);
    errno = 0;
    size_t n = fread(buf, 1, cap, f);
    int err = ferror(f), e = errno;
    fclose(f);
    if (err) {
        free(buf);
        return rc_fail("%s: cannot read config: %s", path, e ? strerror(e) : "read error");
    }
    if (n > RC_INI_MAX_BYTES) {
        free(buf);
        return rc_fail("%s: config is larger than %u bytes (1 MiB); refusing it", path, RC_INI_MAX_BYTES);
    }
    rc_status st = rc_ini_parse(buf, n, path, out);
    free(buf);
    return st;
}

const char *rc_ini_display_name(const rc_ini *ini) { return ini->display; }

/* ---- sections ---------------------------------------------------------------------------------- */

int rc_ini_section_count(const rc_ini *ini) { return ini->nsec; }

rc_ini_section *rc_ini_section_at(rc_ini *ini, int i) {
    RC_ASSERT(i >= 0 && i < ini->nsec);
    return ini->secs[i];
}

int rc_ini_count(const rc_ini *ini, const char *type) {
    int c = 0;
    for (int i = 0; i < ini->nsec; i++) c += strcmp(ini->secs[i]->type, type) == 0;
    return c;
}

rc_ini_section *rc_ini_find(rc_ini *ini, const char *type, const char *name) {
    RC_ASSERT(type);
    rc_ini_section *hit = NULL;
    if (name && name[0]) {
        int i = find_named(ini, type, name);
        if (i >= 0) hit = ini->secs[i];
    } else {
        for (int i = 0; i < ini->nsec && !hit; i++)
            if (strcmp(ini->secs[i]->type, type) == 0 && (!name || !ini->secs[i]->name[0]))
                hit = ini->secs[i];
    }
    if (hit) hit->touched = 1;
    return hit;
}

rc_ini_section *rc_ini_find_nth(rc_ini *ini, const char *type, int k) {
    for (int i = 0; i < ini->nsec; i++)
        if (strcmp(ini->secs[i]->type, type) == 0 && k-- == 0) {
            ini->secs[i]->touched = 1;
            return ini->secs[i];
        }
    return NULL;
}

rc_ini_section *rc_ini_ensure(rc_ini *ini, const char *type) {
    RC_ASSERT(valid_type(type));
    rc_ini_section *s = rc_ini_find(ini, type, NULL);
    if (!s) {
        s = add_section(ini, type, strlen(type), "", 0, 0);
        s->touched = 1;
    }
    return s;
}

const char *rc_ini_type(const rc_ini_section *s) { return s->type; }
const char *rc_ini_name(const rc_ini_section *s) { return s->name; }
const char *rc_ini_label(const rc_ini_section *s) { return s->label; }
int rc_ini_line(const rc_ini_section *s) { return s->line; }
int rc_ini_key_count(const rc_ini_section *s) { return s->nkeys; }

void rc_ini_key_at(const rc_ini_section *s, int i, const char **key, const char **value, int *line) {
    RC_ASSERT(i >= 0 && i < s->nkeys);
    const rc_ini_kv *e = &s->ini->kvs[s->keys[i]];
    if (key) *key = e->key;
    if (value) *value = e->value;
    if (line) *line = e->line;
}

int rc_ini_has(const rc_ini_section *s, const char *key) {
    return find_kv(s->ini, s->index, key, strlen(key)) >= 0;
}

/* ---- typed getters ----------------------------------------------------------------------------- */

/* The kv for key in s, marked used, or NULL. Marks the section read. */
static rc_ini_kv *lookup(rc_ini_section *s, const char *key) {
    RC_ASSERT(s && valid_key(key));
    s->touched = 1;
    int i = find_kv(s->ini, s->index, key, strlen(key));
    if (i < 0) return NULL;
    s->ini->kvs[i].used = 1;
    return &s->ini->kvs[i];
}

static rc_status missing(const rc_ini_section *s, const char *key) {
    char wb[1024];
    return rc_fail("%s: missing required key '%s' in %s%s", sec_where(s, wb, sizeof wb), key, s->label,
                   s->line > 0 ? "" : " (section not in the config)");
}

/* Record that the default text was applied for key in s (the key is absent). */
static void apply_default(rc_ini_section *s, const char *key, const char *text) {
    RC_ASSERT(valid_value(text, strlen(text)));
    int id = add_kv(s, key, strlen(key), text, strlen(text), 0);
    rc_ini *ini = s->ini;
    ini->kvs[id].used = 1;
    ini->kvs[id].from_default = 1;
    ini->defaults = grow(ini->defaults, &ini->capdef, ini->ndef + 1, sizeof *ini->defaults);
    ini->defaults[ini->ndef++] = id;
}

/* Strict decimal integer: [+-]?[0-9]+ without overflow. */
static int parse_i64(const char *v, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (v[i] == '+' || v[i] == '-') neg = v[i++] == '-';
    if (!v[i]) return 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX, acc = 0;
    for (; v[i]; i++) {
        if (v[i] < '0' || v[i] > '9') return 0;
        unsigned d = (unsigned)(v[i] - '0');
        if (acc > (lim - d) / 10) return 0;
        acc = acc * 10 + d;
    }
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 1;
}

static rc_status get_i64(rc_ini_section *s, const char *key, int required, int64_t def, int64_t min,
                         int64_t max, int64_t *out) {
    RC_ASSERT(out && min <= max);
    rc_ini_kv *e = lookup(s, key);
    if (!e) {
        if (required) return missing(s, key);
        RC_ASSERT(def >= min && def <= max);
        char tb[32];
        snprintf(tb, sizeof tb, "%" PRId64, def);
        apply_default(s, key, tb);
        *out = def;
        return RC_OK;
    }
    char wb[1024], sb[64];
    int64_t v;
    if (!parse_i64(e->value, &v))
        return rc_fail("%s: %s = '%s' is not an integer (expected one in [%" PRId64 ", %" PRId64 "]) in %s",
                       kv_where(s->ini, e, wb, sizeof wb), key, snip(e->value, strlen(e->value), sb), min,
                       max, s->label);
    if (v < min || v > max)
        return rc_fail("%s: %s = %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "] in %s",
                       kv_where(s->ini, e, wb, sizeof wb), key, v, min, max, s->label);
    *out = v;
    return RC_OK;
}

rc_status rc_ini_i64(rc_ini_section *s, const char *key, int64_t min, int64_t max, int64_t *out) {
    return get_i64(s, key, 1, 0, min, max, out);
}

rc_status rc_ini_i64_or(rc_ini_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                        int64_t *out) {
    return get_i64(s, key, 0, def, min, max, out);
}

rc_status rc_ini_int(rc_ini_section *s, const char *key, int min, int max, int *out) {
    int64_t v;
    if (get_i64(s, key, 1, 0, min, max, &v) != RC_OK) return RC_ERR;
    *out = (int)v;
    return RC_OK;
}

rc_status rc_ini_int_or(rc_ini_section *s, const char *key, int def, int min, int max, int *out) {
    int64_t v;
    if (get_i64(s, key, 0, def, min, max, &v) != RC_OK) return RC_ERR;
    *out = (int)v;
    return RC_OK;
}

/* Decimal floating point: only digits, sign, '.', 'e'/'E' (no nan, inf or hex); finite. */
static int parse_double(const char *v, double *out) {
    if (!v[0]) return 0;
    int digits = 0;
    for (const char *c = v; *c; c++) {
        if (*c >= '0' && *c <= '9')
            digits = 1;
        else if (!(*c == '+' || *c == '-' || *c == '.' || *c == 'e' || *c == 'E'))
            return 0;
    }
    if (!digits) return 0;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(d)) return 0;
    *out = d;
    return 1;
}

/* Shortest %g text that reads back to exactly d. */
static void format_double(double d, char buf[40]) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

static rc_status get_double(rc_ini_section *s, const char *key, int required, double def, double min,
                            double max, double *out) {
    RC_ASSERT(out && min <= max);
    rc_ini_kv *e = lookup(s, key);
    if (!e) {
        if (required) return missing(s, key);
        RC_ASSERT(isfinite(def) && def >= min && def <= max);
        char tb[40];
        format_double(def, tb);
        apply_default(s, key, tb);
        *out = def;
        return RC_OK;
    }
    char wb[1024], sb[64];
    double v;
    if (!parse_double(e->value, &v))
        return rc_fail("%s: %s = '%s' is not a number (expected one in [%g, %g]) in %s",
                       kv_where(s->ini, e, wb, sizeof wb), key, snip(e->value, strlen(e->value), sb), min,
                       max, s->label);
    if (!(v >= min && v <= max))
        return rc_fail("%s: %s = %s is out of range [%g, %g] in %s", kv_where(s->ini, e, wb, sizeof wb), key,
                       e->value, min, max, s->label);
    *out = v;
    return RC_OK;
}

rc_status rc_ini_double(rc_ini_section *s, const char *key, double min, double max, double *out) {
    return get_double(s, key, 1, 0.0, min, max, out);
}

rc_status rc_ini_double_or(rc_ini_section *s, const char *key, double def, double min, double max,
                           double *out) {
    return get_double(s, key, 0, def, min, max, out);
}

static int ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return *a == *b;
}

static rc_status get_bool(rc_ini_section *s, const char *key, int required, int def, int *out) {
    RC_ASSERT(out);
    rc_ini_kv *e = lookup(s, key);
    if (!e) {
        if (required) return missing(s, key);
        apply_default(s, key, def ? "yes" : "no");
        *out = def ? 1 : 0;
        return RC_OK;
    }
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (ieq(e->value, yes[i])) return *out = 1, RC_OK;
        if (ieq(e->value, no[i])) return *out = 0, RC_OK;
    }
    char wb[1024], sb[64];
    return rc_fail("%s: %s = '%s' is not a boolean (use yes/no, true/false, on/off or 1/0) in %s",
                   kv_where(s->ini, e, wb, sizeof wb), key, snip(e->value, strlen(e->value), sb), s->label);
}

rc_status rc_ini_bool(rc_ini_section *s, const char *key, int *out) { return get_bool(s, key, 1, 0, out); }
rc_status rc_ini_bool_or(rc_ini_section *s, const char *key, int def, int *out) {
    return get_bool(s, key, 0, def, out);
}

static rc_status get_enum(rc_ini_section *s, const char *key, int required, int def,
                          const char *const *words, int *out) {
    RC_ASSERT(out && words && words[0]);
    int nw = 0;
    while (words[nw]) nw++;
    rc_ini_kv *e = lookup(s, key);
    if (!e) {
        if (required) return missing(s, key);
        RC_ASSERT(def >= 0 && def < nw);
        apply_default(s, key, words[def]);
        *out = def;
        return RC_OK;
    }
    for (int i = 0; i < nw; i++)
        if (strcmp(e->value, words[i]) == 0) return *out = i, RC_OK;
    char list[512], wb[1024], sb[64];
    size_t k = 0;
    list[0] = '\0';
    for (int i = 0; i < nw && k < sizeof list; i++) {
        int w = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", words[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
    return rc_fail("%s: %s = '%s' is not one of: %s in %s", kv_where(s->ini, e, wb, sizeof wb), key,
                   snip(e->value, strlen(e->value), sb), list, s->label);
}

rc_status rc_ini_enum(rc_ini_section *s, const char *key, const char *const *words, int *out) {
    return get_enum(s, key, 1, 0, words, out);
}

rc_status rc_ini_enum_or(rc_ini_section *s, const char *key, int def, const char *const *words, int *out) {
    return get_enum(s, key, 0, def, words, out);
}

rc_status rc_ini_str(rc_ini_section *s, const char *key, const char **out) {
    RC_ASSERT(out);
    rc_ini_kv *e = lookup(s, key);
    if (!e) return missing(s, key);
    *out = e->value;
    return RC_OK;
}

rc_status rc_ini_str_or(rc_ini_section *s, const char *key, const char *def, const char **out) {
    RC_ASSERT(out && def);
    rc_ini_kv *e = lookup(s, key);
    if (!e) {
        apply_default(s, key, def);
        e = &s->ini->kvs[s->keys[s->nkeys - 1]];
    }
    *out = e->value;
    return RC_OK;
}

/* "AxBxC": 1..max sizes separated by 'x', each [1, RC_INI_MAX_DIM]. Returns the count or -1. */
static int parse_dims(const char *v, int max, int *dims) {
    int n = 0;
    const char *c = v;
    for (;;) {
        if (n == max) return -1;
        int64_t acc = 0;
        const char *start = c;
        while (*c >= '0' && *c <= '9') {
            acc = acc * 10 + (*c - '0');
            if (acc > RC_INI_MAX_DIM) return -1;
            c++;
        }
        if (c == start || acc < 1) return -1;
        dims[n++] = (int)acc;
        if (*c == '\0') return n;
        if (*c != 'x') return -1;
        c++;
    }
}

static rc_status get_dims(rc_ini_section *s, const char *key, int required, const int *def, int def_ndim,
                          int min_ndim, int max_ndim, int *dims, int *ndim) {
    RC_ASSERT(dims && ndim && min_ndim >= 1 && min_ndim <= max_ndim && max_ndim <= RC_INI_MAX_DIMS);
    rc_ini_kv *e = lookup(s, key);
    if (!e) {
        if (required) return missing(s, key);
        RC_ASSERT(def && def_ndim >= min_ndim && def_ndim <= max_ndim);
        char tb[RC_INI_MAX_DIMS * 12];
        size_t k = 0;
        for (int i = 0; i < def_ndim; i++) {
            RC_ASSERT(def[i] >= 1 && def[i] <= RC_INI_MAX_DIM);
            k += (size_t)snprintf(tb + k, sizeof tb - k, "%s%d", i ? "x" : "", def[i]);
            dims[i] = def[i];
        }
        apply_default(s, key, tb);
        *ndim = def_ndim;
        return RC_OK;
    }
    int tmp[RC_INI_MAX_DIMS];
    int n = parse_dims(e->value, max_ndim, tmp);
    if (n < min_ndim) {
        char wb[1024], sb[64], cnt[32];
        if (min_ndim == max_ndim)
            snprintf(cnt, sizeof cnt, "%d", min_ndim);
        else
            snprintf(cnt, sizeof cnt, "%d to %d", min_ndim, max_ndim);
        return rc_fail("%s: %s = '%s' must be %s sizes in [1, %d] joined by 'x' (like 1x28x28) in %s",
                       kv_where(s->ini, e, wb, sizeof wb), key, snip(e->value, strlen(e->value), sb), cnt,
                       RC_INI_MAX_DIM, s->label);
    }
    memcpy(dims, tmp, (size_t)n * sizeof *dims);
    *ndim = n;
    return RC_OK;
}

rc_status rc_ini_dims(rc_ini_section *s, const char *key, int min_ndim, int max_ndim, int *dims, int *ndim) {
    return get_dims(s, key, 1, NULL, 0, min_ndim, max_ndim, dims, ndim);
}

rc_status rc_ini_dims_or(rc_ini_section *s, const char *key, const int *def, int def_ndim, int min_ndim,
                         int max_ndim, int *dims, int *ndim) {
    return get_dims(s, key, 0, def, def_ndim, min_ndim, max_ndim, dims, ndim);
}

/* ---- validation -------------------------------------------------------------------------------- */

rc_status rc_ini_check_sections(const rc_ini *ini, const char *const *known_types) {
    RC_ASSERT(known_types);
    for (int i = 0; i < ini->nsec; i++) {
        const rc_ini_section *s = ini->secs[i];
        int ok = 0;
        for (int k = 0; known_types[k] && !ok; k++) ok = strcmp(s->type, known_types[k]) == 0;
        if (ok) continue;
        char list[512], wb[1024];
        size_t k = 0;
        list[0] = '\0';
        for (int j = 0; known_types[j] && k < sizeof list; j++) {
            int w = snprintf(list + k, sizeof list - k, "%s[%s]", j ? ", " : "", known_types[j]);
            if (w < 0) break;
            k += (size_t)w;
        }
        return rc_fail("%s: unknown section type %s; known: %s", sec_where(s, wb, sizeof wb), s->label, list);
    }
    return RC_OK;
}

rc_status rc_ini_check_unused(const rc_ini *ini) {
    char wb[1024];
    for (int i = 0; i < ini->nsec; i++) {
        const rc_ini_section *s = ini->secs[i];
        if (!s->touched)
            return rc_fail("%s: section %s is never read (unknown, misplaced or repeated)",
                           sec_where(s, wb, sizeof wb), s->label);
        for (int k = 0; k < s->nkeys; k++) {
            const rc_ini_kv *e = &ini->kvs[s->keys[k]];
            if (!e->used)
                return rc_fail("%s: unknown key '%s' in %s", kv_where(ini, e, wb, sizeof wb), e->key, s->label);
        }
    }
    return RC_OK;
}

/* ---- defaults report --------------------------------------------------------------------------- */

int rc_ini_default_count(const rc_ini *ini) { return ini->ndef; }

void rc_ini_default_at(const rc_ini *ini, int i, const rc_ini_section **s, const char **key,
                       const char **value) {
    RC_ASSERT(i >= 0 && i < ini->ndef);
    const rc_ini_kv *e = &ini->kvs[ini->defaults[i]];
    if (s) *s = ini->secs[e->sec];
    if (key) *key = e->key;
    if (value) *value = e->value;
}

void rc_ini_print_defaults(const rc_ini *ini, FILE *f) {
    for (int i = 0; i < ini->ndef; i++) {
        const rc_ini_kv *e = &ini->kvs[ini->defaults[i]];
        fprintf(f, "using default %s %s = %s\n", ini->secs[e->sec]->label, e->key, e->value);
    }
}

/* ---- overrides --------------------------------------------------------------------------------- */

rc_status rc_ini_set(rc_ini *ini, const char *assignment) {
    RC_ASSERT(assignment);
    char ab[64];
    size_t alen = strlen(assignment);
    const char *what = snip(assignment, alen, ab);
    const char *eq = strchr(assignment, '=');
    if (!eq) return rc_fail("--set %s: expected SECTION.key=value", what);
    const char *lhs = assignment;
    size_t ln = (size_t)(eq - assignment);
    trim(&lhs, &ln);
    const char *dot = memchr(lhs, '.', ln);
    if (!dot || dot == lhs || dot + 1 == lhs + ln)
        return rc_fail("--set %s: expected SECTION.key=value or SECTION.NAME.key=value", what);
    size_t tn = (size_t)(dot - lhs);
    if (!all_chars(lhs, tn, is_type_char)) return rc_fail("--set %s: bad section type", what);
    char type[RC_INI_MAX_LINE + 1];
    if (tn > RC_INI_MAX_LINE) return rc_fail("--set %s: section type too long", what);
    memcpy(type, lhs, tn);
    type[tn] = '\0';
    const char *rest = dot + 1;
    size_t rn = ln - tn - 1;

    int count = rc_ini_count(ini, type);
    rc_ini_section *s = NULL;
    const char *key = rest;
    size_t kn = rn;
    const char *dot2 = memchr(rest, '.', rn);
    if (count == 0) return rc_fail("--set %s: there is no [%s] section in %s", what, type, ini->display);
    if (count == 1) {
        for (int i = 0; i < ini->nsec && !s; i++)
            if (strcmp(ini->secs[i]->type, type) == 0) s = ini->secs[i];
        size_t nn = strlen(s->name);
        if (nn && dot2 && (size_t)(dot2 - rest) == nn && memcmp(rest, s->name, nn) == 0) {
            key = dot2 + 1;
            kn = rn - nn - 1;
        }
    } else {
        if (!dot2) {
            char kb[64];
            return rc_fail("--set %s: ambiguous: %d [%s] sections; use %s.NAME.%s", what, count, type, type,
                           snip(rest, rn, kb));
        }
        size_t nn = (size_t)(dot2 - rest);
        char name[RC_INI_MAX_LINE + 1];
        if (nn > RC_INI_MAX_LINE) return rc_fail("--set %s: section name too long", what);
        memcpy(name, rest, nn);
        name[nn] = '\0';
        int idx = nn ? find_named(ini, type, name) : -1;
        if (idx < 0) {
            char nb[64];
            return rc_fail("--set %s: there is no [%s %s] section in %s (%d [%s] sections)", what, type,
                           snip(name, nn, nb), ini->display, count, type);
        }
        s = ini->secs[idx];
        key = dot2 + 1;
        kn = rn - nn - 1;
    }
    if (!all_chars(key, kn, is_key_char))
        return rc_fail("--set %s: bad key (keys use a-z, 0-9, '_', '.', '-')", what);
    const char *val = eq + 1;
    size_t vn = strlen(val);
    trim(&val, &vn);
    if (!valid_value(val, vn))
        return rc_fail("--set %s: the value may not hold line breaks or a '#' at its start or after a space",
                       what);
    if (kn + vn + 3 > RC_INI_MAX_LINE)
        return rc_fail("--set %s: the line would be longer than %d characters", what, RC_INI_MAX_LINE);
    int id = find_kv(ini, s->index, key, kn);
    if (id < 0) {
        id = add_kv(s, key, kn, val, vn, 0);
    } else {
        rc_ini_kv *e = &ini->kvs[id];
        ini->garbage = grow(ini->garbage, &ini->capgarbage, ini->ngarbage + 1, sizeof *ini->garbage);
        ini->garbage[ini->ngarbage++] = e->value;
        e->value = dup_n(val, vn);
        e->line = 0;
        if (e->from_default) {
            e->from_default = 0;
            int j = 0;
            for (int i = 0; i < ini->ndef; i++)
                if (ini->defaults[i] != id) ini->defaults[j++] = ini->defaults[i];
            ini->ndef = j;
        }
    }
    ini->kvs[id].from_set = 1;
    return RC_OK;
}

/* ---- serialisation ----------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} rc_ini_buf;

static void buf_put(rc_ini_buf *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + k + 1) c *= 2;
        b->p = rc_xrealloc(b->p, c);
        b->cap = c;
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
}

rc_status rc_ini_to_text(const rc_ini *ini, char **out, size_t *len) {
    RC_ASSERT(out);
    rc_ini_buf b = {NULL, 0, 0};
    buf_put(&b, "");
    for (int i = 0; i < ini->nsec; i++) {
        const rc_ini_section *s = ini->secs[i];
        if (i) buf_put(&b, "\n");
        buf_put(&b, s->label);
        buf_put(&b, "\n");
        for (int k = 0; k < s->nkeys; k++) {
            const rc_ini_kv *e = &ini->kvs[s->keys[k]];
            buf_put(&b, e->key);
            buf_put(&b, e->value[0] ? " = " : " =");
            buf_put(&b, e->value);
            buf_put(&b, "\n");
        }
    }
    *out = b.p;
    if (len) *len = b.n;
    return RC_OK;
}

int rc_ini_equal(const rc_ini *a, const rc_ini *b) {
    if (a->nsec != b->nsec) return 0;
    for (int i = 0; i < a->nsec; i++) {
        const rc_ini_section *x = a->secs[i], *y = b->secs[i];
        if (strcmp(x->type, y->type) || strcmp(x->name, y->name) || x->nkeys != y->nkeys) return 0;
        for (int k = 0; k < x->nkeys; k++) {
            const rc_ini_kv *p = &a->kvs[x->keys[k]], *q = &b->kvs[y->keys[k]];
            if (strcmp(p->key, q->key) || strcmp(p->value, q->value)) return 0;
        }
    }
    return 1;
}
