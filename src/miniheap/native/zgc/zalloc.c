/*
 * zalloc.c: allocation for mutators.
 *
 * Small and medium objects are bumped into the mutators' current page of
 * their type (one for all mutators: only the thread holding the heap
 * allocates), large ones get a page each. A new object's reference has the
 * good colour of the moment; a page allocated during a cycle belongs to
 * that cycle (its seqnum), so marking treats its objects as live.
 *
 * When no page is free the mutator stalls, as a Java thread does in JDK 17
 * (an "Allocation Stall"): it lets go of the heap, asks the GC thread for a
 * cycle if none is coming, and waits until pages are freed. It fails with
 * MH_E_EXHAUSTED only when a cycle that started after the stall began has
 * completed and there is still no page. In stepping mode nobody else could
 * free memory, so the stalled mutator runs the cycles itself.
 */
#include "zgc.h"
#include "poison.h"
#include "safepoint.h"
#include "mutator.h"

void zalloc_retire_mutator_pages(zheap *z)
{
    z->mut_page[ZPAGE_SMALL] = z->mut_page[ZPAGE_MEDIUM] = NULL;
}

/* A page of this type for the mutators, bumped; UINT64_MAX if none is free. */
static uint64_t mutator_bump(zheap *z, int type, uint64_t size, bool *failed)
{
    if (type == ZPAGE_LARGE) {
        zpage *pg = zpage_alloc_mutator(z, ZPAGE_LARGE, size);
        if (!pg) {
            *failed = z->h->error == MH_E_COMMIT || z->h->error == MH_E_NO_MEMORY;
            return UINT64_MAX;
        }
        return zalloc_bump(z, pg, size);
    }
    uint64_t off = zalloc_bump(z, z->mut_page[type], size);
    if (off != UINT64_MAX)
        return off;
    zpage *pg = zpage_alloc_mutator(z, type, size);
    if (!pg) {
        *failed = z->h->error == MH_E_COMMIT || z->h->error == MH_E_NO_MEMORY;
        return UINT64_MAX;
    }
    z->mut_page[type] = pg;
    return zalloc_bump(z, pg, size);
}

uint64_t zalloc_mutator_nonblocking(zheap *z, uint64_t size)
{
    bool failed = false;
    int saved = z->h->error;
    uint64_t off = mutator_bump(z, zpage_type_for(&z->pages, size), size, &failed);
    z->h->error = saved; /* a failed copy is not the caller's error: it waits instead */
    return off;
}

static void exhausted(mh_heap *h, int type, uint64_t size)
{
    zheap *z = h->z;
    zpages *p = &z->pages;
    uint32_t nfree, longest;
    zpages_free_runs(z, &nfree, &longest);
    uint32_t need = type == ZPAGE_SMALL ? 1 : type == ZPAGE_MEDIUM ? p->medium_granules
                    : (uint32_t)((size + p->granule - 1) >> p->granule_shift);
    if (type != ZPAGE_SMALL && nfree >= need) {
        /* enough free granules, none contiguous enough: the page needs a run of them (the JDK
         * maps any free granules behind a fresh virtual range; miniheap maps the heap once) */
        heap_error(h, MH_E_EXHAUSTED,
                   "heap exhausted: %llu bytes requested, a %s page of %u contiguous granules of "
                   "%llu bytes; after a complete zgc cycle %u granules are free but the longest run "
                   "of them is %u (free space is scattered between pages, and a page here needs "
                   "contiguous granules, docs/collector.md 7.6); raise heap_size or allocate "
                   "smaller objects",
                   (unsigned long long)size, type == ZPAGE_MEDIUM ? "medium" : "large", need,
                   (unsigned long long)p->granule, nfree, longest);
        return;
    }
    heap_error(h, MH_E_EXHAUSTED,
               "heap exhausted: %llu bytes requested, heap %llu bytes, %llu bytes in pages after "
               "a complete zgc cycle (live %llu bytes at its Mark End); release references to "
               "objects you no longer need or raise heap_size",
               (unsigned long long)size, (unsigned long long)h->heap_size,
               (unsigned long long)__atomic_load_n(&z->pages.used, __ATOMIC_RELAXED),
               (unsigned long long)z->last_live);
}

/* Wait for memory with the heap let go of. Returns whether a cycle that
 * started after `since` (a cycles_started count) has completed. */
static bool stall_wait(mh_heap *h, uint64_t since)
{
    zheap *z = h->z;
    heap_hold saved = heap_let_go(h);
    pthread_mutex_lock(&z->ctl_lock);
    if (z->cycles_started <= since && z->requested_cause < 0)
        z->requested_cause = MH_CAUSE_ALLOCATION_STALL;
    pthread_cond_broadcast(&z->ctl_cond);
    uint64_t freed = z->memory_freed;
    while (z->memory_freed == freed && z->cycles_completed <= since && !z->stop)
        pthread_cond_wait(&z->ctl_cond, &z->ctl_lock);
    bool done = z->cycles_completed > since;
    pthread_mutex_unlock(&z->ctl_lock);
    heap_take_back(h, saved);
    return done;
}

static uint64_t alloc_stalled(mh_heap *h, int type, uint64_t size)
{
    zheap *z = h->z;
    uint64_t t0 = clock_ns();
    uint64_t off = UINT64_MAX;
    bool failed = false;
    if (z->stepping) {
        /* finish a cycle the caller left half done, then run a whole one */
        for (int round = 0; round < 2 && off == UINT64_MAX && !failed; round++) {
            if (round == 1 || !z->cycle_active)
                zdriver_cycle(z, MH_CAUSE_ALLOCATION_STALL);
            else
                zdriver_finish(z);
            off = mutator_bump(z, type, size, &failed);
        }
    } else {
        pthread_mutex_lock(&z->ctl_lock);
        /* the cycle that counts must start after now: the one running (if
         * any) may have chosen its relocation set before this need existed */
        uint64_t since = z->cycles_started;
        pthread_mutex_unlock(&z->ctl_lock);
        for (;;) {
            bool completed = stall_wait(h, since);
            if (!heap_still_open(h))
                return UINT64_MAX; /* closed while this thread waited: nothing of it is left */
            off = mutator_bump(z, type, size, &failed);
            if (off != UINT64_MAX || failed || completed || z->stop)
                break;
        }
    }
    uint64_t ns = clock_ns() - t0;
    h->stats.allocation_stalls++;
    h->stats.allocation_stall_ns += ns;
    if (ns > h->stats.max_allocation_stall_ns)
        h->stats.max_allocation_stall_ns = ns;
    mh_gc_event ev = {.kind = MH_GC_ALLOCATION_STALL, .collector = MH_COLLECTOR_ZGC,
                      .ns_total = ns, .start_ns = t0, .capacity = h->heap_size,
                      .used_before = size};
    heap_event_post(h, &ev);
    if (off == UINT64_MAX && !failed)
        exhausted(h, type, size);
    return off;
}

/* The shape is allowed and could ever fit (the error says why not). */
static bool zalloc_check(mh_heap *h, uint32_t nrefs, uint64_t size)
{
    zheap *z = h->z;
    if (MH_UNLIKELY(nrefs > OBJ_MAX_NREFS)) {
        heap_error(h, MH_E_TOO_LARGE, "an object may have at most %u reference slots, %u were "
                   "requested; split it into several objects", OBJ_MAX_NREFS, nrefs);
        return false;
    }
    uint64_t most = h->heap_size - z->pages.granule * (z->pages.reserve_small +
                    z->pages.reserve_medium * z->pages.medium_granules);
    if (MH_UNLIKELY(size > most)) {
        heap_error(h, MH_E_TOO_LARGE, "an object of %llu bytes (%u slots) can never fit: the "
                   "largest object is the heap less the relocation reserve, %llu bytes; raise "
                   "heap_size or allocate smaller objects", (unsigned long long)size, nrefs,
                   (unsigned long long)most);
        return false;
    }
    return true;
}

/* Place and initialise an object: its offset, or UINT64_MAX (error set). */
static uint64_t zalloc_place(mh_heap *h, uint32_t nrefs, uint32_t nbytes, uint64_t size)
{
    zheap *z = h->z;
    int type = zpage_type_for(&z->pages, size);
    uint64_t off;
    if (MH_LIKELY(type == ZPAGE_SMALL && (off = zalloc_bump(z, z->mut_page[ZPAGE_SMALL], size)) != UINT64_MAX)) {
        /* the fast path: the current small page had room */
    } else {
        heap_poll(h); /* an allocation's slow path is a safepoint */
        if (!heap_still_open(h))
            return UINT64_MAX;
        bool failed = false;
        off = mutator_bump(z, type, size, &failed);
        if (off == UINT64_MAX) {
            if (failed)
                return UINT64_MAX;
            off = alloc_stalled(h, type, size);
            if (off == UINT64_MAX)
                return UINT64_MAX;
        }
    }
    obj_init(heap_addr(h, off), nrefs, nbytes, 0);
    h->bytes_retired += size;
    return off;
}

uint64_t zalloc_object(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    uint64_t size = obj_size_for(nrefs, nbytes);
    return zalloc_check(h, nrefs, size) ? zalloc_place(h, nrefs, nbytes, size) : UINT64_MAX;
}

mh_handle zalloc(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    uint64_t size = obj_size_for(nrefs, nbytes);
    if (!zalloc_check(h, nrefs, size) || !handle_available(h))
        return MH_ERROR;
    uint64_t off = zalloc_place(h, nrefs, nbytes, size);
    if (off == UINT64_MAX)
        return MH_ERROR;
    h->stats.objects_allocated++;
    return handle_new(h, zgood(h, off));
}

/* ---- mutator records (core/mutator.c) ---------------------------------- */

/* An attached record bumps the mutators' small page inline. Multi-mapped, its
 * addresses are in the view of the good colour, so that an object's address is
 * its reference (ref_bits 0, no shift); with the colour in the low bits, its
 * addresses are in the one view and a reference is address << 16 | the good
 * colour's bit (ref_bits). At every flip of the good colour the record is out
 * of the way (it handed its pointer back before stopping) and gets the page
 * again in the new view, or with the new colour bit. While a pause is pending,
 * limit stays 0. */
void zmutators_in(mh_heap *h)
{
    zheap *z = h->z;
    zpage *pg = z->mut_page[ZPAGE_SMALL];
    uint64_t base = views_alloc_base(&h->views);
    for (mh_mutator *m = h->mutators; m; m = m->next) {
        if (!pg || m->top < base + pg->start || m->top > base + pg->start + pg->size)
            continue; /* no page, or handed out before the page changed */
        uint64_t top = m->top - base;
        if (top > pg->top) {
            h->bytes_retired += top - pg->top;
            __atomic_store_n(&pg->top, top, __ATOMIC_RELEASE);
        }
    }
}

void zmutators_out(mh_heap *h)
{
    zheap *z = h->z;
    zpage *pg = z->mut_page[ZPAGE_SMALL];
    uint64_t base = views_alloc_base(&h->views);
    pthread_mutex_lock(&h->sp_lock);
    bool pausing = __atomic_load_n(&h->attention, __ATOMIC_ACQUIRE) & MH_ATTN_SAFEPOINT;
    for (mh_mutator *m = h->mutators; m; m = m->next) {
        m->top = pg ? base + pg->top : 0;
        uint64_t limit = pg && !pausing && !mutator_forced_slow(m) ? base + pg->start + pg->size : 0;
        __atomic_store_n(&m->limit, limit, __ATOMIC_RELAXED);
        /* mh_new: ref = ((top - addr_base) << addr_shift) | ref_bits; mh_obj the reverse,
         * ref_addr's decode (color.h) */
        m->ref_bits = h->views.colored == MH_VIEWS_LOW_BITS ? h->views.color_bit[h->views.good] : 0;
        m->bad_mask = h->views.bad_mask;
        m->addr_base = 0;
        m->addr_shift = h->views.shift;
        m->card_base = 0;
        m->card_from = UINT64_MAX; /* no write barrier */
    }
    pthread_mutex_unlock(&h->sp_lock);
}
