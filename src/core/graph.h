/* graph.h — the static unrolled graph, all of it: building (graph_build.h) < planning (graph_plan.h) <
 * running (graph_exec.h), each layer's header including only the one below. Models, training and the
 * CLI include this one; the graph's own files include their layer's header. */
#ifndef RC_GRAPH_H
#define RC_GRAPH_H

#include "graph_exec.h"

#endif
