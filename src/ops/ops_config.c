/* ops_config.c — the global switch between fast paths (OpenMP, vectorised, oneDNN) and the plain
 * reference implementations of every op. Tests flip it to compare the two. */
#include "ops.h"

int rc_ops_fast = 1;
