/*
 * Safepoints, blocking regions and stop-the-world (safepoint.c).
 */
#ifndef RCGC_SAFEPOINT_H
#define RCGC_SAFEPOINT_H

#include "thread.h"

/* Stop every other attached thread at a safepoint (or in a blocking
 * region). The caller must be attached; it stays attached. Pauses do not
 * nest; a second requester waits its turn (in a blocking region). While
 * the world is stopped no thread attaches or detaches. */
void rcgc__stop_the_world(void);
void rcgc__start_the_world(void);
int  rcgc__world_stopped_by_me(void);

/* Attach / detach transitions used by thread.c. */
void rcgc__safepoint_thread_init(rcgc_thread *t);
void rcgc__safepoint_go_detached(rcgc_thread *t);   /* ATTACHED -> DETACHED */
void rcgc__safepoint_go_attached(rcgc_thread *t);   /* DETACHED -> ATTACHED, waits for a pause */

/* Pause statistics. */
typedef struct {
    uint64_t pauses;
    uint64_t ttsp_max_ns, ttsp_p50_ns, ttsp_p99_ns;   /* time to safepoint */
    uint64_t pause_max_ns, pause_total_ns;            /* stopped time */
    uint64_t watchdog_reports;
} rcgc_pause_stats;
void rcgc__pause_stats(rcgc_pause_stats *out);
void rcgc__pause_stats_reset(void);

#endif
