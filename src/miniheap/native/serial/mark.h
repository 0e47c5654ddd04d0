/*
 * mark.h: marking for the full collection.
 *
 * An off-heap bitmap, one bit per 8-byte heap word, set at object starts.
 * Marking also heals: in coloured mode every reference it visits is given
 * the new marking colour (after being forwarded if it predates the last
 * evacuation), so once marking ends no live object refers through the
 * previous cycle's forwarding tables, and they can be dropped.
 */
#ifndef MH_MARK_H
#define MH_MARK_H

#include "internal.h"

int mark_init(mh_heap *h);
void mark_free(mh_heap *h);
void mark_clear(mh_heap *h);
bool mark_test(const mh_heap *h, uint64_t offset);
/* Mark everything reachable from the handles; fills per-region live data. */
void mark_roots(mh_heap *h);
void mark_drain(mh_heap *h);
/* The marking of a full collection (full.c): live data per region, colours healed. */
void full_mark(mh_heap *h);
/* Push a reference on the mark stack; when it cannot grow, mark_overflow is
 * set instead (the young collection queues objects that failed promotion here too). */
void mark_push(mh_heap *h, mh_ref ref);

#endif
