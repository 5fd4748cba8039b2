/*
 * RCGC_DEBUG reports (debug.c), called by rcgc_init and rcgc_shutdown
 * under the lifecycle lock.
 */
#ifndef RCGC_DEBUG_H
#define RCGC_DEBUG_H

void rcgc__debug_init(void);            /* parse RCGC_DEBUG; saveall from the start */
void rcgc__debug_before_shutdown(void); /* leaks: collect, then report what is left */
void rcgc__debug_after_collection(void);  /* stats: after the final collection */

#endif /* RCGC_DEBUG_H */
