/*
 * zrelocate.c: Pause Relocate Start and Concurrent Relocate.
 *
 * Relocate Start makes Remapped the good colour, so every reference in the
 * heap (all of the marking colour now) is stale, and moves what the roots
 * refer to. Then the GC thread copies the live objects of each page of the
 * relocation set into target pages of its own, and frees the page. Until
 * it has, a mutator that loads a reference into the page does the copy
 * itself, into its own allocation page ("relocate or remap",
 * zrelocate_or_remap): whoever installs the forwarding entry first (one
 * compare-and-swap) owns the object, and the other undoes its copy. A
 * mutator that finds no page for its copy waits for the GC thread to finish
 * the page (a Relocation Stall, as the JDK logs it); a reference whose
 * object is already forwarded is just remapped.
 *
 * Stale references left in the heap are healed by the loads that meet them,
 * or by the next cycle's marking, which remaps them through the tables
 * kept until then.
 */
#include <sched.h>
#include <stdlib.h>
#include "zgc.h"
#include "poison.h"
#include "safepoint.h"
#include "mutator.h"

/* Bump-allocate in a page this thread owns: UINT64_MAX if it does not fit. */
uint64_t zalloc_bump(zheap *z, zpage *page, uint64_t size)
{
    if (!page)
        return UINT64_MAX;
    uint64_t top = page->top;
    if (size > page->start + page->size - top)
        return UINT64_MAX;
    __atomic_store_n(&page->top, top + size, __ATOMIC_RELEASE);
    space_unpoison(z->h, top, size);
    return top;
}

/* Give back the last allocation of a page this thread owns; a copy that lost
 * the race is always the page's last object, so the page stays parsable. */
static void undo_bump(zheap *z, zpage *page, uint64_t off, uint64_t size)
{
    if (page && off + size == page->top) {
        __atomic_store_n(&page->top, off, __ATOMIC_RELEASE);
        space_poison(z->h, off, size);
    } else {
        obj_make_filler(heap_addr(z->h, off), size);
    }
}

/* The GC thread's target of a type, a new one when full. */
static uint64_t gc_target_bump(zheap *z, int type, uint64_t size, zpage **page)
{
    uint64_t off = zalloc_bump(z, z->gc_target[type], size);
    if (off == UINT64_MAX) {
        zpage *next = zpage_alloc_gc(z, type);
        if (!next)
            return UINT64_MAX;
        z->gc_target[type] = next;
        off = zalloc_bump(z, next, size);
    }
    *page = z->gc_target[type];
    return off;
}

static void relocation_stall(zheap *z, zforwarding *f);

static uint64_t relocate_object(zheap *z, int worker, zforwarding *f, uint64_t from)
{
    uint64_t to = zforwarding_find(f, from);
    if (to != UINT64_MAX)
        return to;
    if (worker == ZWORKER_MUTATOR && !zforwarding_retain(f)) {
        /* the GC thread has finished the page: every live object is forwarded */
        return zforwarding_find(f, from);
    }
    mh_heap *h = z->h;
    uint64_t size = obj_size(heap_addr(h, from));
    zpage *page = NULL;
    uint64_t dest;
    if (worker == ZWORKER_GC) {
        dest = gc_target_bump(z, f->type, size, &page);
        if (dest == UINT64_MAX) {
            /* cannot happen with the reserve (zselect.c); if it does, the
             * object stays where it is, forwarded to itself, and so does its page */
            return zforwarding_insert(f, from, from);
        }
    } else {
        dest = zalloc_mutator_nonblocking(z, size);
        if (dest == UINT64_MAX) {
            zforwarding_release(f);
            relocation_stall(z, f);
            to = zforwarding_find(f, from);
            return to != UINT64_MAX ? to : relocate_object(z, ZWORKER_GC, f, from);
        }
        page = z->mut_page[zpage_type_for(&z->pages, size)];
    }
    memcpy(heap_addr(h, dest), heap_addr(h, from), size);
    if (z->after_copy_hook)
        z->after_copy_hook(h, worker, from, dest, z->hook_arg);
    to = zforwarding_insert(f, from, dest);
    if (to != dest) {
        undo_bump(z, page, dest, size);
    } else if (worker == ZWORKER_GC) {
        z->cycle.gc_relocated++;
        z->cycle.gc_relocated_bytes += size;
    } else {
        __atomic_add_fetch(&z->mut_relocated, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&z->mut_relocated_bytes, size, __ATOMIC_RELAXED);
    }
    if (worker == ZWORKER_MUTATOR)
        zforwarding_release(f);
    return to;
}

uint64_t zrelocate_or_remap(zheap *z, int worker, uint64_t off)
{
    zforwarding *f = zforwarding_of(z, off);
    if (!f)
        return off;
#ifdef MH_TEST_NO_REMAP
    /* broken on purpose: a mutator does not look up what was already moved */
    if (worker == ZWORKER_MUTATOR && zforwarding_find(f, off) != UINT64_MAX)
        return off;
#endif
#ifdef MH_TEST_NO_RELOCATE_BARRIER
    /* broken on purpose: a mutator only remaps what the GC thread moved */
    if (worker == ZWORKER_MUTATOR) {
        uint64_t to = zforwarding_find(f, off);
        return to != UINT64_MAX ? to : off;
    }
#endif
    return relocate_object(z, worker, f, off);
}

/* Wait, holding the heap (no safepoint is needed to finish a page), until
 * the GC thread has relocated the page. In stepping mode there is no GC
 * thread: the caller finishes the object itself, as the GC would. */
static void relocation_stall(zheap *z, zforwarding *f)
{
    if (z->stepping)
        return;
    uint64_t t0 = clock_ns();
    pthread_mutex_lock(&z->ctl_lock);
    while (__atomic_load_n(&f->refcount, __ATOMIC_ACQUIRE) > 0 && !z->stop)
        pthread_cond_wait(&z->ctl_cond, &z->ctl_lock);
    pthread_mutex_unlock(&z->ctl_lock);
    uint64_t ns = clock_ns() - t0;
    mh_stats *s = &z->h->stats;
    s->relocation_stalls++;
    s->relocation_stall_ns += ns;
    mh_gc_event ev = {.kind = MH_GC_RELOCATION_STALL, .collector = MH_COLLECTOR_ZGC,
                      .ns_total = ns, .start_ns = t0, .capacity = z->h->heap_size};
    heap_event_post(z->h, &ev);
}

static void relocate_root(zheap *z, mh_ref *root)
{
    if (*root)
        *root = zgood(z->h, zrelocate_or_remap(z, ZWORKER_GC, zoff(z->h, *root)));
}

/* Before Pause Relocate Start, on the GC thread: a target page of each type
 * the relocation set has, so that relocating the roots' objects in the pause
 * takes no page (a page's allocation callocs its live map: 32 KiB of fresh
 * memory, 12-25 us measured in bench zgc-latency, against under 1 us
 * without). The pages come from the reserve Select kept for the set. */
void zrelocate_prepare_targets(zheap *z)
{
    for (int t = ZPAGE_SMALL; t <= ZPAGE_MEDIUM; t++)
        if (z->relocation_left[t] && !z->gc_target[t])
            z->gc_target[t] = zpage_alloc_gc(z, t); /* NULL: the pause takes one, as before */
}

/* A root's object in the relocation set adds its size to its page's count. */
static void count_root(zheap *z, mh_ref r)
{
    if (!r)
        return;
    uint64_t off = zoff(z->h, r);
    zforwarding *f = zforwarding_of(z, off);
    if (f) {
        uint64_t size = obj_size(heap_addr(z->h, off));
        f->root_bytes += size;
        z->root_bytes[f->type] += size;
    }
}

/* Take a page out of the relocation set: nobody has looked its forwarding up
 * yet (the mutators are stopped and the phase has just changed), so it simply
 * stays where it is this cycle, its objects unmoved. */
static void evict(zheap *z, zforwarding *f)
{
    f->evicted = true;
    uint32_t first = (uint32_t)(f->start >> z->pages.granule_shift);
    uint32_t n = (uint32_t)(f->size >> z->pages.granule_shift);
    for (uint32_t g = first; g < first + n; g++)
        __atomic_store_n(&z->fwd_of_granule[g], NULL, __ATOMIC_RELEASE);
    f->page->relocating = false;
    z->relocation_left[f->type] -= f->live_bytes;
    z->cycle.relocate_bytes[f->type] -= f->live_bytes;
    z->cycle.relocate_pages[f->type]--;
}

/*
 * Relocate Start copies the roots' objects before any page of the set is
 * emptied, into the GC thread's target pages: the prepared one and the
 * reserve. Selection counted on each emptied page becoming the next target
 * (a prefix of k pages needs at most the reserve plus k - 1 pages); roots
 * into many pages of the set (every object a Python program holds a Ref to
 * is a root) could fill every target first, and each object then left without
 * one stays where it is and keeps its page: a cycle that frees nothing.
 *
 * So, in the pause, before any copy: replay the relocation as it will run,
 * the roots' bytes first, then each page's other live bytes in the set's
 * order, and check that at each page the targets it needs at worst (bytes
 * over a target page's guaranteed room) are there: those of the pause plus
 * one per page emptied before. While the replay fails, the page with the most
 * roots' bytes leaves the set and waits for a later cycle. A root counted
 * twice (two handles to one object) only makes this more careful. No
 * allocation: this runs in the pause.
 */
static bool replay_fits(zheap *z, int t, uint64_t per, uint64_t targets)
{
    uint64_t copied = 0;
    for (uint32_t i = 0; i < z->nrelocation; i++) {
        zforwarding *f = z->relocation_set[i];
        if (f->type == t && !f->evicted)
            copied += f->root_bytes;
    }
    if ((copied + per - 1) / per > targets)
        return false;
    uint64_t emptied = 0;
    for (uint32_t i = 0; i < z->nrelocation; i++) {
        zforwarding *f = z->relocation_set[i];
        if (f->type != t || f->evicted)
            continue;
        copied += f->live_bytes > f->root_bytes ? f->live_bytes - f->root_bytes : 0;
        if ((copied + per - 1) / per > targets + emptied)
            return false;
        emptied++;
    }
    return true;
}

/* The guaranteed room of one target page of type t (bytes over which a page may be left unfilled). */
static uint64_t target_room(const zheap *z, int t)
{
    const zpages *p = &z->pages;
    uint64_t size = t == ZPAGE_SMALL ? p->granule : p->medium_size;
    return size ? size - (t == ZPAGE_SMALL ? p->small_limit : p->medium_limit) : 0;
}

/*
 * The replay below walks every page of the set, a cache miss per forwarding
 * record: in the pause that grew with the set (17 us at 500 MiB live). Most
 * cycles need none of it. Without roots the replay's checks are
 * live_0 + ... + live_k <= (targets + k) * room for every k; roots copied
 * first add at most their bytes R to every one of those sums. So
 * R <= targets * room + slack, with slack = min(0, min over k of
 * (k * room - (live_0 + ... + live_k))), is enough for the replay to pass.
 * The set is fixed once selected, so Select computes slack, concurrently;
 * the pause compares one sum.
 */
void zrelocate_note_slack(zheap *z)
{
    for (int t = ZPAGE_SMALL; t <= ZPAGE_MEDIUM; t++) {
        int64_t room = (int64_t)target_room(z, t), slack = 0, live = 0, k = 0;
        for (uint32_t i = 0; i < z->nrelocation; i++) {
            zforwarding *f = z->relocation_set[i];
            if (f->type != t)
                continue;
            live += (int64_t)f->live_bytes;
            if (k * room - live < slack)
                slack = k * room - live;
            k++;
        }
        z->fit_slack[t] = slack;
    }
}

static void fit_roots_to_targets(zheap *z)
{
    mh_heap *h = z->h;
    if (z->nrelocation == 0)
        return;
    z->root_bytes[ZPAGE_SMALL] = z->root_bytes[ZPAGE_MEDIUM] = 0;
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            count_root(z, h->handles[i]);
    for (mh_mutator *m = h->mutators; m; m = m->next)
        for (uint32_t i = 0; i < m->nroots; i++)
            count_root(z, m->roots[i]);
    zpages *p = &z->pages;
    for (int t = ZPAGE_SMALL; t <= ZPAGE_MEDIUM; t++) {
        uint64_t size = t == ZPAGE_SMALL ? p->granule : p->medium_size;
        if (!size)
            continue;
        uint64_t per = size - (t == ZPAGE_SMALL ? p->small_limit : p->medium_limit);
        uint64_t targets = (z->gc_target[t] ? 1 : 0) + zpages_reserved_targets(z, t);
        if ((int64_t)z->root_bytes[t] <= (int64_t)(targets * per) + z->fit_slack[t])
            continue; /* fits whatever the order: no replay */
        while (!replay_fits(z, t, per, targets)) {
            zforwarding *most = NULL;
            for (uint32_t i = 0; i < z->nrelocation; i++) {
                zforwarding *f = z->relocation_set[i];
                if (f->type == t && !f->evicted && f->root_bytes &&
                    (!most || f->root_bytes > most->root_bytes))
                    most = f;
            }
            if (!most)
                break; /* the roots are not what is short: relocate as selected */
            evict(z, most);
        }
    }
}

/* The handle table and every attached record's shadow stack. */
void zrelocate_start_roots(zheap *z)
{
    mh_heap *h = z->h;
    fit_roots_to_targets(z);
    for (uint32_t i = 0; i < h->handle_hwm; i++)
        if (handle_live(h, i))
            relocate_root(z, &h->handles[i]);
    for (mh_mutator *m = h->mutators; m; m = m->next)
        for (uint32_t i = 0; i < m->nroots; i++)
            relocate_root(z, &m->roots[i]);
}

/* The next live object of the page at or after off, before end, or end: a scan of its live map. */
static uint64_t next_live(const zpage *pg, uint64_t off, uint64_t end)
{
    uint64_t w = (off - pg->start) >> 3, wend = (end - pg->start) >> 3;
    while (w < wend) {
        uint64_t word = __atomic_load_n(&pg->livemap[w >> 6], __ATOMIC_RELAXED) >> (w & 63);
        if (word) {
            uint64_t at = pg->start + ((w + (uint64_t)__builtin_ctzll(word)) << 3);
            return at < end ? at : end;
        }
        w = (w | 63) + 1;
    }
    return end;
}

/* The page is done: wait for mutators still copying from it, then free it.
 * Its granules stay with the GC while the rest of the set may need them. */
static void finish_page(zheap *z, zforwarding *f, bool keep)
{
    zforwarding_release(f);
    while (__atomic_load_n(&f->refcount, __ATOMIC_ACQUIRE) > 0)
        sched_yield(); /* a mutator's copy: a few hundred nanoseconds */
    zpage *pg = f->page;
    f->page = NULL;
    if (!keep) {
        int t = pg->type;
        bool to_reserve = zpages_reserved_targets(z, t) < zpages_needed(&z->pages, t, z->relocation_left[t]);
        zpage_free(z, pg, to_reserve);
    }
    pthread_mutex_lock(&z->ctl_lock);
    z->memory_freed++;
    pthread_cond_broadcast(&z->ctl_cond);
    pthread_mutex_unlock(&z->ctl_lock);
}

bool zrelocate_step(zheap *z, uint64_t budget)
{
    uint64_t done = 0;
    while (z->relocate_next < z->nrelocation) {
        zforwarding *f = z->relocation_set[z->relocate_next];
        if (f->evicted) { /* stays where it is this cycle (fit_roots_to_targets) */
            z->relocate_next++;
            continue;
        }
        zpage *pg = f->page;
        uint64_t end = zpage_top(pg);
        uint64_t off = z->relocate_cursor > f->start ? z->relocate_cursor : f->start;
        bool kept = false;
        for (off = next_live(pg, off, end); off < end; off = next_live(pg, off + 8, end)) {
            if (budget && done >= budget) {
                z->relocate_cursor = off;
                return true;
            }
            kept |= relocate_object(z, ZWORKER_GC, f, off) == off;
            done++;
        }
        z->relocation_left[f->type] -= f->live_bytes;
        finish_page(z, f, kept);
        z->relocate_cursor = 0;
        z->relocate_next++;
    }
    return false;
}

void zrelocate_end(zheap *z)
{
    mh_heap *h = z->h;
    (void)h;
    z->gc_target[ZPAGE_SMALL] = z->gc_target[ZPAGE_MEDIUM] = NULL;
    zpages_trim_reserve(z);
    /* the survivors' marks have served: the next marking starts clear */
    uint32_t n;
    zpage **pages = zpages_snapshot(z, &n);
    for (uint32_t i = 0; pages && i < n; i++) {
        zpage *pg = pages[i];
        if (pg->seqnum == z->seqnum)
            continue;
        livemap_clear(pg);
        __atomic_store_n(&pg->live_bytes, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&pg->live_objects, 0, __ATOMIC_RELAXED);
        pg->relocating = false;
    }
    free(pages);
}
