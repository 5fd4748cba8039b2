/*
 * Object graphs (objgraph.c): internal entry points for the other layers.
 */
#ifndef RCGC_OBJGRAPH_H
#define RCGC_OBJGRAPH_H

#include "internal.h"

/* rcgc_shutdown (from the collector's shutdown, attached or not): free the
 * root marks (weak references, which must go before the heaps) and
 * growth's reference counts. No other thread may be attached. */
void rcgc__objgraph_shutdown(void);

#endif
