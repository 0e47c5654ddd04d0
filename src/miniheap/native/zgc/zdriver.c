/*
 * zdriver.c: the cycle, phase by phase (JDK 17's ZDriver), and its record.
 *
 * The same functions run a cycle on the GC thread (pauses at a safepoint,
 * concurrent phases without the heap) and in stepping mode on the caller
 * (zstep.h). Each phase is timed under the JDK's name; the finished cycle
 * becomes an mh_gc_event posted for delivery to on_gc by a mutator.
 */
#include <stdlib.h>
#include "zgc.h"
#include "safepoint.h"
#include "zstep.h"

enum { ZSTATE_IDLE, ZSTATE_MARKING, ZSTATE_MARKED, ZSTATE_SELECTED, ZSTATE_RELOCATING };

/* Concurrent work is done in slices this big on the GC thread, so that a
 * stop request (the heap being closed) is seen promptly. */
#define SLICE 4096

static int phase_thread(const zheap *z) { return z->stepping ? MH_THREAD_MUTATOR : MH_THREAD_GC; }

/* Record a phase, or add to the last one of that name (stepping splits
 * concurrent phases into pieces; a cycle with many Mark End retries folds
 * the extra ones into the last recorded). */
static void phase_add(zheap *z, const char *name, uint64_t start, uint64_t ns, int pause)
{
    zcycle *c = &z->cycle;
    if (c->nphases && c->phases[c->nphases - 1].name == name) {
        c->phases[c->nphases - 1].duration_ns += ns;
        return;
    }
    if (c->nphases == 16) {
        for (uint32_t i = c->nphases; i-- > 0;)
            if (c->phases[i].name == name) {
                c->phases[i].duration_ns += ns;
                return;
            }
        return;
    }
    c->phases[c->nphases++] = (mh_gc_phase){name, start, ns, pause, phase_thread(z)};
}

static uint64_t used_now(zheap *z) { return __atomic_load_n(&z->pages.used, __ATOMIC_RELAXED); }

static void sample_used(zheap *z)
{
    uint64_t u = used_now(z);
    if (u > z->cycle.used_high)
        z->cycle.used_high = u;
    if (u < z->cycle.used_low)
        z->cycle.used_low = u;
}

static uint64_t reclaimed_now(zheap *z)
{
    uint64_t freed = __atomic_load_n(&z->pages.freed, __ATOMIC_RELAXED) - z->cycle.freed0;
    uint64_t taken = __atomic_load_n(&z->pages.gc_allocated, __ATOMIC_RELAXED) - z->cycle.gc_allocated0;
    return freed > taken ? freed - taken : 0;
}

static uint64_t pause_begin(zheap *z)
{
    if (!z->stepping)
        safepoint_begin(z->h);
    return clock_ns();
}

static void pause_end(zheap *z, const char *name, uint64_t t0)
{
    uint64_t ns = clock_ns() - t0;
    phase_add(z, name, t0, ns, 1);
    if (!z->stepping)
        safepoint_end(z->h);
}

void zdriver_cycle_begin(zheap *z, int cause)
{
    zcycle *c = &z->cycle;
    memset(c, 0, sizeof *c);
    c->id = z->h->gc_count++;
    c->cause = cause;
    c->start_ns = clock_ns();
    c->used_low = UINT64_MAX;
    c->freed0 = __atomic_load_n(&z->pages.freed, __ATOMIC_RELAXED);
    c->gc_allocated0 = __atomic_load_n(&z->pages.gc_allocated, __ATOMIC_RELAXED);
    c->mut_loads_slow0 = __atomic_load_n(&z->mut_loads_slow, __ATOMIC_RELAXED);
    c->mut_marked0 = __atomic_load_n(&z->mut_marked, __ATOMIC_RELAXED);
    c->mut_relocated0 = __atomic_load_n(&z->mut_relocated, __ATOMIC_RELAXED);
    c->mut_relocated_bytes0 = __atomic_load_n(&z->mut_relocated_bytes, __ATOMIC_RELAXED);
}

/* Pause Mark Start: a new cycle number (pages allocated from now on are
 * live without marking), the other marking colour, the roots marked. */
static void mark_start(zheap *z)
{
    uint64_t t0 = pause_begin(z);
    z->seqnum++;
    z->prev_mark_color = z->mark_color;
    z->mark_color = z->mark_color == MH_COLOR_MARKED0 ? MH_COLOR_MARKED1 : MH_COLOR_MARKED0;
    zviews_flip(z, z->mark_color);
    z->phase = ZPHASE_MARK;
    z->cycle_active = true;
    zalloc_retire_mutator_pages(z);
    z->cycle.used_at[0] = used_now(z);
    sample_used(z);
    zmark_start_roots(z);
    pause_end(z, "Pause Mark Start", t0);
    z->state = ZSTATE_MARKING;
}

static int mark_slice(zheap *z, uint64_t budget)
{
    uint64_t t0 = clock_ns();
    int more = zmark_drain(z, budget);
    phase_add(z, z->cycle.mark_ends ? "Concurrent Mark Continue" : "Concurrent Mark", t0,
              clock_ns() - t0, 0);
    return more;
}

/* Pause Mark End: over, unless a mutator still had objects to trace. */
static int mark_end(zheap *z)
{
    uint64_t t0 = pause_begin(z);
    int done = zmark_try_end(z);
    if (done) {
        z->phase = ZPHASE_MARK_COMPLETED;
        z->cycle.used_at[1] = used_now(z);
        sample_used(z);
        z->state = ZSTATE_MARKED;
    }
    pause_end(z, "Pause Mark End", t0);
    return done;
}

static void select_set(zheap *z)
{
    uint64_t t0 = clock_ns();
    zmark_free_stacks(z);
    uint64_t t1 = clock_ns();
    phase_add(z, "Concurrent Mark Free", t0, t1 - t0, 0);
    zreset_relocation_set(z);
    uint64_t t2 = clock_ns();
    phase_add(z, "Concurrent Reset Relocation Set", t1, t2 - t1, 0);
    zselect_relocation_set(z);
    zrelocate_prepare_targets(z);
    z->last_live = z->cycle.live_bytes;
    sample_used(z);
    phase_add(z, "Concurrent Select Relocation Set", t2, clock_ns() - t2, 0);
    z->state = ZSTATE_SELECTED;
}

/* Pause Relocate Start: Remapped is good again; the roots' objects move now. */
static void relocate_start(zheap *z)
{
    uint64_t t0 = pause_begin(z);
    z->phase = ZPHASE_RELOCATE;
    zviews_flip(z, MH_COLOR_REMAPPED);
    z->cycle.used_at[2] = used_now(z);
    z->cycle.reclaimed_at[2] = reclaimed_now(z);
    zrelocate_start_roots(z);
    sample_used(z);
    pause_end(z, "Pause Relocate Start", t0);
    z->state = ZSTATE_RELOCATING;
}

static int relocate_slice(zheap *z, uint64_t budget)
{
    uint64_t t0 = clock_ns();
    int more = zrelocate_step(z, budget);
    if (!more)
        zrelocate_end(z);
    sample_used(z);
    phase_add(z, "Concurrent Relocate", t0, clock_ns() - t0, 0);
    return more;
}

static void build_event(zheap *z, mh_gc_event *ev, uint64_t end)
{
    mh_heap *h = z->h;
    zcycle *c = &z->cycle;
    memset(ev, 0, sizeof *ev);
    ev->id = c->id;
    ev->kind = MH_GC_ZGC;
    ev->cause = c->cause;
    ev->collector = MH_COLLECTOR_ZGC;
    ev->good_color = h->views.good;
    ev->capacity = h->heap_size;
    ev->used_before = c->used_at[0];
    ev->used_after = c->used_at[3];
    ev->start_ns = c->start_ns;
    ev->ns_total = end - c->start_ns;
    ev->nphases = c->nphases;
    memcpy(ev->phases, c->phases, sizeof ev->phases);
    memcpy(ev->used_at, c->used_at, sizeof ev->used_at);
    ev->used_high = c->used_high;
    ev->used_low = c->used_low == UINT64_MAX ? 0 : c->used_low;
    memcpy(ev->reclaimed_at, c->reclaimed_at, sizeof ev->reclaimed_at);
    ev->live = ev->bytes_marked = c->live_bytes;
    for (int t = 0; t < 3; t++) {
        ev->pages[t] = c->pages[t];
        ev->relocated_pages[t] = c->relocate_pages[t];
        ev->page_bytes[t] = c->page_bytes[t];
        ev->empty_bytes[t] = c->empty_bytes[t];
        ev->relocated_bytes[t] = c->relocate_bytes[t];
    }
    ev->forwarding_bytes = c->forwarding_bytes;
    ev->mark_stack_bytes = c->mark_stack_bytes;
    ev->objects_relocated_by_gc = c->gc_relocated;
    ev->bytes_relocated_by_gc = c->gc_relocated_bytes;
    ev->objects_relocated_by_mutator = __atomic_load_n(&z->mut_relocated, __ATOMIC_RELAXED) - c->mut_relocated0;
    ev->bytes_relocated_by_mutator = __atomic_load_n(&z->mut_relocated_bytes, __ATOMIC_RELAXED) - c->mut_relocated_bytes0;
    ev->objects_copied = ev->objects_relocated_by_gc + ev->objects_relocated_by_mutator;
    ev->bytes_copied = ev->bytes_relocated_by_gc + ev->bytes_relocated_by_mutator;
    ev->loads_slow = __atomic_load_n(&z->mut_loads_slow, __ATOMIC_RELAXED) - c->mut_loads_slow0;
    ev->objects_marked_by_mutator = __atomic_load_n(&z->mut_marked, __ATOMIC_RELAXED) - c->mut_marked0;
    ev->mark_ends = c->mark_ends;
    ev->gc_workers = 1;
    ev->regions_evacuated = c->relocate_pages[0] + c->relocate_pages[1];
}

void zdriver_cycle_end(zheap *z)
{
    uint64_t end = clock_ns();
    z->cycle.used_at[3] = used_now(z);
    z->cycle.reclaimed_at[3] = reclaimed_now(z);
    sample_used(z);
    z->cycle_active = false;
    z->state = ZSTATE_IDLE;
    mh_gc_event ev;
    build_event(z, &ev, end);
    heap_event_post(z->h, &ev);
    pthread_mutex_lock(&z->ctl_lock);
    zdirector_cycle_done(z, end - z->cycle.start_ns);
    z->cycles_completed++;
    z->memory_freed++;
    pthread_cond_broadcast(&z->ctl_cond);
    pthread_mutex_unlock(&z->ctl_lock);
}

static bool stopping(zheap *z)
{
    return !z->stepping && __atomic_load_n(&z->stop, __ATOMIC_ACQUIRE);
}

/* Run the rest of the cycle from wherever it stands. Returns false if it
 * was abandoned because the heap is being closed. */
static bool run_from_state(zheap *z)
{
    uint64_t slice = z->stepping ? 0 : SLICE;
    if (z->state == ZSTATE_MARKING) {
        for (;;) {
            while (mark_slice(z, slice))
                if (stopping(z))
                    return false;
            if (stopping(z))
                return false;
            if (mark_end(z))
                break;
        }
    }
    if (z->state == ZSTATE_MARKED)
        select_set(z);
    if (stopping(z))
        return false;
    if (z->state == ZSTATE_SELECTED)
        relocate_start(z);
    if (z->state == ZSTATE_RELOCATING) {
        while (relocate_slice(z, slice))
            if (stopping(z))
                return false;
        zdriver_cycle_end(z);
    }
    return true;
}

void zdriver_cycle(zheap *z, int cause)
{
    if (z->state != ZSTATE_IDLE)
        run_from_state(z);
    zdriver_cycle_begin(z, cause);
    mark_start(z);
    run_from_state(z);
}

void zdriver_finish(zheap *z)
{
    if (z->state != ZSTATE_IDLE)
        run_from_state(z);
}

/* ---- the stepping API (zstep.h) ---------------------------------------- */

void zstep_mark_start(mh_heap *h, int cause)
{
    zheap *z = h->z;
    zdriver_finish(z);
    zdriver_cycle_begin(z, cause);
    mark_start(z);
}

int zstep_mark(mh_heap *h, uint64_t budget)
{
    zheap *z = h->z;
    return z->state == ZSTATE_MARKING ? mark_slice(z, budget) : 0;
}

int zstep_mark_end(mh_heap *h)
{
    zheap *z = h->z;
    return z->state == ZSTATE_MARKING ? mark_end(z) : z->state != ZSTATE_IDLE;
}

void zstep_select(mh_heap *h)
{
    if (h->z->state == ZSTATE_MARKED)
        select_set(h->z);
}

void zstep_relocate_start(mh_heap *h)
{
    if (h->z->state == ZSTATE_SELECTED)
        relocate_start(h->z);
}

int zstep_relocate(mh_heap *h, uint64_t budget)
{
    zheap *z = h->z;
    if (z->state != ZSTATE_RELOCATING)
        return 0;
    uint64_t t0 = clock_ns();
    int more = zrelocate_step(z, budget);
    phase_add(z, "Concurrent Relocate", t0, clock_ns() - t0, 0);
    return more;
}

void zstep_cycle_end(mh_heap *h)
{
    zheap *z = h->z;
    if (z->state == ZSTATE_RELOCATING) {
        while (relocate_slice(z, 0))
            ;
        zdriver_cycle_end(z);
    }
}

void zstep_finish(mh_heap *h) { zdriver_finish(h->z); }

void zstep_set_copy_hook(mh_heap *h, void (*hook)(mh_heap *, int, uint64_t, uint64_t, void *), void *arg)
{
    h->z->after_copy_hook = hook;
    h->z->hook_arg = arg;
}

int zstep_phase(mh_heap *h) { return h->z->phase; }

int zstep_in_relocation_set(mh_heap *h, uint64_t off)
{
    zforwarding *f = zforwarding_of(h->z, off);
    return f != NULL && f->page != NULL;
}

uint64_t zstep_forwarding(mh_heap *h, uint64_t off)
{
    zforwarding *f = zforwarding_of(h->z, off);
    return f ? zforwarding_find(f, off) : UINT64_MAX;
}

int zstep_is_marked(mh_heap *h, uint64_t off) { return livemap_test(h->z, off); }

uint64_t zstep_relocate_object(mh_heap *h, uint64_t off)
{
    return zrelocate_or_remap(h->z, ZWORKER_GC, off);
}
