/*
 * zstep.h: driving a zgc cycle one phase, or one piece of a phase, at a time.
 *
 * The GC thread runs a cycle with these same functions (zdriver.c); a heap
 * made with mh_config.stepping = 1 has no GC thread, and a test calls them
 * itself, doing mutator operations (mh_load, mh_store, mh_alloc, ...) in
 * between, to produce exactly the interleaving it wants to check. The pauses
 * then run on the test's thread, which is the only mutator.
 *
 *   zstep_mark_start(h, cause)       begins a cycle: Pause Mark Start
 *   zstep_mark(h, n)                 Concurrent Mark: trace up to n objects
 *                                    (0: all it can see); true if work remains
 *   zstep_mark_end(h)                Pause Mark End: true if marking is over;
 *                                    false: more to trace (Mark Continue)
 *   zstep_select(h)                  Mark Free, Reset and Select Relocation Set
 *   zstep_relocate_start(h)          Pause Relocate Start
 *   zstep_relocate(h, n)             Concurrent Relocate: up to n objects
 *   zstep_cycle_end(h)               the end of the cycle: its event is posted
 *   zstep_finish(h)                  whatever remains of the cycle
 *
 * Not part of the embedding API: tests include this header directly.
 */
#ifndef MH_ZGC_STEP_H
#define MH_ZGC_STEP_H

#include "miniheap.h"

void zstep_mark_start(mh_heap *h, int cause);
int zstep_mark(mh_heap *h, uint64_t budget);
int zstep_mark_end(mh_heap *h);
void zstep_select(mh_heap *h);
void zstep_relocate_start(mh_heap *h);
int zstep_relocate(mh_heap *h, uint64_t budget);
void zstep_cycle_end(mh_heap *h);
void zstep_finish(mh_heap *h);

/* Test hooks: called by an object's relocation between its copy and the
 * forwarding entry's compare-and-swap (worker 0: GC, 1: mutator). */
void zstep_set_copy_hook(mh_heap *h, void (*hook)(mh_heap *h, int worker, uint64_t from,
                                                  uint64_t to, void *arg), void *arg);
/* What the tests look at: the phase (0 mark, 1 mark completed, 2 relocate),
 * whether the page holding off is in the relocation set, the forwarding of
 * an object (UINT64_MAX if none), and whether an object is marked. */
int zstep_phase(mh_heap *h);
int zstep_in_relocation_set(mh_heap *h, uint64_t off);
uint64_t zstep_forwarding(mh_heap *h, uint64_t off);
int zstep_is_marked(mh_heap *h, uint64_t off);
/* Relocate one object as the GC thread would (its target page). */
uint64_t zstep_relocate_object(mh_heap *h, uint64_t off);

#endif
