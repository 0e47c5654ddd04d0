/*
 * handles.c: the root table.
 *
 * Handles are the only roots: indices into a table of references that the
 * collector updates when objects move. Free entries form a list threaded
 * through handle_next; a live entry is marked HANDLE_LIVE there, which is
 * how a released handle is told from a live one.
 */
#include <stdlib.h>
#include "internal.h"
#include "miniheap-pyapi.h"

int handles_init(mh_heap *h)
{
    h->max_handles = h->config.max_handles;
    h->handles = calloc(h->max_handles, sizeof *h->handles);
    h->handle_next = malloc(h->max_handles * sizeof *h->handle_next);
    if (!h->handles || !h->handle_next)
        return -1;
    /* lowest index first, so handle numbers are small and predictable */
    for (uint32_t i = 0; i < h->max_handles; i++)
        h->handle_next[i] = i + 1 < h->max_handles ? (int32_t)(i + 1) : HANDLE_END;
    h->handle_free = 0;
    return 0;
}

void handles_free(mh_heap *h)
{
    free(h->handles);
    free(h->handle_next);
}

bool handle_full_error(mh_heap *h)
{
    heap_error(h, MH_E_NO_HANDLES,
               "the handle table is full: all %u handles are live; release handles you no "
               "longer need (mh_release) or raise max_handles",
               h->max_handles);
    return false;
}

/* handle_check (internal.h) found x is not a live handle: say why. */
bool handle_check_error(mh_heap *h, mh_handle x)
{
    if (x == MH_NULL_HANDLE) {
        heap_error(h, MH_E_BAD_HANDLE,
                   "handle %d is the null handle (what a load of a null slot returns); it names "
                   "no object; test for MH_NULL_HANDLE before using a loaded handle", x);
        return false;
    }
    if (x < 0 || (uint32_t)x >= h->max_handles) {
        heap_error(h, MH_E_BAD_HANDLE,
                   "handle %d is out of range: handles are 0..%u (max_handles %u); use a handle "
                   "returned by mh_alloc, mh_load or mh_dup",
                   x, h->max_handles - 1, h->max_handles);
        return false;
    }
    heap_error(h, MH_E_BAD_HANDLE,
               "handle %d is not live: it was released or never issued; a handle is valid "
               "from the call that returned it until mh_release", x);
    return false;
}

static inline mh_handle mh_dup_unlocked(mh_heap *h, mh_handle x)
{
    if (!heap_enter(h) || !handle_check(h, x))
        return MH_ERROR;
    return handle_new(h, h->handles[x]);
}

void handle_release_now(mh_heap *h, mh_handle x)
{
    h->handles[x] = 0;
    h->handle_next[x] = h->handle_free;
    h->handle_free = x;
}

/*
 * A release inside a callback (Python's __del__ runs whenever its cyclic
 * collector does, and that may be inside a commit callback in the middle of a
 * collection) is never refused and never dropped: the handle stops being a
 * root at once (handle_live is false for it, so a collection still running
 * ignores it) and joins the free list when the call that ran the callback
 * ends (heap_call_end). The queue is threaded through handle_next, below
 * HANDLE_LIVE: HANDLE_QUEUED - (next + 1), next being HANDLE_END at its end.
 */
#define HANDLE_QUEUED (-3)

static int __attribute__((noinline, cold)) release_later(mh_heap *h, mh_handle x)
{
    h->handle_next[x] = HANDLE_QUEUED - (h->release_pending + 1);
    h->release_pending = x;
    h->deferred |= DEFER_RELEASE;
    return 0;
}

void handles_release_queued(mh_heap *h)
{
    while (h->release_pending != HANDLE_END) {
        int32_t x = h->release_pending;
        h->release_pending = HANDLE_QUEUED - h->handle_next[x] - 1;
        handle_release_now(h, x);
    }
}

static inline int mh_release_unlocked(mh_heap *h, mh_handle x)
{
    if (MH_UNLIKELY(!heap_ok(h)) || !handle_check(h, x))
        return MH_ERROR;
    h->stats.handles_live--;
    if (MH_UNLIKELY(h->busy))
        return release_later(h, x);
    handle_release_now(h, x);
    return 0;
}

int mh_handle_valid_unlocked(mh_heap *h, mh_handle x)
{
    return heap_ok(h) && x >= 0 && (uint32_t)x < h->max_handles && handle_live(h, (uint32_t)x);
}

mh_ref mh_handle_ref_unlocked(mh_heap *h, mh_handle x)
{
    if (!heap_ok(h) || !handle_check(h, x))
        return 0;
    return h->handles[x];
}

int mh_same_unlocked(mh_heap *h, mh_handle a, mh_handle b)
{
    if (!heap_enter_read(h) || !handle_check(h, a) || !handle_check(h, b))
        return MH_ERROR;
    /* handles always hold good references, but compare offsets: a colour
     * is not part of an object's identity */
    return ref_offset(&h->views, h->handles[a]) == ref_offset(&h->views, h->handles[b]);
}

/* The C-level Python Ref's release (miniheap-pyapi.h): never waits for the lock. */
int release_try(mh_heap *h, mh_handle x)
{
    mh_heap *locked = heap_trylock(h);
    if (!locked)
        return MH_WOULD_BLOCK;
    int r = MH_LIKELY(!h->mutators) ? mh_release_unlocked(h, x) : MH_WOULD_BLOCK;
    heap_unlock(locked);
    return r;
}

/* The hot public functions are defined beside their implementation (so it is
 * inlined into them); api.c has the others. */
MH_LOCKED(mh_handle, mh_dup, (mh_heap *h, mh_handle x), (h, x))
MH_LOCKED(int, mh_release, (mh_heap *h, mh_handle x), (h, x))
