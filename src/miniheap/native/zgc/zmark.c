/*
 * zmark.c: marking, concurrent with the mutators.
 *
 * Pause Mark Start flips the marking colour (Marked0 <-> Marked1), which
 * makes every reference in the heap stale at once, and marks the objects
 * the roots refer to. From then on an object is reached in one of two ways,
 * and both mark it:
 *   - the GC thread traces it: every field of a marked object is loaded, a
 *     stale reference is remapped and healed, and its object marked;
 *   - a mutator loads a reference to it: the load barrier sees the stale
 *     colour, marks the object and pushes it for the GC thread to trace
 *     (zmark_barrier).
 * A mutator can only reach an object through a load (or a root, marked at
 * Mark Start, or a new object, live without marking), so no object it can
 * still use goes unmarked: that is the whole argument for concurrent
 * marking with a load barrier, and the test that removes the barrier's
 * mark duty shows what happens otherwise.
 *
 * References carrying the last cycle's marking colour may still point at
 * objects the last cycle relocated: marking remaps them through its
 * forwarding tables (kept until this marking ends), then recolours.
 */
#include <stdlib.h>
#include "zgc.h"
#include "barrier.h"
#include "mutator.h"

bool zmark_is_live(const zheap *z, uint64_t off)
{
    zpage *pg = zpage_of(&z->pages, off);
    if (!pg)
        return false;
    return pg->seqnum == z->seqnum || livemap_test_page(pg, off);
}

bool zmark_object(zheap *z, uint64_t off)
{
    zpage *pg = zpage_of(&z->pages, off);
    /* allocated since Mark Start: live, and refers only to marked or new objects */
    if (!pg || pg->seqnum == z->seqnum)
        return false;
    if (!livemap_set(pg, off))
        return false;
    mh_object *o = heap_addr(z->h, off);
    __atomic_add_fetch(&pg->live_bytes, obj_size(o), __ATOMIC_RELAXED);
    __atomic_add_fetch(&pg->live_objects, 1, __ATOMIC_RELAXED);
    return true;
}

mh_ref zmark_remap(zheap *z, mh_ref stale)
{
    uint64_t off = zoff(z->h, stale);
#ifndef MH_TEST_NO_REMAP
    if (ref_color(&z->h->views, stale) == z->prev_mark_color) {
        zforwarding *f = zforwarding_of(z, off);
        if (f) {
            uint64_t to = zforwarding_find(f, off);
            if (to != UINT64_MAX)
                off = to;
        }
    }
#endif
    return zgood(z->h, off);
}

static void push_gc(zheap *z, uint64_t off)
{
    if (!zstack_push(&z->gc_stack, off))
        __atomic_store_n(&z->mark_overflow, 1, __ATOMIC_RELAXED);
}

/* A mutator's share: mark, and hand the object to the GC thread to trace. */
mh_ref zmark_barrier(zheap *z, mh_ref stale)
{
    mh_ref good = zmark_remap(z, stale);
#ifndef MH_TEST_NO_MARK_BARRIER
    uint64_t off = zoff(z->h, good);
    if (zmark_object(z, off)) {
        __atomic_add_fetch(&z->mut_marked, 1, __ATOMIC_RELAXED);
        if (!zstack_push(&z->mut_stack, off))
            __atomic_store_n(&z->mark_overflow, 1, __ATOMIC_RELAXED);
        if (z->mut_stack.top >= ZMARK_PUBLISH_AT && !zpublish(&z->published, &z->mut_stack))
            __atomic_store_n(&z->mark_overflow, 1, __ATOMIC_RELAXED);
    }
#endif
    return good;
}

/* Heal a field only if it still holds what was read: a mutator may have
 * stored something else meanwhile, and that must win. */
static inline void heal(mh_ref *field, mh_ref old, mh_ref good)
{
    __atomic_compare_exchange_n(field, &old, good, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

static void trace_object(zheap *z, uint64_t off)
{
    mh_heap *h = z->h;
    mh_object *o = heap_addr(h, off);
    mh_ref *slots = obj_slots(o);
    for (uint32_t i = 0, n = obj_nrefs(o); i < n; i++) {
        mh_ref v = field_load(&slots[i]);
        if (!v)
            continue;
        mh_ref good = v;
        if (ref_is_stale(&h->views, v)) {
            good = zmark_remap(z, v);
            heal(&slots[i], v, good);
        }
        /* through good references too: cheap, and marking stays right even
         * if a good reference reached a field some other way */
        uint64_t to = zoff(h, good);
        if (zmark_object(z, to))
            push_gc(z, to);
    }
    z->cycle.objects_marked++;
}

static void mark_root(zheap *z, mh_ref *root)
{
    mh_heap *h = z->h;
    mh_ref v = *root;
    if (!v)
        return;
    mh_ref good = ref_is_stale(&h->views, v) ? zmark_remap(z, v) : v;
    *root = good;
    uint64_t off = zoff(h, good);
    if (zmark_object(z, off))
        push_gc(z, off);
}

/* The roots: the handle table and every attached mutator record's shadow
 * stack (the pause holds the heap: neither changes meanwhile). */
void zmark_start_roots(zheap *z)
{
    mh_heap *h = z->h;
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            mark_root(z, &h->handles[i]);
    for (mh_mutator *m = h->mutators; m; m = m->next)
        for (uint32_t i = 0; i < m->nroots; i++)
            mark_root(z, &m->roots[i]);
}

/* After a lost push: trace every marked object again (tracing is
 * idempotent), directly, so a full stack cannot lose work twice. Each
 * round marks at least the object whose push was lost, so it ends. */
static void rescan(zheap *z)
{
    uint32_t n;
    zpage **pages = zpages_snapshot(z, &n);
    if (!pages) {
        __atomic_store_n(&z->mark_overflow, 1, __ATOMIC_RELAXED);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        zpage *pg = pages[i];
        if (pg->seqnum == z->seqnum)
            continue;
        for (uint64_t off = pg->start, top = zpage_top(pg); off < top;) {
            mh_object *o = heap_addr(z->h, off);
            uint64_t size = obj_size(o);
            if (livemap_test_page(pg, off))
                trace_object(z, off);
            off += size;
        }
    }
    free(pages);
}

bool zmark_drain(zheap *z, uint64_t budget)
{
    uint64_t done = 0, off;
    for (;;) {
        while ((budget == 0 || done < budget) && zstack_pop(&z->gc_stack, &off)) {
            trace_object(z, off);
            done++;
        }
        if (budget && done >= budget)
            return z->gc_stack.top > 0 || !zpublished_empty(&z->published) ||
                   __atomic_load_n(&z->mark_overflow, __ATOMIC_RELAXED);
        if (zpublished_take(&z->published, &z->gc_stack))
            continue;
        if (__atomic_exchange_n(&z->mark_overflow, 0, __ATOMIC_RELAXED)) {
            rescan(z);
            continue;
        }
        return false;
    }
}

bool zmark_try_end(zheap *z)
{
    z->cycle.mark_ends++;
    /* what the mutators marked and did not hand over yet */
    uint64_t off;
    while (zstack_pop(&z->mut_stack, &off))
        push_gc(z, off);
    return z->gc_stack.top == 0 && zpublished_empty(&z->published) &&
           !__atomic_load_n(&z->mark_overflow, __ATOMIC_RELAXED);
}

void zmark_free_stacks(zheap *z)
{
    uint64_t bytes = z->gc_stack.cap * sizeof(uint64_t) + z->published.bytes_high;
    if (bytes > z->cycle.mark_stack_bytes)
        z->cycle.mark_stack_bytes = bytes;
    z->published.bytes_high = 0;
    zstack_shrink(&z->gc_stack);
}
