/* test_cli_parse.c — tests for the subcommands' option parser (src/cli/cli.c, rc_cli_parse): --opt=value
 * and --opt value, the --batch-size alias, shorthands kept in order with --set, integer and range checks,
 * flags that refuse a value, missing values, unknown options, positional arguments and --help. */
#include "cli/cli.c" /* first: it sets _POSIX_C_SOURCE */

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

typedef struct {
    const char *out, *cfg;
    long batch, threads;
    double lr;
    int quiet;
    rc_cli_sets sets;
} parsed;

/* Parse the NULL-terminated words after the command name. */
static int parse(parsed *p, const char *const *words) {
    memset(p, 0, sizeof *p);
    p->lr = 0.5;
    char *argv[32];
    int argc = 0;
    argv[argc++] = "cmd";
    for (int i = 0; words[i]; i++) argv[argc++] = (char *)words[i];
    const rc_cli_opt opts[] = {RC_OPT_STR("--out", &p->out, "a directory"),
                               RC_OPT_INT("--batch", &p->batch, 1, 100),
                               RC_OPT_DOUBLE("--lr", &p->lr, 0, 10),
                               RC_OPT_FLAG("--quiet", &p->quiet),
                               RC_OPT_KEY("--epochs", "train.epochs"),
                               RC_OPT_KEY_INT("--threads", "train.threads", &p->threads, 0, 8),
                               RC_OPT_SET,
                               RC_OPT_END};
    /* the help text and the usage errors go to /dev/null */
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    int rc = rc_cli_parse("cmd", "help text\n", argc, argv, opts, &p->cfg, &p->sets);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    close(null);
    return rc;
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_values(void) {
    parsed p;
    CHECK(parse(&p, WORDS("a.cfg", "--out=d1", "--batch", "7", "--lr=0.25", "--quiet")) == -1, "parse");
    CHECK(p.cfg && !strcmp(p.cfg, "a.cfg") && p.out && !strcmp(p.out, "d1"), "strings");
    CHECK(p.batch == 7 && p.lr == 0.25 && p.quiet == 1, "values %ld %g %d", p.batch, p.lr, p.quiet);
    CHECK(parse(&p, WORDS("--batch-size=9")) == -1 && p.batch == 9, "alias --batch-size=");
    CHECK(parse(&p, WORDS("--batch-size", "11")) == -1 && p.batch == 11, "alias --batch-size");
    CHECK(parse(&p, WORDS("--out=a=b")) == -1 && !strcmp(p.out, "a=b"), "value with '='");
    CHECK(parse(&p, WORDS("--out=")) == -1 && !strcmp(p.out, ""), "empty value");
}

static void test_sets(void) {
    parsed p;
    CHECK(parse(&p, WORDS("--set", "model.loss=final", "--epochs=3", "--threads", "2", "--set=a.b=c")) == -1,
          "parse");
    CHECK(p.sets.n == 4, "n %d", p.sets.n);
    if (p.sets.n == 4) {
        CHECK(!strcmp(p.sets.v[0], "model.loss=final") && !strcmp(p.sets.v[1], "train.epochs=3") &&
                  !strcmp(p.sets.v[2], "train.threads=2") && !strcmp(p.sets.v[3], "a.b=c"),
              "order: %s %s %s %s", p.sets.v[0], p.sets.v[1], p.sets.v[2], p.sets.v[3]);
        CHECK(!strcmp(p.sets.from[2]->name, "--threads") && p.sets.from[0]->kind == RC_ARG_SET, "from");
    }
    CHECK(p.threads == 2, "threads %ld", p.threads);
}

static void test_errors(void) {
    parsed p;
    CHECK(parse(&p, WORDS("--bogus")) == 2, "unknown option");
    CHECK(parse(&p, WORDS("--bogus=1")) == 2, "unknown option with a value");
    CHECK(parse(&p, WORDS("a", "b")) == 2, "two positionals");
    CHECK(parse(&p, WORDS("--out")) == 2, "missing string value");
    CHECK(parse(&p, WORDS("--set")) == 2, "missing --set value");
    CHECK(parse(&p, WORDS("--epochs")) == 2, "missing shorthand value");
    CHECK(parse(&p, WORDS("--quiet=1")) == 2 && p.quiet == 0, "a flag with a value");
    CHECK(parse(&p, WORDS("--batch", "x")) == 1 && strstr(rc_error(), "--batch: 'x' is not an integer"),
          "not an integer: %s", rc_error());
    CHECK(parse(&p, WORDS("--batch-size=0")) == 1 && strstr(rc_error(), "--batch-size: 0 is out of range 1..100"),
          "range names the option as typed: %s", rc_error());
    CHECK(parse(&p, WORDS("--lr", "nan")) == 1 && strstr(rc_error(), "--lr: 'nan' is not a number"), "nan: %s",
          rc_error());
    CHECK(parse(&p, WORDS("--batch")) == 1 && strstr(rc_error(), "--batch needs a value"), "missing int: %s",
          rc_error());
    CHECK(parse(&p, WORDS("--threads", "9")) == 1 && strstr(rc_error(), "--threads: 9 is out of range 0..8"),
          "shorthand range: %s", rc_error());
    CHECK(parse(&p, WORDS("--out", "x", "--help", "--bogus")) == 0, "--help");
    CHECK(parse(&p, WORDS("-h")) == 0, "-h");
    CHECK(parse(&p, WORDS("--out", "-h")) == -1 && !strcmp(p.out, "-h"), "-h as a value");
}

int main(void) {
    RUN_TEST(test_values);
    RUN_TEST(test_sets);
    RUN_TEST(test_errors);
    TEST_MAIN_END();
}
