/*
 * zviews.c: verify-views, HotSpot's -XX:+ZVerifyViews (a diagnostic flag of
 * the multi-mapped ZGC, e.g. JDK 17's): only the good colour's view of the heap is accessible.
 *
 * A reference whose colour is not the good one must go through the load
 * barrier before it is used: the barrier marks, relocates or remaps, and
 * heals the field. Code that skips the barrier (a missing barrier in a JIT,
 * a raw pointer kept across a flip) works by accident with three views
 * mapped, since every colour's view reaches the same memory, and reads
 * whatever the old address holds: an object's stale copy, or a page reused
 * for something else. With the bad views closed it faults on the spot.
 *
 * How it differs from the JDK: HotSpot unmaps every page from all views
 * before a flip and maps the pages back into the good view only after it
 * (ZHeap::before_flip / after_flip); an unmapped range shows as the
 * reservation's anonymous ---p in /proc/PID/maps. Here each view stays
 * mapped and its protection changes (mprotect): the view's line reads ---s
 * between flips, its page tables are kept (RSS does not drop), and a flip
 * costs two calls whatever the heap's size. What gets protected is the whole
 * view, heap_size bytes from its base, committed or not: the embedder maps
 * every view whole (miniheap's layouts do), so one call per view keeps each
 * view one mapping and covers granules committed later too. Only an
 * embedder whose commit callback changes protections could open a bad view
 * again: after each commit the two bad views are closed over the new range
 * (a no-op for miniheap's backends, whose commit leaves the views alone).
 *
 * Who calls what, and when: the core never calls the kernel; it calls the
 * embedder's protect hook (mh_config.protect, libc's mprotect in practice),
 * which is plain C and safe on any thread, so the GC thread can flip. Flips
 * happen in pauses (Mark Start, Relocate Start), with every mutator stopped
 * and its roots about to be recoloured; commits happen on a mutator holding
 * the heap. So nothing reads the heap through a view while its protection
 * changes, except the pause itself, which opens the new good view before it
 * makes that colour good and closes the old one after.
 *
 * A failed call is counted (stats.view_protect_failures) and reported by
 * mh_verify. The collector keeps walking through a view it managed to open,
 * so a failure cannot make the collector itself fault.
 */
#include <stdio.h>
#include "zgc.h"

static void protect(mh_heap *h, int color, uint64_t offset, uint64_t length, int prot)
{
    uint64_t t0 = clock_ns();
    int rc = h->config.protect((void *)(uintptr_t)(h->views.base[color] + offset), (size_t)length, prot);
    h->stats.view_protect_ns += clock_ns() - t0;
    h->stats.view_protects++;
    if (rc != 0 && h->stats.view_protect_failures++ == 0) {
        zheap *z = h->z;
        snprintf(z->views_failure, sizeof z->views_failure,
                 "verify_views: the protect hook failed to make [0x%llx, 0x%llx) of the %s view %s; "
                 "that view's protection is not what verify-views promises",
                 (unsigned long long)(h->views.base[color] + offset),
                 (unsigned long long)(h->views.base[color] + offset + length),
                 color == MH_COLOR_MARKED0 ? "Marked0" : color == MH_COLOR_MARKED1 ? "Marked1" : "Remapped",
                 prot == MH_PROT_NONE ? "inaccessible" : "accessible");
    }
}

static bool open_view(mh_heap *h, int color)
{
    uint64_t failures = h->stats.view_protect_failures;
    protect(h, color, 0, h->heap_size, MH_PROT_READ_WRITE);
    return h->stats.view_protect_failures == failures;
}

void zviews_init(zheap *z)
{
    mh_heap *h = z->h;
    if (!h->views.verify)
        return;
    int good = h->views.good;
    if (!open_view(h, good))
        h->views.access = MH_COLOR_REMAPPED; /* nothing better to walk through */
    for (int c = 0; c < 3; c++)
        if (c != good)
            protect(h, c, 0, h->heap_size, MH_PROT_NONE);
}

void zviews_flip(zheap *z, int color)
{
    mh_heap *h = z->h;
    int old = h->views.good, old_access = h->views.access;
    if (!h->views.verify || color == old) {
        views_set_good(&h->views, color);
        return;
    }
    bool opened = open_view(h, color);
    views_set_good(&h->views, color);
    if (!opened) {
        h->views.access = old_access; /* still open: walk through it */
        return;
    }
    protect(h, old, 0, h->heap_size, MH_PROT_NONE);
}

void zviews_committed(zheap *z, uint64_t offset, uint64_t length)
{
    mh_heap *h = z->h;
    if (!h->views.verify)
        return;
    for (int c = 0; c < 3; c++)
        if (c != h->views.good && c != h->views.access)
            protect(h, c, offset, length, MH_PROT_NONE);
}

int zviews_verify(mh_heap *h, char *message, size_t len)
{
    if (!h->views.verify || !h->stats.view_protect_failures)
        return 0;
    snprintf(message, len, "%s (%llu failed protect calls)", h->z->views_failure,
             (unsigned long long)h->stats.view_protect_failures);
    return 1;
}
