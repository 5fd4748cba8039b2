/*
 * The usage sampler (profile.c): rcgc_init and rcgc_shutdown's hooks.
 * The public calls are rcgc_profile_start / _stop / _is_running (rcgc.h).
 */
#ifndef RCGC_PROFILE_H
#define RCGC_PROFILE_H

#include "internal.h"

/* End of rcgc_init: start the sampler if RCGC_PROFILE (or
 * rcgc_config.profile) names a file. A file that cannot be opened prints
 * one line on stderr and leaves the sampler off; rcgc_init still succeeds.
 * Reads one string option when profiling is off. */
void rcgc__profile_init(void);

/* Start of rcgc_shutdown: stop a running sampler (final row written, file
 * closed). Nothing to do when none runs. */
void rcgc__profile_shutdown(void);

#endif
